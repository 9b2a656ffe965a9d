/** Messages between the bench orchestrator and its load-client processes. */
export type LoadTarget =
  | { kind: 'warden'; address: string; caPem: string; serverName: string }
  | { kind: 'cfssl'; url: string };

export interface LoadJob {
  readonly target: LoadTarget;
  readonly csrs: readonly string[];
  readonly concurrency: number;
  readonly warmupMs: number;
  readonly durationMs: number;
  /** Idle time between calls of one in-flight slot (for idle-latency runs). */
  readonly pauseMs?: number;
}

export interface LoadReport {
  readonly ok: number;
  readonly errors: number;
  readonly firstError: string | null;
  /** Latencies in ms of successful calls completed in the measured window. */
  readonly latenciesMs: number[];
  readonly windowMs: number;
  /** Whether the CSR pool ran out and CSRs were reused. */
  readonly reusedCsrs: boolean;
}
