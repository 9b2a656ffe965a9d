import { createHash, createPublicKey, KeyObject, webcrypto } from 'node:crypto';
import {
  bitLength,
  bitStringContent,
  contentOf,
  DerCursor,
  DerTag,
  encodeBitString,
  encodeSequence,
  encodeUnsignedInteger,
  expectNull,
  oidContent,
  oidToString,
  positiveIntegerMagnitude,
  readSingleElement,
  type DerElement,
} from '../../shared/der.js';
import { WardenError } from '../../shared/errors.js';

/** The public-key types a workload may present (rule 17: P-256/P-384, Ed25519, RSA ≥ 2048). */
export type WorkloadKeyType = 'P-256' | 'P-384' | 'Ed25519' | 'RSA';

export const MIN_RSA_BITS = 2048;
export const MAX_RSA_BITS = 8192;

/** A workload public key as parsed from a SubjectPublicKeyInfo, ready to re-emit and import. */
export interface WorkloadPublicKey {
  readonly type: WorkloadKeyType;
  /** Modulus size for RSA keys, else undefined. */
  readonly rsaBits: number | undefined;
  /** The subjectPublicKey bits (the BIT STRING content after the unused-bits octet). */
  readonly subjectPublicKey: Uint8Array;
  /** SubjectPublicKeyInfo re-encoded canonically from the parsed key (never the caller's bytes). */
  readonly spkiDer: Buffer;
}

// OID content octets (hex) → what they name. Only the ones a message or a branch needs.
const OID_EC_PUBLIC_KEY = '2a8648ce3d0201';
const OID_RSA_ENCRYPTION = '2a864886f70d010101';
const OID_ED25519 = '2b6570';
const KEY_OID_NAMES: Readonly<Record<string, string>> = {
  '2b6571': 'Ed448',
  '2b656e': 'X25519',
  '2b656f': 'X448',
  '2a8648ce380401': 'DSA',
  '2a864886f70d01010a': 'RSASSA-PSS',
  '2a864886f70d010307': 'RSAES-OAEP',
  '2a864886f70d010301': 'DH',
  '2a8648ce3e0201': 'DH (X9.42)',
  '2a850302021301': 'GOST R 34.10-2001',
  '2a8503070101': 'GOST R 34.10-2012',
  '2a811ccf5501822d': 'SM2',
};
const CURVE_P256 = '2a8648ce3d030107';
const CURVE_P384 = '2b81040022';
// Named so refusals say what was sent. P-521 is refused on purpose: rule 17 admits P-256 and
// P-384 only, and its verification would cost ≈ 10× a P-256 one on the hot path.
const CURVE_NAMES: Readonly<Record<string, string>> = {
  '2b81040023': 'P-521',
  '2b8104000a': 'secp256k1',
  '2a8648ce3d030101': 'P-192',
  '2b81040021': 'P-224',
  '2b2403030208010107': 'brainpoolP256r1',
  '2b240303020801010b': 'brainpoolP384r1',
  '2b240303020801010d': 'brainpoolP512r1',
  '2a811ccf5501822d': 'SM2',
};

// Canonical SPKI prefixes: SEQUENCE { AlgorithmIdentifier, BIT STRING header, 0 unused bits }.
const SPKI_PREFIX: Readonly<Record<'P-256' | 'P-384' | 'Ed25519', Buffer>> = {
  'P-256': Buffer.from('3059301306072a8648ce3d020106082a8648ce3d030107034200', 'hex'),
  'P-384': Buffer.from('3076301006072a8648ce3d020106052b81040022036200', 'hex'),
  Ed25519: Buffer.from('302a300506032b6570032100', 'hex'),
};
const RSA_ALGORITHM_ID = Buffer.from('300d06092a864886f70d0101010500', 'hex');

const EC_POINT_LENGTH = { 'P-256': 65, 'P-384': 97 } as const;

function unsupported(what: string): WardenError {
  return new WardenError('ERR_CSR_KEY_UNSUPPORTED', `unsupported CSR key: ${what}`);
}

function invalid(what: string): WardenError {
  return new WardenError('ERR_CSR_INVALID', `CSR public key ${what}`);
}

