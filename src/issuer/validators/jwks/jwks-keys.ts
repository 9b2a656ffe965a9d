import {
  createPublicKey,
  verify as cryptoVerify,
  type JsonWebKey as NodeJsonWebKey,
  type KeyObject,
} from 'node:crypto';
import type JoseLibrary from 'node-jose';

type NodeJose = typeof JoseLibrary;
let nodeJose: Promise<NodeJose> | null = null;

/**
 * node-jose (with node-forge and lodash) costs ≈ 70 ms to load; only a jwks validator with EC
 * or RSA keys needs it, so `warden serve` without one never loads it (issue 7: cold start).
 */
function loadNodeJose(): Promise<NodeJose> {
  nodeJose ??= import('node-jose').then((m) => m.default);
  return nodeJose;
}

/**
 * The verification keys of one JWKS, indexed by `kid`. Only asymmetric signing keys are kept:
 * a symmetric (`oct`) key in a JWKS is public to everyone who can read the JWKS, so accepting
 * HMAC would let anyone mint tokens (the classic alg-confusion attack).
 */

const EC_ALGORITHM_BY_CURVE: Readonly<Record<string, string>> = {
  'P-256': 'ES256',
  'P-384': 'ES384',
  'P-521': 'ES512',
};
const RSA_ALGORITHMS: readonly string[] = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512'];
/** RFC 8037 names Ed25519 signatures EdDSA; RFC 9864 adds the fully-specified `Ed25519`. */
const ED25519_ALGORITHMS: readonly string[] = ['EdDSA', 'Ed25519'];
const MIN_RSA_MODULUS_BITS = 2048;

export interface VerificationKey {
  readonly kid: string;
  /** The algorithms this key may verify: from its `alg` when set, else from its type and curve. */
  readonly algorithms: ReadonlySet<string>;
  /** Resolves true only when `signature` is valid over `signingInput` with `alg`. */
  verify(
    alg: string,
    compactToken: string,
    signingInput: Buffer,
    signature: Buffer,
  ): Promise<boolean>;
}

export interface VerificationKeySet {
  readonly byKid: ReadonlyMap<string, readonly VerificationKey[]>;
  readonly size: number;
  /** Why entries were left out (kid and reason; never key material). */
  readonly skipped: readonly string[];
}

/** Algorithms refused whatever the JWKS says. */
export function isRefusedAlgorithm(alg: string): boolean {
  return alg.toLowerCase() === 'none' || /^HS\d+$/i.test(alg);
}

function rsaModulusBits(n: string): number {
  const bytes = Buffer.from(n, 'base64url');
  let leading = 0;
  while (leading < bytes.length && bytes[leading] === 0) leading++;
  const significant = bytes.length - leading;
  if (significant === 0) return 0;
  return (significant - 1) * 8 + (32 - Math.clz32(bytes[leading] as number));
}

/** The algorithms a JWK can verify, or a reason it is left out. */
function allowedAlgorithms(
  jwk: Record<string, unknown>,
): { algorithms: string[] } | { skip: string } {
  const kty = jwk.kty;
  let natural: readonly string[];
  if (kty === 'EC') {
    const alg = typeof jwk.crv === 'string' ? EC_ALGORITHM_BY_CURVE[jwk.crv] : undefined;
    if (!alg) return { skip: `EC curve ${String(jwk.crv)} is not supported` };
    natural = [alg];
  } else if (kty === 'RSA') {
    if (typeof jwk.n !== 'string') return { skip: 'RSA key without a modulus' };
    const bits = rsaModulusBits(jwk.n);
    if (bits < MIN_RSA_MODULUS_BITS)
      return { skip: `RSA key of ${bits} bits is below ${MIN_RSA_MODULUS_BITS}` };
    natural = RSA_ALGORITHMS;
  } else if (kty === 'OKP') {
    if (jwk.crv !== 'Ed25519') return { skip: `OKP curve ${String(jwk.crv)} is not supported` };
    natural = ED25519_ALGORITHMS;
  } else if (kty === 'oct') {
    return { skip: 'symmetric (oct) keys are never used: HMAC tokens are refused' };
  } else {
    return { skip: `key type ${String(kty)} is not supported` };
  }
  if (jwk.use !== undefined && jwk.use !== 'sig')
    return { skip: `use "${String(jwk.use)}" is not sig` };
  if (
    jwk.key_ops !== undefined &&
    !(Array.isArray(jwk.key_ops) && jwk.key_ops.includes('verify'))
  ) {
    return { skip: 'key_ops does not include verify' };
  }
  if (jwk.alg !== undefined) {
    if (typeof jwk.alg !== 'string' || isRefusedAlgorithm(jwk.alg))
      return { skip: `alg ${String(jwk.alg)} is refused` };
    if (!natural.includes(jwk.alg)) return { skip: `alg ${jwk.alg} does not fit the key type` };
    return { algorithms: [jwk.alg] };
  }
  return { algorithms: [...natural] };
}

