import { describe, expect, it } from '@jest/globals';
import {
  judgeTokenReview,
  parseServiceAccountUsername,
  unverifiedPodClaims,
  type TokenReviewStatusLike,
} from '../../../src/issuer/validators/kubernetes/token-review.js';

const AUDIENCES = ['spiffe://cluster.local/ns/dapr-system/dapr-sentry', 'dapr.io/sentry'];
const TOKEN = 'opaque-token-value';

function jwt(payload: unknown): string {
  const part = (value: unknown): string => Buffer.from(JSON.stringify(value)).toString('base64url');
  return `${part({ alg: 'RS256' })}.${part(payload)}.c2lnbmF0dXJl`;
}

const good: TokenReviewStatusLike = {
  authenticated: true,
  audiences: ['spiffe://cluster.local/ns/dapr-system/dapr-sentry'],
  user: {
    username: 'system:serviceaccount:shop:orders',
    extra: {
      'authentication.kubernetes.io/pod-name': ['orders-1'],
      'authentication.kubernetes.io/pod-uid': ['uid-1'],
    },
  },
};

describe('parseServiceAccountUsername', () => {
  it.each([
    ['system:serviceaccount:shop:orders', { namespace: 'shop', name: 'orders' }],
    ['system:serviceaccount:shop:orders.v2', { namespace: 'shop', name: 'orders.v2' }],
    ['system:serviceaccount:shop:orders:extra', null],
    ['system:serviceaccount:shop', null],
    ['system:serviceaccount::orders', null],
    ['system:serviceaccount:Shop:orders', null],
    ['system:serviceaccount:shop.x:orders', null],
    ['system:serviceaccounts:shop:orders', null],
    ['system:node:worker-1', null],
    ['alice', null],
    [' system:serviceaccount:shop:orders', null],
    ['system:serviceaccount:shop:orders\n', null],
  ])('reads %j as %j', (username, expected) => {
    expect(parseServiceAccountUsername(username)).toEqual(expected);
  });
});

describe('judgeTokenReview', () => {
  it('accepts an authenticated pod-bound service-account token and reads pod name and uid from the extras', () => {
    expect(judgeTokenReview(good, AUDIENCES, TOKEN)).toEqual({
      ok: true,
      token: {
        serviceAccount: { namespace: 'shop', name: 'orders' },
        podName: 'orders-1',
        podUid: 'uid-1',
        podNameSource: 'review',
      },
    });
  });

  const refusals: Array<[string, TokenReviewStatusLike | undefined, RegExp]> = [
    ['no status at all', undefined, /did not authenticate/],
    [
      'authenticated absent (omitempty on the wire)',
      { ...good, authenticated: undefined },
      /did not authenticate/,
    ],
    ['authenticated false', { ...good, authenticated: false }, /did not authenticate/],
    [
      'an unauthenticated answer whose error is about audiences',
      {
        user: {},
        error:
          '[invalid bearer token, token audiences ["x"] is invalid for the target audiences ["y"]]',
      },
      /its audience is not spiffe:\/\/cluster.local\/ns\/dapr-system\/dapr-sentry or dapr.io\/sentry/,
    ],
    [
      'an error alongside authenticated: true',
      { ...good, error: 'something' },
      /reported an error/,
    ],
    ['status.audiences absent', { ...good, audiences: undefined }, /audiences do not include/],
    [
      'status.audiences not intersecting the request',
      { ...good, audiences: ['https://kubernetes.default.svc'] },
      /audiences do not include/,
    ],
    [
      'a user that is not a service account',
      { ...good, user: { ...good.user, username: 'alice' } },
      /does not belong to a service account/,
    ],
    [
      'no username',
      { ...good, user: { extra: good.user?.extra } },
      /does not belong to a service account/,
    ],
    [
      'no pod extras and an opaque token',
      { ...good, user: { username: 'system:serviceaccount:shop:orders' } },
      /not bound to a pod/,
    ],
    [
      'a pod name that is not a Kubernetes name',
      {
        ...good,
        user: { ...good.user, extra: { 'authentication.kubernetes.io/pod-name': ['../etc'] } },
      },
      /not a valid pod name/,
    ],
  ];
  it.each(refusals)('refuses %s, saying why', (_label, status, reason) => {
    const verdict = judgeTokenReview(status, AUDIENCES, TOKEN);
    expect(verdict.ok).toBe(false);
    if (!verdict.ok) {
      expect(verdict.reason).toMatch(reason);
      expect(verdict.reason).not.toContain(TOKEN);
    }
  });

  it('accepts the legacy audience dapr.io/sentry in the answer', () => {
    expect(judgeTokenReview({ ...good, audiences: ['dapr.io/sentry'] }, AUDIENCES, TOKEN).ok).toBe(
      true,
    );
  });

  it('takes the first value of the pod-name extra', () => {
    const status = {
      ...good,
      user: {
        ...good.user,
        extra: { 'authentication.kubernetes.io/pod-name': ['first', 'second'] },
      },
    };
    const verdict = judgeTokenReview(status, AUDIENCES, TOKEN);
    expect(verdict.ok && verdict.token.podName).toBe('first');
  });

  it('falls back to the kubernetes.io.pod claims of the (authenticated) token', () => {
    const token = jwt({
      'kubernetes.io': { namespace: 'shop', pod: { name: 'orders-2', uid: 'uid-2' } },
    });
    const verdict = judgeTokenReview(
      { ...good, user: { username: 'system:serviceaccount:shop:orders' } },
      AUDIENCES,
      token,
    );
    expect(verdict).toEqual({
      ok: true,
      token: {
        serviceAccount: { namespace: 'shop', name: 'orders' },
        podName: 'orders-2',
        podUid: 'uid-2',
        podNameSource: 'token-claim',
      },
    });
  });

  it('never reads the claims of a token the API server did not authenticate', () => {
    const token = jwt({ 'kubernetes.io': { pod: { name: 'orders-2' } } });
    expect(judgeTokenReview({ user: {} }, AUDIENCES, token).ok).toBe(false);
  });
});

describe('unverifiedPodClaims', () => {
  it.each([
    [
      'a projected token payload',
      jwt({ 'kubernetes.io': { pod: { name: 'p', uid: 'u' } } }),
      { name: 'p', uid: 'u' },
    ],
    ['a payload without kubernetes.io', jwt({ sub: 'x' }), {}],
    ['a payload whose pod is a string', jwt({ 'kubernetes.io': { pod: 'p' } }), {}],
    ['an empty pod name', jwt({ 'kubernetes.io': { pod: { name: '' } } }), {}],
    ['not a JWT', 'opaque', {}],
    ['a JWT whose payload is not JSON', 'eyJhbGciOiJSUzI1NiJ9.bm90IGpzb24.c2ln', {}],
  ])('reads %s', (_label, token, expected) => {
    expect(unverifiedPodClaims(token)).toEqual(expected);
  });
});
