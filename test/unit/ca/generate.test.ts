import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import {
  generateIssuer,
  generateTrustMaterial,
  type CaCredential,
  type GeneratedTrustMaterial,
} from '../../../src/ca/generate.js';
import { validateTrustMaterial } from '../../../src/ca/validate.js';
import { ManualClock } from '../../../src/shared/clock.js';
import { WardenError } from '../../../src/shared/errors.js';
import { serialOctets, validityTags } from '../../support/der.js';
import { openssl, opensslOk } from '../../support/openssl.js';
import { makeOpensslMaterial, mintLeaf } from '../../support/pki-fixtures.js';
import { makeTempDir, removeTempDir } from '../../support/temp-dir.js';

const DAY = 86_400_000;
const START = Date.UTC(2026, 0, 1, 12, 0, 0);
const TD = 'example.org';

type Role = 'root' | 'issuer';
const ROLES: readonly Role[] = ['root', 'issuer'];

interface Generated {
  readonly material: GeneratedTrustMaterial;
  readonly peculiar: Record<Role, x509.X509Certificate>;
  readonly node: Record<Role, X509Certificate>;
  readonly text: Record<Role, string>;
  readonly files: Record<Role | 'leaf' | 'foreignLeaf', string>;
}

function attime(ms: number): string {
  return String(Math.floor(ms / 1000));
}

