/**
 * The two messages the server side of SignCertificate reads and writes, by hand.
 *
 * Why: @grpc/proto-loader loads protobufjs and parses sentry.proto at start-up, ≈ 60 ms of
 * the main thread's CPU before the first certificate (issue 7: cold start ≤ 300 ms), for two
 * small messages. This module decodes SignCertificateRequest and encodes
 * SignCertificateResponse exactly as proto-loader does with SENTRY_PROTO_LOADER_OPTIONS:
 * the reading rules below are those of protobufjs 7's Reader and generated decoder (which
 * fields are lenient, which throw), and the writer emits the bytes protobufjs emits.
 * test/unit/issuer/sentry-codec.test.ts checks both against proto-loader built from the
 * .proto file, on generated messages and on arbitrary and mutated bytes; the .proto stays
 * the contract. Client directions (request encoding, response decoding) still use
 * proto-loader (sentry-proto.ts), loaded only when used.
 */

/** SignCertificateRequest as decoded with SENTRY_PROTO_LOADER_OPTIONS (sentry-proto.ts). */
export interface SignCertificateRequestMessage {
  readonly id: string;
  readonly token: string;
  readonly trustDomain: string;
  readonly namespace: string;
  readonly certificateSigningRequest: Buffer;
  readonly tokenValidator: number;
  readonly jwtAudiences: readonly string[];
}

/** SignCertificateResponse as the handler fills it; JWT fields stay unset until JWT issuance exists. */
export interface SignCertificateResponseMessage {
  readonly workloadCertificate: Buffer;
  readonly trustChainCertificates: readonly Buffer[];
  readonly validUntil: { readonly seconds: number; readonly nanos: number };
  /** google.protobuf.StringValue, proto3 optional: absent (not empty) when JWT is not enabled. */
  readonly jwt?: { readonly value: string };
  /** map<string, google.protobuf.StringValue>, keyed by requested audience. */
  readonly perAudienceJwts?: Readonly<Record<string, { readonly value: string }>>;
}

/** protobufjs's util.recursionLimit: how deep skipped groups may nest. */
const RECURSION_LIMIT = 100;

function outOfRange(reader: ProtoReader, length = 1): RangeError {
  return new RangeError(`index out of range: ${reader.pos} + ${length} > ${reader.len}`);
}

/** protobufjs's BufferReader, the parts the request needs, with its exact bounds rules. */
class ProtoReader {
  readonly buf: Buffer;
  readonly len: number;
  pos = 0;

  constructor(buf: Buffer) {
    this.buf = buf;
    this.len = buf.length;
  }

  #varint32NearEnd(): number {
    let value = 0;
    for (let i = 0; i < 4; ++i) {
      if (this.pos >= this.len) throw outOfRange(this);
      const b = this.buf[this.pos++] as number;
      value = (value | ((b & 127) << (i * 7))) >>> 0;
      if (b < 128) return value;
    }
    throw outOfRange(this);
  }

  uint32(): number {
    const buf = this.buf;
    if (this.len - this.pos < 5) {
      if (this.pos >= this.len) throw outOfRange(this);
      if ((buf[this.pos] as number) >= 128) return this.#varint32NearEnd();
    }
    let value = ((buf[this.pos] as number) & 127) >>> 0;
    if ((buf[this.pos++] as number) < 128) return value;
    value = (value | (((buf[this.pos] as number) & 127) << 7)) >>> 0;
    if ((buf[this.pos++] as number) < 128) return value;
    value = (value | (((buf[this.pos] as number) & 127) << 14)) >>> 0;
    if ((buf[this.pos++] as number) < 128) return value;
    value = (value | (((buf[this.pos] as number) & 127) << 21)) >>> 0;
    if ((buf[this.pos++] as number) < 128) return value;
    value = (value | (((buf[this.pos] as number) & 15) << 28)) >>> 0;
    if ((buf[this.pos++] as number) < 128) return value;
    // A 10-byte varint: protobufjs keeps the low 32 bits and skips the rest unread.
    if ((this.pos += 5) > this.len) {
      this.pos = this.len;
      throw outOfRange(this, 10);
    }
    return value;
  }

  int32(): number {
    return this.uint32() | 0;
  }

  /** Bytes as a view into the message (protobufjs: Buffer#slice), strictly bounded. */
  bytes(): Buffer {
    const length = this.uint32();
    const start = this.pos;
    const end = this.pos + length;
    if (end > this.len) throw outOfRange(this, length);
    this.pos += length;
    if (start === end) return Buffer.alloc(0);
    return this.buf.subarray(start, end);
  }

  /** UTF-8 text; like protobufjs's BufferReader, a length past the end is cut at the end. */
  string(): string {
    const length = this.uint32();
    const start = this.pos;
    this.pos = Math.min(this.pos + length, this.len);
    return this.buf.toString('utf8', start, this.pos);
  }

  skip(length?: number): void {
    if (length !== undefined) {
      if (this.pos + length > this.len) throw outOfRange(this, length);
      this.pos += length;
      return;
    }
    do {
      if (this.pos >= this.len) throw outOfRange(this);
    } while ((this.buf[this.pos++] as number) & 128);
  }

  skipType(wireType: number, depth = 0): void {
    if (depth > RECURSION_LIMIT) throw new Error('maximum nesting depth exceeded');
    switch (wireType) {
      case 0:
        this.skip();
        return;
      case 1:
        this.skip(8);
        return;
      case 2:
        this.skip(this.uint32());
        return;
      case 3:
        while ((wireType = this.uint32() & 7) !== 4) this.skipType(wireType, depth + 1);
        return;
      case 5:
        this.skip(4);
        return;
      default:
        throw new Error(`invalid wire type ${wireType} at offset ${this.pos}`);
    }
  }
}

