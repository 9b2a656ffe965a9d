import { createHash } from 'node:crypto';
import type { Logger } from 'pino';
import type { Clock } from '../../../shared/clock.js';
import type { WardenEnv } from '../../../shared/env.js';
import { WardenError } from '../../../shared/errors.js';
import type { SecretChangeSource } from '../../secret-change-source.js';
import type {
  RequestMetadata,
  SecretData,
  SecretStore,
  SecretStoreFeatures,
} from '../../secret-store.js';
import {
  VaultClient,
  errorForReply,
  type VaultReply,
  type VaultRequest,
  type VaultRetryPolicy,
} from './vault-client.js';
import {
  VAULT_SECRET_STORE_TYPE,
  parseVaultMetadata,
  type VaultStoreConfig,
} from './vault-config.js';
import {
  describeVaultPath,
  parseListedKey,
  parseSecretName,
  quoteForMessage,
  type VaultPathSegments,
} from './vault-path.js';
import { VaultTokenSession, systemTimers, type VaultTimers } from './vault-token-session.js';
import { SecretVersionChecks } from './vault-version-checks.js';

export { VAULT_SECRET_STORE_TYPE } from './vault-config.js';

/** bulkGet never walks deeper than this below the KV prefix. */
export const MAX_BULK_DEPTH = 16;
/** bulkGet refuses to return more secrets than this (fails closed rather than truncating). */
export const MAX_BULK_SECRETS = 5000;
/** Concurrent reads while bulkGet fetches what it listed. */
const BULK_CONCURRENCY = 8;

export interface VaultSecretStoreContext {
  readonly logger: Logger;
  readonly clock: Clock;
  /**
   * Accepted for the registry's common context; the Vault store reads nothing from the
   * environment (not even VAULT_ADDR), so a Component means the same wherever it runs.
   */
  readonly env?: WardenEnv | undefined;
  /** Background renewal timers; tests drive them together with a ManualClock. */
  readonly timers?: VaultTimers | undefined;
  /** Transport tuning, mainly for tests (short back-off, observed sleeps). */
  readonly transport?:
    | {
        readonly timeoutMs?: number | undefined;
        readonly retry?: Partial<VaultRetryPolicy> | undefined;
        readonly maxResponseBytes?: number | undefined;
        readonly sleep?: ((ms: number) => Promise<void>) | undefined;
      }
    | undefined;
}

/** The `version_id` request metadata: a positive integer (0 means latest, as in Dapr). */
function parseVersion(metadata: RequestMetadata, kvVersion: 1 | 2): string | undefined {
  const raw = metadata.version_id;
  if (raw === undefined || raw === '') return undefined;
  if (!/^\d{1,10}$/.test(raw) || Number(raw) > 2 ** 31 - 1) {
    throw new WardenError(
      'ERR_SECRET_NAME_INVALID',
      `version_id ${quoteForMessage(raw)} is not a non-negative integer`,
    );
  }
  if (kvVersion === 1) {
    throw new WardenError(
      'ERR_SECRET_NAME_INVALID',
      'version_id needs a KV version 2 engine (vaultKVVersion is 1)',
    );
  }
  return raw === '0' ? undefined : String(Number(raw));
}

/** Vault KV values may be any JSON; Dapr's API speaks strings, so non-strings become JSON text. */
function toStringValue(value: unknown): string {
  return typeof value === 'string' ? value : JSON.stringify(value);
}

function asRecord(value: unknown): Record<string, unknown> | undefined {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
    ? (value as Record<string, unknown>)
    : undefined;
}

/** The fingerprint of an entry no longer there. */
const ABSENT = 'absent';

function versionFingerprint(version: unknown, gone: boolean): string | undefined {
  if (typeof version !== 'number' || !Number.isInteger(version)) return undefined;
  return `version:${version}${gone ? ':gone' : ''}`;
}

/** KV v1 has no versions: a digest of the entry (kept in memory only), keys sorted. */
function digestFingerprint(data: Record<string, unknown>): string {
  const sorted = Object.keys(data)
    .sort()
    .map((key) => [key, data[key]]);
  return `sha256:${createHash('sha256').update(JSON.stringify(sorted)).digest('hex')}`;
}

interface FetchedSecret {
  readonly data: SecretData;
  /** What a version check compares against (undefined when the answer carried none). */
  readonly fingerprint: string | undefined;
}

