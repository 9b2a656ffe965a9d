import {
  CoreV1Api,
  type KubeConfig,
  type V1ConfigMap,
  type V1Namespace,
  type V1ObjectMeta,
} from '@kubernetes/client-node';
import { describeError } from '../../shared/errors.js';
import { requestTimeout } from '../../shared/kube-client.js';
import { isDns1123Subdomain } from '../../shared/kube-names.js';
import { KubeReflector, type ReflectorListPage } from '../../shared/kube-reflector.js';
import {
  createKubeCaller,
  KubeCallError,
  loopBackoffMs,
  type KubeCallerOptions,
} from '../../shared/kube-caller.js';
import { silentLogger, type Logger } from '../../shared/logger.js';
import type { TrustSource } from '../trust-bundle.js';
import {
  noKubernetesTrustMetrics,
  type AnchorsPassCounts,
  type KubernetesTrustMetrics,
} from './kubernetes-trust-metrics.js';
import { MANAGED_BY_LABEL, MANAGED_BY_WARDEN } from './kubernetes-trust-store.js';

/*
 * Trust anchors in every namespace: a ConfigMap (default `dapr-root-ca.crt`, key `ca.crt`,
 * label app.kubernetes.io/managed-by=warden) in each namespace matching the selector, so a
 * workload (or its sidecar) can mount the current roots and see a rotation's next root before
 * it signs anything (Dapr #7161).
 *
 * How:
 * - Two mirrors (list+watch): the namespaces matching the selector, and every ConfigMap of
 *   that name in the cluster (one cluster-wide watch with fieldSelector metadata.name, which
 *   RBAC can restrict to that resourceName). No per-namespace reads.
 * - A pass compares each namespace's ConfigMap with the CA's current, validated anchors and
 *   writes only the differences: POST when missing (409 AlreadyExists: a newer state is on its
 *   way through the watch), PUT with the mirrored resourceVersion when stale (409: same).
 *   Passes run on any change of either mirror, on an anchors change, on leadership, after a
 *   failure (with backoff), and every resyncIntervalMs; a change during a pass causes one
 *   more pass.
 * - A ConfigMap of that name without the managed-by=warden label belongs to someone else: it
 *   is never overwritten (logged once per version of it, counted in
 *   warden_anchors_configmaps{state="foreign"}).
 * - Only the leader writes: canWrite() is asked before every write, so a replica that lost
 *   its lease stops mid-pass. Standbys keep their mirrors warm for a fast handover.
 * - Namespaces being deleted (phase Terminating) are skipped; a namespace that stops matching
 *   the selector keeps its ConfigMap (removing trust from running workloads is an operator's
 *   decision).
 */

import { DEFAULT_ANCHORS_CONFIGMAP_NAME } from './kubernetes-names.js';
export { DEFAULT_ANCHORS_CONFIGMAP_NAME };
export const ANCHORS_CONFIGMAP_KEY = 'ca.crt';

export interface AnchorsDistributorOptions {
  readonly kubeConfig: KubeConfig;
  /** The CA: its current bundle's anchors are what is published, and its changes trigger passes. */
  readonly source: TrustSource;
  /** --anchors-configmap-name */
  readonly configMapName?: string;
  /** --anchors-namespace-selector: a label selector (default: every namespace). */
  readonly namespaceSelector?: string;
  /** True while this replica may write (the leader). Asked before every write. */
  readonly canWrite: () => boolean;
  readonly logger?: Logger;
  readonly metrics?: KubernetesTrustMetrics;
  readonly random?: () => number;
  readonly retry?: KubeCallerOptions;
  /** Writes in flight at once (default 4). */
  readonly concurrency?: number;
  /** A full pass at least this often, events or not (default 5 min). */
  readonly resyncIntervalMs?: number;
  readonly watchTimeoutSeconds?: number;
}

export interface AnchorsDistributor {
  /** True once both mirrors have been listed. */
  synced(): boolean;
  whenSynced(): Promise<void>;
  /** Asks for a pass (e.g. on becoming leader). */
  reconcile(): void;
  /** Resolves once no pass is pending or running (retries after failures excepted). */
  settled(): Promise<void>;
  /** The counts of the last completed pass, or null before the first one. */
  lastPass(): AnchorsPassCounts | null;
  close(): Promise<void>;
}

type Outcome = 'current' | 'foreign' | 'pending';

/** What the mirrors keep of a namespace and of an anchors ConfigMap. */
interface NamespaceRecord {
  readonly name: string;
  readonly terminating: boolean;
}
interface ConfigMapRecord {
  readonly metadata: V1ObjectMeta;
  readonly data: Readonly<Record<string, string>>;
}

const LIST_PAGE_SIZE = 500;

