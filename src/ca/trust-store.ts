import type { TrustMaterialNames, TrustMaterialPem } from './trust-material.js';

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
  /**
   * The stored material exactly as stored, or null when none of it exists.
   * Rejects with ERR_TRUST_MATERIAL_INVALID when only some parts exist (naming which are
   * missing), and with ERR_TRUST_MATERIAL_IO when the backend cannot be read.
   */
  load(): Promise<TrustMaterialPem | null>;
  /**
   * Stores `material` only if no material exists, atomically with respect to other
   * processes and replicas: when several race, exactly one gets 'created' and the others
   * 'exists' (and must then load() the winner's material). Never overwrites anything: a
   * partially present set rejects with ERR_TRUST_MATERIAL_INVALID.
   */
  create(material: TrustMaterialPem): Promise<'created' | 'exists'>;
}
