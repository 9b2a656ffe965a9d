import { createPublicKey, generateKeyPairSync, sign, type KeyObject } from 'node:crypto';

/** Key types a workload (or the bench, or `warden request`) can make a CSR for. */
export type WorkloadKeyType = 'ecdsa-p256' | 'ecdsa-p384' | 'ed25519' | 'rsa-2048';

export const WORKLOAD_KEY_TYPES: readonly WorkloadKeyType[] = [
  'ecdsa-p256',
  'ecdsa-p384',
  'ed25519',
  'rsa-2048',
];

export interface WorkloadKeyAndCsr {
  readonly privateKey: KeyObject;
  /** PKCS#8 PEM of the private key. */
  readonly privateKeyPem: string;
  /** PEM `CERTIFICATE REQUEST` with an empty subject: identity comes from the token, not the CSR. */
  readonly csrPem: string;
}

// The CSR is fixed-shape (empty subject, no attributes), so a few DER helpers suffice here.
function derLength(n: number): Buffer {
  if (n < 0x80) return Buffer.from([n]);
  const bytes: number[] = [];
  for (let v = n; v > 0; v = Math.floor(v / 256)) bytes.unshift(v & 0xff);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}

function derTlv(tag: number, ...parts: Buffer[]): Buffer {
  const body = Buffer.concat(parts);
  return Buffer.concat([Buffer.from([tag]), derLength(body.length), body]);
}

/** Signature AlgorithmIdentifier DER and digest for each key type. */
const SIGNATURE_ALGORITHM: Record<WorkloadKeyType, { der: Buffer; digest: string | null }> = {
  'ecdsa-p256': { der: Buffer.from('300a06082a8648ce3d040302', 'hex'), digest: 'sha256' },
  'ecdsa-p384': { der: Buffer.from('300a06082a8648ce3d040303', 'hex'), digest: 'sha384' },
  ed25519: { der: Buffer.from('300506032b6570', 'hex'), digest: null },
  'rsa-2048': { der: Buffer.from('300d06092a864886f70d01010b0500', 'hex'), digest: 'sha256' },
};

export function generateWorkloadKey(type: WorkloadKeyType): KeyObject {
  switch (type) {
    case 'ecdsa-p256':
      return generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
    case 'ecdsa-p384':
      return generateKeyPairSync('ec', { namedCurve: 'P-384' }).privateKey;
    case 'ed25519':
      return generateKeyPairSync('ed25519').privateKey;
    case 'rsa-2048':
      return generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;
  }
}

/** Builds a PKCS#10 CSR with an empty subject and no attributes for the given private key. */
export function buildCsr(privateKey: KeyObject, type: WorkloadKeyType): string {
  const spki = createPublicKey(privateKey).export({ format: 'der', type: 'spki' });
  const info = derTlv(
    0x30,
    Buffer.from([0x02, 0x01, 0x00]),
    Buffer.from([0x30, 0x00]),
    spki,
    Buffer.from([0xa0, 0x00]),
  );
  const algorithm = SIGNATURE_ALGORITHM[type];
  const signature = sign(algorithm.digest, info, privateKey);
  const der = derTlv(0x30, info, algorithm.der, derTlv(0x03, Buffer.from([0x00]), signature));
  return toPem('CERTIFICATE REQUEST', der);
}

export function generateKeyAndCsr(type: WorkloadKeyType): WorkloadKeyAndCsr {
  const privateKey = generateWorkloadKey(type);
  return {
    privateKey,
    privateKeyPem: privateKey.export({ format: 'pem', type: 'pkcs8' }) as string,
    csrPem: buildCsr(privateKey, type),
  };
}

export function toPem(label: string, der: Uint8Array): string {
  const lines =
    Buffer.from(der)
      .toString('base64')
      .match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${label}-----\n${lines.join('\n')}\n-----END ${label}-----\n`;
}
