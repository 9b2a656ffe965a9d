import { describe, expect, it } from '@jest/globals';
import {
  createLocalJWKSet,
  decodeJwt,
  decodeProtectedHeader,
  jwtVerify,
  type JSONWebKeySet,
} from 'jose';
import { JWT_SIGNING_ALGORITHMS } from '../../../src/ca/jwt/jwt-signing-algorithm.js';
import { exportPkcs8Pem, type JwtSigningKey } from '../../../src/ca/jwt/jwt-signing-key.js';
import {
  MAX_JWT_AUDIENCES,
  createJwtSvidMinter,
  validateJwtAudiences,
  type JwtSvidMinterOptions,
} from '../../../src/issuer/jwt/jwt-svid.js';
import { ManualClock } from '../../../src/shared/clock.js';
import { isWardenError, type ErrorCode } from '../../../src/shared/errors.js';
import { sharedKey } from '../../support/jwt-test-support.js';

const HOUR = 3_600_000;
const TTL = 24 * HOUR;
const SKEW = 15 * 60_000;
const SPIFFE_ID = 'spiffe://example.org/ns/default/orders';
const START = Date.UTC(2026, 2, 1, 12, 0, 0, 250); // sub-second, to check rounding

function minterFor(
  key: JwtSigningKey,
  clock: ManualClock,
  extra: Partial<JwtSvidMinterOptions> = {},
) {
  return createJwtSvidMinter({ signingKey: () => key, ttlMs: TTL, skewMs: SKEW, clock, ...extra });
}

function jwksOf(key: JwtSigningKey): ReturnType<typeof createLocalJWKSet> {
  return createLocalJWKSet({ keys: [key.publicJwk] } as unknown as JSONWebKeySet);
}

function failure(attempt: () => unknown): { code: ErrorCode; message: string } {
  try {
    attempt();
  } catch (err) {
    if (isWardenError(err)) return { code: err.code, message: err.message };
    throw err;
  }
  throw new Error('expected a failure');
}

