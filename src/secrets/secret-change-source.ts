import type { SecretStore } from './secret-store.js';

/**
 * An optional capability: a store that notices when its secrets change (a reloaded file,
 * a Kubernetes watch event, a new Vault version) tells its listeners, so that caches are
 * dropped and `secrets resolve --watch` can print again. Listeners get no names or values:
 * they re-read what they need.
 */
export interface SecretChangeSource {
  /** Returns the function that removes the listener. */
  onSecretsChanged(listener: () => void): () => void;
}

export function isSecretChangeSource(store: SecretStore): store is SecretStore & SecretChangeSource {
  return typeof (store as Partial<SecretChangeSource>).onSecretsChanged === 'function';
}

/** A small listener set for stores to embed. */
export class ChangeListeners implements SecretChangeSource {
  readonly #listeners = new Set<() => void>();

  onSecretsChanged(listener: () => void): () => void {
    this.#listeners.add(listener);
    return () => {
      this.#listeners.delete(listener);
    };
  }

  /** How many listeners there are (a store may watch only while someone listens). */
  get size(): number {
    return this.#listeners.size;
  }

  emit(): void {
    for (const listener of [...this.#listeners]) listener();
  }

  clear(): void {
    this.#listeners.clear();
  }
}
