import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { spawn } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import tls from 'node:tls';
import { runCli } from '../../../src/cli/run.js';
import {
  createSentryClient,
  type WorkloadSvid,
} from '../../../src/issuer/sidecar/sentry-client.js';
import { uriSubjectAltNames } from '../../../src/shared/subject-alt-names.js';
import { memoryIo } from '../../support/cli-io.js';
import { startInProcessWarden, type InProcessWarden } from '../../support/in-process-warden.js';
import { makeTempDir, removeTempDir } from '../../support/temp-dir.js';
import { waitFor } from '../../support/wait-for.js';

/**
 * Two workloads whose X.509-SVIDs came from Warden complete mutual TLS in stacks Warden did
 * not write (the openssl CLI, Node's TLS), each side trusting only ca.crt and checking the
 * peer's SPIFFE ID; an SVID from another Warden CA (another `warden init` directory) for
 * the very same SPIFFE ID is refused by both.
 */

const SERVER_ID = 'spiffe://public/ns/default/frontend';
const CLIENT_ID = 'spiffe://public/ns/default/backend';

interface WorkloadFiles {
  readonly svid: WorkloadSvid;
  /** The leaf alone. */
  readonly cert: string;
  /** The issuer chain (what the peer needs besides ca.crt). */
  readonly chain: string;
  readonly key: string;
}

interface Spawned {
  readonly code: number | null;
  readonly out: string;
}

function peerSpiffeId(pem: string | undefined): string | null {
  if (pem === undefined) return null;
  const uris = uriSubjectAltNames(new X509Certificate(pem).subjectAltName);
  return uris?.length === 1 ? (uris[0] as string) : null;
}

const CERTIFICATE_RE = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----\n?/;

