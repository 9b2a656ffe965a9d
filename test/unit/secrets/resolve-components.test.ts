import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { stringify } from 'yaml';
import { readEnv } from '../../../src/shared/env.js';
import { SECRET_STORE_TYPES } from '../../../src/secrets/store-registry.js';
import { resolveComponents, type ResolvedResources } from '../../../src/secrets/resolve/resolve-components.js';
import { formatResolvedComponents, MASK } from '../../../src/secrets/resolve/render-resolved.js';
import { SecretsProblemsError, type SecretsProblem } from '../../../src/secrets/problems.js';
import { writeFileAtomic } from '../../../src/shared/atomic-file.js';
import { parse } from 'yaml';
import { memoryStoreRegistration } from '../../support/memory-secret-store.js';
import { makeTempDir } from '../../support/temp-directory.js';
import { waitFor } from '../../support/wait-for.js';

type Item = { name: string; value?: unknown; secretKeyRef?: { name: string; key?: string }; envRef?: string };

function component(name: string, type: string, metadata: Item[], extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { apiVersion: 'dapr.io/v1alpha1', kind: 'Component', metadata: { name }, spec: { type, version: 'v1', metadata }, ...extra };
}

const redis = (store: string | undefined, ref: { name: string; key?: string } = { name: 'redis', key: 'redis-password' }) =>
  component(
    'redis',
    'state.redis',
    [
      { name: 'redisHost', value: 'localhost:6379' },
      { name: 'redisPassword', secretKeyRef: ref },
    ],
    store === undefined ? {} : { auth: { secretStore: store } },
  );

async function problemsOf(promise: Promise<ResolvedResources>): Promise<SecretsProblem[]> {
  try {
    const resolved = await promise;
    await resolved.close();
  } catch (err) {
    if (err instanceof SecretsProblemsError) return [...err.problems];
    throw err;
  }
  throw new Error('resolution succeeded but was expected to fail');
}

/** The built-in registry minus the real Kubernetes store, so a test can stand in for it. */
const withoutKubernetes = SECRET_STORE_TYPES.filter((entry) => entry.type !== 'secretstores.kubernetes');

