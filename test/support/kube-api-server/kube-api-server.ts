import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer, type Server } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import { KubeConfig } from '@kubernetes/client-node';
import { parse as parseYaml, stringify as stringifyYaml } from 'yaml';
import {
  isAllowed,
  serviceAccountReview,
  type AccessRequest,
  type ServiceAccountTokenInput,
  type TokenIdentity,
  type TokenReviewEntry,
} from './access.js';
import { ObjectStore, metadataOf, type StoreEvent } from './object-store.js';
import { clone, isObject, type Json, type JsonObject } from './patch.js';
import { ResourceService, type WriteOptions } from './resource-service.js';
import {
  ResourceRegistry,
  apiVersionOf,
  defineResource,
  type KubeVerb,
  type ResourceType,
  type ResourceTypeInput,
} from './resources.js';
import {
  fieldsMatch,
  labelsMatch,
  parseFieldSelector,
  parseLabelSelector,
  pinnedName,
  type FieldSelector,
  type LabelSelector,
} from './selectors.js';
import {
  StatusError,
  badRequest,
  expired,
  forbidden,
  internalError,
  methodNotAllowed,
  pathNotFound,
  requestEntityTooLarge,
  statusForCode,
  success,
  unauthorized,
} from './status.js';
import { createServingMaterial, type ServingMaterial } from './tls.js';

export interface KubeApiServerOptions {
  /** Watch-cache history length; older resourceVersions get 410 Expired. Default 1000 events. */
  readonly historyLimit?: number;
  /** How often watches that asked for bookmarks get one. Default 1000 ms. */
  readonly bookmarkIntervalMs?: number;
  /** Watch lifetime when the client sends no timeoutSeconds. Default 1800 s, as the real server's minimum. */
  readonly defaultWatchTimeoutSeconds?: number;
  /** The API server's own audiences (TokenReview without spec.audiences). */
  readonly apiAudiences?: readonly string[];
  /** Namespaces that exist at start. Default: default, kube-system, kube-public, kube-node-lease. */
  readonly namespaces?: readonly string[];
  /** Time source for creationTimestamp / managedFields. */
  readonly now?: () => Date;
  /** Token of a cluster-admin identity; random when omitted. */
  readonly adminToken?: string;
  /** Extra resource types (CRDs) besides the built-ins. */
  readonly resources?: readonly ResourceTypeInput[];
}

/** One request as the server saw it. Tokens are never recorded. */
export interface KubeRequestRecord {
  readonly at: Date;
  readonly method: string;
  readonly path: string;
  readonly query: Readonly<Record<string, string>>;
  readonly contentType: string | undefined;
  user?: string;
  verb?: KubeVerb;
  group?: string;
  resource?: string;
  namespace?: string;
  name?: string;
  watch: boolean;
  status?: number;
  fault?: 'fail' | 'hang';
}

export interface FailureInjection {
  /** HTTP status to answer with (429, 500, 503, 504, ...), body a matching Status. */
  readonly status: number;
  /** How many matching requests fail. Default 1. */
  readonly count?: number;
  /** Seconds for the Retry-After header (and details.retryAfterSeconds on 429). */
  readonly retryAfter?: number;
  /** Only requests whose path starts with this string (or matches this RegExp). */
  readonly path?: string | RegExp;
  readonly method?: string;
  readonly message?: string;
}

export interface HangOptions {
  readonly path?: string | RegExp;
  readonly method?: string;
}

export interface HangHandle {
  /** Requests currently held. */
  readonly held: number;
  /** Stop holding: held requests are then answered normally. */
  release(): void;
}

interface PendingFailure {
  readonly injection: FailureInjection;
  remaining: number;
}

interface ActiveHang {
  readonly options: HangOptions;
  readonly waiters: Set<() => void>;
}

interface ActiveWatch {
  readonly rt: ResourceType;
  readonly namespace: string | undefined;
  readonly labels: LabelSelector;
  readonly fields: FieldSelector;
  readonly bookmarks: boolean;
  readonly res: ServerResponse;
  end(): void;
}

interface Route {
  readonly rt: ResourceType;
  readonly namespace: string | undefined;
  readonly name: string | undefined;
  readonly subresource: string | undefined;
  readonly watchPrefix: boolean;
}

const MAX_BODY_BYTES = 3 * 1024 * 1024;
const CONTROL_MANAGER = 'kube-api-test-server';
const ANONYMOUS_PATHS = new Set(['/version', '/healthz', '/livez', '/readyz']);
const VERSION_INFO = {
  major: '1',
  minor: '31',
  gitVersion: 'v1.31.0',
  gitCommit: '9edcffcde5595e8a5b1a35f88c421764e575afce',
  gitTreeState: 'clean',
  buildDate: '2024-08-13T07:28:49Z',
  goVersion: 'go1.22.5',
  compiler: 'gc',
  platform: 'linux/amd64',
};

