import { CoreV1Api, type KubeConfig, type V1Secret } from '@kubernetes/client-node';
import type { Clock } from '../../shared/clock.js';
import { WardenError } from '../../shared/errors.js';
import {
  createKubeCaller,
  KubeCallError,
  type KubeCallerOptions,
} from '../../shared/kube-caller.js';
import { silentLogger, type Logger } from '../../shared/logger.js';
import { adoptedJwtKeyChoice } from '../jwt/jwt-key-file-store.js';
import {
  DEFAULT_JWKS_FILENAME,
  DEFAULT_JWT_KEY_FILENAME,
  DEFAULT_JWT_STATE_FILENAME,
  MAX_JWT_MATERIAL_FILE_BYTES,
  decodeJwtKeyMaterial,
  encodeJwtKeyMaterial,
  type JwtKeyMaterialNames,
} from '../jwt/jwt-key-material.js';
import type { JwtKeyState } from '../jwt/jwt-key-state.js';
import type { JwtKeyStore } from '../jwt/jwt-key-store.js';
import {
  DEFAULT_JWT_SIGNING_ALGORITHM,
  type JwtSigningAlgorithm,
} from '../jwt/jwt-signing-algorithm.js';
import { DEFAULT_TRUST_BUNDLE_NAME } from './kubernetes-trust-store.js';

/*
 * The JWT signing keys in the trust Secret (jwt.key, jwks.json, jwt-rotation.json), beside
 * the X.509 material, so that every replica signs with the same key. The Secret is one object:
 * the three keys change together in one PUT, so the file store's write order is moot here.
 * Every save is a compare-and-swap: the PUT carries the resourceVersion of a read whose JWT
 * keys are exactly what `before` was loaded from (a 409 from an unrelated change, e.g. a root
 * rotation, is re-read and tried again). Replicas racing at first start: the first create
 * wins, the others find JWT keys present and leave them (loadOrCreateJwtKeyState then loads
 * the winner's). The trust store carries these keys over untouched, and the ConfigMap of the
 * same name mirrors jwks.json (the Secret watch publishes it after each change).
 */

export interface KubernetesJwtKeyStoreOptions {
  readonly kubeConfig: KubeConfig;
  readonly namespace: string;
  /** The trust Secret (--trust-bundle-name). */
  readonly name?: string;
  /** Secret keys (--jwt-key-filename, --jwks-filename; the record jwt-rotation.json). */
  readonly keyFilename?: string;
  readonly jwksFilename?: string;
  readonly stateFilename?: string;
  /** `--jwt-signing-algorithm`. */
  readonly algorithm: JwtSigningAlgorithm;
  /** `--jwt-key-id`. */
  readonly keyId?: string | undefined;
  /** JWT TTL plus allowed clock skew: how long an outgoing key stays published. */
  readonly maxTokenLifetimeMs: number;
  readonly clock: Clock;
  readonly logger?: Logger;
  readonly retry?: KubeCallerOptions;
}

type RawJwtMaterial = Readonly<Record<string, string>>;

/** Read-modify-write rounds before giving up on a Secret that keeps changing under us. */
const MAX_ROUNDS = 8;

export class KubernetesJwtKeyStore implements JwtKeyStore {
  readonly names: JwtKeyMaterialNames;
  readonly #options: KubernetesJwtKeyStoreOptions;
  readonly #name: string;
  readonly #api: CoreV1Api;
  readonly #caller: ReturnType<typeof createKubeCaller>;
  readonly #ref: string;
  readonly #logger: Logger;
  /** The raw Secret keys each state handed out was read from (or written as): the CAS base. */
  readonly #seen = new WeakMap<JwtKeyState, RawJwtMaterial>();

