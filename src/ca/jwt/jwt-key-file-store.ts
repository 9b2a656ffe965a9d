import { promises as fs } from 'node:fs';
import path from 'node:path';
import { ensurePrivateDirectory, writeFileAtomic } from '../../shared/atomic-file.js';
import type { Clock } from '../../shared/clock.js';
import { WardenError, isWardenError } from '../../shared/errors.js';
import type { Logger } from '../../shared/logger.js';
import {
  DEFAULT_JWT_STATE_FILENAME,
  MAX_JWT_MATERIAL_FILE_BYTES,
  decodeJwtKeyMaterial,
  encodeJwtKeyMaterial,
  type JwtKeyMaterialNames,
} from './jwt-key-material.js';
import { jwtKeySetOf, type JwtKeySet, type JwtKeyState } from './jwt-key-state.js';
import {
  jwtMaterialWriteOrder,
  loadOrCreateJwtKeyState,
  type JwtKeyStore,
} from './jwt-key-store.js';
import {
  algorithmForKey,
  DEFAULT_JWT_SIGNING_ALGORITHM,
  type JwtSigningAlgorithm,
} from './jwt-signing-algorithm.js';
import { parsePkcs8PrivateKeyPem } from './jwt-signing-key.js';
import { publicJwkOf, publicJwkProblem, sameJwkKey, type PublicJwk } from './jwk.js';

export interface JwtKeyFileStoreOptions {
  /** `--issuer-credentials`: the directory beside ca.crt/issuer.crt/issuer.key. */
  readonly dir: string;
  /** `--jwt-key-filename` (jwt.key). */
  readonly keyFilename: string;
  /** `--jwks-filename` (jwks.json). */
  readonly jwksFilename: string;
  /** The rotation record (jwt-rotation.json). */
  readonly stateFilename?: string;
  /** `--jwt-signing-algorithm`. */
  readonly algorithm: JwtSigningAlgorithm;
  /** `--jwt-key-id`. */
  readonly keyId?: string | undefined;
  /** JWT TTL plus allowed clock skew: how long an outgoing key stays published. */
  readonly maxTokenLifetimeMs: number;
  readonly clock: Clock;
  readonly logger: Logger;
}

/** JWT key material as files (0600, written atomically) in the credentials directory. */
export class JwtKeyFileStore implements JwtKeyStore {
  readonly #options: JwtKeyFileStoreOptions;
  readonly #names: JwtKeyMaterialNames;

