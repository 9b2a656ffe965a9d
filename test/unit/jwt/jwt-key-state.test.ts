import { beforeAll, describe, expect, it } from '@jest/globals';
import {
  activateNextJwtKey,
  dueJwtRotationStep,
  initialJwtKeyState,
  jwtKeySetOf,
  prepareNextJwtKey,
  publishedJwks,
  retirePreviousJwtKey,
  type JwtKeyState,
} from '../../../src/ca/jwt/jwt-key-state.js';
import { generateJwtSigningKey, type JwtSigningKey } from '../../../src/ca/jwt/jwt-signing-key.js';
import { ManualClock } from '../../../src/shared/clock.js';
import { isWardenError, type WardenError } from '../../../src/shared/errors.js';

const HOUR = 3_600_000;
const POLICY = { minPublishedMs: HOUR, maxTokenLifetimeMs: 24 * HOUR + 15 * 60_000 };

function refusal(attempt: () => unknown): WardenError {
  try {
    attempt();
  } catch (err) {
    if (isWardenError(err)) return err;
    throw err;
  }
  throw new Error('expected a refusal');
}

describe('JWT key rotation state', () => {
  let first: JwtSigningKey;
  let second: JwtSigningKey;
  let third: JwtSigningKey;
  beforeAll(async () => {
    [first, second, third] = await Promise.all([
      generateJwtSigningKey('ES256'),
      generateJwtSigningKey('ES256'),
      generateJwtSigningKey('EdDSA'),
    ]);
  });

  const kids = (state: JwtKeyState): (string | undefined)[] =>
    publishedJwks(state).keys.map((k) => k.kid);

  it('publishes a prepared next key while the current key keeps signing', () => {
    const clock = new ManualClock();
    const state = prepareNextJwtKey(initialJwtKeyState(first), second, clock.now());
    expect(kids(state)).toEqual([first.kid, second.kid]);
    expect(jwtKeySetOf(state).signingKey.kid).toBe(first.kid);
    expect(state.next?.preparedAt).toEqual(clock.now());
  });

  it('refuses to activate before the next key has been published for minPublishedMs, saying from when', () => {
    const clock = new ManualClock();
    const prepared = prepareNextJwtKey(initialJwtKeyState(first), second, clock.now());
    clock.advance(HOUR - 1);
    const err = refusal(() => activateNextJwtKey(prepared, clock.now(), POLICY));
    expect(err.code).toBe('ERR_ROTATION_REFUSED');
    const allowedFrom = new Date(clock.now().getTime() + 1).toISOString();
    expect(err.message).toContain(allowedFrom);
    expect(err.details.allowedFrom).toBe(allowedFrom);
  });

  it('activates after minPublishedMs: the next key signs, the old one stays published as previous', () => {
    const clock = new ManualClock();
    const prepared = prepareNextJwtKey(initialJwtKeyState(first), second, clock.now());
    clock.advance(HOUR);
    const active = activateNextJwtKey(prepared, clock.now(), POLICY);
    expect(active.current.kid).toBe(second.kid);
    expect(active.next).toBeNull();
    expect(active.previous?.key.kid).toBe(first.kid);
    expect(active.previous?.retireAfter).toEqual(
      new Date(clock.now().getTime() + POLICY.maxTokenLifetimeMs),
    );
    expect(kids(active)).toEqual([second.kid, first.kid]);
    expect('privateKey' in (active.previous?.key ?? {})).toBe(false);
  });

  it('activates early when forced', () => {
    const clock = new ManualClock();
    const prepared = prepareNextJwtKey(initialJwtKeyState(first), second, clock.now());
    expect(activateNextJwtKey(prepared, clock.now(), { ...POLICY, force: true }).current.kid).toBe(
      second.kid,
    );
  });

  it('refuses to retire the previous key before its last token expires, and retires it after', () => {
    const clock = new ManualClock();
    let state = prepareNextJwtKey(initialJwtKeyState(first), second, clock.now());
    clock.advance(HOUR);
    state = activateNextJwtKey(state, clock.now(), POLICY);
    clock.advance(POLICY.maxTokenLifetimeMs - 1000);
    const err = refusal(() => retirePreviousJwtKey(state, clock.now()));
    expect(err.code).toBe('ERR_ROTATION_REFUSED');
    expect(err.message).toMatch(/may still have live tokens; allowed from/);
    clock.advance(1000);
    const retired = retirePreviousJwtKey(state, clock.now());
    expect(retired.previous).toBeNull();
    expect(kids(retired)).toEqual([second.kid]);
  });

  it('retires early when forced, and returns the state unchanged when there is nothing to retire', () => {
    const clock = new ManualClock();
    let state = prepareNextJwtKey(initialJwtKeyState(first), second, clock.now());
    state = activateNextJwtKey(state, clock.now(), { ...POLICY, force: true });
    expect(retirePreviousJwtKey(state, clock.now(), { force: true }).previous).toBeNull();
    const plain = initialJwtKeyState(first);
    expect(retirePreviousJwtKey(plain, clock.now())).toBe(plain);
  });

  it('refuses to activate while an older previous key may still have live tokens', () => {
    const clock = new ManualClock();
    let state = prepareNextJwtKey(initialJwtKeyState(first), second, clock.now());
    clock.advance(HOUR);
    state = activateNextJwtKey(state, clock.now(), POLICY);
    state = prepareNextJwtKey(state, third, clock.now());
    clock.advance(HOUR);
    expect(kids(state)).toEqual([second.kid, third.kid, first.kid]);
    expect(refusal(() => activateNextJwtKey(state, clock.now(), POLICY)).message).toMatch(
      /previous JWT key .* live tokens/,
    );
  });

  const structural: [string, (clock: ManualClock) => unknown, RegExp][] = [
    [
      'preparing a second next key',
      (c) =>
        prepareNextJwtKey(
          prepareNextJwtKey(initialJwtKeyState(first), second, c.now()),
          third,
          c.now(),
        ),
      /already prepared/,
    ],
    [
      'preparing a key whose kid is already published',
      (c) => prepareNextJwtKey(initialJwtKeyState(first), first, c.now()),
      /already published/,
    ],
    [
      'activating without a next key',
      (c) => activateNextJwtKey(initialJwtKeyState(first), c.now(), POLICY),
      /no next JWT key/,
    ],
  ];
  it.each(structural)('refuses %s', (_name, attempt, message) => {
    const err = refusal(() => attempt(new ManualClock()));
    expect(err.code).toBe('ERR_ROTATION_REFUSED');
    expect(err.message).toMatch(message);
  });

  it('replaces an unused next key when forced', () => {
    const clock = new ManualClock();
    const state = prepareNextJwtKey(
      prepareNextJwtKey(initialJwtKeyState(first), second, clock.now()),
      third,
      clock.now(),
      { force: true },
    );
    expect(kids(state)).toEqual([first.kid, third.kid]);
  });

  it('publishes foreign keys after the managed ones and never lets a next key take their kid', () => {
    const foreign = { ...second.publicJwk };
    const state = initialJwtKeyState(first, [foreign]);
    expect(kids(state)).toEqual([first.kid, second.kid]);
    expect(refusal(() => prepareNextJwtKey(state, second, new Date())).message).toMatch(
      /already published/,
    );
  });

  it('says which step is due: activate after the publication time, retire after the last token', () => {
    const clock = new ManualClock();
    let state = initialJwtKeyState(first);
    expect(dueJwtRotationStep(state, clock.now(), POLICY)).toBeNull();
    state = prepareNextJwtKey(state, second, clock.now());
    expect(dueJwtRotationStep(state, clock.now(), POLICY)).toBeNull();
    clock.advance(HOUR);
    expect(dueJwtRotationStep(state, clock.now(), POLICY)).toBe('activate');
    state = activateNextJwtKey(state, clock.now(), POLICY);
    expect(dueJwtRotationStep(state, clock.now(), POLICY)).toBeNull();
    clock.advance(POLICY.maxTokenLifetimeMs);
    expect(dueJwtRotationStep(state, clock.now(), POLICY)).toBe('retire');
  });

  it('never mutates the state it was given', () => {
    const clock = new ManualClock();
    const initial = initialJwtKeyState(first);
    const prepared = prepareNextJwtKey(initial, second, clock.now());
    activateNextJwtKey(prepared, clock.now(), { ...POLICY, force: true });
    expect(initial.next).toBeNull();
    expect(prepared.current.kid).toBe(first.kid);
    expect(Object.isFrozen(prepared)).toBe(true);
  });
});
