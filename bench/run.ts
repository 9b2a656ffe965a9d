// `npm run bench`: Warden's signing throughput and latency over real gRPC/TLS, side by side
// with the crypto limit (`openssl speed ecdsap256`) and, when installed, Go's `cfssl serve`
// under the same load generator. Writes bench-results/bench-<time>.json and prints a table.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { generateKeyAndCsr, type WorkloadKeyType } from '../src/issuer/sidecar/workload-csr.js';
import { createGrpcCaller, signCertificateFrame } from './callers.js';
import { drive as driveWith, type DriveResult } from './drive.js';
import type { LoadTarget } from './load-protocol.js';
import { cpuSeconds, peakRssMb, threadCpuSeconds } from './proc-stats.js';
import {
  REPO_ROOT,
  freePort,
  hasCommand,
  initWarden,
  logProblems,
  opensslSpeed,
  startCfssl,
  startWarden,
  type RunningServer,
} from './targets.js';

const { values: opts } = parseArgs({
  options: {
    duration: { type: 'string', default: '5000' },
    warmup: { type: 'string', default: '1000' },
    levels: { type: 'string', default: '1,16,64,256' },
    workers: { type: 'string', default: String(os.availableParallelism()) },
    clients: { type: 'string', default: '2' },
    'grpc-client': { type: 'string', default: 'raw' },
    quick: { type: 'boolean', default: false },
  },
});
const durationMs = opts.quick ? 1500 : Number(opts.duration);
const warmupMs = opts.quick ? 300 : Number(opts.warmup);
const levels = opts.levels.split(',').map(Number);
const workers = Number(opts.workers);
const clientProcesses = Number(opts.clients);
const grpcClient = opts['grpc-client'] === 'node-http2' ? 'node-http2' : 'raw';

interface LevelResult extends DriveResult {
  target: 'warden' | 'cfssl';
  keyType: WorkloadKeyType;
}

function makeCsrs(type: WorkloadKeyType, count: number): string[] {
  return Array.from({ length: count }, () => generateKeyAndCsr(type).csrPem);
}

function drive(
  server: RunningServer,
  target: LoadTarget,
  csrs: string[],
  inFlight: number,
  pauseMs = 0,
): Promise<DriveResult> {
  return driveWith(server, target, csrs, {
    inFlight,
    clientProcesses,
    warmupMs,
    durationMs,
    pauseMs,
  });
}

interface ColdStart {
  /** Spawn → first certificate received, wall clock. */
  readonly wallMs: number;
  /**
   * The server's main-thread CPU when the first certificate arrived (10 ms ticks): the
   * critical path, which is what the wall figure is on a quiet machine, and what it cannot
   * be on a busy one.
   */
  readonly mainThreadCpuMs: number;
  /** The whole server process's CPU by then (worker threads start in parallel). */
  readonly processCpuMs: number;
}

/**
 * Spawn → first certificate, with existing credentials. The request is prepared and the port
 * chosen before the spawn; each attempt opens a fresh connection (no client reconnect
 * back-off in the figure), retrying every 2 ms until the port answers.
 */
async function coldStart(dir: string): Promise<ColdStart> {
  const port = await freePort();
  const [csr] = makeCsrs('ecdsa-p256', 1);
  const frame = signCertificateFrame(csr as string, 'cold-start');
  const server = await startWarden(dir, workers, { port });
  const pid = server.process.pid as number;
  let firstOk = NaN;
  let mainThreadCpuMs = NaN;
  let processCpuMs = NaN;
  const deadline = performance.now() + 20_000;
  while (performance.now() < deadline) {
    const call = createGrpcCaller({
      address: server.address,
      caPem: server.caPem,
      serverName: 'localhost',
    });
    try {
      await call(frame);
      firstOk = performance.now();
      mainThreadCpuMs = threadCpuSeconds(pid) * 1000;
      processCpuMs = cpuSeconds(pid) * 1000;
      break;
    } catch {
      await new Promise((r) => setTimeout(r, 2));
    } finally {
      call.close();
    }
  }
  await server.stop();
  return { wallMs: firstOk - server.spawnedAt, mainThreadCpuMs, processCpuMs };
}

function fmt(n: number, digits = 0): string {
  return Number.isFinite(n) ? n.toFixed(digits) : '-';
}

