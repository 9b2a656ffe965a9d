import type { X509Certificate } from 'node:crypto';
import { systemClock, type Clock } from '../../shared/clock.js';
import { WardenError } from '../../shared/errors.js';
import { silentLogger, type Logger } from '../../shared/logger.js';
import { spiffeIdsOf } from '../certificate-facts.js';
import { DEFAULT_BACKDATE_MS } from '../backdate.js';
import type * as Generate from '../generate.js';
import type { CaCredential } from '../generate.js';
import { classifyKey, isKeyAlgorithm, type KeyAlgorithm } from '../key-algorithm.js';
import type { StoredTrust, TrustMaterialStore } from '../trust-store.js';
import {
  planActivate,
  planIssuerRenewal,
  planPrepare,
  planRetire,
  prepareWithoutCredentials,
  type ForceOption,
  type NextCredentials,
  type RotationPlan,
} from './rotation-plan.js';
import { issuerRenewalAt, type RotationPolicy } from './rotation-policy.js';
import type { RotationState, RotationStep } from './rotation-state.js';
import { certificatePem, inspectRotation, validityOf, type RotationView } from './rotation-view.js';

/**
 * Certificate generation (@peculiar/x509) loads when a step first mints something, not when
 * `warden serve` starts its rotation driver (issue 7: cold start).
 */
function loadGenerate(): Promise<typeof Generate> {
  return import('../generate.js');
}

/** What every rotation step works on. */
export interface RotationContext {
  readonly store: TrustMaterialStore;
  readonly policy: RotationPolicy;
  readonly clock?: Clock;
  readonly logger?: Logger;
  /** Minting choices; each one absent is derived from the current certificates. */
  readonly minting?: MintingOptions;
}

export interface MintingOptions {
  /** Default: the trust domain in the current issuer's (or root's) SPIFFE ID. */
  readonly trustDomain?: string;
  /** Default: the current issuer key's algorithm when Warden can generate it, else ecdsa-p256. */
  readonly keyAlgorithm?: KeyAlgorithm;
  /** Default: the current root's lifetime. */
  readonly rootTtlMs?: number;
  /** Default: the current issuer's lifetime (the root's when the issuer was clamped to it). */
  readonly issuerTtlMs?: number;
}

export interface StepResult {
  readonly step: RotationStep;
  /** False when the step had already been taken (running a step twice is fine). */
  readonly changed: boolean;
  /** One line for people: what happened, or why nothing needed to. */
  readonly message: string;
  readonly state: RotationState;
  /** The store contents after the step. */
  readonly stored: StoredTrust;
}

/** Compare-and-swap attempts before giving up on a store that keeps changing under us. */
const MAX_ATTEMPTS = 5;

/** Reads the store and checks it (no changes). */
export async function readRotationView(context: RotationContext): Promise<RotationView> {
  const stored = await context.store.read();
  if (stored === null) {
    throw new WardenError(
      'ERR_TRUST_MATERIAL_INVALID',
      `no trust material in ${context.store.describe()} (create it with "warden init")`,
    );
  }
  return inspect(context, stored);
}

/**
 * prepare: mint (or import, with `from`) the next root and issuer and publish the next root
 * in the anchors beside the current one. Signing continues with the current issuer.
 */
export function prepareRotation(
  context: RotationContext,
  options: { readonly from?: NextCredentials } = {},
): Promise<StepResult> {
  return commit(context, 'prepare', async (view, now) => {
    const early = prepareWithoutCredentials(view);
    if (early) return early;
    const next = options.from ?? (await mintNext(view, context, now));
    return planPrepare(view, next, now);
  });
}

/**
 * activate: the prepared issuer signs from now on. Refused until the next root has been
 * published for the propagation window, unless `force`. When Warden holds the next root's
 * key and the prepared issuer is already past its renewal point, a fresh one is minted.
 */
export function activateRotation(
  context: RotationContext,
  options: ForceOption = {},
): Promise<StepResult> {
  return commit(context, 'activate', async (view, now) => {
    const slot = view.next;
    let freshIssuer: CaCredential | undefined;
    if (view.state.phase === 'prepared' && slot?.rootKeyPem) {
      const renewAt = issuerRenewalAt(
        validityOf(slot.issuer),
        validityOf(slot.root),
        context.policy,
      );
      if (renewAt !== null && now >= renewAt) {
        // Check first that the step is allowed, so a refused step mints nothing.
        planActivate(view, context.policy, now, options);
        freshIssuer = await (await loadGenerate()).generateIssuer(
          { certificatePem: certificatePem(slot.root), privateKeyPem: slot.rootKeyPem },
          { ...issuerMinting(view, slot.issuer, slot.root, context), clock: fixed(now) },
        );
      }
    }
    return planActivate(view, context.policy, now, { ...options, freshIssuer });
  });
}

/** retire: drop the old root from the anchors. Refused until nothing it signed can be in use, unless `force`. */
export function retireRotation(
  context: RotationContext,
  options: ForceOption = {},
): Promise<StepResult> {
  return commit(context, 'retire', async (view, now) =>
    planRetire(view, context.policy, now, options),
  );
}

/**
 * renew-issuer: a new issuer under the active root (needs Warden's custody of that root's
 * key). Only when renewal is due (issuerRenewalAt), unless `force`: so a second replica
 * that planned the same renewal finds it done instead of renewing twice.
 */
