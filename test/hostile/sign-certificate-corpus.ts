import 'reflect-metadata';
import { createPublicKey, generateKeyPairSync, randomBytes } from 'node:crypto';
import { status as GrpcStatus } from '@grpc/grpc-js';
import * as x509 from '@peculiar/x509';
import {
  DER_NULL,
  encodeBitString,
  encodeOid,
  encodeSequence,
  encodeUnsignedInteger,
} from '../../src/shared/der.js';
import { ALGORITHM_IDS, buildCsrDer, signerFor } from '../support/csr-builder.js';
import {
  HOSTILE_AUDIENCE,
  HOSTILE_NAMESPACE,
  type HostileJwtKeys,
} from '../support/hostile-warden.js';
import {
  hmacSigner,
  joseToken,
  nodeToken,
  unsignedToken,
  type Claims,
} from '../support/jwt-fixtures.js';
import type { WireSignRequest } from '../support/sentry-proto-client.js';
import {
  makeOpensslCsr,
  makeOpensslCsrWithKey,
  makePeculiarCsr,
  pemBody,
  toPem,
  type TestCsr,
} from '../support/signing-test-pki.js';

/**
 * The SignCertificate hostile-input corpus: one row per attack, with the gRPC status and a
 * fragment of the message the caller must get, or the only identity a certificate may carry.
 * Rows run end to end over gRPC/TLS against a real in-process `warden serve`
 * (sign-certificate-corpus.test.ts), and the fuzz suite replays crashing inputs as rows.
 *
 * The CSR parser's own 40-row table (test/unit/issuer/signing/csr.test.ts) covers every DER
 * and key shape in isolation; the CSR rows here are the representative ones, proven through
 * the whole edge (size caps, rules, validator, signer, status mapping).
 */

/**
 * What a row needs from the server. The harness runs the rows whose capability it provides;
 * Kubernetes mode (TokenReview) and rotation add their own capability and rows here when
 * they exist, and their harness provides them.
 */
export type SignCapability = 'insecure' | 'jwks' | 'kubernetes' | 'rotation';

export type SignExpectation =
  | {
      /** Refused with this status; `details` must contain `fragment`. */
      readonly refused: GrpcStatus;
      readonly fragment: string;
    }
  | {
      /** Issued, and the leaf carries exactly this SPIFFE ID and these DNS names, nothing else. */
      readonly issued: string;
      readonly dnsNames?: readonly string[];
    };

export interface SignCorpusRow {
  readonly name: string;
  readonly needs: SignCapability;
  readonly request: (f: SignCorpusFixtures) => Promise<WireSignRequest> | WireSignRequest;
  readonly expect: SignExpectation;
}

/** Inputs built once per suite (CSRs are slow to make with openssl). */
export interface SignCorpusFixtures {
  readonly p256: TestCsr;
  /** A P-256 CSR whose DER length is not a multiple of 3, so its base64 has padding. */
  readonly padded: TestCsr;
  readonly ed25519: TestCsr;
  /** Asks for a CA certificate, another SPIFFE ID, DNS/IP/email SANs and a subject. */
  readonly smuggler: TestCsr;
  /** openssl-made, asking for the CA's own SPIFFE ID and the injector's DNS name. */
  readonly opensslSmuggler: TestCsr;
  readonly rsa1024Pem: string;
  readonly secp256k1Pem: string;
  readonly ed448Pem: string;
  readonly sha1Pem: string;
  /** The CA's anchors: a real certificate under the CERTIFICATE label old sidecars use. */
  readonly anchorsPem: string;
  readonly keys: HostileJwtKeys;
}

