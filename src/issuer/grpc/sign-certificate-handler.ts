import { performance } from 'node:perf_hooks';
import type { ServerUnaryCall, sendUnaryData } from '@grpc/grpc-js';
import { describeError, isWardenError, WardenError } from '../../shared/errors.js';
import { flatRecordLogger, type Logger } from '../../shared/logger.js';
import { auditDenied, auditFailed, auditIssued } from '../audit-log.js';
import type { CertificateSigner, IssuedCertificate } from '../certificate-signer.js';
import type { JwtSvidMinter, MintedJwtSvids } from '../jwt/jwt-svid.js';
import { signFailureReason, type SentryMetrics } from '../metrics.js';
import { assertRequestSize, checkSignRequest, type RawSignRequest } from '../request-rules.js';
import { certificateRequestFor } from '../svid-identity.js';
import type { ValidatorRegistry } from '../validator-registry.js';
import { grpcAnswerFor } from './status-map.js';
import type {
  SignCertificateRequestMessage,
  SignCertificateResponseMessage,
} from './sentry-proto.js';

export interface SignCertificateDependencies {
  readonly signer: CertificateSigner;
  readonly validators: ValidatorRegistry;
  readonly caNamespace: string;
  readonly maxRequestBytes: number;
  readonly logger: Logger;
  readonly metrics: SentryMetrics;
  /** With --jwt-enabled: mints the JWT-SVIDs returned beside the certificate. */
  readonly jwtMinter?: JwtSvidMinter | undefined;
}

function timestamp(date: Date): { seconds: number; nanos: number } {
  const ms = date.getTime();
  const seconds = Math.floor(ms / 1000);
  return { seconds, nanos: (ms - seconds * 1000) * 1_000_000 };
}

export interface SignCertificateOutcome {
  readonly response: SignCertificateResponseMessage;
  readonly issued: IssuedCertificate;
  readonly spiffeId: string;
  readonly dnsNames: readonly string[];
  readonly validator: string;
  /** The JWT-SVIDs returned, when a minter is configured. */
  readonly jwt: MintedJwtSvids | null;
}

/** Why a call no longer needs an answer (its deadline passed, or the client cancelled), or null. */
export type AbandonedCheck = () => string | null;

function stopIfAbandoned(abandoned: AbandonedCheck | undefined, before: string): void {
  const why = abandoned?.();
  if (why)
    throw new WardenError('ERR_DEADLINE_EXCEEDED', `${why} before ${before}; nothing was issued`);
}

/**
 * SignCertificate in the order that keeps untrusted bytes away from parsers: size cap →
 * request rules → validator → (only now) the signer parses the CSR → response. A call whose
 * client has given up is not worked on further: checked before the validator and before
 * the signer, the two steps that cost something.
 */
export async function signCertificate(
  deps: SignCertificateDependencies,
  request: RawSignRequest,
  onValidator: (name: string) => void,
  abandoned?: AbandonedCheck,
): Promise<SignCertificateOutcome> {
  assertRequestSize(request, deps.maxRequestBytes);
  const checked = checkSignRequest(request);
  const validator = deps.validators.select(checked.tokenValidator);
  onValidator(validator.name);
  stopIfAbandoned(abandoned, 'validation');
  const identity = await validator.validate(checked);
  const certificateRequest = certificateRequestFor(identity, checked.csrPem, deps.caNamespace);
  stopIfAbandoned(abandoned, 'signing');
  const issued = await deps.signer.sign(certificateRequest);
  // Minted after the leaf, so that no token outlives the certificate it is issued with; the
  // audiences were bounded by the request rules before the validator ran.
  const jwt =
    deps.jwtMinter?.mint({
      spiffeId: certificateRequest.spiffeId,
      trustDomain: identity.trustDomain,
      audiences: checked.jwtAudiences,
      notAfter: issued.notAfter,
    }) ?? null;
  return {
    response: {
      workloadCertificate: Buffer.from(issued.certificateChainPem, 'utf8'),
      trustChainCertificates: issued.trustAnchorsPem.map((pem) => Buffer.from(pem, 'utf8')),
      validUntil: timestamp(issued.notAfter),
      ...(jwt
        ? {
            jwt: { value: jwt.jwt },
            perAudienceJwts: Object.fromEntries(
              Object.entries(jwt.perAudienceJwts).map(([audience, value]) => [audience, { value }]),
            ),
          }
        : {}),
    },
    issued,
    spiffeId: certificateRequest.spiffeId,
    dnsNames: certificateRequest.dnsNames,
    validator: validator.name,
    jwt,
  };
}

/** The grpc-js unary handler: metrics, audit lines, and errors mapped in status-map.ts only. */
export function createSignCertificateHandler(
  deps: SignCertificateDependencies,
): (
  call: ServerUnaryCall<SignCertificateRequestMessage, SignCertificateResponseMessage>,
  callback: sendUnaryData<SignCertificateResponseMessage>,
) => void {
  // The audit records are flat by construction (audit-log.ts picks every field).
  const auditLogger = flatRecordLogger(deps.logger);
  return (call, callback) => {
    const started = performance.now();
    const elapsed = (): number => (performance.now() - started) / 1000;
    const peer = call.getPeer();
    let validatorName: string | null = null;
    deps.metrics.signRequestReceived();
    const abandoned: AbandonedCheck = () => {
      if (call.cancelled) return 'the client cancelled the call';
      const deadline = call.getDeadline();
      const deadlineMs = deadline instanceof Date ? deadline.getTime() : deadline;
      return Date.now() >= deadlineMs ? 'the call deadline passed' : null;
    };
    signCertificate(
      deps,
      call.request,
      (name) => {
        validatorName = name;
      },
      abandoned,
    ).then(
      (outcome) => {
        deps.metrics.signSucceeded(elapsed());
        auditIssued(auditLogger, {
          serialHex: outcome.issued.serialHex,
          spiffeId: outcome.spiffeId,
          dnsNames: outcome.dnsNames,
          notAfter: outcome.issued.notAfter,
          validator: outcome.validator,
          peer,
          generation: outcome.issued.generation,
          jwt: outcome.jwt,
        });
        callback(null, outcome.response);
      },
      (err: unknown) => {
        deps.metrics.signFailed(signFailureReason(err), elapsed());
        const answer = grpcAnswerFor(err);
        if (answer.internal) {
          auditFailed(auditLogger, {
            code: isWardenError(err) ? err.code : null,
            detail:
              describeError(err) +
              (err instanceof Error && err.cause !== undefined
                ? ` (cause: ${describeError(err.cause)})`
                : ''),
            validator: validatorName,
            peer,
          });
        } else {
          auditDenied(auditLogger, {
            code: isWardenError(err) ? err.code : 'unknown',
            reason: isWardenError(err) ? err.message : answer.details,
            validator: validatorName,
            peer,
          });
        }
        callback({ code: answer.code, details: answer.details });
      },
    );
  };
}
