import {
  CoordinationV1Api,
  V1MicroTime,
  type KubeConfig,
  type V1Lease,
} from '@kubernetes/client-node';
import { WardenError } from './errors.js';
import { createKubeCaller, KubeCallError, type KubeCallerOptions } from './kube-caller.js';
import type { LeaseLock, LeaseRecord, VersionedLease } from './leader-election.js';

export interface KubeLeaseLockOptions {
  readonly kubeConfig: KubeConfig;
  readonly namespace: string;
  /** coordination.k8s.io/v1 Lease name (Warden: warden-leader). */
  readonly name: string;
  /** Each round is retried briefly; the elector's own loop does the rest (default 2 attempts). */
  readonly retry?: KubeCallerOptions;
}

/** A LeaseLock over a coordination.k8s.io/v1 Lease: resourceVersion is the compare-and-swap token. */
export function createKubeLeaseLock(options: KubeLeaseLockOptions): LeaseLock {
  const api = options.kubeConfig.makeApiClient(CoordinationV1Api);
  const server = options.kubeConfig.getCurrentCluster()?.server ?? 'the Kubernetes API';
  const caller = createKubeCaller(server, { maxAttempts: 2, ...options.retry });
  const { namespace, name } = options;
  const description = `lease ${name} in namespace ${namespace}`;

  const fail = (err: unknown): never => {
    if (err instanceof KubeCallError)
      throw new WardenError('ERR_KUBERNETES_API', err.message, { cause: err });
    throw err;
  };

  return {
    describe: () => description,
    async get() {
      try {
        const lease = await caller.call(`get ${description}`, (o) =>
          api.readNamespacedLease({ name, namespace }, o),
        );
        return versioned(lease);
      } catch (err) {
        if (err instanceof KubeCallError && err.status === 404) return null;
        return fail(err);
      }
    },
    async create(record) {
      try {
        await caller.call(`create ${description}`, (o) =>
          api.createNamespacedLease(
            {
              namespace,
              body: {
                apiVersion: 'coordination.k8s.io/v1',
                kind: 'Lease',
                metadata: { name, namespace },
                spec: specOf(record),
              },
            },
            o,
          ),
        );
        return 'created';
      } catch (err) {
        if (err instanceof KubeCallError && err.status === 409) return 'exists';
        return fail(err);
      }
    },
    async update(record, version) {
      try {
        await caller.call(`update ${description}`, (o) =>
          api.replaceNamespacedLease(
            {
              name,
              namespace,
              body: {
                apiVersion: 'coordination.k8s.io/v1',
                kind: 'Lease',
                metadata: { name, namespace, resourceVersion: version },
                spec: specOf(record),
              },
            },
            o,
          ),
        );
        return 'updated';
      } catch (err) {
        // 409: changed since read; 404: deleted since read (the next round recreates it).
        if (err instanceof KubeCallError && (err.status === 409 || err.status === 404))
          return 'conflict';
        return fail(err);
      }
    },
  };
}

function microTime(date: Date | undefined): V1MicroTime | undefined {
  return date === undefined ? undefined : new V1MicroTime(date.getTime());
}

function specOf(record: LeaseRecord): NonNullable<V1Lease['spec']> {
  return {
    ...(record.holderIdentity ? { holderIdentity: record.holderIdentity } : {}),
    leaseDurationSeconds: record.leaseDurationSeconds,
    acquireTime: microTime(record.acquireTime),
    renewTime: microTime(record.renewTime),
    leaseTransitions: record.leaseTransitions,
  };
}

function dateOf(value: unknown): Date | undefined {
  if (value instanceof Date) return new Date(value.getTime());
  if (typeof value === 'string') {
    const ms = Date.parse(value);
    return Number.isNaN(ms) ? undefined : new Date(ms);
  }
  return undefined;
}

function versioned(lease: V1Lease): VersionedLease {
  const spec = lease.spec ?? {};
  return {
    version: lease.metadata?.resourceVersion ?? '',
    record: {
      holderIdentity: spec.holderIdentity || undefined,
      leaseDurationSeconds: spec.leaseDurationSeconds ?? 0,
      acquireTime: dateOf(spec.acquireTime),
      renewTime: dateOf(spec.renewTime),
      leaseTransitions: spec.leaseTransitions ?? 0,
    },
  };
}