export async function buildSignCorpusFixtures(
  keys: HostileJwtKeys,
  anchorsPem: string,
): Promise<SignCorpusFixtures> {
  let padded = await makePeculiarCsr('P-256');
  for (let i = 0; i < 20 && pemBody(padded.pem).length % 3 === 0; i++)
    padded = await makePeculiarCsr('P-256');
  const ec = (curve: string): string =>
    makeOpensslCsrWithKey(['-algorithm', 'EC', '-pkeyopt', `ec_paramgen_curve:${curve}`]);
  return {
    p256: await makePeculiarCsr('P-256'),
    padded,
    ed25519: await makePeculiarCsr('Ed25519'),
    smuggler: await makePeculiarCsr('P-256', {
      name: 'CN=dapr-sentry, O=system:masters',
      extensions: [
        new x509.SubjectAlternativeNameExtension([
          { type: 'url', value: 'spiffe://evil.example/ns/kube-system/admin' },
          { type: 'url', value: `spiffe://localhost/ns/${HOSTILE_NAMESPACE}/dapr-sentry` },
          { type: 'dns', value: `dapr-sidecar-injector.${HOSTILE_NAMESPACE}.svc` },
          { type: 'ip', value: '10.0.0.1' },
          { type: 'email', value: 'root@example.org' },
        ]),
        new x509.BasicConstraintsExtension(true, 3, true),
        new x509.KeyUsagesExtension(
          x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign,
          true,
        ),
      ],
    }),
    opensslSmuggler: makeOpensslCsr('P-256', {
      subject: '/CN=dapr-injector/O=dapr',
      addext: [
        `subjectAltName=URI:spiffe://localhost/ns/${HOSTILE_NAMESPACE}/dapr-sentry,DNS:dapr-webhook.${HOSTILE_NAMESPACE}.svc`,
        'basicConstraints=critical,CA:TRUE',
        'extendedKeyUsage=codeSigning',
      ],
    }),
    rsa1024Pem: makeOpensslCsrWithKey(['-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:1024']),
    secp256k1Pem: ec('secp256k1'),
    ed448Pem: makeOpensslCsrWithKey(['-algorithm', 'ED448']),
    sha1Pem: makeOpensslCsrWithKey(
      ['-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256'],
      ['-sha1'],
    ),
    anchorsPem,
    keys,
  };
}

// ---------------------------------------------------------------- request makers

const csr = (text: string | Uint8Array): Buffer => Buffer.from(text);

/** A request the insecure validator would grant, with fields overridden. */
export function insecureRequest(
  f: Pick<SignCorpusFixtures, 'p256'>,
  overrides: Partial<WireSignRequest> = {},
): WireSignRequest {
  return {
    id: 'app',
    namespace: 'default',
    token_validator: 'INSECURE',
    certificate_signing_request: csr(f.p256.pem),
    ...overrides,
  };
}

export const JWKS_APP = { id: 'billing', namespace: 'prod', trustDomain: 'example.org' } as const;
export const JWKS_SUBJECT = `spiffe://${JWKS_APP.trustDomain}/ns/${JWKS_APP.namespace}/${JWKS_APP.id}`;

/** Claims a jwks token for JWKS_APP needs, valid now, with overrides. */
export function goodClaims(overrides: Claims = {}): Claims {
  const now = Math.floor(Date.now() / 1000);
  return { sub: JWKS_SUBJECT, aud: HOSTILE_AUDIENCE, iat: now, exp: now + 600, ...overrides };
}

export function jwksRequest(
  f: Pick<SignCorpusFixtures, 'p256'>,
  token: string,
  overrides: Partial<WireSignRequest> = {},
): WireSignRequest {
  return {
    id: JWKS_APP.id,
    namespace: JWKS_APP.namespace,
    trust_domain: JWKS_APP.trustDomain,
    token,
    token_validator: 'JWKS',
    certificate_signing_request: csr(f.p256.pem),
    ...overrides,
  };
}

function b64url(value: unknown): string {
  return Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)).toString(
    'base64url',
  );
}

/** The DER with one byte changed (XOR 0x01) at `index` from the end. */
function flipFromEnd(der: Uint8Array, index: number): Buffer {
  const copy = Buffer.from(der);
  const at = copy.length - index;
  copy[at] = (copy[at] as number) ^ 0x01;
  return copy;
}

/** A CSR whose body is signed by a key other than the one it carries. */
function signedByAnotherKey(): string {
  const carried = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const other = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  return toPem(
    buildCsrDer({
      spki: carried.publicKey.export({ format: 'der', type: 'spki' }),
      signatureAlgorithm: ALGORITHM_IDS.ecdsaWithSha256,
      signWith: signerFor(other.privateKey, 'sha256'),
    }),
  );
}

/** A CSR carrying a 16384-bit RSA modulus: verifying it would be slow, so it must be refused first. */
function hugeRsaCsr(): string {
  const modulus = randomBytes(2048);
  modulus[0] = (modulus[0] as number) | 0x80;
  modulus[modulus.length - 1] = (modulus[modulus.length - 1] as number) | 0x01;
  const rsaPublicKey = encodeSequence(
    encodeUnsignedInteger(modulus),
    encodeUnsignedInteger(Uint8Array.of(1, 0, 1)),
  );
  const spki = encodeSequence(
    encodeSequence(encodeOid('1.2.840.113549.1.1.1'), DER_NULL),
    encodeBitString(rsaPublicKey),
  );
  return toPem(
    buildCsrDer({
      spki,
      signatureAlgorithm: ALGORITHM_IDS.sha256WithRsa,
      signWith: () => randomBytes(2048),
    }),
  );
}