  constructor(options: KubernetesJwtKeyStoreOptions) {
    this.#options = options;
    this.#name = options.name ?? DEFAULT_TRUST_BUNDLE_NAME;
    this.names = Object.freeze({
      keyFilename: options.keyFilename ?? DEFAULT_JWT_KEY_FILENAME,
      jwksFilename: options.jwksFilename ?? DEFAULT_JWKS_FILENAME,
      stateFilename: options.stateFilename ?? DEFAULT_JWT_STATE_FILENAME,
    });
    this.#api = options.kubeConfig.makeApiClient(CoreV1Api);
    this.#caller = createKubeCaller(
      options.kubeConfig.getCurrentCluster()?.server ?? 'the Kubernetes API',
      options.retry,
    );
    this.#ref = `Secret "${this.#name}" in namespace "${options.namespace}"`;
    this.#logger = options.logger ?? silentLogger;
  }

  describe(): string {
    return `Kubernetes ${this.#ref} (${Object.values(this.names).join(', ')})`;
  }

  /** The JWT keys in the Secret as they are (null: the Secret does not exist). */
  async readRaw(): Promise<{ secret: V1Secret; raw: RawJwtMaterial } | null> {
    const secret = await this.#readSecret();
    return secret === null ? null : { secret, raw: this.#rawOf(secret) };
  }

  async load(): Promise<JwtKeyState | null> {
    const read = await this.readRaw();
    if (read === null || Object.keys(read.raw).length === 0) return null;
    const decoded = decodeJwtKeyMaterial(read.raw, {
      names: this.names,
      algorithm: this.#options.algorithm,
      keyId: this.#options.keyId,
      now: this.#options.clock.now(),
      maxTokenLifetimeMs: this.#options.maxTokenLifetimeMs,
    });
    if (!decoded) return null;
    if (decoded.repairs.length > 0) {
      for (const repair of decoded.repairs)
        this.#logger.warn({ secret: this.#ref }, `JWT key material: ${repair}`);
      this.#seen.set(decoded.state, read.raw);
      await this.save(decoded.state, decoded.state);
      return decoded.state;
    }
    this.#seen.set(decoded.state, read.raw);
    return decoded.state;
  }

  async save(before: JwtKeyState | null, after: JwtKeyState): Promise<void> {
    const expected =
      before === null ? null : (this.#seen.get(before) ?? encodeJwtKeyMaterial(before, this.names));
    const next = encodeJwtKeyMaterial(after, this.names);
    for (let round = 0; round < MAX_ROUNDS; round++) {
      const read = await this.readRaw();
      if (read === null)
        throw new WardenError(
          'ERR_TRUST_MATERIAL_IO',
          `cannot store the JWT keys: ${this.#ref} does not exist (the CA creates it at start)`,
        );
      if (sameRaw(read.raw, next)) {
        this.#seen.set(after, next);
        return;
      }
      if (expected === null) {
        // Someone else created JWT keys first: theirs stay (the caller loads them).
        if (Object.keys(read.raw).length > 0) return;
      } else if (!sameRaw(read.raw, expected)) {
        throw new WardenError(
          'ERR_TRUST_MATERIAL_CONFLICT',
          `the JWT keys in ${this.#ref} changed since they were read (another replica or an operator); not overwriting them`,
        );
      }
      if ((await this.#replace(read.secret, next)) === 'lost') continue;
      this.#seen.set(after, next);
      return;
    }
    throw new WardenError(
      'ERR_TRUST_MATERIAL_IO',
      `${this.#ref} kept changing while the JWT keys were written`,
    );
  }

  #rawOf(secret: V1Secret): RawJwtMaterial {
    const raw: Record<string, string> = {};
    for (const key of Object.values(this.names)) {
      const value = secret.data?.[key];
      if (value === undefined || value.length === 0) continue;
      const bytes = Buffer.from(value, 'base64');
      if (bytes.length > MAX_JWT_MATERIAL_FILE_BYTES)
        throw new WardenError(
          'ERR_TRUST_MATERIAL_INVALID',
          `${key} in ${this.#ref} is larger than ${MAX_JWT_MATERIAL_FILE_BYTES} bytes`,
        );
      raw[key] = bytes.toString('utf8');
    }
    return raw;
  }

  async #readSecret(): Promise<V1Secret | null> {
    const { namespace } = this.#options;
    try {
      return await this.#caller.call(`read ${this.#ref}`, (o) =>
        this.#api.readNamespacedSecret({ name: this.#name, namespace }, o),
      );
    } catch (err) {
      if (err instanceof KubeCallError && err.status === 404) return null;
      throw ioError(`read ${this.#ref}`, err);
    }
  }

  /** PUT with the resourceVersion read: 'lost' on 409/404 (changed under us). */
  async #replace(previous: V1Secret, jwt: RawJwtMaterial): Promise<'written' | 'lost'> {
    const { namespace } = this.#options;
    const data: Record<string, string> = { ...(previous.data ?? {}) };
    for (const [key, text] of Object.entries(jwt))
      data[key] = Buffer.from(text, 'utf8').toString('base64');
    try {
      await this.#caller.call(`update ${this.#ref}`, (o) =>
        this.#api.replaceNamespacedSecret(
          {
            name: this.#name,
            namespace,
            body: {
              ...previous,
              apiVersion: 'v1',
              kind: 'Secret',
              metadata: { ...previous.metadata, managedFields: undefined },
              data,
              stringData: undefined,
            },
          },
          o,
        ),
      );
      return 'written';
    } catch (err) {
      if (err instanceof KubeCallError && (err.status === 409 || err.status === 404)) return 'lost';
      throw ioError(`update ${this.#ref}`, err);
    }
  }
}

/**
 * A store over JWT keys already in the trust Secret, for `warden rotate --mode kubernetes`
 * (no `--jwt-*` flags to go by: the algorithm and kid are jwt.key's). Null when the Secret
 * holds none of the JWT keys.
 */
export async function existingKubernetesJwtKeyStore(
  options: Omit<KubernetesJwtKeyStoreOptions, 'algorithm' | 'keyId'>,
): Promise<KubernetesJwtKeyStore | null> {
  const probe = new KubernetesJwtKeyStore({ ...options, algorithm: DEFAULT_JWT_SIGNING_ALGORITHM });
  const read = await probe.readRaw();
  if (read === null || Object.keys(read.raw).length === 0) return null;
  const keyPem = read.raw[probe.names.keyFilename];
  if (keyPem === undefined) return probe;
  const adopted = adoptedJwtKeyChoice(
    keyPem,
    read.raw[probe.names.jwksFilename],
    probe.names.keyFilename,
  );
  return new KubernetesJwtKeyStore({ ...options, ...adopted });
}

function sameRaw(a: RawJwtMaterial, b: RawJwtMaterial): boolean {
  const keys = Object.keys(a);
  return keys.length === Object.keys(b).length && keys.every((k) => a[k] === b[k]);
}

function ioError(action: string, err: unknown): WardenError {
  if (err instanceof WardenError) return err;
  const detail = err instanceof KubeCallError ? err.detail : String(err);
  return new WardenError('ERR_TRUST_MATERIAL_IO', `cannot ${action}: ${detail}`, { cause: err });
}
