/**
 * A small, strict DER reader and the writer helpers the certificate hot path needs.
 *
 * Why not a general ASN.1 library: building or parsing through a schema-driven object model
 * costs milliseconds per certificate (issue 7); the signing path only walks a few fixed
 * structures and emits bytes from pre-encoded templates. The reader is strict because its
 * input is untrusted (CSRs): definite lengths only, minimal length encoding, single-byte
 * tags, every element inside its parent's bounds, and a depth limit.
 *
 * The reader throws `DerError`; callers translate it into their own coded WardenError
 * (e.g. ERR_CSR_INVALID) because only they know what the bytes were meant to be.
 */

/** Universal and common context-specific tags (identifier octets). */
export const DerTag = {
  BOOLEAN: 0x01,
  INTEGER: 0x02,
  BIT_STRING: 0x03,
  OCTET_STRING: 0x04,
  NULL: 0x05,
  OID: 0x06,
  UTF8_STRING: 0x0c,
  PRINTABLE_STRING: 0x13,
  IA5_STRING: 0x16,
  UTC_TIME: 0x17,
  GENERALIZED_TIME: 0x18,
  SEQUENCE: 0x30,
  SET: 0x31,
} as const;

/** Context-specific tag number n, constructed (explicit tagging / constructed implicit). */
export function contextConstructedTag(n: number): number {
  if (!Number.isInteger(n) || n < 0 || n > 30)
    throw new TypeError(`context tag ${n} is out of range`);
  return 0xa0 | n;
}

/** Context-specific tag number n, primitive (implicit tagging of a primitive type). */
export function contextPrimitiveTag(n: number): number {
  if (!Number.isInteger(n) || n < 0 || n > 30)
    throw new TypeError(`context tag ${n} is out of range`);
  return 0x80 | n;
}

/** Malformed DER; `offset` is where in the input the problem was found. */
export class DerError extends Error {
  readonly offset: number;
  constructor(message: string, offset: number) {
    super(`${message} at offset ${offset}`);
    this.name = 'DerError';
    this.offset = offset;
  }
}

/** One tag-length-value element, located inside the buffer it was read from. */
export interface DerElement {
  /** The identifier octet. */
  readonly tag: number;
  /** Offset of the identifier octet. */
  readonly start: number;
  /** Offset of the first content octet. */
  readonly contentStart: number;
  /** Offset just after the last content octet. */
  readonly end: number;
}

/** Nesting deeper than this is refused (CSRs and certificates need far less). */
export const DEFAULT_MAX_DER_DEPTH = 16;

/** Largest length accepted: 4 length octets; the inputs here are capped far below it anyway. */
const MAX_LENGTH_OCTETS = 4;

/**
 * Reads one element at `offset` that must end at or before `limit`.
 * Refuses high-tag-number form, indefinite lengths, non-minimal lengths, overruns.
 */
export function readElement(
  buf: Uint8Array,
  offset: number,
  limit: number = buf.length,
): DerElement {
  if (limit > buf.length) throw new TypeError('limit is past the end of the buffer');
  if (offset >= limit) throw new DerError('expected an element but the input ended', offset);
  const tag = buf[offset] as number;
  if ((tag & 0x1f) === 0x1f) throw new DerError('high-tag-number form is not supported', offset);
  let pos = offset + 1;
  if (pos >= limit) throw new DerError('element has no length octet', pos);
  const first = buf[pos++] as number;
  let length: number;
  if (first < 0x80) {
    length = first;
  } else if (first === 0x80) {
    throw new DerError('indefinite length is not DER', pos - 1);
  } else {
    const count = first & 0x7f;
    if (count > MAX_LENGTH_OCTETS) throw new DerError(`length uses ${count} octets`, pos - 1);
    if (pos + count > limit) throw new DerError('length octets run past the end', pos - 1);
    if (buf[pos] === 0) throw new DerError('length has a leading zero octet (not minimal)', pos);
    length = 0;
    for (let i = 0; i < count; i++) length = length * 256 + (buf[pos++] as number);
    if (length < 0x80)
      throw new DerError('long-form length below 128 (not minimal)', pos - count - 1);
  }
  const end = pos + length;
  if (end > limit)
    throw new DerError(`element of length ${length} runs past the end of its container`, offset);
  return { tag, start: offset, contentStart: pos, end };
}

/** Content octets of an element (a view, not a copy). */
export function contentOf(buf: Uint8Array, element: DerElement): Uint8Array {
  return buf.subarray(element.contentStart, element.end);
}

