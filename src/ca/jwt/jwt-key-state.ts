import { WardenError } from '../../shared/errors.js';
import { formatDuration } from '../../shared/duration.js';
import type { PublicJwk, PublicJwks } from './jwk.js';
import { publicPartOf, type JwtPublicKey, type JwtSigningKey } from './jwt-signing-key.js';

/**
 * JWT key rotation as pure functions over an immutable state, with the same phases as the
 * root: a `next` key is published in the JWKS before it signs (so verifiers that cache the
 * JWKS learn it in time), then becomes `current`; the old key stays published as `previous`
 * until the last token it signed has expired, then is retired. Time always comes in as a
 * parameter; persisting and scheduling are someone else's job.
 */
export interface JwtNextKey {
  readonly key: JwtSigningKey;
  /** When the key was first published; activation waits `minPublishedMs` from here. */
  readonly preparedAt: Date;
}

export interface JwtPreviousKey {
  /** Public half only: a key that no longer signs has no reason to keep its private half. */
  readonly key: JwtPublicKey;
  /** The last moment a token signed by this key can still be valid (activation + max token lifetime). */
  readonly retireAfter: Date;
}

export interface JwtKeyState {
  /** The key every new token is signed with. */
  readonly current: JwtSigningKey;
  readonly next: JwtNextKey | null;
  readonly previous: JwtPreviousKey | null;
  /**
   * Keys found in a jwks.json that Warden does not manage (e.g. a user's own older key),
   * published exactly as they were read.
   */
  readonly foreignKeys: readonly PublicJwk[];
}

/** What the signing path and the OIDC server need: the signing key and everything published. */
export interface JwtKeySet {
  readonly state: JwtKeyState;
  readonly signingKey: JwtSigningKey;
  readonly publishedJwks: PublicJwks;
}

/**
 * Default time a next key is published before it may sign: longer than the OIDC server's
 * JWKS Cache-Control max-age and Dapr's jwks validator refresh interval (10m), with margin.
 */
export const DEFAULT_JWT_NEXT_KEY_MIN_PUBLISHED_MS = 60 * 60 * 1000;

export function initialJwtKeyState(
  current: JwtSigningKey,
  foreignKeys: readonly PublicJwk[] = [],
): JwtKeyState {
  return Object.freeze({
    current,
    next: null,
    previous: null,
    foreignKeys: Object.freeze([...foreignKeys]),
  });
}

/** Every key to publish: current, next, previous (managed keys first), then foreign keys. */
export function publishedJwks(state: JwtKeyState): PublicJwks {
  const keys: PublicJwk[] = [state.current.publicJwk];
  if (state.next) keys.push(state.next.key.publicJwk);
  if (state.previous) keys.push(state.previous.key.publicJwk);
  keys.push(...state.foreignKeys);
  return Object.freeze({ keys: Object.freeze(keys) });
}

export function jwtKeySetOf(state: JwtKeyState): JwtKeySet {
  return Object.freeze({ state, signingKey: state.current, publishedJwks: publishedJwks(state) });
}

/** The kids Warden manages in this state (current, next, previous). */
export function managedKeyIds(state: JwtKeyState): string[] {
  const kids = [state.current.kid];
  if (state.next) kids.push(state.next.key.kid);
  if (state.previous) kids.push(state.previous.key.kid);
  return kids;
}

export interface RotationStepOptions {
  /** Skip the timing checks (an operator override); structural checks still apply. */
  readonly force?: boolean;
}

/**
 * Adds `key` as the next key: published from `now`, not yet signing. Refused when a next key
 * is already prepared (unless forced, which replaces it before it ever signed) or when its
 * kid collides with a published key.
 */
