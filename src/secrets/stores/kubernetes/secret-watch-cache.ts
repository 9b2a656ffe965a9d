import { Watch, type KubeConfig, type V1Secret, type V1SecretList } from '@kubernetes/client-node';
import { classifyKubeError } from '../../../shared/kube-client.js';
import type { Clock } from '../../../shared/clock.js';
import type { Logger } from '../../../shared/logger.js';
import type { SecretData } from '../../secret-store.js';

/**
 * A list-then-watch mirror of one namespace's Secrets (a reflector, as client-go calls it).
 * It answers only while synced: after its first list, and again after every re-list. A
 * watch that ends cleanly is resumed from the last resourceVersion; a 410 Expired or any
 * error forces a fresh list, and until that list succeeds the cache is not synced, so the
 * store reads through to the API rather than serve something that may be stale.
 */
export interface SecretWatchCacheOptions {
  readonly kubeConfig: KubeConfig;
  readonly namespace: string;
  readonly list: () => Promise<V1SecretList>;
  readonly logger: Logger;
  readonly clock: Clock;
  /** Server-side lifetime of one watch request. */
  readonly watchTimeoutSeconds?: number;
  readonly random?: () => number;
  /**
   * Told when a Secret's data changed, appeared or disappeared after the first sync (a watch
   * event, or a re-list that differs from what was mirrored). Not told about bookmarks,
   * metadata-only updates or the first list.
   */
  readonly onChanged?: () => void;
}

type WatchOutcome = 'closed' | 'expired' | 'error';

const BACKOFF_BASE_MS = 100;
const BACKOFF_CAP_MS = 5_000;
/** A watch that ends sooner than this is treated like a failure, so a server that closes at once is not hammered. */
const MIN_HEALTHY_WATCH_MS = 1_000;

export function decodeSecretData(data: Readonly<Record<string, string>> | undefined): SecretData {
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(data ?? {}))
    out[key] = Buffer.from(value, 'base64').toString('utf8');
  return Object.freeze(out);
}

/** Same keys and values (data maps are small; order of keys does not matter). */
export function sameSecretData(a: SecretData | undefined, b: SecretData | undefined): boolean {
  if (a === undefined || b === undefined) return a === b;
  const keys = Object.keys(a);
  if (keys.length !== Object.keys(b).length) return false;
  return keys.every((key) => Object.hasOwn(b, key) && a[key] === b[key]);
}

export class SecretWatchCache {
  readonly #options: SecretWatchCacheOptions;
  readonly #random: () => number;
  #entries = new Map<string, SecretData>();
  #everSynced = false;
  #resourceVersion = '';
  #synced = false;
  #stopped = false;
  #started = false;
  #abortWatch: (() => void) | undefined;
  #wakeSleeper: (() => void) | undefined;
  #syncWaiters: (() => void)[] = [];
  #loop: Promise<void> | undefined;

  constructor(options: SecretWatchCacheOptions) {
    this.#options = options;
    this.#random = options.random ?? Math.random;
  }

  get synced(): boolean {
    return this.#synced && !this.#stopped;
  }

  get namespace(): string {
    return this.#options.namespace;
  }