describe('JWT-SVID minting', () => {
  it.each(JWT_SIGNING_ALGORITHMS)(
    'mints a %s token that jose verifies, with exactly the specified header and claims',
    async (alg) => {
      const key = await sharedKey(alg);
      const clock = new ManualClock(START);
      const minted = minterFor(key, clock, { issuer: 'https://oidc.example.org' }).mint({
        spiffeId: SPIFFE_ID,
        trustDomain: 'example.org',
        audiences: ['api://AzureADTokenExchange', 'sts.amazonaws.com'],
        notAfter: new Date(START + 48 * HOUR),
      });
      const { payload, protectedHeader } = await jwtVerify(minted.jwt, jwksOf(key), {
        algorithms: [alg],
        issuer: 'https://oidc.example.org',
        audience: 'sts.amazonaws.com',
        currentDate: clock.now(),
        typ: 'JWT',
      });
      expect(protectedHeader).toEqual({ alg, kid: key.kid, typ: 'JWT' });
      const now = Math.floor(START / 1000);
      expect(payload).toEqual({
        sub: SPIFFE_ID,
        aud: ['example.org', 'api://AzureADTokenExchange', 'sts.amazonaws.com'],
        iat: now,
        nbf: Math.floor((START - SKEW) / 1000),
        exp: now + TTL / 1000,
        jti: expect.stringMatching(/^[A-Za-z0-9_-]{22}$/),
        use: 'sig',
        iss: 'https://oidc.example.org',
      });
      expect(Buffer.from(payload.jti as string, 'base64url')).toHaveLength(16);
      expect(minted.kid).toBe(key.kid);
      expect(minted.expiresAt).toEqual(new Date((now + TTL / 1000) * 1000));
    },
  );

  it.each(JWT_SIGNING_ALGORITHMS)(
    'mints one %s token per requested audience, each with aud = [that audience] only',
    async (alg) => {
      const key = await sharedKey(alg);
      const clock = new ManualClock(START);
      const minted = minterFor(key, clock).mint({
        spiffeId: SPIFFE_ID,
        trustDomain: 'example.org',
        audiences: ['a', 'b', 'a'],
        notAfter: new Date(START + 48 * HOUR),
      });
      expect(Object.keys(minted.perAudienceJwts)).toEqual(['a', 'b']);
      for (const [audience, token] of Object.entries(minted.perAudienceJwts)) {
        const { payload } = await jwtVerify(token, jwksOf(key), {
          audience,
          currentDate: clock.now(),
        });
        expect(payload.aud).toEqual([audience]);
        expect(payload.sub).toBe(SPIFFE_ID);
        await expect(
          jwtVerify(token, jwksOf(key), { audience: 'example.org', currentDate: clock.now() }),
        ).rejects.toMatchObject({
          code: 'ERR_JWT_CLAIM_VALIDATION_FAILED',
          claim: 'aud',
        });
      }
      expect(decodeJwt(minted.jwt).aud).toEqual(['example.org', 'a', 'b']);
    },
  );

  it('puts the trust domain first and only once, and makes no per-audience tokens when none are asked for', async () => {
    const key = await sharedKey('ES256');
    const minter = minterFor(key, new ManualClock(START));
    const withTd = minter.mint({
      spiffeId: SPIFFE_ID,
      trustDomain: 'example.org',
      audiences: ['x', 'example.org'],
      notAfter: new Date(START + HOUR * 48),
    });
    expect(decodeJwt(withTd.jwt).aud).toEqual(['example.org', 'x']);
    const none = minter.mint({
      spiffeId: SPIFFE_ID,
      trustDomain: 'example.org',
      audiences: [],
      notAfter: new Date(START + HOUR * 48),
    });
    expect(decodeJwt(none.jwt).aud).toEqual(['example.org']);
    expect(none.perAudienceJwts).toEqual({});
  });

  it('leaves iss out when no issuer is configured', async () => {
    const key = await sharedKey('EdDSA');
    const minted = minterFor(key, new ManualClock(START)).mint({
      spiffeId: SPIFFE_ID,
      trustDomain: 'example.org',
      audiences: [],
      notAfter: new Date(START + 48 * HOUR),
    });
    expect('iss' in decodeJwt(minted.jwt)).toBe(false);
  });

  it('never lets a token outlive the X.509 certificate issued with it', async () => {
    const key = await sharedKey('ES256');
    const notAfter = new Date(START + 2 * HOUR + 999);
    const minted = minterFor(key, new ManualClock(START)).mint({
      spiffeId: SPIFFE_ID,
      trustDomain: 'example.org',
      audiences: ['a'],
      notAfter,
    });
    expect(decodeJwt(minted.jwt).exp).toBe(Math.floor(notAfter.getTime() / 1000));
    expect(decodeJwt(minted.perAudienceJwts.a as string).exp).toBe(
      Math.floor(notAfter.getTime() / 1000),
    );
    expect(minted.expiresAt.getTime()).toBeLessThanOrEqual(notAfter.getTime());
  });

  it('gives every token a distinct jti', async () => {
    const key = await sharedKey('EdDSA');
    const minter = minterFor(key, new ManualClock(START));
    const jtis = new Set<unknown>();
    for (let i = 0; i < 50; i++) {
      const minted = minter.mint({
        spiffeId: SPIFFE_ID,
        trustDomain: 'example.org',
        audiences: ['a'],
        notAfter: new Date(START + 48 * HOUR),
      });
      jtis.add(decodeJwt(minted.jwt).jti);
      jtis.add(decodeJwt(minted.perAudienceJwts.a as string).jti);
    }
    expect(jtis.size).toBe(100);
  });

  it('reports the jti of each token it returns (for the audit line)', async () => {
    const key = await sharedKey('EdDSA');
    const minted = minterFor(key, new ManualClock(START)).mint({
      spiffeId: SPIFFE_ID,
      trustDomain: 'example.org',
      audiences: ['a', 'b'],
      notAfter: new Date(START + 48 * HOUR),
    });
    expect(minted.jti).toBe(decodeJwt(minted.jwt).jti);
    expect(minted.perAudienceJtis).toEqual({
      a: decodeJwt(minted.perAudienceJwts.a as string).jti,
      b: decodeJwt(minted.perAudienceJwts.b as string).jti,
    });
  });

  it('is rejected by jose once expired and before nbf', async () => {
    const key = await sharedKey('RS256');
    const clock = new ManualClock(START);
    const minted = minterFor(key, clock).mint({
      spiffeId: SPIFFE_ID,
      trustDomain: 'example.org',
      audiences: [],
      notAfter: new Date(START + 48 * HOUR),
    });
    const verify = (at: number) =>
      jwtVerify(minted.jwt, jwksOf(key), { audience: 'example.org', currentDate: new Date(at) });
    await expect(verify(START + TTL - 1000)).resolves.toBeDefined();
    await expect(verify(START + TTL + 1000)).rejects.toMatchObject({ code: 'ERR_JWT_EXPIRED' });
    await expect(verify(START - SKEW - 2000)).rejects.toMatchObject({
      code: 'ERR_JWT_CLAIM_VALIDATION_FAILED',
      claim: 'nbf',
    });
    await expect(
      jwtVerify(minted.jwt, jwksOf(key), { audience: 'someone-else', currentDate: clock.now() }),
    ).rejects.toMatchObject({
      code: 'ERR_JWT_CLAIM_VALIDATION_FAILED',
      claim: 'aud',
    });
  });

  it('signs with whatever key is current at the time of minting (rotation takes effect at once)', async () => {
    const [a, b] = await Promise.all([sharedKey('ES256'), sharedKey('EdDSA')]);
    let current = a;
    const minter = createJwtSvidMinter({
      signingKey: () => current,
      ttlMs: TTL,
      skewMs: SKEW,
      clock: new ManualClock(START),
    });
    const request = {
      spiffeId: SPIFFE_ID,
      trustDomain: 'example.org',
      audiences: [],
      notAfter: new Date(START + 48 * HOUR),
    };
    expect(decodeProtectedHeader(minter.mint(request).jwt)).toMatchObject({
      kid: a.kid,
      alg: 'ES256',
    });
    current = b;
    expect(decodeProtectedHeader(minter.mint(request).jwt)).toMatchObject({
      kid: b.kid,
      alg: 'EdDSA',
    });
  });

  const badAudiences: [string, string[], RegExp][] = [
    ['an empty audience', ['ok', ''], /empty audience/],
    [
      'too many audiences',
      Array.from({ length: MAX_JWT_AUDIENCES + 1 }, (_, i) => `a${i}`),
      /at most 16/,
    ],
    ['an overlong audience', ['x'.repeat(513)], /longer than 512 bytes/],
    ['a control character', ['bad\naudience'], /control characters/],
  ];
  it.each(badAudiences)(
    'refuses jwt_audiences with %s as ERR_REQUEST_INVALID',
    (_name, audiences, message) => {
      const result = failure(() => validateJwtAudiences(audiences));
      expect(result.code).toBe('ERR_REQUEST_INVALID');
      expect(result.message).toMatch(message);
    },
  );

  it('fails with ERR_JWT_FAILED when the certificate has already expired', async () => {
    const key = await sharedKey('ES256');
    const result = failure(() =>
      minterFor(key, new ManualClock(START)).mint({
        spiffeId: SPIFFE_ID,
        trustDomain: 'example.org',
        audiences: [],
        notAfter: new Date(START),
      }),
    );
    expect(result.code).toBe('ERR_JWT_FAILED');
  });

  it('fails with ERR_JWT_FAILED, naming the kid but no key material, when signing fails', async () => {
    const key = await sharedKey('EdDSA');
    // An RS256-labelled key holding an Ed25519 private key: node:crypto refuses a digest for it.
    const broken = { ...key, alg: 'RS256' as const };
    const result = failure(() =>
      minterFor(broken, new ManualClock(START)).mint({
        spiffeId: SPIFFE_ID,
        trustDomain: 'example.org',
        audiences: [],
        notAfter: new Date(START + HOUR),
      }),
    );
    expect(result.code).toBe('ERR_JWT_FAILED');
    expect(result.message).toContain(key.kid);
    const pemBody = exportPkcs8Pem(key.privateKey).split('\n')[1] as string;
    expect(result.message).not.toContain(pemBody.slice(0, 20));
  });

  it('treats a SPIFFE ID outside the trust domain as programmer misuse', async () => {
    const key = await sharedKey('ES256');
    expect(() =>
      minterFor(key, new ManualClock(START)).mint({
        spiffeId: 'spiffe://other.org/ns/a/b',
        trustDomain: 'example.org',
        audiences: [],
        notAfter: new Date(START + HOUR),
      }),
    ).toThrow(TypeError);
  });
});
