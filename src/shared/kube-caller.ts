import type { ConfigurationOptions } from '@kubernetes/client-node';
import type { Clock } from './clock.js';
import type { KubeCallFailure } from './kube-client.js';
import { callKubeWithRetry } from './kube-retry.js';
import { printable } from './spiffe-id.js';

/**
 * Kubernetes calls that throw: callKubeWithRetry (bounded retries of 429, 5xx, network errors
 * and timeouts) with a per-operation name, whose final failure becomes a KubeCallError that
 * says what was attempted, against which server, what came back and how often it was tried.
 * Callers that act on particular answers (404, 409) read `status`.
 */
export interface KubeCallerOptions {
  /** Attempts in all, the first included (default 4). */
  readonly maxAttempts?: number;
  /** Everything, waits included, ends by then (default 30 s). */
  readonly deadlineMs?: number;
  /** Per-attempt timeout (default 10 s). */
  readonly requestTimeoutMs?: number;
  /** Backoff ceiling after the first failure (default 200 ms), doubling up to maxDelayMs. */
  readonly baseDelayMs?: number;
  readonly maxDelayMs?: number;
  /** Tests record the waits instead of sleeping. */
  readonly sleep?: (ms: number) => Promise<void>;
  /** Jitter source in [0, 1) (default Math.random). */
  readonly random?: () => number;
  readonly clock?: Clock;
}

/** A call that failed for good: the last failure, and how many attempts were made. */
export class KubeCallError extends Error {
  readonly failure: KubeCallFailure;
  readonly attempts: number;
  /** What went wrong, without the operation: "the Kubernetes API at ... answered 403 Forbidden: ...". */
  readonly detail: string;
  constructor(what: string, failure: KubeCallFailure, attempts: number, server: string) {
    const detail = `${explainKubeFailure(failure, server)}${attempts > 1 ? ` (after ${attempts} attempts)` : ''}`;
    super(`${what}: ${detail}`);
    this.name = 'KubeCallError';
    this.failure = failure;
    this.attempts = attempts;
    this.detail = detail;
  }

  /** The HTTP status, when the API answered. */
  get status(): number | undefined {
    return this.failure.kind === 'status' ? this.failure.code : undefined;
  }
}

/**
 * One line for a failure, for messages and logs. Status messages come from the API server,
 * which never echoes a bearer token; they are still length-limited and made printable.
 */
export function explainKubeFailure(failure: KubeCallFailure, server: string): string {
  switch (failure.kind) {
    case 'status': {
      const reason = failure.reason ? ` ${failure.reason}` : '';
      const message = failure.message ? `: ${printable(failure.message, 300)}` : '';
      const retry =
        failure.retryAfterMs !== undefined
          ? ` (retry after ${Math.ceil(failure.retryAfterMs / 1000)}s)`
          : '';
      return `the Kubernetes API at ${server} answered ${failure.code}${reason}${message}${retry}`;
    }
    case 'timeout':
      return `the Kubernetes API at ${server} did not answer in time`;
    case 'network':
      return `the Kubernetes API at ${server} is unreachable (${failure.detail})`;
  }
}

export interface KubeCaller {
  /** Runs `call` with retries; `what` names the operation for messages. Throws KubeCallError. */
  call<T>(what: string, call: (options: ConfigurationOptions) => Promise<T>): Promise<T>;
  /** Where calls go (the cluster's server URL), for messages. */
  readonly server: string;
}

export function createKubeCaller(server: string, options: KubeCallerOptions = {}): KubeCaller {
  const policy = {
    maxAttempts: Math.max(1, options.maxAttempts ?? 4),
    deadlineMs: options.deadlineMs ?? 30_000,
    attemptTimeoutMs: options.requestTimeoutMs ?? 10_000,
    backoffBaseMs: options.baseDelayMs ?? 200,
    backoffCapMs: options.maxDelayMs ?? 5_000,
  };
  const deps = { sleep: options.sleep, random: options.random, clock: options.clock };
  return {
    server,
    async call<T>(what: string, call: (o: ConfigurationOptions) => Promise<T>): Promise<T> {
      const result = await callKubeWithRetry(call, policy, deps);
      if (result.ok) return result.value;
      throw new KubeCallError(what, result.failure, result.attempts, server);
    },
  };
}

/** Backoff for long-running loops (leader election, publication retries): doubling, half jitter. */
export function loopBackoffMs(
  failures: number,
  random: () => number,
  baseMs = 100,
  capMs = 5_000,
): number {
  const ceiling = Math.min(capMs, baseMs * 2 ** Math.min(Math.max(failures, 0), 16));
  return Math.round(ceiling / 2 + (random() * ceiling) / 2);
}
