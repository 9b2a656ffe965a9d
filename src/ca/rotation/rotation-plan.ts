import { X509Certificate } from 'node:crypto';
import { formatDuration } from '../../shared/duration.js';
import { WardenError } from '../../shared/errors.js';
import type { CaCredential } from '../generate.js';
import { parsePemBlocks } from '../pem.js';
import type { StoredTrust, TrustExtras } from '../trust-store.js';
import { validateTrustMaterial } from '../validate.js';
import {
  activationAllowedAt,
  propagationWindowMs,
  retirementAllowedAt,
  type RotationPolicy,
} from './rotation-policy.js';
import {
  advanceRotationState,
  serializeRotationState,
  type RotationState,
  type RotationStep,
} from './rotation-state.js';
import {
  certificatePem,
  keyMatches,
  signedBy,
  validityOf,
  type RotationView,
} from './rotation-view.js';

/*
 * Pure transitions: a validated view of the store, the time and (for prepare and renewal)
 * freshly minted credentials in; the complete next store contents out, or a refusal. The
 * caller commits the result with one compare-and-swap, so a step is all-or-nothing and
 * running it again after success finds nothing to do.
 */

/** The next root with its issuer: minted by Warden, or imported from an operator. */
export interface NextCredentials {
  /** Exactly one self-signed root certificate (PEM). */
  readonly rootPem: string;
  /** Its private key when known (Warden then keeps custody after activation). */
  readonly rootKeyPem: string | null;
  /** The next issuer certificate (then any intermediates), signed under rootPem. */
  readonly issuerChainPem: string;
  readonly issuerKeyPem: string;
}

export type RotationPlan =
  | { readonly kind: 'unchanged'; readonly step: RotationStep; readonly reason: string }
  | {
      readonly kind: 'replace';
      readonly step: RotationStep;
      readonly next: StoredTrust;
      readonly state: RotationState;
      readonly summary: string;
    };

export interface ForceOption {
  /** Skip the waiting period (never the phase order). */
  readonly force?: boolean;
}

const at = (now: Date): { now: () => Date } => ({ now: () => now });

export function refusal(step: RotationStep, message: string, allowedAt?: Date): WardenError {
  return new WardenError('ERR_ROTATION_REFUSED', `${step} refused: ${message}`, {
    details: allowedAt ? { step, allowedAt: allowedAt.toISOString() } : { step },
  });
}

/**
 * What prepare answers without new credentials: "already prepared" or a refusal (throws);
 * null when it would go ahead (so callers mint keys only then).
 */
export function prepareWithoutCredentials(view: RotationView): RotationPlan | null {
  const { state } = view;
  if (state.phase === 'prepared') {
    return {
      kind: 'unchanged',
      step: 'prepare',
      reason: `already prepared: the next root ${state.nextRootFingerprint} has been published since ${state.preparedAt}`,
    };
  }
  if (state.phase === 'activated') {
    throw refusal(
      'prepare',
      `the previous rotation is not finished: retire the old root ${state.retiringRootFingerprint} first`,
    );
  }
  return null;
}

/** prepare: publish the next root beside the current one; signing does not change. */
export function planPrepare(view: RotationView, next: NextCredentials, now: Date): RotationPlan {
  const early = prepareWithoutCredentials(view);
  if (early) return early;
  const { state } = view;
  const nextRoot = checkNextCredentials(view, next, now);
  const anchorsPem = appendPem(view.stored.material.anchorsPem, certificatePem(nextRoot));
  const nextState = advanceRotationState(
    state,
    {
      phase: 'prepared',
      nextRootFingerprint: nextRoot.fingerprint256,
      retiringRootFingerprint: view.activeRoot.fingerprint256,
      preparedAt: now.toISOString(),
      activatedAt: null,
    },
    { step: 'prepare', at: now.toISOString(), forced: false, fingerprint: nextRoot.fingerprint256 },
  );
  const extras: Record<string, string | undefined> = {
    ...view.stored.extras,
    rotationState: serializeRotationState(nextState),
    nextIssuerChain: next.issuerChainPem,
    nextIssuerKey: next.issuerKeyPem,
    nextRootKey: next.rootKeyPem ?? undefined,
  };
  return replacement(
    'prepare',
    { ...view.stored.material, anchorsPem },
    extras,
    nextState,
    now,
    `prepared: the next root ${nextRoot.fingerprint256} is published beside ${view.activeRoot.fingerprint256}; signing continues with the current issuer`,
  );
}

