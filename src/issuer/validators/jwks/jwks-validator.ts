import type { JwksValidatorSettings } from '../../../shared/config/dapr-configuration.js';
import { systemClock, type Clock } from '../../../shared/clock.js';
import { describeError, WardenError } from '../../../shared/errors.js';
import { silentLogger, type Logger } from '../../../shared/logger.js';
import { isControlPlaneIdentity } from '../../control-plane.js';
import type { CheckedSignRequest } from '../../request-rules.js';
import { workloadSpiffeId } from '../../svid-identity.js';
import type { ValidatedIdentity, Validator } from '../../validator.js';
import { claimsProblem, decodeClaims, parseCompactJwt } from './compact-jwt.js';
import {
  buildVerificationKeySet,
  isRefusedAlgorithm,
  type VerificationKeySet,
} from './jwks-keys.js';
import {
  classifyJwksSource,
  describeJwksSource,
  fetchJwksDocument,
  type JwksSource,
} from './jwks-source.js';

/** Dapr's jwks validator accepts this much clock difference on exp/nbf. */
export const JWKS_ALLOWED_SKEW_MS = 5 * 60_000;
/** How soon a validator with no keys retries its source (the source's refresh limit applies once keys are loaded). */
export const DEFAULT_UNREADY_RETRY_MS = 5_000;
const MAX_TIMER_MS = 2_147_483_647;

export interface JwksValidatorOptions {
  readonly settings: JwksValidatorSettings;
  /** The CA's own SPIFFE ID: `spiffe://<controlPlaneTrustDomain>/ns/<ca namespace>/dapr-sentry`. */
  readonly audience: string;
  /** The CA's namespace: control-plane ids count only there. */
  readonly caNamespace: string;
  readonly clock?: Clock;
  readonly logger?: Logger;
  /** Retry interval while no keys are loaded (default 5 s). */
  readonly unreadyRetryMs?: number;
  /** Refresh in the background on a timer (default true; tests drive refresh() by hand). */
  readonly backgroundRefresh?: boolean;
}

export interface JwksValidator extends Validator {
  readonly name: 'jwks';
  /** Fetches the source now (concurrent calls share one fetch); resolves true on success. */
  refresh(): Promise<boolean>;
  /** Number of usable keys loaded (0 when not ready). */
  keyCount(): number;
}

function denied(reason: string): WardenError {
  return new WardenError('ERR_IDENTITY_DENIED', `jwks validator: ${reason}`);
}

/**
 * Verifies a JWT from the request's token against a JWKS (node-jose for EC and RSA keys):
 * the algorithm comes from the key (none and HMAC are refused), exp/nbf within 5 minutes of
 * skew, aud contains the CA's SPIFFE ID, sub is exactly the requested identity's SPIFFE ID.
 * Fails closed: with no keys loaded every request is ERR_VALIDATOR_UNAVAILABLE; a failed
 * refresh keeps the last good keys.
 */