/** 400 SEQUENCEs nested in each other: a parser without a depth bound recurses 400 deep. */
function nestedDerBomb(): string {
  let inner: Buffer = encodeSequence();
  for (let i = 0; i < 400; i++) inner = encodeSequence(inner);
  return toPem(inner);
}

function withPemHeader(pem: string): string {
  return pem.replace(
    /(-----BEGIN [^-]+-----\r?\n)/,
    '$1Proc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,00\n\n',
  );
}

function nonCanonicalBase64(pem: string): string {
  const body = pemBody(pem).toString('base64');
  const padAt = body.indexOf('=');
  if (padAt < 1) throw new Error('fixture has no base64 padding');
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
  const last = alphabet.indexOf(body[padAt - 1] as string);
  // Setting the lowest (unused) bit keeps the decoded bytes but changes the text.
  const changed = body.slice(0, padAt - 1) + alphabet[last | 1] + body.slice(padAt);
  if (changed === body) throw new Error('padding bits already set');
  return `-----BEGIN CERTIFICATE REQUEST-----\n${(changed.match(/.{1,64}/g) ?? []).join('\n')}\n-----END CERTIFICATE REQUEST-----\n`;
}

function rsaPublicKeyPem(keys: HostileJwtKeys): string {
  return createPublicKey({ key: keys.rsa.publicJwk as never, format: 'jwk' })
    .export({ format: 'pem', type: 'spki' })
    .toString();
}

const INVALID = GrpcStatus.INVALID_ARGUMENT;
const DENIED = GrpcStatus.PERMISSION_DENIED;
const EXHAUSTED = GrpcStatus.RESOURCE_EXHAUSTED;
const refused = (status: GrpcStatus, fragment: string): SignExpectation => ({
  refused: status,
  fragment,
});

function insecureRow(
  name: string,
  overrides: (f: SignCorpusFixtures) => Partial<WireSignRequest>,
  expect: SignExpectation,
): SignCorpusRow {
  return { name, needs: 'insecure', request: (f) => insecureRequest(f, overrides(f)), expect };
}

function jwksRow(
  name: string,
  token: (f: SignCorpusFixtures) => Promise<string> | string,
  expect: SignExpectation,
  overrides: Partial<WireSignRequest> = {},
): SignCorpusRow {
  return {
    name,
    needs: 'jwks',
    request: async (f) => jwksRequest(f, await token(f), overrides),
    expect,
  };
}

// ---------------------------------------------------------------- the rows

