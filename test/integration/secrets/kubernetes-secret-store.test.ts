import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import * as k8s from '@kubernetes/client-node';
import {
  CONFORMANCE_MULTI_KEY_SECRETS,
  CONFORMANCE_SINGLE_KEY_SECRETS,
} from '../../../src/secrets/secret-store.js';
import {
  createKubernetesSecretStore,
  type KubernetesSecretStore,
} from '../../../src/secrets/stores/kubernetes/index.js';
import { systemClock } from '../../../src/shared/clock.js';
import { readEnv } from '../../../src/shared/env.js';
import { loadKubeConfig } from '../../../src/shared/kube-client.js';
import { WardenError } from '../../../src/shared/errors.js';
import { createLogger, type Logger } from '../../../src/shared/logger.js';
import { describeSecretStoreConformance } from '../../conformance/secret-store-conformance.js';
import { KubeApiServer, type AccessRule } from '../../support/kube-api-server/index.js';
import { waitUntil } from '../../support/wait-for.js';

/** Every log line any store in this file writes; the last test greps it for tokens and values. */
const logLines: string[] = [];
const logger: Logger = createLogger({
  level: 'debug',
  destination: { write: (line: string) => void logLines.push(line) },
});
const tokensUsed: string[] = [];

function newToken(label: string): string {
  const token = `${label}-${randomBytes(12).toString('hex')}`;
  tokensUsed.push(token);
  return token;
}

const READ_SECRETS = (namespaces?: string[]): AccessRule => ({
  verbs: ['get', 'list', 'watch'],
  resources: ['secrets'],
  apiGroups: [''],
  ...(namespaces ? { namespaces } : {}),
});

function seed(server: KubeApiServer, namespace: string): void {
  for (const [name, data] of Object.entries({
    ...CONFORMANCE_SINGLE_KEY_SECRETS,
    ...CONFORMANCE_MULTI_KEY_SECRETS,
  })) {
    server.store.put({
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name, namespace },
      stringData: { ...data },
    });
  }
}

async function codeOf(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (err) {
    return err instanceof WardenError ? err.code : `non-WardenError: ${String(err)}`;
  }
  return 'resolved';
}

async function errorOf(promise: Promise<unknown>): Promise<WardenError> {
  try {
    await promise;
  } catch (err) {
    if (err instanceof WardenError) return err;
    throw err;
  }
  throw new Error('expected a WardenError');
}

interface Harness {
  readonly server: KubeApiServer;
  readonly dir: string;
  kubeconfig(token: string): Promise<string>;
  close(): Promise<void>;
}