export function createJwksValidator(options: JwksValidatorOptions): JwksValidator {
  const source: JwksSource = classifyJwksSource(options.settings.source);
  if (
    options.settings.caCertificate !== undefined &&
    !(source.kind === 'url' && source.url.protocol === 'https:')
  ) {
    throw new WardenError(
      'ERR_CONFIG_INVALID',
      'jwks validator: caCertificate applies only to an https source',
    );
  }
  if (typeof options.audience !== 'string' || options.audience.length === 0)
    throw new TypeError('jwks validator needs an audience');
  const clock = options.clock ?? systemClock;
  const logger = (options.logger ?? silentLogger).child({
    component: 'jwks-validator',
    source: describeJwksSource(source),
  });
  const minRefreshMs = options.settings.minRefreshIntervalMs;
  const unreadyRetryMs = options.unreadyRetryMs ?? DEFAULT_UNREADY_RETRY_MS;
  const backgroundRefresh = options.backgroundRefresh ?? true;

  let keys: VerificationKeySet | null = null;
  let lastAttemptMs: number | null = null;
  let inflight: Promise<boolean> | null = null;
  let timer: NodeJS.Timeout | null = null;
  let closed = false;

  async function load(): Promise<boolean> {
    lastAttemptMs = clock.now().getTime();
    try {
      const document = await fetchJwksDocument(source, {
        caCertificate: options.settings.caCertificate,
        timeoutMs: options.settings.requestTimeoutMs,
      });
      const set = await buildVerificationKeySet(document);
      if (set.skipped.length > 0)
        logger.warn({ skipped: set.skipped }, 'jwks: some keys are not usable and were skipped');
      if (set.size === 0) throw new Error('the JWKS has no usable signing keys');
      const wasReady = keys !== null;
      keys = set;
      if (!wasReady) logger.info({ keys: set.size }, 'jwks: keys loaded; validator ready');
      return true;
    } catch (err) {
      // The previous keys (if any) stay in use: a flaky source must not turn into an outage,
      // and it can never turn into acceptance either (no keys → unavailable).
      logger.warn(
        { err: describeError(err), ready: keys !== null },
        'jwks: cannot load keys from the source',
      );
      return false;
    }
  }

  function refresh(): Promise<boolean> {
    if (closed) return Promise.resolve(false);
    if (!inflight) {
      inflight = load().finally(() => {
        inflight = null;
      });
    }
    return inflight;
  }

  /** Refresh only if the last attempt is old enough: unknown kids cannot make us hammer the source. */
  async function refreshIfAllowed(): Promise<void> {
    if (inflight) {
      await inflight;
      return;
    }
    const interval = keys === null ? unreadyRetryMs : minRefreshMs;
    if (lastAttemptMs !== null && clock.now().getTime() - lastAttemptMs < interval) return;
    await refresh();
  }

  function schedule(): void {
    if (closed || !backgroundRefresh || source.kind === 'inline') return;
    const delay = Math.min(keys === null ? unreadyRetryMs : minRefreshMs, MAX_TIMER_MS);
    timer = setTimeout(() => {
      void refreshIfAllowed().finally(schedule);
    }, delay);
    timer.unref();
  }

  async function validate(request: CheckedSignRequest): Promise<ValidatedIdentity> {
    if (keys === null) await refreshIfAllowed();
    if (keys === null) {
      throw new WardenError(
        'ERR_VALIDATOR_UNAVAILABLE',
        'jwks validator is not ready: its key source cannot be read',
      );
    }
    const parsed = parseCompactJwt(request.token);
    if (!parsed.ok) throw denied(parsed.reason);
    const { header } = parsed.value;
    const alg = header.alg;
    if (typeof alg !== 'string' || alg.length === 0) throw denied('the token header has no alg');
    if (isRefusedAlgorithm(alg)) throw denied(`algorithm ${alg.slice(0, 16)} is refused`);
    if (header.crit !== undefined)
      throw denied('the token header has crit extensions, which are not supported');
    const kid = header.kid;
    if (typeof kid !== 'string' || kid.length === 0) throw denied('the token header has no kid');

    let candidates = keys.byKid.get(kid);
    if (!candidates) {
      await refreshIfAllowed();
      candidates = keys.byKid.get(kid);
      if (!candidates) throw denied('no key in the JWKS has the token kid');
    }
    const usable = candidates.filter((k) => k.algorithms.has(alg));
    if (usable.length === 0)
      throw denied(`algorithm ${alg.slice(0, 16)} does not fit the key with the token kid`);
    let verified = false;
    for (const key of usable) {
      if (await key.verify(alg, request.token, parsed.value.signingInput, parsed.value.signature)) {
        verified = true;
        break;
      }
    }
    if (!verified) throw denied('the token signature does not verify');

    const claims = decodeClaims(parsed.value.payloadSegment);
    if (!claims.ok) throw denied(claims.reason);
    const subject = workloadSpiffeId({
      trustDomain: request.trustDomain,
      namespace: request.namespace,
      appId: request.id,
    });
    const problem = claimsProblem(claims.value, {
      nowMs: clock.now().getTime(),
      skewMs: JWKS_ALLOWED_SKEW_MS,
      audience: options.audience,
      subject,
    });
    if (problem) throw denied(problem);
    return Object.freeze({
      trustDomain: request.trustDomain,
      namespace: request.namespace,
      appId: request.id,
      controlPlane: isControlPlaneIdentity(request.id, request.namespace, options.caNamespace),
    });
  }

  return Object.freeze({
    name: 'jwks' as const,
    async start(): Promise<void> {
      await refresh();
      schedule();
    },
    ready: (): boolean => keys !== null,
    validate,
    refresh,
    keyCount: (): number => keys?.size ?? 0,
    async close(): Promise<void> {
      closed = true;
      if (timer) clearTimeout(timer);
      timer = null;
    },
  });
}
