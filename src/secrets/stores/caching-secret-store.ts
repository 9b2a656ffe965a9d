import type { Clock } from '../../shared/clock.js';
import { ChangeListeners, isSecretChangeSource, type SecretChangeSource } from '../secret-change-source.js';
import type { RequestMetadata, SecretData, SecretStore, SecretStoreFeatures } from '../secret-store.js';
import { noopSecretsMetrics, type SecretsMetrics, type StoreOperation } from '../metrics.js';

export interface CachingOptions {
  /** The store's Component name (metrics label). */
  readonly storeName: string;
  /** How long an answer may be served; > 0. */
  readonly ttlMs: number;
  readonly clock: Clock;
  /** Entries kept at most; the oldest is dropped first. */
  readonly maxEntries?: number;
  readonly metrics?: SecretsMetrics;
}

interface Entry {
  readonly expiresAt: number;
  readonly value: SecretData | Readonly<Record<string, SecretData>>;
}

const DEFAULT_MAX_ENTRIES = 1000;

function cacheKey(operation: StoreOperation, name: string, metadata: RequestMetadata | undefined): string {
  const meta = Object.entries(metadata ?? {}).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return JSON.stringify([operation, name, meta]);
}

/**
 * A TTL cache in front of a store. It never serves an answer at or past its expiry (by
 * the injected clock), caches no errors, coalesces concurrent misses for the same key,
 * and drops everything when the store reports a change.
 */
export class CachingSecretStore implements SecretStore, SecretChangeSource {
  readonly #inner: SecretStore;
  readonly #options: CachingOptions;
  readonly #entries = new Map<string, Entry>();
  readonly #inFlight = new Map<string, Promise<Entry['value']>>();
  readonly #listeners = new ChangeListeners();
  readonly #unsubscribe: (() => void) | undefined;
  #generation = 0;

  constructor(inner: SecretStore, options: CachingOptions) {
    if (!(options.ttlMs > 0)) throw new TypeError('CachingSecretStore needs a positive ttlMs');
    this.#inner = inner;
    this.#options = options;
    if (isSecretChangeSource(inner)) {
      this.#unsubscribe = inner.onSecretsChanged(() => {
        this.invalidate();
        this.#listeners.emit();
      });
    }
  }

  get type(): string {
    return this.#inner.type;
  }

  get(name: string, metadata?: RequestMetadata): Promise<SecretData> {
    return this.#read('get', name, metadata, () => this.#inner.get(name, metadata)) as Promise<SecretData>;
  }

  bulkGet(metadata?: RequestMetadata): Promise<Readonly<Record<string, SecretData>>> {
    return this.#read('bulk', '', metadata, () => this.#inner.bulkGet(metadata)) as Promise<Readonly<Record<string, SecretData>>>;
  }

  features(): SecretStoreFeatures {
    return this.#inner.features();
  }

  ready(): boolean {
    return this.#inner.ready();
  }

  onSecretsChanged(listener: () => void): () => void {
    return this.#listeners.onSecretsChanged(listener);
  }

  /** Drops every cached answer (and makes reads in flight not cache theirs). */
  invalidate(): void {
    this.#generation++;
    this.#entries.clear();
    this.#inFlight.clear();
  }

  async close(): Promise<void> {
    this.#unsubscribe?.();
    this.invalidate();
    this.#listeners.clear();
    await this.#inner.close();
  }

  async #read(
    operation: StoreOperation,
    name: string,
    metadata: RequestMetadata | undefined,
    fetch: () => Promise<Entry['value']>,
  ): Promise<Entry['value']> {
    const metrics = this.#options.metrics ?? noopSecretsMetrics;
    const key = cacheKey(operation, name, metadata);
    const now = this.#options.clock.now().getTime();
    const entry = this.#entries.get(key);
    if (entry && now < entry.expiresAt) {
      metrics.cacheHit(this.#options.storeName, operation);
      return entry.value;
    }
    if (entry) this.#entries.delete(key);
    metrics.cacheMiss(this.#options.storeName, operation);
    const pending = this.#inFlight.get(key);
    if (pending) return pending;
    const generation = this.#generation;
    const promise = fetch().then(
      (value) => {
        if (generation === this.#generation) {
          this.#inFlight.delete(key);
          // the TTL runs from when the answer arrived, not from when it was asked for
          this.#store(key, { value, expiresAt: this.#options.clock.now().getTime() + this.#options.ttlMs });
        }
        return value;
      },
      (err: unknown) => {
        if (generation === this.#generation) this.#inFlight.delete(key);
        throw err;
      },
    );
    this.#inFlight.set(key, promise);
    return promise;
  }

  #store(key: string, entry: Entry): void {
    const max = this.#options.maxEntries ?? DEFAULT_MAX_ENTRIES;
    while (this.#entries.size >= max) {
      const oldest = this.#entries.keys().next();
      if (oldest.done) break;
      this.#entries.delete(oldest.value);
    }
    this.#entries.set(key, entry);
  }
}
