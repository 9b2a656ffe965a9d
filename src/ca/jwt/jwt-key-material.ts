import { createPublicKey, type JsonWebKey, type KeyObject } from 'node:crypto';
import { WardenError } from '../../shared/errors.js';
import {
  daprStyleThumbprint,
  jwkThumbprint,
  publicJwkOf,
  publicJwkProblem,
  sameJwkKey,
  type PublicJwk,
} from './jwk.js';
import { publishedJwks, type JwtKeyState } from './jwt-key-state.js';
import {
  algorithmForKey,
  isJwtSigningAlgorithm,
  type JwtSigningAlgorithm,
} from './jwt-signing-algorithm.js';
import {
  exportPkcs8Pem,
  jwtSigningKeyFrom,
  keyIdProblem,
  parsePkcs8PrivateKeyPem,
  type JwtPublicKey,
  type JwtSigningKey,
} from './jwt-signing-key.js';

/**
 * The stored form of a JWT key state, independent of where it is stored: name → text, as files
 * in `--issuer-credentials` or as keys of the trust Secret (and jwks.json in the ConfigMap).
 *
 * - `jwt.key` (`--jwt-key-filename`): the current signing key, PKCS#8 PEM, as Dapr writes it.
 * - `jwks.json` (`--jwks-filename`): everything published (current, next, previous, plus keys
 *   Warden does not manage), as Dapr writes it.
 * - `jwt-rotation.json`: Warden's record of which key is which: current kid and thumbprint, the
 *   next key (with its private key, PKCS#8 PEM, since it is not in jwt.key yet) and when it was
 *   published, the previous key's public JWK and when it may be retired. Absent for material
 *   Warden did not write (Dapr's, or a user's own); then jwt.key alone is current.
 */
export interface JwtKeyMaterialNames {
  readonly keyFilename: string;
  readonly jwksFilename: string;
  readonly stateFilename: string;
}

export const DEFAULT_JWT_KEY_FILENAME = 'jwt.key';
export const DEFAULT_JWKS_FILENAME = 'jwks.json';
export const DEFAULT_JWT_STATE_FILENAME = 'jwt-rotation.json';

export type JwtKeyMaterial = Readonly<Record<string, string>>;

/** Upper bounds on what is read, so a wrong file cannot make the loader allocate without limit. */
export const MAX_JWKS_KEYS = 64;
export const MAX_JWT_MATERIAL_FILE_BYTES = 1024 * 1024;

const STATE_VERSION = 1;

interface StoredKeyRef {
  readonly kid: string;
  readonly alg: JwtSigningAlgorithm;
  readonly thumbprint: string;
}
interface StoredNextKey {
  readonly kid: string;
  readonly alg: JwtSigningAlgorithm;
  readonly privateKeyPem: string;
  readonly preparedAt: string;
}
interface StoredPreviousKey {
  readonly kid: string;
  readonly alg: JwtSigningAlgorithm;
  readonly jwk: PublicJwk;
  readonly retireAfter: string;
}
interface StoredState {
  readonly version: number;
  readonly current: StoredKeyRef;
  readonly next?: StoredNextKey;
  readonly previous?: StoredPreviousKey;
}

export function encodeJwtKeyMaterial(
  state: JwtKeyState,
  names: JwtKeyMaterialNames,
): Record<string, string> {
  const stored: StoredState = {
    version: STATE_VERSION,
    current: {
      kid: state.current.kid,
      alg: state.current.alg,
      thumbprint: jwkThumbprint(state.current.publicJwk),
    },
    ...(state.next
      ? {
          next: {
            kid: state.next.key.kid,
            alg: state.next.key.alg,
            privateKeyPem: exportPkcs8Pem(state.next.key.privateKey),
            preparedAt: state.next.preparedAt.toISOString(),
          },
        }
      : {}),
    ...(state.previous
      ? {
          previous: {
            kid: state.previous.key.kid,
            alg: state.previous.key.alg,
            jwk: state.previous.key.publicJwk,
            retireAfter: state.previous.retireAfter.toISOString(),
          },
        }
      : {}),
  };
  return {
    [names.keyFilename]: exportPkcs8Pem(state.current.privateKey),
    [names.jwksFilename]: `${JSON.stringify(publishedJwks(state), null, 2)}\n`,
    [names.stateFilename]: `${JSON.stringify(stored, null, 2)}\n`,
  };
}

export interface DecodeJwtKeyMaterialOptions {
  readonly names: JwtKeyMaterialNames;
  /** `--jwt-signing-algorithm`: the current key must be of this algorithm's key type. */
  readonly algorithm: JwtSigningAlgorithm;
  /** `--jwt-key-id`: the kid of a key adopted without a rotation record (else its thumbprint). */
  readonly keyId?: string | undefined;
  readonly now: Date;
  /** Used only to finish an activation a crash interrupted (the outgoing key's retire time). */
  readonly maxTokenLifetimeMs: number;
}

