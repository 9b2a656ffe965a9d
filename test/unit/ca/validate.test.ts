import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import {
  generateIssuer,
  generateTrustMaterial,
  type CaCredential,
  type GeneratedTrustMaterial,
} from '../../../src/ca/generate.js';
import type { TrustMaterialPem } from '../../../src/ca/trust-material.js';
import { findTrustMaterialProblems, validateTrustMaterial } from '../../../src/ca/validate.js';
import { ManualClock, type Clock } from '../../../src/shared/clock.js';
import { WardenError } from '../../../src/shared/errors.js';
import { opensslOk } from '../../support/openssl.js';
import {
  makeOpensslMaterial,
  mintCertificate,
  type OpensslKeyVariant,
} from '../../support/pki-fixtures.js';
import { makeTempDir, removeTempDir } from '../../support/temp-dir.js';

const DAY = 86_400_000;
const START = Date.UTC(2026, 0, 1, 12, 0, 0);
const TD = 'example.org';
const at = (ms: number): Clock => new ManualClock(ms);

let dir: string;
let good: GeneratedTrustMaterial;
let other: GeneratedTrustMaterial;

beforeAll(async () => {
  dir = await makeTempDir();
  const clock = new ManualClock(START);
  good = await generateTrustMaterial({ trustDomain: TD, clock });
  other = await generateTrustMaterial({ trustDomain: 'other.org', clock });
});
afterAll(async () => {
  await removeTempDir(dir);
});

function ca(
  subject: string,
  signer?: CaCredential,
  extra: Partial<Parameters<typeof mintCertificate>[0]> = {},
): Promise<CaCredential> {
  return mintCertificate({
    subject,
    signer,
    ca: true,
    notBefore: new Date(START - DAY),
    notAfter: new Date(START + 100 * DAY),
    ...extra,
  });
}

function withParts(parts: Partial<TrustMaterialPem>): TrustMaterialPem {
  return { ...good.material, ...parts };
}

/** The base64 body of a PEM, for "the message never contains key bytes" checks. */
function bodyChunks(pem: string): string[] {
  const body = pem.replace(/-----[A-Z ]+-----/g, '').replace(/\s+/g, '');
  const chunks: string[] = [];
  for (let i = 0; i + 16 <= body.length; i += 16) chunks.push(body.slice(i, i + 16));
  return chunks;
}

interface BadCase {
  readonly name: string;
  readonly build: () => Promise<{ material: TrustMaterialPem; clock: Clock }>;
  readonly fragments: readonly string[];
}

