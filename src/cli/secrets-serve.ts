import { readFile } from 'node:fs/promises';
import { Registry } from 'prom-client';
import { sentrySpiffeId } from '../issuer/grpc/serving-certificate.js';
import {
  isTokenValidatorName,
  TOKEN_VALIDATOR_NUMBERS,
  type TokenValidatorName,
} from '../issuer/sidecar/sentry-client.js';
import type { RenewalTimer } from '../issuer/sidecar/svid-renewal.js';
import {
  isLoopbackAddress,
  SecretsApiServer,
  type SecretsApiTlsMaterial,
  type SecretsApiTransport,
} from '../secrets/api/secrets-api-server.js';
import { createSecretsMetrics } from '../secrets/metrics.js';
import { SecretsProblemsError } from '../secrets/problems.js';
import { resolveComponents, type ResolvedResources } from '../secrets/resolve/resolve-components.js';
import { systemClock, type Clock } from '../shared/clock.js';
import { readEnv, type WardenEnv } from '../shared/env.js';
import { describeError, isWardenError, WardenError } from '../shared/errors.js';
import { formatFlagHelp, parseFlags, type FlagSpecs, type ParsedFlags } from '../shared/flags.js';
import { Readiness, startHealthServer } from '../shared/health-server.js';
import type { HttpListener } from '../shared/http-listener.js';
import type { Logger } from '../shared/logger.js';
import { startMetricsServer } from '../shared/metrics-server.js';
import type { CliCommand } from './command.js';
import { cliLogger, processShutdown, resourcesPaths, runtimeMode, SECRETS_COMMON_FLAGS, writeProblems } from './secrets-cli-common.js';
import { obtainSecretsServerSvid, type SecretsServerSvid, type TokenSource } from './secrets-server-svid.js';

const NAME = 'secrets serve';

/** Next to `warden serve` (8080/9090) on one host without a clash. */
export const SECRETS_SERVE_HEALTHZ_PORT = 8081;
export const SECRETS_SERVE_METRICS_PORT = 9091;
export const SECRETS_SERVE_APP_ID = 'warden-secrets';

const SVID_FLAGS = ['sentry-address', 'trust-anchors-file', 'sentry-spiffe-id', 'app-id', 'namespace', 'token', 'token-file', 'token-validator'] as const;
const TLS_FILE_FLAGS = ['tls-cert-file', 'tls-key-file', 'tls-ca-file'] as const;

export const SECRETS_SERVE_FLAGS: FlagSpecs = Object.freeze({
  ...SECRETS_COMMON_FLAGS,
  port: { kind: 'number', description: 'Port of the secrets API (0 picks a free one)', default: '3500' },
  'listen-address': { kind: 'string', description: 'Address to listen on', default: '127.0.0.1' },
  'sentry-address': {
    kind: 'string',
    description: "host:port of Warden's CA, from which the server obtains its own SVID (the default transport)",
    default: '127.0.0.1:50001',
  },
  'trust-anchors-file': {
    kind: 'string',
    description: "PEM file of the CA's trust anchors (its ca.crt): required to obtain an SVID; client certificates must chain to these or to the anchors the CA returns; re-read at each renewal",
  },
  'sentry-spiffe-id': {
    kind: 'string',
    description: "SPIFFE ID the CA's TLS certificate must carry (default spiffe://localhost/ns/<NAMESPACE or default>/dapr-sentry)",
  },
  'app-id': { kind: 'string', description: 'App id of the server’s own SVID', default: SECRETS_SERVE_APP_ID },
  namespace: { kind: 'string', description: 'Namespace of the server’s own SVID (default: env NAMESPACE, else default)' },
  token: { kind: 'string', description: 'Identity token for the CA’s validator (visible in the process list: prefer --token-file)' },
  'token-file': { kind: 'string', description: 'File holding the identity token; re-read at each renewal' },
  'token-validator': {
    kind: 'string',
    description: `Validator the CA should use: ${Object.keys(TOKEN_VALIDATOR_NUMBERS).join(' | ')} (unknown = the CA's default)`,
    default: 'unknown',
  },
  'tls-cert-file': { kind: 'string', description: 'Instead of an SVID: PEM server certificate (and chain) for mutual TLS (SIGHUP re-reads the files)' },
  'tls-key-file': { kind: 'string', description: 'PEM private key of the server certificate' },
  'tls-ca-file': { kind: 'string', description: 'PEM trust anchors client certificates must chain to' },
  'trust-domain': {
    kind: 'string',
    description: 'Refuse client SPIFFE IDs outside this trust domain; with an SVID also the trust domain it is issued in (default public there, and clients must share it)',
  },
  'insecure-http': { kind: 'boolean', description: 'Serve plain HTTP without client authentication (loopback addresses only; development)' },
  'healthz-port': { kind: 'number', description: 'Port for GET /healthz (every store ready, the API listening, the SVID valid)', default: String(SECRETS_SERVE_HEALTHZ_PORT) },
  'healthz-listen-address': { kind: 'string', description: 'Listen address for /healthz (default: as --listen-address)' },
  'enable-metrics': { kind: 'boolean', description: 'Serve Prometheus metrics (warden_secrets_*)', default: 'true' },
  'metrics-port': { kind: 'number', description: 'Port for GET /metrics', default: String(SECRETS_SERVE_METRICS_PORT) },
  'metrics-listen-address': { kind: 'string', description: 'Listen address for /metrics (default: as --listen-address)' },
});

