// Callers for the bench: SignCertificate over gRPC/TLS, or cfssl's sign over HTTP/JSON.
//
// Both are deliberately lean so that, on a 2-core machine where the load generator shares
// the cores with the server, the client's CPU is small next to the server's (issue 7: "a load
// generator that is not the bottleneck"; bench/README.md has the figures). The gRPC caller
// speaks HTTP/2 through node:http2 with prepared gRPC frames — the h2load approach,
// but with a fresh CSR in every request, which h2load cannot send — and checks grpc-status
// and the response message. The cfssl caller writes prepared HTTP/1.1 requests on keep-alive
// sockets and checks the status line and `"success":true`. A grpc-js client built only from
// the .proto (wardenProtoCaller) is kept for a cross-check and for the interop tests' view.
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import http2 from 'node:http2';
import { H2GrpcClient } from './h2-grpc-client.js';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { LoadTarget } from './load-protocol.js';

/** One call with one prepared request; resolves when the server answered with a certificate. */
export type Call = (request: PreparedRequest) => Promise<void>;

/** A request body ready to send: the gRPC frame or the HTTP/1.1 request bytes. */
export type PreparedRequest = Buffer;

export const SIGN_CERTIFICATE_PATH = '/dapr.proto.sentry.v1.CA/SignCertificate';

// --- protobuf, by hand: the few fields of SignCertificateRequest the bench sets -------------

function varint(n: number): number[] {
  const out: number[] = [];
  while (n > 0x7f) {
    out.push((n & 0x7f) | 0x80);
    n >>>= 7;
  }
  out.push(n);
  return out;
}

function lengthDelimited(field: number, bytes: Buffer): Buffer {
  return Buffer.concat([Buffer.from([(field << 3) | 2, ...varint(bytes.length)]), bytes]);
}

/**
 * SignCertificateRequest{id, namespace, trust_domain, certificate_signing_request,
 * token_validator: INSECURE} (dapr/proto/sentry/v1/sentry.proto field numbers 1, 4, 3, 5, 6)
 * in a gRPC length-prefixed frame (uncompressed).
 */
export function signCertificateFrame(csrPem: string, appId: string): Buffer {
  const message = Buffer.concat([
    lengthDelimited(1, Buffer.from(appId)),
    lengthDelimited(3, Buffer.from('public')),
    lengthDelimited(4, Buffer.from('default')),
    lengthDelimited(5, Buffer.from(csrPem)),
    Buffer.from([6 << 3, 1]),
  ]);
  const prefix = Buffer.alloc(5);
  prefix.writeUInt32BE(message.length, 1);
  return Buffer.concat([prefix, message]);
}

