import { Watch, type KubeConfig } from '@kubernetes/client-node';
import { systemClock, type Clock } from './clock.js';
import { classifyKubeError, type KubeCallFailure } from './kube-client.js';
import type { Logger } from './logger.js';

/**
 * A list-then-watch mirror of one Kubernetes collection (client-go's reflector + store), for
 * any resource, keyed by `namespace/name` (or `name` for cluster-scoped objects).
 *
 * - The first successful list makes it `hasSynced` for good, as a client-go informer.
 * - A watch that ends cleanly, or fails, is resumed from the last resourceVersion seen (with
 *   bounded, jittered backoff after failures); only a 410 Expired forces a fresh list, which
 *   replaces the whole mirror (deletions missed meanwhile disappear with it).
 * - `connected` is false from a failed list/watch until the next one is established, and
 *   `disconnectedForMs()` says for how long, so a user can refuse to answer from a mirror
 *   that has not heard from the API server for too long.
 * - Objects are reduced by `project` as they arrive, so the mirror holds only what its user
 *   reads (a cluster's pods are many; their specs are large).
 * - Two choices differ between users, so they are options: whether subscribers hear only real
 *   changes (`equals`), and whether a failed watch is resumed or followed by a fresh list
 *   (`relistAfterWatchFailure`).
 */

/** One page of a list call, normalised from what client-node returns. */
export interface ReflectorListPage {
  readonly items: readonly unknown[];
  readonly resourceVersion: string;
  /** The continue token for the next page; undefined or '' on the last page. */
  readonly continueToken: string | undefined;
}

export type ReflectorEvent<T> =
  | { readonly type: 'upsert'; readonly key: string; readonly value: T }
  | { readonly type: 'delete'; readonly key: string; readonly value: T }
  /** The mirror was replaced by a fresh list. */
  | { readonly type: 'relist' };

export interface KubeReflectorOptions<T> {
  readonly kubeConfig: KubeConfig;
  /** For logs: "pods", "configurations.dapr.io". */
  readonly name: string;
  /** The collection path a watch reads, e.g. `/api/v1/pods`. */
  readonly watchPath: string;
  /**
   * Extra watch parameters, e.g. the `labelSelector` / `fieldSelector` the list uses too, so
   * that the watch sees the same set as the list.
   */
  readonly watchQuery?: Readonly<Record<string, string>>;
  /** Lists one page (the caller passes `limit` and `continue` through its typed client). */
  readonly listPage: (continueToken: string | undefined) => Promise<ReflectorListPage>;
  /** What is kept of an object; null skips it. */
  readonly project: (object: unknown) => T | null;
  readonly logger: Logger;
  /** Reads "now" for HTTP-date Retry-After values only; durations use the monotonic clock. */
  readonly clock?: Clock;
  /** Server-side lifetime of one watch request (default 5-6 minutes, jittered). */
  readonly watchTimeoutSeconds?: number;
  /** A watch request that has not been answered within this is abandoned (default 10 s). */
  readonly watchConnectTimeoutMs?: number;
  /** Jitter source in [0, 1) (default Math.random). */
  readonly random?: () => number;
  /** Backoff bounds after failures (defaults 100 ms .. 5 s). */
  readonly backoffBaseMs?: number;
  readonly backoffCapMs?: number;
  /** Start of every log message (default "kubernetes cache"), so each user's lines stay its own. */
  readonly logLabel?: string;
  /**
   * When given, subscribers hear only real changes: an ADDED or MODIFIED object whose value
   * equals the one held is stored silently, and a re-list reports each difference from the
   * mirror it replaces (upsert and delete events, before its 'relist' event), since the watch
   * that was lost never delivered them. Without it every watch event is reported and a re-list
   * says only 'relist'.
   */
  readonly equals?: (a: T, b: T) => boolean;
  /**
   * After a failed or expired watch, stay disconnected until a fresh list succeeds, and get
   * that list rather than resume the watch from the last resourceVersion. For a user that
   * answers only from a mirror it knows to be complete and reads through to the API meanwhile
   * (the Kubernetes secret store). Default false: a failed watch is resumed after backoff, and
   * the mirror stays connected while a 410 is re-listed.
   */
  readonly relistAfterWatchFailure?: boolean;
}

type WatchOutcome = 'closed' | 'expired' | 'error';

/** A watch that ends sooner than this counts as a failure, so a server closing at once is not hammered. */
const MIN_HEALTHY_WATCH_MS = 1_000;
/** Extra silence tolerated past the watch's own timeout before it is presumed dead (half-open TCP). */
const WATCH_IDLE_GRACE_MS = 30_000;