export interface SecretsServeDependencies {
  /** Resolves when the server should stop; SIGINT/SIGTERM by default. */
  readonly untilShutdown?: () => Promise<void>;
  /** Called once everything listens (tests learn the ports this way). */
  readonly onListening?: (server: SecretsApiServer, extras: SecretsServeListeners) => void;
  /** Decides SVID validity and renewal (default the system clock). */
  readonly clock?: Clock;
  /** How SVID renewal waits (default real, unref'd timers). */
  readonly renewalTimer?: RenewalTimer;
}

/** What else `secrets serve` started, besides the API server. */
export interface SecretsServeListeners {
  readonly health: HttpListener;
  readonly metrics: HttpListener | null;
  /** The server's own SVID (null unless it came from the CA). */
  readonly svid: SecretsServerSvid | null;
  readonly readiness: Readiness;
}

type TransportSettings =
  | { readonly kind: 'insecure-http' }
  | { readonly kind: 'tls-files'; readonly trustDomain: string | undefined }
  | {
      readonly kind: 'svid';
      readonly sentryAddress: string;
      readonly trustAnchorsFile: string;
      readonly sentrySpiffeId: string;
      readonly appId: string;
      readonly namespace: string;
      readonly trustDomain: string | undefined;
      readonly token: TokenSource;
      readonly tokenValidator: TokenValidatorName;
    };

interface ListenerSettings {
  readonly listenAddress: string;
  readonly port: number;
}

interface ServeSettings {
  readonly transport: TransportSettings;
  readonly api: ListenerSettings;
  readonly healthz: ListenerSettings;
  readonly metrics: ListenerSettings | null;
}

function text(flags: ParsedFlags, name: string): string | undefined {
  const value = flags.values[name];
  return typeof value === 'string' && value.trim() !== '' ? value : undefined;
}

