import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { status as GrpcStatus } from '@grpc/grpc-js';
import type { TrustSource } from '../../src/ca/trust-bundle.js';
import { createSentryServer, type SentryServer } from '../../src/issuer/grpc/sentry-server.js';
import type { InFlightLimits } from '../../src/issuer/grpc/in-flight-limit.js';
import { createSentryMetrics, type SentryMetrics } from '../../src/issuer/metrics.js';
import type { CheckedSignRequest } from '../../src/issuer/request-rules.js';
import { createValidatorRegistry } from '../../src/issuer/validator-registry.js';
import type { ValidatedIdentity, Validator } from '../../src/issuer/validator.js';
import { systemClock } from '../../src/shared/clock.js';
import { startHostileWarden, metricValue, type HostileWarden } from '../support/hostile-warden.js';
import { captureLog, type CapturedLog } from '../support/log-capture.js';
import { MutableTrustSource } from '../support/mutable-trust-source.js';
import {
  createSentryTestClient,
  type SentryTestClient,
  type WireSignRequest,
} from '../support/sentry-proto-client.js';
import { TestCertificateSigner } from '../support/test-certificate-signer.js';
import { createCsr, createTestIssuer, createTestRoot, trustBundleOf } from '../support/test-pki.js';
import { attemptSign, statusName, type SignOutcome } from './sign-outcome.js';

const NAMESPACE = 'warden-system';
const SENTRY_ID = `spiffe://localhost/ns/${NAMESPACE}/dapr-sentry`;

/** The insecure validator's answer after `delayMs`: a validator slow enough to outlive a deadline. */
class SlowValidator implements Validator {
  readonly name = 'insecure' as const;
  delayMs = 0;
  async start(): Promise<void> {}
  ready(): boolean {
    return true;
  }
  async validate(request: CheckedSignRequest): Promise<ValidatedIdentity> {
    if (this.delayMs > 0) await new Promise((resolve) => setTimeout(resolve, this.delayMs));
    return {
      trustDomain: request.trustDomain,
      namespace: request.namespace,
      appId: request.id,
      controlPlane: false,
    };
  }
  async close(): Promise<void> {}
}

interface Edge {
  server: SentryServer;
  signer: TestCertificateSigner;
  validator: SlowValidator;
  log: CapturedLog;
  metrics: SentryMetrics;
  client: SentryTestClient;
  anchorsPem: string;
  close(): Promise<void>;
}

/** The gRPC edge alone, over real TLS, with a signer the test can hold at a gate. */
async function startEdge(limits: InFlightLimits): Promise<Edge> {
  const root = await createTestRoot();
  const trust = new MutableTrustSource(await trustBundleOf(root, await createTestIssuer(root), 1));
  const signer = new TestCertificateSigner({ trustSource: trust, clock: systemClock });
  const validator = new SlowValidator();
  const validators = createValidatorRegistry([validator], 'insecure');
  const log = captureLog();
  const metrics = createSentryMetrics();
  const server = await createSentryServer({
    signer,
    trustSource: trust as TrustSource,
    validators,
    tls: { trustDomain: 'localhost' },
    caNamespace: NAMESPACE,
    listenAddress: '127.0.0.1',
    port: 0,
    logger: log.logger,
    metrics,
    inFlightLimits: limits,
  });
  const client = createSentryTestClient({
    address: `127.0.0.1:${server.port}`,
    anchorsPem: root.pem,
    expectedSpiffeId: SENTRY_ID,
  });
  return {
    server,
    signer,
    validator,
    log,
    metrics,
    client,
    anchorsPem: root.pem,
    async close() {
      client.close();
      await server.close(1000);
    },
  };
}

async function request(id = 'app'): Promise<WireSignRequest> {
  return {
    id,
    namespace: 'default',
    certificate_signing_request: Buffer.from((await createCsr()).csrPem),
  };
}

/** Opens a gate on the test signer; returns the function that releases it. */
function holdSigner(signer: TestCertificateSigner): () => void {
  let release!: () => void;
  signer.gate = new Promise<void>((resolve) => (release = resolve));
  return () => {
    signer.gate = null;
    release();
  };
}

