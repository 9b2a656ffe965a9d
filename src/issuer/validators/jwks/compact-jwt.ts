/**
 * Splitting and checking a compact JWS/JWT before and after its signature is verified. Each
 * failure is a short reason naming the check; none quotes the token or a claim value.
 */

const COMPACT_JWS = /^([A-Za-z0-9_-]+)\.([A-Za-z0-9_-]+)\.([A-Za-z0-9_-]+)$/;

export interface CompactJwt {
  readonly header: Readonly<Record<string, unknown>>;
  /** The bytes the signature covers: ASCII `<header>.<payload>`. */
  readonly signingInput: Buffer;
  readonly payloadSegment: string;
  readonly signature: Buffer;
}

export type ParseResult<T> = { ok: true; value: T } | { ok: false; reason: string };

function decodeJsonObject(segment: string): Record<string, unknown> | null {
  try {
    const value: unknown = JSON.parse(Buffer.from(segment, 'base64url').toString('utf8'));
    return typeof value === 'object' && value !== null && !Array.isArray(value)
      ? (value as Record<string, unknown>)
      : null;
  } catch {
    return null;
  }
}

/** Splits a compact JWS; refuses empty signatures (as `alg: none` tokens have) and odd shapes. */
export function parseCompactJwt(token: string): ParseResult<CompactJwt> {
  if (token.length === 0) return { ok: false, reason: 'no token was sent' };
  const match = COMPACT_JWS.exec(token);
  if (!match)
    return { ok: false, reason: 'the token is not a compact JWS with three non-empty parts' };
  const [, headerSegment, payloadSegment, signatureSegment] = match as unknown as [
    string,
    string,
    string,
    string,
  ];
  const header = decodeJsonObject(headerSegment);
  if (!header) return { ok: false, reason: 'the token header is not a JSON object' };
  return {
    ok: true,
    value: {
      header,
      signingInput: Buffer.from(`${headerSegment}.${payloadSegment}`, 'ascii'),
      payloadSegment,
      signature: Buffer.from(signatureSegment, 'base64url'),
    },
  };
}

export function decodeClaims(payloadSegment: string): ParseResult<Record<string, unknown>> {
  const claims = decodeJsonObject(payloadSegment);
  return claims
    ? { ok: true, value: claims }
    : { ok: false, reason: 'the token payload is not a JSON object' };
}

export interface ClaimExpectations {
  readonly nowMs: number;
  readonly skewMs: number;
  /** Must be one of the token's `aud` values. */
  readonly audience: string;
  /** Must equal the token's `sub`. */
  readonly subject: string;
}

function isNumericDate(value: unknown): value is number {
  return typeof value === 'number' && Number.isFinite(value);
}

/** Checks exp (required), nbf, iat, aud and sub; returns the first failed check or null. */
export function claimsProblem(
  claims: Record<string, unknown>,
  expect: ClaimExpectations,
): string | null {
  const nowSeconds = expect.nowMs / 1000;
  const skewSeconds = expect.skewMs / 1000;
  if (claims.exp === undefined) return 'the token has no exp claim';
  if (!isNumericDate(claims.exp)) return 'the token exp claim is not a number';
  if (nowSeconds > claims.exp + skewSeconds) return 'the token has expired';
  if (claims.nbf !== undefined) {
    if (!isNumericDate(claims.nbf)) return 'the token nbf claim is not a number';
    if (nowSeconds < claims.nbf - skewSeconds) return 'the token is not valid yet (nbf)';
  }
  if (claims.iat !== undefined) {
    if (!isNumericDate(claims.iat)) return 'the token iat claim is not a number';
    if (nowSeconds < claims.iat - skewSeconds) return 'the token was issued in the future (iat)';
  }
  const aud = claims.aud;
  const audiences = typeof aud === 'string' ? [aud] : Array.isArray(aud) ? aud : null;
  if (audiences === null) return 'the token has no aud claim';
  if (!audiences.some((a) => a === expect.audience))
    return `the token audience does not include ${expect.audience}`;
  if (claims.sub === undefined) return 'the token has no sub claim';
  if (claims.sub !== expect.subject) return `the token subject is not ${expect.subject}`;
  return null;
}
