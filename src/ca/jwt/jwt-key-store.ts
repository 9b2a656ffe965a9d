import type { Logger } from '../../shared/logger.js';
import { managedKeyIds, initialJwtKeyState, type JwtKeyState } from './jwt-key-state.js';
import { generateJwtSigningKey } from './jwt-signing-key.js';
import type { JwtSigningAlgorithm } from './jwt-signing-algorithm.js';

/**
 * Where JWT key material lives (a directory, the trust Secret + ConfigMap). Implementations
 * encode with `encodeJwtKeyMaterial` and decode with `decodeJwtKeyMaterial`, so every store
 * accepts and rejects exactly the same material.
 */
export interface JwtKeyStore {
  /** Reads and validates the stored keys, repairing a write a crash interrupted; null when none. */
  load(): Promise<JwtKeyState | null>;
  /**
   * Stores `after` in place of `before` (null on first creation), in an order that leaves
   * loadable material whatever point a crash interrupts it (see `jwtMaterialWriteOrder`).
   * A store shared by replicas compares and swaps: with `before` null it leaves material
   * someone else created first in place (the caller loads it again), and it refuses to
   * replace material that is no longer `before`.
   */
  save(before: JwtKeyState | null, after: JwtKeyState): Promise<void>;
}

export type JwtMaterialPart = 'key' | 'jwks' | 'state';

/**
 * The order a store writes the three parts in, each write atomic on its own:
 * - a new signing key (first start, activation): jwt.key first — the loader finishes an
 *   activation it finds half-recorded — then the record, then jwks.json;
 * - keys leaving the published set (retirement): jwks.json first, then the record — a crash
 *   in between only republishes a key that is already safe to retire;
 * - keys joining it (a next key): the record first, then jwks.json — the loader republishes a
 *   recorded key missing from jwks.json and restarts its publication clock.
 */
export function jwtMaterialWriteOrder(
  before: JwtKeyState | null,
  after: JwtKeyState,
): JwtMaterialPart[] {
  if (before === null || before.current.kid !== after.current.kid) return ['key', 'state', 'jwks'];
  const was = new Set(managedKeyIds(before));
  const is = new Set(managedKeyIds(after));
  const removed = [...was].some((kid) => !is.has(kid));
  const added = [...is].some((kid) => !was.has(kid));
  if (removed && !added) return ['jwks', 'state'];
  return ['state', 'jwks'];
}

export interface LoadOrCreateJwtKeyStateOptions {
  readonly algorithm: JwtSigningAlgorithm;
  /** `--jwt-key-id`: kid of a key generated here (else its RFC 7638 thumbprint). */
  readonly keyId?: string | undefined;
  readonly logger: Logger;
}

/** Loads the stored keys, or generates and stores a first key when there are none. */
export async function loadOrCreateJwtKeyState(
  store: JwtKeyStore,
  options: LoadOrCreateJwtKeyStateOptions,
): Promise<JwtKeyState> {
  const loaded = await store.load();
  if (loaded) return loaded;
  const key = await generateJwtSigningKey(options.algorithm, options.keyId);
  const state = initialJwtKeyState(key);
  await store.save(null, state);
  // A shared store (the trust Secret) keeps the first of several replicas racing to create:
  // what is stored now is the key everyone signs with.
  const stored = await store.load();
  if (stored && stored.current.kid !== state.current.kid) {
    options.logger.info(
      { kid: stored.current.kid, alg: stored.current.alg },
      'another replica created the JWT signing key first; using it',
    );
    return stored;
  }
  options.logger.info({ kid: key.kid, alg: key.alg }, 'generated a new JWT signing key');
  return stored ?? state;
}
