import { describe, expect, it } from '@jest/globals';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import {
  DEFAULT_ISSUER_RENEWAL,
  DEFAULT_ROOT_ROTATION,
  defaultDaprConfiguration,
  interpretDaprConfiguration,
  loadDaprConfigurationFile,
  parseDaprConfiguration,
} from '../../../src/shared/config/dapr-configuration.js';
import { WardenError } from '../../../src/shared/errors.js';

const HEADER = 'apiVersion: dapr.io/v1alpha1\nkind: Configuration\nmetadata:\n  name: daprsystem\n';

function problems(yaml: string): string[] {
  try {
    parseDaprConfiguration(yaml, 'test.yaml');
  } catch (err) {
    if (!(err instanceof WardenError)) throw err;
    expect(err.code).toBe('ERR_CONFIG_INVALID');
    return err.message
      .split('\n')
      .slice(1)
      .map((l) => l.trim());
  }
  return [];
}

describe('Dapr Configuration (spec.mtls)', () => {
  it("uses Dapr's defaults when nothing is configured", () => {
    expect(defaultDaprConfiguration().mtls).toEqual({
      enabled: false,
      workloadCertTtlMs: 24 * 3_600_000,
      allowedClockSkewMs: 15 * 60_000,
      controlPlaneTrustDomain: 'cluster.local',
      sentryAddress: undefined,
      tokenValidators: [],
      rootRotation: {
        enabled: true,
        prepareAtFraction: 1 / 2,
        activateAtFraction: 5 / 6,
        propagationWindowMs: null,
      },
      issuerRenewal: { enabled: true, renewAtFraction: 2 / 3 },
    });
  });

  it('builds the embedded default exactly as the schema reads an empty Configuration, frozen', () => {
    const interpreted = interpretDaprConfiguration(
      { apiVersion: 'dapr.io/v1alpha1', kind: 'Configuration' },
      'embedded default',
    );
    expect(interpreted.ok).toBe(true);
    const embedded = defaultDaprConfiguration();
    expect(embedded).toStrictEqual(interpreted.ok ? interpreted.configuration : null);
    expect(Object.isFrozen(embedded) && Object.isFrozen(embedded.mtls)).toBe(true);
    expect(Object.isFrozen(embedded.mtls.tokenValidators)).toBe(true);
  });

  it('reads every field of a valid Configuration and freezes the result', () => {
    const configuration = parseDaprConfiguration(
      `${HEADER}spec:
  tracing:
    samplingRate: "1"
  mtls:
    enabled: true
    workloadCertTTL: 1h30m
    allowedClockSkew: 0s
    controlPlaneTrustDomain: example.org
    sentryAddress: dapr-sentry.dapr-system.svc:443
    tokenValidators:
      - name: jwks
        options:
          source: https://issuer.example.org/jwks.json
          minRefreshInterval: 5m
          requestTimeout: 10s
      - name: insecure
`,
      'daprsystem.yaml',
    );
    expect(configuration.name).toBe('daprsystem');
    expect(configuration.mtls).toEqual({
      enabled: true,
      workloadCertTtlMs: 90 * 60_000,
      allowedClockSkewMs: 0,
      controlPlaneTrustDomain: 'example.org',
      sentryAddress: 'dapr-sentry.dapr-system.svc:443',
      tokenValidators: [
        {
          name: 'jwks',
          options: {
            source: 'https://issuer.example.org/jwks.json',
            caCertificate: undefined,
            minRefreshIntervalMs: 300_000,
            requestTimeoutMs: 10_000,
          },
        },
        { name: 'insecure' },
      ],
      rootRotation: DEFAULT_ROOT_ROTATION,
      issuerRenewal: DEFAULT_ISSUER_RENEWAL,
    });
    expect(Object.isFrozen(configuration.mtls)).toBe(true);
    expect(Object.isFrozen(configuration.mtls.tokenValidators[0])).toBe(true);
  });

  it('defaults the jwks durations to 10m and 30s', () => {
    const c = parseDaprConfiguration(
      `${HEADER}spec:\n  mtls:\n    tokenValidators:\n      - name: jwks\n        options: {source: /etc/jwks.json}\n`,
      'x',
    );
    expect(c.mtls.tokenValidators[0]).toEqual({
      name: 'jwks',
      options: {
        source: '/etc/jwks.json',
        caCertificate: undefined,
        minRefreshIntervalMs: 600_000,
        requestTimeoutMs: 30_000,
      },
    });
  });

  it('ignores fields it does not know outside token validator options (a shared CRD)', () => {
    expect(
      problems(
        `${HEADER}spec:\n  features: [{name: x, enabled: true}]\n  mtls:\n    someFutureField: 1\nstatus: {}\n`,
      ),
    ).toEqual([]);
  });

  const invalid: Array<[string, string, string]> = [
    [
      'a TTL that is not a duration',
      'spec:\n  mtls:\n    workloadCertTTL: abc\n',
      'spec.mtls.workloadCertTTL: "abc" is not a duration',
    ],
    [
      'a zero TTL',
      'spec:\n  mtls:\n    workloadCertTTL: "0"\n',
      'spec.mtls.workloadCertTTL: "0" must be more than zero',
    ],
    [
      'a numeric clock skew',
      'spec:\n  mtls:\n    allowedClockSkew: 15\n',
      'spec.mtls.allowedClockSkew: must be a string, not a number',
    ],
    [
      'enabled as a string',
      'spec:\n  mtls:\n    enabled: "yes"\n',
      'spec.mtls.enabled: must be true or false, not a string',
    ],
    [
      'an invalid control-plane trust domain',
      'spec:\n  mtls:\n    controlPlaneTrustDomain: Cluster.Local\n',
      'spec.mtls.controlPlaneTrustDomain: "Cluster.Local" may contain only lowercase',
    ],
    [
      'tokenValidators as a mapping',
      'spec:\n  mtls:\n    tokenValidators: {name: jwks}\n',
      'spec.mtls.tokenValidators: must be a list, not a mapping',
    ],
    [
      'an unknown validator',
      'spec:\n  mtls:\n    tokenValidators: [{name: oidc}]\n',
      'spec.mtls.tokenValidators[0].name: "oidc" is not a validator',
    ],
    [
      'a validator without a name',
      'spec:\n  mtls:\n    tokenValidators: [{options: {}}]\n',
      'spec.mtls.tokenValidators[0].name: is required',
    ],
    [
      'jwks without a source',
      'spec:\n  mtls:\n    tokenValidators: [{name: jwks}]\n',
      'spec.mtls.tokenValidators[0].options.source: is required',
    ],
    [
      'an unknown jwks option (a typo)',
      'spec:\n  mtls:\n    tokenValidators: [{name: jwks, options: {source: x, minRefreshInterva: 5m}}]\n',
      'spec.mtls.tokenValidators[0].options.minRefreshInterva: is not a known field',
    ],
    [
      'a jwks caCertificate that is not PEM',
      'spec:\n  mtls:\n    tokenValidators: [{name: jwks, options: {source: x, caCertificate: nope}}]\n',
      'spec.mtls.tokenValidators[0].options.caCertificate: is not a PEM certificate',
    ],
    [
      'options on the insecure validator',
      'spec:\n  mtls:\n    tokenValidators: [{name: insecure, options: {strict: true}}]\n',
      'spec.mtls.tokenValidators[0].options.strict: is not a known field',
    ],
    [
      'a validator listed twice',
      'spec:\n  mtls:\n    tokenValidators: [{name: insecure}, {name: insecure}]\n',
      'spec.mtls.tokenValidators[1].name: "insecure" is listed more than once',
    ],
  ];
  for (const [name, body, expected] of invalid) {
    it(`reports ${name} with its path`, () => {
      const found = problems(`${HEADER}${body}`);
      expect(found).toHaveLength(1);
      expect(found[0]).toContain(expected);
    });
  }

  it('reports several problems at once', () => {
    const found = problems(`apiVersion: dapr.io/v1
kind: Configuration
spec:
  mtls:
    workloadCertTTL: abc
    allowedClockSkew: -5m
    tokenValidators:
      - name: jwks
        options: {source: "", requestTimeout: soon}
      - name: insecure
      - name: insecure
`);
    expect(found).toEqual([
      'apiVersion: "dapr.io/v1" is not dapr.io/v1alpha1',
      expect.stringContaining('spec.mtls.workloadCertTTL: "abc" is not a duration'),
      expect.stringContaining('spec.mtls.allowedClockSkew: "-5m" is not a duration'),
      'spec.mtls.tokenValidators[0].options.source: is empty',
      expect.stringContaining(
        'spec.mtls.tokenValidators[0].options.requestTimeout: "soon" is not a duration',
      ),
      'spec.mtls.tokenValidators[2].name: "insecure" is listed more than once',
    ]);
  });

  it('reports YAML syntax errors and duplicate keys with a line number, and a wrong kind', () => {
    expect(problems('apiVersion: [\n')[0]).toMatch(/^line \d+, column \d+: /);
    expect(problems(`${HEADER}spec: {}\nspec: {}\n`)[0]).toMatch(
      /^line 6, column 1: Map keys must be unique/,
    );
    expect(problems('apiVersion: dapr.io/v1alpha1\nkind: Component\n')).toEqual([
      'kind: "Component" is not Configuration',
    ]);
    expect(problems('')).toEqual(['must be a mapping, not null']);
  });

  it('loads from a file and names the file when it cannot be read', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'warden-config-'));
    try {
      const file = path.join(dir, 'config.yaml');
      await writeFile(file, `${HEADER}spec:\n  mtls:\n    workloadCertTTL: 1h\n`);
      expect((await loadDaprConfigurationFile(file)).mtls.workloadCertTtlMs).toBe(3_600_000);
      await expect(loadDaprConfigurationFile(path.join(dir, 'missing.yaml'))).rejects.toThrow(
        /missing\.yaml: cannot read the Configuration file \(ENOENT\)/,
      );
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
  describe("Warden's additions: spec.mtls.rootRotation and spec.mtls.issuerRenewal", () => {
    it('reads every field, leaving Dapr’s fields as they were, and freezes them', () => {
      const c = parseDaprConfiguration(
        `${HEADER}spec:
  mtls:
    workloadCertTTL: 1h
    rootRotation:
      enabled: false
      prepareAtFraction: 0.6
      activateAtFraction: 0.9
      propagationWindow: 3h
    issuerRenewal:
      renewAtFraction: 0.75
`,
        'x',
      );
      expect(c.mtls.workloadCertTtlMs).toBe(3_600_000);
      expect(c.mtls.rootRotation).toEqual({
        enabled: false,
        prepareAtFraction: 0.6,
        activateAtFraction: 0.9,
        propagationWindowMs: 3 * 3_600_000,
      });
      expect(c.mtls.issuerRenewal).toEqual({ enabled: true, renewAtFraction: 0.75 });
      expect(Object.isFrozen(c.mtls.rootRotation)).toBe(true);
    });

    it('takes an empty section (null in YAML) and a zero propagation window', () => {
      const c = parseDaprConfiguration(
        `${HEADER}spec:\n  mtls:\n    rootRotation: {propagationWindow: 0s}\n    issuerRenewal:\n`,
        'x',
      );
      expect(c.mtls.rootRotation).toEqual({ ...DEFAULT_ROOT_ROTATION, propagationWindowMs: 0 });
      expect(c.mtls.issuerRenewal).toEqual(DEFAULT_ISSUER_RENEWAL);
    });

    it('reports every problem at once with its path, unknown fields (typos) included', () => {
      expect(
        problems(`${HEADER}spec:
  mtls:
    rootRotation:
      enabled: "yes"
      prepareAtFraction: half
      activateAtFraction: 1.5
      propagationWindow: soon
      rotateEvery: 1y
    issuerRenewal: [1]
`),
      ).toEqual([
        'spec.mtls.rootRotation.enabled: must be true or false, not a string',
        'spec.mtls.rootRotation.prepareAtFraction: must be a number, not a string',
        'spec.mtls.rootRotation.activateAtFraction: must be a number between 0 and 1 (exclusive)',
        expect.stringContaining(
          'spec.mtls.rootRotation.propagationWindow: "soon" is not a duration',
        ),
        'spec.mtls.rootRotation.rotateEvery: is not a known field',
        'spec.mtls.issuerRenewal: must be a mapping, not a list',
      ]);
    });

    it.each([
      [
        'both given, in the wrong order',
        '{prepareAtFraction: 0.9, activateAtFraction: 0.5}',
        '0.5 must be greater than prepareAtFraction (0.9)',
      ],
      [
        'one given, against the other’s default',
        '{prepareAtFraction: 0.9}',
        `${5 / 6} must be greater than prepareAtFraction (0.9)`,
      ],
    ])(
      'refuses activateAtFraction at or before prepareAtFraction (%s)',
      (_name, section, message) => {
        expect(problems(`${HEADER}spec:\n  mtls:\n    rootRotation: ${section}\n`)).toEqual([
          `spec.mtls.rootRotation.activateAtFraction: ${message}`,
        ]);
      },
    );

    it('refuses a Configuration file larger than 1 MiB before parsing it', async () => {
      const dir = await mkdtemp(path.join(tmpdir(), 'warden-config-'));
      try {
        const file = path.join(dir, 'big.yaml');
        await writeFile(file, `${HEADER}# ${'x'.repeat(1024 * 1024)}\n`);
        await expect(loadDaprConfigurationFile(file)).rejects.toThrow(/larger than 1048576 bytes/);
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    });
  });
});
