import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { beforeAll, describe, expect, it } from '@jest/globals';
import { KeyUsageFlag, readCaExtensions } from '../../../src/ca/ca-extensions.js';
import { parsePemBlocks } from '../../../src/ca/pem.js';
import { mintCertificate } from '../../support/pki-fixtures.js';

const NOT_BEFORE = new Date('2026-01-01T00:00:00Z');
const NOT_AFTER = new Date('2027-01-01T00:00:00Z');

function derOf(pem: string): Buffer {
  const parsed = parsePemBlocks(pem);
  if (!parsed.ok || !parsed.blocks[0]) throw new Error('bad PEM');
  return parsed.blocks[0].der;
}

/** What @peculiar/x509 (an independent ASN.1 parser) reads from the same DER. */
function peculiarView(der: Buffer): { keyUsage: number | null; pathLength: number | undefined } {
  const cert = new x509.X509Certificate(der);
  return {
    keyUsage: cert.getExtension(x509.KeyUsagesExtension)?.usages ?? null,
    pathLength: cert.getExtension(x509.BasicConstraintsExtension)?.pathLength,
  };
}

/** Replaces the first occurrence of `from` in `der` with `to` (same length). */
function patch(der: Buffer, from: string, to: string): Buffer {
  const at = der.indexOf(Buffer.from(from, 'hex'));
  if (at === -1 || from.length !== to.length) throw new Error('patch target not found');
  const out = Buffer.from(der);
  Buffer.from(to, 'hex').copy(out, at);
  return out;
}

describe('readCaExtensions (keyUsage and pathLen without @peculiar/x509)', () => {
  const cases: Array<{ name: string; keyUsage: number | null; pathLength?: number; ca: boolean }> =
    [
      {
        name: 'a root with keyCertSign | cRLSign',
        keyUsage: KeyUsageFlag.keyCertSign | KeyUsageFlag.cRLSign,
        ca: true,
      },
      {
        name: 'an issuer with pathLen 0',
        keyUsage: KeyUsageFlag.keyCertSign,
        pathLength: 0,
        ca: true,
      },
      {
        name: 'a CA with pathLen 3',
        keyUsage: KeyUsageFlag.keyCertSign | KeyUsageFlag.digitalSignature,
        pathLength: 3,
        ca: true,
      },
      {
        name: 'a CA with pathLen 200',
        keyUsage: KeyUsageFlag.keyCertSign,
        pathLength: 200,
        ca: true,
      },
      { name: 'a CA without keyUsage', keyUsage: null, ca: true },
      {
        name: 'a leaf with digitalSignature only',
        keyUsage: KeyUsageFlag.digitalSignature,
        ca: false,
      },
      {
        name: 'a certificate with decipherOnly (the ninth bit)',
        keyUsage: KeyUsageFlag.keyAgreement | KeyUsageFlag.decipherOnly,
        ca: false,
      },
      { name: 'a certificate with every bit', keyUsage: 511, ca: true },
    ];
  const minted = new Map<string, Buffer>();

  beforeAll(async () => {
    for (const c of cases) {
      const cert = await mintCertificate({
        subject: 'CN=ext-test',
        ca: c.ca,
        keyUsage: c.keyUsage,
        notBefore: NOT_BEFORE,
        notAfter: NOT_AFTER,
        ...(c.pathLength === undefined ? {} : { pathLength: c.pathLength }),
      });
      minted.set(c.name, derOf(cert.certificatePem));
    }
  });

  it.each(cases.map((c) => [c.name, c] as const))('reads %s as @peculiar/x509 does', (name, c) => {
    const der = minted.get(name) as Buffer;
    const ours = readCaExtensions(der);
    expect(ours).toEqual(peculiarView(der));
    expect(ours.keyUsage).toBe(c.keyUsage);
    expect(ours.pathLength).toBe(c.pathLength);
  });

  it('reports a keyUsage whose value is not a BIT STRING as unreadable', () => {
    const der = minted.get('a root with keyCertSign | cRLSign') as Buffer;
    // extnID keyUsage, critical TRUE, OCTET STRING { BIT STRING (03 02 01 06) } → tag 0x04.
    const broken = patch(der, '0603551d0f0101ff040403020106', '0603551d0f0101ff040404020106');
    expect(readCaExtensions(broken).keyUsage).toBe('unreadable');
  });

  it('reports every extension as unreadable when the DER cannot be walked', () => {
    expect(readCaExtensions(Buffer.from('3003020101', 'hex'))).toEqual({
      keyUsage: 'unreadable',
      pathLength: undefined,
    });
  });

  it('reads a malformed basicConstraints as no pathLen, like a failed @peculiar/x509 read', () => {
    const der = minted.get('an issuer with pathLen 0') as Buffer;
    // basicConstraints value SEQUENCE { BOOLEAN TRUE, INTEGER 0 } → INTEGER becomes OCTET STRING.
    const broken = patch(der, '30060101ff020100', '30060101ff040100');
    expect(readCaExtensions(broken).pathLength).toBeUndefined();
  });
});