const PEM_AND_DER_ROWS: readonly SignCorpusRow[] = [
  insecureRow(
    'DER bytes sent where PEM belongs',
    (f) => ({ certificate_signing_request: pemBody(f.p256.pem) }),
    refused(INVALID, 'ERR_CSR_INVALID: CSR is not PEM: byte 1 is not printable ASCII'),
  ),
  insecureRow(
    'a PEM block cut off in the middle of its body',
    (f) => ({ certificate_signing_request: csr(f.p256.pem.slice(0, f.p256.pem.length / 2)) }),
    refused(INVALID, 'ERR_CSR_INVALID: CSR PEM block has no END line'),
  ),
  insecureRow(
    'a whole PEM block around truncated DER',
    (f) => ({ certificate_signing_request: csr(toPem(pemBody(f.p256.pem).subarray(0, -9))) }),
    refused(INVALID, 'ERR_CSR_INVALID: CSR is not valid DER'),
  ),
  insecureRow(
    'DER with trailing bytes after the CertificationRequest',
    (f) => ({
      certificate_signing_request: csr(
        toPem(Buffer.concat([pemBody(f.p256.pem), Buffer.of(0x05, 0x00)])),
      ),
    }),
    refused(INVALID, 'ERR_CSR_INVALID: CSR is not valid DER'),
  ),
  insecureRow(
    'DER whose outer length claims 4 GiB',
    () => ({ certificate_signing_request: csr(toPem(Buffer.from('3084ffffffff3000', 'hex'))) }),
    refused(INVALID, 'ERR_CSR_INVALID: CSR is not valid DER'),
  ),
  insecureRow(
    '400 nested SEQUENCEs (a recursion bomb)',
    () => ({ certificate_signing_request: csr(nestedDerBomb()) }),
    refused(INVALID, 'ERR_CSR_INVALID: CSR is not valid DER'),
  ),
  insecureRow(
    'two CSRs in one field (the second would be ignored by a lax parser)',
    (f) => ({ certificate_signing_request: csr(f.p256.pem + f.ed25519.pem) }),
    refused(INVALID, 'ERR_CSR_INVALID: CSR contains more than one PEM block'),
  ),
  insecureRow(
    'a CSR followed by a private key block',
    (f) => ({
      certificate_signing_request: csr(
        f.p256.pem +
          (generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({
            format: 'pem',
            type: 'pkcs8',
          }) as string),
      ),
    }),
    refused(INVALID, 'ERR_CSR_INVALID: CSR contains more than one PEM block'),
  ),
  insecureRow(
    'the CSR DER under a PRIVATE KEY label',
    (f) => ({ certificate_signing_request: csr(toPem(pemBody(f.p256.pem), 'PRIVATE KEY')) }),
    refused(
      INVALID,
      'ERR_CSR_INVALID: CSR PEM block type "PRIVATE KEY" is not CERTIFICATE REQUEST',
    ),
  ),
  insecureRow(
    "the CA's own certificate under the CERTIFICATE label old sidecars use",
    (f) => ({ certificate_signing_request: csr(f.anchorsPem) }),
    refused(INVALID, 'ERR_CSR_INVALID: CSR'),
  ),
  insecureRow(
    'an END line that names another type',
    (f) => ({
      certificate_signing_request: csr(
        f.p256.pem.replace('END CERTIFICATE REQUEST', 'END CERTIFICATE'),
      ),
    }),
    refused(INVALID, 'ERR_CSR_INVALID: CSR PEM END line does not match'),
  ),
  insecureRow(
    'PEM encapsulated headers (Proc-Type, DEK-Info)',
    (f) => ({ certificate_signing_request: csr(withPemHeader(f.p256.pem)) }),
    refused(INVALID, 'ERR_CSR_INVALID: CSR PEM headers are not allowed'),
  ),
  insecureRow(
    'text before the BEGIN line',
    (f) => ({ certificate_signing_request: csr(`subject=CN=admin\n${f.p256.pem}`) }),
    refused(INVALID, 'ERR_CSR_INVALID: CSR PEM has data before the BEGIN line'),
  ),
  insecureRow(
    'base64 with characters outside the alphabet',
    (f) => ({ certificate_signing_request: csr(f.p256.pem.replace(/\n(.)/, '\n*')) }),
    refused(INVALID, 'ERR_CSR_INVALID: CSR PEM body is not valid base64'),
  ),
  insecureRow(
    'non-canonical base64 (padding bits set: two texts, one DER)',
    (f) => ({ certificate_signing_request: csr(nonCanonicalBase64(f.padded.pem)) }),
    refused(INVALID, 'ERR_CSR_INVALID: CSR PEM body is not canonical base64'),
  ),
  insecureRow(
    'a NUL byte inside the PEM',
    (f) => ({ certificate_signing_request: csr(f.p256.pem.replace('\n', '\n\u0000')) }),
    refused(INVALID, 'ERR_CSR_INVALID: CSR is not PEM: byte'),
  ),
  insecureRow(
    'an empty CSR field',
    () => ({ certificate_signing_request: Buffer.alloc(0) }),
    refused(INVALID, 'ERR_CSR_INVALID: certificate_signing_request is empty'),
  ),
  insecureRow(
    'a CSR padded with whitespace past the 16 KiB CSR limit',
    (f) => ({ certificate_signing_request: csr(f.p256.pem + ' '.repeat(20 * 1024)) }),
    refused(EXHAUSTED, 'ERR_REQUEST_TOO_LARGE: CSR is'),
  ),
];

const SIGNATURE_AND_KEY_ROWS: readonly SignCorpusRow[] = [
  insecureRow(
    'a P-256 CSR whose signature has one bit flipped (no proof of possession)',
    (f) => ({ certificate_signing_request: csr(toPem(flipFromEnd(pemBody(f.p256.pem), 1))) }),
    refused(INVALID, 'ERR_CSR_SIGNATURE: CSR ecdsa-with-SHA256 signature'),
  ),
  insecureRow(
    'an Ed25519 CSR whose signature has one bit flipped',
    (f) => ({ certificate_signing_request: csr(toPem(flipFromEnd(pemBody(f.ed25519.pem), 1))) }),
    refused(INVALID, 'ERR_CSR_SIGNATURE: CSR Ed25519 signature does not verify'),
  ),
  insecureRow(
    "a CSR carrying someone else's public key, signed with the requester's own",
    () => ({ certificate_signing_request: csr(signedByAnotherKey()) }),
    refused(INVALID, 'ERR_CSR_SIGNATURE: CSR ecdsa-with-SHA256 signature does not verify'),
  ),
  insecureRow(
    'an RSA-1024 key (weak)',
    (f) => ({ certificate_signing_request: csr(f.rsa1024Pem) }),
    refused(INVALID, 'ERR_CSR_KEY_UNSUPPORTED: unsupported CSR key: RSA 1024 bits'),
  ),
  insecureRow(
    'a 16384-bit RSA modulus (expensive to verify: refused before the signature is checked)',
    () => ({ certificate_signing_request: csr(hugeRsaCsr()) }),
    refused(INVALID, 'ERR_CSR_KEY_UNSUPPORTED: unsupported CSR key: RSA 16384 bits'),
  ),
  insecureRow(
    'a secp256k1 key (exotic curve)',
    (f) => ({ certificate_signing_request: csr(f.secp256k1Pem) }),
    refused(INVALID, 'ERR_CSR_KEY_UNSUPPORTED'),
  ),
  insecureRow(
    'an Ed448 key',
    (f) => ({ certificate_signing_request: csr(f.ed448Pem) }),
    refused(INVALID, 'ERR_CSR'),
  ),
  insecureRow(
    'a CSR signed with ecdsa-with-SHA1',
    (f) => ({ certificate_signing_request: csr(f.sha1Pem) }),
    refused(
      INVALID,
      'ERR_CSR_INVALID: CSR signature algorithm ecdsa-with-SHA1 (SHA-1) is not accepted',
    ),
  ),
];

