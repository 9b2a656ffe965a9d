import path from 'node:path';
import type { PeerCertificate } from 'node:tls';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';

/**
 * A SignCertificate client built only from proto/dapr/proto/sentry/v1/sentry.proto (nothing
 * from src/), with its own loader settings (snake_case fields, enum names), verifying the
 * server like daprd does: the chain against the trust anchors and the peer's SPIFFE ID.
 */

// dist/test/support/ → the repository root.
const PROTO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../proto');

const definition = protoLoader.loadSync('dapr/proto/sentry/v1/sentry.proto', {
  includeDirs: [PROTO_ROOT],
  keepCase: true,
  longs: String,
  enums: String,
  defaults: true,
  oneofs: true,
});
type ClientConstructor = new (
  address: string,
  credentials: grpc.ChannelCredentials,
  options?: grpc.ChannelOptions,
) => grpc.Client;
const loaded = grpc.loadPackageDefinition(definition) as unknown as {
  dapr: { proto: { sentry: { v1: { CA: ClientConstructor } } } };
};
const CaClient = loaded.dapr.proto.sentry.v1.CA;

export interface WireSignRequest {
  id?: string;
  token?: string;
  trust_domain?: string;
  namespace?: string;
  certificate_signing_request?: Buffer;
  /** An enum name, or a raw number (to send values outside the enum). */
  token_validator?: 'UNKNOWN' | 'INSECURE' | 'KUBERNETES' | 'JWKS' | number;
  jwt_audiences?: string[];
}

export interface WireSignResponse {
  workload_certificate: Buffer;
  trust_chain_certificates: Buffer[];
  valid_until: { seconds: string; nanos: number } | null;
  jwt?: { value: string } | null;
  per_audience_jwts: Record<string, { value: string }>;
}

export interface SentryTestClient {
  sign(request: WireSignRequest, deadlineMs?: number): Promise<WireSignResponse>;
  /** Peer certificates seen in TLS handshakes on this client's connections, in order. */
  readonly handshakes: PeerCertificate[];
  close(): void;
}

/** URI SANs of a peer certificate, parsed from Node's subjectaltname string. */
export function uriSans(cert: PeerCertificate): string[] {
  return (cert.subjectaltname ?? '')
    .split(', ')
    .filter((entry) => entry.startsWith('URI:'))
    .map((entry) => entry.slice(4));
}

export function createSentryTestClient(options: {
  address: string;
  anchorsPem: string;
  expectedSpiffeId: string;
}): SentryTestClient {
  const handshakes: PeerCertificate[] = [];
  const credentials = grpc.credentials.createSsl(Buffer.from(options.anchorsPem), null, null, {
    // Dapr clients pin the CA's SPIFFE ID instead of a host name.
    checkServerIdentity: (_host, cert) => {
      handshakes.push(cert);
      const uris = uriSans(cert);
      if (uris.length !== 1 || uris[0] !== options.expectedSpiffeId) {
        return new Error(
          `server SPIFFE ID ${JSON.stringify(uris)} is not ${options.expectedSpiffeId}`,
        );
      }
      return undefined;
    },
  });
  // A private subchannel pool: each test client opens its own connection.
  const client = new CaClient(options.address, credentials, {
    'grpc.use_local_subchannel_pool': 1,
  });
  const method = (
    client as unknown as Record<
      string,
      (
        req: WireSignRequest,
        meta: grpc.Metadata,
        opts: grpc.CallOptions,
        cb: (err: grpc.ServiceError | null, res: WireSignResponse) => void,
      ) => void
    >
  )['SignCertificate'] as (
    req: WireSignRequest,
    meta: grpc.Metadata,
    opts: grpc.CallOptions,
    cb: (err: grpc.ServiceError | null, res: WireSignResponse) => void,
  ) => void;
  return {
    handshakes,
    sign(request, deadlineMs = 10_000) {
      return new Promise((resolve, reject) => {
        method.call(
          client,
          request,
          new grpc.Metadata(),
          { deadline: Date.now() + deadlineMs },
          (err, res) => (err ? reject(err) : resolve(res)),
        );
      });
    },
    close: () => client.close(),
  };
}

/** Rejection as { code, details } for table assertions. */
export async function signError(
  promise: Promise<unknown>,
): Promise<{ code: number; details: string }> {
  try {
    await promise;
  } catch (err) {
    const e = err as grpc.ServiceError;
    return { code: e.code, details: e.details };
  }
  throw new Error('the call succeeded');
}
