import { verify as cryptoVerify } from 'node:crypto';
import {
  bitStringContent,
  contentOf,
  DerCursor,
  DerError,
  DerTag,
  encodingOf,
  expectNull,
  oidContent,
  oidToString,
  readSingleElement,
  smallInteger,
} from '../../shared/der.js';
import { WardenError } from '../../shared/errors.js';
import {
  importWorkloadPublicKey,
  parseSubjectPublicKeyInfo,
  type WorkloadKeyType,
  type WorkloadPublicKey,
} from './public-key.js';

/**
 * Largest CSR accepted, checked before any parsing. An RSA-8192 CSR with a few attributes is
 * about 2 KiB of PEM; 16 KiB leaves room for verbose clients and bounds the work per request.
 */
export const MAX_CSR_BYTES = 16 * 1024;

/** PEM labels accepted: the standard one, and `CERTIFICATE`, which old Dapr sidecars send. */
export const CSR_PEM_LABELS: readonly string[] = ['CERTIFICATE REQUEST', 'CERTIFICATE'];

type KeyFamily = 'EC' | 'Ed25519' | 'RSA';

interface SignatureAlgorithm {
  readonly name: string;
  readonly family: KeyFamily;
  /** Digest for node:crypto.verify; null for Ed25519 (the algorithm hashes internally). */
  readonly hash: 'sha256' | 'sha384' | 'sha512' | null;
  /** How the parameters field must look. */
  readonly params: 'absent' | 'null-or-absent';
}

// Signature algorithm OIDs (content octets, hex) accepted for the CSR's self-signature.
const SIGNATURE_ALGORITHMS: Readonly<Record<string, SignatureAlgorithm>> = {
  // RFC 5758 §3.2: ECDSA parameters MUST be absent.
  '2a8648ce3d040302': { name: 'ecdsa-with-SHA256', family: 'EC', hash: 'sha256', params: 'absent' },
  '2a8648ce3d040303': { name: 'ecdsa-with-SHA384', family: 'EC', hash: 'sha384', params: 'absent' },
  '2a8648ce3d040304': { name: 'ecdsa-with-SHA512', family: 'EC', hash: 'sha512', params: 'absent' },
  // RFC 8410 §3: parameters MUST be absent.
  '2b6570': { name: 'Ed25519', family: 'Ed25519', hash: null, params: 'absent' },
  // RFC 4055 §5 says NULL; some encoders omit it. The parameters carry no meaning here, so
  // both are accepted rather than refusing otherwise valid sidecar CSRs.
  '2a864886f70d01010b': {
    name: 'sha256WithRSAEncryption',
    family: 'RSA',
    hash: 'sha256',
    params: 'null-or-absent',
  },
  '2a864886f70d01010c': {
    name: 'sha384WithRSAEncryption',
    family: 'RSA',
    hash: 'sha384',
    params: 'null-or-absent',
  },
  '2a864886f70d01010d': {
    name: 'sha512WithRSAEncryption',
    family: 'RSA',
    hash: 'sha512',
    params: 'null-or-absent',
  },
};

// Recognised but refused signature algorithms, so the message names them.
const REFUSED_SIGNATURE_ALGORITHMS: Readonly<Record<string, string>> = {
  '2a864886f70d010105': 'sha1WithRSAEncryption (SHA-1)',
  '2a864886f70d010104': 'md5WithRSAEncryption (MD5)',
  '2a8648ce3d0401': 'ecdsa-with-SHA1 (SHA-1)',
  '2a864886f70d01010e': 'sha224WithRSAEncryption',
  '2a8648ce3d040301': 'ecdsa-with-SHA224',
  '2a864886f70d01010a': 'RSASSA-PSS',
  '2b6571': 'Ed448',
};

const KEY_FAMILY: Readonly<Record<WorkloadKeyType, KeyFamily>> = {
  'P-256': 'EC',
  'P-384': 'EC',
  Ed25519: 'Ed25519',
  RSA: 'RSA',
};

/** What the signer takes from a CSR: the key, and what proves the requester holds it. */
export interface ParsedCsr {
  readonly publicKey: WorkloadPublicKey;
  readonly signatureAlgorithm: string;
  /** The DER of certificationRequestInfo exactly as received: what the signature covers. */
  readonly certificationRequestInfo: Uint8Array;
  readonly signature: Uint8Array;
  readonly verifyHash: 'sha256' | 'sha384' | 'sha512' | null;
}

