import { createHmac, generateKeyPairSync, sign as cryptoSign, type KeyObject } from 'node:crypto';
import { exportJWK, generateKeyPair, SignJWT, type JWK } from 'jose';

/**
 * Token makers for jwks validator tests: `jose` (panva) as an independent JWT implementation,
 * and hand-built compact JWS over node:crypto for shapes jose refuses to make (alg none,
 * HMAC with a public key as the secret).
 */

export interface JoseSigningKey {
  readonly kid: string;
  readonly alg: string;
  readonly privateKey: CryptoKey | KeyObject;
  readonly publicJwk: JWK;
}

type CryptoKey = Parameters<SignJWT['sign']>[0];

export async function joseKey(
  alg: 'ES256' | 'ES384' | 'RS256' | 'PS256' | 'EdDSA',
  kid: string,
): Promise<JoseSigningKey> {
  const { privateKey, publicKey } = await generateKeyPair(alg, {
    extractable: true,
    ...(alg === 'EdDSA' ? { crv: 'Ed25519' } : {}),
  });
  const publicJwk = { ...(await exportJWK(publicKey)), kid, use: 'sig' };
  return { kid, alg, privateKey, publicJwk };
}

export interface Claims {
  sub?: string;
  aud?: string | string[];
  exp?: number;
  nbf?: number;
  iat?: number;
  [name: string]: unknown;
}

export async function joseToken(
  key: JoseSigningKey,
  claims: Claims,
  header: Record<string, unknown> = {},
): Promise<string> {
  return new SignJWT(claims)
    .setProtectedHeader({ alg: key.alg, kid: key.kid, typ: 'JWT', ...header })
    .sign(key.privateKey);
}

function b64(value: unknown): string {
  return Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)).toString(
    'base64url',
  );
}

/** A compact JWS signed by node:crypto directly. */
export function nodeToken(
  header: Record<string, unknown>,
  claims: Claims,
  signer: (signingInput: Buffer) => Buffer,
): string {
  const input = `${b64(header)}.${b64(claims)}`;
  return `${input}.${signer(Buffer.from(input, 'ascii')).toString('base64url')}`;
}

export function nodeEs256Key(kid: string): {
  kid: string;
  privateKey: KeyObject;
  publicJwk: JWK;
  sign: (input: Buffer) => Buffer;
} {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  return {
    kid,
    privateKey,
    publicJwk: { ...(publicKey.export({ format: 'jwk' }) as JWK), kid },
    sign: (input) => cryptoSign('sha256', input, { key: privateKey, dsaEncoding: 'ieee-p1363' }),
  };
}

export function nodeRs256Key(kid: string): {
  kid: string;
  publicJwk: JWK;
  sign: (input: Buffer) => Buffer;
} {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  return {
    kid,
    publicJwk: { ...(publicKey.export({ format: 'jwk' }) as JWK), kid, alg: 'RS256' },
    sign: (input) => cryptoSign('sha256', input, privateKey),
  };
}

export function nodeEd25519Key(kid: string): {
  kid: string;
  publicJwk: JWK;
  sign: (input: Buffer) => Buffer;
} {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  return {
    kid,
    publicJwk: { ...(publicKey.export({ format: 'jwk' }) as JWK), kid },
    sign: (input) => cryptoSign(null, input, privateKey),
  };
}

export function hmacSigner(secret: Buffer | string): (input: Buffer) => Buffer {
  return (input) => createHmac('sha256', secret).update(input).digest();
}

/** `alg: none`: header, payload and an empty signature. */
export function unsignedToken(claims: Claims, kid: string): string {
  return `${b64({ alg: 'none', kid })}.${b64(claims)}.`;
}

export function jwks(...keys: JWK[]): string {
  return JSON.stringify({ keys });
}
