/**
 * One interface for every secret store (kubernetes, vault, file, env). A store returns a
 * secret as a flat map of key → value, exactly as Dapr's secrets API does.
 */
export type SecretData = Readonly<Record<string, string>>;

/** Request metadata from the API's `metadata.<k>=v` query (e.g. namespace, version_id). */
export type RequestMetadata = Readonly<Record<string, string>>;

export interface SecretStoreFeatures {
  /** Dapr's MULTIPLE_KEY_VALUES_PER_SECRET feature. */
  readonly multipleKeyValuesPerSecret: boolean;
}

export interface SecretStore {
  /** The Component type, e.g. `secretstores.local.file`. */
  readonly type: string;
  /**
   * Rejects with WardenError: ERR_SECRET_NOT_FOUND, ERR_SECRET_NAME_INVALID,
   * ERR_SECRET_PERMISSION_DENIED, ERR_SECRET_STORE_UNAVAILABLE, ERR_SECRET_TOO_LARGE.
   */
  get(name: string, metadata?: RequestMetadata): Promise<SecretData>;
  /** Every secret the store can list: name → data. */
  bulkGet(metadata?: RequestMetadata): Promise<Readonly<Record<string, SecretData>>>;
  features(): SecretStoreFeatures;
  /** True once the store can answer (token obtained, cache synced, file read). */
  ready(): boolean;
  close(): Promise<void>;
}

/**
 * The data every store's conformance run is seeded with, in the store's own shape
 * (a JSON file, env vars with a prefix, Kubernetes Secrets, Vault KV entries).
 * Single-key secrets have one key named like the secret, so stores without
 * multiple keys per secret (env) hold them too; `db-creds` is seeded only into stores
 * whose features() say multipleKeyValuesPerSecret.
 */
export const CONFORMANCE_SINGLE_KEY_SECRETS: Readonly<Record<string, SecretData>> = Object.freeze({
  'redis-password': { 'redis-password': 'c0nformance-redis-pw' },
  'api-key': { 'api-key': 'c0nformance-api-key' },
});

export const CONFORMANCE_MULTI_KEY_SECRETS: Readonly<Record<string, SecretData>> = Object.freeze({
  'db-creds': { username: 'app', password: 'c0nformance-db-pw' },
});