function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes)
    ? bytes
    : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

function hex(bytes: Uint8Array): string {
  return asBuffer(bytes).toString('hex');
}

/**
 * Reads a SubjectPublicKeyInfo element and accepts only the key types of rule 17. Structural
 * problems throw DerError (the caller reports ERR_CSR_INVALID); a well-formed key of another
 * type or size throws ERR_CSR_KEY_UNSUPPORTED naming it; a malformed key of an accepted type
 * throws ERR_CSR_INVALID.
 */
export function parseSubjectPublicKeyInfo(cursor: DerCursor, spki: DerElement): WorkloadPublicKey {
  const buf = cursor.buf;
  const spkiCursor = cursor.enter(spki, 'subjectPKInfo');
  const algorithm = spkiCursor.next('subjectPKInfo algorithm', DerTag.SEQUENCE);
  const bits = spkiCursor.next('subjectPublicKey', DerTag.BIT_STRING);
  spkiCursor.finish('subjectPKInfo');

  const algCursor = spkiCursor.enter(algorithm, 'subjectPKInfo algorithm');
  const oidElement = algCursor.next('subjectPKInfo algorithm OID', DerTag.OID);
  const oid = hex(oidContent(buf, oidElement, 'subjectPKInfo algorithm OID'));
  const params = algCursor.hasMore
    ? algCursor.next('subjectPKInfo algorithm parameters')
    : undefined;
  algCursor.finish('subjectPKInfo algorithm');

  const { unusedBits, bytes } = bitStringContent(buf, bits, 'subjectPublicKey');

  if (oid === OID_EC_PUBLIC_KEY) {
    if (!params) throw invalid('EC key has no curve parameter');
    if (params.tag === DerTag.SEQUENCE) throw unsupported('EC with explicit curve parameters');
    if (params.tag !== DerTag.OID) throw invalid('EC curve parameter is not a named curve');
    const curveOid = hex(oidContent(buf, params, 'EC named curve'));
    const curve = curveOid === CURVE_P256 ? 'P-256' : curveOid === CURVE_P384 ? 'P-384' : undefined;
    if (!curve) {
      const name = CURVE_NAMES[curveOid] ?? `curve ${oidToString(contentOf(buf, params))}`;
      throw unsupported(`EC ${name}`);
    }
    if (unusedBits !== 0) throw invalid('BIT STRING has unused bits');
    const form = bytes[0];
    if (form === 0x02 || form === 0x03) {
      // Go's crypto/x509 cannot parse compressed points in certificates; re-encoding would need
      // point decompression, and a leaf a Go peer cannot read is useless.
      throw unsupported(`EC ${curve} compressed point (only uncompressed points are accepted)`);
    }
    if (form !== 0x04 || bytes.length !== EC_POINT_LENGTH[curve])
      throw invalid(`is not an uncompressed ${curve} point`);
    return {
      type: curve,
      rsaBits: undefined,
      subjectPublicKey: bytes,
      spkiDer: Buffer.concat([SPKI_PREFIX[curve], bytes]),
    };
  }

  if (oid === OID_ED25519) {
    // RFC 8410 §3: parameters MUST be absent.
    if (params) throw invalid('Ed25519 algorithm has parameters');
    if (unusedBits !== 0 || bytes.length !== 32) throw invalid('is not a 32-byte Ed25519 key');
    return {
      type: 'Ed25519',
      rsaBits: undefined,
      subjectPublicKey: bytes,
      spkiDer: Buffer.concat([SPKI_PREFIX.Ed25519, bytes]),
    };
  }

  if (oid === OID_RSA_ENCRYPTION) {
    // RFC 3279 §2.3.1: parameters MUST be NULL (Go refuses keys without it).
    if (!params) throw invalid('RSA algorithm has no NULL parameters');
    expectNull(params, 'RSA algorithm parameters');
    if (unusedBits !== 0) throw invalid('BIT STRING has unused bits');
    const rsaKey = readSingleElement(bytes, DerTag.SEQUENCE, 'RSAPublicKey');
    const rsaCursor = DerCursor.inside(bytes, rsaKey);
    const modulus = positiveIntegerMagnitude(
      bytes,
      rsaCursor.next('RSA modulus', DerTag.INTEGER),
      'RSA modulus',
    );
    const exponent = positiveIntegerMagnitude(
      bytes,
      rsaCursor.next('RSA public exponent', DerTag.INTEGER),
      'RSA public exponent',
    );
    rsaCursor.finish('RSAPublicKey');
    const rsaBits = bitLength(modulus);
    if (rsaBits < MIN_RSA_BITS || rsaBits > MAX_RSA_BITS)
      throw unsupported(`RSA ${rsaBits} bits (accepted: ${MIN_RSA_BITS} to ${MAX_RSA_BITS})`);
    if (((modulus[modulus.length - 1] as number) & 1) === 0) throw invalid('RSA modulus is even');
    // Go's crypto/rsa refuses exponents above 2^31-1; a certificate Go peers cannot load is useless.
    const e = exponent.length <= 4 ? exponent.reduce((acc, b) => acc * 256 + b, 0) : Infinity;
    if (e < 3 || e > 0x7fffffff || e % 2 === 0)
      throw unsupported('RSA public exponent (must be odd, 3 to 2^31-1)');
    const rsaPublicKey = encodeSequence(
      encodeUnsignedInteger(modulus),
      encodeUnsignedInteger(exponent),
    );
    return {
      type: 'RSA',
      rsaBits,
      subjectPublicKey: rsaPublicKey,
      spkiDer: encodeSequence(RSA_ALGORITHM_ID, encodeBitString(rsaPublicKey)),
    };
  }

  const name = KEY_OID_NAMES[oid] ?? `algorithm ${oidToString(contentOf(buf, oidElement))}`;
  throw unsupported(name);
}

