import { randomBytes, randomUUID } from 'node:crypto';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { systemClock, type Clock } from '../../src/shared/clock.js';
import { createTestCa, issueTestServerCertificate, type TestCa } from './vault-test-pki.js';

/**
 * A wire-faithful HashiCorp Vault for tests: real HTTP or HTTPS on 127.0.0.1:0, Vault's
 * documented paths, status codes and JSON bodies (`{"errors":[...]}`, the response
 * envelope with request_id/lease_id/renewable/lease_duration/data/wrap_info/warnings/auth).
 *
 * Implemented: KV v2 (data/metadata/delete/undelete/destroy, versions, soft delete,
 * LIST), KV v1, token auth (X-Vault-Token or Authorization: Bearer; lookup/renew/revoke-self;
 * TTLs and max TTLs on an injected clock), per-token deny-path policies, Kubernetes and
 * AppRole login from tables, namespaces (X-Vault-Namespace; data and tokens separate per
 * namespace), sys/health and sys/seal-status, sealed mode, rate limiting, injected
 * failures and dropped connections, and a request log.
 *
 * The `LIST` verb is answered too, although Node's HTTP parser does not know it: such a
 * request is caught as a parse error and answered by hand on the raw socket (with
 * `Connection: close`). Namespaces given as a path prefix (`/v1/ns1/secret/...`) are not
 * implemented — only the header.
 */

export type KvVersion = 1 | 2;

export interface VaultRequestRecord {
  readonly method: string;
  /** The URL path without the query, e.g. `/v1/secret/data/dapr/db`. */
  readonly path: string;
  /** The path below /v1/, percent-decoded, e.g. `secret/data/dapr/db`. */
  readonly apiPath: string;
  readonly query: Readonly<Record<string, string>>;
  /** Lower-cased request headers. Test-only tokens appear here on purpose. */
  readonly headers: Readonly<Record<string, string>>;
  readonly namespace: string;
  /** SNI the client sent (HTTPS only). */
  readonly servername: string | undefined;
  status: number;
  readonly at: number;
}

export interface TokenOptions {
  /** Explicit token id; random `hvs.` otherwise. */
  readonly id?: string;
  readonly namespace?: string;
  readonly policies?: readonly string[];
  /** 0 means the token never expires (like a root token). */
  readonly ttlSeconds?: number;
  readonly renewable?: boolean;
  /** Renewals never push expiry past creation + this. */
  readonly maxTtlSeconds?: number;
  /** API paths (below /v1/, `*` as a trailing wildcard) this token may not use: 403. */
  readonly deny?: readonly string[];
  readonly displayName?: string;
}

interface TokenRecord {
  readonly id: string;
  readonly accessor: string;
  readonly namespace: string;
  readonly policies: readonly string[];
  readonly deny: readonly string[];
  readonly createdAt: number;
  readonly ttlSeconds: number;
  expiresAt: number | undefined;
  readonly maxExpiresAt: number | undefined;
  readonly renewable: boolean;
  revoked: boolean;
  readonly displayName: string;
  readonly path: string;
  readonly meta: Readonly<Record<string, string>>;
}

interface KvV2Version {
  data: Record<string, unknown> | null;
  readonly createdTime: string;
  deletionTime: string;
  destroyed: boolean;
}

interface KvV2Entry {
  readonly versions: Map<number, KvV2Version>;
  currentVersion: number;
  readonly createdTime: string;
  updatedTime: string;
}

interface KvMount {
  readonly version: KvVersion;
  readonly v1: Map<string, Record<string, unknown>>;
  readonly v2: Map<string, KvV2Entry>;
}

interface LoginGrant {
  readonly policies: readonly string[];
  readonly ttlSeconds: number;
  readonly maxTtlSeconds: number | undefined;
  readonly renewable: boolean;
  readonly deny: readonly string[];
}

interface KubernetesRole extends LoginGrant {
  readonly jwts: Set<string>;
}

interface AppRole extends LoginGrant {
  readonly secretIds: Set<string>;
}

interface NamespaceState {
  readonly mounts: Map<string, KvMount>;
  readonly kubernetes: Map<string, Map<string, KubernetesRole>>;
  readonly approle: Map<string, Map<string, AppRole>>;
}

interface Fault {
  readonly status: number; // 0 = drop the connection without answering; -1 = never answer
  remaining: number;
  readonly retryAfterSeconds: number | undefined;
  readonly pathContains: string | undefined;
  readonly errors: readonly string[] | undefined;
}

interface HandlerInput {
  readonly method: string;
  readonly url: string;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: Buffer;
  readonly servername: string | undefined;
}

type HandlerOutput =
  | {
      readonly kind: 'reply';
      readonly status: number;
      readonly body?: unknown;
      readonly headers?: Record<string, string>;
    }
  | { readonly kind: 'drop' }
  | { readonly kind: 'stall' };

