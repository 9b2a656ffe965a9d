import type { KubeConfig, V1Secret, V1SecretList } from '@kubernetes/client-node';
import type { Clock } from '../../../shared/clock.js';
import { KubeReflector, type ReflectorEvent } from '../../../shared/kube-reflector.js';
import type { Logger } from '../../../shared/logger.js';
import type { SecretData } from '../../secret-store.js';

/**
 * A list-then-watch mirror of one namespace's Secrets, on the shared KubeReflector. It answers
 * only while synced: after its first list, and again after every re-list. A watch that ends
 * cleanly is resumed from the last resourceVersion; a 410 Expired or any error forces a fresh
 * list (`relistAfterWatchFailure`), and until that list succeeds the cache is not synced, so
 * the store reads through to the API rather than serve something that may be stale.
 */
export interface SecretWatchCacheOptions {
  readonly kubeConfig: KubeConfig;
  readonly namespace: string;
  /** Lists one page of the namespace's Secrets (the caller passes `limit` and `continue`). */
  readonly listPage: (continueToken: string | undefined) => Promise<V1SecretList>;
  readonly logger: Logger;
  readonly clock: Clock;
  /** Server-side lifetime of one watch request. */
  readonly watchTimeoutSeconds?: number;
  readonly random?: () => number;
  /**
   * Told when a Secret's data changed, appeared or disappeared after the first sync (a watch
   * event, or a re-list that differs from what was mirrored: once per re-list). Not told about
   * bookmarks, metadata-only updates or the first list.
   */
  readonly onChanged?: () => void;
}

/** What the mirror keeps of a Secret: its name (for snapshots) and decoded data. */
interface MirroredSecret {
  readonly name: string;
  readonly data: SecretData;
}

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

function mirrorSecret(object: unknown): MirroredSecret | null {
  const secret = object as V1Secret;
  const name = secret.metadata?.name;
  return name ? { name, data: decodeSecretData(secret.data) } : null;
}

export class SecretWatchCache {
  readonly #namespace: string;
  readonly #reflector: KubeReflector<MirroredSecret>;
  readonly #onChanged: (() => void) | undefined;
  /**
   * From the first page of a list until its 'relist' event. The differences a re-list reports
   * arrive in between (never a watch event: the watch waits for the list), and are told as
   * one change.
   */
  #listing = false;
  #listFoundChanges = false;

  constructor(options: SecretWatchCacheOptions) {
    this.#namespace = options.namespace;
    this.#onChanged = options.onChanged;
    this.#reflector = new KubeReflector<MirroredSecret>({
      kubeConfig: options.kubeConfig,
      name: 'secrets',
      watchPath: `/api/v1/namespaces/${encodeURIComponent(options.namespace)}/secrets`,
      listPage: async (continueToken) => {
        this.#listing = true;
        const page = await options.listPage(continueToken);
        return {
          items: page.items,
          resourceVersion: page.metadata?.resourceVersion ?? '',
          continueToken: page.metadata?._continue,
        };
      },
      project: mirrorSecret,
      // Metadata-only updates (labels, annotations) are not changes of what the store serves.
      equals: (a, b) => sameSecretData(a.data, b.data),
      relistAfterWatchFailure: true,
      logLabel: 'kubernetes secret cache',
      logger: options.logger.child({ namespace: options.namespace }),
      clock: options.clock,
      random: options.random,
      watchTimeoutSeconds: options.watchTimeoutSeconds,
    });
    this.#reflector.subscribe((event) => this.#onEvent(event));
  }

  /** True while the mirror is complete: listed, and watched without a failure since. */
  get synced(): boolean {
    return this.#reflector.hasSynced && this.#reflector.connected;
  }

  get namespace(): string {
    return this.#namespace;
  }

  start(): void {
    this.#reflector.start();
  }

  /** Resolves once synced (or when stopped). */
  whenSynced(): Promise<void> {
    // Connected only after a list (the watch starts from one), so this is "synced" too.
    return this.#reflector.whenConnected();
  }

  lookup(name: string): SecretData | undefined {
    return this.#reflector.get(this.#namespace, name)?.data;
  }

  snapshot(): Readonly<Record<string, SecretData>> {
    return Object.freeze(
      Object.fromEntries(this.#reflector.values().map((secret) => [secret.name, secret.data])),
    );
  }

  stop(): Promise<void> {
    return this.#reflector.stop();
  }

  /** The reflector catches and logs what a listener throws. */
  #onEvent(event: ReflectorEvent<MirroredSecret>): void {
    if (event.type === 'relist') {
      const changed = this.#listFoundChanges;
      this.#listing = false;
      this.#listFoundChanges = false;
      if (changed) this.#onChanged?.();
    } else if (this.#listing) {
      this.#listFoundChanges = true;
    } else {
      this.#onChanged?.();
    }
  }
}