/** SHA-1 of the subjectPublicKey bits: RFC 5280 §4.2.1.2 method (1), as Go and OpenSSL do. */
export function keyIdentifier(key: WorkloadPublicKey): Buffer {
  return createHash('sha1').update(key.subjectPublicKey).digest();
}

/**
 * Imports a parsed workload key by the cheapest route measured (bench/csr-verify.ts) on
 * OpenSSL 3.0, whose generic SPKI decoder costs ≈ 100 µs per key whatever the type:
 * - EC: WebCrypto 'raw' import of the uncompressed point, then `KeyObject.from`. Node builds
 *   the key directly from the point (EC_POINT_oct2point, which rejects points off the curve
 *   or with coordinates ≥ p) without the decoder and without the full public-key check a
 *   JWK import performs (an n·Q multiplication, ≈ 300 µs for P-384).
 * - Ed25519: JWK, which Node maps to EVP_PKEY_new_raw_public_key (≈ 5 µs).
 * - RSA: the PKCS#1 RSAPublicKey DER, which Node decodes with d2i_PublicKey (≈ 6 µs).
 * Nothing is cached: every workload sends a fresh key.
 */
export async function importWorkloadPublicKey(key: WorkloadPublicKey): Promise<KeyObject> {
  switch (key.type) {
    case 'P-256':
    case 'P-384':
      try {
        const cryptoKey = await webcrypto.subtle.importKey(
          'raw',
          key.subjectPublicKey,
          { name: 'ECDSA', namedCurve: key.type },
          true,
          ['verify'],
        );
        return KeyObject.from(cryptoKey);
      } catch (err) {
        throw new WardenError(
          'ERR_CSR_INVALID',
          `CSR public key is not a valid ${key.type} point (not on the curve)`,
          { cause: err },
        );
      }
    case 'Ed25519':
      return createPublicKey({
        key: {
          kty: 'OKP',
          crv: 'Ed25519',
          x: asBuffer(key.subjectPublicKey).toString('base64url'),
        },
        format: 'jwk',
      });
    case 'RSA':
      try {
        return createPublicKey({
          key: asBuffer(key.subjectPublicKey),
          format: 'der',
          type: 'pkcs1',
        });
      } catch (err) {
        throw new WardenError('ERR_CSR_INVALID', 'CSR RSA public key cannot be loaded', {
          cause: err,
        });
      }
  }
}
