/** Messages between the bench orchestrator and its load-client processes. */
export type LoadTarget =
  | {
      kind: 'warden';
      address: string;
      caPem: string;
      serverName: string;
      /** raw: bench/h2-grpc-client.ts (default); node-http2: node:http2 (a cross-check). */
      client?: 'raw' | 'node-http2';
    }
  | { kind: 'cfssl'; url: string };

/** Orchestrator → client: the job; the client prepares, connects, then answers LoadReady. */
export interface LoadJob {
  readonly target: LoadTarget;
  readonly csrs: readonly string[];
  readonly concurrency: number;
  readonly warmupMs: number;
  readonly durationMs: number;
  /** Idle time between calls of one in-flight slot (for idle-latency runs). */
  readonly pauseMs?: number;
}

/** Client → orchestrator: requests prepared and connections open. */
export interface LoadReady {
  readonly type: 'ready';
}

/** Orchestrator → client, once every client is ready: start the warm-up, then the window. */
export interface LoadGo {
  readonly type: 'go';
}

export interface LoadReport {
  readonly type: 'report';
  readonly ok: number;
  readonly errors: number;
  readonly firstError: string | null;
  /** Latencies in ms of successful calls completed in the measured window. */
  readonly latenciesMs: number[];
  readonly windowMs: number;
  /** This client's CPU (user + system) from the start of the window to its end. */
  readonly cpuSeconds: number;
  /** Whether the CSR pool ran out and CSRs were reused. */
  readonly reusedCsrs: boolean;
}