interface ObjectMeta {
  readonly name?: unknown;
  readonly namespace?: unknown;
  readonly resourceVersion?: unknown;
}

function metadataOf(object: unknown): ObjectMeta | undefined {
  if (object === null || typeof object !== 'object') return undefined;
  const metadata = (object as { metadata?: unknown }).metadata;
  return metadata !== null && typeof metadata === 'object' ? (metadata as ObjectMeta) : undefined;
}

/** `namespace/name`, or `name` for cluster-scoped objects; undefined when the object has no name. */
export function reflectorKey(object: unknown): string | undefined {
  const meta = metadataOf(object);
  if (typeof meta?.name !== 'string' || meta.name.length === 0) return undefined;
  return typeof meta.namespace === 'string' && meta.namespace.length > 0
    ? `${meta.namespace}/${meta.name}`
    : meta.name;
}

function failureLabel(failure: KubeCallFailure): string | number {
  return failure.kind === 'status' ? failure.code : failure.kind;
}

export class KubeReflector<T> {
  readonly #options: KubeReflectorOptions<T>;
  readonly #clock: Clock;
  readonly #random: () => number;
  #entries = new Map<string, T>();
  #resourceVersion = '';
  #hasSynced = false;
  #connected = false;
  #disconnectedAtMs: number;
  #stopped = false;
  #started = false;
  #abortWatch: (() => void) | undefined;
  #wakeSleeper: (() => void) | undefined;
  #syncWaiters: Array<() => void> = [];
  #connectWaiters: Array<() => void> = [];
  #listeners = new Set<(event: ReflectorEvent<T>) => void>();
  #loop: Promise<void> | undefined;

  constructor(options: KubeReflectorOptions<T>) {
    if (!options.watchPath.startsWith('/'))
      throw new TypeError('KubeReflector watchPath must be an absolute API path');
    this.#options = options;
    this.#clock = options.clock ?? systemClock;
    this.#random = options.random ?? Math.random;
    this.#disconnectedAtMs = performance.now();
  }

  get name(): string {
    return this.#options.name;
  }

