/**
 * The secrets hostile-input corpus: requests to the secrets HTTP API (over mutual TLS, as an
 * app calls it) and manifests given to the resolver, one row per attack, each with the
 * answer the caller must get. secrets-corpus.test.ts runs them against real file, env and
 * Vault stores (the Vault one behind the wire-faithful test server).
 *
 * Kubernetes-store rows need the Kubernetes test server and the kubernetes store, which are
 * being built elsewhere: they add the 'kubernetes' capability and rows here.
 */

export type SecretsCapability = 'file' | 'env' | 'vault' | 'kubernetes';

/** Seeded values: no refusal body and no log line may ever contain one of them. */
export const SEEDED_VALUES = {
  dbPassword: 'seeded-db-password-5f1c',
  denied: 'seeded-denied-value-93ab',
  vaultDb: 'seeded-vault-db-77d0',
  vaultOther: 'seeded-vault-other-1e4f',
  outsidePrefix: 'seeded-outside-prefix-c0de',
  daprToken: 'seeded-dapr-api-token-aa11',
  appToken: 'seeded-app-api-token-bb22',
  dbUrl: 'seeded-db-url-cc33',
  proto: 'seeded-proto-value-dd44',
} as const;

export type SecretsClient = 'allowed' | 'other';

export interface SecretsApiRow {
  readonly name: string;
  readonly needs: SecretsCapability;
  /** The raw request target, sent exactly as written (no client-side normalisation). */
  readonly path: string;
  readonly method?: string;
  readonly client?: SecretsClient;
  readonly expect:
    | { readonly status: number; readonly errorCode: string; readonly fragment?: string }
    | { readonly status: 200; readonly body: unknown };
}

const LONG_NAME = 'n'.repeat(2000);
const S = '/v1.0/secrets';

const refuse = (status: number, errorCode: string, fragment?: string): SecretsApiRow['expect'] =>
  fragment === undefined ? { status, errorCode } : { status, errorCode, fragment };

const MALFORMED = 'ERR_MALFORMED_REQUEST';

