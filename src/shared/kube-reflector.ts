import { Watch, type KubeConfig } from '@kubernetes/client-node';
import { systemClock, type Clock } from './clock.js';
import { describeError } from './errors.js';
import { classifyKubeError } from './kube-client.js';
import { loopBackoffMs } from './kube-retry.js';
import { silentLogger, type Logger } from './logger.js';

/**
 * A list-then-watch mirror of a set of Kubernetes objects (a reflector, as client-go calls
 * it): list, then watch from the list's resourceVersion with bookmarks; a watch that ends
 * cleanly is resumed from the last resourceVersion seen; a 410 Expired (or any watch error)
 * forces a fresh list; failures back off exponentially with jitter. A watch that does not
 * connect within `connectTimeoutMs`, or outlives its own server-side timeout by a margin
 * (a half-open connection), is abandoned and replaced.
 */
export interface KubeObjectLike {
  readonly metadata?: {
    readonly name?: string;
    readonly namespace?: string;
    readonly resourceVersion?: string;
  };
}

export interface KubeObjectList<T> {
  readonly items: readonly T[];
  readonly metadata?: { readonly resourceVersion?: string };
}

export type ReflectorEventType = 'ADDED' | 'MODIFIED' | 'DELETED';

export interface KubeReflectorOptions<T extends KubeObjectLike> {
  readonly kubeConfig: KubeConfig;
  /** The collection's path, e.g. /api/v1/namespaces/x/secrets, /api/v1/namespaces, /api/v1/configmaps. */
  readonly path: string;
  /** Lists the collection with the same selectors (one attempt; the loop retries). */
  readonly list: () => Promise<KubeObjectList<T>>;
  readonly labelSelector?: string;
  readonly fieldSelector?: string;
  /** What is mirrored, for logs ("secret dapr-trust-bundle in namespace x"). */
  readonly description: string;
  /** After every successful (re)list: the mirror now holds exactly the listed objects. */
  readonly onSync?: () => void;
  /** After each watch event has been applied to the mirror. */
  readonly onEvent?: (type: ReflectorEventType, object: T) => void;
  readonly logger?: Logger;
  readonly clock?: Clock;
  readonly random?: () => number;
  /** Server-side lifetime of one watch request (default 300-360 s, jittered). */
  readonly watchTimeoutSeconds?: number;
  /** A watch that has not connected within this is abandoned (default 30 s). */
  readonly connectTimeoutMs?: number;
}

type WatchOutcome = 'closed' | 'expired' | 'error';

/** A watch that ends sooner than this counts as a failure, so a server that closes at once is not hammered. */
const MIN_HEALTHY_WATCH_MS = 1_000;
/** How long past its own timeoutSeconds a watch may stay open before it is presumed dead. */
const WATCH_GRACE_MS = 30_000;

export class KubeReflector<T extends KubeObjectLike> {
  readonly #options: KubeReflectorOptions<T>;
  readonly #logger: Logger;
  readonly #random: () => number;
  readonly #clock: Clock;
  #objects = new Map<string, T>();
  #resourceVersion = '';
  #synced = false;
  #everSynced = false;
  #stopped = false;
  #started = false;
  #abortWatch: (() => void) | undefined;
  #wakeSleeper: (() => void) | undefined;
  #syncWaiters: (() => void)[] = [];
  #loop: Promise<void> | undefined;
  #forceList = false;

  constructor(options: KubeReflectorOptions<T>) {
    this.#options = options;
    this.#logger = options.logger ?? silentLogger;
    this.#random = options.random ?? Math.random;
    this.#clock = options.clock ?? systemClock;
  }

  /** True while the mirror is known to be complete (after a list, until a watch fails). */
  get synced(): boolean {
    return this.#synced && !this.#stopped;
  }

  /** True once any list has succeeded (it stays true through later watch failures). */
  get hasSynced(): boolean {
    return this.#everSynced && !this.#stopped;
  }

  get description(): string {
    return this.#options.description;
  }

  /** The mirrored objects, keyed "namespace/name" (or "name" for cluster-scoped ones). */
  objects(): ReadonlyMap<string, T> {
    return this.#objects;
  }

  get(namespace: string | undefined, name: string): T | undefined {
    return this.#objects.get(keyFor(namespace, name));
  }

