import { isIP } from 'node:net';
import { availableParallelism } from 'node:os';
import path from 'node:path';
import type { LevelWithSilent } from 'pino';
import type { LeafProfileOptions } from '../issuer/certificate-signer.js';
import {
  DEFAULT_IN_FLIGHT_LIMITS,
  MAX_IN_FLIGHT_LIMIT,
  type InFlightLimits,
} from '../issuer/grpc/in-flight-limit.js';
import { sentrySpiffeId } from '../issuer/grpc/serving-certificate.js';
import { namespaceProblem } from '../issuer/request-rules.js';
import {
  planValidators,
  type ServeMode,
  type ValidatorPlan,
} from '../issuer/validator-registry.js';
import { formatConfigProblem, type ConfigProblem } from '../shared/config/config-problems.js';
import {
  defaultDaprConfiguration,
  type DaprConfiguration,
} from '../shared/config/dapr-configuration-settings.js';
import { parseDuration } from '../shared/duration.js';
import type { WardenEnv } from '../shared/env.js';
import { isWardenError, WardenError } from '../shared/errors.js';
import { parseFlags, type FlagSpecs, type ParsedFlags } from '../shared/flags.js';
import { trustDomainProblem } from '../shared/spiffe-id.js';
import { collectJwtSettings, JWT_FLAG_SPECS, type JwtSettings } from './jwt-flags.js';
import {
  collectKubernetesSettings,
  KUBERNETES_FLAG_SPECS,
  type KubernetesSettings,
} from './kubernetes-flags.js';
import {
  collectRotationServeSettings,
  ROTATION_SERVE_FLAG_SPECS,
  type RotationServeSettings,
} from './rotation-serve-flags.js';

/** Where Dapr Sentry keeps its credentials in a pod; Warden's standalone default is local. */
export const KUBERNETES_CREDENTIALS_DIRECTORY = '/var/run/secrets/dapr.io/credentials';
export const STANDALONE_CREDENTIALS_DIRECTORY = './.warden/credentials';
/** Dapr's name for the control plane's Configuration resource. */
export const KUBERNETES_DEFAULT_CONFIGURATION = 'daprsystem';

export const LOG_LEVELS = ['debug', 'info', 'warn', 'error', 'fatal'] as const;
export const KEY_ALGORITHMS = ['ecdsa-p256', 'ed25519'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];
export type KeyAlgorithm = (typeof KEY_ALGORITHMS)[number];

/**
 * `warden serve` flags: Dapr Sentry's names and defaults (JWT/OIDC ones from jwt-flags.ts),
 * plus Warden's key and lifetime flags. Defaults that depend on other settings (credentials directory, listen addresses,
 * mode, workers) are decided in resolveServeSettings and described here.
 */
