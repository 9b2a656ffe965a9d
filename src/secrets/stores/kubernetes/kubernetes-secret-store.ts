import { setTimeout as delay } from 'node:timers/promises';
import { CoreV1Api, type KubeConfig } from '@kubernetes/client-node';
import type { Clock } from '../../../shared/clock.js';
import type { WardenEnv } from '../../../shared/env.js';
import { WardenError } from '../../../shared/errors.js';
import {
  classifyKubeError,
  isRetryable,
  loadKubeConfig,
  requestTimeout,
  type KubeCallFailure,
} from '../../../shared/kube-client.js';
import { isDns1123Label, isDns1123Subdomain } from '../../../shared/kube-names.js';
import type { Logger } from '../../../shared/logger.js';
import { printable } from '../../../shared/spiffe-id.js';
import { ChangeListeners, type SecretChangeSource } from '../../secret-change-source.js';
import type {
  RequestMetadata,
  SecretData,
  SecretStore,
  SecretStoreFeatures,
} from '../../secret-store.js';
import {
  parseKubernetesStoreOptions,
  type KubernetesStoreOptions,
} from './kubernetes-store-options.js';
import { SecretWatchCache, decodeSecretData } from './secret-watch-cache.js';

export const KUBERNETES_SECRET_STORE_TYPE = 'secretstores.kubernetes';

export interface KubernetesSecretStoreContext {
  readonly logger: Logger;
  readonly clock: Clock;
  /** NAMESPACE, KUBECONFIG and in-cluster detection come from here, never from process.env. */
  readonly env: WardenEnv;
  /** How retries wait; tests record the delays instead of sleeping. Default: a real timer. */
  readonly sleep?: (ms: number) => Promise<void>;
  /** Jitter source in [0, 1). Default Math.random. */
  readonly random?: () => number;
}

/**
 * The store plus what only this implementation offers. With `cacheMode: watch` it reports
 * changes of its namespace's Secrets (from the watch) to change listeners; without a cache
 * it has nothing to notice them with and never reports.
 */
export interface KubernetesSecretStore extends SecretStore, SecretChangeSource {
  /** Resolves when ready() is true (at once without a cache; after the first list with one) or the store is closed. */
  whenReady(): Promise<void>;
}

const RETRY_BASE_MS = 200;
const RETRY_CAP_MS = 5_000;
/** A Retry-After longer than this is not waited for: the call fails now and says when to retry. */
const MAX_RETRY_AFTER_MS = 10_000;
const LIST_PAGE_SIZE = 500;

/**
 * `secretstores.kubernetes`: Secrets read through @kubernetes/client-node. The namespace of a
 * request is its `namespace` metadata, else NAMESPACE, else `defaultNamespace`; names are
 * checked as Kubernetes names before any call. With `cacheMode: watch` the store's own
 * namespace is mirrored by a watch and answered locally while the mirror is synced.
 */
export function createKubernetesSecretStore(
  metadata: Readonly<Record<string, string>>,
  context: KubernetesSecretStoreContext,
): KubernetesSecretStore {
  const options = parseKubernetesStoreOptions(metadata);
  let kubeConfig: KubeConfig;
  try {
    kubeConfig = loadKubeConfig({
      kubeconfigPath: options.kubeconfigPath,
      inCluster: context.env.inCluster,
      kubeconfigEnv: context.env.kubeconfig,
    });
  } catch (err) {
    throw new WardenError(
      'ERR_SECRET_STORE_CONFIG',
      `secretstores.kubernetes: ${(err as Error).message}`,
      { cause: err },
    );
  }
  return new KubernetesSecretStoreImpl(options, kubeConfig, context);
}

class KubernetesSecretStoreImpl implements KubernetesSecretStore {
  readonly type = KUBERNETES_SECRET_STORE_TYPE;
  readonly #options: KubernetesStoreOptions;
  readonly #api: CoreV1Api;
  readonly #server: string;
  readonly #logger: Logger;
  readonly #clock: Clock;
  readonly #sleep: (ms: number) => Promise<void>;
  readonly #random: () => number;
  /** The namespace without a request's say: NAMESPACE, else defaultNamespace. */
  readonly #homeNamespace: string | undefined;
  readonly #cache: SecretWatchCache | undefined;
  readonly #listeners = new ChangeListeners();
  #closed = false;

