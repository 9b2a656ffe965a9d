import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { X509Certificate } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import net, { type AddressInfo } from 'node:net';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { loadSentryServiceDefinition } from '../../../src/issuer/grpc/sentry-proto.js';
import {
  createSentryClient,
  type SentryClientOptions,
  type WorkloadSvid,
} from '../../../src/issuer/sidecar/sentry-client.js';
import { startSvidRenewal, type RenewalTimer } from '../../../src/issuer/sidecar/svid-renewal.js';
import { WORKLOAD_KEY_TYPES } from '../../../src/issuer/sidecar/workload-csr.js';
import { ManualClock } from '../../../src/shared/clock.js';
import { isWardenError, type WardenError } from '../../../src/shared/errors.js';
import { startInProcessWarden, type InProcessWarden } from '../../support/in-process-warden.js';
import { createTestCa } from '../../support/mtls-test-pki.js';
import { makeTempDir, removeTempDir } from '../../support/temp-dir.js';

/** The sidecar client against a real CA (in-process), a closed port, a flaky path and a lying CA. */

const SENTRY_ID = 'spiffe://localhost/ns/default/dapr-sentry';

async function failure(promise: Promise<unknown>): Promise<WardenError> {
  try {
    await promise;
  } catch (err) {
    if (isWardenError(err)) return err;
    throw err;
  }
  throw new Error('the request succeeded');
}

