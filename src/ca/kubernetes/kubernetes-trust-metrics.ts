import { Counter, Gauge, type Registry } from 'prom-client';

/**
 * Metrics of Kubernetes mode's trust distribution, on an explicit Registry (refused reloads
 * are counted by the trust monitor, as in standalone mode). Labels are
 * states and operations only: no namespace names (unbounded), no content.
 */
export interface KubernetesTrustMetrics {
  /** warden_anchors_configmaps{state}: namespaces by the state of their anchors ConfigMap after the last pass. */
  observePass(counts: AnchorsPassCounts): void;
  /** warden_anchors_configmap_writes_total{operation, result}. */
  write(operation: 'create' | 'update', result: 'success' | 'conflict' | 'failure'): void;
  /** warden_leader: 1 while this replica holds the leader lease. */
  leader(isLeader: boolean): void;
}

export interface AnchorsPassCounts {
  /** Publishing the current anchors (already, or written in this pass). */
  readonly current: number;
  /** A ConfigMap of that name that Warden does not manage: left alone. */
  readonly foreign: number;
  /** Not yet current: a write failed or lost a race and is retried. */
  readonly pending: number;
}

export const KUBERNETES_TRUST_METRIC_NAMES = Object.freeze({
  anchorsConfigMaps: 'warden_anchors_configmaps',
  anchorsWrites: 'warden_anchors_configmap_writes_total',
  leader: 'warden_leader',
});

export function createKubernetesTrustMetrics(registry: Registry): KubernetesTrustMetrics {
  const registers = [registry];
  const configMaps = new Gauge({
    name: KUBERNETES_TRUST_METRIC_NAMES.anchorsConfigMaps,
    help: 'Namespaces by the state of their trust-anchors ConfigMap after the last distribution pass (current, foreign: owned by someone else and left alone, pending: being retried)',
    labelNames: ['state'],
    registers,
  });
  const writes = new Counter({
    name: KUBERNETES_TRUST_METRIC_NAMES.anchorsWrites,
    help: 'Writes of trust-anchors ConfigMaps by operation and result',
    labelNames: ['operation', 'result'],
    registers,
  });
  const leader = new Gauge({
    name: KUBERNETES_TRUST_METRIC_NAMES.leader,
    help: '1 while this replica holds the leader Lease and distributes the trust anchors, else 0',
    registers,
  });
  leader.set(0);
  return {
    observePass(counts) {
      configMaps.set({ state: 'current' }, counts.current);
      configMaps.set({ state: 'foreign' }, counts.foreign);
      configMaps.set({ state: 'pending' }, counts.pending);
    },
    write: (operation, result) => writes.inc({ operation, result }),
    leader: (isLeader) => leader.set(isLeader ? 1 : 0),
  };
}

/** For callers without a registry. */
export const noKubernetesTrustMetrics: KubernetesTrustMetrics = {
  observePass: () => undefined,
  write: () => undefined,
  leader: () => undefined,
};
