import { createHash } from 'node:crypto';
import type { CliCommand, CliIo } from './command.js';
import { readEnv } from '../shared/env.js';
import { WardenError } from '../shared/errors.js';
import { formatFlagHelp, parseFlags, type FlagSpecs } from '../shared/flags.js';
import { SecretsProblemsError } from '../secrets/problems.js';
import { isSecretChangeSource } from '../secrets/secret-change-source.js';
import { resolveComponents, type ResolvedComponent } from '../secrets/resolve/resolve-components.js';
import { formatResolvedComponents, type ResolvedOutputFormat } from '../secrets/resolve/render-resolved.js';
import { cliLogger, processShutdown, resourcesPaths, runtimeMode, SECRETS_COMMON_FLAGS, writeProblems } from './secrets-cli-common.js';

const NAME = 'secrets resolve';

const FLAGS: FlagSpecs = {
  ...SECRETS_COMMON_FLAGS,
  reveal: { kind: 'boolean', description: 'Print secret values instead of "****"' },
  o: { kind: 'string', description: 'Output format: yaml or json', default: 'yaml' },
  output: { kind: 'string', description: 'Same as -o' },
  watch: { kind: 'boolean', description: 'Keep running and print again whenever a referenced secret changes' },
  'log-level': { kind: 'string', description: 'debug, info, warn, error', default: 'warn' },
};

/** Changes in stores come in bursts (a file rewritten twice); resolve once per burst. */
const WATCH_DEBOUNCE_MS = 100;

export interface SecretsResolveDependencies {
  /** Resolves when `--watch` should stop; the process's SIGINT/SIGTERM by default. */
  readonly untilShutdown?: () => Promise<void>;
}

function fingerprint(components: readonly ResolvedComponent[]): string {
  // held in memory only, to notice a change without printing values
  return createHash('sha256').update(formatResolvedComponents(components, { reveal: true, output: 'json' })).digest('hex');
}

export function createSecretsResolveCommand(deps: SecretsResolveDependencies = {}): CliCommand {
  return {
    name: NAME,
    summary: 'Print every Component with its secretKeyRef/envRef values resolved (masked unless --reveal)',
    async run(argv: readonly string[], io: CliIo): Promise<number> {
      const flags = parseFlags(argv, FLAGS);
      if (flags.values.help === true) {
        io.stdout.write(`Usage: warden ${NAME} --resources-path DIR [--config FILE] [--reveal] [-o yaml|json] [--watch]\n\n${formatFlagHelp(FLAGS)}\n`);
        return 0;
      }
      const output = ((flags.values.output as string | undefined) ?? (flags.values.o as string)) as ResolvedOutputFormat;
      if (output !== 'yaml' && output !== 'json') throw new WardenError('ERR_CONFIG_INVALID', `flag -o: "${String(output)}" must be yaml or json`);
      const reveal = flags.values.reveal === true;
      const env = readEnv(io.env);
      const logger = cliLogger(flags, io);
      const config = flags.values.config as string | undefined;

      let resolved;
      try {
        resolved = await resolveComponents({ resourcesPath: resourcesPaths(flags), config, mode: runtimeMode(flags, env), env, logger });
      } catch (err) {
        if (err instanceof SecretsProblemsError) {
          writeProblems(io, NAME, err);
          return 1;
        }
        throw err;
      }
      io.stdout.write(formatResolvedComponents(resolved.components, { reveal, output }));
      if (flags.values.watch !== true) {
        await resolved.close();
        return 0;
      }

      let last = fingerprint(resolved.components);
      let timer: NodeJS.Timeout | undefined;
      let running = Promise.resolve();
      const reprint = async (): Promise<void> => {
        try {
          const again = await resolved.refresh();
          const now = fingerprint(again);
          if (now === last) return;
          last = now;
          io.stderr.write(`warden ${NAME}: a referenced secret changed; resolved again\n`);
          io.stdout.write(`${output === 'yaml' ? '---\n' : ''}${formatResolvedComponents(again, { reveal, output })}`);
        } catch (err) {
          if (err instanceof SecretsProblemsError) writeProblems(io, NAME, err);
          else logger.error({ error: String(err) }, 'resolving again failed');
        }
      };
      const unsubscribe = resolved.stores.values().map((live) =>
        isSecretChangeSource(live.store)
          ? live.store.onSecretsChanged(() => {
              clearTimeout(timer);
              timer = setTimeout(() => {
                running = running.then(reprint);
              }, WATCH_DEBOUNCE_MS);
            })
          : () => undefined,
      );
      await (deps.untilShutdown ?? processShutdown)();
      clearTimeout(timer);
      for (const off of unsubscribe) off();
      await running;
      await resolved.close();
      return 0;
    },
  };
}

export const secretsResolveCommand: CliCommand = createSecretsResolveCommand();