/** A cfssl /api/v1/cfssl/sign request, as bytes for a keep-alive HTTP/1.1 socket. */
export function cfsslSignRequest(csrPem: string, host: string): Buffer {
  const body = JSON.stringify({ certificate_request: csrPem, profile: 'workload' });
  return Buffer.from(
    `POST /api/v1/cfssl/sign HTTP/1.1\r\nHost: ${host}\r\nContent-Type: application/json\r\n` +
      `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
  );
}

export function prepareRequests(target: LoadTarget, csrs: readonly string[]): PreparedRequest[] {
  return target.kind === 'warden'
    ? csrs.map((csr, i) => signCertificateFrame(csr, `app-${i % 1000}`))
    : csrs.map((csr) => cfsslSignRequest(csr, new URL(target.url).host));
}

// --- gRPC over node:http2 ---------------------------------------------------------------

/**
 * Checks a unary gRPC answer: HTTP 200, grpc-status 0, one uncompressed message whose first
 * field is a non-empty workload_certificate (field 1) holding a PEM certificate.
 */
function checkGrpcAnswer(
  status: number,
  grpcStatus: string | undefined,
  body: Buffer,
): string | null {
  if (status !== 200) return `HTTP ${status}`;
  if (grpcStatus !== '0') return `grpc-status ${grpcStatus ?? '(none)'}`;
  if (body.length < 5 || body[0] !== 0) return 'no uncompressed gRPC message';
  if (body.readUInt32BE(1) !== body.length - 5) return 'truncated gRPC message';
  if (body[5] !== 0x0a) return 'response does not start with workload_certificate';
  if (body.indexOf('-----BEGIN CERTIFICATE-----', 6) === -1)
    return 'no certificate in the response';
  return null;
}

export interface GrpcCallerOptions {
  readonly address: string;
  readonly caPem: string;
  readonly serverName: string;
  readonly client?: 'raw' | 'node-http2';
}

/**
 * A caller over one HTTP/2 connection (opened on first use), like one grpc-js channel:
 * bench/h2-grpc-client.ts by default, node:http2 on request.
 */
export function createGrpcCaller(options: GrpcCallerOptions): Call & { close(): void } {
  if (options.client === 'node-http2') return createNodeHttp2Caller(options);
  const separator = options.address.lastIndexOf(':');
  const client = new H2GrpcClient({
    host: options.address.slice(0, separator).replace(/^\[|\]$/g, ''),
    port: Number(options.address.slice(separator + 1)),
    caPem: options.caPem,
    serverName: options.serverName,
    path: SIGN_CERTIFICATE_PATH,
  });
  return Object.assign((frame: PreparedRequest) => client.call(frame), {
    close: () => client.close(),
  });
}

/** The same over node:http2: ≈ 3× the client CPU per call, kept as a cross-check. */
function createNodeHttp2Caller(options: GrpcCallerOptions): Call & { close(): void } {
  let session: http2.ClientHttp2Session | null = null;
  const connect = (): http2.ClientHttp2Session => {
    const s = http2.connect(`https://${options.address}`, {
      ca: options.caPem,
      servername: options.serverName,
    });
    s.on('error', () => undefined); // reported through the streams
    s.once('close', () => {
      if (session === s) session = null;
    });
    s.unref();
    return s;
  };
  const headers = {
    ':method': 'POST',
    ':path': SIGN_CERTIFICATE_PATH,
    ':authority': options.serverName,
    'content-type': 'application/grpc',
    te: 'trailers',
  };
  const call = (frame: PreparedRequest): Promise<void> =>
    new Promise((resolve, reject) => {
      session ??= connect();
      const stream = session.request(headers, { endStream: false });
      const chunks: Buffer[] = [];
      let status = 0;
      let grpcStatus: string | undefined;
      let grpcMessage: string | undefined;
      stream.on('response', (h) => {
        status = Number(h[':status']);
        // A trailers-only answer (errors) carries grpc-status in the headers.
        if (h['grpc-status'] !== undefined) {
          grpcStatus = String(h['grpc-status']);
          grpcMessage = h['grpc-message'] === undefined ? undefined : String(h['grpc-message']);
        }
      });
      stream.on('trailers', (t) => {
        grpcStatus = String(t['grpc-status']);
        grpcMessage = t['grpc-message'] === undefined ? undefined : String(t['grpc-message']);
      });
      stream.on('data', (chunk: Buffer) => chunks.push(chunk));
      stream.on('error', reject);
      stream.on('end', () => {
        const problem = checkGrpcAnswer(status, grpcStatus, Buffer.concat(chunks));
        if (problem === null) resolve();
        else
          reject(
            new Error(
              grpcMessage === undefined ? problem : `${problem} ${decodeURIComponent(grpcMessage)}`,
            ),
          );
      });
      stream.end(frame);
    });
  return Object.assign(call, {
    close(): void {
      session?.close();
      session = null;
    },
  });
}

// --- cfssl over keep-alive HTTP/1.1 -----------------------------------------------------

