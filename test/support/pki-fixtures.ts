import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { createPrivateKey, randomBytes, webcrypto, X509Certificate } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { CaCredential } from '../../src/ca/generate.js';
import { toPem } from '../../src/ca/pem.js';
import type { TrustMaterialPem } from '../../src/ca/trust-material.js';
import { opensslOk } from './openssl.js';

const crypto = webcrypto;
type Algorithm = webcrypto.Algorithm;

export type FixtureKey = 'ecdsa-p256' | 'ecdsa-p521' | 'ed25519' | 'rsa-1024' | 'rsa-2048';

function keyGen(kind: FixtureKey): { gen: Algorithm; sign: Algorithm; importAs: Algorithm } {
  switch (kind) {
    case 'ecdsa-p256':
      return {
        gen: { name: 'ECDSA', namedCurve: 'P-256' } as Algorithm,
        sign: { name: 'ECDSA', hash: 'SHA-256' } as Algorithm,
        importAs: { name: 'ECDSA', namedCurve: 'P-256' } as Algorithm,
      };
    case 'ecdsa-p521':
      return {
        gen: { name: 'ECDSA', namedCurve: 'P-521' } as Algorithm,
        sign: { name: 'ECDSA', hash: 'SHA-512' } as Algorithm,
        importAs: { name: 'ECDSA', namedCurve: 'P-521' } as Algorithm,
      };
    case 'ed25519':
      return { gen: { name: 'Ed25519' }, sign: { name: 'Ed25519' }, importAs: { name: 'Ed25519' } };
    case 'rsa-1024':
    case 'rsa-2048': {
      const rsa = {
        name: 'RSASSA-PKCS1-v1_5',
        hash: 'SHA-256',
        modulusLength: kind === 'rsa-1024' ? 1024 : 2048,
        publicExponent: new Uint8Array([1, 0, 1]),
      };
      return {
        gen: rsa as Algorithm,
        sign: rsa as Algorithm,
        importAs: { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' } as Algorithm,
      };
    }
  }
}

/** The import parameters for the key in a PKCS#8 PEM, from Node's view of it. */
function importParamsFor(pem: string): { importAs: Algorithm; sign: Algorithm } {
  const key = createPrivateKey(pem);
  if (key.asymmetricKeyType === 'ed25519') return keyGen('ed25519');
  if (key.asymmetricKeyType === 'rsa') return keyGen('rsa-2048');
  const curve = key.asymmetricKeyDetails?.namedCurve;
  if (curve === 'secp384r1') {
    return {
      importAs: { name: 'ECDSA', namedCurve: 'P-384' } as Algorithm,
      sign: { name: 'ECDSA', hash: 'SHA-384' } as Algorithm,
    };
  }
  return keyGen('ecdsa-p256');
}

export interface MintOptions {
  readonly subject: string;
  /** Signer; self-signed when absent. */
  readonly signer?: CaCredential;
  readonly key?: FixtureKey;
  readonly ca: boolean;
  /** KeyUsageFlags; null leaves the extension out. Default keyCertSign|cRLSign for CAs, digitalSignature otherwise. */
  readonly keyUsage?: number | null;
  readonly notBefore: Date;
  readonly notAfter: Date;
  readonly uris?: readonly string[];
  readonly dnsNames?: readonly string[];
  readonly extKeyUsage?: readonly string[];
  readonly pathLength?: number;
}

/** Mints any certificate a test needs, including ones Warden must reject. */
export async function mintCertificate(options: MintOptions): Promise<CaCredential> {
  const params = keyGen(options.key ?? 'ecdsa-p256');
  const keys = (await crypto.subtle.generateKey(params.gen, true, [
    'sign',
    'verify',
  ])) as webcrypto.CryptoKeyPair;
  const spki = await crypto.subtle.exportKey('spki', keys.publicKey);
  const extensions: x509.Extension[] = [
    new x509.BasicConstraintsExtension(options.ca, options.pathLength, true),
    await x509.SubjectKeyIdentifierExtension.create(spki, false, crypto),
  ];
  const usage =
    options.keyUsage === undefined
      ? options.ca
        ? x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign
        : x509.KeyUsageFlags.digitalSignature
      : options.keyUsage;
  if (usage !== null) extensions.push(new x509.KeyUsagesExtension(usage, true));
  const names: x509.JsonGeneralName[] = [
    ...(options.uris ?? []).map((value) => ({ type: 'url' as const, value })),
    ...(options.dnsNames ?? []).map((value) => ({ type: 'dns' as const, value })),
  ];
  const emptySubject = options.subject === '';
  if (names.length > 0)
    extensions.push(new x509.SubjectAlternativeNameExtension(names, emptySubject));
  if (options.extKeyUsage)
    extensions.push(new x509.ExtendedKeyUsageExtension([...options.extKeyUsage], false));

  let cert: x509.X509Certificate;
  const serialNumber = `01${randomBytes(15).toString('hex')}`;
  if (!options.signer) {
    cert = await x509.X509CertificateGenerator.createSelfSigned(
      {
        serialNumber,
        name: options.subject,
        notBefore: options.notBefore,
        notAfter: options.notAfter,
        keys,
        signingAlgorithm: params.sign,
        extensions,
      },
      crypto,
    );
  } else {
    const signerCert = new x509.X509Certificate(options.signer.certificatePem);
    const signerParams = importParamsFor(options.signer.privateKeyPem);
    const signingKey = await crypto.subtle.importKey(
      'pkcs8',
      createPrivateKey(options.signer.privateKeyPem).export({ type: 'pkcs8', format: 'der' }),
      signerParams.importAs,
      false,
      ['sign'],
    );
    const signerSki = signerCert.getExtension(x509.SubjectKeyIdentifierExtension);
    if (signerSki)
      extensions.push(new x509.AuthorityKeyIdentifierExtension(signerSki.keyId, false));
    cert = await x509.X509CertificateGenerator.create(
      {
        serialNumber,
        subject: options.subject,
        issuer: signerCert.subjectName,
        notBefore: options.notBefore,
        notAfter: options.notAfter,
        publicKey: spki,
        signingKey,
        signingAlgorithm: signerParams.sign,
        extensions,
      },
      crypto,
    );
  }
  return {
    certificatePem: toPem('CERTIFICATE', new Uint8Array(cert.rawData)),
    privateKeyPem: toPem(
      'PRIVATE KEY',
      new Uint8Array(await crypto.subtle.exportKey('pkcs8', keys.privateKey)),
    ),
  };
}

/** A workload leaf in Warden's SVID profile (empty subject, critical URI SAN, server+client auth). */
export function mintLeaf(
  signer: CaCredential,
  spiffeId: string,
  at: Date,
  options: { key?: FixtureKey; dnsNames?: readonly string[] } = {},
): Promise<CaCredential> {
  return mintCertificate({
    subject: '',
    signer,
    key: options.key ?? 'ecdsa-p256',
    ca: false,
    notBefore: new Date(at.getTime() - 60_000),
    notAfter: new Date(at.getTime() + 3_600_000),
    uris: [spiffeId],
    dnsNames: options.dnsNames,
    extKeyUsage: [x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth],
  });
}

export function nodeCert(pem: string): X509Certificate {
  return new X509Certificate(pem);
}

export type OpensslKeyVariant =
  'p256-pkcs8' | 'p256-sec1-with-params' | 'p384-sec1' | 'rsa2048-pkcs1' | 'ed25519-pkcs8';

const OPENSSL_CONFIG = `
[ req ]
distinguished_name = dn
prompt = no
[ dn ]
CN = unused
[ v3_root ]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[ v3_intermediate ]
basicConstraints = critical, CA:TRUE, pathlen:1
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
[ v3_issuer ]
basicConstraints = critical, CA:TRUE, pathlen:0
keyUsage = critical, keyCertSign, cRLSign, digitalSignature
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
`;

async function opensslKey(dir: string, name: string, variant: OpensslKeyVariant): Promise<string> {
  const file = path.join(dir, name);
  switch (variant) {
    case 'p256-pkcs8':
      await opensslOk([
        'genpkey',
        '-algorithm',
        'EC',
        '-pkeyopt',
        'ec_paramgen_curve:P-256',
        '-out',
        file,
      ]);
      break;
    case 'p256-sec1-with-params':
      // What `openssl ecparam -genkey` writes: an EC PARAMETERS block, then EC PRIVATE KEY.
      await opensslOk(['ecparam', '-name', 'prime256v1', '-genkey', '-out', file]);
      break;
    case 'p384-sec1':
      await opensslOk(['ecparam', '-name', 'secp384r1', '-genkey', '-noout', '-out', file]);
      break;
    case 'rsa2048-pkcs1':
      await opensslOk(['genrsa', '-traditional', '-out', file, '2048']);
      break;
    case 'ed25519-pkcs8':
      await opensslOk(['genpkey', '-algorithm', 'ED25519', '-out', file]);
      break;
  }
  return file;
}

export interface OpensslMaterial extends TrustMaterialPem {
  readonly rootKeyPem: string;
}

/**
 * BYO material made only with the openssl CLI (req -x509, x509 -req), the way an operator
 * following a runbook would: root → [intermediate] → issuer.
 */
export async function makeOpensslMaterial(
  dir: string,
  options: {
    rootKey: OpensslKeyVariant;
    issuerKey: OpensslKeyVariant;
    intermediate?: boolean;
    days?: number;
  },
): Promise<OpensslMaterial> {
  const cnf = path.join(dir, 'openssl.cnf');
  await writeFile(cnf, OPENSSL_CONFIG);
  const days = String(options.days ?? 30);
  const rootKey = await opensslKey(dir, 'root.key', options.rootKey);
  const rootCrt = path.join(dir, 'root.crt');
  await opensslOk([
    'req',
    '-config',
    cnf,
    '-x509',
    '-new',
    '-key',
    rootKey,
    '-subj',
    '/O=byo.example/CN=BYO Root',
    '-days',
    days,
    '-extensions',
    'v3_root',
    '-out',
    rootCrt,
  ]);

  let signerCrt = rootCrt;
  let signerKey = rootKey;
  let intermediatePem = '';
  if (options.intermediate) {
    const key = await opensslKey(dir, 'intermediate.key', 'p256-pkcs8');
    const csr = path.join(dir, 'intermediate.csr');
    const crt = path.join(dir, 'intermediate.crt');
    await opensslOk([
      'req',
      '-config',
      cnf,
      '-new',
      '-key',
      key,
      '-subj',
      '/O=byo.example/CN=BYO Intermediate',
      '-out',
      csr,
    ]);
    await opensslOk([
      'x509',
      '-req',
      '-in',
      csr,
      '-CA',
      rootCrt,
      '-CAkey',
      rootKey,
      '-CAcreateserial',
      '-days',
      days,
      '-extfile',
      cnf,
      '-extensions',
      'v3_intermediate',
      '-out',
      crt,
    ]);
    signerCrt = crt;
    signerKey = key;
    intermediatePem = await readFile(crt, 'utf8');
  }
  const issuerKey = await opensslKey(dir, 'issuer.key', options.issuerKey);
  const csr = path.join(dir, 'issuer.csr');
  const issuerCrt = path.join(dir, 'issuer.crt');
  await opensslOk([
    'req',
    '-config',
    cnf,
    '-new',
    '-key',
    issuerKey,
    '-subj',
    '/O=byo.example/CN=BYO Issuer',
    '-out',
    csr,
  ]);
  await opensslOk([
    'x509',
    '-req',
    '-in',
    csr,
    '-CA',
    signerCrt,
    '-CAkey',
    signerKey,
    '-CAcreateserial',
    '-days',
    days,
    '-extfile',
    cnf,
    '-extensions',
    'v3_issuer',
    '-out',
    issuerCrt,
  ]);
  return {
    anchorsPem: await readFile(rootCrt, 'utf8'),
    issuerChainPem: (await readFile(issuerCrt, 'utf8')) + intermediatePem,
    issuerKeyPem: await readFile(issuerKey, 'utf8'),
    rootKeyPem: await readFile(rootKey, 'utf8'),
  };
}
