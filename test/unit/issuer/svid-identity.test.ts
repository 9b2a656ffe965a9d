import { describe, expect, it } from '@jest/globals';
import {
  certificateRequestFor,
  controlPlaneDnsNames,
  workloadSpiffeId,
} from '../../../src/issuer/svid-identity.js';
import type { ValidatedIdentity } from '../../../src/issuer/validator.js';

const CA_NS = 'dapr-system';
const identity = (overrides: Partial<ValidatedIdentity>): ValidatedIdentity => ({
  trustDomain: 'public',
  namespace: 'default',
  appId: 'app',
  controlPlane: false,
  ...overrides,
});

describe('identity → certificate request', () => {
  it('builds spiffe://<td>/ns/<ns>/<id>', () => {
    expect(
      workloadSpiffeId(
        identity({ trustDomain: 'example.org', namespace: 'shop', appId: 'orders' }),
      ),
    ).toBe('spiffe://example.org/ns/shop/orders');
  });

  it('refuses to build from unvalidated segments instead of concatenating them', () => {
    expect(() => workloadSpiffeId(identity({ namespace: 'a/ns/b' }))).toThrow(/path segment/);
    expect(() => workloadSpiffeId(identity({ appId: '..' }))).toThrow();
    expect(() => workloadSpiffeId(identity({ trustDomain: 'Example.org' }))).toThrow();
  });

  const dnsCases: Array<[string, Partial<ValidatedIdentity>, string[]]> = [
    [
      'the injector in the CA namespace gets the injector service name',
      { appId: 'dapr-injector', namespace: CA_NS, controlPlane: true },
      ['dapr-sidecar-injector.dapr-system.svc'],
    ],
    [
      'the operator in the CA namespace gets the webhook service name',
      { appId: 'dapr-operator', namespace: CA_NS, controlPlane: true },
      ['dapr-webhook.dapr-system.svc'],
    ],
    [
      'the injector outside the CA namespace gets none',
      { appId: 'dapr-injector', namespace: 'default', controlPlane: true },
      [],
    ],
    [
      'the injector not vouched for as control plane gets none',
      { appId: 'dapr-injector', namespace: CA_NS, controlPlane: false },
      [],
    ],
    [
      'placement (no webhook) gets none',
      { appId: 'dapr-placement', namespace: CA_NS, controlPlane: true },
      [],
    ],
    ['an ordinary app gets none', { appId: 'orders' }, []],
  ];
  for (const [name, overrides, expected] of dnsCases) {
    it(name, () => {
      expect(controlPlaneDnsNames(identity(overrides), CA_NS)).toEqual(expected);
    });
  }

  it('passes the CSR bytes through untouched with the decided identity', () => {
    const csr = Buffer.from('csr bytes');
    const request = certificateRequestFor(
      identity({ appId: 'dapr-operator', namespace: CA_NS, controlPlane: true }),
      csr,
      CA_NS,
    );
    expect(request.csrPem).toBe(csr);
    expect(request).toEqual({
      csrPem: csr,
      spiffeId: 'spiffe://public/ns/dapr-system/dapr-operator',
      dnsNames: ['dapr-webhook.dapr-system.svc'],
    });
    expect(Object.isFrozen(request)).toBe(true);
  });

  it("never issues the CA's own identity, in any trust domain", () => {
    for (const trustDomain of ['public', 'cluster.local', 'localhost']) {
      expect(() =>
        certificateRequestFor(
          identity({ trustDomain, appId: 'dapr-sentry', namespace: CA_NS, controlPlane: true }),
          Buffer.from('x'),
          CA_NS,
        ),
      ).toThrow(/CA's own identity/);
    }
    // The same app id elsewhere is an ordinary workload name.
    expect(
      certificateRequestFor(
        identity({ appId: 'dapr-sentry', namespace: 'default' }),
        Buffer.from('x'),
        CA_NS,
      ).spiffeId,
    ).toBe('spiffe://public/ns/default/dapr-sentry');
  });
});