function csrInvalid(message: string, cause?: unknown): WardenError {
  return new WardenError('ERR_CSR_INVALID', message, cause === undefined ? {} : { cause });
}

const WHITESPACE_ONLY = /^[ \t\r\n]*$/;
const BEGIN_LINE = /-----BEGIN ([^\r\n-]*)-----[ \t]*\r?\n/y;
const END_LINE = /-----END ([^\r\n-]*)-----/y;
const BASE64_BODY = /^[A-Za-z0-9+/]*={0,2}$/;

/**
 * Strictly decodes exactly one PEM block with an accepted label: only whitespace may
 * surround it, no second block, no headers, canonical base64.
 */
export function decodeCsrPem(input: Uint8Array): Buffer {
  if (input.length === 0) throw csrInvalid('CSR is empty');
  if (input.length > MAX_CSR_BYTES) {
    // Checked before anything else looks at the bytes (cert-manager GHSA-r4pg-vg54-wxx4 et al.).
    throw new WardenError(
      'ERR_REQUEST_TOO_LARGE',
      `CSR is ${input.length} bytes, more than the ${MAX_CSR_BYTES}-byte limit`,
    );
  }
  for (let i = 0; i < input.length; i++) {
    const b = input[i] as number;
    if (b > 0x7e || (b < 0x20 && b !== 0x0a && b !== 0x0d && b !== 0x09))
      throw csrInvalid(`CSR is not PEM: byte ${i} is not printable ASCII`);
  }
  const text = Buffer.from(input.buffer, input.byteOffset, input.byteLength).toString('latin1');
  if (WHITESPACE_ONLY.test(text)) throw csrInvalid('CSR is empty');

  const beginAt = text.indexOf('-----BEGIN ');
  if (beginAt === -1) throw csrInvalid('CSR is not PEM: no "-----BEGIN" line');
  if (!WHITESPACE_ONLY.test(text.slice(0, beginAt)))
    throw csrInvalid('CSR PEM has data before the BEGIN line');

  BEGIN_LINE.lastIndex = beginAt;
  const begin = BEGIN_LINE.exec(text);
  if (!begin) throw csrInvalid('CSR PEM BEGIN line is malformed');
  const label = begin[1] as string;
  if (!CSR_PEM_LABELS.includes(label)) {
    throw csrInvalid(`CSR PEM block type "${label.slice(0, 40)}" is not CERTIFICATE REQUEST`);
  }
  const bodyStart = BEGIN_LINE.lastIndex;

  const endAt = text.indexOf('-----END ', bodyStart);
  const nextBegin = text.indexOf('-----BEGIN ', bodyStart);
  if (endAt === -1) throw csrInvalid('CSR PEM block has no END line');
  if (nextBegin !== -1 && nextBegin < endAt)
    throw csrInvalid('CSR PEM block is not closed before the next BEGIN line');
  END_LINE.lastIndex = endAt;
  const end = END_LINE.exec(text);
  if (!end || end[1] !== label)
    throw csrInvalid(`CSR PEM END line does not match "-----BEGIN ${label}-----"`);

  const after = text.slice(END_LINE.lastIndex);
  if (!WHITESPACE_ONLY.test(after)) {
    throw csrInvalid(
      after.includes('-----BEGIN ')
        ? 'CSR contains more than one PEM block'
        : 'CSR PEM has data after the END line',
    );
  }

  const rawBody = text.slice(bodyStart, endAt);
  if (rawBody.includes(':')) throw csrInvalid('CSR PEM headers are not allowed');
  const body = rawBody.replace(/[ \t\r\n]+/g, '');
  if (body.length === 0) throw csrInvalid('CSR PEM block is empty');
  if (body.length % 4 !== 0 || !BASE64_BODY.test(body))
    throw csrInvalid('CSR PEM body is not valid base64');
  const der = Buffer.from(body, 'base64');
  // Buffer's decoder ignores non-zero padding bits; canonical base64 re-encodes to itself.
  if (der.toString('base64') !== body) throw csrInvalid('CSR PEM body is not canonical base64');
  return der;
}

