/**
 * A small typed client for the handful of Vault HTTP endpoints the secret store uses:
 * KV v1/v2 reads and lists, token lookup/renew/revoke-self, and Kubernetes/AppRole login.
 *
 * Why not node-vault: it is not installed here, it is axios-based and loosely typed
 * (responses are `any`), its TLS options are passed through `request`-era option bags
 * that make `tlsServerName`/`caPath` awkward, and it neither maps errors to our codes nor
 * retries with Retry-After. The API surface we need is about ten endpoints, so a client
 * over node:https gives us exact control over TLS (CA bundle, SNI + verification name,
 * skipVerify), timeouts, bounded retries, response-size caps and — most importantly —
 * a guarantee that the token travels only in the X-Vault-Token header and never into a
 * log line or an error message.
 *
 * node:https rather than fetch: Node 20's global fetch takes TLS options only through an
 * undici Dispatcher, and undici is not a direct dependency; node:https takes `ca`,
 * `servername` and `rejectUnauthorized` directly.
 */
import http from 'node:http';
import https from 'node:https';
import type { IncomingHttpHeaders } from 'node:http';
import type { Logger } from 'pino';
import { WardenError } from '../../../shared/errors.js';
import { describeVaultPath, encodeVaultPath, type VaultPathSegments } from './vault-path.js';
import type { VaultTlsSettings } from './vault-tls.js';

export type VaultMethod = 'GET' | 'POST' | 'PUT' | 'DELETE' | 'LIST';

export interface VaultRequest {
  readonly method: VaultMethod;
  readonly path: VaultPathSegments;
  readonly trailingSlash?: boolean;
  readonly query?: Readonly<Record<string, string>>;
  readonly body?: unknown;
  /** Sent only as X-Vault-Token; never logged, never part of a message. */
  readonly token?: string;
  /** What the request is about, for messages: `secret "db"`, `kubernetes login`. */
  readonly subject: string;
  /** Overrides the retry policy's attempts for this request (e.g. 1 for best-effort calls). */
  readonly maxAttempts?: number;
}

export interface VaultReply {
  readonly status: number;
  /** Parsed JSON body; undefined for an empty body (204). */
  readonly body: unknown;
  readonly headers: IncomingHttpHeaders;
  /** How many attempts it took (retries of 429/5xx/network errors). */
  readonly attempts: number;
}

export interface VaultRetryPolicy {
  /** Total attempts including the first; 1 disables retries. */
  readonly maxAttempts: number;
  readonly baseDelayMs: number;
  readonly maxDelayMs: number;
  /** A Retry-After longer than this is not waited for: the call fails at once. */
  readonly maxRetryAfterMs: number;
}

export const DEFAULT_VAULT_RETRY_POLICY: VaultRetryPolicy = Object.freeze({
  maxAttempts: 4,
  baseDelayMs: 200,
  maxDelayMs: 3000,
  maxRetryAfterMs: 10_000,
});

/** Per-attempt deadline covering connect, TLS, headers and body. */
export const DEFAULT_VAULT_TIMEOUT_MS = 10_000;

/**
 * Largest response body accepted. Vault's integrated storage refuses entries above
 * `max_entry_size` (1 MiB by default), so a real KV secret cannot legitimately be larger;
 * 2 MiB leaves room for JSON escaping. Bigger answers are cut off while streaming and
 * reported as ERR_SECRET_TOO_LARGE instead of being buffered.
 */
export const DEFAULT_VAULT_MAX_RESPONSE_BYTES = 2 * 1024 * 1024;

export interface VaultClientOptions {
  readonly address: URL;
  /** Vault Enterprise namespace, sent as X-Vault-Namespace on every request. */
  readonly namespace?: string | undefined;
  readonly tls: VaultTlsSettings;
  readonly logger: Logger;
  readonly timeoutMs?: number | undefined;
  readonly retry?: Partial<VaultRetryPolicy> | undefined;
  readonly maxResponseBytes?: number | undefined;
  /** Injected so tests can observe back-off without waiting for it. */
  readonly sleep?: ((ms: number) => Promise<void>) | undefined;
  readonly random?: (() => number) | undefined;
}

/** Status codes worth another attempt: throttling, transient server trouble, replica lag. */
const RETRYABLE_STATUS = new Set([412, 429, 500, 502, 503, 504]);

/** TLS verification failures are configuration problems: retrying cannot fix them. */
const TLS_VERIFY_CODES = new Set([
  'ERR_TLS_CERT_ALTNAME_INVALID',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'CERT_SIGNATURE_FAILURE',
  'CERT_UNTRUSTED',
  'CERT_REJECTED',
  'HOSTNAME_MISMATCH',
]);

