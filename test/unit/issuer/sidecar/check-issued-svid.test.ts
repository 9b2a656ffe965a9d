import 'reflect-metadata';
import { describe, expect, it, beforeAll } from '@jest/globals';
import { KeyObject, webcrypto, X509Certificate } from 'node:crypto';
import * as x509 from '@peculiar/x509';
import {
  checkIssuedSvid,
  createSentryClient,
  parseSentryAddress,
  TOKEN_VALIDATOR_NUMBERS,
} from '../../../../src/issuer/sidecar/sentry-client.js';
import { TOKEN_VALIDATOR_ENUM } from '../../../../src/issuer/validator.js';
import { isWardenError } from '../../../../src/shared/errors.js';

x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);

type CryptoKeyPair = webcrypto.CryptoKeyPair;
const EC = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;
const DAY = 86_400_000;
const NOW = new Date(Date.UTC(2026, 5, 1, 12));
const ID = 'spiffe://public/ns/default/app';
const SERVER_AUTH = x509.ExtendedKeyUsage.serverAuth;
const CLIENT_AUTH = x509.ExtendedKeyUsage.clientAuth;

async function keys(): Promise<CryptoKeyPair> {
  return (await webcrypto.subtle.generateKey(EC, true, ['sign', 'verify'])) as CryptoKeyPair;
}

interface Minted {
  readonly cert: X509Certificate;
  readonly peculiar: x509.X509Certificate;
  readonly keys: CryptoKeyPair;
}

interface MintOptions {
  readonly subject: string;
  readonly signer?: Minted;
  readonly keys?: CryptoKeyPair;
  readonly ca?: boolean;
  readonly uris?: readonly string[];
  readonly eku?: readonly string[] | null;
  readonly notBefore?: Date;
  readonly notAfter?: Date;
}

/** Certificates built with @peculiar/x509, independent of Warden's signer. */
async function mint(options: MintOptions): Promise<Minted> {
  const own = options.keys ?? (await keys());
  const extensions: x509.Extension[] = [
    new x509.BasicConstraintsExtension(options.ca ?? false, undefined, true),
    new x509.KeyUsagesExtension(
      options.ca
        ? x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign
        : x509.KeyUsageFlags.digitalSignature,
      true,
    ),
    await x509.SubjectKeyIdentifierExtension.create(own.publicKey),
  ];
  if (options.signer)
    extensions.push(
      await x509.AuthorityKeyIdentifierExtension.create(options.signer.keys.publicKey),
    );
  if (options.uris?.length)
    extensions.push(
      new x509.SubjectAlternativeNameExtension(
        options.uris.map((value) => ({ type: 'url' as const, value })),
        true,
      ),
    );
  const eku = options.eku === undefined ? [SERVER_AUTH, CLIENT_AUTH] : options.eku;
  if (eku) extensions.push(new x509.ExtendedKeyUsageExtension([...eku]));
  const validity = {
    notBefore: options.notBefore ?? new Date(NOW.getTime() - DAY),
    notAfter: options.notAfter ?? new Date(NOW.getTime() + DAY),
  };
  const peculiar = options.signer
    ? await x509.X509CertificateGenerator.create({
        serialNumber: '0a',
        subject: options.subject,
        issuer: options.signer.peculiar.subject,
        publicKey: own.publicKey,
        signingKey: options.signer.keys.privateKey,
        signingAlgorithm: EC,
        extensions,
        ...validity,
      })
    : await x509.X509CertificateGenerator.createSelfSigned({
        serialNumber: '01',
        name: options.subject,
        keys: own,
        signingAlgorithm: EC,
        extensions,
        ...validity,
      });
  return { cert: new X509Certificate(peculiar.toString('pem')), peculiar, keys: own };
}