function pageOf(list: {
  readonly items: readonly unknown[];
  readonly metadata?: { readonly resourceVersion?: string; readonly _continue?: string };
}): ReflectorListPage {
  return {
    items: list.items,
    resourceVersion: list.metadata?.resourceVersion ?? '',
    continueToken: list.metadata?._continue,
  };
}

export function startAnchorsDistributor(options: AnchorsDistributorOptions): AnchorsDistributor {
  const configMapName = options.configMapName ?? DEFAULT_ANCHORS_CONFIGMAP_NAME;
  if (!isDns1123Subdomain(configMapName))
    throw new TypeError(`anchors ConfigMap name "${configMapName}" is not a valid Kubernetes name`);
  const logger = (options.logger ?? silentLogger).child({ component: 'anchors-distributor' });
  const metrics = options.metrics ?? noKubernetesTrustMetrics;
  const random = options.random ?? Math.random;
  const concurrency = Math.max(1, options.concurrency ?? 4);
  const resyncIntervalMs = options.resyncIntervalMs ?? 300_000;
  const api = options.kubeConfig.makeApiClient(CoreV1Api);
  const server = options.kubeConfig.getCurrentCluster()?.server ?? 'the Kubernetes API';
  const caller = createKubeCaller(server, options.retry);
  const listTimeout = requestTimeout(options.retry?.requestTimeoutMs ?? 10_000);
  const fieldSelector = `metadata.name=${configMapName}`;
  const labelSelector = options.namespaceSelector || undefined;
  /**
   * "namespace" → the anchors this replica wrote there, until the mirror's next word on that
   * ConfigMap: a pass that runs before our own write's event arrives does not write again.
   */
  const written = new Map<string, string>();

  let closed = false;
  let running: Promise<void> | null = null;
  let again = false;
  let failures = 0;
  let retryTimer: NodeJS.Timeout | null = null;
  let last: AnchorsPassCounts | null = null;
  /** "namespace" → resourceVersion of a foreign ConfigMap already logged. */
  const loggedForeign = new Map<string, string>();

  const namespaces = new KubeReflector<NamespaceRecord>({
    kubeConfig: options.kubeConfig,
    name: labelSelector ? `namespaces matching ${labelSelector}` : 'namespaces',
    watchPath: '/api/v1/namespaces',
    watchQuery: labelSelector ? { labelSelector } : undefined,
    listPage: async (continueToken) =>
      pageOf(
        await api.listNamespace(
          { labelSelector, limit: LIST_PAGE_SIZE, _continue: continueToken },
          listTimeout,
        ),
      ),
    project: (object) => {
      const ns = object as V1Namespace;
      const name = ns.metadata?.name;
      return name ? { name, terminating: ns.status?.phase === 'Terminating' } : null;
    },
    logger,
    random,
    watchTimeoutSeconds: options.watchTimeoutSeconds,
  });
  namespaces.subscribe((event) => {
    if (event.type !== 'delete') reconcile();
  });

  const configMaps = new KubeReflector<ConfigMapRecord>({
    kubeConfig: options.kubeConfig,
    name: `configmaps named ${configMapName}`,
    watchPath: '/api/v1/configmaps',
    watchQuery: { fieldSelector },
    listPage: async (continueToken) =>
      pageOf(
        await api.listConfigMapForAllNamespaces(
          { fieldSelector, limit: LIST_PAGE_SIZE, _continue: continueToken },
          listTimeout,
        ),
      ),
    project: (object) => {
      const cm = object as V1ConfigMap;
      if (!cm.metadata?.name || !cm.metadata.namespace) return null;
      return { metadata: { ...cm.metadata, managedFields: undefined }, data: { ...cm.data } };
    },
    logger,
    random,
    watchTimeoutSeconds: options.watchTimeoutSeconds,
  });
  configMaps.subscribe((event) => {
    if (event.type === 'relist') written.clear();
    // The mirror now reports on this ConfigMap itself: it decides again from here on.
    else if (event.value.metadata.namespace) written.delete(event.value.metadata.namespace);
    reconcile();
  });

  const unsubscribe = options.source.onChange(() => reconcile());
  const resync = setInterval(() => reconcile(), resyncIntervalMs);
  resync.unref();

  function reconcile(): void {
    if (closed) return;
    if (running) {
      again = true;
      return;
    }
    running = (async () => {
      do {
        again = false;
        await pass();
      } while (again && !closed);
    })()
      .catch((err: unknown) => {
        logger.error({ error: describeError(err) }, 'anchors distribution pass failed');
      })
      .finally(() => {
        running = null;
      });
  }

  async function pass(): Promise<void> {
    if (!options.canWrite() || !namespaces.hasSynced || !configMaps.hasSynced) return;
    const anchors = options.source.current().anchorsPem;
    const targets = namespaces.values().filter((ns) => !ns.terminating);
    const outcomes: Outcome[] = [];
    let index = 0;
    const worker = async (): Promise<void> => {
      while (index < targets.length && !closed) {
        const ns = (targets[index++] as NamespaceRecord).name;
        outcomes.push(await ensure(ns, anchors));
      }
    };
    await Promise.all(Array.from({ length: Math.min(concurrency, targets.length) }, worker));
    const counts: AnchorsPassCounts = {
      current: outcomes.filter((o) => o === 'current').length,
      foreign: outcomes.filter((o) => o === 'foreign').length,
      pending: outcomes.filter((o) => o === 'pending').length,
    };
    last = counts;
    metrics.observePass(counts);
    if (counts.pending > 0 && !closed && options.canWrite()) {
      failures += 1;
      const wait = loopBackoffMs(failures, random, 500, 30_000);
      logger.info(
        { ...counts, retryInMs: wait },
        'some anchors ConfigMaps are not current yet; retrying',
      );
      if (retryTimer) clearTimeout(retryTimer);
      retryTimer = setTimeout(() => {
        retryTimer = null;
        reconcile();
      }, wait);
      retryTimer.unref();
    } else {
      failures = 0;
    }
  }

  async function ensure(namespace: string, anchors: string): Promise<Outcome> {
    if (written.get(namespace) === anchors) return 'current';
    const existing = configMaps.get(namespace, configMapName);
    if (existing && existing.metadata?.labels?.[MANAGED_BY_LABEL] !== MANAGED_BY_WARDEN) {
      const rv = existing.metadata?.resourceVersion ?? '';
      if (loggedForeign.get(namespace) !== rv) {
        loggedForeign.set(namespace, rv);
        logger.warn(
          {
            namespace,
            configMap: configMapName,
            label: `${MANAGED_BY_LABEL}=${MANAGED_BY_WARDEN}`,
          },
          'a ConfigMap of this name exists without the Warden label: leaving it alone (not publishing anchors there)',
        );
      }
      return 'foreign';
    }
    loggedForeign.delete(namespace);
    if (existing?.data?.[ANCHORS_CONFIGMAP_KEY] === anchors) return 'current';
    // Leadership is checked at the last moment before each write.
    if (!options.canWrite()) return 'pending';
    const operation = existing ? 'update' : 'create';
    try {
      if (existing) {
        await caller.call(`update configmap ${configMapName} in namespace ${namespace}`, (o) =>
          api.replaceNamespacedConfigMap(
            {
              name: configMapName,
              namespace,
              body: {
                apiVersion: 'v1',
                kind: 'ConfigMap',
                metadata: {
                  ...existing.metadata,
                  managedFields: undefined,
                  labels: { ...existing.metadata?.labels, [MANAGED_BY_LABEL]: MANAGED_BY_WARDEN },
                },
                data: { ...existing.data, [ANCHORS_CONFIGMAP_KEY]: anchors },
              },
            },
            o,
          ),
        );
      } else {
        await caller.call(`create configmap ${configMapName} in namespace ${namespace}`, (o) =>
          api.createNamespacedConfigMap(
            {
              namespace,
              body: {
                apiVersion: 'v1',
                kind: 'ConfigMap',
                metadata: {
                  name: configMapName,
                  namespace,
                  labels: { [MANAGED_BY_LABEL]: MANAGED_BY_WARDEN },
                },
                data: { [ANCHORS_CONFIGMAP_KEY]: anchors },
              },
            },
            o,
          ),
        );
      }
      written.set(namespace, anchors);
      metrics.write(operation, 'success');
      logger.info(
        { namespace, configMap: configMapName, operation },
        'published the trust anchors',
      );
      return 'current';
    } catch (err) {
      if (err instanceof KubeCallError && err.status === 409) {
        // Someone wrote it since our mirror saw it: the watch brings the newer state, and
        // the pass it triggers decides again (a foreign creation is then left alone).
        metrics.write(operation, 'conflict');
        return 'pending';
      }
      if (err instanceof KubeCallError && err.status === 404 && operation === 'create') {
        // The namespace is gone (its DELETED event is on its way).
        return 'current';
      }
      metrics.write(operation, 'failure');
      logger.warn(
        { namespace, configMap: configMapName, operation, error: describeError(err) },
        'cannot publish the trust anchors',
      );
      return 'pending';
    }
  }

  namespaces.start();
  configMaps.start();

  return {
    synced: () => namespaces.hasSynced && configMaps.hasSynced,
    async whenSynced() {
      await Promise.all([namespaces.whenSynced(), configMaps.whenSynced()]);
    },
    reconcile,
    async settled() {
      while (running && !closed) await running;
    },
    lastPass: () => last,
    async close() {
      closed = true;
      unsubscribe();
      clearInterval(resync);
      if (retryTimer) clearTimeout(retryTimer);
      await Promise.all([namespaces.stop(), configMaps.stop()]);
      if (running) await running;
    },
  };
}
