// A separate process for races and crash tests:
//   node file-ca-child.js start <dir> <startAtEpochMs>
//     waits until startAtEpochMs (so racers begin together), runs startFileCa, prints one
//     JSON line {origin, fingerprint} or {code, message}, and exits.
//   node file-ca-child.js crash-at <dir> <step>
//     generates material and creates it (with root.key) in <dir>, SIGKILLing itself right after <step>.
import { startFileCa } from '../../src/ca/file-ca.js';
import { createFileTrustStore, type FileCreateStep } from '../../src/ca/file-trust-store.js';
import { generateTrustMaterial } from '../../src/ca/generate.js';
import { isWardenError } from '../../src/shared/errors.js';

async function main(): Promise<number> {
  const [mode, dir, arg] = process.argv.slice(2);
  if (!dir) throw new TypeError('usage: file-ca-child.js start|crash-at <dir> <arg>');
  if (mode === 'start') {
    const delay = Number(arg ?? 0) - Date.now();
    if (delay > 0) await new Promise((r) => setTimeout(r, delay));
    const ca = await startFileCa({ credentialsDir: dir, trustDomain: 'example.org' });
    const root = ca.current().anchors[0];
    process.stdout.write(
      `${JSON.stringify({ origin: ca.origin, fingerprint: root?.fingerprint256 })}\n`,
    );
    await ca.close();
    return 0;
  }
  if (mode === 'crash-at') {
    const step = arg as FileCreateStep;
    const store = createFileTrustStore({
      directory: dir,
      onCreateStep: (reached) => {
        if (reached === step) process.kill(process.pid, 'SIGKILL');
      },
    });
    const { material, root } = await generateTrustMaterial({ trustDomain: 'example.org' });
    const result = await store.create(material, { rootKey: root.privateKeyPem });
    process.stdout.write(`${JSON.stringify({ result })}\n`);
    return 0;
  }
  throw new TypeError(`unknown mode ${String(mode)}`);
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