export const SERVE_FLAGS: FlagSpecs = Object.freeze({
  'issuer-credentials': {
    kind: 'string',
    description: `Directory holding the trust material (default ${STANDALONE_CREDENTIALS_DIRECTORY} in standalone mode, ${KUBERNETES_CREDENTIALS_DIRECTORY} in kubernetes mode)`,
  },
  'issuer-ca-filename': {
    kind: 'string',
    description: 'File name of the trust anchors in the credentials directory',
    default: 'ca.crt',
  },
  'issuer-certificate-filename': {
    kind: 'string',
    description: 'File name of the issuer certificate chain',
    default: 'issuer.crt',
  },
  'issuer-key-filename': {
    kind: 'string',
    description: 'File name of the issuer private key',
    default: 'issuer.key',
  },
  'trust-domain': {
    kind: 'string',
    description: "Trust domain of the CA's own SPIFFE ID",
    default: 'localhost',
  },
  port: { kind: 'number', description: 'gRPC port for SignCertificate', default: '50001' },
  'listen-address': {
    kind: 'string',
    description:
      'gRPC listen address (default 127.0.0.1 while the insecure validator is enabled, else 0.0.0.0)',
  },
  'healthz-port': { kind: 'number', description: 'Port for GET /healthz', default: '8080' },
  'healthz-listen-address': {
    kind: 'string',
    description: 'Listen address for /healthz (default: as --listen-address)',
  },
  'metrics-port': { kind: 'number', description: 'Port for GET /metrics', default: '9090' },
  'metrics-listen-address': {
    kind: 'string',
    description: 'Listen address for /metrics (default: as --listen-address)',
  },
  'enable-metrics': { kind: 'boolean', description: 'Serve Prometheus metrics', default: 'true' },
  mode: {
    kind: 'string',
    description: 'standalone or kubernetes (default kubernetes inside a pod, else standalone)',
  },
  kubeconfig: {
    kind: 'string',
    description: 'Kubeconfig file for kubernetes mode outside a cluster (default: env KUBECONFIG)',
  },
  config: {
    kind: 'string',
    description: `Configuration: a YAML file in standalone mode (default: built-in defaults), a resource name in kubernetes mode (default ${KUBERNETES_DEFAULT_CONFIGURATION})`,
  },
  'log-level': {
    kind: 'string',
    description: `Log level: ${LOG_LEVELS.join(', ')}`,
    default: 'info',
  },
  'log-as-json': {
    kind: 'boolean',
    description: 'Write logs as JSON with process fields',
    default: 'false',
  },
  workers: { kind: 'number', description: 'Signing worker threads (default: the available cores)' },
  'max-in-flight': {
    kind: 'number',
    description:
      'SignCertificate calls worked on at once; beyond it callers get RESOURCE_EXHAUSTED and retry',
    default: String(DEFAULT_IN_FLIGHT_LIMITS.maxInFlight),
  },
  'max-in-flight-per-caller': {
    kind: 'number',
    description:
      'SignCertificate calls worked on at once from one caller IP address (callers behind one NAT, or all local sidecars on 127.0.0.1, share it)',
    default: String(DEFAULT_IN_FLIGHT_LIMITS.maxInFlightPerCaller),
  },
  'key-algorithm': {
    kind: 'string',
    description: `Key type for a generated root and issuer: ${KEY_ALGORITHMS.join(', ')}`,
    default: 'ecdsa-p256',
  },
  'root-ttl': {
    kind: 'string',
    description: 'Lifetime of a generated root certificate',
    default: '8760h',
  },
  'issuer-ttl': {
    kind: 'string',
    description: 'Lifetime of a generated issuer certificate',
    default: '8760h',
  },
  ...ROTATION_SERVE_FLAG_SPECS,
  ...JWT_FLAG_SPECS,
  ...KUBERNETES_FLAG_SPECS,
  validate: {
    kind: 'boolean',
    description: 'Check flags and Configuration, print the settings or every problem, and exit',
    default: 'false',
  },
});

/** Where the Configuration comes from. */
export type ConfigurationRef =
  | { readonly kind: 'embedded' }
  | { readonly kind: 'file'; readonly path: string }
  | { readonly kind: 'kubernetes'; readonly name: string };

export interface ListenerSettings {
  readonly listenAddress: string;
  readonly port: number;
}

