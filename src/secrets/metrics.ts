import { Counter, Histogram, type Registry } from 'prom-client';

/**
 * The secrets block's metrics, one function per event (as Dapr Sentry's monitoring does).
 * Labels are store names (from configured Components only), operations and error codes:
 * never a secret name, never a value.
 */
export interface SecretsMetrics {
  /** One store read finished (get or bulk), with its latency. */
  storeRead(store: string, operation: StoreOperation, seconds: number): void;
  /** A read or an API request failed with this Warden code. */
  storeError(store: string, code: string): void;
  cacheHit(store: string, operation: StoreOperation): void;
  cacheMiss(store: string, operation: StoreOperation): void;
}

export type StoreOperation = 'get' | 'bulk';

/** The label used when a request names a store that is not configured (untrusted text never becomes a label). */
export const UNKNOWN_STORE_LABEL = '(unknown)';

export const noopSecretsMetrics: SecretsMetrics = {
  storeRead: () => undefined,
  storeError: () => undefined,
  cacheHit: () => undefined,
  cacheMiss: () => undefined,
};

function counter(registry: Registry, name: string, help: string, labelNames: string[]): Counter<string> {
  const existing = registry.getSingleMetric(name);
  if (existing) return existing as Counter<string>;
  return new Counter({ name, help, labelNames, registers: [registry] });
}

/** Registers (or reuses) the metrics in an explicit registry; never the global one. */
export function createSecretsMetrics(registry: Registry): SecretsMetrics {
  const reads = counter(registry, 'warden_secrets_gets_total', 'Secret store reads, by store and operation.', ['store', 'operation']);
  const errors = counter(registry, 'warden_secrets_errors_total', 'Failed secret reads and refused API requests, by store and error code.', ['store', 'code']);
  const hits = counter(registry, 'warden_secrets_cache_hits_total', 'Secret reads answered from the TTL cache.', ['store', 'operation']);
  const misses = counter(registry, 'warden_secrets_cache_misses_total', 'Secret reads the TTL cache had to pass to the store.', ['store', 'operation']);
  const latencyName = 'warden_secrets_get_duration_seconds';
  const latency =
    (registry.getSingleMetric(latencyName) as Histogram<string> | undefined) ??
    new Histogram({
      name: latencyName,
      help: 'Secret store read latency in seconds, cache included.',
      labelNames: ['store', 'operation'],
      buckets: [0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers: [registry],
    });
  return {
    storeRead: (store, operation, seconds) => {
      reads.inc({ store, operation });
      latency.observe({ store, operation }, seconds);
    },
    storeError: (store, code) => errors.inc({ store, code }),
    cacheHit: (store, operation) => hits.inc({ store, operation }),
    cacheMiss: (store, operation) => misses.inc({ store, operation }),
  };
}
