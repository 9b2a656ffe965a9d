import { spawn, type ChildProcess } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The compiled CLI entry point (dist/src/cli/main.js). */
export const WARDEN_MAIN = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));

/**
 * `warden serve` as a child process (the real executable, its own event loop): what a crash,
 * an unhandled rejection or a kill -9 does to it is visible as an exit, and nothing it does
 * can be hidden by the test runner. Ports are ephemeral; they are read from the start-up line.
 */
export interface WardenChild {
  readonly process: ChildProcess;
  readonly grpcPort: number;
  readonly healthzPort: number;
  /** The warden process's own pid (from its log; differs from process.pid under a wrapper). */
  readonly wardenPid: number;
  readonly credentialsDir: string;
  /** Every stderr line so far (the JSON log, and any crash report). */
  readonly stderrLines: string[];
  /** Resolves with the exit code or signal once the child has exited. */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  anchorsPem(): Promise<string>;
  /** True while the child has not exited. */
  alive(): boolean;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves when it has exited. */
  stop(graceMs?: number): Promise<void>;
}

export interface WardenChildOptions {
  readonly credentialsDir: string;
  readonly flags?: readonly string[];
  readonly env?: Readonly<Record<string, string>>;
  /** Runs the command through `sh -c` with this prefix (e.g. `ulimit -f 0;`). */
  readonly shellPrefix?: string;
  /** Runs the command under this program and arguments (e.g. strace); exclusive with shellPrefix. */
  readonly wrapper?: readonly string[];
  readonly startTimeoutMs?: number;
}

/** Starts `warden serve` and waits for its "warden is serving" line (or its exit). */
export async function startWardenChild(options: WardenChildOptions): Promise<WardenChild> {
  const argv = [
    WARDEN_MAIN,
    'serve',
    '--issuer-credentials',
    options.credentialsDir,
    '--listen-address',
    '127.0.0.1',
    '--port',
    '0',
    '--healthz-port',
    '0',
    '--enable-metrics=false',
    '--workers',
    '1',
    '--log-as-json',
    ...(options.flags ?? []),
  ];
  const env = {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    NAMESPACE: 'warden-system',
    ...options.env,
  };
  const child =
    options.wrapper !== undefined
      ? spawn(
          options.wrapper[0] as string,
          [...options.wrapper.slice(1), process.execPath, ...argv],
          {
            env,
            stdio: ['ignore', 'pipe', 'pipe'],
          },
        )
      : options.shellPrefix === undefined
        ? spawn(process.execPath, argv, { env, stdio: ['ignore', 'pipe', 'pipe'] })
        : spawn(
            '/bin/sh',
            ['-c', `${options.shellPrefix} exec "$0" "$@"`, process.execPath, ...argv],
            { env, stdio: ['ignore', 'pipe', 'pipe'] },
          );
  const stderrLines: string[] = [];
  let buffered = '';
  let exitInfo: { code: number | null; signal: NodeJS.Signals | null } | null = null;
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.on('exit', (code, signal) => {
      exitInfo = { code, signal };
      resolve(exitInfo);
    });
  });
  const ports = await new Promise<{ grpc: number; healthz: number; pid: number }>(
    (resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`warden serve did not start:\n${stderrLines.join('\n')}`)),
        options.startTimeoutMs ?? 20_000,
      );
      child.stderr?.on('data', (chunk: Buffer) => {
        buffered += chunk.toString('utf8');
        let newline = buffered.indexOf('\n');
        while (newline !== -1) {
          const line = buffered.slice(0, newline);
          buffered = buffered.slice(newline + 1);
          stderrLines.push(line);
          if (line.includes('"warden is serving"')) {
            const parsed = JSON.parse(line) as { grpc: string; healthz: string; pid: number };
            clearTimeout(timer);
            resolve({
              grpc: Number(parsed.grpc.split(':').at(-1)),
              healthz: Number(parsed.healthz.split(':').at(-1)),
              pid: parsed.pid,
            });
          }
          newline = buffered.indexOf('\n');
        }
      });
      void exited.then((info) => {
        clearTimeout(timer);
        reject(
          new Error(
            `warden serve exited (${JSON.stringify(info)}) before serving:\n${[...stderrLines, buffered].join('\n')}`,
          ),
        );
      });
    },
  );
  return {
    process: child,
    grpcPort: ports.grpc,
    healthzPort: ports.healthz,
    wardenPid: ports.pid,
    credentialsDir: options.credentialsDir,
    stderrLines,
    exited,
    anchorsPem: () => readFile(path.join(options.credentialsDir, 'ca.crt'), 'utf8'),
    alive: () => exitInfo === null,
    async stop(graceMs = 5000) {
      if (exitInfo !== null) return;
      // Signal warden itself: a wrapper (strace) might not pass SIGTERM on.
      try {
        process.kill(ports.pid, 'SIGTERM');
      } catch {
        child.kill('SIGTERM');
      }
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        try {
          process.kill(ports.pid, 'SIGKILL');
        } catch {
          // already gone
        }
      }, graceMs);
      await exited;
      clearTimeout(timer);
    },
  };
}

/** Runs the warden CLI to completion; resolves with its exit code and output. */
export function runWardenCli(
  args: readonly string[],
  options: { env?: Readonly<Record<string, string>>; shellPrefix?: string } = {},
): Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }> {
  const env = {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    NAMESPACE: 'warden-system',
    ...options.env,
  };
  const child =
    options.shellPrefix === undefined
      ? spawn(process.execPath, [WARDEN_MAIN, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] })
      : spawn(
          '/bin/sh',
          ['-c', `${options.shellPrefix} exec "$0" "$@"`, process.execPath, WARDEN_MAIN, ...args],
          { env, stdio: ['ignore', 'pipe', 'pipe'] },
        );
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (d: Buffer) => (stdout += d.toString('utf8')));
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString('utf8')));
  return new Promise((resolve) => {
    child.on('exit', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
}
