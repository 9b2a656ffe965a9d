import {
  AuthenticationV1Api,
  CoreV1Api,
  CustomObjectsApi,
  type KubeConfig,
  type V1TokenReview,
} from '@kubernetes/client-node';
import { systemClock, type Clock } from '../../../shared/clock.js';
import { WardenError } from '../../../shared/errors.js';
import { requestTimeout, type KubeCallFailure } from '../../../shared/kube-client.js';
import { isDns1123Subdomain } from '../../../shared/kube-names.js';
import { KubeReflector, type ReflectorListPage } from '../../../shared/kube-reflector.js';
import {
  callKubeWithRetry,
  describeKubeFailure,
  type KubeRetryDependencies,
  type KubeRetryPolicy,
} from '../../../shared/kube-retry.js';
import { silentLogger, type Logger } from '../../../shared/logger.js';
import { printable, trustDomainProblem } from '../../../shared/spiffe-id.js';
import type { CheckedSignRequest } from '../../request-rules.js';
import type { ValidatedIdentity, Validator } from '../../validator.js';
import {
  expectedIdentity,
  projectConfiguration,
  projectPod,
  trustDomainFor,
  type ConfigurationRecord,
  type PodRecord,
} from './pod-identity.js';
import {
  judgeTokenReview,
  LEGACY_SENTRY_AUDIENCE,
  type TokenReviewStatusLike,
} from './token-review.js';

export const DAPR_CONFIGURATION_GROUP = 'dapr.io';
export const DAPR_CONFIGURATION_VERSION = 'v1alpha1';
export const DAPR_CONFIGURATION_PLURAL = 'configurations';

/**
 * Under the 3 s a daprd gives each SignCertificate try, so a client sees UNAVAILABLE from us
 * rather than its own deadline.
 */
export const DEFAULT_REVIEW_POLICY: KubeRetryPolicy = Object.freeze({
  deadlineMs: 2_500,
  attemptTimeoutMs: 1_500,
});
/** Reads of a pod or Configuration the caches do not (yet) hold. */
export const DEFAULT_LOOKUP_POLICY: KubeRetryPolicy = Object.freeze({
  deadlineMs: 1_500,
  attemptTimeoutMs: 1_000,
});
/** How long the caches may be cut off from the API server before the validator stops answering. */
export const DEFAULT_MAX_CACHE_DISCONNECT_MS = 10_000;
/** How long start() waits for the first sync before resolving anyway (readiness says the rest). */
export const DEFAULT_START_SYNC_WAIT_MS = 3_000;
const LIST_PAGE_SIZE = 500;
/** A list page that takes longer than this is abandoned and the list retried (a hung API server). */
export const DEFAULT_LIST_PAGE_TIMEOUT_MS = 30_000;

export interface KubernetesValidatorOptions {
  readonly kubeConfig: KubeConfig;
  /** The CA's namespace (env NAMESPACE): control-plane pods are accepted only there. */
  readonly caNamespace: string;
  /** Sentry's SPIFFE ID (ServeSettings.validatorAudience): the audience tokens must carry. */
  readonly audience: string;
  /** The trust domain control-plane pods are issued in (the CA's own, --trust-domain). */
  readonly controlPlaneTrustDomain: string;
  readonly clock?: Clock;
  readonly logger?: Logger;
  readonly reviewPolicy?: KubeRetryPolicy;
  readonly lookupPolicy?: KubeRetryPolicy;
  readonly maxCacheDisconnectMs?: number;
  readonly startSyncWaitMs?: number;
  /** One list page taking longer is abandoned and the list retried (default 30 s). */
  readonly listPageTimeoutMs?: number;
  /** Watch request lifetime (tests shorten it); default 5-6 minutes. */
  readonly watchTimeoutSeconds?: number;
  readonly retry?: KubeRetryDependencies;
}

export interface KubernetesValidator extends Validator {
  readonly name: 'kubernetes';
  /** Resolves when both caches have their first list (or the validator is closed). */
  whenSynced(): Promise<void>;
  /** For /healthz detail and tests. */
  cacheState(): {
    readonly pods: { synced: boolean; connected: boolean; size: number };
    readonly configurations: { synced: boolean; connected: boolean; size: number };
  };
}

