import type { Registry } from 'prom-client';
import { systemClock, type Clock } from '../../shared/clock.js';
import type { WardenEnv } from '../../shared/env.js';
import { describeError, isWardenError } from '../../shared/errors.js';
import { silentLogger, type Logger } from '../../shared/logger.js';
import {
  componentName,
  isSecretStoreComponent,
  type LoadedComponent,
} from '../components/component.js';
import { componentsFromDocuments, loadComponents, type LoadedComponents } from '../components/load-components.js';
import { createSecretsMetrics, noopSecretsMetrics, type SecretsMetrics } from '../metrics.js';
import { SecretsProblemsError, type SecretsProblem } from '../problems.js';
import { NO_SECRET_SCOPES, type SecretScopes } from '../scoping.js';
import { loadSecretsConfiguration } from '../secrets-configuration.js';
import type { SecretStore } from '../secret-store.js';
import { SecretStoreSet, type LiveSecretStore } from '../secret-store-set.js';
import type { RuntimeMode, SecretStoreRegistration } from '../store-factory.js';
import { durationField } from '../store-metadata.js';
import { findSecretStoreFactory, SECRET_STORE_TYPES, supportedSecretStoreTypes } from '../store-registry.js';
import { CachingSecretStore } from '../stores/caching-secret-store.js';
import { InstrumentedSecretStore } from '../stores/instrumented-secret-store.js';
import { resolveComponentMetadata, type ResolvedMetadataItem, type StoreLookup } from './resolve-metadata.js';
import { findStoreCycles, formatCycle } from './store-dependencies.js';

/** The Warden-only metadata field that turns on a store's TTL cache (Go duration; off by default). */
export const CACHE_TTL_FIELD = 'cacheTTL';

/** Dapr's built-in store in Kubernetes mode, used when no Component of that name exists. */
export const KUBERNETES_DEFAULT_STORE = 'kubernetes';
const KUBERNETES_STORE_TYPE = 'secretstores.kubernetes';

export interface ResolveComponentsOptions {
  /** Files and directories holding Component manifests (Dapr's --resources-path). */
  readonly resourcesPath?: string | readonly string[];
  /** Already-parsed manifest documents, instead of (or besides) files. */
  readonly manifests?: readonly unknown[];
  /** A Configuration file (its `spec.secrets.scopes`), or scopes already parsed. */
  readonly config?: string | SecretScopes;
  readonly mode: RuntimeMode;
  readonly env: WardenEnv;
  readonly logger?: Logger;
  readonly clock?: Clock;
  /** Store types that can be built (the built-in registry unless given). */
  readonly registry?: readonly SecretStoreRegistration[];
  /** Where the `warden_secrets_*` metrics go; none are recorded without one. */
  readonly metricsRegistry?: Registry;
  /** Relative paths in store metadata resolve against this (default: the process's cwd). */
  readonly workingDirectory?: string;
}

/** A Component with every metadata value resolved. */
export interface ResolvedComponent {
  readonly component: LoadedComponent;
  readonly name: string;
  readonly type: string;
  readonly metadata: readonly ResolvedMetadataItem[];
}

/** What `resolveComponents` returns: the resolved Components and the started stores. */
export interface ResolvedResources {
  readonly components: readonly ResolvedComponent[];
  readonly stores: SecretStoreSet;
  readonly scopes: SecretScopes;
  /**
   * Resolves every non-store Component again from the live stores (for `--watch`).
   * Store Components keep the metadata they were started with. Throws SecretsProblemsError.
   */
  refresh(): Promise<readonly ResolvedComponent[]>;
  close(): Promise<void>;
}

function builtInKubernetesStore(): LoadedComponent {
  return Object.freeze({
    source: '(built-in Kubernetes secret store)',
    manifest: Object.freeze({
      apiVersion: 'dapr.io/v1alpha1' as const,
      kind: 'Component' as const,
      metadata: Object.freeze({ name: KUBERNETES_DEFAULT_STORE }),
      spec: Object.freeze({ type: KUBERNETES_STORE_TYPE, version: 'v1' }),
    }),
  });
}