/**
 * Parses a PKCS#10 CertificationRequest (RFC 2986) from DER. Only the public key and what
 * proves possession of it are read; subject, attributes and requested extensions are skipped
 * unread, because identity comes from the caller, never from the CSR.
 */
export function parseCsrDer(der: Uint8Array): ParsedCsr {
  try {
    const top = readSingleElement(der, DerTag.SEQUENCE, 'CertificationRequest');
    const csr = DerCursor.inside(der, top);
    const criElement = csr.next('certificationRequestInfo', DerTag.SEQUENCE);
    const algElement = csr.next('signatureAlgorithm', DerTag.SEQUENCE);
    const sigElement = csr.next('signature', DerTag.BIT_STRING);
    csr.finish('CertificationRequest');

    const cri = csr.enter(criElement, 'certificationRequestInfo');
    const version = smallInteger(der, cri.next('version', DerTag.INTEGER), 'version');
    if (version !== 0) throw csrInvalid(`CSR version ${version} is not v1 (0)`);
    cri.next('subject', DerTag.SEQUENCE);
    const spkiElement = cri.next('subjectPKInfo', DerTag.SEQUENCE);
    cri.next('attributes', 0xa0);
    cri.finish('certificationRequestInfo');

    const publicKey = parseSubjectPublicKeyInfo(cri, spkiElement);

    const alg = csr.enter(algElement, 'signatureAlgorithm');
    const oidElement = alg.next('signatureAlgorithm OID', DerTag.OID);
    const oid = Buffer.from(oidContent(der, oidElement, 'signatureAlgorithm OID')).toString('hex');
    const params = alg.hasMore ? alg.next('signatureAlgorithm parameters') : undefined;
    alg.finish('signatureAlgorithm');
    const algorithm = SIGNATURE_ALGORITHMS[oid];
    if (!algorithm) {
      const name = REFUSED_SIGNATURE_ALGORITHMS[oid] ?? oidToString(contentOf(der, oidElement));
      throw csrInvalid(`CSR signature algorithm ${name} is not accepted`);
    }
    if (params) {
      if (algorithm.params === 'absent')
        throw csrInvalid(`CSR signature algorithm ${algorithm.name} must not have parameters`);
      expectNull(params, `${algorithm.name} parameters`);
    }
    if (algorithm.family !== KEY_FAMILY[publicKey.type]) {
      throw csrInvalid(
        `CSR signature algorithm ${algorithm.name} does not match its ${publicKey.type} key`,
      );
    }
    const { unusedBits, bytes: signature } = bitStringContent(der, sigElement, 'signature');
    if (unusedBits !== 0) throw csrInvalid('CSR signature BIT STRING has unused bits');

    return {
      publicKey,
      signatureAlgorithm: algorithm.name,
      certificationRequestInfo: encodingOf(der, criElement),
      signature,
      verifyHash: algorithm.hash,
    };
  } catch (err) {
    if (err instanceof DerError) throw csrInvalid(`CSR is not valid DER: ${err.message}`, err);
    throw err;
  }
}

/**
 * Proof of possession: verifies the CSR's self-signature with its own public key.
 * Rejects with ERR_CSR_SIGNATURE when it does not verify.
 */
export async function verifyCsrSignature(csr: ParsedCsr): Promise<void> {
  const key = await importWorkloadPublicKey(csr.publicKey);
  let ok: boolean;
  try {
    ok = cryptoVerify(csr.verifyHash, csr.certificationRequestInfo, key, csr.signature);
  } catch (err) {
    // OpenSSL throws instead of returning false for some malformed signatures.
    throw new WardenError(
      'ERR_CSR_SIGNATURE',
      `CSR ${csr.signatureAlgorithm} signature is malformed`,
      { cause: err },
    );
  }
  if (!ok)
    throw new WardenError(
      'ERR_CSR_SIGNATURE',
      `CSR ${csr.signatureAlgorithm} signature does not verify with its public key`,
    );
}

/** The whole CSR step of issuance: size cap, PEM, DER, key rules, proof of possession. */
export async function readVerifiedCsrKey(csrPem: Uint8Array): Promise<WorkloadPublicKey> {
  const csr = parseCsrDer(decodeCsrPem(csrPem));
  await verifyCsrSignature(csr);
  return csr.publicKey;
}