const LONG = 'a'.repeat(65);

const IDENTITY_FIELD_ROWS: readonly SignCorpusRow[] = [
  insecureRow(
    'an empty id',
    () => ({ id: '' }),
    refused(INVALID, 'ERR_REQUEST_INVALID: id "" is empty'),
  ),
  insecureRow(
    'an id with a dot',
    () => ({ id: 'app.v2' }),
    refused(INVALID, 'may not contain "."'),
  ),
  insecureRow(
    'the id ".."',
    () => ({ id: '..' }),
    refused(INVALID, 'ERR_REQUEST_INVALID: id ".."'),
  ),
  insecureRow(
    'an id smuggling path segments',
    () => ({ id: 'app/../../ns/kube-system/admin' }),
    refused(INVALID, 'ERR_REQUEST_INVALID: id'),
  ),
  insecureRow(
    'an id with a percent-encoded slash',
    () => ({ id: 'app%2Fadmin' }),
    refused(INVALID, 'contains "%" (percent-encoding is not accepted)'),
  ),
  insecureRow(
    'an id with percent-encoded dots',
    () => ({ id: '%2e%2e' }),
    refused(INVALID, 'contains "%" (percent-encoding is not accepted)'),
  ),
  insecureRow(
    'an id ending in a newline',
    () => ({ id: 'app\n' }),
    refused(INVALID, 'ends with a newline'),
  ),
  insecureRow(
    'an id with a NUL byte (C-string truncation)',
    () => ({ id: 'app\u0000admin' }),
    refused(INVALID, 'contains a control character'),
  ),
  insecureRow(
    'an id with a Cyrillic homoglyph',
    () => ({ id: '\u0430pp' }),
    refused(INVALID, 'ERR_REQUEST_INVALID: id'),
  ),
  insecureRow(
    'an id with a space',
    () => ({ id: 'my app' }),
    refused(INVALID, 'ERR_REQUEST_INVALID: id'),
  ),
  insecureRow(
    'an id of 65 characters',
    () => ({ id: LONG }),
    refused(INVALID, 'is longer than 64 characters'),
  ),
  insecureRow(
    'an id of 10 KiB',
    () => ({ id: 'x'.repeat(10 * 1024) }),
    refused(INVALID, 'is longer than 64 characters'),
  ),
  insecureRow(
    'a namespace smuggling SPIFFE path segments',
    () => ({ namespace: 'a/ns/b' }),
    refused(INVALID, 'ERR_REQUEST_INVALID: namespace "a/ns/b" contains "/"'),
  ),
  insecureRow(
    'an empty namespace',
    () => ({ namespace: '' }),
    refused(INVALID, 'namespace "" is empty'),
  ),
  insecureRow(
    'the namespace ".."',
    () => ({ namespace: '..' }),
    refused(INVALID, 'ERR_REQUEST_INVALID: namespace ".."'),
  ),
  insecureRow(
    'a percent-encoded namespace',
    () => ({ namespace: '%2e%2e' }),
    refused(INVALID, 'contains "%" (percent-encoding is not accepted)'),
  ),
  insecureRow(
    'a namespace of 64 characters',
    () => ({ namespace: LONG.slice(1) }),
    refused(INVALID, 'is longer than 63 characters'),
  ),
  insecureRow(
    'an upper-case trust domain',
    () => ({ trust_domain: 'Example.org' }),
    refused(INVALID, 'ERR_REQUEST_INVALID: trust_domain "Example.org"'),
  ),
  insecureRow(
    'a trust domain with a port',
    () => ({ trust_domain: 'example.org:8443' }),
    refused(INVALID, 'may not contain a port or userinfo'),
  ),
  insecureRow(
    'a trust domain with userinfo',
    () => ({ trust_domain: 'admin@example.org' }),
    refused(INVALID, 'ERR_REQUEST_INVALID: trust_domain "admin@example.org"'),
  ),
  insecureRow(
    'a trust domain that is a whole SPIFFE ID',
    () => ({ trust_domain: 'spiffe://example.org' }),
    refused(INVALID, 'ERR_REQUEST_INVALID: trust_domain'),
  ),
  insecureRow(
    'a trust domain carrying a path',
    () => ({ trust_domain: 'example.org/ns/kube-system' }),
    refused(INVALID, 'contains "/"'),
  ),
  insecureRow(
    'a percent-encoded trust domain',
    () => ({ trust_domain: '%65xample.org' }),
    refused(INVALID, 'contains "%" (percent-encoding is not accepted)'),
  ),
  insecureRow(
    'a trust domain of 256 characters',
    () => ({ trust_domain: 'a'.repeat(256) }),
    refused(INVALID, 'ERR_REQUEST_INVALID: trust_domain'),
  ),
  insecureRow(
    '17 jwt_audiences',
    () => ({ jwt_audiences: Array.from({ length: 17 }, (_, i) => `aud-${i}`) }),
    refused(INVALID, 'jwt_audiences has 17 entries; the limit is 16'),
  ),
  insecureRow(
    'a jwt_audience with a space',
    () => ({ jwt_audiences: ['good', 'bad audience'] }),
    refused(INVALID, 'jwt_audiences[1] "bad audience" may contain only printable ASCII'),
  ),
  insecureRow(
    "the CA's own identity (dapr-sentry in the CA namespace)",
    () => ({ id: 'dapr-sentry', namespace: HOSTILE_NAMESPACE, trust_domain: 'localhost' }),
    refused(DENIED, "ERR_IDENTITY_DENIED: the CA's own identity"),
  ),
];

