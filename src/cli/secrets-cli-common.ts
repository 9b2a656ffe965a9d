import type { DestinationStream, LevelWithSilent } from 'pino';
import type { CliIo } from './command.js';
import { WardenError } from '../shared/errors.js';
import type { FlagSpecs, ParsedFlags } from '../shared/flags.js';
import { createLogger, type Logger } from '../shared/logger.js';
import type { WardenEnv } from '../shared/env.js';
import type { RuntimeMode } from '../secrets/store-factory.js';
import type { SecretsProblemsError} from '../secrets/problems.js';
import { formatProblem } from '../secrets/problems.js';

/** Flags the secrets commands share. */
export const SECRETS_COMMON_FLAGS: FlagSpecs = {
  'resources-path': { kind: 'list', description: 'A directory or file of Component manifests (repeatable)' },
  config: { kind: 'string', description: 'A Dapr Configuration file; its spec.secrets.scopes apply' },
  mode: { kind: 'string', description: 'standalone or kubernetes (kubernetes defaults secretKeyRefs to the "kubernetes" store); default: kubernetes inside a pod' },
  'log-level': { kind: 'string', description: 'debug, info, warn, error', default: 'info' },
  help: { kind: 'boolean', description: 'Show this help' },
};

export function runtimeMode(flags: ParsedFlags, env: WardenEnv): RuntimeMode {
  const mode = flags.values.mode as string | undefined;
  if (mode === undefined) return env.inCluster ? 'kubernetes' : 'standalone';
  if (mode !== 'standalone' && mode !== 'kubernetes') {
    throw new WardenError('ERR_CONFIG_INVALID', `flag -mode: "${mode}" must be standalone or kubernetes`);
  }
  return mode;
}

export function resourcesPaths(flags: ParsedFlags): readonly string[] {
  const paths = (flags.values['resources-path'] as readonly string[] | undefined) ?? [];
  if (paths.length === 0) throw new WardenError('ERR_CONFIG_INVALID', 'flag -resources-path is required');
  return paths;
}

export function cliLogger(flags: ParsedFlags, io: CliIo): Logger {
  const level = flags.values['log-level'] as string;
  if (!['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'].includes(level)) {
    throw new WardenError('ERR_CONFIG_INVALID', `flag -log-level: "${level}" is not a level`);
  }
  return createLogger({ level: level as LevelWithSilent, json: false, destination: io.stderr as unknown as DestinationStream });
}

/** Prints every problem of a failed resolution, one per line. */
export function writeProblems(io: CliIo, command: string, err: SecretsProblemsError): void {
  io.stderr.write(`warden ${command}: ${err.problems.length} problem${err.problems.length === 1 ? '' : 's'}:\n`);
  for (const problem of err.problems) io.stderr.write(`  - ${formatProblem(problem)}\n`);
}

/**
 * Resolves when the process is asked to stop (SIGINT or SIGTERM). Keeps the event loop
 * alive meanwhile: a pending promise alone does not.
 */
export function processShutdown(): Promise<void> {
  return new Promise((resolve) => {
    const keepAlive = setInterval(() => undefined, 1 << 30);
    const stop = (): void => {
      clearInterval(keepAlive);
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      resolve();
    };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
}
