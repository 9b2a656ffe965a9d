import http from 'node:http';
import https from 'node:https';
import type { TLSSocket } from 'node:tls';

export interface ClientResponse {
  readonly status: number;
  readonly body: unknown;
  readonly headers: http.IncomingHttpHeaders;
  /** The server certificate's subject CN (HTTPS only). */
  readonly serverCommonName?: string;
}

export interface ClientTls {
  readonly ca: string;
  readonly cert?: string;
  readonly key?: string;
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
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let body: unknown = text;
        try {
          body = JSON.parse(text);
        } catch {
          // not JSON: keep the text
        }
        const socket = res.socket as TLSSocket | null;
        const cn = options.tls && socket && typeof socket.getPeerCertificate === 'function' ? socket.getPeerCertificate().subject?.CN : undefined;
        resolve({ status: res.statusCode ?? 0, body, headers: res.headers, serverCommonName: typeof cn === 'string' ? cn : undefined });
      });
      res.on('error', reject);
    };
    const req = options.tls
      ? https.request({ ...common, ca: options.tls.ca, cert: options.tls.cert, key: options.tls.key, servername: 'localhost' }, onResponse)
      : http.request(common, onResponse);
    req.on('error', reject);
    req.end();
  });
}