export const SECRETS_API_CORPUS: readonly SecretsApiRow[] = Object.freeze<SecretsApiRow[]>([
  // ---- traversal, encoded traversal, odd bytes (file store: names are flat keys)
  {
    name: 'an encoded traversal to /etc/passwd',
    needs: 'file',
    path: `${S}/files/..%2f..%2fetc%2fpasswd`,
    expect: refuse(400, MALFORMED, 'contains a "." or ".." path segment'),
  },
  {
    name: 'an encoded traversal with encoded dots',
    needs: 'file',
    path: `${S}/files/%2e%2e%2F%2e%2e%2Fetc%2Fpasswd`,
    expect: refuse(400, MALFORMED),
  },
  {
    name: 'a double-encoded traversal (a second decoder behind us would see ../)',
    needs: 'file',
    path: `${S}/files/%252e%252e%252fetc`,
    expect: refuse(400, MALFORMED, 'once percent-decoded'),
  },
  {
    name: 'a backslash traversal',
    needs: 'file',
    path: `${S}/files/..%5c..%5cwindows`,
    expect: refuse(400, MALFORMED, 'contains a "." or ".." path segment'),
  },
  {
    name: 'an absolute path',
    needs: 'file',
    path: `${S}/files/%2fetc%2fpasswd`,
    expect: refuse(400, MALFORMED, 'is an absolute path'),
  },
  {
    name: 'a NUL byte (C-string truncation)',
    needs: 'file',
    path: `${S}/files/db-password%00.json`,
    expect: refuse(400, MALFORMED, 'contains a control character'),
  },
  {
    name: 'broken percent-encoding',
    needs: 'file',
    path: `${S}/files/%zz`,
    expect: refuse(400, MALFORMED, 'is not valid percent-encoding'),
  },
  {
    name: 'a 2000-character name',
    needs: 'file',
    path: `${S}/files/${LONG_NAME}`,
    expect: refuse(400, MALFORMED, 'is longer than 1024 bytes'),
  },
  {
    name: 'a secret name with an extra path segment (routing, not traversal)',
    needs: 'file',
    path: `${S}/files/a/b`,
    expect: refuse(404, 'ERR_NOT_FOUND'),
  },
  {
    name: 'a method other than GET',
    needs: 'file',
    method: 'DELETE',
    path: `${S}/files/db-password`,
    expect: refuse(405, 'ERR_METHOD_NOT_ALLOWED'),
  },
  {
    name: 'a metadata query parameter of 2 KiB',
    needs: 'file',
    path: `${S}/files/db-password?metadata.x=${'v'.repeat(2048)}`,
    expect: refuse(400, MALFORMED, 'is empty or too long'),
  },
  {
    name: '33 metadata query parameters',
    needs: 'file',
    path: `${S}/files/db-password?${Array.from({ length: 33 }, (_, i) => `metadata.k${i}=v`).join('&')}`,
    expect: refuse(400, MALFORMED, 'more than 32 metadata parameters'),
  },

  // ---- huge values
  {
    name: 'a 2 MiB value in the secrets file',
    needs: 'file',
    path: `${S}/files/huge`,
    expect: refuse(500, 'ERR_SECRET_GET', 'holds a value larger than the limit'),
  },
  {
    name: 'a 3 MiB value in Vault (refused without buffering it all)',
    needs: 'vault',
    path: `${S}/vaultbig/huge`,
    expect: refuse(500, 'ERR_SECRET_GET', 'is larger than the 2097152-byte limit'),
  },
  {
    name: 'a Vault bulk read meeting one oversized secret fails whole, never partly',
    needs: 'vault',
    path: `${S}/vaultbig/bulk`,
    expect: refuse(500, 'ERR_SECRET_GET', 'is larger than the 2097152-byte limit'),
  },

  // ---- Vault: prefix escapes and URL smuggling
  {
    name: 'a Vault name climbing out of the KV prefix',
    needs: 'vault',
    path: `${S}/vault/..%2fprivate%2fadmin`,
    expect: refuse(400, MALFORMED),
  },
  {
    name: 'a nested Vault name stays below the KV prefix (dapr/private/admin, not private/admin)',
    needs: 'vault',
    path: `${S}/vault/private%2fadmin`,
    expect: refuse(500, 'ERR_SECRET_GET', 'not found in Vault at secret/data/dapr/private/admin'),
  },
  {
    name: 'a Vault name smuggling a query (?version=1)',
    needs: 'vault',
    path: `${S}/vault/db%3fversion%3d1`,
    expect: refuse(400, MALFORMED, '"?" or "#"'),
  },
  {
    name: 'a Vault name smuggling a fragment',
    needs: 'vault',
    path: `${S}/vault/db%23x`,
    expect: refuse(400, MALFORMED),
  },
  {
    name: 'a Vault name with a doubled slash',
    needs: 'vault',
    path: `${S}/vault/db%2f%2fx`,
    expect: refuse(400, MALFORMED, 'contains an empty path segment'),
  },
  {
    name: 'a Vault name through an encoded prefix escape x/../../..',
    needs: 'vault',
    path: `${S}/vault/x%2f..%2f..%2f..%2fsys%2fseal`,
    expect: refuse(400, MALFORMED),
  },

  // ---- stores that do not exist
  {
    name: 'an unknown store',
    needs: 'file',
    path: `${S}/nosuchstore/db-password`,
    expect: refuse(
      401,
      'ERR_SECRET_STORE_NOT_FOUND',
      'failed finding secret store with key nosuchstore',
    ),
  },
  {
    name: 'a store name that is an encoded traversal',
    needs: 'file',
    path: `${S}/..%2ffiles/db-password`,
    expect: refuse(401, 'ERR_SECRET_STORE_NOT_FOUND'),
  },
  {
    name: 'a store name differing only in case',
    needs: 'file',
    path: `${S}/Files/db-password`,
    expect: refuse(401, 'ERR_SECRET_STORE_NOT_FOUND'),
  },

  // ---- scoping edge cases
  {
    name: 'a name the Configuration denies',
    needs: 'file',
    path: `${S}/files/denied-secret`,
    expect: refuse(403, 'ERR_PERMISSION_DENIED', 'access denied by policy'),
  },
  {
    name: 'a denied name with an encoded hyphen (decoded once, still denied)',
    needs: 'file',
    path: `${S}/files/denied%2Dsecret`,
    expect: refuse(403, 'ERR_PERMISSION_DENIED'),
  },
  {
    name: 'a denied name in another case is another secret (not found), never the denied one',
    needs: 'file',
    path: `${S}/files/Denied-Secret`,
    expect: refuse(500, 'ERR_SECRET_GET', 'not found'),
  },
  {
    name: 'a denied name with a trailing space is another secret',
    needs: 'file',
    path: `${S}/files/denied-secret%20`,
    expect: refuse(500, 'ERR_SECRET_GET', 'not found'),
  },
  {
    name: 'a name outside a non-empty allowedSecrets list',
    needs: 'vault',
    path: `${S}/vaultscoped/other`,
    expect: refuse(403, 'ERR_PERMISSION_DENIED'),
  },
  {
    name: 'a name in deniedSecrets but also in allowedSecrets (the allow list decides alone)',
    needs: 'vault',
    path: `${S}/vaultscoped/db`,
    expect: { status: 200, body: { password: SEEDED_VALUES.vaultDb } },
  },
  {
    name: 'bulk under an allowedSecrets list answers only the allowed names',
    needs: 'vault',
    path: `${S}/vaultscoped/bulk`,
    expect: { status: 200, body: { db: { password: SEEDED_VALUES.vaultDb } } },
  },
  {
    name: 'bulk leaves out the denied name and the oversized one',
    needs: 'file',
    path: `${S}/files/bulk`,
    expect: {
      status: 200,
      body: JSON.parse(
        `{"db-password":{"db-password":"${SEEDED_VALUES.dbPassword}"},"__proto__":{"__proto__":"${SEEDED_VALUES.proto}"}}`,
      ) as unknown,
    },
  },
  {
    name: 'an app outside the Component scopes',
    needs: 'file',
    client: 'other',
    path: `${S}/files/db-password`,
    expect: refuse(403, 'ERR_PERMISSION_DENIED', 'is not in the scopes'),
  },
  {
    name: 'an app outside the Component scopes asking for bulk',
    needs: 'file',
    client: 'other',
    path: `${S}/files/bulk`,
    expect: refuse(403, 'ERR_PERMISSION_DENIED'),
  },

  // ---- the env store's reserved names
  {
    name: 'DAPR_API_TOKEN from the env store',
    needs: 'env',
    path: `${S}/env/DAPR_API_TOKEN`,
    expect: refuse(500, 'ERR_SECRET_GET', 'not found'),
  },
  {
    name: 'dapr_api_token in lower case',
    needs: 'env',
    path: `${S}/env/dapr_api_token`,
    expect: refuse(500, 'ERR_SECRET_GET', 'not found'),
  },
  {
    name: 'APP_API_TOKEN from the env store',
    needs: 'env',
    path: `${S}/env/APP_API_TOKEN`,
    expect: refuse(500, 'ERR_SECRET_GET', 'not found'),
  },
  {
    name: "APP_API_TOKEN through a prefixed store's prefix (APP_ + API_TOKEN)",
    needs: 'env',
    path: `${S}/appenv/API_TOKEN`,
    expect: refuse(500, 'ERR_SECRET_GET', 'not found'),
  },
  {
    name: 'env bulk never lists the reserved variables',
    needs: 'env',
    path: `${S}/env/bulk`,
    expect: { status: 200, body: { DB_URL: { DB_URL: SEEDED_VALUES.dbUrl } } },
  },

  // ---- controls: what an allowed app may read, it reads
  {
    name: 'a plain read by an allowed app (control)',
    needs: 'file',
    path: `${S}/files/db-password`,
    expect: { status: 200, body: { 'db-password': SEEDED_VALUES.dbPassword } },
  },
  {
    name: 'a "__proto__" secret is data, not a prototype (control)',
    needs: 'file',
    path: `${S}/files/__proto__`,
    expect: { status: 200, body: JSON.parse(`{"__proto__":"${SEEDED_VALUES.proto}"}`) as unknown },
  },
  {
    name: 'an allowed Vault read (control)',
    needs: 'vault',
    path: `${S}/vault/db`,
    expect: { status: 200, body: { password: SEEDED_VALUES.vaultDb } },
  },
]);

