import { createPublicKey, sign, type KeyObject } from 'node:crypto';

/**
 * A minimal PKCS#10 builder for the CA's own serving key: an ECDSA P-256 key, an empty
 * subject, no attributes. The signer takes only the public key from a CSR and decides the
 * identity itself, so nothing else is needed; building the DER here avoids a second X.509
 * library on the serving path.
 */

function derLength(length: number): Buffer {
  if (length < 0x80) return Buffer.from([length]);
  const bytes: number[] = [];
  for (let n = length; n > 0; n = Math.floor(n / 256)) bytes.unshift(n & 0xff);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}

function der(tag: number, ...contents: Buffer[]): Buffer {
  const body = Buffer.concat(contents);
  return Buffer.concat([Buffer.from([tag]), derLength(body.length), body]);
}

const SEQUENCE = 0x30;
const INTEGER_ZERO = Buffer.from([0x02, 0x01, 0x00]);
const EMPTY_NAME = der(SEQUENCE);
const EMPTY_ATTRIBUTES = Buffer.from([0xa0, 0x00]); // [0] IMPLICIT SET OF Attribute, empty
// AlgorithmIdentifier { ecdsa-with-SHA256 (1.2.840.10045.4.3.2) }, parameters absent (RFC 5758).
const ECDSA_WITH_SHA256 = der(
  SEQUENCE,
  Buffer.from([0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02]),
);

/** PEM `CERTIFICATE REQUEST` for an EC P-256 private key, signed with it (proof of possession). */
export function buildServingCsrPem(privateKey: KeyObject): string {
  const key = privateKey;
  if (
    key.type !== 'private' ||
    key.asymmetricKeyType !== 'ec' ||
    key.asymmetricKeyDetails?.namedCurve !== 'prime256v1'
  ) {
    throw new TypeError('buildServingCsrPem needs an EC P-256 private key');
  }
  const spki = createPublicKey(key).export({ format: 'der', type: 'spki' });
  const info = der(SEQUENCE, INTEGER_ZERO, EMPTY_NAME, spki, EMPTY_ATTRIBUTES);
  const signature = sign('sha256', info, key); // DER ECDSA-Sig-Value, as X.509 wants
  const bitString = der(0x03, Buffer.from([0x00]), signature);
  const request = der(SEQUENCE, info, ECDSA_WITH_SHA256, bitString);
  const base64 = request
    .toString('base64')
    .replace(/(.{64})/g, '$1\n')
    .replace(/\n$/, '');
  return `-----BEGIN CERTIFICATE REQUEST-----\n${base64}\n-----END CERTIFICATE REQUEST-----\n`;
}
