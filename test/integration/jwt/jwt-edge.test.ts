import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { X509Certificate } from 'node:crypto';
import tls from 'node:tls';
import { status as GrpcStatus } from '@grpc/grpc-js';
import type { TrustSource } from '../../../src/ca/trust-bundle.js';
import type { JwtKeySource } from '../../../src/ca/jwt/jwt-key-manager.js';
import { jwtKeySetOf, initialJwtKeyState } from '../../../src/ca/jwt/jwt-key-state.js';
import { createSentryServer, type SentryServer } from '../../../src/issuer/grpc/sentry-server.js';
import { GENERIC_INTERNAL_MESSAGE } from '../../../src/issuer/grpc/status-map.js';
import type { JwtSvidMinter, JwtSvidRequest } from '../../../src/issuer/jwt/jwt-svid.js';
import { createSentryMetrics } from '../../../src/issuer/metrics.js';
import {
  oidcServingDnsNames,
  startOidcService,
  type OidcService,
} from '../../../src/issuer/oidc/oidc-service.js';
import { generateKeyAndCsr } from '../../../src/issuer/sidecar/workload-csr.js';
import { createValidatorRegistry } from '../../../src/issuer/validator-registry.js';
import { createInsecureValidator } from '../../../src/issuer/validators/insecure/insecure-validator.js';
import { ManualClock } from '../../../src/shared/clock.js';
import { WardenError } from '../../../src/shared/errors.js';
import { silentLogger } from '../../../src/shared/logger.js';
import { request, sharedKey } from '../../support/jwt-test-support.js';
import { captureLog } from '../../support/log-capture.js';
import { MutableTrustSource } from '../../support/mutable-trust-source.js';
import {
  createSentryTestClient,
  signError,
  type SentryTestClient,
} from '../../support/sentry-proto-client.js';
import { TestCertificateSigner } from '../../support/test-certificate-signer.js';
import {
  createTestIssuer,
  createTestRoot,
  trustBundleOf,
  type TestCa,
} from '../../support/test-pki.js';
import { waitFor } from '../../support/wait-for.js';

const NAMESPACE = 'warden-system';
const SENTRY_ID = `spiffe://localhost/ns/${NAMESPACE}/dapr-sentry`;

/** A minter the test controls: records what the handler asks for, answers or throws. */
class RecordingMinter implements JwtSvidMinter {
  readonly requests: JwtSvidRequest[] = [];
  failWith: unknown = undefined;
  mint(request: JwtSvidRequest) {
    this.requests.push(request);
    if (this.failWith !== undefined) throw this.failWith;
    const perAudienceJwts = Object.fromEntries(request.audiences.map((a) => [a, `token-for-${a}`]));
    return {
      jwt: 'main-token',
      perAudienceJwts,
      kid: 'kid-1',
      jti: 'jti-main',
      perAudienceJtis: Object.fromEntries(request.audiences.map((a) => [a, `jti-${a}`])),
      issuedAt: new Date(0),
      expiresAt: request.notAfter,
    };
  }
}

describe('SignCertificate with a JWT minter', () => {
  let root: TestCa;
  let server: SentryServer;
  let client: SentryTestClient;
  const minter = new RecordingMinter();
  const log = captureLog();

  beforeAll(async () => {
    const clock = new ManualClock(Date.now());
    root = await createTestRoot();
    const trust = new MutableTrustSource(
      await trustBundleOf(root, await createTestIssuer(root), 1),
    );
    const validators = createValidatorRegistry(
      [createInsecureValidator({ caNamespace: NAMESPACE })],
      'insecure',
    );
    await validators.startAll();
    server = await createSentryServer({
      signer: new TestCertificateSigner({ trustSource: trust, clock }),
      trustSource: trust as TrustSource,
      validators,
      tls: { trustDomain: 'localhost' },
      caNamespace: NAMESPACE,
      listenAddress: '127.0.0.1',
      port: 0,
      logger: log.logger,
      clock,
      jwtMinter: minter,
    });
    client = createSentryTestClient({
      address: `127.0.0.1:${server.port}`,
      anchorsPem: root.pem,
      expectedSpiffeId: SENTRY_ID,
    });
  });
  afterAll(async () => {
    client.close();
    await server.close(0);
  });

  const sign = (audiences: string[]) =>
    client.sign({
      id: 'orders',
      namespace: 'default',
      trust_domain: 'example.org',
      certificate_signing_request: Buffer.from(generateKeyAndCsr('ecdsa-p256').csrPem),
      token_validator: 'INSECURE',
      jwt_audiences: audiences,
    });

  it("mints for the validated identity with the request's audiences and the leaf's notAfter", async () => {
    minter.failWith = undefined;
    const response = await sign(['a.example', '__proto__']);
    const asked = minter.requests.at(-1) as JwtSvidRequest;
    expect(asked).toEqual({
      spiffeId: 'spiffe://example.org/ns/default/orders',
      trustDomain: 'example.org',
      audiences: ['a.example', '__proto__'],
      notAfter: expect.any(Date),
    });
    expect(asked.notAfter.getTime() / 1000).toBe(Number(response.valid_until?.seconds));
    expect(response.jwt).toEqual({ value: 'main-token' });
    // Every audience is a map key, even one named like an object's prototype.
    expect(Object.keys(response.per_audience_jwts).sort()).toEqual(['__proto__', 'a.example']);
    expect(response.per_audience_jwts['a.example']).toEqual({ value: 'token-for-a.example' });
  });

  it('answers INTERNAL with the generic message when minting fails, the detail only in the log', async () => {
    minter.failWith = new WardenError('ERR_JWT_FAILED', 'signing a JWT-SVID with key "k" failed');
    expect(await signError(sign([]))).toEqual({
      code: GrpcStatus.INTERNAL,
      details: GENERIC_INTERNAL_MESSAGE,
    });
    const failed = log.lines().filter((line) => line.event === 'certificate.failed');
    expect(failed.at(-1)).toMatchObject({ code: 'ERR_JWT_FAILED' });
  });

  it('does not mint when the request is refused before signing', async () => {
    minter.failWith = undefined;
    const before = minter.requests.length;
    const refused = await signError(
      client.sign({
        id: 'orders',
        namespace: 'default',
        certificate_signing_request: Buffer.from('not a csr'),
        token_validator: 'INSECURE',
        jwt_audiences: ['a.example'],
      }),
    );
    expect(refused.code).toBe(GrpcStatus.INVALID_ARGUMENT);
    expect(minter.requests.length).toBe(before);
  });
});

