import type { CliCommand } from './command.js';

/** Every command, in the order `warden --help` lists them. Add one line per command. */
export const COMMANDS: readonly CliCommand[] = [
];