async function waitUntil(check: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

describe('in-flight limits at the gRPC edge', () => {
  it('answers a caller over its per-caller limit with RESOURCE_EXHAUSTED at once, audits and counts it, and frees the slots afterwards', async () => {
    const edge = await startEdge({ maxInFlight: 100, maxInFlightPerCaller: 3 });
    try {
      const signed = edge.signer.requests.length; // the serving certificate went through it
      const release = holdSigner(edge.signer);
      const held = await Promise.all([request('a'), request('b'), request('c')]);
      const inFlight = held.map((r) => attemptSign(edge.client, r));
      await waitUntil(
        () => edge.signer.requests.length === signed + 3,
        'three calls in the signer',
      );

      const refused = await attemptSign(edge.client, await request('d'));
      expect(refused).toEqual({
        kind: 'refused',
        code: GrpcStatus.RESOURCE_EXHAUSTED,
        details:
          'ERR_OVERLOADED: 3 requests from 127.0.0.1 are already in flight, the per-caller limit (--max-in-flight-per-caller 3); retry with backoff',
      });
      const denial = edge.log.lines().find((l) => l.event === 'certificate.denied');
      expect(denial).toMatchObject({ code: 'ERR_OVERLOADED', validator: null });
      expect(String(denial?.peer)).toMatch(/^127\.0\.0\.1:\d+$/);
      expect(
        metricValue(
          await edge.metrics.registry.metrics(),
          'dapr_sentry_cert_sign_failure_total{reason="overloaded"}',
        ),
      ).toBe(1);

      release();
      expect((await Promise.all(inFlight)).map((o) => o.kind)).toEqual([
        'issued',
        'issued',
        'issued',
      ]);
      // Every slot came back: three at once are admitted again.
      const again = await Promise.all(
        (await Promise.all([request('e'), request('f'), request('g')])).map((r) =>
          attemptSign(edge.client, r),
        ),
      );
      expect(again.map((o) => o.kind)).toEqual(['issued', 'issued', 'issued']);
    } finally {
      await edge.close();
    }
  });

  it('applies the global limit across callers with its own message', async () => {
    const edge = await startEdge({ maxInFlight: 2, maxInFlightPerCaller: 2 });
    try {
      const signed = edge.signer.requests.length;
      const release = holdSigner(edge.signer);
      const inFlight = [
        attemptSign(edge.client, await request('a')),
        attemptSign(edge.client, await request('b')),
      ];
      await waitUntil(() => edge.signer.requests.length === signed + 2, 'two calls in the signer');
      const refused = await attemptSign(edge.client, await request('c'));
      expect(refused).toMatchObject({ kind: 'refused', code: GrpcStatus.RESOURCE_EXHAUSTED });
      expect(refused.kind === 'refused' && refused.details).toMatch(
        /^ERR_OVERLOADED: the CA is working on 2 requests, its limit \(--max-in-flight 2\); retry with backoff$/,
      );
      release();
      await Promise.all(inFlight);
    } finally {
      await edge.close();
    }
  });
});

describe('request deadlines', () => {
  let edge: Edge;
  beforeAll(async () => {
    edge = await startEdge({ maxInFlight: 100, maxInFlightPerCaller: 100 });
  });
  afterAll(async () => {
    await edge.close();
  });

  const metric = async (series: string): Promise<number> =>
    metricValue(await edge.metrics.registry.metrics(), series);

  it('answers DEADLINE_EXCEEDED to a 5 ms deadline, and never signs the call the client gave up on', async () => {
    const signed = edge.signer.requests.length;
    const received = await metric('dapr_sentry_cert_sign_request_received_total');
    edge.validator.delayMs = 300;
    try {
      const outcome = await attemptSign(edge.client, await request('impatient'), 5);
      expect(outcome).toMatchObject({ kind: 'refused', code: GrpcStatus.DEADLINE_EXCEEDED });
      // A call sent afterwards on the same connection is validated after the first (same
      // delay, later start): once it is answered, the first has been judged too.
      expect((await attemptSign(edge.client, await request('patient'), 10_000)).kind).toBe(
        'issued',
      );
    } finally {
      edge.validator.delayMs = 0;
    }
    expect(edge.signer.requests.slice(signed).map((r) => r.spiffeId)).toEqual([
      'spiffe://public/ns/default/patient',
    ]);
    // Either the first call never reached the server (the client gave up before sending it)
    // or the server dropped it and counted it as abandoned.
    const reached = (await metric('dapr_sentry_cert_sign_request_received_total')) - received;
    const abandoned = await metric(
      'dapr_sentry_cert_sign_failure_total{reason="deadline_exceeded"}',
    );
    expect([reached, abandoned]).toEqual(reached === 2 ? [2, 1] : [1, 0]);
  });

  it('drops a call whose deadline passes while it is being validated, before signing, and records it', async () => {
    const signed = edge.signer.requests.length;
    const before = edge.log.lines().filter((l) => l.code === 'ERR_DEADLINE_EXCEEDED').length;
    edge.validator.delayMs = 1500;
    try {
      const outcome = await attemptSign(edge.client, await request('outlived'), 500);
      expect(outcome).toMatchObject({ kind: 'refused', code: GrpcStatus.DEADLINE_EXCEEDED });
      await waitUntil(
        () => edge.log.lines().filter((l) => l.code === 'ERR_DEADLINE_EXCEEDED').length > before,
        'the abandoned call to be recorded',
      );
    } finally {
      edge.validator.delayMs = 0;
    }
    expect(edge.signer.requests.length).toBe(signed);
    const line = edge.log
      .lines()
      .filter((l) => l.code === 'ERR_DEADLINE_EXCEEDED')
      .at(-1);
    expect(line).toMatchObject({ event: 'certificate.denied', validator: 'insecure' });
    expect(String(line?.reason)).toMatch(
      /^the (call deadline passed|client cancelled the call) before (validation|signing); nothing was issued$/,
    );
    expect(
      edge.log
        .lines()
        .some((l) => l.event === 'certificate.issued' && String(l.spiffeId).endsWith('/outlived')),
    ).toBe(false);
  }, 15_000);
});

/** Fires `count` calls at once over `channels` connections; resolves with every outcome. */
async function storm(
  w: HostileWarden,
  count: number,
  channels: number,
  body: WireSignRequest,
): Promise<SignOutcome[]> {
  const clients = Array.from({ length: channels }, () => w.newClient());
  try {
    return await Promise.all(
      Array.from({ length: count }, (_, i) =>
        attemptSign(clients[i % channels] as SentryTestClient, { ...body, id: `app-${i}` }, 60_000),
      ),
    );
  } finally {
    for (const c of clients) c.close();
  }
}

function tally(outcomes: readonly SignOutcome[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const o of outcomes) {
    const key = o.kind === 'issued' ? 'OK' : statusName(o.code);
    counts[key] = (counts[key] ?? 0) + 1;
  }
  return counts;
}

const STORM_CALLS = 2000;

describe(`a start-up storm: ${STORM_CALLS} SignCertificate calls at once from one process (loopback)`, () => {
  let csrPem: Buffer;
  beforeAll(async () => {
    csrPem = Buffer.from((await createCsr()).csrPem);
  });

  it('with the default limits: every call is issued or refused with a clear RESOURCE_EXHAUSTED, none hangs, and the CA serves normally afterwards', async () => {
    const w = await startHostileWarden({ withoutJwks: true });
    try {
      const outcomes = await storm(w, STORM_CALLS, 4, {
        namespace: 'default',
        certificate_signing_request: csrPem,
      });
      const counts = tally(outcomes);
      process.stdout.write(`storm (defaults): ${JSON.stringify(counts)}\n`);
      expect(Object.keys(counts).sort()).toEqual(
        Object.keys(counts).length === 1 ? ['OK'] : ['OK', 'RESOURCE_EXHAUSTED'],
      );
      // All callers share 127.0.0.1, so at least one per-caller budget (64) got through.
      expect(counts.OK).toBeGreaterThanOrEqual(64);
      for (const o of outcomes) {
        if (o.kind === 'refused') {
          expect(o.details).toMatch(/^ERR_OVERLOADED: .*; retry with backoff$/);
        }
      }
      expect(
        (
          await attemptSign(w.client, {
            id: 'after',
            namespace: 'default',
            certificate_signing_request: csrPem,
          })
        ).kind,
      ).toBe('issued');
      expect((await w.healthz()).status).toBe(200);
      const metrics = await w.metricsText();
      expect(metricValue(metrics, 'dapr_sentry_cert_sign_success_total')).toBe(
        (counts.OK ?? 0) + 1,
      );
      expect(metricValue(metrics, 'dapr_sentry_cert_sign_failure_total{reason="overloaded"}')).toBe(
        counts.RESOURCE_EXHAUSTED ?? 0,
      );
    } finally {
      await w.close();
    }
  }, 120_000);

  it('with the edge limits lifted, the signing queue is the backstop: still only OK or RESOURCE_EXHAUSTED', async () => {
    const w = await startHostileWarden({
      withoutJwks: true,
      flags: ['--max-in-flight', '1000000', '--max-in-flight-per-caller', '1000000'],
    });
    try {
      const outcomes = await storm(w, STORM_CALLS, 4, {
        namespace: 'default',
        certificate_signing_request: csrPem,
      });
      const counts = tally(outcomes);
      process.stdout.write(`storm (edge limits lifted): ${JSON.stringify(counts)}\n`);
      for (const o of outcomes) {
        if (o.kind === 'refused') {
          expect(statusName(o.code)).toBe('RESOURCE_EXHAUSTED');
          expect(o.details).toMatch(
            /^ERR_OVERLOADED: the signing queue is full; retry with backoff$/,
          );
        }
      }
      expect(counts.OK).toBeGreaterThan(0);
      expect((await w.healthz()).status).toBe(200);
    } finally {
      await w.close();
    }
  }, 120_000);
});
