import { isDns1123Label, isDns1123Subdomain } from '../../../shared/kube-names.js';
import { decodeClaims, parseCompactJwt } from '../jwks/compact-jwt.js';

/**
 * Reading a TokenReview answer. Pure functions: what the API server said in, a verdict
 * out. Reasons name the failed check and never quote the token.
 */

/** Dapr's legacy token audience, still sent by older sidecars. */
export const LEGACY_SENTRY_AUDIENCE = 'dapr.io/sentry';
export const POD_NAME_EXTRA = 'authentication.kubernetes.io/pod-name';
export const POD_UID_EXTRA = 'authentication.kubernetes.io/pod-uid';

/** The fields of `TokenReview.status` Warden reads (as client-node deserialises them). */
export interface TokenReviewStatusLike {
  readonly authenticated?: boolean;
  readonly error?: string;
  readonly audiences?: readonly string[];
  readonly user?: {
    readonly username?: string;
    readonly extra?: Readonly<Record<string, readonly string[]>>;
  };
}

export interface ServiceAccountName {
  readonly namespace: string;
  readonly name: string;
}

/** Who a reviewed token belongs to: a service account, bound (we require) to one pod. */
export interface ReviewedToken {
  readonly serviceAccount: ServiceAccountName;
  readonly podName: string;
  /** The bound pod's uid when the review (or the token) carries it. */
  readonly podUid: string | undefined;
  /** Where the pod name came from, for the log. */
  readonly podNameSource: 'review' | 'token-claim';
}

export type ReviewVerdict =
  | { readonly ok: true; readonly token: ReviewedToken }
  | { readonly ok: false; readonly reason: string };

const SERVICE_ACCOUNT_PREFIX = 'system:serviceaccount:';

/**
 * `system:serviceaccount:<namespace>:<name>`, exactly: a namespace that is a DNS label and a
 * name that is a DNS subdomain, nothing before or after. Anything else is null.
 */
export function parseServiceAccountUsername(username: string): ServiceAccountName | null {
  if (!username.startsWith(SERVICE_ACCOUNT_PREFIX)) return null;
  const parts = username.slice(SERVICE_ACCOUNT_PREFIX.length).split(':');
  if (parts.length !== 2) return null;
  const [namespace, name] = parts as [string, string];
  if (!isDns1123Label(namespace) || !isDns1123Subdomain(name)) return null;
  return { namespace, name };
}

/**
 * The `kubernetes.io` claims of a projected service-account token, read WITHOUT verifying
 * the signature. Only call this after the API server has authenticated the same token.
 */
export function unverifiedPodClaims(token: string): { name?: string; uid?: string } {
  const parsed = parseCompactJwt(token);
  if (!parsed.ok) return {};
  const claims = decodeClaims(parsed.value.payloadSegment);
  if (!claims.ok) return {};
  const kubernetes = claims.value['kubernetes.io'];
  if (kubernetes === null || typeof kubernetes !== 'object') return {};
  const pod = (kubernetes as { pod?: unknown }).pod;
  if (pod === null || typeof pod !== 'object') return {};
  const { name, uid } = pod as { name?: unknown; uid?: unknown };
  return {
    ...(typeof name === 'string' && name.length > 0 ? { name } : {}),
    ...(typeof uid === 'string' && uid.length > 0 ? { uid } : {}),
  };
}

function firstExtra(
  extra: Readonly<Record<string, readonly string[]>> | undefined,
  key: string,
): string | undefined {
  const values = extra?.[key];
  if (!Array.isArray(values)) return undefined;
  const first: unknown = values[0];
  return typeof first === 'string' && first.length > 0 ? first : undefined;
}

/**
 * Judges a TokenReview answer for a token reviewed with `requestedAudiences`:
 * authenticated (absent means false), no error, `status.audiences` intersecting the request
 * (Dapr does not check this), a service-account username, and a pod the token is bound to
 * (the review's pod-name extra, else the token's own `kubernetes.io.pod.name` claim, which
 * is trusted only because the review authenticated the token).
 */
export function judgeTokenReview(
  status: TokenReviewStatusLike | undefined,
  requestedAudiences: readonly string[],
  token: string,
): ReviewVerdict {
  if (status?.authenticated !== true) {
    const audienceProblem = /audience/i.test(status?.error ?? '');
    return {
      ok: false,
      reason: audienceProblem
        ? `the API server did not authenticate the token: its audience is not ${requestedAudiences.join(' or ')}`
        : 'the API server did not authenticate the token (expired, revoked or not a Kubernetes token)',
    };
  }
  if (typeof status.error === 'string' && status.error.length > 0)
    return { ok: false, reason: 'the token review reported an error alongside authentication' };
  const audiences = Array.isArray(status.audiences) ? status.audiences : [];
  if (!audiences.some((a) => requestedAudiences.includes(a))) {
    return {
      ok: false,
      reason: `the token review's audiences do not include ${requestedAudiences.join(' or ')}`,
    };
  }
  const username = status.user?.username;
  const serviceAccount =
    typeof username === 'string' ? parseServiceAccountUsername(username) : null;
  if (!serviceAccount) {
    return {
      ok: false,
      reason:
        'the token does not belong to a service account (username is not system:serviceaccount:<namespace>:<name>)',
    };
  }
  const extra = status.user?.extra;
  let podName = firstExtra(extra, POD_NAME_EXTRA);
  let podUid = firstExtra(extra, POD_UID_EXTRA);
  let podNameSource: ReviewedToken['podNameSource'] = 'review';
  if (podName === undefined) {
    const claims = unverifiedPodClaims(token);
    podName = claims.name;
    podUid = claims.uid;
    podNameSource = 'token-claim';
  }
  if (podName === undefined) {
    return {
      ok: false,
      reason: 'the token is not bound to a pod (use a projected service-account token)',
    };
  }
  if (!isDns1123Subdomain(podName))
    return { ok: false, reason: 'the pod name the token is bound to is not a valid pod name' };
  return { ok: true, token: { serviceAccount, podName, podUid, podNameSource } };
}
