import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { X509Certificate } from 'node:crypto';
import { readFile, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { status as GrpcStatus } from '@grpc/grpc-js';
import {
  createLocalJWKSet,
  decodeJwt,
  decodeProtectedHeader,
  jwtVerify,
  type JSONWebKeySet,
} from 'jose';
import { JwtKeyFileStore } from '../../../src/ca/jwt/jwt-key-file-store.js';
import { JwtKeyManager } from '../../../src/ca/jwt/jwt-key-manager.js';
import { validateServeInvocation } from '../../../src/cli/serve-flags.js';
import { startWardenServer, type WardenServer } from '../../../src/cli/warden-server.js';
import { generateKeyAndCsr } from '../../../src/issuer/sidecar/workload-csr.js';
import { ManualClock } from '../../../src/shared/clock.js';
import { readEnv } from '../../../src/shared/env.js';
import { silentLogger } from '../../../src/shared/logger.js';
import { request } from '../../support/jwt-test-support.js';
import { captureLog, type CapturedLog } from '../../support/log-capture.js';
import {
  createSentryTestClient,
  signError,
  type SentryTestClient,
  type WireSignResponse,
} from '../../support/sentry-proto-client.js';
import { makeTempDir, removeTempDir } from '../../support/temp-dir.js';
import { waitFor } from '../../support/wait-for.js';

/*
 * `warden serve` with --jwt-enabled and --oidc-enabled, end to end: the composition root
 * started in-process on ephemeral ports, SignCertificate called by a client built only from
 * the .proto over TLS, tokens verified by jose (not the code that signed them) against the
 * JWKS fetched over HTTPS from the OIDC server, trusting nothing but Warden's ca.crt.
 */

const HOUR = 3_600_000;
const SKEW_S = 15 * 60; // the default allowedClockSkew
const ISSUER = 'https://localhost';
const NAMESPACE = 'default';
const WORKLOAD = { id: 'orders', namespace: NAMESPACE, trust_domain: 'example.org' };
const WORKLOAD_ID = 'spiffe://example.org/ns/default/orders';
const SECOND_TRUST_DOMAIN = 'second.example';
const SECOND_AUDIENCE = `spiffe://${SECOND_TRUST_DOMAIN}/ns/${NAMESPACE}/dapr-sentry`;
/** Short, so that a test sees a rotation made by another process quickly. */
const RELOAD_CHECK_MS = 50;

async function startServer(
  argv: string[],
  logger = silentLogger,
): Promise<{ server: WardenServer; anchorsPem: string }> {
  const result = await validateServeInvocation(
    [
      '--port=0',
      '--healthz-port=0',
      '--enable-metrics=false',
      '--listen-address=127.0.0.1',
      '--workers=1',
      ...argv,
    ],
    readEnv({}),
  );
  if (!result.ok) throw new Error(result.problems.map((p) => `${p.path}: ${p.message}`).join('\n'));
  const server = await startWardenServer(result.settings, {
    logger,
    credentialsWatch: { debounceMs: RELOAD_CHECK_MS },
  });
  const anchorsPem = await readFile(result.settings.credentials.caFile, 'utf8');
  return { server, anchorsPem };
}

function clientOf(server: WardenServer, anchorsPem: string): SentryTestClient {
  return createSentryTestClient({
    address: `127.0.0.1:${server.grpc.port}`,
    anchorsPem,
    expectedSpiffeId: server.settings.sentrySpiffeId,
  });
}

function signWorkload(
  client: SentryTestClient,
  extra: { jwt_audiences?: string[]; token?: string; token_validator?: 'INSECURE' | 'JWKS' } = {},
): Promise<WireSignResponse> {
  return client.sign({
    ...WORKLOAD,
    certificate_signing_request: Buffer.from(generateKeyAndCsr('ecdsa-p256').csrPem),
    token_validator: 'INSECURE',
    ...extra,
  });
}

function chainOf(response: WireSignResponse): X509Certificate[] {
  const pem = response.workload_certificate.toString('utf8');
  return (pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? []).map(
    (block) => new X509Certificate(block),
  );
}

function leafOf(response: WireSignResponse): X509Certificate {
  return chainOf(response)[0] as X509Certificate;
}

describe('warden serve --jwt-enabled --oidc-enabled', () => {
  let dir: string;
  let secondDir: string;
  let first: { server: WardenServer; anchorsPem: string };
  let firstClient: SentryTestClient;
  let firstLog: CapturedLog;
  let second: { server: WardenServer; anchorsPem: string } | null = null;
  let secondClient: SentryTestClient | null = null;
  const firstArgs = (): string[] => [
    `--issuer-credentials=${dir}`,
    '--jwt-enabled',
    `--jwt-issuer=${ISSUER}`,
    // Longer than the 24h certificate: exp must still stop at the certificate's notAfter.
    '--jwt-ttl=48h',
    '--oidc-enabled',
    '--oidc-server-listen-address=127.0.0.1',
    '--oidc-server-listen-port=0',
  ];

  /** The JWKS a relying party sees: fetched over HTTPS, trusting only Warden's ca.crt. */
  async function fetchJwks(): Promise<JSONWebKeySet> {
    const response = await request(`${first.server.oidc?.server.url}/jwks.json`, {
      ca: first.anchorsPem,
      servername: 'localhost',
    });
    expect(response.status).toBe(200);
    return JSON.parse(response.body) as JSONWebKeySet;
  }

  beforeAll(async () => {
    dir = await makeTempDir('warden-jwt-a-');
    secondDir = await makeTempDir('warden-jwt-b-');
    firstLog = captureLog();
    first = await startServer(firstArgs(), firstLog.logger);
    firstClient = clientOf(first.server, first.anchorsPem);
  });

  afterAll(async () => {
    firstClient?.close();
    secondClient?.close();
    await first?.server.close(0);
    await second?.server.close(0);
    await removeTempDir(dir);
    await removeTempDir(secondDir);
  });

  it('keeps jwt.key, jwks.json and jwt-rotation.json beside the X.509 material, private files 0600', async () => {
    for (const name of ['jwt.key', 'jwt-rotation.json', 'jwks.json']) {
      expect((await stat(path.join(dir, name))).mode & 0o777).toBe(0o600);
    }
    expect(first.server.jwt?.files.map((f) => path.basename(f)).sort()).toEqual([
      'jwks.json',
      'jwt-rotation.json',
      'jwt.key',
    ]);
    expect(first.server.readiness.report()).toEqual({ ready: true, notReady: [] });
  });

  it('returns a jwt and one per-audience token per requested audience, each verified by jose against the JWKS from the OIDC endpoint', async () => {
    const audiences = ['sts.example.com', 'api://AzureADTokenExchange'];
    const response = await signWorkload(firstClient, { jwt_audiences: audiences });
    expect(leafOf(response).subjectAltName).toContain(`URI:${WORKLOAD_ID}`);

    const jwt = response.jwt?.value as string;
    expect(typeof jwt).toBe('string');
    expect(Object.keys(response.per_audience_jwts).sort()).toEqual([...audiences].sort());

    const jwks = createLocalJWKSet(await fetchJwks());
    const kid = first.server.jwt?.keys.current().signingKey.kid;
    const validUntil = Number(response.valid_until?.seconds);

    const main = await jwtVerify(jwt, jwks, {
      issuer: ISSUER,
      audience: 'example.org',
      algorithms: ['RS256'],
    });
    expect(main.protectedHeader).toEqual({ alg: 'RS256', kid, typ: 'JWT' });
    expect(main.payload).toEqual({
      sub: WORKLOAD_ID,
      aud: ['example.org', ...audiences],
      iat: expect.any(Number),
      nbf: (main.payload.iat as number) - SKEW_S,
      exp: validUntil,
      jti: expect.any(String),
      use: 'sig',
      iss: ISSUER,
    });
    expect(main.payload.exp).toBeLessThanOrEqual(validUntil);
    expect(Math.floor(new Date(leafOf(response).validTo).getTime() / 1000)).toBe(validUntil);

    const jtis = new Set([main.payload.jti]);
    for (const audience of audiences) {
      const token = response.per_audience_jwts[audience]?.value as string;
      const verified = await jwtVerify(token, jwks, { issuer: ISSUER, audience });
      expect(verified.protectedHeader.kid).toBe(kid);
      expect(verified.payload).toMatchObject({
        sub: WORKLOAD_ID,
        aud: [audience],
        exp: validUntil,
        nbf: (verified.payload.iat as number) - SKEW_S,
      });
      jtis.add(verified.payload.jti);
      // A token for one audience is not accepted for another.
      await expect(
        jwtVerify(token, jwks, {
          audience: audience === audiences[0] ? audiences[1] : audiences[0],
        }),
      ).rejects.toMatchObject({ code: 'ERR_JWT_CLAIM_VALIDATION_FAILED', claim: 'aud' });
    }
    expect(jtis.size).toBe(3);

    // The audit line names the key and the token ids, never a token.
    const issued = firstLog
      .lines()
      .filter((line) => line.event === 'certificate.issued')
      .at(-1) as {
      jwtSvid?: { kid: string; jti: string; perAudienceJtis: Record<string, string> };
    };
    expect(issued.jwtSvid).toMatchObject({ kid, jti: main.payload.jti });
    expect(Object.keys(issued.jwtSvid?.perAudienceJtis ?? {}).sort()).toEqual(
      [...audiences].sort(),
    );
    const logText = firstLog.text();
    for (const token of [jwt, ...Object.values(response.per_audience_jwts).map((v) => v.value)]) {
      expect(logText).not.toContain(token);
      expect(logText).not.toContain(token.split('.')[2] as string);
    }
  });

  it('serves a discovery document whose issuer no forwarded header can change', async () => {
    const response = await request(
      `${first.server.oidc?.server.url}/.well-known/openid-configuration`,
      {
        ca: first.anchorsPem,
        servername: 'localhost',
        headers: { host: 'localhost', 'x-forwarded-host': 'evil.example' },
      },
    );
    expect(response.status).toBe(200);
    expect(JSON.parse(response.body)).toMatchObject({
      issuer: ISSUER,
      jwks_uri: `${ISSUER}/jwks.json`,
      id_token_signing_alg_values_supported: ['RS256'],
      subject_types_supported: ['public'],
      response_types_supported: ['id_token'],
    });
  });

  it('returns only the trust-domain token when no audiences are requested', async () => {
    const response = await signWorkload(firstClient);
    expect(response.per_audience_jwts).toEqual({});
    expect(decodeJwt(response.jwt?.value as string).aud).toEqual(['example.org']);
  });

  it("mints tokens that Warden's own jwks validator accepts: a second Warden bootstraps the workload from them", async () => {
    const oidcPort = first.server.oidc?.server.port as number;
    const config = path.join(secondDir, 'config.yaml');
    const indentedCa = first.anchorsPem
      .trim()
      .split('\n')
      .map((line) => `            ${line}`)
      .join('\n');
    await writeFile(
      config,
      [
        'apiVersion: dapr.io/v1alpha1',
        'kind: Configuration',
        'metadata: {name: second}',
        'spec:',
        '  mtls:',
        '    tokenValidators:',
        '      - name: jwks',
        '        options:',
        // The DNS name of the OIDC server's certificate (Warden's leaves carry no IP SANs).
        `          source: https://localhost:${oidcPort}/jwks.json`,
        // Short, so that a rotated-in kid is fetched at once.
        '          minRefreshInterval: 100ms',
        '          caCertificate: |',
        indentedCa,
        '',
      ].join('\n'),
    );
    second = await startServer([
      `--issuer-credentials=${path.join(secondDir, 'credentials')}`,
      `--config=${config}`,
      `--trust-domain=${SECOND_TRUST_DOMAIN}`,
    ]);
    expect(second.server.settings.validatorAudience).toBe(SECOND_AUDIENCE);
    await waitFor(() => (second?.server.readiness.report().ready ? true : undefined), 5000);
    secondClient = clientOf(second.server, second.anchorsPem);

    const fromFirst = await signWorkload(firstClient, {
      jwt_audiences: [SECOND_AUDIENCE, 'sts.example.com'],
    });
    const token = fromFirst.per_audience_jwts[SECOND_AUDIENCE]?.value as string;
    const fromSecond = await signWorkload(secondClient, { token, token_validator: 'JWKS' });
    const leaf = leafOf(fromSecond);
    expect(leaf.subjectAltName).toBe(`URI:${WORKLOAD_ID}`);
    // Issued by the second Warden: its issuer signed the leaf, and its root the issuer.
    const chain = chainOf(fromSecond);
    expect(leaf.verify((chain[1] as X509Certificate).publicKey)).toBe(true);
    expect(
      (chain[1] as X509Certificate).verify(new X509Certificate(second.anchorsPem).publicKey),
    ).toBe(true);
    // Without --jwt-enabled the JWT fields are absent, not empty.
    expect(fromSecond.jwt ?? null).toBeNull();
    expect(fromSecond.per_audience_jwts).toEqual({});

    // A token for another audience, or for another identity, is refused.
    const wrongAudience = fromFirst.per_audience_jwts['sts.example.com']?.value as string;
    expect(
      await signError(
        signWorkload(secondClient, { token: wrongAudience, token_validator: 'JWKS' }),
      ),
    ).toMatchObject({ code: GrpcStatus.PERMISSION_DENIED });
    expect(
      await signError(
        secondClient.sign({
          ...WORKLOAD,
          id: 'payments',
          certificate_signing_request: Buffer.from(generateKeyAndCsr('ecdsa-p256').csrPem),
          token,
          token_validator: 'JWKS',
        }),
      ),
    ).toMatchObject({ code: GrpcStatus.PERMISSION_DENIED });
  });

  it('rotates the key on the files (prepareNext, activateNext) while running, without breaking any live token', async () => {
    if (!second || !secondClient) throw new Error('needs the second server from the test before');
    const secondWarden = secondClient;
    const kidOf = (token: string): string | undefined => decodeProtectedHeader(token).kid;
    const publishedKids = async (): Promise<string[]> =>
      (await fetchJwks()).keys.map((key) => key.kid as string);
    const bootstrap = async (token: string): Promise<void> => {
      const answer = await signWorkload(secondWarden, { token, token_validator: 'JWKS' });
      expect(leafOf(answer).subjectAltName).toBe(`URI:${WORKLOAD_ID}`);
    };
    const tokenFromFirst = async (): Promise<string> =>
      (await signWorkload(firstClient, { jwt_audiences: [SECOND_AUDIENCE] })).per_audience_jwts[
        SECOND_AUDIENCE
      ]?.value as string;

    const oldKid = first.server.jwt?.keys.current().signingKey.kid as string;
    const liveOld = await tokenFromFirst();
    expect(kidOf(liveOld)).toBe(oldKid);

    // Another process (an operator's rotation) acts on the files with its own manager.
    const clock = new ManualClock(Date.now());
    const maxTokenLifetimeMs = 48 * HOUR + SKEW_S * 1000;
    const operator = await JwtKeyManager.open({
      store: new JwtKeyFileStore({
        dir,
        keyFilename: 'jwt.key',
        jwksFilename: 'jwks.json',
        algorithm: 'RS256',
        maxTokenLifetimeMs,
        clock,
        logger: silentLogger,
      }),
      algorithm: 'RS256',
      policy: { minPublishedMs: HOUR, maxTokenLifetimeMs },
      clock,
      logger: silentLogger,
    });
    expect(operator.current().signingKey.kid).toBe(oldKid);

    await operator.prepareNext();
    const newKid = operator.current().state.next?.key.kid as string;
    // The running server picks the next key up and publishes it; it does not sign yet.
    await waitFor(
      async () => ((await publishedKids()).includes(newKid) ? true : undefined),
      5000,
      'the next key in the served JWKS',
    );
    expect(await publishedKids()).toEqual([oldKid, newKid]);
    expect(kidOf(await tokenFromFirst())).toBe(oldKid);

    clock.advance(HOUR);
    await operator.activateNext();
    await waitFor(
      () => (first.server.jwt?.keys.current().signingKey.kid === newKid ? true : undefined),
      5000,
      'the running server to sign with the new key',
    );
    const liveNew = await tokenFromFirst();
    expect(kidOf(liveNew)).toBe(newKid);
    expect(await publishedKids()).toEqual([newKid, oldKid]);

    // Both live tokens verify: with jose against the JWKS served now, and with the second
    // Warden's jwks validator (which fetches the new kid when it first sees it).
    const jwks = createLocalJWKSet(await fetchJwks());
    for (const token of [liveOld, liveNew]) {
      await expect(
        jwtVerify(token, jwks, { audience: SECOND_AUDIENCE, issuer: ISSUER }),
      ).resolves.toBeDefined();
    }
    await bootstrap(liveNew);
    await bootstrap(liveOld);
  });

  it('keeps the same key (kid) across a restart', async () => {
    const before = first.server.jwt?.keys.current();
    const jwksBefore = await fetchJwks();
    firstClient.close();
    await first.server.close(0);
    first = await startServer(firstArgs());
    firstClient = clientOf(first.server, first.anchorsPem);
    expect(first.server.jwt?.keys.current().signingKey.kid).toBe(before?.signingKey.kid);
    expect(await fetchJwks()).toEqual(jwksBefore);
    const response = await signWorkload(firstClient);
    expect(decodeProtectedHeader(response.jwt?.value as string).kid).toBe(before?.signingKey.kid);
  });
});
