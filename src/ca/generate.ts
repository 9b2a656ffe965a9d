// @peculiar/x509 decorates its ASN.1 classes; the metadata polyfill must load first.
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import {
  createPrivateKey,
  randomBytes,
  webcrypto,
  X509Certificate as NodeX509Certificate,
} from 'node:crypto';
import { systemClock, type Clock } from '../shared/clock.js';
import { WardenError } from '../shared/errors.js';
import { trustDomainProblem } from '../shared/spiffe-id.js';
import {
  classifyKey,
  keyGenParams,
  webCryptoParamsFor,
  isKeyAlgorithm,
  type KeyAlgorithm,
} from './key-algorithm.js';
import { DEFAULT_BACKDATE_MS } from './backdate.js';
import { toPem } from './pem.js';
import type { TrustMaterialPem } from './trust-material.js';
import { validateTrustMaterial } from './validate.js';

type CryptoKey = webcrypto.CryptoKey;
type CryptoKeyPair = webcrypto.CryptoKeyPair;
type Algorithm = webcrypto.Algorithm;
// @peculiar/x509 is typed against the DOM's Crypto, which this Node-only build does not
// declare; Node's webcrypto implements the same API.
const crypto = webcrypto;

const DAY_MS = 86_400_000;
/** Dapr's default for both the root and the issuer: one year. */
export const DEFAULT_ROOT_TTL_MS = 365 * DAY_MS;
export const DEFAULT_ISSUER_TTL_MS = 365 * DAY_MS;
export { DEFAULT_BACKDATE_MS };

export const ROOT_COMMON_NAME = 'warden-root';
export const ISSUER_COMMON_NAME = 'warden-issuer';

const OID_NAME_CONSTRAINTS = '2.5.29.30';

/** A CA certificate with its private key, both PEM (PKCS#8 for the key). */
export interface CaCredential {
  readonly certificatePem: string;
  readonly privateKeyPem: string;
}

export interface GenerateTrustMaterialOptions {
  readonly trustDomain: string;
  /** Default 'ecdsa-p256'. */
  readonly keyAlgorithm?: KeyAlgorithm;
  /** Default one year. */
  readonly rootTtlMs?: number;
  /** Default one year; the issuer's notAfter is clamped to the root's. */
  readonly issuerTtlMs?: number;
  readonly clock?: Clock;
  /** How far notBefore is backdated (default 15 minutes). */
  readonly backdateMs?: number;
  /** Constrain the issuer to the trust domain (off by default): see GenerateIssuerOptions. */
  readonly nameConstraint?: boolean;
}

export interface GeneratedTrustMaterial {
  /** What a store persists: ca.crt (the root), issuer.crt, issuer.key. */
  readonly material: TrustMaterialPem;
  /**
   * The root with its key. Dapr's three-file layout has no place for the root key; Warden
   * keeps it as the store's rootKey extra (root.key) when it generated the root, so that it
   * can renew issuers and rotate the root on its own (see trust-store.ts, rotation/).
   */
  readonly root: CaCredential;
  readonly issuer: CaCredential;
}

export interface GenerateIssuerOptions {
  readonly trustDomain: string;
  readonly keyAlgorithm?: KeyAlgorithm;
  readonly issuerTtlMs?: number;
  readonly clock?: Clock;
  readonly backdateMs?: number;
  /**
   * Add a critical URI name constraint that limits the issuer to `spiffe://<trustDomain>/...`
   * (rule 13). Off by default: in Dapr's model one CA issues into every app's trust domain
   * (`public` unless an app's Configuration says otherwise) while its own trust domain is
   * the control plane's (`localhost` by default), and OpenSSL and Go refuse every leaf outside
   * the constraint. Only for a CA whose workloads all live in its own trust domain.
   */
  readonly nameConstraint?: boolean;
}