/** Everything `warden serve` needs, decided once and frozen. */
export interface ServeSettings {
  readonly mode: ServeMode;
  /** The CA's namespace (env NAMESPACE, default "default"). */
  readonly namespace: string;
  readonly credentials: {
    readonly directory: string;
    readonly caFile: string;
    readonly certificateFile: string;
    readonly keyFile: string;
  };
  /** --trust-domain: trust domain of the CA's own SPIFFE ID. */
  readonly trustDomain: string;
  /** The serving certificate's URI SAN: `spiffe://<trust-domain>/ns/<namespace>/dapr-sentry`. */
  readonly sentrySpiffeId: string;
  /**
   * The audience identity tokens must carry: Sentry's own SPIFFE ID, as in Dapr (whose Helm chart
   * passes the Configuration's controlPlaneTrustDomain as --trust-domain, so daprd, which computes
   * the ID from controlPlaneTrustDomain, asks for the same one).
   */
  readonly validatorAudience: string;
  readonly grpc: ListenerSettings;
  readonly healthz: ListenerSettings;
  readonly metrics: ListenerSettings & { readonly enabled: boolean };
  readonly kubeconfig: string | undefined;
  /** Kubernetes mode: trust Secret/ConfigMap name, anchors distribution, leader identity. */
  readonly kubernetes: KubernetesSettings;
  readonly configurationRef: ConfigurationRef;
  readonly configuration: DaprConfiguration;
  readonly validators: ValidatorPlan;
  /** True when the insecure validator is enabled (anyone who reaches the port gets any identity). */
  readonly insecureValidatorActive: boolean;
  readonly logging: { readonly level: LogLevel & LevelWithSilent; readonly json: boolean };
  readonly workers: number;
  /** --max-in-flight and --max-in-flight-per-caller. */
  readonly inFlightLimits: InFlightLimits;
  readonly keyAlgorithm: KeyAlgorithm;
  readonly rootTtlMs: number;
  readonly issuerTtlMs: number;
  readonly leafProfile: LeafProfileOptions;
  /** Root-key custody, automatic rotation policy and expiry warnings (rotation-serve-flags.ts). */
  readonly rotation: RotationServeSettings;
  /** JWT-SVID issuance (`--jwt-*`); key files live in the credentials directory. */
  readonly jwt: JwtSettings['jwt'];
  /** The OIDC discovery server (`--oidc-*`); TLS file paths are absolute. */
  readonly oidc: JwtSettings['oidc'];
  /** Allowed but risky choices, for the log at start-up. */
  readonly warnings: readonly string[];
}

/** The gRPC listen address when --listen-address is not given. */
export function defaultListenAddress(insecureValidatorActive: boolean): string {
  return insecureValidatorActive ? '127.0.0.1' : '0.0.0.0';
}

export function defaultServeMode(env: WardenEnv): ServeMode {
  return env.inCluster ? 'kubernetes' : 'standalone';
}

/** --config (or its absence) for a mode. */
export function configurationRefFor(
  mode: ServeMode,
  configFlag: string | undefined,
): ConfigurationRef {
  if (mode === 'kubernetes')
    return { kind: 'kubernetes', name: configFlag ?? KUBERNETES_DEFAULT_CONFIGURATION };
  return configFlag === undefined ? { kind: 'embedded' } : { kind: 'file', path: configFlag };
}

