import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { status as GrpcStatus, type ServiceError } from '@grpc/grpc-js';
import { generateKeyAndCsr } from '../../../src/issuer/sidecar/workload-csr.js';
import { JwksTestServer } from '../../support/jwks-test-server.js';
import { joseKey, joseToken, jwks, type JoseSigningKey } from '../../support/jwt-fixtures.js';
import {
  createSentryTestClient,
  signError,
  type SentryTestClient,
} from '../../support/sentry-proto-client.js';
import { makeTempDir, removeTempDir } from '../../support/temp-dir.js';
import { waitFor } from '../../support/wait-for.js';
import { startWardenServe, type ServeChild } from '../../support/warden-process.js';

/**
 * SIGTERM with calls provably in flight: the calls carry JWTs whose key the jwks validator
 * does not have yet, so each waits inside the CA for a JWKS fetch that the test holds open.
 * The signal is sent while they wait; the fetch is answered only after the CA has begun to
 * drain. A timing race cannot make this pass or fail.
 */

const SENTRY_ID = 'spiffe://localhost/ns/default/dapr-sentry';
const IN_FLIGHT = 8;

type Outcome = { ok: true } | { ok: false; code: number; details: string };

interface LogLine {
  readonly msg?: string;
  readonly event?: string;
}

function logLines(text: string): LogLine[] {
  return text
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as LogLine);
}

async function metric(port: number, series: string): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? Number.NaN : Number(line.slice(series.length + 1));
}

describe('warden serve drains in-flight SignCertificate calls on SIGTERM', () => {
  let dir: string;
  let jwksServer: JwksTestServer;
  let server: ServeChild;
  let client: SentryTestClient;
  let oldKey: JoseSigningKey;
  let newKey: JoseSigningKey;
  let tokens: string[];
  let outcomes: Outcome[];
  let lateCall: { code: number; details: string };
  let exit: { code: number | null; signal: NodeJS.Signals | null };

  beforeAll(async () => {
    dir = await makeTempDir('warden-drain-');
    oldKey = await joseKey('ES256', 'old');
    newKey = await joseKey('ES256', 'new');
    jwksServer = await JwksTestServer.start();
    jwksServer.body = jwks(oldKey.publicJwk);
    const config = path.join(dir, 'config.yaml');
    await writeFile(
      config,
      `apiVersion: dapr.io/v1alpha1
kind: Configuration
metadata:
  name: daprsystem
spec:
  mtls:
    tokenValidators:
      - name: insecure
      - name: jwks
        options:
          source: ${jwksServer.url('http')}
          minRefreshInterval: 200ms
`,
    );
    server = await startWardenServe({ cwd: dir, args: ['--config', config] });
    await waitFor(
      async () =>
        (await fetch(`http://127.0.0.1:${server.healthzPort}/healthz`)).status === 200
          ? true
          : undefined,
      10_000,
      '/healthz 200',
    );
    client = createSentryTestClient({
      address: server.grpcAddress,
      anchorsPem: await readFile(server.anchorsFile, 'utf8'),
      expectedSpiffeId: SENTRY_ID,
    });

    // The next JWKS fetch (the validator's background refresh) is held open, and the JWKS it
    // will eventually return holds the key the calls' tokens are signed with.
    await jwksServer.hold();
    jwksServer.body = jwks(oldKey.publicJwk, newKey.publicJwk);
    const now = Math.floor(Date.now() / 1000);
    tokens = [];
    const received = await metric(
      server.metricsPort,
      'dapr_sentry_cert_sign_request_received_total',
    );
    const calls = Array.from({ length: IN_FLIGHT }, async (_, i): Promise<Outcome> => {
      const token = await joseToken(newKey, {
        sub: `spiffe://public/ns/default/drain-${i}`,
        aud: SENTRY_ID,
        iat: now,
        exp: now + 300,
      });
      tokens.push(token);
      return client
        .sign({
          id: `drain-${i}`,
          namespace: 'default',
          token,
          token_validator: 'JWKS',
          certificate_signing_request: Buffer.from(generateKeyAndCsr('ecdsa-p256').csrPem),
        })
        .then(
          (): Outcome => ({ ok: true }),
          (err: ServiceError): Outcome => ({ ok: false, code: err.code, details: err.details }),
        );
    });
    // Every call has reached the CA (and waits there for the held fetch)...
    await waitFor(
      async () =>
        (await metric(server.metricsPort, 'dapr_sentry_cert_sign_request_received_total')) ===
        received + IN_FLIGHT
          ? true
          : undefined,
      10_000,
      'the calls to arrive',
    );
    // ...when the signal comes; the CA starts draining while they still wait.
    server.process.kill('SIGTERM');
    await waitFor(
      () =>
        logLines(server.stderr()).some((l) => l.msg === 'shutting down: draining in-flight calls')
          ? true
          : undefined,
      10_000,
      'the drain to begin',
    );
    const late = createSentryTestClient({
      address: server.grpcAddress,
      anchorsPem: await readFile(server.anchorsFile, 'utf8'),
      expectedSpiffeId: SENTRY_ID,
    });
    lateCall = await signError(
      late.sign(
        {
          id: 'late',
          namespace: 'default',
          certificate_signing_request: Buffer.from(generateKeyAndCsr('ecdsa-p256').csrPem),
        },
        3000,
      ),
    );
    late.close();
    jwksServer.release();
    outcomes = await Promise.all(calls);
    exit = await server.exited;
  });
  afterAll(async () => {
    client.close();
    await server.stop('SIGKILL');
    await jwksServer.close();
    await removeTempDir(dir);
  });

  it('completes every call that was in flight with a certificate', () => {
    expect(outcomes).toEqual(Array.from({ length: IN_FLIGHT }, () => ({ ok: true })));
  });

  it('issued those certificates after it had begun to drain (its own log orders the two)', () => {
    const lines = logLines(server.stderr());
    const drainAt = lines.findIndex((l) => l.msg === 'shutting down: draining in-flight calls');
    expect(drainAt).toBeGreaterThan(-1);
    expect(lines.slice(0, drainAt).filter((l) => l.event === 'certificate.issued')).toHaveLength(0);
    expect(lines.slice(drainAt).filter((l) => l.event === 'certificate.issued')).toHaveLength(
      IN_FLIGHT,
    );
    expect(lines.at(-1)?.msg).toBe('stopped');
  });

  it('refuses a call that arrives during the drain with UNAVAILABLE', () => {
    expect(lateCall.code).toBe(GrpcStatus.UNAVAILABLE);
    expect(lateCall.details.length).toBeGreaterThan(0);
  });

  it('exits with code 0', () => {
    expect(exit).toEqual({ code: 0, signal: null });
  });

  it('never logged the tokens', () => {
    expect(tokens).toHaveLength(IN_FLIGHT);
    for (const token of tokens) {
      expect(server.stderr()).not.toContain(token);
      expect(server.stderr()).not.toContain(token.split('.')[2]);
    }
  });
});