/** A fresh self-signed root and an issuer signed by it, validated before they are returned. */
export async function generateTrustMaterial(
  options: GenerateTrustMaterialOptions,
): Promise<GeneratedTrustMaterial> {
  const settings = checkOptions(options);
  const rootTtlMs = checkTtl(options.rootTtlMs ?? DEFAULT_ROOT_TTL_MS, 'root TTL');
  const nowMs = settings.clock.now().getTime();

  const keys = (await crypto.subtle.generateKey(keyGenParams(settings.keyAlgorithm), true, [
    'sign',
    'verify',
  ])) as CryptoKeyPair;
  const spki = await crypto.subtle.exportKey('spki', keys.publicKey);
  const rootSki = await x509.SubjectKeyIdentifierExtension.create(spki, false, crypto);
  const rootCert = await x509.X509CertificateGenerator.createSelfSigned(
    {
      serialNumber: randomSerialHex(),
      name: caName(settings.trustDomain, ROOT_COMMON_NAME),
      notBefore: new Date(nowMs - settings.backdateMs),
      notAfter: new Date(nowMs + rootTtlMs),
      keys,
      signingAlgorithm: webCryptoParamsFor(settings.keyAlgorithm).signingParams,
      extensions: [
        new x509.BasicConstraintsExtension(true, undefined, true),
        new x509.KeyUsagesExtension(
          x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign,
          true,
        ),
        rootSki,
        spiffeSan(settings.trustDomain),
      ],
    },
    crypto,
  );
  const root: CaCredential = {
    certificatePem: toPem('CERTIFICATE', new Uint8Array(rootCert.rawData)),
    privateKeyPem: toPem(
      'PRIVATE KEY',
      new Uint8Array(await crypto.subtle.exportKey('pkcs8', keys.privateKey)),
    ),
  };
  const issuer = await generateIssuer(root, options);
  const material: TrustMaterialPem = {
    anchorsPem: root.certificatePem,
    issuerChainPem: issuer.certificatePem,
    issuerKeyPem: issuer.privateKeyPem,
  };
  // Rule 18: validate what we mint before anyone stores or uses it.
  validateTrustMaterial(material, { clock: settings.clock });
  return { material, root, issuer };
}

/**
 * A new issuer under an existing root (rotation mints issuers this way). The root may be
 * any key kind Warden accepts (a BYO RSA or P-384 root too); the issuer's own key is
 * `keyAlgorithm`. Its notAfter never passes the root's, and its notBefore never precedes it.
 */
export async function generateIssuer(
  root: CaCredential,
  options: GenerateIssuerOptions,
): Promise<CaCredential> {
  const settings = checkOptions(options);
  const issuerTtlMs = checkTtl(options.issuerTtlMs ?? DEFAULT_ISSUER_TTL_MS, 'issuer TTL');
  const nowMs = settings.clock.now().getTime();

  const rootNode = parseRootCertificate(root.certificatePem);
  const rootPeculiar = new x509.X509Certificate(rootNode.raw);
  const rootKey = await importSigningKey(root.privateKeyPem);
  if (!rootNode.checkPrivateKey(createPrivateKey(root.privateKeyPem))) {
    throw new TypeError('generateIssuer: the root private key does not match the root certificate');
  }
  const rootNotBefore = rootPeculiar.notBefore.getTime();
  const rootNotAfter = rootPeculiar.notAfter.getTime();
  const notAfterMs = Math.min(nowMs + issuerTtlMs, rootNotAfter);
  const notBeforeMs = Math.max(nowMs - settings.backdateMs, rootNotBefore);
  if (notAfterMs <= nowMs) {
    throw new WardenError(
      'ERR_TRUST_MATERIAL_INVALID',
      'cannot mint an issuer: the root has expired',
    );
  }

  const keys = (await crypto.subtle.generateKey(keyGenParams(settings.keyAlgorithm), true, [
    'sign',
    'verify',
  ])) as CryptoKeyPair;
  const spki = await crypto.subtle.exportKey('spki', keys.publicKey);
  const rootSkiExt = rootPeculiar.getExtension(x509.SubjectKeyIdentifierExtension);
  const rootKeyId =
    rootSkiExt?.keyId ??
    (await x509.SubjectKeyIdentifierExtension.create(rootPeculiar.publicKey, false, crypto)).keyId;

  const cert = await x509.X509CertificateGenerator.create(
    {
      serialNumber: randomSerialHex(),
      subject: caName(settings.trustDomain, ISSUER_COMMON_NAME),
      // The issuer name is the root's subject exactly as encoded (a BYO root may use
      // string types we would not choose), so that name chaining compares equal.
      issuer: rootPeculiar.subjectName,
      notBefore: new Date(notBeforeMs),
      notAfter: new Date(notAfterMs),
      publicKey: spki,
      signingKey: rootKey.key,
      signingAlgorithm: rootKey.signingParams,
      extensions: [
        // pathLen 0: the issuer signs leaves only, never another CA.
        new x509.BasicConstraintsExtension(true, 0, true),
        new x509.KeyUsagesExtension(
          x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign,
          true,
        ),
        await x509.SubjectKeyIdentifierExtension.create(spki, false, crypto),
        new x509.AuthorityKeyIdentifierExtension(rootKeyId, false),
        spiffeSan(settings.trustDomain),
        ...(options.nameConstraint === true
          ? [trustDomainNameConstraint(settings.trustDomain)]
          : []),
      ],
    },
    crypto,
  );
  return {
    certificatePem: toPem('CERTIFICATE', new Uint8Array(cert.rawData)),
    privateKeyPem: toPem(
      'PRIVATE KEY',
      new Uint8Array(await crypto.subtle.exportKey('pkcs8', keys.privateKey)),
    ),
  };
}

interface CheckedOptions {
  readonly trustDomain: string;
  readonly keyAlgorithm: KeyAlgorithm;
  readonly clock: Clock;
  readonly backdateMs: number;
}