const SIZE_AND_ENUM_ROWS: readonly SignCorpusRow[] = [
  insecureRow(
    'a 70 KiB token (over the 64 KiB message cap: refused before decoding)',
    () => ({ token: 'x'.repeat(70 * 1024) }),
    refused(EXHAUSTED, 'larger than max'),
  ),
  insecureRow(
    'a 70 KiB CSR',
    () => ({ certificate_signing_request: Buffer.alloc(70 * 1024, 0x41) }),
    refused(EXHAUSTED, 'larger than max'),
  ),
  insecureRow(
    '1000 jwt_audiences of 60 bytes (60 KiB, under the message cap)',
    () => ({ jwt_audiences: Array.from({ length: 1000 }, () => 'a'.repeat(60)) }),
    refused(INVALID, 'jwt_audiences has 1000 entries; the limit is 16'),
  ),
  insecureRow(
    'token_validator 99 (outside the enum)',
    () => ({ token_validator: 99 }),
    refused(INVALID, 'ERR_VALIDATOR_NOT_ENABLED: token_validator 99 is not a known validator'),
  ),
  insecureRow(
    'token_validator -1',
    () => ({ token_validator: -1 }),
    refused(INVALID, 'ERR_VALIDATOR_NOT_ENABLED: token_validator -1 is not a known validator'),
  ),
  insecureRow(
    'token_validator 2147483647',
    () => ({ token_validator: 2147483647 }),
    refused(INVALID, 'ERR_VALIDATOR_NOT_ENABLED: token_validator 2147483647'),
  ),
  insecureRow(
    'token_validator KUBERNETES, which is not enabled here',
    () => ({ token_validator: 'KUBERNETES' }),
    refused(INVALID, 'ERR_VALIDATOR_NOT_ENABLED: token_validator KUBERNETES is not enabled'),
  ),
];

