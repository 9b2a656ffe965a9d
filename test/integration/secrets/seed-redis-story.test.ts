import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { mkdir, writeFile } from 'node:fs/promises';
import { parse } from 'yaml';
import path from 'node:path';
import { readEnv } from '../../../src/shared/env.js';
import { resolveComponents } from '../../../src/secrets/resolve/resolve-components.js';
import type { ResolvedComponent } from '../../../src/secrets/resolve/resolve-components.js';
import { KubeApiServer } from '../../support/kube-api-server/index.js';
import { redisCommands, startRedisServer, type RunningRedis } from '../../support/redis-server.js';
import { makeTempDir } from '../../support/temp-directory.js';
import { VaultTestServer } from '../../support/vault-test-server.js';

const REDIS_PASSWORD = 'seed-story-R3dis-pw';
const WRONG_PASSWORD = 'not-the-password';
/** A projected service-account token as Vault's Kubernetes auth would receive it (the test server matches it verbatim). */
const SERVICE_ACCOUNT_JWT = 'eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzeXN0ZW06c2VydmljZWFjY291bnQ6ZGVmYXVsdDpyZWRpcyJ9.seed';

/** The seed article's Component, verbatim apart from the host and the store it reads from. */
function seedComponent(host: string, secretStore: string): string {
  return `apiVersion: dapr.io/v1alpha1
kind: Component
metadata:
  name: redis
spec:
  type: state.redis
  metadata:
  - name: redisHost
    value: ${host}
  - name: redisPassword
    secretKeyRef:
      name: redis
      key: redis-password
auth:
  secretStore: ${secretStore}
`;
}

function metadataValue(component: ResolvedComponent | undefined, name: string): string {
  const value = component?.metadata.find((m) => m.name === name)?.value;
  if (value === undefined) throw new Error(`no ${name}`);
  return value;
}

/** What a state.redis component would do with its resolved metadata: connect and AUTH. */
async function authWithResolvedComponent(component: ResolvedComponent | undefined): Promise<string[]> {
  const host = metadataValue(component, 'redisHost');
  const port = Number(host.split(':')[1]);
  return redisCommands(port, [['AUTH', metadataValue(component, 'redisPassword')], ['PING']]);
}

