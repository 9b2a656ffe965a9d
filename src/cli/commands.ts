import type { CliCommand } from './command.js';
import { initCommand } from './init-command.js';
import { requestCommand } from './request-command.js';
import { rotateActivateCommand } from './rotate-activate-command.js';
import { rotatePrepareCommand } from './rotate-prepare-command.js';
import { rotateRetireCommand } from './rotate-retire-command.js';
import { rotateStatusCommand } from './rotate-status-command.js';
import { secretsResolveCommand } from './secrets-resolve.js';
import { secretsServeCommand } from './secrets-serve.js';
import { serveCommand } from './serve-command.js';
import { statusCommand } from './status-command.js';

/** Every command, in the order `warden --help` lists them. Add one line per command. */
export const COMMANDS: readonly CliCommand[] = [
  serveCommand,
  initCommand,
  statusCommand,
  rotatePrepareCommand,
  rotateActivateCommand,
  rotateRetireCommand,
  rotateStatusCommand,
  requestCommand,
  secretsResolveCommand,
  secretsServeCommand,
];
