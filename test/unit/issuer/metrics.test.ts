import { describe, expect, it } from '@jest/globals';
import {
  createSentryMetrics,
  signFailureReason,
  SIGN_FAILURE_REASONS,
} from '../../../src/issuer/metrics.js';
import { ERROR_CODES, type ErrorCode } from '../../../src/shared/error-codes.js';
import { WardenError } from '../../../src/shared/errors.js';

describe('sentry metrics', () => {
  it("uses Dapr Sentry's metric names", async () => {
    const text = await createSentryMetrics().registry.metrics();
    for (const name of [
      'dapr_sentry_cert_sign_request_received_total',
      'dapr_sentry_cert_sign_success_total',
      'dapr_sentry_cert_sign_failure_total',
      'dapr_sentry_servercert_issue_failed_total',
      'dapr_sentry_issuercert_changed_total',
      'dapr_sentry_issuercert_expiry_timestamp',
      'warden_sign_duration_seconds',
    ]) {
      expect(text).toContain(`# TYPE ${name} `);
    }
  });

  it('derives failure reasons only from error codes, from a bounded set', () => {
    for (const code of Object.keys(ERROR_CODES) as ErrorCode[]) {
      expect(SIGN_FAILURE_REASONS).toContain(
        signFailureReason(new WardenError(code, 'free text that must not become a label')),
      );
    }
    expect(signFailureReason(new WardenError('ERR_IDENTITY_DENIED', 'x'))).toBe('identity_denied');
    expect(signFailureReason(new WardenError('ERR_CSR_SIGNATURE', 'x'))).toBe('csr_invalid');
    expect(signFailureReason(new Error('anything'))).toBe('internal');
    expect(signFailureReason('a string')).toBe('internal');
  });

  it('counts one event per call and keeps separate registries apart', async () => {
    const a = createSentryMetrics();
    const b = createSentryMetrics();
    a.signRequestReceived();
    a.signFailed('identity_denied', 0.01);
    a.issuerCertificateChanged();
    a.issuerCertificateExpiry(new Date(Date.UTC(2027, 0, 1)));
    const text = await a.registry.metrics();
    expect(text).toContain('dapr_sentry_cert_sign_request_received_total 1');
    expect(text).toContain('dapr_sentry_cert_sign_failure_total{reason="identity_denied"} 1');
    expect(text).toContain('dapr_sentry_cert_sign_failure_total{reason="internal"} 0');
    expect(text).toContain('dapr_sentry_issuercert_changed_total 1');
    expect(text).toContain(
      `dapr_sentry_issuercert_expiry_timestamp ${Date.UTC(2027, 0, 1) / 1000}`,
    );
    expect(await b.registry.metrics()).toContain('dapr_sentry_cert_sign_request_received_total 0');
  });
});
