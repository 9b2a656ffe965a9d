import { beforeAll, describe, expect, it } from '@jest/globals';
import {
  generateIssuer,
  generateTrustMaterial,
  type GeneratedTrustMaterial,
} from '../../../src/ca/generate.js';
import {
  buildStatusReport,
  certificatesExpiringWithin,
  expiresWithin,
} from '../../../src/ca/status-report.js';
import { createTrustBundle } from '../../../src/ca/trust-material-ca.js';
import { validateTrustMaterial } from '../../../src/ca/validate.js';
import { ManualClock } from '../../../src/shared/clock.js';
import { X509Certificate } from 'node:crypto';

const DAY = 86_400_000;
const START = Date.UTC(2026, 0, 1, 12, 0, 0);

describe('buildStatusReport', () => {
  let g: GeneratedTrustMaterial;
  beforeAll(async () => {
    g = await generateTrustMaterial({
      trustDomain: 'example.org',
      rootTtlMs: 365 * DAY,
      issuerTtlMs: 90 * DAY,
      clock: new ManualClock(START),
    });
  });
  const bundleAt = (clock: ManualClock) =>
    createTrustBundle(validateTrustMaterial(g.material, { clock }), 4);

  it('describes each anchor and the issuer: subject, SPIFFE ID, fingerprint, validity, days left', () => {
    const clock = new ManualClock(START);
    const report = buildStatusReport(bundleAt(clock), clock);
    const root = new X509Certificate(g.material.anchorsPem);
    expect(report.generation).toBe(4);
    expect(report.checkedAt).toBe(new Date(START).toISOString());
    expect(report.anchors).toEqual([
      {
        role: 'anchor',
        subject: 'O=example.org, CN=warden-root',
        spiffeId: 'spiffe://example.org',
        sha256Fingerprint: root.fingerprint256,
        serialNumber: root.serialNumber.toLowerCase(),
        publicKey: 'ECDSA P-256',
        notBefore: new Date(START - 15 * 60_000).toISOString(),
        notAfter: new Date(START + 365 * DAY).toISOString(),
        daysLeft: 365,
      },
    ]);
    expect(report.issuer).toMatchObject({
      role: 'issuer',
      subject: 'O=example.org, CN=warden-issuer',
      daysLeft: 90,
    });
    expect(report.intermediates).toEqual([]);
  });

  it('counts whole days left, rounding down, negative once expired', () => {
    const clock = new ManualClock(START);
    const bundle = bundleAt(clock);
    clock.set(START + 89 * DAY + 1);
    expect(buildStatusReport(bundle, clock).issuer.daysLeft).toBe(0);
    clock.set(START + 92 * DAY);
    expect(buildStatusReport(bundle, clock).issuer.daysLeft).toBe(-2);
  });

  it.each([
    ['nothing expires within 30 days at the start', 0, 30, []],
    ['the issuer expires within 90 days at the start (boundary inclusive)', 0, 90, ['issuer']],
    ['the issuer expires within 30 days after 61 days', 61, 30, ['issuer']],
    ['both expire within 400 days', 0, 400, ['anchor', 'issuer']],
  ] as const)('%s', (_name, elapsedDays, windowDays, roles) => {
    const clock = new ManualClock(START);
    const bundle = bundleAt(clock);
    clock.set(START + elapsedDays * DAY);
    const report = buildStatusReport(bundle, clock);
    expect(
      certificatesExpiringWithin(report, windowDays)
        .map((c) => c.role)
        .sort(),
    ).toEqual([...roles].sort());
    expect(expiresWithin(report, windowDays)).toBe(roles.length > 0);
  });

  it('includes anchors in the expiry check even when the issuer is fresh', async () => {
    const clock = new ManualClock(START);
    const shortRoot = await generateTrustMaterial({
      trustDomain: 'example.org',
      rootTtlMs: 10 * DAY,
      clock,
    });
    const longRoot = await generateTrustMaterial({
      trustDomain: 'example.org',
      rootTtlMs: 300 * DAY,
      clock,
    });
    const issuer = await generateIssuer(longRoot.root, {
      trustDomain: 'example.org',
      issuerTtlMs: 200 * DAY,
      clock,
    });
    const bundle = createTrustBundle(
      validateTrustMaterial(
        {
          anchorsPem: shortRoot.material.anchorsPem + longRoot.material.anchorsPem,
          issuerChainPem: issuer.certificatePem,
          issuerKeyPem: issuer.privateKeyPem,
        },
        { clock },
      ),
      1,
    );
    const expiring = certificatesExpiringWithin(buildStatusReport(bundle, clock), 30);
    expect(expiring).toHaveLength(1);
    expect(expiring[0]?.role).toBe('anchor');
    expect(expiring[0]?.notAfter).toBe(new Date(START + 10 * DAY).toISOString());
  });
});
