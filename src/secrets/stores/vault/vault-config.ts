import type { Logger } from 'pino';
import { parseDuration } from '../../../shared/duration.js';
import { WardenError } from '../../../shared/errors.js';
import { parseConfiguredPath, type VaultPathSegments } from './vault-path.js';
import { loadCaCertificates, type VaultTlsSettings } from './vault-tls.js';

/**
 * Metadata of a `secretstores.hashicorp.vault` Component, validated once. Field names are
 * Dapr's (components-contrib secretstores/hashicorp/vault), the Kubernetes-auth names are
 * those proposed for Dapr (components-contrib #4448), and the rest are Warden additions.
 */
export const VAULT_SECRET_STORE_TYPE = 'secretstores.hashicorp.vault';

export const DEFAULT_VAULT_ADDRESS = 'https://127.0.0.1:8200';
export const DEFAULT_SERVICE_ACCOUNT_TOKEN_PATH =
  '/var/run/secrets/kubernetes.io/serviceaccount/token';
/** How often the versions of secrets read so far are compared, while anyone listens for changes. */
export const DEFAULT_VERSION_CHECK_INTERVAL = '1m';

export type VaultAuthSettings =
  | { readonly method: 'token'; readonly source: 'inline'; readonly token: string }
  | { readonly method: 'token'; readonly source: 'file'; readonly tokenFile: string }
  | {
      readonly method: 'kubernetes';
      readonly role: string;
      readonly mountPath: VaultPathSegments;
      readonly serviceAccountTokenPath: string;
    }
  | {
      readonly method: 'approle';
      readonly roleId: string;
      readonly secretId: string | undefined;
      readonly secretIdPath: string | undefined;
      readonly mountPath: VaultPathSegments;
    };

export interface VaultStoreConfig {
  readonly address: URL;
  readonly tls: VaultTlsSettings;
  readonly auth: VaultAuthSettings;
  /** KV mount (Dapr's enginePath). */
  readonly enginePath: VaultPathSegments;
  /** Empty when vaultKVUsePrefix is false. */
  readonly kvPrefix: VaultPathSegments;
  readonly kvVersion: 1 | 2;
  /** map: the KV entry's keys; text: `{name: <the entry's data as JSON text>}` (Dapr's semantics). */
  readonly valueType: 'map' | 'text';
  /** Vault Enterprise namespace for X-Vault-Namespace, without slashes at the ends. */
  readonly namespace: string | undefined;
  /** Warden: period of the version checks of secrets read so far; 0 turns them off. */
  readonly versionCheckIntervalMs: number;
}

const KNOWN_FIELDS = new Set([
  'vaultAddr',
  'caCert',
  'caPath',
  'caPem',
  'skipVerify',
  'tlsServerName',
  'vaultToken',
  'vaultTokenMountPath',
  'vaultKVPrefix',
  'vaultKVUsePrefix',
  'enginePath',
  'vaultValueType',
  'vaultKVVersion',
  'vaultNamespace',
  'vaultAuthMethod',
  'vaultKubernetesRole',
  'vaultKubernetesMountPath',
  'vaultServiceAccountTokenPath',
  'vaultAppRoleRoleId',
  'vaultAppRoleSecretId',
  'vaultAppRoleSecretIdPath',
  'vaultAppRoleMountPath',
  'versionCheckInterval',
  // read by the resolver (a TTL cache in front of every store), not by the store
  'cacheTTL',
]);

const KUBERNETES_FIELDS = [
  'vaultKubernetesRole',
  'vaultKubernetesMountPath',
  'vaultServiceAccountTokenPath',
] as const;
const APPROLE_FIELDS = [
  'vaultAppRoleRoleId',
  'vaultAppRoleSecretId',
  'vaultAppRoleSecretIdPath',
  'vaultAppRoleMountPath',
] as const;
const TOKEN_FIELDS = ['vaultToken', 'vaultTokenMountPath'] as const;

const HOSTNAME =
  /^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?$/;
const CONTROL_OR_SPACE = /[\u0000-\u0020\u007f-\u009f]/;

/** Go's strconv.ParseBool spellings, which Dapr's metadata decoder accepts. */
function parseBool(value: string): boolean | undefined {
  if (['1', 't', 'T', 'TRUE', 'true', 'True'].includes(value)) return true;
  if (['0', 'f', 'F', 'FALSE', 'false', 'False'].includes(value)) return false;
  return undefined;
}

function isLoopback(hostname: string): boolean {
  return hostname === 'localhost' || hostname === '[::1]' || /^127\.\d+\.\d+\.\d+$/.test(hostname);
}

/**
 * Validates the metadata and loads the CA material it names. Every problem is collected
 * and reported in one ERR_SECRET_STORE_CONFIG whose message names the fields — never the
 * value of vaultToken or vaultAppRoleSecretId.
 */
