import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import path from 'node:path';
import { Registry } from 'prom-client';
import { startFileCa } from '../../../src/ca/file-ca.js';
import type { Scheduler } from '../../../src/ca/scheduler.js';
import { createTrustMetrics, TRUST_METRIC_NAMES } from '../../../src/ca/trust-metrics.js';
import { startTrustMonitor } from '../../../src/ca/trust-monitor.js';
import { createSentryMetrics } from '../../../src/issuer/metrics.js';
import { ManualClock } from '../../../src/shared/clock.js';
import { captureLog } from '../../support/log-capture.js';
import { makeTempDir, removeTempDir } from '../../support/temp-dir.js';

const DAY = 86_400_000;
const HOUR = 3_600_000;

async function metric(
  registry: Registry,
  name: string,
  labels: Record<string, string> = {},
): Promise<number | undefined> {
  const found = await registry.getSingleMetric(name)?.get();
  return found?.values.find((v) => Object.entries(labels).every(([k, l]) => v.labels[k] === l))
    ?.value;
}

describe('the trust monitor (expiry warnings and metrics)', () => {
  let root: string;
  beforeAll(async () => {
    root = await makeTempDir();
  });
  afterAll(async () => {
    await removeTempDir(root);
  });

  it('warns about a root and an issuer in the window at most once a day each, and counts them', async () => {
    const clock = new ManualClock(Date.UTC(2026, 0, 1));
    const ca = await startFileCa({
      credentialsDir: path.join(root, 'a'),
      trustDomain: 'example.org',
      clock,
      rootTtlMs: 60 * DAY,
      issuerTtlMs: 10 * DAY,
    });
    const registry = new Registry();
    const logs = captureLog();
    let tick: () => void = () => undefined;
    const scheduler: Scheduler = {
      every: (_ms, run) => {
        tick = run;
        return () => undefined;
      },
    };
    const monitor = startTrustMonitor({
      source: ca,
      metrics: createTrustMetrics(registry),
      clock,
      logger: logs.logger,
      scheduler,
    });
    const warnings = () =>
      logs.lines().filter((l) => l.msg === 'trust material expires within 30 days');
    expect(warnings().map((w) => w.role)).toEqual(['issuer']);
    expect(await metric(registry, TRUST_METRIC_NAMES.expiringSoon, { role: 'issuer' })).toBe(1);
    expect(await metric(registry, TRUST_METRIC_NAMES.expiringSoon, { role: 'root' })).toBe(0);
    const issuerNotAfter = Math.floor(
      Date.parse(ca.current().issuerChain[0]?.validTo ?? '') / 1000,
    );
    expect(await metric(registry, TRUST_METRIC_NAMES.issuerExpiry)).toBe(issuerNotAfter);
    const rootFp = (ca.current().anchors[0]?.fingerprint256 ?? '')
      .replaceAll(':', '')
      .toLowerCase();
    expect(await metric(registry, TRUST_METRIC_NAMES.rootExpiry, { sha256: rootFp })).toBe(
      Math.floor(Date.parse(ca.current().anchors[0]?.validTo ?? '') / 1000),
    );

    clock.advance(HOUR);
    tick();
    expect(warnings()).toHaveLength(1);
    clock.advance(DAY);
    tick();
    expect(warnings()).toHaveLength(2);
    // The root enters the window too (31 days later: 29 days left).
    clock.advance(31 * DAY - DAY - HOUR);
    monitor.check();
    expect(await metric(registry, TRUST_METRIC_NAMES.expiringSoon, { role: 'root' })).toBe(1);
    expect(warnings().find((w) => w.role === 'root')).toMatchObject({
      level: 'warn',
      role: 'root',
      sha256Fingerprint: ca.current().anchors[0]?.fingerprint256,
    });
    expect(logs.text()).not.toContain('PRIVATE KEY');
    monitor.close();
    await ca.close();
  });

  it('counts refused reloads and issuer changes only when the issuer really changed', async () => {
    const ca = await startFileCa({
      credentialsDir: path.join(root, 'b'),
      trustDomain: 'example.org',
    });
    const registry = new Registry();
    const monitor = startTrustMonitor({ source: ca, metrics: createTrustMetrics(registry) });
    expect(await metric(registry, TRUST_METRIC_NAMES.reloadFailures)).toBe(0);
    await ca.reload(); // unchanged: no change event
    expect(await metric(registry, TRUST_METRIC_NAMES.issuerChanged)).toBe(0);
    await ca.close();
    monitor.close();
  });

  it('shares one registry with the gRPC edge, which then owns Dapr’s two issuer metrics', async () => {
    const registry = new Registry();
    createSentryMetrics(registry);
    expect(() => createTrustMetrics(registry)).toThrow(/already been registered/);
    const shared = new Registry();
    createSentryMetrics(shared);
    const metrics = createTrustMetrics(shared, { daprIssuerMetrics: false });
    const ca = await startFileCa({
      credentialsDir: path.join(root, 'shared'),
      trustDomain: 'example.org',
    });
    try {
      metrics.observeBundle(ca.current());
      metrics.issuerChanged();
      const names = (await shared.getMetricsAsJSON()).map((m) => m.name);
      for (const name of Object.values(TRUST_METRIC_NAMES)) expect(names).toContain(name);
      // Untouched by the trust metrics: the edge sets them.
      expect(await metric(shared, TRUST_METRIC_NAMES.issuerChanged)).toBe(0);
      expect(await metric(shared, TRUST_METRIC_NAMES.issuerExpiry)).toBe(0);
      expect(
        (await shared.getSingleMetric(TRUST_METRIC_NAMES.rootExpiry)?.get())?.values,
      ).toHaveLength(1);
    } finally {
      await ca.close();
    }
  });
});
