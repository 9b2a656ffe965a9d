import { describe, expect, it } from '@jest/globals';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import {
  defaultListenAddress,
  resolveServeSettings,
  SERVE_FLAGS,
  validateServeInvocation,
  type ServeSettings,
} from '../../../src/cli/serve-flags.js';
import {
  defaultDaprConfiguration,
  parseDaprConfiguration,
  type DaprConfiguration,
} from '../../../src/shared/config/dapr-configuration.js';
import { readEnv } from '../../../src/shared/env.js';
import { parseFlags } from '../../../src/shared/flags.js';

const STANDALONE_ENV = readEnv({});
const CWD = '/srv/warden';

function settingsFor(
  argv: string[],
  configuration: DaprConfiguration = defaultDaprConfiguration(),
  env = STANDALONE_ENV,
): ServeSettings {
  const result = resolveServeSettings(parseFlags(argv, SERVE_FLAGS), env, configuration, {
    cwd: CWD,
    availableCores: 4,
  });
  if (!result.ok) throw new Error(result.problems.map((p) => `${p.path}: ${p.message}`).join('\n'));
  return result.settings;
}

function problemsFor(
  argv: string[],
  configuration: DaprConfiguration = defaultDaprConfiguration(),
  env = STANDALONE_ENV,
): string[] {
  const result = resolveServeSettings(parseFlags(argv, SERVE_FLAGS), env, configuration, {
    cwd: CWD,
    availableCores: 4,
  });
  return result.ok ? [] : result.problems.map((p) => `${p.path}: ${p.message}`);
}

const JWKS_ONLY = parseDaprConfiguration(
  'apiVersion: dapr.io/v1alpha1\nkind: Configuration\nspec:\n  mtls:\n    tokenValidators: [{name: jwks, options: {source: /etc/jwks.json}}]\n',
  'jwks.yaml',
);

