import { describe, expect, it } from '@jest/globals';
import * as promClient from 'prom-client';
import { Counter, Gauge, Histogram, Registry } from '../../../src/shared/prometheus.js';

describe("prom-client's classes without its index module", () => {
  it.each([
    ['Registry', Registry, promClient.Registry],
    ['Counter', Counter, promClient.Counter],
    ['Gauge', Gauge, promClient.Gauge],
    ['Histogram', Histogram, promClient.Histogram],
  ])('%s is the class prom-client exports', (_name, ours, theirs) => {
    expect(ours).toBe(theirs);
  });

  it('serves metrics registered through them in the exposition format', async () => {
    const registry = new Registry();
    new Counter({ name: 'probe_total', help: 'A probe.', registers: [registry] }).inc(2);
    expect(await registry.metrics()).toContain('probe_total 2');
  });
});