/** The whole encoding of an element, tag and length included (a view, not a copy). */
export function encodingOf(buf: Uint8Array, element: DerElement): Uint8Array {
  return buf.subarray(element.start, element.end);
}

/**
 * Reads the single element that must make up all of `buf` (no trailing bytes).
 */
export function readSingleElement(buf: Uint8Array, expectedTag: number, what: string): DerElement {
  const element = readElement(buf, 0, buf.length);
  if (element.tag !== expectedTag)
    throw new DerError(
      `${what}: expected tag 0x${hex2(expectedTag)}, found 0x${hex2(element.tag)}`,
      0,
    );
  if (element.end !== buf.length)
    throw new DerError(
      `${what}: ${buf.length - element.end} trailing bytes after the element`,
      element.end,
    );
  return element;
}

/**
 * Reads the children of a constructed element in order. Each call to `next` consumes one
 * child; `finish` asserts that the children fill the parent exactly.
 */
export class DerCursor {
  readonly buf: Uint8Array;
  readonly depth: number;
  readonly #start: number;
  readonly #limit: number;
  readonly #maxDepth: number;
  #pos: number;

  private constructor(
    buf: Uint8Array,
    start: number,
    limit: number,
    depth: number,
    maxDepth: number,
  ) {
    if (depth > maxDepth) throw new DerError(`nesting deeper than ${maxDepth}`, start);
    this.buf = buf;
    this.#start = start;
    this.#pos = start;
    this.#limit = limit;
    this.depth = depth;
    this.#maxDepth = maxDepth;
  }

  /** A cursor over the children of `element`, which must be constructed. */
  static inside(
    buf: Uint8Array,
    element: DerElement,
    maxDepth: number = DEFAULT_MAX_DER_DEPTH,
  ): DerCursor {
    if ((element.tag & 0x20) === 0)
      throw new DerError(
        `element with tag 0x${hex2(element.tag)} is not constructed`,
        element.start,
      );
    return new DerCursor(buf, element.contentStart, element.end, 1, maxDepth);
  }