describe('resolveComponents', () => {
  let dir: { path: string; remove(): Promise<void> };
  let secretsFile: string;
  const env = readEnv({ REDIS_PASSWORD_ENV: 'pw-from-env', MYAPP_redis: 'pw-from-prefixed-env', DAPR_API_TOKEN: 'x' });
  const fileStore = (name = 'localsecretstore', extra: Record<string, unknown> = {}) =>
    component(name, 'secretstores.local.file', [{ name: 'secretsFile', value: secretsFile }, { name: 'multiValued', value: true }], extra);

  beforeAll(async () => {
    dir = await makeTempDir('resolve');
    secretsFile = path.join(dir.path, 'secrets.json');
    await writeFile(secretsFile, JSON.stringify({ redis: { 'redis-password': 'file-pw', user: 'u' }, token: 'tkn' }));
  });
  afterAll(async () => {
    await dir.remove();
  });

  it('resolves the seed’s redis Component from the file store', async () => {
    const resolved = await resolveComponents({ manifests: [fileStore(), redis('localsecretstore')], mode: 'standalone', env });
    try {
      const redisResolved = resolved.components.find((c) => c.name === 'redis');
      expect(redisResolved?.metadata).toEqual([
        { name: 'redisHost', value: 'localhost:6379', source: 'value' },
        {
          name: 'redisPassword',
          value: 'file-pw',
          source: 'secretKeyRef',
          secretKeyRef: { name: 'redis', key: 'redis-password' },
          store: 'localsecretstore',
        },
      ]);
      expect(resolved.stores.names()).toEqual(['localsecretstore']);
    } finally {
      await resolved.close();
    }
  });

  it('uses the secret name as the key when key is omitted', async () => {
    const resolved = await resolveComponents({
      manifests: [component('env', 'secretstores.local.env', [{ name: 'prefix', value: 'MYAPP_' }]), redis('env', { name: 'redis' })],
      mode: 'standalone',
      env,
    });
    expect(resolved.components.find((c) => c.name === 'redis')?.metadata[1]?.value).toBe('pw-from-prefixed-env');
    await resolved.close();
  });

  it('resolves envRef from the environment and refuses reserved or unset variables', async () => {
    const ok = await resolveComponents({
      manifests: [component('c', 'state.redis', [{ name: 'redisPassword', envRef: 'REDIS_PASSWORD_ENV' }])],
      mode: 'standalone',
      env,
    });
    expect(ok.components[0]?.metadata[0]).toEqual({ name: 'redisPassword', value: 'pw-from-env', source: 'envRef', envRef: 'REDIS_PASSWORD_ENV' });
    const problems = await problemsOf(
      resolveComponents({
        manifests: [component('c', 'state.redis', [{ name: 'a', envRef: 'DAPR_API_TOKEN' }, { name: 'b', envRef: 'NOT_SET_X' }])],
        mode: 'standalone',
        env,
      }),
    );
    expect(problems.map((p) => [p.field, p.message])).toEqual([
      ['a', expect.stringMatching(/reserved/)],
      ['b', expect.stringMatching(/not set/)],
    ]);
  });

  it('fails closed on a missing secret, naming component, field, store and secret but never a value', async () => {
    const problems = await problemsOf(
      resolveComponents({ manifests: [fileStore(), redis('localsecretstore', { name: 'nope', key: 'k' })], mode: 'standalone', env }),
    );
    expect(problems).toEqual([
      expect.objectContaining({
        code: 'ERR_SECRET_REF_UNRESOLVED',
        component: 'redis',
        field: 'redisPassword',
        store: 'localsecretstore',
        secret: 'nope',
        key: 'k',
        message: expect.stringMatching(/ERR_SECRET_NOT_FOUND/),
      }),
    ]);
  });

  it('fails on a key the secret does not have', async () => {
    const problems = await problemsOf(
      resolveComponents({ manifests: [fileStore(), redis('localsecretstore', { name: 'redis', key: 'absent' })], mode: 'standalone', env }),
    );
    expect(problems).toEqual([expect.objectContaining({ secret: 'redis', key: 'absent', message: 'the secret has no key "absent"' })]);
    expect(JSON.stringify(problems)).not.toContain('file-pw');
  });

  it('fails on an unknown store, and on a store name that is not a secret store', async () => {
    expect(await problemsOf(resolveComponents({ manifests: [redis('vault')], mode: 'standalone', env }))).toEqual([
      expect.objectContaining({ code: 'ERR_SECRET_REF_UNRESOLVED', store: 'vault', message: expect.stringMatching(/not found/) }),
    ]);
    const other = component('statestore', 'state.in-memory', []);
    expect(await problemsOf(resolveComponents({ manifests: [other, redis('statestore')], mode: 'standalone', env }))).toEqual([
      expect.objectContaining({ store: 'statestore', message: expect.stringMatching(/is not a secret store/) }),
    ]);
  });

  it('has no default store in standalone mode and names what to set', async () => {
    expect(await problemsOf(resolveComponents({ manifests: [fileStore(), redis(undefined)], mode: 'standalone', env }))).toEqual([
      expect.objectContaining({ code: 'ERR_SECRET_REF_UNRESOLVED', component: 'redis', field: 'redisPassword', message: expect.stringMatching(/auth\.secretStore/) }),
    ]);
  });

  it('defaults to the built-in "kubernetes" store in Kubernetes mode', async () => {
    const k8s = memoryStoreRegistration('secretstores.kubernetes');
    // the built-in store is created without metadata, so it holds nothing: the problem shows it was asked
    const problems = await problemsOf(resolveComponents({ manifests: [redis(undefined)], mode: 'kubernetes', env, registry: [...withoutKubernetes, k8s] }));
    expect(k8s.built).toEqual(['kubernetes']);
    expect(problems).toEqual([expect.objectContaining({ component: 'redis', store: 'kubernetes', secret: 'redis', message: expect.stringMatching(/ERR_SECRET_NOT_FOUND/) })]);
    expect(k8s.closed).toEqual(['kubernetes']);
  });

  it('uses a declared "kubernetes" Component in Kubernetes mode, and says when the type is unavailable', async () => {
    const k8s = memoryStoreRegistration('secretstores.kubernetes');
    const seeded = component('kubernetes', 'secretstores.kubernetes', [{ name: 'seed', value: JSON.stringify({ redis: { 'redis-password': 'k8s-pw' } }) }]);
    const resolved = await resolveComponents({ manifests: [seeded, redis(undefined)], mode: 'kubernetes', env, registry: [...withoutKubernetes, k8s] });
    expect(resolved.components.find((c) => c.name === 'redis')?.metadata[1]?.value).toBe('k8s-pw');
    await resolved.close();
    expect(await problemsOf(resolveComponents({ manifests: [redis(undefined)], mode: 'kubernetes', env, registry: withoutKubernetes }))).toEqual([
      expect.objectContaining({ store: 'kubernetes', path: 'spec.type', message: expect.stringMatching(/secretstores\.kubernetes" is not supported/) }),
      expect.objectContaining({ component: 'redis', store: 'kubernetes', message: expect.stringMatching(/did not start/) }),
    ]);
  });

  it('starts stores in dependency order whatever order the manifests come in', async () => {
    // the file store's path comes from the env store
    const pathEnv = readEnv({ SECRETS_PATH: secretsFile });
    const chained = component('chained', 'secretstores.local.file', [{ name: 'secretsFile', secretKeyRef: { name: 'SECRETS_PATH' } }, { name: 'multiValued', value: 'true' }], {
      auth: { secretStore: 'env' },
    });
    const resolved = await resolveComponents({
      manifests: [redis('chained'), chained, component('env', 'secretstores.local.env', [])],
      mode: 'standalone',
      env: pathEnv,
    });
    expect(resolved.components.map((c) => c.name)).toEqual(['redis', 'chained', 'env']);
    expect(resolved.components[0]?.metadata[1]?.value).toBe('file-pw');
    await resolved.close();
  });

  it('refuses a cycle of secret stores, naming it, and fails what depends on it', async () => {
    const mem = memoryStoreRegistration('secretstores.test.memory');
    const store = (name: string, from: string) =>
      component(name, 'secretstores.test.memory', [{ name: 'token', secretKeyRef: { name: 't' } }], { auth: { secretStore: from } });
    const problems = await problemsOf(
      resolveComponents({
        manifests: [store('a', 'b'), store('b', 'a'), store('self', 'self'), store('downstream', 'a'), redis('downstream')],
        mode: 'standalone',
        env,
        registry: [mem],
      }),
    );
    expect(problems.filter((p) => p.code === 'ERR_SECRET_STORE_CYCLE').map((p) => p.message)).toEqual([
      'secret stores reference each other in a cycle: "a" → "b" → "a"',
      'secret stores reference each other in a cycle: "self" → "self"',
    ]);
    expect(problems).toContainEqual(expect.objectContaining({ component: 'downstream', store: 'a', message: expect.stringMatching(/did not start/) }));
    expect(mem.built).toEqual([]);
  });

  it('collects every problem at once and closes every store it started', async () => {
    const mem = memoryStoreRegistration('secretstores.test.memory');
    const good = component('good', 'secretstores.test.memory', [{ name: 'seed', value: JSON.stringify({ s: { s: 'v' } }) }]);
    const problems = await problemsOf(
      resolveComponents({
        manifests: [
          good,
          component('a', 'state.redis', [{ name: 'p', secretKeyRef: { name: 'missing1' } }], { auth: { secretStore: 'good' } }),
          component('b', 'state.redis', [{ name: 'p', secretKeyRef: { name: 'missing2' } }], { auth: { secretStore: 'good' } }),
          component('c', 'secretstores.azure.keyvault', []),
          component('d', 'secretstores.test.memory', [{ name: 'cacheTTL', value: 'soon' }]),
          { kind: 'Component', metadata: { name: 'e' } },
        ],
        mode: 'standalone',
        env,
        registry: [mem],
      }),
    );
    expect(problems.map((p) => p.component ?? p.source)).toEqual(['manifests[5]', 'manifests[5]', 'c', 'd', 'a', 'b']);
    expect(mem.built).toEqual(['good']);
    expect(mem.closed).toEqual(['good']);
  });

  it('passes resolved metadata to the store factory', async () => {
    const mem = memoryStoreRegistration('secretstores.test.memory');
    const resolved = await resolveComponents({
      manifests: [fileStore(), component('m', 'secretstores.test.memory', [{ name: 'token', secretKeyRef: { name: 'token' } }, { name: 'n', value: 3 }], { auth: { secretStore: 'localsecretstore' } })],
      mode: 'standalone',
      env,
      registry: [...SECRET_STORE_TYPES, mem],
    });
    expect(mem.metadataSeen.m).toEqual({ token: 'tkn', n: '3' });
    await resolved.close();
  });

  it('loads from a resources directory and a Configuration file', async () => {
    const resources = path.join(dir.path, 'resources');
    await mkdir(resources, { recursive: true });
    await writeFile(path.join(resources, 'all.yaml'), [fileStore(), redis('localsecretstore')].map((d) => stringify(d)).join('---\n'));
    const config = path.join(dir.path, 'config.yaml');
    await writeFile(config, stringify({ apiVersion: 'dapr.io/v1alpha1', kind: 'Configuration', metadata: { name: 'c' }, spec: { secrets: { scopes: [{ storeName: 'localsecretstore', defaultAccess: 'deny' }] } } }));
    const resolved = await resolveComponents({ resourcesPath: resources, config, mode: 'standalone', env });
    expect(resolved.components.map((c) => c.component.source)).toEqual([`${path.join(resources, 'all.yaml')}#1`, `${path.join(resources, 'all.yaml')}#2`]);
    expect(resolved.scopes.get('localsecretstore')?.defaultAccess).toBe('deny');
    await resolved.close();
  });

  it('prints the manifests in their own shape with values masked unless revealed', async () => {
    const resolved = await resolveComponents({ manifests: [fileStore(), redis('localsecretstore')], mode: 'standalone', env });
    const masked = formatResolvedComponents(resolved.components, { reveal: false, output: 'yaml' });
    expect(masked).not.toContain('file-pw');
    const docs = masked.split('---\n').map((d) => parse(d) as { spec: { metadata: Item[] } });
    expect(docs[1]?.spec.metadata).toEqual([
      { name: 'redisHost', value: 'localhost:6379' },
      { name: 'redisPassword', value: MASK, secretKeyRef: { name: 'redis', key: 'redis-password' } },
    ]);
    const revealed = JSON.parse(formatResolvedComponents(resolved.components, { reveal: true, output: 'json' })) as Array<{ spec: { metadata: Item[] } }>;
    expect(revealed[1]?.spec.metadata[1]?.value).toBe('file-pw');
    await resolved.close();
  });

  it('re-reads referenced secrets on refresh after the file store reloads', async () => {
    const file = path.join(dir.path, 'refresh.json');
    await writeFile(file, JSON.stringify({ redis: { 'redis-password': 'one' } }));
    const store = component('s', 'secretstores.local.file', [{ name: 'secretsFile', value: file }, { name: 'multiValued', value: 'true' }]);
    const resolved = await resolveComponents({ manifests: [store, redis('s')], mode: 'standalone', env });
    await writeFileAtomic(file, JSON.stringify({ redis: { 'redis-password': 'two' } }));
    await waitFor(async () => ((await resolved.refresh())[1]?.metadata[1]?.value === 'two' ? true : undefined), 5000, 'refresh');
    await resolved.close();
  });
});
