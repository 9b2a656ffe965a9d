import { describe, expect, it } from '@jest/globals';
import { ManualClock } from '../../../src/shared/clock.js';
import {
  createLeaderElector,
  type LeaderElector,
  type LeaseLock,
  type LeaseRecord,
  type VersionedLease,
} from '../../../src/shared/leader-election.js';

/** One Lease, compare-and-swap on a version counter, as the API server keeps it. */
class MemoryLease {
  lease: VersionedLease | null = null;
  #version = 0;
  put(record: LeaseRecord): void {
    this.#version += 1;
    this.lease = { record, version: String(this.#version) };
  }
  /** A candidate's view of it; `down` makes that candidate's calls fail (a partition). */
  handle(): LeaseLock & { down: boolean } {
    const put = (record: LeaseRecord): void => this.put(record);
    const current = (): VersionedLease | null => this.lease;
    return {
      down: false,
      describe: () => 'lease test',
      async get() {
        if (this.down) throw new Error('connection refused');
        return current();
      },
      async create(record) {
        if (this.down) throw new Error('connection refused');
        if (current()) return 'exists';
        put(record);
        return 'created';
      },
      async update(record, version) {
        if (this.down) throw new Error('connection refused');
        if (current()?.version !== version) return 'conflict';
        put(record);
        return 'updated';
      },
    };
  }
}

interface Candidate {
  readonly elector: LeaderElector;
  readonly lock: LeaseLock & { down: boolean };
  readonly events: string[];
}

function candidate(lease: MemoryLease, identity: string, clock: ManualClock): Candidate {
  const events: string[] = [];
  const lock = lease.handle();
  const elector = createLeaderElector({
    lock,
    identity,
    clock,
    leaseDurationMs: 15_000,
    renewDeadlineMs: 10_000,
    retryPeriodMs: 5_000,
    onStartedLeading: () => events.push('started'),
    onStoppedLeading: () => events.push('stopped'),
  });
  return { elector, lock, events };
}

describe('leader election (injected clock, in-memory lease)', () => {
  it('lets the first candidate create the lease and lead while the second stands by', async () => {
    const clock = new ManualClock();
    const lease = new MemoryLease();
    const a = candidate(lease, 'a', clock);
    const b = candidate(lease, 'b', clock);
    await a.elector.tick();
    await b.elector.tick();
    expect(a.elector.isLeader()).toBe(true);
    expect(b.elector.isLeader()).toBe(false);
    expect(b.elector.leader()).toBe('a');
    expect(lease.lease?.record).toMatchObject({
      holderIdentity: 'a',
      leaseDurationSeconds: 15,
      leaseTransitions: 0,
    });
    expect(a.events).toEqual(['started']);
  });

  it('keeps the leader while it renews every retry period, however long that goes on', async () => {
    const clock = new ManualClock();
    const lease = new MemoryLease();
    const a = candidate(lease, 'a', clock);
    const b = candidate(lease, 'b', clock);
    await a.elector.tick();
    for (let i = 0; i < 20; i++) {
      clock.advance(5_000);
      await a.elector.tick();
      await b.elector.tick();
      expect(a.elector.isLeader()).toBe(true);
      expect(b.elector.isLeader()).toBe(false);
    }
    expect(a.events).toEqual(['started']);
  });

  it('hands over only after the standby has seen the lease unchanged for leaseDuration', async () => {
    const clock = new ManualClock();
    const lease = new MemoryLease();
    const a = candidate(lease, 'a', clock);
    const b = candidate(lease, 'b', clock);
    await a.elector.tick();
    await b.elector.tick(); // b observes a's lease now
    // a stops renewing (crashed). b looks every 5 s.
    for (const elapsed of [5_000, 10_000]) {
      clock.set(Date.UTC(2026, 0, 1) + elapsed);
      await b.elector.tick();
      expect(b.elector.isLeader()).toBe(false);
    }
    clock.set(Date.UTC(2026, 0, 1) + 15_000);
    await b.elector.tick();
    expect(b.elector.isLeader()).toBe(true);
    expect(lease.lease?.record).toMatchObject({ holderIdentity: 'b', leaseTransitions: 1 });
    // a, were it alive, no longer counts itself leader: its renew deadline has passed.
    expect(a.elector.isLeader()).toBe(false);
    expect(a.events).toEqual(['started', 'stopped']);
  });

  it('measures expiry by its own clock from when it saw the lease change, not by the remote renewTime (clock skew)', async () => {
    const clock = new ManualClock();
    const lease = new MemoryLease();
    // Another replica whose clock is an hour behind renewed "an hour ago" by our clock.
    lease.put({
      holderIdentity: 'skewed',
      leaseDurationSeconds: 15,
      acquireTime: new Date(clock.now().getTime() - 3_600_000),
      renewTime: new Date(clock.now().getTime() - 3_600_000),
      leaseTransitions: 0,
    });
    const b = candidate(lease, 'b', clock);
    await b.elector.tick();
    expect(b.elector.isLeader()).toBe(false);
    expect(b.elector.leader()).toBe('skewed');
  });

  it('stops leading as soon as renewals have failed for renewDeadline, even between ticks, before anyone can take over', async () => {
    const clock = new ManualClock();
    const lease = new MemoryLease();
    const a = candidate(lease, 'a', clock);
    const b = candidate(lease, 'b', clock);
    await a.elector.tick();
    await b.elector.tick();
    a.lock.down = true; // partitioned from the API server
    clock.advance(5_000);
    await a.elector.tick();
    expect(a.elector.isLeader()).toBe(true); // 5 s since the last renewal: still within the deadline
    clock.advance(5_000);
    expect(a.elector.isLeader()).toBe(false); // 10 s: the deadline, no tick needed
    expect(a.events).toEqual(['started', 'stopped']);
    // b cannot have taken over yet (it needs 15 s of an unchanged lease): no overlap.
    await b.elector.tick();
    expect(b.elector.isLeader()).toBe(false);
    clock.advance(5_000);
    await b.elector.tick();
    expect(b.elector.isLeader()).toBe(true);
    // a's partition heals: it finds b holding the lease and stands by.
    a.lock.down = false;
    await a.elector.tick();
    expect(a.elector.isLeader()).toBe(false);
    expect(a.elector.leader()).toBe('b');
  });

  it('releases the lease on close so that a standby takes over at its next tick', async () => {
    const clock = new ManualClock();
    const lease = new MemoryLease();
    const a = candidate(lease, 'a', clock);
    const b = candidate(lease, 'b', clock);
    await a.elector.tick();
    await b.elector.tick();
    await a.elector.close();
    expect(lease.lease?.record.holderIdentity).toBeUndefined();
    expect(a.events).toEqual(['started', 'stopped']);
    clock.advance(1);
    await b.elector.tick();
    expect(b.elector.isLeader()).toBe(true);
  });

  it('renews at once a lease that already names it (a restart with the same pod name)', async () => {
    const clock = new ManualClock();
    const lease = new MemoryLease();
    lease.put({
      holderIdentity: 'a',
      leaseDurationSeconds: 15,
      acquireTime: clock.now(),
      renewTime: clock.now(),
      leaseTransitions: 3,
    });
    const a = candidate(lease, 'a', clock);
    await a.elector.tick();
    expect(a.elector.isLeader()).toBe(true);
    expect(lease.lease?.record.leaseTransitions).toBe(3);
  });

  it('lets exactly one of two candidates that race to create the lease lead', async () => {
    const clock = new ManualClock();
    const lease = new MemoryLease();
    const a = candidate(lease, 'a', clock);
    const b = candidate(lease, 'b', clock);
    await Promise.all([a.elector.tick(), b.elector.tick()]);
    expect([a.elector.isLeader(), b.elector.isLeader()].filter(Boolean)).toHaveLength(1);
  });

  it.each([
    [
      'renewDeadline not shorter than leaseDuration',
      { leaseDurationMs: 10_000, renewDeadlineMs: 10_000 },
    ],
    [
      'retryPeriod not shorter than renewDeadline',
      { renewDeadlineMs: 5_000, retryPeriodMs: 5_000 },
    ],
  ])('refuses timings that could let two leaders overlap (%s)', (_name, timings) => {
    expect(() =>
      createLeaderElector({
        lock: new MemoryLease().handle(),
        identity: 'a',
        clock: new ManualClock(),
        ...timings,
      }),
    ).toThrow(TypeError);
  });
});