export function renewIssuer(
  context: RotationContext,
  options: ForceOption = {},
): Promise<StepResult> {
  return commit(context, 'renew-issuer', async (view, now) => {
    if (view.rootKeyPem === null) {
      throw new WardenError(
        'ERR_ROTATION_REFUSED',
        `renew-issuer refused: ${view.rootKeyNote ?? 'Warden does not hold the root key'}`,
      );
    }
    const dueAt = issuerRenewalAt(
      validityOf(view.issuer),
      validityOf(view.activeRoot),
      context.policy,
    );
    if (!options.force && (dueAt === null || now < dueAt)) {
      return {
        kind: 'unchanged',
        step: 'renew-issuer',
        reason:
          dueAt === null
            ? `the issuer ${view.issuer.fingerprint256} already lives as long as its root`
            : `the issuer ${view.issuer.fingerprint256} is not due for renewal until ${dueAt.toISOString()}`,
      };
    }
    const issuer = await (await loadGenerate()).generateIssuer(
      { certificatePem: certificatePem(view.activeRoot), privateKeyPem: view.rootKeyPem },
      { ...issuerMinting(view, view.issuer, view.activeRoot, context), clock: fixed(now) },
    );
    return planIssuerRenewal(view, issuer, now);
  });
}

async function commit(
  context: RotationContext,
  step: RotationStep,
  plan: (view: RotationView, now: Date) => Promise<RotationPlan>,
): Promise<StepResult> {
  const clock = context.clock ?? systemClock;
  const logger = context.logger ?? silentLogger;
  for (let attempt = 1; attempt <= MAX_ATTEMPTS; attempt++) {
    const stored = await context.store.read();
    if (stored === null) {
      throw new WardenError(
        'ERR_TRUST_MATERIAL_INVALID',
        `no trust material in ${context.store.describe()} (create it with "warden init")`,
      );
    }
    const view = inspect(context, stored);
    const now = clock.now();
    const decided = await plan(view, now);
    if (decided.kind === 'unchanged') {
      return { step, changed: false, message: decided.reason, state: view.state, stored };
    }
    const outcome = await context.store.replace(stored, decided.next);
    if (outcome === 'replaced') {
      logger.info(
        {
          step,
          store: context.store.describe(),
          revision: decided.state.revision,
          phase: decided.state.phase,
        },
        decided.summary,
      );
      return {
        step,
        changed: true,
        message: decided.summary,
        state: decided.state,
        stored: decided.next,
      };
    }
    // Someone else (another replica, the CLI, an operator) changed the store meanwhile:
    // decide again on what is there now. Keys minted for this attempt are dropped unused.
    logger.debug(
      { step, attempt },
      'the trust store changed while a rotation step was planned; retrying',
    );
  }
  throw new WardenError(
    'ERR_TRUST_MATERIAL_IO',
    `${step}: ${context.store.describe()} kept changing; gave up after ${MAX_ATTEMPTS} attempts`,
  );
}

function inspect(context: RotationContext, stored: StoredTrust): RotationView {
  return inspectRotation(stored, {
    clock: context.clock ?? systemClock,
    names: context.store.names,
    extraNames: context.store.extraNames,
  });
}

function fixed(now: Date): Clock {
  return { now: () => now };
}

async function mintNext(
  view: RotationView,
  context: RotationContext,
  now: Date,
): Promise<NextCredentials> {
  const rootTtlMs = context.minting?.rootTtlMs ?? lifetimeMs(view.activeRoot);
  // An issuer that lives as long as its root keeps doing so under the next root.
  const issuerOptions = issuerMinting(view, view.issuer, view.activeRoot, context, rootTtlMs);
  const generated = await (await loadGenerate()).generateTrustMaterial({ ...issuerOptions, rootTtlMs, clock: fixed(now) });
  return {
    rootPem: generated.root.certificatePem,
    rootKeyPem: generated.root.privateKeyPem,
    issuerChainPem: generated.issuer.certificatePem,
    issuerKeyPem: generated.issuer.privateKeyPem,
  };
}

function issuerMinting(
  view: RotationView,
  issuer: X509Certificate,
  root: X509Certificate,
  context: RotationContext,
  clampedTtlMs: number = lifetimeMs(root),
): { trustDomain: string; keyAlgorithm: KeyAlgorithm; issuerTtlMs: number } {
  const minting = context.minting ?? {};
  const issuerValidity = validityOf(issuer);
  const clampedToRoot = issuerValidity.notAfter.getTime() >= validityOf(root).notAfter.getTime();
  return {
    trustDomain: minting.trustDomain ?? trustDomainOf(view),
    keyAlgorithm: minting.keyAlgorithm ?? keyAlgorithmOf(view),
    issuerTtlMs: minting.issuerTtlMs ?? (clampedToRoot ? clampedTtlMs : lifetimeMs(issuer)),
  };
}

/** A certificate's lifetime without the backdating Warden adds to notBefore (at least 1m). */
function lifetimeMs(cert: X509Certificate): number {
  const { notBefore, notAfter } = validityOf(cert);
  return Math.max(60_000, notAfter.getTime() - notBefore.getTime() - DEFAULT_BACKDATE_MS);
}

function trustDomainOf(view: RotationView): string {
  for (const cert of [view.issuer, view.activeRoot]) {
    for (const id of spiffeIdsOf(cert)) {
      const match = /^spiffe:\/\/([^/]+)$/.exec(id);
      if (match?.[1]) return match[1];
    }
  }
  throw new WardenError(
    'ERR_CONFIG_INVALID',
    'the current issuer and root carry no SPIFFE trust domain to copy: give the trust domain explicitly',
  );
}

function keyAlgorithmOf(view: RotationView): KeyAlgorithm {
  const kind = classifyKey(view.material.issuerKey).kind;
  return kind !== null && isKeyAlgorithm(kind) ? kind : 'ecdsa-p256';
}
