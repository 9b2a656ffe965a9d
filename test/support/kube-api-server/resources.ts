/**
 * The resource types the test API server knows, described the way the real API server's
 * registry describes them: group/version/resource, kind, scope, verbs, and the few strategy
 * switches whose behaviour clients can observe (unconditional update, create on update).
 */
export type KubeVerb =
  'get' | 'list' | 'watch' | 'create' | 'update' | 'patch' | 'delete' | 'deletecollection';

export const ALL_VERBS: readonly KubeVerb[] = [
  'create',
  'delete',
  'deletecollection',
  'get',
  'list',
  'patch',
  'update',
  'watch',
];

export interface ResourceType {
  /** '' for the core group. */
  readonly group: string;
  readonly version: string;
  /** The plural resource name used in paths and RBAC, e.g. `secrets`. */
  readonly resource: string;
  readonly singularName: string;
  readonly kind: string;
  readonly listKind: string;
  readonly namespaced: boolean;
  readonly verbs: readonly KubeVerb[];
  /** How metadata.name is validated: RFC 1123 subdomain (most) or label (namespaces). */
  readonly nameRule: 'subdomain' | 'label';
  /** PUT without metadata.resourceVersion is accepted (true for most core types, false for leases and CRDs). */
  readonly allowUnconditionalUpdate: boolean;
  /** PUT of a missing object creates it (leases). */
  readonly allowCreateOnUpdate: boolean;
  /** metadata.generation is set and bumped on spec changes (CRDs). */
  readonly tracksGeneration: boolean;
  /** A CustomResourceDefinition-backed type: list items keep kind/apiVersion, DELETE returns the object. */
  readonly custom: boolean;
  /** Field selectors besides metadata.name / metadata.namespace. */
  readonly extraFieldSelectors: readonly string[];
  /** Create-only virtual resources (tokenreviews) are never stored. */
  readonly virtual: boolean;
}

export type ResourceTypeInput = Pick<
  ResourceType,
  'group' | 'version' | 'resource' | 'kind' | 'namespaced'
> &
  Partial<Omit<ResourceType, 'group' | 'version' | 'resource' | 'kind' | 'namespaced'>>;

export function defineResource(input: ResourceTypeInput): ResourceType {
  const custom = input.custom ?? false;
  return Object.freeze({
    singularName: input.kind.toLowerCase(),
    listKind: `${input.kind}List`,
    verbs: ALL_VERBS,
    nameRule: 'subdomain' as const,
    allowUnconditionalUpdate: !custom,
    allowCreateOnUpdate: false,
    tracksGeneration: custom,
    extraFieldSelectors: [],
    virtual: false,
    ...input,
    custom,
  });
}

export function apiVersionOf(rt: ResourceType): string {
  return rt.group === '' ? rt.version : `${rt.group}/${rt.version}`;
}

/** `secrets`, `leases.coordination.k8s.io`: how the real server names a resource in messages. */
export function qualifiedResource(rt: ResourceType): string {
  return rt.group === '' ? rt.resource : `${rt.resource}.${rt.group}`;
}

/** `Secret`, `Lease.coordination.k8s.io`: how Invalid errors name the kind. */
export function qualifiedKind(rt: ResourceType): string {
  return rt.group === '' ? rt.kind : `${rt.kind}.${rt.group}`;
}

export const BUILT_IN_RESOURCES: readonly ResourceType[] = [
  defineResource({
    group: '',
    version: 'v1',
    resource: 'secrets',
    kind: 'Secret',
    namespaced: true,
    extraFieldSelectors: ['type'],
  }),
  defineResource({
    group: '',
    version: 'v1',
    resource: 'configmaps',
    kind: 'ConfigMap',
    namespaced: true,
  }),
  defineResource({
    group: '',
    version: 'v1',
    resource: 'namespaces',
    kind: 'Namespace',
    namespaced: false,
    nameRule: 'label',
    verbs: ['create', 'delete', 'get', 'list', 'patch', 'update', 'watch'],
    extraFieldSelectors: ['status.phase'],
  }),
  defineResource({
    group: '',
    version: 'v1',
    resource: 'pods',
    kind: 'Pod',
    namespaced: true,
    extraFieldSelectors: ['spec.nodeName', 'spec.serviceAccountName', 'status.phase'],
  }),
  defineResource({
    group: '',
    version: 'v1',
    resource: 'serviceaccounts',
    kind: 'ServiceAccount',
    namespaced: true,
  }),
  defineResource({
    group: 'coordination.k8s.io',
    version: 'v1',
    resource: 'leases',
    kind: 'Lease',
    namespaced: true,
    allowUnconditionalUpdate: false,
    allowCreateOnUpdate: true,
  }),
  defineResource({
    group: 'dapr.io',
    version: 'v1alpha1',
    resource: 'configurations',
    kind: 'Configuration',
    namespaced: true,
    custom: true,
  }),
  defineResource({
    group: 'authentication.k8s.io',
    version: 'v1',
    resource: 'tokenreviews',
    kind: 'TokenReview',
    namespaced: false,
    verbs: ['create'],
    virtual: true,
  }),
];

/** Lookup by group/version/resource, by plural name alone, or by `resource.group`. */
export class ResourceRegistry {
  readonly #types: ResourceType[] = [];

  constructor(initial: readonly ResourceType[] = BUILT_IN_RESOURCES) {
    for (const rt of initial) this.register(rt);
  }

  register(rt: ResourceType): void {
    if (this.find(rt.group, rt.version, rt.resource)) {
      throw new TypeError(`resource ${qualifiedResource(rt)}/${rt.version} is already registered`);
    }
    this.#types.push(rt);
  }

  all(): readonly ResourceType[] {
    return this.#types;
  }

  find(group: string, version: string, resource: string): ResourceType | undefined {
    return this.#types.find(
      (t) => t.group === group && t.version === version && t.resource === resource,
    );
  }

  /** `secrets`, `leases`, `leases.coordination.k8s.io` — ambiguous plain names throw. */
  resolve(ref: string): ResourceType {
    const matches = this.#types.filter((t) => t.resource === ref || qualifiedResource(t) === ref);
    if (matches.length !== 1) {
      throw new TypeError(
        matches.length === 0
          ? `unknown resource ${ref}`
          : `ambiguous resource ${ref}; qualify it with its group`,
      );
    }
    return matches[0] as ResourceType;
  }

  byKind(apiVersion: string, kind: string): ResourceType {
    const found = this.#types.find((t) => apiVersionOf(t) === apiVersion && t.kind === kind);
    if (!found) throw new TypeError(`unknown kind ${apiVersion} ${kind}`);
    return found;
  }

  groups(): string[] {
    return [...new Set(this.#types.map((t) => t.group).filter((g) => g !== ''))];
  }

  versionsOf(group: string): string[] {
    return [...new Set(this.#types.filter((t) => t.group === group).map((t) => t.version))];
  }
}
