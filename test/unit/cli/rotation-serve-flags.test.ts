import { describe, expect, it } from '@jest/globals';
import { DEFAULT_ROTATION_POLICY } from '../../../src/ca/rotation/rotation-policy.js';
import { resolveServeSettings, SERVE_FLAGS } from '../../../src/cli/serve-flags.js';
import {
  defaultDaprConfiguration,
  parseDaprConfiguration,
  type DaprConfiguration,
} from '../../../src/shared/config/dapr-configuration.js';
import { readEnv } from '../../../src/shared/env.js';
import { parseFlags } from '../../../src/shared/flags.js';

const HOUR = 3_600_000;

function resolve(argv: string[], configuration: DaprConfiguration = defaultDaprConfiguration()) {
  return resolveServeSettings(parseFlags(argv, SERVE_FLAGS), readEnv({}), configuration, {
    cwd: '/srv/warden',
    availableCores: 1,
  });
}

function rotationOf(argv: string[], configuration?: DaprConfiguration) {
  const result = resolve(argv, configuration);
  if (!result.ok) throw new Error(result.problems.map((p) => `${p.path}: ${p.message}`).join('\n'));
  return result.settings.rotation;
}

function problemsFor(argv: string[]): string[] {
  const result = resolve(argv);
  return result.ok ? [] : result.problems.map((p) => `${p.path}: ${p.message}`);
}

const WITH_ROTATION = parseDaprConfiguration(
  [
    'apiVersion: dapr.io/v1alpha1',
    'kind: Configuration',
    'spec:',
    '  mtls:',
    '    workloadCertTTL: 2h',
    '    allowedClockSkew: 1m',
    '    rootRotation: {enabled: false, prepareAtFraction: 0.25, propagationWindow: 30m}',
    '    issuerRenewal: {enabled: false}',
    '',
  ].join('\n'),
  'config.yaml',
);

describe('warden serve rotation flags', () => {
  it('default to Dapr’s and Warden’s defaults: root key kept as root.key, warnings 30 days ahead', () => {
    expect(rotationOf([])).toEqual({
      policy: DEFAULT_ROTATION_POLICY,
      rootKeyFilename: 'root.key',
      keepRootKey: true,
      expiryWarningDays: 30,
    });
  });

  it('take the policy from the Configuration --config names (the same schema as warden rotate)', () => {
    expect(rotationOf([], WITH_ROTATION).policy).toEqual({
      workloadCertTtlMs: 2 * HOUR,
      allowedClockSkewMs: 60_000,
      propagationWindowMs: 30 * 60_000,
      rootRotation: { enabled: false, prepareAtFraction: 0.25, activateAtFraction: 5 / 6 },
      issuerRenewal: { enabled: false, renewAtFraction: 2 / 3 },
    });
  });

  it('let flags that are given win over the Configuration (a CRD may prune Warden’s fields)', () => {
    const rotation = rotationOf(
      [
        '--root-rotation',
        '--issuer-renewal=true',
        '--propagation-window=1h',
        '--root-key-filename=ca-root.key',
        '--keep-root-key=false',
        '--expiry-warning-days=7',
      ],
      WITH_ROTATION,
    );
    expect(rotation.policy.rootRotation.enabled).toBe(true);
    expect(rotation.policy.issuerRenewal.enabled).toBe(true);
    expect(rotation.policy.propagationWindowMs).toBe(HOUR);
    expect(rotation.policy.rootRotation.prepareAtFraction).toBe(0.25);
    expect(rotation).toMatchObject({
      rootKeyFilename: 'ca-root.key',
      keepRootKey: false,
      expiryWarningDays: 7,
    });
    expect(rotationOf(['--root-rotation=false']).policy.rootRotation.enabled).toBe(false);
  });

  it.each([
    [
      ['--propagation-window=soon'],
      '--propagation-window: "soon" is not a duration (use Go syntax such as 24h15m)',
    ],
    [['--expiry-warning-days=-1'], '--expiry-warning-days: -1 is not a number of days (0 or more)'],
    [
      ['--root-key-filename=keys/root.key'],
      '--root-key-filename: "keys/root.key" is not a plain file name',
    ],
    [
      ['--root-key-filename=issuer.key'],
      '--root-key-filename: "issuer.key" is also the name of --issuer-key-filename',
    ],
    [
      ['--root-key-filename=jwks.json'],
      '--root-key-filename: "jwks.json" is also the name of --jwks-filename',
    ],
    [
      ['--root-key-filename=rotation.json'],
      '--root-key-filename: "rotation.json" is reserved for Warden\'s rotation files',
    ],
  ])('report %j as a problem under its flag', (argv, problem) => {
    expect(problemsFor(argv)).toEqual([problem]);
  });
});