/** A resolver row: manifests (and files) given to resolveComponents, which must refuse them. */
export interface SecretsResolverRow {
  readonly name: string;
  readonly needs: SecretsCapability;
  /** Files written into the row's own directory before resolving (`{dir}` is replaced). */
  readonly files?: Readonly<Record<string, string>>;
  /** Symlinks made in the row's directory: name → target (`{dir}` replaced). */
  readonly symlinks?: Readonly<Record<string, string>>;
  /** Manifest documents (`{dir}` in string values replaced), or none to read `resources/`. */
  readonly manifests?: readonly unknown[];
  readonly expect: { readonly code: string; readonly fragment: string };
}

const component = (
  name: string,
  type: string,
  metadata: readonly Record<string, unknown>[],
  extra: Record<string, unknown> = {},
): Record<string, unknown> => ({
  apiVersion: 'dapr.io/v1alpha1',
  kind: 'Component',
  metadata: { name },
  spec: { type, version: 'v1', metadata },
  ...extra,
});

const fileStore = (name: string, file = '{dir}/secrets.json'): Record<string, unknown> =>
  component(name, 'secretstores.local.file', [{ name: 'secretsFile', value: file }]);

const consumer = (
  metadata: readonly Record<string, unknown>[],
  store = 'files',
): Record<string, unknown> =>
  component('statestore', 'state.redis', metadata, { auth: { secretStore: store } });

