import { X509Certificate } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import * as k8s from '@kubernetes/client-node';
import { generateTrustMaterial } from '../../../src/ca/generate.js';
import type { TrustMaterialPem } from '../../../src/ca/trust-material.js';
import { ManualClock } from '../../../src/shared/clock.js';
import { WardenError } from '../../../src/shared/errors.js';
import {
  createKubernetesTrustStore,
  type KubernetesTrustMaterialStore,
} from '../../../src/ca/kubernetes/kubernetes-trust-store.js';
import { readEnv } from '../../../src/shared/env.js';
import { loadKubeConfig } from '../../../src/shared/kube-client.js';
import { describeTrustMaterialStoreConformance } from '../../conformance/trust-material-store-conformance.js';
import { KubeApiServer } from '../../support/kube-api-server/index.js';
import {
  ANCHORS_SHA256_ANNOTATION,
  anchorFingerprints,
} from '../../../src/ca/kubernetes/kubernetes-trust-store.js';
import {
  configMapData,
  extraKeys,
  materialKeys,
  peekExtras,
  peekMaterial,
  putConfigMap,
  putSecretKeys,
  secretData,
} from '../../support/kube-trust-fixtures.js';

let server: KubeApiServer | undefined;
let namespaces = 0;

async function testServer(): Promise<KubeApiServer> {
  server ??= await KubeApiServer.start();
  return server;
}

afterAll(async () => {
  await server?.close();
});

describeTrustMaterialStoreConformance(
  'Kubernetes Secret (test API server, real client)',
  async () => {
    const api = await testServer();
    namespaces += 1;
    const namespace = `conformance-${namespaces}`;
    api.store.put({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: namespace } });
    // A fast retry policy: nothing fails here, and a slow one would only hide a bug.
    const open = (): KubernetesTrustMaterialStore =>
      createKubernetesTrustStore({
        kubeConfig: api.kubeConfig(),
        namespace,
        retry: { baseDelayMs: 10 },
      });
    return {
      store: open(),
      open,
      async seed(parts) {
        putSecretKeys(api, namespace, materialKeys(parts));
      },
      async seedExtras(extras) {
        putSecretKeys(api, namespace, extraKeys(extras));
      },
      async peek() {
        return peekMaterial(api, namespace);
      },
      async peekExtras() {
        return peekExtras(api, namespace);
      },
      async cleanup() {
        api.store.delete('namespaces', undefined, namespace);
      },
    };
  },
);

async function rejection(promise: Promise<unknown>): Promise<WardenError> {
  try {
    await promise;
  } catch (err) {
    if (err instanceof WardenError) return err;
    throw err;
  }
  throw new Error('expected a WardenError');
}

function fingerprintOf(pem: string): string {
  return new X509Certificate(pem).fingerprint256;
}

