import { randomBytes } from 'node:crypto';
import { deployedAccessRules } from './deploy-manifests.js';
import type { KubeApiServer, AccessRule } from './kube-api-server/index.js';

/**
 * A small Dapr cluster in the Kubernetes API test server, for the kubernetes validator's
 * tests: pods with Dapr annotations, Configurations, and projected service-account tokens.
 */

export const CA_NAMESPACE = 'dapr-system';
export const CONTROL_PLANE_TRUST_DOMAIN = 'cluster.local';
export const SENTRY_AUDIENCE = `spiffe://${CONTROL_PLANE_TRUST_DOMAIN}/ns/${CA_NAMESPACE}/dapr-sentry`;
export const WARDEN_USERNAME = `system:serviceaccount:${CA_NAMESPACE}:dapr-sentry`;

/** Exactly what deploy/rbac.yaml grants Warden: the tests prove it is enough. */
export const VALIDATOR_RULES: readonly AccessRule[] = Object.freeze(
  deployedAccessRules(CA_NAMESPACE),
);

export interface TestPod {
  readonly namespace: string;
  readonly name: string;
  readonly uid: string;
  readonly serviceAccount: string;
}

export interface PodSpecInput {
  readonly namespace: string;
  readonly name: string;
  readonly serviceAccount?: string;
  readonly annotations?: Record<string, string>;
}

/** Creates (or replaces) a pod; returns what a token for it needs. */
export function putPod(server: KubeApiServer, input: PodSpecInput): TestPod {
  const serviceAccount = input.serviceAccount ?? `${input.name}-sa`;
  const stored = server.store.put({
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name: input.name,
      namespace: input.namespace,
      ...(input.annotations ? { annotations: input.annotations } : {}),
    },
    spec: {
      serviceAccountName: serviceAccount,
      containers: [{ name: 'app', image: 'example/app:1' }],
    },
  });
  const metadata = stored.metadata as { uid: string };
  return { namespace: input.namespace, name: input.name, uid: metadata.uid, serviceAccount };
}

export function putConfiguration(
  server: KubeApiServer,
  namespace: string,
  name: string,
  spec: Record<string, unknown>,
): void {
  server.store.put({
    apiVersion: 'dapr.io/v1alpha1',
    kind: 'Configuration',
    metadata: { name, namespace },
    spec,
  });
}

/** Every token a test hands out, so a test can grep logs and messages for them. */
export const issuedTokens: string[] = [];

export function randomToken(label: string): string {
  // Shaped like a JWT so that nothing treats it specially for not being one.
  const token = `eyJ${label}.${randomBytes(18).toString('base64url')}.${randomBytes(18).toString('base64url')}`;
  issuedTokens.push(token);
  return token;
}

export interface TokenOptions {
  /** Default: the pod's service account. */
  readonly serviceAccount?: string;
  /** Default: the pod's namespace. */
  readonly namespace?: string;
  /** Default: the pod's uid; null leaves it out of the review. */
  readonly podUid?: string | null;
  /** Default: [Sentry's SPIFFE ID]. */
  readonly audiences?: readonly string[];
  /** Default: the pod's name; null leaves it out. */
  readonly podName?: string | null;
}

/** A projected service-account token bound to `pod`, known to the server's TokenReview. */
export function podToken(
  server: KubeApiServer,
  pod: Pick<TestPod, 'namespace' | 'name' | 'uid' | 'serviceAccount'>,
  options: TokenOptions = {},
): string {
  const token = randomToken('pod');
  const podName = options.podName === undefined ? pod.name : options.podName;
  const podUid = options.podUid === undefined ? pod.uid : options.podUid;
  server.addServiceAccountToken(token, {
    namespace: options.namespace ?? pod.namespace,
    serviceAccount: options.serviceAccount ?? pod.serviceAccount,
    ...(podName === null ? {} : { podName }),
    ...(podUid === null ? {} : { podUid }),
    audiences: options.audiences ?? [SENTRY_AUDIENCE],
  });
  return token;
}

/** An unsigned JWT whose payload carries the pod claims of a projected token (the review supplies no extras). */
export function jwtWithPodClaims(pod: { name: string; uid?: string }): string {
  const header = Buffer.from(JSON.stringify({ alg: 'RS256', kid: 'test' })).toString('base64url');
  const payload = Buffer.from(
    JSON.stringify({
      aud: [SENTRY_AUDIENCE],
      sub: 'system:serviceaccount:x:y',
      'kubernetes.io': { pod: { name: pod.name, ...(pod.uid ? { uid: pod.uid } : {}) } },
    }),
  ).toString('base64url');
  const token = `${header}.${payload}.${randomBytes(32).toString('base64url')}`;
  issuedTokens.push(token);
  return token;
}
