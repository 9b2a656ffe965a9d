import type { KubeConfig } from '@kubernetes/client-node';
import type { Registry } from 'prom-client';
import { systemClock, type Clock } from '../../shared/clock.js';
import { createKubeLeaseLock } from '../../shared/kube-lease-lock.js';
import type { KubeCallerOptions } from '../../shared/kube-caller.js';
import { createLeaderElector, type LeaderElector } from '../../shared/leader-election.js';
import { silentLogger, type Logger } from '../../shared/logger.js';
import type { KeyAlgorithm } from '../key-algorithm.js';
import { startTrustMaterialCa, type TrustMaterialCa } from '../trust-material-ca.js';
import type { TrustMaterialNames } from '../trust-material.js';
import { startAnchorsDistributor, type AnchorsDistributor } from './anchors-distributor.js';
import {
  createKubernetesTrustMetrics,
  noKubernetesTrustMetrics,
} from './kubernetes-trust-metrics.js';
import {
  createKubernetesTrustStore,
  type KubernetesTrustMaterialStore,
} from './kubernetes-trust-store.js';
import { startTrustSecretWatch, type TrustSecretWatch } from './trust-secret-watch.js';

/** The Lease only one replica holds: that replica writes the anchors ConfigMaps. */
export const DEFAULT_LEADER_LEASE_NAME = 'warden-leader';

/** Kubernetes mode's CA: trust material in the Secret, hot reload by watch, anchors everywhere. */
export interface KubernetesCaOptions {
  readonly kubeConfig: KubeConfig;
  /** The CA's namespace (env NAMESPACE): the Secret, its ConfigMap and the Lease live there. */
  readonly namespace: string;
  /** --trust-bundle-name (default dapr-trust-bundle). */
  readonly trustBundleName?: string;
  /** Secret keys of the three parts (the --issuer-*-filename flags). */
  readonly names?: TrustMaterialNames;
  /** Secret key of the root key Warden keeps (--root-key-filename, default root.key). */
  readonly rootKeyName?: string;
  /** --anchors-configmap-name (default dapr-root-ca.crt). */
  readonly anchorsConfigMapName?: string;
  /** --anchors-namespace-selector (default: every namespace). */
  readonly anchorsNamespaceSelector?: string;
  /** This replica in leader election: the pod name, else host name and pid. */
  readonly identity: string;
  readonly leaderElection?: {
    readonly leaseName?: string;
    readonly leaseDurationMs?: number;
    readonly renewDeadlineMs?: number;
    readonly retryPeriodMs?: number;
  };
  /** For generated material. */
  readonly trustDomain: string;
  readonly keyAlgorithm?: KeyAlgorithm;
  readonly rootTtlMs?: number;
  readonly issuerTtlMs?: number;
  readonly keepRootKey?: boolean;
  readonly expiryWarningDays?: number;
  readonly clock?: Clock;
  readonly logger?: Logger;
  /** Where the distribution and leader metrics go (none when absent). */
  readonly registry?: Registry;
  readonly retry?: KubeCallerOptions;
  readonly random?: () => number;
  readonly watchTimeoutSeconds?: number;
  /** Full anchors pass at least this often (default 5 min). */
  readonly anchorsResyncIntervalMs?: number;
}

export interface KubernetesCa extends TrustMaterialCa {
  readonly store: KubernetesTrustMaterialStore;
  readonly secretWatch: TrustSecretWatch;
  readonly elector: LeaderElector;
  readonly distributor: AnchorsDistributor;
  /**
   * Also called on every change of the trust Secret the watch sees (the JWT keys live in it
   * too); a rejection is reported like a refused reload. Returns an unsubscribe function.
   */
  onSecretChange(listener: () => Promise<unknown>): () => void;
}

/**
 * Loads (or, on an empty namespace, generates; replicas racing converge on one root) the
 * trust material from the Secret, then starts the Secret watch (every replica reloads an
 * operator's update and keeps the ConfigMap in line), leader election, and the anchors
 * distributor that only the leader lets write. ready() is true once the Secret watch has
 * listed; leader or standby does not matter. close() releases the lease first, so a standby
 * takes over at once.
 */
