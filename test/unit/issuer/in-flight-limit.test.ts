import { describe, expect, it } from '@jest/globals';
import {
  callerAddressOf,
  DEFAULT_IN_FLIGHT_LIMITS,
  InFlightLimiter,
} from '../../../src/issuer/grpc/in-flight-limit.js';
import { isWardenError } from '../../../src/shared/errors.js';

function refusal(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    if (isWardenError(err, 'ERR_OVERLOADED')) return err.message;
    throw err;
  }
  throw new Error('not refused');
}

describe('callerAddressOf', () => {
  it.each([
    ['an IPv4 peer', '10.1.2.3:40000', '10.1.2.3'],
    ['an IPv6 loopback peer', '::1:40000', '::1'],
    ['an IPv6 peer', '2001:db8::7:443', '2001:db8::7'],
    [
      'an IPv4-mapped IPv6 peer (same budget as its IPv4 form)',
      '::ffff:10.1.2.3:40000',
      '10.1.2.3',
    ],
    ['an upper-case IPv6 peer', 'FE80::1:40000', 'fe80::1'],
    ['a bracketed IPv6 peer', '[::1]:40000', '::1'],
    ['a peer grpc-js could not name', 'unknown', 'unknown'],
  ])('reduces %s to its address', (_what, peer, address) => {
    expect(callerAddressOf(peer)).toBe(address);
  });
});

describe('InFlightLimiter', () => {
  it('refuses a caller at its own limit while others still get slots, and names the flag', () => {
    const limiter = new InFlightLimiter({ maxInFlight: 10, maxInFlightPerCaller: 2 });
    limiter.acquire('10.0.0.1');
    limiter.acquire('10.0.0.1');
    expect(refusal(() => limiter.acquire('10.0.0.1'))).toBe(
      '2 requests from 10.0.0.1 are already in flight, the per-caller limit (--max-in-flight-per-caller 2); retry with backoff',
    );
    expect(() => limiter.acquire('10.0.0.2')).not.toThrow();
    expect(limiter.inFlight()).toBe(3);
    expect(limiter.inFlight('10.0.0.1')).toBe(2);
  });

  it('refuses everyone at the global limit and frees slots exactly once per release', () => {
    const limiter = new InFlightLimiter({ maxInFlight: 2, maxInFlightPerCaller: 2 });
    const first = limiter.acquire('a');
    limiter.acquire('b');
    expect(refusal(() => limiter.acquire('c'))).toMatch(/--max-in-flight 2\)/);
    first();
    first(); // a second release must not hand out a slot nobody gave back
    expect(limiter.inFlight()).toBe(1);
    expect(limiter.inFlight('a')).toBe(0);
    limiter.acquire('c');
    expect(refusal(() => limiter.acquire('d'))).toMatch(/working on 2 requests/);
  });

  it.each([
    ['zero', { maxInFlight: 0, maxInFlightPerCaller: 1 }],
    ['a fraction', { maxInFlight: 10, maxInFlightPerCaller: 1.5 }],
    ['more than a million', { maxInFlight: 2_000_000, maxInFlightPerCaller: 1 }],
  ])('is a TypeError to build with %s', (_what, limits) => {
    expect(() => new InFlightLimiter(limits)).toThrow(TypeError);
  });

  it('has documented defaults: 1024 overall, 64 per caller', () => {
    expect(DEFAULT_IN_FLIGHT_LIMITS).toEqual({ maxInFlight: 1024, maxInFlightPerCaller: 64 });
  });
});
