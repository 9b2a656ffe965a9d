import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { X509Certificate } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import http from 'node:http';
import path from 'node:path';
import { generateTrustMaterial } from '../../../src/ca/generate.js';
import {
  createSecretsServeCommand,
  type SecretsServeListeners,
} from '../../../src/cli/secrets-serve.js';
import { validateServeInvocation } from '../../../src/cli/serve-flags.js';
import { startWardenServer, type WardenServer } from '../../../src/cli/warden-server.js';
import {
  createSentryClient,
  type WorkloadSvid,
} from '../../../src/issuer/sidecar/sentry-client.js';
import { svidRenewalTime, type RenewalTimer } from '../../../src/issuer/sidecar/svid-renewal.js';
import type { SecretsApiServer } from '../../../src/secrets/api/secrets-api-server.js';
import { writeFileAtomic } from '../../../src/shared/atomic-file.js';
import { ManualClock } from '../../../src/shared/clock.js';
import { readEnv } from '../../../src/shared/env.js';
import { silentLogger } from '../../../src/shared/logger.js';
import { memoryIo } from '../../support/cli-io.js';
import { rawRequest, type ClientResponse } from '../../support/https-client.js';
import { createTestCa } from '../../support/mtls-test-pki.js';
import { makeTempDir } from '../../support/temp-directory.js';
import { waitFor } from '../../support/wait-for.js';

/*
 * `warden secrets serve` with an SVID from Warden's CA, end to end: the CA started in-process
 * (standalone, insecure validator, ports 0), the secrets server started through the same
 * command the CLI runs, and apps calling it over mutual TLS with SVIDs from the same CA,
 * each checking the server by its SPIFFE ID.
 */

const REDIS_PASSWORD = 'svid-e2e-R3dis-pw';
const SERVER_SPIFFE_ID = 'spiffe://public/ns/default/warden-secrets';

/** Renewal timers the test fires by hand (the loop re-reads the injected clock). */
class ManualRenewalTimer implements RenewalTimer {
  readonly pending: Array<{ ms: number; callback: () => void }> = [];
  after(ms: number, callback: () => void): () => void {
    const entry = { ms, callback };
    this.pending.push(entry);
    return () => {
      const i = this.pending.indexOf(entry);
      if (i !== -1) this.pending.splice(i, 1);
    };
  }
  fire(): void {
    for (const entry of this.pending.splice(0)) entry.callback();
  }
}

function storeComponent(name: string, file: string, scopes?: string[]): string {
  return `apiVersion: dapr.io/v1alpha1
kind: Component
metadata:
  name: ${name}
spec:
  type: secretstores.local.file
  version: v1
  metadata:
  - name: secretsFile
    value: ${file}
  - name: multiValued
    value: "true"
${scopes ? `scopes:\n${scopes.map((s) => `- ${s}`).join('\n')}\n` : ''}`;
}

const CONFIGURATION = `apiVersion: dapr.io/v1alpha1
kind: Configuration
metadata:
  name: appconfig
spec:
  secrets:
    scopes:
    - storeName: lockedstore
      defaultAccess: allow
      deniedSecrets: ["redis"]
`;

function plainGet(port: number, urlPath: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port, path: urlPath, agent: false }, (res) => {
        let body = '';
        res.on('data', (c: Buffer) => (body += c.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      })
      .on('error', reject);
  });
}

