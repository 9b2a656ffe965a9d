import { createPrivateKey, X509Certificate, type KeyObject } from 'node:crypto';
import { systemClock, type Clock } from '../shared/clock.js';
import { KeyUsageFlag, readCaExtensions, type CaExtensions } from './ca-extensions.js';
import { WardenError } from '../shared/errors.js';
import { printable } from '../shared/spiffe-id.js';
import { certificateValidity, subjectText } from './certificate-facts.js';
import { classifyKey } from './key-algorithm.js';
import { parsePemBlocks, toPem, type PemBlock } from './pem.js';
import {
  DEFAULT_TRUST_MATERIAL_NAMES,
  type TrustMaterialNames,
  type TrustMaterialPem,
} from './trust-material.js';

export interface ValidateTrustMaterialOptions {
  /** Decides "expired" and "not yet valid" (default: the system clock). */
  readonly clock?: Clock;
  /** How the three parts are named in messages (default ca.crt, issuer.crt, issuer.key). */
  readonly names?: TrustMaterialNames;
}

/** Trust material that passed every check, parsed and normalised. */
export interface ValidatedTrustMaterial {
  readonly anchors: readonly X509Certificate[];
  /** The anchors re-encoded as canonical PEM, in file order. */
  readonly anchorsPem: string;
  readonly issuerChain: readonly X509Certificate[];
  /** The issuer chain re-encoded as canonical PEM, issuing certificate first. */
  readonly issuerChainPem: string;
  readonly issuerKey: KeyObject;
  /** The issuer key as PKCS#8 PEM, whatever encoding the file used. */
  readonly issuerKeyPem: string;
}

const ACCEPTED = 'accepted: ECDSA P-256/P-384, Ed25519, RSA ≥ 2048';

/** Upper bound on each part before parsing: trust files are a few KiB. */
export const MAX_TRUST_FILE_BYTES = 1024 * 1024;

/**
 * Checks operator-provided or stored material and returns it parsed, or throws one
 * WardenError('ERR_TRUST_MATERIAL_INVALID') listing every problem, each naming its file.
 */
export function validateTrustMaterial(
  material: TrustMaterialPem,
  options: ValidateTrustMaterialOptions = {},
): ValidatedTrustMaterial {
  const { problems, result } = inspectTrustMaterial(material, options);
  if (problems.length > 0 || !result) {
    throw new WardenError(
      'ERR_TRUST_MATERIAL_INVALID',
      `invalid trust material: ${problems.join('; ')}`,
      {
        details: { problems: problems.length },
      },
    );
  }
  return result;
}

/** Every problem with the material, as sentences that start with the file's name; [] when valid. */
export function findTrustMaterialProblems(
  material: TrustMaterialPem,
  options: ValidateTrustMaterialOptions = {},
): string[] {
  return inspectTrustMaterial(material, options).problems;
}

interface ParsedCertificate {
  readonly node: X509Certificate;
  /** The extensions Node does not expose (keyUsage, pathLen), read from the DER. */
  readonly extensions: CaExtensions;
  /** "ca.crt (O=td, CN=root)" or "issuer.crt certificate 2 (CN=intermediate)". */
  readonly label: string;
}

function inspectTrustMaterial(
  material: TrustMaterialPem,
  options: ValidateTrustMaterialOptions,
): { problems: string[]; result: ValidatedTrustMaterial | null } {
  const names = options.names ?? DEFAULT_TRUST_MATERIAL_NAMES;
  const now = (options.clock ?? systemClock).now().getTime();
  const problems: string[] = [];

  const anchors = parseCertificates(material.anchorsPem, names.anchors, problems);
  for (const anchor of anchors) {
    checkCaCertificate(anchor, now, problems);
    if (!isSelfSigned(anchor.node))
      problems.push(`${anchor.label} is not self-signed (ca.crt must hold only roots)`);
  }

  const chain = parseCertificates(material.issuerChainPem, names.issuerChain, problems);
  chain.forEach((cert, i) => {
    checkCaCertificate(cert, now, problems);
    if (isSelfSigned(cert.node)) {
      problems.push(`${cert.label} is self-signed; roots belong in ${names.anchors} only`);
      return;
    }
    const parent = chain[i + 1];
    if (parent) {
      if (!signedBy(cert.node, parent.node))
        problems.push(`${cert.label} is not issued by ${parent.label}`);
      return;
    }
    const root = anchors.find((anchor) => signedBy(cert.node, anchor.node));
    if (!root) {
      problems.push(`${cert.label} is not signed by any certificate in ${names.anchors}`);
      return;
    }
    checkPathLengths([...chain, root], problems);
  });

  const issuerKey = parsePrivateKey(material.issuerKeyPem, names.issuerKey, problems);
  const issuing = chain[0];
  if (issuerKey && issuing && !keyMatches(issuing.node, issuerKey)) {
    problems.push(`${names.issuerKey} does not match the public key of ${names.issuerChain}`);
  }

  if (problems.length > 0 || !issuerKey || anchors.length === 0 || chain.length === 0) {
    return { problems, result: null };
  }
  return {
    problems,
    result: Object.freeze({
      anchors: Object.freeze(anchors.map((a) => a.node)),
      anchorsPem: anchors.map((a) => toPem('CERTIFICATE', a.node.raw)).join(''),
      issuerChain: Object.freeze(chain.map((c) => c.node)),
      issuerChainPem: chain.map((c) => toPem('CERTIFICATE', c.node.raw)).join(''),
      issuerKey,
      issuerKeyPem: issuerKey.export({ format: 'pem', type: 'pkcs8' }).toString(),
    }),
  };
}