/** One keep-alive socket, one request at a time (as http.Agent does); reconnects on close. */
class Http1Connection {
  #socket: net.Socket | null = null;
  #buffer: Buffer = Buffer.alloc(0);
  #waiting: { resolve: () => void; reject: (err: Error) => void } | null = null;
  readonly #port: number;
  readonly #host: string;

  constructor(host: string, port: number) {
    this.#host = host;
    this.#port = port;
  }

  #open(): net.Socket {
    const socket = net.connect(this.#port, this.#host);
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => {
      this.#buffer = this.#buffer.length === 0 ? chunk : Buffer.concat([this.#buffer, chunk]);
      this.#parse();
    });
    const fail = (err: Error): void => {
      if (this.#socket === socket) this.#socket = null;
      this.#buffer = Buffer.alloc(0);
      const waiting = this.#waiting;
      this.#waiting = null;
      waiting?.reject(err);
    };
    socket.on('error', fail);
    socket.on('close', () => fail(new Error('connection closed')));
    return socket;
  }

  #parse(): void {
    const end = this.#buffer.indexOf('\r\n\r\n');
    if (end === -1) return;
    const head = this.#buffer.subarray(0, end).toString('latin1');
    const length = /\r\ncontent-length:\s*(\d+)/i.exec(head);
    if (!length) {
      this.#socket?.destroy(new Error('response without Content-Length'));
      return;
    }
    const total = end + 4 + Number(length[1]);
    if (this.#buffer.length < total) return;
    const body = this.#buffer.subarray(end + 4, total).toString('utf8');
    this.#buffer = this.#buffer.subarray(total);
    const waiting = this.#waiting;
    this.#waiting = null;
    if (!waiting) return;
    const statusLine = head.slice(0, head.indexOf('\r\n'));
    if (statusLine.startsWith('HTTP/1.1 200') && body.includes('"success":true')) waiting.resolve();
    else waiting.reject(new Error(`${statusLine} ${body.slice(0, 200)}`));
  }

  request(bytes: Buffer): Promise<void> {
    return new Promise((resolve, reject) => {
      this.#socket ??= this.#open();
      this.#waiting = { resolve, reject };
      this.#socket.write(bytes);
    });
  }
}

/** A caller over `connections` keep-alive sockets; each call takes a free one. */
export function createCfsslCaller(url: string, connections: number): Call {
  const { hostname, port } = new URL(url);
  const free: Http1Connection[] = Array.from(
    { length: connections },
    () => new Http1Connection(hostname, Number(port)),
  );
  return async (request) => {
    const connection = free.pop();
    if (!connection) throw new Error('more calls in flight than connections');
    try {
      await connection.request(request);
    } finally {
      free.push(connection);
    }
  };
}

export function createCaller(target: LoadTarget, concurrency: number): Call {
  return target.kind === 'warden'
    ? createGrpcCaller(target)
    : createCfsslCaller(target.url, concurrency);
}

// --- cross-check: a grpc-js client built only from the .proto -----------------------------

/** SignCertificate through grpc-js and the .proto; rejects on any non-OK status. */
export function wardenProtoCaller(
  target: GrpcCallerOptions,
): (csrPem: string) => Promise<{ workloadCertificate: Buffer }> {
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
  type SignCertificate = (
    req: unknown,
    opts: grpc.CallOptions,
    cb: (err: grpc.ServiceError | null, res?: { workloadCertificate: Buffer }) => void,
  ) => void;
  const sign = (client as unknown as Record<string, SignCertificate>).SignCertificate!.bind(client);
  return (csrPem) =>
    new Promise((resolve, reject) => {
      sign(
        {
          id: 'app-proto',
          namespace: 'default',
          trustDomain: 'public',
          certificateSigningRequest: Buffer.from(csrPem),
          tokenValidator: 'INSECURE',
        },
        { deadline: Date.now() + 30_000 },
        (err, res) =>
          err || !res ? reject(new Error(`${err?.code} ${err?.details}`)) : resolve(res),
      );
    });
}