/** Every flag problem at once (ERR_CONFIG_INVALID), or the settings. */
function settingsFrom(flags: ParsedFlags, env: WardenEnv): ServeSettings {
  const problems: string[] = [];
  const insecure = flags.values['insecure-http'] === true;
  const tlsGiven = TLS_FILE_FLAGS.filter((f) => flags.given.has(f));
  const svidGiven = SVID_FLAGS.filter((f) => flags.given.has(f));
  const listenAddress = flags.values['listen-address'] as string;

  const port = (name: string): number => {
    const value = flags.values[name] as number;
    if (!Number.isInteger(value) || value < 0 || value > 65535) problems.push(`-${name} ${value} is not a port number`);
    return value;
  };
  const api = { listenAddress, port: port('port') };
  const healthz = { listenAddress: text(flags, 'healthz-listen-address') ?? listenAddress, port: port('healthz-port') };
  const metrics = flags.values['enable-metrics'] === true ? { listenAddress: text(flags, 'metrics-listen-address') ?? listenAddress, port: port('metrics-port') } : null;

  let transport: TransportSettings | undefined;
  if (insecure) {
    if (tlsGiven.length > 0) problems.push('-insecure-http cannot be combined with -tls-* files');
    if (svidGiven.length > 0) problems.push(`-insecure-http cannot be combined with ${svidGiven.map((f) => `-${f}`).join(', ')}`);
    if (!isLoopbackAddress(listenAddress)) problems.push(`-insecure-http is only allowed on a loopback -listen-address, not ${listenAddress}`);
    transport = { kind: 'insecure-http' };
  } else if (tlsGiven.length > 0) {
    if (tlsGiven.length !== TLS_FILE_FLAGS.length) problems.push('mutual TLS from files needs all of -tls-cert-file, -tls-key-file and -tls-ca-file');
    if (svidGiven.length > 0) problems.push(`-tls-* files cannot be combined with ${svidGiven.map((f) => `-${f}`).join(', ')} (an SVID from the CA)`);
    transport = { kind: 'tls-files', trustDomain: text(flags, 'trust-domain') };
  } else {
    const trustAnchorsFile = text(flags, 'trust-anchors-file');
    if (trustAnchorsFile === undefined) {
      problems.push("mutual TLS needs -trust-anchors-file (the CA's ca.crt, to obtain an SVID from the CA at -sentry-address) or -tls-cert-file, -tls-key-file and -tls-ca-file (or -insecure-http on loopback)");
    }
    const tokenValidator = text(flags, 'token-validator') ?? 'unknown';
    if (!isTokenValidatorName(tokenValidator)) {
      problems.push(`flag -token-validator: "${tokenValidator}" is not one of ${Object.keys(TOKEN_VALIDATOR_NUMBERS).join(', ')}`);
    }
    const token = flags.values.token as string | undefined;
    const tokenFile = text(flags, 'token-file');
    if (token !== undefined && tokenFile !== undefined) problems.push('flags -token and -token-file exclude each other');
    let pinned = text(flags, 'sentry-spiffe-id');
    if (pinned === undefined) {
      try {
        pinned = sentrySpiffeId('localhost', env.namespace);
      } catch (err) {
        if (!isWardenError(err)) throw err;
        problems.push(`the CA's default SPIFFE ID from NAMESPACE: ${err.message}; set -sentry-spiffe-id`);
      }
    }
    transport = {
      kind: 'svid',
      sentryAddress: flags.values['sentry-address'] as string,
      trustAnchorsFile: trustAnchorsFile ?? '',
      sentrySpiffeId: pinned ?? '',
      appId: text(flags, 'app-id') ?? SECRETS_SERVE_APP_ID,
      namespace: text(flags, 'namespace') ?? env.namespace,
      trustDomain: text(flags, 'trust-domain'),
      token: token !== undefined ? { kind: 'flag', token } : tokenFile !== undefined ? { kind: 'file', file: tokenFile } : { kind: 'none' },
      tokenValidator: tokenValidator as TokenValidatorName,
    };
  }
  const ports = [['port', api], ['healthz-port', healthz], ...(metrics ? [['metrics-port', metrics] as const] : [])] as const;
  for (let i = 0; i < ports.length; i++) {
    for (let j = i + 1; j < ports.length; j++) {
      const [a, x] = ports[i] as (typeof ports)[number];
      const [b, y] = ports[j] as (typeof ports)[number];
      if (x.port !== 0 && x.port === y.port && x.listenAddress === y.listenAddress) problems.push(`-${a} and -${b} are both ${x.port}`);
    }
  }
  if (flags.positionals.length > 0) problems.push(`unexpected argument "${flags.positionals[0] ?? ''}"`);
  if (problems.length > 0 || transport === undefined) throw new WardenError('ERR_CONFIG_INVALID', problems.join('; '));
  return { transport, api, healthz, metrics };
}

