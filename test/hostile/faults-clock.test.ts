import 'reflect-metadata';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { X509Certificate } from 'node:crypto';
import { status as GrpcStatus } from '@grpc/grpc-js';
import { issuingCertificate } from '../../src/ca/trust-bundle.js';
import { GENERIC_INTERNAL_MESSAGE } from '../../src/issuer/grpc/status-map.js';
import { ManualClock } from '../../src/shared/clock.js';
import { metricValue, startHostileWarden, type HostileWarden } from '../support/hostile-warden.js';
import { makePeculiarCsr, type TestCsr } from '../support/signing-test-pki.js';
import { attemptSign, type SignOutcome } from './sign-outcome.js';

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;

function leafOf(outcome: SignOutcome): X509Certificate {
  if (outcome.kind !== 'issued')
    throw new Error(`refused: ${outcome.kind === 'refused' ? outcome.details : ''}`);
  const first = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/.exec(
    outcome.response.workload_certificate.toString('utf8'),
  );
  return new X509Certificate(first?.[0] ?? '');
}

/**
 * Clock jumps, with the CA's injected clock (the ManualClock decides leaf dates and whether
 * the issuer can sign; the test's TLS client keeps the real clock). The CA generates a root
 * of 2 h and an issuer of 1 h at start, so a jump of an hour crosses the issuer's end.
 */
describe('clock jumps (ManualClock injected into warden serve)', () => {
  let w: HostileWarden;
  let clock: ManualClock;
  let csr: TestCsr;
  let start: number;
  let issuerNotBefore: number;
  let issuerNotAfter: number;

  beforeAll(async () => {
    start = Date.now();
    clock = new ManualClock(start);
    w = await startHostileWarden({
      clock,
      withoutJwks: true,
      flags: ['--root-ttl', '2h', '--issuer-ttl', '1h'],
    });
    const issuer = issuingCertificate(w.server.ca.current());
    issuerNotBefore = Date.parse(issuer.validFrom);
    issuerNotAfter = Date.parse(issuer.validTo);
    csr = await makePeculiarCsr('P-256');
  });
  afterAll(async () => {
    await w?.close();
  });

  const sign = (id: string): Promise<SignOutcome> =>
    attemptSign(w.client, {
      id,
      namespace: 'default',
      certificate_signing_request: Buffer.from(csr.pem),
    });

  it('clamps a 24 h leaf to the 1 h issuer (Dapr #8557) and reports healthy', async () => {
    const leaf = leafOf(await sign('before-jump'));
    expect(Date.parse(leaf.validTo)).toBe(issuerNotAfter);
    expect(Date.parse(leaf.validTo)).toBeGreaterThan(Date.parse(leaf.validFrom));
    expect(await w.healthz()).toEqual({ status: 200, body: { status: 'ok' } });
  });

  it('refuses once the clock jumps past the issuer notAfter: INTERNAL with the generic message, the expiry in the log, /healthz 503', async () => {
    const failuresBefore = metricValue(
      await w.metricsText(),
      'dapr_sentry_cert_sign_failure_total{reason="cert_sign"}',
    );
    clock.set(issuerNotAfter + 1000);
    const outcome = await sign('after-expiry');
    expect(outcome).toEqual({
      kind: 'refused',
      code: GrpcStatus.INTERNAL,
      details: GENERIC_INTERNAL_MESSAGE,
    });
    const line = w.log
      .lines()
      .filter((l) => l.event === 'certificate.failed')
      .at(-1);
    expect(line).toMatchObject({ code: 'ERR_SIGNING_FAILED', validator: 'insecure' });
    expect(String(line?.detail)).toContain(
      `issuer certificate expired at ${new Date(issuerNotAfter).toISOString()}`,
    );
    expect(await w.healthz()).toEqual({
      status: 503,
      body: { status: 'not ready', notReady: ['issuer-validity'] },
    });
    expect(
      metricValue(await w.metricsText(), 'dapr_sentry_cert_sign_failure_total{reason="cert_sign"}'),
    ).toBe(failuresBefore + 1);
    expect(
      w.log
        .lines()
        .some(
          (l) => l.event === 'certificate.issued' && String(l.spiffeId).endsWith('/after-expiry'),
        ),
    ).toBe(false);
  });

  it('recovers when the clock comes back', async () => {
    clock.set(start + 5 * MINUTE);
    expect(leafOf(await sign('back-again'))).toBeDefined();
    expect((await w.healthz()).status).toBe(200);
  });

  it('jumping backwards inside the issuer window still gives a positive validity that ends with the issuer', async () => {
    clock.set(issuerNotBefore + 1 * MINUTE);
    const leaf = leafOf(await sign('jumped-back'));
    const notBefore = Date.parse(leaf.validFrom);
    const notAfter = Date.parse(leaf.validTo);
    expect(notAfter).toBeGreaterThan(notBefore);
    expect(notAfter).toBeLessThanOrEqual(issuerNotAfter);
    // Backdated by the 15 minute skew from the (jumped) clock, never from the future.
    expect(notBefore).toBe(Math.floor((issuerNotBefore + MINUTE - 15 * MINUTE) / 1000) * 1000);
  });

  it('refuses when the clock jumps back before the issuer notBefore, and says so in the log and /healthz', async () => {
    clock.set(issuerNotBefore - HOUR);
    const outcome = await sign('before-issuer');
    expect(outcome).toMatchObject({ kind: 'refused', code: GrpcStatus.INTERNAL });
    const line = w.log
      .lines()
      .filter((l) => l.event === 'certificate.failed')
      .at(-1);
    expect(String(line?.detail)).toContain('issuer certificate is not valid before');
    expect((await w.healthz()).status).toBe(503);
    clock.set(start);
    expect((await w.healthz()).status).toBe(200);
  });
});
