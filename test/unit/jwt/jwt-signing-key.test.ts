import { describe, expect, it } from '@jest/globals';
import { generateKeyPairSync } from 'node:crypto';
import { calculateJwkThumbprint, type JWK } from 'jose';
import { daprStyleThumbprint, jwkThumbprint, publicJwkProblem } from '../../../src/ca/jwt/jwk.js';
import { JWT_SIGNING_ALGORITHMS } from '../../../src/ca/jwt/jwt-signing-algorithm.js';
import {
  exportPkcs8Pem,
  generateJwtSigningKey,
  jwtSigningKeyFrom,
  parsePkcs8PrivateKeyPem,
} from '../../../src/ca/jwt/jwt-signing-key.js';
import { isWardenError } from '../../../src/shared/errors.js';

const KEY_SHAPES = {
  RS256: { kty: 'RSA', members: ['e', 'kty', 'n'] },
  ES256: { kty: 'EC', crv: 'P-256', members: ['crv', 'kty', 'x', 'y'] },
  EdDSA: { kty: 'OKP', crv: 'Ed25519', members: ['crv', 'kty', 'x'] },
} as const;

describe('JWT signing keys', () => {
  it.each(JWT_SIGNING_ALGORITHMS)(
    'names a generated %s key by its RFC 7638 thumbprint, as jose computes it independently',
    async (alg) => {
      const key = await generateJwtSigningKey(alg);
      const independent = await calculateJwkThumbprint(key.publicJwk as JWK, 'sha256');
      expect(key.kid).toBe(independent);
      expect(jwkThumbprint(key.publicJwk)).toBe(independent);
      expect(key.kid).toMatch(/^[A-Za-z0-9_-]{43}$/);
    },
  );

  it.each(JWT_SIGNING_ALGORITHMS)(
    'publishes a %s key as a public JWK with kid, alg and use "sig" only',
    async (alg) => {
      const key = await generateJwtSigningKey(alg);
      const shape = KEY_SHAPES[alg];
      expect(key.alg).toBe(alg);
      expect(key.publicJwk.kty).toBe(shape.kty);
      if ('crv' in shape) expect(key.publicJwk.crv).toBe(shape.crv);
      expect(Object.keys(key.publicJwk).sort()).toEqual(
        [...shape.members.filter((m) => m !== 'kty'), 'alg', 'kid', 'kty', 'use'].sort(),
      );
      expect(key.publicJwk).toMatchObject({ kid: key.kid, alg, use: 'sig' });
      expect(publicJwkProblem(key.publicJwk)).toBeNull();
    },
  );

  it('generates RSA-2048 for RS256', async () => {
    const key = await generateJwtSigningKey('RS256');
    expect(key.privateKey.asymmetricKeyDetails?.modulusLength).toBe(2048);
  });

  it('uses a given key id instead of the thumbprint (--jwt-key-id)', async () => {
    const key = await generateJwtSigningKey('ES256', 'my-key-1');
    expect(key.kid).toBe('my-key-1');
    expect(key.publicJwk.kid).toBe('my-key-1');
  });

  it("spells Dapr's kid as standard base64 of the same SHA-256 thumbprint", async () => {
    const key = await generateJwtSigningKey('EdDSA');
    expect(Buffer.from(daprStyleThumbprint(key.publicJwk), 'base64')).toEqual(
      Buffer.from(key.kid, 'base64url'),
    );
  });

  it('round-trips through PKCS#8 PEM with the same kid', async () => {
    const key = await generateJwtSigningKey('ES256');
    const pem = exportPkcs8Pem(key.privateKey);
    expect(pem.startsWith('-----BEGIN PRIVATE KEY-----')).toBe(true);
    expect(jwtSigningKeyFrom(parsePkcs8PrivateKeyPem(pem, 'jwt.key')).kid).toBe(key.kid);
  });

  const refusals: [string, () => unknown, RegExp][] = [
    [
      'an RSA key below 2048 bits',
      () =>
        jwtSigningKeyFrom(generateKeyPairSync('rsa', { modulusLength: 1024 }).privateKey, {
          what: 'jwt.key',
        }),
      /jwt\.key is an RSA key of 1024 bits/,
    ],
    [
      'an EC key on P-384',
      () =>
        jwtSigningKeyFrom(generateKeyPairSync('ec', { namedCurve: 'secp384r1' }).privateKey, {
          what: 'jwt.key',
        }),
      /jwt\.key is an EC key on secp384r1/,
    ],
    [
      'an Ed448 key',
      () => jwtSigningKeyFrom(generateKeyPairSync('ed448').privateKey, { what: 'jwt.key' }),
      /jwt\.key is a ed448 key/,
    ],
    [
      'a PKCS#1 "RSA PRIVATE KEY" PEM',
      () =>
        parsePkcs8PrivateKeyPem(
          generateKeyPairSync('rsa', { modulusLength: 2048 })
            .privateKey.export({ format: 'pem', type: 'pkcs1' })
            .toString(),
          'jwt.key',
        ),
      /jwt\.key must be a PKCS#8 "PRIVATE KEY" PEM block/,
    ],
    [
      'two PEM blocks',
      () =>
        parsePkcs8PrivateKeyPem(
          '-----BEGIN PRIVATE KEY-----\nAA==\n-----END PRIVATE KEY-----\n'.repeat(2),
          'jwt.key',
        ),
      /exactly one PEM block \(found 2\)/,
    ],
    [
      'garbage inside the PEM block',
      () =>
        parsePkcs8PrivateKeyPem(
          '-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n',
          'jwt.key',
        ),
      /jwt\.key is not a valid PKCS#8 private key/,
    ],
    [
      'an invalid key id',
      () => jwtSigningKeyFrom(generateKeyPairSync('ed25519').privateKey, { kid: 'has space' }),
      /key id .* visible ASCII/,
    ],
  ];
  it.each(refusals)('refuses %s with ERR_TRUST_MATERIAL_INVALID', (_name, attempt, message) => {
    let caught: unknown;
    try {
      attempt();
    } catch (err) {
      caught = err;
    }
    expect(isWardenError(caught, 'ERR_TRUST_MATERIAL_INVALID')).toBe(true);
    expect((caught as Error).message).toMatch(message);
  });

  const badJwks: [string, unknown, RegExp][] = [
    [
      'a private RSA JWK',
      { kty: 'RSA', n: 'AQAB', e: 'AQAB', d: 'AQAB' },
      /private key members \(d\)/,
    ],
    ['a symmetric key', { kty: 'oct', k: 'c2VjcmV0' }, /private key members \(k\)/],
    ['an unknown key type', { kty: 'XYZ' }, /no supported kty/],
    ['an EC key without y', { kty: 'EC', crv: 'P-256', x: 'AA' }, /missing member y/],
    ['a non-string kid', { kty: 'OKP', crv: 'Ed25519', x: 'AA', kid: 5 }, /non-string kid/],
    ['a malformed public key', { kty: 'OKP', crv: 'Ed25519', x: 'AA' }, /not a valid public key/],
    ['an array', [], /not a JSON object/],
  ];
  it.each(badJwks)('finds the problem with %s in a JWKS entry', (_name, jwk, problem) => {
    expect(publicJwkProblem(jwk)).toMatch(problem);
  });
});
