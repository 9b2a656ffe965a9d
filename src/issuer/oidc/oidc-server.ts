import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import type { Logger } from '../../shared/logger.js';
import { printable } from '../../shared/spiffe-id.js';
import { createOidcHandler, type OidcHandlerOptions } from './oidc-handler.js';
import {
  isTlsMaterialProvider,
  secureContextOf,
  type TlsMaterial,
  type TlsMaterialProvider,
} from './tls-material.js';

export interface OidcServerOptions extends Omit<OidcHandlerOptions, 'tls'> {
  /** `--oidc-server-listen-address` (Dapr's default: localhost). */
  readonly listenAddress: string;
  /** `--oidc-server-listen-port` (9080); 0 picks a free port (tests). */
  readonly port: number;
  /**
   * TLS material (files read by `readTlsMaterialFiles`, or a provider backed by Warden's own
   * CA). `null` serves plain HTTP: only when `--oidc-server-tls-enabled=false` was given,
   * e.g. behind a TLS-terminating proxy.
   */
  readonly tls: TlsMaterial | TlsMaterialProvider | null;
  readonly logger: Logger;
}

export interface OidcServer {
  /** Base URL of the listener, e.g. https://127.0.0.1:9080 (without the path prefix). */
  readonly url: string;
  readonly port: number;
  /** Swaps the served certificate for new connections; throws (keeping the old one) if unusable. */
  setTlsMaterial(material: TlsMaterial): void;
  close(): Promise<void>;
}

/** Starts the OIDC discovery server; resolves once it listens. */
export async function startOidcServer(options: OidcServerOptions): Promise<OidcServer> {
  const handle = createOidcHandler({ ...options, tls: options.tls !== null });
  const log = options.logger.child({ component: 'oidc' });

  const listener = (req: http.IncomingMessage, res: http.ServerResponse): void => {
    const response = handle({ method: req.method ?? '', url: req.url ?? '', headers: req.headers });
    if (response.refusal) {
      log.debug(
        { status: response.status, reason: printable(response.refusal, 200) },
        'OIDC request refused',
      );
    }
    // Content-Length is set for HEAD too (RFC 9110 §9.3.2); Node itself omits a HEAD body.
    res.writeHead(response.status, {
      ...response.headers,
      'content-length': String(Buffer.byteLength(response.body)),
    });
    res.end(response.body);
    // A GET carries no body; drain anything sent anyway so the connection can be reused.
    req.resume();
  };

  let unsubscribe: (() => void) | null = null;
  let server: http.Server | https.Server;
  if (options.tls === null) {
    server = http.createServer(listener);
  } else {
    const provider = isTlsMaterialProvider(options.tls) ? options.tls : null;
    const initial = provider ? provider.current() : (options.tls as TlsMaterial);
    secureContextOf(initial);
    server = https.createServer(
      { cert: initial.cert, key: initial.key, minVersion: 'TLSv1.2' },
      listener,
    );
    if (provider) {
      unsubscribe = provider.onChange((material) => {
        try {
          swap(material);
          log.info('OIDC server certificate replaced');
        } catch (err) {
          log.error({ err }, 'OIDC server certificate not replaced: the new material is unusable');
        }
      });
    }
  }
  server.headersTimeout = 10_000;
  server.requestTimeout = 15_000;
  server.keepAliveTimeout = 5_000;
  server.maxHeadersCount = 64;

  function swap(material: TlsMaterial): void {
    if (!(server instanceof https.Server)) throw new TypeError('the OIDC server runs without TLS');
    secureContextOf(material);
    server.setSecureContext({ cert: material.cert, key: material.key, minVersion: 'TLSv1.2' });
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.listenAddress, () => {
      server.off('error', reject);
      resolve();
    });
  });
  server.on('error', (err) => log.error({ err }, 'OIDC server error'));
  const address = server.address() as AddressInfo;
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  const url = `${options.tls === null ? 'http' : 'https'}://${host}:${address.port}`;
  log.info(
    { url, pathPrefix: options.pathPrefix, tls: options.tls !== null },
    'OIDC discovery server listening',
  );

  return {
    url,
    port: address.port,
    setTlsMaterial: swap,
    close: () =>
      new Promise<void>((resolve, reject) => {
        unsubscribe?.();
        server.close((err) => (err ? reject(err) : resolve()));
        server.closeAllConnections();
      }),
  };
}
