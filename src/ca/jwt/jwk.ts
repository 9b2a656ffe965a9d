import { createHash, createPublicKey, type JsonWebKey, type KeyObject } from 'node:crypto';

/**
 * A public JSON Web Key as published in a JWKS (RFC 7517). Members other than the ones named
 * here are kept as they were read (a JWKS someone else wrote may carry x5c, key_ops, ...).
 */
export interface PublicJwk {
  readonly kty: string;
  readonly kid?: string;
  readonly alg?: string;
  readonly use?: string;
  readonly [member: string]: unknown;
}

/** The JWK Set document (`jwks.json`, the OIDC `jwks_uri` body). */
export interface PublicJwks {
  readonly keys: readonly PublicJwk[];
}

/** The members RFC 7638 §3.2 hashes, per key type, already in lexicographic order. */
const THUMBPRINT_MEMBERS: Readonly<Record<string, readonly string[]>> = {
  RSA: ['e', 'kty', 'n'],
  EC: ['crv', 'kty', 'x', 'y'],
  OKP: ['crv', 'kty', 'x'],
};

/**
 * Members that only a private (or symmetric) key has. A published JWKS carrying any of them
 * would leak the key, so such a JWKS is refused rather than served.
 */
const PRIVATE_MEMBERS: readonly string[] = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k'];

/**
 * The RFC 7638 JWK thumbprint (SHA-256, base64url without padding) of a public key, from the
 * required members only, so kid/alg/use never change it.
 */
export function jwkThumbprint(jwk: PublicJwk): string {
  return createHash('sha256').update(thumbprintInput(jwk)).digest('base64url');
}

/**
 * Dapr 1.16+ names its generated keys with the same SHA-256 thumbprint but in standard
 * base64 with padding; accepting that spelling lets Warden load a Dapr-written jwks.json.
 */
export function daprStyleThumbprint(jwk: PublicJwk): string {
  return createHash('sha256').update(thumbprintInput(jwk)).digest('base64');
}

function thumbprintInput(jwk: PublicJwk): string {
  const members = THUMBPRINT_MEMBERS[jwk.kty];
  if (!members) throw new TypeError(`no thumbprint members for kty ${jwk.kty}`);
  const ordered: Record<string, unknown> = {};
  for (const name of members) {
    const value = jwk[name];
    if (typeof value !== 'string') throw new TypeError(`JWK member ${name} is missing`);
    ordered[name] = value;
  }
  // JSON.stringify keeps insertion order and adds no whitespace: exactly RFC 7638's form.
  return JSON.stringify(ordered);
}

/** The bare public JWK (kty and key parameters only) of a private or public KeyObject. */
export function publicJwkOf(key: KeyObject): PublicJwk {
  const publicKey = key.type === 'private' ? createPublicKey(key) : key;
  const exported = publicKey.export({ format: 'jwk' }) as Record<string, unknown>;
  const kty = exported.kty;
  if (typeof kty !== 'string' || !THUMBPRINT_MEMBERS[kty])
    throw new TypeError('unsupported key type for a JWK');
  const bare: Record<string, unknown> = { kty };
  for (const name of THUMBPRINT_MEMBERS[kty] as readonly string[])
    if (name !== 'kty') bare[name] = exported[name];
  return Object.freeze(bare) as PublicJwk;
}

/** True when two JWKs hold the same public key (their thumbprints are equal). */
export function sameJwkKey(a: PublicJwk, b: PublicJwk): boolean {
  return a.kty === b.kty && jwkThumbprint(a) === jwkThumbprint(b);
}

/**
 * Checks one untrusted JWKS entry: an object, a supported public key that node:crypto can
 * import, no private members, string kid/alg/use when present. Returns a reason or null.
 */
export function publicJwkProblem(value: unknown): string | null {
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    return 'is not a JSON object';
  const jwk = value as Record<string, unknown>;
  const present = PRIVATE_MEMBERS.filter((name) => name in jwk);
  if (present.length > 0) return `contains private key members (${present.join(', ')})`;
  if (typeof jwk.kty !== 'string' || !THUMBPRINT_MEMBERS[jwk.kty])
    return 'has no supported kty (RSA, EC or OKP)';
  for (const name of ['kid', 'alg', 'use'] as const) {
    if (name in jwk && typeof jwk[name] !== 'string') return `has a non-string ${name}`;
  }
  for (const name of THUMBPRINT_MEMBERS[jwk.kty] as readonly string[]) {
    if (typeof jwk[name] !== 'string') return `is missing member ${name}`;
  }
  try {
    createPublicKey({ key: jwk as JsonWebKey, format: 'jwk' });
  } catch {
    return 'is not a valid public key';
  }
  return null;
}