describe('checkIssuedSvid: what the sidecar client refuses to hand out', () => {
  let root: Minted;
  let issuer: Minted;
  let workloadKeys: CryptoKeyPair;
  let privateKey: KeyObject;
  let leaf: Minted;
  let otherRoot: Minted;

  beforeAll(async () => {
    root = await mint({ subject: 'CN=root', ca: true, eku: null });
    issuer = await mint({ subject: 'CN=issuer', ca: true, signer: root, eku: null });
    otherRoot = await mint({ subject: 'CN=root', ca: true, eku: null });
    workloadKeys = await keys();
    privateKey = KeyObject.from(
      workloadKeys.privateKey as unknown as Parameters<typeof KeyObject.from>[0],
    );
    leaf = await mint({ subject: '', signer: issuer, keys: workloadKeys, uris: [ID] });
  });

  const check = (overrides: Partial<Parameters<typeof checkIssuedSvid>[0]> = {}): void =>
    checkIssuedSvid({
      chain: [leaf.cert, issuer.cert],
      anchors: [root.cert],
      expectedSpiffeId: ID,
      privateKey,
      validUntilSeconds: Math.floor(Date.parse(leaf.cert.validTo) / 1000),
      now: NOW,
      ...overrides,
    });

  const refusal = (fn: () => void): string => {
    try {
      fn();
    } catch (err) {
      if (isWardenError(err, 'ERR_SVID_INVALID')) return err.message;
      throw err;
    }
    throw new Error('accepted');
  };

  it('accepts a leaf for our key and ID that chains through the issuer to an anchor', () => {
    expect(() => check()).not.toThrow();
    expect(() => check({ validUntilSeconds: null })).not.toThrow();
    expect(() => check({ anchors: [otherRoot.cert, root.cert] })).not.toThrow();
  });

  const cases: Array<{
    name: string;
    build: () => Promise<Partial<Parameters<typeof checkIssuedSvid>[0]>>;
    message: RegExp;
  }> = [
    {
      name: 'a leaf for another SPIFFE ID',
      build: async () => ({
        chain: [
          (
            await mint({
              subject: '',
              signer: issuer,
              keys: workloadKeys,
              uris: ['spiffe://public/ns/default/other'],
            })
          ).cert,
          issuer.cert,
        ],
      }),
      message:
        /names \["spiffe:\/\/public\/ns\/default\/other"\], not exactly spiffe:\/\/public\/ns\/default\/app/,
    },
    {
      name: 'a leaf with the ID and a second URI',
      build: async () => ({
        chain: [
          (
            await mint({
              subject: '',
              signer: issuer,
              keys: workloadKeys,
              uris: [ID, 'spiffe://public/ns/default/x'],
            })
          ).cert,
          issuer.cert,
        ],
      }),
      message: /not exactly/,
    },
    {
      name: 'a leaf with no SAN at all',
      build: async () => ({
        chain: [
          (await mint({ subject: 'CN=app', signer: issuer, keys: workloadKeys })).cert,
          issuer.cert,
        ],
      }),
      message: /names \[\]/,
    },
    {
      name: 'a leaf for somebody else’s key',
      build: async () => ({
        chain: [(await mint({ subject: '', signer: issuer, uris: [ID] })).cert, issuer.cert],
      }),
      message: /does not certify the key this request generated/,
    },
    {
      name: 'a leaf that is a CA',
      build: async () => ({
        chain: [
          (await mint({ subject: '', signer: issuer, keys: workloadKeys, uris: [ID], ca: true }))
            .cert,
          issuer.cert,
        ],
      }),
      message: /is a CA certificate/,
    },
    {
      name: 'a leaf for TLS clients only',
      build: async () => ({
        chain: [
          (
            await mint({
              subject: '',
              signer: issuer,
              keys: workloadKeys,
              uris: [ID],
              eku: [CLIENT_AUTH],
            })
          ).cert,
          issuer.cert,
        ],
      }),
      message: /both TLS server and client/,
    },
    {
      name: 'an expired leaf',
      build: async () => {
        const expired = await mint({
          subject: '',
          signer: issuer,
          keys: workloadKeys,
          uris: [ID],
          notAfter: new Date(NOW.getTime() - 1000),
        });
        return { chain: [expired.cert, issuer.cert], validUntilSeconds: null };
      },
      message: /certificate 0 of the chain is not valid/,
    },
    {
      name: 'a valid_until that is not the leaf’s notAfter',
      build: async () => ({ validUntilSeconds: Math.floor(NOW.getTime() / 1000) }),
      message: /valid_until .* is not the leaf's notAfter/,
    },
    {
      name: 'a chain that leads to another root',
      build: async () => ({ anchors: [otherRoot.cert] }),
      message: /does not lead to any of the returned trust anchors/,
    },
    {
      name: 'a chain without the issuer',
      build: async () => ({ chain: [leaf.cert] }),
      message: /does not lead to any of the returned trust anchors/,
    },
    {
      name: 'an issuer that is not a CA',
      build: async () => {
        const notCa = await mint({ subject: 'CN=issuer', signer: root, ca: false, eku: null });
        const child = await mint({ subject: '', signer: notCa, keys: workloadKeys, uris: [ID] });
        return { chain: [child.cert, notCa.cert] };
      },
      message: /certificate 0 of the chain is not signed by the CA certificate after it/,
    },
    {
      name: 'an "anchor" that is not self-signed',
      build: async () => ({ anchors: [issuer.cert], chain: [leaf.cert] }),
      message: /trust anchor CN=issuer is not a self-signed CA certificate/,
    },
    {
      name: 'an expired issuer',
      build: async () => {
        const oldIssuer = await mint({
          subject: 'CN=issuer',
          ca: true,
          signer: root,
          eku: null,
          notAfter: new Date(NOW.getTime() - 1000),
        });
        const child = await mint({
          subject: '',
          signer: oldIssuer,
          keys: workloadKeys,
          uris: [ID],
        });
        return { chain: [child.cert, oldIssuer.cert], validUntilSeconds: null };
      },
      message: /certificate 1 of the chain is not valid/,
    },
    {
      name: 'an expired anchor',
      build: async () => {
        const oldRoot = await mint({
          subject: 'CN=old root',
          ca: true,
          eku: null,
          notAfter: new Date(NOW.getTime() - 1000),
        });
        const oldIssuer = await mint({
          subject: 'CN=issuer',
          ca: true,
          signer: oldRoot,
          eku: null,
        });
        const child = await mint({
          subject: '',
          signer: oldIssuer,
          keys: workloadKeys,
          uris: [ID],
        });
        return { chain: [child.cert, oldIssuer.cert], anchors: [oldRoot.cert] };
      },
      message: /trust anchor CN=old root is not valid at/,
    },
    {
      name: 'no anchors',
      build: async () => ({ anchors: [] }),
      message: /trust_chain_certificates is empty/,
    },
    { name: 'no certificate', build: async () => ({ chain: [] }), message: /holds no certificate/ },
  ];

  it.each(cases)('refuses $name', async ({ build, message }) => {
    const overrides = await build();
    expect(refusal(() => check(overrides))).toMatch(message);
  });
});

