import { describe, expect, it } from '@jest/globals';
import {
  activateAt,
  activationAllowedAt,
  DEFAULT_ROTATION_POLICY,
  issuerRenewalAt,
  prepareAt,
  propagationWindowMs,
  retirementAllowedAt,
  rotationPolicyFromMtls,
  rotationPolicyProblems,
  type RotationPolicy,
} from '../../../../src/ca/rotation/rotation-policy.js';
import { parseDaprConfiguration } from '../../../../src/shared/config/dapr-configuration.js';
import {
  IDLE_ROTATION_STATE,
  type RotationState,
} from '../../../../src/ca/rotation/rotation-state.js';

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const T0 = Date.UTC(2026, 0, 1);
const FP_A = Array.from({ length: 32 }, () => 'AA').join(':');
const FP_B = Array.from({ length: 32 }, () => 'BB').join(':');
const validity = (fromDays: number, toDays: number) => ({
  notBefore: new Date(T0 + fromDays * DAY),
  notAfter: new Date(T0 + toDays * DAY),
});
const prepared = (at: number): RotationState => ({
  ...IDLE_ROTATION_STATE,
  phase: 'prepared',
  nextRootFingerprint: FP_B,
  retiringRootFingerprint: FP_A,
  preparedAt: new Date(at).toISOString(),
});
const activated = (at: number): RotationState => ({
  ...prepared(at - DAY),
  phase: 'activated',
  nextRootFingerprint: null,
  activatedAt: new Date(at).toISOString(),
});

describe('rotation thresholds', () => {
  it('uses workloadCertTTL + allowedClockSkew as the default propagation window, or the configured one', () => {
    expect(propagationWindowMs(DEFAULT_ROTATION_POLICY)).toBe(24 * HOUR + 15 * 60_000);
    expect(propagationWindowMs({ ...DEFAULT_ROTATION_POLICY, propagationWindowMs: HOUR })).toBe(
      HOUR,
    );
    expect(
      propagationWindowMs({
        ...DEFAULT_ROTATION_POLICY,
        workloadCertTtlMs: HOUR,
        allowedClockSkewMs: 0,
      }),
    ).toBe(HOUR);
  });

  it.each([
    [
      'prepare at half the root lifetime',
      () => prepareAt(validity(0, 360), DEFAULT_ROTATION_POLICY),
      T0 + 180 * DAY,
    ],
    [
      'activate at five sixths of it',
      () => activateAt(validity(0, 360), prepared(T0 + 180 * DAY), DEFAULT_ROTATION_POLICY),
      T0 + 300 * DAY,
    ],
    [
      'activate no earlier than the propagation window after prepare',
      () => activateAt(validity(0, 360), prepared(T0 + 299.9 * DAY), DEFAULT_ROTATION_POLICY),
      T0 + 299.9 * DAY + 24 * HOUR + 15 * 60_000,
    ],
    [
      'allow activation a window after prepare',
      () => activationAllowedAt(prepared(T0), DEFAULT_ROTATION_POLICY),
      T0 + 24 * HOUR + 15 * 60_000,
    ],
    [
      'allow retirement TTL + skew after activation',
      () => retirementAllowedAt(activated(T0), DEFAULT_ROTATION_POLICY, null),
      T0 + 24 * HOUR + 15 * 60_000,
    ],
    [
      'allow retirement as soon as the old root has expired, if that is sooner',
      () => retirementAllowedAt(activated(T0), DEFAULT_ROTATION_POLICY, new Date(T0 + HOUR)),
      T0 + HOUR,
    ],
    [
      'renew an issuer at two thirds of its lifetime',
      () => issuerRenewalAt(validity(0, 30), validity(0, 360), DEFAULT_ROTATION_POLICY),
      T0 + 20 * DAY,
    ],
  ] as const)('%s', (_name, compute, expected) => {
    expect(compute()?.getTime()).toBe(expected);
  });

  it.each([
    ['activation', () => activationAllowedAt(IDLE_ROTATION_STATE, DEFAULT_ROTATION_POLICY)],
    ['retirement', () => retirementAllowedAt(prepared(T0), DEFAULT_ROTATION_POLICY, null)],
    [
      'the activate threshold',
      () => activateAt(validity(0, 360), IDLE_ROTATION_STATE, DEFAULT_ROTATION_POLICY),
    ],
  ])('has no %s time outside its phase', (_name, compute) => {
    expect(compute()).toBeNull();
  });

  it('does not renew an issuer that already lives as long as its root (renewal could only shorten it)', () => {
    expect(
      issuerRenewalAt(validity(100, 360), validity(0, 360), DEFAULT_ROTATION_POLICY),
    ).toBeNull();
  });

  it.each([
    [
      'fractions out of range',
      { rootRotation: { enabled: true, prepareAtFraction: 0, activateAtFraction: 1 } },
      ['prepareAtFraction', 'activateAtFraction'],
    ],
    [
      'activation before preparation',
      { rootRotation: { enabled: true, prepareAtFraction: 0.8, activateAtFraction: 0.5 } },
      ['must be greater than prepareAtFraction'],
    ],
    [
      'a zero TTL and a negative skew',
      { workloadCertTtlMs: 0, allowedClockSkewMs: -1 },
      ['workloadCertTTL', 'allowedClockSkew'],
    ],
    ['a negative window', { propagationWindowMs: -5 }, ['propagationWindow']],
    [
      'a renewal fraction of 1',
      { issuerRenewal: { enabled: true, renewAtFraction: 1 } },
      ['renewAtFraction'],
    ],
  ] as const)('finds the problems with %s', (_name, change, fragments) => {
    const problems = rotationPolicyProblems({
      ...DEFAULT_ROTATION_POLICY,
      ...change,
    } as RotationPolicy).join('; ');
    for (const f of fragments) expect(problems).toContain(f);
  });

  it('accepts the defaults', () => {
    expect(rotationPolicyProblems(DEFAULT_ROTATION_POLICY)).toEqual([]);
  });
});