describe('warden serve flags', () => {
  it("has Dapr Sentry's flag names and defaults", () => {
    const defaults = Object.fromEntries(
      Object.entries(SERVE_FLAGS).map(([name, spec]) => [name, spec.default]),
    );
    expect(defaults).toMatchObject({
      'issuer-ca-filename': 'ca.crt',
      'issuer-certificate-filename': 'issuer.crt',
      'issuer-key-filename': 'issuer.key',
      'trust-domain': 'localhost',
      port: '50001',
      'healthz-port': '8080',
      'metrics-port': '9090',
      'enable-metrics': 'true',
      'log-level': 'info',
      'log-as-json': 'false',
      'key-algorithm': 'ecdsa-p256',
      'root-ttl': '8760h',
      'issuer-ttl': '8760h',
    });
    for (const name of [
      'issuer-credentials',
      'listen-address',
      'healthz-listen-address',
      'metrics-listen-address',
      'mode',
      'kubeconfig',
      'config',
      'workers',
    ]) {
      expect(SERVE_FLAGS[name]).toBeDefined();
    }
  });

  it('resolves the standalone defaults with no flags at all', () => {
    const s = settingsFor([]);
    expect(s).toMatchObject({
      mode: 'standalone',
      namespace: 'default',
      credentials: {
        directory: '/srv/warden/.warden/credentials',
        caFile: '/srv/warden/.warden/credentials/ca.crt',
        certificateFile: '/srv/warden/.warden/credentials/issuer.crt',
        keyFile: '/srv/warden/.warden/credentials/issuer.key',
      },
      trustDomain: 'localhost',
      sentrySpiffeId: 'spiffe://localhost/ns/default/dapr-sentry',
      validatorAudience: 'spiffe://localhost/ns/default/dapr-sentry',
      grpc: { listenAddress: '127.0.0.1', port: 50001 },
      healthz: { listenAddress: '127.0.0.1', port: 8080 },
      metrics: { listenAddress: '127.0.0.1', port: 9090, enabled: true },
      configurationRef: { kind: 'embedded' },
      insecureValidatorActive: true,
      validators: { defaultName: 'insecure' },
      logging: { level: 'info', json: false },
      workers: 4,
      inFlightLimits: { maxInFlight: 1024, maxInFlightPerCaller: 64 },
      keyAlgorithm: 'ecdsa-p256',
      rootTtlMs: 8760 * 3_600_000,
      issuerTtlMs: 8760 * 3_600_000,
      leafProfile: { ttlMs: 24 * 3_600_000, skewMs: 15 * 60_000 },
      warnings: [],
    });
    expect(Object.isFrozen(s)).toBe(true);
    expect(Object.isFrozen(s.grpc)).toBe(true);
  });

  describe('listen address rule', () => {
    it('defaults to 127.0.0.1 while the insecure validator is enabled, else 0.0.0.0', () => {
      expect(defaultListenAddress(true)).toBe('127.0.0.1');
      expect(defaultListenAddress(false)).toBe('0.0.0.0');
      expect(settingsFor([], JWKS_ONLY).grpc.listenAddress).toBe('0.0.0.0');
      expect(settingsFor([], JWKS_ONLY).insecureValidatorActive).toBe(false);
      expect(settingsFor(['--mode', 'kubernetes']).grpc.listenAddress).toBe('0.0.0.0');
    });

    it('keeps an explicit address, and warns when the insecure validator is exposed', () => {
      const s = settingsFor(['--listen-address', '0.0.0.0']);
      expect(s.grpc.listenAddress).toBe('0.0.0.0');
      expect(s.warnings).toEqual([
        expect.stringMatching(/insecure validator is enabled and --listen-address 0\.0\.0\.0/),
      ]);
      expect(
        settingsFor(['--listen-address=10.0.0.5', '--healthz-listen-address', '::1']).healthz
          .listenAddress,
      ).toBe('::1');
    });
  });

  it('uses the kubernetes defaults in kubernetes mode (and picks that mode inside a pod)', () => {
    const podEnv = readEnv({
      KUBERNETES_SERVICE_HOST: '10.0.0.1',
      KUBERNETES_SERVICE_PORT: '443',
      NAMESPACE: 'dapr-system',
    });
    const s = settingsFor([], defaultDaprConfiguration(), podEnv);
    expect(s).toMatchObject({
      mode: 'kubernetes',
      namespace: 'dapr-system',
      credentials: { directory: '/var/run/secrets/dapr.io/credentials' },
      configurationRef: { kind: 'kubernetes', name: 'daprsystem' },
      validators: { defaultName: 'kubernetes' },
      sentrySpiffeId: 'spiffe://localhost/ns/dapr-system/dapr-sentry',
    });
    expect(settingsFor(['--mode', 'standalone'], defaultDaprConfiguration(), podEnv).mode).toBe(
      'standalone',
    );
  });

  it('takes every flag it is given', () => {
    const s = settingsFor([
      '--issuer-credentials',
      '/etc/warden',
      '--issuer-ca-filename',
      'roots.pem',
      '--trust-domain',
      'example.org',
      '--port',
      '6000',
      '--enable-metrics=false',
      '--metrics-port',
      '6000', // the same port is fine when metrics are off
      '--log-level',
      'debug',
      '--log-as-json',
      '--workers',
      '2',
      '--key-algorithm',
      'ed25519',
      '--root-ttl',
      '87600h',
      '--issuer-ttl',
      '720h',
      '--config',
      '/etc/warden/config.yaml',
    ]);
    expect(s).toMatchObject({
      credentials: { caFile: '/etc/warden/roots.pem' },
      trustDomain: 'example.org',
      sentrySpiffeId: 'spiffe://example.org/ns/default/dapr-sentry',
      grpc: { port: 6000 },
      metrics: { enabled: false },
      logging: { level: 'debug', json: true },
      workers: 2,
      keyAlgorithm: 'ed25519',
      rootTtlMs: 87600 * 3_600_000,
      issuerTtlMs: 720 * 3_600_000,
      configurationRef: { kind: 'file', path: '/etc/warden/config.yaml' },
    });
  });

  it('reports every problem at once', () => {
    const env = readEnv({ NAMESPACE: 'a/b' });
    expect(
      problemsFor(
        [
          '--mode',
          'cloud',
          '--trust-domain',
          'Bad_Domain!',
          '--port',
          '70000',
          '--healthz-port',
          '9090',
          '--listen-address',
          'not an address',
          '--issuer-key-filename',
          '../issuer.key',
          '--log-level',
          'verbose',
          '--workers',
          '0',
          '--key-algorithm',
          'rsa',
          '--root-ttl',
          '1h',
          '--issuer-ttl',
          'forever',
        ],
        defaultDaprConfiguration(),
        env,
      ),
    ).toEqual([
      '--mode: "cloud" is not standalone or kubernetes',
      'NAMESPACE: "a/b" contains "/"',
      '--trust-domain: "Bad_Domain!" may contain only lowercase letters, digits, ".", "-" and "_"',
      '--issuer-key-filename: "../issuer.key" is not a plain file name',
      '--listen-address: "not an address" is not an IP address or host name',
      '--port: 70000 is not a port number (0-65535)',
      '--metrics-port: 9090 is already used by --healthz-port',
      '--log-level: "verbose" is not one of debug, info, warn, error, fatal',
      '--workers: 0 is not a whole number from 1 to 256',
      '--key-algorithm: "rsa" is not one of ecdsa-p256, ed25519',
      '--issuer-ttl: "forever" is not a duration (use Go syntax such as 8760h)',
    ]);
  });

  it('takes the in-flight limits from their flags, refuses nonsense, and warns when one caller could take every slot', () => {
    expect(
      settingsFor(['--max-in-flight', '300', '--max-in-flight-per-caller', '7']).inFlightLimits,
    ).toEqual({ maxInFlight: 300, maxInFlightPerCaller: 7 });
    expect(problemsFor(['--max-in-flight', '0', '--max-in-flight-per-caller', '1.5'])).toEqual([
      '--max-in-flight: 0 is not a whole number from 1 to 1000000',
      '--max-in-flight-per-caller: 1.5 is not a whole number from 1 to 1000000',
    ]);
    expect(
      settingsFor(['--max-in-flight', '10', '--max-in-flight-per-caller', '20']).warnings,
    ).toEqual([
      '--max-in-flight-per-caller is above --max-in-flight: one caller can take every slot',
    ]);
  });

  it('refuses an issuer that outlives its root and credential files that collide', () => {
    expect(problemsFor(['--root-ttl', '1h', '--issuer-ttl', '2h'])).toEqual([
      '--issuer-ttl: is longer than --root-ttl; an issuer cannot outlive its root',
    ]);
    expect(problemsFor(['--issuer-key-filename', 'ca.crt'])).toEqual([
      '--issuer-*-filename: the anchors, certificate and key file names must differ',
    ]);
  });
});

