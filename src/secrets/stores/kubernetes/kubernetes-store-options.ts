import { parseDuration } from '../../../shared/duration.js';
import { WardenError } from '../../../shared/errors.js';
import { isDns1123Label } from '../../../shared/kube-names.js';
import { printable } from '../../../shared/spiffe-id.js';

/** The Component metadata of a `secretstores.kubernetes` store, validated and defaulted. */
export interface KubernetesStoreOptions {
  /** Dapr: the namespace used when neither the request nor NAMESPACE names one. */
  readonly defaultNamespace: string | undefined;
  /** Dapr: a kubeconfig file; otherwise in-cluster, then KUBECONFIG, then ~/.kube/config. */
  readonly kubeconfigPath: string | undefined;
  /** Warden: `watch` keeps a watch-backed cache of the store's own namespace. */
  readonly cacheMode: 'none' | 'watch';
  /** Warden: per-request timeout (Go duration), default 10s. */
  readonly requestTimeoutMs: number;
  /** Warden: retries after the first attempt for 429, 5xx and network errors, default 3. */
  readonly maxRetries: number;
  /** Fields this store does not know. Dapr ignores them, so Warden does too, but the store logs them. */
  readonly ignoredFields: readonly string[];
}

export const KUBERNETES_STORE_DEFAULTS = Object.freeze({
  cacheMode: 'none' as const,
  requestTimeoutMs: 10_000,
  maxRetries: 3,
});

const KNOWN_FIELDS = new Set([
  'defaultNamespace',
  'kubeconfigPath',
  'cacheMode',
  'requestTimeout',
  'maxRetries',
  // read by the resolver (a TTL cache in front of every store), not by the store
  'cacheTTL',
]);

/** Every problem at once, each naming its field. */
export function parseKubernetesStoreOptions(
  metadata: Readonly<Record<string, string>>,
): KubernetesStoreOptions {
  const problems: string[] = [];
  const ignoredFields = Object.keys(metadata)
    .filter((key) => !KNOWN_FIELDS.has(key))
    .map((key) => printable(key));

  const rawNamespace = metadata.defaultNamespace;
  let defaultNamespace: string | undefined;
  if (rawNamespace !== undefined && rawNamespace !== '') {
    if (isDns1123Label(rawNamespace)) defaultNamespace = rawNamespace;
    else
      problems.push(
        `defaultNamespace "${printable(rawNamespace)}" is not a valid Kubernetes namespace name`,
      );
  }

  const kubeconfigPath =
    metadata.kubeconfigPath !== undefined && metadata.kubeconfigPath !== ''
      ? metadata.kubeconfigPath
      : undefined;

  let cacheMode: 'none' | 'watch' = KUBERNETES_STORE_DEFAULTS.cacheMode;
  const rawCacheMode = metadata.cacheMode;
  if (rawCacheMode !== undefined && rawCacheMode !== '') {
    if (rawCacheMode === 'none' || rawCacheMode === 'watch') cacheMode = rawCacheMode;
    else problems.push(`cacheMode "${printable(rawCacheMode)}" must be none or watch`);
  }

  let requestTimeoutMs: number = KUBERNETES_STORE_DEFAULTS.requestTimeoutMs;
  if (metadata.requestTimeout !== undefined && metadata.requestTimeout !== '') {
    try {
      requestTimeoutMs = parseDuration(metadata.requestTimeout, 'requestTimeout');
      if (requestTimeoutMs <= 0) problems.push('requestTimeout must be greater than 0');
    } catch (err) {
      problems.push((err as Error).message);
    }
  }

  let maxRetries: number = KUBERNETES_STORE_DEFAULTS.maxRetries;
  if (metadata.maxRetries !== undefined && metadata.maxRetries !== '') {
    const n = Number(metadata.maxRetries);
    if (/^\d+$/.test(metadata.maxRetries) && n <= 10) maxRetries = n;
    else
      problems.push(
        `maxRetries "${printable(metadata.maxRetries)}" must be an integer from 0 to 10`,
      );
  }

  if (problems.length > 0) {
    throw new WardenError(
      'ERR_SECRET_STORE_CONFIG',
      `secretstores.kubernetes metadata is invalid: ${problems.join('; ')}`,
    );
  }
  return Object.freeze({
    defaultNamespace,
    kubeconfigPath,
    cacheMode,
    requestTimeoutMs,
    maxRetries,
    ignoredFields: Object.freeze(ignoredFields),
  });
}
