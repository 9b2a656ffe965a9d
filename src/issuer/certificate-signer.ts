/**
 * What the gRPC edge asks of the signing path. Identity (SPIFFE ID, DNS names) is decided
 * by the edge from a validated token; the signer takes only the public key from the CSR.
 */
export interface WorkloadCertificateRequest {
  /** The request's certificate_signing_request bytes, exactly as received (PEM). */
  readonly csrPem: Uint8Array;
  /** The SPIFFE ID decided by the validator and request rules. */
  readonly spiffeId: string;
  /** Extra DNS SANs (only for control-plane identities). */
  readonly dnsNames: readonly string[];
}

export interface IssuedCertificate {
  /** PEM: the leaf, then the issuer chain (no root). */
  readonly certificateChainPem: string;
  /** PEM of each trust anchor, in bundle order. */
  readonly trustAnchorsPem: readonly string[];
  readonly notBefore: Date;
  readonly notAfter: Date;
  /** Lower-case hex of the leaf's serial number (for audit logs). */
  readonly serialHex: string;
  /** The trust-bundle generation that signed it. */
  readonly generation: number;
}

export interface CertificateSigner {
  /** Rejects with a WardenError (ERR_CSR_*, ERR_SIGNING_FAILED, ERR_OVERLOADED). */
  sign(request: WorkloadCertificateRequest): Promise<IssuedCertificate>;
  close(): Promise<void>;
}

/** How leaves are shaped, from the Configuration's spec.mtls. */
export interface LeafProfileOptions {
  /** workloadCertTTL in milliseconds (Dapr default 24h). */
  readonly ttlMs: number;
  /** allowedClockSkew in milliseconds: notBefore is backdated by this much (Dapr default 15m). */
  readonly skewMs: number;
}
