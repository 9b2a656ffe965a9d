// Drives a running server with load-client child processes and measures it: throughput,
// latency percentiles, errors, and the CPU used by the server and by the clients in the
// measured window (from /proc), so a run shows whether the load generator kept up.
import { fork, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import type { LoadGo, LoadJob, LoadReady, LoadReport, LoadTarget } from './load-protocol.js';
import { cpuSeconds, threadCpuSeconds } from './proc-stats.js';
import { REPO_ROOT, type RunningServer } from './targets.js';

export interface DriveOptions {
  readonly inFlight: number;
  /** Client processes to spread the in-flight calls over (fewer when inFlight is smaller). */
  readonly clientProcesses: number;
  readonly warmupMs: number;
  readonly durationMs: number;
  /** Idle time between the calls of one in-flight slot (idle-latency runs). */
  readonly pauseMs?: number;
}

export interface DriveResult {
  readonly inFlight: number;
  readonly certsPerSec: number;
  /** Successful calls completed in the measured window. */
  readonly ok: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly maxMs: number;
  readonly errors: number;
  readonly firstError: string | null;
  /** Server CPU (all threads, child processes included) during the measured window. */
  readonly serverCpuSeconds: number;
  readonly certsPerCpuSecond: number;
  /** Of serverCpuSeconds, the server's main thread (the gRPC edge, for Warden). */
  readonly mainThreadCpuSeconds: number;
  /** Load-client CPU in the measured window, all client processes together (self-reported). */
  readonly clientCpuSeconds: number;
  readonly reusedCsrs: boolean;
}

function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] as number;
}

interface RunningClient {
  readonly child: ChildProcess;
  readonly ready: Promise<void>;
  readonly done: Promise<LoadReport>;
}

function runClient(job: LoadJob): RunningClient {
  const child = fork(path.join(REPO_ROOT, 'dist/bench/load-client.js'), [], {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  let onReady: () => void = () => undefined;
  const ready = new Promise<void>((resolve) => {
    onReady = resolve;
  });
  const done = new Promise<LoadReport>((resolve, reject) => {
    child.on('message', (message: LoadReady | LoadReport) => {
      if (message.type === 'ready') onReady();
      else {
        onReady();
        resolve(message);
      }
    });
    child.once('exit', (code) => {
      onReady();
      if (code !== 0) reject(new Error(`load client exited with ${code}`));
    });
  });
  child.send(job);
  return { child, ready, done };
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Waits for `promise`, or kills the clients and fails after `ms`: a stuck run must not hang. */
async function within<T>(
  promise: Promise<T>,
  ms: number,
  clients: RunningClient[],
  what: string,
): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      for (const c of clients) c.child.kill('SIGKILL');
      reject(new Error(`load clients did not ${what} within ${ms} ms`));
    }, ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

export async function drive(
  server: RunningServer,
  target: LoadTarget,
  csrs: readonly string[],
  options: DriveOptions,
): Promise<DriveResult> {
  const { inFlight, warmupMs, durationMs } = options;
  const n = Math.max(1, Math.min(options.clientProcesses, inFlight));
  const slice = Math.floor(csrs.length / n);
  const jobs = Array.from({ length: n }, (_, i) =>
    runClient({
      target,
      csrs: csrs.slice(i * slice, (i + 1) * slice),
      // Spread exactly inFlight calls over the clients.
      concurrency: Math.floor(inFlight / n) + (i < inFlight % n ? 1 : 0),
      warmupMs,
      durationMs,
      pauseMs: options.pauseMs ?? 0,
    }),
  );
  // Every client prepares its requests and connects first; all start together, so the
  // window measured here (after the warm-up) is the one the clients count in.
  await within(Promise.all(jobs.map((j) => j.ready)), 60_000, jobs, 'connect');
  for (const j of jobs) if (j.child.connected) j.child.send({ type: 'go' } satisfies LoadGo);
  const pid = server.process.pid as number;
  await sleep(warmupMs);
  const cpu0 = cpuSeconds(pid);
  const main0 = threadCpuSeconds(pid);
  await sleep(durationMs);
  const cpu1 = cpuSeconds(pid);
  const main1 = threadCpuSeconds(pid);
  const reports = await within(Promise.all(jobs.map((j) => j.done)), 60_000, jobs, 'finish');
  const latencies = reports.flatMap((r) => r.latenciesMs).sort((a, b) => a - b);
  const ok = reports.reduce((s, r) => s + r.ok, 0);
  const serverCpuSeconds = cpu1 - cpu0;
  return {
    inFlight,
    certsPerSec: ok / (durationMs / 1000),
    ok,
    p50Ms: percentile(latencies, 50),
    p99Ms: percentile(latencies, 99),
    maxMs: latencies.length ? (latencies[latencies.length - 1] as number) : NaN,
    errors: reports.reduce((s, r) => s + r.errors, 0),
    firstError: reports.find((r) => r.firstError)?.firstError ?? null,
    serverCpuSeconds,
    certsPerCpuSecond: serverCpuSeconds > 0 ? ok / serverCpuSeconds : NaN,
    mainThreadCpuSeconds: main1 - main0,
    clientCpuSeconds: reports.reduce((s, r) => s + r.cpuSeconds, 0),
    reusedCsrs: reports.some((r) => r.reusedCsrs),
  };
}