const SMUGGLING_ROWS: readonly SignCorpusRow[] = [
  insecureRow(
    'a CSR asking for another SPIFFE ID, the CA identity, DNS/IP/email SANs, CA:TRUE and keyCertSign',
    (f) => ({ certificate_signing_request: csr(f.smuggler.pem) }),
    { issued: 'spiffe://public/ns/default/app', dnsNames: [] },
  ),
  insecureRow(
    'an openssl CSR asking for the CA identity, a webhook DNS name, CA:TRUE and codeSigning',
    (f) => ({ id: 'worker', certificate_signing_request: csr(f.opensslSmuggler.pem) }),
    { issued: 'spiffe://public/ns/default/worker', dnsNames: [] },
  ),
  insecureRow(
    'a control-plane id outside the CA namespace gets no webhook DNS name',
    (f) => ({ id: 'dapr-injector', certificate_signing_request: csr(f.smuggler.pem) }),
    { issued: 'spiffe://public/ns/default/dapr-injector', dnsNames: [] },
  ),
  insecureRow(
    'a control-plane id in the CA namespace gets only its own DNS name, not the CSR ones',
    (f) => ({
      id: 'dapr-operator',
      namespace: HOSTILE_NAMESPACE,
      certificate_signing_request: csr(f.smuggler.pem),
    }),
    {
      issued: `spiffe://public/ns/${HOSTILE_NAMESPACE}/dapr-operator`,
      dnsNames: [`dapr-webhook.${HOSTILE_NAMESPACE}.svc`],
    },
  ),
  insecureRow(
    'spaces and tabs inside the base64 body (RFC 7468 lax, as Go reads PEM): the same CSR, issued',
    (f) => ({
      certificate_signing_request: csr(f.p256.pem.replace(/\n([A-Za-z0-9+/]{10})/, '\n$1 \t ')),
    }),
    { issued: 'spiffe://public/ns/default/app', dnsNames: [] },
  ),
  {
    name: 'UNKNOWN (0) uses the default validator and the public trust domain',
    needs: 'insecure',
    request: (f) => ({
      id: 'app',
      namespace: 'default',
      certificate_signing_request: csr(f.ed25519.pem),
    }),
    expect: { issued: 'spiffe://public/ns/default/app', dnsNames: [] },
  },
];

