import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { X509Certificate } from 'node:crypto';
import tls from 'node:tls';
import { createLocalJWKSet, decodeProtectedHeader, jwtVerify, type JSONWebKeySet } from 'jose';
import { JwtKeyFileStore } from '../../../src/ca/jwt/jwt-key-file-store.js';
import { JwtKeyManager } from '../../../src/ca/jwt/jwt-key-manager.js';
import {
  JWT_SIGNING_ALGORITHMS,
  type JwtSigningAlgorithm,
} from '../../../src/ca/jwt/jwt-signing-algorithm.js';
import { createJwtSvidMinter, type JwtSvidMinter } from '../../../src/issuer/jwt/jwt-svid.js';
import { startOidcServer, type OidcServer } from '../../../src/issuer/oidc/oidc-server.js';
import type { TlsMaterial, TlsMaterialProvider } from '../../../src/issuer/oidc/tls-material.js';
import { ManualClock } from '../../../src/shared/clock.js';
import { isWardenError } from '../../../src/shared/errors.js';
import { silentLogger } from '../../../src/shared/logger.js';
import { makeTempDir, request } from '../../support/jwt-test-support.js';
import {
  createTestCa,
  issueTestServerCertificate,
  type TestCa,
} from '../../support/vault-test-pki.js';

const HOUR = 3_600_000;
const TTL = 24 * HOUR;
const SKEW = 15 * 60_000;
const POLICY = { minPublishedMs: HOUR, maxTokenLifetimeMs: TTL + SKEW };
const ISSUER = 'https://oidc.example.org';
const SPIFFE_ID = 'spiffe://example.org/ns/default/orders';

let ca: TestCa;
let serverTls: TlsMaterial;
beforeAll(async () => {
  ca = await createTestCa('Warden OIDC test CA');
  const issued = await issueTestServerCertificate(ca, {
    dnsNames: ['localhost'],
    ipAddresses: ['127.0.0.1'],
  });
  serverTls = { cert: issued.certPem, key: issued.keyPem };
});

interface Rig {
  clock: ManualClock;
  manager: JwtKeyManager;
  minter: JwtSvidMinter;
  server: OidcServer;
  close: () => Promise<void>;
}

async function startRig(
  algorithm: JwtSigningAlgorithm,
  serverOptions: { issuer?: string; allowedHosts?: string[]; pathPrefix?: string } = {},
): Promise<Rig> {
  const clock = new ManualClock(Date.UTC(2026, 3, 1));
  const temp = makeTempDir();
  const store = new JwtKeyFileStore({
    dir: temp.dir,
    keyFilename: 'jwt.key',
    jwksFilename: 'jwks.json',
    algorithm,
    maxTokenLifetimeMs: POLICY.maxTokenLifetimeMs,
    clock,
    logger: silentLogger,
  });
  const manager = await JwtKeyManager.open({
    store,
    algorithm,
    policy: POLICY,
    clock,
    logger: silentLogger,
  });
  const minter = createJwtSvidMinter({
    signingKey: () => manager.current().signingKey,
    issuer: ISSUER,
    ttlMs: TTL,
    skewMs: SKEW,
    clock,
  });
  const server = await startOidcServer({
    listenAddress: '127.0.0.1',
    port: 0,
    tls: serverTls,
    jwks: () => manager.current().publishedJwks,
    issuer: 'issuer' in serverOptions ? serverOptions.issuer : ISSUER,
    pathPrefix: serverOptions.pathPrefix ?? '',
    allowedHosts: serverOptions.allowedHosts ?? [],
    logger: silentLogger,
  });
  return {
    clock,
    manager,
    minter,
    server,
    close: async () => {
      await server.close();
      temp.remove();
    },
  };
}

