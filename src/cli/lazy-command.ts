import type { CliCommand } from './command.js';

/**
 * A command whose module loads when it runs. `warden serve` is what must start fast (issue 7:
 * cold start ≤ 300 ms); the other commands pull in @peculiar/x509, YAML and the secrets block,
 * which `serve` never needs. Name and summary are repeated here for `warden --help`; a test
 * checks them against the loaded command.
 */
export interface LazyCliCommand extends CliCommand {
  load(): Promise<CliCommand>;
}

export function lazyCommand(
  name: string,
  summary: string,
  load: () => Promise<CliCommand>,
): LazyCliCommand {
  let loaded: Promise<CliCommand> | null = null;
  const loadOnce = (): Promise<CliCommand> => (loaded ??= load());
  return Object.freeze({
    name,
    summary,
    load: loadOnce,
    async run(argv: readonly string[], io: Parameters<CliCommand['run']>[1]): Promise<number> {
      return (await loadOnce()).run(argv, io);
    },
  });
}