export function prepareNextJwtKey(
  state: JwtKeyState,
  key: JwtSigningKey,
  now: Date,
  options: RotationStepOptions = {},
): JwtKeyState {
  if (state.next && !options.force) {
    throw new WardenError(
      'ERR_ROTATION_REFUSED',
      `a next JWT key (kid "${state.next.key.kid}") is already prepared; activate it first or force a replacement`,
    );
  }
  const taken = new Set([state.current.kid, ...(state.previous ? [state.previous.key.kid] : [])]);
  for (const jwk of state.foreignKeys) if (typeof jwk.kid === 'string') taken.add(jwk.kid);
  if (taken.has(key.kid)) {
    throw new WardenError(
      'ERR_ROTATION_REFUSED',
      `the next JWT key's kid "${key.kid}" is already published`,
    );
  }
  return Object.freeze({
    ...state,
    next: Object.freeze({ key, preparedAt: new Date(now.getTime()) }),
  });
}

export interface ActivateOptions extends RotationStepOptions {
  /** How long the next key must have been published before it may sign. */
  readonly minPublishedMs: number;
  /**
   * The longest a token signed by the outgoing key may stay valid after `now` (the JWT TTL,
   * plus the clock skew verifiers tolerate); the outgoing key stays published that long.
   */
  readonly maxTokenLifetimeMs: number;
}

/**
 * Makes the next key current; the current key becomes `previous` until
 * `now + maxTokenLifetimeMs`. Refused before the next key has been published for
 * `minPublishedMs`, and while an older previous key still has live tokens (activating then
 * would unpublish it early) — unless forced.
 */
export function activateNextJwtKey(
  state: JwtKeyState,
  now: Date,
  options: ActivateOptions,
): JwtKeyState {
  if (options.minPublishedMs < 0 || options.maxTokenLifetimeMs < 0) {
    throw new TypeError('rotation durations must not be negative');
  }
  const next = state.next;
  if (!next)
    throw new WardenError(
      'ERR_ROTATION_REFUSED',
      'there is no next JWT key to activate; prepare one first',
    );
  if (!options.force) {
    const publishedEnoughAt = next.preparedAt.getTime() + options.minPublishedMs;
    if (now.getTime() < publishedEnoughAt) {
      throw refusedUntil(
        `the next JWT key (kid "${next.key.kid}") has been published for less than ${formatDuration(options.minPublishedMs)}`,
        publishedEnoughAt,
      );
    }
    if (state.previous && now.getTime() < state.previous.retireAfter.getTime()) {
      throw refusedUntil(
        `the previous JWT key (kid "${state.previous.key.kid}") may still have live tokens`,
        state.previous.retireAfter.getTime(),
      );
    }
  }
  return Object.freeze({
    current: next.key,
    next: null,
    previous: Object.freeze({
      key: publicPartOf(state.current),
      retireAfter: new Date(now.getTime() + options.maxTokenLifetimeMs),
    }),
    foreignKeys: state.foreignKeys,
  });
}

/**
 * Unpublishes the previous key once every token it signed has expired. No previous key: the
 * state is returned unchanged (so a periodic caller need not check first). Too early: refused
 * unless forced.
 */
export function retirePreviousJwtKey(
  state: JwtKeyState,
  now: Date,
  options: RotationStepOptions = {},
): JwtKeyState {
  const previous = state.previous;
  if (!previous) return state;
  if (!options.force && now.getTime() < previous.retireAfter.getTime()) {
    throw refusedUntil(
      `the previous JWT key (kid "${previous.key.kid}") may still have live tokens`,
      previous.retireAfter.getTime(),
    );
  }
  return Object.freeze({ ...state, previous: null });
}

/** Which rotation step (if any) is due at `now`, for a ticker that drives these functions. */
export function dueJwtRotationStep(
  state: JwtKeyState,
  now: Date,
  options: { readonly minPublishedMs: number },
): 'activate' | 'retire' | null {
  const t = now.getTime();
  if (state.previous && t >= state.previous.retireAfter.getTime()) return 'retire';
  if (
    state.next &&
    !state.previous &&
    t >= state.next.preparedAt.getTime() + options.minPublishedMs
  )
    return 'activate';
  return null;
}

function refusedUntil(reason: string, atMs: number): WardenError {
  const at = new Date(atMs).toISOString();
  return new WardenError('ERR_ROTATION_REFUSED', `${reason}; allowed from ${at} (or force it)`, {
    details: { allowedFrom: at },
  });
}
