import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * The real `warden` executable (dist/src/cli/main.js) as a child process. Servers bind port 0
 * and the ports are read back from the "warden is serving" log line: no free-port guess that
 * another process could take between the guess and the bind.
 */

export const WARDEN_MAIN = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));

/** A minimal environment: nothing from the test runner (no KUBERNETES_*, no NAMESPACE) leaks in. */
export function childEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  return { PATH: process.env.PATH ?? '/usr/bin:/bin', ...extra };
}

export interface WardenRun {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs `warden <args>` to completion. */
export function runWarden(
  args: readonly string[],
  options: { cwd: string; env?: NodeJS.ProcessEnv; timeoutMs?: number },
): Promise<WardenRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [WARDEN_MAIN, ...args], {
      cwd: options.cwd,
      env: childEnv(options.env),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 20_000);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

export interface ServeChild {
  readonly process: ChildProcess;
  readonly cwd: string;
  readonly credentialsDir: string;
  readonly anchorsFile: string;
  readonly grpcAddress: string;
  readonly grpcPort: number;
  readonly healthzPort: number;
  readonly metricsPort: number;
  /** Everything the child wrote to stderr (its logs) so far. */
  stderr(): string;
  stdout(): string;
  /** Resolves when the child has exited. */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Sends `signal` (default SIGTERM) and waits for the exit; SIGKILLs after `timeoutMs`. */
  stop(
    signal?: NodeJS.Signals,
    timeoutMs?: number,
  ): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

interface ServingLine {
  readonly msg?: string;
  readonly grpc?: string;
  readonly healthz?: string;
  readonly metrics?: string;
}

function parseLogLine(text: string): ServingLine | null {
  try {
    return JSON.parse(text) as ServingLine;
  } catch {
    return null;
  }
}

function portOf(hostPort: string | undefined): number {
  const port = Number(hostPort?.slice(hostPort.lastIndexOf(':') + 1));
  if (!Number.isInteger(port) || port <= 0) throw new Error(`no port in "${String(hostPort)}"`);
  return port;
}

/**
 * Starts `warden serve` in `cwd` with every listener on an ephemeral port and one signing
 * worker (the machine is shared); resolves once it logs that it is serving. Rejects with
 * its stderr if it exits first.
 */
export function startWardenServe(options: {
  cwd: string;
  args?: readonly string[];
  env?: NodeJS.ProcessEnv;
  timeoutMs?: number;
}): Promise<ServeChild> {
  const args = [
    'serve',
    '--port',
    '0',
    '--healthz-port',
    '0',
    '--metrics-port',
    '0',
    '--workers',
    '1',
    ...(options.args ?? []),
  ];
  const child = spawn(process.execPath, [WARDEN_MAIN, ...args], {
    cwd: options.cwd,
    env: childEnv(options.env),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  let stdout = '';
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.on('exit', (code, signal) => resolve({ code, signal }));
  });
  child.stdout?.on('data', (d: Buffer) => (stdout += d.toString()));
  return new Promise<ServeChild>((resolve, reject) => {
    let settled = false;
    const timer = setTimeout(() => {
      if (settled) return;
      settled = true;
      child.kill('SIGKILL');
      reject(
        new Error(
          `warden serve did not start within ${options.timeoutMs ?? 15_000} ms:\n${stderr}`,
        ),
      );
    }, options.timeoutMs ?? 15_000);
    child.on('error', (err) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      reject(err);
    });
    void exited.then(({ code, signal }) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      reject(new Error(`warden serve exited (${code ?? signal}) before serving:\n${stderr}`));
    });
    child.stderr?.on('data', (d: Buffer) => {
      stderr += d.toString();
      if (settled) return;
      const complete = stderr.split('\n').slice(0, -1); // the last piece may be half a line
      const line = complete.map(parseLogLine).find((l) => l?.msg === 'warden is serving');
      if (!line) return;
      settled = true;
      clearTimeout(timer);
      const credentialsDir = path.resolve(options.cwd, '.warden/credentials');
      const credentialsFlag = args.indexOf('--issuer-credentials');
      const dir =
        credentialsFlag === -1
          ? credentialsDir
          : path.resolve(options.cwd, args[credentialsFlag + 1] as string);
      resolve({
        process: child,
        cwd: options.cwd,
        credentialsDir: dir,
        anchorsFile: path.join(dir, 'ca.crt'),
        grpcAddress: `127.0.0.1:${portOf(line.grpc)}`,
        grpcPort: portOf(line.grpc),
        healthzPort: portOf(line.healthz),
        metricsPort: portOf(line.metrics),
        stderr: () => stderr,
        stdout: () => stdout,
        exited,
        async stop(signal = 'SIGTERM', timeoutMs = 15_000) {
          if (child.exitCode === null && child.signalCode === null) child.kill(signal);
          const killer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
          const result = await exited;
          clearTimeout(killer);
          return result;
        },
      });
    });
  });
}
