import { promises as fs } from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { describe, it } from '@jest/globals';
import { describeSecretStoreConformance } from '../../../conformance/secret-store-conformance.js';
import {
  CONFORMANCE_MULTI_KEY_SECRETS,
  CONFORMANCE_SINGLE_KEY_SECRETS,
} from '../../../../src/secrets/secret-store.js';
import { readEnv } from '../../../../src/shared/env.js';
import { silentLogger } from '../../../../src/shared/logger.js';
import { systemClock } from '../../../../src/shared/clock.js';
import { VaultClient } from '../../../../src/secrets/stores/vault/vault-client.js';
import { parseConfiguredPath } from '../../../../src/secrets/stores/vault/vault-path.js';
import { VaultTestServer } from '../../../support/vault-test-server.js';
import {
  createStore,
  makeTempDir,
  seedConformanceSecrets,
  testContext,
} from '../../../support/vault-store-fixtures.js';

const context = testContext(silentLogger, systemClock);

describeSecretStoreConformance('hashicorp.vault, KV v2, token auth, HTTPS with caPem', async () => {
  const server = await VaultTestServer.start();
  seedConformanceSecrets(server);
  const token = server.addToken({ ttlSeconds: 3600 });
  const store = await createStore(
    { vaultAddr: server.url, caPem: server.caPem, vaultToken: token },
    context,
  );
  return { store, cleanup: () => server.close() };
});

describeSecretStoreConformance(
  'hashicorp.vault, KV v1 at a custom engine path and prefix',
  async () => {
    const server = await VaultTestServer.start();
    server.mountKv('kv-v1', 1);
    seedConformanceSecrets(server, { mount: 'kv-v1', prefix: 'apps/team' });
    const store = await createStore(
      {
        vaultAddr: server.url,
        caPem: server.caPem,
        vaultToken: server.addToken(),
        vaultKVVersion: '1',
        enginePath: 'kv-v1',
        vaultKVPrefix: 'apps/team',
      },
      context,
    );
    return { store, cleanup: () => server.close() };
  },
);

describeSecretStoreConformance('hashicorp.vault, Kubernetes auth', async () => {
  const server = await VaultTestServer.start();
  seedConformanceSecrets(server);
  const dir = await makeTempDir('k8s');
  const jwtPath = path.join(dir, 'token');
  await fs.writeFile(jwtPath, 'eyJhbGciOiJSUzI1NiJ9.conformance-service-account.sig\n');
  server.addKubernetesRole({
    role: 'warden',
    jwt: 'eyJhbGciOiJSUzI1NiJ9.conformance-service-account.sig',
    ttlSeconds: 600,
  });
  const store = await createStore(
    {
      vaultAddr: server.url,
      caPem: server.caPem,
      vaultAuthMethod: 'kubernetes',
      vaultKubernetesRole: 'warden',
      vaultServiceAccountTokenPath: jwtPath,
    },
    context,
  );
  return {
    store,
    cleanup: async () => {
      await server.close();
      await fs.rm(dir, { recursive: true, force: true });
    },
  };
});

describeSecretStoreConformance('hashicorp.vault, AppRole auth with a secret ID file', async () => {
  const server = await VaultTestServer.start();
  seedConformanceSecrets(server);
  const dir = await makeTempDir('approle');
  const secretIdPath = path.join(dir, 'secret-id');
  await fs.writeFile(secretIdPath, 'c0nformance-secret-id');
  server.addAppRole({
    roleId: 'role-1234',
    secretId: 'c0nformance-secret-id',
    mount: 'approle-apps',
  });
  const store = await createStore(
    {
      vaultAddr: server.url,
      caPem: server.caPem,
      vaultAuthMethod: 'approle',
      vaultAppRoleRoleId: 'role-1234',
      vaultAppRoleSecretIdPath: secretIdPath,
      vaultAppRoleMountPath: 'approle-apps',
    },
    context,
  );
  return {
    store,
    cleanup: async () => {
      await server.close();
      await fs.rm(dir, { recursive: true, force: true });
    },
  };
});

