import { existsSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import {
  ApiException,
  KubeConfig,
  Observable,
  type ConfigurationOptions,
  type RequestContext,
  type ResponseContext,
} from '@kubernetes/client-node';
import { WardenError } from './errors.js';

/**
 * The one place Warden turns configuration into a @kubernetes/client-node KubeConfig, and
 * the shared reading of what the client throws. The secrets block's Kubernetes store and
 * the CA's Kubernetes mode both use it.
 */
export interface KubeConfigSource {
  /** An explicit kubeconfig file (`--kubeconfig`, a store's `kubeconfigPath`). Wins over everything. */
  readonly kubeconfigPath?: string | undefined;
  /** Running in a pod (WardenEnv.inCluster): use the mounted service-account token and CA. */
  readonly inCluster: boolean;
  /** KUBECONFIG from the environment (WardenEnv.kubeconfig): one or more paths. */
  readonly kubeconfigEnv?: string | undefined;
  /** A directory the standard service-account path is under (tests use a temporary one); default none. */
  readonly inClusterPathPrefix?: string;
  /** A context other than the file's current-context. */
  readonly context?: string;
}

export const SERVICE_ACCOUNT_ROOT = '/var/run/secrets/kubernetes.io/serviceaccount';

function loadFailure(what: string, err: unknown): WardenError {
  // Only the errno code: a YAML parser's message can quote the file, and a kubeconfig holds tokens.
  const code = (err as { code?: unknown } | null)?.code;
  const why = typeof code === 'string' ? code : 'not a readable kubeconfig';
  return new WardenError('ERR_CONFIG_INVALID', `${what} could not be loaded (${why})`);
}

function loadFile(kc: KubeConfig, path: string): void {
  try {
    kc.loadFromFile(path);
  } catch (err) {
    throw loadFailure(`kubeconfig ${path}`, err);
  }
}

/**
 * Explicit path → that file; in a pod → the service account; KUBECONFIG → those files
 * (merged, the first one's current-context wins, as kubectl does); else the client's
 * default (~/.kube/config). The result always has a current cluster.
 */
export function loadKubeConfig(source: KubeConfigSource): KubeConfig {
  const kc = new KubeConfig();
  let origin: string;
  if (source.kubeconfigPath !== undefined && source.kubeconfigPath !== '') {
    origin = `kubeconfig ${source.kubeconfigPath}`;
    loadFile(kc, source.kubeconfigPath);
  } else if (source.inCluster) {
    const prefix = source.inClusterPathPrefix ?? '';
    const root = `${prefix}${SERVICE_ACCOUNT_ROOT}`;
    origin = `in-cluster configuration (${root})`;
    for (const file of ['token', 'ca.crt']) {
      if (!existsSync(join(root, file))) {
        throw new WardenError(
          'ERR_CONFIG_INVALID',
          `in-cluster configuration is missing ${join(root, file)}`,
        );
      }
    }
    kc.loadFromCluster(prefix);
  } else if (source.kubeconfigEnv !== undefined && source.kubeconfigEnv !== '') {
    const files = source.kubeconfigEnv.split(delimiter).filter((f) => f !== '');
    origin = `KUBECONFIG ${files.join(delimiter)}`;
    loadFile(kc, files[0] as string);
    for (const file of files.slice(1)) {
      const other = new KubeConfig();
      loadFile(other, file);
      kc.mergeConfig(other, true);
    }
  } else {
    origin = 'the default kubeconfig';
    try {
      kc.loadFromDefault();
    } catch (err) {
      throw loadFailure(origin, err);
    }
  }
  if (source.context !== undefined) {
    if (!kc.getContextObject(source.context))
      throw new WardenError('ERR_CONFIG_INVALID', `${origin} has no context ${source.context}`);
    kc.setCurrentContext(source.context);
  }
  const cluster = kc.getCurrentCluster();
  if (!cluster || !cluster.server)
    throw new WardenError('ERR_CONFIG_INVALID', `${origin} names no current cluster`);
  return kc;
}

/** Per-call options that abort a request after `timeoutMs` (the client sets no timeout of its own). */
export function requestTimeout(timeoutMs: number): ConfigurationOptions {
  if (!Number.isFinite(timeoutMs) || timeoutMs <= 0)
    throw new TypeError('timeoutMs must be a positive number');
  return {
    middleware: [
      {
        pre: (ctx: RequestContext) => {
          ctx.setSignal(AbortSignal.timeout(timeoutMs));
          return new Observable(Promise.resolve(ctx));
        },
        post: (rsp: ResponseContext) => new Observable(Promise.resolve(rsp)),
      },
    ],
    middlewareMergeStrategy: 'append',
  };
}

/** What went wrong with a call, in terms a caller can act on. Carries nothing from request headers. */
export type KubeCallFailure =
  | {
      readonly kind: 'status';
      readonly code: number;
      /** The Status reason (NotFound, Forbidden, Conflict, ...), when the body was a Status. */
      readonly reason: string | undefined;
      /** The Status message; the API server never echoes credentials in it. */
      readonly message: string | undefined;
      /** Retry-After, in milliseconds from now. */
      readonly retryAfterMs: number | undefined;
    }
  | { readonly kind: 'network'; readonly detail: string }
  | { readonly kind: 'timeout' };

function parseRetryAfter(value: string | undefined, now: Date): number | undefined {
  if (value === undefined || value.trim() === '') return undefined;
  if (/^\d+$/.test(value.trim())) return Number(value.trim()) * 1000;
  const at = Date.parse(value);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now.getTime());
}

export function classifyKubeError(err: unknown, now: Date): KubeCallFailure {
  if (err instanceof ApiException) {
    const headers = (err.headers ?? {}) as Record<string, string>;
    const retryAfterHeader = headers['retry-after'] ?? headers['Retry-After'];
    let reason: string | undefined;
    let message: string | undefined;
    let retryAfterSeconds: number | undefined;
    const body: unknown = typeof err.body === 'string' ? safeJson(err.body) : err.body;
    if (
      body !== null &&
      typeof body === 'object' &&
      (body as { kind?: unknown }).kind === 'Status'
    ) {
      const status = body as {
        reason?: unknown;
        message?: unknown;
        details?: { retryAfterSeconds?: unknown };
      };
      reason = typeof status.reason === 'string' ? status.reason : undefined;
      message = typeof status.message === 'string' ? status.message : undefined;
      retryAfterSeconds =
        typeof status.details?.retryAfterSeconds === 'number'
          ? status.details.retryAfterSeconds
          : undefined;
    }
    const retryAfterMs =
      parseRetryAfter(retryAfterHeader, now) ??
      (retryAfterSeconds === undefined ? undefined : retryAfterSeconds * 1000);
    return { kind: 'status', code: err.code, reason, message, retryAfterMs };
  }
  const e = err as { name?: unknown; type?: unknown; code?: unknown } | null;
  if (e?.name === 'AbortError' || e?.type === 'aborted' || e?.name === 'TimeoutError')
    return { kind: 'timeout' };
  if (typeof e?.code === 'string') return { kind: 'network', detail: e.code };
  if (e?.name === 'FetchError')
    return { kind: 'network', detail: typeof e.type === 'string' ? e.type : 'fetch failed' };
  return { kind: 'network', detail: err instanceof Error ? err.name : 'unknown error' };
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

/** True for failures worth retrying: 429, 5xx, network errors and timeouts. */
export function isRetryable(failure: KubeCallFailure): boolean {
  return failure.kind !== 'status' || failure.code === 429 || failure.code >= 500;
}
