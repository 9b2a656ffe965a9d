import type { ConfigurationOptions } from '@kubernetes/client-node';
import { systemClock, type Clock } from './clock.js';
import {
  classifyKubeError,
  isRetryable,
  requestTimeout,
  type KubeCallFailure,
} from './kube-client.js';

/**
 * One Kubernetes API call, retried within an overall deadline: 429 waits for Retry-After
 * (when it fits in what is left), 5xx, network errors and per-attempt timeouts back off with
 * jitter; anything else (401, 403, 404, 409, 422) is answered at once. The caller decides
 * what each failure means; this module never throws for an API failure.
 */
export interface KubeRetryPolicy {
  /** Everything, waits included, ends by then. */
  readonly deadlineMs: number;
  /** One attempt is aborted after this (or what is left of the deadline, if less). */
  readonly attemptTimeoutMs: number;
  readonly backoffBaseMs?: number;
  readonly backoffCapMs?: number;
}

export interface KubeRetryDependencies {
  readonly clock?: Clock;
  /** How waits happen; tests may record them. Default: a real timer. */
  readonly sleep?: (ms: number) => Promise<void>;
  /** Jitter source in [0, 1). Default Math.random. */
  readonly random?: () => number;
}

export type KubeRetryResult<T> =
  | { readonly ok: true; readonly value: T; readonly attempts: number }
  | {
      readonly ok: false;
      /** The last failure seen. */
      readonly failure: KubeCallFailure;
      readonly attempts: number;
      /** True when the deadline (not a final answer) ended the retries. */
      readonly deadlineExceeded: boolean;
    };

const defaultSleep = (ms: number): Promise<void> =>
  new Promise((resolve) => setTimeout(resolve, ms));

/** Shorter than this left on the deadline is not worth another attempt. */
const MIN_ATTEMPT_MS = 50;

export async function callKubeWithRetry<T>(
  call: (options: ConfigurationOptions) => Promise<T>,
  policy: KubeRetryPolicy,
  deps: KubeRetryDependencies = {},
): Promise<KubeRetryResult<T>> {
  if (!(policy.deadlineMs > 0) || !(policy.attemptTimeoutMs > 0))
    throw new TypeError('deadlineMs and attemptTimeoutMs must be positive');
  const clock = deps.clock ?? systemClock;
  const sleep = deps.sleep ?? defaultSleep;
  const random = deps.random ?? Math.random;
  const base = policy.backoffBaseMs ?? 100;
  const cap = policy.backoffCapMs ?? 1_000;
  // Deadlines are measured on the monotonic clock: they bound real waiting, not expiry.
  const startedAt = performance.now();
  const remaining = (): number => policy.deadlineMs - (performance.now() - startedAt);
  let attempts = 0;
  for (;;) {
    attempts += 1;
    // AbortSignal.timeout takes whole milliseconds.
    const attemptMs = Math.max(1, Math.floor(Math.min(policy.attemptTimeoutMs, remaining())));
    let failure: KubeCallFailure;
    try {
      return { ok: true, value: await call(requestTimeout(attemptMs)), attempts };
    } catch (err) {
      failure = classifyKubeError(err, clock.now());
    }
    if (!isRetryable(failure)) return { ok: false, failure, attempts, deadlineExceeded: false };
    let wait: number;
    if (failure.kind === 'status' && failure.code === 429 && failure.retryAfterMs !== undefined) {
      wait = failure.retryAfterMs;
    } else {
      const ceiling = Math.min(cap, base * 2 ** Math.min(attempts - 1, 16));
      wait = Math.round(ceiling / 2 + (random() * ceiling) / 2);
    }
    if (wait + MIN_ATTEMPT_MS > remaining())
      return { ok: false, failure, attempts, deadlineExceeded: true };
    await sleep(wait);
  }
}

/** A short, token-free description of a failure for messages and logs. */
export function describeKubeFailure(failure: KubeCallFailure): string {
  switch (failure.kind) {
    case 'status':
      return `HTTP ${failure.code}${failure.reason ? ` ${failure.reason}` : ''}`;
    case 'network':
      return `network error (${failure.detail})`;
    case 'timeout':
      return 'timed out';
  }
}
