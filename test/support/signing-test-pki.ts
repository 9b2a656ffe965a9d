import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { execFileSync } from 'node:child_process';
import { KeyObject, webcrypto, type X509Certificate as NodeX509Certificate } from 'node:crypto';

type CryptoKeyPair = webcrypto.CryptoKeyPair;
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TrustBundle } from '../../src/ca/trust-bundle.js';
import { trustBundleFromMaterial } from '../../src/issuer/signing/signing-material.js';

// @peculiar/x509 signs through WebCrypto; Node's implementation is the provider.
// Node's webcrypto type differs from the DOM Crypto type @peculiar/x509 declares; same object at runtime.
x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);

export type TestKeyType = 'P-256' | 'P-384' | 'Ed25519' | 'RSA-2048';

interface KeyAlgorithms {
  readonly generate:
    webcrypto.RsaHashedKeyGenParams | webcrypto.EcKeyGenParams | webcrypto.Algorithm;
  readonly signing: webcrypto.RsaHashedImportParams | webcrypto.EcdsaParams | webcrypto.Algorithm;
}

export function testKeyAlgorithms(type: TestKeyType): KeyAlgorithms {
  switch (type) {
    case 'P-256':
      return {
        generate: { name: 'ECDSA', namedCurve: 'P-256' } as webcrypto.EcKeyGenParams,
        signing: { name: 'ECDSA', hash: 'SHA-256' } as webcrypto.EcdsaParams,
      };
    case 'P-384':
      return {
        generate: { name: 'ECDSA', namedCurve: 'P-384' } as webcrypto.EcKeyGenParams,
        signing: { name: 'ECDSA', hash: 'SHA-384' } as webcrypto.EcdsaParams,
      };
    case 'Ed25519':
      return { generate: { name: 'Ed25519' }, signing: { name: 'Ed25519' } };
    case 'RSA-2048': {
      const rsa = {
        name: 'RSASSA-PKCS1-v1_5',
        modulusLength: 2048,
        publicExponent: new Uint8Array([1, 0, 1]),
        hash: 'SHA-256',
      } as webcrypto.RsaHashedKeyGenParams;
      return { generate: rsa, signing: rsa };
    }
  }
}

export async function generateTestKeys(type: TestKeyType): Promise<CryptoKeyPair> {
  return (await webcrypto.subtle.generateKey(
    testKeyAlgorithms(type).generate as webcrypto.EcKeyGenParams,
    true,
    ['sign', 'verify'],
  )) as CryptoKeyPair;
}

export interface TestPkiOptions {
  readonly issuerKeyType?: TestKeyType;
  readonly rootKeyType?: TestKeyType;
  readonly generation?: number;
  readonly notBefore?: Date;
  readonly issuerNotAfter?: Date;
  readonly rootNotAfter?: Date;
  /** Leave the SubjectKeyIdentifier out of the issuer certificate (the signer must compute it). */
  readonly issuerWithoutSki?: boolean;
  readonly trustDomain?: string;
  /** Distinguishes issuers in one test (e.g. "gen2"). */
  readonly label?: string;
}

export interface TestPki {
  readonly bundle: TrustBundle;
  readonly rootPem: string;
  readonly issuerPem: string;
  /** Lower-case hex of the issuer's SubjectKeyIdentifier (or the SHA-1 of its key bits). */
  readonly issuerKeyIdHex: string;
  readonly issuerKeyType: TestKeyType;
}

const YEAR_MS = 365 * 24 * 3600 * 1000;

