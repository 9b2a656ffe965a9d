// Callers for the bench: one SignCertificate over gRPC/TLS (a client built only from the
// .proto), or one cfssl sign over HTTP/JSON.
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import http from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { LoadTarget } from './load-protocol.js';

export type Call = (csrPem: string) => Promise<void>;

function wardenCaller(target: LoadTarget & { kind: 'warden' }): Call {
  const protoDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../proto');
  const definition = protoLoader.loadSync('dapr/proto/sentry/v1/sentry.proto', {
    includeDirs: [protoDir],
  });
  const pkg = grpc.loadPackageDefinition(definition) as unknown as {
    dapr: { proto: { sentry: { v1: { CA: grpc.ServiceClientConstructor } } } };
  };
  const client = new pkg.dapr.proto.sentry.v1.CA(
    target.address,
    grpc.credentials.createSsl(Buffer.from(target.caPem)),
    {
      'grpc.ssl_target_name_override': target.serverName,
      'grpc.default_authority': target.serverName,
    },
  );
  let n = 0;
  return (csrPem) =>
    new Promise((resolve, reject) => {
      n++;
      const request = {
        id: `app-${n % 1000}`,
        namespace: 'default',
        trustDomain: 'public',
        certificateSigningRequest: Buffer.from(csrPem),
        tokenValidator: 'INSECURE',
      };
      (
        client as unknown as Record<
          string,
          (
            req: unknown,
            opts: grpc.CallOptions,
            cb: (err: grpc.ServiceError | null) => void,
          ) => void
        >
      ).SignCertificate!(request, { deadline: Date.now() + 30_000 }, (err) =>
        err ? reject(new Error(`${err.code} ${err.details}`)) : resolve(),
      );
    });
}

function cfsslCaller(target: LoadTarget & { kind: 'cfssl' }, concurrency: number): Call {
  const agent = new http.Agent({ keepAlive: true, maxSockets: concurrency });
  const url = new URL('/api/v1/cfssl/sign', target.url);
  return (csrPem) =>
    new Promise((resolve, reject) => {
      const body = JSON.stringify({ certificate_request: csrPem, profile: 'workload' });
      const req = http.request(
        url,
        {
          method: 'POST',
          agent,
          headers: {
            'content-type': 'application/json',
            'content-length': Buffer.byteLength(body),
          },
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => {
            const text = Buffer.concat(chunks).toString();
            if (res.statusCode === 200 && text.includes('"success":true')) resolve();
            else reject(new Error(`HTTP ${res.statusCode} ${text.slice(0, 200)}`));
          });
        },
      );
      req.on('error', reject);
      req.end(body);
    });
}

export function createCaller(target: LoadTarget, concurrency: number): Call {
  return target.kind === 'warden' ? wardenCaller(target) : cfsslCaller(target, concurrency);
}
