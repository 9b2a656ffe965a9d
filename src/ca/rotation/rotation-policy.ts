import {
  defaultDaprConfiguration,
  type MtlsSettings,
} from '../../shared/config/dapr-configuration-settings.js';
import type { RotationState } from './rotation-state.js';

/**
 * When rotation steps are allowed and when the automatic driver takes them: pure functions
 * of certificate lifetimes, the rotation state and the policy, so tests step a clock.
 */
export interface RotationPolicy {
  /** Configuration spec.mtls.workloadCertTTL (Dapr default 24h): the longest a leaf lives. */
  readonly workloadCertTtlMs: number;
  /** Configuration spec.mtls.allowedClockSkew (Dapr default 15m). */
  readonly allowedClockSkewMs: number;
  /**
   * How long anchors holding the next root are published before the next issuer may sign
   * (null: workloadCertTTL + allowedClockSkew, the time in which every workload has renewed
   * at least once and so received the new anchors with its certificate).
   */
  readonly propagationWindowMs: number | null;
  readonly rootRotation: {
    /** Automatic prepare/activate/retire when Warden holds the root key (default true). */
    readonly enabled: boolean;
    /** Prepare at notBefore + this fraction of the root's lifetime (default 1/2). */
    readonly prepareAtFraction: number;
    /** Activate at notBefore + this fraction of the root's lifetime (default 5/6), once allowed. */
    readonly activateAtFraction: number;
  };
  readonly issuerRenewal: {
    /** Automatic issuer renewal under the same root when Warden holds the root key (default true). */
    readonly enabled: boolean;
    /** Renew at notBefore + this fraction of the issuer's lifetime (default 2/3). */
    readonly renewAtFraction: number;
  };
}

/** What the Configuration's fields do not say and flags may (a CRD may prune Warden's fields). */
export interface RotationPolicyOverrides {
  /** `--root-rotation`: spec.mtls.rootRotation.enabled. */
  readonly rootRotationEnabled?: boolean | undefined;
  /** `--issuer-renewal`: spec.mtls.issuerRenewal.enabled. */
  readonly issuerRenewalEnabled?: boolean | undefined;
  /** `--propagation-window`: spec.mtls.rootRotation.propagationWindow. */
  readonly propagationWindowMs?: number | undefined;
}

/**
 * The rotation policy a Configuration's `spec.mtls` describes (the one schema in
 * src/shared/config reads and checks it), with flag overrides applied.
 */
export function rotationPolicyFromMtls(
  mtls: MtlsSettings,
  overrides: RotationPolicyOverrides = {},
): RotationPolicy {
  return Object.freeze({
    workloadCertTtlMs: mtls.workloadCertTtlMs,
    allowedClockSkewMs: mtls.allowedClockSkewMs,
    propagationWindowMs: overrides.propagationWindowMs ?? mtls.rootRotation.propagationWindowMs,
    rootRotation: Object.freeze({
      enabled: overrides.rootRotationEnabled ?? mtls.rootRotation.enabled,
      prepareAtFraction: mtls.rootRotation.prepareAtFraction,
      activateAtFraction: mtls.rootRotation.activateAtFraction,
    }),
    issuerRenewal: Object.freeze({
      enabled: overrides.issuerRenewalEnabled ?? mtls.issuerRenewal.enabled,
      renewAtFraction: mtls.issuerRenewal.renewAtFraction,
    }),
  });
}

/** Dapr's defaults (workloadCertTTL 24h, allowedClockSkew 15m) and Warden's for rotation. */
export const DEFAULT_ROTATION_POLICY: RotationPolicy = rotationPolicyFromMtls(
  defaultDaprConfiguration().mtls,
);