function parseCertificates(pem: string, file: string, problems: string[]): ParsedCertificate[] {
  if (Buffer.byteLength(pem) > MAX_TRUST_FILE_BYTES) {
    problems.push(`${file} is larger than ${MAX_TRUST_FILE_BYTES} bytes`);
    return [];
  }
  const parsed = parsePemBlocks(pem);
  if (!parsed.ok) {
    problems.push(`${file} ${parsed.problem}`);
    return [];
  }
  const certs: ParsedCertificate[] = [];
  const many = parsed.blocks.length > 1;
  parsed.blocks.forEach((block, i) => {
    const where = many ? `${file} certificate ${i + 1}` : file;
    if (block.label !== 'CERTIFICATE') {
      problems.push(`${where} is a "${block.label}" PEM block, not CERTIFICATE`);
      return;
    }
    let node: X509Certificate;
    try {
      node = new X509Certificate(block.der);
    } catch {
      problems.push(`${where} is not a valid X.509 certificate`);
      return;
    }
    // Node parsed it; the extension checks below report what they cannot read.
    const extensions = readCaExtensions(block.der);
    certs.push({ node, extensions, label: `${where} (${printable(subjectText(node), 96)})` });
  });
  return certs;
}

function checkCaCertificate(cert: ParsedCertificate, now: number, problems: string[]): void {
  const { node, label } = cert;
  if (!node.ca) problems.push(`${label} is not a CA certificate (basicConstraints cA is not true)`);
  const usage = cert.extensions.keyUsage;
  if (usage === 'unreadable')
    problems.push(`${label} has a keyUsage extension that cannot be read`);
  else if (usage === null)
    problems.push(`${label} has no keyUsage extension (a CA certificate needs keyCertSign)`);
  else if ((usage & KeyUsageFlag.keyCertSign) === 0)
    problems.push(`${label} keyUsage does not include keyCertSign`);
  const { kind, description } = classifyKey(node.publicKey);
  if (!kind)
    problems.push(`${label}: public key type ${description} is not accepted (${ACCEPTED})`);
  const { notBefore, notAfter } = certificateValidity(node);
  if (now > notAfter.getTime()) problems.push(`${label} expired at ${notAfter.toISOString()}`);
  if (now < notBefore.getTime())
    problems.push(`${label} is not valid until ${notBefore.toISOString()}`);
}

/**
 * RFC 5280 §4.2.1.9: a CA's pathLenConstraint bounds the CA certificates that may follow
 * it. `path` is issuing certificate first, root last; the issuing certificate is followed
 * by no CA (only leaves), the one above it by one, and so on.
 */
function checkPathLengths(path: readonly ParsedCertificate[], problems: string[]): void {
  path.forEach((cert, below) => {
    const max = cert.extensions.pathLength;
    if (max !== undefined && below > max) {
      problems.push(`${cert.label} has pathLen ${max} but ${below} CA certificate(s) follow it`);
    }
  });
}

function isSelfSigned(cert: X509Certificate): boolean {
  return signedBy(cert, cert);
}

/** Names chain (issuer = parent's subject, AKI/SKI when present) and the signature verifies. */
function signedBy(child: X509Certificate, parent: X509Certificate): boolean {
  try {
    return child.checkIssued(parent) && child.verify(parent.publicKey);
  } catch {
    return false;
  }
}

const KEY_LABELS: Record<string, 'pkcs8' | 'sec1' | 'pkcs1'> = {
  'PRIVATE KEY': 'pkcs8',
  'EC PRIVATE KEY': 'sec1',
  'RSA PRIVATE KEY': 'pkcs1',
};

/**
 * PKCS#8 ("PRIVATE KEY"), SEC1 ("EC PRIVATE KEY", optionally after the "EC PARAMETERS"
 * block `openssl ecparam -genkey` writes) or PKCS#1 ("RSA PRIVATE KEY"): what Dapr,
 * openssl and cert-manager write. Messages never include any of the file's bytes.
 */
function parsePrivateKey(pem: string, file: string, problems: string[]): KeyObject | null {
  if (Buffer.byteLength(pem) > MAX_TRUST_FILE_BYTES) {
    problems.push(`${file} is larger than ${MAX_TRUST_FILE_BYTES} bytes`);
    return null;
  }
  const parsed = parsePemBlocks(pem);
  if (!parsed.ok) {
    problems.push(`${file} ${parsed.problem}`);
    return null;
  }
  const keyBlocks: PemBlock[] = [];
  for (const block of parsed.blocks) {
    if (block.label === 'EC PARAMETERS') continue;
    if (block.label === 'ENCRYPTED PRIVATE KEY') {
      problems.push(`${file} is an encrypted private key; provide it unencrypted`);
      return null;
    }
    if (!(block.label in KEY_LABELS)) {
      problems.push(`${file} has a "${block.label}" PEM block, not a private key`);
      return null;
    }
    keyBlocks.push(block);
  }
  const block = keyBlocks[0];
  if (!block || keyBlocks.length > 1) {
    problems.push(`${file} must contain exactly one private key, found ${keyBlocks.length}`);
    return null;
  }
  let key: KeyObject;
  try {
    key = createPrivateKey({
      key: block.der,
      format: 'der',
      type: KEY_LABELS[block.label] as 'pkcs8' | 'sec1' | 'pkcs1',
    });
  } catch {
    problems.push(`${file} is not a valid ${block.label}`);
    return null;
  }
  const { kind, description } = classifyKey(key);
  if (!kind) {
    problems.push(`${file}: key type ${description} is not accepted (${ACCEPTED})`);
    return null;
  }
  return key;
}

function keyMatches(cert: X509Certificate, key: KeyObject): boolean {
  try {
    return cert.checkPrivateKey(key);
  } catch {
    return false;
  }
}
