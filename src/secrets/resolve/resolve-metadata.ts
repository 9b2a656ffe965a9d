import type { WardenEnv } from '../../shared/env.js';
import { describeError, isWardenError } from '../../shared/errors.js';
import type { Logger } from '../../shared/logger.js';
import {
  componentName,
  effectiveSecretKeyRef,
  metadataValueToString,
  type LoadedComponent,
} from '../components/component.js';
import type { SecretsProblem } from '../problems.js';
import type { SecretData, SecretStore } from '../secret-store.js';
import { isReservedEnvName } from '../stores/env/env-secret-store.js';

export type StoreLookupResult =
  | { readonly kind: 'live'; readonly store: SecretStore }
  /** No Component of that name. */
  | { readonly kind: 'missing' }
  /** A Component of that name exists but is not a secret store. */
  | { readonly kind: 'not-a-store' }
  /** The store did not start (its problems are listed already). */
  | { readonly kind: 'failed' }
  /** The Component was malformed (its problems are listed already). */
  | { readonly kind: 'rejected' };

/** Finds (starting on first use) the store a Component reads its references from. */
export type StoreLookup = (storeName: string) => Promise<StoreLookupResult>;

/** One `spec.metadata` item with its value resolved. */
export interface ResolvedMetadataItem {
  readonly name: string;
  /** The resolved value: a secret for secretKeyRef/envRef items. */
  readonly value: string;
  readonly source: 'value' | 'secretKeyRef' | 'envRef';
  readonly secretKeyRef?: { readonly name: string; readonly key: string };
  readonly envRef?: string;
  /** The store a secretKeyRef was read from. */
  readonly store?: string;
}

export interface ResolvedMetadata {
  readonly items: readonly ResolvedMetadataItem[];
  readonly problems: readonly SecretsProblem[];
}

const STORE_PROBLEM: Record<Exclude<StoreLookupResult['kind'], 'live' | 'rejected'>, string> = {
  missing: 'secret store not found (no Component of that name)',
  'not-a-store': 'is not a secret store Component (its spec.type does not start with "secretstores.")',
  failed: 'secret store did not start (see its own problems)',
};

/**
 * Resolves one Component's metadata: `value` as is (any JSON → string), `secretKeyRef` from
 * the store (`key` defaults to `name`), `envRef` from the environment. Every problem is
 * collected; none carries a value. One secret read once per Component even when several
 * items use keys of it.
 */
export async function resolveComponentMetadata(
  component: LoadedComponent,
  storeName: string | undefined,
  lookup: StoreLookup,
  env: WardenEnv,
  logger: Logger,
): Promise<ResolvedMetadata> {
  const name = componentName(component);
  const items: ResolvedMetadataItem[] = [];
  const problems: SecretsProblem[] = [];
  const reads = new Map<string, Promise<SecretData>>();
  let storeReported = false;

  for (const [index, item] of (component.manifest.spec.metadata ?? []).entries()) {
    const where = { source: component.source, path: `spec.metadata[${index}]`, component: name, field: item.name };
    const ref = effectiveSecretKeyRef(item);
    if (ref) {
      const key = ref.key ?? ref.name;
      const refProblem = (message: string, code: SecretsProblem['code'] = 'ERR_SECRET_REF_UNRESOLVED'): void => {
        problems.push({ code, ...where, store: storeName, secret: ref.name, key, message });
      };
      if (storeName === undefined) {
        refProblem('no secret store to resolve it from: set auth.secretStore (standalone mode has no default store)');
        continue;
      }
      const found = await lookup(storeName);
      if (found.kind !== 'live') {
        // one problem per Component for a store that is not there, not one per field
        if (found.kind !== 'rejected' && !storeReported) refProblem(STORE_PROBLEM[found.kind]);
        storeReported = true;
        continue;
      }
      let read = reads.get(ref.name);
      if (!read) {
        read = found.store.get(ref.name);
        reads.set(ref.name, read);
      }
      let data: SecretData;
      try {
        data = await read;
      } catch (err) {
        refProblem(isWardenError(err) ? `${err.message} (${err.code})` : 'the store failed to read it (details in the log)');
        if (!isWardenError(err)) logger.error({ component: name, field: item.name, store: storeName, secretName: ref.name, error: describeError(err) }, 'secret read failed');
        continue;
      }
      const value = Object.prototype.hasOwnProperty.call(data, key) ? data[key] : undefined;
      if (value === undefined) {
        refProblem(`the secret has no key "${key}"`, 'ERR_SECRET_REF_UNRESOLVED');
        continue;
      }
      logger.debug({ component: name, field: item.name, store: storeName, secretName: ref.name }, 'secretKeyRef resolved');
      items.push({ name: item.name, value, source: 'secretKeyRef', secretKeyRef: { name: ref.name, key }, store: storeName });
      continue;
    }
    if (item.envRef !== undefined) {
      const variable = item.envRef;
      const value = isReservedEnvName(variable) || !Object.prototype.hasOwnProperty.call(env.raw, variable) ? undefined : env.raw[variable];
      if (value === undefined) {
        problems.push({
          code: 'ERR_SECRET_REF_UNRESOLVED',
          ...where,
          path: `${where.path}.envRef`,
          message: isReservedEnvName(variable)
            ? `environment variable ${variable} is reserved (DAPR_* and APP_API_TOKEN are never readable)`
            : `environment variable ${variable} is not set`,
        });
        continue;
      }
      items.push({ name: item.name, value, source: 'envRef', envRef: variable });
      continue;
    }
    items.push({ name: item.name, value: metadataValueToString(item.value), source: 'value' });
  }
  return { items, problems };
}