/** Every problem with a policy, as sentences naming the field; [] when it is usable. */
export function rotationPolicyProblems(policy: RotationPolicy): string[] {
  const problems: string[] = [];
  const nonNegative = (value: number, name: string): void => {
    if (!Number.isFinite(value) || value < 0)
      problems.push(`${name} must be a non-negative duration`);
  };
  if (!Number.isFinite(policy.workloadCertTtlMs) || policy.workloadCertTtlMs <= 0)
    problems.push('workloadCertTTL must be a positive duration');
  nonNegative(policy.allowedClockSkewMs, 'allowedClockSkew');
  if (policy.propagationWindowMs !== null)
    nonNegative(policy.propagationWindowMs, 'rootRotation.propagationWindow');
  const fraction = (value: number, name: string): void => {
    if (!Number.isFinite(value) || value <= 0 || value >= 1)
      problems.push(`${name} must be a number between 0 and 1 (exclusive)`);
  };
  fraction(policy.rootRotation.prepareAtFraction, 'rootRotation.prepareAtFraction');
  fraction(policy.rootRotation.activateAtFraction, 'rootRotation.activateAtFraction');
  fraction(policy.issuerRenewal.renewAtFraction, 'issuerRenewal.renewAtFraction');
  if (
    problems.length === 0 &&
    policy.rootRotation.activateAtFraction <= policy.rootRotation.prepareAtFraction
  ) {
    problems.push('rootRotation.activateAtFraction must be greater than prepareAtFraction');
  }
  return problems;
}

export interface Validity {
  readonly notBefore: Date;
  readonly notAfter: Date;
}

/** How long the next root must be published before activation. */
export function propagationWindowMs(policy: RotationPolicy): number {
  return policy.propagationWindowMs ?? policy.workloadCertTtlMs + policy.allowedClockSkewMs;
}

/**
 * How long after activation a certificate signed under the old root may still be in use:
 * the last issuance under the old issuer happens no later than activation (the CA that
 * activates signs with the new issuer from then on; other replicas follow within seconds,
 * well inside the skew), a leaf lives at most workloadCertTTL, and peers' clocks may be
 * allowedClockSkew behind.
 */
export function oldRootInUseForMs(policy: RotationPolicy): number {
  return policy.workloadCertTtlMs + policy.allowedClockSkewMs;
}

/** When `activate` stops being refused (null: not in the prepared phase). */
export function activationAllowedAt(state: RotationState, policy: RotationPolicy): Date | null {
  if (state.phase !== 'prepared' || state.preparedAt === null) return null;
  return new Date(Date.parse(state.preparedAt) + propagationWindowMs(policy));
}

/**
 * When `retire` stops being refused (null: not in the activated phase): once every leaf
 * signed under the old root has expired, or once the old root itself has expired (after
 * which it verifies nothing anyway), whichever is first.
 */
export function retirementAllowedAt(
  state: RotationState,
  policy: RotationPolicy,
  retiringRootNotAfter: Date | null,
): Date | null {
  if (state.phase !== 'activated' || state.activatedAt === null) return null;
  const lastLeafGone = Date.parse(state.activatedAt) + oldRootInUseForMs(policy);
  return new Date(
    retiringRootNotAfter === null
      ? lastLeafGone
      : Math.min(lastLeafGone, retiringRootNotAfter.getTime()),
  );
}

function atFraction(validity: Validity, fraction: number): Date {
  const start = validity.notBefore.getTime();
  return new Date(start + fraction * (validity.notAfter.getTime() - start));
}

/** When the driver prepares the next root, from the active root's validity. */
export function prepareAt(activeRoot: Validity, policy: RotationPolicy): Date {
  return atFraction(activeRoot, policy.rootRotation.prepareAtFraction);
}

/** When the driver activates: the lifetime threshold, but never before activation is allowed. */
export function activateAt(
  activeRoot: Validity,
  state: RotationState,
  policy: RotationPolicy,
): Date | null {
  const allowed = activationAllowedAt(state, policy);
  if (allowed === null) return null;
  const threshold = atFraction(activeRoot, policy.rootRotation.activateAtFraction);
  return new Date(Math.max(threshold.getTime(), allowed.getTime()));
}

/**
 * When the issuer is renewed under the same root, or null when renewal would gain nothing:
 * an issuer already clamped to its root's notAfter cannot outlive it, so only the root's
 * rotation can help (renewing again and again would only mint ever-shorter issuers).
 */
export function issuerRenewalAt(
  issuer: Validity,
  root: Validity,
  policy: RotationPolicy,
): Date | null {
  if (issuer.notAfter.getTime() >= root.notAfter.getTime()) return null;
  return atFraction(issuer, policy.issuerRenewal.renewAtFraction);
}