describe.each(['ecdsa-p256', 'ed25519'] as const)(
  'generateTrustMaterial with %s keys',
  (keyAlgorithm) => {
    let dir: string;
    let g: Generated;
    const clock = new ManualClock(START);

    beforeAll(async () => {
      dir = await makeTempDir();
      const material = await generateTrustMaterial({
        trustDomain: TD,
        keyAlgorithm,
        rootTtlMs: 400 * DAY,
        issuerTtlMs: 100 * DAY,
        clock,
      });
      const files = {
        root: path.join(dir, 'ca.crt'),
        issuer: path.join(dir, 'issuer.crt'),
        leaf: path.join(dir, 'leaf.crt'),
        foreignLeaf: path.join(dir, 'foreign-leaf.crt'),
      };
      await writeFile(files.root, material.material.anchorsPem);
      await writeFile(files.issuer, material.material.issuerChainPem);
      const at = new Date(START);
      await writeFile(
        files.leaf,
        (await mintLeaf(material.issuer, `spiffe://${TD}/ns/x/y`, at)).certificatePem,
      );
      await writeFile(
        files.foreignLeaf,
        (await mintLeaf(material.issuer, 'spiffe://other.org/ns/x/y', at)).certificatePem,
      );
      const pems: Record<Role, string> = {
        root: material.root.certificatePem,
        issuer: material.issuer.certificatePem,
      };
      g = {
        material,
        files,
        peculiar: {
          root: new x509.X509Certificate(pems.root),
          issuer: new x509.X509Certificate(pems.issuer),
        },
        node: { root: new X509Certificate(pems.root), issuer: new X509Certificate(pems.issuer) },
        text: {
          root: await opensslOk(['x509', '-noout', '-text', '-in', files.root]),
          issuer: await opensslOk(['x509', '-noout', '-text', '-in', files.issuer]),
        },
      };
    });
    afterAll(async () => {
      await removeTempDir(dir);
    });

    it.each(ROLES)(
      '%s: basicConstraints is critical with cA=true (pathLen 0 on the issuer only)',
      (role) => {
        const bc = g.peculiar[role].getExtension(x509.BasicConstraintsExtension);
        expect(bc?.critical).toBe(true);
        expect(bc?.ca).toBe(true);
        expect(bc?.pathLength).toBe(role === 'issuer' ? 0 : undefined);
        expect(g.text[role]).toMatch(
          role === 'issuer'
            ? /Basic Constraints: critical\s+CA:TRUE, pathlen:0\n/
            : /Basic Constraints: critical\s+CA:TRUE\n/,
        );
      },
    );

    it.each(ROLES)('%s: keyUsage is critical and exactly keyCertSign + cRLSign', (role) => {
      const ku = g.peculiar[role].getExtension(x509.KeyUsagesExtension);
      expect(ku?.critical).toBe(true);
      expect(ku?.usages).toBe(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign);
      expect(g.text[role]).toMatch(/Key Usage: critical\s+Certificate Sign, CRL Sign\n/);
    });

    it.each(ROLES)('%s: carries no extended key usage', (role) => {
      expect(g.peculiar[role].getExtension(x509.ExtendedKeyUsageExtension)).toBeNull();
      expect(g.text[role]).not.toContain('Extended Key Usage');
    });

    it.each(ROLES)('%s: has a subject key identifier', (role) => {
      const ski = g.peculiar[role].getExtension(x509.SubjectKeyIdentifierExtension);
      expect(ski?.keyId).toMatch(/^[0-9a-f]{40}$/);
      expect(g.text[role]).toContain('X509v3 Subject Key Identifier');
    });

    it('issuer: authorityKeyIdentifier equals the root subjectKeyIdentifier; the root has none', () => {
      const rootSki = g.peculiar.root.getExtension(x509.SubjectKeyIdentifierExtension)?.keyId;
      expect(g.peculiar.issuer.getExtension(x509.AuthorityKeyIdentifierExtension)?.keyId).toBe(
        rootSki,
      );
      expect(g.peculiar.root.getExtension(x509.AuthorityKeyIdentifierExtension)).toBeNull();
    });

    it.each(ROLES)('%s: serial is positive, 128 random bits, at most 20 octets', (role) => {
      const octets = serialOctets(new Uint8Array(g.node[role].raw));
      expect(octets.length).toBeLessThanOrEqual(20);
      expect(octets[0]! & 0x80).toBe(0); // positive
      const magnitude = octets[0] === 0 ? octets.slice(1) : octets;
      expect(magnitude.length).toBe(16);
      expect(magnitude[0]).not.toBe(0);
    });

    it('root and issuer serials differ', () => {
      expect(g.node.root.serialNumber).not.toBe(g.node.issuer.serialNumber);
    });

    it.each(ROLES)(
      '%s: the only SAN is the URI spiffe://<trust domain> with no path, non-critical',
      (role) => {
        const san = g.peculiar[role].getExtension(x509.SubjectAlternativeNameExtension);
        expect(san?.critical).toBe(false);
        expect(san?.names.toJSON()).toEqual([{ type: 'url', value: `spiffe://${TD}` }]);
        expect(g.node[role].subjectAltName).toBe(`URI:spiffe://${TD}`);
      },
    );

    it.each(ROLES)('%s: subject is O=<trust domain>, CN=warden-<role>', (role) => {
      expect(g.node[role].subject).toBe(`O=${TD}\nCN=warden-${role}`);
      expect(g.node.issuer.issuer).toBe(g.node.root.subject);
    });

    it('neither the root nor the issuer carries a name constraint by default', () => {
      for (const role of ROLES) {
        expect(g.peculiar[role].extensions.find((e) => e.type === '2.5.29.30')).toBeUndefined();
        expect(g.text[role]).not.toContain('Name Constraints');
      }
    });

    it('lifetimes: notBefore is backdated 15 minutes; notAfter is now + TTL', () => {
      expect(g.peculiar.root.notBefore.getTime()).toBe(START - 15 * 60_000);
      expect(g.peculiar.issuer.notBefore.getTime()).toBe(START - 15 * 60_000);
      expect(g.peculiar.root.notAfter.getTime()).toBe(START + 400 * DAY);
      expect(g.peculiar.issuer.notAfter.getTime()).toBe(START + 100 * DAY);
    });

    it.each(ROLES)('%s: signature algorithm matches the key algorithm', (role) => {
      expect(g.text[role]).toContain(
        keyAlgorithm === 'ed25519'
          ? 'Signature Algorithm: ED25519'
          : 'Signature Algorithm: ecdsa-with-SHA256',
      );
    });

    it('openssl verify -x509_strict accepts the issuer under the root', async () => {
      const result = await openssl([
        'verify',
        '-x509_strict',
        '-attime',
        attime(START),
        '-CAfile',
        g.files.root,
        g.files.issuer,
      ]);
      expect(result.stderr).toBe('');
      expect(result.stdout).toContain(': OK');
    });

    it('openssl verify -x509_strict accepts a leaf spiffe://<td>/ns/x/y under the issuer', async () => {
      const result = await openssl([
        'verify',
        '-x509_strict',
        '-attime',
        attime(START),
        '-CAfile',
        g.files.root,
        '-untrusted',
        g.files.issuer,
        g.files.leaf,
      ]);
      expect(result.stdout).toContain(': OK');
      expect(result.code).toBe(0);
    });

    it('openssl verify accepts a leaf from another trust domain by default (Dapr issues apps into `public`)', async () => {
      const result = await openssl([
        'verify',
        '-x509_strict',
        '-attime',
        attime(START),
        '-CAfile',
        g.files.root,
        '-untrusted',
        g.files.issuer,
        g.files.foreignLeaf,
      ]);
      expect(result.stdout).toContain(': OK');
      expect(result.code).toBe(0);
    });

    it('passes Warden’s own validation (what is minted is validated)', () => {
      expect(() => validateTrustMaterial(g.material.material, { clock })).not.toThrow();
    });

    it('exports keys as PKCS#8 PEM matching their certificates', () => {
      for (const role of ROLES) {
        const cred: CaCredential = g.material[role];
        expect(cred.privateKeyPem).toMatch(/^-----BEGIN PRIVATE KEY-----\n/);
        expect(
          new X509Certificate(cred.certificatePem).checkPrivateKey(
            createPrivateKey(cred.privateKeyPem),
          ),
        ).toBe(true);
      }
    });
  },
);