function denied(reason: string): WardenError {
  return new WardenError('ERR_IDENTITY_DENIED', `kubernetes validator: ${reason}`);
}

function unavailable(reason: string): WardenError {
  return new WardenError('ERR_VALIDATOR_UNAVAILABLE', `kubernetes validator: ${reason}`);
}

/** What an API failure of one of Warden's own calls means to a caller: never a yes. */
function apiFailure(
  what: string,
  failure: KubeCallFailure,
  deadlineExceeded: boolean,
): WardenError {
  if (failure.kind === 'status' && failure.code === 401) {
    return unavailable(
      `${what}: the API server does not accept Warden's own credentials (401); check the service account token or kubeconfig`,
    );
  }
  if (failure.kind === 'status' && failure.code === 403) {
    return unavailable(
      `${what}: Warden's service account lacks RBAC permission (403); apply deploy/rbac.yaml`,
    );
  }
  const suffix = deadlineExceeded ? ' (gave up at the deadline)' : '';
  return unavailable(
    `${what}: the API server could not answer: ${describeKubeFailure(failure)}${suffix}`,
  );
}

interface ListBody {
  readonly items?: readonly unknown[];
  readonly metadata?: {
    readonly resourceVersion?: string;
    readonly continue?: string;
    readonly _continue?: string;
  };
}

function listPageOf(body: ListBody): ReflectorListPage {
  return {
    items: body.items ?? [],
    resourceVersion: body.metadata?.resourceVersion ?? '',
    continueToken: body.metadata?._continue ?? body.metadata?.continue,
  };
}

/**
 * Dapr's kubernetes validator, stricter: a TokenReview proves whose token it is (audience
 * Sentry's SPIFFE ID or Dapr's legacy `dapr.io/sentry`, checked in the answer too), the pod
 * the token is bound to must exist with that service account (and uid, when the review says
 * it), and that pod's annotations alone decide the id and, through its Configuration, the
 * trust domain. Pods and Configurations are mirrored by watches; until both mirrors have
 * synced, and whenever they have been cut off from the API server for too long, the answer
 * is ERR_VALIDATOR_UNAVAILABLE. Nothing here ever answers yes when it cannot check.
 */
