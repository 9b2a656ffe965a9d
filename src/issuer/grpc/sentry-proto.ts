import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ServiceDefinition } from '@grpc/grpc-js';
import { loadSync, type Options } from '@grpc/proto-loader';

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

export function loadSentryServiceDefinition(
  protoRoot: string = findProtoRoot(),
): ServiceDefinition {
  const definition = loadSync(SENTRY_PROTO_FILE, {
    ...SENTRY_PROTO_LOADER_OPTIONS,
    includeDirs: [protoRoot],
  });
  const service = definition[SENTRY_SERVICE_NAME];
  if (!service || !('SignCertificate' in service))
    throw new Error(`${SENTRY_PROTO_FILE} does not define ${SENTRY_SERVICE_NAME}`);
  return service as unknown as ServiceDefinition;
}

/** SignCertificateRequest as decoded with SENTRY_PROTO_LOADER_OPTIONS. */
export interface SignCertificateRequestMessage {
  readonly id: string;
  readonly token: string;
  readonly trustDomain: string;
  readonly namespace: string;
  readonly certificateSigningRequest: Buffer;
  readonly tokenValidator: number;
  readonly jwtAudiences: readonly string[];
}

/** SignCertificateResponse as the handler fills it; the JWT fields only with --jwt-enabled. */
export interface SignCertificateResponseMessage {
  readonly workloadCertificate: Buffer;
  readonly trustChainCertificates: readonly Buffer[];
  readonly validUntil: { readonly seconds: number; readonly nanos: number };
  /** google.protobuf.StringValue, proto3 optional: absent (not empty) when JWT is not enabled. */
  readonly jwt?: { readonly value: string };
  /** map<string, google.protobuf.StringValue>, keyed by requested audience. */
  readonly perAudienceJwts?: Readonly<Record<string, { readonly value: string }>>;
}
