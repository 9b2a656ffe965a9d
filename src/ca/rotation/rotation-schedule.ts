import {
  activateAt,
  issuerRenewalAt,
  prepareAt,
  retirementAllowedAt,
  type RotationPolicy,
} from './rotation-policy.js';
import type { RotationStep } from './rotation-state.js';
import { validityOf, type RotationView } from './rotation-view.js';

/** Whether the driver acts on its own, and if not, why (for logs and status). */
export interface AutomaticRotation {
  readonly rootRotation: boolean;
  readonly issuerRenewal: boolean;
  /** Why either is off, or null when both are on. */
  readonly reason: string | null;
}

/**
 * Automatic steps need custody of the active root's key: it is the sign that Warden made
 * the root (init or first start) rather than an operator bringing their own, whose root
 * Warden must never replace on its own.
 */
export function automaticRotation(view: RotationView, policy: RotationPolicy): AutomaticRotation {
  const custody = view.rootKeyPem !== null;
  const rootRotation = custody && policy.rootRotation.enabled;
  const issuerRenewal = custody && policy.issuerRenewal.enabled;
  let reason: string | null = null;
  if (!custody)
    reason = `${view.rootKeyNote ?? 'Warden does not hold the root key'}; rotate with "warden rotate"`;
  else if (!rootRotation && !issuerRenewal)
    reason = 'disabled by configuration (rootRotation, issuerRenewal)';
  else if (!rootRotation)
    reason = 'root rotation is disabled by configuration (rootRotation.enabled)';
  else if (!issuerRenewal)
    reason = 'issuer renewal is disabled by configuration (issuerRenewal.enabled)';
  return { rootRotation, issuerRenewal, reason };
}

export interface AutomaticDecision {
  /** The step to take now, or null. */
  readonly step: RotationStep | null;
  /** Why (or why not), for the debug log. */
  readonly reason: string;
  /** When the next automatic step falls due (null: none is scheduled). */
  readonly nextDueAt: Date | null;
}

/**
 * The one step the driver takes at `now`, if any. Rotation steps come before issuer
 * renewal; a renewal that is also due happens on the next tick.
 */
export function decideAutomaticStep(
  view: RotationView,
  policy: RotationPolicy,
  now: Date,
): AutomaticDecision {
  const auto = automaticRotation(view, policy);
  const due: { step: RotationStep; at: Date }[] = [];
  if (auto.rootRotation) {
    const { state } = view;
    if (state.phase === 'idle') {
      due.push({ step: 'prepare', at: prepareAt(validityOf(view.activeRoot), policy) });
    } else if (state.phase === 'prepared') {
      const at = activateAt(validityOf(view.activeRoot), state, policy);
      if (at) due.push({ step: 'activate', at });
    } else {
      const retiring = view.retiringRoot ? validityOf(view.retiringRoot).notAfter : null;
      const at = retirementAllowedAt(state, policy, retiring);
      if (at) due.push({ step: 'retire', at });
    }
  }
  if (auto.issuerRenewal) {
    const at = issuerRenewalAt(validityOf(view.issuer), validityOf(view.activeRoot), policy);
    if (at) due.push({ step: 'renew-issuer', at });
  }
  const ready = due.find((d) => d.at.getTime() <= now.getTime());
  const later = due
    .filter((d) => d.at.getTime() > now.getTime())
    .sort((a, b) => a.at.getTime() - b.at.getTime());
  const nextDueAt = later[0]?.at ?? null;
  if (ready) {
    return {
      step: ready.step,
      reason: `${ready.step} was due at ${ready.at.toISOString()}`,
      nextDueAt,
    };
  }
  if (due.length === 0) {
    return { step: null, reason: auto.reason ?? 'nothing is scheduled', nextDueAt: null };
  }
  return {
    step: null,
    reason: `next: ${later[0]?.step} at ${nextDueAt?.toISOString()}`,
    nextDueAt,
  };
}
