import { setTimeout as delay } from 'node:timers/promises';
import type { ConfigurationOptions } from '@kubernetes/client-node';
import { systemClock, type Clock } from './clock.js';
import {
  classifyKubeError,
  isRetryable,
  requestTimeout,
  type KubeCallFailure,
} from './kube-client.js';
import { silentLogger, type Logger } from './logger.js';
import { printable } from './spiffe-id.js';

/**
 * Bounded retries for one Kubernetes API call: exponential backoff with jitter, a 429's
 * Retry-After honoured up to a cap, and a per-attempt timeout (the client sets none). Only
 * 429, 5xx, network errors and timeouts are retried; every other answer (404, 409, 403, ...)
 * is the caller's to interpret, on the first attempt.
 */
export interface KubeRetryOptions {
  /** Attempts in all, the first included (default 4). */
  readonly maxAttempts?: number;
  /** First backoff ceiling (default 200 ms); it doubles per attempt up to maxDelayMs. */
  readonly baseDelayMs?: number;
  readonly maxDelayMs?: number;
  /** A Retry-After longer than this is not waited for: the call fails now (default 10 s). */
  readonly maxRetryAfterMs?: number;
  /** Per-attempt timeout (default 10 s). */
  readonly requestTimeoutMs?: number;
  /** Tests record the waits instead of sleeping. */
  readonly sleep?: (ms: number) => Promise<void>;
  /** Jitter source in [0, 1) (default Math.random). */
  readonly random?: () => number;
  readonly clock?: Clock;
  readonly logger?: Logger;
}

/** A call that failed for good: what went wrong on the last attempt, and how many were made. */
export class KubeCallError extends Error {
  readonly failure: KubeCallFailure;
  readonly attempts: number;
  /** What went wrong, without the operation: "the Kubernetes API at ... answered 403 Forbidden: ...". */
  readonly detail: string;
  constructor(what: string, failure: KubeCallFailure, attempts: number, server: string) {
    const detail = `${describeKubeFailure(failure, server)}${attempts > 1 ? ` (after ${attempts} attempts)` : ''}`;
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

  get reason(): string | undefined {
    return this.failure.kind === 'status' ? this.failure.reason : undefined;
  }
}

/**
 * One line for a failure, for messages and logs. Status messages come from the API server,
 * which never echoes a bearer token; they are still length-limited and made printable.
 */
export function describeKubeFailure(failure: KubeCallFailure, server: string): string {
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
  /**
   * Runs `call` with retries. `what` names the operation for messages ("get secret x in
   * namespace y"). Throws KubeCallError.
   */
  call<T>(what: string, call: (options: ConfigurationOptions) => Promise<T>): Promise<T>;
  /** Where calls go (the cluster's server URL), for messages. */
  readonly server: string;
}

export function createKubeCaller(server: string, options: KubeRetryOptions = {}): KubeCaller {
  const maxAttempts = Math.max(1, options.maxAttempts ?? 4);
  const base = options.baseDelayMs ?? 200;
  const cap = options.maxDelayMs ?? 5_000;
  const maxRetryAfter = options.maxRetryAfterMs ?? 10_000;
  const timeoutMs = options.requestTimeoutMs ?? 10_000;
  const sleep = options.sleep ?? ((ms: number) => delay(ms).then(() => undefined));
  const random = options.random ?? Math.random;
  const clock = options.clock ?? systemClock;
  const logger = options.logger ?? silentLogger;
  return {
    server,
    async call<T>(what: string, call: (o: ConfigurationOptions) => Promise<T>): Promise<T> {
      for (let attempt = 1; ; attempt += 1) {
        let failure: KubeCallFailure;
        try {
          return await call(requestTimeout(timeoutMs));
        } catch (err) {
          failure = classifyKubeError(err, clock.now());
        }
        const retryAfterMs = failure.kind === 'status' ? failure.retryAfterMs : undefined;
        if (
          !isRetryable(failure) ||
          attempt >= maxAttempts ||
          (retryAfterMs !== undefined && retryAfterMs > maxRetryAfter)
        ) {
          throw new KubeCallError(what, failure, attempt, server);
        }
        const ceiling = Math.min(cap, base * 2 ** (attempt - 1));
        const waitMs = Math.max(
          Math.round(ceiling / 2 + (random() * ceiling) / 2),
          retryAfterMs ?? 0,
        );
        logger.warn(
          {
            operation: what,
            failure: describeKubeFailure(failure, server),
            attempt,
            retryInMs: waitMs,
          },
          'kubernetes API call failed; retrying',
        );
        await sleep(waitMs);
      }
    },
  };
}

/** Backoff for long-running loops (watches, leader election): full ceiling doubling, half jitter. */
export function loopBackoffMs(
  failures: number,
  random: () => number,
  baseMs = 100,
  capMs = 5_000,
): number {
  const ceiling = Math.min(capMs, baseMs * 2 ** Math.min(Math.max(failures, 0), 16));
  return Math.round(ceiling / 2 + (random() * ceiling) / 2);
}
