import { COMMANDS } from './commands.js';
import type { CliIo } from './command.js';
import { isWardenError } from '../shared/errors.js';

function usage(): string {
  const width = Math.max(...COMMANDS.map((c) => c.name.length), 8);
  const lines = COMMANDS.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`);
  return `Usage: warden <command> [flags]\n\nCommands:\n${lines.join('\n')}\n\nRun "warden <command> --help" for a command's flags.\n`;
}

export async function runCli(argv: readonly string[], io: CliIo): Promise<number> {
  const [first, ...rest] = argv;
  if (first === undefined || first === '--help' || first === '-h' || first === 'help') {
    io.stdout.write(usage());
    return first === undefined ? 2 : 0;
  }
  // `warden rotate prepare`: two-word commands are matched first.
  const second = rest[0];
  const two = second === undefined ? undefined : COMMANDS.find((c) => c.name === `${first} ${second}`);
  const command = two ?? COMMANDS.find((c) => c.name === first);
  if (!command) {
    io.stderr.write(`warden: unknown command "${first}"\n\n${usage()}`);
    return 2;
  }
  try {
    return await command.run(two ? rest.slice(1) : rest, io);
  } catch (err) {
    if (isWardenError(err)) {
      io.stderr.write(`warden ${command.name}: ${err.code}: ${err.message}\n`);
      return 1;
    }
    throw err;
  }
}