describe('the OIDC server with a certificate from Warden’s own CA', () => {
  let root: TestCa;
  let trust: MutableTrustSource;
  let service: OidcService;
  let keys: JwtKeySource;

  function peerCertificate(port: number): Promise<X509Certificate> {
    return new Promise((resolve, reject) => {
      const socket = tls.connect(
        { host: '127.0.0.1', port, servername: 'oidc.example.org', ca: root.pem },
        () => {
          const cert = socket.getPeerX509Certificate();
          socket.end();
          if (cert) resolve(cert);
          else reject(new Error('no peer certificate'));
        },
      );
      socket.on('error', reject);
    });
  }

  beforeAll(async () => {
    const clock = new ManualClock(Date.now());
    root = await createTestRoot();
    trust = new MutableTrustSource(await trustBundleOf(root, await createTestIssuer(root), 1));
    const keySet = jwtKeySetOf(initialJwtKeyState(await sharedKey('ES256')));
    keys = { current: () => keySet, onChange: () => () => undefined };
    service = await startOidcService({
      listenAddress: '127.0.0.1',
      port: 0,
      tls: { enabled: true, certFile: undefined, keyFile: undefined },
      issuer: 'https://oidc.example.org/tenant',
      jwksUri: undefined,
      pathPrefix: '',
      allowedHosts: ['oidc.example.org', 'oidc.internal', '10.0.0.7'],
      keys,
      certificateAuthority: {
        signer: new TestCertificateSigner({ trustSource: trust, clock }),
        trustSource: trust,
        trustDomain: 'localhost',
        namespace: NAMESPACE,
        metrics: createSentryMetrics(),
      },
      clock,
      logger: silentLogger,
    });
  });
  afterAll(() => service.close());

  it('names localhost, the allowed hosts and the issuer host (no IP literals)', () => {
    expect(
      oidcServingDnsNames(['oidc.example.org', '10.0.0.7', '::1'], 'https://Issuer.example/x'),
    ).toEqual(['localhost', 'oidc.example.org', 'issuer.example']);
    expect(oidcServingDnsNames([], 'dapr-sentry')).toEqual(['localhost']);
  });

  it('serves the JWKS over TLS with a certificate for its host names, and is ready', async () => {
    const cert = await peerCertificate(service.server.port);
    expect(cert.subjectAltName?.split(', ').sort()).toEqual(
      [`URI:${SENTRY_ID}`, 'DNS:localhost', 'DNS:oidc.example.org', 'DNS:oidc.internal'].sort(),
    );
    const response = await request(`${service.server.url}/jwks.json`, {
      ca: root.pem,
      servername: 'oidc.example.org',
      headers: { host: 'oidc.example.org' },
    });
    expect(JSON.parse(response.body)).toEqual(keys.current().publishedJwks);
    expect(service.ready()).toBe(true);
  });

  it('is issued again when the trust material changes, without a restart', async () => {
    const before = (await peerCertificate(service.server.port)).serialNumber;
    trust.replace(await trustBundleOf(root, await createTestIssuer(root), 2));
    const after = await waitFor(
      async () => {
        const serial = (await peerCertificate(service.server.port)).serialNumber;
        return serial !== before ? serial : undefined;
      },
      5000,
      'a renewed OIDC certificate',
    );
    expect(after).not.toBe(before);
  });
});