  constructor(
    options: KubernetesStoreOptions,
    kubeConfig: KubeConfig,
    context: KubernetesSecretStoreContext,
  ) {
    this.#options = options;
    this.#api = kubeConfig.makeApiClient(CoreV1Api);
    this.#server = kubeConfig.getCurrentCluster()?.server ?? 'the Kubernetes API';
    this.#logger = context.logger.child({ store: KUBERNETES_SECRET_STORE_TYPE });
    this.#clock = context.clock;
    this.#sleep = context.sleep ?? ((ms) => delay(ms).then(() => undefined));
    this.#random = context.random ?? Math.random;
    // WardenEnv.namespace defaults to "default"; the raw value tells whether NAMESPACE was really set.
    const envNamespace = context.env.raw.NAMESPACE;
    this.#homeNamespace =
      envNamespace !== undefined && envNamespace !== '' ? envNamespace : options.defaultNamespace;
    if (options.ignoredFields.length > 0)
      this.#logger.warn(
        { fields: options.ignoredFields },
        'ignoring unknown secretstores.kubernetes metadata fields',
      );

    if (options.cacheMode === 'watch') {
      const namespace = this.#homeNamespace;
      if (namespace === undefined || !isDns1123Label(namespace)) {
        throw new WardenError(
          'ERR_SECRET_STORE_CONFIG',
          'secretstores.kubernetes: cacheMode watch needs a valid namespace to watch (set NAMESPACE or defaultNamespace)',
        );
      }
      this.#cache = new SecretWatchCache({
        kubeConfig,
        namespace,
        logger: this.#logger,
        clock: this.#clock,
        random: this.#random,
        onChanged: () => this.#listeners.emit(),
        listPage: (continueToken) =>
          this.#api.listNamespacedSecret(
            {
              namespace,
              limit: LIST_PAGE_SIZE,
              ...(continueToken === undefined ? {} : { _continue: continueToken }),
            },
            requestTimeout(this.#options.requestTimeoutMs),
          ),
      });
      this.#cache.start();
    }
  }

  features(): SecretStoreFeatures {
    return { multipleKeyValuesPerSecret: true };
  }

  ready(): boolean {
    if (this.#closed) return false;
    return this.#cache === undefined || this.#cache.synced;
  }

  onSecretsChanged(listener: () => void): () => void {
    return this.#listeners.onSecretsChanged(listener);
  }

  whenReady(): Promise<void> {
    return this.#cache === undefined || this.#closed ? Promise.resolve() : this.#cache.whenSynced();
  }

  async get(name: string, metadata: RequestMetadata = {}): Promise<SecretData> {
    if (typeof name !== 'string' || !isDns1123Subdomain(name)) {
      throw new WardenError(
        'ERR_SECRET_NAME_INVALID',
        `secret name "${printable(String(name))}" is not a valid Kubernetes name (lowercase RFC 1123 subdomain, at most 253 characters)`,
      );
    }
    const namespace = this.#namespaceFor(metadata);
    this.#assertOpen();
    const cache = this.#cache;
    if (cache !== undefined && cache.synced && cache.namespace === namespace) {
      const cached = cache.lookup(name);
      if (cached === undefined) throw notFound(name, namespace);
      return cached;
    }
    const secret = await this.#call({ verb: 'get', namespace, name }, (opts) =>
      this.#api.readNamespacedSecret({ name, namespace }, opts),
    );
    return decodeSecretData(secret.data);
  }

  async bulkGet(metadata: RequestMetadata = {}): Promise<Readonly<Record<string, SecretData>>> {
    const namespace = this.#namespaceFor(metadata);
    this.#assertOpen();
    const cache = this.#cache;
    if (cache !== undefined && cache.synced && cache.namespace === namespace)
      return cache.snapshot();
    const out: Record<string, SecretData> = {};
    let continueToken: string | undefined;
    do {
      const page = await this.#call({ verb: 'list', namespace }, (opts) =>
        this.#api.listNamespacedSecret(
          {
            namespace,
            limit: LIST_PAGE_SIZE,
            ...(continueToken ? { _continue: continueToken } : {}),
          },
          opts,
        ),
      );
      for (const secret of page.items) {
        const secretName = secret.metadata?.name;
        if (secretName) out[secretName] = decodeSecretData(secret.data);
      }
      continueToken = page.metadata?._continue || undefined;
    } while (continueToken !== undefined);
    return Object.freeze(out);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#listeners.clear();
    await this.#cache?.stop();
  }

  #assertOpen(): void {
    if (this.#closed)
      throw new WardenError(
        'ERR_SECRET_STORE_UNAVAILABLE',
        'secretstores.kubernetes: the store is closed',
      );
  }

  #namespaceFor(metadata: RequestMetadata): string {
    const requested = metadata.namespace;
    const namespace = requested !== undefined && requested !== '' ? requested : this.#homeNamespace;
    if (namespace === undefined) {
      throw new WardenError(
        'ERR_SECRET_STORE_CONFIG',
        'secretstores.kubernetes: no namespace (the request has no namespace metadata, NAMESPACE is unset and the store has no defaultNamespace)',
      );
    }
    if (!isDns1123Label(namespace)) {
      throw new WardenError(
        'ERR_SECRET_NAME_INVALID',
        `namespace "${printable(namespace)}" is not a valid Kubernetes namespace name`,
      );
    }
    return namespace;
  }

  /** One API call with bounded retries (exponential backoff, jitter, Retry-After honoured up to a cap). */
  async #call<T>(
    target: { verb: 'get' | 'list'; namespace: string; name?: string },
    call: (opts: ReturnType<typeof requestTimeout>) => Promise<T>,
  ): Promise<T> {
    const maxAttempts = this.#options.maxRetries + 1;
    for (let attempt = 1; ; attempt += 1) {
      let failure: KubeCallFailure;
      try {
        return await call(requestTimeout(this.#options.requestTimeoutMs));
      } catch (err) {
        failure = classifyKubeError(err, this.#clock.now());
      }
      const retryAfterMs = failure.kind === 'status' ? failure.retryAfterMs : undefined;
      const giveUp =
        !isRetryable(failure) ||
        attempt >= maxAttempts ||
        this.#closed ||
        (retryAfterMs !== undefined && retryAfterMs > MAX_RETRY_AFTER_MS);
      if (giveUp) throw this.#toError(failure, target, attempt);
      const ceiling = Math.min(RETRY_CAP_MS, RETRY_BASE_MS * 2 ** (attempt - 1));
      const backoff = Math.round(ceiling / 2 + (this.#random() * ceiling) / 2);
      const waitMs = Math.max(backoff, retryAfterMs ?? 0);
      this.#logger.warn(
        {
          namespace: target.namespace,
          secretName: target.name,
          verb: target.verb,
          failure: describeFailure(failure),
          attempt,
          retryInMs: waitMs,
        },
        'kubernetes secret read failed; retrying',
      );
      await this.#sleep(waitMs);
    }
  }

  #toError(
    failure: KubeCallFailure,
    target: { verb: 'get' | 'list'; namespace: string; name?: string },
    attempts: number,
  ): WardenError {
    const what =
      target.name !== undefined
        ? `secret "${target.name}" in namespace "${target.namespace}"`
        : `secrets in namespace "${target.namespace}"`;
    const tries = attempts === 1 ? '' : ` after ${attempts} attempts`;
    if (failure.kind === 'status') {
      const reason = failure.reason ? ` ${failure.reason}` : '';
      if (failure.code === 404 && target.name !== undefined)
        return notFound(target.name, target.namespace);
      if (failure.code === 403) {
        const detail = failure.message ? `: ${printable(failure.message, 300)}` : '';
        return new WardenError(
          'ERR_SECRET_PERMISSION_DENIED',
          `the Kubernetes API refused to ${target.verb} ${what} (403${reason})${detail}`,
        );
      }
      if (failure.code === 401) {
        return new WardenError(
          'ERR_SECRET_STORE_UNAVAILABLE',
          `the Kubernetes API rejected the store's credentials reading ${what} (401${reason})`,
        );
      }
      const details: Record<string, number> = { status: failure.code };
      let retryNote = '';
      if (failure.retryAfterMs !== undefined) {
        details.retryAfterMs = failure.retryAfterMs;
        retryNote = `; retry after ${Math.ceil(failure.retryAfterMs / 1000)}s`;
      }
      return new WardenError(
        'ERR_SECRET_STORE_UNAVAILABLE',
        `the Kubernetes API answered ${failure.code}${reason} reading ${what}${tries}${retryNote}`,
        {
          details,
        },
      );
    }
    if (failure.kind === 'timeout') {
      return new WardenError(
        'ERR_SECRET_STORE_UNAVAILABLE',
        `the Kubernetes API at ${this.#server} did not answer within ${this.#options.requestTimeoutMs}ms reading ${what}${tries}`,
      );
    }
    return new WardenError(
      'ERR_SECRET_STORE_UNAVAILABLE',
      `the Kubernetes API at ${this.#server} is unreachable (${failure.detail}) reading ${what}${tries}`,
    );
  }
}

function notFound(name: string, namespace: string): WardenError {
  return new WardenError(
    'ERR_SECRET_NOT_FOUND',
    `secret "${name}" not found in namespace "${namespace}"`,
  );
}

function describeFailure(failure: KubeCallFailure): string {
  if (failure.kind === 'status')
    return `${failure.code}${failure.reason ? ` ${failure.reason}` : ''}`;
  return failure.kind === 'timeout' ? 'timeout' : failure.detail;
}