function matchesPath(matcher: string | RegExp | undefined, path: string): boolean {
  if (matcher === undefined) return true;
  return typeof matcher === 'string' ? path.startsWith(matcher) : matcher.test(path);
}

function truthy(value: string | undefined): boolean {
  return value === 'true' || value === '1';
}

/** Go's %q of a []string: ["a" "b"]. */
function goStringList(values: readonly string[]): string {
  return `[${values.map((v) => JSON.stringify(v)).join(' ')}]`;
}

/**
 * A wire-faithful Kubernetes API server for tests: HTTPS with its own CA, bearer tokens with
 * an RBAC-shaped table, the real paths, Status error bodies, resourceVersion conflicts,
 * PATCH in all four content types, watches with bookmarks and 410 Expired, TokenReview, and
 * fault injection. Clients talk to it through the real @kubernetes/client-node.
 */
export class KubeApiServer {
  readonly caPem: string;
  readonly adminToken: string;
  readonly registry: ResourceRegistry;
  /** Every request, in arrival order (tokens never recorded). */
  readonly requests: KubeRequestRecord[] = [];
  /** In-process control of the stored objects. */
  readonly store: ControlStore;

  readonly #server: Server;
  readonly #objects: ObjectStore;
  readonly #service: ResourceService;
  readonly #now: () => Date;
  readonly #tokens = new Map<string, TokenIdentity>();
  readonly #reviews = new Map<string, TokenReviewEntry>();
  readonly #apiAudiences: readonly string[];
  readonly #bookmarkIntervalMs: number;
  readonly #defaultWatchTimeoutSeconds: number;
  readonly #sockets = new Set<Socket>();
  readonly #watches = new Set<ActiveWatch>();
  readonly #failures: PendingFailure[] = [];
  readonly #hangs: ActiveHang[] = [];
  #port = 0;
  #listening = false;

