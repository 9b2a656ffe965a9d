/**
 * The three pieces of CA trust material as text, in the layout Dapr Sentry uses
 * (ca.crt, issuer.crt, issuer.key). Stores persist exactly this; validation turns it
 * into parsed objects.
 */
export interface TrustMaterialPem {
  /** ca.crt: one or more self-signed roots (PEM CERTIFICATE blocks). */
  readonly anchorsPem: string;
  /** issuer.crt: the issuing certificate, then any intermediates (no root). */
  readonly issuerChainPem: string;
  /** issuer.key: the issuing certificate's private key (PEM). */
  readonly issuerKeyPem: string;
}

/** What each piece is called where it is stored: file names, or Secret data keys. */
export interface TrustMaterialNames {
  readonly anchors: string;
  readonly issuerChain: string;
  readonly issuerKey: string;
}

/** Dapr Sentry's defaults (--issuer-ca-filename, --issuer-certificate-filename, --issuer-key-filename). */
export const DEFAULT_TRUST_MATERIAL_NAMES: TrustMaterialNames = Object.freeze({
  anchors: 'ca.crt',
  issuerChain: 'issuer.crt',
  issuerKey: 'issuer.key',
});

export const TRUST_MATERIAL_PARTS = ['anchors', 'issuerChain', 'issuerKey'] as const;
export type TrustMaterialPart = (typeof TRUST_MATERIAL_PARTS)[number];

export function pemOf(material: TrustMaterialPem, part: TrustMaterialPart): string {
  switch (part) {
    case 'anchors':
      return material.anchorsPem;
    case 'issuerChain':
      return material.issuerChainPem;
    case 'issuerKey':
      return material.issuerKeyPem;
  }
}
