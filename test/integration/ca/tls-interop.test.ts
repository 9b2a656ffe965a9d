import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { AddressInfo } from 'node:net';
import tls from 'node:tls';
import { startFileCa, type FileCa } from '../../../src/ca/file-ca.js';
import { generateTrustMaterial, type CaCredential } from '../../../src/ca/generate.js';
import { mintCertificate, mintLeaf } from '../../support/pki-fixtures.js';
import { makeTempDir, removeTempDir } from '../../support/temp-dir.js';

interface Handshake {
  readonly clientAuthorized: boolean;
  readonly clientError: string | null;
  readonly serverSawClient: string | null;
}

/** Mutual TLS through Node's own stack (OpenSSL underneath): server and client trust only ca.crt. */
async function handshake(
  anchorsPem: string,
  chainPem: string,
  server: CaCredential,
  client: CaCredential,
): Promise<Handshake> {
  let serverSawClient: string | null = null;
  const srv = tls.createServer(
    {
      key: server.privateKeyPem,
      cert: server.certificatePem + chainPem,
      ca: anchorsPem,
      requestCert: true,
      rejectUnauthorized: true,
    },
    (socket) => {
      serverSawClient = socket.getPeerCertificate().subjectaltname ?? null;
      socket.end('ok');
    },
  );
  // A handshake the server rejects surfaces on the client as a reset; not an uncaught error.
  srv.on('tlsClientError', () => undefined);
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  const port = (srv.address() as AddressInfo).port;
  try {
    return await new Promise<Handshake>((resolve) => {
      const socket = tls.connect({
        host: '127.0.0.1',
        port,
        key: client.privateKeyPem,
        cert: client.certificatePem + chainPem,
        ca: anchorsPem,
        rejectUnauthorized: false, // we read the verdict ourselves below
        checkServerIdentity: () => undefined, // SPIFFE identities, not host names
      });
      socket.on('secureConnect', () => {
        const verdict = {
          clientAuthorized: socket.authorized,
          clientError: socket.authorizationError ? String(socket.authorizationError) : null,
        };
        socket.on('data', () => undefined);
        socket.on('end', () => resolve({ ...verdict, serverSawClient }));
        socket.on('error', () => resolve({ ...verdict, serverSawClient }));
      });
      socket.on('error', (err) =>
        resolve({ clientAuthorized: false, clientError: err.message, serverSawClient }),
      );
    });
  } finally {
    await new Promise<void>((resolve) => srv.close(() => resolve()));
  }
}

describe.each(['ecdsa-p256', 'ed25519'] as const)(
  'generated %s material under Node TLS',
  (keyAlgorithm) => {
    let dir: string;
    let ca: FileCa;
    let issuer: CaCredential;

    beforeAll(async () => {
      dir = await makeTempDir();
      ca = await startFileCa({ credentialsDir: dir, trustDomain: 'example.org', keyAlgorithm });
      issuer = {
        certificatePem: ca.current().issuerChainPem,
        privateKeyPem: ca.current().issuerKeyPem,
      };
    });
    afterAll(async () => {
      await ca.close();
      await removeTempDir(dir);
    });

    it('completes a mutual-TLS handshake between two workloads of the trust domain', async () => {
      const now = new Date();
      const server = await mintLeaf(issuer, 'spiffe://example.org/ns/default/server', now, {
        dnsNames: ['localhost'],
      });
      const client = await mintLeaf(issuer, 'spiffe://example.org/ns/default/client', now);
      const result = await handshake(
        ca.current().anchorsPem,
        ca.current().issuerChainPem,
        server,
        client,
      );
      expect(result).toEqual({
        clientAuthorized: true,
        clientError: null,
        serverSawClient: 'URI:spiffe://example.org/ns/default/client',
      });
    });

    it("completes mutual TLS between workloads of Dapr's default trust domain `public` (not the CA's own)", async () => {
      const now = new Date();
      const server = await mintLeaf(issuer, 'spiffe://public/ns/default/server', now);
      const client = await mintLeaf(issuer, 'spiffe://public/ns/default/client', now);
      const result = await handshake(
        ca.current().anchorsPem,
        ca.current().issuerChainPem,
        server,
        client,
      );
      expect(result).toEqual({
        clientAuthorized: true,
        clientError: null,
        serverSawClient: 'URI:spiffe://public/ns/default/client',
      });
    });

    it('rejects a server leaf for another trust domain under an issuer made with nameConstraint', async () => {
      const constrained = await generateTrustMaterial({
        trustDomain: 'example.org',
        keyAlgorithm,
        nameConstraint: true,
      });
      const now = new Date();
      const server = await mintLeaf(constrained.issuer, 'spiffe://evil.org/ns/default/server', now);
      const client = await mintLeaf(
        constrained.issuer,
        'spiffe://example.org/ns/default/client',
        now,
      );
      const result = await handshake(
        constrained.material.anchorsPem,
        constrained.material.issuerChainPem,
        server,
        client,
      );
      expect(result.clientAuthorized).toBe(false);
      // Node maps OpenSSL's X509_V_ERR_PERMITTED_VIOLATION to no name of its own.
      expect(result.clientError).not.toBeNull();
    });

    it('control: the same foreign leaf under an issuer without the name constraint is accepted', async () => {
      const generated = await generateTrustMaterial({ trustDomain: 'example.org', keyAlgorithm });
      const now = new Date();
      const unconstrained = await mintCertificate({
        subject: 'CN=unconstrained-issuer',
        signer: generated.root,
        ca: true,
        key: keyAlgorithm,
        notBefore: new Date(now.getTime() - 60_000),
        notAfter: new Date(now.getTime() + 86_400_000),
      });
      const server = await mintLeaf(unconstrained, 'spiffe://evil.org/ns/default/server', now);
      const client = await mintLeaf(unconstrained, 'spiffe://example.org/ns/default/client', now);
      const result = await handshake(
        generated.material.anchorsPem,
        unconstrained.certificatePem,
        server,
        client,
      );
      expect(result.clientAuthorized).toBe(true);
    });
  },
);
