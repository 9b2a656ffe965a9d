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

/** Issues leaves for one trust-bundle generation at a time given by the caller. */
export interface LeafIssuer {
  readonly generation: number;
  /** Verifies the CSR, mints, self-checks and returns the leaf; `nowMs` decides the dates. */
  issue(request: WorkloadCertificateRequest, nowMs: number): Promise<IssuedCertificate>;
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
  const chainPem = bundle.issuerChainPem.endsWith('\n')
    ? bundle.issuerChainPem
    : `${bundle.issuerChainPem}\n`;
  const trustAnchorsPem: readonly string[] = Object.freeze(
    bundle.anchors.map((cert) => cert.toString()),
  );
  const generation = bundle.generation;

  return {
    generation,
    async issue(request: WorkloadCertificateRequest, nowMs: number): Promise<IssuedCertificate> {
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
        certificateChainPem: certificatePem(der) + chainPem,
        trustAnchorsPem,
        notBefore: new Date(leaf.notBeforeMs),
        notAfter: new Date(leaf.notAfterMs),
        serialHex: leaf.serial.toString('hex'),
        generation,
      };
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
