import { X509Certificate } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import * as k8s from '@kubernetes/client-node';
import { Registry } from 'prom-client';
import { generateTrustMaterial } from '../../../src/ca/generate.js';
import { startKubernetesCa, type KubernetesCa } from '../../../src/ca/kubernetes/kubernetes-ca.js';
import { anchorFingerprints } from '../../../src/ca/kubernetes/kubernetes-trust-store.js';
import { DEFAULT_ROTATION_POLICY } from '../../../src/ca/rotation/rotation-policy.js';
import { prepareRotation } from '../../../src/ca/rotation/rotation-steps.js';
import type { TrustMaterialPem } from '../../../src/ca/trust-material.js';
import { systemClock } from '../../../src/shared/clock.js';
import { WardenError } from '../../../src/shared/errors.js';
import { captureLog } from '../../support/log-capture.js';
import { KubeApiServer } from '../../support/kube-api-server/index.js';
import {
  configMapData,
  materialKeys,
  putConfigMap,
  putSecretKeys,
  secretData,
} from '../../support/kube-trust-fixtures.js';
import { waitUntil } from '../../support/wait-for.js';

/*
 * Three CA replicas in one process, each with its own service-account token (so the test
 * server's request log says who wrote what), talking to the Kubernetes API test server
 * through the real client. Leader election runs on a short lease so that handover takes
 * seconds, not the production 15 s.
 */

const CA_NAMESPACE = 'warden-system';
const ELECTION = { leaseDurationMs: 1_500, renewDeadlineMs: 1_000, retryPeriodMs: 250 };
const log = captureLog();
const tokens: string[] = [];

interface Replica {
  readonly identity: string;
  readonly token: string;
  readonly username: string;
  readonly ca: KubernetesCa;
  readonly registry: Registry;
  readonly reloadFailures: { count: number };
}

async function startReplica(server: KubeApiServer, identity: string): Promise<Replica> {
  const token = `token-${identity}-${Math.random().toString(36).slice(2)}`;
  const username = `system:serviceaccount:${CA_NAMESPACE}:${identity}`;
  tokens.push(token);
  server.addToken(token, { username, rules: 'all' });
  const registry = new Registry();
  const reloadFailures = { count: 0 };
  const ca = await startKubernetesCa({
    kubeConfig: server.kubeConfig(token),
    namespace: CA_NAMESPACE,
    identity,
    trustDomain: 'cluster.local',
    leaderElection: ELECTION,
    registry,
    retry: { baseDelayMs: 20 },
    clock: systemClock,
    logger: log.logger.child({ replica: identity }),
  });
  ca.onReloadRefused(() => (reloadFailures.count += 1));
  return { identity, token, username, ca, registry, reloadFailures };
}

const fingerprint = (pem: string): string => new X509Certificate(pem).fingerprint256;

function anchorsConfigMap(
  server: KubeApiServer,
  namespace: string,
): { data?: Record<string, string>; metadata: { labels?: Record<string, string> } } | undefined {
  return server.store.get('configmaps', namespace, 'dapr-root-ca.crt') as
    { data?: Record<string, string>; metadata: { labels?: Record<string, string> } } | undefined;
}

function namespaceNames(server: KubeApiServer): string[] {
  return server.store.list('namespaces').map((ns) => (ns.metadata as { name: string }).name);
}

async function everyNamespacePublishes(server: KubeApiServer, anchors: string): Promise<void> {
  await waitUntil(
    () =>
      namespaceNames(server).every((ns) => {
        const cm = anchorsConfigMap(server, ns);
        return (
          ns === 'foreign-app' ||
          (cm?.data?.['ca.crt'] === anchors &&
            cm.metadata.labels?.['app.kubernetes.io/managed-by'] === 'warden')
        );
      }),
    'every namespace to publish the anchors',
  );
}

async function metricValue(
  registry: Registry,
  name: string,
  labels: Record<string, string> = {},
): Promise<number | undefined> {
  const metric = await registry.getSingleMetric(name)?.get();
  return metric?.values.find((v) => Object.entries(labels).every(([k, l]) => v.labels[k] === l))
    ?.value;
}

