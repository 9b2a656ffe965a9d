import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { CheckedSignRequest } from '../../../src/issuer/request-rules.js';
import { certificateRequestFor, workloadSpiffeId } from '../../../src/issuer/svid-identity.js';
import {
  createKubernetesValidator,
  type KubernetesValidator,
  type KubernetesValidatorOptions,
} from '../../../src/issuer/validators/kubernetes/kubernetes-validator.js';
import { WardenError } from '../../../src/shared/errors.js';
import { checkedRequest } from '../../conformance/validator-conformance.js';
import { KubeApiServer } from '../../support/kube-api-server/index.js';
import {
  CA_NAMESPACE,
  CONTROL_PLANE_TRUST_DOMAIN,
  issuedTokens,
  jwtWithPodClaims,
  podToken,
  putConfiguration,
  putPod,
  randomToken,
  SENTRY_AUDIENCE,
  VALIDATOR_RULES,
  WARDEN_USERNAME,
  type TestPod,
} from '../../support/kube-validator-fixtures.js';
import { captureLog, type CapturedLog } from '../../support/log-capture.js';
import { waitUntil } from '../../support/wait-for.js';

/*
 * The kubernetes validator against the Kubernetes API test server, through the real
 * @kubernetes/client-node, with Warden's token holding exactly the RBAC rules deploy/ grants.
 */

const TOKEN_REVIEWS = '/apis/authentication.k8s.io/v1/tokenreviews';
const FAST_POLICY = { deadlineMs: 1_500, attemptTimeoutMs: 600 } as const;

function request(
  fields: { id: string; namespace: string; trustDomain?: string },
  token: string,
): CheckedSignRequest {
  return checkedRequest({ trustDomain: '', ...fields }, token);
}

async function outcome(promise: Promise<unknown>): Promise<{ code: string; message: string }> {
  try {
    await promise;
  } catch (err) {
    if (err instanceof WardenError) return { code: err.code, message: err.message };
    return { code: 'non-WardenError', message: String(err) };
  }
  return { code: 'resolved', message: '' };
}

interface Cluster {
  server: KubeApiServer;
  wardenToken: string;
  log: CapturedLog;
  validator: KubernetesValidator;
}

async function startCluster(overrides: Partial<KubernetesValidatorOptions> = {}): Promise<Cluster> {
  const server = await KubeApiServer.start({
    namespaces: ['default', CA_NAMESPACE, 'shop', 'other'],
  });
  const wardenToken = randomToken('warden');
  server.addToken(wardenToken, { username: WARDEN_USERNAME, rules: VALIDATOR_RULES });
  const log = captureLog();
  const validator = createKubernetesValidator({
    kubeConfig: server.kubeConfig(wardenToken),
    caNamespace: CA_NAMESPACE,
    audience: SENTRY_AUDIENCE,
    controlPlaneTrustDomain: CONTROL_PLANE_TRUST_DOMAIN,
    logger: log.logger,
    reviewPolicy: FAST_POLICY,
    lookupPolicy: FAST_POLICY,
    startSyncWaitMs: 0,
    ...overrides,
  });
  return { server, wardenToken, log, validator };
}

