import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import {
  bitStringContent,
  DerCursor,
  DerError,
  DerTag,
  encodeCertificateTime,
  encodeGeneralizedTime,
  encodeLength,
  encodeOid,
  encodeSequence,
  encodeSmallInteger,
  encodeTlv,
  encodeUnsignedInteger,
  encodeUtcTime,
  integerContent,
  oidContent,
  oidToString,
  positiveIntegerMagnitude,
  readElement,
  readSingleElement,
  timeValue,
} from '../../../src/shared/der.js';

const hex = (h: string): Buffer => Buffer.from(h.replace(/\s/g, ''), 'hex');

describe('readElement', () => {
  it.each([
    ['short-form length', '0403 010203', { tag: 0x04, contentStart: 2, end: 5 }],
    [
      'long-form length of 128',
      '0481 80' + '00'.repeat(128),
      { tag: 0x04, contentStart: 3, end: 131 },
    ],
    ['two-octet length', '0482 0100' + '00'.repeat(256), { tag: 0x04, contentStart: 4, end: 260 }],
    ['zero length', '0500', { tag: 0x05, contentStart: 2, end: 2 }],
  ])('accepts a %s', (_name, input, expected) => {
    expect(readElement(hex(input), 0)).toEqual({ start: 0, ...expected });
  });

  it.each([
    ['an indefinite length', '3080 0000', 'indefinite length'],
    ['a long-form length below 128', '0481 05 0102030405', 'below 128'],
    ['a length with a leading zero octet', '0482 0080' + '00'.repeat(128), 'leading zero'],
    ['a high-tag-number tag', '1f2201 00', 'high-tag-number'],
    ['content running past the end', '0405 0102', 'runs past the end'],
    ['length octets running past the end', '0482 01', 'length octets run past'],
    ['five length octets', '0485 0000000001 00', 'uses 5 octets'],
    ['no length octet', '04', 'no length octet'],
    ['nothing at all', '', 'input ended'],
  ])('refuses %s', (_name, input, fragment) => {
    expect(() => readElement(hex(input), 0)).toThrow(DerError);
    expect(() => readElement(hex(input), 0)).toThrow(fragment);
  });

  it('refuses an element that fits the buffer but not its container limit', () => {
    expect(() => readElement(hex('0403 010203 00'), 0, 4)).toThrow(
      'runs past the end of its container',
    );
  });

  it('never throws anything but DerError on arbitrary bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (bytes) => {
        try {
          const e = readElement(bytes, 0);
          expect(e.end).toBeLessThanOrEqual(bytes.length);
        } catch (err) {
          expect(err).toBeInstanceOf(DerError);
        }
      }),
    );
  });

  it('reads back what encodeTlv wrote, for any content length', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 70000 }), (length) => {
        const encoded = encodeTlv(DerTag.OCTET_STRING, new Uint8Array(length));
        const e = readElement(encoded, 0);
        expect(e.end - e.contentStart).toBe(length);
        expect(e.end).toBe(encoded.length);
      }),
      { numRuns: 50 },
    );
  });
});

describe('readSingleElement', () => {
  it('refuses trailing bytes after the element', () => {
    expect(() => readSingleElement(hex('3000 00'), DerTag.SEQUENCE, 'thing')).toThrow(
      '1 trailing bytes',
    );
  });
  it('refuses the wrong tag', () => {
    expect(() => readSingleElement(hex('3100'), DerTag.SEQUENCE, 'thing')).toThrow(
      'expected tag 0x30, found 0x31',
    );
  });
});

describe('DerCursor', () => {
  it('walks children in order and refuses leftovers', () => {
    const buf = hex('3006 020101 020102');
    const cursor = DerCursor.inside(buf, readSingleElement(buf, DerTag.SEQUENCE, 'seq'));
    cursor.next('first', DerTag.INTEGER);
    expect(() => cursor.finish('seq')).toThrow('unexpected extra fields');
    cursor.next('second', DerTag.INTEGER);
    expect(() => cursor.finish('seq')).not.toThrow();
    expect(() => cursor.next('third')).toThrow('third is missing');
  });

  it('refuses a child that overruns its parent even if the buffer is longer', () => {
    const buf = hex('3003 020201 02');
    const cursor = DerCursor.inside(buf, readElement(buf, 0, 5));
    expect(() => cursor.next('child')).toThrow('runs past the end of its container');
  });

  it('refuses to descend deeper than the depth limit', () => {
    let nested: Buffer = encodeSequence();
    for (let i = 0; i < 20; i++) nested = encodeSequence(nested);
    let cursor = DerCursor.inside(nested, readSingleElement(nested, DerTag.SEQUENCE, 'top'), 8);
    const descend = (): void => {
      for (;;) cursor = cursor.enter(cursor.next('child', DerTag.SEQUENCE), 'child');
    };
    expect(descend).toThrow('nesting deeper than 8');
    expect(cursor.depth).toBe(8);
  });

  it('refuses to enter a primitive element', () => {
    const buf = hex('3003 020101');
    const cursor = DerCursor.inside(buf, readSingleElement(buf, DerTag.SEQUENCE, 'seq'));
    expect(() => cursor.enter(cursor.next('int'), 'int')).toThrow('not constructed');
  });
});