  start(): void {
    if (this.#started) return;
    this.#started = true;
    this.#loop = this.#run();
  }

  /** Resolves once synced (or when stopped). */
  whenSynced(): Promise<void> {
    if (this.synced || this.#stopped) return Promise.resolve();
    return new Promise((resolve) => this.#syncWaiters.push(resolve));
  }

  lookup(name: string): SecretData | undefined {
    return this.#entries.get(name);
  }

  snapshot(): Readonly<Record<string, SecretData>> {
    return Object.freeze(Object.fromEntries(this.#entries));
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
      if (needsList) {
        try {
          const list = await this.#options.list();
          if (this.#stopped) return;
          this.#replaceAll(list);
          needsList = false;
          failures = 0;
        } catch (err) {
          failures += 1;
          const failure = classifyKubeError(err, this.#options.clock.now());
          this.#options.logger.warn(
            {
              namespace: this.namespace,
              failure: failure.kind === 'status' ? failure.code : failure.kind,
              attempt: failures,
            },
            'kubernetes secret cache: list failed; retrying',
          );
          await this.#sleep(this.#backoff(failures));
          continue;
        }
      }
      const startedAt = Date.now();
      const outcome = await this.#watchOnce();
      if (this.#stopped) return;
      if (outcome === 'expired') {
        this.#options.logger.info(
          { namespace: this.namespace },
          'kubernetes secret cache: watch expired (410); re-listing',
        );
        this.#synced = false;
        needsList = true;
        continue;
      }
      if (outcome === 'error') {
        this.#synced = false;
        needsList = true;
        failures += 1;
        this.#options.logger.warn(
          { namespace: this.namespace, attempt: failures },
          'kubernetes secret cache: watch failed; re-listing',
        );
        await this.#sleep(this.#backoff(failures));
        continue;
      }
      // A clean end (server timeout, apiserver restart): resume from the last resourceVersion.
      if (Date.now() - startedAt < MIN_HEALTHY_WATCH_MS) {
        failures += 1;
        await this.#sleep(this.#backoff(failures));
      } else {
        failures = 0;
      }
    }
  }

  #replaceAll(list: V1SecretList): void {
    const entries = new Map<string, SecretData>();
    for (const secret of list.items) {
      const name = secret.metadata?.name;
      if (name) entries.set(name, decodeSecretData(secret.data));
    }
    // A re-list (after 410 or a failed watch) may carry changes the lost watch never delivered.
    const changed =
      this.#everSynced &&
      (entries.size !== this.#entries.size ||
        [...entries].some(([name, data]) => !sameSecretData(data, this.#entries.get(name))));
    this.#everSynced = true;
    this.#entries = entries;
    this.#resourceVersion = list.metadata?.resourceVersion ?? '';
    this.#synced = true;
    this.#options.logger.info(
      { namespace: this.namespace, secrets: entries.size },
      'kubernetes secret cache synced',
    );
    for (const resolve of this.#syncWaiters.splice(0)) resolve();
    if (changed) this.#notify();
  }

  #notify(): void {
    try {
      this.#options.onChanged?.();
    } catch (err) {
      this.#options.logger.warn(
        { namespace: this.namespace, error: String(err) },
        'kubernetes secret cache: a change listener failed',
      );
    }
  }

  #watchOnce(): Promise<WatchOutcome> {
    return new Promise<WatchOutcome>((resolve) => {
      let outcome: WatchOutcome = 'closed';
      let settled = false;
      const settle = (value: WatchOutcome): void => {
        if (settled) return;
        settled = true;
        this.#abortWatch = undefined;
        resolve(value);
      };
      let controller: AbortController | undefined;
      this.#abortWatch = () => {
        controller?.abort();
        settle('closed');
      };
      const watch = new Watch(this.#options.kubeConfig);
      const query = {
        resourceVersion: this.#resourceVersion,
        allowWatchBookmarks: true,
        timeoutSeconds: this.#options.watchTimeoutSeconds ?? 300 + Math.floor(this.#random() * 60),
      };
      watch
        .watch(
          `/api/v1/namespaces/${encodeURIComponent(this.namespace)}/secrets`,
          query,
          (type: string, object: unknown) => {
            if (settled) return;
            const ending = this.#onEvent(type, object);
            if (ending !== undefined) {
              // The server ends the stream after an ERROR event anyway; stop reading now.
              outcome = ending;
              controller?.abort();
              settle(ending);
            }
          },
          (err: unknown) => {
            if (err === null || err === undefined) return settle(outcome);
            const failure = classifyKubeError(err, this.#options.clock.now());
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
          if (this.#stopped || settled) c.abort();
        })
        .catch(() => settle('error'));
    });
  }

  /** Returns a new outcome when the event ends this watch. */
  #onEvent(type: string, object: unknown): WatchOutcome | undefined {
    const obj = object as V1Secret & { code?: number };
    switch (type) {
      case 'ADDED':
      case 'MODIFIED': {
        const name = obj.metadata?.name;
        if (name) {
          const data = decodeSecretData(obj.data);
          const changed = !sameSecretData(data, this.#entries.get(name));
          this.#entries.set(name, data);
          if (changed) this.#notify();
        }
        break;
      }
      case 'DELETED':
        if (obj.metadata?.name && this.#entries.delete(obj.metadata.name)) this.#notify();
        break;
      case 'BOOKMARK':
        break;
      case 'ERROR':
        // 410 means our resourceVersion is no longer in the server's history: re-list.
        return obj.code === 410 ? 'expired' : 'error';
      default:
        return undefined;
    }
    const rv = obj.metadata?.resourceVersion;
    if (rv) this.#resourceVersion = rv;
    return undefined;
  }

  #backoff(failures: number): number {
    const ceiling = Math.min(BACKOFF_CAP_MS, BACKOFF_BASE_MS * 2 ** Math.min(failures, 16));
    return Math.round(ceiling / 2 + (this.#random() * ceiling) / 2);
  }

  #sleep(ms: number): Promise<void> {
    if (this.#stopped) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done(): void {
        clearTimeout(timer);
        resolve();
      }
      this.#wakeSleeper = done;
    });
  }
}