const BAD_CASES: readonly BadCase[] = [
  {
    name: 'an expired root',
    build: async () => ({ material: good.material, clock: at(START + 400 * DAY) }),
    fragments: ['ca.crt (O=example.org, CN=warden-root) expired at 2027-01-01T12:00:00.000Z'],
  },
  {
    name: 'a not-yet-valid issuer',
    build: async () => {
      const later = await generateIssuer(good.root, {
        trustDomain: TD,
        clock: at(START + 10 * DAY),
      });
      return {
        material: withParts({
          issuerChainPem: later.certificatePem,
          issuerKeyPem: later.privateKeyPem,
        }),
        clock: at(START + DAY),
      };
    },
    fragments: [
      'issuer.crt (O=example.org, CN=warden-issuer) is not valid until 2026-01-11T11:45:00.000Z',
    ],
  },
  {
    name: 'an issuer not signed by any anchor',
    build: async () => ({
      material: withParts({ anchorsPem: other.material.anchorsPem }),
      clock: at(START),
    }),
    fragments: [
      'issuer.crt (O=example.org, CN=warden-issuer) is not signed by any certificate in ca.crt',
    ],
  },
  {
    name: 'a key that does not match the issuer certificate',
    build: async () => ({
      material: withParts({ issuerKeyPem: other.material.issuerKeyPem }),
      clock: at(START),
    }),
    fragments: ['issuer.key does not match the public key of issuer.crt'],
  },
  {
    name: 'a non-CA certificate in ca.crt',
    build: async () => {
      const leafish = await mintCertificate({
        subject: 'CN=not-a-ca',
        ca: false,
        notBefore: new Date(START - DAY),
        notAfter: new Date(START + DAY),
      });
      return {
        material: withParts({ anchorsPem: good.material.anchorsPem + leafish.certificatePem }),
        clock: at(START),
      };
    },
    fragments: [
      'ca.crt certificate 2 (CN=not-a-ca) is not a CA certificate (basicConstraints cA is not true)',
      'ca.crt certificate 2 (CN=not-a-ca) keyUsage does not include keyCertSign',
    ],
  },
  {
    name: 'an anchor that is not self-signed',
    build: async () => ({
      material: withParts({ anchorsPem: good.material.anchorsPem + good.issuer.certificatePem }),
      clock: at(START),
    }),
    fragments: ['ca.crt certificate 2 (O=example.org, CN=warden-issuer) is not self-signed'],
  },
  {
    name: 'garbage instead of PEM in ca.crt',
    build: async () => ({
      material: withParts({ anchorsPem: 'this is not a certificate\n' }),
      clock: at(START),
    }),
    fragments: ['ca.crt contains no PEM block'],
  },
  {
    name: 'a CERTIFICATE block that is not DER',
    build: async () => ({
      material: withParts({
        anchorsPem: '-----BEGIN CERTIFICATE-----\nAAAAAAAA\n-----END CERTIFICATE-----\n',
      }),
      clock: at(START),
    }),
    fragments: ['ca.crt is not a valid X.509 certificate'],
  },
  {
    name: 'text after the PEM blocks',
    build: async () => ({
      material: withParts({ anchorsPem: `${good.material.anchorsPem}trailing junk\n` }),
      clock: at(START),
    }),
    fragments: ['ca.crt contains text outside PEM blocks'],
  },
  {
    name: 'an empty issuer.crt (a missing file’s content)',
    build: async () => ({ material: withParts({ issuerChainPem: '' }), clock: at(START) }),
    fragments: ['issuer.crt contains no PEM block'],
  },
  {
    name: 'garbage in issuer.key',
    build: async () => ({
      material: withParts({
        issuerKeyPem: '-----BEGIN PRIVATE KEY-----\nAAAAAAAAAAAA\n-----END PRIVATE KEY-----\n',
      }),
      clock: at(START),
    }),
    fragments: ['issuer.key is not a valid PRIVATE KEY'],
  },
  {
    name: 'an RSA-1024 issuer key',
    build: async () => {
      const weak = await ca('CN=weak-issuer', good.root, { key: 'rsa-1024', pathLength: 0 });
      return {
        material: withParts({
          issuerChainPem: weak.certificatePem,
          issuerKeyPem: weak.privateKeyPem,
        }),
        clock: at(START),
      };
    },
    fragments: [
      'issuer.key: key type RSA 1024-bit (fewer than 2048 bits) is not accepted',
      'issuer.crt (CN=weak-issuer): public key type RSA 1024-bit (fewer than 2048 bits) is not accepted',
    ],
  },
  {
    name: 'a P-521 issuer key',
    build: async () => {
      const p521 = await ca('CN=p521-issuer', good.root, { key: 'ecdsa-p521' });
      return {
        material: withParts({
          issuerChainPem: p521.certificatePem,
          issuerKeyPem: p521.privateKeyPem,
        }),
        clock: at(START),
      };
    },
    fragments: ['issuer.key: key type EC secp521r1 is not accepted'],
  },
  {
    name: 'an anchor whose keyUsage lacks keyCertSign',
    build: async () => {
      const root = await ca('CN=ku-root', undefined, {
        keyUsage: x509.KeyUsageFlags.digitalSignature,
      });
      return { material: withParts({ anchorsPem: root.certificatePem }), clock: at(START) };
    },
    fragments: ['ca.crt (CN=ku-root) keyUsage does not include keyCertSign'],
  },
  {
    name: 'an anchor with no keyUsage at all',
    build: async () => {
      const root = await ca('CN=no-ku-root', undefined, { keyUsage: null });
      return { material: withParts({ anchorsPem: root.certificatePem }), clock: at(START) };
    },
    fragments: ['ca.crt (CN=no-ku-root) has no keyUsage extension'],
  },
  {
    name: 'a root inside issuer.crt',
    build: async () => ({
      material: withParts({
        issuerChainPem: good.material.issuerChainPem + good.material.anchorsPem,
      }),
      clock: at(START),
    }),
    fragments: [
      'issuer.crt certificate 2 (O=example.org, CN=warden-root) is self-signed; roots belong in ca.crt only',
    ],
  },
  {
    name: 'a non-CA issuing certificate',
    build: async () => {
      const leaf = await mintCertificate({
        subject: 'CN=leaf-as-issuer',
        signer: good.root,
        ca: false,
        notBefore: new Date(START - DAY),
        notAfter: new Date(START + DAY),
      });
      return {
        material: withParts({
          issuerChainPem: leaf.certificatePem,
          issuerKeyPem: leaf.privateKeyPem,
        }),
        clock: at(START),
      };
    },
    fragments: ['issuer.crt (CN=leaf-as-issuer) is not a CA certificate'],
  },
  {
    name: 'intermediates in the wrong order',
    build: async () => {
      const intermediate = await ca('CN=intermediate', good.root);
      const issuer = await ca('CN=issuer-under-intermediate', intermediate);
      return {
        material: withParts({
          issuerChainPem: issuer.certificatePem + good.issuer.certificatePem,
          issuerKeyPem: issuer.privateKeyPem,
        }),
        clock: at(START),
      };
    },
    fragments: [
      'issuer.crt certificate 1 (CN=issuer-under-intermediate) is not issued by issuer.crt certificate 2 (O=example.org, CN=warden-issuer)',
    ],
  },
  {
    name: 'a chain longer than the root’s pathLen allows',
    build: async () => {
      const root = await ca('CN=pathlen0-root', undefined, { pathLength: 0 });
      const intermediate = await ca('CN=intermediate', root);
      const issuer = await ca('CN=issuer', intermediate, { pathLength: 0 });
      return {
        material: {
          anchorsPem: root.certificatePem,
          issuerChainPem: issuer.certificatePem + intermediate.certificatePem,
          issuerKeyPem: issuer.privateKeyPem,
        },
        clock: at(START),
      };
    },
    fragments: ['ca.crt (CN=pathlen0-root) has pathLen 0 but 2 CA certificate(s) follow it'],
  },
  {
    name: 'two private keys in issuer.key',
    build: async () => ({
      material: withParts({
        issuerKeyPem: good.material.issuerKeyPem + good.material.issuerKeyPem,
      }),
      clock: at(START),
    }),
    fragments: ['issuer.key must contain exactly one private key, found 2'],
  },
  {
    name: 'a certificate in place of the key',
    build: async () => ({
      material: withParts({ issuerKeyPem: good.material.issuerChainPem }),
      clock: at(START),
    }),
    fragments: ['issuer.key has a "CERTIFICATE" PEM block, not a private key'],
  },
  {
    name: 'an encrypted private key',
    build: async () => {
      const keyFile = path.join(dir, 'plain.key');
      await writeFile(keyFile, good.material.issuerKeyPem);
      const encrypted = await opensslOk([
        'pkcs8',
        '-topk8',
        '-in',
        keyFile,
        '-v2',
        'aes-256-cbc',
        '-passout',
        'pass:secret',
      ]);
      return { material: withParts({ issuerKeyPem: encrypted }), clock: at(START) };
    },
    fragments: ['issuer.key is an encrypted private key; provide it unencrypted'],
  },
];

