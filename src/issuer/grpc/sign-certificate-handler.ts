import { performance } from 'node:perf_hooks';
import type { ServerUnaryCall, sendUnaryData } from '@grpc/grpc-js';
import { describeError, isWardenError } from '../../shared/errors.js';
import { flatRecordLogger, type Logger } from '../../shared/logger.js';
import { auditDenied, auditFailed, auditIssued } from '../audit-log.js';
import type { CertificateSigner, IssuedCertificate } from '../certificate-signer.js';
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
}

/**
 * SignCertificate in the order that keeps untrusted bytes away from parsers: size cap →
 * request rules → validator → (only now) the signer parses the CSR → response.
 */
export async function signCertificate(
  deps: SignCertificateDependencies,
  request: RawSignRequest,
  onValidator: (name: string) => void,
): Promise<SignCertificateOutcome> {
  assertRequestSize(request, deps.maxRequestBytes);
  const checked = checkSignRequest(request);
  const validator = deps.validators.select(checked.tokenValidator);
  onValidator(validator.name);
  const identity = await validator.validate(checked);
  const certificateRequest = certificateRequestFor(identity, checked.csrPem, deps.caNamespace);
  const issued = await deps.signer.sign(certificateRequest);
  return {
    response: {
      workloadCertificate: Buffer.from(issued.certificateChainPem, 'utf8'),
      trustChainCertificates: issued.trustAnchorsPem.map((pem) => Buffer.from(pem, 'utf8')),
      validUntil: timestamp(issued.notAfter),
    },
    issued,
    spiffeId: certificateRequest.spiffeId,
    dnsNames: certificateRequest.dnsNames,
    validator: validator.name,
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
    signCertificate(deps, call.request, (name) => {
      validatorName = name;
    }).then(
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