/** The JWKS as a relying party sees it: fetched over HTTPS, trusting only the test CA. */
async function fetchJwks(rig: Rig, prefix = ''): Promise<ReturnType<typeof createLocalJWKSet>> {
  const response = await request(`${rig.server.url}${prefix}/jwks.json`, { ca: ca.certPem });
  expect(response.status).toBe(200);
  expect(response.headers['content-type']).toBe('application/json');
  return createLocalJWKSet(JSON.parse(response.body) as JSONWebKeySet);
}

function mint(rig: Rig, audiences: string[] = []) {
  return rig.minter.mint({
    spiffeId: SPIFFE_ID,
    trustDomain: 'example.org',
    audiences,
    notAfter: new Date(rig.clock.now().getTime() + 2 * TTL),
  });
}

describe.each(JWT_SIGNING_ALGORITHMS)(
  '%s JWT-SVIDs verified against the JWKS served over HTTPS',
  (alg) => {
    let rig: Rig;
    beforeAll(async () => {
      rig = await startRig(alg);
    });
    afterAll(() => rig.close());

    it('verify with jose, with the claims as specified', async () => {
      const minted = mint(rig, ['sts.amazonaws.com']);
      const jwks = await fetchJwks(rig);
      const now = Math.floor(rig.clock.now().getTime() / 1000);
      const { payload, protectedHeader } = await jwtVerify(minted.jwt, jwks, {
        algorithms: [alg],
        issuer: ISSUER,
        audience: 'example.org',
        currentDate: rig.clock.now(),
      });
      expect(protectedHeader).toEqual({
        alg,
        kid: rig.manager.current().signingKey.kid,
        typ: 'JWT',
      });
      expect(payload).toEqual({
        sub: SPIFFE_ID,
        aud: ['example.org', 'sts.amazonaws.com'],
        iat: now,
        nbf: now - SKEW / 1000,
        exp: now + TTL / 1000,
        jti: expect.any(String),
        use: 'sig',
        iss: ISSUER,
      });
      const perAudience = await jwtVerify(
        minted.perAudienceJwts['sts.amazonaws.com'] as string,
        jwks,
        {
          audience: 'sts.amazonaws.com',
          issuer: ISSUER,
          currentDate: rig.clock.now(),
        },
      );
      expect(perAudience.payload.aud).toEqual(['sts.amazonaws.com']);
    });

    it('are rejected by jose when expired or for another audience', async () => {
      const minted = mint(rig);
      const jwks = await fetchJwks(rig);
      await expect(
        jwtVerify(minted.jwt, jwks, {
          audience: 'example.org',
          currentDate: new Date(rig.clock.now().getTime() + TTL + 1000),
        }),
      ).rejects.toMatchObject({ code: 'ERR_JWT_EXPIRED' });
      await expect(
        jwtVerify(minted.jwt, jwks, {
          audience: 'api://AzureADTokenExchange',
          currentDate: rig.clock.now(),
        }),
      ).rejects.toMatchObject({
        code: 'ERR_JWT_CLAIM_VALIDATION_FAILED',
        claim: 'aud',
      });
    });
  },
);