describe('generateTrustMaterial with nameConstraint: true', () => {
  let dir: string;
  let files: { root: string; issuer: string; leaf: string; foreignLeaf: string };
  let issuerText: string;
  let material: GeneratedTrustMaterial;

  beforeAll(async () => {
    dir = await makeTempDir();
    material = await generateTrustMaterial({
      trustDomain: TD,
      clock: new ManualClock(START),
      nameConstraint: true,
    });
    files = {
      root: path.join(dir, 'ca.crt'),
      issuer: path.join(dir, 'issuer.crt'),
      leaf: path.join(dir, 'leaf.crt'),
      foreignLeaf: path.join(dir, 'foreign-leaf.crt'),
    };
    const at = new Date(START);
    await writeFile(files.root, material.material.anchorsPem);
    await writeFile(files.issuer, material.material.issuerChainPem);
    await writeFile(
      files.leaf,
      (await mintLeaf(material.issuer, `spiffe://${TD}/ns/x/y`, at)).certificatePem,
    );
    await writeFile(
      files.foreignLeaf,
      (await mintLeaf(material.issuer, 'spiffe://other.org/ns/x/y', at)).certificatePem,
    );
    issuerText = await opensslOk(['x509', '-noout', '-text', '-in', files.issuer]);
  });
  afterAll(async () => {
    await removeTempDir(dir);
  });

  const verify = (leaf: string): ReturnType<typeof openssl> =>
    openssl([
      'verify',
      '-x509_strict',
      '-attime',
      attime(START),
      '-CAfile',
      files.root,
      '-untrusted',
      files.issuer,
      leaf,
    ]);

  it('issuer: a critical name constraint permits only the trust-domain URI host; the root has none', () => {
    const issuer = new x509.X509Certificate(material.issuer.certificatePem);
    expect(issuer.extensions.find((e) => e.type === '2.5.29.30')?.critical).toBe(true);
    expect(issuerText).toMatch(/Name Constraints: critical\s+Permitted:\s+URI:example\.org\n/);
    const root = new x509.X509Certificate(material.root.certificatePem);
    expect(root.extensions.find((e) => e.type === '2.5.29.30')).toBeUndefined();
  });

  it('openssl verify accepts a leaf of the trust domain', async () => {
    const result = await verify(files.leaf);
    expect(result.stdout).toContain(': OK');
    expect(result.code).toBe(0);
  });

  it('openssl verify rejects a leaf from another trust domain (the name constraint works)', async () => {
    const result = await verify(files.foreignLeaf);
    expect(result.code).not.toBe(0);
    expect(result.stdout + result.stderr).toContain('permitted subtree violation');
  });
});

