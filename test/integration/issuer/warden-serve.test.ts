import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { generateKeyAndCsr } from '../../../src/issuer/sidecar/workload-csr.js';
import { createSentryTestClient } from '../../support/sentry-proto-client.js';
import { makeTempDir, removeTempDir } from '../../support/temp-dir.js';

const MAIN = fileURLToPath(new URL('../../../src/cli/main.js', import.meta.url));

interface Serving {
  readonly child: ChildProcess;
  readonly lines: string[];
  readonly grpcAddress: string;
  exited(): Promise<number | null>;
}

/** `warden serve` as a child process; resolves once it logs "warden is serving". */
function serve(dir: string): Promise<Serving> {
  const child = spawn(
    process.execPath,
    [
      MAIN,
      'serve',
      '--issuer-credentials',
      dir,
      '--port',
      '0',
      '--healthz-port',
      '0',
      '--metrics-port',
      '0',
      '--workers',
      '2',
      '--log-level',
      'info',
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  const lines: string[] = [];
  const exit = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return new Promise((resolve, reject) => {
    let buffer = '';
    child.stderr?.on('data', (chunk: Buffer) => {
      buffer += chunk.toString();
      let newline: number;
      while ((newline = buffer.indexOf('\n')) !== -1) {
        const line = buffer.slice(0, newline);
        buffer = buffer.slice(newline + 1);
        lines.push(line);
        if (line.includes('"msg":"warden is serving"')) {
          const { grpc } = JSON.parse(line) as { grpc: string };
          resolve({ child, lines, grpcAddress: grpc, exited: () => exit });
        }
      }
    });
    void exit.then((code) =>
      reject(new Error(`warden serve exited (${code}):\n${lines.join('\n')}`)),
    );
  });
}

describe('warden serve (a child process, as a user runs it)', () => {
  let root: string;
  let dir: string;
  let server: Serving;

  beforeAll(async () => {
    root = await makeTempDir();
    dir = path.join(root, 'credentials');
    execFileSync(process.execPath, [MAIN, 'init', '--issuer-credentials', dir], { stdio: 'pipe' });
    server = await serve(dir);
  });

  afterAll(async () => {
    if (server.child.exitCode === null) server.child.kill('SIGKILL');
    await removeTempDir(root);
  });

  it('issues a workload certificate that chains to ca.crt, logging one audit line for it', async () => {
    const anchorsPem = readFileSync(path.join(dir, 'ca.crt'), 'utf8');
    const client = createSentryTestClient({
      address: server.grpcAddress,
      anchorsPem,
      expectedSpiffeId: 'spiffe://localhost/ns/default/dapr-sentry',
    });
    const { csrPem } = generateKeyAndCsr('ecdsa-p256');
    try {
      // Sequential calls: a lone call (signed in the gRPC thread once the pool is idle) and
      // calls in flight together (signed by the workers) give the same profile.
      const lone = await client.sign({
        id: 'orders',
        namespace: 'default',
        certificate_signing_request: Buffer.from(csrPem),
        token_validator: 'INSECURE',
      });
      const together = await Promise.all(
        Array.from({ length: 8 }, () =>
          client.sign({
            id: 'orders',
            namespace: 'default',
            certificate_signing_request: Buffer.from(generateKeyAndCsr('ecdsa-p256').csrPem),
            token_validator: 'INSECURE',
          }),
        ),
      );
      const root = new X509Certificate(anchorsPem);
      const issuer = new X509Certificate(readFileSync(path.join(dir, 'issuer.crt')));
      for (const response of [lone, ...together]) {
        const leaf = new X509Certificate(response.workload_certificate);
        expect(leaf.subjectAltName).toBe('URI:spiffe://public/ns/default/orders');
        expect(leaf.verify(issuer.publicKey)).toBe(true);
        expect(issuer.verify(root.publicKey)).toBe(true);
        expect(response.trust_chain_certificates.map((c) => c.toString())).toEqual([
          root.toString(),
        ]);
      }
    } finally {
      client.close();
    }
    const audit = server.lines.filter((line) => line.includes('"event":"certificate.issued"'));
    expect(audit).toHaveLength(9);
    expect(server.lines.join('\n')).not.toContain(csrPem.split('\n')[1] as string);
  });

  it('drains and exits 0 on SIGTERM', async () => {
    server.child.kill('SIGTERM');
    expect(await server.exited()).toBe(0);
    expect(server.lines.some((line) => line.includes('"msg":"stopped"'))).toBe(true);
  });
});
