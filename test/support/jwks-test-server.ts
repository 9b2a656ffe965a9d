import {
  createServer as createHttpServer,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';

/**
 * A real HTTP(S) server on 127.0.0.1 serving a JWKS the test can change, fail or stall, and
 * counting the fetches it answered.
 */
export class JwksTestServer {
  body = '{"keys":[]}';
  /** 200 serves `body`; anything else answers with that status. */
  status = 200;
  /** When true, requests are accepted but never answered (timeouts). */
  stall = false;
  fetches = 0;
  readonly #server: Server;
  #holding = false;
  readonly #held: ServerResponse[] = [];
  #onHeld: Array<() => void> = [];
  #port = 0;

  private constructor(server: Server) {
    this.#server = server;
  }

  static async start(tls?: { certPem: string; keyPem: string }): Promise<JwksTestServer> {
    let instance: JwksTestServer | null = null;
    const handler = (_req: IncomingMessage, res: ServerResponse): void => instance?.handle(res);
    const server = tls
      ? createHttpsServer({ cert: tls.certPem, key: tls.keyPem }, handler)
      : createHttpServer(handler);
    instance = new JwksTestServer(server);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    instance.#port = (server.address() as AddressInfo).port;
    return instance;
  }

  url(scheme: 'http' | 'https', host = '127.0.0.1'): string {
    return `${scheme}://${host}:${this.#port}/jwks.json`;
  }

  /**
   * Holds every request from now on until release(); resolves once one is held (so the
   * caller knows a fetch is in progress, e.g. a validator waiting for keys).
   */
  hold(): Promise<void> {
    this.#holding = true;
    if (this.#held.length > 0) return Promise.resolve();
    return new Promise((resolve) => this.#onHeld.push(resolve));
  }

  /** Answers the held requests with the current body and stops holding. */
  release(): void {
    this.#holding = false;
    for (const res of this.#held.splice(0)) this.handle(res);
  }

  handle(res: ServerResponse): void {
    if (this.#holding) {
      this.#held.push(res);
      for (const resolve of this.#onHeld.splice(0)) resolve();
      return;
    }
    if (this.stall) return;
    this.fetches++;
    if (this.status !== 200) {
      res.writeHead(this.status).end('unavailable');
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json' }).end(this.body);
  }

  async close(): Promise<void> {
    this.#server.closeAllConnections();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }
}
