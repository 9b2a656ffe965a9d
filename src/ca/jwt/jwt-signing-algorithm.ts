import { generateKeyPair, type KeyObject } from 'node:crypto';
import { promisify } from 'node:util';

const generateKeyPairAsync = promisify(generateKeyPair);

/**
 * The JWS algorithms Warden signs JWT-SVIDs with (`--jwt-signing-algorithm`). Each maps to
 * exactly one key type, so a loaded key decides its algorithm and the flag only has to agree.
 */
export const JWT_SIGNING_ALGORITHMS = ['RS256', 'ES256', 'EdDSA'] as const;
export type JwtSigningAlgorithm = (typeof JWT_SIGNING_ALGORITHMS)[number];

/** Dapr's default: RS256 is what every cloud federation endpoint accepts. */
export const DEFAULT_JWT_SIGNING_ALGORITHM: JwtSigningAlgorithm = 'RS256';

/** RSA keys below this size are refused when loaded (RFC 7518 §3.3 requires ≥ 2048). */
export const MIN_RSA_MODULUS_BITS = 2048;

export function isJwtSigningAlgorithm(value: string): value is JwtSigningAlgorithm {
  return (JWT_SIGNING_ALGORITHMS as readonly string[]).includes(value);
}

/**
 * The algorithm a key can sign with, or a sentence saying why it cannot (for error messages
 * that name the file; the sentence never contains key material).
 */
export function algorithmForKey(
  key: KeyObject,
): { alg: JwtSigningAlgorithm } | { problem: string } {
  switch (key.asymmetricKeyType) {
    case 'rsa': {
      const bits = key.asymmetricKeyDetails?.modulusLength ?? 0;
      if (bits < MIN_RSA_MODULUS_BITS)
        return {
          problem: `is an RSA key of ${bits} bits (at least ${MIN_RSA_MODULUS_BITS} needed)`,
        };
      return { alg: 'RS256' };
    }
    case 'ec': {
      const curve = key.asymmetricKeyDetails?.namedCurve;
      if (curve !== 'prime256v1')
        return {
          problem: `is an EC key on ${curve ?? 'an unknown curve'} (only P-256 is supported, for ES256)`,
        };
      return { alg: 'ES256' };
    }
    case 'ed25519':
      return { alg: 'EdDSA' };
    default:
      return {
        problem: `is a ${key.asymmetricKeyType ?? 'non-asymmetric'} key (RSA, EC P-256 or Ed25519 needed)`,
      };
  }
}

/**
 * A fresh private key for the algorithm: RSA-2048, P-256 or Ed25519. Asynchronous because
 * RSA generation takes tens of milliseconds and may run while the server is serving.
 */
export async function generateJwtPrivateKey(alg: JwtSigningAlgorithm): Promise<KeyObject> {
  switch (alg) {
    case 'RS256':
      return (await generateKeyPairAsync('rsa', { modulusLength: 2048, publicExponent: 0x10001 }))
        .privateKey;
    case 'ES256':
      return (await generateKeyPairAsync('ec', { namedCurve: 'prime256v1' })).privateKey;
    case 'EdDSA':
      return (await generateKeyPairAsync('ed25519')).privateKey;
  }
}