describe('primitive decoders', () => {
  it.each([
    ['a redundant leading zero', '020200 01', 'not minimally encoded'],
    ['a redundant leading 0xff', '0202ff 80', 'not minimally encoded'],
    ['an empty INTEGER', '0200', 'empty INTEGER'],
  ])('INTEGER with %s is refused', (_name, input, fragment) => {
    const buf = hex(input);
    expect(() => integerContent(buf, readElement(buf, 0), 'n')).toThrow(fragment);
  });

  it('positive INTEGER magnitudes drop the sign octet and refuse zero and negatives', () => {
    const pos = hex('020300ff01');
    expect(
      Buffer.from(positiveIntegerMagnitude(pos, readElement(pos, 0), 'n')).toString('hex'),
    ).toBe('ff01');
    const zero = hex('020100');
    expect(() => positiveIntegerMagnitude(zero, readElement(zero, 0), 'n')).toThrow('is zero');
    const neg = hex('020180');
    expect(() => positiveIntegerMagnitude(neg, readElement(neg, 0), 'n')).toThrow('is negative');
  });

  it.each([
    ['more than 7 unused bits', '030208 00', 'declares 8 unused bits'],
    ['non-zero unused bits', '030201 01', 'non-zero unused bits'],
    ['no unused-bits octet', '0300', 'no unused-bits octet'],
    ['an empty string with unused bits', '030103', 'empty BIT STRING declares unused bits'],
  ])('BIT STRING with %s is refused', (_name, input, fragment) => {
    const buf = hex(input);
    expect(() => bitStringContent(buf, readElement(buf, 0), 'b')).toThrow(fragment);
  });

  it.each([
    ['empty', '0600', 'empty OBJECT IDENTIFIER'],
    ['truncated', '0602 2a86', 'truncated'],
    ['non-minimal arc', '0603 2a8001', 'not minimally encoded'],
  ])('an %s OID is refused', (_name, input, fragment) => {
    const buf = hex(input);
    expect(() => oidContent(buf, readElement(buf, 0), 'oid')).toThrow(fragment);
  });

  it.each([
    '1.2.840.10045.2.1',
    '1.3.101.112',
    '2.5.29.17',
    '1.3.6.1.4.1.311.60.2.1.3',
    '2.999.18446744073709551616',
  ])('OID %s round-trips', (oid) => {
    const encoded = encodeOid(oid);
    expect(oidToString(oidContent(encoded, readElement(encoded, 0), 'oid'))).toBe(oid);
  });

  it('encodes well-known OIDs as the standards do', () => {
    expect(encodeOid('1.2.840.10045.2.1').toString('hex')).toBe('06072a8648ce3d0201');
    expect(encodeOid('1.2.840.113549.1.1.11').toString('hex')).toBe('06092a864886f70d01010b');
  });
});

describe('times', () => {
  it.each([
    ['2049-12-31T23:59:59Z', '17', '491231235959Z'],
    ['2050-01-01T00:00:00Z', '18', '20500101000000Z'],
    ['1950-01-01T00:00:00Z', '17', '500101000000Z'],
    ['1949-12-31T23:59:59Z', '18', '19491231235959Z'],
    ['2026-03-04T05:06:07.999Z', '17', '260304050607Z'],
    ['9999-12-31T23:59:59Z', '18', '99991231235959Z'],
  ])('%s is encoded with tag 0x%s as %s (RFC 5280 §4.1.2.5)', (iso, tag, text) => {
    const encoded = encodeCertificateTime(Date.parse(iso));
    expect(encoded[0]?.toString(16)).toBe(tag);
    expect(encoded.subarray(2).toString('latin1')).toBe(text);
    expect(timeValue(encoded, readElement(encoded, 0), 't')).toBe(
      Math.floor(Date.parse(iso) / 1000) * 1000,
    );
  });

  it('refuses UTCTime outside 1950-2049', () => {
    expect(() => encodeUtcTime(Date.parse('2050-01-01T00:00:00Z'))).toThrow(TypeError);
    expect(() => encodeGeneralizedTime(Date.parse('+010000-01-01T00:00:00Z'))).toThrow(TypeError);
  });

  it.each([
    ['a fractional second', '18', '20500101000000.5Z'],
    ['a missing Z', '17', '500101000000'],
    ['February 30th', '17', '260230000000Z'],
    ['hour 24', '18', '20260101240000Z'],
    ['month 13', '17', '261301000000Z'],
    ['month 00', '17', '260001000000Z'],
  ])('refuses a time with %s', (_name, tag, text) => {
    const buf = encodeTlv(parseInt(tag, 16), Buffer.from(text, 'latin1'));
    expect(() => timeValue(buf, readElement(buf, 0), 't')).toThrow(DerError);
  });
});

describe('writer helpers', () => {
  it.each([
    [0, '00'],
    [127, '7f'],
    [128, '8180'],
    [255, '81ff'],
    [256, '820100'],
    [65535, '82ffff'],
    [65536, '83010000'],
  ])('length %i is encoded minimally as %s', (n, expected) => {
    expect(Buffer.from(encodeLength(n)).toString('hex')).toBe(expected);
  });

  it('encodes unsigned integers with a sign octet only when needed and no leading zeros', () => {
    expect(encodeUnsignedInteger(hex('80')).toString('hex')).toBe('02020080');
    expect(encodeUnsignedInteger(hex('00007f')).toString('hex')).toBe('02017f');
    expect(encodeUnsignedInteger(hex('0000')).toString('hex')).toBe('020100');
    expect(encodeSmallInteger(65537).toString('hex')).toBe('0203010001');
    expect(encodeSmallInteger(0).toString('hex')).toBe('020100');
  });
});
