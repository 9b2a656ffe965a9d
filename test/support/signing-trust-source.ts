import type { TrustBundle, TrustSource } from '../../src/ca/trust-bundle.js';

/** A TrustSource tests change by hand; listeners run synchronously, as a CA's would. */
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

  set(bundle: TrustBundle): void {
    this.#bundle = bundle;
    for (const listener of this.#listeners) listener(bundle);
  }

  get listenerCount(): number {
    return this.#listeners.size;
  }
}
