import { execFile } from 'node:child_process';

export interface OpensslResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs the `openssl` CLI (an independent implementation) and never throws on a non-zero exit. */
export function openssl(
  args: readonly string[],
  options: { cwd?: string; input?: string } = {},
): Promise<OpensslResult> {
  return new Promise((resolve, reject) => {
    const child = execFile(
      'openssl',
      [...args],
      { cwd: options.cwd, encoding: 'utf8', timeout: 20_000 },
      (err, stdout, stderr) => {
        if (err && typeof (err as NodeJS.ErrnoException).code === 'string') {
          reject(err); // openssl missing or not runnable: a broken environment, not a verdict
          return;
        }
        const code = err ? ((err as { code?: number }).code ?? 1) : 0;
        resolve({ code, stdout, stderr });
      },
    );
    if (options.input !== undefined) child.stdin?.end(options.input);
  });
}

/** Like openssl() but throws with stderr when the command fails (for fixture building). */
export async function opensslOk(
  args: readonly string[],
  options: { cwd?: string; input?: string } = {},
): Promise<string> {
  const result = await openssl(args, options);
  if (result.code !== 0)
    throw new Error(`openssl ${args.join(' ')} failed (${result.code}): ${result.stderr}`);
  return result.stdout;
}