function checkOptions(options: GenerateIssuerOptions): CheckedOptions {
  const problem = trustDomainProblem(options.trustDomain);
  if (problem)
    throw new WardenError('ERR_CONFIG_INVALID', `trust domain "${options.trustDomain}" ${problem}`);
  const keyAlgorithm = options.keyAlgorithm ?? 'ecdsa-p256';
  if (!isKeyAlgorithm(keyAlgorithm)) {
    throw new WardenError(
      'ERR_CONFIG_INVALID',
      `key algorithm "${String(keyAlgorithm)}" is not one of ecdsa-p256, ed25519`,
    );
  }
  const backdateMs = options.backdateMs ?? DEFAULT_BACKDATE_MS;
  if (!Number.isFinite(backdateMs) || backdateMs < 0)
    throw new TypeError('backdateMs must be a non-negative number');
  return {
    trustDomain: options.trustDomain,
    keyAlgorithm,
    clock: options.clock ?? systemClock,
    backdateMs,
  };
}

function checkTtl(ttlMs: number, what: string): number {
  // At least a minute: certificate times have one-second resolution, and a CA that lives
  // for less than its own backdate would be useless.
  if (!Number.isFinite(ttlMs) || ttlMs < 60_000) {
    throw new WardenError('ERR_CONFIG_INVALID', `${what} must be at least 1m`);
  }
  return ttlMs;
}

/** 128 bits from the CSPRNG (rule 14); @peculiar/x509 keeps the DER INTEGER positive (≤ 17 octets). */
function randomSerialHex(): string {
  const bytes = randomBytes(16);
  // A zero first octet would be stripped by DER minimal encoding, leaving fewer than 128
  // bits on the wire; forcing it non-zero keeps the serial exactly 16 or 17 octets.
  if (bytes[0] === 0) bytes[0] = 1;
  return bytes.toString('hex');
}

function caName(trustDomain: string, commonName: string): x509.JsonName {
  return [{ O: [trustDomain] }, { CN: [commonName] }];
}

/** Rule 11: a CA's SPIFFE ID is the bare trust domain. Non-critical because the subject is not empty. */
function spiffeSan(trustDomain: string): x509.SubjectAlternativeNameExtension {
  return new x509.SubjectAlternativeNameExtension(
    [{ type: 'url', value: `spiffe://${trustDomain}` }],
    false,
  );
}

/**
 * Rule 13 (opt-in, see `nameConstraint`): the issuer may only vouch for names in its own
 * trust domain. NameConstraints with one permitted URI subtree whose base is the bare host;
 * RFC 5280 §4.2.1.10 says the extension MUST be critical. Go reads a host without a leading dot as the host or its
 * subdomains, OpenSSL as the exact host: both admit spiffe://<td>/..., which is all we mint.
 * Encoded by hand because @peculiar/x509 has no class for it:
 *   NameConstraints ::= SEQUENCE { permittedSubtrees [0] IMPLICIT SEQUENCE OF
 *     GeneralSubtree ::= SEQUENCE { base GeneralName (uniformResourceIdentifier [6] IA5String) } }
 */
function trustDomainNameConstraint(trustDomain: string): x509.Extension {
  const uri = derTlv(0x86, Buffer.from(trustDomain, 'ascii'));
  const subtree = derTlv(0x30, uri);
  const permitted = derTlv(0xa0, subtree);
  return new x509.Extension(OID_NAME_CONSTRAINTS, true, derTlv(0x30, permitted));
}

function derTlv(tag: number, content: Uint8Array): Uint8Array {
  const length = content.length;
  let header: number[];
  if (length < 0x80) header = [tag, length];
  else if (length < 0x100) header = [tag, 0x81, length];
  else header = [tag, 0x82, length >> 8, length & 0xff]; // a trust domain is ≤ 255 bytes
  const out = new Uint8Array(header.length + length);
  out.set(header, 0);
  out.set(content, header.length);
  return out;
}

function parseRootCertificate(pem: string): NodeX509Certificate {
  try {
    return new NodeX509Certificate(pem);
  } catch {
    throw new TypeError('generateIssuer: the root certificate is not a PEM certificate');
  }
}

async function importSigningKey(
  pem: string,
): Promise<{ key: CryptoKey; signingParams: Algorithm }> {
  let keyObject;
  try {
    keyObject = createPrivateKey(pem);
  } catch {
    throw new TypeError('generateIssuer: the root private key cannot be parsed');
  }
  const { kind, description } = classifyKey(keyObject);
  if (!kind)
    throw new WardenError(
      'ERR_TRUST_MATERIAL_INVALID',
      `the root key type ${description} is not accepted`,
    );
  const params = webCryptoParamsFor(kind);
  const pkcs8 = keyObject.export({ format: 'der', type: 'pkcs8' });
  const key = await crypto.subtle.importKey('pkcs8', pkcs8, params.importParams, false, ['sign']);
  return { key, signingParams: params.signingParams };
}