export interface DecodedJwtKeyMaterial {
  readonly state: JwtKeyState;
  /**
   * What had to be corrected because a write was interrupted (empty when nothing). When not
   * empty the caller must store `state` again; each line is safe to log.
   */
  readonly repairs: readonly string[];
}

/**
 * Reads and validates stored JWT key material. Returns null when nothing is stored (the caller
 * generates a key). Throws ERR_TRUST_MATERIAL_INVALID naming the file for material that is
 * wrong (e.g. jwks.json without the public half of jwt.key), ERR_ROTATION_STATE when the
 * rotation record contradicts the key. Never returns a state it could not fully check.
 */
export function decodeJwtKeyMaterial(
  material: JwtKeyMaterial,
  options: DecodeJwtKeyMaterialOptions,
): DecodedJwtKeyMaterial | null {
  const { names } = options;
  const keyPem = material[names.keyFilename];
  const jwksText = material[names.jwksFilename];
  const stateText = material[names.stateFilename];
  if (keyPem === undefined && jwksText === undefined && stateText === undefined) return null;
  for (const [name, text] of [
    [names.keyFilename, keyPem],
    [names.jwksFilename, jwksText],
    [names.stateFilename, stateText],
  ] as const) {
    if (text !== undefined && Buffer.byteLength(text) > MAX_JWT_MATERIAL_FILE_BYTES) {
      throw new WardenError(
        'ERR_TRUST_MATERIAL_INVALID',
        `${name} is larger than ${MAX_JWT_MATERIAL_FILE_BYTES} bytes`,
      );
    }
  }
  if (keyPem === undefined) {
    const present = jwksText !== undefined ? names.jwksFilename : names.stateFilename;
    throw new WardenError(
      'ERR_TRUST_MATERIAL_INVALID',
      `${present} exists but ${names.keyFilename} does not; refusing to generate a new JWT key that would replace published keys`,
    );
  }

  const privateKey = parsePkcs8PrivateKeyPem(keyPem, names.keyFilename);
  const decided = algorithmForKey(privateKey);
  if ('problem' in decided)
    throw new WardenError('ERR_TRUST_MATERIAL_INVALID', `${names.keyFilename} ${decided.problem}`);
  const keyThumbprint = jwkThumbprint(publicJwkOf(privateKey));

  const jwks = jwksText === undefined ? null : parseJwks(jwksText, names.jwksFilename);
  const stored = stateText === undefined ? null : parseStoredState(stateText, names.stateFilename);
  const repairs: string[] = [];
  if (jwks === null)
    repairs.push(`${names.jwksFilename} was missing; written from ${names.keyFilename}`);

  let current: JwtSigningKey;
  let next: JwtKeyState['next'] = null;
  let previous: JwtKeyState['previous'] = null;

  if (stored === null) {
    current = jwtSigningKeyFrom(privateKey, {
      kid: adoptedKeyId(privateKey, jwks, options),
      what: names.keyFilename,
    });
  } else {
    const storedNext = stored.next ? decodeStoredNext(stored.next, names.stateFilename) : null;
    if (keyThumbprint === stored.current.thumbprint) {
      current = jwtSigningKeyFrom(privateKey, { kid: stored.current.kid, what: names.keyFilename });
      next = storedNext;
      previous = stored.previous
        ? decodeStoredPrevious(stored.previous, names.stateFilename)
        : null;
    } else if (storedNext && keyThumbprint === jwkThumbprint(storedNext.key.publicJwk)) {
      // jwt.key is written before the rotation record during activation: a crash in between
      // leaves the new key in jwt.key and the old record. Finish the activation (the outgoing
      // key stays published for a full token lifetime from now, never less than intended).
      const outgoingJwk = jwks?.find((jwk) => jwk.kid === stored.current.kid);
      if (!outgoingJwk || jwkThumbprint(outgoingJwk) !== stored.current.thumbprint) {
        throw new WardenError(
          'ERR_ROTATION_STATE',
          `${names.keyFilename} holds the next key of ${names.stateFilename}, but ${names.jwksFilename} lacks the outgoing key "${stored.current.kid}"`,
        );
      }
      current = storedNext.key;
      previous = {
        key: Object.freeze({
          kid: stored.current.kid,
          alg: stored.current.alg,
          publicJwk: Object.freeze({
            ...outgoingJwk,
            kid: stored.current.kid,
            alg: stored.current.alg,
            use: 'sig',
          }),
        }),
        retireAfter: new Date(options.now.getTime() + options.maxTokenLifetimeMs),
      };
      repairs.push(`finished an interrupted activation of JWT key "${current.kid}"`);
    } else {
      throw new WardenError(
        'ERR_ROTATION_STATE',
        `${names.keyFilename} holds neither the current nor the next JWT key recorded in ${names.stateFilename}; if the key was replaced on purpose, remove ${names.stateFilename}`,
      );
    }
  }

  if (current.alg !== options.algorithm) {
    throw new WardenError(
      'ERR_TRUST_MATERIAL_INVALID',
      `${names.keyFilename} holds a key for ${current.alg} but --jwt-signing-algorithm is ${options.algorithm}`,
    );
  }

  // The published set must carry the public half of every managed key, under its kid.
  if (jwks !== null)
    requirePublished(jwks, current, names, `the public half of ${names.keyFilename}`);
  const managed: JwtPublicKey[] = [current];
  if (next) managed.push(next.key);
  if (previous) managed.push(previous.key);
  for (const key of managed.slice(1)) {
    const entry = jwks?.find((jwk) => jwk.kid === key.kid);
    if (entry && !sameJwkKey(entry, key.publicJwk)) {
      throw new WardenError(
        'ERR_TRUST_MATERIAL_INVALID',
        `${names.jwksFilename}: key "${key.kid}" is not the key ${names.stateFilename} records under that kid`,
      );
    }
    if (jwks !== null && !entry) {
      repairs.push(`${names.jwksFilename} lacked JWT key "${key.kid}"; published again`);
      // A next key is only as published as the file that carries it: restart its clock.
      if (next && key.kid === next.key.kid)
        next = { key: next.key, preparedAt: new Date(options.now.getTime()) };
    }
  }

  const managedKids = new Set(managed.map((key) => key.kid));
  const foreignKeys = (jwks ?? []).filter(
    (jwk) => typeof jwk.kid !== 'string' || !managedKids.has(jwk.kid),
  );
  const state: JwtKeyState = Object.freeze({
    current,
    next: next ? Object.freeze(next) : null,
    previous: previous ? Object.freeze(previous) : null,
    foreignKeys: Object.freeze(foreignKeys),
  });
  return { state, repairs };
}