describe('Kubernetes trust store: what only the cluster store does', () => {
  const clock = new ManualClock(Date.UTC(2026, 0, 1));
  let api: KubeApiServer;
  let a: TrustMaterialPem;
  let b: TrustMaterialPem;
  let n = 0;
  const namespace = (): string => {
    n += 1;
    const ns = `store-${n}`;
    api.store.put({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns } });
    return ns;
  };
  const storeIn = (ns: string, token?: string, sleeps?: number[]): KubernetesTrustMaterialStore =>
    createKubernetesTrustStore({
      kubeConfig: api.kubeConfig(token),
      namespace: ns,
      retry: {
        baseDelayMs: 5,
        sleep: async (ms) => {
          sleeps?.push(ms);
        },
      },
    });
  const writes = (ns: string): string[] =>
    api.requests
      .filter((r) => r.namespace === ns && ['POST', 'PUT', 'PATCH', 'DELETE'].includes(r.method))
      .map((r) => `${r.method} ${r.resource} ${r.status}`);

  beforeAll(async () => {
    api = await testServer();
    a = (await generateTrustMaterial({ trustDomain: 'a.example', clock })).material;
    b = (await generateTrustMaterial({ trustDomain: 'b.example', clock })).material;
  });

  it('fills the empty Secret Dapr’s Helm chart creates (a PUT, not a second Secret), keeping keys it does not manage', async () => {
    const ns = namespace();
    putSecretKeys(api, ns, {
      'ca.crt': '',
      'issuer.crt': '',
      'issuer.key': '',
      'jwt.key': 'jwt key text',
    });
    const store = storeIn(ns);
    expect(await store.load()).toBeNull();
    expect(await store.create(a, { rootKey: 'root key' })).toBe('created');
    expect(writes(ns)).toEqual(['PUT secrets 200', 'POST configmaps 201']);
    const data = secretData(api, ns);
    expect(data['jwt.key']).toBe('jwt key text');
    expect(data['root.key']).toBe('root key');
    expect(await store.load()).toEqual(a);
  });

  it('publishes the anchors (and jwks.json from the Secret) in the ConfigMap, stamped with their SHA-256', async () => {
    const ns = namespace();
    putSecretKeys(api, ns, { 'jwks.json': '{"keys":[]}' });
    const store = storeIn(ns);
    await store.create(a);
    expect(configMapData(api, ns)).toEqual({ 'ca.crt': a.anchorsPem, 'jwks.json': '{"keys":[]}' });
    const cm = api.store.get('configmaps', ns, 'dapr-trust-bundle') as {
      metadata: { annotations: Record<string, string> };
    };
    expect(cm.metadata.annotations[ANCHORS_SHA256_ANNOTATION]).toMatch(/^[0-9a-f]{64}$/);
  });

  it('keeps keys it does not manage through a replace, and the ConfigMap follows the new anchors', async () => {
    const ns = namespace();
    const store = storeIn(ns);
    await store.create(a);
    putSecretKeys(api, ns, { 'jwt-rotation.json': '{}' });
    expect(await store.replace({ material: a, extras: {} }, { material: b, extras: {} })).toBe(
      'replaced',
    );
    expect(secretData(api, ns)['jwt-rotation.json']).toBe('{}');
    expect(configMapData(api, ns)?.['ca.crt']).toBe(b.anchorsPem);
  });

  it('refuses a Secret and ConfigMap that disagree (ConfigMap edited by someone) with both fingerprints, and writes nothing', async () => {
    const ns = namespace();
    putSecretKeys(api, ns, materialKeys(a));
    putConfigMap(api, ns, 'dapr-trust-bundle', { 'ca.crt': b.anchorsPem });
    api.clearRequests();
    const store = storeIn(ns);
    for (const attempt of [
      store.load(),
      store.read(),
      store.create(b),
      store.replace({ material: a, extras: {} }, { material: b, extras: {} }),
    ]) {
      const err = await rejection(attempt);
      expect(err.code).toBe('ERR_TRUST_MATERIAL_CONFLICT');
      expect(err.message).toContain(fingerprintOf(a.anchorsPem));
      expect(err.message).toContain(fingerprintOf(b.anchorsPem));
      expect(err.message).toContain('Secret "dapr-trust-bundle"');
      expect(err.message).toContain('ConfigMap "dapr-trust-bundle"');
    }
    expect(await store.publishConfigMap(a.anchorsPem)).toBe('skipped');
    expect(writes(ns)).toEqual([]);
    expect(peekMaterial(api, ns)).toEqual(a);
    expect(configMapData(api, ns)).toEqual({ 'ca.crt': b.anchorsPem });
  });

  it('refuses a ConfigMap that publishes anchors while the Secret holds nothing, and never mints over it (Dapr #9563)', async () => {
    const ns = namespace();
    putConfigMap(api, ns, 'dapr-trust-bundle', { 'ca.crt': a.anchorsPem });
    api.clearRequests();
    const store = storeIn(ns);
    const err = await rejection(store.create(b));
    expect(err.code).toBe('ERR_TRUST_MATERIAL_CONFLICT');
    expect(err.message).toContain(fingerprintOf(a.anchorsPem));
    expect((await rejection(store.load())).code).toBe('ERR_TRUST_MATERIAL_CONFLICT');
    expect(writes(ns)).toEqual([]);
    expect(api.store.get('secrets', ns, 'dapr-trust-bundle')).toBeUndefined();
  });

  it('treats a ConfigMap still holding what Warden last published as stale-behind: the Secret wins, and only validated anchors are published', async () => {
    const ns = namespace();
    const store = storeIn(ns);
    await store.create(a);
    // An operator replaces the Secret (valid new material); the ConfigMap is untouched.
    putSecretKeys(api, ns, materialKeys(b));
    expect(await store.load()).toEqual(b);
    // A replica that still serves `a` must not publish it over the Secret's newer anchors.
    expect(await store.publishConfigMap(a.anchorsPem)).toBe('skipped');
    expect(configMapData(api, ns)?.['ca.crt']).toBe(a.anchorsPem);
    // Once `b` is validated, it is published; a second call changes nothing.
    expect(await store.publishConfigMap(b.anchorsPem)).toBe('updated');
    expect(configMapData(api, ns)?.['ca.crt']).toBe(b.anchorsPem);
    expect(await store.publishConfigMap(b.anchorsPem)).toBe('unchanged');
  });

  it('adopts a ConfigMap written by Dapr Sentry that agrees with the Secret (stamps it, keeps its other keys)', async () => {
    const ns = namespace();
    putSecretKeys(api, ns, materialKeys(a));
    putConfigMap(api, ns, 'dapr-trust-bundle', { 'ca.crt': a.anchorsPem, other: 'kept' });
    const store = storeIn(ns);
    expect(await store.load()).toEqual(a);
    expect(await store.publishConfigMap(a.anchorsPem)).toBe('updated');
    expect(configMapData(api, ns)).toEqual({ 'ca.crt': a.anchorsPem, other: 'kept' });
    // Now Warden's: a later operator update of the Secret is stale-behind, not a conflict.
    putSecretKeys(api, ns, materialKeys(b));
    expect(await store.load()).toEqual(b);
  });

  it('names the fingerprints of every anchor, or hashes text that is not PEM', () => {
    const both = a.anchorsPem + b.anchorsPem;
    expect(anchorFingerprints(both)).toBe(
      `${fingerprintOf(a.anchorsPem)}, ${fingerprintOf(b.anchorsPem)}`,
    );
    expect(anchorFingerprints('junk')).toMatch(/^not PEM, bytes SHA-256 [0-9a-f]{64}$/);
  });

  describe('API errors', () => {
    it('reports a 403 as ERR_TRUST_MATERIAL_IO naming the Secret and the refusal, never the token', async () => {
      const ns = namespace();
      const token = 'no-secrets-token-5f1c2e';
      api.addToken(token, {
        username: 'system:serviceaccount:x:warden',
        rules: [{ verbs: ['get'], resources: ['configmaps'], apiGroups: [''] }],
      });
      const err = await rejection(storeIn(ns, token).load());
      expect(err.code).toBe('ERR_TRUST_MATERIAL_IO');
      expect(err.message).toContain(`Secret "dapr-trust-bundle" in namespace "${ns}"`);
      expect(err.message).toContain('403 Forbidden');
      expect(err.message).toContain('cannot get resource "secrets"');
      expect(err.message).not.toContain(token);
    });

    it('retries 500s and 429s (honouring Retry-After) a bounded number of times, then succeeds', async () => {
      const ns = namespace();
      const sleeps: number[] = [];
      const store = storeIn(ns, undefined, sleeps);
      api.failNext({ status: 500, count: 2, path: `/api/v1/namespaces/${ns}/configmaps` });
      api.failNext({ status: 429, retryAfter: 2, path: `/api/v1/namespaces/${ns}/secrets` });
      expect(await store.create(a)).toBe('created');
      expect(sleeps.length).toBe(3);
      expect(sleeps).toContain(2000);
      expect(await store.load()).toEqual(a);
    });

    it('gives up after its attempts with ERR_TRUST_MATERIAL_IO saying how often it tried', async () => {
      const ns = namespace();
      api.failNext({ status: 503, count: 10, path: `/api/v1/namespaces/${ns}/configmaps` });
      const err = await rejection(storeIn(ns).load());
      api.clearFaults();
      expect(err.code).toBe('ERR_TRUST_MATERIAL_IO');
      expect(err.message).toContain('503');
      expect(err.message).toContain('after 4 attempts');
    });

    it('reports an unreachable API server as ERR_TRUST_MATERIAL_IO with the address', async () => {
      const down = await KubeApiServer.start();
      const kubeConfig = down.kubeConfig();
      await down.close();
      const store = createKubernetesTrustStore({
        kubeConfig,
        namespace: 'default',
        retry: { maxAttempts: 2, baseDelayMs: 1 },
      });
      const err = await rejection(store.load());
      expect(err.code).toBe('ERR_TRUST_MATERIAL_IO');
      expect(err.message).toContain(down.url);
      expect(err.message).toMatch(/unreachable \(ECONNREFUSED/);
    });
  });
});

