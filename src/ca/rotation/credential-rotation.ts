import { systemClock } from '../../shared/clock.js';
import { isWardenError, type WardenError } from '../../shared/errors.js';
import { silentLogger } from '../../shared/logger.js';
import {
  activateNextJwtKey,
  prepareNextJwtKey,
  retirePreviousJwtKey,
  type JwtKeyState,
} from '../jwt/jwt-key-state.js';
import type { JwtKeyStore } from '../jwt/jwt-key-store.js';
import type { JwtSigningAlgorithm } from '../jwt/jwt-signing-algorithm.js';
import { generateJwtSigningKey } from '../jwt/jwt-signing-key.js';
import {
  planActivate,
  planRetire,
  refusal,
  type ForceOption,
  type NextCredentials,
} from './rotation-plan.js';
import { oldRootInUseForMs, propagationWindowMs, type RotationPolicy } from './rotation-policy.js';
import {
  activateRotation,
  prepareRotation,
  readRotationView,
  retireRotation,
  type RotationContext,
  type StepResult,
} from './rotation-steps.js';

/*
 * The rotation phases applied to everything the CA signs with: the root and issuer
 * (rotation-steps.ts) and, when the credentials hold one, the JWT signing key
 * (jwt-key-state.ts). Used by the `warden rotate` commands and the automatic driver alike.
 *
 *   prepare   next root published in the anchors    next JWT key published in jwks.json
 *   activate  the next issuer signs                  the next JWT key signs; the old one
 *                                                    stays published as "previous"
 *   retire    old root dropped from the anchors      previous JWT key dropped from jwks.json
 *
 * The JWT key follows the root's windows: its next key is published for the same
 * propagation window before it signs, and an outgoing key stays published for
 * workloadCertTTL + allowedClockSkew, which covers every token it signed (a JWT-SVID never
 * outlives the certificate issued with it). A step refused for either part changes neither,
 * so the two never drift apart by a refusal; every part is idempotent, so running a step
 * again after a failure in its second half finishes it.
 */

/** Where the JWT key lives and what a next key is. */
export interface JwtRotationTarget {
  readonly store: JwtKeyStore;
  /** The algorithm of a next key (default: the current key's). */
  readonly algorithm?: JwtSigningAlgorithm;
}

export interface CredentialRotationContext extends RotationContext {
  /** The JWT key to rotate with the root; absent or null: the root alone. */
  readonly jwt?: JwtRotationTarget | null;
}

export interface JwtStepOutcome {
  readonly changed: boolean;
  /** One line for people. */
  readonly message: string;
  readonly state: JwtKeyState;
}

/** The root's result, with `changed` true when either part changed. */
export interface CredentialStepResult extends StepResult {
  /** The root and issuer's part of the step as it was. */
  readonly root: StepResult;
  /** The JWT key's part of the step; null when there is no JWT key material. */
  readonly jwt: JwtStepOutcome | null;
}

export interface JwtRotationTimings {
  /** How long a next JWT key is published before it signs. */
  readonly minPublishedMs: number;
  /** How long an outgoing JWT key stays published after it stopped signing. */
  readonly maxTokenLifetimeMs: number;
}

/** The JWT key's windows, from the root's policy (see the comment at the top). */
export function jwtRotationTimings(policy: RotationPolicy): JwtRotationTimings {
  return {
    minPublishedMs: propagationWindowMs(policy),
    maxTokenLifetimeMs: oldRootInUseForMs(policy),
  };
}

type PhaseStep = 'prepare' | 'activate' | 'retire';

/** prepare for the root and issuer, and for the JWT key. */
export async function prepareCredentials(
  context: CredentialRotationContext,
  options: { readonly from?: NextCredentials } = {},
): Promise<CredentialStepResult> {
  // Loaded first, so that JWT material that does not load stops the step before anything changes.
  const jwtBefore = await loadJwt(context);
  const root = await prepareRotation(context, options);
  return withJwt(context, 'prepare', root, jwtBefore, {});
}

/** activate for the root and issuer, and for the JWT key (refused when either part is). */
export async function activateCredentials(
  context: CredentialRotationContext,
  options: ForceOption = {},
): Promise<CredentialStepResult> {
  const jwtBefore = await loadJwt(context);
  if (!options.force && jwtBefore?.next) {
    await refuseForJwt(context, 'activate', () =>
      activateNextJwtKey(jwtBefore, now(context), jwtRotationTimings(context.policy)),
    );
  }
  const root = await activateRotation(context, options);
  return withJwt(context, 'activate', root, jwtBefore, options);
}

/** retire for the root, and for the previous JWT key (refused when either part is). */
export async function retireCredentials(
  context: CredentialRotationContext,
  options: ForceOption = {},
): Promise<CredentialStepResult> {
  const jwtBefore = await loadJwt(context);
  if (!options.force && jwtBefore?.previous) {
    await refuseForJwt(context, 'retire', () => retirePreviousJwtKey(jwtBefore, now(context)));
  }
  const root = await retireRotation(context, options);
  return withJwt(context, 'retire', root, jwtBefore, options);
}

/** What `warden rotate status` shows about the JWT key. */
export interface JwtKeyStatus {
  readonly current: { readonly kid: string; readonly alg: string };
  readonly next: {
    readonly kid: string;
    readonly alg: string;
    readonly preparedAt: string;
    /** When it may start signing (the propagation window after preparedAt). */
    readonly activationAllowedAt: string;
  } | null;
  readonly previous: {
    readonly kid: string;
    readonly alg: string;
    /** When its last token has expired and it may be dropped from jwks.json. */
    readonly retireAfter: string;
  } | null;
  /** Keys in jwks.json that Warden does not manage (published as they are). */
  readonly otherPublishedKeys: number;
}

