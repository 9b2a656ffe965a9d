import type { X509Certificate } from 'node:crypto';
import http from 'node:http';
import https from 'node:https';
import type { PeerCertificate, TLSSocket } from 'node:tls';
import { uriSubjectAltNames } from '../../src/shared/subject-alt-names.js';

export interface ClientResponse {
  readonly status: number;
  readonly body: unknown;
  readonly headers: http.IncomingHttpHeaders;
  /** The server certificate's subject CN (HTTPS only). */
  readonly serverCommonName?: string;
  /** The server's leaf certificate (HTTPS only). */
  readonly serverCertificate?: X509Certificate;
}

export interface ClientTls {
  readonly ca: string;
  readonly cert?: string;
  readonly key?: string;
  /**
   * Verify the server by this SPIFFE ID (its one URI SAN) instead of a host name, as a
   * sidecar verifies an SVID-holding server; the chain is verified against `ca` either way.
   */
  readonly serverSpiffeId?: string;
}

function spiffeIdCheck(expected: string): (host: string, cert: PeerCertificate) => Error | undefined {
  return (_host, cert) => {
    const uris = uriSubjectAltNames(cert.subjectaltname);
    return uris?.length === 1 && uris[0] === expected ? undefined : new Error(`server presented ${JSON.stringify(uris)}, not ${expected}`);
  };
}

/**
 * One request with the path sent exactly as given (no URL normalisation, unlike fetch), on
 * a fresh connection each time (agent: false) so that TLS is negotiated for every request.
 */
export function rawRequest(port: number, path: string, options: { tls?: ClientTls; method?: string } = {}): Promise<ClientResponse> {
  return new Promise((resolve, reject) => {
    const common = { host: '127.0.0.1', port, path, method: options.method ?? 'GET', agent: false as const };
    const onResponse = (res: http.IncomingMessage): void => {
      const chunks: Buffer[] = [];
      const tlsSocket = res.socket as TLSSocket | null;
      // read while the connection is open: with agent: false it may be gone at 'end'
      const cn = options.tls && tlsSocket && typeof tlsSocket.getPeerCertificate === 'function' ? tlsSocket.getPeerCertificate().subject?.CN : undefined;
      const leaf = options.tls && tlsSocket && typeof tlsSocket.getPeerX509Certificate === 'function' ? tlsSocket.getPeerX509Certificate() : undefined;
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let body: unknown = text;
        try {
          body = JSON.parse(text);
        } catch {
          // not JSON: keep the text
        }
        resolve({
          status: res.statusCode ?? 0,
          body,
          headers: res.headers,
          serverCommonName: typeof cn === 'string' ? cn : undefined,
          ...(leaf === undefined ? {} : { serverCertificate: leaf }),
        });
      });
      res.on('error', reject);
    };
    const req = options.tls
      ? https.request(
          {
            ...common,
            ca: options.tls.ca,
            cert: options.tls.cert,
            key: options.tls.key,
            servername: 'localhost',
            ...(options.tls.serverSpiffeId === undefined ? {} : { checkServerIdentity: spiffeIdCheck(options.tls.serverSpiffeId) }),
          },
          onResponse,
        )
      : http.request(common, onResponse);
    req.on('error', reject);
    req.end();
  });
}