describe('generateTrustMaterial lifetimes and encodings', () => {
  it('clamps an issuer TTL longer than the root’s to the root’s notAfter', async () => {
    const clock = new ManualClock(START);
    const g = await generateTrustMaterial({
      trustDomain: TD,
      rootTtlMs: 30 * DAY,
      issuerTtlMs: 90 * DAY,
      clock,
    });
    const root = new x509.X509Certificate(g.root.certificatePem);
    const issuer = new x509.X509Certificate(g.issuer.certificatePem);
    expect(issuer.notAfter.getTime()).toBe(root.notAfter.getTime());
    expect(root.notAfter.getTime()).toBe(START + 30 * DAY);
  });

  it('defaults to one year for both and ECDSA P-256', async () => {
    const g = await generateTrustMaterial({ trustDomain: TD, clock: new ManualClock(START) });
    const root = new x509.X509Certificate(g.root.certificatePem);
    expect(root.notAfter.getTime()).toBe(START + 365 * DAY);
    expect(new x509.X509Certificate(g.issuer.certificatePem).notAfter.getTime()).toBe(
      START + 365 * DAY,
    );
    expect(
      new X509Certificate(g.root.certificatePem).publicKey.asymmetricKeyDetails?.namedCurve,
    ).toBe('prime256v1');
  });

  it.each([
    ['dates in 2049 are UTCTime', Date.UTC(2048, 5, 1), 365 * DAY, 0x17, 0x17],
    [
      'a notAfter in 2050 is GeneralizedTime while the 2049 notBefore stays UTCTime',
      Date.UTC(2049, 5, 1),
      365 * DAY,
      0x17,
      0x18,
    ],
    ['dates from 2050 are GeneralizedTime', Date.UTC(2051, 0, 1), 365 * DAY, 0x18, 0x18],
  ])('%s', async (_name, start, ttl, notBeforeTag, notAfterTag) => {
    const g = await generateTrustMaterial({
      trustDomain: TD,
      rootTtlMs: ttl,
      issuerTtlMs: ttl,
      clock: new ManualClock(start),
    });
    for (const pem of [g.root.certificatePem, g.issuer.certificatePem]) {
      expect(validityTags(new Uint8Array(new X509Certificate(pem).raw))).toEqual({
        notBefore: notBeforeTag,
        notAfter: notAfterTag,
      });
    }
  });

  it('makes a different root every time', async () => {
    const clock = new ManualClock(START);
    const [a, b] = await Promise.all([
      generateTrustMaterial({ trustDomain: TD, clock }),
      generateTrustMaterial({ trustDomain: TD, clock }),
    ]);
    expect(a.root.certificatePem).not.toBe(b.root.certificatePem);
    expect(new X509Certificate(a.root.certificatePem).serialNumber).not.toBe(
      new X509Certificate(b.root.certificatePem).serialNumber,
    );
  });

  it.each([
    [
      'an invalid trust domain',
      { trustDomain: 'Example.ORG' },
      'ERR_CONFIG_INVALID',
      'trust domain',
    ],
    ['an empty trust domain', { trustDomain: '' }, 'ERR_CONFIG_INVALID', 'trust domain'],
    ['a zero root TTL', { trustDomain: TD, rootTtlMs: 0 }, 'ERR_CONFIG_INVALID', 'root TTL'],
    [
      'a negative issuer TTL',
      { trustDomain: TD, issuerTtlMs: -1 },
      'ERR_CONFIG_INVALID',
      'issuer TTL',
    ],
    [
      'an unknown key algorithm',
      { trustDomain: TD, keyAlgorithm: 'rsa' as never },
      'ERR_CONFIG_INVALID',
      'key algorithm',
    ],
  ])('refuses %s', async (_name, options, code, fragment) => {
    const err = await generateTrustMaterial(options).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(WardenError);
    expect((err as WardenError).code).toBe(code);
    expect((err as WardenError).message).toContain(fragment);
  });
});

