import { createPrivateKey, type KeyObject } from 'node:crypto';
import { WardenError } from '../../shared/errors.js';
import { jwkThumbprint, publicJwkOf, type PublicJwk } from './jwk.js';
import {
  algorithmForKey,
  generateJwtPrivateKey,
  type JwtSigningAlgorithm,
} from './jwt-signing-algorithm.js';

/** A public key Warden publishes in its JWKS: kid, alg and the JWK (with kid, alg, use: sig). */
export interface JwtPublicKey {
  readonly kid: string;
  readonly alg: JwtSigningAlgorithm;
  readonly publicJwk: PublicJwk;
}

/** A key that can sign JWT-SVIDs: its public half plus the private KeyObject. */
export interface JwtSigningKey extends JwtPublicKey {
  readonly privateKey: KeyObject;
}

const KID_RE = /^[\x21-\x7e]{1,256}$/;

/** Checks a key id (`--jwt-key-id` or one read from a file); returns a reason or null. */
export function keyIdProblem(kid: string): string | null {
  if (!KID_RE.test(kid)) return 'must be 1 to 256 visible ASCII characters';
  return null;
}

/** The JWK published for a key: key parameters, then kid, alg and use: "sig". */
export function publishedJwk(key: KeyObject, kid: string, alg: JwtSigningAlgorithm): PublicJwk {
  return Object.freeze({ ...publicJwkOf(key), kid, alg, use: 'sig' });
}

/**
 * Wraps a private key as a signing key. `kid` defaults to the RFC 7638 thumbprint; `what`
 * names the key's source in error messages (a file name, never key bytes).
 */
export function jwtSigningKeyFrom(
  privateKey: KeyObject,
  options: { kid?: string; what?: string } = {},
): JwtSigningKey {
  const what = options.what ?? 'JWT signing key';
  if (privateKey.type !== 'private') {
    throw new WardenError('ERR_TRUST_MATERIAL_INVALID', `${what} is not a private key`);
  }
  const decided = algorithmForKey(privateKey);
  if ('problem' in decided)
    throw new WardenError('ERR_TRUST_MATERIAL_INVALID', `${what} ${decided.problem}`);
  const kid = options.kid ?? jwkThumbprint(publicJwkOf(privateKey));
  const kidProblem = keyIdProblem(kid);
  if (kidProblem)
    throw new WardenError('ERR_TRUST_MATERIAL_INVALID', `key id for ${what} ${kidProblem}`);
  return Object.freeze({
    kid,
    alg: decided.alg,
    privateKey,
    publicJwk: publishedJwk(privateKey, kid, decided.alg),
  });
}

/** A new key for the algorithm, named by its thumbprint unless `kid` is given. */
export async function generateJwtSigningKey(
  alg: JwtSigningAlgorithm,
  kid?: string,
): Promise<JwtSigningKey> {
  const privateKey = await generateJwtPrivateKey(alg);
  return jwtSigningKeyFrom(privateKey, kid === undefined ? {} : { kid });
}

/**
 * Parses exactly one PKCS#8 `PRIVATE KEY` PEM block (what Dapr writes to jwt.key). The error
 * names `what` and says what is wrong, never echoing the bytes.
 */
export function parsePkcs8PrivateKeyPem(pem: string, what: string): KeyObject {
  const blocks = pem.match(/-----BEGIN ([A-Z0-9 ]+)-----/g) ?? [];
  if (blocks.length !== 1) {
    throw new WardenError(
      'ERR_TRUST_MATERIAL_INVALID',
      `${what} must hold exactly one PEM block (found ${blocks.length})`,
    );
  }
  if (blocks[0] !== '-----BEGIN PRIVATE KEY-----') {
    throw new WardenError(
      'ERR_TRUST_MATERIAL_INVALID',
      `${what} must be a PKCS#8 "PRIVATE KEY" PEM block`,
    );
  }
  try {
    return createPrivateKey({ key: pem, format: 'pem' });
  } catch (err) {
    throw new WardenError(
      'ERR_TRUST_MATERIAL_INVALID',
      `${what} is not a valid PKCS#8 private key`,
      { cause: err },
    );
  }
}

export function exportPkcs8Pem(key: KeyObject): string {
  return key.export({ format: 'pem', type: 'pkcs8' }).toString();
}

/** The public half only (kid, alg, JWK): what stays published after a key stops signing. */
export function publicPartOf(key: JwtPublicKey): JwtPublicKey {
  return Object.freeze({ kid: key.kid, alg: key.alg, publicJwk: key.publicJwk });
}