export function jwtKeyStatus(state: JwtKeyState, policy: RotationPolicy): JwtKeyStatus {
  const { minPublishedMs } = jwtRotationTimings(policy);
  return {
    current: { kid: state.current.kid, alg: state.current.alg },
    next: state.next
      ? {
          kid: state.next.key.kid,
          alg: state.next.key.alg,
          preparedAt: state.next.preparedAt.toISOString(),
          activationAllowedAt: new Date(
            state.next.preparedAt.getTime() + minPublishedMs,
          ).toISOString(),
        }
      : null,
    previous: state.previous
      ? {
          kid: state.previous.key.kid,
          alg: state.previous.key.alg,
          retireAfter: state.previous.retireAfter.toISOString(),
        }
      : null,
    otherPublishedKeys: state.foreignKeys.length,
  };
}

/** The JWT key's status, or null when there is no JWT key material. */
export async function readJwtKeyStatus(
  context: CredentialRotationContext,
): Promise<JwtKeyStatus | null> {
  const state = await loadJwt(context);
  return state ? jwtKeyStatus(state, context.policy) : null;
}

function now(context: RotationContext): Date {
  return (context.clock ?? systemClock).now();
}

async function loadJwt(context: CredentialRotationContext): Promise<JwtKeyState | null> {
  return context.jwt ? context.jwt.store.load() : null;
}

/**
 * Throws when the JWT part of a step would be refused now: with the root's refusal instead
 * when the root's part is refused until later (so the time given is when the whole step
 * becomes allowed).
 */
async function refuseForJwt(
  context: CredentialRotationContext,
  step: 'activate' | 'retire',
  jwtPart: () => unknown,
): Promise<void> {
  let jwtRefusal: WardenError;
  try {
    jwtPart();
    return;
  } catch (err) {
    if (!isWardenError(err, 'ERR_ROTATION_REFUSED')) throw err;
    jwtRefusal = err;
  }
  const jwtAllowedAt = dateDetail(jwtRefusal, 'allowedFrom');
  const at = now(context);
  try {
    const view = await readRotationView(context);
    if (step === 'activate') planActivate(view, context.policy, at, {});
    else planRetire(view, context.policy, at, {});
  } catch (err) {
    if (!isWardenError(err, 'ERR_ROTATION_REFUSED')) throw err;
    const rootAllowedAt = dateDetail(err, 'allowedAt');
    if (rootAllowedAt === null || jwtAllowedAt === null || rootAllowedAt >= jwtAllowedAt) throw err;
  }
  throw refusal(step, `the JWT key: ${jwtRefusal.message}`, jwtAllowedAt ?? undefined);
}

function dateDetail(err: WardenError, name: string): Date | null {
  const value = err.details?.[name];
  return typeof value === 'string' && !Number.isNaN(Date.parse(value)) ? new Date(value) : null;
}

/**
 * The JWT key's part of `step`, after the root's: computed on what the store holds now and
 * stored. Its time is the root step's own when the root step just happened, so both parts'
 * windows start and end together.
 */
async function withJwt(
  context: CredentialRotationContext,
  step: PhaseStep,
  root: StepResult,
  jwtBefore: JwtKeyState | null,
  options: ForceOption,
): Promise<CredentialStepResult> {
  const target = context.jwt;
  if (!target || jwtBefore === null) return { ...root, root, jwt: null };
  const logger = context.logger ?? silentLogger;
  const state = (await target.store.load()) ?? jwtBefore;
  const stamp =
    step === 'prepare' && root.changed
      ? root.state.preparedAt
      : step === 'activate' && root.changed
        ? root.state.activatedAt
        : null;
  const at = stamp === null ? now(context) : new Date(stamp);
  const unchanged = (message: string): CredentialStepResult => ({
    ...root,
    root,
    jwt: { changed: false, message, state },
  });

  let after: JwtKeyState;
  let message: string;
  switch (step) {
    case 'prepare': {
      if (state.next)
        return unchanged(`a next JWT key (kid "${state.next.key.kid}") is already published`);
      const key = await generateJwtSigningKey(target.algorithm ?? state.current.alg);
      after = prepareNextJwtKey(state, key, at);
      message = `published the next JWT key (kid "${key.kid}") beside the current one ("${state.current.kid}")`;
      break;
    }
    case 'activate': {
      if (!state.next)
        return unchanged(`no next JWT key to activate; "${state.current.kid}" keeps signing`);
      after = activateNextJwtKey(state, at, {
        ...jwtRotationTimings(context.policy),
        force: options.force ?? false,
      });
      message = `the JWT key "${after.current.kid}" signs from now on; "${state.current.kid}" stays published until ${after.previous?.retireAfter.toISOString()}`;
      break;
    }
    case 'retire': {
      if (!state.previous) return unchanged('no previous JWT key to retire');
      after = retirePreviousJwtKey(state, at, { force: options.force ?? false });
      message = `dropped the previous JWT key "${state.previous.key.kid}" from the published keys`;
      break;
    }
  }
  await target.store.save(state, after);
  logger.info(
    {
      step,
      kid: after.current.kid,
      next: after.next?.key.kid ?? null,
      previous: after.previous?.key.kid ?? null,
    },
    message,
  );
  return { ...root, changed: true, root, jwt: { changed: true, message, state: after } };
}
