import { randomBytes, sign, type KeyObject } from 'node:crypto';
import type { JwtSigningKey } from '../../ca/jwt/jwt-signing-key.js';
import type { Clock } from '../../shared/clock.js';
import { WardenError } from '../../shared/errors.js';
import { parseSpiffeId, printable } from '../../shared/spiffe-id.js';

/*
 * JWT-SVIDs are signed with node:crypto directly, not node-jose (the project's JOSE library):
 *
 * - Correctness: node-jose 2.2 has no OKP keys, so it cannot sign EdDSA at all, and the JWS
 *   compact form of a JWT is small enough to build exactly by hand (two base64url JSON parts,
 *   one signature; ES256 needs the raw r||s form, which `dsaEncoding: 'ieee-p1363'` gives).
 * - Speed: this runs on every SignCertificate when --jwt-enabled, once per requested audience
 *   plus one. `node dist/bench/jwt-mint.js` on the shared 2-core machine (load average ~3
 *   from other helpers, so noisy; median of 5 rounds of 0.8 s, µs per token including claims
 *   and jti; node-jose signs the same claims with a key imported once):
 *       node:crypto   RS256  274 µs   ES256  29 µs   EdDSA  35 µs
 *       node-jose     RS256  953 µs   ES256 363 µs   EdDSA  unsupported ("no importer for key")
 *   The signature itself is the same OpenSSL operation; node-jose's per-token overhead
 *   (not profiled further) makes it 3.5x the cost for RS256 and 12x for ES256.
 */

/** Upper bounds on jwt_audiences: each audience costs one more signature (per_audience_jwts). */
export const MAX_JWT_AUDIENCES = 16;
export const MAX_JWT_AUDIENCE_BYTES = 512;

export interface JwtSvidMinterOptions {
  /** The current signing key (read on every mint, so a rotation takes effect at once). */
  readonly signingKey: () => JwtSigningKey;
  /** `--jwt-issuer`: the `iss` claim; omitted when undefined. */
  readonly issuer?: string | undefined;
  /** `--jwt-ttl` in milliseconds. */
  readonly ttlMs: number;
  /** allowedClockSkew in milliseconds: `nbf` is backdated by this much. */
  readonly skewMs: number;
  readonly clock: Clock;
}

export interface JwtSvidRequest {
  /** The workload's SPIFFE ID (the `sub` claim), as decided by the validator. */
  readonly spiffeId: string;
  /** Its trust domain: always the first audience of the main token. */
  readonly trustDomain: string;
  /** The request's jwt_audiences, unchecked (they are validated here). */
  readonly audiences: readonly string[];
  /** The X.509 leaf's notAfter: no token outlives the certificate issued with it. */
  readonly notAfter: Date;
}

export interface MintedJwtSvids {
  /** `jwt`: aud = [trust domain, ...jwt_audiences] (deduplicated, in that order). */
  readonly jwt: string;
  /**
   * `per_audience_jwts`: one token per requested audience with aud = [that audience] only.
   * Dapr 1.18's daprd rejects a per-audience token whose aud is not exactly [its map key], so
   * the trust domain is not added to these. Empty when no audiences were requested.
   */
  readonly perAudienceJwts: Readonly<Record<string, string>>;
  readonly kid: string;
  /** The `jti` of `jwt`, and of each per-audience token by audience: for audit lines. */
  readonly jti: string;
  readonly perAudienceJtis: Readonly<Record<string, string>>;
  readonly issuedAt: Date;
  readonly expiresAt: Date;
}

export interface JwtSvidMinter {
  /** Throws WardenError ERR_REQUEST_INVALID for bad audiences, ERR_JWT_FAILED when minting fails. */
  mint(request: JwtSvidRequest): MintedJwtSvids;
}

/**
 * Checks jwt_audiences from a request (untrusted): at most MAX_JWT_AUDIENCES, each non-empty,
 * at most MAX_JWT_AUDIENCE_BYTES, without control characters. Returns them deduplicated.
 */
export function validateJwtAudiences(audiences: readonly string[]): string[] {
  if (audiences.length > MAX_JWT_AUDIENCES) {
    throw new WardenError(
      'ERR_REQUEST_INVALID',
      `jwt_audiences has ${audiences.length} entries (at most ${MAX_JWT_AUDIENCES})`,
    );
  }
  const seen = new Set<string>();
  for (const audience of audiences) {
    if (audience.length === 0)
      throw new WardenError('ERR_REQUEST_INVALID', 'jwt_audiences contains an empty audience');
    if (Buffer.byteLength(audience) > MAX_JWT_AUDIENCE_BYTES) {
      throw new WardenError(
        'ERR_REQUEST_INVALID',
        `a jwt_audiences entry is longer than ${MAX_JWT_AUDIENCE_BYTES} bytes`,
      );
    }
    if (/[\u0000-\u001f\u007f-\u009f]/.test(audience)) {
      throw new WardenError(
        'ERR_REQUEST_INVALID',
        `jwt_audiences entry "${printable(audience)}" contains control characters`,
      );
    }
    seen.add(audience);
  }
  return [...seen];
}

