import { systemClock, type Clock } from '../../shared/clock.js';
import { describeError } from '../../shared/errors.js';
import { silentLogger, type Logger } from '../../shared/logger.js';
import type { WorkloadSvid } from './sentry-client.js';

/**
 * Keeps an X.509-SVID fresh the way Dapr's sidecars do: a new one is requested at half the
 * current one's lifetime. The decision (`svidRenewalTime`, `nextRenewalDelay`) is pure and
 * reads an injected clock; the loop only sleeps until then and looks at the clock again.
 */

/** Fires a callback after a delay; returns a function that cancels it. Injected by tests. */
export interface RenewalTimer {
  after(ms: number, callback: () => void): () => void;
}

export const systemRenewalTimer: RenewalTimer = {
  after(ms, callback) {
    const handle = setTimeout(callback, ms);
    // A renewal timer alone must not keep a process alive that has nothing else to do.
    handle.unref();
    return () => clearTimeout(handle);
  },
};

/** Dapr's clients renew at 50 % of the certificate's lifetime. */
export const DEFAULT_RENEWAL_FRACTION = 0.5;
/**
 * The longest single wait: the loop wakes at least this often and re-reads the clock, so a
 * suspended machine or a stepped clock is noticed (and setTimeout's 24.8-day limit is moot).
 */
export const MAX_RENEWAL_WAIT_MS = 5 * 60_000;
const DEFAULT_RETRY = Object.freeze({ initialMs: 1_000, maxMs: 60_000 });

/** When an SVID is due for renewal: notBefore + fraction × (notAfter − notBefore). */
export function svidRenewalTime(
  svid: Pick<WorkloadSvid, 'notBefore' | 'notAfter'>,
  fraction = DEFAULT_RENEWAL_FRACTION,
): Date {
  if (!(fraction > 0 && fraction < 1))
    throw new TypeError('renewal fraction must be between 0 and 1');
  const start = svid.notBefore.getTime();
  return new Date(start + Math.floor((svid.notAfter.getTime() - start) * fraction));
}

/** Milliseconds to wait before looking again (0 = renew now), never more than MAX_RENEWAL_WAIT_MS. */
export function nextRenewalDelay(now: Date, renewAt: Date): number {
  return Math.min(Math.max(0, renewAt.getTime() - now.getTime()), MAX_RENEWAL_WAIT_MS);
}

export interface SvidRenewalOptions {
  /** The SVID in use now. */
  readonly initial: WorkloadSvid;
  /** Obtains a new SVID, e.g. `() => client.requestSvid(request)` (which makes a new key). */
  readonly renew: () => Promise<WorkloadSvid>;
  /** Receives each new SVID: swap it into the TLS context, write files, ... */
  readonly onRenewed: (svid: WorkloadSvid) => void;
  /** Told about each failed renewal and when the next try is; the current SVID stays in use. */
  readonly onError?: (err: unknown, nextAttemptAt: Date) => void;
  readonly fraction?: number;
  /** Pause after a failed renewal, doubling up to maxMs (default 1 s → 60 s). */
  readonly retry?: { readonly initialMs: number; readonly maxMs: number };
  readonly clock?: Clock;
  readonly timer?: RenewalTimer;
  readonly logger?: Logger;
}

export interface SvidRenewal {
  current(): WorkloadSvid;
  /** When the next renewal is due (or the next retry after a failure). */
  nextRenewalAt(): Date;
  /** Stops the loop; a renewal in flight is discarded. Idempotent. */
  stop(): void;
}

export function startSvidRenewal(options: SvidRenewalOptions): SvidRenewal {
  const clock = options.clock ?? systemClock;
  const timer = options.timer ?? systemRenewalTimer;
  const retry = options.retry ?? DEFAULT_RETRY;
  const logger = (options.logger ?? silentLogger).child({ component: 'svid-renewal' });
  let current = options.initial;
  let dueAt = svidRenewalTime(current, options.fraction);
  let retryPause = retry.initialMs;
  let cancel: (() => void) | null = null;
  let stopped = false;

  const schedule = (): void => {
    if (stopped) return;
    cancel = timer.after(nextRenewalDelay(clock.now(), dueAt), tick);
  };

  function tick(): void {
    cancel = null;
    if (stopped) return;
    if (clock.now().getTime() < dueAt.getTime()) {
      schedule();
      return;
    }
    options.renew().then(
      (svid) => {
        if (stopped) return;
        current = svid;
        dueAt = svidRenewalTime(svid, options.fraction);
        retryPause = retry.initialMs;
        logger.info(
          {
            spiffeId: svid.spiffeId,
            serial: svid.serialNumber,
            notAfter: svid.notAfter.toISOString(),
            nextRenewalAt: dueAt.toISOString(),
          },
          'renewed the X.509-SVID',
        );
        try {
          options.onRenewed(svid);
        } catch (err) {
          // The consumer's failure must not end the loop: the SVID would silently expire.
          logger.error(`the renewed-SVID callback failed: ${describeError(err)}`);
        }
        schedule();
      },
      (err: unknown) => {
        if (stopped) return;
        dueAt = new Date(clock.now().getTime() + retryPause);
        retryPause = Math.min(retryPause * 2, retry.maxMs);
        logger.warn(
          {
            spiffeId: current.spiffeId,
            notAfter: current.notAfter.toISOString(),
            nextAttemptAt: dueAt.toISOString(),
          },
          `renewing the X.509-SVID failed: ${describeError(err)}`,
        );
        try {
          options.onError?.(err, dueAt);
        } catch (callbackErr) {
          logger.error(`the renewal-error callback failed: ${describeError(callbackErr)}`);
        }
        schedule();
      },
    );
  }

  schedule();
  return {
    current: () => current,
    nextRenewalAt: () => dueAt,
    stop() {
      stopped = true;
      cancel?.();
      cancel = null;
    },
  };
}