describe('validateTrustMaterial refuses bad material, naming the file and the problem', () => {
  it.each(BAD_CASES.map((c) => [c.name, c] as const))('%s', async (_name, badCase) => {
    const { material, clock } = await badCase.build();
    let caught: unknown;
    try {
      validateTrustMaterial(material, { clock });
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(WardenError);
    const err = caught as WardenError;
    expect(err.code).toBe('ERR_TRUST_MATERIAL_INVALID');
    for (const fragment of badCase.fragments) expect(err.message).toContain(fragment);
    for (const chunk of bodyChunks(material.issuerKeyPem)) expect(err.message).not.toContain(chunk);
    expect(findTrustMaterialProblems(material, { clock }).length).toBeGreaterThanOrEqual(
      badCase.fragments.length,
    );
  });

  it('collects every problem at once rather than stopping at the first', () => {
    const material = withParts({
      anchorsPem: other.material.anchorsPem,
      issuerKeyPem: other.material.issuerKeyPem,
    });
    const problems = findTrustMaterialProblems(material, { clock: at(START + 400 * DAY) });
    expect(problems).toEqual(
      expect.arrayContaining([
        expect.stringContaining('ca.crt (O=other.org, CN=warden-root) expired'),
        expect.stringContaining('issuer.crt (O=example.org, CN=warden-issuer) expired'),
        expect.stringContaining('is not signed by any certificate in ca.crt'),
        expect.stringContaining('issuer.key does not match the public key of issuer.crt'),
      ]),
    );
  });

  it('names the files by their configured names', () => {
    const problems = findTrustMaterialProblems(
      withParts({ issuerKeyPem: other.material.issuerKeyPem }),
      {
        clock: at(START),
        names: { anchors: 'roots.pem', issuerChain: 'chain.pem', issuerKey: 'signing.key' },
      },
    );
    expect(problems).toEqual(['signing.key does not match the public key of chain.pem']);
  });
});

describe('validateTrustMaterial accepts good material', () => {
  it.each(['ecdsa-p256', 'ed25519'] as const)(
    'accepts generated %s material and returns it parsed',
    async (keyAlgorithm) => {
      const g = await generateTrustMaterial({ trustDomain: TD, keyAlgorithm, clock: at(START) });
      const v = validateTrustMaterial(g.material, { clock: at(START) });
      expect(v.anchors).toHaveLength(1);
      expect(v.issuerChain).toHaveLength(1);
      expect(v.anchorsPem).toBe(g.material.anchorsPem);
      expect(v.issuerChainPem).toBe(g.material.issuerChainPem);
      expect(v.issuerKeyPem).toBe(g.material.issuerKeyPem);
      expect(v.issuerChain[0]?.checkPrivateKey(v.issuerKey)).toBe(true);
    },
  );

  it('accepts several anchors (old root first) with the issuer under the second', () => {
    const material = withParts({
      anchorsPem: other.material.anchorsPem + good.material.anchorsPem,
    });
    const v = validateTrustMaterial(material, { clock: at(START) });
    expect(v.anchors).toHaveLength(2);
    expect(v.anchors[0]?.subject).toContain('other.org');
  });

  it('accepts CRLF line endings and normalises them away', () => {
    const material = withParts({ anchorsPem: good.material.anchorsPem.replace(/\n/g, '\r\n') });
    expect(validateTrustMaterial(material, { clock: at(START) }).anchorsPem).toBe(
      good.material.anchorsPem,
    );
  });

  it('accepts the validity bounds inclusively', () => {
    const notAfter = new x509.X509Certificate(good.material.issuerChainPem).notAfter.getTime();
    expect(findTrustMaterialProblems(good.material, { clock: at(notAfter) })).toEqual([]);
    expect(findTrustMaterialProblems(good.material, { clock: at(notAfter + 1000) })).not.toEqual(
      [],
    );
  });
});

describe('BYO material made with the openssl CLI loads', () => {
  const VARIANTS: readonly [string, OpensslKeyVariant, OpensslKeyVariant, boolean][] = [
    ['P-256 root and P-256 PKCS#8 issuer key', 'p256-pkcs8', 'p256-pkcs8', false],
    [
      'RSA-2048 root and a SEC1 issuer key with EC PARAMETERS',
      'rsa2048-pkcs1',
      'p256-sec1-with-params',
      false,
    ],
    ['P-384 root and a PKCS#1 RSA-2048 issuer key', 'p384-sec1', 'rsa2048-pkcs1', false],
    ['Ed25519 root and Ed25519 issuer key', 'ed25519-pkcs8', 'ed25519-pkcs8', false],
    [
      'a root, an intermediate and an issuer (issuer.crt holds two certificates)',
      'p256-pkcs8',
      'p256-sec1-with-params',
      true,
    ],
  ];
  it.each(VARIANTS)('%s', async (name, rootKey, issuerKey, intermediate) => {
    const variantDir = path.join(dir, name.replace(/[^a-z0-9]+/gi, '-'));
    await mkdir(variantDir);
    const byo = await makeOpensslMaterial(variantDir, { rootKey, issuerKey, intermediate });
    const v = validateTrustMaterial(byo, { clock: new ManualClock(Date.now()) });
    expect(v.issuerChain).toHaveLength(intermediate ? 2 : 1);
    expect(v.issuerKeyPem).toMatch(/^-----BEGIN PRIVATE KEY-----\n/);
    expect(v.issuerChain[0]?.checkPrivateKey(v.issuerKey)).toBe(true);
  });
});