const TOKEN_SHAPE = /\b(?:hv[sbr]\.[A-Za-z0-9_-]{20,}|s\.[A-Za-z0-9]{24,})\b/g;

function defaultSleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function isSealedReply(reply: VaultReply): boolean {
  return reply.status === 503 && vaultErrorStrings(reply.body).some((e) => /sealed/i.test(e));
}

/** The `errors` array of a Vault error body, as strings. */
export function vaultErrorStrings(body: unknown): string[] {
  if (typeof body !== 'object' || body === null) return [];
  const errors = (body as { errors?: unknown }).errors;
  return Array.isArray(errors) ? errors.filter((e): e is string => typeof e === 'string') : [];
}

/**
 * Vault's `errors` array in one bounded, printable sentence with every known token and
 * anything shaped like a Vault token replaced, so that a server echoing a header cannot
 * put a credential into our error messages.
 */
export function summariseVaultErrors(body: unknown, sensitive: readonly string[] = []): string {
  const errors = vaultErrorStrings(body);
  if (errors.length === 0)
    return typeof body === 'object' && body !== null ? 'no error detail' : 'non-JSON body';
  let text = errors.join('; ');
  for (const secret of sensitive) {
    if (secret.length >= 4) text = text.split(secret).join('[REDACTED]');
  }
  text = text.replace(TOKEN_SHAPE, '[REDACTED]');
  text = text.replace(/[\u0000-\u001f\u007f-\u009f]+/g, ' ').trim();
  return text.length > 300 ? `${text.slice(0, 300)}…` : text;
}

/** Parses Retry-After (seconds or an HTTP date) into milliseconds. */
export function parseRetryAfter(
  value: string | string[] | undefined,
  now: number = Date.now(),
): number | undefined {
  const raw = Array.isArray(value) ? value[0] : value;
  if (raw === undefined || raw.trim() === '') return undefined;
  if (/^\d+$/.test(raw.trim())) return Number(raw.trim()) * 1000;
  const at = Date.parse(raw);
  if (Number.isNaN(at)) return undefined;
  return Math.max(0, at - now);
}

/**
 * Maps a non-2xx reply to a WardenError. 404 → ERR_SECRET_NOT_FOUND, 403 →
 * ERR_SECRET_PERMISSION_DENIED, sealed/throttled/5xx → ERR_SECRET_STORE_UNAVAILABLE,
 * anything else → ERR_VAULT_API. The message names the subject and Vault's own error text,
 * never the token.
 */
export function errorForReply(reply: VaultReply, request: VaultRequest): WardenError {
  const summary = summariseVaultErrors(
    reply.body,
    request.token === undefined ? [] : [request.token],
  );
  const details = { httpStatus: reply.status, attempts: reply.attempts };
  const where = describeVaultPath(request.path);
  switch (true) {
    case reply.status === 403:
      return new WardenError(
        'ERR_SECRET_PERMISSION_DENIED',
        `Vault denied access to ${request.subject} at ${where} (403: ${summary})`,
        { details },
      );
    case reply.status === 404:
      return new WardenError(
        'ERR_SECRET_NOT_FOUND',
        `${request.subject} not found in Vault at ${where}`,
        { details },
      );
    case isSealedReply(reply):
      return new WardenError(
        'ERR_SECRET_STORE_UNAVAILABLE',
        `Vault is sealed; cannot read ${request.subject}`,
        { details },
      );
    case reply.status === 429: {
      const retryAfterMs = parseRetryAfter(reply.headers['retry-after']);
      return new WardenError(
        'ERR_SECRET_STORE_UNAVAILABLE',
        `Vault is rate limiting requests (429: ${summary}); gave up on ${request.subject} after ${reply.attempts} attempt(s)`,
        { details: retryAfterMs === undefined ? details : { ...details, retryAfterMs } },
      );
    }
    case reply.status >= 500 || reply.status === 412:
      return new WardenError(
        'ERR_SECRET_STORE_UNAVAILABLE',
        `Vault answered ${reply.status} (${summary}) for ${request.subject} after ${reply.attempts} attempt(s)`,
        { details },
      );
    default:
      return new WardenError(
        'ERR_VAULT_API',
        `Vault answered ${reply.status} for ${request.subject} at ${where}: ${summary}`,
        { details },
      );
  }
}

class ResponseTooLarge extends Error {}

export class VaultClient {
  readonly #address: URL;
  readonly #basePath: string;
  readonly #namespace: string | undefined;
  readonly #agent: http.Agent;
  readonly #transport: typeof http | typeof https;
  readonly #tls: VaultTlsSettings;
  readonly #logger: Logger;
  readonly #timeoutMs: number;
  readonly #retry: VaultRetryPolicy;
  readonly #maxResponseBytes: number;
  readonly #sleep: (ms: number) => Promise<void>;
  readonly #random: () => number;
  #closed = false;