/** A root and an issuer under it, as the CA would hand them to the signer. */
export async function createTestPki(options: TestPkiOptions = {}): Promise<TestPki> {
  const issuerKeyType = options.issuerKeyType ?? 'P-256';
  const rootKeyType =
    options.rootKeyType ?? (issuerKeyType === 'RSA-2048' ? 'P-256' : issuerKeyType);
  const label = options.label ?? 'test';
  const trustDomain = options.trustDomain ?? 'example.org';
  const notBefore = options.notBefore ?? new Date(Date.UTC(2025, 0, 1));
  const rootNotAfter = options.rootNotAfter ?? new Date(notBefore.getTime() + 10 * YEAR_MS);
  const issuerNotAfter = options.issuerNotAfter ?? new Date(notBefore.getTime() + 5 * YEAR_MS);

  const rootKeys = await generateTestKeys(rootKeyType);
  const root = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: '01',
    name: `CN=Warden ${label} root,O=Warden tests`,
    notBefore,
    notAfter: rootNotAfter,
    signingAlgorithm: testKeyAlgorithms(rootKeyType).signing,
    keys: rootKeys,
    extensions: [
      new x509.BasicConstraintsExtension(true, undefined, true),
      new x509.KeyUsagesExtension(
        x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign,
        true,
      ),
      await x509.SubjectKeyIdentifierExtension.create(rootKeys.publicKey),
      new x509.SubjectAlternativeNameExtension([{ type: 'url', value: `spiffe://${trustDomain}` }]),
    ],
  });

  const issuerKeys = await generateTestKeys(issuerKeyType);
  const issuerSki = await x509.SubjectKeyIdentifierExtension.create(issuerKeys.publicKey);
  const issuer = await x509.X509CertificateGenerator.create({
    serialNumber: '02',
    subject: `CN=Warden ${label} issuer,O=Warden tests`,
    issuer: root.subject,
    notBefore,
    notAfter: issuerNotAfter,
    signingAlgorithm: testKeyAlgorithms(rootKeyType).signing,
    publicKey: issuerKeys.publicKey,
    signingKey: rootKeys.privateKey,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(
        x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign,
        true,
      ),
      ...(options.issuerWithoutSki ? [] : [issuerSki]),
      await x509.AuthorityKeyIdentifierExtension.create(rootKeys.publicKey),
      new x509.SubjectAlternativeNameExtension([{ type: 'url', value: `spiffe://${trustDomain}` }]),
    ],
  });

  const issuerKeyPem = KeyObject.from(issuerKeys.privateKey).export({
    format: 'pem',
    type: 'pkcs8',
  }) as string;
  const rootPem = root.toString('pem') + '\n';
  const issuerPem = issuer.toString('pem') + '\n';
  const bundle = trustBundleFromMaterial({
    generation: options.generation ?? 1,
    anchorsPem: rootPem,
    issuerChainPem: issuerPem,
    issuerKeyPem,
  });
  return {
    bundle,
    rootPem,
    issuerPem,
    issuerKeyIdHex: issuerSki.keyId.toLowerCase(),
    issuerKeyType,
  };
}

export interface TestCsr {
  readonly pem: string;
  readonly bytes: Uint8Array;
  /** The CSR key's SubjectPublicKeyInfo DER, to compare with the issued leaf's. */
  readonly spkiDer: Buffer;
  readonly keyType: TestKeyType;
}

export interface TestCsrOptions {
  readonly name?: string;
  readonly extensions?: readonly x509.Extension[];
}

/** A CSR made with @peculiar/x509 (an encoder Warden did not write). */
export async function makePeculiarCsr(
  type: TestKeyType,
  options: TestCsrOptions = {},
): Promise<TestCsr> {
  const keys = await generateTestKeys(type);
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({
    name: options.name ?? 'CN=workload',
    keys,
    signingAlgorithm: testKeyAlgorithms(type).signing,
    extensions: options.extensions ? [...options.extensions] : undefined,
  });
  const pem = csr.toString('pem') + '\n';
  const spkiDer = Buffer.from(await webcrypto.subtle.exportKey('spki', keys.publicKey));
  return { pem, bytes: Buffer.from(pem), spkiDer, keyType: type };
}

/** Runs the openssl CLI; returns stdout. Throws with stderr on failure. */
export function openssl(args: readonly string[], input?: string | Uint8Array): string {
  return execFileSync('openssl', args, {
    input,
    encoding: 'utf8',
    stdio: ['pipe', 'pipe', 'pipe'],
  });
}