/*
 * The same suite against a real cluster, in a temporary namespace, when KUBECONFIG is set.
 */
const env = readEnv();
if (env.kubeconfig === undefined) {
  console.log(
    'KUBECONFIG is not set: the trust-material store conformance suite against a real cluster is skipped.',
  );
  describe('TrustMaterialStore conformance: Kubernetes Secret in a real cluster', () => {
    it.skip('runs only when KUBECONFIG points at a cluster', () => undefined);
  });
} else {
  const kubeConfig = loadKubeConfig({ inCluster: false, kubeconfigEnv: env.kubeconfig });
  const core = kubeConfig.makeApiClient(k8s.CoreV1Api);
  const run = `${Date.now().toString(36)}`;
  let count = 0;
  describeTrustMaterialStoreConformance(
    'Kubernetes Secret (real cluster in KUBECONFIG)',
    async () => {
      count += 1;
      const namespace = `warden-trust-conformance-${run}-${count}`;
      await core.createNamespace({ body: { metadata: { name: namespace } } });
      const open = (): KubernetesTrustMaterialStore =>
        createKubernetesTrustStore({ kubeConfig, namespace });
      const read = async (): Promise<Record<string, string>> => {
        try {
          const secret = await core.readNamespacedSecret({ name: 'dapr-trust-bundle', namespace });
          const out: Record<string, string> = {};
          for (const [k, v] of Object.entries(secret.data ?? {}))
            out[k] = Buffer.from(v, 'base64').toString('utf8');
          return out;
        } catch {
          return {};
        }
      };
      const write = async (keys: Record<string, string>): Promise<void> => {
        const merged = { ...(await read()), ...keys };
        try {
          await core.createNamespacedSecret({
            namespace,
            body: { metadata: { name: 'dapr-trust-bundle' }, stringData: merged },
          });
        } catch {
          await core.replaceNamespacedSecret({
            name: 'dapr-trust-bundle',
            namespace,
            body: { metadata: { name: 'dapr-trust-bundle' }, stringData: merged },
          });
        }
      };
      return {
        store: open(),
        open,
        seed: (parts) => write(materialKeys(parts)),
        seedExtras: (extras) => write(extraKeys(extras)),
        async peek() {
          const data = await read();
          const out: Record<string, string> = {};
          if (data['ca.crt'] !== undefined) out.anchorsPem = data['ca.crt'];
          if (data['issuer.crt'] !== undefined) out.issuerChainPem = data['issuer.crt'];
          if (data['issuer.key'] !== undefined) out.issuerKeyPem = data['issuer.key'];
          return out;
        },
        async peekExtras() {
          const data = await read();
          const names: Record<string, string> = {
            'root.key': 'rootKey',
            'rotation.json': 'rotationState',
            'next-root.key': 'nextRootKey',
            'next-issuer.crt': 'nextIssuerChain',
            'next-issuer.key': 'nextIssuerKey',
          };
          const out: Record<string, string> = {};
          for (const [key, field] of Object.entries(names))
            if (data[key] !== undefined) out[field] = data[key];
          return out;
        },
        async cleanup() {
          await core.deleteNamespace({ name: namespace }).catch(() => undefined);
        },
      };
    },
  );
}