  start(): void {
    if (this.#started) return;
    this.#started = true;
    this.#loop = this.#run();
  }

  /** Resolves after the first successful list (or when stopped). */
  whenSynced(): Promise<void> {
    if (this.#everSynced || this.#stopped) return Promise.resolve();
    return new Promise((resolve) => this.#syncWaiters.push(resolve));
  }

  /** Forces a fresh list now (e.g. to repair a mirror a consumer has reason to doubt). */
  relist(): void {
    this.#forceList = true;
    this.#abortWatch?.();
    this.#wakeSleeper?.();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    this.#synced = false;
    this.#abortWatch?.();
    this.#wakeSleeper?.();
    for (const resolve of this.#syncWaiters.splice(0)) resolve();
    await this.#loop;
  }

  async #run(): Promise<void> {
    let failures = 0;
    let needsList = true;
    while (!this.#stopped) {
      if (this.#forceList) {
        this.#forceList = false;
        needsList = true;
      }
      if (needsList) {
        try {
          const list = await this.#options.list();
          if (this.#stopped) return;
          this.#replaceAll(list);
          needsList = false;
        } catch (err) {
          failures += 1;
          const failure = classifyKubeError(err, this.#clock.now());
          this.#logger.warn(
            {
              watching: this.description,
              failure: failure.kind === 'status' ? failure.code : failure.kind,
              attempt: failures,
            },
            'kubernetes list failed; retrying',
          );
          await this.#sleep(loopBackoffMs(failures, this.#random));
          continue;
        }
      }
      const startedAt = Date.now();
      const outcome = await this.#watchOnce();
      if (this.#stopped) return;
      if (this.#forceList) continue;
      if (outcome === 'expired') {
        this.#logger.info({ watching: this.description }, 'watch expired (410 Gone); re-listing');
        this.#synced = false;
        needsList = true;
        continue;
      }
      if (outcome === 'error') {
        this.#synced = false;
        needsList = true;
        failures += 1;
        this.#logger.warn(
          { watching: this.description, attempt: failures },
          'kubernetes watch failed; re-listing',
        );
        await this.#sleep(loopBackoffMs(failures, this.#random));
        continue;
      }
      // A clean end (server timeout, API server restart): resume from the last resourceVersion.
      if (Date.now() - startedAt < MIN_HEALTHY_WATCH_MS) {
        failures += 1;
        await this.#sleep(loopBackoffMs(failures, this.#random));
      } else {
        failures = 0;
      }
    }
  }

  #replaceAll(list: KubeObjectList<T>): void {
    const objects = new Map<string, T>();
    for (const object of list.items) {
      const name = object.metadata?.name;
      if (name) objects.set(keyFor(object.metadata?.namespace, name), object);
    }
    this.#objects = objects;
    this.#resourceVersion = list.metadata?.resourceVersion ?? '';
    this.#synced = true;
    this.#everSynced = true;
    this.#logger.debug({ watching: this.description, objects: objects.size }, 'listed');
    for (const resolve of this.#syncWaiters.splice(0)) resolve();
    this.#notify(() => this.#options.onSync?.());
  }

  #watchOnce(): Promise<WatchOutcome> {
    return new Promise<WatchOutcome>((resolve) => {
      let outcome: WatchOutcome = 'closed';
      let settled = false;
      let controller: AbortController | undefined;
      const timeoutSeconds =
        this.#options.watchTimeoutSeconds ?? 300 + Math.floor(this.#random() * 60);
      const connectTimer = setTimeout(() => {
        this.#logger.warn({ watching: this.description }, 'watch did not connect in time');
        settle('error');
      }, this.#options.connectTimeoutMs ?? 30_000);
      connectTimer.unref();
      const lifetimeTimer = setTimeout(
        () => settle('closed'),
        timeoutSeconds * 1000 + WATCH_GRACE_MS,
      );
      lifetimeTimer.unref();
      const settle = (value: WatchOutcome): void => {
        if (settled) return;
        settled = true;
        clearTimeout(connectTimer);
        clearTimeout(lifetimeTimer);
        this.#abortWatch = undefined;
        controller?.abort();
        resolve(value);
      };
      this.#abortWatch = () => settle('closed');
      const query: Record<string, string | number | boolean> = {
        allowWatchBookmarks: true,
        timeoutSeconds,
      };
      if (this.#resourceVersion) query.resourceVersion = this.#resourceVersion;
      if (this.#options.labelSelector) query.labelSelector = this.#options.labelSelector;
      if (this.#options.fieldSelector) query.fieldSelector = this.#options.fieldSelector;
      new Watch(this.#options.kubeConfig)
        .watch(
          this.#options.path,
          query,
          (type: string, object: unknown) => {
            if (settled) return;
            const ending = this.#onEvent(type, object);
            if (ending !== undefined) {
              outcome = ending;
              settle(ending);
            }
          },
          (err: unknown) => {
            if (err === null || err === undefined) return settle(outcome);
            const failure = classifyKubeError(err, this.#clock.now());
            const code = (err as { statusCode?: unknown }).statusCode;
            settle(
              code === 410 || (failure.kind === 'status' && failure.code === 410)
                ? 'expired'
                : 'error',
            );
          },
        )
        .then((c) => {
          controller = c;
          clearTimeout(connectTimer);
          // A watch abandoned while connecting is closed as soon as it has connected.
          if (settled || this.#stopped) c.abort();
        })
        .catch(() => settle('error'));
    });
  }

  /** Applies one event; returns an outcome when the event ends this watch. */
  #onEvent(type: string, raw: unknown): WatchOutcome | undefined {
    const object = raw as T & { code?: number };
    switch (type) {
      case 'ADDED':
      case 'MODIFIED':
      case 'DELETED': {
        const name = object.metadata?.name;
        if (!name) return undefined;
        const key = keyFor(object.metadata?.namespace, name);
        if (type === 'DELETED') this.#objects.delete(key);
        else this.#objects.set(key, object);
        const rv = object.metadata?.resourceVersion;
        if (rv) this.#resourceVersion = rv;
        this.#notify(() => this.#options.onEvent?.(type, object));
        return undefined;
      }
      case 'BOOKMARK': {
        const rv = object.metadata?.resourceVersion;
        if (rv) this.#resourceVersion = rv;
        return undefined;
      }
      case 'ERROR':
        // 410: our resourceVersion left the server's history; re-list.
        return object.code === 410 ? 'expired' : 'error';
      default:
        return undefined;
    }
  }

  #notify(callback: () => void): void {
    try {
      callback();
    } catch (err) {
      this.#logger.error(
        { watching: this.description, error: describeError(err) },
        'a watch listener failed',
      );
    }
  }

  #sleep(ms: number): Promise<void> {
    if (this.#stopped) return Promise.resolve();
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        this.#wakeSleeper = undefined;
        resolve();
      };
      const timer = setTimeout(done, ms);
      timer.unref();
      this.#wakeSleeper = done;
    });
  }
}

function keyFor(namespace: string | undefined, name: string): string {
  return namespace ? `${namespace}/${name}` : name;
}
