import path from 'node:path';
import { JwtKeyFileStore } from '../../ca/jwt/jwt-key-file-store.js';
import { JwtKeyManager } from '../../ca/jwt/jwt-key-manager.js';
import type { JwtKeyStore } from '../../ca/jwt/jwt-key-store.js';
import { DEFAULT_JWT_NEXT_KEY_MIN_PUBLISHED_MS } from '../../ca/jwt/jwt-key-state.js';
import type { JwtSigningAlgorithm } from '../../ca/jwt/jwt-signing-algorithm.js';
import type { Clock } from '../../shared/clock.js';
import { describeError, isWardenError } from '../../shared/errors.js';
import type { Logger } from '../../shared/logger.js';
import { createJwtSvidMinter, type JwtSvidMinter } from './jwt-svid.js';

export interface JwtIssuanceOptions {
  /** Where the keys live when not in files (kubernetes mode: the trust Secret). */
  readonly store?: JwtKeyStore;
  /** `--issuer-credentials`: the JWT files sit beside the X.509 material. */
  readonly credentialsDir: string;
  /** `--jwt-key-filename`. */
  readonly keyFilename: string;
  /** `--jwks-filename`. */
  readonly jwksFilename: string;
  /** `--jwt-signing-algorithm`: of a generated key, and what a loaded key must be. */
  readonly algorithm: JwtSigningAlgorithm;
  /** `--jwt-key-id`. */
  readonly keyId: string | undefined;
  /** `--jwt-issuer`: the iss claim. */
  readonly issuer: string | undefined;
  /** `--jwt-ttl`. */
  readonly ttlMs: number;
  /** The Configuration's allowedClockSkew: nbf is backdated by it. */
  readonly skewMs: number;
  readonly clock: Clock;
  readonly logger: Logger;
}

/** JWT-SVID issuance in standalone mode: keys from the credentials directory, and the minter. */
export interface JwtIssuance {
  /** The key state: what the OIDC server publishes and what rotation steps act on. */
  readonly keys: JwtKeyManager;
  readonly minter: JwtSvidMinter;
  /** Where the keys live. */
  readonly store: JwtKeyStore;
  /** The key files (absolute paths), for the credentials-directory watcher that calls reload(). */
  readonly files: readonly string[];
  /**
   * Re-reads the key files (another process rotated). Material that does not load is logged
   * and the keys in use are kept; resolves true when the files were loaded.
   */
  reload(): Promise<boolean>;
}

/**
 * Opens the JWT keys (generating a first key when the directory has none), builds the minter
 * over the current signing key; whoever watches the files calls reload() when they change.
 */
export async function openJwtIssuance(options: JwtIssuanceOptions): Promise<JwtIssuance> {
  const logger = options.logger.child({ component: 'jwt' });
  // An outgoing key stays published as long as a token it signed can be accepted.
  const maxTokenLifetimeMs = options.ttlMs + options.skewMs;
  const fileStore = options.store
    ? null
    : new JwtKeyFileStore({
    dir: options.credentialsDir,
    keyFilename: options.keyFilename,
    jwksFilename: options.jwksFilename,
    algorithm: options.algorithm,
    keyId: options.keyId,
    maxTokenLifetimeMs,
    clock: options.clock,
    logger,
  });
  const store: JwtKeyStore = options.store ?? (fileStore as JwtKeyFileStore);
  const keys = await JwtKeyManager.open({
    store,
    algorithm: options.algorithm,
    keyId: options.keyId,
    policy: { minPublishedMs: DEFAULT_JWT_NEXT_KEY_MIN_PUBLISHED_MS, maxTokenLifetimeMs },
    clock: options.clock,
    logger,
  });
  const minter = createJwtSvidMinter({
    signingKey: () => keys.current().signingKey,
    issuer: options.issuer,
    ttlMs: options.ttlMs,
    skewMs: options.skewMs,
    clock: options.clock,
  });
  const files = Object.freeze(
    fileStore
      ? Object.values(fileStore.names).map((name) => path.join(options.credentialsDir, name))
      : [],
  );

  const reload = async (): Promise<boolean> => {
    const before = keys.current().signingKey.kid;
    try {
      const after = await keys.reload();
      if (after.signingKey.kid !== before) {
        logger.info({ kid: after.signingKey.kid, previous: before }, 'JWT signing key changed');
      }
      return true;
    } catch (err) {
      logger.error(
        { code: isWardenError(err) ? err.code : undefined, err: describeError(err) },
        'cannot reload the JWT key files; keeping the keys in use',
      );
      return false;
    }
  };

  const { kid, alg } = keys.current().signingKey;
  logger.info(
    { kid, alg, published: keys.current().publishedJwks.keys.length },
    'JWT-SVID issuance enabled',
  );

  return Object.freeze({
    keys,
    minter,
    store,
    files,
    reload,
  });
}