const GOOD_SECRETS = JSON.stringify({ 'db-password': 'resolver-secret-value-9f9f' });

/** "Billion laughs": nine levels of ten aliases each. */
const YAML_ALIAS_BOMB = [
  'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]',
  ...'bcdefghi'.split('').map((c, i) => {
    const prev = 'abcdefghi'[i] as string;
    return `${c}: &${c} [*${prev},*${prev},*${prev},*${prev},*${prev},*${prev},*${prev},*${prev},*${prev}]`;
  }),
  'apiVersion: dapr.io/v1alpha1',
  'kind: Component',
  'metadata: {name: bomb}',
  'spec: {type: state.redis, version: v1, metadata: [{name: x, value: *i}]}',
].join('\n');

export const SECRETS_RESOLVER_CORPUS: readonly SecretsResolverRow[] = Object.freeze<
  SecretsResolverRow[]
>([
  {
    name: 'a secrets file that is a symlink to a file outside its directory',
    needs: 'file',
    symlinks: { 'secrets.json': '/etc/passwd' },
    manifests: [fileStore('files')],
    expect: {
      code: 'ERR_SECRET_STORE_CONFIG',
      fragment: 'is a symlink that points outside its directory',
    },
  },
  {
    name: 'a secrets file that is a directory',
    needs: 'file',
    manifests: [fileStore('files', '{dir}')],
    expect: { code: 'ERR_SECRET_STORE_CONFIG', fragment: 'is not a regular file' },
  },
  {
    name: 'a secretKeyRef whose name traverses',
    needs: 'file',
    files: { 'secrets.json': GOOD_SECRETS },
    manifests: [
      fileStore('files'),
      consumer([{ name: 'password', secretKeyRef: { name: '../../etc/passwd' } }]),
    ],
    expect: { code: 'ERR_SECRET_NAME_INVALID', fragment: 'contains a "." or ".." path segment' },
  },
  {
    name: 'a secretKeyRef whose name is an encoded traversal',
    needs: 'file',
    files: { 'secrets.json': GOOD_SECRETS },
    manifests: [
      fileStore('files'),
      consumer([{ name: 'password', secretKeyRef: { name: '%2e%2e%2fetc' } }]),
    ],
    expect: { code: 'ERR_SECRET_NAME_INVALID', fragment: 'once percent-decoded' },
  },
  {
    name: 'a reference to a store that does not exist',
    needs: 'file',
    manifests: [
      consumer([{ name: 'password', secretKeyRef: { name: 'db-password' } }], 'nosuchstore'),
    ],
    expect: { code: 'ERR_SECRET_REF_UNRESOLVED', fragment: 'secret store not found' },
  },
  {
    name: 'an unsupported store type',
    needs: 'file',
    manifests: [
      component('exec', 'secretstores.local.exec', [{ name: 'command', value: 'cat /etc/shadow' }]),
    ],
    expect: {
      code: 'ERR_SECRET_STORE_CONFIG',
      fragment: 'type "secretstores.local.exec" is not supported',
    },
  },
  {
    name: 'an item with both a value and a secretKeyRef',
    needs: 'file',
    files: { 'secrets.json': GOOD_SECRETS },
    manifests: [
      fileStore('files'),
      consumer([{ name: 'password', value: 'x', secretKeyRef: { name: 'db-password' } }]),
    ],
    expect: {
      code: 'ERR_COMPONENT_INVALID',
      fragment: 'has more than one of value, secretKeyRef and envRef',
    },
  },
  {
    name: 'a misspelt secretKeyRef (never read as an empty password)',
    needs: 'file',
    files: { 'secrets.json': GOOD_SECRETS },
    manifests: [
      fileStore('files'),
      consumer([{ name: 'password', secretKeyref: { name: 'db-password' } }]),
    ],
    expect: { code: 'ERR_COMPONENT_INVALID', fragment: 'Unrecognized key: "secretKeyref"' },
  },
  {
    name: 'two secret stores reading their metadata from each other',
    needs: 'file',
    files: { 'secrets.json': GOOD_SECRETS },
    manifests: [
      component(
        'a',
        'secretstores.local.file',
        [{ name: 'secretsFile', secretKeyRef: { name: 'db-password' } }],
        { auth: { secretStore: 'b' } },
      ),
      component(
        'b',
        'secretstores.local.file',
        [{ name: 'secretsFile', secretKeyRef: { name: 'db-password' } }],
        { auth: { secretStore: 'a' } },
      ),
    ],
    expect: { code: 'ERR_SECRET_STORE_CYCLE', fragment: '"a" → "b" → "a"' },
  },
  {
    name: 'two Components with one name',
    needs: 'file',
    files: { 'secrets.json': GOOD_SECRETS },
    manifests: [fileStore('files'), fileStore('files')],
    expect: { code: 'ERR_COMPONENT_INVALID', fragment: 'is also the name of the Component' },
  },
  {
    name: 'an envRef to a reserved variable (DAPR_API_TOKEN)',
    needs: 'env',
    manifests: [
      component('statestore', 'state.redis', [{ name: 'password', envRef: 'DAPR_API_TOKEN' }]),
    ],
    expect: {
      code: 'ERR_SECRET_REF_UNRESOLVED',
      fragment: 'environment variable DAPR_API_TOKEN is reserved',
    },
  },
  {
    name: 'YAML that does not parse',
    needs: 'file',
    files: {
      'resources/broken.yaml':
        'apiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata: {name: [unclosed\n',
    },
    expect: { code: 'ERR_COMPONENT_INVALID', fragment: 'not valid YAML at line 4' },
  },
  {
    name: 'a YAML alias bomb (a billion laughs) is refused, not expanded',
    needs: 'file',
    files: { 'resources/bomb.yaml': YAML_ALIAS_BOMB },
    expect: { code: 'ERR_COMPONENT_INVALID', fragment: 'expands more than 100 YAML aliases' },
  },
  {
    name: 'a manifest file over 4 MiB',
    needs: 'file',
    files: { 'resources/huge.yaml': `# ${'x'.repeat(5 * 1024 * 1024)}\n` },
    expect: { code: 'ERR_COMPONENT_INVALID', fragment: 'is larger than 4194304 bytes' },
  },
  {
    name: 'a Vault address that is not http(s)',
    needs: 'vault',
    manifests: [
      component('vault', 'secretstores.hashicorp.vault', [
        { name: 'vaultAddr', value: 'file:///etc/passwd' },
        { name: 'vaultToken', value: 'x' },
      ]),
    ],
    expect: { code: 'ERR_SECRET_STORE_CONFIG', fragment: 'vaultAddr must use http:// or https://' },
  },
  {
    name: 'a Vault KV prefix that climbs out of the engine',
    needs: 'vault',
    manifests: [
      component('vault', 'secretstores.hashicorp.vault', [
        { name: 'vaultAddr', value: 'https://127.0.0.1:1' },
        { name: 'vaultToken', value: 'x' },
        { name: 'vaultKVPrefix', value: '../sys' },
      ]),
    ],
    expect: {
      code: 'ERR_SECRET_STORE_CONFIG',
      fragment: 'vaultKVPrefix has a "." or ".." path segment',
    },
  },
  {
    name: 'a Vault store given two token sources',
    needs: 'vault',
    manifests: [
      component('vault', 'secretstores.hashicorp.vault', [
        { name: 'vaultAddr', value: 'https://127.0.0.1:1' },
        { name: 'vaultToken', value: 'x' },
        { name: 'vaultTokenMountPath', value: '{dir}/token' },
      ]),
    ],
    expect: {
      code: 'ERR_SECRET_STORE_CONFIG',
      fragment: 'set exactly one of vaultToken and vaultTokenMountPath',
    },
  },
]);
