import { promises as fs } from 'node:fs';
import type { Logger } from 'pino';
import type { Clock } from '../../../shared/clock.js';
import { WardenError, describeError } from '../../../shared/errors.js';
import {
  errorForReply,
  summariseVaultErrors,
  type VaultClient,
  type VaultReply,
} from './vault-client.js';
import type { VaultAuthSettings } from './vault-config.js';
import { describeVaultPath } from './vault-path.js';

/**
 * The Vault token's whole life: obtain it (inline token, token file, Kubernetes or AppRole
 * login), learn its TTL, renew it at two thirds of its lease, log in again when renewal is
 * refused or the max TTL is near, re-read the token file when it changes, and recover once
 * when Vault says a token is dead. Expiry is decided on the injected clock and the
 * background renewal runs on injected timers, so tests move time by hand.
 */
export interface VaultTimers {
  setTimeout(callback: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

/** Real timers that never keep the process alive on their own. */
export const systemTimers: VaultTimers = {
  setTimeout(callback, ms) {
    const handle = setTimeout(callback, ms);
    handle.unref();
    return handle;
  },
  clearTimeout(handle) {
    clearTimeout(handle as NodeJS.Timeout);
  },
};

/** Renew when this fraction of the lease has passed (Vault's own lifetime watcher uses ~2/3). */
export const RENEW_AT_FRACTION = 2 / 3;
/** A renewal granting less than this fraction of what was asked means the max TTL is near. */
const MAX_TTL_NEAR_FRACTION = 1 / 3;
/** Files holding a token, JWT or secret ID are small; refuse anything bigger. */
const MAX_CREDENTIAL_FILE_BYTES = 64 * 1024;
/** Longest wait allowed by setTimeout. */
const MAX_TIMER_MS = 2 ** 31 - 1;

interface Lease {
  readonly token: string;
  /** Epoch ms on the injected clock; undefined for tokens that never expire (root). */
  readonly expiresAt: number | undefined;
  readonly renewAt: number | undefined;
  readonly renewable: boolean;
  /** The increment asked for on renew-self: the token's original TTL. */
  readonly ttlSeconds: number;
  /** Obtained by our own login, so ours to revoke on close. */
  readonly owned: boolean;
  readonly preferRelogin: boolean;
}

type AuthReason =
  | 'start'
  | 'token-dead'
  | 'expired'
  | 'renewal-refused'
  | 'max-ttl'
  | 'not-renewable'
  | 'file-changed';

function asRecord(value: unknown): Record<string, unknown> | undefined {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
    ? (value as Record<string, unknown>)
    : undefined;
}

function nonNegativeNumber(value: unknown): number {
  return typeof value === 'number' && Number.isFinite(value) && value > 0 ? value : 0;
}

async function readCredentialFile(file: string, field: string): Promise<string> {
  let text: string;
  try {
    const stat = await fs.stat(file);
    if (!stat.isFile()) throw Object.assign(new Error('not a regular file'), { code: 'ENOTFILE' });
    if (stat.size > MAX_CREDENTIAL_FILE_BYTES)
      throw Object.assign(new Error('too large'), { code: 'EFBIG' });
    text = await fs.readFile(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'error';
    throw new WardenError('ERR_SECRET_STORE_CONFIG', `${field}: cannot read ${file} (${code})`, {
      cause: err,
    });
  }
  const value = text.trim();
  if (value.length === 0)
    throw new WardenError('ERR_SECRET_STORE_CONFIG', `${field}: ${file} is empty`);
  if (/[\u0000-\u0020\u007f]/.test(value)) {
    throw new WardenError(
      'ERR_SECRET_STORE_CONFIG',
      `${field}: ${file} must hold a single line without spaces`,
    );
  }
  return value;
}

export interface VaultTokenSessionOptions {
  readonly client: VaultClient;
  readonly auth: VaultAuthSettings;
  readonly clock: Clock;
  readonly timers: VaultTimers;
  readonly logger: Logger;
}

export class VaultTokenSession {
  readonly #client: VaultClient;
  readonly #auth: VaultAuthSettings;
  readonly #clock: Clock;
  readonly #timers: VaultTimers;
  readonly #logger: Logger;
  #lease: Lease | undefined;
  #fileStamp: string | undefined;
  #pending: Promise<void> | undefined;
  #timer: unknown;
  #closed = false;

  constructor(options: VaultTokenSessionOptions) {
    this.#client = options.client;
    this.#auth = options.auth;
    this.#clock = options.clock;
    this.#timers = options.timers;
    this.#logger = options.logger;
  }

  /** Obtains the first token. Rejects (fail closed) when none can be had. */
  async start(): Promise<void> {
    await this.#exclusive(() => this.#authenticate('start'));
  }

  /** True while a token is held that has not expired by the injected clock. */
  ready(): boolean {
    if (this.#closed || this.#lease === undefined) return false;
    return (
      this.#lease.expiresAt === undefined || this.#clock.now().getTime() < this.#lease.expiresAt
    );
  }

  /**
   * A token to use now. Before answering it re-reads a changed token file, logs in again
   * when the token has expired, and renews when two thirds of the lease have passed.
   */
  async token(): Promise<string> {
    this.#assertOpen();
    if (this.#auth.method === 'token' && this.#auth.source === 'file') {
      const stamp = await this.#stampTokenFile();
      if (stamp !== this.#fileStamp) {
        await this.#exclusive(async () => {
          if ((await this.#stampTokenFile()) !== this.#fileStamp)
            await this.#authenticate('file-changed');
        });
      }
    }
    if (this.#lease === undefined) {
      await this.#exclusive(async () => {
        if (this.#lease === undefined) await this.#authenticate('token-dead');
      });
    }
    const now = this.#clock.now().getTime();
    const lease = this.#lease;
    if (
      lease !== undefined &&
      lease.expiresAt !== undefined &&
      now >= lease.expiresAt &&
      this.#canLogin()
    ) {
      await this.#exclusive(async () => {
        const current = this.#lease;
        if (current?.expiresAt !== undefined && this.#clock.now().getTime() >= current.expiresAt)
          await this.#authenticate('expired');
      });
    } else if (lease?.renewAt !== undefined && now >= lease.renewAt) {
      await this.#exclusive(() => this.#maintainIfDue());
    }
    const current = this.#lease;
    if (current === undefined) {
      throw new WardenError('ERR_SECRET_STORE_UNAVAILABLE', 'no valid Vault token is available');
    }
    return current.token;
  }

  /**
   * Called after a 403. Asks Vault whether `tokenUsed` is still alive (lookup-self): when
   * it is, the 403 was a policy decision and undefined is returned; when it is not, the
   * token is dropped, a new one is obtained (login, or a re-read of the token file) and
   * returned for one more attempt. Throws when no new token can be had.
   */
  async recoverFromDenied(tokenUsed: string): Promise<string | undefined> {
    this.#assertOpen();
    const current = this.#lease;
    if (current !== undefined && current.token !== tokenUsed) return current.token;
    const probe = await this.#client.send({
      method: 'GET',
      path: ['auth', 'token', 'lookup-self'],
      token: tokenUsed,
      subject: 'the token lookup',
    });
    if (probe.status === 200) return undefined;
    if (probe.status !== 403)
      throw errorForReply(probe, {
        method: 'GET',
        path: ['auth', 'token', 'lookup-self'],
        token: tokenUsed,
        subject: 'the token lookup',
      });
    this.#logger.warn(
      { authMethod: this.#auth.method },
      'Vault says the token is no longer valid; obtaining a new one',
    );
    await this.#exclusive(async () => {
      if (this.#lease?.token === tokenUsed) {
        this.#lease = undefined;
        this.#cancelTimer();
        await this.#authenticate('token-dead', tokenUsed);
      }
    });
    return this.#lease?.token;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#cancelTimer();
    await this.#pending?.catch(() => undefined);
    const lease = this.#lease;
    this.#lease = undefined;
    if (lease?.owned) {
      // Tokens we minted by logging in are ours to clean up; a token we were given is not.
      try {
        await this.#client.send({
          method: 'POST',
          path: ['auth', 'token', 'revoke-self'],
          token: lease.token,
          subject: 'token revocation',
          maxAttempts: 1,
        });
      } catch (err) {
        this.#logger.debug(
          { error: describeError(err) },
          'could not revoke the Vault token on close',
        );
      }
    }
  }

  #assertOpen(): void {
    if (this.#closed)
      throw new WardenError('ERR_SECRET_STORE_UNAVAILABLE', 'the Vault secret store is closed');
  }

  #canLogin(): boolean {
    return this.#auth.method === 'kubernetes' || this.#auth.method === 'approle';
  }

  /** Runs lease-changing work one at a time; concurrent callers wait and then re-check. */
  async #exclusive(work: () => Promise<void>): Promise<void> {
    while (this.#pending !== undefined) await this.#pending.catch(() => undefined);
    const running = work();
    this.#pending = running;
    try {
      await running;
    } finally {
      if (this.#pending === running) this.#pending = undefined;
    }
  }

  async #stampTokenFile(): Promise<string> {
    if (this.#auth.method !== 'token' || this.#auth.source !== 'file') return '';
    try {
      // stat follows symlinks, so a Kubernetes-style `..data` swap changes the inode.
      const stat = await fs.stat(this.#auth.tokenFile);
      return `${stat.ino}:${stat.size}:${stat.mtimeMs}`;
    } catch {
      return 'missing';
    }
  }

  async #authenticate(reason: AuthReason, deadToken?: string): Promise<void> {
    this.#assertOpen();
    const auth = this.#auth;
    switch (auth.method) {
      case 'token': {
        let token: string;
        let stamp: string | undefined;
        if (auth.source === 'inline') {
          token = auth.token;
        } else {
          stamp = await this.#stampTokenFile();
          try {
            token = await readCredentialFile(auth.tokenFile, 'vaultTokenMountPath');
          } catch (err) {
            // Mid-rewrite (missing or empty) while we still hold a token: keep using it and
            // look again when the file changes; at start, or with no token, fail.
            if (reason !== 'file-changed' || this.#lease === undefined) throw err;
            this.#logger.warn(
              { file: auth.tokenFile, error: describeError(err) },
              'vaultTokenMountPath changed but holds no usable token; keeping the current token',
            );
            this.#fileStamp = stamp;
            return;
          }
        }
        if (deadToken !== undefined && token === deadToken) {
          if (stamp !== undefined) this.#fileStamp = stamp;
          throw new WardenError(
            'ERR_SECRET_PERMISSION_DENIED',
            auth.source === 'inline'
              ? 'Vault no longer accepts the configured vaultToken (expired or revoked)'
              : `Vault no longer accepts the token in vaultTokenMountPath ${auth.tokenFile}, and the file has not been updated`,
          );
        }
        try {
          await this.#adopt(token, reason);
        } catch (err) {
          // The file is the source of truth: a rotated-in token Vault refuses still replaces
          // the old one (requests then fail with a clear message) — but a Vault that could
          // not be asked leaves the stamp stale so the file is tried again.
          if (
            auth.source !== 'file' ||
            reason !== 'file-changed' ||
            !(err instanceof WardenError) ||
            err.code !== 'ERR_SECRET_PERMISSION_DENIED'
          ) {
            throw err;
          }
          this.#logger.warn(
            { file: auth.tokenFile },
            'the rotated token in vaultTokenMountPath is refused by Vault',
          );
          this.#setLease(token, { leaseSeconds: 0, renewable: false, ttlSeconds: 0, owned: false });
        }
        if (stamp !== undefined) this.#fileStamp = stamp;
        return;
      }
      case 'kubernetes': {
        const jwt = await readCredentialFile(
          auth.serviceAccountTokenPath,
          'vaultServiceAccountTokenPath',
        );
        await this.#login(
          auth.mountPath,
          { role: auth.role, jwt },
          [jwt],
          `kubernetes login (role "${auth.role}")`,
          reason,
        );
        return;
      }
      case 'approle': {
        const secretId =
          auth.secretId ??
          (await readCredentialFile(auth.secretIdPath as string, 'vaultAppRoleSecretIdPath'));
        await this.#login(
          auth.mountPath,
          { role_id: auth.roleId, secret_id: secretId },
          [secretId, auth.roleId],
          'approle login',
          reason,
        );
        return;
      }
    }
  }

  /** Takes a token we were given and learns its TTL from lookup-self. */
  async #adopt(token: string, reason: AuthReason): Promise<void> {
    const request = {
      method: 'GET' as const,
      path: ['auth', 'token', 'lookup-self'],
      token,
      subject: 'the token lookup',
    };
    const reply = await this.#client.send(request);
    if (reply.status === 403) {
      throw new WardenError(
        'ERR_SECRET_PERMISSION_DENIED',
        'Vault rejected the configured token (lookup-self answered 403): it is invalid, expired or revoked, or lacks the default policy',
        { details: { httpStatus: 403 } },
      );
    }
    if (reply.status !== 200) throw errorForReply(reply, request);
    const data = asRecord(asRecord(reply.body)?.data);
    if (data === undefined)
      throw new WardenError('ERR_VAULT_API', 'Vault answered lookup-self without a data object');
    const ttl = nonNegativeNumber(data.ttl);
    const creationTtl = nonNegativeNumber(data.creation_ttl);
    this.#setLease(token, {
      leaseSeconds: ttl,
      renewable: data.renewable === true,
      ttlSeconds: creationTtl > 0 ? creationTtl : ttl,
      owned: false,
    });
    this.#logger.info(
      { authMethod: 'token', reason, ttlSeconds: ttl, renewable: data.renewable === true },
      'Vault token accepted',
    );
  }

  async #login(
    mountPath: readonly string[],
    body: Record<string, string>,
    sensitive: readonly string[],
    subject: string,
    reason: AuthReason,
  ): Promise<void> {
    const path = ['auth', ...mountPath, 'login'];
    const reply: VaultReply = await this.#client.send({
      method: 'POST',
      path,
      body,
      subject: `the Vault ${subject}`,
    });
    if (reply.status === 400 || reply.status === 401 || reply.status === 403) {
      throw new WardenError(
        'ERR_SECRET_PERMISSION_DENIED',
        `Vault refused the ${subject} at ${describeVaultPath(path)} (${reply.status}: ${summariseVaultErrors(reply.body, sensitive)})`,
        { details: { httpStatus: reply.status } },
      );
    }
    if (reply.status !== 200)
      throw errorForReply(reply, { method: 'POST', path, subject: `the Vault ${subject}` });
    const authBlock = asRecord(asRecord(reply.body)?.auth);
    const token = authBlock?.client_token;
    if (authBlock === undefined || typeof token !== 'string' || token.length === 0) {
      throw new WardenError(
        'ERR_VAULT_API',
        `Vault answered the ${subject} without auth.client_token`,
      );
    }
    const leaseSeconds = nonNegativeNumber(authBlock.lease_duration);
    this.#setLease(token, {
      leaseSeconds,
      renewable: authBlock.renewable === true,
      ttlSeconds: leaseSeconds,
      owned: true,
    });
    this.#logger.info(
      {
        authMethod: this.#auth.method,
        reason,
        leaseSeconds,
        renewable: authBlock.renewable === true,
        policies: Array.isArray(authBlock.policies) ? authBlock.policies : [],
      },
      'Vault login succeeded',
    );
  }

  #setLease(
    token: string,
    grant: {
      leaseSeconds: number;
      renewable: boolean;
      ttlSeconds: number;
      owned: boolean;
      preferRelogin?: boolean;
    },
  ): void {
    const now = this.#clock.now().getTime();
    const expiring = grant.leaseSeconds > 0;
    // A lease is worth maintaining when it can be renewed or replaced by a fresh login.
    const maintainable = expiring && (grant.renewable || this.#canLogin());
    this.#lease = {
      token,
      expiresAt: expiring ? now + grant.leaseSeconds * 1000 : undefined,
      renewAt: maintainable
        ? now + Math.floor(grant.leaseSeconds * 1000 * RENEW_AT_FRACTION)
        : undefined,
      renewable: grant.renewable,
      ttlSeconds: grant.ttlSeconds,
      owned: grant.owned,
      preferRelogin: grant.preferRelogin ?? false,
    };
    this.#schedule();
  }

  async #maintainIfDue(): Promise<void> {
    const lease = this.#lease;
    if (lease?.renewAt === undefined || this.#clock.now().getTime() < lease.renewAt) return;
    try {
      if (lease.preferRelogin && this.#canLogin()) {
        await this.#authenticate('max-ttl');
      } else if (lease.renewable) {
        await this.#renew(lease);
      } else if (this.#canLogin()) {
        await this.#authenticate('not-renewable');
      }
    } catch (err) {
      this.#afterMaintenanceFailure(lease, err);
    }
  }

  async #renew(lease: Lease): Promise<void> {
    const path = ['auth', 'token', 'renew-self'];
    const reply = await this.#client.send({
      method: 'POST',
      path,
      token: lease.token,
      body: { increment: lease.ttlSeconds },
      subject: 'token renewal',
    });
    const authBlock = reply.status === 200 ? asRecord(asRecord(reply.body)?.auth) : undefined;
    if (authBlock === undefined) {
      if (reply.status === 200)
        throw new WardenError('ERR_VAULT_API', 'Vault answered renew-self without an auth object');
      if (reply.status >= 400 && reply.status < 500 && reply.status !== 429) {
        // Renewal refused (revoked, not renewable any more): a fresh login or file re-read.
        this.#logger.warn(
          { status: reply.status, authMethod: this.#auth.method },
          'Vault refused to renew the token',
        );
        if (this.#canLogin()) {
          await this.#authenticate('renewal-refused');
          return;
        }
      }
      throw errorForReply(reply, {
        method: 'POST',
        path,
        token: lease.token,
        subject: 'token renewal',
      });
    }
    const granted = nonNegativeNumber(authBlock.lease_duration);
    this.#setLease(lease.token, {
      leaseSeconds: granted,
      renewable: authBlock.renewable === true,
      ttlSeconds: lease.ttlSeconds,
      owned: lease.owned,
      preferRelogin: granted < lease.ttlSeconds * MAX_TTL_NEAR_FRACTION,
    });
    this.#logger.info(
      { authMethod: this.#auth.method, leaseSeconds: granted },
      'Vault token renewed',
    );
  }

  /**
   * Renewal or re-login failed while the current token may still be valid: keep using it,
   * try again after half of what is left (at least a second), and let requests fail only
   * once the token is really gone.
   */
  #afterMaintenanceFailure(lease: Lease, err: unknown): void {
    const now = this.#clock.now().getTime();
    const current = this.#lease;
    if (current === undefined || current.token !== lease.token) {
      if (current === undefined)
        this.#logger.warn({ error: describeError(err) }, 'could not obtain a new Vault token');
      throw err;
    }
    const left = current.expiresAt === undefined ? 60_000 : current.expiresAt - now;
    this.#logger.warn(
      { error: describeError(err), authMethod: this.#auth.method, tokenExpiresInMs: left },
      'Vault token maintenance failed; will retry',
    );
    if (left <= 0) {
      if (this.#canLogin()) throw err;
      // A given token past its expiry: stop maintaining it and let Vault's 403 decide.
      this.#lease = { ...current, renewAt: undefined };
      this.#schedule();
      return;
    }
    this.#lease = { ...current, renewAt: now + Math.max(1000, Math.floor(left / 2)) };
    this.#schedule();
  }

  #cancelTimer(): void {
    if (this.#timer !== undefined) this.#timers.clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #schedule(): void {
    this.#cancelTimer();
    const renewAt = this.#lease?.renewAt;
    if (renewAt === undefined || this.#closed) return;
    const delay = Math.min(MAX_TIMER_MS, Math.max(0, renewAt - this.#clock.now().getTime()));
    this.#timer = this.#timers.setTimeout(() => {
      this.#timer = undefined;
      if (this.#closed) return;
      this.#exclusive(() => this.#maintainIfDue()).catch((err: unknown) => {
        this.#logger.warn(
          { error: describeError(err) },
          'background Vault token maintenance failed',
        );
      });
    }, delay);
  }
}
