import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { closeSync, mkdirSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { SERVE_NODE_OPTIONS } from '../src/cli/serve-node-options.js';

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const WARDEN_BIN = path.join(REPO_ROOT, 'dist/src/cli/main.js');

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as net.AddressInfo).port;
      srv.close(() => resolve(port));
    });
    srv.on('error', reject);
  });
}

export interface RunningServer {
  readonly process: ChildProcess;
  readonly address: string;
  readonly caPem: string;
  /** performance.now() when the process was spawned. */
  readonly spawnedAt: number;
  /** The server's log file, when it writes one. */
  readonly logFile?: string;
  stop(): Promise<void>;
}

function stopper(child: ChildProcess): () => Promise<void> {
  return () =>
    new Promise((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) return resolve();
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      child.once('exit', () => {
        clearTimeout(timer);
        resolve();
      });
      child.kill('SIGTERM');
    });
}

/** `warden init` into dir (so the measured start loads existing credentials). */
export function initWarden(dir: string): void {
  execFileSync(process.execPath, [WARDEN_BIN, 'init', '--issuer-credentials', dir], {
    stdio: 'pipe',
  });
}

export interface StartWardenOptions {
  /** Extra node options for the server process (e.g. --cpu-prof for bench/profile-server.ts). */
  readonly nodeArgs?: readonly string[];
  /** The gRPC port (default: a free one), so a caller can be prepared before the spawn. */
  readonly port?: number;
  /** Default info, as a user runs it: one audit line per certificate is part of the cost. */
  readonly logLevel?: string;
  /**
   * Where the server's log (stderr) goes: a file path (default: <dir>/../warden-<port>.log),
   * so the audit lines cost what they cost in production without flooding the bench output.
   */
  readonly logFile?: string;
}

export async function startWarden(
  dir: string,
  workers: number,
  options: StartWardenOptions = {},
): Promise<RunningServer> {
  const port = options.port ?? (await freePort());
  const args = [
    // As the image's /sentry launcher starts it.
    ...SERVE_NODE_OPTIONS,
    ...(options.nodeArgs ?? []),
    WARDEN_BIN,
    'serve',
    '--issuer-credentials',
    dir,
    '--port',
    String(port),
    '--listen-address',
    '127.0.0.1',
    '--healthz-port',
    String(await freePort()),
    '--metrics-port',
    String(await freePort()),
    '--workers',
    String(workers),
    // Every load-client connects from 127.0.0.1, standing in for hundreds of sidecars that
    // would each have their own address: the per-caller limit (64) would refuse them as one.
    '--max-in-flight-per-caller',
    '1024',
    '--log-level',
    options.logLevel ?? 'info',
  ];
  const spawnedAt = performance.now();
  const logFile = options.logFile ?? path.join(path.dirname(dir), `warden-${port}.log`);
  const log = openSync(logFile, 'a');
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'ignore', log] });
  closeSync(log);
  return {
    process: child,
    address: `127.0.0.1:${port}`,
    caPem: readFileSync(path.join(dir, 'ca.crt'), 'utf8'),
    spawnedAt,
    logFile,
    stop: stopper(child),
  };
}

/** Lines of a server log at warn level or above (JSON lines with a "level" field). */
export function logProblems(logFile: string): string[] {
  return readFileSync(logFile, 'utf8')
    .split('\n')
    .filter((line) => /"level":"(warn|error|fatal)"/.test(line))
    .filter((line) => !line.includes('the insecure validator is active'));
}

/** cfssl serve with an ECDSA P-256 CA and a 24h workload profile, as the Go baseline. */
export async function startCfssl(dir: string): Promise<RunningServer & { url: string }> {
  mkdirSync(dir, { recursive: true });
  const csrJson = path.join(dir, 'ca-csr.json');
  writeFileSync(csrJson, JSON.stringify({ CN: 'bench-root', key: { algo: 'ecdsa', size: 256 } }));
  const out = execFileSync('cfssl', ['gencert', '-initca', csrJson], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'ignore'],
  });
  const ca = JSON.parse(out) as { cert: string; key: string };
  writeFileSync(path.join(dir, 'ca.pem'), ca.cert);
  writeFileSync(path.join(dir, 'ca-key.pem'), ca.key, { mode: 0o600 });
  writeFileSync(
    path.join(dir, 'config.json'),
    JSON.stringify({
      signing: {
        default: { expiry: '24h', usages: ['digital signature', 'server auth', 'client auth'] },
        profiles: {
          workload: { expiry: '24h', usages: ['digital signature', 'server auth', 'client auth'] },
        },
      },
    }),
  );
  const port = await freePort();
  const spawnedAt = performance.now();
  const child = spawn(
    'cfssl',
    [
      'serve',
      '-address',
      '127.0.0.1',
      '-port',
      String(port),
      '-ca',
      path.join(dir, 'ca.pem'),
      '-ca-key',
      path.join(dir, 'ca-key.pem'),
      '-config',
      path.join(dir, 'config.json'),
      '-loglevel',
      '5',
    ],
    { stdio: 'ignore' },
  );
  const url = `http://127.0.0.1:${port}`;
  for (let i = 0; i < 100; i++) {
    const up = await new Promise<boolean>((resolve) => {
      const s = net.connect(port, '127.0.0.1', () => {
        s.destroy();
        resolve(true);
      });
      s.on('error', () => resolve(false));
    });
    if (up) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    process: child,
    address: `127.0.0.1:${port}`,
    url,
    caPem: ca.cert,
    spawnedAt,
    stop: stopper(child),
  };
}

export function hasCommand(name: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${name}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** `openssl speed ecdsap256`: single-core sign/s and verify/s, the crypto limit. */
export function opensslSpeed(seconds = 3): { signPerSec: number; verifyPerSec: number } {
  const out = execFileSync('openssl', ['speed', '-seconds', String(seconds), 'ecdsap256'], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'ignore'],
  });
  const match = /256 bits ecdsa \(nistp256\)\s+\S+s\s+\S+s\s+([\d.]+)\s+([\d.]+)/.exec(out);
  if (!match) throw new Error(`cannot parse openssl speed output:\n${out}`);
  return { signPerSec: Number(match[1]), verifyPerSec: Number(match[2]) };
}
