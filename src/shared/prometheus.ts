import { createRequire } from 'node:module';
import type * as PromClient from 'prom-client';

/**
 * prom-client's metric classes, loaded without its index module. The index also loads the
 * default process metrics (and with them @opentelemetry/api), the Pushgateway client and the
 * cluster aggregator: ≈ 33 ms of CPU at start-up where these four classes cost ≈ 3 ms (issue
 * 7: cold start). They are the very classes the index exports (same module files, same
 * module cache): test/unit/shared/prometheus.test.ts checks that, so a prom-client whose
 * layout differs fails the test instead of the server.
 */
const load = createRequire(import.meta.url);

export const Registry = load('prom-client/lib/registry') as typeof PromClient.Registry;
export const Counter = load('prom-client/lib/counter') as typeof PromClient.Counter;
export const Gauge = load('prom-client/lib/gauge') as typeof PromClient.Gauge;
export const Histogram = load('prom-client/lib/histogram') as typeof PromClient.Histogram;
export type Registry = PromClient.Registry;