describe('warden serve JWT and OIDC flags', () => {
  it("are Dapr Sentry's, with JWT off by default", () => {
    for (const name of [
      'jwt-enabled',
      'jwt-key-filename',
      'jwks-filename',
      'jwt-issuer',
      'jwt-signing-algorithm',
      'jwt-key-id',
      'jwt-ttl',
      'oidc-enabled',
      'oidc-server-listen-port',
      'oidc-server-listen-address',
      'oidc-server-tls-enabled',
      'oidc-jwks-uri',
      'oidc-path-prefix',
      'oidc-allowed-hosts',
    ]) {
      expect(SERVE_FLAGS[name]).toBeDefined();
    }
    const s = settingsFor([]);
    expect(s.jwt).toMatchObject({ enabled: false, algorithm: 'RS256', ttlMs: 24 * 3_600_000 });
    expect(s.oidc).toMatchObject({ enabled: false, port: 9080, listenAddress: 'localhost' });
  });

  it('fold into the settings, TLS file paths resolved against the working directory', () => {
    const s = settingsFor([
      '--jwt-enabled',
      '--jwt-issuer=https://oidc.example.org',
      '--jwt-signing-algorithm=ES256',
      '--jwt-ttl=1h',
      '--oidc-enabled',
      '--oidc-server-listen-port=9443',
      '--oidc-server-tls-cert-file=tls/oidc.crt',
      '--oidc-server-tls-key-file=/etc/oidc.key',
      '--oidc-allowed-hosts=OIDC.example.org',
    ]);
    expect(s.jwt).toEqual({
      enabled: true,
      keyFilename: 'jwt.key',
      jwksFilename: 'jwks.json',
      issuer: 'https://oidc.example.org',
      algorithm: 'ES256',
      keyId: undefined,
      ttlMs: 3_600_000,
    });
    expect(s.oidc).toMatchObject({
      enabled: true,
      port: 9443,
      tls: { enabled: true, certFile: '/srv/warden/tls/oidc.crt', keyFile: '/etc/oidc.key' },
      allowedHosts: ['oidc.example.org'],
    });
    expect(Object.isFrozen(s.oidc.tls)).toBe(true);
  });

  it('adds JWT/OIDC warnings to the start-up warnings', () => {
    const s = settingsFor([
      '--jwt-enabled',
      '--oidc-enabled',
      '--oidc-allowed-hosts=a.example',
      '--oidc-server-tls-enabled=false',
    ]);
    expect(s.warnings).toEqual([
      expect.stringMatching(/no iss claim/),
      expect.stringMatching(/plain HTTP/),
    ]);
  });

  it('reports JWT problems together with every other problem, each under its flag', () => {
    expect(
      problemsFor([
        '--port',
        '70000',
        '--jwt-ttl=soon',
        '--oidc-enabled',
        '--jwt-signing-algorithm=HS256',
      ]),
    ).toEqual([
      '--jwt-signing-algorithm: "HS256" is not one of RS256, ES256, EdDSA',
      '--jwt-ttl: "soon" is not a duration (use Go syntax such as 24h)',
      '--oidc-enabled: needs --jwt-enabled (there are no keys to publish otherwise)',
      '--oidc-enabled: needs --jwt-issuer or --oidc-allowed-hosts: the issuer would otherwise come from an unchecked Host header',
      '--port: 70000 is not a port number (0-65535)',
    ]);
  });

  it('refuses JWT file names that collide with the X.509 files in the same directory', () => {
    expect(problemsFor(['--jwt-enabled', '--jwt-key-filename=issuer.key'])).toEqual([
      '--jwt-key-filename: "issuer.key" is also the name of an --issuer-*-filename file',
    ]);
    expect(problemsFor(['--jwks-filename=ca.crt'])).toEqual([
      '--jwks-filename: "ca.crt" is also the name of an --issuer-*-filename file',
    ]);
  });

  it('refuses an OIDC port another listener uses, and a bad OIDC listen address', () => {
    const oidc = ['--jwt-enabled', '--oidc-enabled', '--jwt-issuer=https://oidc.example.org'];
    expect(problemsFor([...oidc, '--oidc-server-listen-port=50001'])).toEqual([
      '--oidc-server-listen-port: 50001 is already used by --port',
    ]);
    expect(problemsFor([...oidc, '--oidc-server-listen-address=not an address'])).toEqual([
      '--oidc-server-listen-address: "not an address" is not an IP address or host name',
    ]);
    // With OIDC off its port is not in use.
    expect(problemsFor(['--oidc-server-listen-port=50001'])).toEqual([]);
  });
});