  private constructor(material: ServingMaterial, options: KubeApiServerOptions) {
    this.caPem = material.caPem;
    this.#now = options.now ?? (() => new Date());
    this.#apiAudiences = options.apiAudiences ?? ['https://kubernetes.default.svc.cluster.local'];
    this.#bookmarkIntervalMs = options.bookmarkIntervalMs ?? 1000;
    this.#defaultWatchTimeoutSeconds = options.defaultWatchTimeoutSeconds ?? 1800;
    this.registry = new ResourceRegistry();
    for (const input of options.resources ?? []) this.registry.register(defineResource(input));
    this.#objects = new ObjectStore(options.historyLimit ?? 1000);
    this.#service = new ResourceService(this.#objects, this.#now, this.registry);
    this.store = new ControlStore(this.registry, this.#service, this.#objects);
    this.adminToken = options.adminToken ?? `admin-${randomBytes(16).toString('hex')}`;
    this.#tokens.set(this.adminToken, {
      username: 'kubernetes-admin',
      groups: ['system:masters', 'system:authenticated'],
      rules: 'all',
    });
    for (const ns of options.namespaces ?? [
      'default',
      'kube-system',
      'kube-public',
      'kube-node-lease',
    ]) {
      this.store.put({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns } });
    }
    this.#server = createServer({ cert: material.certPem, key: material.keyPem }, (req, res) => {
      this.#handle(req, res).catch((err: unknown) => {
        if (!res.headersSent) this.#sendStatus(res, internalError((err as Error).message));
        else res.destroy();
      });
    });
    this.#server.on('connection', (socket: Socket) => {
      this.#sockets.add(socket);
      socket.on('close', () => this.#sockets.delete(socket));
    });
  }

  /** Start on 127.0.0.1 with an ephemeral port. */
  static async start(options: KubeApiServerOptions = {}): Promise<KubeApiServer> {
    const server = new KubeApiServer(await createServingMaterial(), options);
    await server.#listen(0);
    return server;
  }

  get port(): number {
    return this.#port;
  }

  get url(): string {
    return `https://127.0.0.1:${this.#port}`;
  }

  get listening(): boolean {
    return this.#listening;
  }

  /** Watches currently streaming. */
  get activeWatchCount(): number {
    return this.#watches.size;
  }

  // ---- identities -------------------------------------------------------------------------

  /** Let `token` call the API as `identity` (rules 'all' = cluster-admin). */
  addToken(token: string, identity: TokenIdentity): void {
    if (token === '') throw new TypeError('token must not be empty');
    this.#tokens.set(token, identity);
  }

  removeToken(token: string): void {
    this.#tokens.delete(token);
  }

  /** What a TokenReview of `token` answers. */
  addTokenReview(token: string, entry: TokenReviewEntry): void {
    if (token === '') throw new TypeError('token must not be empty');
    this.#reviews.set(token, entry);
  }

  removeTokenReview(token: string): void {
    this.#reviews.delete(token);
  }

  /** A projected service-account token bound to a pod (username, groups and pod extras as the real server sets them). */
  addServiceAccountToken(token: string, input: ServiceAccountTokenInput): void {
    this.addTokenReview(token, serviceAccountReview(input));
  }

  // ---- client configuration ---------------------------------------------------------------

  /** A KubeConfig for the real client, trusting this server's CA and sending `token`. */
  kubeConfig(token: string = this.adminToken, options: { namespace?: string } = {}): KubeConfig {
    const kc = new KubeConfig();
    kc.loadFromOptions({
      clusters: [
        {
          name: 'kube-api-test-server',
          server: this.url,
          caData: Buffer.from(this.caPem).toString('base64'),
          skipTLSVerify: false,
        },
      ],
      users: [{ name: 'test-user', token }],
      contexts: [
        {
          name: 'test',
          cluster: 'kube-api-test-server',
          user: 'test-user',
          ...(options.namespace ? { namespace: options.namespace } : {}),
        },
      ],
      currentContext: 'test',
    });
    return kc;
  }

  /** The same as a kubeconfig file's YAML, for code that loads a path. */
  kubeconfigYaml(token: string = this.adminToken, options: { namespace?: string } = {}): string {
    return stringifyYaml({
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [
        {
          name: 'kube-api-test-server',
          cluster: {
            server: this.url,
            'certificate-authority-data': Buffer.from(this.caPem).toString('base64'),
          },
        },
      ],
      users: [{ name: 'test-user', user: { token } }],
      contexts: [
        {
          name: 'test',
          context: {
            cluster: 'kube-api-test-server',
            user: 'test-user',
            ...(options.namespace ? { namespace: options.namespace } : {}),
          },
        },
      ],
      'current-context': 'test',
    });
  }

  // ---- fault injection --------------------------------------------------------------------

  /** The next `count` matching requests answer `status` with a Status body (and Retry-After when given). */
  failNext(injection: FailureInjection): void {
    const count = injection.count ?? 1;
    if (!Number.isInteger(count) || count < 1)
      throw new TypeError('count must be a positive integer');
    this.#failures.push({ injection, remaining: count });
  }

  /** Matching requests are accepted and held unanswered until release(). */
  hang(options: HangOptions = {}): HangHandle {
    const hang: ActiveHang = { options, waiters: new Set() };
    this.#hangs.push(hang);
    return {
      get held() {
        return hang.waiters.size;
      },
      release: () => {
        const index = this.#hangs.indexOf(hang);
        if (index >= 0) this.#hangs.splice(index, 1);
        for (const resume of [...hang.waiters]) resume();
        hang.waiters.clear();
      },
    };
  }

  /** Forget pending failNext injections and release every hang. */
  clearFaults(): void {
    this.#failures.length = 0;
    for (const hang of this.#hangs.splice(0)) {
      for (const resume of hang.waiters) resume();
      hang.waiters.clear();
    }
  }

  /** End every open watch stream cleanly (as a server-side timeout or a restarting apiserver does). */
  dropWatches(): void {
    for (const w of [...this.#watches]) w.end();
  }

  /** Forget the watch history: the next watch from any older resourceVersion gets 410 Expired. */
  expireHistory(): void {
    this.#objects.expireHistory();
  }

  /** Send a bookmark now to every watch that asked for them. */
  sendBookmarks(): void {
    for (const w of this.#watches)
      if (w.bookmarks) this.#writeEvent(w, 'BOOKMARK', this.#bookmarkObject(w.rt));
  }

  clearRequests(): void {
    this.requests.length = 0;
  }

  /** Stop answering: close the listener and cut every connection. The stored objects stay. */
  async stop(): Promise<void> {
    if (!this.#listening) return;
    this.#listening = false;
    this.dropWatches();
    const closed = once(this.#server, 'close');
    this.#server.close();
    for (const socket of this.#sockets) socket.destroy();
    await closed;
  }

  /** Listen again on the same port. */
  async restart(): Promise<void> {
    if (this.#listening) return;
    await this.#listen(this.#port);
  }

  async close(): Promise<void> {
    this.clearFaults();
    await this.stop();
  }

  async #listen(port: number): Promise<void> {
    this.#server.listen(port, '127.0.0.1');
    await once(this.#server, 'listening');
    this.#port = (this.#server.address() as AddressInfo).port;
    this.#listening = true;
  }

  // ---- request handling -------------------------------------------------------------------

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'https://127.0.0.1');
    const query = Object.fromEntries(url.searchParams.entries());
    const method = (req.method ?? 'GET').toUpperCase();
    const record: KubeRequestRecord = {
      at: new Date(), // wall-clock arrival, even when object timestamps come from a test clock
      method,
      path: url.pathname,
      query,
      contentType: req.headers['content-type'],
      watch: truthy(query.watch),
    };
    this.requests.push(record);
    res.on('finish', () => {
      record.status = res.statusCode;
    });

    const hang = this.#hangs.find(
      (h) =>
        (h.options.method === undefined || h.options.method === method) &&
        matchesPath(h.options.path, url.pathname),
    );
    if (hang) {
      record.fault = 'hang';
      await new Promise<void>((resume) => {
        hang.waiters.add(resume);
        res.on('close', () => {
          hang.waiters.delete(resume);
        });
      });
      if (res.destroyed || res.writableEnded) return;
    }

    const failure = this.#failures.find(
      (f) =>
        (f.injection.method === undefined || f.injection.method === method) &&
        matchesPath(f.injection.path, url.pathname),
    );
    if (failure) {
      failure.remaining -= 1;
      if (failure.remaining <= 0) this.#failures.splice(this.#failures.indexOf(failure), 1);
      record.fault = 'fail';
      req.resume();
      this.#sendStatus(
        res,
        statusForCode(
          failure.injection.status,
          failure.injection.message,
          failure.injection.retryAfter,
        ),
      );
      return;
    }

    try {
      const identity = this.#authenticate(req.headers.authorization);
      if (!identity && !ANONYMOUS_PATHS.has(url.pathname)) throw unauthorized();
      if (identity) record.user = identity.username;
      if (this.#serveNonResource(url.pathname, res)) return;
      const route = this.#route(url.pathname);
      await this.#serveResource(req, res, method, route, query, identity as TokenIdentity, record);
    } catch (err) {
      if (err instanceof StatusError) {
        req.resume();
        if (!res.headersSent) this.#sendStatus(res, err);
        return;
      }
      throw err;
    }
  }

  #authenticate(header: string | undefined): TokenIdentity | undefined {
    if (header === undefined) return undefined;
    const match = /^Bearer\s+(.+)$/i.exec(header.trim());
    if (!match) return undefined;
    return this.#tokens.get(match[1] as string);
  }

  #serveNonResource(path: string, res: ServerResponse): boolean {
    if (path === '/healthz' || path === '/livez' || path === '/readyz') {
      res.writeHead(200, { 'Content-Type': 'text/plain; charset=utf-8' });
      res.end('ok');
      return true;
    }
    if (path === '/version') return this.#sendJson(res, 200, VERSION_INFO);
    if (path === '/api') {
      return this.#sendJson(res, 200, {
        kind: 'APIVersions',
        versions: ['v1'],
        serverAddressByClientCIDRs: [
          { clientCIDR: '0.0.0.0/0', serverAddress: `127.0.0.1:${this.#port}` },
        ],
      });
    }
    if (path === '/apis') {
      return this.#sendJson(res, 200, {
        kind: 'APIGroupList',
        apiVersion: 'v1',
        groups: this.registry.groups().map((g) => this.#groupDocument(g)),
      });
    }
    const groupOnly = /^\/apis\/([^/]+)\/?$/.exec(path);
    if (groupOnly) {
      const group = groupOnly[1] as string;
      if (!this.registry.groups().includes(group)) throw pathNotFound();
      return this.#sendJson(res, 200, {
        kind: 'APIGroup',
        apiVersion: 'v1',
        ...this.#groupDocument(group),
      });
    }
    const resourceList = /^\/(?:api\/(v1)|apis\/([^/]+)\/([^/]+))\/?$/.exec(path);
    if (resourceList) {
      const group = resourceList[2] ?? '';
      const version = resourceList[1] ?? (resourceList[3] as string);
      const types = this.registry.all().filter((t) => t.group === group && t.version === version);
      if (types.length === 0) throw pathNotFound();
      return this.#sendJson(res, 200, {
        kind: 'APIResourceList',
        apiVersion: 'v1',
        groupVersion: group === '' ? version : `${group}/${version}`,
        resources: types.map((t) => ({
          name: t.resource,
          singularName: t.singularName,
          namespaced: t.namespaced,
          kind: t.kind,
          verbs: t.verbs,
        })),
      });
    }
    return false;
  }

  #groupDocument(group: string): JsonObject {
    const versions = this.registry
      .versionsOf(group)
      .map((v) => ({ groupVersion: `${group}/${v}`, version: v }));
    return { name: group, versions, preferredVersion: versions[0] as JsonObject };
  }

  #route(path: string): Route {
    const segments = path
      .split('/')
      .filter((s) => s !== '')
      .map((s) => decodeURIComponent(s));
    let group: string;
    let version: string;
    let rest: string[];
    if (segments[0] === 'api' && segments[1] === 'v1') {
      group = '';
      version = 'v1';
      rest = segments.slice(2);
    } else if (segments[0] === 'apis' && segments.length >= 3) {
      group = segments[1] as string;
      version = segments[2] as string;
      rest = segments.slice(3);
    } else {
      throw pathNotFound();
    }
    let watchPrefix = false;
    if (rest[0] === 'watch') {
      watchPrefix = true;
      rest = rest.slice(1);
    }
    const namespacedType =
      rest[0] === 'namespaces' && rest.length >= 3
        ? this.registry.find(group, version, rest[2] as string)
        : undefined;
    if (namespacedType?.namespaced) {
      if (rest.length > 5) throw pathNotFound();
      return {
        rt: namespacedType,
        namespace: rest[1],
        name: rest[3],
        subresource: rest[4],
        watchPrefix,
      };
    }
    const rt = rest[0] === undefined ? undefined : this.registry.find(group, version, rest[0]);
    if (!rt || rest.length > 3) throw pathNotFound();
    if (rt.namespaced && rest.length > 1) throw pathNotFound();
    return { rt, namespace: undefined, name: rest[1], subresource: rest[2], watchPrefix };
  }

  async #serveResource(
    req: IncomingMessage,
    res: ServerResponse,
    method: string,
    route: Route,
    query: Record<string, string>,
    identity: TokenIdentity,
    record: KubeRequestRecord,
  ): Promise<void> {
    const { rt, namespace, name } = route;
    if (route.subresource !== undefined) throw pathNotFound();
    const watch = route.watchPrefix || truthy(query.watch);
    let verb: KubeVerb;
    switch (method) {
      case 'GET':
        verb = name !== undefined ? (watch ? 'watch' : 'get') : watch ? 'watch' : 'list';
        break;
      case 'POST':
        if (name !== undefined || (rt.namespaced && namespace === undefined))
          throw methodNotAllowed();
        verb = 'create';
        break;
      case 'PUT':
        if (name === undefined) throw methodNotAllowed();
        verb = 'update';
        break;
      case 'PATCH':
        if (name === undefined) throw methodNotAllowed();
        verb = 'patch';
        break;
      case 'DELETE':
        verb = name === undefined ? 'deletecollection' : 'delete';
        if (verb === 'deletecollection' && rt.namespaced && namespace === undefined)
          throw methodNotAllowed();
        break;
      default:
        throw methodNotAllowed();
    }
    if (!rt.verbs.includes(verb)) throw methodNotAllowed();

    const labels = parseLabelSelector(query.labelSelector);
    const fieldNames = [
      'metadata.name',
      ...(rt.namespaced ? ['metadata.namespace'] : []),
      ...rt.extraFieldSelectors,
    ];
    let fields = parseFieldSelector(query.fieldSelector, fieldNames);
    if (verb === 'watch' && name !== undefined)
      fields = [...fields, { field: 'metadata.name', op: '=', value: name }];
    const authzName =
      name ?? (verb === 'list' || verb === 'watch' ? pinnedName(fields) : undefined);

    Object.assign(record, { verb, group: rt.group, resource: rt.resource, namespace, name });
    const authorize = (v: KubeVerb): void => {
      const request: AccessRequest = {
        verb: v,
        group: rt.group,
        resource: rt.resource,
        namespace,
        name: v === 'create' && verb !== 'create' ? name : authzName,
      };
      if (!isAllowed(identity, request))
        throw forbidden(rt, request.name, identity.username, v, namespace);
    };
    authorize(verb);

    const dryRun = query.dryRun === 'All';
    const fieldManager =
      query.fieldManager ??
      (req.headers['user-agent'] ?? 'unknown').split('/')[0]?.slice(0, 128) ??
      'unknown';
    const writeOptions: WriteOptions = {
      fieldManager,
      dryRun,
      authorizeCreate: () => authorize('create'),
    };

    switch (verb) {
      case 'get':
        this.#sendJson(res, 200, this.#service.get(rt, namespace, name as string));
        return;
      case 'list':
        this.#sendJson(res, 200, this.#listDocument(rt, namespace, labels, fields, query));
        return;
      case 'watch':
        this.#serveWatch(req, res, rt, namespace, labels, fields, query);
        return;
      case 'create': {
        const body = await this.#readJsonBody(req);
        if (rt.virtual) {
          this.#sendJson(res, 201, this.#tokenReview(body));
          return;
        }
        const created = this.#service.create(rt, namespace, body, writeOptions);
        this.#sendJson(res, 201, created.object);
        return;
      }
      case 'update': {
        const body = await this.#readJsonBody(req);
        const result = this.#service.update(rt, namespace, name as string, body, writeOptions);
        this.#sendJson(res, result.created ? 201 : 200, result.object);
        return;
      }
      case 'patch': {
        const raw = await this.#readBody(req);
        const isApply =
          (req.headers['content-type'] ?? '').split(';')[0]?.trim() ===
          'application/apply-patch+yaml';
        // Apply never falls back to the User-Agent: the manager must be named.
        if (isApply && (query.fieldManager === undefined || query.fieldManager === ''))
          throw badRequest('fieldManager is required for apply requests');
        const result = this.#service.patch(
          rt,
          namespace,
          name as string,
          req.headers['content-type'] ?? '',
          raw,
          {
            ...writeOptions,
            force: truthy(query.force),
          },
        );
        this.#sendJson(res, result.created ? 201 : 200, result.object);
        return;
      }
      case 'delete': {
        const raw = await this.#readBody(req);
        let options: JsonObject = {};
        try {
          if (raw.trim() !== '') options = JSON.parse(raw) as JsonObject;
        } catch (err) {
          throw badRequest(`couldn't decode DeleteOptions: ${(err as Error).message}`);
        }
        const preconditions = isObject(options.preconditions)
          ? (options.preconditions as { uid?: string; resourceVersion?: string })
          : undefined;
        const deleted = this.#service.delete(rt, namespace, name as string, {
          dryRun: dryRun || options.dryRun !== undefined,
          ...(preconditions ? { preconditions } : {}),
        });
        if (rt.custom || rt.resource === 'pods' || rt.resource === 'namespaces') {
          this.#sendJson(res, 200, deleted);
        } else {
          const meta = metadataOf(deleted);
          this.#sendJson(
            res,
            200,
            success({
              name: meta.name as string,
              ...(rt.group ? { group: rt.group } : {}),
              kind: rt.resource,
              uid: meta.uid as string,
            }),
          );
        }
        return;
      }
      case 'deletecollection': {
        await this.#readBody(req);
        const doomed = this.#service
          .list(rt, namespace)
          .filter((o) => this.#matches(o, labels, fields));
        const items = doomed.map((o) =>
          this.#service.delete(rt, namespace, metadataOf(o).name as string, { dryRun }),
        );
        this.#sendJson(res, 200, {
          kind: rt.listKind,
          apiVersion: apiVersionOf(rt),
          metadata: { resourceVersion: String(this.#objects.currentRv) },
          items,
        });
        return;
      }
    }
  }

  #matches(obj: JsonObject, labels: LabelSelector, fields: FieldSelector): boolean {
    return (
      labelsMatch(labels, metadataOf(obj).labels as Record<string, string> | undefined) &&
      fieldsMatch(fields, obj)
    );
  }

  #listDocument(
    rt: ResourceType,
    namespace: string | undefined,
    labels: LabelSelector,
    fields: FieldSelector,
    query: Record<string, string>,
  ): JsonObject {
    const all = this.#service.list(rt, namespace).filter((o) => this.#matches(o, labels, fields));
    const currentRv = String(this.#objects.currentRv);
    let start = 0;
    let listRv = currentRv;
    if (query.continue) {
      let token: { rv?: string; start?: string };
      try {
        token = JSON.parse(Buffer.from(query.continue, 'base64url').toString('utf8')) as {
          rv?: string;
          start?: string;
        };
      } catch {
        throw badRequest('continue key is not valid: illegal base64 data');
      }
      if (Number(token.rv) < this.#objects.historyStartRv) {
        throw new StatusError(
          expired(
            'The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter, or use the continue token in this response to retrieve the remainder of the results. Continuing with the provided token results in an inconsistent list - objects that were created, modified, or deleted between the time the first chunk was returned and now may show up in the list.',
          ),
        );
      }
      listRv = String(token.rv);
      start = all.findIndex(
        (o) =>
          `${String(metadataOf(o).namespace ?? '')}/${String(metadataOf(o).name)}` >
          String(token.start),
      );
      if (start < 0) start = all.length;
    }
    const limit = query.limit ? Number(query.limit) : 0;
    const page = limit > 0 ? all.slice(start, start + limit) : all.slice(start);
    const metadata: JsonObject = { resourceVersion: listRv };
    if (limit > 0 && start + limit < all.length) {
      const last = page[page.length - 1] as JsonObject;
      metadata.continue = Buffer.from(
        JSON.stringify({
          rv: listRv,
          start: `${String(metadataOf(last).namespace ?? '')}/${String(metadataOf(last).name)}`,
        }),
      ).toString('base64url');
      metadata.remainingItemCount = all.length - start - limit;
    }
    // Typed (built-in) lists carry no kind/apiVersion per item; CRD lists do.
    const items = page.map((o) => {
      if (rt.custom) return o;
      const { kind: _k, apiVersion: _a, ...rest } = o;
      void _k;
      void _a;
      return rest as JsonObject;
    });
    return { kind: rt.listKind, apiVersion: apiVersionOf(rt), metadata, items };
  }

  #bookmarkObject(rt: ResourceType, annotations?: Record<string, string>): JsonObject {
    const metadata: JsonObject = {
      resourceVersion: String(this.#objects.currentRv),
      creationTimestamp: null,
    };
    if (annotations) metadata.annotations = annotations;
    return { kind: rt.kind, apiVersion: apiVersionOf(rt), metadata };
  }

  #writeEvent(w: ActiveWatch, type: string, object: Json): void {
    if (w.res.writableEnded || w.res.destroyed) return;
    w.res.write(`${JSON.stringify({ type, object })}\n`);
  }

  #serveWatch(
    req: IncomingMessage,
    res: ServerResponse,
    rt: ResourceType,
    namespace: string | undefined,
    labels: LabelSelector,
    fields: FieldSelector,
    query: Record<string, string>,
  ): void {
    const rvParam = query.resourceVersion ?? '';
    if (rvParam !== '' && !/^\d+$/.test(rvParam))
      throw badRequest(`invalid resource version: ${rvParam}`);
    const timeoutSeconds = query.timeoutSeconds
      ? Number(query.timeoutSeconds)
      : this.#defaultWatchTimeoutSeconds;
    const bookmarks = truthy(query.allowWatchBookmarks);
    const sendInitialEvents = truthy(query.sendInitialEvents);

    res.writeHead(200, {
      'Content-Type': 'application/json',
      'Cache-Control': 'no-cache, private',
    });
    res.flushHeaders();
    req.resume();

    const timers: NodeJS.Timeout[] = [];
    let unsubscribe: () => void = () => undefined;
    const watch: ActiveWatch = {
      rt,
      namespace,
      labels,
      fields,
      bookmarks,
      res,
      end: () => {
        cleanup();
        if (!res.writableEnded) res.end();
      },
    };
    const cleanup = (): void => {
      for (const t of timers) clearTimeout(t);
      timers.length = 0;
      unsubscribe();
      this.#watches.delete(watch);
    };
    res.on('close', cleanup);

    const deliver = (event: StoreEvent): void => {
      if (event.rt !== rt) return;
      const meta = metadataOf(event.object);
      if (namespace !== undefined && meta.namespace !== namespace) return;
      const nowMatches = this.#matches(event.object, labels, fields);
      if (event.type === 'MODIFIED') {
        const beforeMatched =
          event.oldObject !== undefined && this.#matches(event.oldObject, labels, fields);
        if (nowMatches && beforeMatched) this.#writeEvent(watch, 'MODIFIED', event.object);
        else if (nowMatches) this.#writeEvent(watch, 'ADDED', event.object);
        else if (beforeMatched) this.#writeEvent(watch, 'DELETED', event.object);
      } else if (nowMatches) {
        this.#writeEvent(watch, event.type, event.object);
      }
    };

    if (rvParam === '' || rvParam === '0' || sendInitialEvents) {
      for (const obj of this.#service.list(rt, namespace))
        if (this.#matches(obj, labels, fields)) this.#writeEvent(watch, 'ADDED', obj);
      if (sendInitialEvents && bookmarks) {
        this.#writeEvent(
          watch,
          'BOOKMARK',
          this.#bookmarkObject(rt, { 'k8s.io/initial-events-end': 'true' }),
        );
      }
    } else {
      const since = Number(rvParam);
      const events = this.#objects.eventsAfter(since);
      if (events === undefined) {
        this.#writeEvent(
          watch,
          'ERROR',
          expired(
            `too old resource version: ${since} (${this.#objects.historyStartRv + 1})`,
          ) as unknown as Json,
        );
        watch.end();
        return;
      }
      for (const e of events) deliver(e);
    }

    unsubscribe = this.#objects.subscribe(deliver);
    this.#watches.add(watch);
    timers.push(setTimeout(() => watch.end(), Math.max(0, timeoutSeconds) * 1000));
    if (bookmarks) {
      const tick = (): void => {
        this.#writeEvent(watch, 'BOOKMARK', this.#bookmarkObject(rt));
        timers.push(setTimeout(tick, this.#bookmarkIntervalMs));
      };
      timers.push(setTimeout(tick, this.#bookmarkIntervalMs));
    }
  }

  #tokenReview(body: unknown): JsonObject {
    if (!isObject(body) || !isObject(body.spec)) throw badRequest('TokenReview needs a spec');
    const spec = body.spec;
    const token = typeof spec.token === 'string' ? spec.token : '';
    const requested =
      Array.isArray(spec.audiences) && spec.audiences.length > 0
        ? (spec.audiences as string[])
        : [...this.#apiAudiences];
    const entry = this.#reviews.get(token);
    let status: JsonObject;
    if (token === '' || !entry) {
      status = { user: {}, error: '[invalid bearer token, token lookup failed]' };
    } else if (entry.error !== undefined) {
      status = { user: {}, error: entry.error };
    } else {
      const tokenAudiences = entry.audiences ?? this.#apiAudiences;
      const intersection = requested.filter((a) => tokenAudiences.includes(a));
      if (intersection.length === 0) {
        status = {
          user: {},
          error: `[invalid bearer token, token audiences ${goStringList(tokenAudiences)} is invalid for the target audiences ${goStringList(requested)}]`,
        };
      } else {
        const user: JsonObject = { username: entry.username };
        if (entry.uid !== undefined) user.uid = entry.uid;
        if (entry.groups !== undefined) user.groups = [...entry.groups];
        if (entry.extra !== undefined) user.extra = clone(entry.extra) as unknown as JsonObject;
        // `authenticated` is omitempty on the wire: present only when true.
        status = { authenticated: true, user, audiences: intersection };
      }
    }
    return {
      kind: 'TokenReview',
      apiVersion: 'authentication.k8s.io/v1',
      metadata: { creationTimestamp: null },
      spec: clone(spec),
      status,
    };
  }

  async #readBody(req: IncomingMessage): Promise<string> {
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of req) {
      size += (chunk as Buffer).length;
      if (size > MAX_BODY_BYTES) throw requestEntityTooLarge(MAX_BODY_BYTES);
      chunks.push(chunk as Buffer);
    }
    return Buffer.concat(chunks).toString('utf8');
  }

  async #readJsonBody(req: IncomingMessage): Promise<unknown> {
    const raw = await this.#readBody(req);
    const type = (req.headers['content-type'] ?? 'application/json').split(';')[0]?.trim();
    try {
      return type === 'application/yaml'
        ? (parseYaml(raw) as unknown)
        : (JSON.parse(raw) as unknown);
    } catch (err) {
      throw badRequest(`couldn't get version/kind; json parse error: ${(err as Error).message}`);
    }
  }

  #sendJson(res: ServerResponse, code: number, body: unknown): true {
    const text = JSON.stringify(body);
    res.writeHead(code, {
      'Content-Type': 'application/json',
      'Content-Length': Buffer.byteLength(text),
    });
    res.end(text);
    return true;
  }

  #sendStatus(res: ServerResponse, err: StatusError): void {
    const text = JSON.stringify(err.status);
    res.writeHead(err.status.code, {
      ...err.headers,
      'Content-Type': 'application/json',
      'Content-Length': Buffer.byteLength(text),
    });
    res.end(text);
  }
}