/** Only the public members: a JWKS that (wrongly) carries private parts is never used to sign. */
function publicMembers(jwk: Record<string, unknown>): Record<string, unknown> {
  const pick = (names: readonly string[]): Record<string, unknown> =>
    Object.fromEntries(names.filter((n) => jwk[n] !== undefined).map((n) => [n, jwk[n]]));
  if (jwk.kty === 'EC') return pick(['kty', 'crv', 'x', 'y', 'kid']);
  if (jwk.kty === 'RSA') return pick(['kty', 'n', 'e', 'kid']);
  return pick(['kty', 'crv', 'x', 'kid']);
}

async function makeNodeJoseKey(
  jose: NodeJose,
  kid: string,
  jwk: Record<string, unknown>,
  algorithms: string[],
): Promise<VerificationKey> {
  const key = await jose.JWK.asKey(publicMembers(jwk), 'json');
  return {
    kid,
    algorithms: new Set(algorithms),
    async verify(alg: string, compactToken: string): Promise<boolean> {
      if (!algorithms.includes(alg)) return false;
      try {
        // The key is passed directly: node-jose never looks at header jwk/x5c/jku for it.
        await jose.JWS.createVerify(key, { algorithms: [alg], allowEmbeddedKey: false }).verify(
          compactToken,
        );
        return true;
      } catch {
        return false;
      }
    },
  };
}

// node-jose has no OKP (Ed25519) support, so those keys are verified with node:crypto.
function makeEd25519Key(
  kid: string,
  jwk: Record<string, unknown>,
  algorithms: string[],
): VerificationKey {
  const key: KeyObject = createPublicKey({
    key: publicMembers(jwk) as NodeJsonWebKey,
    format: 'jwk',
  });
  return {
    kid,
    algorithms: new Set(algorithms),
    async verify(
      alg: string,
      _compactToken: string,
      signingInput: Buffer,
      signature: Buffer,
    ): Promise<boolean> {
      if (!algorithms.includes(alg)) return false;
      try {
        return cryptoVerify(null, signingInput, key, signature);
      } catch {
        return false;
      }
    },
  };
}

/**
 * Builds the key set from a parsed JWKS document. Throws an Error (message safe to log) when
 * the document is not a JWKS at all; individual unusable keys are skipped with a reason.
 */
export async function buildVerificationKeySet(document: unknown): Promise<VerificationKeySet> {
  if (
    typeof document !== 'object' ||
    document === null ||
    !Array.isArray((document as { keys?: unknown }).keys)
  ) {
    throw new Error('the document is not a JWKS (no "keys" list)');
  }
  const byKid = new Map<string, VerificationKey[]>();
  const skipped: string[] = [];
  let size = 0;
  for (const [index, entry] of (document as { keys: unknown[] }).keys.entries()) {
    if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) {
      skipped.push(`keys[${index}]: not a JSON object`);
      continue;
    }
    const jwk = entry as Record<string, unknown>;
    const label =
      typeof jwk.kid === 'string'
        ? `kid ${JSON.stringify(jwk.kid.slice(0, 64))}`
        : `keys[${index}]`;
    // Tokens are matched to keys by kid (as Dapr's jwx setup requires), so a key without one can never be used.
    if (typeof jwk.kid !== 'string' || jwk.kid.length === 0) {
      skipped.push(`${label}: no kid`);
      continue;
    }
    const allowed = allowedAlgorithms(jwk);
    if ('skip' in allowed) {
      skipped.push(`${label}: ${allowed.skip}`);
      continue;
    }
    let key: VerificationKey;
    // Loaded outside the try: a broken install must not read as "invalid key parameters".
    const jose = jwk.kty === 'OKP' ? null : await loadNodeJose();
    try {
      key =
        jose === null
          ? makeEd25519Key(jwk.kid, jwk, allowed.algorithms)
          : await makeNodeJoseKey(jose, jwk.kid, jwk, allowed.algorithms);
    } catch {
      skipped.push(`${label}: the key parameters are invalid`);
      continue;
    }
    const list = byKid.get(jwk.kid) ?? [];
    list.push(key);
    byKid.set(jwk.kid, list);
    size++;
  }
  return { byKid, size, skipped };
}