describe('warden serve --validate', () => {
  it('returns the settings for a valid invocation with a Configuration file', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'warden-validate-'));
    try {
      const file = path.join(dir, 'config.yaml');
      await writeFile(
        file,
        'apiVersion: dapr.io/v1alpha1\nkind: Configuration\nspec:\n  mtls:\n    workloadCertTTL: 2h\n',
      );
      const result = await validateServeInvocation(['--config', file], STANDALONE_ENV, {
        cwd: CWD,
        availableCores: 1,
      });
      expect(result.ok).toBe(true);
      if (result.ok) expect(result.settings.leafProfile.ttlMs).toBe(2 * 3_600_000);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('lists Configuration problems and flag problems together', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'warden-validate-'));
    try {
      const file = path.join(dir, 'config.yaml');
      await writeFile(
        file,
        'apiVersion: dapr.io/v1alpha1\nkind: Configuration\nspec:\n  mtls:\n    workloadCertTTL: abc\n    allowedClockSkew: x\n',
      );
      const result = await validateServeInvocation(
        ['--config', file, '--port', '-1'],
        STANDALONE_ENV,
        { cwd: CWD },
      );
      expect(result.ok).toBe(false);
      if (!result.ok) {
        expect(result.problems.map((p) => `${p.path}: ${p.message}`)).toEqual([
          expect.stringContaining(`${file}: spec.mtls.workloadCertTTL: "abc" is not a duration`),
          expect.stringContaining(`${file}: spec.mtls.allowedClockSkew: "x" is not a duration`),
          '--port: -1 is not a port number (0-65535)',
        ]);
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('reports flag syntax problems (unknown flags, stray arguments) without reading anything', async () => {
    const unknown = await validateServeInvocation(['--prot', '1', '--port', 'abc'], STANDALONE_ENV);
    expect(unknown).toEqual({
      ok: false,
      problems: [
        { path: 'flags', message: 'unknown flag -prot' },
        { path: 'flags', message: 'flag -port: "abc" is not a number' },
      ],
    });
    expect(await validateServeInvocation(['extra'], STANDALONE_ENV)).toMatchObject({
      ok: false,
      problems: [{ path: 'arguments' }],
    });
  });

  it('uses a supplied loader for the kubernetes Configuration resource', async () => {
    const refs: unknown[] = [];
    const result = await validateServeInvocation(
      ['--mode', 'kubernetes', '--config', 'custom'],
      STANDALONE_ENV,
      {
        loadConfiguration: async (ref, context) => {
          refs.push(ref, context);
          return JWKS_ONLY;
        },
      },
    );
    expect(refs).toEqual([
      { kind: 'kubernetes', name: 'custom' },
      { namespace: STANDALONE_ENV.namespace, kubeconfig: undefined },
    ]);
    expect(result.ok && result.settings.validators.defaultName).toBeNull();
    // The default loader asks the API server --kubeconfig points at; a missing file is a problem.
    const without = await validateServeInvocation(
      ['--mode', 'kubernetes', '--kubeconfig', '/nonexistent/kubeconfig'],
      STANDALONE_ENV,
    );
    expect(without).toMatchObject({
      ok: false,
      problems: [{ message: expect.stringMatching(/kubeconfig \/nonexistent\/kubeconfig could not be loaded \(ENOENT\)/) }],
    });
  });
});