/** activate: the next issuer signs from now on; the issuer files hold it. */
export function planActivate(
  view: RotationView,
  policy: RotationPolicy,
  now: Date,
  options: ForceOption & { readonly freshIssuer?: CaCredential } = {},
): RotationPlan {
  const { state } = view;
  if (state.phase === 'activated') {
    return {
      kind: 'unchanged',
      step: 'activate',
      reason: `already activated at ${state.activatedAt}: the issuer ${view.issuer.fingerprint256} signs under the root ${view.activeRoot.fingerprint256}`,
    };
  }
  if (state.phase === 'idle' || !view.next) {
    throw refusal('activate', 'nothing is prepared: run "warden rotate prepare" first');
  }
  const allowedAt = activationAllowedAt(state, policy) as Date;
  if (now < allowedAt && !options.force) {
    throw refusal(
      'activate',
      `the next root has been published for ${formatDuration(now.getTime() - Date.parse(state.preparedAt as string))} ` +
        `of the ${formatDuration(propagationWindowMs(policy))} propagation window; allowed from ${allowedAt.toISOString()} (--force overrides)`,
      allowedAt,
    );
  }
  const slot = view.next;
  if (
    options.freshIssuer &&
    !signedBy(
      new X509Certificate(lastCertificatePem(options.freshIssuer.certificatePem)),
      slot.root,
    )
  ) {
    throw new TypeError('planActivate: the fresh issuer must chain to the prepared next root');
  }
  const issuerChainPem = options.freshIssuer?.certificatePem ?? slot.issuerChainPem;
  const issuerKeyPem = options.freshIssuer?.privateKeyPem ?? slot.issuerKeyPem;
  const nextState = advanceRotationState(
    state,
    {
      phase: 'activated',
      nextRootFingerprint: null,
      retiringRootFingerprint: state.retiringRootFingerprint,
      preparedAt: state.preparedAt,
      activatedAt: now.toISOString(),
    },
    {
      step: 'activate',
      at: now.toISOString(),
      forced: now < allowedAt,
      fingerprint: new X509Certificate(issuerChainPem).fingerprint256,
    },
  );
  const extras: Record<string, string | undefined> = {
    ...view.stored.extras,
    rotationState: serializeRotationState(nextState),
    // Custody follows the signing root: the old root key signs nothing any more.
    rootKey: slot.rootKeyPem ?? undefined,
    nextRootKey: undefined,
    nextIssuerChain: undefined,
    nextIssuerKey: undefined,
  };
  const material = { anchorsPem: view.stored.material.anchorsPem, issuerChainPem, issuerKeyPem };
  return replacement(
    'activate',
    material,
    extras,
    nextState,
    now,
    `activated: the issuer ${nextState.history.at(-1)?.fingerprint} under the root ${slot.root.fingerprint256} signs from now on; ` +
      `the old root ${state.retiringRootFingerprint} stays published until retirement`,
  );
}

/** retire: drop the old root from the anchors once nothing it signed can still be in use. */
export function planRetire(
  view: RotationView,
  policy: RotationPolicy,
  now: Date,
  options: ForceOption = {},
): RotationPlan {
  const { state } = view;
  if (state.phase === 'idle') {
    return {
      kind: 'unchanged',
      step: 'retire',
      reason: 'nothing to retire: no rotation is in progress',
    };
  }
  if (state.phase === 'prepared') {
    throw refusal('retire', 'the next root is not active yet: run "warden rotate activate" first');
  }
  const retiring = view.retiringRoot;
  const allowedAt = retirementAllowedAt(
    state,
    policy,
    retiring ? validityOf(retiring).notAfter : null,
  ) as Date;
  if (now < allowedAt && !options.force) {
    throw refusal(
      'retire',
      `certificates signed under the old root may be in use until ${allowedAt.toISOString()} ` +
        `(activation at ${state.activatedAt} + workloadCertTTL ${formatDuration(policy.workloadCertTtlMs)} + allowedClockSkew ${formatDuration(policy.allowedClockSkewMs)}) (--force overrides)`,
      allowedAt,
    );
  }
  const fingerprint = state.retiringRootFingerprint as string;
  const anchorsPem = retiring
    ? removeCertificate(view.stored.material.anchorsPem, fingerprint)
    : view.stored.material.anchorsPem;
  const nextState = advanceRotationState(
    state,
    {
      phase: 'idle',
      nextRootFingerprint: null,
      retiringRootFingerprint: null,
      preparedAt: null,
      activatedAt: null,
    },
    { step: 'retire', at: now.toISOString(), forced: now < allowedAt, fingerprint },
  );
  const extras = { ...view.stored.extras, rotationState: serializeRotationState(nextState) };
  return replacement(
    'retire',
    { ...view.stored.material, anchorsPem },
    extras,
    nextState,
    now,
    retiring
      ? `retired: the old root ${fingerprint} is no longer published`
      : `retired: the old root ${fingerprint} had already been removed from the anchors`,
  );
}

