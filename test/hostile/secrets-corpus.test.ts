import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { SecretsApiServer } from '../../src/secrets/api/secrets-api-server.js';
import { SecretsProblemsError } from '../../src/secrets/problems.js';
import {
  resolveComponents,
  type ResolvedResources,
} from '../../src/secrets/resolve/resolve-components.js';
import { parseSecretsConfiguration } from '../../src/secrets/secrets-configuration.js';
import { readEnv } from '../../src/shared/env.js';
import { rawRequest, type ClientTls } from '../support/https-client.js';
import { bufferLogger } from '../support/log-buffer.js';
import { memoryAfterGc, mebibytes } from '../support/memory.js';
import { createTestCa } from '../support/mtls-test-pki.js';
import { VaultTestServer } from '../support/vault-test-server.js';
import {
  SECRETS_API_CORPUS,
  SECRETS_RESOLVER_CORPUS,
  SEEDED_VALUES,
  type SecretsApiRow,
  type SecretsCapability,
  type SecretsClient,
  type SecretsResolverRow,
} from './secrets-corpus.js';

/** What this harness runs: file, env and Vault stores. Kubernetes-store rows wait for their block. */
const PROVIDED: ReadonlySet<SecretsCapability> = new Set<SecretsCapability>([
  'file',
  'env',
  'vault',
]);

const TD = 'cluster.local';
const MEMORY_REPETITIONS = 10;
/**
 * Stated bounds on growth over MEMORY_REPETITIONS runs of the API corpus (about 450
 * requests, 20 of them making a store read a 2-3 MiB value), measured after a full GC:
 * live memory (JS heap plus Buffers/ArrayBuffers) +8 MiB (keeping one oversized value per request would be 40+ MiB), and process
 * RSS +64 MiB (the allocator keeps freed pages; measured 20-50 MiB here without a GC).
 */
const LIVE_GROWTH_BOUND_BYTES = 8 * 1024 * 1024;
const RSS_GROWTH_BOUND_BYTES = 64 * 1024 * 1024;

const component = (
  name: string,
  type: string,
  metadata: ReadonlyArray<Record<string, unknown>>,
  extra: Record<string, unknown> = {},
): Record<string, unknown> => ({
  apiVersion: 'dapr.io/v1alpha1',
  kind: 'Component',
  metadata: { name },
  spec: { type, version: 'v1', metadata },
  ...extra,
});

