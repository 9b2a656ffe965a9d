import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { beforeAll, describe, expect, it } from '@jest/globals';
import { ManualClock } from '../../../src/shared/clock.js';
import { isWardenError } from '../../../src/shared/errors.js';
import { createLeafSigner } from '../../../src/issuer/signing/leaf-signer.js';
import { trustBundleFromMaterial } from '../../../src/issuer/signing/signing-material.js';
import { expectLeafProfile, expectOpensslVerifies } from '../../support/leaf-profile.js';
import {
  createTestPki,
  makeOpensslCsr,
  makePeculiarCsr,
  openssl,
  pemBody,
  type TestCsr,
  type TestKeyType,
  type TestPki,
} from '../../support/signing-test-pki.js';

const HOUR = 3_600_000;
const PROFILE = { ttlMs: 24 * HOUR, skewMs: 15 * 60_000 };
const NOW = Date.parse('2026-03-01T12:34:56.789Z');
const SPIFFE_ID = 'spiffe://example.org/ns/default/orders';
const floorSecond = (ms: number): number => Math.floor(ms / 1000) * 1000;

const CSR_TYPES: TestKeyType[] = ['P-256', 'P-384', 'Ed25519', 'RSA-2048'];
const ISSUER_TYPES: TestKeyType[] = ['P-256', 'Ed25519', 'RSA-2048'];

describe('issued leaves, read back by @peculiar/x509 and openssl', () => {
  const pkis = new Map<TestKeyType, TestPki>();
  const csrs: { maker: string; csr: TestCsr }[] = [];

  beforeAll(async () => {
    for (const type of ISSUER_TYPES)
      pkis.set(type, await createTestPki({ issuerKeyType: type, label: type }));
    for (const type of CSR_TYPES) {
      csrs.push({ maker: 'openssl req', csr: makeOpensslCsr(type) });
      csrs.push({ maker: '@peculiar/x509', csr: await makePeculiarCsr(type) });
    }
  });

  it.each(ISSUER_TYPES)(
    'a %s issuer mints profile-conformant leaves for every accepted CSR key type from both encoders',
    async (issuerType) => {
      const pki = pkis.get(issuerType) as TestPki;
      const signer = createLeafSigner(pki.bundle, PROFILE, new ManualClock(NOW));
      for (const [i, { csr }] of csrs.entries()) {
        const dnsNames = i % 2 === 0 ? [] : ['dapr-sidecar-injector.dapr-system.svc', 'localhost'];
        const issued = await signer.sign({ csrPem: csr.bytes, spiffeId: SPIFFE_ID, dnsNames });
        expect(issued.generation).toBe(pki.bundle.generation);
        await expectLeafProfile({
          issued,
          pki,
          spkiDer: csr.spkiDer,
          keyType: csr.keyType,
          spiffeId: SPIFFE_ID,
          dnsNames,
          notBefore: new Date(floorSecond(NOW - PROFILE.skewMs)),
          notAfter: new Date(floorSecond(NOW + PROFILE.ttlMs)),
          verifyAt: new Date(NOW),
        });
      }
    },
  );

  it('computes the AKI from the issuer key when the issuer certificate carries no SKI', async () => {
    const pki = await createTestPki({
      issuerKeyType: 'P-256',
      issuerWithoutSki: true,
      label: 'no-ski',
    });
    expect(
      new x509.X509Certificate(pki.issuerPem).getExtension(x509.SubjectKeyIdentifierExtension),
    ).toBeNull();
    const csr = csrs[0]?.csr as TestCsr;
    const issued = await createLeafSigner(pki.bundle, PROFILE, new ManualClock(NOW)).sign({
      csrPem: csr.bytes,
      spiffeId: SPIFFE_ID,
      dnsNames: [],
    });
    await expectLeafProfile({
      issued,
      pki,
      spkiDer: csr.spkiDer,
      keyType: csr.keyType,
      spiffeId: SPIFFE_ID,
      dnsNames: [],
      notBefore: new Date(floorSecond(NOW - PROFILE.skewMs)),
      notAfter: new Date(floorSecond(NOW + PROFILE.ttlMs)),
      verifyAt: new Date(NOW),
      strict: false,
    });
  });

  it('gives every leaf a distinct serial', async () => {
    const pki = pkis.get('P-256') as TestPki;
    const signer = createLeafSigner(pki.bundle, PROFILE, new ManualClock(NOW));
    const csr = csrs[1]?.csr as TestCsr;
    const serials = new Set<string>();
    for (let i = 0; i < 300; i++)
      serials.add(
        (await signer.sign({ csrPem: csr.bytes, spiffeId: SPIFFE_ID, dnsNames: [] })).serialHex,
      );
    expect(serials.size).toBe(300);
  });
});