describe('mutual TLS between workloads holding Warden-issued SVIDs', () => {
  let dir: string;
  let ca: InProcessWarden;
  let foreignCa: InProcessWarden;
  let server: WorkloadFiles;
  let client: WorkloadFiles;
  let foreignServer: WorkloadFiles;
  let foreignClient: WorkloadFiles;

  async function obtain(
    from: InProcessWarden,
    appId: string,
    label: string,
  ): Promise<WorkloadFiles> {
    const svid = await createSentryClient({
      address: from.address,
      trustAnchorsPem: from.anchorsPem,
      sentrySpiffeId: from.sentrySpiffeId,
    }).requestSvid({
      appId,
      namespace: 'default',
      keyType: label.includes('ed') ? 'ed25519' : 'ecdsa-p256',
    });
    const base = path.join(dir, label);
    const files = { cert: `${base}.crt`, chain: `${base}.chain.pem`, key: `${base}.key` };
    await writeFile(files.cert, svid.certificates[0]!.toString());
    await writeFile(
      files.chain,
      svid.certificates
        .slice(1)
        .map((c) => c.toString())
        .join(''),
    );
    await writeFile(files.key, svid.privateKeyPem, { mode: 0o600 });
    return { svid, ...files };
  }

  beforeAll(async () => {
    dir = await makeTempDir('warden-mtls-');
    ca = await startInProcessWarden(path.join(dir, 'ca'));
    // Another CA, made the way an operator would: `warden init` into its own directory.
    const io = memoryIo();
    expect(await runCli(['init', '--issuer-credentials', path.join(dir, 'foreign')], io)).toBe(0);
    foreignCa = await startInProcessWarden(path.join(dir, 'foreign'));
    server = await obtain(ca, 'frontend', 'server-ed');
    client = await obtain(ca, 'backend', 'client');
    foreignServer = await obtain(foreignCa, 'frontend', 'foreign-server');
    foreignClient = await obtain(foreignCa, 'backend', 'foreign-client');
  });
  afterAll(async () => {
    await ca?.close();
    await foreignCa?.close();
    await removeTempDir(dir);
  });

  it('the foreign SVIDs name the same identities, so only the CA differs', () => {
    expect(foreignServer.svid.spiffeId).toBe(server.svid.spiffeId);
    expect(foreignClient.svid.spiffeId).toBe(client.svid.spiffeId);
    expect(foreignCa.anchorsPem).not.toBe(ca.anchorsPem);
  });

  describe('with openssl s_server and s_client', () => {
    /** One s_server (one connection) and one s_client, both with -verify_return_error against ca.crt. */
    async function opensslHandshake(
      srv: WorkloadFiles,
      cli: WorkloadFiles,
    ): Promise<{ server: Spawned; client: Spawned }> {
      const s = spawn(
        'openssl',
        [
          's_server',
          '-accept',
          '127.0.0.1:0',
          '-naccept',
          '1',
          '-cert',
          srv.cert,
          '-cert_chain',
          srv.chain,
          '-key',
          srv.key,
          '-CAfile',
          ca.anchorsFile,
          '-Verify',
          '4',
          '-verify_return_error',
        ],
        {
          stdio: ['pipe', 'pipe', 'pipe'], // stdin stays open: s_server quits on its EOF
        },
      );
      let serverOut = '';
      s.stdout.on('data', (d: Buffer) => (serverOut += d.toString()));
      s.stderr.on('data', (d: Buffer) => (serverOut += d.toString()));
      const serverExit = new Promise<number | null>((resolve) =>
        s.on('exit', (code) => resolve(code)),
      );
      const killer = setTimeout(() => s.kill('SIGKILL'), 10_000);
      try {
        const port = await waitFor(
          () => /ACCEPT 127\.0\.0\.1:(\d+)/.exec(serverOut)?.[1],
          5000,
          's_server to listen',
        );
        const c = spawn(
          'openssl',
          [
            's_client',
            '-connect',
            `127.0.0.1:${port}`,
            '-cert',
            cli.cert,
            '-cert_chain',
            cli.chain,
            '-key',
            cli.key,
            '-CAfile',
            ca.anchorsFile,
            '-verify_return_error',
            '-showcerts',
          ],
          {
            stdio: ['pipe', 'pipe', 'pipe'],
          },
        );
        let clientOut = '';
        c.stdout.on('data', (d: Buffer) => (clientOut += d.toString()));
        c.stderr.on('data', (d: Buffer) => (clientOut += d.toString()));
        c.stdin.end('ping\n');
        const clientCode = await new Promise<number | null>((resolve) =>
          c.on('exit', (code) => resolve(code)),
        );
        s.stdin.end();
        return {
          server: { code: await serverExit, out: serverOut },
          client: { code: clientCode, out: clientOut },
        };
      } finally {
        clearTimeout(killer);
        s.kill('SIGKILL');
      }
    }

    it('completes the handshake; each side sees the other’s SPIFFE ID in the peer certificate', async () => {
      const result = await opensslHandshake(server, client);
      expect(result.client.out).toContain('Verify return code: 0 (ok)');
      expect(result.client.code).toBe(0);
      // s_client -showcerts prints the server's chain, leaf first; s_server prints the client's certificate.
      expect(peerSpiffeId(CERTIFICATE_RE.exec(result.client.out)?.[0])).toBe(SERVER_ID);
      const clientCert =
        /Client certificate\n(-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----\n)/.exec(
          result.server.out,
        )?.[1];
      expect(peerSpiffeId(clientCert)).toBe(CLIENT_ID);
      expect(result.server.out).toContain('ping');
    });

    it('s_client refuses a server whose SVID comes from the foreign CA', async () => {
      const result = await opensslHandshake(foreignServer, client);
      expect(result.client.code).not.toBe(0);
      expect(result.client.out).toMatch(
        /verify error|unable to get local issuer certificate|certificate verify failed/,
      );
      expect(result.server.out).not.toContain('ping');
    });

    it('s_server refuses a client whose SVID comes from the foreign CA', async () => {
      const result = await opensslHandshake(server, foreignClient);
      expect(result.server.out).not.toContain('Client certificate');
      expect(result.server.out).not.toContain('ping');
      expect(result.server.out).toMatch(
        /verify error|unable to get local issuer certificate|certificate verify failed/i,
      );
    });
  });

  describe("with Node's TLS", () => {
    interface NodeHandshake {
      /** The SPIFFE ID the server verified on its peer and answered, or null. */
      readonly serverSawClient: string | null;
      /** The SPIFFE ID the client verified on its peer, or null. */
      readonly clientSawServer: string | null;
      readonly clientError: string | null;
      readonly serverError: string | null;
    }

    /** Each side trusts only ca.crt and accepts only the peer SPIFFE ID it expects. */
    async function nodeHandshake(srv: WorkloadFiles, cli: WorkloadFiles): Promise<NodeHandshake> {
      let serverSawClient: string | null = null;
      let serverError: string | null = null;
      const listener = tls.createServer(
        {
          key: srv.svid.privateKeyPem,
          cert: srv.svid.certificateChainPem,
          ca: ca.anchorsPem,
          requestCert: true,
          rejectUnauthorized: true,
        },
        (socket) => {
          const id = peerSpiffeId(socket.getPeerX509Certificate()?.toString());
          if (id !== CLIENT_ID) {
            serverError = `unexpected client ${String(id)}`;
            socket.destroy();
            return;
          }
          serverSawClient = id;
          socket.end('pong');
        },
      );
      listener.on('tlsClientError', (err) => (serverError = err.message));
      await new Promise<void>((resolve) => listener.listen(0, '127.0.0.1', resolve));
      try {
        return await new Promise<NodeHandshake>((resolve) => {
          let clientSawServer: string | null = null;
          const socket = tls.connect({
            host: '127.0.0.1',
            port: (listener.address() as AddressInfo).port,
            key: cli.svid.privateKeyPem,
            cert: cli.svid.certificateChainPem,
            ca: ca.anchorsPem,
            // SPIFFE: the peer is known by its URI SAN, not a host name.
            checkServerIdentity: (_host, cert) => {
              const id = peerSpiffeId(
                `-----BEGIN CERTIFICATE-----\n${cert.raw.toString('base64')}\n-----END CERTIFICATE-----\n`,
              );
              if (id !== SERVER_ID) return new Error(`unexpected server ${String(id)}`);
              clientSawServer = id;
              return undefined;
            },
          });
          let data = '';
          socket.on('data', (d: Buffer) => (data += d.toString()));
          socket.on('end', () =>
            data === 'pong'
              ? resolve({ serverSawClient, clientSawServer, clientError: null, serverError })
              : resolve({
                  serverSawClient: null,
                  clientSawServer,
                  clientError: 'closed without an answer',
                  serverError,
                }),
          );
          socket.on('error', (err) =>
            resolve({ serverSawClient, clientSawServer, clientError: err.message, serverError }),
          );
        });
      } finally {
        await new Promise<void>((resolve) => listener.close(() => resolve()));
      }
    }

    it('completes the handshake; each side verified the other’s SPIFFE ID', async () => {
      expect(await nodeHandshake(server, client)).toEqual({
        serverSawClient: CLIENT_ID,
        clientSawServer: SERVER_ID,
        clientError: null,
        serverError: null,
      });
    });

    it('the client refuses a server whose SVID comes from the foreign CA', async () => {
      const result = await nodeHandshake(foreignServer, client);
      expect(result.clientSawServer).toBeNull();
      expect(result.serverSawClient).toBeNull();
      expect(result.clientError).toMatch(/unable to get local issuer certificate|certificate/);
    });

    it('the server refuses a client whose SVID comes from the foreign CA', async () => {
      const result = await nodeHandshake(server, foreignClient);
      // Under TLS 1.3 the client may finish its half first; the server's verdict is what counts.
      expect(result.serverSawClient).toBeNull();
      expect(result.clientError ?? result.serverError).not.toBeNull();
    });

    it('the client refuses a server of the right CA with another SPIFFE ID (the ID check works)', async () => {
      const result = await nodeHandshake(client, client);
      expect(result.clientSawServer).toBeNull();
      expect(result.clientError).toContain(`unexpected server ${CLIENT_ID}`);
    });
  });
});
