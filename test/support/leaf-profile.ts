import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { expect } from '@jest/globals';
import { join } from 'node:path';
import type { IssuedCertificate } from '../../src/issuer/certificate-signer.js';
import {
  openssl,
  scratchDirectory,
  writeFiles,
  type TestKeyType,
  type TestPki,
} from './signing-test-pki.js';

/**
 * Checks an issued chain against the workload profile (rules 4-9, 14-16 of
 * shared/reference/spiffe-and-pki-rules.md) with parsers Warden did not write: @peculiar/x509
 * for every field, `openssl x509 -text` for the same fields as OpenSSL reads them, and
 * `openssl verify -x509_strict` for both TLS purposes against the anchors.
 */
export interface ExpectedLeaf {
  readonly issued: IssuedCertificate;
  readonly pki: TestPki;
  /** SubjectPublicKeyInfo DER of the CSR's key. */
  readonly spkiDer: Buffer;
  readonly keyType: TestKeyType;
  readonly spiffeId: string;
  readonly dnsNames: readonly string[];
  readonly notBefore: Date;
  readonly notAfter: Date;
  /** When to run openssl verify (seconds resolution); defaults to one second after notBefore+skew. */
  readonly verifyAt: Date;
  /**
   * Verify with -x509_strict (default). Only a test issuer that itself breaks the rules
   * (no SKI) turns it off: OpenSSL's strict mode then refuses the issuer, not the leaf.
   */
  readonly strict?: boolean;
}

const OID = {
  basicConstraints: '2.5.29.19',
  keyUsage: '2.5.29.15',
  extKeyUsage: '2.5.29.37',
  subjectKeyIdentifier: '2.5.29.14',
  authorityKeyIdentifier: '2.5.29.35',
  subjectAltName: '2.5.29.17',
  serverAuth: '1.3.6.1.5.5.7.3.1',
  clientAuth: '1.3.6.1.5.5.7.3.2',
};

function firstCertificatePem(chain: string): string {
  const m = chain.match(/-----BEGIN CERTIFICATE-----\n[\s\S]+?\n-----END CERTIFICATE-----\n/);
  if (!m) throw new Error('no certificate in chain');
  return m[0];
}

function colonHex(hex: string): string {
  return (hex.toUpperCase().match(/../g) ?? []).join(':');
}

export async function expectLeafProfile(expected: ExpectedLeaf): Promise<x509.X509Certificate> {
  const { issued, pki } = expected;
  const leafPem = firstCertificatePem(issued.certificateChainPem);
  // The chain is exactly the leaf followed by the bundle's issuer chain bytes.
  expect(issued.certificateChainPem).toBe(leafPem + pki.bundle.issuerChainPem);
  expect(issued.trustAnchorsPem.join('')).toBe(pki.rootPem);

  const leaf = new x509.X509Certificate(leafPem);
  const issuer = new x509.X509Certificate(pki.issuerPem);

  // Rule 14: serial positive, ≤ 20 octets, ≥ 64 random bits (16 octets with 126 random bits).
  expect(leaf.serialNumber.toLowerCase()).toBe(issued.serialHex);
  expect(issued.serialHex).toMatch(/^[4-7][0-9a-f]{31}$/);

  // Empty subject (rule 5), issuer name byte-equal to the issuer certificate's subject.
  expect(leaf.subject).toBe('');
  expect(leaf.subjectName.toArrayBuffer().byteLength).toBe(2);
  expect(
    Buffer.from(leaf.issuerName.toArrayBuffer()).equals(
      Buffer.from(issuer.subjectName.toArrayBuffer()),
    ),
  ).toBe(true);

  // Dates.
  expect(leaf.notBefore.getTime()).toBe(expected.notBefore.getTime());
  expect(leaf.notAfter.getTime()).toBe(expected.notAfter.getTime());
  expect(issued.notBefore.getTime()).toBe(expected.notBefore.getTime());
  expect(issued.notAfter.getTime()).toBe(expected.notAfter.getTime());
  // Rule 9: never outlives the issuer.
  expect(leaf.notAfter.getTime()).toBeLessThanOrEqual(issuer.notAfter.getTime());

  // The key is the CSR's key, re-emitted byte for byte in canonical form.
  expect(Buffer.from(leaf.publicKey.rawData).equals(expected.spkiDer)).toBe(true);

  // Signature algorithm follows the issuer key type, and the signature verifies under the issuer.
  const expectedAlgorithm = {
    'P-256': { name: 'ECDSA', hash: { name: 'SHA-256' } },
    'P-384': { name: 'ECDSA', hash: { name: 'SHA-384' } },
    Ed25519: { name: 'Ed25519' },
    'RSA-2048': { name: 'RSASSA-PKCS1-v1_5', hash: { name: 'SHA-256' } },
  }[pki.issuerKeyType];
  expect(leaf.signatureAlgorithm).toMatchObject(expectedAlgorithm);
  expect(await leaf.verify({ publicKey: issuer.publicKey, signatureOnly: true })).toBe(true);

  // Exactly these extensions, each once.
  expect(leaf.extensions.map((e) => e.type).sort()).toEqual(Object.values(OID).slice(0, 6).sort());

  const basic = leaf.getExtension(x509.BasicConstraintsExtension);
  expect(basic?.critical).toBe(true); // rule 6
  expect(basic?.ca).toBe(false);
  expect(basic?.pathLength).toBeUndefined();

  const keyUsage = leaf.getExtension(x509.KeyUsagesExtension);
  expect(keyUsage?.critical).toBe(true); // rule 7
  const usages =
    expected.keyType === 'RSA-2048'
      ? x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment
      : x509.KeyUsageFlags.digitalSignature;
  expect(keyUsage?.usages).toBe(usages);

  const eku = leaf.getExtension(x509.ExtendedKeyUsageExtension);
  expect([...(eku?.usages ?? [])].sort()).toEqual([OID.serverAuth, OID.clientAuth].sort()); // rule 8

  // Rule 15: SKI = SHA-1 of the key bits (computed here by @peculiar/x509), AKI = issuer SKI.
  const ski = leaf.getExtension(x509.SubjectKeyIdentifierExtension);
  expect(ski?.keyId).toBe(Buffer.from(await leaf.publicKey.getKeyIdentifier()).toString('hex'));
  const aki = leaf.getExtension(x509.AuthorityKeyIdentifierExtension);
  expect(aki?.keyId).toBe(expected.pki.issuerKeyIdHex);
  expect(aki?.certId).toBeUndefined();

  // Rules 4 and 5: critical SAN, exactly one URI (the SPIFFE ID), then the DNS names.
  const san = leaf.getExtension(x509.SubjectAlternativeNameExtension);
  expect(san?.critical).toBe(true);
  expect(san?.names.toJSON()).toEqual([
    { type: 'url', value: expected.spiffeId },
    ...expected.dnsNames.map((value) => ({ type: 'dns', value })),
  ]);

  expectOpensslView(leafPem, expected, ski?.keyId ?? '');
  expectOpensslVerifies(
    issued.certificateChainPem,
    pki.rootPem,
    expected.verifyAt,
    expected.strict ?? true,
  );
  return leaf;
}

