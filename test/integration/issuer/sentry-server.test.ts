import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { X509Certificate } from 'node:crypto';
import { status as GrpcStatus } from '@grpc/grpc-js';
import type { TrustSource } from '../../../src/ca/trust-bundle.js';
import {
  createSentryServer,
  registerIssuerReadiness,
  type SentryServer,
} from '../../../src/issuer/grpc/sentry-server.js';
import { GENERIC_INTERNAL_MESSAGE } from '../../../src/issuer/grpc/status-map.js';
import { createSentryMetrics, type SentryMetrics } from '../../../src/issuer/metrics.js';
import type { CheckedSignRequest } from '../../../src/issuer/request-rules.js';
import {
  createValidatorRegistry,
  type ValidatorRegistry,
} from '../../../src/issuer/validator-registry.js';
import type { ValidatedIdentity, Validator } from '../../../src/issuer/validator.js';
import { createInsecureValidator } from '../../../src/issuer/validators/insecure/insecure-validator.js';
import { createJwksValidator } from '../../../src/issuer/validators/jwks/jwks-validator.js';
import { ManualClock } from '../../../src/shared/clock.js';
import { WardenError } from '../../../src/shared/errors.js';
import { Readiness, startHealthServer } from '../../../src/shared/health-server.js';
import type { HttpListener } from '../../../src/shared/http-listener.js';
import { startMetricsServer } from '../../../src/shared/metrics-server.js';
import { joseKey, joseToken, jwks, type JoseSigningKey } from '../../support/jwt-fixtures.js';
import { captureLog, type CapturedLog } from '../../support/log-capture.js';
import { MutableTrustSource } from '../../support/mutable-trust-source.js';
import {
  createSentryTestClient,
  signError,
  uriSans,
  type SentryTestClient,
} from '../../support/sentry-proto-client.js';
import { TestCertificateSigner } from '../../support/test-certificate-signer.js';
import {
  createCsr,
  createTestIssuer,
  createTestRoot,
  trustBundleOf,
  type TestCa,
} from '../../support/test-pki.js';

const NAMESPACE = 'warden-system';
const SENTRY_ID = `spiffe://localhost/ns/${NAMESPACE}/dapr-sentry`;
const AUDIENCE = `spiffe://cluster.local/ns/${NAMESPACE}/dapr-sentry`;

/** Stands in for the kubernetes validator (another block): its readiness and answer are set by the test. */
class SwitchableValidator implements Validator {
  readonly name = 'kubernetes' as const;
  isReady = false;
  async start(): Promise<void> {}
  ready(): boolean {
    return this.isReady;
  }
  async validate(request: CheckedSignRequest): Promise<ValidatedIdentity> {
    if (!this.isReady)
      throw new WardenError('ERR_VALIDATOR_UNAVAILABLE', 'kubernetes validator is not ready');
    return {
      trustDomain: 'cluster.local',
      namespace: request.namespace,
      appId: request.id,
      controlPlane: true,
    };
  }
  async close(): Promise<void> {}
}

interface Harness {
  root: TestCa;
  trust: MutableTrustSource;
  signer: TestCertificateSigner;
  clock: ManualClock;
  metrics: SentryMetrics;
  log: CapturedLog;
  validators: ValidatorRegistry;
  kubernetes: SwitchableValidator;
  jwtKey: JoseSigningKey;
  server: SentryServer;
}

async function startHarness(): Promise<Harness> {
  const clock = new ManualClock(Date.now());
  const root = await createTestRoot();
  const issuer = await createTestIssuer(root);
  const trust = new MutableTrustSource(await trustBundleOf(root, issuer, 1));
  const signer = new TestCertificateSigner({ trustSource: trust, clock });
  const metrics = createSentryMetrics();
  const log = captureLog();
  const jwtKey = await joseKey('ES256', 'key-1');
  const kubernetes = new SwitchableValidator();
  const validators = createValidatorRegistry(
    [
      createInsecureValidator({ caNamespace: NAMESPACE }),
      createJwksValidator({
        settings: {
          source: jwks(jwtKey.publicJwk),
          caCertificate: undefined,
          minRefreshIntervalMs: 600_000,
          requestTimeoutMs: 30_000,
        },
        audience: AUDIENCE,
        caNamespace: NAMESPACE,
        clock,
      }),
      kubernetes,
    ],
    'insecure',
  );
  await validators.startAll();
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
    clock,
  });
  return { root, trust, signer, clock, metrics, log, validators, kubernetes, jwtKey, server };
}