describe('JWT key rotation seen by a relying party over HTTPS', () => {
  let rig: Rig;
  beforeAll(async () => {
    rig = await startRig('ES256');
  });
  afterAll(() => rig.close());

  it('publishes the next key before it signs, keeps old tokens verifiable until the old key is retired', async () => {
    const first = rig.manager.current().signingKey.kid;

    await rig.manager.prepareNext();
    const next = rig.manager.current().state.next?.key.kid as string;
    const publishedKids = async () =>
      (
        JSON.parse((await request(`${rig.server.url}/jwks.json`, { ca: ca.certPem })).body) as {
          keys: { kid: string }[];
        }
      ).keys.map((k) => k.kid);
    expect(await publishedKids()).toEqual([first, next]);
    // Published, but not signing yet.
    expect(decodeProtectedHeader(mint(rig).jwt).kid).toBe(first);

    // Too early: refused, nothing changes.
    let refused: unknown;
    try {
      await rig.manager.activateNext();
    } catch (err) {
      refused = err;
    }
    expect(isWardenError(refused, 'ERR_ROTATION_REFUSED')).toBe(true);

    rig.clock.advance(HOUR);
    // The last token the first key signs, just before activation.
    const oldToken = mint(rig).jwt;
    expect(decodeProtectedHeader(oldToken).kid).toBe(first);
    await rig.manager.activateNext();
    const newToken = mint(rig).jwt;
    expect(decodeProtectedHeader(newToken).kid).toBe(next);
    expect(await publishedKids()).toEqual([next, first]);

    // The token signed before activation still verifies against what is published now.
    const jwks = await fetchJwks(rig);
    await expect(
      jwtVerify(oldToken, jwks, { audience: 'example.org', currentDate: rig.clock.now() }),
    ).resolves.toBeDefined();
    await expect(
      jwtVerify(newToken, jwks, { audience: 'example.org', currentDate: rig.clock.now() }),
    ).resolves.toBeDefined();

    // The old key may not be retired while the old token could still be valid.
    rig.clock.advance(TTL - 1000);
    let early: unknown;
    try {
      await rig.manager.retirePrevious();
    } catch (err) {
      early = err;
    }
    expect(isWardenError(early, 'ERR_ROTATION_REFUSED')).toBe(true);
    expect(await publishedKids()).toEqual([next, first]);
    await expect(
      jwtVerify(oldToken, await fetchJwks(rig), {
        audience: 'example.org',
        currentDate: rig.clock.now(),
      }),
    ).resolves.toBeDefined();

    // After the last possible token of the old key has expired, it is unpublished.
    rig.clock.advance(1000 + SKEW);
    await rig.manager.retirePrevious();
    expect(await publishedKids()).toEqual([next]);
    await expect(
      jwtVerify(oldToken, await fetchJwks(rig), {
        audience: 'example.org',
        currentDate: new Date(rig.clock.now().getTime() - 2 * TTL),
      }),
    ).rejects.toMatchObject({ code: 'ERR_JWKS_NO_MATCHING_KEY' });
  });
});

describe('OIDC discovery over HTTPS', () => {
  let rig: Rig;
  beforeAll(async () => {
    rig = await startRig('RS256', {
      issuer: undefined,
      allowedHosts: ['localhost', 'public.example.org'],
      pathPrefix: '/oidc',
    });
  });
  afterAll(() => rig.close());

  const discover = (headers: Record<string, string>) =>
    request(`${rig.server.url}/oidc/.well-known/openid-configuration`, { ca: ca.certPem, headers });

  it('derives the issuer and jwks_uri from an allowed Host, and the jwks_uri serves the JWKS', async () => {
    const response = await discover({ host: `localhost:${rig.server.port}` });
    expect(response.status).toBe(200);
    const doc = JSON.parse(response.body) as {
      issuer: string;
      jwks_uri: string;
      id_token_signing_alg_values_supported: string[];
    };
    expect(doc.issuer).toBe(`https://localhost:${rig.server.port}/oidc`);
    expect(doc.jwks_uri).toBe(`https://localhost:${rig.server.port}/oidc/jwks.json`);
    expect(doc.id_token_signing_alg_values_supported).toEqual(['RS256']);
    const jwks = await request(doc.jwks_uri, { ca: ca.certPem });
    expect(JSON.parse(jwks.body)).toEqual(rig.manager.current().publishedJwks);
  });

  it('refuses a Host outside the allow-list, whatever X-Forwarded-Host says', async () => {
    expect((await discover({ host: 'evil.example' })).status).toBe(403);
    expect((await discover({ host: 'evil.example', 'x-forwarded-host': 'localhost' })).status).toBe(
      403,
    );
    expect((await discover({ host: 'localhost', 'x-forwarded-host': 'evil.example' })).status).toBe(
      403,
    );
  });

  it('honours an allowed X-Forwarded-Host', async () => {
    const response = await discover({
      host: 'localhost',
      'x-forwarded-host': 'public.example.org',
    });
    expect(JSON.parse(response.body).issuer).toBe('https://public.example.org/oidc');
  });

  it('answers 404 off the prefix and 405 for other methods', async () => {
    expect(
      (
        await request(`${rig.server.url}/.well-known/openid-configuration`, {
          ca: ca.certPem,
          headers: { host: 'localhost' },
        })
      ).status,
    ).toBe(404);
    const post = await request(`${rig.server.url}/oidc/jwks.json`, {
      ca: ca.certPem,
      method: 'POST',
      headers: { host: 'localhost' },
    });
    expect(post.status).toBe(405);
    expect(post.headers.allow).toBe('GET, HEAD');
  });

  it('is not reachable by a client that does not trust the server certificate', async () => {
    await expect(
      request(`${rig.server.url}/oidc/jwks.json`, { headers: { host: 'localhost' } }),
    ).rejects.toMatchObject({
      code: expect.stringMatching(
        /UNABLE_TO_VERIFY_LEAF_SIGNATURE|SELF_SIGNED|UNABLE_TO_GET_ISSUER_CERT/,
      ),
    });
  });
});

