import type { CliCommand } from './command.js';
import { secretsResolveCommand } from './secrets-resolve.js';
import { secretsServeCommand } from './secrets-serve.js';

/** Every command, in the order `warden --help` lists them. Add one line per command. */
export const COMMANDS: readonly CliCommand[] = [
  secretsResolveCommand,
  secretsServeCommand,
];
