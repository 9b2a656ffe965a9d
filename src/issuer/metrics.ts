import { Counter, Gauge, Histogram, Registry } from '../shared/prometheus.js';
import type { ErrorCode } from '../shared/error-codes.js';
import { isWardenError } from '../shared/errors.js';

/**
 * The reasons `dapr_sentry_cert_sign_failure_total{reason}` can carry: a fixed set derived
 * from error codes, so a label can never hold request text (or grow without bound).
 */
export const SIGN_FAILURE_REASONS = [
  'request_too_large',
  'request_invalid',
  'csr_invalid',
  'validator_not_enabled',
  'identity_denied',
  'validator_unavailable',
  'overloaded',
  'deadline_exceeded',
  'cert_sign',
  'jwt_sign',
  'internal',
] as const;

export type SignFailureReason = (typeof SIGN_FAILURE_REASONS)[number];

const REASON_BY_CODE: Partial<Record<ErrorCode, SignFailureReason>> = {
  ERR_REQUEST_TOO_LARGE: 'request_too_large',
  ERR_REQUEST_INVALID: 'request_invalid',
  ERR_CSR_INVALID: 'csr_invalid',
  ERR_CSR_SIGNATURE: 'csr_invalid',
  ERR_CSR_KEY_UNSUPPORTED: 'csr_invalid',
  ERR_VALIDATOR_NOT_ENABLED: 'validator_not_enabled',
  ERR_IDENTITY_DENIED: 'identity_denied',
  ERR_VALIDATOR_UNAVAILABLE: 'validator_unavailable',
  ERR_OVERLOADED: 'overloaded',
  ERR_DEADLINE_EXCEEDED: 'deadline_exceeded',
  ERR_SIGNING_FAILED: 'cert_sign',
  ERR_JWT_FAILED: 'jwt_sign',
};

export function signFailureReason(err: unknown): SignFailureReason {
  return (isWardenError(err) ? REASON_BY_CODE[err.code] : undefined) ?? 'internal';
}

/** One function per event, Dapr Sentry's metric names plus Warden's latency histogram. */
export interface SentryMetrics {
  readonly registry: Registry;
  signRequestReceived(): void;
  signSucceeded(durationSeconds: number): void;
  signFailed(reason: SignFailureReason, durationSeconds: number): void;
  servingCertificateIssueFailed(): void;
  issuerCertificateChanged(): void;
  issuerCertificateExpiry(notAfter: Date): void;
}

export function createSentryMetrics(registry: Registry = new Registry()): SentryMetrics {
  const received = new Counter({
    name: 'dapr_sentry_cert_sign_request_received_total',
    help: 'Certificate signing requests received.',
    registers: [registry],
  });
  const success = new Counter({
    name: 'dapr_sentry_cert_sign_success_total',
    help: 'Certificates issued.',
    registers: [registry],
  });
  const failure = new Counter({
    name: 'dapr_sentry_cert_sign_failure_total',
    help: 'Certificate signing requests refused or failed, by reason.',
    labelNames: ['reason'],
    registers: [registry],
  });
  const serverCertFailed = new Counter({
    name: 'dapr_sentry_servercert_issue_failed_total',
    help: "Failures to issue the CA's own gRPC serving certificate.",
    registers: [registry],
  });
  const issuerChanged = new Counter({
    name: 'dapr_sentry_issuercert_changed_total',
    help: 'Times the issuer certificate changed (reload or rotation).',
    registers: [registry],
  });
  const issuerExpiry = new Gauge({
    name: 'dapr_sentry_issuercert_expiry_timestamp',
    help: 'The issuer certificate notAfter, in seconds since the Unix epoch.',
    registers: [registry],
  });
  const duration = new Histogram({
    name: 'warden_sign_duration_seconds',
    help: 'Time from receiving a SignCertificate request to answering it.',
    labelNames: ['outcome'],
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [registry],
  });
  // Every reason starts at 0 so dashboards and rate() see the series before the first failure.
  for (const reason of SIGN_FAILURE_REASONS) failure.inc({ reason }, 0);

  return Object.freeze({
    registry,
    signRequestReceived: () => received.inc(),
    signSucceeded: (seconds: number) => {
      success.inc();
      duration.observe({ outcome: 'success' }, seconds);
    },
    signFailed: (reason: SignFailureReason, seconds: number) => {
      failure.inc({ reason });
      duration.observe({ outcome: 'failure' }, seconds);
    },
    servingCertificateIssueFailed: () => serverCertFailed.inc(),
    issuerCertificateChanged: () => issuerChanged.inc(),
    issuerCertificateExpiry: (notAfter: Date) =>
      issuerExpiry.set(Math.floor(notAfter.getTime() / 1000)),
  });
}
