import {
  createHash,
  createPublicKey,
  randomFillSync,
  type KeyObject,
  type X509Certificate,
} from 'node:crypto';
import {
  DER_NULL,
  encodeBitString,
  encodeBoolean,
  encodeCertificateTime,
  encodeExplicit,
  encodeIa5String,
  encodeOctetString,
  encodeOid,
  encodeSequence,
  encodeTlv,
  contextPrimitiveTag,
} from '../../shared/der.js';
import { WardenError } from '../../shared/errors.js';
import { issuingCertificate, type TrustBundle } from '../../ca/trust-bundle.js';
import type { LeafProfileOptions } from '../certificate-signer.js';
import { readIssuerCertificate } from './issuer-certificate.js';
import type { WorkloadPublicKey } from './public-key.js';

/** Issuer key types the template can sign with. */
export type IssuerKeyType = 'P-256' | 'P-384' | 'Ed25519' | 'RSA';

/** How an issuer key signs, and how that is named in the certificate. */
export interface IssuerSignatureScheme {
  readonly keyType: IssuerKeyType;
  readonly name: string;
  /** DER AlgorithmIdentifier, used for both tbsCertificate.signature and the outer field. */
  readonly algorithmIdentifier: Buffer;
  /** Digest for node:crypto.sign/verify; null for Ed25519. */
  readonly hash: 'sha256' | 'sha384' | null;
}

const SCHEMES: Readonly<Record<IssuerKeyType, IssuerSignatureScheme>> = {
  // RFC 5758 §3.2: ECDSA AlgorithmIdentifiers have no parameters.
  'P-256': {
    keyType: 'P-256',
    name: 'ecdsa-with-SHA256',
    algorithmIdentifier: encodeSequence(encodeOid('1.2.840.10045.4.3.2')),
    hash: 'sha256',
  },
  'P-384': {
    keyType: 'P-384',
    name: 'ecdsa-with-SHA384',
    algorithmIdentifier: encodeSequence(encodeOid('1.2.840.10045.4.3.3')),
    hash: 'sha384',
  },
  // RFC 8410 §3: no parameters.
  Ed25519: {
    keyType: 'Ed25519',
    name: 'Ed25519',
    algorithmIdentifier: encodeSequence(encodeOid('1.3.101.112')),
    hash: null,
  },
  // RFC 4055 §5: NULL parameters present.
  RSA: {
    keyType: 'RSA',
    name: 'sha256WithRSAEncryption',
    algorithmIdentifier: encodeSequence(encodeOid('1.2.840.113549.1.1.11'), DER_NULL),
    hash: 'sha256',
  },
};

/** The signature scheme for an issuer private (or public) key; refuses other key types. */
export function issuerSignatureScheme(key: KeyObject): IssuerSignatureScheme {
  const type = key.asymmetricKeyType;
  if (type === 'ec') {
    const curve = key.asymmetricKeyDetails?.namedCurve;
    if (curve === 'prime256v1' || curve === 'P-256') return SCHEMES['P-256'];
    if (curve === 'secp384r1' || curve === 'P-384') return SCHEMES['P-384'];
    throw new WardenError(
      'ERR_TRUST_MATERIAL_INVALID',
      `issuer key curve ${curve ?? 'unknown'} is not supported for signing`,
    );
  }
  if (type === 'ed25519') return SCHEMES.Ed25519;
  if (type === 'rsa') {
    const bits = key.asymmetricKeyDetails?.modulusLength ?? 0;
    if (bits < 2048)
      throw new WardenError(
        'ERR_TRUST_MATERIAL_INVALID',
        `issuer RSA key of ${bits} bits is too small to sign with`,
      );
    return SCHEMES.RSA;
  }
  throw new WardenError(
    'ERR_TRUST_MATERIAL_INVALID',
    `issuer key type ${type ?? 'unknown'} is not supported for signing`,
  );
}

function extension(oid: string, critical: boolean, value: Uint8Array): Buffer {
  return critical
    ? encodeSequence(encodeOid(oid), encodeBoolean(true), encodeOctetString(value))
    : encodeSequence(encodeOid(oid), encodeOctetString(value));
}

const OID_SKI = '2.5.29.14';
const OID_KEY_USAGE = '2.5.29.15';
const OID_SAN = '2.5.29.17';
const OID_BASIC_CONSTRAINTS = '2.5.29.19';
const OID_AKI = '2.5.29.35';
const OID_EXT_KEY_USAGE = '2.5.29.37';
const OID_SERVER_AUTH = '1.3.6.1.5.5.7.3.1';
const OID_CLIENT_AUTH = '1.3.6.1.5.5.7.3.2';