describe('three Warden replicas in Kubernetes mode (test API server, real client)', () => {
  let server: KubeApiServer;
  let core: k8s.CoreV1Api;
  let replicas: Replica[] = [];
  let leader: Replica;
  const running = (): Replica[] => replicas;

  beforeAll(async () => {
    server = await KubeApiServer.start({ bookmarkIntervalMs: 200 });
    core = server.kubeConfig().makeApiClient(k8s.CoreV1Api);
    await core.createNamespace({ body: { metadata: { name: CA_NAMESPACE } } });
  });
  afterAll(async () => {
    await Promise.all(replicas.map((r) => r.ca.close()));
    await server.close();
  });

  it('starting together on an empty namespace, agree on one root (exactly one Secret create succeeds)', async () => {
    server.clearRequests();
    replicas = await Promise.all(
      ['warden-0', 'warden-1', 'warden-2'].map((id) => startReplica(server, id)),
    );
    const roots = new Set(replicas.map((r) => fingerprint(r.ca.current().anchorsPem)));
    expect(roots.size).toBe(1);
    const creates = server.requests.filter(
      (r) => r.method === 'POST' && r.resource === 'secrets' && r.status === 201,
    );
    expect(creates).toHaveLength(1);
    expect(replicas.filter((r) => r.ca.origin === 'generated')).toHaveLength(1);
    expect(secretData(server, CA_NAMESPACE)['ca.crt']).toBe(replicas[0]?.ca.current().anchorsPem);
    expect(configMapData(server, CA_NAMESPACE)?.['ca.crt']).toBe(
      replicas[0]?.ca.current().anchorsPem,
    );
    await waitUntil(() => replicas.every((r) => r.ca.ready()), 'every replica ready');
  });

  it('elects one leader, which alone publishes the anchors in every namespace; the others stand by', async () => {
    await waitUntil(
      () => running().filter((r) => r.ca.elector.isLeader()).length === 1,
      'one leader',
    );
    leader = running().find((r) => r.ca.elector.isLeader()) as Replica;
    await waitUntil(
      () => running().every((r) => r.ca.elector.leader() === leader.identity),
      'every replica to see the leader',
    );
    await everyNamespacePublishes(server, leader.ca.current().anchorsPem);
    const writers = new Set(
      server.requests
        .filter(
          (r) =>
            r.resource === 'configmaps' &&
            r.namespace !== CA_NAMESPACE &&
            ['POST', 'PUT'].includes(r.method),
        )
        .map((r) => r.user),
    );
    expect([...writers]).toEqual([leader.username]);
    expect(await metricValue(leader.registry, 'warden_leader')).toBe(1);
    for (const r of running().filter((x) => x !== leader))
      expect(await metricValue(r.registry, 'warden_leader')).toBe(0);
  });

  it('gives a new namespace its anchors ConfigMap within seconds', async () => {
    await core.createNamespace({ body: { metadata: { name: 'team-a' } } });
    await waitUntil(
      () => anchorsConfigMap(server, 'team-a')?.data?.['ca.crt'] === leader.ca.current().anchorsPem,
      'team-a to get the anchors',
      5_000,
    );
  });

  it('leaves alone a ConfigMap of that name that someone else owns, and counts it', async () => {
    putConfigMap(server, 'foreign-app', 'dapr-root-ca.crt', { 'ca.crt': 'their own roots' });
    await waitUntil(
      () => (leader.ca.distributor.lastPass()?.foreign ?? 0) >= 1,
      'the foreign ConfigMap to be seen',
    );
    leader.ca.distributor.reconcile();
    await leader.ca.distributor.settled();
    const cm = anchorsConfigMap(server, 'foreign-app');
    expect(cm?.data).toEqual({ 'ca.crt': 'their own roots' });
    expect(cm?.metadata.labels?.['app.kubernetes.io/managed-by']).toBeUndefined();
    expect(
      await metricValue(leader.registry, 'warden_anchors_configmaps', { state: 'foreign' }),
    ).toBe(1);
    expect(log.text()).toContain('a ConfigMap of this name exists without the Warden label');
  });

  it('carries a rotation (prepare on the Kubernetes store) to every replica and every namespace', async () => {
    const before = running().map((r) => r.ca.current().generation);
    const previous = running()[0]!.ca.current().anchorsPem;
    const result = await prepareRotation({
      store: running()[1]!.ca.store,
      policy: DEFAULT_ROTATION_POLICY,
      logger: log.logger,
    });
    expect(result.changed).toBe(true);
    const anchors = result.stored.material.anchorsPem;
    expect(anchors.startsWith(previous)).toBe(true);
    expect(anchorFingerprints(anchors).split(', ')).toHaveLength(2);
    await waitUntil(
      () =>
        running().every(
          (r, i) =>
            r.ca.current().anchorsPem === anchors &&
            r.ca.current().generation === (before[i] as number) + 1,
        ),
      'every replica to serve the prepared anchors',
    );
    await everyNamespacePublishes(server, anchors);
    await waitUntil(
      () => configMapData(server, CA_NAMESPACE)?.['ca.crt'] === anchors,
      'the trust ConfigMap to follow',
    );
  });

  let replacement: TrustMaterialPem;
  it('serves an operator’s valid update of the Secret on every replica without a restart (generation + 1)', async () => {
    replacement = (await generateTrustMaterial({ trustDomain: 'cluster.local' })).material;
    const before = running().map((r) => r.ca.current().generation);
    putSecretKeys(server, CA_NAMESPACE, materialKeys(replacement));
    await waitUntil(
      () =>
        running().every(
          (r, i) =>
            r.ca.current().issuerChainPem === replacement.issuerChainPem &&
            r.ca.current().generation === (before[i] as number) + 1,
        ),
      'every replica to serve the new issuer',
    );
    await waitUntil(
      () => configMapData(server, CA_NAMESPACE)?.['ca.crt'] === replacement.anchorsPem,
      'the trust ConfigMap to follow the Secret',
    );
    await everyNamespacePublishes(server, replacement.anchorsPem);
  });

  it('refuses a bad update (a key that does not match the issuer) on every replica; the old material keeps serving', async () => {
    const other = (await generateTrustMaterial({ trustDomain: 'cluster.local' })).material;
    const generations = running().map((r) => r.ca.current().generation);
    const failures = running().map((r) => r.reloadFailures.count);
    putSecretKeys(server, CA_NAMESPACE, { 'issuer.key': other.issuerKeyPem });
    await waitUntil(
      () => running().every((r, i) => r.reloadFailures.count > (failures[i] as number)),
      'every replica to refuse the update',
    );
    for (const [i, r] of running().entries()) {
      expect(r.ca.current().generation).toBe(generations[i]);
      expect(r.ca.current().issuerKeyPem).toBe(replacement.issuerKeyPem);
    }
    expect(configMapData(server, CA_NAMESPACE)?.['ca.crt']).toBe(replacement.anchorsPem);
    expect(log.text()).toContain('reload refused: keeping the current trust material');
    // The operator puts the right key back: nothing changes, nothing is refused.
    putSecretKeys(server, CA_NAMESPACE, { 'issuer.key': replacement.issuerKeyPem });
  });

  it('keeps watching through dropped streams, 410 Gone, 500s, 429s and an API server restart, then picks up the next update', async () => {
    // A write no mirror watches moves the server past every watcher's resourceVersion; with the
    // history gone, each resumed watch gets 410 Gone and must re-list.
    server.store.put({
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: 'unrelated', namespace: 'default' },
    });
    server.expireHistory();
    server.dropWatches();
    await waitUntil(
      () => log.text().includes('watch expired (410); re-listing'),
      'a watch to be told 410 Gone',
    );
    server.failNext({ status: 500, count: 3, path: `/api/v1/namespaces/${CA_NAMESPACE}/secrets` });
    server.failNext({
      status: 429,
      retryAfter: 1,
      count: 2,
      path: `/api/v1/namespaces/${CA_NAMESPACE}/secrets`,
    });
    await server.stop();
    await new Promise((resolve) => setTimeout(resolve, 500));
    await server.restart();
    const next = (await generateTrustMaterial({ trustDomain: 'cluster.local' })).material;
    putSecretKeys(server, CA_NAMESPACE, materialKeys(next));
    await waitUntil(
      () => running().every((r) => r.ca.current().issuerChainPem === next.issuerChainPem),
      'every replica to serve the update made after the outage',
      20_000,
    );
    replacement = next;
  });

  it('gives forty namespaces created at once their ConfigMaps, creating each one once', async () => {
    server.clearRequests();
    const names = Array.from({ length: 40 }, (_, i) => `burst-${i}`);
    await Promise.all(names.map((name) => core.createNamespace({ body: { metadata: { name } } })));
    const anchors = running()[0]!.ca.current().anchorsPem;
    await waitUntil(
      () => names.every((ns) => anchorsConfigMap(server, ns)?.data?.['ca.crt'] === anchors),
      'every new namespace to get the anchors',
    );
    const posts = server.requests.filter(
      (r) =>
        r.method === 'POST' && r.resource === 'configmaps' && r.namespace?.startsWith('burst-'),
    );
    expect(posts.filter((r) => r.status === 201)).toHaveLength(40);
  });

  it('hands the writer role over when the leader stops renewing (its API access cut), and again when a leader shuts down', async () => {
    const old = running().find((r) => r.ca.elector.isLeader()) as Replica;
    server.removeToken(old.token);
    await waitUntil(() => !old.ca.elector.isLeader(), 'the cut-off leader to stop leading', 5_000);
    await waitUntil(
      () => running().some((r) => r !== old && r.ca.elector.isLeader()),
      'a standby to take over',
      10_000,
    );
    const successor = running().find((r) => r !== old && r.ca.elector.isLeader()) as Replica;
    server.clearRequests();
    await core.createNamespace({ body: { metadata: { name: 'team-b' } } });
    await waitUntil(
      () => anchorsConfigMap(server, 'team-b') !== undefined,
      'team-b to get the anchors',
      5_000,
    );
    const writers = server.requests
      .filter((r) => r.resource === 'configmaps' && r.namespace === 'team-b' && r.method === 'POST')
      .map((r) => r.user);
    expect(writers).toEqual([successor.username]);

    // A clean shutdown releases the lease: the last standby takes over without waiting for expiry.
    const last = running().find((r) => r !== old && r !== successor) as Replica;
    await successor.ca.close();
    await waitUntil(() => last.ca.elector.isLeader(), 'the last replica to take over', 5_000);
    await core.createNamespace({ body: { metadata: { name: 'team-c' } } });
    await waitUntil(
      () => anchorsConfigMap(server, 'team-c') !== undefined,
      'team-c to get the anchors',
      5_000,
    );
    replicas = replicas.filter((r) => r !== successor);
  });

  it('never logs a token or a private key', () => {
    const text = log.text();
    for (const token of tokens) expect(text).not.toContain(token);
    expect(text).not.toContain('PRIVATE KEY');
  });
});

