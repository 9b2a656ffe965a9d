import http from 'node:http';
import https from 'node:https';
import net, { type AddressInfo } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { describeError, isWardenError, WardenError } from '../../shared/errors.js';
import { silentLogger, type Logger } from '../../shared/logger.js';
import { noopSecretsMetrics, type SecretsMetrics } from '../metrics.js';
import type { SecretScopes } from '../scoping.js';
import type { SecretStoreSet } from '../secret-store-set.js';
import { identityFromTlsSocket, type CallerIdentity } from './caller-identity.js';
import { answerSecretsRequest, type SecretsApiResponse } from './secrets-handler.js';

/** The server's own certificate and key, and the trust anchors client certificates must chain to. */
export interface SecretsApiTlsMaterial {
  readonly key: string | Buffer;
  /** The server certificate, followed by any intermediates. */
  readonly cert: string | Buffer;
  /** Trust anchors (PEM) for client certificates. */
  readonly ca: string | Buffer | ReadonlyArray<string | Buffer>;
}

export type SecretsApiTransport =
  | {
      readonly kind: 'mtls';
      readonly tls: SecretsApiTlsMaterial;
      /** When set, a client SPIFFE ID in another trust domain is refused. */
      readonly trustDomain?: string;
    }
  /** Plain HTTP, only on a loopback address: no caller identity, Component scopes not applied. */
  | { readonly kind: 'insecure-http' };

export interface SecretsApiServerOptions {
  readonly stores: SecretStoreSet;
  readonly scopes: SecretScopes;
  readonly transport: SecretsApiTransport;
  /** Default 127.0.0.1. */
  readonly listenAddress?: string;
  /** Default 3500 (Dapr's HTTP port); 0 picks a free one. */
  readonly port?: number;
  readonly logger?: Logger;
  readonly metrics?: SecretsMetrics;
}

/** True for 127.0.0.0/8, ::1 and "localhost". */
export function isLoopbackAddress(address: string): boolean {
  if (address === 'localhost') return true;
  if (net.isIPv4(address)) return address.startsWith('127.');
  if (net.isIPv6(address)) return address === '::1' || /^::ffff:127\./i.test(address);
  return false;
}

const JSON_HEADERS = { 'content-type': 'application/json', 'cache-control': 'no-store' };

/**
 * Dapr's secrets API over HTTPS with mutual TLS (or plain HTTP on loopback). The TLS
 * material comes in as options and can be swapped while serving (`setTlsMaterial`), so
 * whoever renews the server's SVID just hands over the new one.
 */
export class SecretsApiServer {
  readonly #options: SecretsApiServerOptions;
  readonly #logger: Logger;
  readonly #metrics: SecretsMetrics;
  readonly #server: http.Server | https.Server;
  #address: AddressInfo | undefined;

  constructor(options: SecretsApiServerOptions) {
    this.#options = options;
    this.#logger = options.logger ?? silentLogger;
    this.#metrics = options.metrics ?? noopSecretsMetrics;
    const listenAddress = options.listenAddress ?? '127.0.0.1';
    const handler = (req: http.IncomingMessage, res: http.ServerResponse): void => {
      void this.#handle(req, res);
    };
    if (options.transport.kind === 'insecure-http') {
      if (!isLoopbackAddress(listenAddress)) {
        throw new WardenError('ERR_CONFIG_INVALID', `--insecure-http is only allowed on a loopback address, not ${listenAddress}`);
      }
      this.#server = http.createServer(handler);
    } else {
      const { key, cert, ca } = options.transport.tls;
      this.#server = https.createServer(
        {
          key,
          cert,
          ca: ca as string | Buffer | Array<string | Buffer>,
          requestCert: true,
          rejectUnauthorized: true,
          minVersion: 'TLSv1.2',
        },
        handler,
      );
    }
    this.#server.headersTimeout = 10_000;
    this.#server.requestTimeout = 30_000;
    this.#server.keepAliveTimeout = 5_000;
    this.#server.on('tlsClientError', (err: Error) => {
      this.#logger.debug({ error: describeError(err) }, 'secrets API: TLS handshake refused');
    });
  }

  /** Starts listening; resolves with the bound address. */
  async listen(): Promise<AddressInfo> {
    const host = this.#options.listenAddress === 'localhost' ? '127.0.0.1' : (this.#options.listenAddress ?? '127.0.0.1');
    await new Promise<void>((resolve, reject) => {
      this.#server.once('error', reject);
      this.#server.listen(this.#options.port ?? 3500, host, () => {
        this.#server.off('error', reject);
        resolve();
      });
    });
    this.#address = this.#server.address() as AddressInfo;
    if (this.#options.transport.kind === 'insecure-http') {
      this.#logger.warn(
        { address: this.#address.address, port: this.#address.port },
        'secrets API listening over PLAIN HTTP (--insecure-http): callers are not authenticated and Component scopes cannot be applied; loopback development only',
      );
    } else {
      this.#logger.info({ address: this.#address.address, port: this.#address.port }, 'secrets API listening with mutual TLS');
    }
    return this.#address;
  }

  get address(): AddressInfo | undefined {
    return this.#address;
  }

  /** Replaces the server certificate, key and trust anchors for every new connection. */
  setTlsMaterial(tls: SecretsApiTlsMaterial): void {
    if (this.#options.transport.kind !== 'mtls') throw new TypeError('setTlsMaterial needs an mTLS server');
    (this.#server as https.Server).setSecureContext({
      key: tls.key,
      cert: tls.cert,
      ca: tls.ca as string | Buffer | Array<string | Buffer>,
    });
    this.#logger.info('secrets API: TLS material replaced');
  }

  async close(): Promise<void> {
    if (!this.#server.listening) return;
    await new Promise<void>((resolve) => {
      this.#server.close(() => resolve());
      this.#server.closeAllConnections();
    });
  }

  #identify(req: http.IncomingMessage): CallerIdentity | WardenError {
    if (this.#options.transport.kind === 'insecure-http') return { kind: 'anonymous' };
    try {
      return identityFromTlsSocket(req.socket as TLSSocket, this.#options.transport.trustDomain);
    } catch (err) {
      if (isWardenError(err)) return err;
      throw err;
    }
  }

  async #handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    req.resume(); // GET has no body; whatever is sent is drained, never read
    let response: SecretsApiResponse;
    try {
      const caller = this.#identify(req);
      if (caller instanceof WardenError) {
        this.#logger.warn({ reason: caller.message }, 'secrets API: caller refused');
      } else if (caller.kind === 'anonymous') {
        this.#logger.warn({ method: req.method }, 'secrets API: unauthenticated plain-HTTP request (--insecure-http)');
      }
      response = await answerSecretsRequest(
        { stores: this.#options.stores, scopes: this.#options.scopes, logger: this.#logger, metrics: this.#metrics },
        { method: req.method ?? '', target: req.url ?? '', caller },
      );
    } catch (err) {
      this.#logger.error({ error: describeError(err) }, 'secrets API: request failed');
      response = { status: 500, body: { errorCode: 'ERR_SECRET_GET', message: 'internal error' } };
    }
    const body = JSON.stringify(response.body);
    res.writeHead(response.status, { ...JSON_HEADERS, ...(response.headers ?? {}), 'content-length': Buffer.byteLength(body) });
    res.end(body);
  }
}