async function readTlsFiles(flags: ParsedFlags): Promise<SecretsApiTlsMaterial> {
  const [cert, key, ca] = await Promise.all(
    TLS_FILE_FLAGS.map(async (flag) => {
      const file = flags.values[flag] as string;
      try {
        return await readFile(file);
      } catch (err) {
        throw new WardenError('ERR_CONFIG_INVALID', `flag -${flag}: ${file} cannot be read (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
      }
    }),
  );
  return { cert: cert as Buffer, key: key as Buffer, ca: ca as Buffer };
}

/** Undoes what start-up did so far, newest first, when a later step fails. */
class Cleanups {
  readonly #steps: Array<() => Promise<unknown> | unknown> = [];
  add(step: () => Promise<unknown> | unknown): void {
    this.#steps.push(step);
  }
  async run(logger: Logger): Promise<void> {
    for (const step of this.#steps.splice(0).reverse()) {
      try {
        await step();
      } catch (err) {
        logger.warn(`shutting down: ${describeError(err)}`);
      }
    }
  }
}

async function listenOrFail(what: string, start: () => Promise<HttpListener>): Promise<HttpListener> {
  try {
    return await start();
  } catch (err) {
    throw new WardenError('ERR_CONFIG_INVALID', `cannot listen for ${what}: ${(err as Error).message}`);
  }
}

export function createSecretsServeCommand(deps: SecretsServeDependencies = {}): CliCommand {
  return {
    name: NAME,
    summary: 'Serve Dapr’s secrets API (GET /v1.0/secrets/...) over mutual TLS with an SVID from Warden’s CA, with secret scoping',
    async run(argv: readonly string[], io): Promise<number> {
      const flags = parseFlags(argv, SECRETS_SERVE_FLAGS);
      if (flags.values.help === true) {
        io.stdout.write(
          `Usage: warden ${NAME} --resources-path DIR [--config FILE] [--port 3500] [--listen-address 127.0.0.1]\n` +
            `         (--trust-anchors-file ca.crt [--sentry-address 127.0.0.1:50001] [--app-id ${SECRETS_SERVE_APP_ID}]\n` +
            `          | --tls-cert-file F --tls-key-file F --tls-ca-file F | --insecure-http)\n\n${formatFlagHelp(SECRETS_SERVE_FLAGS)}\n`,
        );
        return 0;
      }
      const env = readEnv(io.env);
      const settings = settingsFrom(flags, env);
      const logger = cliLogger(flags, io);
      const clock = deps.clock ?? systemClock;
      const cleanups = new Cleanups();
      try {
        let svid: SecretsServerSvid | null = null;
        let transport: SecretsApiTransport;
        const wanted = settings.transport;
        if (wanted.kind === 'insecure-http') {
          transport = { kind: 'insecure-http' };
        } else if (wanted.kind === 'tls-files') {
          transport = { kind: 'mtls', tls: await readTlsFiles(flags), ...(wanted.trustDomain === undefined ? {} : { trustDomain: wanted.trustDomain }) };
        } else {
          svid = await obtainSecretsServerSvid({
            sentryAddress: wanted.sentryAddress,
            trustAnchorsFile: wanted.trustAnchorsFile,
            sentrySpiffeId: wanted.sentrySpiffeId,
            appId: wanted.appId,
            namespace: wanted.namespace,
            ...(wanted.trustDomain === undefined ? {} : { trustDomain: wanted.trustDomain }),
            token: wanted.token,
            tokenValidator: wanted.tokenValidator,
            clock,
            logger,
            ...(deps.renewalTimer === undefined ? {} : { renewalTimer: deps.renewalTimer }),
          });
          const running = svid;
          cleanups.add(() => running.stop());
          // Callers must be in the server's own trust domain: the anchors are shared by every
          // trust domain the CA issues in, so without this check any of them would do.
          transport = { kind: 'mtls', tls: svid.tlsMaterial(), trustDomain: svid.current().identity.trustDomain };
        }

        const metricsRegistry = new Registry();
        let resolved: ResolvedResources;
        try {
          resolved = await resolveComponents({
            resourcesPath: resourcesPaths(flags),
            config: flags.values.config as string | undefined,
            mode: runtimeMode(flags, env),
            env,
            logger,
            clock,
            metricsRegistry,
          });
        } catch (err) {
          if (err instanceof SecretsProblemsError) {
            writeProblems(io, NAME, err);
            await cleanups.run(logger);
            return 1;
          }
          throw err;
        }
        cleanups.add(() => resolved.close());

        const server = new SecretsApiServer({
          stores: resolved.stores,
          scopes: resolved.scopes,
          transport,
          listenAddress: settings.api.listenAddress,
          port: settings.api.port,
          logger,
          metrics: createSecretsMetrics(metricsRegistry),
        });
        try {
          await server.listen();
        } catch (err) {
          throw new WardenError('ERR_CONFIG_INVALID', `cannot listen: ${(err as Error).message}`);
        }
        cleanups.add(() => server.close());
        svid?.startRenewal((material) => server.setTlsMaterial(material));

        const readiness = new Readiness();
        readiness.register('secrets-api', () => server.address !== undefined);
        if (svid) {
          const current = svid;
          readiness.register('svid', () => current.valid());
        }
        for (const live of resolved.stores.values()) readiness.register(`store:${live.name}`, () => live.store.ready());
        const health = await listenOrFail('/healthz', () => startHealthServer({ readiness, ...settings.healthz }));
        cleanups.add(() => health.close());
        const metricsConfig = settings.metrics;
        const metrics = metricsConfig ? await listenOrFail('/metrics', () => startMetricsServer({ registry: metricsRegistry, ...metricsConfig })) : null;
        if (metrics) cleanups.add(() => metrics.close());

        // SIGHUP re-reads the TLS files: whoever renews the certificate only has to signal.
        const reloadTls = (): void => {
          if (wanted.kind !== 'tls-files') return;
          readTlsFiles(flags).then(
            (tls) => server.setTlsMaterial(tls),
            (err: unknown) => logger.error({ error: (err as Error).message }, 'reloading TLS files failed; keeping the current ones'),
          );
        };
        process.on('SIGHUP', reloadTls);
        cleanups.add(() => process.off('SIGHUP', reloadTls));
        logger.info(
          {
            api: `${server.address?.address}:${server.address?.port}`,
            transport: wanted.kind,
            spiffeId: svid?.current().spiffeId,
            healthz: `${health.address}:${health.port}`,
            metrics: metrics ? `${metrics.address}:${metrics.port}` : 'disabled',
            stores: resolved.stores.names(),
          },
          'warden secrets serve is serving',
        );
        deps.onListening?.(server, { health, metrics, svid, readiness });
        await (deps.untilShutdown ?? processShutdown)();
      } finally {
        await cleanups.run(logger);
      }
      return 0;
    },
  };
}

export const secretsServeCommand: CliCommand = createSecretsServeCommand();