describe('CSRs that try to smuggle identity', () => {
  let pki: TestPki;
  beforeAll(async () => {
    pki = await createTestPki({ issuerKeyType: 'P-256', label: 'smuggle' });
  });

  const smugglers: [string, () => Promise<TestCsr>][] = [
    [
      'openssl req with CN, URI and DNS SANs, CA:true, keyCertSign and codeSigning',
      async () =>
        makeOpensslCsr('P-256', {
          subject: '/CN=evil/O=evil corp',
          addext: [
            'subjectAltName=URI:spiffe://evil.example/ns/kube-system/admin,DNS:evil.example.com,IP:10.0.0.1',
            'basicConstraints=critical,CA:TRUE,pathlen:5',
            'keyUsage=critical,keyCertSign,cRLSign,digitalSignature',
            'extendedKeyUsage=codeSigning',
          ],
        }),
    ],
    [
      '@peculiar/x509 with the same requests as extensions',
      async () =>
        makePeculiarCsr('Ed25519', {
          name: 'CN=evil,O=evil corp',
          extensions: [
            new x509.SubjectAlternativeNameExtension([
              { type: 'url', value: 'spiffe://evil.example/ns/kube-system/admin' },
              { type: 'dns', value: 'evil.example.com' },
            ]),
            new x509.BasicConstraintsExtension(true, 5, true),
            new x509.KeyUsagesExtension(
              x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign,
              true,
            ),
          ],
        }),
    ],
  ];

  it.each(smugglers)(
    '%s yields a leaf with only the given identity and cA=false',
    async (_name, make) => {
      const csr = await make();
      const issued = await createLeafSigner(pki.bundle, PROFILE, new ManualClock(NOW)).sign({
        csrPem: csr.bytes,
        spiffeId: SPIFFE_ID,
        dnsNames: [],
      });
      await expectLeafProfile({
        issued,
        pki,
        spkiDer: csr.spkiDer,
        keyType: csr.keyType,
        spiffeId: SPIFFE_ID,
        dnsNames: [],
        notBefore: new Date(floorSecond(NOW - PROFILE.skewMs)),
        notAfter: new Date(floorSecond(NOW + PROFILE.ttlMs)),
        verifyAt: new Date(NOW),
      });
      const leafDer = pemBody(
        issued.certificateChainPem.split('-----END CERTIFICATE-----')[0] +
          '-----END CERTIFICATE-----',
      );
      expect(leafDer.includes(Buffer.from('evil'))).toBe(false);
    },
  );
});

describe('leaf validity', () => {
  function timeTypes(chainPem: string): string[] {
    const leafPem = chainPem.split('-----END CERTIFICATE-----')[0] + '-----END CERTIFICATE-----\n';
    const parsed = openssl(['asn1parse', '-i'], leafPem);
    return [...parsed.matchAll(/(UTCTIME|GENERALIZEDTIME)\s*:(\S+)/g)].map(
      (m) => `${m[1]}:${m[2]}`,
    );
  }

  it('clamps notAfter to the issuer notAfter and still verifies', async () => {
    const issuerNotAfter = new Date(floorSecond(NOW + 2 * HOUR));
    const pki = await createTestPki({ issuerKeyType: 'P-256', issuerNotAfter, label: 'short' });
    const csr = await makePeculiarCsr('P-256');
    const issued = await createLeafSigner(pki.bundle, PROFILE, new ManualClock(NOW)).sign({
      csrPem: csr.bytes,
      spiffeId: SPIFFE_ID,
      dnsNames: [],
    });
    expect(issued.notAfter.getTime()).toBe(issuerNotAfter.getTime());
    await expectLeafProfile({
      issued,
      pki,
      spkiDer: csr.spkiDer,
      keyType: csr.keyType,
      spiffeId: SPIFFE_ID,
      dnsNames: [],
      notBefore: new Date(floorSecond(NOW - PROFILE.skewMs)),
      notAfter: issuerNotAfter,
      verifyAt: new Date(NOW),
    });
  });

  it('encodes dates from 2050 as GeneralizedTime and through 2049 as UTCTime (rule 16)', async () => {
    const pki = await createTestPki({
      issuerKeyType: 'P-256',
      notBefore: new Date(Date.UTC(2049, 0, 1)),
      issuerNotAfter: new Date(Date.UTC(2060, 0, 1)),
      label: 'y2050',
    });
    const csr = await makePeculiarCsr('P-256');
    const cases: [number, string[]][] = [
      [
        Date.parse('2055-06-01T08:00:00.500Z'),
        ['GENERALIZEDTIME:20550601074500Z', 'GENERALIZEDTIME:20550602080000Z'],
      ],
      [
        Date.parse('2049-12-31T12:00:00Z'),
        ['UTCTIME:491231114500Z', 'GENERALIZEDTIME:20500101120000Z'],
      ],
      [Date.parse('2049-06-01T00:00:00Z'), ['UTCTIME:490531234500Z', 'UTCTIME:490602000000Z']],
    ];
    for (const [now, expected] of cases) {
      const issued = await createLeafSigner(pki.bundle, PROFILE, new ManualClock(now)).sign({
        csrPem: csr.bytes,
        spiffeId: SPIFFE_ID,
        dnsNames: [],
      });
      expect(timeTypes(issued.certificateChainPem)).toEqual(expected);
      const leaf = new x509.X509Certificate(
        issued.certificateChainPem.split('-----END CERTIFICATE-----')[0] +
          '-----END CERTIFICATE-----',
      );
      expect(leaf.notBefore.getTime()).toBe(floorSecond(now - PROFILE.skewMs));
      expect(leaf.notAfter.getTime()).toBe(floorSecond(now + PROFILE.ttlMs));
      expectOpensslVerifies(issued.certificateChainPem, pki.rootPem, new Date(now));
    }
  });

  it.each([
    ['an expired issuer', Date.parse('2030-01-01T00:00:00Z'), 'expired'],
    ['an issuer at its exact notAfter', Date.parse('2027-01-01T00:00:00Z'), 'expired'],
    ['an issuer that is not valid yet', Date.parse('2025-12-31T23:59:59Z'), 'not valid before'],
  ])('refuses to sign with %s (ERR_SIGNING_FAILED)', async (_name, now, fragment) => {
    const pki = await createTestPki({
      issuerKeyType: 'Ed25519',
      notBefore: new Date(Date.UTC(2026, 0, 1)),
      issuerNotAfter: new Date(Date.UTC(2027, 0, 1)),
      label: 'dated',
    });
    const csr = await makePeculiarCsr('Ed25519');
    const signer = createLeafSigner(pki.bundle, PROFILE, new ManualClock(now));
    const err = await signer
      .sign({ csrPem: csr.bytes, spiffeId: SPIFFE_ID, dnsNames: [] })
      .catch((e: unknown) => e);
    expect(isWardenError(err, 'ERR_SIGNING_FAILED')).toBe(true);
    expect((err as Error).message).toContain(fragment);
  });
});

