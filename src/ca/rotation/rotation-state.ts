import { WardenError } from '../../shared/errors.js';

/**
 * The rotation state persisted beside the credentials (rotation.json, or a data key of the
 * trust Secret). SPIRE-style slots: the current root signs through the current issuer; a
 * prepared next root is published in the anchors before anything is signed under it; the
 * old root stays published after activation until everything it signed has expired.
 *
 *   idle ──prepare──▶ prepared ──activate──▶ activated ──retire──▶ idle
 *
 * The state is committed together with the material it describes (one compare-and-swap
 * of the whole store), so it can never disagree with the files because of a crash.
 */
export const ROTATION_PHASES = ['idle', 'prepared', 'activated'] as const;
export type RotationPhase = (typeof ROTATION_PHASES)[number];

export const ROTATION_STEPS = ['prepare', 'activate', 'retire', 'renew-issuer'] as const;
export type RotationStep = (typeof ROTATION_STEPS)[number];

export interface RotationEvent {
  readonly step: RotationStep;
  /** ISO time the step was committed (by the injected clock). */
  readonly at: string;
  /** True when --force overrode a waiting period. */
  readonly forced: boolean;
  /** SHA-256 fingerprint of the root (prepare, retire) or issuer (activate, renew-issuer) concerned. */
  readonly fingerprint: string;
}

export interface RotationState {
  readonly version: 1;
  /** Increases with every committed change, so a compare-and-swap never sees one state twice. */
  readonly revision: number;
  readonly phase: RotationPhase;
  /** prepared: the root being introduced, published in the anchors since preparedAt. */
  readonly nextRootFingerprint: string | null;
  /** prepared and activated: the root being replaced. */
  readonly retiringRootFingerprint: string | null;
  /** prepared and activated: when anchors holding the next root were committed. */
  readonly preparedAt: string | null;
  /**
   * activated: when the next issuer became the signing issuer. Nothing is signed under the
   * old issuer after this instant, so it bounds the last issuance under the old root.
   */
  readonly activatedAt: string | null;
  /** The most recent steps, oldest first (at most HISTORY_LIMIT). */
  readonly history: readonly RotationEvent[];
}

export const HISTORY_LIMIT = 20;

/** The state of material that has never been rotated (no rotation.json). */
export const IDLE_ROTATION_STATE: RotationState = Object.freeze({
  version: 1,
  revision: 0,
  phase: 'idle',
  nextRootFingerprint: null,
  retiringRootFingerprint: null,
  preparedAt: null,
  activatedAt: null,
  history: Object.freeze([]),
});

export function serializeRotationState(state: RotationState): string {
  return `${JSON.stringify(state, null, 2)}\n`;
}

const FINGERPRINT_RE = /^[0-9A-F]{2}(:[0-9A-F]{2}){31}$/;

/**
 * Reads rotation.json strictly: every problem is listed, and a state whose fields do not fit
 * its phase is refused (ERR_ROTATION_STATE) rather than guessed at.
 */
export function parseRotationState(text: string, source = 'rotation.json'): RotationState {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new WardenError('ERR_ROTATION_STATE', `${source} is not valid JSON`);
  }
  const problems: string[] = [];
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new WardenError('ERR_ROTATION_STATE', `${source} is not a JSON object`);
  }
  const v = value as Record<string, unknown>;
  if (v.version !== 1) problems.push('version must be 1');
  const revision = v.revision;
  if (typeof revision !== 'number' || !Number.isSafeInteger(revision) || revision < 0)
    problems.push('revision must be a non-negative integer');
  const phase = v.phase;
  if (typeof phase !== 'string' || !(ROTATION_PHASES as readonly string[]).includes(phase))
    problems.push(`phase must be one of ${ROTATION_PHASES.join(', ')}`);

  const fingerprint = (field: string): string | null => {
    const f = v[field];
    if (f === null || f === undefined) return null;
    if (typeof f !== 'string' || !FINGERPRINT_RE.test(f)) {
      problems.push(`${field} must be a SHA-256 fingerprint (AB:CD:...) or null`);
      return null;
    }
    return f;
  };
  const time = (field: string): string | null => {
    const t = v[field];
    if (t === null || t === undefined) return null;
    if (typeof t !== 'string' || !isIsoTime(t)) {
      problems.push(`${field} must be an ISO 8601 time or null`);
      return null;
    }
    return t;
  };
  const nextRootFingerprint = fingerprint('nextRootFingerprint');
  const retiringRootFingerprint = fingerprint('retiringRootFingerprint');
  const preparedAt = time('preparedAt');
  const activatedAt = time('activatedAt');

  const history: RotationEvent[] = [];
  if (v.history !== undefined) {
    if (!Array.isArray(v.history)) problems.push('history must be a list');
    else {
      v.history.forEach((entry: unknown, i) => {
        const e = entry as Partial<Record<keyof RotationEvent, unknown>> | null;
        if (
          e &&
          typeof e.step === 'string' &&
          (ROTATION_STEPS as readonly string[]).includes(e.step) &&
          typeof e.at === 'string' &&
          isIsoTime(e.at) &&
          typeof e.forced === 'boolean' &&
          typeof e.fingerprint === 'string' &&
          FINGERPRINT_RE.test(e.fingerprint)
        ) {
          history.push(
            Object.freeze({
              step: e.step as RotationStep,
              at: e.at,
              forced: e.forced,
              fingerprint: e.fingerprint,
            }),
          );
        } else {
          problems.push(`history[${i}] is not a rotation event`);
        }
      });
    }
  }

  if (problems.length === 0) {
    const set = (name: string, present: boolean, wanted: boolean): void => {
      if (present !== wanted)
        problems.push(`${name} must ${wanted ? 'be set' : 'be null'} in phase ${String(phase)}`);
    };
    set('nextRootFingerprint', nextRootFingerprint !== null, phase === 'prepared');
    set('retiringRootFingerprint', retiringRootFingerprint !== null, phase !== 'idle');
    set('preparedAt', preparedAt !== null, phase !== 'idle');
    set('activatedAt', activatedAt !== null, phase === 'activated');
    if (nextRootFingerprint !== null && nextRootFingerprint === retiringRootFingerprint)
      problems.push('nextRootFingerprint and retiringRootFingerprint must differ');
  }
  if (problems.length > 0) {
    throw new WardenError(
      'ERR_ROTATION_STATE',
      `${source} is not a valid rotation state: ${problems.join('; ')}`,
    );
  }
  return Object.freeze({
    version: 1,
    revision: revision as number,
    phase: phase as RotationPhase,
    nextRootFingerprint,
    retiringRootFingerprint,
    preparedAt,
    activatedAt,
    history: Object.freeze(history),
  });
}

/** The state after `step`: revision + 1 and the event appended (history capped). */
export function advanceRotationState(
  from: RotationState,
  fields: Pick<
    RotationState,
    'phase' | 'nextRootFingerprint' | 'retiringRootFingerprint' | 'preparedAt' | 'activatedAt'
  >,
  event: RotationEvent,
): RotationState {
  return Object.freeze({
    version: 1,
    revision: from.revision + 1,
    ...fields,
    history: Object.freeze([...from.history, Object.freeze({ ...event })].slice(-HISTORY_LIMIT)),
  });
}

function isIsoTime(text: string): boolean {
  return /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/.test(text) && !Number.isNaN(Date.parse(text));
}