/**
 * SignCertificateRequest as proto-loader decodes it (camelCase, enums as numbers, bytes as
 * Buffer, every field defaulted). Like protobufjs's generated decoder, a known field number
 * is read as its declared type whatever its wire type says, repeated jwt_audiences
 * accumulate, a later singular field wins, and unknown fields are skipped.
 */
export function decodeSignCertificateRequest(bytes: Buffer): SignCertificateRequestMessage {
  const r = new ProtoReader(bytes);
  let id = '';
  let token = '';
  let trustDomain = '';
  let namespace = '';
  let certificateSigningRequest: Buffer = Buffer.alloc(0);
  let tokenValidator = 0;
  const jwtAudiences: string[] = [];
  while (r.pos < r.len) {
    const tag = r.uint32();
    switch (tag >>> 3) {
      case 1:
        id = r.string();
        break;
      case 2:
        token = r.string();
        break;
      case 3:
        trustDomain = r.string();
        break;
      case 4:
        namespace = r.string();
        break;
      case 5:
        certificateSigningRequest = r.bytes();
        break;
      case 6:
        tokenValidator = r.int32();
        break;
      case 7:
        jwtAudiences.push(r.string());
        break;
      default:
        r.skipType(tag & 7, 0);
        break;
    }
  }
  return {
    id,
    token,
    trustDomain,
    namespace,
    certificateSigningRequest,
    tokenValidator,
    jwtAudiences,
  };
}

function varintLength(value: number): number {
  return value < 128 ? 1 : value < 16384 ? 2 : value < 2097152 ? 3 : value < 268435456 ? 4 : 5;
}

const TWO_POW_63 = 2 ** 63;

/**
 * A varint of a 64-bit two's-complement value, as protobufjs writes int64 (through
 * Long.fromValue: NaN is 0, fractions truncate, out-of-range values saturate) and negative
 * int32.
 */
function int64Varint(value: number): Buffer {
  const whole = Number.isNaN(value)
    ? 0n
    : value <= -TWO_POW_63
      ? -(2n ** 63n)
      : value + 1 >= TWO_POW_63
        ? 2n ** 63n - 1n
        : BigInt(Math.trunc(value));
  let bits = BigInt.asUintN(64, whole);
  const out: number[] = [];
  while (bits > 127n) {
    out.push(Number(bits & 127n) | 128);
    bits >>= 7n;
  }
  out.push(Number(bits));
  return Buffer.from(out);
}

function uint32Varint(value: number): Buffer {
  const out = Buffer.allocUnsafe(varintLength(value));
  let i = 0;
  while (value > 127) {
    out[i++] = (value & 127) | 128;
    value >>>= 7;
  }
  out[i] = value;
  return out;
}

function bytesField(tag: number, value: Uint8Array): Buffer[] {
  return [
    Buffer.from([tag]),
    uint32Varint(value.length >>> 0),
    Buffer.from(value.buffer, value.byteOffset, value.byteLength),
  ];
}

/**
 * SignCertificateResponse as proto-loader encodes the handler's object: workload_certificate
 * (written even when empty), each trust_chain_certificates entry, and valid_until with both
 * Timestamp fields written (protobufjs writes what the object sets, zeros included).
 */
export function encodeSignCertificateResponse(message: SignCertificateResponseMessage): Buffer {
  const parts: Buffer[] = [];
  if (message.workloadCertificate != null)
    parts.push(...bytesField(0x0a, message.workloadCertificate));
  for (const certificate of message.trustChainCertificates ?? [])
    parts.push(...bytesField(0x12, certificate));
  if (message.validUntil != null) {
    const { seconds, nanos } = message.validUntil;
    const timestamp: Buffer[] = [];
    if (seconds != null) timestamp.push(Buffer.from([0x08]), int64Varint(Number(seconds)));
    if (nanos != null) {
      const n = nanos | 0;
      timestamp.push(Buffer.from([0x10]), n < 0 ? int64Varint(n) : uint32Varint(n));
    }
    const body = Buffer.concat(timestamp);
    parts.push(Buffer.from([0x1a]), uint32Varint(body.length), body);
  }
  // jwt = 4 (a StringValue message), then per_audience_jwts = 5: one map entry message per key
  // in insertion order, key = 1 and value = 2 always written, as protobufjs writes them.
  if (message.jwt != null) parts.push(...bytesField(0x22, stringValue(message.jwt.value)));
  const perAudience = message.perAudienceJwts ?? {};
  for (const audience of Object.keys(perAudience)) {
    const entry = Buffer.concat([
      ...bytesField(0x0a, Buffer.from(audience, 'utf8')),
      ...bytesField(0x12, stringValue(perAudience[audience]?.value)),
    ]);
    parts.push(...bytesField(0x2a, entry));
  }
  return Buffer.concat(parts);
}

/** google.protobuf.StringValue's body: `value` = 1 whenever it is set, even when empty. */
function stringValue(value: string | undefined): Buffer {
  if (value == null) return Buffer.alloc(0);
  return Buffer.concat(bytesField(0x0a, Buffer.from(value, 'utf8')));
}
