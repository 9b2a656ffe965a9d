import { CoreV1Api, type KubeConfig, type V1Secret } from '@kubernetes/client-node';
import { describeError } from '../../shared/errors.js';
import { requestTimeout } from '../../shared/kube-client.js';
import { KubeReflector } from '../../shared/kube-reflector.js';
import { loopBackoffMs } from '../../shared/kube-caller.js';
import { silentLogger, type Logger } from '../../shared/logger.js';
import type { TrustBundle } from '../trust-bundle.js';

/**
 * Hot reload in Kubernetes mode: the credentials-watcher's counterpart for the trust Secret.
 * A watch on the one Secret (list+watch by name, re-list on 410, bounded backoff with
 * jitter) calls the CA's reload() whenever the Secret's resourceVersion changes, on every
 * replica: an operator's update is validated by each CA and swapped in without a restart; a
 * bad update is refused by reload() (which logs it and tells its refusal listeners) and the
 * old material keeps serving. After each successful reload the trust-bundle ConfigMap is
 * brought in line with what was validated (publish, i.e. the store's publishConfigMap), so it
 * follows good updates and never a refused one.
 */
export interface TrustSecretWatchOptions {
  readonly kubeConfig: KubeConfig;
  readonly namespace: string;
  /** The Secret's name (--trust-bundle-name). */
  readonly name: string;
  /** The CA's reload(): re-reads, validates, swaps; rejects (and keeps the old bundle) when refused. */
  readonly reload: () => Promise<TrustBundle>;
  /** Publishes validated anchors to the trust-bundle ConfigMap (idempotent). */
  readonly publish?: (anchorsPem: string) => Promise<unknown>;
  readonly logger?: Logger;
  readonly random?: () => number;
  /** Quiet time after a change before reloading (default 100 ms). */
  readonly debounceMs?: number;
  readonly watchTimeoutSeconds?: number;
  readonly requestTimeoutMs?: number;
}

export interface TrustSecretWatch {
  /** True once the Secret has been listed (it stays true through later watch failures). */
  synced(): boolean;
  whenSynced(): Promise<void>;
  /** Resolves once no reload or publication is pending or running. */
  settled(): Promise<void>;
  close(): Promise<void>;
}

export function startTrustSecretWatch(options: TrustSecretWatchOptions): TrustSecretWatch {
  const logger = (options.logger ?? silentLogger).child({ component: 'trust-secret-watch' });
  const random = options.random ?? Math.random;
  const debounceMs = options.debounceMs ?? 100;
  const { namespace, name } = options;
  const api = options.kubeConfig.makeApiClient(CoreV1Api);
  const fieldSelector = `metadata.name=${name}`;
  const timeoutMs = options.requestTimeoutMs ?? 10_000;

  /** The Secret version the last reload looked at ('absent' when there was none). */
  let handled: string | null = null;
  let publishPending = false;
  let publishFailures = 0;
  let debounce: NodeJS.Timeout | null = null;
  let retryTimer: NodeJS.Timeout | null = null;
  let running: Promise<void> | null = null;
  let again = false;
  let closed = false;

  const reflector = new KubeReflector<string>({
    kubeConfig: options.kubeConfig,
    name: `secret ${name} in namespace ${namespace}`,
    watchPath: `/api/v1/namespaces/${encodeURIComponent(namespace)}/secrets`,
    watchQuery: { fieldSelector },
    listPage: async (continueToken) => {
      const list = await api.listNamespacedSecret(
        { namespace, fieldSelector, limit: 50, _continue: continueToken },
        requestTimeout(timeoutMs),
      );
      return {
        items: list.items,
        resourceVersion: list.metadata?.resourceVersion ?? '',
        continueToken: list.metadata?._continue,
      };
    },
    // Only its version is kept: reload() reads the Secret (and the ConfigMap) itself.
    project: (object) => {
      const rv = (object as V1Secret).metadata?.resourceVersion;
      return typeof rv === 'string' ? rv : '';
    },
    logger,
    random,
    watchTimeoutSeconds: options.watchTimeoutSeconds,
  });
  reflector.subscribe(() => changed());

  function version(): string {
    return reflector.get(namespace, name) ?? 'absent';
  }

  function changed(): void {
    if (closed) return;
    if (version() !== handled || publishPending) schedule(debounceMs);
  }

  function schedule(ms: number): void {
    if (closed) return;
    if (debounce) clearTimeout(debounce);
    debounce = setTimeout(() => {
      debounce = null;
      void run();
    }, ms);
    debounce.unref();
  }

  function run(): Promise<void> {
    if (running) {
      again = true;
      return running;
    }
    running = (async () => {
      do {
        again = false;
        const seen = version();
        let bundle: TrustBundle;
        try {
          bundle = await options.reload();
        } catch (err) {
          // reload() logged why and kept the current bundle; nothing to publish.
          handled = seen;
          logger.debug(
            { error: describeError(err) },
            'the trust Secret changed but reload refused it',
          );
          continue;
        }
        handled = seen;
        if (options.publish) {
          try {
            await options.publish(bundle.anchorsPem);
            publishPending = false;
            publishFailures = 0;
          } catch (err) {
            publishPending = true;
            publishFailures += 1;
            const wait = loopBackoffMs(publishFailures, random, 1_000, 60_000);
            logger.warn(
              { error: describeError(err), retryInMs: wait },
              'cannot bring the trust-bundle ConfigMap in line yet; retrying',
            );
            if (retryTimer) clearTimeout(retryTimer);
            retryTimer = setTimeout(() => {
              retryTimer = null;
              schedule(0);
            }, wait);
            retryTimer.unref();
          }
        }
      } while (again && !closed);
    })().finally(() => {
      running = null;
    });
    return running;
  }

  reflector.start();

  return {
    synced: () => reflector.hasSynced,
    whenSynced: () => reflector.whenSynced(),
    async settled() {
      while (!closed && (debounce || running)) {
        if (running) await running;
        else await new Promise((resolve) => setTimeout(resolve, debounceMs));
      }
    },
    async close() {
      closed = true;
      if (debounce) clearTimeout(debounce);
      if (retryTimer) clearTimeout(retryTimer);
      debounce = null;
      retryTimer = null;
      await reflector.stop();
      if (running) await running;
    },
  };
}