/** basicConstraints critical, cA absent (DER omits the FALSE default): rule 6. */
const BASIC_CONSTRAINTS_LEAF = extension(OID_BASIC_CONSTRAINTS, true, encodeSequence());
/** keyUsage critical digitalSignature (bit 0): rule 7. */
const KEY_USAGE_SIGNATURE = extension(OID_KEY_USAGE, true, encodeBitString(Uint8Array.of(0x80), 7));
/**
 * keyUsage critical digitalSignature + keyEncipherment (bits 0 and 2) for RSA keys: TLS 1.2
 * RSA key exchange needs keyEncipherment, and Go sets it for RSA leaves too.
 */
const KEY_USAGE_SIGNATURE_ENCIPHERMENT = extension(
  OID_KEY_USAGE,
  true,
  encodeBitString(Uint8Array.of(0xa0), 5),
);
/** extKeyUsage serverAuth + clientAuth (non-critical, as Go and Dapr write it): rule 8. */
const EXT_KEY_USAGE_MTLS = extension(
  OID_EXT_KEY_USAGE,
  false,
  encodeSequence(encodeOid(OID_SERVER_AUTH), encodeOid(OID_CLIENT_AUTH)),
);

/** `[0] EXPLICIT INTEGER 2` (v3) then the INTEGER tag and length of a 16-octet serial. */
const VERSION_AND_SERIAL_HEADER = Buffer.from('a00302010202' + '10', 'hex');
export const SERIAL_OCTETS = 16;
/** Empty subject: the identity is in the SAN, which is therefore critical (rule 5). */
const EMPTY_NAME = encodeSequence();
/** The SKI extension (non-critical, RFC 5280 §4.2.1.2) up to its 20-byte SHA-1 key id. */
const SKI_EXTENSION_PREFIX = extension(
  OID_SKI,
  false,
  encodeOctetString(Buffer.alloc(20)),
).subarray(0, -20);
const SAN_EXTENSION_PREFIX = Buffer.concat([encodeOid(OID_SAN), encodeBoolean(true)]);
const URI_TAG = contextPrimitiveTag(6);
const DNS_TAG = contextPrimitiveTag(2);

/** A leaf's fields decided per request. */
export interface LeafIdentity {
  readonly spiffeId: string;
  readonly dnsNames: readonly string[];
}

/** One assembled, unsigned leaf. */
export interface AssembledLeaf {
  readonly tbsCertificate: Buffer;
  /** The 16 serial octets (positive, fixed length). */
  readonly serial: Buffer;
  readonly notBeforeMs: number;
  readonly notAfterMs: number;
}

// Serials come from one CSPRNG draw per 256 leaves: randomFillSync per leaf costs a syscall-
// sized overhead that dominates 16 bytes. Each byte is used once.
const SERIAL_POOL = Buffer.alloc(SERIAL_OCTETS * 256);
let serialPoolOffset = SERIAL_POOL.length;

function freshSerial(): Buffer {
  if (serialPoolOffset >= SERIAL_POOL.length) {
    randomFillSync(SERIAL_POOL);
    serialPoolOffset = 0;
  }
  const serial = Buffer.from(
    SERIAL_POOL.subarray(serialPoolOffset, serialPoolOffset + SERIAL_OCTETS),
  );
  SERIAL_POOL.fill(0, serialPoolOffset, serialPoolOffset + SERIAL_OCTETS);
  serialPoolOffset += SERIAL_OCTETS;
  // Top bit clear (positive) and next bit set (no leading zero octet to strip): always 16
  // octets in DER with 126 random bits (rule 14 asks for at least 64).
  serial[0] = ((serial[0] as number) & 0x7f) | 0x40;
  return serial;
}

/**
 * Everything about a leaf that is fixed for one issuer, encoded once: the issuer Name (the
 * issuer certificate's subject bytes, so name chaining is byte-exact), the signature
 * AlgorithmIdentifier, the AKI (= the issuer's SKI, rule 15), and the constant extensions.
 * `assemble` then only encodes the serial, the dates, the key, its SKI and the SAN.
 */
export class LeafTemplate {
  readonly scheme: IssuerSignatureScheme;
  /** The earliest notAfter in the issuer chain: no leaf may outlive it (rule 9). */
  readonly chainNotAfterMs: number;
  readonly issuerNotBeforeMs: number;
  readonly issuerKeyIdentifier: Buffer;
  readonly #prefixAfterSerial: Buffer;
  readonly #extensionsSignature: Buffer;
  readonly #extensionsRsa: Buffer;

