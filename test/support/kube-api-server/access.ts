import type { KubeVerb } from './resources.js';

/**
 * Bearer tokens and what they may do: a small RBAC-shaped table. A rule is a Role (when
 * `namespaces` is given, it applies only inside them, as a RoleBinding would) or a
 * ClusterRole (no `namespaces`: every namespace and cluster-scoped resources).
 */
export interface AccessRule {
  readonly verbs: readonly (KubeVerb | '*')[];
  /** Plural resource names, or '*'. */
  readonly resources: readonly string[];
  /** '' for core; default ['*']. */
  readonly apiGroups?: readonly string[];
  readonly namespaces?: readonly string[];
  /** As RBAC: only requests naming one of these objects match (never create, list or watch without a name). */
  readonly resourceNames?: readonly string[];
}

export interface TokenIdentity {
  readonly username: string;
  readonly uid?: string;
  readonly groups?: readonly string[];
  /** 'all' is cluster-admin. */
  readonly rules: readonly AccessRule[] | 'all';
}

export interface AccessRequest {
  readonly verb: KubeVerb;
  readonly group: string;
  readonly resource: string;
  readonly namespace: string | undefined;
  readonly name: string | undefined;
}

function ruleAllows(rule: AccessRule, req: AccessRequest): boolean {
  const groups = rule.apiGroups ?? ['*'];
  if (!groups.includes('*') && !groups.includes(req.group)) return false;
  if (!rule.resources.includes('*') && !rule.resources.includes(req.resource)) return false;
  if (!rule.verbs.includes('*') && !rule.verbs.includes(req.verb)) return false;
  if (
    rule.namespaces !== undefined &&
    (req.namespace === undefined || !rule.namespaces.includes(req.namespace))
  )
    return false;
  if (rule.resourceNames !== undefined && rule.resourceNames.length > 0) {
    if (req.name === undefined || !rule.resourceNames.includes(req.name)) return false;
  }
  return true;
}

export function isAllowed(identity: TokenIdentity, req: AccessRequest): boolean {
  if (identity.rules === 'all') return true;
  return identity.rules.some((rule) => ruleAllows(rule, req));
}

/** What a TokenReview says about a token it is asked about. */
export interface TokenReviewEntry {
  readonly username: string;
  readonly uid?: string;
  readonly groups?: readonly string[];
  readonly extra?: Readonly<Record<string, readonly string[]>>;
  /** The token's own audiences (a projected token's `aud`); default: the API server's audiences. */
  readonly audiences?: readonly string[];
  /** Answer unauthenticated with this error (an expired or revoked token). */
  readonly error?: string;
}

export interface ServiceAccountTokenInput {
  readonly namespace: string;
  readonly serviceAccount: string;
  readonly podName?: string;
  readonly podUid?: string;
  readonly audiences?: readonly string[];
  readonly uid?: string;
}

/** The identity a projected service-account token reviews as, including the pod-bound extras. */
export function serviceAccountReview(input: ServiceAccountTokenInput): TokenReviewEntry {
  const extra: Record<string, string[]> = {};
  if (input.podName !== undefined) extra['authentication.kubernetes.io/pod-name'] = [input.podName];
  if (input.podUid !== undefined) extra['authentication.kubernetes.io/pod-uid'] = [input.podUid];
  const entry: TokenReviewEntry = {
    username: `system:serviceaccount:${input.namespace}:${input.serviceAccount}`,
    uid: input.uid ?? `sa-${input.namespace}-${input.serviceAccount}`,
    groups: [
      'system:serviceaccounts',
      `system:serviceaccounts:${input.namespace}`,
      'system:authenticated',
    ],
    extra,
    ...(input.audiences ? { audiences: input.audiences } : {}),
  };
  return entry;
}