export function createJwtSvidMinter(options: JwtSvidMinterOptions): JwtSvidMinter {
  if (!(options.ttlMs > 0)) throw new TypeError('JWT TTL must be positive');
  if (!(options.skewMs >= 0)) throw new TypeError('clock skew must not be negative');
  if (options.issuer !== undefined && options.issuer.length === 0)
    throw new TypeError('issuer must be undefined or non-empty');
  const headers = new HeaderCache();

  return {
    mint(request: JwtSvidRequest): MintedJwtSvids {
      const parsed = parseSpiffeId(request.spiffeId);
      if (!parsed || parsed.segments.length === 0 || parsed.trustDomain !== request.trustDomain) {
        throw new TypeError('spiffeId must be a workload SPIFFE ID in trustDomain');
      }
      const requested = validateJwtAudiences(request.audiences);
      const key = options.signingKey();
      const nowMs = options.clock.now().getTime();
      const iat = Math.floor(nowMs / 1000);
      const nbf = Math.floor((nowMs - options.skewMs) / 1000);
      // Floor, so that exp never lands after the certificate's notAfter.
      const exp = Math.floor(Math.min(nowMs + options.ttlMs, request.notAfter.getTime()) / 1000);
      if (exp <= iat) {
        throw new WardenError(
          'ERR_JWT_FAILED',
          'the X.509 certificate expires before a JWT-SVID could be valid',
        );
      }
      const header = headers.for(key);
      const claims = (aud: readonly string[], jti: string): string =>
        encodeJson({
          sub: request.spiffeId,
          aud,
          iat,
          nbf,
          exp,
          jti,
          use: 'sig',
          ...(options.issuer === undefined ? {} : { iss: options.issuer }),
        });
      try {
        const jti = newJti();
        const jwt = signCompact(
          header,
          claims([...new Set([request.trustDomain, ...requested])], jti),
          key,
        );
        // Entries, then fromEntries: an audience is request text, and "__proto__" assigned
        // with obj[key] = ... would set the prototype instead of adding a key.
        const jwts: Array<[string, string]> = [];
        const jtis: Array<[string, string]> = [];
        for (const audience of requested) {
          const audienceJti = newJti();
          jtis.push([audience, audienceJti]);
          jwts.push([audience, signCompact(header, claims([audience], audienceJti), key)]);
        }
        return {
          jwt,
          perAudienceJwts: Object.freeze(Object.fromEntries(jwts)),
          kid: key.kid,
          jti,
          perAudienceJtis: Object.freeze(Object.fromEntries(jtis)),
          issuedAt: new Date(iat * 1000),
          expiresAt: new Date(exp * 1000),
        };
      } catch (err) {
        throw new WardenError('ERR_JWT_FAILED', `signing a JWT-SVID with key "${key.kid}" failed`, {
          cause: err,
        });
      }
    },
  };
}

/** The base64url header for a key, built once per key rather than per token. */
class HeaderCache {
  #key: JwtSigningKey | null = null;
  #encoded = '';
  for(key: JwtSigningKey): string {
    if (this.#key !== key) {
      this.#encoded = encodeJson({ alg: key.alg, kid: key.kid, typ: 'JWT' });
      this.#key = key;
    }
    return this.#encoded;
  }
}

/** 128 random bits: unique per token, so a verifier can refuse a replayed one. */
function newJti(): string {
  return randomBytes(16).toString('base64url');
}

function encodeJson(value: unknown): string {
  return Buffer.from(JSON.stringify(value)).toString('base64url');
}

/** JWS compact serialization (RFC 7515 §7.1) of an already-encoded header and payload. */
export function signCompact(
  encodedHeader: string,
  encodedPayload: string,
  key: Pick<JwtSigningKey, 'alg' | 'privateKey'>,
): string {
  const input = `${encodedHeader}.${encodedPayload}`;
  return `${input}.${signJws(key.alg, key.privateKey, Buffer.from(input)).toString('base64url')}`;
}

function signJws(alg: JwtSigningKey['alg'], privateKey: KeyObject, data: Buffer): Buffer {
  switch (alg) {
    case 'RS256':
      return sign('sha256', data, privateKey);
    case 'ES256':
      return sign('sha256', data, { key: privateKey, dsaEncoding: 'ieee-p1363' });
    case 'EdDSA':
      return sign(null, data, privateKey);
  }
}