  constructor(issuerChain: readonly X509Certificate[], scheme: IssuerSignatureScheme) {
    const issuer = issuerChain[0];
    if (!issuer) throw new TypeError('issuer chain is empty');
    const fields = readIssuerCertificate(issuer);
    let chainNotAfterMs = fields.notAfterMs;
    issuerChain.slice(1).forEach((cert, i) => {
      chainNotAfterMs = Math.min(
        chainNotAfterMs,
        readIssuerCertificate(cert, `issuer chain certificate ${i + 2}`).notAfterMs,
      );
    });
    this.scheme = scheme;
    this.chainNotAfterMs = chainNotAfterMs;
    this.issuerNotBeforeMs = fields.notBeforeMs;
    this.issuerKeyIdentifier = fields.keyIdentifier;
    this.#prefixAfterSerial = Buffer.concat([scheme.algorithmIdentifier, fields.subjectDer]);
    const aki = extension(
      OID_AKI,
      false,
      encodeSequence(encodeTlv(contextPrimitiveTag(0), fields.keyIdentifier)),
    );
    this.#extensionsSignature = Buffer.concat([
      BASIC_CONSTRAINTS_LEAF,
      KEY_USAGE_SIGNATURE,
      EXT_KEY_USAGE_MTLS,
      aki,
    ]);
    this.#extensionsRsa = Buffer.concat([
      BASIC_CONSTRAINTS_LEAF,
      KEY_USAGE_SIGNATURE_ENCIPHERMENT,
      EXT_KEY_USAGE_MTLS,
      aki,
    ]);
  }

  /**
   * Assembles the TBSCertificate for one workload key at `nowMs`. Refuses (ERR_SIGNING_FAILED)
   * when the issuer is expired or not yet valid, or when clamping leaves no validity.
   */
  assemble(
    key: WorkloadPublicKey,
    identity: LeafIdentity,
    nowMs: number,
    profile: LeafProfileOptions,
  ): AssembledLeaf {
    if (nowMs >= this.chainNotAfterMs) {
      throw new WardenError(
        'ERR_SIGNING_FAILED',
        `issuer certificate expired at ${new Date(this.chainNotAfterMs).toISOString()}`,
      );
    }
    if (nowMs < this.issuerNotBeforeMs) {
      throw new WardenError(
        'ERR_SIGNING_FAILED',
        `issuer certificate is not valid before ${new Date(this.issuerNotBeforeMs).toISOString()}`,
      );
    }
    // Whole seconds: the encodings carry no fraction, and the returned dates must equal them.
    const notBeforeMs = floorToSecond(nowMs - profile.skewMs);
    const notAfterMs = Math.min(floorToSecond(nowMs + profile.ttlMs), this.chainNotAfterMs);
    if (notAfterMs <= notBeforeMs)
      throw new WardenError(
        'ERR_SIGNING_FAILED',
        'leaf validity would be empty after clamping to the issuer',
      );

    const serial = freshSerial();
    const validity = encodeSequence(
      encodeCertificateTime(notBeforeMs),
      encodeCertificateTime(notAfterMs),
    );
    const ski = Buffer.concat([
      SKI_EXTENSION_PREFIX,
      createHash('sha1').update(key.subjectPublicKey).digest(),
    ]);
    const names: Buffer[] = [encodeIa5String(identity.spiffeId, URI_TAG)];
    for (const dns of identity.dnsNames) names.push(encodeIa5String(dns, DNS_TAG));
    const san = encodeSequence(SAN_EXTENSION_PREFIX, encodeOctetString(encodeSequence(...names)));
    const extensions = encodeExplicit(
      3,
      encodeSequence(
        key.type === 'RSA' ? this.#extensionsRsa : this.#extensionsSignature,
        ski,
        san,
      ),
    );
    const tbsCertificate = encodeSequence(
      VERSION_AND_SERIAL_HEADER,
      serial,
      this.#prefixAfterSerial,
      validity,
      EMPTY_NAME,
      key.spkiDer,
      extensions,
    );
    return { tbsCertificate, serial, notBeforeMs, notAfterMs };
  }

  /** Certificate ::= SEQUENCE { tbsCertificate, signatureAlgorithm, signatureValue }. */
  wrap(tbsCertificate: Uint8Array, signature: Uint8Array): Buffer {
    return encodeSequence(
      tbsCertificate,
      this.scheme.algorithmIdentifier,
      encodeBitString(signature),
    );
  }
}

function floorToSecond(ms: number): number {
  return Math.floor(ms / 1000) * 1000;
}

/**
 * Builds the template for a bundle's issuer after checking that the private key belongs to
 * the issuing certificate (a mismatch would mint leaves nobody can verify).
 */
export function createLeafTemplate(bundle: TrustBundle): LeafTemplate {
  const issuer = issuingCertificate(bundle);
  const scheme = issuerSignatureScheme(bundle.issuerKey);
  const fromKey = createPublicKey(bundle.issuerKey).export({ format: 'der', type: 'spki' });
  const fromCert = issuer.publicKey.export({ format: 'der', type: 'spki' });
  if (!fromKey.equals(fromCert))
    throw new WardenError(
      'ERR_TRUST_MATERIAL_INVALID',
      'issuer key does not match the issuer certificate',
    );
  if (!issuer.ca)
    throw new WardenError(
      'ERR_TRUST_MATERIAL_INVALID',
      'issuer certificate is not a CA (basicConstraints cA is not true)',
    );
  return new LeafTemplate(bundle.issuerChain, scheme);
}
