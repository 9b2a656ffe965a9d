import { describe, expect, it } from '@jest/globals';
import {
  expectedIdentity,
  projectConfiguration,
  projectPod,
  trustDomainFor,
  type PodRecord,
} from '../../../src/issuer/validators/kubernetes/pod-identity.js';

const CA = 'dapr-system';

function pod(overrides: Partial<PodRecord>): PodRecord {
  return {
    namespace: 'shop',
    name: 'orders-1',
    uid: 'uid-1',
    serviceAccountName: 'orders',
    appId: undefined,
    controlPlane: undefined,
    configName: undefined,
    ...overrides,
  };
}

describe('projectPod and projectConfiguration', () => {
  it('keep only what the validator reads', () => {
    expect(
      projectPod({
        metadata: {
          name: 'orders-1',
          namespace: 'shop',
          uid: 'uid-1',
          labels: { big: 'x' },
          annotations: { 'dapr.io/app-id': 'orders', 'dapr.io/config': 'appconfig', other: 'y' },
        },
        spec: { serviceAccountName: 'orders', containers: [{ name: 'app' }] },
        status: { phase: 'Running' },
      }),
    ).toEqual(pod({ appId: 'orders', configName: 'appconfig' }));
    expect(
      projectConfiguration({
        metadata: { name: 'appconfig', namespace: 'shop' },
        spec: { accessControl: { trustDomain: 'example.org', defaultAction: 'deny' } },
      }),
    ).toEqual({ namespace: 'shop', name: 'appconfig', trustDomain: 'example.org' });
  });

  it.each([[null], [{}], [{ metadata: { name: 'x' } }], [{ metadata: { namespace: 'x' } }]])(
    'skip an object without name and namespace: %j',
    (object) => {
      expect(projectPod(object)).toBeNull();
      expect(projectConfiguration(object)).toBeNull();
    },
  );
});

describe('expectedIdentity', () => {
  const cases: Array<[string, PodRecord, ReturnType<typeof expectedIdentity>]> = [
    [
      'the app-id annotation',
      pod({ appId: 'orders' }),
      { ok: true, value: { appId: 'orders', controlPlane: false } },
    ],
    [
      'the pod name without an annotation',
      pod({}),
      { ok: true, value: { appId: 'orders-1', controlPlane: false } },
    ],
    [
      'a control-plane pod in the CA namespace',
      pod({ namespace: CA, controlPlane: 'placement' }),
      { ok: true, value: { appId: 'dapr-placement', controlPlane: true } },
    ],
    [
      'a control-plane id outside the CA namespace, as an ordinary app id',
      pod({ appId: 'dapr-operator' }),
      { ok: true, value: { appId: 'dapr-operator', controlPlane: false } },
    ],
  ];
  it.each(cases)('gives %s', (_label, input, expected) => {
    expect(expectedIdentity(input, CA)).toEqual(expected);
  });

  const refusals: Array<[string, PodRecord, RegExp]> = [
    [
      'a control-plane pod outside the CA namespace',
      pod({ controlPlane: 'operator' }),
      /outside the CA namespace dapr-system/,
    ],
    [
      'an unknown control-plane service',
      pod({ namespace: CA, controlPlane: 'gateway' }),
      /unknown control-plane service "gateway"/,
    ],
    [
      'a control-plane pod with an app-id too',
      pod({ namespace: CA, controlPlane: 'operator', appId: 'x' }),
      /may not also carry dapr.io\/app-id/,
    ],
    ['an empty app-id annotation', pod({ appId: '' }), /empty dapr.io\/app-id/],
    [
      'a control-plane id in the CA namespace without the annotation',
      pod({ namespace: CA, appId: 'dapr-injector' }),
      /lacks the dapr.io\/control-plane annotation/,
    ],
    [
      'a pod named like a control-plane id in the CA namespace',
      pod({ namespace: CA, name: 'dapr-scheduler' }),
      /control-plane id/,
    ],
  ];
  it.each(refusals)('refuses %s', (_label, input, reason) => {
    const result = expectedIdentity(input, CA);
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.reason).toMatch(reason);
  });
});

describe('trustDomainFor', () => {
  const app = { appId: 'orders', controlPlane: false };
  const config = (trustDomain: unknown) => ({ namespace: 'shop', name: 'c', trustDomain });
  it.each([
    [
      'a control-plane identity: the control-plane trust domain',
      pod({}),
      { appId: 'dapr-operator', controlPlane: true },
      null,
      'cluster.local',
    ],
    ['no config annotation: public', pod({}), app, null, 'public'],
    [
      'a Configuration with a trust domain',
      pod({ configName: 'c' }),
      app,
      config('example.org'),
      'example.org',
    ],
    [
      'a Configuration without one: public',
      pod({ configName: 'c' }),
      app,
      config(undefined),
      'public',
    ],
    [
      'a Configuration with an empty one: public',
      pod({ configName: 'c' }),
      app,
      config(''),
      'public',
    ],
  ] as const)('gives %s', (_label, input, expected, configuration, td) => {
    expect(trustDomainFor(input, expected, 'cluster.local', configuration)).toEqual({
      ok: true,
      value: td,
    });
  });

  it.each([
    ['a missing Configuration', null, /does not exist in namespace shop/],
    ['an invalid trust domain', config('Bad Domain'), /invalid spec.accessControl.trustDomain/],
    ['a trust domain that is not a string', config(42), /is not a string/],
  ] as const)('refuses %s', (_label, configuration, reason) => {
    const result = trustDomainFor(pod({ configName: 'c' }), app, 'cluster.local', configuration);
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.reason).toMatch(reason);
  });
});