describe('secrets hostile-input corpus, over the secrets API (mutual TLS) with file, env and Vault stores', () => {
  let dir: string;
  let vault: VaultTestServer;
  let resources: ResolvedResources;
  let server: SecretsApiServer;
  let port: number;
  const clients: Partial<Record<SecretsClient, ClientTls>> = {};
  const log = bufferLogger('trace');

  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'warden-hostile-secrets-'));
    // Written by hand: an object literal's "__proto__" would set a prototype, not a key.
    await writeFile(
      path.join(dir, 'secrets.json'),
      `{"db-password":"${SEEDED_VALUES.dbPassword}","denied-secret":"${SEEDED_VALUES.denied}","huge":"${'A'.repeat(2 * 1024 * 1024)}","__proto__":"${SEEDED_VALUES.proto}"}`,
    );
    vault = await VaultTestServer.start();
    vault.setKv('secret', 'dapr/db', { password: SEEDED_VALUES.vaultDb });
    vault.setKv('secret', 'dapr/other', { password: SEEDED_VALUES.vaultOther });
    vault.setKv('secret', 'private/admin', { password: SEEDED_VALUES.outsidePrefix });
    vault.setKv('secret', 'big/huge', { v: 'B'.repeat(3 * 1024 * 1024) });
    const vaultMetadata = [
      { name: 'vaultAddr', value: vault.url },
      { name: 'caPem', value: vault.caPem },
      { name: 'vaultToken', value: vault.rootToken },
      { name: 'vaultKVPrefix', value: 'dapr' },
    ];
    const scopes = parseSecretsConfiguration(
      {
        apiVersion: 'dapr.io/v1alpha1',
        kind: 'Configuration',
        spec: {
          secrets: {
            scopes: [
              { storeName: 'files', deniedSecrets: ['denied-secret'] },
              {
                storeName: 'vaultscoped',
                defaultAccess: 'deny',
                allowedSecrets: ['db'],
                deniedSecrets: ['db'],
              },
            ],
          },
        },
      },
      'config',
    ).scopes;
    resources = await resolveComponents({
      manifests: [
        component(
          'files',
          'secretstores.local.file',
          [{ name: 'secretsFile', value: path.join(dir, 'secrets.json') }],
          { scopes: ['allowed-app'] },
        ),
        component('env', 'secretstores.local.env', []),
        component('appenv', 'secretstores.local.env', [{ name: 'prefix', value: 'APP_' }]),
        component('vault', 'secretstores.hashicorp.vault', vaultMetadata),
        component('vaultscoped', 'secretstores.hashicorp.vault', vaultMetadata),
        component('vaultbig', 'secretstores.hashicorp.vault', [
          ...vaultMetadata.filter((m) => m.name !== 'vaultKVPrefix'),
          { name: 'vaultKVPrefix', value: 'big' },
        ]),
      ],
      config: scopes,
      mode: 'standalone',
      env: readEnv({
        DAPR_API_TOKEN: SEEDED_VALUES.daprToken,
        APP_API_TOKEN: SEEDED_VALUES.appToken,
        DB_URL: SEEDED_VALUES.dbUrl,
      }),
      logger: log.logger,
    });
    const ca = await createTestCa();
    const serverCert = await ca.issue({ usage: 'server', dns: ['localhost'], ips: ['127.0.0.1'] });
    for (const app of ['allowed', 'other'] as const) {
      const issued = await ca.issue({
        usage: 'client',
        uris: [`spiffe://${TD}/ns/default/${app}-app`],
      });
      clients[app] = { ca: ca.certPem, cert: issued.certPem, key: issued.keyPem };
    }
    server = new SecretsApiServer({
      stores: resources.stores,
      scopes: resources.scopes,
      transport: {
        kind: 'mtls',
        tls: { key: serverCert.keyPem, cert: serverCert.certPem, ca: ca.certPem },
        trustDomain: TD,
      },
      port: 0,
      logger: log.logger,
    });
    port = (await server.listen()).port;
  }, 60_000);

  afterAll(async () => {
    await server?.close();
    await resources?.close();
    await vault?.close();
    await rm(dir, { recursive: true, force: true });
  });

  const send = (row: SecretsApiRow) =>
    rawRequest(port, row.path, {
      tls: clients[row.client ?? 'allowed'],
      method: row.method ?? 'GET',
    });

  it('has at least 20 API rows and 10 resolver rows, with unique names', () => {
    expect(SECRETS_API_CORPUS.length + SECRETS_RESOLVER_CORPUS.length).toBeGreaterThanOrEqual(20);
    const names = [...SECRETS_API_CORPUS, ...SECRETS_RESOLVER_CORPUS].map((r) => r.name);
    expect(new Set(names).size).toBe(names.length);
  });

  for (const row of SECRETS_API_CORPUS) {
    const test = PROVIDED.has(row.needs) ? it : it.skip;
    test(`answers ${row.expect.status} to ${row.name}`, async () => {
      const res = await send(row);
      expect(res.status).toBe(row.expect.status);
      if ('body' in row.expect) {
        expect(res.body).toEqual(row.expect.body);
        return;
      }
      expect(res.body).toEqual({ errorCode: row.expect.errorCode, message: expect.any(String) });
      if (row.expect.fragment !== undefined)
        expect((res.body as { message: string }).message).toContain(row.expect.fragment);
      const text = JSON.stringify(res.body);
      for (const value of Object.values(SEEDED_VALUES)) expect(text).not.toContain(value);
    });
  }

  it('never asked Vault for a path outside the KV prefix', () => {
    const paths = vault.requestLog.map((r) => r.apiPath);
    expect(paths.length).toBeGreaterThan(0);
    for (const p of paths) {
      expect(p).toMatch(/^(secret\/(data|metadata)\/(dapr|big)(\/|$)|auth\/token\/)/);
    }
  });

  it('never wrote a seeded value or the Vault token into the log, even at trace level', () => {
    const text = log.text();
    for (const value of Object.values(SEEDED_VALUES)) expect(text).not.toContain(value);
    expect(text).not.toContain(vault.rootToken);
    expect(text).not.toContain('AAAAAAAAAAAAAAAA');
  });

  it('still serves a good request afterwards, and RSS stays within the stated bound over repeated corpus runs', async () => {
    const runCorpus = async (): Promise<void> => {
      for (const row of SECRETS_API_CORPUS) if (PROVIDED.has(row.needs)) await send(row);
    };
    await runCorpus();
    const before = memoryAfterGc();
    for (let i = 0; i < MEMORY_REPETITIONS; i++) await runCorpus();
    const after = memoryAfterGc();
    process.stdout.write(
      `secrets API, growth over ${MEMORY_REPETITIONS} corpus runs: heap+external ${mebibytes(after.live - before.live)}, RSS ${mebibytes(after.rss - before.rss)}\n`,
    );
    expect(after.live - before.live).toBeLessThan(LIVE_GROWTH_BOUND_BYTES);
    expect(after.rss - before.rss).toBeLessThan(RSS_GROWTH_BOUND_BYTES);
    const res = await rawRequest(port, '/v1.0/secrets/vault/db', { tls: clients.allowed });
    expect(res).toMatchObject({ status: 200, body: { password: SEEDED_VALUES.vaultDb } });
  }, 120_000);
});