export interface VaultTestServerOptions {
  /** HTTPS with a fresh CA (default) or plain HTTP. */
  readonly tls?: boolean;
  /** Decides token expiry and timestamps; share a ManualClock with the store under test. */
  readonly clock?: Clock;
  /** SANs of the server certificate; default DNS localhost + IP 127.0.0.1. */
  readonly dnsNames?: readonly string[];
  readonly ipAddresses?: readonly string[];
  readonly ca?: TestCa;
  /** Vault's default max_request_size is 32 MiB. */
  readonly maxRequestBytes?: number;
}

const NOT_VERSIONED_WARNING =
  "Invalid path for a versioned K/V secrets engine. See the API docs for the appropriate API endpoints to use. If using the Vault CLI, use 'vault kv get' for this operation.";
const KV_V1_LEASE_SECONDS = 2764800;

function normaliseNamespace(value: string | undefined): string {
  return (value ?? '').replace(/^\/+|\/+$/g, '');
}

function parseDurationSeconds(value: unknown): number | undefined {
  if (value === undefined || value === null || value === '') return undefined;
  if (typeof value === 'number' && Number.isFinite(value) && value >= 0) return Math.floor(value);
  if (typeof value !== 'string') return undefined;
  const match = /^(\d+)(s|m|h)?$/.exec(value.trim());
  if (match === null) return undefined;
  const n = Number(match[1]);
  return match[2] === 'h' ? n * 3600 : match[2] === 'm' ? n * 60 : n;
}

function matchesPattern(pattern: string, path: string): boolean {
  return pattern.endsWith('*') ? path.startsWith(pattern.slice(0, -1)) : path === pattern;
}

function listChildren(paths: Iterable<string>, prefix: string): string[] {
  const keys = new Set<string>();
  const base = prefix === '' ? '' : `${prefix}/`;
  for (const path of paths) {
    if (!path.startsWith(base)) continue;
    const rest = path.slice(base.length);
    if (rest === '') continue;
    const slash = rest.indexOf('/');
    keys.add(slash === -1 ? rest : `${rest.slice(0, slash + 1)}`);
  }
  return [...keys].sort();
}

export class VaultTestServer {
  readonly url: string;
  /** PEM of the CA that issued the server certificate (HTTPS only). */
  readonly caPem: string;
  readonly rootToken: string;
  readonly requestLog: VaultRequestRecord[] = [];

  readonly #server: http.Server;
  readonly #clock: Clock;
  readonly #maxRequestBytes: number;
  readonly #namespaces = new Map<string, NamespaceState>();
  readonly #tokens = new Map<string, TokenRecord>();
  readonly #faults: Fault[] = [];
  readonly #sockets = new Set<Socket>();
  #sealed = false;
  #healthMode: 'active' | 'standby' | 'uninitialized' = 'active';
  #rateLimitRetryAfter: number | undefined;

  private constructor(
    server: http.Server,
    url: string,
    caPem: string,
    clock: Clock,
    maxRequestBytes: number,
  ) {
    this.#server = server;
    this.url = url;
    this.caPem = caPem;
    this.#clock = clock;
    this.#maxRequestBytes = maxRequestBytes;
    this.mountKv('secret', 2);
    this.rootToken = this.addToken({
      ttlSeconds: 0,
      renewable: false,
      policies: ['root'],
      displayName: 'root',
    });
  }

  static async start(options: VaultTestServerOptions = {}): Promise<VaultTestServer> {
    const useTls = options.tls ?? true;
    let caPem = '';
    let server: http.Server;
    if (useTls) {
      const ca = options.ca ?? (await createTestCa());
      caPem = ca.certPem;
      const leaf = await issueTestServerCertificate(ca, {
        dnsNames: options.dnsNames ?? ['localhost'],
        ipAddresses: options.ipAddresses ?? ['127.0.0.1'],
      });
      server = https.createServer({ cert: leaf.certPem, key: leaf.keyPem, minVersion: 'TLSv1.2' });
    } else {
      server = http.createServer();
    }
    // Keep-alive sockets must not outlive close().
    server.keepAliveTimeout = 5000;
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    const instance = new VaultTestServer(
      server,
      `${useTls ? 'https' : 'http'}://127.0.0.1:${port}`,
      caPem,
      options.clock ?? systemClock,
      options.maxRequestBytes ?? 32 * 1024 * 1024,
    );
    instance.#attach();
    return instance;
  }

  // ---------------------------------------------------------------- control methods