export class VaultSecretStore implements SecretStore, SecretChangeSource {
  readonly type = VAULT_SECRET_STORE_TYPE;
  readonly #config: VaultStoreConfig;
  readonly #client: VaultClient;
  readonly #session: VaultTokenSession;
  readonly #logger: Logger;
  readonly #versions: SecretVersionChecks;
  /** Set once Vault refused a metadata read: checks then read the secret itself. */
  #metadataDenied = false;
  #closed = false;

  constructor(
    config: VaultStoreConfig,
    client: VaultClient,
    session: VaultTokenSession,
    logger: Logger,
    timers: VaultTimers = systemTimers,
  ) {
    this.#config = config;
    this.#client = client;
    this.#session = session;
    this.#logger = logger;
    this.#versions = new SecretVersionChecks({
      intervalMs: config.versionCheckIntervalMs,
      timers,
      logger,
      probe: (name) => this.#probe(name),
    });
  }

  /**
   * Told when a secret read earlier (latest version) has a new version, or was deleted,
   * destroyed or rewritten (KV v1). Checks run every versionCheckInterval while anyone listens.
   */
  onSecretsChanged(listener: () => void): () => void {
    return this.#versions.onSecretsChanged(listener);
  }

  /** Runs one round of version checks now; returns the names that changed. */
  checkVersionsNow(): Promise<string[]> {
    return this.#versions.checkNow();
  }

  features(): SecretStoreFeatures {
    // Dapr: text values are name/value pairs, so the store has one key per secret.
    return Object.freeze({ multipleKeyValuesPerSecret: this.#config.valueType === 'map' });
  }

  ready(): boolean {
    return !this.#closed && this.#session.ready();
  }

  async get(name: string, metadata: RequestMetadata = {}): Promise<SecretData> {
    this.#assertOpen();
    const segments = parseSecretName(name);
    const version = parseVersion(metadata, this.#config.kvVersion);
    const fetched = await this.#fetch(name, segments, version);
    // A pinned version never changes; the latest one is what a rotation replaces.
    if (version === undefined && fetched.fingerprint !== undefined)
      this.#versions.track(name, fetched.fingerprint);
    return fetched.data;
  }

  async bulkGet(metadata: RequestMetadata = {}): Promise<Readonly<Record<string, SecretData>>> {
    this.#assertOpen();
    const version = parseVersion(metadata, this.#config.kvVersion);
    const names = await this.#listRecursively();
    const entries: (readonly [string, SecretData] | undefined)[] = new Array(names.length);
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < names.length) {
        const index = next;
        next += 1;
        const segments = names[index] as VaultPathSegments;
        const name = segments.join('/');
        try {
          entries[index] = [name, await this.#read(name, segments, version)];
        } catch (err) {
          // Listed but unreadable at this version (deleted, destroyed, not yet that version):
          // Dapr skips it, and so do we.
          if (!(err instanceof WardenError && err.code === 'ERR_SECRET_NOT_FOUND')) throw err;
        }
      }
    };
    await Promise.all(
      Array.from({ length: Math.min(BULK_CONCURRENCY, names.length) }, () => worker()),
    );
    return Object.freeze(
      Object.fromEntries(
        entries.filter((e): e is readonly [string, SecretData] => e !== undefined),
      ),
    );
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#versions.close();
    await this.#session.close();
    this.#client.close();
  }

  #assertOpen(): void {
    if (this.#closed)
      throw new WardenError('ERR_SECRET_STORE_UNAVAILABLE', 'the Vault secret store is closed');
  }

  /** KV v2: {engine}/data/{prefix}/{name}; KV v1: {engine}/{prefix}/{name}. */
  #dataPath(segments: VaultPathSegments): VaultPathSegments {
    const { enginePath, kvPrefix, kvVersion } = this.#config;
    return kvVersion === 2
      ? [...enginePath, 'data', ...kvPrefix, ...segments]
      : [...enginePath, ...kvPrefix, ...segments];
  }

  #listPath(segments: VaultPathSegments): VaultPathSegments {
    const { enginePath, kvPrefix, kvVersion } = this.#config;
    return kvVersion === 2
      ? [...enginePath, 'metadata', ...kvPrefix, ...segments]
      : [...enginePath, ...kvPrefix, ...segments];
  }

  /**
   * Sends with the session's token. On a 403 the session checks whether the token died;
   * if it did, one more attempt is made with a fresh token. A second 403 stands.
   */
  async #authorised(
    request: Omit<VaultRequest, 'token'>,
  ): Promise<{ reply: VaultReply; request: VaultRequest }> {
    const token = await this.#session.token();
    const first = { ...request, token };
    const reply = await this.#client.send(first);
    if (reply.status !== 403) return { reply, request: first };
    const fresh = await this.#session.recoverFromDenied(token);
    if (fresh === undefined) return { reply, request: first };
    const second = { ...request, token: fresh };
    return { reply: await this.#client.send(second), request: second };
  }

  async #read(
    name: string,
    segments: VaultPathSegments,
    version: string | undefined,
  ): Promise<SecretData> {
    return (await this.#fetch(name, segments, version)).data;
  }

  async #fetch(
    name: string,
    segments: VaultPathSegments,
    version: string | undefined,
  ): Promise<FetchedSecret> {
    const path = this.#dataPath(segments);
    const subject =
      version === undefined
        ? `secret ${quoteForMessage(name)}`
        : `version ${version} of secret ${quoteForMessage(name)}`;
    const { reply, request } = await this.#authorised({
      method: 'GET',
      path,
      subject,
      ...(version === undefined ? {} : { query: { version } }),
    });
    if (reply.status === 404) {
      const metadata = asRecord(asRecord(asRecord(reply.body)?.data)?.metadata);
      const state =
        metadata?.destroyed === true
          ? 'destroyed'
          : typeof metadata?.deletion_time === 'string' && metadata.deletion_time !== ''
            ? 'deleted'
            : undefined;
      throw new WardenError(
        'ERR_SECRET_NOT_FOUND',
        state === undefined
          ? `${subject} not found in Vault at ${describeVaultPath(path)}`
          : `${subject} is ${state} in Vault at ${describeVaultPath(path)}`,
        { details: { httpStatus: 404 } },
      );
    }
    if (reply.status !== 200) throw errorForReply(reply, request);
    const envelope = asRecord(reply.body);
    const data =
      this.#config.kvVersion === 2
        ? asRecord(asRecord(envelope?.data)?.data)
        : asRecord(envelope?.data);
    if (data === undefined) {
      const v2Null = this.#config.kvVersion === 2 && asRecord(envelope?.data)?.data === null;
      if (v2Null)
        throw new WardenError(
          'ERR_SECRET_NOT_FOUND',
          `${subject} has no data in Vault at ${describeVaultPath(path)}`,
        );
      throw new WardenError(
        'ERR_VAULT_API',
        `Vault answered ${subject} without a data object; is vaultKVVersion (${this.#config.kvVersion}) right?`,
      );
    }
    const fingerprint =
      this.#config.kvVersion === 2
        ? versionFingerprint(asRecord(asRecord(envelope?.data)?.metadata)?.version, false)
        : digestFingerprint(data);
    if (this.#config.valueType === 'text') {
      // Dapr's text semantics: the entry's whole data object as JSON text, under the secret's name.
      return { data: Object.freeze({ [name]: JSON.stringify(data) }), fingerprint };
    }
    return {
      data: Object.freeze(
        Object.fromEntries(Object.entries(data).map(([key, value]) => [key, toStringValue(value)])),
      ),
      fingerprint,
    };
  }

  /**
   * What Vault holds for a tracked secret now. KV v2 asks the metadata endpoint (the value
   * does not travel); when the policy does not allow that, or for KV v1, the entry is read.
   */
  async #probe(name: string): Promise<string | undefined> {
    if (this.#closed) return undefined;
    const segments = parseSecretName(name);
    if (this.#config.kvVersion === 2 && !this.#metadataDenied) {
      const path = this.#listPath(segments);
      const { reply, request } = await this.#authorised({
        method: 'GET',
        path,
        subject: `the metadata of secret ${quoteForMessage(name)}`,
        // best effort: a failed check is simply tried again next round
        maxAttempts: 1,
      });
      if (reply.status === 404) return ABSENT;
      if (reply.status === 200) {
        const data = asRecord(asRecord(reply.body)?.data);
        const current = data?.current_version;
        const entry = asRecord(asRecord(data?.versions)?.[String(current)]);
        const gone =
          entry?.destroyed === true ||
          (typeof entry?.deletion_time === 'string' && entry.deletion_time !== '');
        return versionFingerprint(current, gone);
      }
      if (reply.status !== 403) {
        this.#logger.warn(
          { error: errorForReply(reply, request).message },
          'Vault version check failed; trying again next round',
        );
        return undefined;
      }
      this.#metadataDenied = true;
      this.#logger.info(
        { path: describeVaultPath(path) },
        'no read access to KV metadata; version checks read the secrets themselves',
      );
    }
    const path = this.#dataPath(segments);
    const { reply, request } = await this.#authorised({
      method: 'GET',
      path,
      subject: `secret ${quoteForMessage(name)}`,
      maxAttempts: 1,
    });
    const envelope = asRecord(reply.body);
    if (reply.status === 404) {
      const metadata = asRecord(asRecord(envelope?.data)?.metadata);
      return this.#config.kvVersion === 2 && metadata !== undefined
        ? (versionFingerprint(metadata.version, true) ?? ABSENT)
        : ABSENT;
    }
    if (reply.status !== 200) {
      this.#logger.warn(
        { error: errorForReply(reply, request).message },
        'Vault version check failed; trying again next round',
      );
      return undefined;
    }
    if (this.#config.kvVersion === 2) {
      return versionFingerprint(asRecord(asRecord(envelope?.data)?.metadata)?.version, false);
    }
    const data = asRecord(envelope?.data);
    return data === undefined ? undefined : digestFingerprint(data);
  }

  /** Every secret name below the prefix, as segments; bounded in depth and count. */
  async #listRecursively(): Promise<VaultPathSegments[]> {
    const found: VaultPathSegments[] = [];
    const queue: { segments: VaultPathSegments; depth: number }[] = [{ segments: [], depth: 0 }];
    while (queue.length > 0) {
      const { segments, depth } = queue.shift() as { segments: VaultPathSegments; depth: number };
      const path = this.#listPath(segments);
      const { reply, request } = await this.#authorised({
        method: 'GET',
        path,
        trailingSlash: true,
        query: { list: 'true' },
        subject: `the secret list under ${describeVaultPath(path) || '/'}`,
      });
      if (reply.status === 404) continue; // Vault's answer for an empty folder
      if (reply.status !== 200) throw errorForReply(reply, request);
      const keys = asRecord(asRecord(reply.body)?.data)?.keys;
      if (!Array.isArray(keys))
        throw new WardenError(
          'ERR_VAULT_API',
          `Vault answered ${request.subject} without data.keys`,
        );
      for (const key of keys) {
        const entry = parseListedKey(key);
        if (entry === undefined) {
          this.#logger.warn(
            { path: describeVaultPath(path) },
            'skipping a listed Vault key that is not a valid path segment',
          );
          continue;
        }
        const child = [...segments, entry.segment];
        if (entry.directory) {
          if (depth + 1 >= MAX_BULK_DEPTH) {
            throw new WardenError(
              'ERR_SECRET_TOO_LARGE',
              `bulk listing goes deeper than ${MAX_BULK_DEPTH} levels below the KV prefix`,
            );
          }
          queue.push({ segments: child, depth: depth + 1 });
        } else {
          found.push(child);
          if (found.length > MAX_BULK_SECRETS) {
            throw new WardenError(
              'ERR_SECRET_TOO_LARGE',
              `bulk listing finds more than ${MAX_BULK_SECRETS} secrets below the KV prefix`,
            );
          }
        }
      }
    }
    return found;
  }
}