const JWKS_ROWS: readonly SignCorpusRow[] = [
  jwksRow('a valid ES256 token (control)', (f) => joseToken(f.keys.es256, goodClaims()), {
    issued: JWKS_SUBJECT,
    dnsNames: [],
  }),
  jwksRow(
    'a valid RS256 token whose aud is a list (control)',
    (f) =>
      nodeToken(
        { alg: 'RS256', kid: 'rsa-1', typ: 'JWT' },
        goodClaims({ aud: ['other', HOSTILE_AUDIENCE] }),
        f.keys.rsa.sign,
      ),
    { issued: JWKS_SUBJECT, dnsNames: [] },
  ),
  jwksRow(
    'an expired token (beyond the 5 minute skew)',
    (f) => joseToken(f.keys.es256, goodClaims({ exp: Math.floor(Date.now() / 1000) - 3600 })),
    refused(DENIED, 'ERR_IDENTITY_DENIED: jwks validator: the token has expired'),
  ),
  jwksRow(
    'a token not valid for another hour (nbf)',
    (f) => joseToken(f.keys.es256, goodClaims({ nbf: Math.floor(Date.now() / 1000) + 3600 })),
    refused(DENIED, 'the token is not valid yet (nbf)'),
  ),
  jwksRow(
    'a token issued an hour in the future (iat)',
    (f) => joseToken(f.keys.es256, goodClaims({ iat: Math.floor(Date.now() / 1000) + 3600 })),
    refused(DENIED, 'the token was issued in the future (iat)'),
  ),
  jwksRow(
    'a token with no exp',
    (f) => joseToken(f.keys.es256, goodClaims({ exp: undefined })),
    refused(DENIED, 'the token has no exp claim'),
  ),
  jwksRow(
    'a token whose exp is a string',
    (f) => joseToken(f.keys.es256, goodClaims({ exp: '9999999999' as unknown as number })),
    refused(DENIED, 'the token exp claim is not a number'),
  ),
  jwksRow(
    'a token for another audience',
    (f) => joseToken(f.keys.es256, goodClaims({ aud: 'spiffe://localhost/ns/other/dapr-sentry' })),
    refused(DENIED, `the token audience does not include ${HOSTILE_AUDIENCE}`),
  ),
  jwksRow(
    "a token whose audience merely starts with the CA's",
    (f) => joseToken(f.keys.es256, goodClaims({ aud: `${HOSTILE_AUDIENCE}-evil` })),
    refused(DENIED, 'the token audience does not include'),
  ),
  jwksRow(
    'a token for another app asked to vouch for billing',
    (f) => joseToken(f.keys.es256, goodClaims({ sub: 'spiffe://example.org/ns/prod/frontend' })),
    refused(DENIED, `the token subject is not ${JWKS_SUBJECT}`),
  ),
  jwksRow(
    "a valid billing token used to ask for the admin app's identity",
    (f) => joseToken(f.keys.es256, goodClaims()),
    refused(DENIED, 'the token subject is not spiffe://example.org/ns/prod/admin'),
    { id: 'admin' },
  ),
  jwksRow(
    'a token signed by another issuer reusing a kid from the JWKS',
    (f) => joseToken(f.keys.impostor, goodClaims()),
    refused(DENIED, 'the token signature does not verify'),
  ),
  jwksRow(
    'alg none with an empty signature',
    () => unsignedToken(goodClaims(), 'es-1'),
    refused(DENIED, 'the token is not a compact JWS with three non-empty parts'),
  ),
  jwksRow(
    'alg "None" with a junk signature',
    () => `${b64url({ alg: 'None', kid: 'es-1' })}.${b64url(goodClaims())}.${b64url('sig')}`,
    refused(DENIED, 'algorithm None is refused'),
  ),
  jwksRow(
    "HS256 keyed with the RSA key's public PEM (algorithm confusion)",
    (f) =>
      nodeToken({ alg: 'HS256', kid: 'rsa-1' }, goodClaims(), hmacSigner(rsaPublicKeyPem(f.keys))),
    refused(DENIED, 'algorithm HS256 is refused'),
  ),
  jwksRow(
    "HS256 keyed with the JWKS entry's JSON text",
    (f) =>
      nodeToken(
        { alg: 'HS256', kid: 'rsa-1' },
        goodClaims(),
        hmacSigner(JSON.stringify(f.keys.rsa.publicJwk)),
      ),
    refused(DENIED, 'algorithm HS256 is refused'),
  ),
  jwksRow(
    'a kid no JWKS key has',
    (f) => joseToken({ ...f.keys.es256, kid: 'rotated-away' }, goodClaims()),
    refused(DENIED, 'no key in the JWKS has the token kid'),
  ),
  jwksRow(
    'a kid that looks like a path',
    (f) => joseToken({ ...f.keys.es256, kid: '../../../etc/passwd' }, goodClaims()),
    refused(DENIED, 'no key in the JWKS has the token kid'),
  ),
  jwksRow(
    'a token without a kid',
    (f) => nodeToken({ alg: 'RS256' }, goodClaims(), f.keys.rsa.sign),
    refused(DENIED, 'the token header has no kid'),
  ),
  jwksRow(
    'an ES256 header on the RSA key id',
    (f) => joseToken({ ...f.keys.es256, kid: 'rsa-1' }, goodClaims()),
    refused(DENIED, 'algorithm ES256 does not fit the key with the token kid'),
  ),
  jwksRow(
    'a token carrying its own key in the header (jwk), signed by that key',
    (f) => joseToken(f.keys.impostor, goodClaims(), { jwk: f.keys.impostor.publicJwk }),
    refused(DENIED, 'the token signature does not verify'),
  ),
  jwksRow(
    'a crit header extension',
    (f) => nodeToken({ alg: 'RS256', kid: 'rsa-1', crit: ['exp'] }, goodClaims(), f.keys.rsa.sign),
    refused(DENIED, 'crit extensions'),
  ),
  jwksRow('no token at all', () => '', refused(DENIED, 'no token was sent')),
  jwksRow(
    'a token of four parts',
    () => `${unsignedToken(goodClaims(), 'es-1')}x.y`,
    refused(DENIED, 'not a compact JWS'),
  ),
  jwksRow(
    'a 60 KiB token (under the message cap)',
    () => 'e'.repeat(60 * 1024),
    refused(DENIED, 'not a compact JWS'),
  ),
  jwksRow(
    "a valid token for the CA's own identity",
    (f) =>
      joseToken(
        f.keys.es256,
        goodClaims({ sub: `spiffe://localhost/ns/${HOSTILE_NAMESPACE}/dapr-sentry` }),
      ),
    refused(DENIED, "the CA's own identity"),
    { id: 'dapr-sentry', namespace: HOSTILE_NAMESPACE, trust_domain: 'localhost' },
  ),
  {
    name: 'a valid token, but the CSR signature is broken (validation passes, proof of possession fails)',
    needs: 'jwks',
    request: async (f) =>
      jwksRequest(f, await joseToken(f.keys.es256, goodClaims()), {
        certificate_signing_request: csr(toPem(flipFromEnd(pemBody(f.p256.pem), 1))),
      }),
    expect: refused(INVALID, 'ERR_CSR_SIGNATURE: CSR ecdsa-with-SHA256 signature'),
  },
];

export const SIGN_CERTIFICATE_CORPUS: readonly SignCorpusRow[] = Object.freeze([
  ...PEM_AND_DER_ROWS,
  ...SIGNATURE_AND_KEY_ROWS,
  ...IDENTITY_FIELD_ROWS,
  ...SIZE_AND_ENUM_ROWS,
  ...SMUGGLING_ROWS,
  ...JWKS_ROWS,
]);
