import { describeError } from '../shared/errors.js';
import type { Logger } from '../shared/logger.js';
import type { SecretStore } from './secret-store.js';

/** A started secret store and what the API needs to know about its Component. */
export interface LiveSecretStore {
  /** The Component's `metadata.name`: the `{store}` of `/v1.0/secrets/{store}/...`. */
  readonly name: string;
  readonly type: string;
  /** The store as callers should use it (cache and metrics already in front). */
  readonly store: SecretStore;
  /** The Component's `scopes` (app ids); empty means every app. */
  readonly appScopes: readonly string[];
  /**
   * The Component's `metadata.namespace`, when it has one: only callers from that namespace
   * may use the store (Dapr only ever hands a sidecar the Components of its own namespace).
   */
  readonly namespace?: string;
}

/** The started stores, by name. Closing the set closes every store once. */
export class SecretStoreSet {
  readonly #stores: ReadonlyMap<string, LiveSecretStore>;
  readonly #logger: Logger | undefined;
  #closed = false;

  constructor(stores: readonly LiveSecretStore[], logger?: Logger) {
    const map = new Map<string, LiveSecretStore>();
    for (const live of stores) {
      if (map.has(live.name)) throw new TypeError(`secret store ${live.name} added twice`);
      map.set(live.name, live);
    }
    this.#stores = map;
    this.#logger = logger;
  }

  get size(): number {
    return this.#stores.size;
  }

  get(name: string): LiveSecretStore | undefined {
    // own entries only: a request for store "__proto__" is just an unknown store
    return this.#stores.get(name);
  }

  names(): string[] {
    return [...this.#stores.keys()];
  }

  values(): LiveSecretStore[] {
    return [...this.#stores.values()];
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await Promise.all(
      this.values().map(async (live) => {
        try {
          await live.store.close();
        } catch (err) {
          this.#logger?.warn({ store: live.name, error: describeError(err) }, 'closing a secret store failed');
        }
      }),
    );
  }
}