describe('kubernetes validator: who gets which identity', () => {
  let cluster: Cluster;
  let orders: TestPod;
  let ordersToken: string;

  beforeAll(async () => {
    cluster = await startCluster();
    const { server } = cluster;
    putConfiguration(server, 'shop', 'appconfig', {
      accessControl: { trustDomain: 'example.org' },
    });
    putConfiguration(server, 'shop', 'no-td', { tracing: { samplingRate: '1' } });
    putConfiguration(server, 'shop', 'bad-td', { accessControl: { trustDomain: 'Not A Domain' } });
    orders = putPod(server, {
      namespace: 'shop',
      name: 'orders-7d9f',
      annotations: { 'dapr.io/app-id': 'orders', 'dapr.io/config': 'appconfig' },
    });
    ordersToken = podToken(server, orders);
    await cluster.validator.start();
    await cluster.validator.whenSynced();
  });
  afterAll(async () => {
    await cluster.validator.close();
    await cluster.server.close();
  });

  it('is ready once both caches have synced', () => {
    expect(cluster.validator.ready()).toBe(true);
    expect(cluster.validator.cacheState().pods.synced).toBe(true);
    expect(cluster.validator.cacheState().configurations.synced).toBe(true);
  });

  it('gives the right pod its SPIFFE ID, in the trust domain of its Configuration', async () => {
    const identity = await cluster.validator.validate(
      request({ id: 'orders', namespace: 'shop' }, ordersToken),
    );
    expect(identity).toEqual({
      trustDomain: 'example.org',
      namespace: 'shop',
      appId: 'orders',
      controlPlane: false,
    });
    expect(Object.isFrozen(identity)).toBe(true);
    expect(workloadSpiffeId(identity)).toBe('spiffe://example.org/ns/shop/orders');
  });

  it('ignores the trust domain the request names', async () => {
    const identity = await cluster.validator.validate(
      request({ id: 'orders', namespace: 'shop', trustDomain: 'evil.example' }, ordersToken),
    );
    expect(identity.trustDomain).toBe('example.org');
  });

  it.each([
    ['no dapr.io/config annotation', {}, 'public'],
    ['a Configuration without accessControl.trustDomain', { 'dapr.io/config': 'no-td' }, 'public'],
  ])('issues in "public" for a pod with %s', async (_label, annotations, trustDomain) => {
    const pod = putPod(cluster.server, {
      namespace: 'shop',
      name: `td-${Object.keys(annotations).length}`,
      annotations: { 'dapr.io/app-id': 'cart', ...annotations },
    });
    const identity = await cluster.validator.validate(
      request({ id: 'cart', namespace: 'shop' }, podToken(cluster.server, pod)),
    );
    expect(identity.trustDomain).toBe(trustDomain);
  });

  it('uses the pod name as the id when there is no dapr.io/app-id annotation', async () => {
    const pod = putPod(cluster.server, { namespace: 'shop', name: 'worker' });
    const identity = await cluster.validator.validate(
      request({ id: 'worker', namespace: 'shop' }, podToken(cluster.server, pod)),
    );
    expect(identity.appId).toBe('worker');
  });

  it('takes the pod name from the token claim when the review has no pod extras (only after authentication)', async () => {
    const pod = putPod(cluster.server, {
      namespace: 'shop',
      name: 'legacy-1',
      annotations: { 'dapr.io/app-id': 'legacy' },
    });
    const token = jwtWithPodClaims({ name: pod.name, uid: pod.uid });
    cluster.server.addTokenReview(token, {
      username: `system:serviceaccount:shop:${pod.serviceAccount}`,
      audiences: [SENTRY_AUDIENCE],
    });
    const identity = await cluster.validator.validate(
      request({ id: 'legacy', namespace: 'shop' }, token),
    );
    expect(identity.appId).toBe('legacy');

    // The same claims in a token the API server does not authenticate prove nothing.
    const forged = jwtWithPodClaims({ name: pod.name, uid: pod.uid });
    const result = await outcome(
      cluster.validator.validate(request({ id: 'legacy', namespace: 'shop' }, forged)),
    );
    expect(result.code).toBe('ERR_IDENTITY_DENIED');
    expect(result.message).toMatch(/did not authenticate/);
  });

  it('accepts a token for the legacy audience dapr.io/sentry', async () => {
    const token = podToken(cluster.server, orders, { audiences: ['dapr.io/sentry'] });
    const identity = await cluster.validator.validate(
      request({ id: 'orders', namespace: 'shop' }, token),
    );
    expect(identity.appId).toBe('orders');
  });

  it.each([
    ['injector', 'dapr-injector', ['dapr-sidecar-injector.dapr-system.svc']],
    ['operator', 'dapr-operator', ['dapr-webhook.dapr-system.svc']],
    ['placement', 'dapr-placement', []],
    ['scheduler', 'dapr-scheduler', []],
  ])(
    'gives a %s control-plane pod in the CA namespace its id in the control-plane trust domain, with its DNS SANs',
    async (service, id, dnsNames) => {
      const pod = putPod(cluster.server, {
        namespace: CA_NAMESPACE,
        name: `${id}-0`,
        serviceAccount: id,
        annotations: { 'dapr.io/control-plane': service, 'dapr.io/config': 'ignored' },
      });
      const identity = await cluster.validator.validate(
        request({ id, namespace: CA_NAMESPACE }, podToken(cluster.server, pod)),
      );
      expect(identity).toEqual({
        trustDomain: CONTROL_PLANE_TRUST_DOMAIN,
        namespace: CA_NAMESPACE,
        appId: id,
        controlPlane: true,
      });
      const csr = Buffer.from('unused');
      expect(certificateRequestFor(identity, csr, CA_NAMESPACE).dnsNames).toEqual(dnsNames);
    },
  );

  it('lets a pod recreated under the same name use its own new token', async () => {
    const first = putPod(cluster.server, {
      namespace: 'shop',
      name: 'reborn',
      annotations: { 'dapr.io/app-id': 'reborn' },
    });
    cluster.server.store.delete('pods', 'shop', 'reborn');
    const second = putPod(cluster.server, {
      namespace: 'shop',
      name: 'reborn',
      annotations: { 'dapr.io/app-id': 'reborn' },
    });
    expect(second.uid).not.toBe(first.uid);
    const identity = await cluster.validator.validate(
      request({ id: 'reborn', namespace: 'shop' }, podToken(cluster.server, second)),
    );
    expect(identity.appId).toBe('reborn');
    const stale = await outcome(
      cluster.validator.validate(
        request({ id: 'reborn', namespace: 'shop' }, podToken(cluster.server, first)),
      ),
    );
    expect(stale.code).toBe('ERR_IDENTITY_DENIED');
    expect(stale.message).toMatch(/pod uid mismatch/);
  });

  describe('denials, each saying which check failed', () => {
    const cases: Array<[string, () => { id: string; namespace: string; token: string }, RegExp]> = [
      [
        'a request for another namespace',
        () => ({ id: 'orders', namespace: 'other', token: ordersToken }),
        /namespace mismatch: .*namespace shop, the request names other/,
      ],
      [
        'a request for another app id',
        () => ({ id: 'payments', namespace: 'shop', token: ordersToken }),
        /app-id mismatch: .*"orders", the request asks for "payments"/,
      ],
      [
        'a token of another service account',
        () => ({
          id: 'orders',
          namespace: 'shop',
          token: podToken(cluster.server, orders, { serviceAccount: 'intruder' }),
        }),
        /wrong service account: pod shop\/orders-7d9f runs as orders-7d9f-sa, the token is for intruder/,
      ],
      [
        'a token bound to a pod that does not exist',
        () => ({
          id: 'orders',
          namespace: 'shop',
          token: podToken(cluster.server, { ...orders, name: 'ghost' }),
        }),
        /pod not found: shop\/ghost/,
      ],
      [
        'a token of an earlier pod with the same name (uid mismatch)',
        () => ({
          id: 'orders',
          namespace: 'shop',
          token: podToken(cluster.server, orders, {
            podUid: '00000000-0000-0000-0000-000000000000',
          }),
        }),
        /pod uid mismatch/,
      ],
      [
        'a token the API server does not know',
        () => ({ id: 'orders', namespace: 'shop', token: randomToken('unknown') }),
        /did not authenticate the token \(expired/,
      ],
      [
        'a token for another audience',
        () => ({
          id: 'orders',
          namespace: 'shop',
          token: podToken(cluster.server, orders, {
            audiences: ['https://kubernetes.default.svc'],
          }),
        }),
        /audience is not spiffe:\/\/cluster.local\/ns\/dapr-system\/dapr-sentry or dapr.io\/sentry/,
      ],
      [
        'a token not bound to any pod',
        () => ({
          id: 'orders',
          namespace: 'shop',
          token: podToken(cluster.server, orders, { podName: null, podUid: null }),
        }),
        /not bound to a pod/,
      ],
      [
        'a request without a token',
        () => ({ id: 'orders', namespace: 'shop', token: '' }),
        /carries no service-account token/,
      ],
      [
        'a control-plane pod outside the CA namespace',
        () => {
          const pod = putPod(cluster.server, {
            namespace: 'shop',
            name: 'fake-operator',
            annotations: { 'dapr.io/control-plane': 'operator' },
          });
          return { id: 'dapr-operator', namespace: 'shop', token: podToken(cluster.server, pod) };
        },
        /control-plane pod shop\/fake-operator is outside the CA namespace dapr-system/,
      ],
      [
        'an ordinary pod in the CA namespace claiming a control-plane id',
        () => {
          const pod = putPod(cluster.server, {
            namespace: CA_NAMESPACE,
            name: 'sneaky',
            annotations: { 'dapr.io/app-id': 'dapr-placement' },
          });
          return {
            id: 'dapr-placement',
            namespace: CA_NAMESPACE,
            token: podToken(cluster.server, pod),
          };
        },
        /dapr-placement, a control-plane id, but lacks the dapr.io\/control-plane annotation/,
      ],
      [
        'an unknown control-plane service',
        () => {
          const pod = putPod(cluster.server, {
            namespace: CA_NAMESPACE,
            name: 'odd',
            annotations: { 'dapr.io/control-plane': 'gateway' },
          });
          return {
            id: 'dapr-gateway',
            namespace: CA_NAMESPACE,
            token: podToken(cluster.server, pod),
          };
        },
        /unknown control-plane service "gateway"/,
      ],
      [
        'a pod whose Configuration does not exist',
        () => {
          const pod = putPod(cluster.server, {
            namespace: 'shop',
            name: 'lost',
            annotations: { 'dapr.io/app-id': 'lost', 'dapr.io/config': 'missing' },
          });
          return { id: 'lost', namespace: 'shop', token: podToken(cluster.server, pod) };
        },
        /Configuration "missing" named by pod shop\/lost's dapr.io\/config annotation does not exist/,
      ],
      [
        'a pod whose Configuration has an invalid trust domain',
        () => {
          const pod = putPod(cluster.server, {
            namespace: 'shop',
            name: 'bent',
            annotations: { 'dapr.io/app-id': 'bent', 'dapr.io/config': 'bad-td' },
          });
          return { id: 'bent', namespace: 'shop', token: podToken(cluster.server, pod) };
        },
        /Configuration shop\/bad-td has an invalid spec.accessControl.trustDomain/,
      ],
    ];

    it.each(cases)('denies %s', async (_label, make, reason) => {
      const { id, namespace, token } = make();
      const result = await outcome(cluster.validator.validate(request({ id, namespace }, token)));
      expect(result.code).toBe('ERR_IDENTITY_DENIED');
      expect(result.message).toMatch(reason);
      if (token.length > 0) expect(result.message).not.toContain(token);
    });
  });

  it('never writes a token to its log', () => {
    const text = cluster.log.text();
    expect(text.length).toBeGreaterThan(0);
    for (const token of issuedTokens) expect(text).not.toContain(token);
  });
});

describe('kubernetes validator: when the API server cannot be trusted to answer', () => {
  let cluster: Cluster;
  let pod: TestPod;

  beforeAll(async () => {
    cluster = await startCluster({ maxCacheDisconnectMs: 0, watchTimeoutSeconds: 30 });
    pod = putPod(cluster.server, {
      namespace: 'shop',
      name: 'orders-1',
      annotations: { 'dapr.io/app-id': 'orders' },
    });
    await cluster.validator.start();
    await cluster.validator.whenSynced();
  });
  afterAll(async () => {
    cluster.server.clearFaults();
    await cluster.validator.close();
    await cluster.server.close();
  });

  const ordersRequest = (): CheckedSignRequest =>
    request({ id: 'orders', namespace: 'shop' }, podToken(cluster.server, pod));

  it('retries a TokenReview that answers 503 and then succeeds', async () => {
    cluster.server.clearRequests();
    cluster.server.failNext({ status: 503, count: 2, path: TOKEN_REVIEWS });
    const identity = await cluster.validator.validate(ordersRequest());
    expect(identity.appId).toBe('orders');
    const reviews = cluster.server.requests.filter((r) => r.path === TOKEN_REVIEWS);
    expect(reviews.map((r) => r.status)).toEqual([503, 503, 201]);
  });

  it('answers UNAVAILABLE at once when Retry-After on a 429 is beyond its deadline', async () => {
    cluster.server.clearRequests();
    cluster.server.failNext({ status: 429, retryAfter: 30, path: TOKEN_REVIEWS });
    const result = await outcome(cluster.validator.validate(ordersRequest()));
    expect(result.code).toBe('ERR_VALIDATOR_UNAVAILABLE');
    expect(result.message).toMatch(/HTTP 429/);
    expect(cluster.server.requests.filter((r) => r.path === TOKEN_REVIEWS)).toHaveLength(1);
  });

  it('waits for a Retry-After that fits its deadline', async () => {
    cluster.server.clearRequests();
    cluster.server.failNext({ status: 429, retryAfter: 1, path: TOKEN_REVIEWS });
    const identity = await cluster.validator.validate(ordersRequest()).catch((err: unknown) => err);
    // The fast test policy's deadline (1.5 s) leaves room for one 1 s wait.
    expect(identity).toMatchObject({ appId: 'orders' });
    const reviews = cluster.server.requests.filter((r) => r.path === TOKEN_REVIEWS);
    expect(reviews.map((r) => r.status)).toEqual([429, 201]);
    expect(
      (reviews[1] as { at: Date }).at.getTime() - (reviews[0] as { at: Date }).at.getTime(),
    ).toBeGreaterThanOrEqual(900);
  });

  it('answers UNAVAILABLE, not a signature, when the TokenReview hangs', async () => {
    const hang = cluster.server.hang({ path: TOKEN_REVIEWS });
    try {
      const result = await outcome(cluster.validator.validate(ordersRequest()));
      expect(result.code).toBe('ERR_VALIDATOR_UNAVAILABLE');
      expect(result.message).toMatch(/token review: the API server could not answer: timed out/);
    } finally {
      hang.release();
    }
  });

  it('answers UNAVAILABLE naming RBAC when Warden may not create TokenReviews (403)', async () => {
    const limited = randomToken('limited');
    cluster.server.addToken(limited, {
      username: WARDEN_USERNAME,
      rules: VALIDATOR_RULES.filter((r) => !r.resources.includes('tokenreviews')),
    });
    const validator = createKubernetesValidator({
      kubeConfig: cluster.server.kubeConfig(limited),
      caNamespace: CA_NAMESPACE,
      audience: SENTRY_AUDIENCE,
      controlPlaneTrustDomain: CONTROL_PLANE_TRUST_DOMAIN,
      reviewPolicy: FAST_POLICY,
      startSyncWaitMs: 0,
    });
    try {
      await validator.start();
      await validator.whenSynced();
      const result = await outcome(validator.validate(ordersRequest()));
      expect(result).toEqual({
        code: 'ERR_VALIDATOR_UNAVAILABLE',
        message: expect.stringMatching(/lacks RBAC permission \(403\)/),
      });

      // Warden's own token revoked: 401, also UNAVAILABLE (and never retried into a yes).
      cluster.server.removeToken(limited);
      const revoked = await outcome(validator.validate(ordersRequest()));
      expect(revoked.code).toBe('ERR_VALIDATOR_UNAVAILABLE');
      expect(revoked.message).toMatch(/does not accept Warden's own credentials \(401\)/);
    } finally {
      await validator.close();
    }
  });

  it('stays correct after its watches are dropped: a pod created afterwards is seen from the cache', async () => {
    cluster.server.dropWatches();
    const later = putPod(cluster.server, {
      namespace: 'shop',
      name: 'after-drop',
      annotations: { 'dapr.io/app-id': 'late' },
    });
    await waitUntil(
      () => cluster.validator.cacheState().pods.size >= 2 && cluster.validator.ready(),
      'the pod cache to see the new pod',
    );
    cluster.server.clearRequests();
    const identity = await cluster.validator.validate(
      request({ id: 'late', namespace: 'shop' }, podToken(cluster.server, later)),
    );
    expect(identity.appId).toBe('late');
    // Answered from the cache: no pod was read from the API for it.
    expect(cluster.server.requests.filter((r) => r.resource === 'pods' && !r.watch)).toEqual([]);
  });

  it('re-lists after 410 Expired and sees what changed meanwhile', async () => {
    cluster.server.clearRequests();
    const isPodList = (r: {
      resource?: string;
      watch: boolean;
      name?: string;
      method: string;
    }): boolean => r.resource === 'pods' && !r.watch && r.name === undefined && r.method === 'GET';
    // The watch is cut and its resumption held while pods change; then the history those
    // changes were in is forgotten, so resuming answers 410 and only a re-list sees them.
    const hang = cluster.server.hang({ path: '/api/v1/pods' });
    cluster.server.dropWatches();
    await waitUntil(() => hang.held > 0, 'the pod watch to try to resume');
    const relisted = putPod(cluster.server, {
      namespace: 'shop',
      name: 'after-expiry',
      annotations: { 'dapr.io/app-id': 'expired' },
    });
    cluster.server.store.delete('pods', 'shop', 'after-drop');
    cluster.server.expireHistory();
    hang.release();
    await waitUntil(
      () =>
        cluster.server.requests.some(isPodList) &&
        cluster.validator.cacheState().pods.size === 2 &&
        cluster.validator.ready(),
      'the pod cache to re-list',
    );
    cluster.server.clearRequests();
    const identity = await cluster.validator.validate(
      request({ id: 'expired', namespace: 'shop' }, podToken(cluster.server, relisted)),
    );
    expect(identity.appId).toBe('expired');
    expect(cluster.server.requests.filter((r) => r.resource === 'pods' && !r.watch)).toEqual([]);
  });

  it('answers UNAVAILABLE and is not ready while the API server is down, and recovers after', async () => {
    await cluster.server.stop();
    try {
      const result = await outcome(cluster.validator.validate(ordersRequest()));
      expect(result.code).toBe('ERR_VALIDATOR_UNAVAILABLE');
      await waitUntil(() => !cluster.validator.ready(), 'the validator to report not ready');
    } finally {
      await cluster.server.restart();
    }
    await waitUntil(() => cluster.validator.ready(), 'the validator to be ready again');
    const identity = await cluster.validator.validate(ordersRequest());
    expect(identity.appId).toBe('orders');
  });
});

describe('kubernetes validator: before its caches have synced', () => {
  it('is not ready and answers UNAVAILABLE until the pod list arrives', async () => {
    const cluster = await startCluster();
    const pod = putPod(cluster.server, {
      namespace: 'shop',
      name: 'early',
      annotations: { 'dapr.io/app-id': 'early' },
    });
    const hang = cluster.server.hang({ path: /^\/api\/v1\/pods/ });
    try {
      await cluster.validator.start();
      expect(cluster.validator.ready()).toBe(false);
      const result = await outcome(
        cluster.validator.validate(
          request({ id: 'early', namespace: 'shop' }, podToken(cluster.server, pod)),
        ),
      );
      expect(result.code).toBe('ERR_VALIDATOR_UNAVAILABLE');
      expect(result.message).toMatch(
        /the pods( and configurations.dapr.io)? caches? (has|have) not synced/,
      );
      hang.release();
      await cluster.validator.whenSynced();
      expect(cluster.validator.ready()).toBe(true);
      const identity = await cluster.validator.validate(
        request({ id: 'early', namespace: 'shop' }, podToken(cluster.server, pod)),
      );
      expect(identity.appId).toBe('early');
    } finally {
      hang.release();
      await cluster.validator.close();
      await cluster.server.close();
    }
  });

  it('abandons a list the API server never answers, and retries it until one is answered', async () => {
    const cluster = await startCluster({ listPageTimeoutMs: 200 });
    const hang = cluster.server.hang({ path: '/api/v1/pods' });
    try {
      await cluster.validator.start();
      await waitUntil(
        () =>
          cluster.server.requests.filter((r) => r.path === '/api/v1/pods' && !r.watch).length >= 2,
        'the hung pod list to be retried',
      );
      expect(cluster.validator.ready()).toBe(false);
      hang.release();
      await cluster.validator.whenSynced();
      expect(cluster.validator.ready()).toBe(true);
    } finally {
      hang.release();
      await cluster.validator.close();
      await cluster.server.close();
    }
  });

  it('never syncs, and so is never ready, without RBAC to list Configurations', async () => {
    const cluster = await startCluster();
    const noConfigs = randomToken('no-configs');
    cluster.server.addToken(noConfigs, {
      username: WARDEN_USERNAME,
      rules: VALIDATOR_RULES.filter((r) => !r.resources.includes('configurations')),
    });
    const validator = createKubernetesValidator({
      kubeConfig: cluster.server.kubeConfig(noConfigs),
      caNamespace: CA_NAMESPACE,
      audience: SENTRY_AUDIENCE,
      controlPlaneTrustDomain: CONTROL_PLANE_TRUST_DOMAIN,
      logger: cluster.log.logger,
      startSyncWaitMs: 0,
    });
    try {
      await validator.start();
      await waitUntil(() => validator.cacheState().pods.synced, 'the pod cache to sync');
      await waitUntil(
        () => /list refused/.test(cluster.log.text()),
        'the refused list to be logged',
      );
      expect(validator.ready()).toBe(false);
      expect(validator.cacheState().configurations.synced).toBe(false);
    } finally {
      await validator.close();
      await cluster.validator.close();
      await cluster.server.close();
    }
  });
});