async function harness(): Promise<Harness> {
  const server = await KubeApiServer.start({ bookmarkIntervalMs: 200 });
  const dir = await mkdtemp(join(tmpdir(), 'warden-kube-store-'));
  let n = 0;
  return {
    server,
    dir,
    async kubeconfig(token: string): Promise<string> {
      n += 1;
      const path = join(dir, `kubeconfig-${n}.yaml`);
      await writeFile(path, server.kubeconfigYaml(token), { mode: 0o600 });
      return path;
    },
    async close(): Promise<void> {
      await server.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

function makeStore(
  metadata: Record<string, string>,
  env: Record<string, string> = {},
  extra: { sleep?: (ms: number) => Promise<void> } = {},
): KubernetesSecretStore {
  return createKubernetesSecretStore(metadata, {
    logger,
    clock: systemClock,
    env: readEnv(env),
    ...extra,
  });
}

for (const cacheMode of ['none', 'watch'] as const) {
  describeSecretStoreConformance(
    `secretstores.kubernetes (cacheMode ${cacheMode}) against the Kubernetes API test server`,
    async () => {
      const h = await harness();
      const token = newToken('conformance');
      h.server.addToken(token, {
        username: 'system:serviceaccount:warden:secrets',
        rules: [READ_SECRETS(['warden-conformance'])],
      });
      seed(h.server, 'warden-conformance');
      const store = makeStore({
        kubeconfigPath: await h.kubeconfig(token),
        defaultNamespace: 'warden-conformance',
        cacheMode,
      });
      await store.whenReady();
      return { store, cleanup: () => h.close() };
    },
  );
}

const realCluster = readEnv().kubeconfig;
if (realCluster === undefined) {
  console.info(
    'KUBECONFIG is not set: the secretstores.kubernetes conformance suite against a real cluster is skipped.',
  );
  describe('SecretStore conformance: secretstores.kubernetes against a real cluster', () => {
    it.skip('runs only when KUBECONFIG points at a cluster', () => undefined);
  });
} else {
  for (const cacheMode of ['none', 'watch'] as const) {
    describeSecretStoreConformance(
      `secretstores.kubernetes (cacheMode ${cacheMode}) against the cluster in KUBECONFIG`,
      async () => {
        const env = readEnv();
        const admin = loadKubeConfig({ inCluster: false, kubeconfigEnv: env.kubeconfig });
        const core = admin.makeApiClient(k8s.CoreV1Api);
        const namespace = `warden-conformance-${randomBytes(4).toString('hex')}`;
        await core.createNamespace({
          body: {
            metadata: {
              name: namespace,
              labels: { 'app.kubernetes.io/managed-by': 'warden-tests' },
            },
          },
        });
        for (const [name, data] of Object.entries({
          ...CONFORMANCE_SINGLE_KEY_SECRETS,
          ...CONFORMANCE_MULTI_KEY_SECRETS,
        })) {
          await core.createNamespacedSecret({
            namespace,
            body: { metadata: { name }, stringData: { ...data } },
          });
        }
        const store = createKubernetesSecretStore(
          { defaultNamespace: namespace, cacheMode },
          { logger, clock: systemClock, env: readEnv({ KUBECONFIG: env.kubeconfig as string }) },
        );
        await store.whenReady();
        return {
          store,
          cleanup: async () => {
            await core.deleteNamespace({ name: namespace });
          },
        };
      },
    );
  }
}

describe('secretstores.kubernetes behaviour against the Kubernetes API test server', () => {
  let h: Harness;
  let readerConfig: string;

  beforeAll(async () => {
    h = await harness();
    const token = newToken('reader');
    h.server.addToken(token, {
      username: 'system:serviceaccount:warden:reader',
      rules: [READ_SECRETS(['ns-request', 'ns-env', 'ns-default', 'cached', 'elsewhere'])],
    });
    readerConfig = await h.kubeconfig(token);
    for (const ns of ['ns-request', 'ns-env', 'ns-default']) {
      h.server.store.put({
        apiVersion: 'v1',
        kind: 'Secret',
        metadata: { name: 'which', namespace: ns },
        stringData: { from: ns },
      });
    }
    h.server.store.put({
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: 'locked', namespace: 'locked' },
      stringData: { k: 'locked-value' },
    });
  });
  afterAll(async () => {
    await h.close();
  });

  describe('namespace of a request', () => {
    it.each([
      [
        'the request metadata namespace over NAMESPACE and defaultNamespace',
        { namespace: 'ns-request' },
        { NAMESPACE: 'ns-env' },
        'ns-default',
        'ns-request',
      ],
      ['NAMESPACE over defaultNamespace', {}, { NAMESPACE: 'ns-env' }, 'ns-default', 'ns-env'],
      ['defaultNamespace when neither is given', {}, {}, 'ns-default', 'ns-default'],
      [
        'NAMESPACE when an empty namespace is requested',
        { namespace: '' },
        { NAMESPACE: 'ns-env' },
        'ns-default',
        'ns-env',
      ],
    ])(
      'uses %s',
      async (
        _what,
        requestMetadata: Record<string, string>,
        env: Record<string, string>,
        defaultNamespace,
        expected,
      ) => {
        const store = makeStore({ kubeconfigPath: readerConfig, defaultNamespace }, env);
        try {
          expect(await store.get('which', requestMetadata)).toEqual({ from: expected });
          expect(Object.keys(await store.bulkGet(requestMetadata))).toEqual(['which']);
        } finally {
          await store.close();
        }
      },
    );

    it('refuses a request when no namespace is known at all', async () => {
      const store = makeStore({ kubeconfigPath: readerConfig });
      try {
        expect(await codeOf(store.get('which'))).toBe('ERR_SECRET_STORE_CONFIG');
      } finally {
        await store.close();
      }
    });
  });

  describe('names are checked before any request is made', () => {
    it.each([
      ['a path traversal', '../which', {}],
      ['a slash', 'a/which', {}],
      ['uppercase letters', 'Which', {}],
      ['an encoded traversal', '%2e%2e%2fwhich', {}],
      ['an empty name', '', {}],
      ['a NUL byte', 'which\u0000', {}],
      ['a 254-character name', 'a'.repeat(254), {}],
      ['a namespace with a traversal', 'which', { namespace: '../kube-system' }],
      ['a namespace with a dot (labels allow none)', 'which', { namespace: 'ns.default' }],
      ['a 64-character namespace', 'which', { namespace: 'n'.repeat(64) }],
    ])(
      'refuses %s with ERR_SECRET_NAME_INVALID',
      async (_what, name, requestMetadata: Record<string, string>) => {
        const store = makeStore({ kubeconfigPath: readerConfig, defaultNamespace: 'ns-default' });
        h.server.clearRequests();
        try {
          expect(await codeOf(store.get(name, requestMetadata))).toBe('ERR_SECRET_NAME_INVALID');
          if (Object.keys(requestMetadata).length > 0)
            expect(await codeOf(store.bulkGet(requestMetadata))).toBe('ERR_SECRET_NAME_INVALID');
          expect(h.server.requests).toEqual([]);
        } finally {
          await store.close();
        }
      },
    );
  });

  describe('API errors', () => {
    it('maps 403 to ERR_SECRET_PERMISSION_DENIED with the API message and without the token', async () => {
      const store = makeStore({ kubeconfigPath: readerConfig, defaultNamespace: 'locked' });
      try {
        const err = await errorOf(store.get('locked'));
        expect(err.code).toBe('ERR_SECRET_PERMISSION_DENIED');
        expect(err.message).toContain('403 Forbidden');
        expect(err.message).toContain('system:serviceaccount:warden:reader');
        for (const token of tokensUsed) expect(err.message).not.toContain(token);
        expect(await codeOf(store.bulkGet())).toBe('ERR_SECRET_PERMISSION_DENIED');
      } finally {
        await store.close();
      }
    });

    it('maps 401 (a token the API does not know) to ERR_SECRET_STORE_UNAVAILABLE without retrying', async () => {
      const store = makeStore({
        kubeconfigPath: await h.kubeconfig(newToken('revoked')),
        defaultNamespace: 'ns-default',
      });
      h.server.clearRequests();
      try {
        const err = await errorOf(store.get('which'));
        expect(err.code).toBe('ERR_SECRET_STORE_UNAVAILABLE');
        expect(err.message).toContain('401');
        expect(h.server.requests).toHaveLength(1);
      } finally {
        await store.close();
      }
    });

    it('retries 5xx a bounded number of times with growing, jittered backoff, then answers ERR_SECRET_STORE_UNAVAILABLE', async () => {
      const waits: number[] = [];
      const store = makeStore(
        { kubeconfigPath: readerConfig, defaultNamespace: 'ns-default', maxRetries: '2' },
        {},
        {
          sleep: async (ms) => {
            waits.push(ms);
          },
        },
      );
      h.server.clearRequests();
      h.server.failNext({
        status: 500,
        count: 10,
        path: '/api/v1/namespaces/ns-default/secrets/which',
      });
      try {
        const err = await errorOf(store.get('which'));
        expect(err.code).toBe('ERR_SECRET_STORE_UNAVAILABLE');
        expect(err.message).toContain('500 InternalError');
        expect(err.message).toContain('after 3 attempts');
        expect(h.server.requests).toHaveLength(3);
        expect(waits).toHaveLength(2);
        expect(waits[0]).toBeGreaterThanOrEqual(100);
        expect(waits[0]).toBeLessThanOrEqual(200);
        expect(waits[1]).toBeGreaterThanOrEqual(200);
        expect(waits[1]).toBeLessThanOrEqual(400);
      } finally {
        h.server.clearFaults();
        await store.close();
      }
    });

    it('recovers from a transient 503 within its retries', async () => {
      const store = makeStore(
        { kubeconfigPath: readerConfig, defaultNamespace: 'ns-default' },
        {},
        { sleep: async () => undefined },
      );
      h.server.failNext({
        status: 503,
        count: 2,
        path: '/api/v1/namespaces/ns-default/secrets/which',
      });
      try {
        expect(await store.get('which')).toEqual({ from: 'ns-default' });
      } finally {
        await store.close();
      }
    });

    it('waits out a 429 Retry-After before retrying', async () => {
      const store = makeStore({ kubeconfigPath: readerConfig, defaultNamespace: 'ns-default' });
      h.server.clearRequests();
      h.server.failNext({
        status: 429,
        retryAfter: 1,
        path: '/api/v1/namespaces/ns-default/secrets/which',
      });
      try {
        expect(await store.get('which')).toEqual({ from: 'ns-default' });
        const [throttled, retried] = h.server.requests;
        expect(throttled?.status).toBe(429);
        expect(retried?.status).toBe(200);
        // A lower bound only: the retry must not come before the server said it may.
        expect(
          (retried?.at.getTime() ?? 0) - (throttled?.at.getTime() ?? 0),
        ).toBeGreaterThanOrEqual(990);
      } finally {
        await store.close();
      }
    });

    it('does not wait out a Retry-After beyond its bound: it fails at once and says when to retry', async () => {
      const waits: number[] = [];
      const store = makeStore(
        { kubeconfigPath: readerConfig, defaultNamespace: 'ns-default' },
        {},
        {
          sleep: async (ms) => {
            waits.push(ms);
          },
        },
      );
      h.server.clearRequests();
      h.server.failNext({
        status: 429,
        retryAfter: 120,
        path: '/api/v1/namespaces/ns-default/secrets/which',
      });
      try {
        const err = await errorOf(store.get('which'));
        expect(err.code).toBe('ERR_SECRET_STORE_UNAVAILABLE');
        expect(err.details).toMatchObject({ status: 429, retryAfterMs: 120_000 });
        expect(h.server.requests).toHaveLength(1);
        expect(waits).toEqual([]);
      } finally {
        await store.close();
      }
    });

    it('gives up on a request that hangs after requestTimeout', async () => {
      const store = makeStore({
        kubeconfigPath: readerConfig,
        defaultNamespace: 'ns-default',
        requestTimeout: '150ms',
        maxRetries: '0',
      });
      const hang = h.server.hang({ path: '/api/v1/namespaces/ns-default/secrets/which' });
      try {
        const err = await errorOf(store.get('which'));
        expect(err.code).toBe('ERR_SECRET_STORE_UNAVAILABLE');
        expect(err.message).toContain('did not answer within 150ms');
      } finally {
        hang.release();
        await store.close();
      }
    });

    it('answers ERR_SECRET_STORE_UNAVAILABLE while the API is down and recovers after it restarts', async () => {
      const store = makeStore(
        { kubeconfigPath: readerConfig, defaultNamespace: 'ns-default', maxRetries: '1' },
        {},
        { sleep: async () => undefined },
      );
      try {
        await h.server.stop();
        const err = await errorOf(store.get('which'));
        expect(err.code).toBe('ERR_SECRET_STORE_UNAVAILABLE');
        expect(err.message).toContain('unreachable (ECONNREFUSED)');
        await h.server.restart();
        expect(await store.get('which')).toEqual({ from: 'ns-default' });
      } finally {
        await h.server.restart();
        await store.close();
      }
    });
  });

  describe('watch cache', () => {
    let store: KubernetesSecretStore;

    beforeAll(async () => {
      h.server.store.put({
        apiVersion: 'v1',
        kind: 'Secret',
        metadata: { name: 'rotating', namespace: 'cached' },
        stringData: { password: 'v1' },
      });
      store = makeStore(
        { kubeconfigPath: readerConfig, cacheMode: 'watch' },
        { NAMESPACE: 'cached' },
      );
      expect(store.ready()).toBe(false);
      await store.whenReady();
    });
    afterAll(async () => {
      await store.close();
    });

    const getsOf = (name: string): number =>
      h.server.requests.filter((r) => r.verb === 'get' && r.name === name).length;

    it('is ready only after its first list, and then answers from memory', async () => {
      expect(store.ready()).toBe(true);
      h.server.clearRequests();
      expect(await store.get('rotating')).toEqual({ password: 'v1' });
      expect(await store.bulkGet()).toEqual({ rotating: { password: 'v1' } });
      expect(h.server.requests).toEqual([]);
    });

    it('sees an update and a deletion through the watch', async () => {
      h.server.store.put({
        apiVersion: 'v1',
        kind: 'Secret',
        metadata: { name: 'rotating', namespace: 'cached' },
        stringData: { password: 'v2' },
      });
      await waitForValue(store, 'rotating', { password: 'v2' });
      h.server.store.delete('secrets', 'cached', 'rotating');
      await waitForCode(store, 'rotating', 'ERR_SECRET_NOT_FOUND');
      expect(getsOf('rotating')).toBe(0);
      h.server.store.put({
        apiVersion: 'v1',
        kind: 'Secret',
        metadata: { name: 'rotating', namespace: 'cached' },
        stringData: { password: 'v3' },
      });
      await waitForValue(store, 'rotating', { password: 'v3' });
    });

    it('tells change listeners about data changes seen by the watch, not about metadata-only updates', async () => {
      let heard = 0;
      const off = store.onSecretsChanged(() => (heard += 1));
      try {
        const put = (data: Record<string, string>, labels: Record<string, string> = {}): void => {
          h.server.store.put({
            apiVersion: 'v1',
            kind: 'Secret',
            metadata: { name: 'listened', namespace: 'cached', labels },
            stringData: data,
          });
        };
        put({ password: 'a' });
        await waitUntil(() => heard === 1, 'the ADDED event');
        put({ password: 'b' });
        await waitUntil(() => heard === 2, 'the MODIFIED event');
        put({ password: 'b' }, { relabelled: 'yes' }); // MODIFIED, same data
        h.server.store.put({
          apiVersion: 'v1',
          kind: 'Secret',
          metadata: { name: 'marker', namespace: 'cached' },
          stringData: { k: 'v' },
        });
        await waitUntil(() => heard === 3, 'the marker after the label-only update');
        h.server.store.delete('secrets', 'cached', 'listened');
        await waitUntil(() => heard === 4, 'the DELETED event');
        // A change the watch missed (history expired) is noticed by the re-list.
        h.server.clearRequests();
        h.server.store.put({
          apiVersion: 'v1',
          kind: 'Secret',
          metadata: { name: 'elsewhere', namespace: 'ns-default' },
        });
        h.server.expireHistory();
        h.server.dropWatches();
        h.server.store.delete('secrets', 'cached', 'marker');
        await waitUntil(() => heard === 5 && store.ready(), 'the re-list');
        expect(
          h.server.requests.filter(
            (r) => r.verb === 'list' && r.namespace === 'cached' && !r.watch,
          ),
        ).toHaveLength(1);
        await expect(store.get('marker')).rejects.toMatchObject({ code: 'ERR_SECRET_NOT_FOUND' });
      } finally {
        off();
      }
    });

    it('reads other namespaces through the API', async () => {
      h.server.clearRequests();
      h.server.store.put({
        apiVersion: 'v1',
        kind: 'Secret',
        metadata: { name: 'far', namespace: 'elsewhere' },
        stringData: { k: 'v' },
      });
      expect(await store.get('far', { namespace: 'elsewhere' })).toEqual({ k: 'v' });
      expect(getsOf('far')).toBe(1);
    });

    it('resumes after a dropped watch and re-lists after 410 Expired', async () => {
      const lists = (): number =>
        h.server.requests.filter((r) => r.verb === 'list' && r.namespace === 'cached').length;
      h.server.clearRequests();
      h.server.dropWatches();
      h.server.store.put({
        apiVersion: 'v1',
        kind: 'Secret',
        metadata: { name: 'after-drop', namespace: 'cached' },
        stringData: { k: '1' },
      });
      await waitForValue(store, 'after-drop', { k: '1' });
      expect(lists()).toBe(0);

      h.server.store.put({
        apiVersion: 'v1',
        kind: 'Secret',
        metadata: { name: 'unrelated', namespace: 'ns-default' },
      });
      h.server.expireHistory();
      h.server.dropWatches();
      await waitUntil(() => lists() === 1 && store.ready(), 'the re-list');
      h.server.store.put({
        apiVersion: 'v1',
        kind: 'Secret',
        metadata: { name: 'after-relist', namespace: 'cached' },
        stringData: { k: '2' },
      });
      await waitForValue(store, 'after-relist', { k: '2' });
    });

    it('stops answering from memory while the API is down, and re-syncs after it returns', async () => {
      await h.server.stop();
      await waitUntil(() => !store.ready(), 'the cache to notice');
      expect(await codeOf(store.get('rotating'))).toBe('ERR_SECRET_STORE_UNAVAILABLE');
      h.server.store.put({
        apiVersion: 'v1',
        kind: 'Secret',
        metadata: { name: 'rotating', namespace: 'cached' },
        stringData: { password: 'v4' },
      });
      await h.server.restart();
      await store.whenReady();
      await waitForValue(store, 'rotating', { password: 'v4' });
    });
  });

  it('logs retries and cache events but never a token or a secret value', () => {
    const log = logLines.join('');
    expect(log).toContain('kubernetes secret read failed; retrying');
    expect(log).toContain('kubernetes secret cache synced');
    for (const token of tokensUsed) expect(log).not.toContain(token);
    const values = [
      ...Object.values(CONFORMANCE_SINGLE_KEY_SECRETS).flatMap((d) => Object.values(d)),
      ...Object.values(CONFORMANCE_MULTI_KEY_SECRETS).flatMap((d) => Object.values(d)),
      'locked-value',
    ];
    for (const value of values) {
      expect(log).not.toContain(value);
      expect(log).not.toContain(Buffer.from(value).toString('base64'));
    }
  });
});

async function waitForValue(
  store: KubernetesSecretStore,
  name: string,
  expected: Record<string, string>,
): Promise<void> {
  await waitUntil(
    async () =>
      JSON.stringify(await store.get(name).catch(() => undefined)) === JSON.stringify(expected),
    `${name} to read the expected data`,
  );
}

async function waitForCode(
  store: KubernetesSecretStore,
  name: string,
  code: string,
): Promise<void> {
  await waitUntil(
    async () => (await codeOf(store.get(name))) === code,
    `${name} to answer ${code}`,
  );
}
