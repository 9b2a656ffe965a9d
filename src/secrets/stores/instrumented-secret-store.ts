import { performance } from 'node:perf_hooks';
import { isWardenError } from '../../shared/errors.js';
import { ChangeListeners, isSecretChangeSource, type SecretChangeSource } from '../secret-change-source.js';
import type { RequestMetadata, SecretData, SecretStore, SecretStoreFeatures } from '../secret-store.js';
import type { SecretsMetrics, StoreOperation } from '../metrics.js';

/** Counts every read, its latency and its error code; passes everything else through. */
export class InstrumentedSecretStore implements SecretStore, SecretChangeSource {
  readonly #inner: SecretStore;
  readonly #storeName: string;
  readonly #metrics: SecretsMetrics;
  readonly #listeners = new ChangeListeners();
  #unsubscribe: (() => void) | undefined;

  constructor(inner: SecretStore, storeName: string, metrics: SecretsMetrics) {
    this.#inner = inner;
    this.#storeName = storeName;
    this.#metrics = metrics;
  }

  get type(): string {
    return this.#inner.type;
  }

  get(name: string, metadata?: RequestMetadata): Promise<SecretData> {
    return this.#measure('get', () => this.#inner.get(name, metadata));
  }

  bulkGet(metadata?: RequestMetadata): Promise<Readonly<Record<string, SecretData>>> {
    return this.#measure('bulk', () => this.#inner.bulkGet(metadata));
  }

  features(): SecretStoreFeatures {
    return this.#inner.features();
  }

  ready(): boolean {
    return this.#inner.ready();
  }

  /**
   * Subscribes to the inner store only while someone listens here: a store that has to poll
   * to notice changes (Vault) polls only while its changes are wanted.
   */
  onSecretsChanged(listener: () => void): () => void {
    const off = this.#listeners.onSecretsChanged(listener);
    if (this.#listeners.size === 1 && this.#unsubscribe === undefined && isSecretChangeSource(this.#inner)) {
      this.#unsubscribe = this.#inner.onSecretsChanged(() => this.#listeners.emit());
    }
    return () => {
      off();
      if (this.#listeners.size === 0) {
        this.#unsubscribe?.();
        this.#unsubscribe = undefined;
      }
    };
  }

  async close(): Promise<void> {
    this.#unsubscribe?.();
    this.#unsubscribe = undefined;
    this.#listeners.clear();
    await this.#inner.close();
  }

  async #measure<T>(operation: StoreOperation, read: () => Promise<T>): Promise<T> {
    const started = performance.now();
    try {
      return await read();
    } catch (err) {
      this.#metrics.storeError(this.#storeName, isWardenError(err) ? err.code : 'ERR_INTERNAL');
      throw err;
    } finally {
      this.#metrics.storeRead(this.#storeName, operation, (performance.now() - started) / 1000);
    }
  }
}
