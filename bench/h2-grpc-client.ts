// A minimal gRPC-over-HTTP/2 client for the load generator: prepared frames on one TLS
// connection, in the spirit of the "h2load with prepared gRPC frames", but with a
// fresh CSR in every request (h2load sends one body). node:http2 costs ≈ 110 µs of client CPU
// per call (stream objects, events, header objects); this costs a fraction of that, so on a
// 2-core machine the load generator takes less of the CPU the server is measured on.
//
// What it does and does not do (a load generator, not a general client):
// - request headers are one pre-encoded HPACK block (indexed and literal-without-indexing
//   representations only, so it never touches the server's dynamic table);
// - response header blocks are not decoded: a unary gRPC answer is a success when its HEADERS,
//   then its DATA (one length-prefixed message holding a PEM certificate), then trailers with
//   END_STREAM arrive; an error is a trailers-only answer (HEADERS with END_STREAM, no DATA),
//   or RST_STREAM, or GOAWAY, or a malformed message. grpc-js sends every non-OK status
//   trailers-only, so "message then trailers" means OK;
// - flow control: a large receive window is advertised once (and topped up); the connection
//   send window is tracked and requests wait when it runs out; SETTINGS and PING are answered.
import tls from 'node:tls';

const FRAME_DATA = 0x0;
const FRAME_HEADERS = 0x1;
const FRAME_RST_STREAM = 0x3;
const FRAME_SETTINGS = 0x4;
const FRAME_PING = 0x6;
const FRAME_GOAWAY = 0x7;
const FRAME_WINDOW_UPDATE = 0x8;
const FRAME_CONTINUATION = 0x9;
const FLAG_END_STREAM = 0x1;
const FLAG_ACK = 0x1;
const FLAG_END_HEADERS = 0x4;
const FLAG_PADDED = 0x8;
const SETTINGS_ENABLE_PUSH = 0x2;
const SETTINGS_INITIAL_WINDOW_SIZE = 0x4;
const MAX_WINDOW = 0x7fffffff;
const DEFAULT_WINDOW = 65_535;

const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');

function frameHeader(length: number, type: number, flags: number, streamId: number): Buffer {
  const header = Buffer.alloc(9);
  header.writeUIntBE(length, 0, 3);
  header[3] = type;
  header[4] = flags;
  header.writeUInt32BE(streamId, 5);
  return header;
}

function frame(type: number, flags: number, streamId: number, payload: Buffer): Buffer {
  return Buffer.concat([frameHeader(payload.length, type, flags, streamId), payload]);
}

/** HPACK string literal without Huffman coding (RFC 7541 §5.2), lengths < 127. */
function literal(text: string): Buffer {
  const bytes = Buffer.from(text, 'latin1');
  if (bytes.length >= 127) throw new TypeError('header too long for this encoder');
  return Buffer.concat([Buffer.from([bytes.length]), bytes]);
}

/** The request header block: static-table indices and literals without indexing. */
export function requestHeaderBlock(path: string, authority: string): Buffer {
  return Buffer.concat([
    Buffer.from([0x83]), // :method POST (static 3)
    Buffer.from([0x87]), // :scheme https (static 7)
    Buffer.from([0x04]), // :path, literal without indexing, name = static 4
    literal(path),
    Buffer.from([0x01]), // :authority (static 1)
    literal(authority),
    Buffer.from([0x0f, 0x10]), // content-type (static 31 = 15 + 16)
    literal('application/grpc'),
    Buffer.from([0x00]), // te, literal without indexing, new name
    literal('te'),
    literal('trailers'),
  ]);
}

interface StreamState {
  readonly resolve: () => void;
  readonly reject: (err: Error) => void;
  readonly chunks: Buffer[];
  headersSeen: boolean;
  dataBytes: number;
}

export interface H2GrpcClientOptions {
  readonly host: string;
  readonly port: number;
  readonly caPem: string;
  readonly serverName: string;
  readonly path: string;
}

/** Checks the message of a unary answer: one uncompressed gRPC message with a certificate. */
function messageProblem(body: Buffer): string | null {
  if (body.length < 5 || body[0] !== 0) return 'no uncompressed gRPC message';
  if (body.readUInt32BE(1) !== body.length - 5) return 'truncated gRPC message';
  if (body[5] !== 0x0a) return 'response does not start with workload_certificate';
  if (body.indexOf('-----BEGIN CERTIFICATE-----', 6) === -1)
    return 'no certificate in the response';
  return null;
}

