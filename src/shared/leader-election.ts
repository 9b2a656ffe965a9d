import type { Clock } from './clock.js';
import { describeError } from './errors.js';
import { silentLogger, type Logger } from './logger.js';

/**
 * Lease-based leader election, the way client-go's leaderelection package does it:
 *
 * - A candidate reads the lease. Absent → it creates it naming itself. Held by another →
 *   it waits until it has seen the lease unchanged (same holder, same renewTime, same
 *   version) for leaseDuration **by its own clock** (never trusting the remote renewTime,
 *   so clock skew between replicas cannot shorten a lease), then takes it over with a
 *   compare-and-swap on the version. Held by itself (a restart with the same identity) → it
 *   renews at once.
 * - The leader renews every retryPeriod with a compare-and-swap. If it has not renewed
 *   successfully for renewDeadline (< leaseDuration), it stops leading at once — before any
 *   other candidate may take over — and isLeader() answers false from that instant even
 *   between ticks, so a partitioned leader stops writing before a new one starts.
 * - close() releases the lease (empty holder), so a standby takes over at its next tick
 *   instead of after leaseDuration.
 *
 * The decisions live in tick(), driven by an injected clock; start() only calls tick() on
 * timers, so tests step a ManualClock and call tick() by hand.
 */

/** What a lease says (coordination.k8s.io/v1 LeaseSpec). */
export interface LeaseRecord {
  /** Empty or absent: nobody holds it. */
  readonly holderIdentity: string | undefined;
  readonly leaseDurationSeconds: number;
  readonly acquireTime: Date | undefined;
  readonly renewTime: Date | undefined;
  readonly leaseTransitions: number;
}

export interface VersionedLease {
  readonly record: LeaseRecord;
  /** resourceVersion: the compare-and-swap token. */
  readonly version: string;
}

/** Where the lease lives. Errors (API down) are thrown; the elector logs and retries. */
export interface LeaseLock {
  /** For logs: "lease x in namespace y". */
  describe(): string;
  get(): Promise<VersionedLease | null>;
  /** 'exists' when another candidate created it first. */
  create(record: LeaseRecord): Promise<'created' | 'exists'>;
  /** Compare-and-swap on `version`: 'conflict' when the lease changed since it was read. */
  update(record: LeaseRecord, version: string): Promise<'updated' | 'conflict'>;
}

export interface LeaderElectorOptions {
  readonly lock: LeaseLock;
  /** This candidate: the pod name, or host name and pid. */
  readonly identity: string;
  /** How long a lease is valid without renewal (default 15 s). */
  readonly leaseDurationMs?: number;
  /** The leader gives up when it has not renewed for this long (default 10 s; < leaseDuration). */
  readonly renewDeadlineMs?: number;
  /** How often candidates try and the leader renews (default 5 s). */
  readonly retryPeriodMs?: number;
  readonly clock: Clock;
  readonly logger?: Logger;
  /** Jitter for standby retries, in [0, 1) (default Math.random). */
  readonly random?: () => number;
  readonly onStartedLeading?: () => void;
  readonly onStoppedLeading?: () => void;
  /** The observed leader changed (another candidate, this one, or nobody). */
  readonly onNewLeader?: (identity: string | undefined) => void;
}

export interface LeaderElector {
  readonly identity: string;
  /** True while this candidate holds a lease it renewed less than renewDeadline ago. */
  isLeader(): boolean;
  /** The holder last observed (this candidate included), or undefined. */
  leader(): string | undefined;
  /** One round: acquire or renew. Never throws; rounds never overlap. */
  tick(): Promise<void>;
  /** Runs tick() every retryPeriod (standbys with up to 20% jitter) until close(). */
  start(): void;
  /** Stops the timer and, when leading, releases the lease so a standby takes over at once. */
  close(): Promise<void>;
}

export const DEFAULT_LEASE_DURATION_MS = 15_000;
export const DEFAULT_RENEW_DEADLINE_MS = 10_000;
export const DEFAULT_RETRY_PERIOD_MS = 5_000;