export function createKubernetesValidator(
  options: KubernetesValidatorOptions,
): KubernetesValidator {
  if (typeof options.caNamespace !== 'string' || options.caNamespace.length === 0)
    throw new TypeError('createKubernetesValidator needs caNamespace');
  if (typeof options.audience !== 'string' || options.audience.length === 0)
    throw new TypeError('createKubernetesValidator needs an audience');
  if (trustDomainProblem(options.controlPlaneTrustDomain) !== null)
    throw new TypeError('createKubernetesValidator needs a valid controlPlaneTrustDomain');
  const clock = options.clock ?? systemClock;
  const logger = (options.logger ?? silentLogger).child({ component: 'kubernetes-validator' });
  const reviewPolicy = options.reviewPolicy ?? DEFAULT_REVIEW_POLICY;
  const lookupPolicy = options.lookupPolicy ?? DEFAULT_LOOKUP_POLICY;
  const maxDisconnectMs = options.maxCacheDisconnectMs ?? DEFAULT_MAX_CACHE_DISCONNECT_MS;
  const audiences = Object.freeze([options.audience, LEGACY_SENTRY_AUDIENCE]);
  const listPageTimeoutMs = options.listPageTimeoutMs ?? DEFAULT_LIST_PAGE_TIMEOUT_MS;
  const retryDeps: KubeRetryDependencies = { clock, ...options.retry };

  const authentication = options.kubeConfig.makeApiClient(AuthenticationV1Api);
  const core = options.kubeConfig.makeApiClient(CoreV1Api);
  const custom = options.kubeConfig.makeApiClient(CustomObjectsApi);

  const pods = new KubeReflector<PodRecord>({
    kubeConfig: options.kubeConfig,
    name: 'pods',
    watchPath: '/api/v1/pods',
    listPage: async (continueToken) =>
      listPageOf(
        await core.listPodForAllNamespaces(
          {
            limit: LIST_PAGE_SIZE,
            ...(continueToken === undefined ? {} : { _continue: continueToken }),
          },
          requestTimeout(listPageTimeoutMs),
        ),
      ),
    project: projectPod,
    logger,
    clock,
    ...(options.watchTimeoutSeconds === undefined
      ? {}
      : { watchTimeoutSeconds: options.watchTimeoutSeconds }),
  });
  const configurations = new KubeReflector<ConfigurationRecord>({
    kubeConfig: options.kubeConfig,
    name: 'configurations.dapr.io',
    watchPath: `/apis/${DAPR_CONFIGURATION_GROUP}/${DAPR_CONFIGURATION_VERSION}/${DAPR_CONFIGURATION_PLURAL}`,
    listPage: async (continueToken) =>
      listPageOf(
        (await custom.listCustomObjectForAllNamespaces(
          {
            group: DAPR_CONFIGURATION_GROUP,
            version: DAPR_CONFIGURATION_VERSION,
            plural: DAPR_CONFIGURATION_PLURAL,
            limit: LIST_PAGE_SIZE,
            ...(continueToken === undefined ? {} : { _continue: continueToken }),
          },
          requestTimeout(listPageTimeoutMs),
        )) as ListBody,
      ),
    project: projectConfiguration,
    logger,
    clock,
    ...(options.watchTimeoutSeconds === undefined
      ? {}
      : { watchTimeoutSeconds: options.watchTimeoutSeconds }),
  });
  const reflectors = [pods, configurations] as const;
  let closed = false;

  /** Null when the caches can be answered from; else why not. */
  function unusableReason(): string | null {
    if (closed) return 'the validator is closed';
    const unsynced = reflectors.filter((r) => !r.hasSynced).map((r) => r.name);
    if (unsynced.length > 0)
      return `not ready: the ${unsynced.join(' and ')} ${unsynced.length === 1 ? 'cache has' : 'caches have'} not synced with the API server yet`;
    for (const reflector of reflectors) {
      const cutOffMs = reflector.disconnectedForMs();
      if (cutOffMs > maxDisconnectMs) {
        return `not ready: the ${reflector.name} cache has been cut off from the API server for ${Math.round(cutOffMs / 1000)} s`;
      }
    }
    return null;
  }

  async function reviewToken(token: string): Promise<TokenReviewStatusLike | undefined> {
    const body: V1TokenReview = {
      apiVersion: 'authentication.k8s.io/v1',
      kind: 'TokenReview',
      spec: { token, audiences: [...audiences] },
    };
    const result = await callKubeWithRetry(
      (callOptions) => authentication.createTokenReview({ body }, callOptions),
      reviewPolicy,
      retryDeps,
    );
    if (!result.ok) {
      // 400/413/422: the API server refuses to look at this token at all (malformed, too big).
      const failure = result.failure;
      if (failure.kind === 'status' && [400, 413, 422].includes(failure.code))
        throw denied(`the API server refused to review the token (HTTP ${failure.code})`);
      const error = apiFailure('token review', failure, result.deadlineExceeded);
      logger.warn(
        { attempts: result.attempts, failure: describeKubeFailure(failure) },
        error.message,
      );
      throw error;
    }
    return result.value.status as TokenReviewStatusLike | undefined;
  }

  /** The pod from the cache, or from the API when the cache lacks it or holds an older pod. */
  async function findPod(
    namespace: string,
    name: string,
    uid: string | undefined,
  ): Promise<PodRecord | null> {
    const cached = pods.get(namespace, name);
    if (cached && (uid === undefined || cached.uid === uid)) return cached;
    const result = await callKubeWithRetry(
      (callOptions) => core.readNamespacedPod({ name, namespace }, callOptions),
      lookupPolicy,
      retryDeps,
    );
    if (result.ok) return projectPod(result.value);
    if (result.failure.kind === 'status' && result.failure.code === 404) return null;
    throw apiFailure(`reading pod ${namespace}/${name}`, result.failure, result.deadlineExceeded);
  }

  async function findConfiguration(
    namespace: string,
    name: string,
  ): Promise<ConfigurationRecord | null> {
    const cached = configurations.get(namespace, name);
    if (cached) return cached;
    const result = await callKubeWithRetry(
      (callOptions) =>
        custom.getNamespacedCustomObject(
          {
            group: DAPR_CONFIGURATION_GROUP,
            version: DAPR_CONFIGURATION_VERSION,
            plural: DAPR_CONFIGURATION_PLURAL,
            namespace,
            name,
          },
          callOptions,
        ) as Promise<unknown>,
      lookupPolicy,
      retryDeps,
    );
    if (result.ok) return projectConfiguration(result.value);
    if (result.failure.kind === 'status' && result.failure.code === 404) return null;
    throw apiFailure(
      `reading Configuration ${namespace}/${name}`,
      result.failure,
      result.deadlineExceeded,
    );
  }

  async function validate(request: CheckedSignRequest): Promise<ValidatedIdentity> {
    const notUsable = unusableReason();
    if (notUsable !== null) throw unavailable(notUsable);
    if (request.token.length === 0) throw denied('the request carries no service-account token');

    const verdict = judgeTokenReview(await reviewToken(request.token), audiences, request.token);
    if (!verdict.ok) throw denied(verdict.reason);
    const { serviceAccount, podName, podUid } = verdict.token;

    if (serviceAccount.namespace !== request.namespace) {
      throw denied(
        `namespace mismatch: the token's service account is in namespace ${serviceAccount.namespace}, the request names ${request.namespace}`,
      );
    }
    const pod = await findPod(serviceAccount.namespace, podName, podUid);
    if (pod === null) {
      throw denied(
        `pod not found: ${serviceAccount.namespace}/${podName}, which the token is bound to, does not exist`,
      );
    }
    if (podUid !== undefined && pod.uid !== podUid) {
      throw denied(
        `pod uid mismatch: ${pod.namespace}/${pod.name} has been recreated; the token belongs to an earlier pod of that name`,
      );
    }
    if (pod.serviceAccountName !== serviceAccount.name) {
      throw denied(
        `wrong service account: pod ${pod.namespace}/${pod.name} runs as ${pod.serviceAccountName ?? '(none)'}, the token is for ${serviceAccount.name}`,
      );
    }
    const expected = expectedIdentity(pod, options.caNamespace);
    if (!expected.ok) throw denied(expected.reason);
    if (expected.value.appId !== request.id) {
      throw denied(
        `app-id mismatch: pod ${pod.namespace}/${pod.name} may be "${printable(expected.value.appId)}", the request asks for "${request.id}"`,
      );
    }
    let configuration: ConfigurationRecord | null = null;
    if (!expected.value.controlPlane && pod.configName !== undefined) {
      if (!isDns1123Subdomain(pod.configName)) {
        throw denied(
          `pod ${pod.namespace}/${pod.name} names an invalid Configuration "${printable(pod.configName)}" in dapr.io/config`,
        );
      }
      configuration = await findConfiguration(pod.namespace, pod.configName);
    }
    const trustDomain = trustDomainFor(
      pod,
      expected.value,
      options.controlPlaneTrustDomain,
      configuration,
    );
    if (!trustDomain.ok) throw denied(trustDomain.reason);
    return Object.freeze({
      trustDomain: trustDomain.value,
      namespace: pod.namespace,
      appId: expected.value.appId,
      controlPlane: expected.value.controlPlane,
    });
  }

  const whenSynced = async (): Promise<void> => {
    await Promise.all(reflectors.map((r) => r.whenSynced()));
  };

  return Object.freeze({
    name: 'kubernetes' as const,
    async start(): Promise<void> {
      for (const reflector of reflectors) reflector.start();
      const waitMs = options.startSyncWaitMs ?? DEFAULT_START_SYNC_WAIT_MS;
      if (waitMs <= 0) return;
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        whenSynced(),
        new Promise<void>((resolve) => {
          timer = setTimeout(resolve, waitMs);
        }),
      ]);
      clearTimeout(timer);
      if (unusableReason() !== null)
        logger.warn(
          'kubernetes validator: caches not synced yet; it stays not ready until they are',
        );
    },
    ready: (): boolean => unusableReason() === null,
    validate,
    whenSynced,
    cacheState: () => ({
      pods: { synced: pods.hasSynced, connected: pods.connected, size: pods.size },
      configurations: {
        synced: configurations.hasSynced,
        connected: configurations.connected,
        size: configurations.size,
      },
    }),
    async close(): Promise<void> {
      closed = true;
      await Promise.all(reflectors.map((r) => r.stop()));
    },
  });
}