describe('the rotation policy a Configuration describes (the schema warden serve reads)', () => {
  const configuration = (mtls: string) =>
    parseDaprConfiguration(
      `apiVersion: dapr.io/v1alpha1\nkind: Configuration\nspec:\n  mtls:\n${mtls}`,
      'test.yaml',
    );

  it('is Dapr’s and Warden’s defaults when spec.mtls says nothing', () => {
    expect(rotationPolicyFromMtls(configuration('    enabled: true\n').mtls)).toEqual(
      DEFAULT_ROTATION_POLICY,
    );
    expect(DEFAULT_ROTATION_POLICY).toEqual({
      workloadCertTtlMs: DAY,
      allowedClockSkewMs: 15 * 60_000,
      propagationWindowMs: null,
      rootRotation: { enabled: true, prepareAtFraction: 1 / 2, activateAtFraction: 5 / 6 },
      issuerRenewal: { enabled: true, renewAtFraction: 2 / 3 },
    });
  });

  it('takes workloadCertTTL, allowedClockSkew and the rotation fields', () => {
    const policy = rotationPolicyFromMtls(
      configuration(
        [
          '    workloadCertTTL: 1h30m',
          '    allowedClockSkew: 2m',
          '    rootRotation: {enabled: false, prepareAtFraction: 0.6, activateAtFraction: 0.9, propagationWindow: 3h}',
          '    issuerRenewal: {renewAtFraction: 0.75}',
          '',
        ].join('\n'),
      ).mtls,
    );
    expect(policy).toEqual({
      workloadCertTtlMs: 90 * 60_000,
      allowedClockSkewMs: 2 * 60_000,
      propagationWindowMs: 3 * HOUR,
      rootRotation: { enabled: false, prepareAtFraction: 0.6, activateAtFraction: 0.9 },
      issuerRenewal: { enabled: true, renewAtFraction: 0.75 },
    });
    expect(Object.isFrozen(policy.rootRotation)).toBe(true);
  });

  it('lets flags (for CRDs that prune Warden’s fields) win over the Configuration', () => {
    const mtls = configuration(
      '    rootRotation: {enabled: false, propagationWindow: 3h}\n    issuerRenewal: {enabled: true}\n',
    ).mtls;
    const policy = rotationPolicyFromMtls(mtls, {
      rootRotationEnabled: true,
      issuerRenewalEnabled: false,
      propagationWindowMs: 0,
    });
    expect(policy.rootRotation.enabled).toBe(true);
    expect(policy.issuerRenewal.enabled).toBe(false);
    expect(policy.propagationWindowMs).toBe(0);
    expect(propagationWindowMs(rotationPolicyFromMtls(mtls))).toBe(3 * HOUR);
  });
});