/** A scratch directory removed by the returned function. */
export function scratchDirectory(prefix = 'warden-signing-'): { dir: string; remove: () => void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

const OPENSSL_NEWKEY: Readonly<Record<TestKeyType, readonly string[]>> = {
  'P-256': ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256'],
  'P-384': ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-384'],
  Ed25519: ['-newkey', 'ed25519'],
  'RSA-2048': ['-newkey', 'rsa:2048'],
};

/** A CSR made by `openssl req`, optionally asking for extensions with -addext. */
export function makeOpensslCsr(
  type: TestKeyType,
  options: { subject?: string; addext?: readonly string[] } = {},
): TestCsr {
  const { dir, remove } = scratchDirectory();
  try {
    const keyPath = join(dir, 'key.pem');
    const csrPath = join(dir, 'csr.pem');
    const addext = (options.addext ?? []).flatMap((e) => ['-addext', e]);
    openssl([
      'req',
      '-new',
      ...OPENSSL_NEWKEY[type],
      '-nodes',
      '-keyout',
      keyPath,
      '-subj',
      options.subject ?? '/CN=workload',
      ...addext,
      '-out',
      csrPath,
    ]);
    const pem = readFileSync(csrPath, 'utf8');
    const spkiPem = openssl(['pkey', '-in', keyPath, '-pubout']);
    const spkiDer = Buffer.from(spkiPem.replace(/-----[^-]+-----|\s/g, ''), 'base64');
    return { pem, bytes: Buffer.from(pem), spkiDer, keyType: type };
  } finally {
    remove();
  }
}

/** Writes text files into a directory (for openssl verify). */
export function writeFiles(dir: string, files: Readonly<Record<string, string>>): void {
  for (const [name, content] of Object.entries(files)) writeFileSync(join(dir, name), content);
}

/** The first certificate of a PEM chain, parsed by @peculiar/x509. */
export function peculiarCertificate(pem: string): x509.X509Certificate {
  const first = pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/);
  if (!first) throw new Error('no certificate in PEM');
  return new x509.X509Certificate(first[0]);
}

export type { NodeX509Certificate };

/**
 * A CSR from `openssl genpkey <genpkeyArgs>` then `openssl req -new -key ... <reqArgs>`, for
 * key types Warden refuses (RSA-1024, secp256k1, P-521, Ed448, DSA, explicit curves...).
 */
export function makeOpensslCsrWithKey(
  genpkeyArgs: readonly string[],
  reqArgs: readonly string[] = [],
): string {
  const { dir, remove } = scratchDirectory();
  try {
    const keyPath = join(dir, 'key.pem');
    openssl(['genpkey', ...genpkeyArgs, '-out', keyPath]);
    return openssl(['req', '-new', '-key', keyPath, '-subj', '/CN=workload', ...reqArgs]);
  } finally {
    remove();
  }
}

/** A DSA key's CSR (parameters generated first, as DSA needs). */
export function makeOpensslDsaCsr(): string {
  const { dir, remove } = scratchDirectory();
  try {
    const paramPath = join(dir, 'dsa-params.pem');
    openssl([
      'genpkey',
      '-genparam',
      '-algorithm',
      'DSA',
      '-pkeyopt',
      'dsa_paramgen_bits:1024',
      '-out',
      paramPath,
    ]);
    return makeOpensslCsrWithKey(['-paramfile', paramPath]);
  } finally {
    remove();
  }
}

/** PEM of DER bytes with a label, 64-character lines. */
export function toPem(der: Uint8Array, label = 'CERTIFICATE REQUEST'): string {
  const b64 = Buffer.from(der).toString('base64');
  return `-----BEGIN ${label}-----\n${(b64.match(/.{1,64}/g) ?? []).join('\n')}\n-----END ${label}-----\n`;
}

/** The DER inside a single-block PEM (test convenience; the signer has its own strict decoder). */
export function pemBody(pem: string): Buffer {
  return Buffer.from(pem.replace(/-----[^-]+-----|\s/g, ''), 'base64');
}
