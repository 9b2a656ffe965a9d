import 'reflect-metadata';
import {
  createPrivateKey,
  randomBytes,
  webcrypto,
  X509Certificate,
  type KeyObject,
} from 'node:crypto';
import * as x509 from '@peculiar/x509';
import type { TrustBundle } from '../../src/ca/trust-bundle.js';

/**
 * Test-only PKI made with @peculiar/x509 (an implementation independent of Warden's signer):
 * a root, issuers under it, and server certificates for test HTTPS servers.
 */

// lib has no DOM: Node's WebCrypto types stand in for the global ones @peculiar/x509 names.
type CryptoKey = webcrypto.CryptoKey;
type CryptoKeyPair = webcrypto.CryptoKeyPair;
type EcKeyGenParams = webcrypto.EcKeyGenParams;
type EcdsaParams = webcrypto.EcdsaParams;
type Algorithm = webcrypto.Algorithm;

x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);

export const EC_P256: EcKeyGenParams & EcdsaParams = {
  name: 'ECDSA',
  namedCurve: 'P-256',
  hash: 'SHA-256',
};

export type { CryptoKeyPair };

export interface TestCa {
  readonly certificate: x509.X509Certificate;
  readonly keys: CryptoKeyPair;
  readonly pem: string;
}

const DAY_MS = 86_400_000;

async function generateEcKeys(): Promise<CryptoKeyPair> {
  return (await webcrypto.subtle.generateKey(EC_P256, true, ['sign', 'verify'])) as CryptoKeyPair;
}

function serial(): string {
  const bytes = randomBytes(16);
  bytes[0] = (bytes[0] as number) & 0x7f;
  return bytes.toString('hex');
}

async function caExtensions(
  keys: CryptoKeyPair,
  issuerKeys?: CryptoKeyPair,
): Promise<x509.Extension[]> {
  const extensions: x509.Extension[] = [
    new x509.BasicConstraintsExtension(true, undefined, true),
    new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
    await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
  ];
  if (issuerKeys)
    extensions.push(await x509.AuthorityKeyIdentifierExtension.create(issuerKeys.publicKey));
  return extensions;
}

export async function createTestRoot(
  name = 'CN=Warden Test Root',
  now = new Date(),
): Promise<TestCa> {
  const keys = await generateEcKeys();
  const certificate = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serial(),
    name,
    notBefore: new Date(now.getTime() - DAY_MS),
    notAfter: new Date(now.getTime() + 365 * DAY_MS),
    signingAlgorithm: EC_P256,
    keys,
    extensions: await caExtensions(keys),
  });
  return { certificate, keys, pem: certificate.toString('pem') };
}

export async function createTestIssuer(
  root: TestCa,
  name = 'CN=Warden Test Issuer',
  now = new Date(),
): Promise<TestCa> {
  const keys = await generateEcKeys();
  const certificate = await x509.X509CertificateGenerator.create({
    serialNumber: serial(),
    subject: name,
    issuer: root.certificate.subject,
    notBefore: new Date(now.getTime() - DAY_MS),
    notAfter: new Date(now.getTime() + 300 * DAY_MS),
    signingAlgorithm: EC_P256,
    publicKey: keys.publicKey,
    signingKey: root.keys.privateKey,
    extensions: await caExtensions(keys, root.keys),
  });
  return { certificate, keys, pem: certificate.toString('pem') };
}

export async function exportPrivateKey(
  key: CryptoKey,
): Promise<{ pem: string; keyObject: KeyObject }> {
  const der = Buffer.from(await webcrypto.subtle.exportKey('pkcs8', key));
  const keyObject = createPrivateKey({ key: der, format: 'der', type: 'pkcs8' });
  return { pem: keyObject.export({ format: 'pem', type: 'pkcs8' }) as string, keyObject };
}

/** A TrustBundle as src/ca would hand it over. */
export async function trustBundleOf(
  root: TestCa,
  issuer: TestCa,
  generation: number,
): Promise<TrustBundle> {
  const key = await exportPrivateKey(issuer.keys.privateKey);
  return Object.freeze({
    generation,
    anchorsPem: root.pem,
    anchors: Object.freeze([new X509Certificate(root.pem)]),
    issuerChainPem: issuer.pem,
    issuerChain: Object.freeze([new X509Certificate(issuer.pem)]),
    issuerKeyPem: key.pem,
    issuerKey: key.keyObject,
  });
}

/** A key pair and PEM CSR, as a sidecar would make them. */
export async function createCsr(
  algorithm: 'P-256' | 'P-384' | 'Ed25519' = 'P-256',
  options: { name?: string; extensions?: x509.Extension[] } = {},
): Promise<{ csrPem: string; keys: CryptoKeyPair }> {
  const params: (EcKeyGenParams & EcdsaParams) | Algorithm =
    algorithm === 'Ed25519'
      ? { name: 'Ed25519' }
      : {
          name: 'ECDSA',
          namedCurve: algorithm,
          hash: algorithm === 'P-384' ? 'SHA-384' : 'SHA-256',
        };
  const keys = (await webcrypto.subtle.generateKey(params, true, [
    'sign',
    'verify',
  ])) as CryptoKeyPair;
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({
    ...(options.name === undefined ? {} : { name: options.name }),
    ...(options.extensions === undefined ? {} : { extensions: options.extensions }),
    signingAlgorithm: params,
    keys,
  });
  return { csrPem: csr.toString('pem'), keys };
}

/** A TLS server certificate for 127.0.0.1/localhost signed by `ca` (for test HTTPS servers). */
export async function createServerCertificate(
  ca: TestCa,
  now = new Date(),
): Promise<{ certPem: string; keyPem: string }> {
  const keys = await generateEcKeys();
  const certificate = await x509.X509CertificateGenerator.create({
    serialNumber: serial(),
    subject: 'CN=localhost',
    issuer: ca.certificate.subject,
    notBefore: new Date(now.getTime() - DAY_MS),
    notAfter: new Date(now.getTime() + 30 * DAY_MS),
    signingAlgorithm: EC_P256,
    publicKey: keys.publicKey,
    signingKey: ca.keys.privateKey,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
      new x509.SubjectAlternativeNameExtension([
        { type: 'dns', value: 'localhost' },
        { type: 'ip', value: '127.0.0.1' },
      ]),
    ],
  });
  const key = await exportPrivateKey(keys.privateKey);
  return { certPem: certificate.toString('pem'), keyPem: key.pem };
}