  get #logLabel(): string {
    return this.#options.logLabel ?? 'kubernetes cache';
  }

  /** True once the first list has been stored; stays true (as client-go's HasSynced). */
  get hasSynced(): boolean {
    return this.#hasSynced && !this.#stopped;
  }

  /** True while a list or watch is established with the API server. */
  get connected(): boolean {
    return this.#connected && !this.#stopped;
  }

  /**
   * 0 while connected; else how long since the connection was lost (or since construction).
   * Measured on the monotonic clock: it bounds real silence, and a test clock that jumps
   * hours (to exercise rotation) must not make a healthy cache look stale.
   */
  disconnectedForMs(): number {
    if (this.connected) return 0;
    return Math.max(0, performance.now() - this.#disconnectedAtMs);
  }

  get size(): number {
    return this.#entries.size;
  }

  get(namespace: string | undefined, name: string): T | undefined {
    return this.#entries.get(namespace ? `${namespace}/${name}` : name);
  }

  values(): T[] {
    return [...this.#entries.values()];
  }

  /** Called for every change after it is applied; returns an unsubscribe function. */
  subscribe(listener: (event: ReflectorEvent<T>) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  start(): void {
    if (this.#started) return;
    this.#started = true;
    this.#loop = this.#run();
  }

  /** Resolves once the first list is stored (or when stopped). */
  whenSynced(): Promise<void> {
    if (this.hasSynced || this.#stopped) return Promise.resolve();
    return new Promise((resolve) => this.#syncWaiters.push(resolve));
  }

  /** Resolves once `connected` (or when stopped): after the first list, or again after a loss. */
  whenConnected(): Promise<void> {
    if (this.connected || this.#stopped) return Promise.resolve();
    return new Promise((resolve) => this.#connectWaiters.push(resolve));
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    this.#connected = false;
    this.#abortWatch?.();
    this.#wakeSleeper?.();
    for (const resolve of this.#syncWaiters.splice(0)) resolve();
    for (const resolve of this.#connectWaiters.splice(0)) resolve();
    await this.#loop;
  }

  async #run(): Promise<void> {
    let failures = 0;
    let needsList = true;
    while (!this.#stopped) {
      if (needsList) {
        try {
          await this.#list();
          if (this.#stopped) return;
          needsList = false;
          failures = 0;
        } catch (err) {
          if (this.#stopped) return;
          failures += 1;
          this.#markDisconnected();
          const failure = classifyKubeError(err, this.#clock.now());
          this.#options.logger.warn(
            { resource: this.name, failure: failureLabel(failure), attempt: failures },
            failure.kind === 'status' && (failure.code === 401 || failure.code === 403)
              ? `${this.#logLabel}: list refused (check the RBAC rules of Warden's service account); retrying`
              : `${this.#logLabel}: list failed; retrying`,
          );
          await this.#sleep(this.#backoff(failures));
          continue;
        }
      }
      const startedAt = performance.now();
      const outcome = await this.#watchOnce();
      if (this.#stopped) return;
      const relistAfterFailure = this.#options.relistAfterWatchFailure === true;
      if (outcome === 'expired') {
        this.#options.logger.info(
          { resource: this.name },
          `${this.#logLabel}: watch expired (410); re-listing`,
        );
        if (relistAfterFailure) this.#markDisconnected();
        needsList = true;
        continue;
      }
      if (outcome === 'error') {
        failures += 1;
        this.#markDisconnected();
        if (relistAfterFailure) needsList = true;
        this.#options.logger.warn(
          { resource: this.name, attempt: failures },
          relistAfterFailure
            ? `${this.#logLabel}: watch failed; re-listing after backoff`
            : `${this.#logLabel}: watch failed; resuming after backoff`,
        );
        await this.#sleep(this.#backoff(failures));
        continue;
      }
      // A clean end (the watch's timeout, an API server restart): resume from the last RV.
      if (performance.now() - startedAt < MIN_HEALTHY_WATCH_MS) {
        failures += 1;
        await this.#sleep(this.#backoff(failures));
      } else {
        failures = 0;
      }
    }
  }

  async #list(): Promise<void> {
    const entries = new Map<string, T>();
    let continueToken: string | undefined;
    let resourceVersion = '';
    for (;;) {
      let page: ReflectorListPage;
      try {
        page = await this.#options.listPage(continueToken);
      } catch (err) {
        const failure = classifyKubeError(err, this.#clock.now());
        // An expired continue token: start the list again from the first page.
        if (continueToken !== undefined && failure.kind === 'status' && failure.code === 410) {
          entries.clear();
          continueToken = undefined;
          continue;
        }
        throw err;
      }
      if (this.#stopped) return;
      for (const item of page.items) {
        const key = reflectorKey(item);
        const value = key === undefined ? null : this.#options.project(item);
        if (key !== undefined && value !== null) entries.set(key, value);
      }
      if (continueToken === undefined) resourceVersion = page.resourceVersion;
      if (page.continueToken === undefined || page.continueToken === '') break;
      continueToken = page.continueToken;
    }
    const previous = this.#entries;
    this.#entries = entries;
    this.#resourceVersion = resourceVersion;
    const first = !this.#hasSynced;
    this.#hasSynced = true;
    this.#markConnected();
    this.#options.logger.info(
      { resource: this.name, objects: entries.size },
      first ? `${this.#logLabel} synced` : `${this.#logLabel} re-listed`,
    );
    for (const resolve of this.#syncWaiters.splice(0)) resolve();
    const equals = this.#options.equals;
    if (!first && equals !== undefined) this.#emitDifferences(previous, entries, equals);
    this.#emit({ type: 'relist' });
  }

  #emitDifferences(
    previous: ReadonlyMap<string, T>,
    next: ReadonlyMap<string, T>,
    equals: (a: T, b: T) => boolean,
  ): void {
    for (const [key, value] of next) {
      const before = previous.get(key);
      if (before === undefined || !equals(before, value))
        this.#emit({ type: 'upsert', key, value });
    }
    for (const [key, value] of previous)
      if (!next.has(key)) this.#emit({ type: 'delete', key, value });
  }

  #watchOnce(): Promise<WatchOutcome> {
    return new Promise<WatchOutcome>((resolve) => {
      let settled = false;
      let controller: AbortController | undefined;
      const timeoutSeconds =
        this.#options.watchTimeoutSeconds ?? 300 + Math.floor(this.#random() * 60);
      let idleTimer: NodeJS.Timeout | undefined;
      const connectTimer = setTimeout(
        () => settle('error'),
        this.#options.watchConnectTimeoutMs ?? 10_000,
      );
      const armIdle = (): void => {
        if (idleTimer) clearTimeout(idleTimer);
        idleTimer = setTimeout(() => settle('error'), timeoutSeconds * 1000 + WATCH_IDLE_GRACE_MS);
      };
      const settle = (value: WatchOutcome): void => {
        if (settled) return;
        settled = true;
        clearTimeout(connectTimer);
        if (idleTimer) clearTimeout(idleTimer);
        this.#abortWatch = undefined;
        controller?.abort();
        resolve(value);
      };
      this.#abortWatch = () => settle('closed');
      const watch = new Watch(this.#options.kubeConfig);
      watch
        .watch(
          this.#options.watchPath,
          {
            ...this.#options.watchQuery,
            resourceVersion: this.#resourceVersion,
            allowWatchBookmarks: true,
            timeoutSeconds,
          },
          (type: string, object: unknown) => {
            if (settled) return;
            armIdle();
            const ending = this.#onEvent(type, object);
            // The server ends the stream after an ERROR event anyway; stop reading now.
            if (ending !== undefined) settle(ending);
          },
          (err: unknown) => {
            if (err === null || err === undefined) return settle('closed');
            const code = (err as { statusCode?: unknown }).statusCode;
            const failure = classifyKubeError(err, this.#clock.now());
            settle(
              code === 410 || (failure.kind === 'status' && failure.code === 410)
                ? 'expired'
                : 'error',
            );
          },
        )
        .then((c) => {
          controller = c;
          if (settled || this.#stopped) {
            c.abort();
            return;
          }
          // client-node resolves once the response has arrived: the watch is established.
          clearTimeout(connectTimer);
          this.#markConnected();
          armIdle();
        })
        .catch(() => settle('error'));
    });
  }

  /** Applies one watch event; returns an outcome when the event ends this watch. */
  #onEvent(type: string, object: unknown): WatchOutcome | undefined {
    switch (type) {
      case 'ADDED':
      case 'MODIFIED': {
        const key = reflectorKey(object);
        const value = key === undefined ? null : this.#options.project(object);
        if (key !== undefined) {
          if (value === null) {
            const previous = this.#entries.get(key);
            if (previous !== undefined) {
              this.#entries.delete(key);
              this.#emit({ type: 'delete', key, value: previous });
            }
          } else {
            const previous = this.#entries.get(key);
            this.#entries.set(key, value);
            const equals = this.#options.equals;
            if (previous === undefined || equals === undefined || !equals(previous, value))
              this.#emit({ type: 'upsert', key, value });
          }
        }
        break;
      }
      case 'DELETED': {
        const key = reflectorKey(object);
        const previous = key === undefined ? undefined : this.#entries.get(key);
        if (key !== undefined && previous !== undefined) {
          this.#entries.delete(key);
          this.#emit({ type: 'delete', key, value: previous });
        }
        break;
      }
      case 'BOOKMARK':
        break;
      case 'ERROR': {
        // 410 Expired: our resourceVersion has left the server's history; anything else
        // is a failure of this watch.
        const code = (object as { code?: unknown } | null)?.code;
        return code === 410 ? 'expired' : 'error';
      }
      default:
        return undefined;
    }
    const rv = metadataOf(object)?.resourceVersion;
    if (typeof rv === 'string' && rv.length > 0) this.#resourceVersion = rv;
    return undefined;
  }

  #emit(event: ReflectorEvent<T>): void {
    for (const listener of this.#listeners) {
      try {
        listener(event);
      } catch (err) {
        this.#options.logger.error(
          { resource: this.name, err: err instanceof Error ? err.message : String(err) },
          `${this.#logLabel}: a listener threw`,
        );
      }
    }
  }

  #markConnected(): void {
    this.#connected = true;
    for (const resolve of this.#connectWaiters.splice(0)) resolve();
  }

  #markDisconnected(): void {
    if (this.#connected) this.#disconnectedAtMs = performance.now();
    this.#connected = false;
  }

  #backoff(failures: number): number {
    const base = this.#options.backoffBaseMs ?? 100;
    const cap = this.#options.backoffCapMs ?? 5_000;
    const ceiling = Math.min(cap, base * 2 ** Math.min(failures, 16));
    // "Equal jitter": at least half the ceiling, so retries never bunch at zero.
    return Math.round(ceiling / 2 + (this.#random() * ceiling) / 2);
  }

  #sleep(ms: number): Promise<void> {
    if (this.#stopped) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      const wake = (): void => done();
      function done(): void {
        clearTimeout(timer);
        resolve();
      }
      this.#wakeSleeper = wake;
    });
  }
}