function clientFor(h: Harness): SentryTestClient {
  return createSentryTestClient({
    address: `127.0.0.1:${h.server.port}`,
    anchorsPem: h.root.pem,
    expectedSpiffeId: SENTRY_ID,
  });
}

function splitPem(pem: string): X509Certificate[] {
  return (pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? []).map(
    (block) => new X509Certificate(block),
  );
}

async function scrape(listener: HttpListener): Promise<string> {
  const response = await fetch(`http://127.0.0.1:${listener.port}/metrics`);
  expect(response.status).toBe(200);
  return response.text();
}

function metricValue(text: string, series: string): number {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? Number.NaN : Number(line.slice(series.length + 1));
}

describe('Sentry gRPC server over TLS, with a client built only from the .proto file', () => {
  let h: Harness;
  let client: SentryTestClient;

  beforeAll(async () => {
    h = await startHarness();
    client = clientFor(h);
  });
  afterAll(async () => {
    client.close();
    await h.server.close(1000);
    await h.validators.closeAll();
  });

  it('issues a chain for a P-256 CSR with the default (insecure) validator and the public trust domain', async () => {
    const { csrPem } = await createCsr('P-256');
    const response = await client.sign({
      id: 'app1',
      namespace: 'default',
      certificate_signing_request: Buffer.from(csrPem),
    });

    const chain = splitPem(response.workload_certificate.toString('utf8'));
    expect(chain).toHaveLength(2);
    const [leaf, issuer] = chain as [X509Certificate, X509Certificate];
    expect(leaf.subjectAltName).toBe('URI:spiffe://public/ns/default/app1');
    expect(leaf.verify(issuer.publicKey)).toBe(true);
    expect(issuer.verify(new X509Certificate(h.root.pem).publicKey)).toBe(true);
    expect(
      response.trust_chain_certificates.map((b) => new X509Certificate(b).fingerprint256),
    ).toEqual([new X509Certificate(h.root.pem).fingerprint256]);
    expect(Number(response.valid_until?.seconds)).toBe(
      Math.floor(new Date(leaf.validTo).getTime() / 1000),
    );
    expect(response.jwt ?? null).toBeNull();
    expect(response.per_audience_jwts).toEqual({});
  });

  it("presents a serving certificate with the CA's SPIFFE ID and DNS names, checked by the client", async () => {
    const { csrPem } = await createCsr('Ed25519');
    await client.sign({
      id: 'app2',
      namespace: 'default',
      certificate_signing_request: Buffer.from(csrPem),
      token_validator: 'INSECURE',
    });
    const peer = client.handshakes[0];
    expect(peer).toBeDefined();
    expect(uriSans(peer!)).toEqual([SENTRY_ID]);
    for (const dns of [
      'localhost',
      'dapr-sentry',
      `dapr-sentry.${NAMESPACE}.svc`,
      `dapr-sentry.${NAMESPACE}.svc.cluster.local`,
    ]) {
      expect(peer!.subjectaltname).toContain(`DNS:${dns}`);
    }
  });

  it('refuses a server whose SPIFFE ID is not the pinned one', async () => {
    const wrong = createSentryTestClient({
      address: `127.0.0.1:${h.server.port}`,
      anchorsPem: h.root.pem,
      expectedSpiffeId: 'spiffe://localhost/ns/other/dapr-sentry',
    });
    const { csrPem } = await createCsr();
    const err = await signError(
      wrong.sign(
        { id: 'app', namespace: 'default', certificate_signing_request: Buffer.from(csrPem) },
        3000,
      ),
    );
    wrong.close();
    expect(err.code).toBe(GrpcStatus.UNAVAILABLE);
  });

  it('gives a control-plane identity in the CA namespace its webhook DNS name', async () => {
    const { csrPem } = await createCsr();
    const response = await client.sign({
      id: 'dapr-injector',
      namespace: NAMESPACE,
      certificate_signing_request: Buffer.from(csrPem),
    });
    const leaf = splitPem(response.workload_certificate.toString('utf8'))[0]!;
    expect(leaf.subjectAltName).toContain(`URI:spiffe://public/ns/${NAMESPACE}/dapr-injector`);
    expect(leaf.subjectAltName).toContain(`DNS:dapr-sidecar-injector.${NAMESPACE}.svc`);
  });

  describe('maps each failure to its gRPC status', () => {
    const cases: Array<{
      name: string;
      request: () => Promise<Parameters<SentryTestClient['sign']>[0]>;
      code: GrpcStatus;
      details: RegExp;
      before?: (h: Harness) => void;
    }> = [
      {
        name: 'an id with a dot is INVALID_ARGUMENT',
        request: async () => ({
          id: 'a.b',
          namespace: 'default',
          certificate_signing_request: Buffer.from((await createCsr()).csrPem),
        }),
        code: GrpcStatus.INVALID_ARGUMENT,
        details: /^ERR_REQUEST_INVALID: id "a\.b"/,
      },
      {
        name: 'a namespace smuggling path segments is INVALID_ARGUMENT',
        request: async () => ({
          id: 'app',
          namespace: 'a/ns/b',
          certificate_signing_request: Buffer.from((await createCsr()).csrPem),
        }),
        code: GrpcStatus.INVALID_ARGUMENT,
        details: /^ERR_REQUEST_INVALID: namespace/,
      },
      {
        name: 'an empty CSR is INVALID_ARGUMENT',
        request: async () => ({ id: 'app', namespace: 'default' }),
        code: GrpcStatus.INVALID_ARGUMENT,
        details: /^ERR_CSR_INVALID/,
      },
      {
        name: 'a CSR that is not PEM is INVALID_ARGUMENT (from the signer)',
        request: async () => ({
          id: 'app',
          namespace: 'default',
          certificate_signing_request: Buffer.from('not a csr'),
        }),
        code: GrpcStatus.INVALID_ARGUMENT,
        details: /^ERR_CSR_INVALID/,
      },
      {
        name: 'JWKS with a token that fails verification is PERMISSION_DENIED',
        request: async () => ({
          id: 'app',
          namespace: 'default',
          token: 'eyJhbGciOiJFUzI1NiJ9.e30.c2ln',
          token_validator: 'JWKS',
          certificate_signing_request: Buffer.from((await createCsr()).csrPem),
        }),
        code: GrpcStatus.PERMISSION_DENIED,
        details: /^ERR_IDENTITY_DENIED: jwks validator: /,
      },
      {
        name: "asking for the CA's own identity is PERMISSION_DENIED even with the insecure validator",
        request: async () => ({
          id: 'dapr-sentry',
          namespace: NAMESPACE,
          trust_domain: 'localhost',
          certificate_signing_request: Buffer.from((await createCsr()).csrPem),
        }),
        code: GrpcStatus.PERMISSION_DENIED,
        details: /^ERR_IDENTITY_DENIED: the CA's own identity/,
      },
      {
        name: 'an enabled validator that cannot decide is UNAVAILABLE',
        request: async () => ({
          id: 'app',
          namespace: 'default',
          token_validator: 'KUBERNETES',
          certificate_signing_request: Buffer.from((await createCsr()).csrPem),
        }),
        code: GrpcStatus.UNAVAILABLE,
        details: /^ERR_VALIDATOR_UNAVAILABLE/,
      },
      {
        name: 'a token_validator number outside the enum is INVALID_ARGUMENT',
        request: async () => ({
          id: 'app',
          namespace: 'default',
          token_validator: 99,
          certificate_signing_request: Buffer.from((await createCsr()).csrPem),
        }),
        code: GrpcStatus.INVALID_ARGUMENT,
        details: /^ERR_VALIDATOR_NOT_ENABLED: token_validator 99/,
      },
      {
        name: 'a message over 64 KiB is RESOURCE_EXHAUSTED before it is decoded',
        request: async () => ({
          id: 'app',
          namespace: 'default',
          certificate_signing_request: Buffer.alloc(70 * 1024, 0x41),
        }),
        code: GrpcStatus.RESOURCE_EXHAUSTED,
        details: /larger than max/i,
      },
    ];
    for (const c of cases) {
      it(c.name, async () => {
        const err = await signError(client.sign(await c.request()));
        expect(err.code).toBe(c.code);
        expect(err.details).toMatch(c.details);
      });
    }

    it('a failure inside the signer is INTERNAL with a generic message, and the detail is logged', async () => {
      h.signer.failWith = new Error('disk on fire at /var/secret/issuer.key');
      try {
        const { csrPem } = await createCsr();
        const err = await signError(
          client.sign({
            id: 'app',
            namespace: 'default',
            certificate_signing_request: Buffer.from(csrPem),
          }),
        );
        expect(err).toEqual({ code: GrpcStatus.INTERNAL, details: GENERIC_INTERNAL_MESSAGE });
        const line = h.log.lines().find((l) => l.event === 'certificate.failed');
        expect(String(line?.detail)).toContain('disk on fire');
      } finally {
        h.signer.failWith = undefined;
      }
    });

    it('ERR_SIGNING_FAILED is INTERNAL with the generic message and ERR_OVERLOADED is RESOURCE_EXHAUSTED', async () => {
      const { csrPem } = await createCsr();
      const request = {
        id: 'app',
        namespace: 'default',
        certificate_signing_request: Buffer.from(csrPem),
      };
      h.signer.failWith = new WardenError('ERR_SIGNING_FAILED', 'worker 3 crashed reading /x');
      const internal = await signError(client.sign(request));
      h.signer.failWith = new WardenError('ERR_OVERLOADED', 'too many requests in flight');
      const overloaded = await signError(client.sign(request));
      h.signer.failWith = undefined;
      expect(internal).toEqual({ code: GrpcStatus.INTERNAL, details: GENERIC_INTERNAL_MESSAGE });
      expect(overloaded.code).toBe(GrpcStatus.RESOURCE_EXHAUSTED);
    });
  });

  it('accepts a JWKS token proving the identity and names the validator in the audit line', async () => {
    const now = Math.floor(h.clock.now().getTime() / 1000);
    const token = await joseToken(h.jwtKey, {
      sub: 'spiffe://example.org/ns/prod/billing',
      aud: AUDIENCE,
      exp: now + 300,
      iat: now,
    });
    const { csrPem } = await createCsr();
    const response = await client.sign({
      id: 'billing',
      namespace: 'prod',
      trust_domain: 'example.org',
      token,
      token_validator: 'JWKS',
      certificate_signing_request: Buffer.from(csrPem),
    });
    const leaf = splitPem(response.workload_certificate.toString('utf8'))[0]!;
    expect(leaf.subjectAltName).toBe('URI:spiffe://example.org/ns/prod/billing');
    const audit = h.log
      .lines()
      .filter((l) => l.event === 'certificate.issued')
      .at(-1);
    expect(audit).toMatchObject({
      spiffeId: 'spiffe://example.org/ns/prod/billing',
      validator: 'jwks',
      serial: leaf.serialNumber.toLowerCase(),
    });
    expect(String(audit?.peer)).toContain('127.0.0.1');
    expect(audit?.notAfter).toBe(new Date(leaf.validTo).toISOString());
    // Neither the token nor the CSR reaches the log.
    expect(h.log.text()).not.toContain(token);
    expect(h.log.text()).not.toContain(token.split('.')[2]);
    expect(h.log.text()).not.toContain(csrPem.split('\n')[1]);
  });

  it('writes one denial line with the code and reason, and never the token', async () => {
    const secretToken =
      'eyJhbGciOiJIUzI1NiIsImtpZCI6ImtleS0xIn0.eyJzdWIiOiJ4In0.c2VjcmV0LXNpZ25hdHVyZS12YWx1ZQ';
    const { csrPem } = await createCsr();
    await signError(
      client.sign({
        id: 'app',
        namespace: 'default',
        token: secretToken,
        token_validator: 'JWKS',
        certificate_signing_request: Buffer.from(csrPem),
      }),
    );
    const denial = h.log
      .lines()
      .filter((l) => l.event === 'certificate.denied')
      .at(-1);
    expect(denial).toMatchObject({ code: 'ERR_IDENTITY_DENIED', validator: 'jwks' });
    expect(String(denial?.reason)).toMatch(/HS256 is refused/);
    expect(h.log.text()).not.toContain(secretToken);
    expect(h.log.text()).not.toContain('c2VjcmV0LXNpZ25hdHVyZS12YWx1ZQ');
  });

  it('moves the Dapr counters, the failure reasons and the latency histogram on /metrics', async () => {
    const listener = await startMetricsServer({
      registry: h.metrics.registry,
      listenAddress: '127.0.0.1',
      port: 0,
    });
    try {
      const before = await scrape(listener);
      const { csrPem } = await createCsr();
      await client.sign({
        id: 'metrics-app',
        namespace: 'default',
        certificate_signing_request: Buffer.from(csrPem),
      });
      await signError(
        client.sign({
          id: 'bad.id',
          namespace: 'default',
          certificate_signing_request: Buffer.from(csrPem),
        }),
      );
      await signError(
        client.sign({
          id: 'app',
          namespace: 'default',
          token_validator: 99,
          certificate_signing_request: Buffer.from(csrPem),
        }),
      );
      const after = await scrape(listener);
      const delta = (series: string): number =>
        metricValue(after, series) - metricValue(before, series);
      expect(delta('dapr_sentry_cert_sign_request_received_total')).toBe(3);
      expect(delta('dapr_sentry_cert_sign_success_total')).toBe(1);
      expect(delta('dapr_sentry_cert_sign_failure_total{reason="request_invalid"}')).toBe(1);
      expect(delta('dapr_sentry_cert_sign_failure_total{reason="validator_not_enabled"}')).toBe(1);
      expect(delta('warden_sign_duration_seconds_count{outcome="success"}')).toBe(1);
      expect(delta('warden_sign_duration_seconds_count{outcome="failure"}')).toBe(2);
      const issuerNotAfter =
        new Date(new X509Certificate(h.trust.current().issuerChainPem).validTo).getTime() / 1000;
      expect(metricValue(after, 'dapr_sentry_issuercert_expiry_timestamp')).toBe(
        Math.floor(issuerNotAfter),
      );
      expect(after).toContain('dapr_sentry_servercert_issue_failed_total 0');
    } finally {
      await listener.close();
    }
  });

  it('answers /healthz 503 naming the parts not ready, then 200 once they are', async () => {
    const readiness = new Readiness();
    registerIssuerReadiness(readiness, h.server, h.validators);
    const listener = await startHealthServer({ readiness, listenAddress: '127.0.0.1', port: 0 });
    try {
      h.kubernetes.isReady = false;
      const notReady = await fetch(`http://127.0.0.1:${listener.port}/healthz`);
      expect(notReady.status).toBe(503);
      expect(await notReady.json()).toEqual({
        status: 'not ready',
        notReady: ['validator:kubernetes'],
      });
      h.kubernetes.isReady = true;
      const ready = await fetch(`http://127.0.0.1:${listener.port}/healthz`);
      expect(ready.status).toBe(200);
      expect(await ready.json()).toEqual({ status: 'ok' });
    } finally {
      h.kubernetes.isReady = false;
      await listener.close();
    }
  });

  it('swaps its serving certificate when the trust material changes: new connections see it, old ones keep working', async () => {
    const oldClient = clientFor(h);
    const { csrPem } = await createCsr();
    const request = {
      id: 'swap',
      namespace: 'default',
      certificate_signing_request: Buffer.from(csrPem),
    };
    await oldClient.sign(request);
    const oldSerial = h.server.servingCertificate.current()!.serialHex;
    expect(oldClient.handshakes).toHaveLength(1);
    const changesBefore = metricValue(
      await h.metrics.registry.metrics(),
      'dapr_sentry_issuercert_changed_total',
    );

    const newIssuer = await createTestIssuer(h.root, 'CN=Warden Test Issuer 2');
    h.trust.replace(await trustBundleOf(h.root, newIssuer, 2));
    for (let i = 0; i < 200 && h.server.servingCertificate.current()!.generation !== 2; i++) {
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    const current = h.server.servingCertificate.current()!;
    expect(current.generation).toBe(2);
    expect(current.serialHex).not.toBe(oldSerial);
    expect(
      metricValue(await h.metrics.registry.metrics(), 'dapr_sentry_issuercert_changed_total'),
    ).toBe(changesBefore + 1);

    const newClient = clientFor(h);
    try {
      await newClient.sign(request);
      const presented = new X509Certificate(newClient.handshakes[0]!.raw);
      expect(presented.serialNumber.toLowerCase()).toBe(current.serialHex);
      expect(presented.issuer).toContain('Warden Test Issuer 2');

      await oldClient.sign(request); // the established connection still works
      expect(oldClient.handshakes).toHaveLength(1);
      expect(new X509Certificate(oldClient.handshakes[0]!.raw).serialNumber.toLowerCase()).toBe(
        oldSerial,
      );
    } finally {
      newClient.close();
      oldClient.close();
    }
  });
});

describe('Sentry gRPC server shutdown', () => {
  it('lets an in-flight call finish, then refuses new connections', async () => {
    const h = await startHarness();
    const client = clientFor(h);
    const { csrPem } = await createCsr();
    const request = {
      id: 'drain',
      namespace: 'default',
      certificate_signing_request: Buffer.from(csrPem),
    };
    await client.sign(request); // connect first

    let release!: () => void;
    h.signer.gate = new Promise<void>((resolve) => (release = resolve));
    const entered = new Promise<void>((resolve) => (h.signer.onEnter = resolve));
    const inFlight = client.sign(request);
    await entered;
    const closed = h.server.close(5000);
    expect(h.server.ready()).toBe(false);
    setTimeout(release, 100);
    const response = await inFlight;
    expect(response.workload_certificate.length).toBeGreaterThan(0);
    await closed;
    client.close();

    const late = clientFor(h);
    const err = await signError(late.sign(request, 2000));
    late.close();
    expect(err.code).toBe(GrpcStatus.UNAVAILABLE);
    expect(h.trust.listenerCount()).toBe(0);
  });

  it('cancels calls still running when the grace period ends', async () => {
    const h = await startHarness();
    const client = clientFor(h);
    const { csrPem } = await createCsr();
    const request = {
      id: 'stuck',
      namespace: 'default',
      certificate_signing_request: Buffer.from(csrPem),
    };
    await client.sign(request);
    h.signer.gate = new Promise<void>(() => undefined); // never released
    const entered = new Promise<void>((resolve) => (h.signer.onEnter = resolve));
    const stuck = signError(client.sign(request));
    await entered;
    await h.server.close(200);
    const err = await stuck;
    client.close();
    expect([GrpcStatus.CANCELLED, GrpcStatus.UNAVAILABLE, GrpcStatus.INTERNAL]).toContain(err.code);
  });
});