/**
 * The kid of a key adopted without a rotation record: `--jwt-key-id` when set; otherwise the
 * thumbprint, spelled as the jwks.json entry spells it (RFC 7638 base64url, or Dapr's base64).
 */
function adoptedKeyId(
  privateKey: KeyObject,
  jwks: readonly PublicJwk[] | null,
  options: DecodeJwtKeyMaterialOptions,
): string {
  if (options.keyId !== undefined) return options.keyId;
  const jwk = publicJwkOf(privateKey);
  const rfc = jwkThumbprint(jwk);
  if (jwks === null) return rfc;
  const dapr = daprStyleThumbprint(jwk);
  const entry =
    jwks.find((candidate) => candidate.kid === rfc) ??
    jwks.find((candidate) => candidate.kid === dapr);
  return entry?.kid ?? rfc;
}

function requirePublished(
  jwks: readonly PublicJwk[],
  key: JwtPublicKey,
  names: JwtKeyMaterialNames,
  description: string,
): void {
  const file = names.jwksFilename;
  const entry = jwks.find((jwk) => jwk.kid === key.kid);
  if (!entry)
    throw new WardenError(
      'ERR_TRUST_MATERIAL_INVALID',
      `${file} has no key with kid "${key.kid}" (${description})`,
    );
  if (!sameJwkKey(entry, key.publicJwk)) {
    throw new WardenError(
      'ERR_TRUST_MATERIAL_INVALID',
      `${file}: key "${key.kid}" is not ${description}`,
    );
  }
  if (entry.alg !== key.alg) {
    throw new WardenError(
      'ERR_TRUST_MATERIAL_INVALID',
      `${file}: key "${key.kid}" has alg ${entry.alg === undefined ? '(none)' : `"${entry.alg}"`}, expected "${key.alg}"`,
    );
  }
  if (entry.use !== 'sig') {
    throw new WardenError(
      'ERR_TRUST_MATERIAL_INVALID',
      `${file}: key "${key.kid}" must have use "sig"`,
    );
  }
}