  /** Mounts a KV engine at `path` (e.g. `secret`, `kv/team`) in a namespace. */
  mountKv(path: string, version: KvVersion, namespace = ''): void {
    this.#ns(namespace).mounts.set(path.replace(/^\/+|\/+$/g, ''), {
      version,
      v1: new Map(),
      v2: new Map(),
    });
  }

  /** Writes a KV entry; for KV v2 it adds a version and returns its number (1 for KV v1). */
  setKv(mount: string, path: string, data: Record<string, unknown>, namespace = ''): number {
    const kv = this.#mount(mount, namespace);
    if (kv.version === 1) {
      kv.v1.set(path, { ...data });
      return 1;
    }
    return this.#writeV2(kv, path, data);
  }

  /** Soft-deletes one version of a KV v2 entry (Vault's POST delete/…). */
  deleteVersion(mount: string, path: string, version: number, namespace = ''): void {
    const v = this.#v2Version(mount, path, version, namespace);
    v.deletionTime = this.#now().toISOString();
  }

  /** Destroys one version of a KV v2 entry: its data is gone for good. */
  destroyVersion(mount: string, path: string, version: number, namespace = ''): void {
    const v = this.#v2Version(mount, path, version, namespace);
    v.destroyed = true;
    v.data = null;
  }

  addToken(options: TokenOptions = {}): string {
    return this.#issueToken({ ...options, path: 'auth/token/create', meta: {} }).id;
  }

  revokeToken(token: string): void {
    const record = this.#tokens.get(token);
    if (record) record.revoked = true;
  }

  /** Makes a token expire now (by the server's clock). */
  expireToken(token: string): void {
    const record = this.#tokens.get(token);
    if (record) record.expiresAt = this.#now().getTime();
  }

  /** Remaining TTL in seconds by the server's clock; undefined for unknown tokens, 0 for non-expiring. */
  tokenTtl(token: string): number | undefined {
    const record = this.#tokens.get(token);
    if (!record) return undefined;
    return record.expiresAt === undefined
      ? 0
      : Math.max(0, Math.floor((record.expiresAt - this.#now().getTime()) / 1000));
  }

  tokenState(token: string): 'valid' | 'revoked' | 'expired' | 'unknown' {
    const record = this.#tokens.get(token);
    if (!record) return 'unknown';
    if (record.revoked) return 'revoked';
    return record.expiresAt !== undefined && this.#now().getTime() >= record.expiresAt
      ? 'expired'
      : 'valid';
  }

  /** Every token id the server has issued (to grep logs for them). */
  issuedTokens(): string[] {
    return [...this.#tokens.keys()];
  }

  /** Tokens issued by logins (not by addToken), newest last. */
  loginTokens(): string[] {
    return [...this.#tokens.values()].filter((t) => t.path.endsWith('/login')).map((t) => t.id);
  }

  addKubernetesRole(options: {
    role: string;
    jwt: string;
    mount?: string;
    namespace?: string;
    policies?: readonly string[];
    ttlSeconds?: number;
    maxTtlSeconds?: number;
    renewable?: boolean;
    deny?: readonly string[];
  }): void {
    const mount = options.mount ?? 'kubernetes';
    const roles = this.#authTable(this.#ns(options.namespace ?? '').kubernetes, mount);
    const existing = roles.get(options.role);
    if (existing) {
      existing.jwts.add(options.jwt);
      return;
    }
    roles.set(options.role, { ...this.#grant(options), jwts: new Set([options.jwt]) });
  }

  addAppRole(options: {
    roleId: string;
    secretId: string;
    mount?: string;
    namespace?: string;
    policies?: readonly string[];
    ttlSeconds?: number;
    maxTtlSeconds?: number;
    renewable?: boolean;
    deny?: readonly string[];
  }): void {
    const roles = this.#authTable(
      this.#ns(options.namespace ?? '').approle,
      options.mount ?? 'approle',
    );
    const existing = roles.get(options.roleId);
    if (existing) {
      existing.secretIds.add(options.secretId);
      return;
    }
    roles.set(options.roleId, { ...this.#grant(options), secretIds: new Set([options.secretId]) });
  }

  /** Invalidates one AppRole secret ID (as `secret-id/destroy` would). */
  destroyAppRoleSecretId(
    roleId: string,
    secretId: string,
    mount = 'approle',
    namespace = '',
  ): void {
    this.#ns(namespace).approle.get(mount)?.get(roleId)?.secretIds.delete(secretId);
  }

  seal(): void {
    this.#sealed = true;
  }

  unseal(): void {
    this.#sealed = false;
  }

  setHealthMode(mode: 'active' | 'standby' | 'uninitialized'): void {
    this.#healthMode = mode;
  }

  /** While set, every API answers 429 with this Retry-After; undefined turns it off. */
  setRateLimited(retryAfterSeconds: number | undefined): void {
    this.#rateLimitRetryAfter = retryAfterSeconds;
  }

  /**
   * The next `count` requests (whose API path contains `pathContains`, if given) answer
   * `status` with Vault's error body — or, with status 0, lose their connection unanswered,
   * or, with status -1, are never answered at all (until close()).
   */
  failNext(
    status: number,
    count = 1,
    options: { retryAfterSeconds?: number; pathContains?: string; errors?: string[] } = {},
  ): void {
    this.#faults.push({
      status,
      remaining: count,
      retryAfterSeconds: options.retryAfterSeconds,
      pathContains: options.pathContains,
      errors: options.errors,
    });
  }

  /** Logged requests whose API path contains `fragment` (all when omitted). */
  requests(fragment?: string): VaultRequestRecord[] {
    return fragment === undefined
      ? [...this.requestLog]
      : this.requestLog.filter((r) => r.apiPath.includes(fragment));
  }

  clearLog(): void {
    this.requestLog.length = 0;
  }

  async close(): Promise<void> {
    await new Promise<void>((resolve) => {
      this.#server.close(() => resolve());
      for (const socket of this.#sockets) socket.destroy();
    });
  }

  // ---------------------------------------------------------------- plumbing

  #attach(): void {
    this.#server.on('connection', (socket: Socket) => {
      this.#sockets.add(socket);
      socket.on('close', () => this.#sockets.delete(socket));
    });
    this.#server.on('request', (req: http.IncomingMessage, res: http.ServerResponse) => {
      res.on('error', () => undefined);
      const chunks: Buffer[] = [];
      let size = 0;
      let tooLarge = false;
      req.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (size > this.#maxRequestBytes) tooLarge = true;
        else chunks.push(chunk);
      });
      req.on('end', () => {
        const headers: Record<string, string> = {};
        for (const [k, v] of Object.entries(req.headers))
          if (v !== undefined) headers[k] = Array.isArray(v) ? v.join(', ') : v;
        const input: HandlerInput = {
          method: req.method ?? 'GET',
          url: req.url ?? '/',
          headers,
          body: Buffer.concat(chunks),
          servername: (req.socket as TLSSocket).servername || undefined,
        };
        const output: HandlerOutput = tooLarge
          ? { kind: 'reply', status: 413, body: { errors: ['http: request body too large'] } }
          : this.#handle(input);
        if (output.kind === 'drop') {
          req.socket.destroy();
          return;
        }
        if (output.kind === 'stall') return;
        const payload = output.body === undefined ? '' : JSON.stringify(output.body);
        res.writeHead(output.status, {
          'cache-control': 'no-store',
          ...(payload === '' ? {} : { 'content-type': 'application/json' }),
          'content-length': Buffer.byteLength(payload),
          ...(output.headers ?? {}),
        });
        res.end(payload);
      });
    });
    // Node's HTTP parser rejects the LIST verb; answer it by hand on the raw socket.
    this.#server.on(
      'clientError',
      (err: NodeJS.ErrnoException & { rawPacket?: Buffer }, socket: Socket) => {
        const raw = err.rawPacket?.toString('latin1') ?? '';
        if (err.code === 'HPE_INVALID_METHOD' && raw.startsWith('LIST ')) {
          const [head = ''] = raw.split('\r\n\r\n');
          const [requestLine = '', ...headerLines] = head.split('\r\n');
          const headers: Record<string, string> = {};
          for (const line of headerLines) {
            const colon = line.indexOf(':');
            if (colon > 0)
              headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
          }
          const output = this.#handle({
            method: 'LIST',
            url: requestLine.split(' ')[1] ?? '/',
            headers,
            body: Buffer.alloc(0),
            servername: (socket as TLSSocket).servername || undefined,
          });
          if (output.kind !== 'reply') {
            socket.destroy();
            return;
          }
          const payload = output.body === undefined ? '' : JSON.stringify(output.body);
          const reason = http.STATUS_CODES[output.status] ?? 'Status';
          const extra = Object.entries(output.headers ?? {})
            .map(([k, v]) => `${k}: ${v}\r\n`)
            .join('');
          socket.end(
            `HTTP/1.1 ${output.status} ${reason}\r\nContent-Type: application/json\r\nCache-Control: no-store\r\n` +
              `${extra}Content-Length: ${Buffer.byteLength(payload)}\r\nConnection: close\r\n\r\n${payload}`,
          );
          return;
        }
        if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n');
        else socket.destroy();
      },
    );
  }

  #now(): Date {
    return this.#clock.now();
  }

  #ns(name: string): NamespaceState {
    const key = normaliseNamespace(name);
    let state = this.#namespaces.get(key);
    if (!state) {
      state = { mounts: new Map(), kubernetes: new Map(), approle: new Map() };
      this.#namespaces.set(key, state);
    }
    return state;
  }

  #mount(mount: string, namespace: string): KvMount {
    const kv = this.#ns(namespace).mounts.get(mount.replace(/^\/+|\/+$/g, ''));
    if (!kv) throw new TypeError(`no KV mount ${mount} in namespace "${namespace}"`);
    return kv;
  }

  #v2Version(mount: string, path: string, version: number, namespace: string): KvV2Version {
    const kv = this.#mount(mount, namespace);
    const v = kv.v2.get(path)?.versions.get(version);
    if (!v) throw new TypeError(`no version ${version} of ${mount}/${path}`);
    return v;
  }

  #authTable<T>(tables: Map<string, Map<string, T>>, mount: string): Map<string, T> {
    let table = tables.get(mount);
    if (!table) {
      table = new Map();
      tables.set(mount, table);
    }
    return table;
  }

  #grant(options: {
    policies?: readonly string[];
    ttlSeconds?: number;
    maxTtlSeconds?: number;
    renewable?: boolean;
    deny?: readonly string[];
  }): LoginGrant {
    return {
      policies: options.policies ?? ['default'],
      ttlSeconds: options.ttlSeconds ?? 3600,
      maxTtlSeconds: options.maxTtlSeconds,
      renewable: options.renewable ?? true,
      deny: options.deny ?? [],
    };
  }

  #issueToken(options: TokenOptions & { path: string; meta: Record<string, string> }): TokenRecord {
    const now = this.#now().getTime();
    const ttlSeconds = options.ttlSeconds ?? 3600;
    const record: TokenRecord = {
      id: options.id ?? `hvs.${randomBytes(18).toString('base64url')}`,
      accessor: randomBytes(12).toString('base64url'),
      namespace: normaliseNamespace(options.namespace),
      policies: options.policies ?? ['default'],
      deny: options.deny ?? [],
      createdAt: now,
      ttlSeconds,
      expiresAt: ttlSeconds > 0 ? now + ttlSeconds * 1000 : undefined,
      maxExpiresAt:
        options.maxTtlSeconds === undefined ? undefined : now + options.maxTtlSeconds * 1000,
      renewable: options.renewable ?? ttlSeconds > 0,
      revoked: false,
      displayName: options.displayName ?? 'token',
      path: options.path,
      meta: options.meta,
    };
    this.#tokens.set(record.id, record);
    return record;
  }

  #writeV2(kv: KvMount, path: string, data: Record<string, unknown>): number {
    const now = this.#now().toISOString();
    let entry = kv.v2.get(path);
    if (!entry) {
      entry = { versions: new Map(), currentVersion: 0, createdTime: now, updatedTime: now };
      kv.v2.set(path, entry);
    }
    entry.currentVersion += 1;
    entry.updatedTime = now;
    entry.versions.set(entry.currentVersion, {
      data: structuredClone(data),
      createdTime: now,
      deletionTime: '',
      destroyed: false,
    });
    return entry.currentVersion;
  }

  // ---------------------------------------------------------------- request handling

  #envelope(fields: {
    data?: unknown;
    auth?: unknown;
    warnings?: string[] | null;
    leaseDuration?: number;
    mountType?: string;
  }): Record<string, unknown> {
    return {
      request_id: randomUUID(),
      lease_id: '',
      renewable: false,
      lease_duration: fields.leaseDuration ?? 0,
      data: fields.data ?? null,
      wrap_info: null,
      warnings: fields.warnings ?? null,
      auth: fields.auth ?? null,
      mount_type: fields.mountType ?? '',
    };
  }

  #error(status: number, errors: readonly string[] = []): HandlerOutput {
    return { kind: 'reply', status, body: { errors } };
  }

  #reply(status: number, body?: unknown, headers?: Record<string, string>): HandlerOutput {
    return {
      kind: 'reply',
      status,
      ...(body === undefined ? {} : { body }),
      ...(headers === undefined ? {} : { headers }),
    };
  }

  #handle(input: HandlerInput): HandlerOutput {
    const url = new URL(input.url, 'http://vault.invalid');
    const query: Record<string, string> = {};
    url.searchParams.forEach((v, k) => (query[k] = v));
    let apiPath: string;
    try {
      apiPath = decodeURIComponent(url.pathname.replace(/^\/v1\/?/, ''));
    } catch {
      apiPath = url.pathname;
    }
    const namespace = normaliseNamespace(input.headers['x-vault-namespace']);
    const record: VaultRequestRecord = {
      method: input.method,
      path: url.pathname,
      apiPath,
      query,
      headers: input.headers,
      namespace,
      servername: input.servername,
      status: 0,
      at: this.#now().getTime(),
    };
    this.requestLog.push(record);
    const output = this.#route(input, url, apiPath, query, namespace);
    record.status = output.kind === 'reply' ? output.status : output.kind === 'drop' ? 0 : -1;
    return output;
  }

  #route(
    input: HandlerInput,
    url: URL,
    apiPath: string,
    query: Record<string, string>,
    namespace: string,
  ): HandlerOutput {
    const fault = this.#faults.find(
      (f) => f.remaining > 0 && (f.pathContains === undefined || apiPath.includes(f.pathContains)),
    );
    if (fault) {
      fault.remaining -= 1;
      if (fault.status === 0) return { kind: 'drop' };
      if (fault.status === -1) return { kind: 'stall' };
      const errors =
        fault.errors ??
        (fault.status === 429
          ? ['rate limit quota exceeded']
          : fault.status === 503
            ? ['Vault is sealed']
            : ['internal error']);
      return this.#reply(
        fault.status,
        { errors },
        fault.retryAfterSeconds === undefined
          ? undefined
          : { 'retry-after': String(fault.retryAfterSeconds) },
      );
    }
    if (this.#rateLimitRetryAfter !== undefined) {
      return this.#reply(
        429,
        { errors: ['rate limit quota exceeded'] },
        { 'retry-after': String(this.#rateLimitRetryAfter) },
      );
    }
    if (!url.pathname.startsWith('/v1/')) return this.#error(404);
    if (apiPath === 'sys/health') return this.#health(query);
    if (apiPath === 'sys/seal-status') return this.#reply(200, this.#sealStatus());
    if (this.#sealed) return this.#error(503, ['Vault is sealed']);

    let body: Record<string, unknown> = {};
    if (input.body.length > 0) {
      try {
        const parsed: unknown = JSON.parse(input.body.toString('utf8'));
        if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed))
          throw new Error('not an object');
        body = parsed as Record<string, unknown>;
      } catch (err) {
        return this.#error(400, [`failed to parse JSON input: ${(err as Error).message}`]);
      }
    }
    const method = input.method === 'GET' && query.list === 'true' ? 'LIST' : input.method;

    const login = /^auth\/(.+)\/login$/.exec(apiPath);
    if (login && (method === 'POST' || method === 'PUT'))
      return this.#login(login[1] as string, body, namespace);

    // Everything else needs a token valid in this namespace.
    const tokenId =
      input.headers['x-vault-token'] ??
      /^Bearer\s+(.+)$/i.exec(input.headers.authorization ?? '')?.[1];
    const token = tokenId === undefined ? undefined : this.#tokens.get(tokenId);
    const now = this.#now().getTime();
    if (
      token === undefined ||
      token.revoked ||
      (token.expiresAt !== undefined && now >= token.expiresAt) ||
      token.namespace !== namespace
    ) {
      return this.#error(403, ['permission denied']);
    }
    if (token.deny.some((pattern) => matchesPattern(pattern, apiPath)))
      return this.#error(403, ['permission denied']);

    if (apiPath.startsWith('auth/token/'))
      return this.#tokenSelf(apiPath.slice('auth/token/'.length), method, body, token);
    return this.#kv(apiPath, method, body, query, namespace);
  }

  #health(query: Record<string, string>): HandlerOutput {
    const body = {
      initialized: this.#healthMode !== 'uninitialized',
      sealed: this.#sealed,
      standby: this.#healthMode === 'standby',
      performance_standby: false,
      replication_performance_mode: 'disabled',
      replication_dr_mode: 'disabled',
      server_time_utc: Math.floor(this.#now().getTime() / 1000),
      version: '1.17.0',
      cluster_name: 'vault-cluster-test',
      cluster_id: '00000000-0000-4000-8000-000000000000',
    };
    const code = (name: string, fallback: number): number =>
      query[name] !== undefined && /^\d{3}$/.test(query[name] as string)
        ? Number(query[name])
        : fallback;
    let status: number;
    if (this.#healthMode === 'uninitialized') status = code('uninitcode', 501);
    else if (this.#sealed) status = code('sealedcode', 503);
    else if (this.#healthMode === 'standby')
      status = query.standbyok === 'true' ? code('activecode', 200) : code('standbycode', 429);
    else status = code('activecode', 200);
    return this.#reply(status, body);
  }

  #sealStatus(): Record<string, unknown> {
    return {
      type: 'shamir',
      initialized: this.#healthMode !== 'uninitialized',
      sealed: this.#sealed,
      t: 1,
      n: 1,
      progress: 0,
      nonce: '',
      version: '1.17.0',
      build_date: '2024-06-10T10:11:34Z',
      migration: false,
      recovery_seal: false,
      storage_type: 'inmem',
    };
  }

  #login(mount: string, body: Record<string, unknown>, namespace: string): HandlerOutput {
    const state = this.#ns(namespace);
    const kubernetes = state.kubernetes.get(mount);
    const approle = state.approle.get(mount);
    let grant: LoginGrant | undefined;
    let meta: Record<string, string> = {};
    if (kubernetes) {
      if (typeof body.role !== 'string' || body.role === '')
        return this.#error(400, ['missing role']);
      if (typeof body.jwt !== 'string' || body.jwt === '') return this.#error(400, ['missing jwt']);
      const role = kubernetes.get(body.role);
      if (!role) return this.#error(400, [`invalid role name "${body.role}"`]);
      if (!role.jwts.has(body.jwt)) return this.#error(403, ['permission denied']);
      grant = role;
      meta = { role: body.role, service_account_name: 'app', service_account_namespace: 'default' };
    } else if (approle) {
      if (typeof body.role_id !== 'string' || body.role_id === '')
        return this.#error(400, ['missing role_id']);
      const role = approle.get(body.role_id);
      if (!role || typeof body.secret_id !== 'string' || !role.secretIds.has(body.secret_id)) {
        return this.#error(400, ['invalid role or secret ID']);
      }
      grant = role;
      meta = { role_name: 'approle-role' };
    } else {
      return this.#error(404, [
        `no handler for route "auth/${mount}/login". route entry not found.`,
      ]);
    }
    const token = this.#issueToken({
      namespace,
      policies: grant.policies,
      ttlSeconds: grant.ttlSeconds,
      ...(grant.maxTtlSeconds === undefined ? {} : { maxTtlSeconds: grant.maxTtlSeconds }),
      renewable: grant.renewable,
      deny: grant.deny,
      path: `auth/${mount}/login`,
      meta,
      displayName: `${mount}-login`,
    });
    return this.#reply(200, this.#envelope({ auth: this.#authBlock(token) }));
  }

  #authBlock(token: TokenRecord): Record<string, unknown> {
    return {
      client_token: token.id,
      accessor: token.accessor,
      policies: token.policies,
      token_policies: token.policies,
      metadata: token.meta,
      lease_duration: this.#remaining(token),
      renewable: token.renewable,
      entity_id: '',
      token_type: 'service',
      orphan: true,
      mfa_requirement: null,
      num_uses: 0,
    };
  }

  #remaining(token: TokenRecord): number {
    return token.expiresAt === undefined
      ? 0
      : Math.max(0, Math.floor((token.expiresAt - this.#now().getTime()) / 1000));
  }

  #tokenSelf(
    operation: string,
    method: string,
    body: Record<string, unknown>,
    token: TokenRecord,
  ): HandlerOutput {
    if (operation === 'lookup-self' && (method === 'GET' || method === 'POST')) {
      return this.#reply(
        200,
        this.#envelope({
          data: {
            accessor: token.accessor,
            creation_time: Math.floor(token.createdAt / 1000),
            creation_ttl: token.ttlSeconds,
            display_name: token.displayName,
            entity_id: '',
            expire_time:
              token.expiresAt === undefined ? null : new Date(token.expiresAt).toISOString(),
            explicit_max_ttl:
              token.maxExpiresAt === undefined
                ? 0
                : Math.floor((token.maxExpiresAt - token.createdAt) / 1000),
            id: token.id,
            issue_time: new Date(token.createdAt).toISOString(),
            meta: token.meta,
            num_uses: 0,
            orphan: true,
            path: token.path,
            policies: token.policies,
            renewable: token.renewable,
            ttl: this.#remaining(token),
            type: 'service',
          },
        }),
      );
    }
    if (operation === 'renew-self' && (method === 'POST' || method === 'PUT')) {
      if (!token.renewable || token.expiresAt === undefined)
        return this.#error(400, ['token is not renewable']);
      const increment = parseDurationSeconds(body.increment);
      if (body.increment !== undefined && increment === undefined)
        return this.#error(400, ['invalid increment']);
      const now = this.#now().getTime();
      let expiresAt =
        now + (increment !== undefined && increment > 0 ? increment : token.ttlSeconds) * 1000;
      const warnings: string[] = [];
      if (token.maxExpiresAt !== undefined && expiresAt > token.maxExpiresAt) {
        expiresAt = token.maxExpiresAt;
        warnings.push(
          'TTL of requested increment exceeded the effective max_ttl; TTL value is capped accordingly',
        );
      }
      token.expiresAt = expiresAt;
      return this.#reply(
        200,
        this.#envelope({
          auth: this.#authBlock(token),
          warnings: warnings.length > 0 ? warnings : null,
        }),
      );
    }
    if (operation === 'revoke-self' && (method === 'POST' || method === 'PUT')) {
      token.revoked = true;
      return this.#reply(204);
    }
    return this.#error(405, ['unsupported operation']);
  }

  #kv(
    apiPath: string,
    method: string,
    body: Record<string, unknown>,
    query: Record<string, string>,
    namespace: string,
  ): HandlerOutput {
    const state = this.#ns(namespace);
    const normalised = apiPath.replace(/\/+$/, '');
    let mountPath: string | undefined;
    for (const candidate of state.mounts.keys()) {
      if (
        (normalised === candidate || normalised.startsWith(`${candidate}/`)) &&
        (mountPath === undefined || candidate.length > mountPath.length)
      ) {
        mountPath = candidate;
      }
    }
    if (mountPath === undefined)
      return this.#error(404, [`no handler for route "${apiPath}". route entry not found.`]);
    const kv = state.mounts.get(mountPath) as KvMount;
    const rest = normalised.slice(mountPath.length).replace(/^\//, '');
    return kv.version === 1
      ? this.#kvV1(kv, rest, method, body)
      : this.#kvV2(kv, rest, method, body, query);
  }

  #kvV1(kv: KvMount, path: string, method: string, body: Record<string, unknown>): HandlerOutput {
    switch (method) {
      case 'GET': {
        const data = kv.v1.get(path);
        if (!data) return this.#error(404);
        return this.#reply(
          200,
          this.#envelope({ data, leaseDuration: KV_V1_LEASE_SECONDS, mountType: 'kv' }),
        );
      }
      case 'LIST': {
        const keys = listChildren(kv.v1.keys(), path);
        return keys.length === 0
          ? this.#error(404)
          : this.#reply(200, this.#envelope({ data: { keys }, mountType: 'kv' }));
      }
      case 'POST':
      case 'PUT':
        if (path === '') return this.#error(405, ['unsupported operation']);
        kv.v1.set(path, body);
        return this.#reply(204);
      case 'DELETE':
        kv.v1.delete(path);
        return this.#reply(204);
      default:
        return this.#error(405, ['unsupported operation']);
    }
  }

  #metadataOf(version: number, v: KvV2Version): Record<string, unknown> {
    return {
      created_time: v.createdTime,
      custom_metadata: null,
      deletion_time: v.deletionTime,
      destroyed: v.destroyed,
      version,
    };
  }

  #kvV2(
    kv: KvMount,
    rest: string,
    method: string,
    body: Record<string, unknown>,
    query: Record<string, string>,
  ): HandlerOutput {
    const slash = rest.indexOf('/');
    const area = slash === -1 ? rest : rest.slice(0, slash);
    const path = slash === -1 ? '' : rest.slice(slash + 1);
    switch (area) {
      case 'data':
        return this.#kvV2Data(kv, path, method, body, query);
      case 'metadata':
        return this.#kvV2Metadata(kv, path, method);
      case 'delete':
      case 'undelete':
      case 'destroy': {
        if (method !== 'POST' && method !== 'PUT')
          return this.#error(405, ['unsupported operation']);
        const entry = kv.v2.get(path);
        const versions = Array.isArray(body.versions)
          ? body.versions.filter((n): n is number => Number.isInteger(n))
          : [];
        if (versions.length === 0) return this.#error(400, ['no version number provided']);
        for (const n of versions) {
          const v = entry?.versions.get(n);
          if (!v || v.destroyed) continue;
          if (area === 'delete') v.deletionTime = this.#now().toISOString();
          else if (area === 'undelete') v.deletionTime = '';
          else {
            v.destroyed = true;
            v.data = null;
          }
        }
        return this.#reply(204);
      }
      default:
        return this.#reply(404, this.#envelope({ warnings: [NOT_VERSIONED_WARNING] }));
    }
  }

  #kvV2Data(
    kv: KvMount,
    path: string,
    method: string,
    body: Record<string, unknown>,
    query: Record<string, string>,
  ): HandlerOutput {
    switch (method) {
      case 'GET': {
        const entry = kv.v2.get(path);
        if (!entry) return this.#error(404);
        const requested = query.version === undefined ? 0 : Number(query.version);
        if (!Number.isInteger(requested) || requested < 0)
          return this.#error(400, ['invalid version']);
        const number = requested === 0 ? entry.currentVersion : requested;
        const v = entry.versions.get(number);
        if (!v) return this.#error(404);
        const metadata = this.#metadataOf(number, v);
        if (v.destroyed || v.deletionTime !== '') {
          return this.#reply(
            404,
            this.#envelope({ data: { data: null, metadata }, mountType: 'kv' }),
          );
        }
        return this.#reply(
          200,
          this.#envelope({ data: { data: v.data, metadata }, mountType: 'kv' }),
        );
      }
      case 'POST':
      case 'PUT': {
        if (path === '') return this.#error(405, ['unsupported operation']);
        const data = body.data;
        if (typeof data !== 'object' || data === null || Array.isArray(data))
          return this.#error(400, ['no data provided']);
        const options = (body.options ?? {}) as { cas?: unknown };
        const current = kv.v2.get(path)?.currentVersion ?? 0;
        if (options.cas !== undefined && options.cas !== current) {
          return this.#error(400, ['check-and-set parameter did not match the current version']);
        }
        const number = this.#writeV2(kv, path, data as Record<string, unknown>);
        const v = kv.v2.get(path)?.versions.get(number) as KvV2Version;
        return this.#reply(
          200,
          this.#envelope({ data: this.#metadataOf(number, v), mountType: 'kv' }),
        );
      }
      case 'DELETE': {
        const entry = kv.v2.get(path);
        const v = entry?.versions.get(entry.currentVersion);
        if (v && !v.destroyed) v.deletionTime = this.#now().toISOString();
        return this.#reply(204);
      }
      default:
        return this.#error(405, ['unsupported operation']);
    }
  }

  #kvV2Metadata(kv: KvMount, path: string, method: string): HandlerOutput {
    switch (method) {
      case 'LIST': {
        const keys = listChildren(kv.v2.keys(), path);
        return keys.length === 0
          ? this.#error(404)
          : this.#reply(200, this.#envelope({ data: { keys }, mountType: 'kv' }));
      }
      case 'GET': {
        const entry = kv.v2.get(path);
        if (!entry) return this.#error(404);
        const versions: Record<string, unknown> = {};
        for (const [n, v] of entry.versions) {
          versions[String(n)] = {
            created_time: v.createdTime,
            deletion_time: v.deletionTime,
            destroyed: v.destroyed,
          };
        }
        return this.#reply(
          200,
          this.#envelope({
            data: {
              cas_required: false,
              created_time: entry.createdTime,
              current_version: entry.currentVersion,
              custom_metadata: null,
              delete_version_after: '0s',
              max_versions: 0,
              oldest_version: 0,
              updated_time: entry.updatedTime,
              versions,
            },
            mountType: 'kv',
          }),
        );
      }
      case 'DELETE':
        kv.v2.delete(path);
        return this.#reply(204);
      default:
        return this.#error(405, ['unsupported operation']);
    }
  }
}