describe('Kubernetes mode refuses to start rather than guess', () => {
  let server: KubeApiServer;
  beforeAll(async () => {
    server = await KubeApiServer.start();
  });
  afterAll(async () => {
    await server.close();
  });

  async function rejection(promise: Promise<unknown>): Promise<WardenError> {
    try {
      const ca = (await promise) as KubernetesCa;
      await ca.close();
    } catch (err) {
      if (err instanceof WardenError) return err;
      throw err;
    }
    throw new Error('expected start-up to fail');
  }

  it('reports a Secret and ConfigMap that disagree with both fingerprints, and mints nothing', async () => {
    const a = (await generateTrustMaterial({ trustDomain: 'cluster.local' })).material;
    const b = (await generateTrustMaterial({ trustDomain: 'cluster.local' })).material;
    putSecretKeys(server, 'conflict', materialKeys(a));
    putConfigMap(server, 'conflict', 'dapr-trust-bundle', { 'ca.crt': b.anchorsPem });
    server.clearRequests();
    const err = await rejection(
      startKubernetesCa({
        kubeConfig: server.kubeConfig(),
        namespace: 'conflict',
        identity: 'x',
        trustDomain: 'cluster.local',
        leaderElection: ELECTION,
      }),
    );
    expect(err.code).toBe('ERR_TRUST_MATERIAL_CONFLICT');
    expect(err.message).toContain(fingerprint(a.anchorsPem));
    expect(err.message).toContain(fingerprint(b.anchorsPem));
    expect(server.requests.filter((r) => r.method !== 'GET')).toEqual([]);
    expect(secretData(server, 'conflict')['ca.crt']).toBe(a.anchorsPem);
  });

  it('fails closed with a clear message when the API server is down', async () => {
    const down = await KubeApiServer.start();
    const kubeConfig = down.kubeConfig();
    await down.close();
    const err = await rejection(
      startKubernetesCa({
        kubeConfig,
        namespace: CA_NAMESPACE,
        identity: 'x',
        trustDomain: 'cluster.local',
        retry: { baseDelayMs: 10 },
      }),
    );
    expect(err.code).toBe('ERR_TRUST_MATERIAL_IO');
    expect(err.message).toContain(`ConfigMap "dapr-trust-bundle" in namespace "${CA_NAMESPACE}"`);
    expect(err.message).toContain('unreachable');
    expect(err.message).toContain('after 4 attempts');
  });
});
