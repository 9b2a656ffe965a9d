import type { KeyObject, webcrypto } from 'node:crypto';

type Algorithm = webcrypto.Algorithm;
type EcKeyGenParams = webcrypto.EcKeyGenParams;
type EcKeyImportParams = webcrypto.EcKeyImportParams;
type RsaHashedImportParams = webcrypto.RsaHashedImportParams;
type EcdsaParams = webcrypto.EcdsaParams;

/** Key algorithms Warden generates for its own root and issuer (Dapr ≤1.17: P-256; 1.18+: Ed25519). */
export const KEY_ALGORITHMS = ['ecdsa-p256', 'ed25519'] as const;
export type KeyAlgorithm = (typeof KEY_ALGORITHMS)[number];

export function isKeyAlgorithm(value: string): value is KeyAlgorithm {
  return (KEY_ALGORITHMS as readonly string[]).includes(value);
}

/** WebCrypto parameters to generate a key pair of a Warden key algorithm. */
export function keyGenParams(algorithm: KeyAlgorithm): EcKeyGenParams | Algorithm {
  switch (algorithm) {
    case 'ecdsa-p256':
      return { name: 'ECDSA', namedCurve: 'P-256' };
    case 'ed25519':
      return { name: 'Ed25519' };
  }
}

/**
 * The kinds of key Warden accepts anywhere in trust material (rule 17 of the PKI rules):
 * the same set it accepts in CSRs, so a BYO chain can never hold a key a leaf could not.
 */
export type AcceptedKeyKind = 'ecdsa-p256' | 'ecdsa-p384' | 'ed25519' | 'rsa';

export const MIN_RSA_BITS = 2048;

export interface KeyKindResult {
  readonly kind: AcceptedKeyKind | null;
  /** Human description for messages ("RSA 1024-bit", "EC secp521r1"), never key bytes. */
  readonly description: string;
}

/** Classifies a public or private key; `kind` is null when Warden does not accept it. */
export function classifyKey(key: KeyObject): KeyKindResult {
  const type = key.asymmetricKeyType;
  const details = key.asymmetricKeyDetails ?? {};
  switch (type) {
    case 'ec': {
      const curve = details.namedCurve ?? 'unknown curve';
      if (curve === 'prime256v1') return { kind: 'ecdsa-p256', description: 'ECDSA P-256' };
      if (curve === 'secp384r1') return { kind: 'ecdsa-p384', description: 'ECDSA P-384' };
      return { kind: null, description: `EC ${curve}` };
    }
    case 'ed25519':
      return { kind: 'ed25519', description: 'Ed25519' };
    case 'rsa': {
      const bits = details.modulusLength ?? 0;
      return bits >= MIN_RSA_BITS
        ? { kind: 'rsa', description: `RSA ${bits}-bit` }
        : { kind: null, description: `RSA ${bits}-bit (fewer than ${MIN_RSA_BITS} bits)` };
    }
    default:
      return { kind: null, description: type ?? 'unknown key type' };
  }
}

/** WebCrypto import and signing parameters for a private key of an accepted kind. */
export function webCryptoParamsFor(kind: AcceptedKeyKind): {
  readonly importParams: Algorithm | EcKeyImportParams | RsaHashedImportParams;
  readonly signingParams: Algorithm | EcdsaParams;
} {
  switch (kind) {
    case 'ecdsa-p256':
      return {
        importParams: { name: 'ECDSA', namedCurve: 'P-256' } as EcKeyImportParams,
        signingParams: { name: 'ECDSA', hash: 'SHA-256' } as EcdsaParams,
      };
    case 'ecdsa-p384':
      return {
        importParams: { name: 'ECDSA', namedCurve: 'P-384' } as EcKeyImportParams,
        signingParams: { name: 'ECDSA', hash: 'SHA-384' } as EcdsaParams,
      };
    case 'ed25519':
      return { importParams: { name: 'Ed25519' }, signingParams: { name: 'Ed25519' } };
    case 'rsa':
      return {
        importParams: { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' } as RsaHashedImportParams,
        signingParams: { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' },
      };
  }
}
