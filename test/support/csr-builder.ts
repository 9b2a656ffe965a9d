import { sign, type KeyObject } from 'node:crypto';
import {
  encodeBitString,
  encodeSequence,
  encodeSmallInteger,
  encodeTlv,
} from '../../src/shared/der.js';

/**
 * Builds CertificationRequests field by field, for rejection tests that need a structure no
 * well-behaved encoder produces (wrong version, compressed or off-curve points, mismatched
 * algorithms). Valid CSRs in the profile tests come from openssl and @peculiar/x509 instead.
 */
export interface CsrParts {
  readonly spki: Uint8Array;
  readonly signatureAlgorithm: Uint8Array;
  /** Signs the certificationRequestInfo DER. */
  readonly signWith: (cri: Buffer) => Buffer;
  readonly version?: number;
  readonly subject?: Uint8Array;
  /** null leaves the attributes field out entirely. */
  readonly attributes?: Uint8Array | null;
}

export function buildCsrDer(parts: CsrParts): Buffer {
  const fields: Uint8Array[] = [
    encodeSmallInteger(parts.version ?? 0),
    parts.subject ?? encodeSequence(),
    parts.spki,
  ];
  if (parts.attributes !== null) fields.push(parts.attributes ?? encodeTlv(0xa0));
  const cri = encodeSequence(...fields);
  return encodeSequence(cri, parts.signatureAlgorithm, encodeBitString(parts.signWith(cri)));
}

export const ALGORITHM_IDS = {
  ecdsaWithSha256: Buffer.from('300a06082a8648ce3d040302', 'hex'),
  ecdsaWithSha256WithNull: Buffer.from('300c06082a8648ce3d0403020500', 'hex'),
  sha256WithRsa: Buffer.from('300d06092a864886f70d01010b0500', 'hex'),
  sha256WithRsaNoParams: Buffer.from('300b06092a864886f70d01010b', 'hex'),
  ed25519: Buffer.from('300506032b6570', 'hex'),
} as const;

export function signerFor(key: KeyObject, hash: string | null): (cri: Buffer) => Buffer {
  return (cri) => sign(hash, cri, key);
}