/**
 * Builds a ready Vault secret store from a Component's metadata: validates every field,
 * loads the CA material, and obtains the first token (fails closed when it cannot).
 */
export async function createVaultSecretStore(
  metadata: Readonly<Record<string, string>>,
  context: VaultSecretStoreContext,
): Promise<SecretStore> {
  const logger = context.logger.child({ component: VAULT_SECRET_STORE_TYPE });
  const config = await parseVaultMetadata(metadata, logger);
  const client = new VaultClient({
    address: config.address,
    namespace: config.namespace,
    tls: config.tls,
    logger,
    timeoutMs: context.transport?.timeoutMs,
    retry: context.transport?.retry,
    maxResponseBytes: context.transport?.maxResponseBytes,
    sleep: context.transport?.sleep,
  });
  const session = new VaultTokenSession({
    client,
    auth: config.auth,
    clock: context.clock,
    timers: context.timers ?? systemTimers,
    logger,
  });
  try {
    await session.start();
  } catch (err) {
    await session.close().catch(() => undefined);
    client.close();
    throw err;
  }
  logger.info(
    {
      vaultAddr: config.address.origin,
      authMethod: config.auth.method,
      kvVersion: config.kvVersion,
      enginePath: config.enginePath.join('/'),
      kvPrefix: config.kvPrefix.join('/'),
      namespace: config.namespace,
    },
    'Vault secret store ready',
  );
  return new VaultSecretStore(config, client, session, logger, context.timers ?? systemTimers);
}
