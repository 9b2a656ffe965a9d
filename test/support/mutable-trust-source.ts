import type { TrustBundle, TrustSource } from '../../src/ca/trust-bundle.js';

/** A TrustSource whose bundle a test replaces, firing onChange like a reload or rotation. */
export class MutableTrustSource implements TrustSource {
  #bundle: TrustBundle;
  readonly #listeners = new Set<(bundle: TrustBundle) => void>();

  constructor(bundle: TrustBundle) {
    this.#bundle = bundle;
  }

  current(): TrustBundle {
    return this.#bundle;
  }

  onChange(listener: (bundle: TrustBundle) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  listenerCount(): number {
    return this.#listeners.size;
  }

  replace(bundle: TrustBundle): void {
    this.#bundle = bundle;
    for (const listener of this.#listeners) listener(bundle);
  }
}
