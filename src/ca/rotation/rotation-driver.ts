import { systemClock } from '../../shared/clock.js';
import { timerScheduler, type Scheduler } from '../scheduler.js';
import { describeError, isWardenError } from '../../shared/errors.js';
import { silentLogger } from '../../shared/logger.js';
import {
  activateCredentials,
  prepareCredentials,
  retireCredentials,
  type CredentialRotationContext,
} from './credential-rotation.js';
import { decideAutomaticStep, type AutomaticDecision } from './rotation-schedule.js';
import { readRotationView, renewIssuer, type StepResult } from './rotation-steps.js';
import type { RotationStep } from './rotation-state.js';

export type { Scheduler } from '../scheduler.js';

export const DEFAULT_DRIVER_INTERVAL_MS = 30_000;

/** With `jwt`, the JWT key takes each phase with the root (credential-rotation.ts). */
export interface RotationDriverOptions extends CredentialRotationContext {
  /** How often to look (default 30 s); also looks once at start. */
  readonly intervalMs?: number;
  readonly scheduler?: Scheduler;
  /**
   * Called after the driver committed a step, before the tick ends: give it the CA's
   * reload() so this process serves the new bundle at once instead of at the watcher's
   * next look. Its failure is logged, never thrown.
   */
  readonly onCommitted?: (result: StepResult) => unknown;
}

export interface DriverTickResult {
  readonly decision: AutomaticDecision | null;
  /** The step taken (changed: false when another replica or the CLI took it first). */
  readonly result: StepResult | null;
  /** What went wrong reading or acting (already logged), or null. */
  readonly error: unknown;
}

export interface RotationDriver {
  /** Looks once and takes at most one step. Ticks never overlap: a tick during a tick waits for it. */
  tick(): Promise<DriverTickResult>;
  /** Stops the schedule and waits for a running tick. */
  close(): Promise<void>;
}

const STEP_FUNCTIONS: Record<
  RotationStep,
  (context: CredentialRotationContext) => Promise<StepResult>
> = {
  prepare: (context) => prepareCredentials(context),
  activate: (context) => activateCredentials(context),
  retire: (context) => retireCredentials(context),
  'renew-issuer': (context) => renewIssuer(context),
};

/**
 * The automatic rotation loop: looks at the store, decides with decideAutomaticStep (pure)
 * and takes the step through the same compare-and-swap as the CLI. In HA every replica may
 * run one: when two act at once one commits and the other finds the step already taken
 * (for files, the store lock serialises the swaps; a Kubernetes store uses resourceVersion).
 */
export function startRotationDriver(options: RotationDriverOptions): RotationDriver {
  const clock = options.clock ?? systemClock;
  const logger = options.logger ?? silentLogger;
  const context: CredentialRotationContext = { ...options, clock, logger };
  const intervalMs = options.intervalMs ?? DEFAULT_DRIVER_INTERVAL_MS;
  if (!Number.isFinite(intervalMs) || intervalMs <= 0)
    throw new TypeError('intervalMs must be a positive number');
  let running: Promise<DriverTickResult> | null = null;
  let closed = false;
  // Logged when they change, not on every tick.
  let lastAutoReason: string | null | undefined;
  let lastError: string | null = null;

  async function look(): Promise<DriverTickResult> {
    let decision: AutomaticDecision | null = null;
    try {
      const view = await readRotationView(context);
      const now = clock.now();
      decision = decideAutomaticStep(view, options.policy, now);
      const autoReason =
        decision.step === null && decision.nextDueAt === null ? decision.reason : null;
      if (autoReason !== lastAutoReason) {
        if (autoReason !== null)
          logger.warn(
            { store: options.store.describe() },
            `automatic rotation is off: ${autoReason}`,
          );
        lastAutoReason = autoReason;
      }
      if (lastError !== null) {
        logger.info(
          { store: options.store.describe() },
          'rotation driver: the trust store is readable again',
        );
        lastError = null;
      }
      if (decision.step === null) {
        logger.debug({ reason: decision.reason }, 'rotation driver: nothing to do');
        return { decision, result: null, error: null };
      }
      const result = await STEP_FUNCTIONS[decision.step](context);
      if (result.changed && options.onCommitted) {
        try {
          await options.onCommitted(result);
        } catch (err) {
          logger.error(
            { step: result.step, error: describeError(err) },
            'rotation driver: applying the committed step failed',
          );
        }
      }
      return { decision, result, error: null };
    } catch (err) {
      const text = describeError(err);
      // A refusal here means a threshold and the plan disagree by a clock tick; anything
      // else (unreadable store, state edited by hand) needs a person, once per change.
      const level = isWardenError(err, 'ERR_ROTATION_REFUSED') ? 'debug' : 'error';
      if (text !== lastError || level === 'debug') {
        logger[level](
          { store: options.store.describe(), step: decision?.step ?? null, error: text },
          'rotation driver could not act',
        );
      }
      if (level === 'error') lastError = text;
      return { decision, result: null, error: err };
    }
  }

  function tick(): Promise<DriverTickResult> {
    if (closed) return Promise.reject(new TypeError('tick() after close()'));
    if (running) return running.then(() => tick());
    running = look().finally(() => {
      running = null;
    });
    return running;
  }

  const cancel = (options.scheduler ?? timerScheduler).every(intervalMs, () => {
    if (!running && !closed) void tick();
  });
  if (!closed) void tick();

  return {
    tick,
    async close() {
      closed = true;
      cancel();
      if (running) await running;
    },
  };
}