/** A TCP listener on an ephemeral port; `onSocket` decides what each connection gets. */
async function listen(
  onSocket: (socket: net.Socket, n: number) => void,
): Promise<{ port: number; close(): Promise<void> }> {
  let n = 0;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
    onSocket(socket, ++n);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

describe('the sidecar client (createSentryClient)', () => {
  let dir: string;
  let ca: InProcessWarden;
  let sleeps: number[];

  const options = (overrides: Partial<SentryClientOptions> = {}): SentryClientOptions => ({
    address: ca.address,
    trustAnchorsPem: ca.anchorsPem,
    sentrySpiffeId: SENTRY_ID,
    sleep: async (ms) => {
      sleeps.push(ms);
    },
    ...overrides,
  });

  beforeAll(async () => {
    dir = await makeTempDir('warden-client-');
    ca = await startInProcessWarden(path.join(dir, 'ca'));
  });
  afterAll(async () => {
    await ca.close();
    await removeTempDir(dir);
  });

  describe.each(WORKLOAD_KEY_TYPES)('with a %s key', (keyType) => {
    let svid: WorkloadSvid;

    beforeAll(async () => {
      sleeps = [];
      svid = await createSentryClient(options()).requestSvid({
        appId: 'orders',
        namespace: 'shop',
        keyType,
      });
    });

    it('returns the identity it asked for, on one attempt', () => {
      expect(sleeps).toEqual([]);
      expect(svid.spiffeId).toBe('spiffe://public/ns/shop/orders');
      expect(svid.identity).toEqual({ trustDomain: 'public', namespace: 'shop', appId: 'orders' });
      expect(svid.keyType).toBe(keyType);
    });

    it('returns the leaf for its own key, the issuer chain and the anchors the CA keeps in ca.crt', async () => {
      const [leaf, ...issuers] = svid.certificates;
      expect(leaf!.checkPrivateKey(svid.privateKey)).toBe(true);
      expect(svid.privateKeyPem).toMatch(/^-----BEGIN PRIVATE KEY-----\n/);
      expect(issuers.map((c) => c.toString()).join('')).toBe(
        await readFile(ca.server.settings.credentials.certificateFile, 'utf8'),
      );
      expect(svid.certificateChainPem).toBe(svid.certificates.map((c) => c.toString()).join(''));
      expect(svid.trustAnchorsPem).toBe(ca.anchorsPem);
      expect(svid.notAfter.getTime()).toBe(Date.parse(leaf!.validTo));
      expect(svid.notBefore.getTime()).toBe(Date.parse(leaf!.validFrom));
      expect(svid.serialNumber).toBe(leaf!.serialNumber);
    });
  });

  it('tries 5 times with a growing, jittered pause when the CA cannot be reached, then names the status', async () => {
    const closed = await listen(() => undefined);
    await closed.close();
    sleeps = [];
    const err = await failure(
      createSentryClient(options({ address: `127.0.0.1:${closed.port}` })).requestSvid({
        appId: 'a',
        namespace: 'default',
      }),
    );
    expect(err.code).toBe('ERR_SENTRY_REQUEST_FAILED');
    expect(err.message).toBe(
      `UNAVAILABLE: connect ECONNREFUSED 127.0.0.1:${closed.port} (after 5 attempts)`,
    );
    expect(err.details).toMatchObject({ grpcStatus: 'UNAVAILABLE' });
    expect(sleeps).toHaveLength(4);
    [250, 500, 1000, 2000].forEach((base, i) => {
      expect(sleeps[i]).toBeGreaterThanOrEqual(base * 0.8);
      expect(sleeps[i]).toBeLessThanOrEqual(base * 1.2);
    });
  });

  it('gets through when the path recovers within the tries', async () => {
    const target = ca.server.grpc.port;
    const flaky = await listen((socket, n) => {
      if (n <= 2) {
        socket.destroy();
        return;
      }
      const upstream = net.connect(target, '127.0.0.1');
      upstream.on('error', () => socket.destroy());
      socket.on('close', () => upstream.destroy());
      upstream.on('close', () => socket.destroy());
      socket.pipe(upstream).pipe(socket);
    });
    try {
      sleeps = [];
      const svid = await createSentryClient(
        options({ address: `127.0.0.1:${flaky.port}` }),
      ).requestSvid({ appId: 'a', namespace: 'default' });
      expect(svid.spiffeId).toBe('spiffe://public/ns/default/a');
      expect(sleeps).toHaveLength(2);
    } finally {
      await flaky.close();
    }
  });

  it('gives each try its own deadline (a CA that never answers the handshake)', async () => {
    const silent = await listen(() => undefined);
    try {
      sleeps = [];
      const err = await failure(
        createSentryClient(
          options({ address: `127.0.0.1:${silent.port}`, attempts: 2, attemptTimeoutMs: 200 }),
        ).requestSvid({ appId: 'a', namespace: 'default' }),
      );
      expect(err.message).toMatch(/^DEADLINE_EXCEEDED: .* \(after 2 attempts\)$/);
      expect(sleeps).toHaveLength(1);
    } finally {
      await silent.close();
    }
  });

  it.each([
    [
      'the CA refuses the request',
      {},
      { appId: 'a', namespace: 'default', tokenValidator: 'jwks' as const },
      'ERR_SENTRY_REQUEST_FAILED',
      /^INVALID_ARGUMENT: ERR_VALIDATOR_NOT_ENABLED: /,
    ],
    [
      'the CA is not the pinned SPIFFE ID',
      { sentrySpiffeId: 'spiffe://localhost/ns/dapr-system/dapr-sentry' },
      { appId: 'a', namespace: 'default' },
      'ERR_SENTRY_NOT_TRUSTED',
      /is not spiffe:\/\/localhost\/ns\/dapr-system\/dapr-sentry: it presented \["spiffe:\/\/localhost\/ns\/default\/dapr-sentry"\]$/,
    ],
  ])('does not retry when %s', async (_name, overrides, request, code, message) => {
    sleeps = [];
    const err = await failure(createSentryClient(options(overrides)).requestSvid(request));
    expect(err.code).toBe(code);
    expect(err.message).toMatch(message);
    expect(sleeps).toEqual([]);
  });

  it('does not retry when the CA certificate does not chain to the anchors', async () => {
    const foreign = await createTestCa('Foreign');
    sleeps = [];
    const err = await failure(
      createSentryClient(options({ trustAnchorsPem: foreign.certPem })).requestSvid({
        appId: 'a',
        namespace: 'default',
      }),
    );
    expect(err.code).toBe('ERR_SENTRY_NOT_TRUSTED');
    expect(err.message).toMatch(
      /does not verify against the trust anchors: unable to get local issuer certificate$/,
    );
    expect(sleeps).toEqual([]);
  });

  it('refuses an invalid request before any call', async () => {
    sleeps = [];
    const err = await failure(
      createSentryClient(options({ address: '127.0.0.1:1' })).requestSvid({
        appId: 'a',
        namespace: 'a/ns/b',
      }),
    );
    expect(err.code).toBe('ERR_REQUEST_INVALID');
    expect(sleeps).toEqual([]);
  });

  it('refuses what a lying CA returns (a certificate for a key it did not ask for)', async () => {
    const testCa = await createTestCa('Lying CA');
    const serving = await testCa.issue({
      usage: 'server',
      uris: [SENTRY_ID],
      dns: ['dapr-sentry'],
    });
    const stranger = await testCa.issue({
      usage: 'client',
      uris: ['spiffe://public/ns/default/a'],
    });
    const server = new grpc.Server();
    server.addService(loadSentryServiceDefinition(), {
      SignCertificate: (_call: unknown, callback: grpc.sendUnaryData<unknown>) =>
        callback(null, {
          workloadCertificate: Buffer.from(stranger.certPem),
          trustChainCertificates: [Buffer.from(testCa.certPem)],
          validUntil: {
            seconds: Math.floor(Date.parse(new X509Certificate(stranger.certPem).validTo) / 1000),
            nanos: 0,
          },
        }),
    });
    const port = await new Promise<number>((resolve, reject) =>
      server.bindAsync(
        '127.0.0.1:0',
        grpc.ServerCredentials.createSsl(null, [
          { cert_chain: Buffer.from(serving.certPem), private_key: Buffer.from(serving.keyPem) },
        ]),
        (err, p) => (err ? reject(err) : resolve(p)),
      ),
    );
    try {
      sleeps = [];
      const err = await failure(
        createSentryClient(
          options({ address: `127.0.0.1:${port}`, trustAnchorsPem: testCa.certPem }),
        ).requestSvid({ appId: 'a', namespace: 'default' }),
      );
      expect(err.code).toBe('ERR_SVID_INVALID');
      expect(err.message).toBe('the leaf does not certify the key this request generated');
    } finally {
      server.forceShutdown();
    }
  });

  it('renews through startSvidRenewal at half-life with a fresh key from the same CA', async () => {
    const client = createSentryClient(options());
    const first = await client.requestSvid({ appId: 'renewing', namespace: 'default' });
    const clock = new ManualClock(first.notBefore);
    let fire: (() => void) | null = null;
    const timer: RenewalTimer = {
      after: (_ms, callback) => {
        fire = callback;
        return () => (fire = null);
      },
    };
    const renewed = new Promise<WorkloadSvid>((resolve) => {
      const renewal = startSvidRenewal({
        initial: first,
        renew: () => client.requestSvid({ appId: 'renewing', namespace: 'default' }),
        onRenewed: (svid) => {
          renewal.stop();
          resolve(svid);
        },
        clock,
        timer,
      });
    });
    clock.set(
      first.notBefore.getTime() + (first.notAfter.getTime() - first.notBefore.getTime()) / 2,
    );
    (fire as unknown as () => void)();
    const second = await renewed;
    expect(second.spiffeId).toBe(first.spiffeId);
    expect(second.serialNumber).not.toBe(first.serialNumber);
    expect(second.privateKeyPem).not.toBe(first.privateKeyPem);
  });
});
