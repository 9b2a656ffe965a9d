import { describe, expect, it } from '@jest/globals';
import {
  advanceRotationState,
  HISTORY_LIMIT,
  IDLE_ROTATION_STATE,
  parseRotationState,
  serializeRotationState,
  type RotationState,
} from '../../../../src/ca/rotation/rotation-state.js';
import { WardenError } from '../../../../src/shared/errors.js';

const FP_A = Array.from({ length: 32 }, () => 'AA').join(':');
const FP_B = Array.from({ length: 32 }, () => 'BB').join(':');
const AT = '2026-01-01T00:00:00.000Z';

const PREPARED: RotationState = {
  version: 1,
  revision: 1,
  phase: 'prepared',
  nextRootFingerprint: FP_B,
  retiringRootFingerprint: FP_A,
  preparedAt: AT,
  activatedAt: null,
  history: [{ step: 'prepare', at: AT, forced: false, fingerprint: FP_B }],
};

function problemOf(value: unknown): string {
  try {
    parseRotationState(typeof value === 'string' ? value : JSON.stringify(value));
  } catch (err) {
    expect(err).toBeInstanceOf(WardenError);
    expect((err as WardenError).code).toBe('ERR_ROTATION_STATE');
    return (err as WardenError).message;
  }
  return 'accepted';
}

describe('rotation state', () => {
  it('round-trips through its JSON form', () => {
    expect(parseRotationState(serializeRotationState(PREPARED))).toEqual(PREPARED);
    expect(parseRotationState(serializeRotationState(IDLE_ROTATION_STATE))).toEqual(
      IDLE_ROTATION_STATE,
    );
  });

  it.each([
    ['text that is not JSON', '{', 'is not valid JSON'],
    ['a list', '[]', 'is not a JSON object'],
    ['another version', { ...PREPARED, version: 2 }, 'version must be 1'],
    [
      'a negative revision',
      { ...PREPARED, revision: -1 },
      'revision must be a non-negative integer',
    ],
    [
      'an unknown phase',
      { ...PREPARED, phase: 'rotating' },
      'phase must be one of idle, prepared, activated',
    ],
    [
      'a malformed fingerprint',
      { ...PREPARED, nextRootFingerprint: 'abc' },
      'nextRootFingerprint must be a SHA-256 fingerprint',
    ],
    [
      'a malformed time',
      { ...PREPARED, preparedAt: 'yesterday' },
      'preparedAt must be an ISO 8601 time',
    ],
    [
      'prepared without a next root',
      { ...PREPARED, nextRootFingerprint: null },
      'nextRootFingerprint must be set in phase prepared',
    ],
    [
      'idle with leftovers',
      { ...PREPARED, phase: 'idle' },
      'nextRootFingerprint must be null in phase idle',
    ],
    [
      'activated without activatedAt',
      { ...PREPARED, phase: 'activated', nextRootFingerprint: null },
      'activatedAt must be set in phase activated',
    ],
    [
      'the same root as next and retiring',
      { ...PREPARED, nextRootFingerprint: FP_A },
      'must differ',
    ],
    [
      'a history entry that is not an event',
      { ...PREPARED, history: [{ step: 'explode' }] },
      'history[0] is not a rotation event',
    ],
  ])('refuses %s, naming the problem', (_name, value, fragment) => {
    expect(problemOf(value)).toContain(fragment);
  });

  it('lists every problem at once', () => {
    const message = problemOf({ ...PREPARED, version: 3, revision: 'x', phase: 'nope' });
    expect(message).toContain('version must be 1');
    expect(message).toContain('revision must be');
    expect(message).toContain('phase must be');
  });

  it('advances the revision and keeps only the latest history', () => {
    let state: RotationState = IDLE_ROTATION_STATE;
    for (let i = 0; i < HISTORY_LIMIT + 5; i++) {
      state = advanceRotationState(
        state,
        {
          phase: 'idle',
          nextRootFingerprint: null,
          retiringRootFingerprint: null,
          preparedAt: null,
          activatedAt: null,
        },
        { step: 'renew-issuer', at: AT, forced: false, fingerprint: FP_A },
      );
    }
    expect(state.revision).toBe(HISTORY_LIMIT + 5);
    expect(state.history).toHaveLength(HISTORY_LIMIT);
    expect(Object.isFrozen(state)).toBe(true);
  });
});