export async function parseVaultMetadata(
  metadata: Readonly<Record<string, string>>,
  logger: Logger,
): Promise<VaultStoreConfig> {
  const problems: string[] = [];
  const get = (field: string): string | undefined => {
    const raw = Object.prototype.hasOwnProperty.call(metadata, field) ? metadata[field] : undefined;
    if (raw === undefined || raw === null) return undefined;
    if (typeof raw !== 'string') {
      problems.push(`${field} must be a string`);
      return undefined;
    }
    const trimmed = raw.trim();
    return trimmed.length === 0 ? undefined : trimmed;
  };
  const bool = (field: string, fallback: boolean): boolean => {
    const value = get(field);
    if (value === undefined) return fallback;
    const parsed = parseBool(value);
    if (parsed === undefined) problems.push(`${field} must be true or false`);
    return parsed ?? fallback;
  };
  const pathField = (field: string, fallback: string, allowEmpty: boolean): VaultPathSegments => {
    const value = get(field) ?? fallback;
    const parsed = parseConfiguredPath(value);
    if ('problem' in parsed) {
      problems.push(`${field} ${parsed.problem}`);
      return [];
    }
    if (!allowEmpty && parsed.segments.length === 0) problems.push(`${field} must not be empty`);
    return parsed.segments;
  };
  const credential = (field: string): string | undefined => {
    const value = get(field);
    if (value !== undefined && (CONTROL_OR_SPACE.test(value) || value.length > 8192)) {
      problems.push(
        `${field} must be a single line without spaces or control characters (at most 8192 characters)`,
      );
      return undefined;
    }
    return value;
  };

  const unknown = Object.keys(metadata).filter((k) => !KNOWN_FIELDS.has(k));
  if (unknown.length > 0) {
    logger.warn(
      { fields: unknown },
      'ignoring metadata fields the Vault secret store does not know',
    );
  }

  // Address
  let address = new URL(DEFAULT_VAULT_ADDRESS);
  const addressText = get('vaultAddr');
  if (addressText !== undefined) {
    try {
      const parsed = new URL(addressText);
      if (parsed.protocol !== 'https:' && parsed.protocol !== 'http:')
        problems.push('vaultAddr must use http:// or https://');
      else if (parsed.username !== '' || parsed.password !== '')
        problems.push('vaultAddr must not carry credentials');
      else if (parsed.search !== '' || parsed.hash !== '')
        problems.push('vaultAddr must not have a query or fragment');
      else address = parsed;
    } catch {
      problems.push('vaultAddr is not a valid URL');
    }
  }

  // TLS
  const skipVerify = bool('skipVerify', false);
  const tlsServerName = get('tlsServerName');
  if (tlsServerName !== undefined && !HOSTNAME.test(tlsServerName))
    problems.push('tlsServerName is not a valid DNS name');
  const caPem = get('caPem');
  const caPath = get('caPath');
  const caCert = get('caCert');
  const caGiven = [caPem && 'caPem', caPath && 'caPath', caCert && 'caCert'].filter(
    Boolean,
  ) as string[];
  if (caGiven.length > 1) {
    logger.warn(
      { used: caGiven[0], ignored: caGiven.slice(1) },
      'several CA fields set; using Dapr precedence caPem > caPath > caCert',
    );
  }
  const ca = skipVerify ? undefined : await loadCaCertificates({ caPem, caPath, caCert }, problems);

  // Auth
  const methodText = get('vaultAuthMethod') ?? 'token';
  const set = (fields: readonly string[]): string[] => fields.filter((f) => get(f) !== undefined);
  let auth: VaultAuthSettings | undefined;
  switch (methodText) {
    case 'token': {
      const strays = [...set(KUBERNETES_FIELDS), ...set(APPROLE_FIELDS)];
      if (strays.length > 0)
        problems.push(
          `${strays.join(', ')} only apply with vaultAuthMethod kubernetes or approle, not token`,
        );
      const token = credential('vaultToken');
      const tokenFile = get('vaultTokenMountPath');
      if (get('vaultToken') !== undefined && tokenFile !== undefined) {
        problems.push('set exactly one of vaultToken and vaultTokenMountPath, not both');
      } else if (token !== undefined) {
        auth = { method: 'token', source: 'inline', token };
      } else if (tokenFile !== undefined) {
        auth = { method: 'token', source: 'file', tokenFile };
      } else if (get('vaultToken') === undefined) {
        problems.push('token auth needs exactly one of vaultToken and vaultTokenMountPath');
      }
      break;
    }
    case 'kubernetes': {
      const strays = [...set(TOKEN_FIELDS), ...set(APPROLE_FIELDS)];
      if (strays.length > 0)
        problems.push(`${strays.join(', ')} must not be set with vaultAuthMethod kubernetes`);
      const role = get('vaultKubernetesRole');
      if (role === undefined)
        problems.push('vaultKubernetesRole is required with vaultAuthMethod kubernetes');
      else if (CONTROL_OR_SPACE.test(role))
        problems.push('vaultKubernetesRole must not contain spaces or control characters');
      const mountPath = pathField('vaultKubernetesMountPath', 'kubernetes', false);
      const serviceAccountTokenPath =
        get('vaultServiceAccountTokenPath') ?? DEFAULT_SERVICE_ACCOUNT_TOKEN_PATH;
      if (role !== undefined)
        auth = { method: 'kubernetes', role, mountPath, serviceAccountTokenPath };
      break;
    }
    case 'approle': {
      const strays = [...set(TOKEN_FIELDS), ...set(KUBERNETES_FIELDS)];
      if (strays.length > 0)
        problems.push(`${strays.join(', ')} must not be set with vaultAuthMethod approle`);
      const roleId = credential('vaultAppRoleRoleId');
      if (get('vaultAppRoleRoleId') === undefined)
        problems.push('vaultAppRoleRoleId is required with vaultAuthMethod approle');
      const secretId = credential('vaultAppRoleSecretId');
      const secretIdPath = get('vaultAppRoleSecretIdPath');
      const secretIdGiven = get('vaultAppRoleSecretId') !== undefined;
      const exactlyOne = secretIdGiven !== (secretIdPath !== undefined);
      if (!exactlyOne) {
        problems.push(
          secretIdGiven
            ? 'set exactly one of vaultAppRoleSecretId and vaultAppRoleSecretIdPath, not both'
            : 'vaultAuthMethod approle needs exactly one of vaultAppRoleSecretId and vaultAppRoleSecretIdPath',
        );
      }
      const mountPath = pathField('vaultAppRoleMountPath', 'approle', false);
      if (
        roleId !== undefined &&
        exactlyOne &&
        (secretId !== undefined || secretIdPath !== undefined)
      ) {
        auth = { method: 'approle', roleId, secretId, secretIdPath, mountPath };
      }
      break;
    }
    default:
      problems.push('vaultAuthMethod must be token, kubernetes or approle');
  }

  // KV layout
  const enginePath = pathField('enginePath', 'secret', false);
  const usePrefix = bool('vaultKVUsePrefix', true);
  const kvPrefix = usePrefix ? pathField('vaultKVPrefix', 'dapr', true) : [];
  const versionText = get('vaultKVVersion') ?? '2';
  if (versionText !== '1' && versionText !== '2') problems.push('vaultKVVersion must be 1 or 2');
  const valueType = get('vaultValueType') ?? 'map';
  if (valueType !== 'map' && valueType !== 'text')
    problems.push('vaultValueType must be map or text');
  const namespaceText = get('vaultNamespace');
  let namespace: string | undefined;
  if (namespaceText !== undefined) {
    const parsed = parseConfiguredPath(namespaceText);
    if ('problem' in parsed) problems.push(`vaultNamespace ${parsed.problem}`);
    else if (parsed.segments.length > 0) namespace = parsed.segments.join('/');
  }

  let versionCheckIntervalMs = parseDuration(DEFAULT_VERSION_CHECK_INTERVAL);
  const versionCheckText = get('versionCheckInterval');
  if (versionCheckText !== undefined) {
    try {
      versionCheckIntervalMs = parseDuration(versionCheckText);
    } catch {
      problems.push(
        'versionCheckInterval is not a duration (use Go syntax such as 30s or 5m; 0 turns checks off)',
      );
    }
  }

  if (problems.length > 0 || auth === undefined) {
    throw new WardenError(
      'ERR_SECRET_STORE_CONFIG',
      `invalid ${VAULT_SECRET_STORE_TYPE} metadata: ${problems.join('; ')}`,
      { details: { problems: problems.length } },
    );
  }

  if (skipVerify && address.protocol === 'https:') {
    logger.warn(
      { vaultAddr: address.origin },
      'skipVerify is true: the Vault server certificate is NOT verified',
    );
  }
  if (address.protocol === 'http:' && !isLoopback(address.hostname)) {
    logger.warn(
      { vaultAddr: address.origin },
      'vaultAddr uses plain http to a non-loopback host: the Vault token travels unencrypted',
    );
  }

  return Object.freeze({
    address,
    tls: Object.freeze({
      ca: ca === undefined ? undefined : Object.freeze(ca),
      rejectUnauthorized: !skipVerify,
      serverName: tlsServerName,
    }),
    auth: Object.freeze(auth),
    enginePath,
    kvPrefix,
    kvVersion: versionText === '1' ? 1 : 2,
    valueType: valueType === 'text' ? 'text' : 'map',
    namespace,
    versionCheckIntervalMs,
  });
}