export async function startKubernetesCa(options: KubernetesCaOptions): Promise<KubernetesCa> {
  const logger = options.logger ?? silentLogger;
  const clock = options.clock ?? systemClock;
  const store = createKubernetesTrustStore({
    kubeConfig: options.kubeConfig,
    namespace: options.namespace,
    name: options.trustBundleName,
    names: options.names,
    rootKeyName: options.rootKeyName,
    retry: options.retry,
    logger,
  });
  const ca = await startTrustMaterialCa({
    store,
    trustDomain: options.trustDomain,
    keyAlgorithm: options.keyAlgorithm,
    rootTtlMs: options.rootTtlMs,
    issuerTtlMs: options.issuerTtlMs,
    keepRootKey: options.keepRootKey,
    expiryWarningDays: options.expiryWarningDays,
    clock,
    logger,
  });
  const metrics = options.registry
    ? createKubernetesTrustMetrics(options.registry)
    : noKubernetesTrustMetrics;
  const stops: Array<() => Promise<unknown>> = [() => ca.close()];
  const stopAll = async (): Promise<void> => {
    for (const stop of stops.splice(0).reverse()) await stop().catch(() => undefined);
  };
  const secretListeners = new Set<() => Promise<unknown>>();
  try {
    const secretWatch = startTrustSecretWatch({
      kubeConfig: options.kubeConfig,
      namespace: options.namespace,
      name: store.name,
      reload: async () => {
        // Every part, even when one refuses (each logs why and keeps what it had).
        const [bundle, ...others] = await Promise.allSettled([
          ca.reload(),
          ...[...secretListeners].map((listener) => listener()),
        ]);
        const failed = [bundle, ...others].find((r) => r.status === 'rejected');
        if (failed) throw failed.reason;
        return (bundle as PromiseFulfilledResult<Awaited<ReturnType<typeof ca.reload>>>).value;
      },
      publish: (anchors) => store.publishConfigMap(anchors),
      logger,
      random: options.random,
      watchTimeoutSeconds: options.watchTimeoutSeconds,
    });
    stops.push(() => secretWatch.close());

    let elector: LeaderElector | null = null;
    const distributor = startAnchorsDistributor({
      kubeConfig: options.kubeConfig,
      source: ca,
      configMapName: options.anchorsConfigMapName,
      namespaceSelector: options.anchorsNamespaceSelector,
      canWrite: () => elector?.isLeader() ?? false,
      logger,
      metrics,
      random: options.random,
      retry: options.retry,
      resyncIntervalMs: options.anchorsResyncIntervalMs,
      watchTimeoutSeconds: options.watchTimeoutSeconds,
    });
    stops.push(() => distributor.close());

    const election = options.leaderElection ?? {};
    elector = createLeaderElector({
      lock: createKubeLeaseLock({
        kubeConfig: options.kubeConfig,
        namespace: options.namespace,
        name: election.leaseName ?? DEFAULT_LEADER_LEASE_NAME,
        retry: { ...options.retry, maxAttempts: 2 },
      }),
      identity: options.identity,
      leaseDurationMs: election.leaseDurationMs,
      renewDeadlineMs: election.renewDeadlineMs,
      retryPeriodMs: election.retryPeriodMs,
      clock,
      logger: logger.child({ component: 'leader-election' }),
      random: options.random,
      onStartedLeading: () => {
        metrics.leader(true);
        distributor.reconcile();
      },
      onStoppedLeading: () => metrics.leader(false),
    });
    const started = elector;
    // Released before the distributor and watches stop (stops run in reverse).
    stops.push(() => started.close());
    started.start();

    const kubernetesCa: KubernetesCa = {
      ...ca,
      store,
      secretWatch,
      elector: started,
      distributor,
      ready: () => ca.ready() && secretWatch.synced(),
      onSecretChange(listener) {
        secretListeners.add(listener);
        return () => secretListeners.delete(listener);
      },
      close: stopAll,
    };
    return kubernetesCa;
  } catch (err) {
    await stopAll();
    throw err;
  }
}