const HOSTNAME =
  /^(?=.{1,253}$)[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?(\.[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)*$/;
const WILDCARD_ADDRESSES = new Set(['0.0.0.0', '::', '']);

const LOOPBACK_ADDRESSES = new Set(['localhost', '127.0.0.1', '::1']);

/** Whether two listeners can clash on a port: localhost (the OIDC default) binds a loopback address. */
function mayShareHost(a: string, b: string): boolean {
  if (a === b || WILDCARD_ADDRESSES.has(a) || WILDCARD_ADDRESSES.has(b)) return true;
  return (
    (a === 'localhost' && LOOPBACK_ADDRESSES.has(b)) ||
    (b === 'localhost' && LOOPBACK_ADDRESSES.has(a))
  );
}

function isListenAddress(value: string): boolean {
  return isIP(value) !== 0 || HOSTNAME.test(value);
}

function isPlainFileName(value: string): boolean {
  return (
    value.length > 0 &&
    value !== '.' &&
    value !== '..' &&
    !value.includes('/') &&
    !value.includes('\\') &&
    !value.includes('\0')
  );
}

function stringFlag(flags: ParsedFlags, name: string): string | undefined {
  const value = flags.values[name];
  return typeof value === 'string' ? value : undefined;
}

function numberFlag(flags: ParsedFlags, name: string): number | undefined {
  const value = flags.values[name];
  return typeof value === 'number' ? value : undefined;
}

function booleanFlag(flags: ParsedFlags, name: string): boolean {
  return flags.values[name] === true;
}

export interface ResolveOptions {
  /** Base for a relative --issuer-credentials (default process.cwd()). */
  readonly cwd?: string;
  /** Cores to use when --workers is not given (default os.availableParallelism()). */
  readonly availableCores?: number;
}

/**
 * Turns parsed flags, the environment and the Configuration into frozen ServeSettings.
 * Every problem is collected; the result lists them all or none.
 */
export function resolveServeSettings(
  flags: ParsedFlags,
  env: WardenEnv,
  configuration: DaprConfiguration,
  options: ResolveOptions = {},
): { ok: true; settings: ServeSettings } | { ok: false; problems: readonly ConfigProblem[] } {
  const problems: ConfigProblem[] = [];
  const warnings: string[] = [];
  const flagProblem = (name: string, message: string): void => {
    problems.push({ path: `--${name}`, message });
  };

  const modeFlag = stringFlag(flags, 'mode');
  let mode: ServeMode = defaultServeMode(env);
  if (modeFlag !== undefined) {
    if (modeFlag === 'standalone' || modeFlag === 'kubernetes') mode = modeFlag;
    else flagProblem('mode', `"${modeFlag}" is not standalone or kubernetes`);
  }

  const namespaceIssue = namespaceProblem(env.namespace);
  if (namespaceIssue)
    problems.push({ path: 'NAMESPACE', message: `"${env.namespace}" ${namespaceIssue}` });

  const trustDomain = stringFlag(flags, 'trust-domain') ?? 'localhost';
  const tdIssue = trustDomainProblem(trustDomain);
  if (tdIssue) flagProblem('trust-domain', `"${trustDomain}" ${tdIssue}`);

  const credentialsFlag = stringFlag(flags, 'issuer-credentials');
  if (credentialsFlag !== undefined && credentialsFlag.trim().length === 0)
    flagProblem('issuer-credentials', 'is empty');
  const credentialsDirectory = path.resolve(
    options.cwd ?? process.cwd(),
    credentialsFlag !== undefined && credentialsFlag.trim().length > 0
      ? credentialsFlag
      : mode === 'kubernetes'
        ? KUBERNETES_CREDENTIALS_DIRECTORY
        : STANDALONE_CREDENTIALS_DIRECTORY,
  );
  const fileNames: Record<string, string> = {};
  for (const name of ['issuer-ca-filename', 'issuer-certificate-filename', 'issuer-key-filename']) {
    const value = stringFlag(flags, name) ?? '';
    if (!isPlainFileName(value)) flagProblem(name, `"${value}" is not a plain file name`);
    fileNames[name] = value;
  }
  const distinctFiles = new Set(Object.values(fileNames));
  if (distinctFiles.size !== 3) {
    problems.push({
      path: '--issuer-*-filename',
      message: 'the anchors, certificate and key file names must differ',
    });
  }

  const jwtResult = collectJwtSettings(flags);
  if (!jwtResult.ok) problems.push(...jwtResult.problems);
  const jwtSettings = jwtResult.ok ? jwtResult.settings : null;
  if (jwtSettings) warnings.push(...jwtSettings.warnings);
  // The JWT files share the credentials directory with the X.509 material.
  for (const flag of ['jwt-key-filename', 'jwks-filename']) {
    const name = stringFlag(flags, flag);
    if (name !== undefined && distinctFiles.has(name))
      flagProblem(flag, `"${name}" is also the name of an --issuer-*-filename file`);
  }

  const rotationResult = collectRotationServeSettings(flags, configuration, {
    ...fileNames,
    'jwt-key-filename': stringFlag(flags, 'jwt-key-filename') ?? '',
    'jwks-filename': stringFlag(flags, 'jwks-filename') ?? '',
  });
  if (!rotationResult.ok) problems.push(...rotationResult.problems);

  const plan = planValidators(mode, configuration.mtls.tokenValidators);
  const insecureValidatorActive = plan.enabled.some((v) => v.name === 'insecure');
  if (insecureValidatorActive && mode === 'kubernetes') {
    warnings.push(
      'the insecure validator is enabled in kubernetes mode: any pod that reaches the CA gets any identity',
    );
  }

  const fallbackAddress = defaultListenAddress(insecureValidatorActive);
  const listener = (addressFlag: string, portFlag: string, fallback: string): ListenerSettings => {
    const given = stringFlag(flags, addressFlag);
    const address = given ?? fallback;
    // A derived default is either valid or already reported under the flag it came from.
    if (given !== undefined && !isListenAddress(given))
      flagProblem(addressFlag, `"${given}" is not an IP address or host name`);
    const port = numberFlag(flags, portFlag) ?? 0;
    if (!Number.isInteger(port) || port < 0 || port > 65535)
      flagProblem(portFlag, `${port} is not a port number (0-65535)`);
    return Object.freeze({ listenAddress: address, port });
  };
  const grpc = listener('listen-address', 'port', fallbackAddress);
  const healthz = listener('healthz-listen-address', 'healthz-port', grpc.listenAddress);
  const metricsEnabled = booleanFlag(flags, 'enable-metrics');
  const metrics = listener('metrics-listen-address', 'metrics-port', grpc.listenAddress);
  const ports: Array<[string, ListenerSettings]> = [
    ['port', grpc],
    ['healthz-port', healthz],
  ];
  if (metricsEnabled) ports.push(['metrics-port', metrics]);
  if (jwtSettings?.oidc.enabled) {
    const oidcAddress = jwtSettings.oidc.listenAddress;
    if (!isListenAddress(oidcAddress))
      flagProblem(
        'oidc-server-listen-address',
        `"${oidcAddress}" is not an IP address or host name`,
      );
    ports.push([
      'oidc-server-listen-port',
      { listenAddress: oidcAddress, port: jwtSettings.oidc.port },
    ]);
  }
  for (let i = 0; i < ports.length; i++) {
    for (let j = i + 1; j < ports.length; j++) {
      const [nameA, a] = ports[i] as [string, ListenerSettings];
      const [nameB, b] = ports[j] as [string, ListenerSettings];
      if (a.port !== 0 && a.port === b.port && mayShareHost(a.listenAddress, b.listenAddress))
        flagProblem(nameB, `${b.port} is already used by --${nameA}`);
    }
  }
  if (
    insecureValidatorActive &&
    flags.given.has('listen-address') &&
    WILDCARD_ADDRESSES.has(grpc.listenAddress)
  ) {
    warnings.push(
      `the insecure validator is enabled and --listen-address ${grpc.listenAddress} lets other hosts request any identity`,
    );
  }

  const logLevel = stringFlag(flags, 'log-level') ?? 'info';
  if (!(LOG_LEVELS as readonly string[]).includes(logLevel))
    flagProblem('log-level', `"${logLevel}" is not one of ${LOG_LEVELS.join(', ')}`);

  const workers =
    numberFlag(flags, 'workers') ?? Math.max(1, options.availableCores ?? availableParallelism());
  if (!Number.isInteger(workers) || workers < 1 || workers > 256)
    flagProblem('workers', `${workers} is not a whole number from 1 to 256`);

  const limitFlag = (name: string, fallback: number): number => {
    const value = numberFlag(flags, name) ?? fallback;
    if (!Number.isInteger(value) || value < 1 || value > MAX_IN_FLIGHT_LIMIT)
      flagProblem(name, `${value} is not a whole number from 1 to ${MAX_IN_FLIGHT_LIMIT}`);
    return value;
  };
  const inFlightLimits: InFlightLimits = Object.freeze({
    maxInFlight: limitFlag('max-in-flight', DEFAULT_IN_FLIGHT_LIMITS.maxInFlight),
    maxInFlightPerCaller: limitFlag(
      'max-in-flight-per-caller',
      DEFAULT_IN_FLIGHT_LIMITS.maxInFlightPerCaller,
    ),
  });
  if (inFlightLimits.maxInFlightPerCaller > inFlightLimits.maxInFlight) {
    warnings.push(
      '--max-in-flight-per-caller is above --max-in-flight: one caller can take every slot',
    );
  }

  const keyAlgorithm = stringFlag(flags, 'key-algorithm') ?? 'ecdsa-p256';
  if (!(KEY_ALGORITHMS as readonly string[]).includes(keyAlgorithm)) {
    flagProblem('key-algorithm', `"${keyAlgorithm}" is not one of ${KEY_ALGORITHMS.join(', ')}`);
  }

  const ttl = (name: string): number => {
    const text = stringFlag(flags, name) ?? '';
    try {
      const ms = parseDuration(text);
      if (ms <= 0) flagProblem(name, `"${text}" must be more than zero`);
      return ms;
    } catch {
      flagProblem(name, `"${text}" is not a duration (use Go syntax such as 8760h)`);
      return 0;
    }
  };
  const rootTtlMs = ttl('root-ttl');
  const issuerTtlMs = ttl('issuer-ttl');
  if (rootTtlMs > 0 && issuerTtlMs > rootTtlMs)
    flagProblem('issuer-ttl', 'is longer than --root-ttl; an issuer cannot outlive its root');

  const kubeconfig = stringFlag(flags, 'kubeconfig') ?? env.kubeconfig;
  if (kubeconfig !== undefined && mode === 'standalone' && flags.given.has('kubeconfig')) {
    warnings.push('--kubeconfig is ignored in standalone mode');
  }
  const kubernetesResult = collectKubernetesSettings(flags, env, mode);
  problems.push(...kubernetesResult.problems);

  if (problems.length > 0 || jwtSettings === null || !rotationResult.ok)
    return { ok: false, problems: Object.freeze(problems) };

  const cwd = options.cwd ?? process.cwd();
  const oidcTls = jwtSettings.oidc.tls;
  const settings: ServeSettings = {
    mode,
    namespace: env.namespace,
    credentials: Object.freeze({
      directory: credentialsDirectory,
      caFile: path.join(credentialsDirectory, fileNames['issuer-ca-filename'] as string),
      certificateFile: path.join(
        credentialsDirectory,
        fileNames['issuer-certificate-filename'] as string,
      ),
      keyFile: path.join(credentialsDirectory, fileNames['issuer-key-filename'] as string),
    }),
    trustDomain,
    sentrySpiffeId: sentrySpiffeId(trustDomain, env.namespace),
    validatorAudience: sentrySpiffeId(trustDomain, env.namespace),
    grpc,
    healthz,
    metrics: Object.freeze({ ...metrics, enabled: metricsEnabled }),
    kubeconfig: mode === 'kubernetes' ? kubeconfig : undefined,
    kubernetes: kubernetesResult.settings,
    configurationRef: Object.freeze(configurationRefFor(mode, stringFlag(flags, 'config'))),
    configuration,
    validators: plan,
    insecureValidatorActive,
    logging: Object.freeze({
      level: logLevel as LogLevel,
      json: booleanFlag(flags, 'log-as-json'),
    }),
    workers,
    inFlightLimits,
    keyAlgorithm: keyAlgorithm as KeyAlgorithm,
    rootTtlMs,
    issuerTtlMs,
    leafProfile: Object.freeze({
      ttlMs: configuration.mtls.workloadCertTtlMs,
      skewMs: configuration.mtls.allowedClockSkewMs,
    }),
    rotation: rotationResult.settings,
    jwt: jwtSettings.jwt,
    oidc: Object.freeze({
      ...jwtSettings.oidc,
      tls: Object.freeze({
        enabled: oidcTls.enabled,
        certFile: oidcTls.certFile === undefined ? undefined : path.resolve(cwd, oidcTls.certFile),
        keyFile: oidcTls.keyFile === undefined ? undefined : path.resolve(cwd, oidcTls.keyFile),
      }),
    }),
    warnings: Object.freeze(warnings),
  };
  return { ok: true, settings: Object.freeze(settings) };
}

/** resolveServeSettings that throws ERR_CONFIG_INVALID listing every problem. */
export function buildServeSettings(
  flags: ParsedFlags,
  env: WardenEnv,
  configuration: DaprConfiguration,
  options: ResolveOptions = {},
): ServeSettings {
  const result = resolveServeSettings(flags, env, configuration, options);
  if (!result.ok)
    throw new WardenError(
      'ERR_CONFIG_INVALID',
      result.problems.map(formatConfigProblem).join('; '),
    );
  return result.settings;
}

/** What reading a `kubernetes` ConfigurationRef needs besides the name. */
export interface ConfigurationLoadContext {
  /** The CA's namespace (env NAMESPACE): the Configuration is read there. */
  readonly namespace: string;
  /** --kubeconfig, else KUBECONFIG; undefined means the pod's service account (in-cluster). */
  readonly kubeconfig: string | undefined;
}

export interface ValidateServeOptions extends ResolveOptions {
  /**
   * Reads the Configuration a ref names. The default handles every kind (kubernetes through
   * the API the context points at); tests supply one bound to a test server.
   */
  readonly loadConfiguration?: (
    ref: ConfigurationRef,
    context: ConfigurationLoadContext,
  ) => Promise<DaprConfiguration>;
}

export async function loadConfigurationFromRef(
  ref: ConfigurationRef,
  context?: ConfigurationLoadContext,
): Promise<DaprConfiguration> {
  switch (ref.kind) {
    case 'embedded':
      return defaultDaprConfiguration();
    case 'file': {
      // The YAML parser and schema load only when a file is given (issue 7: cold start).
      const { loadDaprConfigurationFile } = await import('../shared/config/dapr-configuration.js');
      return loadDaprConfigurationFile(ref.path);
    }
    case 'kubernetes': {
      if (context === undefined)
        throw new TypeError('loadConfigurationFromRef needs a context for a kubernetes ref');
      // The Kubernetes client loads only in kubernetes mode (issue 7: cold start).
      const { loadKubernetesConfiguration } = await import('../shared/config/kubernetes-configuration.js');
      const { loadKubeConfig } = await import('../shared/kube-client.js');
      return loadKubernetesConfiguration(ref.name, {
        kubeConfig: loadKubeConfig({
          inCluster: context.kubeconfig === undefined,
          kubeconfigEnv: context.kubeconfig,
        }),
        namespace: context.namespace,
      });
    }
  }
}

function problemsFromError(err: unknown, fallbackPath: string): ConfigProblem[] {
  if (!isWardenError(err)) throw err;
  const lines = err.message.split('\n');
  // Configuration errors list one problem per indented line after a heading.
  const listed = lines.slice(1).filter((l) => l.startsWith('  '));
  if (listed.length > 0) {
    const source = (lines[0] ?? '').replace(/: \d+ problems?:$/, '');
    return listed.map((l) => ({ path: source, message: l.trim() }));
  }
  return err.message.split('; ').map((message) => ({ path: fallbackPath, message }));
}

/**
 * The `--validate` path, and the first step of `warden serve`: parse argv, read the
 * Configuration, resolve the settings. Never starts anything. Reports every problem found
 * (flag syntax problems stop the run before the Configuration is read).
 */
export async function validateServeInvocation(
  argv: readonly string[],
  env: WardenEnv,
  options: ValidateServeOptions = {},
): Promise<
  { ok: true; settings: ServeSettings } | { ok: false; problems: readonly ConfigProblem[] }
> {
  let flags: ParsedFlags;
  try {
    flags = parseFlags(argv, SERVE_FLAGS);
  } catch (err) {
    return { ok: false, problems: problemsFromError(err, 'flags') };
  }
  if (flags.positionals.length > 0) {
    return {
      ok: false,
      problems: [
        { path: 'arguments', message: `unexpected argument "${flags.positionals[0] ?? ''}"` },
      ],
    };
  }
  const modeFlag = stringFlag(flags, 'mode');
  const mode: ServeMode =
    modeFlag === 'kubernetes' || modeFlag === 'standalone' ? modeFlag : defaultServeMode(env);
  const ref = configurationRefFor(mode, stringFlag(flags, 'config'));
  let configuration: DaprConfiguration;
  const configProblems: ConfigProblem[] = [];
  try {
    configuration = await (options.loadConfiguration ?? loadConfigurationFromRef)(ref, {
      namespace: env.namespace,
      kubeconfig: stringFlag(flags, 'kubeconfig') ?? env.kubeconfig,
    });
  } catch (err) {
    configProblems.push(...problemsFromError(err, '--config'));
    configuration = defaultDaprConfiguration(); // so flag problems are still reported alongside
  }
  const result = resolveServeSettings(flags, env, configuration, options);
  if (configProblems.length > 0) {
    return { ok: false, problems: [...configProblems, ...(result.ok ? [] : result.problems)] };
  }
  return result;
}