  constructor(options: JwtKeyFileStoreOptions) {
    for (const [flag, name] of [
      ['--jwt-key-filename', options.keyFilename],
      ['--jwks-filename', options.jwksFilename],
      ['state filename', options.stateFilename ?? DEFAULT_JWT_STATE_FILENAME],
    ] as const) {
      if (name.length === 0 || name !== path.basename(name) || name === '.' || name === '..') {
        throw new TypeError(`${flag} must be a plain file name`);
      }
    }
    this.#options = options;
    this.#names = {
      keyFilename: options.keyFilename,
      jwksFilename: options.jwksFilename,
      stateFilename: options.stateFilename ?? DEFAULT_JWT_STATE_FILENAME,
    };
  }

  get names(): JwtKeyMaterialNames {
    return this.#names;
  }

  async load(): Promise<JwtKeyState | null> {
    const material: Record<string, string> = {};
    for (const name of Object.values(this.#names)) {
      const text = await this.#read(name);
      if (text !== undefined) material[name] = text;
    }
    const decoded = decodeJwtKeyMaterial(material, {
      names: this.#names,
      algorithm: this.#options.algorithm,
      keyId: this.#options.keyId,
      now: this.#options.clock.now(),
      maxTokenLifetimeMs: this.#options.maxTokenLifetimeMs,
    });
    if (!decoded) return null;
    if (decoded.repairs.length > 0) {
      for (const repair of decoded.repairs)
        this.#options.logger.warn({ dir: this.#options.dir }, `JWT key material: ${repair}`);
      // Rewrite everything from the repaired state; each part is idempotent.
      await this.#write(decoded.state, ['key', 'state', 'jwks']);
    }
    return decoded.state;
  }

  async save(before: JwtKeyState | null, after: JwtKeyState): Promise<void> {
    await this.#write(after, jwtMaterialWriteOrder(before, after));
  }

  async #write(state: JwtKeyState, order: readonly ('key' | 'jwks' | 'state')[]): Promise<void> {
    const encoded = encodeJwtKeyMaterial(state, this.#names);
    const fileOf = {
      key: this.#names.keyFilename,
      jwks: this.#names.jwksFilename,
      state: this.#names.stateFilename,
    };
    try {
      await ensurePrivateDirectory(this.#options.dir);
      for (const part of order) {
        const name = fileOf[part];
        const text = encoded[name] as string;
        if ((await this.#read(name, false)) === text) continue;
        await writeFileAtomic(path.join(this.#options.dir, name), text, 0o600);
      }
    } catch (err) {
      if (isWardenError(err)) throw err;
      throw new WardenError(
        'ERR_TRUST_MATERIAL_IO',
        `cannot write JWT key material in ${this.#options.dir}`,
        { cause: err },
      );
    }
  }

  async #read(name: string, warnOnLooseMode = true): Promise<string | undefined> {
    const file = path.join(this.#options.dir, name);
    try {
      const stat = await fs.stat(file);
      if (!stat.isFile())
        throw new WardenError('ERR_TRUST_MATERIAL_INVALID', `${name} is not a regular file`);
      if (stat.size > MAX_JWT_MATERIAL_FILE_BYTES) {
        throw new WardenError(
          'ERR_TRUST_MATERIAL_INVALID',
          `${name} is larger than ${MAX_JWT_MATERIAL_FILE_BYTES} bytes`,
        );
      }
      if (warnOnLooseMode && (stat.mode & 0o077) !== 0 && name !== this.#names.jwksFilename) {
        this.#options.logger.warn(
          { file: name, mode: (stat.mode & 0o777).toString(8) },
          'JWT key file is readable by other users',
        );
      }
      return await fs.readFile(file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      if (isWardenError(err)) throw err;
      throw new WardenError(
        'ERR_TRUST_MATERIAL_IO',
        `cannot read ${name} in ${this.#options.dir}`,
        { cause: err },
      );
    }
  }
}

/**
 * Loads jwt.key/jwks.json (and the rotation record) from `dir`, or generates and writes a
 * first key when there are none. What `warden serve` calls in standalone mode with --jwt-enabled.
 */
export async function loadOrCreateJwtKeys(options: JwtKeyFileStoreOptions): Promise<JwtKeySet> {
  const store = new JwtKeyFileStore(options);
  const state = await loadOrCreateJwtKeyState(store, options);
  return jwtKeySetOf(state);
}

export type ExistingJwtKeyFilesOptions = Omit<JwtKeyFileStoreOptions, 'algorithm' | 'keyId'>;

/**
 * A store over JWT key files that already exist, for a process that did not create them and
 * has no `--jwt-*` flags to go by (`warden rotate`): the algorithm is the one jwt.key's key
 * signs with, and a key adopted without a rotation record keeps the kid jwks.json gives it.
 * Null when the directory holds none of the JWT files; when only some exist, the store is
 * returned and its load() says what is wrong.
 */
export async function existingJwtKeyFileStore(
  options: ExistingJwtKeyFilesOptions,
): Promise<JwtKeyFileStore | null> {
  const probe = new JwtKeyFileStore({ ...options, algorithm: DEFAULT_JWT_SIGNING_ALGORITHM });
  const present = async (name: string): Promise<string | undefined> => {
    try {
      return await fs.readFile(path.join(options.dir, name), 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw new WardenError('ERR_TRUST_MATERIAL_IO', `cannot read ${name} in ${options.dir}`, {
        cause: err,
      });
    }
  };
  const { keyFilename, jwksFilename, stateFilename } = probe.names;
  const keyPem = await present(keyFilename);
  if (keyPem === undefined) {
    const others = [await present(jwksFilename), await present(stateFilename)];
    return others.some((text) => text !== undefined) ? probe : null;
  }
  const adopted = adoptedJwtKeyChoice(keyPem, await present(jwksFilename), keyFilename);
  return new JwtKeyFileStore({ ...options, ...adopted });
}

/**
 * For a process without `--jwt-*` flags that adopts existing JWT key material (`warden
 * rotate`): the algorithm jwt.key's key signs with, and the kid jwks.json gives that key.
 */
export function adoptedJwtKeyChoice(
  keyPem: string,
  jwksText: string | undefined,
  keyFilename: string,
): { algorithm: JwtSigningAlgorithm; keyId: string | undefined } {
  const key = parsePkcs8PrivateKeyPem(keyPem, keyFilename);
  const decided = algorithmForKey(key);
  if ('problem' in decided)
    throw new WardenError('ERR_TRUST_MATERIAL_INVALID', `${keyFilename} ${decided.problem}`);
  let keyId: string | undefined;
  if (jwksText !== undefined) {
    try {
      const keys = (JSON.parse(jwksText) as { keys?: unknown }).keys;
      const own = publicJwkOf(key);
      const entry = Array.isArray(keys)
        ? (keys as PublicJwk[]).find(
            (jwk) => publicJwkProblem(jwk) === null && sameJwkKey(jwk, own),
          )
        : undefined;
      keyId = typeof entry?.kid === 'string' ? entry.kid : undefined;
    } catch {
      // load() reports a jwks.json that does not parse, naming the file.
    }
  }
  return { algorithm: decided.alg, keyId };
}