/**
 * In-process control of what the server stores, for arranging tests: writes skip
 * authorisation, resourceVersion checks and NamespaceLifecycle (a missing namespace is
 * created), but get the same defaulting, validation, metadata and watch events as API writes.
 */
export class ControlStore {
  readonly #registry: ResourceRegistry;
  readonly #service: ResourceService;
  readonly #objects: ObjectStore;

  constructor(registry: ResourceRegistry, service: ResourceService, objects: ObjectStore) {
    this.#registry = registry;
    this.#service = service;
    this.#objects = objects;
  }

  /** Create or replace an object named by its apiVersion/kind; returns it as stored. */
  put(object: Record<string, unknown>): JsonObject {
    const body = clone(object) as JsonObject;
    const rt = this.#registry.byKind(String(body.apiVersion), String(body.kind));
    const meta = (isObject(body.metadata) ? body.metadata : {}) as JsonObject;
    body.metadata = meta;
    const name = meta.name;
    if (typeof name !== 'string' || name === '')
      throw new TypeError('store.put needs metadata.name');
    let namespace: string | undefined;
    if (rt.namespaced) {
      namespace =
        typeof meta.namespace === 'string' && meta.namespace !== '' ? meta.namespace : 'default';
      meta.namespace = namespace;
      const nsType = this.#registry.resolve('namespaces');
      if (!this.#service.exists(nsType, undefined, namespace))
        this.put({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: namespace } });
    }
    const options: WriteOptions = { fieldManager: CONTROL_MANAGER, control: true };
    delete meta.resourceVersion;
    return this.#service.exists(rt, namespace, name)
      ? this.#service.update(rt, namespace, name, body, options).object
      : this.#service.create(rt, namespace, body, options).object;
  }

  get(resource: string, namespace: string | undefined, name: string): JsonObject | undefined {
    const rt = this.#registry.resolve(resource);
    return this.#service.exists(rt, rt.namespaced ? namespace : undefined, name)
      ? this.#service.get(rt, rt.namespaced ? namespace : undefined, name)
      : undefined;
  }

  list(resource: string, namespace?: string): JsonObject[] {
    return this.#service.list(this.#registry.resolve(resource), namespace);
  }

  /** Returns false when there was nothing to delete. */
  delete(resource: string, namespace: string | undefined, name: string): boolean {
    const rt = this.#registry.resolve(resource);
    const ns = rt.namespaced ? namespace : undefined;
    if (!this.#service.exists(rt, ns, name)) return false;
    this.#service.delete(rt, ns, name);
    return true;
  }

  /** The current global resourceVersion. */
  get resourceVersion(): string {
    return String(this.#objects.currentRv);
  }
}
