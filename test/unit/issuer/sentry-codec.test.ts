import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import {
  decodeSignCertificateRequest,
  encodeSignCertificateResponse,
} from '../../../src/issuer/grpc/sentry-codec.js';
import {
  loadSentryServiceDefinition,
  loadSentryServiceDefinitionFromProto,
  type SignCertificateResponseMessage,
} from '../../../src/issuer/grpc/sentry-proto.js';

// The reference: @grpc/proto-loader (protobufjs) built from proto/.../sentry.proto.
const reference = loadSentryServiceDefinitionFromProto().SignCertificate!;

type Outcome = { ok: true; value: unknown } | { ok: false };

function outcome(decode: () => unknown): Outcome {
  try {
    return { ok: true, value: decode() };
  } catch {
    return { ok: false };
  }
}

/** Decodes with both; they must agree on accepting and, when accepting, on every field. */
function expectSameDecoding(bytes: Buffer): void {
  const ours = outcome(() => decodeSignCertificateRequest(bytes));
  const theirs = outcome(() => reference.requestDeserialize(bytes));
  expect(ours).toEqual(theirs);
}

const text = fc.oneof(fc.string(), fc.string({ unit: 'grapheme' }), fc.constant(''));
const request = fc.record(
  {
    id: text,
    token: text,
    trustDomain: text,
    namespace: text,
    certificateSigningRequest: fc.uint8Array({ maxLength: 300 }).map((b) => Buffer.from(b)),
    tokenValidator: fc.oneof(fc.integer({ min: 0, max: 3 }), fc.integer()),
    jwtAudiences: fc.array(text, { maxLength: 4 }),
  },
  { requiredKeys: [] },
);

/** Bytes that are mostly protobuf-shaped: tags, varints and length-prefixed runs. */
const protobufish = fc
  .array(
    fc.oneof(
      fc
        .tuple(fc.integer({ min: 0, max: 20 }), fc.integer({ min: 0, max: 7 }))
        .map(([field, wire]) => Buffer.from([(field << 3) | wire])),
      fc
        .integer({ min: 0, max: 300 })
        .map((n) => Buffer.from([(n & 0x7f) | (n > 127 ? 0x80 : 0), ...(n > 127 ? [n >> 7] : [])])),
      fc.uint8Array({ maxLength: 12 }).map((b) => Buffer.from(b)),
      fc.constant(Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01])),
    ),
    { maxLength: 12 },
  )
  .map((parts) => Buffer.concat(parts));

describe('SignCertificate codec (sentry-codec.ts against proto-loader from the .proto)', () => {
  it('decodes every well-formed request exactly as proto-loader does', () => {
    fc.assert(
      fc.property(request, (message) => {
        const bytes = reference.requestSerialize(message);
        expect(decodeSignCertificateRequest(bytes)).toEqual(reference.requestDeserialize(bytes));
      }),
      { numRuns: 400 },
    );
  });

  it('accepts and refuses exactly the byte strings proto-loader does, with the same fields', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.uint8Array({ maxLength: 64 }).map((b) => Buffer.from(b)),
          protobufish,
        ),
        (bytes) => expectSameDecoding(bytes),
      ),
      { numRuns: 3000 },
    );
  });

  it('agrees on mutated, truncated and extended encodings of real requests', () => {
    fc.assert(
      fc.property(
        request,
        fc.nat(),
        fc.integer({ min: 0, max: 255 }),
        fc.constantFrom('flip', 'truncate', 'append', 'insert'),
        (message, at, byte, how) => {
          const bytes = Buffer.from(reference.requestSerialize(message));
          const i = bytes.length === 0 ? 0 : at % bytes.length;
          const mutated =
            how === 'flip'
              ? Buffer.from(bytes.map((b, j) => (j === i ? b ^ byte : b)))
              : how === 'truncate'
                ? bytes.subarray(0, i)
                : how === 'append'
                  ? Buffer.concat([bytes, Buffer.from([byte, at & 0xff, 0x01])])
                  : Buffer.concat([bytes.subarray(0, i), Buffer.from([byte]), bytes.subarray(i)]);
          expectSameDecoding(mutated);
        },
      ),
      { numRuns: 3000 },
    );
  });

  it.each([
    ['a string field sent as a varint', '0896011a0161'],
    ['a string whose length runs past the end (protobufjs cuts it)', '0a0561'],
    ['bytes whose length runs past the end', '2a0561'],
    ['an unknown group with a nested group', '1b0b08011c0a01611c'],
    ['a wire type 4 at the top level', '0c'],
    ['wire types 6 and 7', '0e0f'],
    ['a 10-byte token_validator varint', '30ffffffffffffffffff01'],
    ['a negative token_validator', '30feffffffffffffffff01'],
    ['a repeated singular field (last wins) and repeated audiences', '0a01610a01623a01783a0179'],
    ['field number 0', '0001'],
    ['invalid UTF-8', '0a03ff6162'],
  ])('decodes %s as proto-loader does', (_name, hex) => {
    expectSameDecoding(Buffer.from(hex, 'hex'));
  });

  it('encodes every response the handler builds byte for byte as proto-loader does', () => {
    const response: fc.Arbitrary<SignCertificateResponseMessage> = fc.record({
      workloadCertificate: fc.uint8Array({ maxLength: 3000 }).map((b) => Buffer.from(b)),
      trustChainCertificates: fc.array(
        fc.uint8Array({ maxLength: 800 }).map((b) => Buffer.from(b)),
        { maxLength: 3 },
      ),
      validUntil: fc.record({
        seconds: fc.oneof(
          fc.integer({ min: 0, max: 2 ** 40 }),
          fc.integer(),
          fc.constantFrom(0, 2 ** 53 - 1, -(2 ** 53) + 1, 2 ** 63, -(2 ** 63)),
        ),
        nanos: fc.oneof(fc.integer({ min: 0, max: 999_999_999 }), fc.integer()),
      }),
      // JWT-SVIDs (--jwt-enabled): ASCII tokens and audiences, as the request rules allow.
      jwt: fc.option(fc.record({ value: fc.string({ maxLength: 400 }) }), { nil: undefined }),
      perAudienceJwts: fc.option(
        fc.dictionary(fc.string({ maxLength: 40 }), fc.record({ value: fc.string({ maxLength: 400 }) }), { maxKeys: 4 }),
        { nil: undefined },
      ),
    }).map((m) => {
      // An absent optional field is a missing property, as the handler builds it.
      const out: Record<string, unknown> = { ...m };
      for (const key of ['jwt', 'perAudienceJwts']) if (out[key] === undefined) delete out[key];
      return out as unknown as SignCertificateResponseMessage;
    });
    fc.assert(
      fc.property(response, (message) => {
        expect(encodeSignCertificateResponse(message).toString('hex')).toBe(
          Buffer.from(reference.responseSerialize(message)).toString('hex'),
        );
      }),
      { numRuns: 500 },
    );
  });

  it('is what the server registers, with proto-loader for the client directions', () => {
    const method = loadSentryServiceDefinition().SignCertificate!;
    expect(method.path).toBe(reference.path);
    expect([method.requestStream, method.responseStream]).toEqual([false, false]);
    const bytes = reference.requestSerialize({ id: 'a', namespace: 'ns', tokenValidator: 1 });
    expect(method.requestDeserialize(bytes)).toEqual(reference.requestDeserialize(bytes));
    expect(method.requestSerialize({ id: 'a' })).toEqual(reference.requestSerialize({ id: 'a' }));
  });
});
