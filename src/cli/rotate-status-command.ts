import { readJwtKeyStatus } from '../ca/rotation/credential-rotation.js';
import { readRotationView } from '../ca/rotation/rotation-steps.js';
import { buildRotationStatus } from '../ca/rotation/rotation-status.js';
import { systemClock } from '../shared/clock.js';
import { readEnv } from '../shared/env.js';
import { formatFlagHelp, parseFlags } from '../shared/flags.js';
import type { CliCommand } from './command.js';
import {
  formatJwtKeyStatus,
  formatRotationStatus,
  outputFlag,
  ROTATE_EXIT,
  ROTATION_FLAGS,
  rotationContextFromFlags,
} from './rotation-flags.js';
import { wantsHelp } from './trust-material-flags.js';

/** `warden rotate status`: the phase, the roots, and when each next step is allowed. */
export const rotateStatusCommand: CliCommand = {
  name: 'rotate status',
  summary: 'Show the rotation phase, the roots, the JWT key, and when each next step is allowed',
  async run(argv, io) {
    if (wantsHelp(argv)) {
      io.stdout.write(
        `Usage: warden rotate status [flags]\n\n${rotateStatusCommand.summary}.\n\n${formatFlagHelp(ROTATION_FLAGS)}\n`,
      );
      return ROTATE_EXIT.ok;
    }
    const flags = parseFlags(argv, ROTATION_FLAGS);
    if (flags.positionals.length > 0) {
      io.stderr.write(`warden rotate status: unexpected argument "${flags.positionals[0]}"\n`);
      return ROTATE_EXIT.usage;
    }
    const output = outputFlag(flags);
    const context = await rotationContextFromFlags(flags, systemClock, readEnv(io.env));
    const report = buildRotationStatus(
      await readRotationView(context),
      context.policy,
      systemClock.now(),
    );
    const jwt = await readJwtKeyStatus(context);
    io.stdout.write(
      output === 'json'
        ? `${JSON.stringify({ ...report, jwt }, null, 2)}\n`
        : formatRotationStatus(report) + (jwt ? formatJwtKeyStatus(jwt) : ''),
    );
    return ROTATE_EXIT.ok;
  },
};