/** renew-issuer: a new issuer under the same (active) root replaces the current one. */
export function planIssuerRenewal(
  view: RotationView,
  issuer: CaCredential,
  now: Date,
): RotationPlan {
  const cert = new X509Certificate(issuer.certificatePem);
  if (!signedBy(cert, view.activeRoot) || !keyMatches(cert, issuer.privateKeyPem)) {
    throw new TypeError(
      'planIssuerRenewal: the new issuer must be signed by the active root and match its key',
    );
  }
  const nextState = advanceRotationState(
    view.state,
    {
      phase: view.state.phase,
      nextRootFingerprint: view.state.nextRootFingerprint,
      retiringRootFingerprint: view.state.retiringRootFingerprint,
      preparedAt: view.state.preparedAt,
      activatedAt: view.state.activatedAt,
    },
    {
      step: 'renew-issuer',
      at: now.toISOString(),
      forced: false,
      fingerprint: cert.fingerprint256,
    },
  );
  const extras = { ...view.stored.extras, rotationState: serializeRotationState(nextState) };
  const material = {
    anchorsPem: view.stored.material.anchorsPem,
    issuerChainPem: issuer.certificatePem,
    issuerKeyPem: issuer.privateKeyPem,
  };
  return replacement(
    'renew-issuer',
    material,
    extras,
    nextState,
    now,
    `renewed the issuer under the root ${view.activeRoot.fingerprint256}: ${cert.fingerprint256} (not after ${validityOf(cert).notAfter.toISOString()})`,
  );
}

function replacement(
  step: RotationStep,
  material: StoredTrust['material'],
  extras: Record<string, string | undefined>,
  state: RotationState,
  now: Date,
  summary: string,
): RotationPlan {
  // Validate what we are about to commit (rule 18), with the names the store uses.
  validateTrustMaterial(material, { clock: at(now) });
  const clean: Record<string, string> = {};
  for (const [name, text] of Object.entries(extras)) if (text !== undefined) clean[name] = text;
  return {
    kind: 'replace',
    step,
    next: { material, extras: clean as TrustExtras },
    state,
    summary,
  };
}

function checkNextCredentials(
  view: RotationView,
  next: NextCredentials,
  now: Date,
): X509Certificate {
  const blocks = parsePemBlocks(next.rootPem);
  if (!blocks.ok || blocks.blocks.length !== 1) {
    throw new WardenError(
      'ERR_TRUST_MATERIAL_INVALID',
      'the next root must be exactly one certificate',
    );
  }
  const slot = validateTrustMaterial(
    {
      anchorsPem: next.rootPem,
      issuerChainPem: next.issuerChainPem,
      issuerKeyPem: next.issuerKeyPem,
    },
    {
      clock: at(now),
      names: {
        anchors: 'next ca.crt',
        issuerChain: 'next issuer.crt',
        issuerKey: 'next issuer.key',
      },
    },
  );
  const root = slot.anchors[0] as X509Certificate;
  if (view.material.anchors.some((a) => a.fingerprint256 === root.fingerprint256)) {
    throw new WardenError(
      'ERR_TRUST_MATERIAL_INVALID',
      `the next root ${root.fingerprint256} is already among the current anchors`,
    );
  }
  if (next.rootKeyPem !== null && !keyMatches(root, next.rootKeyPem)) {
    throw new WardenError(
      'ERR_TRUST_MATERIAL_INVALID',
      'the next root key does not match the next root',
    );
  }
  return root;
}

/** The anchors' bytes unchanged, the new root appended (so old readers' bytes stay a prefix). */
function appendPem(existing: string, pem: string): string {
  return existing.length === 0 || existing.endsWith('\n') ? existing + pem : `${existing}\n${pem}`;
}

/** Every anchor but the one with `fingerprint`, each re-encoded as canonical PEM in order. */
function removeCertificate(anchorsPem: string, fingerprint: string): string {
  const blocks = parsePemBlocks(anchorsPem);
  if (!blocks.ok) throw new TypeError('removeCertificate: anchors were validated before');
  const kept = blocks.blocks
    .map((b) => new X509Certificate(b.der))
    .filter((c) => c.fingerprint256 !== fingerprint);
  if (kept.length === 0)
    throw new TypeError('removeCertificate: the last anchor cannot be retired');
  return kept.map(certificatePem).join('');
}

function lastCertificatePem(chainPem: string): string {
  const blocks = parsePemBlocks(chainPem);
  if (!blocks.ok) throw new TypeError('lastCertificatePem: invalid chain');
  const last = blocks.blocks[blocks.blocks.length - 1];
  if (!last) throw new TypeError('lastCertificatePem: empty chain');
  return certificatePem(new X509Certificate(last.der));
}
