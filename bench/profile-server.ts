// Where the server's CPU goes under load: starts `warden serve` with `node --cpu-prof`
// (every thread writes its own profile), drives it like `npm run bench` does, stops it, and
// prints the self time per package/file for the main thread and each signing worker, with
// server and client CPU from /proc.
//
//   node dist/bench/profile-server.js [--in-flight=64] [--duration=5000] [--workers=2]
//       [--key=ecdsa-p256] [--by=function] [--top=25] [--keep=DIR]
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { generateKeyAndCsr, type WorkloadKeyType } from '../src/issuer/sidecar/workload-csr.js';
import { formatSummary, summarizeCpuProfile } from './cpu-profile-summary.js';
import { drive } from './drive.js';
import { peakRssMb } from './proc-stats.js';
import { initWarden, startWarden } from './targets.js';

function flag(name: string, fallback: string): string {
  const arg = process.argv.find((a) => a.startsWith(`--${name}=`));
  return arg ? arg.slice(name.length + 3) : fallback;
}

const inFlight = Number(flag('in-flight', '64'));
const durationMs = Number(flag('duration', '5000'));
const workers = Number(flag('workers', String(os.availableParallelism())));
const keyType = flag('key', 'ecdsa-p256') as WorkloadKeyType;
const by = flag('by', 'package') === 'function' ? 'function' : 'package';
const top = Number(flag('top', '25'));
const keep = flag('keep', '');

async function main(): Promise<void> {
  const work = mkdtempSync(path.join(os.tmpdir(), 'warden-profile-'));
  const profiles = keep || path.join(work, 'profiles');
  try {
    const creds = path.join(work, 'creds');
    initWarden(creds);
    const csrs = Array.from(
      { length: Math.ceil((inFlight + 4000) * (durationMs / 5000)) },
      () => generateKeyAndCsr(keyType).csrPem,
    );
    const server = await startWarden(creds, workers, {
      nodeArgs: ['--cpu-prof', `--cpu-prof-dir=${profiles}`],
    });
    const target = {
      kind: 'warden' as const,
      address: server.address,
      caPem: server.caPem,
      serverName: 'localhost',
    };
    // Wait for the port, then warm up briefly (JIT, connections).
    await drive(server, target, csrs.slice(0, 500), {
      inFlight: 4,
      clientProcesses: 1,
      warmupMs: 1500,
      durationMs: 300,
    }).catch(() => undefined);
    const result = await drive(server, target, csrs, {
      inFlight,
      clientProcesses: 2,
      warmupMs: 500,
      durationMs,
    });
    const rss = peakRssMb(server.process.pid as number);
    await server.stop();
    const ok = result.certsPerSec * (durationMs / 1000);
    process.stdout.write(
      `${keyType} at ${inFlight} in flight, workers=${workers}: ${result.certsPerSec.toFixed(0)} certs/s, ` +
        `p50 ${result.p50Ms.toFixed(1)} ms, p99 ${result.p99Ms.toFixed(1)} ms, errors ${result.errors}` +
        `${result.firstError ? ` (${result.firstError})` : ''}\n` +
        `server ${((result.serverCpuSeconds * 1e6) / ok).toFixed(0)} CPU-µs/cert ` +
        `(${result.certsPerCpuSecond.toFixed(0)} certs/CPU-s), clients ${((result.clientCpuSeconds * 1e6) / ok).toFixed(0)} CPU-µs/cert, ` +
        `peak RSS ${rss.toFixed(1)} MB\n` +
        `(profiles cover the whole process life: start-up, warm-up and the window)\n\n`,
    );
    // CPU.<date>.<time>.<pid>.<thread>.<seq>.cpuprofile: thread 0 is the main thread.
    const files = readdirSync(profiles)
      .filter((f) => f.endsWith('.cpuprofile'))
      .sort((a, b) => Number(a.split('.')[4]) - Number(b.split('.')[4]));
    for (const file of files) {
      const thread = Number(file.split('.')[4]);
      process.stdout.write(
        `== ${thread === 0 ? 'main thread' : `worker thread ${thread}`} (${file})\n` +
          `${formatSummary(summarizeCpuProfile(path.join(profiles, file), by), top)}\n\n`,
      );
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  process.stderr.write(
    `profile failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
  );
  process.exitCode = 1;
});
