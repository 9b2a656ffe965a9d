import {
  constants as cryptoConstants,
  sign as cryptoSign,
  verify as cryptoVerify,
  type KeyObject,
} from 'node:crypto';
import { systemClock, type Clock } from '../../shared/clock.js';
import { WardenError } from '../../shared/errors.js';
import { parseSpiffeId } from '../../shared/spiffe-id.js';
import { issuingCertificate, type TrustBundle } from '../../ca/trust-bundle.js';
import type {
  CertificateSigner,
  IssuedCertificate,
  LeafProfileOptions,
  WorkloadCertificateRequest,
} from '../certificate-signer.js';
import { readVerifiedCsrKey } from './csr.js';
import { createLeafTemplate, type LeafTemplate } from './leaf-template.js';

/** One minted, self-checked leaf without the pieces every leaf of its generation shares. */
export interface MintedLeaf {
  readonly leafPem: string;
  readonly notBeforeMs: number;
  readonly notAfterMs: number;
  readonly serialHex: string;
  readonly generation: number;
}

/** Issues leaves for one trust-bundle generation at a time given by the caller. */
export interface LeafIssuer {
  readonly generation: number;
  /** The issuer chain PEM every response carries after the leaf (ends with a newline). */
  readonly chainPem: string;
  /** PEM of each trust anchor, in bundle order (frozen, shared by every response). */
  readonly trustAnchorsPem: readonly string[];
  /** Verifies the CSR, mints, self-checks and returns the leaf; `nowMs` decides the dates. */
  issue(request: WorkloadCertificateRequest, nowMs: number): Promise<IssuedCertificate>;
  /**
   * issue() without the shared pieces, for a signing worker: the pool adds chainPem and
   * trustAnchorsPem of the generation in the calling thread instead of copying them across
   * threads with every leaf.
   */
  mint(request: WorkloadCertificateRequest, nowMs: number): Promise<MintedLeaf>;
}

/** What every response of one bundle carries besides its leaf. */
export interface SharedResponsePieces {
  /** The issuer chain PEM, ending with a newline. */
  readonly chainPem: string;
  /** PEM of each trust anchor, in bundle order (frozen). */
  readonly trustAnchorsPem: readonly string[];
}

export function sharedResponsePiecesOf(bundle: TrustBundle): SharedResponsePieces {
  return Object.freeze({
    chainPem: bundle.issuerChainPem.endsWith('\n')
      ? bundle.issuerChainPem
      : `${bundle.issuerChainPem}\n`,
    trustAnchorsPem: Object.freeze(bundle.anchors.map((cert) => cert.toString())),
  });
}

/** The response for a minted leaf: the leaf, then the chain; the anchors as they are. */
export function issuedCertificateOf(
  leaf: MintedLeaf,
  chainPem: string,
  trustAnchorsPem: readonly string[],
): IssuedCertificate {
  return {
    certificateChainPem: leaf.leafPem + chainPem,
    trustAnchorsPem,
    notBefore: new Date(leaf.notBeforeMs),
    notAfter: new Date(leaf.notAfterMs),
    serialHex: leaf.serialHex,
    generation: leaf.generation,
  };
}

// A DNS name in preferred name syntax (RFC 1034 §3.5 / RFC 5280 §4.2.1.6): LDH labels.
const DNS_LABEL = /^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/;

/**
 * The identity is decided and validated by the gRPC edge; a bad one reaching the signer is a
 * programming error, so it is a TypeError, and nothing is signed.
 */
export function assertWorkloadIdentity(request: WorkloadCertificateRequest): void {
  if (!(request.csrPem instanceof Uint8Array)) throw new TypeError('csrPem must be a Uint8Array');
  const parsed = parseSpiffeId(request.spiffeId);
  if (!parsed) throw new TypeError('spiffeId is not a valid SPIFFE ID');
  if (parsed.segments.length === 0)
    throw new TypeError('a workload SPIFFE ID needs a non-root path (rule 4)');
  if (!Array.isArray(request.dnsNames)) throw new TypeError('dnsNames must be an array');
  for (const name of request.dnsNames) {
    if (
      typeof name !== 'string' ||
      name.length > 253 ||
      !name.split('.').every((label) => DNS_LABEL.test(label))
    ) {
      throw new TypeError('dnsNames contains a name that is not a valid DNS name');
    }
  }
}

export function assertLeafProfile(profile: LeafProfileOptions): void {
  if (!Number.isFinite(profile.ttlMs) || profile.ttlMs <= 0)
    throw new TypeError('profile.ttlMs must be a positive number of milliseconds');
  if (!Number.isFinite(profile.skewMs) || profile.skewMs < 0)
    throw new TypeError('profile.skewMs must be zero or more milliseconds');
}