  /** A cursor one level deeper, over the children of a child element. */
  enter(element: DerElement, what: string): DerCursor {
    if ((element.tag & 0x20) === 0) throw new DerError(`${what} is not constructed`, element.start);
    if (element.start < this.#start || element.end > this.#limit)
      throw new TypeError('element is not inside this cursor');
    return new DerCursor(
      this.buf,
      element.contentStart,
      element.end,
      this.depth + 1,
      this.#maxDepth,
    );
  }

  get hasMore(): boolean {
    return this.#pos < this.#limit;
  }

  /** Peeks at the next child's tag, or undefined at the end. */
  peekTag(): number | undefined {
    return this.#pos < this.#limit ? this.buf[this.#pos] : undefined;
  }

  /** The next child; with `expectedTag`, refuses any other tag. */
  next(what: string, expectedTag?: number): DerElement {
    if (this.#pos >= this.#limit) throw new DerError(`${what} is missing`, this.#pos);
    const element = readElement(this.buf, this.#pos, this.#limit);
    if (expectedTag !== undefined && element.tag !== expectedTag) {
      throw new DerError(
        `${what}: expected tag 0x${hex2(expectedTag)}, found 0x${hex2(element.tag)}`,
        element.start,
      );
    }
    this.#pos = element.end;
    return element;
  }

  /** The next child if it has `tag`, else undefined (nothing consumed). */
  optional(tag: number): DerElement | undefined {
    if (this.peekTag() !== tag) return undefined;
    const element = readElement(this.buf, this.#pos, this.#limit);
    this.#pos = element.end;
    return element;
  }

  /** Asserts that every child has been consumed. */
  finish(what: string): void {
    if (this.#pos !== this.#limit)
      throw new DerError(`${what} has unexpected extra fields`, this.#pos);
  }
}

// ---------------------------------------------------------------------------------------------
// Primitive decoders (strict DER)

/** INTEGER content checked for minimal two's-complement encoding; returns the content octets. */
export function integerContent(buf: Uint8Array, element: DerElement, what: string): Uint8Array {
  if (element.tag !== DerTag.INTEGER)
    throw new DerError(`${what} is not an INTEGER`, element.start);
  const c = contentOf(buf, element);
  if (c.length === 0) throw new DerError(`${what} is an empty INTEGER`, element.start);
  if (c.length > 1) {
    const a = c[0] as number;
    const b = c[1] as number;
    if ((a === 0x00 && b < 0x80) || (a === 0xff && b >= 0x80))
      throw new DerError(`${what} INTEGER is not minimally encoded`, element.contentStart);
  }
  return c;
}

/** The magnitude of a positive INTEGER (without the sign octet); refuses zero and negatives. */
export function positiveIntegerMagnitude(
  buf: Uint8Array,
  element: DerElement,
  what: string,
): Uint8Array {
  const c = integerContent(buf, element, what);
  if (((c[0] as number) & 0x80) !== 0)
    throw new DerError(`${what} is negative`, element.contentStart);
  const magnitude = c[0] === 0 ? c.subarray(1) : c;
  if (magnitude.length === 0) throw new DerError(`${what} is zero`, element.contentStart);
  return magnitude;
}

/** A small non-negative INTEGER as a number (e.g. a version field). */
export function smallInteger(buf: Uint8Array, element: DerElement, what: string): number {
  const c = integerContent(buf, element, what);
  if (c.length > 4 || ((c[0] as number) & 0x80) !== 0)
    throw new DerError(`${what} is out of range`, element.contentStart);
  let n = 0;
  for (const byte of c) n = n * 256 + byte;
  return n;
}

/** Bit length of an unsigned big-endian magnitude with no leading zero octet. */
export function bitLength(magnitude: Uint8Array): number {
  if (magnitude.length === 0) return 0;
  const top = magnitude[0] as number;
  return (magnitude.length - 1) * 8 + (32 - Math.clz32(top));
}

/** OBJECT IDENTIFIER content, checked for a well-formed encoding. */
export function oidContent(buf: Uint8Array, element: DerElement, what: string): Uint8Array {
  if (element.tag !== DerTag.OID)
    throw new DerError(`${what} is not an OBJECT IDENTIFIER`, element.start);
  const c = contentOf(buf, element);
  if (c.length === 0) throw new DerError(`${what} is an empty OBJECT IDENTIFIER`, element.start);
  if (((c[c.length - 1] as number) & 0x80) !== 0)
    throw new DerError(`${what} OBJECT IDENTIFIER is truncated`, element.start);
  let startOfArc = true;
  for (const byte of c) {
    if (startOfArc && byte === 0x80)
      throw new DerError(`${what} OBJECT IDENTIFIER arc is not minimally encoded`, element.start);
    startOfArc = (byte & 0x80) === 0;
  }
  return c;
}

/** Dotted text of OID content octets (for messages; input must come from `oidContent`). */
export function oidToString(content: Uint8Array): string {
  const arcs: string[] = [];
  let value = 0n;
  let first = true;
  for (const byte of content) {
    value = (value << 7n) | BigInt(byte & 0x7f);
    if ((byte & 0x80) === 0) {
      if (first) {
        const head = value < 40n ? 0n : value < 80n ? 1n : 2n;
        arcs.push(head.toString(), (value - head * 40n).toString());
        first = false;
      } else {
        arcs.push(value.toString());
      }
      value = 0n;
    }
  }
  return arcs.join('.');
}

/** BIT STRING content: unused-bit count and the bit octets; unused bits must be zero (DER). */
export function bitStringContent(
  buf: Uint8Array,
  element: DerElement,
  what: string,
): { unusedBits: number; bytes: Uint8Array } {
  if (element.tag !== DerTag.BIT_STRING)
    throw new DerError(`${what} is not a BIT STRING`, element.start);
  const c = contentOf(buf, element);
  if (c.length === 0)
    throw new DerError(`${what} BIT STRING has no unused-bits octet`, element.start);
  const unusedBits = c[0] as number;
  if (unusedBits > 7)
    throw new DerError(
      `${what} BIT STRING declares ${unusedBits} unused bits`,
      element.contentStart,
    );
  const bytes = c.subarray(1);
  if (bytes.length === 0 && unusedBits !== 0)
    throw new DerError(`${what} empty BIT STRING declares unused bits`, element.contentStart);
  if (unusedBits !== 0 && ((bytes[bytes.length - 1] as number) & ((1 << unusedBits) - 1)) !== 0) {
    throw new DerError(`${what} BIT STRING has non-zero unused bits`, element.end - 1);
  }
  return { unusedBits, bytes };
}

/** Checks a NULL element (no content). */
export function expectNull(element: DerElement, what: string): void {
  if (element.tag !== DerTag.NULL) throw new DerError(`${what} is not NULL`, element.start);
  if (element.end !== element.contentStart)
    throw new DerError(`${what} NULL has content`, element.contentStart);
}

/**
 * UTCTime or GeneralizedTime in the form RFC 5280 §4.1.2.5 requires (seconds, "Z", no
 * fraction) as milliseconds since the epoch. UTCTime years 50-99 are 1950-1999.
 */
export function timeValue(buf: Uint8Array, element: DerElement, what: string): number {
  const c = contentOf(buf, element);
  let text = '';
  for (const byte of c) text += String.fromCharCode(byte);
  let year: number;
  let rest: string;
  if (element.tag === DerTag.UTC_TIME) {
    if (!/^\d{12}Z$/.test(text))
      throw new DerError(`${what} UTCTime is not YYMMDDHHMMSSZ`, element.contentStart);
    const yy = Number(text.slice(0, 2));
    year = yy >= 50 ? 1900 + yy : 2000 + yy;
    rest = text.slice(2);
  } else if (element.tag === DerTag.GENERALIZED_TIME) {
    if (!/^\d{14}Z$/.test(text))
      throw new DerError(`${what} GeneralizedTime is not YYYYMMDDHHMMSSZ`, element.contentStart);
    year = Number(text.slice(0, 4));
    rest = text.slice(4);
  } else {
    throw new DerError(`${what} is not a UTCTime or GeneralizedTime`, element.start);
  }
  const month = Number(rest.slice(0, 2));
  const day = Number(rest.slice(2, 4));
  const hour = Number(rest.slice(4, 6));
  const minute = Number(rest.slice(6, 8));
  const second = Number(rest.slice(8, 10));
  const ms = Date.UTC(year, month - 1, day, hour, minute, second);
  const check = new Date(ms);
  // Date.UTC silently rolls over (month 13, Feb 30, hour 24); refuse such dates.
  if (
    month < 1 ||
    check.getUTCFullYear() !== year ||
    check.getUTCMonth() !== month - 1 ||
    check.getUTCDate() !== day ||
    check.getUTCHours() !== hour ||
    check.getUTCMinutes() !== minute ||
    check.getUTCSeconds() !== second
  ) {
    throw new DerError(`${what} is not a valid date`, element.contentStart);
  }
  return ms;
}

// ---------------------------------------------------------------------------------------------
// Writer helpers

/** The length octets for a content of `length` bytes (definite, minimal). */
export function encodeLength(length: number): Uint8Array {
  if (!Number.isSafeInteger(length) || length < 0)
    throw new TypeError(`invalid DER length ${length}`);
  if (length < 0x80) return Uint8Array.of(length);
  const octets: number[] = [];
  for (let n = length; n > 0; n = Math.floor(n / 256)) octets.unshift(n % 256);
  if (octets.length > MAX_LENGTH_OCTETS) throw new TypeError(`DER length ${length} is too large`);
  return Uint8Array.from([0x80 | octets.length, ...octets]);
}

/** An element from a tag and its content parts (concatenated). */
export function encodeTlv(tag: number, ...parts: readonly Uint8Array[]): Buffer {
  let length = 0;
  for (const p of parts) length += p.length;
  const header = encodeLength(length);
  const out = Buffer.allocUnsafe(1 + header.length + length);
  out[0] = tag;
  out.set(header, 1);
  let pos = 1 + header.length;
  for (const p of parts) {
    out.set(p, pos);
    pos += p.length;
  }
  return out;
}

export function encodeSequence(...parts: readonly Uint8Array[]): Buffer {
  return encodeTlv(DerTag.SEQUENCE, ...parts);
}

export function encodeOctetString(bytes: Uint8Array): Buffer {
  return encodeTlv(DerTag.OCTET_STRING, bytes);
}

/** BIT STRING with the given unused-bit count (the unused bits of `bytes` must already be 0). */
export function encodeBitString(bytes: Uint8Array, unusedBits = 0): Buffer {
  if (!Number.isInteger(unusedBits) || unusedBits < 0 || unusedBits > 7)
    throw new TypeError('unusedBits must be 0..7');
  if (bytes.length === 0 && unusedBits !== 0)
    throw new TypeError('an empty BIT STRING has no unused bits');
  return encodeTlv(DerTag.BIT_STRING, Uint8Array.of(unusedBits), bytes);
}

export const DER_NULL: Uint8Array = Uint8Array.of(0x05, 0x00);

export function encodeBoolean(value: boolean): Buffer {
  return encodeTlv(DerTag.BOOLEAN, Uint8Array.of(value ? 0xff : 0x00));
}

/** INTEGER from an unsigned big-endian magnitude (leading zeros stripped, sign octet added). */
export function encodeUnsignedInteger(magnitude: Uint8Array): Buffer {
  let i = 0;
  while (i < magnitude.length - 1 && magnitude[i] === 0) i++;
  const trimmed = magnitude.length === 0 ? Uint8Array.of(0) : magnitude.subarray(i);
  if (((trimmed[0] as number) & 0x80) !== 0)
    return encodeTlv(DerTag.INTEGER, Uint8Array.of(0), trimmed);
  return encodeTlv(DerTag.INTEGER, trimmed);
}

/** INTEGER from a small non-negative number. */
export function encodeSmallInteger(value: number): Buffer {
  if (!Number.isSafeInteger(value) || value < 0)
    throw new TypeError(`encodeSmallInteger takes a non-negative safe integer, got ${value}`);
  const octets: number[] = [];
  let n = value;
  do {
    octets.unshift(n % 256);
    n = Math.floor(n / 256);
  } while (n > 0);
  return encodeUnsignedInteger(Uint8Array.from(octets));
}

/** OBJECT IDENTIFIER from dotted text. */
export function encodeOid(dotted: string): Buffer {
  if (!/^[0-2](\.(0|[1-9]\d*))+$/.test(dotted)) throw new TypeError(`invalid OID "${dotted}"`);
  const arcs = dotted.split('.').map((a) => BigInt(a));
  const [a0, a1] = arcs as [bigint, bigint];
  if (a0 < 2n && a1 >= 40n) throw new TypeError(`invalid OID "${dotted}"`);
  const values = [a0 * 40n + a1, ...arcs.slice(2)];
  const out: number[] = [];
  for (const v of values) {
    const group: number[] = [Number(v & 0x7fn)];
    for (let rest = v >> 7n; rest > 0n; rest >>= 7n) group.unshift(Number(rest & 0x7fn) | 0x80);
    out.push(...group);
  }
  return encodeTlv(DerTag.OID, Uint8Array.from(out));
}

/** IA5String (ASCII only). */
export function encodeIa5String(text: string, tag: number = DerTag.IA5_STRING): Buffer {
  for (let i = 0; i < text.length; i++) {
    if (text.charCodeAt(i) > 0x7f) throw new TypeError('IA5String takes ASCII only');
  }
  return encodeTlv(tag, Buffer.from(text, 'latin1'));
}

/** [n] EXPLICIT wrapper. */
export function encodeExplicit(n: number, ...parts: readonly Uint8Array[]): Buffer {
  return encodeTlv(contextConstructedTag(n), ...parts);
}

function pad(n: number, width: number): string {
  return n.toString().padStart(width, '0');
}

/** UTCTime YYMMDDHHMMSSZ (years 1950-2049 only; milliseconds are truncated). */
export function encodeUtcTime(ms: number): Buffer {
  const d = new Date(ms);
  const year = d.getUTCFullYear();
  if (!Number.isFinite(ms) || year < 1950 || year > 2049)
    throw new TypeError(`UTCTime cannot encode year ${year}`);
  const text = `${pad(year % 100, 2)}${pad(d.getUTCMonth() + 1, 2)}${pad(d.getUTCDate(), 2)}${pad(d.getUTCHours(), 2)}${pad(d.getUTCMinutes(), 2)}${pad(d.getUTCSeconds(), 2)}Z`;
  return encodeTlv(DerTag.UTC_TIME, Buffer.from(text, 'latin1'));
}

/** GeneralizedTime YYYYMMDDHHMMSSZ (no fraction, per RFC 5280; milliseconds are truncated). */
export function encodeGeneralizedTime(ms: number): Buffer {
  const d = new Date(ms);
  const year = d.getUTCFullYear();
  if (!Number.isFinite(ms) || year < 0 || year > 9999)
    throw new TypeError(`GeneralizedTime cannot encode year ${year}`);
  const text = `${pad(year, 4)}${pad(d.getUTCMonth() + 1, 2)}${pad(d.getUTCDate(), 2)}${pad(d.getUTCHours(), 2)}${pad(d.getUTCMinutes(), 2)}${pad(d.getUTCSeconds(), 2)}Z`;
  return encodeTlv(DerTag.GENERALIZED_TIME, Buffer.from(text, 'latin1'));
}

/** RFC 5280 §4.1.2.5: UTCTime for 1950 through 2049, GeneralizedTime otherwise. */
export function encodeCertificateTime(ms: number): Buffer {
  const year = new Date(ms).getUTCFullYear();
  return year >= 1950 && year <= 2049 ? encodeUtcTime(ms) : encodeGeneralizedTime(ms);
}

function hex2(n: number): string {
  return n.toString(16).padStart(2, '0');
}