/** One TLS connection and its streams; when it fails, only its own streams fail. */
class H2Connection {
  readonly ready: Promise<void>;
  readonly #socket: tls.TLSSocket;
  readonly #headerBlock: Buffer;
  readonly #streams = new Map<number, StreamState>();
  #buffer: Buffer = Buffer.alloc(0);
  #nextStreamId = 1;
  #sendWindow = DEFAULT_WINDOW;
  #received = 0;
  /** Requests waiting for connection send window. */
  #waiting: Array<() => void> = [];
  #out: Buffer[] = [];
  #flushScheduled = false;
  /** The stream whose header block continues in CONTINUATION frames, if any. */
  #continuing: { id: number; endStream: boolean } | null = null;
  #failure: Error | null = null;

  constructor(options: H2GrpcClientOptions, headerBlock: Buffer, onClosed: () => void) {
    this.#headerBlock = headerBlock;
    const socket = tls.connect({
      host: options.host,
      port: options.port,
      ca: options.caPem,
      servername: options.serverName,
      ALPNProtocols: ['h2'],
    });
    this.#socket = socket;
    socket.setNoDelay(true);
    this.ready = new Promise<void>((resolve, reject) => {
      socket.once('secureConnect', () => {
        if (socket.alpnProtocol !== 'h2') {
          socket.destroy(new Error('server did not negotiate h2'));
          return;
        }
        const settings = Buffer.alloc(12);
        settings.writeUInt16BE(SETTINGS_ENABLE_PUSH, 0);
        settings.writeUInt32BE(0, 2);
        settings.writeUInt16BE(SETTINGS_INITIAL_WINDOW_SIZE, 6);
        settings.writeUInt32BE(MAX_WINDOW, 8);
        const windowUpdate = Buffer.alloc(4);
        windowUpdate.writeUInt32BE(MAX_WINDOW - DEFAULT_WINDOW, 0);
        socket.write(
          Buffer.concat([
            PREFACE,
            frame(FRAME_SETTINGS, 0, 0, settings),
            frame(FRAME_WINDOW_UPDATE, 0, 0, windowUpdate),
          ]),
        );
        resolve();
      });
      const fail = (err: Error): void => {
        reject(err);
        if (this.#failure) return;
        this.#failure = err;
        onClosed();
        const streams = [...this.#streams.values()];
        this.#streams.clear();
        for (const stream of streams) stream.reject(err);
        const waiting = this.#waiting;
        this.#waiting = [];
        for (const wake of waiting) wake();
      };
      socket.on('error', fail);
      socket.on('close', () => fail(new Error('connection closed')));
    });
    this.ready.catch(() => undefined);
    socket.on('data', (chunk: Buffer) => this.#onData(chunk));
  }

  #write(bytes: Buffer): void {
    this.#out.push(bytes);
    if (this.#flushScheduled) return;
    this.#flushScheduled = true;
    queueMicrotask(() => {
      this.#flushScheduled = false;
      const out = this.#out;
      this.#out = [];
      if (!this.#failure)
        this.#socket.write(out.length === 1 ? (out[0] as Buffer) : Buffer.concat(out));
    });
  }

  async call(message: Buffer): Promise<void> {
    await this.ready;
    while (this.#sendWindow < message.length) {
      if (this.#failure) throw this.#failure;
      await new Promise<void>((wake) => this.#waiting.push(wake));
    }
    if (this.#failure) throw this.#failure;
    this.#sendWindow -= message.length;
    const id = this.#nextStreamId;
    this.#nextStreamId += 2;
    const done = new Promise<void>((resolve, reject) => {
      this.#streams.set(id, { resolve, reject, chunks: [], headersSeen: false, dataBytes: 0 });
    });
    this.#write(
      Buffer.concat([
        frameHeader(this.#headerBlock.length, FRAME_HEADERS, FLAG_END_HEADERS, id),
        this.#headerBlock,
        frameHeader(message.length, FRAME_DATA, FLAG_END_STREAM, id),
        message,
      ]),
    );
    return done;
  }

  close(): void {
    this.#socket.destroy();
  }

  #onData(chunk: Buffer): void {
    this.#buffer = this.#buffer.length === 0 ? chunk : Buffer.concat([this.#buffer, chunk]);
    let offset = 0;
    const buf = this.#buffer;
    while (buf.length - offset >= 9 && !this.#failure) {
      const length = buf.readUIntBE(offset, 3);
      if (buf.length - offset < 9 + length) break;
      const type = buf[offset + 3] as number;
      const flags = buf[offset + 4] as number;
      const streamId = buf.readUInt32BE(offset + 5) & 0x7fffffff;
      const payload = buf.subarray(offset + 9, offset + 9 + length);
      offset += 9 + length;
      this.#onFrame(type, flags, streamId, payload);
    }
    this.#buffer = offset === buf.length ? Buffer.alloc(0) : buf.subarray(offset);
  }

  #onFrame(type: number, flags: number, streamId: number, payload: Buffer): void {
    switch (type) {
      case FRAME_DATA: {
        const stream = this.#streams.get(streamId);
        let body = payload;
        if (flags & FLAG_PADDED)
          body = payload.subarray(1, payload.length - (payload[0] as number));
        this.#received += payload.length;
        if (this.#received > MAX_WINDOW / 2) {
          const increment = Buffer.alloc(4);
          increment.writeUInt32BE(this.#received, 0);
          this.#write(frame(FRAME_WINDOW_UPDATE, 0, 0, increment));
          this.#received = 0;
        }
        if (!stream) return;
        stream.chunks.push(Buffer.from(body));
        stream.dataBytes += body.length;
        if (flags & FLAG_END_STREAM) this.#finish(streamId, stream, true);
        return;
      }
      case FRAME_HEADERS:
      case FRAME_CONTINUATION: {
        const id = type === FRAME_HEADERS ? streamId : (this.#continuing?.id ?? streamId);
        const endStream =
          type === FRAME_HEADERS
            ? (flags & FLAG_END_STREAM) !== 0
            : (this.#continuing?.endStream ?? false);
        if (!(flags & FLAG_END_HEADERS)) {
          this.#continuing = { id, endStream };
          return;
        }
        this.#continuing = null;
        const stream = this.#streams.get(id);
        if (!stream) return;
        if (endStream) this.#finish(id, stream, stream.headersSeen && stream.dataBytes > 0);
        else stream.headersSeen = true;
        return;
      }
      case FRAME_RST_STREAM: {
        const stream = this.#streams.get(streamId);
        if (!stream) return;
        this.#streams.delete(streamId);
        stream.reject(new Error(`RST_STREAM ${payload.readUInt32BE(0)}`));
        return;
      }
      case FRAME_SETTINGS:
        if (!(flags & FLAG_ACK)) this.#write(frame(FRAME_SETTINGS, FLAG_ACK, 0, Buffer.alloc(0)));
        return;
      case FRAME_PING:
        if (!(flags & FLAG_ACK)) this.#write(frame(FRAME_PING, FLAG_ACK, 0, Buffer.from(payload)));
        return;
      case FRAME_WINDOW_UPDATE:
        if (streamId === 0) {
          this.#sendWindow += payload.readUInt32BE(0) & 0x7fffffff;
          const waiting = this.#waiting;
          this.#waiting = [];
          for (const wake of waiting) wake();
        }
        return;
      case FRAME_GOAWAY:
        this.#socket.destroy(new Error(`GOAWAY ${payload.readUInt32BE(4)}`));
        return;
      default:
        // PRIORITY, PUSH_PROMISE (disabled by our SETTINGS), unknown types: ignored.
        return;
    }
  }

  /** `ok`: the answer had headers, then a message, then trailers (see the header comment). */
  #finish(id: number, stream: StreamState, ok: boolean): void {
    this.#streams.delete(id);
    if (!ok) {
      stream.reject(new Error('error status (trailers-only answer)'));
      return;
    }
    const problem = messageProblem(Buffer.concat(stream.chunks));
    if (problem === null) stream.resolve();
    else stream.reject(new Error(problem));
  }
}

/** Calls over one connection at a time, opened on first use and reopened after a failure. */
export class H2GrpcClient {
  readonly #options: H2GrpcClientOptions;
  readonly #headerBlock: Buffer;
  #connection: H2Connection | null = null;

  constructor(options: H2GrpcClientOptions) {
    this.#options = options;
    this.#headerBlock = requestHeaderBlock(options.path, options.serverName);
  }

  /** One unary call with a prepared gRPC message (5-byte prefix included). */
  call(message: Buffer): Promise<void> {
    if (!this.#connection) {
      const connection: H2Connection = new H2Connection(this.#options, this.#headerBlock, () => {
        if (this.#connection === connection) this.#connection = null;
      });
      this.#connection = connection;
    }
    return this.#connection.call(message);
  }

  close(): void {
    this.#connection?.close();
    this.#connection = null;
  }
}