const PEM_LINE = 64;

function certificatePem(der: Buffer): string {
  const b64 = der.toString('base64');
  let out = '-----BEGIN CERTIFICATE-----\n';
  for (let i = 0; i < b64.length; i += PEM_LINE) out += b64.slice(i, i + PEM_LINE) + '\n';
  return out + '-----END CERTIFICATE-----\n';
}

/**
 * Prepares an issuer for one bundle: the template, the issuer's private key and its public
 * key (for the self-check), and the PEM the responses carry.
 *
 * Assumption (recorded, not re-checked per leaf): the issuer chain was verified against the
 * anchors when the CA built this bundle (src/ca validates loaded and generated material), so
 * checking each minted leaf's signature against the issuer key and its dates against the
 * chain's notAfter is enough to know the whole chain verifies (rule 18).
 */
export function createLeafIssuer(bundle: TrustBundle, profile: LeafProfileOptions): LeafIssuer {
  assertLeafProfile(profile);
  const template: LeafTemplate = createLeafTemplate(bundle);
  const issuerPrivateKey: KeyObject = bundle.issuerKey;
  const issuerPublicKey: KeyObject = issuingCertificate(bundle).publicKey;
  const { hash } = template.scheme;
  const rsaPadding =
    template.scheme.keyType === 'RSA' ? cryptoConstants.RSA_PKCS1_PADDING : undefined;
  const { chainPem, trustAnchorsPem } = sharedResponsePiecesOf(bundle);
  const generation = bundle.generation;

  async function mint(request: WorkloadCertificateRequest, nowMs: number): Promise<MintedLeaf> {
    assertWorkloadIdentity(request);
    const key = await readVerifiedCsrKey(request.csrPem);
    const leaf = template.assemble(key, request, nowMs, profile);

    let signature: Buffer;
    try {
      signature =
        rsaPadding === undefined
          ? cryptoSign(hash, leaf.tbsCertificate, issuerPrivateKey)
          : cryptoSign(hash, leaf.tbsCertificate, { key: issuerPrivateKey, padding: rsaPadding });
    } catch (err) {
      throw new WardenError('ERR_SIGNING_FAILED', 'signing the leaf failed', { cause: err });
    }
    // Validate what we mint before returning it (rule 18): the signature under the issuer's
    // public key, and a notAfter inside the chain's.
    const selfCheck =
      rsaPadding === undefined
        ? cryptoVerify(hash, leaf.tbsCertificate, issuerPublicKey, signature)
        : cryptoVerify(
            hash,
            leaf.tbsCertificate,
            { key: issuerPublicKey, padding: rsaPadding },
            signature,
          );
    if (!selfCheck)
      throw new WardenError(
        'ERR_SIGNING_FAILED',
        'minted leaf failed its self-check (signature does not verify under the issuer certificate)',
      );
    if (leaf.notAfterMs > template.chainNotAfterMs)
      throw new WardenError('ERR_SIGNING_FAILED', 'minted leaf would outlive its issuer');

    const der = template.wrap(leaf.tbsCertificate, signature);
    return {
      leafPem: certificatePem(der),
      notBeforeMs: leaf.notBeforeMs,
      notAfterMs: leaf.notAfterMs,
      serialHex: leaf.serial.toString('hex'),
      generation,
    };
  }

  return {
    generation,
    chainPem,
    trustAnchorsPem,
    mint,
    async issue(request: WorkloadCertificateRequest, nowMs: number): Promise<IssuedCertificate> {
      return issuedCertificateOf(await mint(request, nowMs), chainPem, trustAnchorsPem);
    },
  };
}

/**
 * A CertificateSigner that signs in the calling thread with one bundle's issuer; time comes
 * from `clock` at each request. For material that changes, use createSigningPool (workers: 0
 * signs in-thread with the same code and follows the TrustSource).
 */
export function createLeafSigner(
  bundle: TrustBundle,
  profile: LeafProfileOptions,
  clock: Clock = systemClock,
): CertificateSigner {
  const issuer = createLeafIssuer(bundle, profile);
  let closed = false;
  return {
    async sign(request: WorkloadCertificateRequest): Promise<IssuedCertificate> {
      if (closed) throw new WardenError('ERR_SIGNING_FAILED', 'signer is closed');
      return issuer.issue(request, clock.now().getTime());
    },
    async close(): Promise<void> {
      closed = true;
    },
  };
}