async function loadAll(options: ResolveComponentsOptions, logger: Logger): Promise<LoadedComponents> {
  const paths = options.resourcesPath === undefined ? [] : typeof options.resourcesPath === 'string' ? [options.resourcesPath] : options.resourcesPath;
  if (paths.length === 0 && options.manifests === undefined) {
    throw new TypeError('resolveComponents needs resourcesPath or manifests');
  }
  const fromFiles = await loadComponents(paths, logger);
  if (options.manifests === undefined) return fromFiles;
  const inline = componentsFromDocuments(
    options.manifests.map((document, index) => ({ source: `manifests[${index}]`, document })),
    logger,
  );
  // run the duplicate-name check across both sources too
  const merged = componentsFromDocuments(
    [...fromFiles.components, ...inline.components].map((c) => ({ source: c.source, document: c.manifest })),
    logger,
  );
  return {
    components: merged.components,
    problems: [...fromFiles.problems, ...inline.problems, ...merged.problems],
    rejectedNames: new Set([...fromFiles.rejectedNames, ...inline.rejectedNames, ...merged.rejectedNames]),
  };
}

async function loadScopes(config: ResolveComponentsOptions['config'], problems: SecretsProblem[]): Promise<SecretScopes> {
  if (config === undefined) return NO_SECRET_SCOPES;
  if (typeof config !== 'string') return config;
  try {
    return await loadSecretsConfiguration(config);
  } catch (err) {
    if (err instanceof SecretsProblemsError) problems.push(...err.problems);
    else throw err;
    return NO_SECRET_SCOPES;
  }
}

/**
 * Loads Components, starts their secret stores in dependency order and resolves every
 * `secretKeyRef` and `envRef`. Fails closed: when anything cannot be resolved, every
 * problem is collected, every store started so far is closed, and a SecretsProblemsError
 * naming component, field, store and secret (never a value) is thrown.
 */
