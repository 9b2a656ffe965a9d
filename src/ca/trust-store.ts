import type { TrustMaterialNames, TrustMaterialPem } from './trust-material.js';

/**
 * Entries a store keeps beside the three Dapr parts, for root-key custody and rotation.
 * Stores keep them as opaque text (files, or data keys of the same Secret); what they mean
 * is src/ca/rotation's business.
 *   rootKey          the private key of the root that signs the current issuer, when
 *                    Warden generated that root (absent for bring-your-own roots)
 *   rotationState    the rotation state (JSON, see rotation/rotation-state.ts)
 *   nextRootKey      prepared next root's key (between prepare and activate)
 *   nextIssuerChain  prepared next issuer certificate (between prepare and activate)
 *   nextIssuerKey    prepared next issuer key (between prepare and activate)
 */
export const TRUST_EXTRAS = [
  'rootKey',
  'rotationState',
  'nextRootKey',
  'nextIssuerChain',
  'nextIssuerKey',
] as const;
export type TrustExtra = (typeof TRUST_EXTRAS)[number];
export type TrustExtras = Readonly<Partial<Record<TrustExtra, string>>>;
export type TrustExtraNames = Readonly<Record<TrustExtra, string>>;

/** File names / Secret data keys of the extras. Only root.key is configurable (--root-key-filename). */
export const DEFAULT_TRUST_EXTRA_NAMES: TrustExtraNames = Object.freeze({
  rootKey: 'root.key',
  rotationState: 'rotation.json',
  nextRootKey: 'next-root.key',
  nextIssuerChain: 'next-issuer.crt',
  nextIssuerKey: 'next-issuer.key',
});

/** Everything a store holds: the three parts and whichever extras exist. */
export interface StoredTrust {
  readonly material: TrustMaterialPem;
  readonly extras: TrustExtras;
}

/**
 * Where the CA's trust material lives (a directory of files, a Kubernetes Secret).
 * A store moves bytes; it does not judge them: validation is the CA's job. Every
 * implementation runs test/conformance/trust-material-store-conformance.ts.
 */
export interface TrustMaterialStore {
  /** Where the material lives, for logs and messages (no contents), e.g. "directory /x". */
  describe(): string;
  /** What each part is called in this store (file names, Secret data keys), for messages. */
  readonly names: TrustMaterialNames;
  /** What each extra is called in this store, for messages. */
  readonly extraNames: TrustExtraNames;
  /**
   * The stored material exactly as stored, or null when none of it exists.
   * Rejects with ERR_TRUST_MATERIAL_INVALID when only some parts exist (naming which are
   * missing), and with ERR_TRUST_MATERIAL_IO when the backend cannot be read.
   */
  load(): Promise<TrustMaterialPem | null>;
  /**
   * Like load(), with the extras, all read as one consistent snapshot (never the parts of
   * one write mixed with those of another). Null when the three parts are absent.
   */
  read(): Promise<StoredTrust | null>;
  /**
   * Stores `material` (and `extras`) only if no material exists, atomically with respect to
   * other processes and replicas: when several race, exactly one gets 'created' and the
   * others 'exists' (and must then load() the winner's material). Never overwrites any of
   * the three parts: a partially present set rejects with ERR_TRUST_MATERIAL_INVALID.
   * Extras left over from material that no longer exists are stale: they are replaced by
   * `extras` or removed, as part of the same atomic creation.
   */
  create(material: TrustMaterialPem, extras?: TrustExtras): Promise<'created' | 'exists'>;
  /**
   * Compare-and-swap of everything: when what is stored equals `expected` (every part and
   * every extra, byte for byte; an absent extra equals an absent one), replaces it with
   * `next` in one atomic, crash-safe step (a crash leaves either all of `expected` or all of
   * `next`, after recovery) and resolves 'replaced'; otherwise changes nothing and resolves
   * 'conflict'. Extras absent from `next` are removed. This is how rotation steps commit,
   * and why two replicas acting at once cannot both win.
   */
  replace(expected: StoredTrust, next: StoredTrust): Promise<'replaced' | 'conflict'>;
}

/** True when two snapshots hold the same bytes in every part and extra. */
export function sameStoredTrust(a: StoredTrust, b: StoredTrust): boolean {
  return (
    a.material.anchorsPem === b.material.anchorsPem &&
    a.material.issuerChainPem === b.material.issuerChainPem &&
    a.material.issuerKeyPem === b.material.issuerKeyPem &&
    TRUST_EXTRAS.every((extra) => a.extras[extra] === b.extras[extra])
  );
}