/** The same facts as OpenSSL's own parser prints them. */
function expectOpensslView(leafPem: string, expected: ExpectedLeaf, skiHex: string): void {
  const text = openssl(['x509', '-noout', '-text', '-nameopt', 'RFC2253'], leafPem);
  expect(text).toContain('Version: 3 (0x2)');
  expect(text).toMatch(/\n\s+Subject: *\n/);
  expect(text).toMatch(/X509v3 Basic Constraints: critical\n\s+CA:FALSE\n/);
  const keyUsage =
    expected.keyType === 'RSA-2048' ? 'Digital Signature, Key Encipherment' : 'Digital Signature';
  expect(text).toMatch(new RegExp(`X509v3 Key Usage: critical\\n\\s+${keyUsage}\\n`));
  expect(text).toMatch(
    /X509v3 Extended Key Usage: *\n\s+TLS Web Server Authentication, TLS Web Client Authentication\n/,
  );
  expect(text).toMatch(
    new RegExp(
      `X509v3 Authority Key Identifier: *\\n\\s+(keyid:)?${colonHex(expected.pki.issuerKeyIdHex)}\\n`,
    ),
  );
  expect(text).toMatch(new RegExp(`X509v3 Subject Key Identifier: *\\n\\s+${colonHex(skiHex)}\\n`));
  const sanLine = [`URI:${expected.spiffeId}`, ...expected.dnsNames.map((d) => `DNS:${d}`)].join(
    ', ',
  );
  expect(text).toContain(`X509v3 Subject Alternative Name: critical\n                ${sanLine}\n`);
  const issuerSubject = openssl(
    ['x509', '-noout', '-subject', '-nameopt', 'RFC2253'],
    expected.pki.issuerPem,
  )
    .replace(/^subject=/, '')
    .trim();
  expect(text).toContain(`Issuer: ${issuerSubject}\n`);
}

/** openssl verify -x509_strict for both TLS purposes at `at`. */
export function expectOpensslVerifies(
  chainPem: string,
  anchorsPem: string,
  at: Date,
  strict = true,
): void {
  const { dir, remove } = scratchDirectory();
  try {
    const leafPem = firstCertificatePem(chainPem);
    writeFiles(dir, { 'leaf.pem': leafPem, 'chain.pem': chainPem, 'ca.pem': anchorsPem });
    for (const purpose of ['sslclient', 'sslserver']) {
      const out = openssl([
        'verify',
        ...(strict ? ['-x509_strict'] : []),
        '-purpose',
        purpose,
        '-attime',
        String(Math.floor(at.getTime() / 1000)),
        '-CAfile',
        join(dir, 'ca.pem'),
        '-untrusted',
        join(dir, 'chain.pem'),
        join(dir, 'leaf.pem'),
      ]);
      expect(out.trim()).toBe(`${join(dir, 'leaf.pem')}: OK`);
    }
  } finally {
    remove();
  }
}
