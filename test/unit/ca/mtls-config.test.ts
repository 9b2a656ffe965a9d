import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { parseRotationPolicy, readRotationPolicyFile } from '../../../src/ca/mtls-config.js';
import { DEFAULT_ROTATION_POLICY } from '../../../src/ca/rotation/rotation-policy.js';
import { WardenError } from '../../../src/shared/errors.js';
import { makeTempDir, removeTempDir } from '../../support/temp-dir.js';

function errorOf(text: string): WardenError {
  try {
    parseRotationPolicy(text, 'config.yaml');
  } catch (err) {
    if (err instanceof WardenError) return err;
    throw err;
  }
  throw new Error('accepted');
}

describe('reading the rotation policy from a Dapr Configuration', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await makeTempDir();
  });
  afterAll(async () => {
    await removeTempDir(dir);
  });

  it('uses Dapr’s defaults when spec.mtls says nothing (or the file is empty)', () => {
    expect(parseRotationPolicy('')).toEqual(DEFAULT_ROTATION_POLICY);
    expect(parseRotationPolicy('kind: Configuration\nspec:\n  mtls:\n    enabled: true\n')).toEqual(
      DEFAULT_ROTATION_POLICY,
    );
  });

  it('reads workloadCertTTL, allowedClockSkew and the Warden additions, ignoring fields owned elsewhere', () => {
    const policy = parseRotationPolicy(
      [
        'apiVersion: dapr.io/v1alpha1',
        'kind: Configuration',
        'metadata: {name: daprsystem}',
        'spec:',
        '  tracing: {samplingRate: "1"}',
        '  mtls:',
        '    enabled: true',
        '    workloadCertTTL: 1h30m',
        '    allowedClockSkew: 2m',
        '    controlPlaneTrustDomain: cluster.local',
        '    tokenValidators: [{name: kubernetes}]',
        '    rootRotation:',
        '      enabled: false',
        '      prepareAtFraction: 0.6',
        '      activateAtFraction: 0.9',
        '      propagationWindow: 3h',
        '    issuerRenewal:',
        '      renewAtFraction: 0.75',
      ].join('\n'),
    );
    expect(policy).toEqual({
      workloadCertTtlMs: 90 * 60_000,
      allowedClockSkewMs: 2 * 60_000,
      propagationWindowMs: 3 * 3_600_000,
      rootRotation: { enabled: false, prepareAtFraction: 0.6, activateAtFraction: 0.9 },
      issuerRenewal: { enabled: true, renewAtFraction: 0.75 },
    });
    expect(Object.isFrozen(policy.rootRotation)).toBe(true);
  });

  it('reports every problem at once, each with its path', () => {
    const err = errorOf(
      [
        'kind: Component',
        'spec:',
        '  mtls:',
        '    workloadCertTTL: "24"',
        '    allowedClockSkew: 5',
        '    rootRotation:',
        '      enabled: "yes"',
        '      prepareAtFraction: half',
        '      rotateEvery: 1y',
        '    issuerRenewal: [1]',
      ].join('\n'),
    );
    expect(err.code).toBe('ERR_CONFIG_INVALID');
    for (const fragment of [
      'config.yaml:',
      'kind must be Configuration',
      'spec.mtls.workloadCertTTL: "24" is not a duration',
      'spec.mtls.allowedClockSkew must be a Go duration string',
      'spec.mtls.rootRotation.enabled must be true or false',
      'spec.mtls.rootRotation.prepareAtFraction must be a number',
      'spec.mtls.rootRotation.rotateEvery is not a known field',
      'spec.mtls.issuerRenewal must be a mapping',
    ]) {
      expect(err.message).toContain(fragment);
    }
  });

  it('checks the policy as a whole once every field reads', () => {
    const err = errorOf(
      'spec:\n  mtls:\n    rootRotation: {prepareAtFraction: 0.9, activateAtFraction: 0.5}\n',
    );
    expect(err.message).toContain(
      'spec.mtls.rootRotation.activateAtFraction must be greater than prepareAtFraction',
    );
  });

  it('refuses YAML that does not parse, and a missing file, naming the file', async () => {
    expect(errorOf('spec: [').message).toContain('config.yaml is not valid YAML');
    const missing = path.join(dir, 'nope.yaml');
    await expect(readRotationPolicyFile(missing)).rejects.toThrow(
      `cannot read the Configuration ${missing}: ENOENT`,
    );
    const file = path.join(dir, 'ok.yaml');
    await writeFile(file, 'spec:\n  mtls:\n    workloadCertTTL: 2h\n');
    expect((await readRotationPolicyFile(file)).workloadCertTtlMs).toBe(2 * 3_600_000);
  });
});