function parseJwks(text: string, file: string): PublicJwk[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw new WardenError('ERR_TRUST_MATERIAL_INVALID', `${file} is not valid JSON`, {
      cause: err,
    });
  }
  const keys = (parsed as { keys?: unknown } | null)?.keys;
  if (typeof parsed !== 'object' || parsed === null || !Array.isArray(keys)) {
    throw new WardenError(
      'ERR_TRUST_MATERIAL_INVALID',
      `${file} must be a JWK Set: an object with a "keys" array`,
    );
  }
  if (keys.length === 0) throw new WardenError('ERR_TRUST_MATERIAL_INVALID', `${file} has no keys`);
  if (keys.length > MAX_JWKS_KEYS) {
    throw new WardenError(
      'ERR_TRUST_MATERIAL_INVALID',
      `${file} has more than ${MAX_JWKS_KEYS} keys`,
    );
  }
  const seen = new Set<string>();
  keys.forEach((entry: unknown, index: number) => {
    const problem = publicJwkProblem(entry);
    if (problem)
      throw new WardenError('ERR_TRUST_MATERIAL_INVALID', `${file}: key #${index} ${problem}`);
    const kid = (entry as PublicJwk).kid;
    if (kid !== undefined) {
      if (seen.has(kid))
        throw new WardenError('ERR_TRUST_MATERIAL_INVALID', `${file}: kid "${kid}" appears twice`);
      seen.add(kid);
    }
  });
  return keys.map((entry) => Object.freeze({ ...(entry as PublicJwk) }));
}

function parseStoredState(text: string, file: string): StoredState {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw new WardenError('ERR_ROTATION_STATE', `${file} is not valid JSON`, { cause: err });
  }
  const bad = (what: string): never => {
    throw new WardenError('ERR_ROTATION_STATE', `${file}: ${what}`);
  };
  if (typeof parsed !== 'object' || parsed === null) return bad('must be a JSON object');
  const state = parsed as Record<string, unknown>;
  if (state.version !== STATE_VERSION)
    return bad(`unsupported version ${JSON.stringify(state.version)}`);
  const current = state.current as Record<string, unknown> | undefined;
  if (
    !isRecord(current) ||
    !isKid(current.kid) ||
    !isAlg(current.alg) ||
    typeof current.thumbprint !== 'string'
  ) {
    return bad('"current" must have kid, alg and thumbprint');
  }
  if (state.next !== undefined) {
    const n = state.next;
    if (
      !isRecord(n) ||
      !isKid(n.kid) ||
      !isAlg(n.alg) ||
      typeof n.privateKeyPem !== 'string' ||
      !isIsoDate(n.preparedAt)
    ) {
      return bad('"next" must have kid, alg, privateKeyPem and preparedAt');
    }
  }
  if (state.previous !== undefined) {
    const p = state.previous;
    if (!isRecord(p) || !isKid(p.kid) || !isAlg(p.alg) || !isIsoDate(p.retireAfter)) {
      return bad('"previous" must have kid, alg, jwk and retireAfter');
    }
    const problem = publicJwkProblem(p.jwk);
    if (problem) return bad(`"previous.jwk" ${problem}`);
  }
  return parsed as StoredState;
}

function decodeStoredNext(stored: StoredNextKey, file: string): NonNullable<JwtKeyState['next']> {
  const key = jwtSigningKeyFrom(
    parsePkcs8PrivateKeyPem(stored.privateKeyPem, `${file} (next key)`),
    {
      kid: stored.kid,
      what: `${file} (next key)`,
    },
  );
  if (key.alg !== stored.alg) {
    throw new WardenError(
      'ERR_ROTATION_STATE',
      `${file}: the next key is a ${key.alg} key, recorded as ${stored.alg}`,
    );
  }
  return { key, preparedAt: new Date(stored.preparedAt) };
}

function decodeStoredPrevious(
  stored: StoredPreviousKey,
  file: string,
): NonNullable<JwtKeyState['previous']> {
  const decided = algorithmForKey(
    createPublicKey({ key: stored.jwk as JsonWebKey, format: 'jwk' }),
  );
  if ('problem' in decided || decided.alg !== stored.alg) {
    throw new WardenError(
      'ERR_ROTATION_STATE',
      `${file}: the previous key does not match its recorded alg ${stored.alg}`,
    );
  }
  const publicJwk = Object.freeze({ ...stored.jwk, kid: stored.kid, alg: stored.alg, use: 'sig' });
  return {
    key: Object.freeze({ kid: stored.kid, alg: stored.alg, publicJwk }),
    retireAfter: new Date(stored.retireAfter),
  };
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
function isKid(value: unknown): value is string {
  return typeof value === 'string' && keyIdProblem(value) === null;
}
function isAlg(value: unknown): value is JwtSigningAlgorithm {
  return typeof value === 'string' && isJwtSigningAlgorithm(value);
}
function isIsoDate(value: unknown): value is string {
  return typeof value === 'string' && !Number.isNaN(Date.parse(value));
}
