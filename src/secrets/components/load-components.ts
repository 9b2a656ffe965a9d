import type { Logger } from '../../shared/logger.js';
import { silentLogger } from '../../shared/logger.js';
import { formatIssuePath, type SecretsProblem } from '../problems.js';
import { secretNameProblem } from '../secret-name.js';
import { componentSchema, effectiveSecretKeyRef, type LoadedComponent } from './component.js';
import { documentKind, readManifestDocuments, type ManifestDocument } from './manifest-documents.js';

export interface LoadedComponents {
  readonly components: LoadedComponent[];
  readonly problems: SecretsProblem[];
  /**
   * Names of Components refused for a problem already reported, so that resolution does not
   * report every reference to them a second time as "store not found".
   */
  readonly rejectedNames: ReadonlySet<string>;
}

function declaredName(document: unknown): string | undefined {
  const metadata = (document as { metadata?: unknown }).metadata;
  if (metadata === null || typeof metadata !== 'object') return undefined;
  const name = (metadata as { name?: unknown }).name;
  return typeof name === 'string' ? name : undefined;
}

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const child of Object.values(value)) deepFreeze(child);
  }
  return value;
}

/** Checks what the schema cannot express: one value source per item, no duplicate items. */
function semanticProblems(component: LoadedComponent): SecretsProblem[] {
  const problems: SecretsProblem[] = [];
  const name = component.manifest.metadata.name;
  const seen = new Set<string>();
  (component.manifest.spec.metadata ?? []).forEach((item, index) => {
    const at = (suffix = ''): Pick<SecretsProblem, 'source' | 'path' | 'component' | 'field'> => ({
      source: component.source,
      path: `spec.metadata[${index}]${suffix}`,
      component: name,
      field: item.name,
    });
    if (seen.has(item.name)) {
      problems.push({ code: 'ERR_COMPONENT_INVALID', ...at('.name'), message: 'is listed twice' });
    }
    seen.add(item.name);
    const ref = effectiveSecretKeyRef(item);
    const sources = [item.value !== undefined, ref !== undefined, item.envRef !== undefined].filter(Boolean).length;
    if (sources > 1) {
      problems.push({ code: 'ERR_COMPONENT_INVALID', ...at(), message: 'has more than one of value, secretKeyRef and envRef' });
    }
    if (ref) {
      if (ref.name === '') {
        problems.push({ code: 'ERR_COMPONENT_INVALID', ...at('.secretKeyRef.name'), message: 'must not be empty' });
      } else {
        const problem = secretNameProblem(ref.name);
        if (problem) problems.push({ code: 'ERR_SECRET_NAME_INVALID', ...at('.secretKeyRef.name'), message: `secret name ${problem}` });
      }
      if (ref.key !== undefined && ref.key === '') {
        problems.push({ code: 'ERR_COMPONENT_INVALID', ...at('.secretKeyRef.key'), message: 'must not be empty (omit it to use the secret name)' });
      }
    }
    if (item.envRef !== undefined && !/^[A-Za-z_][A-Za-z0-9_]*$/.test(item.envRef)) {
      problems.push({ code: 'ERR_COMPONENT_INVALID', ...at('.envRef'), message: 'is not an environment variable name' });
    }
  });
  return problems;
}

/**
 * Turns parsed documents into validated Components: documents of other kinds
 * (Configuration, Subscription, Resiliency, …) are skipped; every problem in every
 * Component is reported with its file and path; two Components with one name are refused.
 */
export function componentsFromDocuments(documents: readonly ManifestDocument[], logger: Logger = silentLogger): LoadedComponents {
  const components: LoadedComponent[] = [];
  const problems: SecretsProblem[] = [];
  const bySource = new Map<string, string>();
  const rejectedNames = new Set<string>();
  for (const { source, document } of documents) {
    const kind = documentKind(document);
    if (kind !== 'Component') {
      logger.debug({ source, kind: kind ?? null }, 'skipping a document that is not a Component');
      continue;
    }
    const parsed = componentSchema.safeParse(document);
    if (!parsed.success) {
      for (const issue of parsed.error.issues) {
        problems.push({ code: 'ERR_COMPONENT_INVALID', source, path: formatIssuePath(issue.path), message: issue.message });
      }
      const name = declaredName(document);
      if (name !== undefined) rejectedNames.add(name);
      continue;
    }
    const component: LoadedComponent = Object.freeze({ source, manifest: deepFreeze(parsed.data) });
    const semantic = semanticProblems(component);
    if (semantic.length > 0) {
      problems.push(...semantic);
      rejectedNames.add(component.manifest.metadata.name);
      continue;
    }
    const name = component.manifest.metadata.name;
    const earlier = bySource.get(name);
    if (earlier !== undefined) {
      problems.push({ code: 'ERR_COMPONENT_INVALID', source, path: 'metadata.name', component: name, message: `is also the name of the Component in ${earlier}` });
      continue;
    }
    bySource.set(name, source);
    components.push(component);
  }
  return { components, problems, rejectedNames };
}

/** Loads every Component from files and directories (`.yaml`, `.yml`, `.json`, multi-document YAML). */
export async function loadComponents(resourcesPaths: readonly string[], logger: Logger = silentLogger): Promise<LoadedComponents> {
  const read = await readManifestDocuments(resourcesPaths);
  const loaded = componentsFromDocuments(read.documents, logger);
  return { ...loaded, problems: [...read.problems, ...loaded.problems] };
}
