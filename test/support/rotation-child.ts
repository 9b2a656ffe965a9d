// A separate process for crash tests of rotation steps:
//   node rotation-child.js <prepare|activate|retire> <dir> <replace step>
// runs the step (activate and retire forced) on the file store in <dir>, SIGKILLing itself
// right after the given step of the store's replace() (see FileReplaceStep). Prints one
// JSON line {changed, phase} if it was not killed.
import { createFileTrustStore, type FileReplaceStep } from '../../src/ca/file-trust-store.js';
import { DEFAULT_ROTATION_POLICY } from '../../src/ca/rotation/rotation-policy.js';
import {
  activateRotation,
  prepareRotation,
  retireRotation,
  type RotationContext,
} from '../../src/ca/rotation/rotation-steps.js';
import { isWardenError } from '../../src/shared/errors.js';

async function main(): Promise<number> {
  const [step, dir, crashAt] = process.argv.slice(2);
  if (!step || !dir || !crashAt)
    throw new TypeError('usage: rotation-child.js <step> <dir> <replace step>');
  const store = createFileTrustStore({
    directory: dir,
    onReplaceStep: (reached: FileReplaceStep) => {
      if (reached === crashAt) process.kill(process.pid, 'SIGKILL');
    },
  });
  const context: RotationContext = { store, policy: DEFAULT_ROTATION_POLICY };
  const result =
    step === 'prepare'
      ? await prepareRotation(context)
      : step === 'activate'
        ? await activateRotation(context, { force: true })
        : step === 'retire'
          ? await retireRotation(context, { force: true })
          : null;
  if (!result) throw new TypeError(`unknown step ${step}`);
  process.stdout.write(
    `${JSON.stringify({ changed: result.changed, phase: result.state.phase })}\n`,
  );
  return 0;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    if (isWardenError(err))
      process.stdout.write(`${JSON.stringify({ code: err.code, message: err.message })}\n`);
    else
      process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exitCode = 1;
  },
);