  constructor(options: VaultClientOptions) {
    if (options.address.protocol !== 'https:' && options.address.protocol !== 'http:') {
      throw new TypeError('Vault address must be http: or https:');
    }
    this.#address = options.address;
    this.#basePath = options.address.pathname.replace(/\/+$/, '');
    this.#namespace = options.namespace;
    this.#tls = options.tls;
    this.#logger = options.logger;
    this.#timeoutMs = options.timeoutMs ?? DEFAULT_VAULT_TIMEOUT_MS;
    this.#retry = { ...DEFAULT_VAULT_RETRY_POLICY, ...(options.retry ?? {}) };
    if (!Number.isInteger(this.#retry.maxAttempts) || this.#retry.maxAttempts < 1) {
      throw new TypeError('retry.maxAttempts must be a positive integer');
    }
    this.#maxResponseBytes = options.maxResponseBytes ?? DEFAULT_VAULT_MAX_RESPONSE_BYTES;
    this.#sleep = options.sleep ?? defaultSleep;
    this.#random = options.random ?? Math.random;
    if (options.address.protocol === 'https:') {
      this.#transport = https;
      this.#agent = new https.Agent({
        keepAlive: true,
        maxSockets: 32,
        minVersion: 'TLSv1.2',
        rejectUnauthorized: options.tls.rejectUnauthorized,
        ...(options.tls.ca === undefined ? {} : { ca: [...options.tls.ca] }),
        ...(options.tls.serverName === undefined ? {} : { servername: options.tls.serverName }),
      });
    } else {
      this.#transport = http;
      this.#agent = new http.Agent({ keepAlive: true, maxSockets: 32 });
    }
  }

  /** The Vault address without credentials, for messages. */
  get origin(): string {
    return this.#address.origin;
  }

  /**
   * Sends a request, retrying 412/429/5xx (except "sealed") and network errors with
   * bounded exponential back-off and full jitter, honouring Retry-After. Returns the last
   * reply whatever its status; throws WardenError only when no reply could be had
   * (network, TLS, timeout, oversize body).
   */
  async send(request: VaultRequest): Promise<VaultReply> {
    if (this.#closed)
      throw new WardenError('ERR_SECRET_STORE_UNAVAILABLE', 'the Vault client is closed');
    let lastError: unknown;
    const maxAttempts = Math.max(
      1,
      Math.min(this.#retry.maxAttempts, request.maxAttempts ?? this.#retry.maxAttempts),
    );
    for (let attempt = 1; attempt <= maxAttempts; attempt += 1) {
      let reply: VaultReply | undefined;
      try {
        reply = await this.#once(request, attempt);
      } catch (err) {
        if (err instanceof WardenError) throw err;
        const code = (err as NodeJS.ErrnoException).code ?? '';
        if (TLS_VERIFY_CODES.has(code)) {
          throw new WardenError(
            'ERR_SECRET_STORE_UNAVAILABLE',
            `TLS verification of Vault at ${this.origin} failed (${code}); check caCert/caPath/caPem and tlsServerName`,
            { cause: err, details: { tlsError: code } },
          );
        }
        lastError = err;
      }
      const last = attempt === maxAttempts;
      if (reply !== undefined) {
        if (!RETRYABLE_STATUS.has(reply.status) || isSealedReply(reply) || last) return reply;
        const retryAfterMs = parseRetryAfter(reply.headers['retry-after']);
        if (retryAfterMs !== undefined && retryAfterMs > this.#retry.maxRetryAfterMs) return reply;
        const delay = Math.max(retryAfterMs ?? 0, this.#backoff(attempt));
        this.#logger.warn(
          { path: describeVaultPath(request.path), status: reply.status, attempt, delayMs: delay },
          'Vault request will be retried',
        );
        await this.#sleep(delay);
        continue;
      }
      if (last) break;
      const delay = this.#backoff(attempt);
      this.#logger.warn(
        {
          path: describeVaultPath(request.path),
          error: (lastError as NodeJS.ErrnoException).code ?? String(lastError),
          attempt,
          delayMs: delay,
        },
        'Vault request failed; will retry',
      );
      await this.#sleep(delay);
    }
    const code =
      (lastError as NodeJS.ErrnoException | undefined)?.code ??
      (lastError instanceof Error ? lastError.message : 'error');
    throw new WardenError(
      'ERR_SECRET_STORE_UNAVAILABLE',
      `cannot reach Vault at ${this.origin} for ${request.subject} after ${maxAttempts} attempt(s) (${code})`,
      { cause: lastError, details: { attempts: maxAttempts } },
    );
  }

  /** send() plus errorForReply() for anything but 2xx. */
  async request(request: VaultRequest): Promise<VaultReply> {
    const reply = await this.send(request);
    if (reply.status >= 200 && reply.status < 300) return reply;
    throw errorForReply(reply, request);
  }

  close(): void {
    this.#closed = true;
    this.#agent.destroy();
  }

  /** Full jitter over a capped exponential: uniform in [0, min(max, base·2^(n-1))]. */
  #backoff(attempt: number): number {
    const ceiling = Math.min(this.#retry.maxDelayMs, this.#retry.baseDelayMs * 2 ** (attempt - 1));
    return Math.round(this.#random() * ceiling);
  }

  #once(request: VaultRequest, attempt: number): Promise<VaultReply> {
    const query = new URLSearchParams(request.query ?? {}).toString();
    const path = `${this.#basePath}${encodeVaultPath(request.path, request.trailingSlash)}${query ? `?${query}` : ''}`;
    const payload =
      request.body === undefined ? undefined : Buffer.from(JSON.stringify(request.body), 'utf8');
    const headers: http.OutgoingHttpHeaders = {
      accept: 'application/json',
      'user-agent': 'warden-vault-client',
      'x-vault-request': 'true',
    };
    if (request.token !== undefined) headers['x-vault-token'] = request.token;
    if (this.#namespace !== undefined) headers['x-vault-namespace'] = this.#namespace;
    if (payload !== undefined) {
      headers['content-type'] = 'application/json';
      headers['content-length'] = payload.length;
    }
    const hostname = this.#address.hostname.replace(/^\[(.*)\]$/, '$1');
    return new Promise<VaultReply>((resolve, reject) => {
      let settled = false;
      let timedOut = false;
      const controller = new AbortController();
      const deadline = setTimeout(() => {
        timedOut = true;
        controller.abort();
      }, this.#timeoutMs);
      const finish = (fn: () => void): void => {
        if (settled) return;
        settled = true;
        clearTimeout(deadline);
        fn();
      };
      const onError = (err: Error): void => {
        const reported = timedOut
          ? Object.assign(new Error(`no answer within ${this.#timeoutMs} ms`), {
              code: 'ETIMEDOUT',
            })
          : err;
        finish(() => reject(reported));
      };
      const req = this.#transport.request(
        {
          protocol: this.#address.protocol,
          hostname,
          port: this.#address.port === '' ? undefined : Number(this.#address.port),
          method: request.method,
          path,
          headers,
          agent: this.#agent,
          signal: controller.signal,
          ...(this.#tls.serverName === undefined ? {} : { servername: this.#tls.serverName }),
        },
        (res) => {
          const declared = Number(res.headers['content-length'] ?? '0');
          if (declared > this.#maxResponseBytes) {
            res.destroy();
            req.destroy();
            finish(() => reject(this.#tooLarge(request)));
            return;
          }
          const chunks: Buffer[] = [];
          let size = 0;
          res.on('data', (chunk: Buffer) => {
            size += chunk.length;
            if (size > this.#maxResponseBytes) {
              res.destroy(new ResponseTooLarge());
              req.destroy();
              finish(() => reject(this.#tooLarge(request)));
              return;
            }
            chunks.push(chunk);
          });
          res.on('error', onError);
          res.on('end', () => {
            const text = Buffer.concat(chunks).toString('utf8');
            let body: unknown;
            if (text.trim().length > 0) {
              try {
                body = JSON.parse(text);
              } catch {
                body = undefined; // a proxy's HTML error page, say: summarised as "non-JSON body"
                if (res.statusCode !== undefined && res.statusCode >= 200 && res.statusCode < 300) {
                  finish(() =>
                    reject(
                      new WardenError(
                        'ERR_VAULT_API',
                        `Vault answered ${request.subject} with a body that is not JSON`,
                      ),
                    ),
                  );
                  return;
                }
              }
            }
            const status = res.statusCode ?? 0;
            this.#logger.debug(
              { method: request.method, path: describeVaultPath(request.path), status, attempt },
              'Vault request',
            );
            finish(() => resolve({ status, body, headers: res.headers, attempts: attempt }));
          });
        },
      );
      req.on('error', onError);
      if (payload !== undefined) req.write(payload);
      req.end();
    });
  }

  #tooLarge(request: VaultRequest): WardenError {
    return new WardenError(
      'ERR_SECRET_TOO_LARGE',
      `Vault's answer for ${request.subject} is larger than the ${this.#maxResponseBytes}-byte limit`,
      { details: { limitBytes: this.#maxResponseBytes } },
    );
  }
}