describe('generateIssuer under an existing root', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await makeTempDir();
  });
  afterAll(async () => {
    await removeTempDir(dir);
  });

  it('mints a second issuer under a generated root that verifies with openssl and carries AKI = root SKI', async () => {
    const clock = new ManualClock(START);
    const first = await generateTrustMaterial({ trustDomain: TD, clock });
    clock.advance(30 * DAY);
    const second = await generateIssuer(first.root, {
      trustDomain: TD,
      keyAlgorithm: 'ed25519',
      issuerTtlMs: 30 * DAY,
      clock,
    });
    const issuer = new x509.X509Certificate(second.certificatePem);
    const root = new x509.X509Certificate(first.root.certificatePem);
    expect(issuer.getExtension(x509.AuthorityKeyIdentifierExtension)?.keyId).toBe(
      root.getExtension(x509.SubjectKeyIdentifierExtension)?.keyId,
    );
    expect(issuer.notBefore.getTime()).toBe(START + 30 * DAY - 15 * 60_000);
    await writeFile(path.join(dir, 'root.crt'), first.root.certificatePem);
    await writeFile(path.join(dir, 'issuer2.crt'), second.certificatePem);
    const result = await openssl([
      'verify',
      '-x509_strict',
      '-attime',
      attime(clock.now().getTime()),
      '-CAfile',
      path.join(dir, 'root.crt'),
      path.join(dir, 'issuer2.crt'),
    ]);
    expect(result.stdout).toContain(': OK');
    expect(() =>
      validateTrustMaterial(
        {
          anchorsPem: first.material.anchorsPem,
          issuerChainPem: second.certificatePem,
          issuerKeyPem: second.privateKeyPem,
        },
        { clock },
      ),
    ).not.toThrow();
  });

  it('never lets the new issuer outlive the root', async () => {
    const clock = new ManualClock(START);
    const first = await generateTrustMaterial({ trustDomain: TD, rootTtlMs: 60 * DAY, clock });
    clock.advance(50 * DAY);
    const next = await generateIssuer(first.root, {
      trustDomain: TD,
      issuerTtlMs: 365 * DAY,
      clock,
    });
    expect(new x509.X509Certificate(next.certificatePem).notAfter.getTime()).toBe(START + 60 * DAY);
  });

  it('refuses to mint under an expired root', async () => {
    const clock = new ManualClock(START);
    const first = await generateTrustMaterial({ trustDomain: TD, rootTtlMs: 10 * DAY, clock });
    clock.advance(11 * DAY);
    const err = await generateIssuer(first.root, { trustDomain: TD, clock }).catch(
      (e: unknown) => e,
    );
    expect((err as WardenError).code).toBe('ERR_TRUST_MATERIAL_INVALID');
  });

  it('mints under a BYO RSA-2048 root made by openssl (issuer name copied byte-for-byte)', async () => {
    const byoDir = path.join(dir, 'byo');
    await mkdir(byoDir);
    const byo = await makeOpensslMaterial(byoDir, {
      rootKey: 'rsa2048-pkcs1',
      issuerKey: 'p256-pkcs8',
    });
    const clock = new ManualClock(Date.now());
    const root = { certificatePem: byo.anchorsPem, privateKeyPem: byo.rootKeyPem };
    const issuer = await generateIssuer(root, { trustDomain: TD, clock });
    expect(
      new X509Certificate(issuer.certificatePem).checkIssued(new X509Certificate(byo.anchorsPem)),
    ).toBe(true);
    expect(() =>
      validateTrustMaterial(
        {
          anchorsPem: byo.anchorsPem,
          issuerChainPem: issuer.certificatePem,
          issuerKeyPem: issuer.privateKeyPem,
        },
        { clock },
      ),
    ).not.toThrow();
  });

  it('rejects a root key that does not belong to the root certificate', async () => {
    const clock = new ManualClock(START);
    const a = await generateTrustMaterial({ trustDomain: TD, clock });
    const b = await generateTrustMaterial({ trustDomain: TD, clock });
    await expect(
      generateIssuer(
        { certificatePem: a.root.certificatePem, privateKeyPem: b.root.privateKeyPem },
        { trustDomain: TD, clock },
      ),
    ).rejects.toThrow(TypeError);
  });
});
