import type { X509Certificate } from 'node:crypto';
import { formatDuration } from '../../shared/duration.js';
import { sha256Fingerprint, subjectText } from '../certificate-facts.js';
import {
  activateAt,
  activationAllowedAt,
  issuerRenewalAt,
  prepareAt,
  propagationWindowMs,
  retirementAllowedAt,
  type RotationPolicy,
} from './rotation-policy.js';
import type { RotationEvent, RotationPhase, RotationStep } from './rotation-state.js';
import { automaticRotation } from './rotation-schedule.js';
import { validityOf, type RotationView } from './rotation-view.js';

const DAY_MS = 86_400_000;

export type RootRole = 'active' | 'next' | 'retiring' | 'other';

/** One certificate as `warden rotate status` shows it; plain data, JSON-safe. */
export interface RotationCertificateStatus {
  readonly subject: string;
  readonly sha256Fingerprint: string;
  readonly notBefore: string;
  readonly notAfter: string;
  readonly daysLeft: number;
}

export interface RootStatus extends RotationCertificateStatus {
  readonly role: RootRole;
}

export interface NextStepStatus {
  readonly step: RotationStep;
  /** When the step stops being refused (a manual step); equal to or before checkedAt when allowed now. */
  readonly allowedAt: string;
  readonly allowedNow: boolean;
  /** When the driver takes it on its own, or null when it will not. */
  readonly automaticAt: string | null;
}

export interface RotationStatusReport {
  readonly checkedAt: string;
  readonly phase: RotationPhase;
  readonly revision: number;
  readonly preparedAt: string | null;
  readonly activatedAt: string | null;
  readonly propagationWindow: string;
  /** Every anchor, in file order, with its part in the rotation. */
  readonly roots: readonly RootStatus[];
  readonly issuer: RotationCertificateStatus & { readonly renewAt: string | null };
  /** The prepared next issuer (phase prepared). */
  readonly nextIssuer: RotationCertificateStatus | null;
  readonly rootKeyHeld: boolean;
  readonly rootKeyNote: string | null;
  readonly automatic: {
    readonly rootRotation: boolean;
    readonly issuerRenewal: boolean;
    readonly reason: string | null;
  };
  readonly nextSteps: readonly NextStepStatus[];
  readonly history: readonly RotationEvent[];
}

export function buildRotationStatus(
  view: RotationView,
  policy: RotationPolicy,
  now: Date,
): RotationStatusReport {
  const { state } = view;
  const auto = automaticRotation(view, policy);
  const roleOf = (cert: X509Certificate): RootRole => {
    if (cert.fingerprint256 === state.nextRootFingerprint) return 'next';
    if (cert.fingerprint256 === state.retiringRootFingerprint && state.phase === 'activated')
      return 'retiring';
    if (cert.fingerprint256 === view.activeRoot.fingerprint256) return 'active';
    return 'other';
  };
  const issuerRenewAt = auto.issuerRenewal
    ? issuerRenewalAt(validityOf(view.issuer), validityOf(view.activeRoot), policy)
    : null;

  const steps: NextStepStatus[] = [];
  const step = (name: RotationStep, allowedAt: Date, automaticAt: Date | null): void => {
    steps.push({
      step: name,
      allowedAt: allowedAt.toISOString(),
      allowedNow: allowedAt.getTime() <= now.getTime(),
      automaticAt: automaticAt ? automaticAt.toISOString() : null,
    });
  };
  if (state.phase === 'idle') {
    step('prepare', now, auto.rootRotation ? prepareAt(validityOf(view.activeRoot), policy) : null);
  } else if (state.phase === 'prepared') {
    step(
      'activate',
      activationAllowedAt(state, policy) as Date,
      auto.rootRotation ? activateAt(validityOf(view.activeRoot), state, policy) : null,
    );
  } else {
    const allowed = retirementAllowedAt(
      state,
      policy,
      view.retiringRoot ? validityOf(view.retiringRoot).notAfter : null,
    ) as Date;
    step('retire', allowed, auto.rootRotation ? allowed : null);
  }
  // Only the driver renews issuers, and only when it gains something (see issuerRenewalAt).
  if (issuerRenewAt !== null) step('renew-issuer', issuerRenewAt, issuerRenewAt);

  return {
    checkedAt: now.toISOString(),
    phase: state.phase,
    revision: state.revision,
    preparedAt: state.preparedAt,
    activatedAt: state.activatedAt,
    propagationWindow: formatDuration(propagationWindowMs(policy)),
    roots: view.material.anchors.map((cert) => ({ role: roleOf(cert), ...describe(cert, now) })),
    issuer: {
      ...describe(view.issuer, now),
      renewAt: issuerRenewAt ? issuerRenewAt.toISOString() : null,
    },
    nextIssuer: view.next ? describe(view.next.issuer, now) : null,
    rootKeyHeld: view.rootKeyPem !== null,
    rootKeyNote: view.rootKeyNote,
    automatic: auto,
    nextSteps: steps,
    history: state.history,
  };
}

function describe(cert: X509Certificate, now: Date): RotationCertificateStatus {
  const { notBefore, notAfter } = validityOf(cert);
  return {
    subject: subjectText(cert),
    sha256Fingerprint: sha256Fingerprint(cert),
    notBefore: notBefore.toISOString(),
    notAfter: notAfter.toISOString(),
    daysLeft: Math.floor((notAfter.getTime() - now.getTime()) / DAY_MS),
  };
}