async function prepareRow(row: SecretsResolverRow, dir: string): Promise<unknown[] | undefined> {
  const fill = (text: string): string => text.split('{dir}').join(dir);
  for (const [name, content] of Object.entries(row.files ?? {})) {
    const file = path.join(dir, name);
    await mkdir(path.dirname(file), { recursive: true });
    await writeFile(file, content);
  }
  for (const [name, target] of Object.entries(row.symlinks ?? {})) {
    await symlink(fill(target), path.join(dir, name));
  }
  if (!row.manifests) return undefined;
  return JSON.parse(fill(JSON.stringify(row.manifests))) as unknown[];
}

describe('secrets hostile-input corpus, through the resolver: malformed and hostile manifests fail closed', () => {
  for (const row of SECRETS_RESOLVER_CORPUS) {
    const test = PROVIDED.has(row.needs) ? it : it.skip;
    test(`refuses ${row.name}`, async () => {
      const dir = await mkdtemp(path.join(tmpdir(), 'warden-hostile-resolve-'));
      const log = bufferLogger('trace');
      try {
        const manifests = await prepareRow(row, dir);
        const outcome = await resolveComponents({
          ...(manifests ? { manifests } : { resourcesPath: path.join(dir, 'resources') }),
          mode: 'standalone',
          env: readEnv({ DAPR_API_TOKEN: SEEDED_VALUES.daprToken }),
          logger: log.logger,
        }).then(
          async (resolved) => {
            await resolved.close();
            return null;
          },
          (err: unknown) => err,
        );
        expect(outcome).toBeInstanceOf(SecretsProblemsError);
        const problems = (outcome as SecretsProblemsError).problems;
        // Exactly one problem, the expected one: a second, identical problem is a defect too.
        expect(problems).toHaveLength(1);
        expect(problems[0]).toMatchObject({ code: row.expect.code });
        expect(problems[0]?.message).toContain(row.expect.fragment);
        expect(JSON.stringify(problems)).not.toContain(SEEDED_VALUES.daprToken);
        expect(log.text()).not.toContain(SEEDED_VALUES.daprToken);
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    });
  }
});
