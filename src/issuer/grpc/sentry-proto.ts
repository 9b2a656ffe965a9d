import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { MethodDefinition, ServiceDefinition } from '@grpc/grpc-js';
import type { loadSync as LoadSync, Options } from '@grpc/proto-loader';
import {
  decodeSignCertificateRequest,
  encodeSignCertificateResponse,
  type SignCertificateResponseMessage,
} from './sentry-codec.js';

/** The proto file, relative to the proto root shipped in the package. */
export const SENTRY_PROTO_FILE = 'dapr/proto/sentry/v1/sentry.proto';
export const SENTRY_SERVICE_NAME = 'dapr.proto.sentry.v1.CA';
export const SIGN_CERTIFICATE_PATH = '/dapr.proto.sentry.v1.CA/SignCertificate';

/**
 * Finds `<package root>/proto` by walking up from this module: the same code runs from
 * dist/src/issuer/grpc/ in a checkout and from node_modules/warden/dist/... when installed,
 * and the package root is the nearest ancestor that holds the proto.
 */
export function findProtoRoot(fromUrl: string = import.meta.url): string {
  let dir = path.dirname(fileURLToPath(fromUrl));
  for (;;) {
    const candidate = path.join(dir, 'proto');
    if (existsSync(path.join(candidate, SENTRY_PROTO_FILE))) return candidate;
    const parent = path.dirname(dir);
    if (parent === dir)
      throw new Error(`cannot find proto/${SENTRY_PROTO_FILE} above ${fileURLToPath(fromUrl)}`);
    dir = parent;
  }
}

/**
 * Loader settings with Dapr's wire behaviour: camelCase field names (the handler reads
 * `certificateSigningRequest`), enums as numbers so an unknown TokenValidator stays visible
 * as its number instead of being dropped, int64 (Timestamp.seconds) as strings, and defaults
 * filled so an absent field reads as its proto3 zero value. google/protobuf/timestamp.proto
 * and wrappers.proto resolve from protobufjs's bundled well-known types.
 */
export const SENTRY_PROTO_LOADER_OPTIONS: Readonly<Options> = Object.freeze({
  keepCase: false,
  longs: String,
  enums: Number,
  bytes: Buffer,
  defaults: true,
  arrays: true,
  objects: true,
  oneofs: true,
});

/** The definition @grpc/proto-loader builds from sentry.proto with the options above. */
export function loadSentryServiceDefinitionFromProto(
  protoRoot: string = findProtoRoot(),
): ServiceDefinition {
  // Loaded on demand: the server's own directions do not need it (see below).
  const { loadSync } = createRequire(import.meta.url)('@grpc/proto-loader') as {
    loadSync: typeof LoadSync;
  };
  const definition = loadSync(SENTRY_PROTO_FILE, {
    ...SENTRY_PROTO_LOADER_OPTIONS,
    includeDirs: [protoRoot],
  });
  const service = definition[SENTRY_SERVICE_NAME];
  if (!service || !('SignCertificate' in service))
    throw new Error(`${SENTRY_PROTO_FILE} does not define ${SENTRY_SERVICE_NAME}`);
  return service as unknown as ServiceDefinition;
}

/**
 * The service as the server registers it. The directions the server uses (decoding requests,
 * encoding responses) are sentry-codec.ts, which reads and writes exactly what proto-loader
 * does without loading protobufjs or parsing the .proto at start-up (≈ 60 ms of CPU before
 * the first certificate: issue 7). The client directions (encoding requests, decoding
 * responses: tests and tools) come from proto-loader and the .proto, built on first use.
 */
export function loadSentryServiceDefinition(protoRoot?: string): ServiceDefinition {
  let fromProto: MethodDefinition<object, object> | null = null;
  const proto = (): MethodDefinition<object, object> =>
    (fromProto ??= loadSentryServiceDefinitionFromProto(protoRoot)[
      'SignCertificate'
    ] as MethodDefinition<object, object>);
  const method: MethodDefinition<object, object> = {
    path: SIGN_CERTIFICATE_PATH,
    requestStream: false,
    responseStream: false,
    originalName: 'signCertificate',
    requestSerialize: (request: object) => proto().requestSerialize(request),
    requestDeserialize: (bytes: Buffer) => decodeSignCertificateRequest(bytes),
    responseSerialize: (response: object) =>
      encodeSignCertificateResponse(response as SignCertificateResponseMessage),
    responseDeserialize: (bytes: Buffer) => proto().responseDeserialize(bytes),
  };
  return { SignCertificate: method };
}

export type {
  SignCertificateRequestMessage,
  SignCertificateResponseMessage,
} from './sentry-codec.js';