export async function resolveComponents(options: ResolveComponentsOptions): Promise<ResolvedResources> {
  const logger = options.logger ?? silentLogger;
  const clock = options.clock ?? systemClock;
  const registry = options.registry ?? SECRET_STORE_TYPES;
  const metrics: SecretsMetrics = options.metricsRegistry ? createSecretsMetrics(options.metricsRegistry) : noopSecretsMetrics;
  const workingDirectory = options.workingDirectory ?? process.cwd();

  const loaded = await loadAll(options, logger);
  const problems: SecretsProblem[] = [...loaded.problems];
  const scopes = await loadScopes(options.config, problems);

  const storeOf = (component: LoadedComponent): string | undefined =>
    component.manifest.auth?.secretStore ?? (options.mode === 'kubernetes' ? KUBERNETES_DEFAULT_STORE : undefined);
  const needsStore = (component: LoadedComponent): boolean =>
    (component.manifest.spec.metadata ?? []).some((item) => item.secretKeyRef !== undefined && item.secretKeyRef.name !== '');

  const byName = new Map(loaded.components.map((c) => [componentName(c), c]));
  const storeComponents = new Map(loaded.components.filter(isSecretStoreComponent).map((c) => [componentName(c), c]));
  if (
    options.mode === 'kubernetes' &&
    !byName.has(KUBERNETES_DEFAULT_STORE) &&
    loaded.components.some((c) => needsStore(c) && storeOf(c) === KUBERNETES_DEFAULT_STORE)
  ) {
    storeComponents.set(KUBERNETES_DEFAULT_STORE, builtInKubernetesStore());
  }

  // Cycles first: every member of a cycle fails, and nothing is started for it.
  const dependencies = new Map<string, string | undefined>();
  for (const [name, component] of storeComponents) dependencies.set(name, needsStore(component) ? storeOf(component) : undefined);
  const inCycle = new Set<string>();
  for (const cycle of findStoreCycles(dependencies)) {
    for (const member of cycle) inCycle.add(member);
    problems.push({
      code: 'ERR_SECRET_STORE_CYCLE',
      component: cycle[0],
      source: storeComponents.get(cycle[0] as string)?.source,
      message: `secret stores reference each other in a cycle: ${formatCycle(cycle)}`,
    });
  }

  const live = new Map<string, LiveSecretStore>();
  const failed = new Set<string>(inCycle);
  const resolvedStores = new Map<string, ResolvedComponent>();
  const starting = new Map<string, Promise<void>>();

  const lookup: StoreLookup = async (name) => {
    if (loaded.rejectedNames.has(name)) return { kind: 'rejected' };
    const component = storeComponents.get(name);
    if (!component) {
      return byName.has(name) ? { kind: 'not-a-store' } : { kind: 'missing' };
    }
    await startStore(name, component);
    const started = live.get(name);
    return started ? { kind: 'live', store: started.store } : { kind: 'failed' };
  };

  const startStore = (name: string, component: LoadedComponent): Promise<void> => {
    if (failed.has(name) || live.has(name)) return Promise.resolve();
    let pending = starting.get(name);
    if (!pending) {
      pending = buildStore(name, component);
      starting.set(name, pending);
    }
    return pending;
  };

  const buildStore = async (name: string, component: LoadedComponent): Promise<void> => {
    const resolved = await resolveComponentMetadata(component, storeOf(component), lookup, options.env, logger);
    problems.push(...resolved.problems);
    if (resolved.problems.length > 0) {
      failed.add(name);
      return;
    }
    resolvedStores.set(name, { component, name, type: component.manifest.spec.type, metadata: resolved.items });
    const fail = (problem: Omit<SecretsProblem, 'source' | 'component' | 'store'>): void => {
      failed.add(name);
      problems.push({ ...problem, source: component.source, component: name, store: name });
    };
    const type = component.manifest.spec.type;
    const version = component.manifest.spec.version;
    if (version !== undefined && version !== 'v1') {
      fail({ code: 'ERR_SECRET_STORE_CONFIG', path: 'spec.version', message: `version "${version}" is not supported (use v1)` });
      return;
    }
    const factory = findSecretStoreFactory(type, registry);
    if (!factory) {
      fail({
        code: 'ERR_SECRET_STORE_CONFIG',
        path: 'spec.type',
        message: `type "${type}" is not supported (supported: ${supportedSecretStoreTypes(registry).join(', ')})`,
      });
      return;
    }
    const metadata = Object.freeze(Object.fromEntries(resolved.items.map((item) => [item.name, item.value])));
    let ttlMs: number;
    try {
      ttlMs = durationField(metadata, name, CACHE_TTL_FIELD, 0);
    } catch (err) {
      fail({ code: 'ERR_SECRET_STORE_CONFIG', path: 'spec.metadata', field: CACHE_TTL_FIELD, message: (err as Error).message });
      return;
    }
    let store: SecretStore;
    try {
      store = await factory(component, {
        componentName: name,
        metadata,
        logger: logger.child({ store: name }),
        clock,
        env: options.env,
        mode: options.mode,
        workingDirectory,
      });
    } catch (err) {
      if (isWardenError(err)) fail({ code: err.code, message: err.message });
      else {
        logger.error({ store: name, error: describeError(err) }, 'secret store failed to start');
        fail({ code: 'ERR_SECRET_STORE_UNAVAILABLE', message: 'failed to start (details in the log)' });
      }
      return;
    }
    const cached = ttlMs > 0 ? new CachingSecretStore(store, { storeName: name, ttlMs, clock, metrics }) : store;
    live.set(name, {
      name,
      type,
      store: new InstrumentedSecretStore(cached, name, metrics),
      appScopes: Object.freeze([...(component.manifest.scopes ?? [])]),
      ...(component.manifest.metadata.namespace === undefined ? {} : { namespace: component.manifest.metadata.namespace }),
    });
    logger.info({ store: name, type, cacheTtlMs: ttlMs }, 'secret store started');
  };

  for (const [name, component] of [...storeComponents].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    await startStore(name, component);
  }

  const resolveAll = async (sink: SecretsProblem[]): Promise<ResolvedComponent[]> => {
    const out: ResolvedComponent[] = [];
    for (const component of loaded.components) {
      const name = componentName(component);
      const asStore = resolvedStores.get(name);
      if (asStore) {
        out.push(asStore);
        continue;
      }
      if (isSecretStoreComponent(component)) continue; // failed: its problems are already listed
      const resolved = await resolveComponentMetadata(component, storeOf(component), lookup, options.env, logger);
      sink.push(...resolved.problems);
      out.push({ component, name, type: component.manifest.spec.type, metadata: resolved.items });
    }
    return out;
  };

  const components = await resolveAll(problems);
  const stores = new SecretStoreSet([...live.values()], logger);
  if (problems.length > 0) {
    await stores.close();
    throw new SecretsProblemsError(problems);
  }
  logger.info({ components: components.length, stores: stores.size }, 'components resolved');
  return {
    components: Object.freeze(components),
    stores,
    scopes,
    refresh: async () => {
      const again: SecretsProblem[] = [];
      const refreshed = await resolveAll(again);
      if (again.length > 0) throw new SecretsProblemsError(again);
      return Object.freeze(refreshed);
    },
    close: () => stores.close(),
  };
}