describeSecretStoreConformance('hashicorp.vault, inside a Vault namespace', async () => {
  const server = await VaultTestServer.start();
  server.mountKv('secret', 2, 'team-a/apps');
  seedConformanceSecrets(server, { namespace: 'team-a/apps' });
  // Decoys with the same names in the root namespace: reading them would fail the suite.
  server.setKv('secret', 'dapr/api-key', { 'api-key': 'root-namespace-decoy' });
  const token = server.addToken({ namespace: 'team-a/apps' });
  const store = await createStore(
    {
      vaultAddr: server.url,
      caPem: server.caPem,
      vaultToken: token,
      vaultNamespace: 'team-a/apps/',
    },
    context,
  );
  return { store, cleanup: () => server.close() };
});

// The same suite against a real Vault when the environment names one.
const env = readEnv();
const realToken = env.raw.VAULT_TOKEN;
if (env.vaultAddr !== undefined && realToken !== undefined && realToken !== '') {
  const realAddr = env.vaultAddr;
  describeSecretStoreConformance(`hashicorp.vault, the real Vault at ${realAddr}`, async () => {
    const mountText = env.raw.WARDEN_VAULT_KV_MOUNT ?? 'secret';
    const mount = parseConfiguredPath(mountText);
    if ('problem' in mount) throw new Error(`WARDEN_VAULT_KV_MOUNT ${mount.problem}`);
    const prefix = `warden-conformance-${randomBytes(4).toString('hex')}`;
    const tlsMetadata: Record<string, string> = {};
    if (env.raw.VAULT_CACERT) tlsMetadata.caCert = env.raw.VAULT_CACERT;
    if (env.raw.VAULT_CAPATH) tlsMetadata.caPath = env.raw.VAULT_CAPATH;
    if (env.raw.VAULT_SKIP_VERIFY === 'true' || env.raw.VAULT_SKIP_VERIFY === '1')
      tlsMetadata.skipVerify = 'true';
    if (env.raw.VAULT_TLS_SERVER_NAME) tlsMetadata.tlsServerName = env.raw.VAULT_TLS_SERVER_NAME;
    const namespace = env.raw.VAULT_NAMESPACE;
    const metadata: Record<string, string> = {
      vaultAddr: realAddr,
      vaultToken: realToken,
      enginePath: mountText,
      vaultKVPrefix: prefix,
      ...tlsMetadata,
      ...(namespace ? { vaultNamespace: namespace } : {}),
    };
    // Seed through our own client with the same TLS settings the store will use.
    const { parseVaultMetadata } =
      await import('../../../../src/secrets/stores/vault/vault-config.js');
    const config = await parseVaultMetadata(metadata, silentLogger);
    const seeder = new VaultClient({
      address: config.address,
      namespace: config.namespace,
      tls: config.tls,
      logger: silentLogger,
    });
    const names = Object.entries({
      ...CONFORMANCE_SINGLE_KEY_SECRETS,
      ...CONFORMANCE_MULTI_KEY_SECRETS,
    });
    for (const [name, data] of names) {
      await seeder.request({
        method: 'POST',
        path: [...mount.segments, 'data', prefix, name],
        body: { data },
        token: realToken,
        subject: `seeding ${name}`,
      });
    }
    const store = await createStore(metadata, context);
    return {
      store,
      cleanup: async () => {
        for (const [name] of names) {
          await seeder
            .request({
              method: 'DELETE',
              path: [...mount.segments, 'metadata', prefix, name],
              token: realToken,
              subject: `cleanup ${name}`,
            })
            .catch(() => undefined);
        }
        seeder.close();
      },
    };
  });
} else {
  describe('SecretStore conformance: hashicorp.vault, a real Vault', () => {
    it.skip('runs only when VAULT_ADDR and VAULT_TOKEN are set (KV v2 mount from WARDEN_VAULT_KV_MOUNT, default "secret")', () => {
      // Skipped on purpose; the note below is printed once per run.
    });
  });
  process.stdout.write(
    'note: real-Vault conformance skipped (set VAULT_ADDR and VAULT_TOKEN to run it)\n',
  );
}