describe('OIDC server TLS material', () => {
  function peerCertificate(port: number, caPem: string): Promise<X509Certificate> {
    return new Promise((resolve, reject) => {
      const socket = tls.connect(
        { host: '127.0.0.1', port, servername: 'localhost', ca: caPem },
        () => {
          const raw = socket.getPeerX509Certificate();
          socket.end();
          if (raw) resolve(raw);
          else reject(new Error('no peer certificate'));
        },
      );
      socket.on('error', reject);
    });
  }

  it('swaps its certificate without a restart, from setTlsMaterial and from a provider', async () => {
    let listener: ((m: TlsMaterial) => void) | null = null;
    let current = serverTls;
    const provider: TlsMaterialProvider = {
      current: () => current,
      onChange: (l) => {
        listener = l;
        return () => {
          listener = null;
        };
      },
    };
    const server = await startOidcServer({
      listenAddress: '127.0.0.1',
      port: 0,
      tls: provider,
      jwks: () => ({ keys: [] }),
      issuer: ISSUER,
      pathPrefix: '',
      allowedHosts: [],
      logger: silentLogger,
    });
    try {
      const firstSerial = (await peerCertificate(server.port, ca.certPem)).serialNumber;

      const otherCa = await createTestCa('Warden OIDC second CA');
      const other = await issueTestServerCertificate(otherCa, {
        dnsNames: ['localhost'],
        ipAddresses: ['127.0.0.1'],
      });
      current = { cert: other.certPem, key: other.keyPem };
      (listener as ((m: TlsMaterial) => void) | null)?.(current);
      const swapped = await peerCertificate(server.port, otherCa.certPem);
      expect(swapped.serialNumber).not.toBe(firstSerial);
      await expect(peerCertificate(server.port, ca.certPem)).rejects.toBeDefined();

      server.setTlsMaterial(serverTls);
      expect((await peerCertificate(server.port, ca.certPem)).serialNumber).toBe(firstSerial);

      // Unusable material is refused and the served certificate stays.
      expect(() => server.setTlsMaterial({ cert: serverTls.cert, key: other.keyPem })).toThrow(
        /not a usable certificate and key/,
      );
      expect((await peerCertificate(server.port, ca.certPem)).serialNumber).toBe(firstSerial);
    } finally {
      await server.close();
    }
    expect(listener).toBeNull();
  });

  it('serves plain HTTP only when given no TLS material', async () => {
    const server = await startOidcServer({
      listenAddress: '127.0.0.1',
      port: 0,
      tls: null,
      jwks: () => ({ keys: [] }),
      issuer: ISSUER,
      pathPrefix: '',
      allowedHosts: [],
      logger: silentLogger,
    });
    try {
      expect(server.url.startsWith('http://')).toBe(true);
      expect((await request(`${server.url}/jwks.json`)).status).toBe(200);
    } finally {
      await server.close();
    }
  });
});