describe('warden secrets serve with its own SVID from Warden’s CA', () => {
  let dir: { path: string; remove(): Promise<void> };
  let warden: WardenServer;
  let anchorsFile: string;
  let api: SecretsApiServer;
  let extras: SecretsServeListeners;
  let stop: () => void;
  let running: Promise<number>;
  const io = memoryIo({});
  const clock = new ManualClock(Date.now());
  const timer = new ManualRenewalTimer();

  async function appSvid(appId: string, trustDomain?: string): Promise<WorkloadSvid> {
    const client = createSentryClient({
      address: `127.0.0.1:${warden.grpc.port}`,
      trustAnchorsPem: await readFile(anchorsFile, 'utf8'),
      sentrySpiffeId: warden.settings.sentrySpiffeId,
    });
    return client.requestSvid({
      appId,
      namespace: 'default',
      tokenValidator: 'insecure',
      ...(trustDomain ? { trustDomain } : {}),
    });
  }

  /** The app verifies the server against the anchors published now (ca.crt), as a sidecar's bundle follows a rotation. */
  async function get(svid: WorkloadSvid, urlPath: string): Promise<ClientResponse> {
    return rawRequest(api.address?.port ?? 0, urlPath, {
      tls: {
        ca: await readFile(anchorsFile, 'utf8'),
        cert: svid.certificateChainPem,
        key: svid.privateKeyPem,
        serverSpiffeId: SERVER_SPIFFE_ID,
      },
    });
  }

  beforeAll(async () => {
    dir = await makeTempDir('secrets-serve-svid');
    const credentials = path.join(dir.path, 'credentials');
    const result = await validateServeInvocation(
      [
        '--port=0',
        '--healthz-port=0',
        '--enable-metrics=false',
        '--listen-address=127.0.0.1',
        '--workers=1',
        `--issuer-credentials=${credentials}`,
      ],
      readEnv({}),
    );
    if (!result.ok)
      throw new Error(result.problems.map((p) => `${p.path}: ${p.message}`).join('\n'));
    warden = await startWardenServer(result.settings, { logger: silentLogger });
    anchorsFile = result.settings.credentials.caFile;

    const resources = path.join(dir.path, 'components');
    await mkdir(resources);
    const secretsFile = path.join(dir.path, 'secrets.json');
    await writeFile(secretsFile, JSON.stringify({ redis: { 'redis-password': REDIS_PASSWORD } }));
    await writeFile(
      path.join(resources, 'appsecrets.yaml'),
      storeComponent('appsecrets', secretsFile, ['orders']),
    );
    await writeFile(
      path.join(resources, 'lockedstore.yaml'),
      storeComponent('lockedstore', secretsFile),
    );
    const config = path.join(dir.path, 'config.yaml');
    await writeFile(config, CONFIGURATION);

    const stopped = new Promise<void>((resolve) => (stop = resolve));
    const listening = new Promise<void>((resolve) => {
      const command = createSecretsServeCommand({
        untilShutdown: () => stopped,
        onListening: (server, more) => {
          api = server;
          extras = more;
          resolve();
        },
        clock,
        renewalTimer: timer,
      });
      running = command.run(
        [
          '--resources-path',
          resources,
          '--config',
          config,
          '--port=0',
          '--healthz-port=0',
          '--metrics-port=0',
          '--sentry-address',
          `127.0.0.1:${warden.grpc.port}`,
          '--trust-anchors-file',
          anchorsFile,
          '--token-validator',
          'insecure',
          '--log-level',
          'debug',
        ],
        io,
      );
    });
    await Promise.race([
      listening,
      running.then((code) =>
        Promise.reject(new Error(`secrets serve exited ${code}: ${io.err()}`)),
      ),
    ]);
  }, 30_000);

  afterAll(async () => {
    stop?.();
    await running?.catch(() => undefined);
    await warden?.close(0);
    await dir?.remove();
  });

  it('presents its own SVID, spiffe://public/ns/default/warden-secrets, chaining to the CA’s anchors', async () => {
    const orders = await appSvid('orders');
    const res = await get(orders, '/v1.0/secrets/appsecrets/redis');
    expect(res.status).toBe(200);
    const leaf = res.serverCertificate as X509Certificate;
    expect(leaf.subjectAltName).toBe(`URI:${SERVER_SPIFFE_ID}`);
    expect(extras.svid?.current().serialNumber).toBe(leaf.serialNumber);
    // what the pinned default named: the CA's own SPIFFE ID in trust domain localhost
    expect(warden.settings.sentrySpiffeId).toBe('spiffe://localhost/ns/default/dapr-sentry');
  });

  it('answers an app allowed by the Component and Configuration scopes with the value', async () => {
    const res = await get(await appSvid('orders'), '/v1.0/secrets/appsecrets/redis');
    expect(res).toMatchObject({ status: 200, body: { 'redis-password': REDIS_PASSWORD } });
  });

  it('refuses an app id outside the Component’s scopes with 403', async () => {
    const res = await get(await appSvid('billing'), '/v1.0/secrets/appsecrets/redis');
    expect(res).toMatchObject({ status: 403, body: { errorCode: 'ERR_PERMISSION_DENIED' } });
    expect(JSON.stringify(res.body)).not.toContain(REDIS_PASSWORD);
  });

  it('refuses a name the Configuration’s spec.secrets.scopes denies with 403', async () => {
    const res = await get(await appSvid('orders'), '/v1.0/secrets/lockedstore/redis');
    expect(res).toMatchObject({ status: 403, body: { errorCode: 'ERR_PERMISSION_DENIED' } });
  });

  it('refuses an SVID of the same CA in another trust domain with 403', async () => {
    const res = await get(await appSvid('orders', 'example.org'), '/v1.0/secrets/appsecrets/redis');
    expect(res).toMatchObject({ status: 403, body: { errorCode: 'ERR_PERMISSION_DENIED' } });
  });

  it('refuses a client certificate from a foreign CA during the TLS handshake', async () => {
    const foreign = await createTestCa('Foreign CA');
    const client = await foreign.issue({
      usage: 'client',
      uris: ['spiffe://public/ns/default/orders'],
    });
    const anchors = await readFile(anchorsFile, 'utf8');
    const outcome = await rawRequest(api.address?.port ?? 0, '/v1.0/secrets/appsecrets/redis', {
      tls: {
        ca: anchors,
        cert: client.certPem,
        key: client.keyPem,
        serverSpiffeId: SERVER_SPIFFE_ID,
      },
    }).then(
      (res) => `answered ${res.status}`,
      (err: NodeJS.ErrnoException) => `refused: ${err.code ?? err.message}`,
    );
    expect(outcome).toMatch(/^refused: /);
    // and a client without any certificate
    const bare = await rawRequest(api.address?.port ?? 0, '/v1.0/secrets/appsecrets/redis', {
      tls: { ca: anchors, serverSpiffeId: SERVER_SPIFFE_ID },
    }).then(
      (res) => `answered ${res.status}`,
      (err: NodeJS.ErrnoException) => `refused: ${err.code ?? err.message}`,
    );
    expect(bare).toMatch(/^refused: /);
  });

  it('serves /healthz (every store ready, the SVID valid) and /metrics with the warden_secrets_* series', async () => {
    const health = await plainGet(extras.health.port, '/healthz');
    expect(health).toEqual({ status: 200, body: '{"status":"ok"}\n' });
    expect(extras.readiness.report()).toEqual({ ready: true, notReady: [] });
    const metrics = await plainGet(extras.metrics?.port ?? 0, '/metrics');
    expect(metrics.status).toBe(200);
    expect(metrics.body).toMatch(
      /warden_secrets_gets_total\{store="appsecrets",operation="get"\} [1-9]/,
    );
    expect(metrics.body).toMatch(
      /warden_secrets_errors_total\{store="lockedstore",code="ERR_SECRET_PERMISSION_DENIED"\} 1/,
    );
    expect(metrics.body).not.toContain(REDIS_PASSWORD);
    expect(metrics.body).not.toContain('orders');
  });

  it('renews at half the lifetime, swaps the TLS context without a restart, and picks up a root rotation', async () => {
    const before = await appSvid('orders'); // issued under the first root
    const first = (await get(before, '/v1.0/secrets/appsecrets/redis'))
      .serverCertificate as X509Certificate;
    const current = extras.svid?.current() as WorkloadSvid;
    const dueAt = svidRenewalTime(current);
    expect(extras.svid?.nextRenewalAt()).toEqual(dueAt);
    expect(dueAt.getTime()).toBe(
      current.notBefore.getTime() +
        Math.floor((current.notAfter.getTime() - current.notBefore.getTime()) / 2),
    );

    // Rotation, first phase: the CA trusts old and new roots and signs with a new issuer.
    const oldAnchors = await readFile(anchorsFile, 'utf8');
    const next = await generateTrustMaterial({ trustDomain: 'localhost' });
    const credentials = warden.settings.credentials;
    await writeFileAtomic(credentials.keyFile, next.material.issuerKeyPem, 0o600);
    await writeFileAtomic(credentials.certificateFile, next.material.issuerChainPem, 0o644);
    await writeFileAtomic(credentials.caFile, oldAnchors + next.material.anchorsPem, 0o644);
    await warden.ca.reload();
    const after = await appSvid('orders'); // issued under the new root
    expect(after.certificates[1]?.fingerprint256).toBe(
      new X509Certificate(next.material.issuerChainPem).fingerprint256,
    );

    // Not yet renewed: the server does not know the new root, so the new SVID is refused.
    const refused = await get(after, '/v1.0/secrets/appsecrets/redis').then(
      (res) => `answered ${res.status}`,
      () => 'refused',
    );
    expect(refused).toBe('refused');

    // A wake-up before the due time renews nothing.
    clock.set(dueAt.getTime() - 1000);
    timer.fire();
    await new Promise((r) => setTimeout(r, 50));
    expect(extras.svid?.current().serialNumber).toBe(first.serialNumber);

    // At 50 %: a new SVID, served on new connections by the same listener.
    clock.set(dueAt);
    timer.fire();
    const renewed = await waitFor(
      async () => {
        const leaf = (await get(before, '/v1.0/secrets/appsecrets/redis'))
          .serverCertificate as X509Certificate;
        return leaf.serialNumber !== first.serialNumber ? leaf : undefined;
      },
      10_000,
      'the renewed server certificate',
    );
    expect(renewed.subjectAltName).toBe(`URI:${SERVER_SPIFFE_ID}`);
    expect(renewed.verify(new X509Certificate(next.material.issuerChainPem).publicKey)).toBe(true);
    expect(timer.pending.length).toBe(1); // the loop scheduled the next renewal

    // Both roots are trusted now: apps from before and after the rotation are answered.
    expect(await get(after, '/v1.0/secrets/appsecrets/redis')).toMatchObject({
      status: 200,
      body: { 'redis-password': REDIS_PASSWORD },
    });
    expect(await get(before, '/v1.0/secrets/appsecrets/redis')).toMatchObject({ status: 200 });
    expect(io.err()).toContain('TLS material replaced');
  }, 30_000);

  it('never logs the secret value or a private key', () => {
    expect(io.err()).not.toContain(REDIS_PASSWORD);
    expect(io.err()).not.toContain('PRIVATE KEY');
  });
});
