import type { Logger } from 'pino';
import { describeError } from '../../../shared/errors.js';
import { ChangeListeners, type SecretChangeSource } from '../../secret-change-source.js';
import type { VaultTimers } from './vault-token-session.js';

/**
 * Vault has no watch. To let a rotation reach consumers, the store remembers the secrets it
 * was asked for (latest version only) with a fingerprint of what it read — the KV v2 version
 * number, or a digest of a KV v1 entry — and, while anyone listens for changes, compares
 * them every interval. A change is reported once to the listeners (a TTL cache drops its
 * entries, `secrets resolve --watch` resolves again); nothing is polled while nobody
 * listens. The Vault specifics are in `probe`; this is only the bookkeeping and the loop.
 */

/** At most this many secrets are watched; the least recently read is forgotten first. */
export const MAX_TRACKED_SECRETS = 256;

export interface SecretVersionChecksOptions {
  /** Period of the checks; 0 turns them off. */
  readonly intervalMs: number;
  readonly timers: VaultTimers;
  readonly logger: Logger;
  /**
   * The fingerprint of a tracked secret now ("absent" when it is gone), or undefined when
   * Vault could not tell (the probe logs why): then nothing is concluded this round.
   */
  readonly probe: (name: string) => Promise<string | undefined>;
  readonly maxTracked?: number;
}

export class SecretVersionChecks implements SecretChangeSource {
  readonly #options: SecretVersionChecksOptions;
  readonly #listeners = new ChangeListeners();
  /** name → fingerprint, in order of the latest read (oldest first). */
  readonly #tracked = new Map<string, string>();
  #timer: unknown;
  #round: Promise<string[]> | undefined;
  #closed = false;

  constructor(options: SecretVersionChecksOptions) {
    this.#options = options;
  }

  /** Remembers what a read of the latest version saw. */
  track(name: string, fingerprint: string): void {
    if (this.#closed) return;
    this.#tracked.delete(name);
    this.#tracked.set(name, fingerprint);
    const max = this.#options.maxTracked ?? MAX_TRACKED_SECRETS;
    while (this.#tracked.size > max) {
      const oldest = this.#tracked.keys().next();
      if (oldest.done) break;
      this.#tracked.delete(oldest.value);
    }
  }

  get trackedCount(): number {
    return this.#tracked.size;
  }

  onSecretsChanged(listener: () => void): () => void {
    const off = this.#listeners.onSecretsChanged(listener);
    if (this.#listeners.size === 1) this.#schedule();
    return () => {
      off();
      if (this.#listeners.size === 0) this.#cancel();
    };
  }

  /**
   * Compares every tracked secret once (a round already running is joined) and returns
   * the names that changed; listeners are told when any did.
   */
  checkNow(): Promise<string[]> {
    this.#round ??= this.#check().finally(() => {
      this.#round = undefined;
    });
    return this.#round;
  }

  /** Stops the checks; resolves once a round in flight has finished (it concludes nothing more). */
  async close(): Promise<void> {
    this.#closed = true;
    this.#cancel();
    this.#listeners.clear();
    this.#tracked.clear();
    await this.#round?.catch(() => undefined);
  }

  async #check(): Promise<string[]> {
    const changed: string[] = [];
    for (const [name, before] of [...this.#tracked]) {
      if (this.#closed) return [];
      let now: string | undefined;
      try {
        now = await this.#options.probe(name);
      } catch (err) {
        this.#options.logger.warn(
          { secretName: name, error: describeError(err) },
          'Vault version check failed; trying again next round',
        );
        continue;
      }
      if (now === undefined || now === before) continue;
      changed.push(name);
      // Re-tracked with what Vault has now, so one rotation is reported once.
      if (this.#tracked.has(name)) this.#tracked.set(name, now);
    }
    if (changed.length > 0 && !this.#closed) {
      this.#options.logger.info(
        { secretNames: changed },
        'Vault secrets changed since they were read',
      );
      try {
        this.#listeners.emit();
      } catch (err) {
        this.#options.logger.warn({ error: describeError(err) }, 'a Vault change listener failed');
      }
    }
    return changed;
  }

  #schedule(): void {
    if (this.#closed || this.#options.intervalMs <= 0 || this.#timer !== undefined) return;
    this.#timer = this.#options.timers.setTimeout(() => {
      this.#timer = undefined;
      void this.checkNow().finally(() => {
        if (this.#listeners.size > 0) this.#schedule();
      });
    }, this.#options.intervalMs);
  }

  #cancel(): void {
    if (this.#timer === undefined) return;
    this.#options.timers.clearTimeout(this.#timer);
    this.#timer = undefined;
  }
}
