import { readFile } from 'node:fs/promises';
import type { CliCommand, CliIo } from './command.js';
import { readEnv } from '../shared/env.js';
import { WardenError } from '../shared/errors.js';
import { formatFlagHelp, parseFlags, type FlagSpecs, type ParsedFlags } from '../shared/flags.js';
import { Registry } from 'prom-client';
import { SecretsProblemsError } from '../secrets/problems.js';
import { resolveComponents } from '../secrets/resolve/resolve-components.js';
import { createSecretsMetrics } from '../secrets/metrics.js';
import { isLoopbackAddress, SecretsApiServer, type SecretsApiTlsMaterial, type SecretsApiTransport } from '../secrets/api/secrets-api-server.js';
import { cliLogger, processShutdown, resourcesPaths, runtimeMode, SECRETS_COMMON_FLAGS, writeProblems } from './secrets-cli-common.js';

const NAME = 'secrets serve';

const FLAGS: FlagSpecs = {
  ...SECRETS_COMMON_FLAGS,
  port: { kind: 'number', description: 'Port of the secrets API (0 picks a free one)', default: '3500' },
  'listen-address': { kind: 'string', description: 'Address to listen on', default: '127.0.0.1' },
  'tls-cert-file': { kind: 'string', description: 'PEM server certificate (and chain) for mutual TLS' },
  'tls-key-file': { kind: 'string', description: 'PEM private key of the server certificate' },
  'tls-ca-file': { kind: 'string', description: 'PEM trust anchors client certificates must chain to' },
  'trust-domain': { kind: 'string', description: 'Refuse client SPIFFE IDs outside this trust domain' },
  'insecure-http': { kind: 'boolean', description: 'Serve plain HTTP without client authentication (loopback addresses only; development)' },
};

export interface SecretsServeDependencies {
  /** Resolves when the server should stop; SIGINT/SIGTERM by default. */
  readonly untilShutdown?: () => Promise<void>;
  /** Called once the server listens (tests learn the port this way). */
  readonly onListening?: (server: SecretsApiServer) => void;
}

async function readTlsFiles(flags: ParsedFlags): Promise<SecretsApiTlsMaterial> {
  const files = ['tls-cert-file', 'tls-key-file', 'tls-ca-file'] as const;
  const [cert, key, ca] = await Promise.all(
    files.map(async (flag) => {
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

function transportProblems(flags: ParsedFlags): string[] {
  const problems: string[] = [];
  const tlsGiven = ['tls-cert-file', 'tls-key-file', 'tls-ca-file'].filter((f) => flags.values[f] !== undefined);
  const insecure = flags.values['insecure-http'] === true;
  if (insecure && tlsGiven.length > 0) problems.push('-insecure-http cannot be combined with -tls-* files');
  if (!insecure && tlsGiven.length !== 3) problems.push('mutual TLS needs -tls-cert-file, -tls-key-file and -tls-ca-file (or -insecure-http on loopback)');
  const address = flags.values['listen-address'] as string;
  if (insecure && !isLoopbackAddress(address)) problems.push(`-insecure-http is only allowed on a loopback -listen-address, not ${address}`);
  const port = flags.values.port as number;
  if (!Number.isInteger(port) || port < 0 || port > 65535) problems.push(`-port ${port} is not a port number`);
  return problems;
}

export function createSecretsServeCommand(deps: SecretsServeDependencies = {}): CliCommand {
  return {
    name: NAME,
    summary: 'Serve Dapr’s secrets API (GET /v1.0/secrets/...) over mutual TLS with secret scoping',
    async run(argv: readonly string[], io: CliIo): Promise<number> {
      const flags = parseFlags(argv, FLAGS);
      if (flags.values.help === true) {
        io.stdout.write(
          `Usage: warden ${NAME} --resources-path DIR [--config FILE] [--port 3500] [--listen-address 127.0.0.1]\n` +
            `         (--tls-cert-file F --tls-key-file F --tls-ca-file F | --insecure-http)\n\n${formatFlagHelp(FLAGS)}\n`,
        );
        return 0;
      }
      const problems = transportProblems(flags);
      if (problems.length > 0) throw new WardenError('ERR_CONFIG_INVALID', problems.join('; '));
      const env = readEnv(io.env);
      const logger = cliLogger(flags, io);
      const insecure = flags.values['insecure-http'] === true;
      const trustDomain = flags.values['trust-domain'] as string | undefined;
      const transport: SecretsApiTransport = insecure
        ? { kind: 'insecure-http' }
        : { kind: 'mtls', tls: await readTlsFiles(flags), ...(trustDomain === undefined ? {} : { trustDomain }) };
      const metricsRegistry = new Registry();

      let resolved;
      try {
        resolved = await resolveComponents({
          resourcesPath: resourcesPaths(flags),
          config: flags.values.config as string | undefined,
          mode: runtimeMode(flags, env),
          env,
          logger,
          metricsRegistry,
        });
      } catch (err) {
        if (err instanceof SecretsProblemsError) {
          writeProblems(io, NAME, err);
          return 1;
        }
        throw err;
      }
      const server = new SecretsApiServer({
        stores: resolved.stores,
        scopes: resolved.scopes,
        transport,
        listenAddress: flags.values['listen-address'] as string,
        port: flags.values.port as number,
        logger,
        metrics: createSecretsMetrics(metricsRegistry),
      });
      try {
        await server.listen();
      } catch (err) {
        await resolved.close();
        throw new WardenError('ERR_CONFIG_INVALID', `cannot listen: ${(err as Error).message}`);
      }
      // SIGHUP re-reads the TLS files: whoever renews the certificate only has to signal.
      const reloadTls = (): void => {
        if (insecure) return;
        readTlsFiles(flags).then(
          (tls) => server.setTlsMaterial(tls),
          (err: unknown) => logger.error({ error: (err as Error).message }, 'reloading TLS files failed; keeping the current ones'),
        );
      };
      process.on('SIGHUP', reloadTls);
      deps.onListening?.(server);
      try {
        await (deps.untilShutdown ?? processShutdown)();
      } finally {
        process.off('SIGHUP', reloadTls);
        await server.close();
        await resolved.close();
      }
      return 0;
    },
  };
}

export const secretsServeCommand: CliCommand = createSecretsServeCommand();
