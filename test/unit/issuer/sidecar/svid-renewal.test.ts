import { describe, expect, it } from '@jest/globals';
import type { WorkloadSvid } from '../../../../src/issuer/sidecar/sentry-client.js';
import {
  MAX_RENEWAL_WAIT_MS,
  nextRenewalDelay,
  startSvidRenewal,
  svidRenewalTime,
  type RenewalTimer,
} from '../../../../src/issuer/sidecar/svid-renewal.js';
import { ManualClock } from '../../../../src/shared/clock.js';

const HOUR = 3_600_000;
const T0 = Date.UTC(2026, 0, 1);

/** A timer the test fires by hand; it records every delay it was asked for. */
class ManualTimer implements RenewalTimer {
  readonly delays: number[] = [];
  #pending: { callback: () => void; cancelled: boolean } | null = null;

  after(ms: number, callback: () => void): () => void {
    if (this.#pending && !this.#pending.cancelled) throw new Error('two renewal timers at once');
    const entry = { callback, cancelled: false };
    this.#pending = entry;
    this.delays.push(ms);
    return () => {
      entry.cancelled = true;
    };
  }

  get armed(): boolean {
    return this.#pending !== null && !this.#pending.cancelled;
  }

  fire(): void {
    const entry = this.#pending;
    if (!entry || entry.cancelled) throw new Error('no timer armed');
    this.#pending = null;
    entry.callback();
  }
}

/** Only the fields the renewal loop reads; the rest of an SVID is irrelevant here. */
function svid(serial: string, notBeforeMs: number, lifetimeMs: number): WorkloadSvid {
  return {
    spiffeId: 'spiffe://public/ns/default/app',
    serialNumber: serial,
    notBefore: new Date(notBeforeMs),
    notAfter: new Date(notBeforeMs + lifetimeMs),
  } as WorkloadSvid;
}

const settle = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

describe('when an SVID is renewed', () => {
  it.each([
    ['half of a 24h lifetime', svid('a', T0, 24 * HOUR), undefined, T0 + 12 * HOUR],
    [
      'half of a lifetime backdated by 15 minutes',
      svid('a', T0 - 15 * 60_000, 24 * HOUR + 15 * 60_000),
      undefined,
      T0 + 12 * HOUR - 7.5 * 60_000,
    ],
    ['80 % when asked', svid('a', T0, 10 * HOUR), 0.8, T0 + 8 * HOUR],
  ])('at %s', (_name, certificate, fraction, expected) => {
    expect(svidRenewalTime(certificate, fraction).getTime()).toBe(expected);
  });

  it.each([0, 1, -0.5, Number.NaN])('refuses the fraction %s', (fraction) => {
    expect(() => svidRenewalTime(svid('a', T0, HOUR), fraction)).toThrow(TypeError);
  });

  it.each([
    ['due in 2 minutes', T0, T0 + 2 * 60_000, 2 * 60_000],
    [
      'due in 12 hours (capped so the clock is looked at again)',
      T0,
      T0 + 12 * HOUR,
      MAX_RENEWAL_WAIT_MS,
    ],
    ['overdue', T0 + HOUR, T0, 0],
  ])('waits the right time when %s', (_name, now, due, expected) => {
    expect(nextRenewalDelay(new Date(now), new Date(due))).toBe(expected);
  });
});

describe('startSvidRenewal', () => {
  function harness(renew: () => Promise<WorkloadSvid>) {
    const clock = new ManualClock(T0);
    const timer = new ManualTimer();
    const renewed: WorkloadSvid[] = [];
    const errors: Array<{ err: unknown; next: Date }> = [];
    const renewal = startSvidRenewal({
      initial: svid('first', T0, 24 * HOUR),
      renew,
      onRenewed: (s) => renewed.push(s),
      onError: (err, next) => errors.push({ err, next }),
      clock,
      timer,
    });
    return { clock, timer, renewed, errors, renewal };
  }

  it('does nothing before half-life, however often the timer wakes, then renews once and follows the new SVID', async () => {
    let calls = 0;
    const h = harness(async () => {
      calls++;
      return svid('second', h.clock.now().getTime(), 24 * HOUR);
    });
    expect(h.renewal.nextRenewalAt().getTime()).toBe(T0 + 12 * HOUR);
    for (let woke = 0; woke < 3; woke++) {
      h.clock.advance(h.timer.delays.at(-1)!);
      h.timer.fire();
      await settle();
    }
    expect(calls).toBe(0);
    h.clock.set(T0 + 12 * HOUR);
    h.timer.fire();
    await settle();
    expect(calls).toBe(1);
    expect(h.renewed.map((s) => s.serialNumber)).toEqual(['second']);
    expect(h.renewal.current().serialNumber).toBe('second');
    expect(h.renewal.nextRenewalAt().getTime()).toBe(T0 + 24 * HOUR);
    expect(h.timer.armed).toBe(true);
    h.renewal.stop();
  });

  it('keeps the current SVID when renewal fails and retries with a doubling pause, then resets it', async () => {
    const answers: Array<() => Promise<WorkloadSvid>> = [
      () => Promise.reject(new Error('CA unreachable')),
      () => Promise.reject(new Error('CA unreachable')),
      () => Promise.resolve(svid('second', T0 + 12 * HOUR, 24 * HOUR)),
    ];
    const h = harness(() => (answers.shift() as () => Promise<WorkloadSvid>)());
    h.clock.set(T0 + 12 * HOUR);
    h.timer.fire();
    await settle();
    expect(h.errors.map((e) => e.next.getTime() - (T0 + 12 * HOUR))).toEqual([1_000]);
    expect(h.renewal.current().serialNumber).toBe('first');
    expect(h.timer.delays.at(-1)).toBe(1_000);
    h.clock.advance(1_000);
    h.timer.fire();
    await settle();
    expect(h.timer.delays.at(-1)).toBe(2_000);
    h.clock.advance(2_000);
    h.timer.fire();
    await settle();
    expect(h.renewed.map((s) => s.serialNumber)).toEqual(['second']);
    expect(h.errors).toHaveLength(2);
    expect(String(h.errors[0]?.err)).toContain('CA unreachable');
    h.renewal.stop();
  });

  it('stop() cancels the timer and discards a renewal that was in flight', async () => {
    let resolveRenewal: (s: WorkloadSvid) => void = () => undefined;
    const h = harness(() => new Promise<WorkloadSvid>((resolve) => (resolveRenewal = resolve)));
    h.clock.set(T0 + 12 * HOUR);
    h.timer.fire();
    h.renewal.stop();
    resolveRenewal(svid('late', T0 + 12 * HOUR, 24 * HOUR));
    await settle();
    expect(h.renewed).toEqual([]);
    expect(h.renewal.current().serialNumber).toBe('first');
    expect(h.timer.armed).toBe(false);
  });

  it('keeps renewing when the consumer’s callback throws', async () => {
    const clock = new ManualClock(T0 + 12 * HOUR);
    const timer = new ManualTimer();
    const renewal = startSvidRenewal({
      initial: svid('first', T0, 24 * HOUR),
      renew: async () => svid('second', clock.now().getTime(), 24 * HOUR),
      onRenewed: () => {
        throw new Error('consumer bug');
      },
      clock,
      timer,
    });
    expect(timer.delays).toEqual([0]);
    timer.fire();
    await settle();
    expect(renewal.current().serialNumber).toBe('second');
    expect(timer.armed).toBe(true);
    renewal.stop();
  });
});