describe('signer construction and misuse', () => {
  let pki: TestPki;
  let csr: TestCsr;
  beforeAll(async () => {
    pki = await createTestPki({ issuerKeyType: 'P-256', label: 'misuse' });
    csr = await makePeculiarCsr('P-256');
  });

  it('refuses a bundle whose key does not belong to the issuer certificate', async () => {
    const other = await createTestPki({ issuerKeyType: 'P-256', label: 'other' });
    const mismatched = trustBundleFromMaterial({
      generation: 1,
      anchorsPem: pki.rootPem,
      issuerChainPem: pki.issuerPem,
      issuerKeyPem: other.bundle.issuerKeyPem,
    });
    expect(() => createLeafSigner(mismatched, PROFILE)).toThrow(
      'issuer key does not match the issuer certificate',
    );
  });

  it.each([
    ['a SPIFFE ID without a path', 'spiffe://example.org', [], 'non-root path'],
    [
      'a SPIFFE ID with an empty segment',
      'spiffe://example.org/ns//app',
      [],
      'not a valid SPIFFE ID',
    ],
    ['something that is not a SPIFFE ID', 'https://example.org/app', [], 'not a valid SPIFFE ID'],
    ['a DNS name with a space', SPIFFE_ID, ['bad name'], 'not a valid DNS name'],
    ['a wildcard DNS name', SPIFFE_ID, ['*.example.org'], 'not a valid DNS name'],
    ['a non-ASCII DNS name', SPIFFE_ID, ['exämple.org'], 'not a valid DNS name'],
  ])(
    'treats %s from the caller as programmer misuse (TypeError), signing nothing',
    async (_name, spiffeId, dnsNames, fragment) => {
      const signer = createLeafSigner(pki.bundle, PROFILE, new ManualClock(NOW));
      await expect(signer.sign({ csrPem: csr.bytes, spiffeId, dnsNames })).rejects.toThrow(
        TypeError,
      );
      await expect(signer.sign({ csrPem: csr.bytes, spiffeId, dnsNames })).rejects.toThrow(
        fragment,
      );
    },
  );

  it('refuses profiles without a positive TTL', () => {
    expect(() => createLeafSigner(pki.bundle, { ttlMs: 0, skewMs: 0 })).toThrow(TypeError);
    expect(() => createLeafSigner(pki.bundle, { ttlMs: HOUR, skewMs: -1 })).toThrow(TypeError);
  });

  it('refuses to sign after close', async () => {
    const signer = createLeafSigner(pki.bundle, PROFILE, new ManualClock(NOW));
    await signer.close();
    const err = await signer
      .sign({ csrPem: csr.bytes, spiffeId: SPIFFE_ID, dnsNames: [] })
      .catch((e: unknown) => e);
    expect(isWardenError(err, 'ERR_SIGNING_FAILED')).toBe(true);
  });
});
