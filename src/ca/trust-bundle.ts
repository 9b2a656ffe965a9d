import type { KeyObject, X509Certificate } from 'node:crypto';

/**
 * The trust material one CA generation signs with: what `ca` hands to `issuer`.
 * Immutable; a change (reload, rotation) produces a new bundle with a higher generation.
 */
export interface TrustBundle {
  /** Increases by one each time the material in this process changes. */
  readonly generation: number;
  /** PEM of the trust anchors (ca.crt): one or more self-signed roots, old bytes first. */
  readonly anchorsPem: string;
  readonly anchors: readonly X509Certificate[];
  /**
   * PEM of issuer.crt: the issuing certificate first, then any intermediates up to but not
   * including a root. Workload chains are the leaf followed by exactly these bytes.
   */
  readonly issuerChainPem: string;
  readonly issuerChain: readonly X509Certificate[];
  /** The issuing key as PKCS#8 PEM (for worker threads) and as a ready KeyObject. */
  readonly issuerKeyPem: string;
  readonly issuerKey: KeyObject;
}

/** The issuing certificate (first of the chain). */
export function issuingCertificate(bundle: TrustBundle): X509Certificate {
  const cert = bundle.issuerChain[0];
  if (!cert) throw new TypeError('trust bundle without an issuer certificate');
  return cert;
}

/** What `issuer` needs from `ca`: the current material and a way to hear about changes. */
export interface TrustSource {
  current(): TrustBundle;
  /** Called after each change with the new bundle; returns an unsubscribe function. */
  onChange(listener: (bundle: TrustBundle) => void): () => void;
}