export function createLeaderElector(options: LeaderElectorOptions): LeaderElector {
  const leaseDurationMs = options.leaseDurationMs ?? DEFAULT_LEASE_DURATION_MS;
  const renewDeadlineMs = options.renewDeadlineMs ?? DEFAULT_RENEW_DEADLINE_MS;
  const retryPeriodMs = options.retryPeriodMs ?? DEFAULT_RETRY_PERIOD_MS;
  if (!(renewDeadlineMs < leaseDurationMs))
    throw new TypeError('renewDeadlineMs must be shorter than leaseDurationMs');
  if (!(retryPeriodMs < renewDeadlineMs))
    throw new TypeError('retryPeriodMs must be shorter than renewDeadlineMs');
  if (options.identity.length === 0) throw new TypeError('identity must not be empty');
  const { lock, identity, clock } = options;
  const logger = options.logger ?? silentLogger;
  const random = options.random ?? Math.random;
  const leaseSeconds = Math.max(1, Math.ceil(leaseDurationMs / 1000));

  let leading = false;
  /** When this candidate last renewed (or acquired) successfully, by its own clock. */
  let renewedAt = 0;
  let observed: VersionedLease | null = null;
  /** When `observed` was first seen in its current form, by this candidate's clock. */
  let observedAt = 0;
  let observedLeader: string | undefined;
  let running: Promise<void> | null = null;
  let timer: NodeJS.Timeout | null = null;
  let closed = false;

  const now = (): number => clock.now().getTime();

  function setLeader(holder: string | undefined): void {
    if (holder === observedLeader) return;
    observedLeader = holder;
    logger.info({ lease: lock.describe(), leader: holder ?? null }, 'leader changed');
    safely(() => options.onNewLeader?.(holder));
  }

  function startLeading(at: number): void {
    renewedAt = at;
    setLeader(identity);
    if (leading) return;
    leading = true;
    logger.info({ lease: lock.describe(), identity }, 'became leader');
    safely(() => options.onStartedLeading?.());
  }

  function stopLeading(why: string): void {
    if (!leading) return;
    leading = false;
    logger.warn({ lease: lock.describe(), identity, why }, 'stopped leading');
    safely(() => options.onStoppedLeading?.());
  }

  function safely(callback: () => void): void {
    try {
      callback();
    } catch (err) {
      logger.error({ error: describeError(err) }, 'a leader-election listener failed');
    }
  }

  function observe(lease: VersionedLease, at: number): void {
    const same =
      observed !== null &&
      observed.version === lease.version &&
      observed.record.holderIdentity === lease.record.holderIdentity &&
      observed.record.renewTime?.getTime() === lease.record.renewTime?.getTime();
    if (!same) {
      observed = lease;
      observedAt = at;
    }
  }

  function ourRecord(previous: LeaseRecord | null, at: number): LeaseRecord {
    const ours = previous?.holderIdentity === identity;
    return {
      holderIdentity: identity,
      leaseDurationSeconds: leaseSeconds,
      acquireTime: ours && previous?.acquireTime ? previous.acquireTime : new Date(at),
      renewTime: new Date(at),
      leaseTransitions: (previous?.leaseTransitions ?? 0) + (ours || previous === null ? 0 : 1),
    };
  }

  async function round(): Promise<void> {
    const at = now();
    if (leading && at - renewedAt >= renewDeadlineMs) stopLeading('renew deadline passed');
    let lease: VersionedLease | null;
    try {
      lease = await lock.get();
    } catch (err) {
      logger.warn({ lease: lock.describe(), error: describeError(err) }, 'cannot read the lease');
      if (leading && now() - renewedAt >= renewDeadlineMs) stopLeading('renew deadline passed');
      return;
    }
    const seenAt = now();
    if (lease === null) {
      const record = ourRecord(null, seenAt);
      const outcome = await lock.create(record);
      if (outcome === 'created') {
        observed = null;
        startLeading(seenAt);
      } else if (leading) {
        stopLeading('the lease was recreated by another candidate');
      }
      return;
    }
    observe(lease, seenAt);
    const holder = lease.record.holderIdentity || undefined;
    if (holder !== identity) {
      if (leading) stopLeading(`the lease is held by ${holder ?? 'nobody'}`);
      const durationMs = Math.max(1, lease.record.leaseDurationSeconds) * 1000;
      if (holder !== undefined && seenAt - observedAt < durationMs) {
        setLeader(holder);
        return;
      }
    }
    // Free, expired, or ours: take or renew it with a compare-and-swap.
    const outcome = await lock.update(ourRecord(lease.record, seenAt), lease.version);
    if (outcome === 'updated') {
      startLeading(seenAt);
    } else if (leading && now() - renewedAt >= renewDeadlineMs) {
      stopLeading('renew deadline passed');
    }
  }

  async function tick(): Promise<void> {
    if (closed) return;
    if (running) return running;
    running = round()
      .catch((err: unknown) => {
        logger.warn(
          { lease: lock.describe(), error: describeError(err) },
          'leader election round failed',
        );
        if (leading && now() - renewedAt >= renewDeadlineMs) stopLeading('renew deadline passed');
      })
      .finally(() => {
        running = null;
      });
    return running;
  }

  function schedule(): void {
    if (closed) return;
    // Standbys spread their attempts; the leader renews on the beat.
    const wait = leading ? retryPeriodMs : Math.round(retryPeriodMs * (1 + random() * 0.2));
    timer = setTimeout(() => {
      void tick().finally(schedule);
    }, wait);
    // The servers keep the process alive; a pending election round never should.
    timer.unref();
  }

  return {
    identity,
    isLeader() {
      if (!leading) return false;
      if (now() - renewedAt >= renewDeadlineMs) {
        stopLeading('renew deadline passed');
        return false;
      }
      return true;
    },
    leader: () => observedLeader,
    tick,
    start() {
      if (timer || closed) return;
      void tick().finally(schedule);
    },
    async close() {
      if (closed) return;
      closed = true;
      if (timer) clearTimeout(timer);
      timer = null;
      if (running) await running;
      if (!leading) return;
      leading = false;
      try {
        const lease = await lock.get();
        if (lease && lease.record.holderIdentity === identity) {
          const at = now();
          await lock.update(
            {
              holderIdentity: undefined,
              leaseDurationSeconds: 1,
              acquireTime: lease.record.acquireTime,
              renewTime: new Date(at),
              leaseTransitions: lease.record.leaseTransitions,
            },
            lease.version,
          );
          logger.info({ lease: lock.describe(), identity }, 'released the lease');
        }
      } catch (err) {
        logger.warn(
          { lease: lock.describe(), error: describeError(err) },
          'cannot release the lease; standbys take over when it expires',
        );
      }
      safely(() => options.onStoppedLeading?.());
    },
  };
}
