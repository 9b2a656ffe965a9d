import type { AddressInfo } from 'node:net';
import tls from 'node:tls';

/** A workload as mutual TLS needs it: its SPIFFE ID, key, chain (leaf first) and the anchors it trusts. */
export interface TlsPeer {
  readonly id: string;
  readonly privateKeyPem: string;
  readonly chainPem: string;
  readonly anchorsPem: string;
}

export interface MutualTlsOutcome {
  readonly ok: boolean;
  readonly serverSaw: string | null;
  readonly clientSaw: string | null;
  readonly error: string | null;
}

function uriSan(cert: tls.PeerCertificate | undefined): string | null {
  return cert?.subjectaltname?.replace(/^URI:/, '') ?? null;
}

/**
 * Mutual TLS with Node's stack: each side trusts only its own anchors and accepts the peer
 * only when the chain verifies AND the peer's SPIFFE ID is the one it expects.
 */
export async function mutualTls(server: TlsPeer, client: TlsPeer): Promise<MutualTlsOutcome> {
  let serverSaw: string | null = null;
  let serverError: string | null = null;
  const srv = tls.createServer(
    {
      key: server.privateKeyPem,
      cert: server.chainPem,
      ca: server.anchorsPem,
      requestCert: true,
      rejectUnauthorized: true,
    },
    (socket) => {
      serverSaw = uriSan(socket.getPeerCertificate());
      if (serverSaw !== client.id) {
        serverError = `server expected ${client.id}, saw ${serverSaw}`;
        socket.destroy();
        return;
      }
      socket.end('ok');
    },
  );
  srv.on('tlsClientError', (err) => {
    serverError = err.message;
  });
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  const port = (srv.address() as AddressInfo).port;
  try {
    return await new Promise<MutualTlsOutcome>((resolve) => {
      let clientSaw: string | null = null;
      const socket = tls.connect({
        host: '127.0.0.1',
        port,
        key: client.privateKeyPem,
        cert: client.chainPem,
        ca: client.anchorsPem,
        rejectUnauthorized: true,
        // SPIFFE identities, not host names: the server must be exactly this workload.
        checkServerIdentity: (_host, cert) => {
          clientSaw = uriSan(cert);
          return clientSaw === server.id
            ? undefined
            : new Error(`client expected ${server.id}, saw ${clientSaw}`);
        },
      });
      let data = '';
      socket.on('data', (d: Buffer) => (data += d.toString()));
      socket.on('end', () =>
        resolve({ ok: data === 'ok', serverSaw, clientSaw, error: serverError }),
      );
      socket.on('error', (err) =>
        resolve({ ok: false, serverSaw, clientSaw, error: serverError ?? err.message }),
      );
    });
  } finally {
    await new Promise<void>((resolve) => srv.close(() => resolve()));
  }
}