async function main(): Promise<void> {
  const results: LevelResult[] = [];
  const work = mkdtempSync(path.join(os.tmpdir(), 'warden-bench-'));
  try {
    process.stderr.write('openssl speed ecdsap256 ...\n');
    const speed = opensslSpeed(opts.quick ? 1 : 3);
    const cryptoLimitPerCore = 1 / (1 / speed.signPerSec + 1 / speed.verifyPerSec);

    process.stderr.write('generating CSRs ...\n');
    const pools: Record<WorkloadKeyType, string[]> = {
      'ecdsa-p256': makeCsrs('ecdsa-p256', opts.quick ? 8000 : 40000),
      'ecdsa-p384': makeCsrs('ecdsa-p384', opts.quick ? 2000 : 10000),
      ed25519: makeCsrs('ed25519', opts.quick ? 2000 : 20000),
      'rsa-2048': makeCsrs('rsa-2048', opts.quick ? 50 : 300),
    };

    const creds = path.join(work, 'warden');
    initWarden(creds);
    process.stderr.write('cold start ...\n');
    const coldStarts: ColdStart[] = [];
    for (let i = 0; i < (opts.quick ? 3 : 5); i++) coldStarts.push(await coldStart(creds));
    coldStarts.sort((a, b) => a.wallMs - b.wallMs);
    const median = (values: number[]): number =>
      [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] as number;

    const warden = await startWarden(creds, workers);
    const wardenTarget: LoadTarget = {
      kind: 'warden',
      address: warden.address,
      caPem: warden.caPem,
      serverName: 'localhost',
      client: grpcClient,
    };
    // Warm-up: connections, and a burst so the hot paths are compiled, as in a server that has
    // seen traffic (at a few calls a second V8 never optimizes them: bench/README.md).
    await drive(warden, wardenTarget, pools['ecdsa-p256'], 64).catch(() => undefined);
    process.stderr.write('idle latency ...\n');
    const idle = await drive(warden, wardenTarget, pools['ecdsa-p256'], 1, 20);
    for (const inFlight of levels) {
      process.stderr.write(`warden P-256 at ${inFlight} in flight ...\n`);
      results.push({
        target: 'warden',
        keyType: 'ecdsa-p256',
        ...(await drive(warden, wardenTarget, pools['ecdsa-p256'], inFlight)),
      });
    }
    for (const keyType of ['ecdsa-p384', 'ed25519', 'rsa-2048'] as const) {
      process.stderr.write(`warden ${keyType} at 64 in flight ...\n`);
      results.push({
        target: 'warden',
        keyType,
        ...(await drive(warden, wardenTarget, pools[keyType], 64)),
      });
    }
    const wardenPeakRss = peakRssMb(warden.process.pid as number);
    await warden.stop();
    // The server logs at info (as deployed: one audit line per certificate) into a file;
    // anything at warn or above is shown here.
    const problems = warden.logFile ? logProblems(warden.logFile) : [];
    for (const line of problems.slice(0, 10)) process.stderr.write(`[warden log] ${line}\n`);

    let cfsslAvailable = hasCommand('cfssl');
    let cfsslPeakRss = NaN;
    let cfsslIdle: DriveResult | null = null;
    if (cfsslAvailable) {
      const cfssl = await startCfssl(path.join(work, 'cfssl'));
      const cfsslTarget: LoadTarget = { kind: 'cfssl', url: cfssl.url };
      // The same warm-up as Warden's; it also proves the baseline answers.
      const probe = await drive(cfssl, cfsslTarget, pools['ecdsa-p256'], 64).catch(() => null);
      if (!probe || probe.errors > 0 || probe.ok === 0) {
        process.stderr.write(`cfssl baseline unusable: ${probe?.firstError ?? 'no answer'}\n`);
        cfsslAvailable = false;
      } else {
        process.stderr.write('cfssl idle latency ...\n');
        cfsslIdle = await drive(cfssl, cfsslTarget, pools['ecdsa-p256'], 1, 20);
        for (const inFlight of levels) {
          process.stderr.write(`cfssl P-256 at ${inFlight} in flight ...\n`);
          results.push({
            target: 'cfssl',
            keyType: 'ecdsa-p256',
            ...(await drive(cfssl, cfsslTarget, pools['ecdsa-p256'], inFlight)),
          });
        }
      }
      cfsslPeakRss = peakRssMb(cfssl.process.pid as number);
      await cfssl.stop();
    }

    const at = (target: string, inFlight: number): LevelResult | undefined =>
      results.find(
        (r) => r.target === target && r.keyType === 'ecdsa-p256' && r.inFlight === inFlight,
      );
    const w64 = at('warden', 64);
    const c64 = at('cfssl', 64);
    const summary = {
      machine: {
        cpus: os.availableParallelism(),
        node: process.version,
        workers,
        clientProcesses,
        grpcClient,
        durationMs,
        warmupMs,
      },
      opensslSpeed: { ...speed, certLimitPerCore: cryptoLimitPerCore },
      coldStart: {
        wallMs: coldStarts.map((c) => c.wallMs),
        mainThreadCpuMs: coldStarts.map((c) => c.mainThreadCpuMs),
        processCpuMs: coldStarts.map((c) => c.processCpuMs),
      },
      idleLatencyMs: { p50: idle.p50Ms, p99: idle.p99Ms },
      cfsslIdleLatencyMs: cfsslIdle ? { p50: cfsslIdle.p50Ms, p99: cfsslIdle.p99Ms } : null,
      wardenPeakRssMb: wardenPeakRss,
      wardenLogProblems: problems.length,
      cfsslPeakRssMb: Number.isFinite(cfsslPeakRss) ? cfsslPeakRss : null,
      ratios: {
        throughputVsCfsslAt64: w64 && c64 ? w64.certsPerSec / c64.certsPerSec : null,
        perCpuSecondVsCfsslAt64: w64 && c64 ? w64.certsPerCpuSecond / c64.certsPerCpuSecond : null,
        perCpuSecondVsCryptoLimit: w64 ? w64.certsPerCpuSecond / cryptoLimitPerCore : null,
      },
      results,
    };
    mkdirSync(path.join(REPO_ROOT, 'bench-results'), { recursive: true });
    const file = path.join(
      REPO_ROOT,
      'bench-results',
      `bench-${new Date().toISOString().replace(/[:.]/g, '-')}.json`,
    );
    writeFileSync(file, `${JSON.stringify(summary, null, 2)}\n`);

    const rows = results.map((r) => [
      r.target,
      r.keyType,
      String(r.inFlight),
      fmt(r.certsPerSec),
      fmt(r.p50Ms, 1),
      fmt(r.p99Ms, 1),
      fmt(r.maxMs, 1),
      String(r.errors),
      fmt(r.ok > 0 ? (r.serverCpuSeconds * 1000) / r.ok : NaN, 3),
      fmt(r.certsPerCpuSecond),
      // Go has no "main thread" doing the edge; only Warden's split is meaningful.
      r.target === 'warden' && r.ok > 0 ? fmt((r.mainThreadCpuSeconds * 1000) / r.ok, 3) : '-',
      fmt(r.ok > 0 ? (r.clientCpuSeconds * 1000) / r.ok : NaN, 3),
    ]);
    const header = [
      'target',
      'key',
      'in-flight',
      'certs/s',
      'p50 ms',
      'p99 ms',
      'max ms',
      'errors',
      'CPU-s/1k',
      'certs/CPU-s',
      'main CPU-s/1k',
      'client CPU-s/1k',
    ];
    const widths = header.map((h, i) =>
      Math.max(h.length, ...rows.map((r) => (r[i] as string).length)),
    );
    const line = (cells: string[]): string =>
      cells.map((c, i) => c.padStart(widths[i] as number)).join('  ');
    const out = [
      `openssl speed ecdsap256 (1 core): ${fmt(speed.signPerSec)} sign/s, ${fmt(speed.verifyPerSec)} verify/s -> limit ${fmt(cryptoLimitPerCore)} certs/s per core`,
      `cold start to first certificate: ${coldStarts.map((c) => fmt(c.wallMs)).join(' / ')} ms wall; main-thread CPU by then ${fmt(median(coldStarts.map((c) => c.mainThreadCpuMs)))} ms (median), whole process ${fmt(median(coldStarts.map((c) => c.processCpuMs)))} ms`,
      `idle SignCertificate p50 ${fmt(idle.p50Ms, 2)} ms, p99 ${fmt(idle.p99Ms, 2)} ms (cfssl sign p50 ${fmt(cfsslIdle?.p50Ms ?? NaN, 2)} ms, p99 ${fmt(cfsslIdle?.p99Ms ?? NaN, 2)} ms); Warden peak RSS ${fmt(wardenPeakRss, 1)} MB (workers=${workers}), cfssl ${fmt(cfsslPeakRss, 1)} MB`,
      '',
      line(header),
      ...rows.map(line),
      '',
      cfsslAvailable
        ? `at 64 in flight: Warden/cfssl throughput ${fmt(summary.ratios.throughputVsCfsslAt64 ?? NaN, 2)}x, per CPU-second ${fmt(summary.ratios.perCpuSecondVsCfsslAt64 ?? NaN, 2)}x; Warden per CPU-second = ${fmt((summary.ratios.perCpuSecondVsCryptoLimit ?? NaN) * 100)}% of the crypto limit`
        : 'cfssl not installed (apt-get install golang-cfssl): no Go baseline in this run',
      `results: ${path.relative(process.cwd(), file)}`,
    ];
    process.stdout.write(`${out.join('\n')}\n`);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  process.stderr.write(
    `bench failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
  );
  process.exitCode = 1;
});
