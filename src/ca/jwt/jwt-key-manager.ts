import type { Clock } from '../../shared/clock.js';
import type { Logger } from '../../shared/logger.js';
import {
  activateNextJwtKey,
  jwtKeySetOf,
  prepareNextJwtKey,
  retirePreviousJwtKey,
  type JwtKeySet,
  type JwtKeyState,
} from './jwt-key-state.js';
import { loadOrCreateJwtKeyState, type JwtKeyStore } from './jwt-key-store.js';
import type { JwtSigningAlgorithm } from './jwt-signing-algorithm.js';
import { generateJwtSigningKey } from './jwt-signing-key.js';

/** What the issuer and the OIDC server read: the current key set and a way to hear about changes. */
export interface JwtKeySource {
  current(): JwtKeySet;
  /** Called after each change with the new set; returns an unsubscribe function. */
  onChange(listener: (keys: JwtKeySet) => void): () => void;
}

export interface JwtRotationPolicy {
  /** How long a next key is published before it may sign. */
  readonly minPublishedMs: number;
  /** JWT TTL plus allowed clock skew: how long an outgoing key stays published. */
  readonly maxTokenLifetimeMs: number;
}

export interface JwtKeyManagerOptions {
  readonly store: JwtKeyStore;
  readonly algorithm: JwtSigningAlgorithm;
  readonly keyId?: string | undefined;
  readonly policy: JwtRotationPolicy;
  readonly clock: Clock;
  readonly logger: Logger;
}

/**
 * Holds the JWT key state of this process and applies rotation steps: each step is computed by
 * the pure functions in jwt-key-state.ts, stored, and only then made visible — a key is never
 * used (to sign or as published) before the store holds it. Steps run one at a time.
 */
export class JwtKeyManager implements JwtKeySource {
  readonly #options: JwtKeyManagerOptions;
  #keys: JwtKeySet;
  #queue: Promise<unknown> = Promise.resolve();
  readonly #listeners = new Set<(keys: JwtKeySet) => void>();

  private constructor(options: JwtKeyManagerOptions, state: JwtKeyState) {
    this.#options = options;
    this.#keys = jwtKeySetOf(state);
  }

  /** Loads (or first generates) the keys from the store. */
  static async open(options: JwtKeyManagerOptions): Promise<JwtKeyManager> {
    const state = await loadOrCreateJwtKeyState(options.store, options);
    return new JwtKeyManager(options, state);
  }

  current(): JwtKeySet {
    return this.#keys;
  }

  onChange(listener: (keys: JwtKeySet) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Generates a next key (of `algorithm`, default the configured one) and publishes it. */
  prepareNext(
    options: { algorithm?: JwtSigningAlgorithm; force?: boolean } = {},
  ): Promise<JwtKeySet> {
    return this.#step('prepared next JWT key', async (state) => {
      const key = await generateJwtSigningKey(options.algorithm ?? this.#options.algorithm);
      return prepareNextJwtKey(state, key, this.#options.clock.now(), {
        force: options.force ?? false,
      });
    });
  }

  /** Makes the next key the signing key; refused before it has been published long enough. */
  activateNext(options: { force?: boolean } = {}): Promise<JwtKeySet> {
    return this.#step('activated next JWT key', async (state) =>
      activateNextJwtKey(state, this.#options.clock.now(), {
        ...this.#options.policy,
        force: options.force ?? false,
      }),
    );
  }

  /** Unpublishes the previous key; refused while tokens it signed may still be valid. */
  retirePrevious(options: { force?: boolean } = {}): Promise<JwtKeySet> {
    return this.#step('retired previous JWT key', async (state) =>
      retirePreviousJwtKey(state, this.#options.clock.now(), { force: options.force ?? false }),
    );
  }

  /** Re-reads the store (another replica rotated, or the files were replaced). */
  reload(): Promise<JwtKeySet> {
    return this.#enqueue(async () => {
      const state = await this.#options.store.load();
      if (!state) return this.#keys;
      this.#publish(state);
      return this.#keys;
    });
  }

  #step(done: string, compute: (state: JwtKeyState) => Promise<JwtKeyState>): Promise<JwtKeySet> {
    return this.#enqueue(async () => {
      const before = this.#keys.state;
      const after = await compute(before);
      if (after === before) return this.#keys;
      await this.#options.store.save(before, after);
      this.#publish(after);
      this.#options.logger.info(
        {
          kid: after.current.kid,
          next: after.next?.key.kid ?? null,
          previous: after.previous?.key.kid ?? null,
        },
        done,
      );
      return this.#keys;
    });
  }

  #enqueue<T>(task: () => Promise<T>): Promise<T> {
    const run = this.#queue.then(task, task);
    this.#queue = run.catch(() => undefined);
    return run;
  }

  #publish(state: JwtKeyState): void {
    this.#keys = jwtKeySetOf(state);
    for (const listener of this.#listeners) {
      try {
        listener(this.#keys);
      } catch (err) {
        this.#options.logger.error({ err }, 'JWT key change listener failed');
      }
    }
  }
}