describe('the seed’s story: a state.redis Component whose password comes from a secret store', () => {
  let redis: RunningRedis;
  let dir: { path: string; remove(): Promise<void> };

  let vault: VaultTestServer;
  let kube: KubeApiServer;
  /** Store Components by case, each in the stores' own files, written in beforeAll. */
  const stores: Record<string, { right: unknown; wrong: unknown }> = {};

  const vaultComponent = (name: string, metadata: Record<string, string>): unknown => ({
    apiVersion: 'dapr.io/v1alpha1',
    kind: 'Component',
    metadata: { name },
    spec: { type: 'secretstores.hashicorp.vault', version: 'v1', metadata: Object.entries(metadata).map(([k, v]) => ({ name: k, value: v })) },
  });

  beforeAll(async () => {
    redis = await startRedisServer({ password: REDIS_PASSWORD });
    dir = await makeTempDir('seed-story');

    // Vault over HTTPS (its own CA), KV v2 at secret/, Dapr's default prefix dapr/.
    vault = await VaultTestServer.start();
    vault.setKv('secret', 'dapr/redis', { 'redis-password': REDIS_PASSWORD });
    vault.setKv('secret', 'wrongpw/redis', { 'redis-password': WRONG_PASSWORD });
    const vaultCa = path.join(dir.path, 'vault-ca.crt');
    await writeFile(vaultCa, vault.caPem);
    const vaultToken = vault.addToken({ policies: ['dapr-read'], ttlSeconds: 3600, renewable: true });
    const jwtFile = path.join(dir.path, 'sa-token');
    await writeFile(jwtFile, SERVICE_ACCOUNT_JWT, { mode: 0o600 });
    vault.addKubernetesRole({ role: 'redis-app', jwt: SERVICE_ACCOUNT_JWT, policies: ['dapr-read'], ttlSeconds: 3600 });
    const tokenAuth = { vaultAddr: vault.url, caCert: vaultCa, vaultToken };
    const kubernetesAuth = {
      vaultAddr: vault.url,
      caCert: vaultCa,
      vaultAuthMethod: 'kubernetes',
      vaultKubernetesRole: 'redis-app',
      vaultServiceAccountTokenPath: jwtFile,
    };
    stores['vault-token'] = {
      right: vaultComponent('vault-token', tokenAuth),
      wrong: vaultComponent('vault-token', { ...tokenAuth, vaultKVPrefix: 'wrongpw' }),
    };
    stores['vault-kubernetes-auth'] = {
      right: vaultComponent('vault-kubernetes-auth', kubernetesAuth),
      wrong: vaultComponent('vault-kubernetes-auth', { ...kubernetesAuth, vaultKVPrefix: 'wrongpw' }),
    };

    // Kubernetes: Secret "redis" (key redis-password) in namespace default; a wrong one in "wrongpw".
    kube = await KubeApiServer.start();
    const readSecrets = 'seed-story-reader-token';
    kube.addToken(readSecrets, { username: 'system:serviceaccount:default:daprd', rules: [{ verbs: ['get', 'list', 'watch'], resources: ['secrets'], apiGroups: [''] }] });
    kube.store.put({ apiVersion: 'v1', kind: 'Secret', metadata: { name: 'redis', namespace: 'default' }, stringData: { 'redis-password': REDIS_PASSWORD } });
    kube.store.put({ apiVersion: 'v1', kind: 'Secret', metadata: { name: 'redis', namespace: 'wrongpw' }, stringData: { 'redis-password': WRONG_PASSWORD } });
    const kubeconfig = path.join(dir.path, 'kubeconfig');
    await writeFile(kubeconfig, kube.kubeconfigYaml(readSecrets), { mode: 0o600 });
    const kubernetesStore = (namespace: string): unknown => ({
      apiVersion: 'dapr.io/v1alpha1',
      kind: 'Component',
      metadata: { name: 'kubernetes' },
      spec: { type: 'secretstores.kubernetes', version: 'v1', metadata: [{ name: 'kubeconfigPath', value: kubeconfig }, { name: 'defaultNamespace', value: namespace }] },
    });
    stores.kubernetes = { right: kubernetesStore('default'), wrong: kubernetesStore('wrongpw') };
  });
  afterAll(async () => {
    await redis?.stop();
    await vault?.close();
    await kube?.close();
    await dir?.remove();
  });

  /** Resolves the seed Component, unchanged, against one store Component, and AUTHs with the result. */
  async function authThrough(storeComponent: unknown, storeName: string): Promise<string[]> {
    const resolved = await resolveComponents({
      manifests: [storeComponent, parse(seedComponent(`127.0.0.1:${redis.port}`, storeName))],
      mode: 'standalone',
      env: readEnv({}),
    });
    try {
      return await authWithResolvedComponent(resolved.components.find((c) => c.name === 'redis'));
    } finally {
      await resolved.close();
    }
  }

  it.each([
    ['Vault over HTTPS, KV v2, token auth', 'vault-token'],
    ['Vault over HTTPS, KV v2, Kubernetes auth', 'vault-kubernetes-auth'],
    ['the Kubernetes API (Secret redis, key redis-password)', 'kubernetes'],
  ])('resolves redisPassword from %s and authenticates against redis-server', async (_what, name) => {
    expect(await authThrough(stores[name]?.right, name)).toEqual(['+OK', '+PONG']);
  });

  it.each([
    ['Vault (token auth)', 'vault-token'],
    ['Vault (Kubernetes auth)', 'vault-kubernetes-auth'],
    ['Kubernetes', 'kubernetes'],
  ])('a wrong password stored in %s is refused by Redis', async (_what, name) => {
    expect(await authThrough(stores[name]?.wrong, name)).toEqual([expect.stringMatching(/^-WRONGPASS/), expect.stringMatching(/^-NOAUTH/)]);
  });

  it('read Vault and Kubernetes through their real endpoints (a Kubernetes login, KV v2 data paths, Secret GETs)', () => {
    const paths = vault.requests().map((r) => `${r.method} ${r.apiPath}`);
    expect(paths).toContain('POST auth/kubernetes/login');
    expect(paths).toContain('GET secret/data/dapr/redis');
    expect(paths).toContain('GET secret/data/wrongpw/redis');
    expect(vault.requests('secret/data/').every((r) => r.status === 200)).toBe(true);
    const secretReads = kube.requests.filter((r) => r.resource === 'secrets' && r.name === 'redis').map((r) => `${r.verb} ${r.namespace} ${r.user} ${r.status}`);
    expect(secretReads).toEqual(['get default system:serviceaccount:default:daprd 200', 'get wrongpw system:serviceaccount:default:daprd 200']);
  });

  it('refuses a client that has not authenticated (the password is really required)', async () => {
    expect(await redisCommands(redis.port, [['PING']])).toEqual([expect.stringMatching(/^-NOAUTH/)]);
  });

  it('resolves redisPassword from the file store and authenticates against redis-server', async () => {
    const resources = path.join(dir.path, 'file-components');
    await writeFile(path.join(dir.path, 'secrets.json'), JSON.stringify({ redis: { 'redis-password': REDIS_PASSWORD } }));
    await mkdir(resources, { recursive: true });
    await writeFile(
      path.join(resources, 'secretstore.yaml'),
      `apiVersion: dapr.io/v1alpha1
kind: Component
metadata:
  name: localsecretstore
spec:
  type: secretstores.local.file
  version: v1
  metadata:
  - name: secretsFile
    value: ${path.join(dir.path, 'secrets.json')}
  - name: multiValued
    value: "true"
`,
    );
    await writeFile(path.join(resources, 'redis.yaml'), seedComponent(`127.0.0.1:${redis.port}`, 'localsecretstore'));
    const resolved = await resolveComponents({ resourcesPath: resources, mode: 'standalone', env: readEnv({}) });
    try {
      const component = resolved.components.find((c) => c.name === 'redis');
      expect(await authWithResolvedComponent(component)).toEqual(['+OK', '+PONG']);
    } finally {
      await resolved.close();
    }
  });

  it('resolves redisPassword from the env store and authenticates against redis-server', async () => {
    // the env store has one key per secret, named like the secret: key "redis" in secret "redis"
    const manifests = [
      { apiVersion: 'dapr.io/v1alpha1', kind: 'Component', metadata: { name: 'envstore' }, spec: { type: 'secretstores.local.env', version: 'v1', metadata: [{ name: 'prefix', value: 'APP_SECRET_' }] } },
      {
        apiVersion: 'dapr.io/v1alpha1',
        kind: 'Component',
        metadata: { name: 'redis' },
        spec: {
          type: 'state.redis',
          metadata: [
            { name: 'redisHost', value: `127.0.0.1:${redis.port}` },
            { name: 'redisPassword', secretKeyRef: { name: 'redis' } },
          ],
        },
        auth: { secretStore: 'envstore' },
      },
    ];
    const resolved = await resolveComponents({ manifests, mode: 'standalone', env: readEnv({ APP_SECRET_redis: REDIS_PASSWORD }) });
    try {
      expect(await authWithResolvedComponent(resolved.components.find((c) => c.name === 'redis'))).toEqual(['+OK', '+PONG']);
    } finally {
      await resolved.close();
    }
  });

  it('a wrong password in the env store is refused by Redis', async () => {
    const manifests = [
      { apiVersion: 'dapr.io/v1alpha1', kind: 'Component', metadata: { name: 'envstore' }, spec: { type: 'secretstores.local.env', version: 'v1', metadata: [{ name: 'prefix', value: 'APP_SECRET_' }] } },
      {
        apiVersion: 'dapr.io/v1alpha1',
        kind: 'Component',
        metadata: { name: 'redis' },
        spec: {
          type: 'state.redis',
          metadata: [
            { name: 'redisHost', value: `127.0.0.1:${redis.port}` },
            { name: 'redisPassword', secretKeyRef: { name: 'redis' } },
          ],
        },
        auth: { secretStore: 'envstore' },
      },
    ];
    const resolved = await resolveComponents({ manifests, mode: 'standalone', env: readEnv({ APP_SECRET_redis: WRONG_PASSWORD }) });
    try {
      expect(await authWithResolvedComponent(resolved.components.find((c) => c.name === 'redis'))).toEqual([
        expect.stringMatching(/^-WRONGPASS/),
        expect.stringMatching(/^-NOAUTH/),
      ]);
    } finally {
      await resolved.close();
    }
  });

  it('a wrong password stored in the file store is refused by Redis', async () => {
    await writeFile(path.join(dir.path, 'wrong.json'), JSON.stringify({ redis: { 'redis-password': WRONG_PASSWORD } }));
    const manifests = [
      {
        apiVersion: 'dapr.io/v1alpha1',
        kind: 'Component',
        metadata: { name: 'wrongstore' },
        spec: { type: 'secretstores.local.file', metadata: [{ name: 'secretsFile', value: path.join(dir.path, 'wrong.json') }, { name: 'multiValued', value: 'true' }] },
      },
    ];
    const resolved = await resolveComponents({
      manifests: [...manifests, parse(seedComponent(`127.0.0.1:${redis.port}`, 'wrongstore'))],
      mode: 'standalone',
      env: readEnv({}),
    });
    try {
      expect(await authWithResolvedComponent(resolved.components.find((c) => c.name === 'redis'))).toEqual([
        expect.stringMatching(/^-WRONGPASS/),
        expect.stringMatching(/^-NOAUTH/),
      ]);
    } finally {
      await resolved.close();
    }
  });
});