describe('sidecar client options', () => {
  it.each([
    ['127.0.0.1:50001', { host: '127.0.0.1', port: 50001 }],
    ['dapr-sentry.dapr-system.svc:443', { host: 'dapr-sentry.dapr-system.svc', port: 443 }],
    ['[::1]:50001', { host: '::1', port: 50001 }],
  ])('reads the address %s', (address, expected) => {
    expect(parseSentryAddress(address)).toEqual(expected);
  });

  it.each(['127.0.0.1', 'localhost:0', 'host:70000', '::1:50001', 'a b:1', ''])(
    'refuses the address "%s"',
    (address) => {
      expect(() => parseSentryAddress(address)).toThrow(
        expect.objectContaining({ code: 'ERR_CONFIG_INVALID' }),
      );
    },
  );

  it.each([
    [
      'a pinned ID that is not a SPIFFE ID',
      { sentrySpiffeId: 'https://localhost/ns/default/dapr-sentry' },
      /sentry SPIFFE ID/,
    ],
    ['a pinned ID without a path', { sentrySpiffeId: 'spiffe://localhost' }, /sentry SPIFFE ID/],
    [
      'anchors that are not PEM',
      { trustAnchorsPem: 'not pem' },
      /trust anchors contains no PEM block/,
    ],
    [
      'anchors holding a key',
      { trustAnchorsPem: '-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n' },
      /trust anchors hold something other than certificates/,
    ],
  ])('refuses %s', async (_name, overrides, message) => {
    const root = await mint({ subject: 'CN=root', ca: true, eku: null });
    expect(() =>
      createSentryClient({
        address: '127.0.0.1:1',
        trustAnchorsPem: root.cert.toString(),
        sentrySpiffeId: 'spiffe://localhost/ns/default/dapr-sentry',
        ...overrides,
      }),
    ).toThrow(message);
  });

  it("names the proto's TokenValidator values as the edge reads them", () => {
    for (const [name, value] of Object.entries(TOKEN_VALIDATOR_NUMBERS)) {
      expect(TOKEN_VALIDATOR_ENUM[value]).toBe(name === 'unknown' ? 'default' : name);
    }
    expect(Object.keys(TOKEN_VALIDATOR_NUMBERS)).toHaveLength(
      Object.keys(TOKEN_VALIDATOR_ENUM).length,
    );
  });
});
