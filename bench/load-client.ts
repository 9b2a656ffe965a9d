// A load-generator process: several of these run beside the server so that the client side
// is not the bottleneck. It receives a LoadJob over IPC, prepares every request and opens
// its connections, says it is ready, and on `go` runs the warm-up and the measured window,
// then answers with a LoadReport.
import { createCaller, prepareRequests, type Call, type PreparedRequest } from './callers.js';
import type { LoadGo, LoadJob, LoadReady, LoadReport } from './load-protocol.js';

interface Prepared {
  readonly job: LoadJob;
  readonly call: Call;
  readonly requests: readonly PreparedRequest[];
}

async function prepare(job: LoadJob): Promise<Prepared> {
  const requests = prepareRequests(job.target, job.csrs);
  const call = createCaller(job.target, job.concurrency);
  // Open the connection(s) before the clock starts: one call per slot, not counted.
  await Promise.all(
    Array.from({ length: job.concurrency }, (_, i) =>
      call(requests[i % requests.length] as PreparedRequest).catch(() => undefined),
    ),
  );
  return { job, call, requests };
}

async function run({ job, call, requests }: Prepared): Promise<LoadReport> {
  let next = job.concurrency;
  let reusedCsrs = false;
  const take = (): PreparedRequest => {
    if (next >= requests.length) {
      next = 0;
      reusedCsrs = true;
    }
    return requests[next++] as PreparedRequest;
  };
  const start = performance.now();
  const windowStart = start + job.warmupMs;
  const end = windowStart + job.durationMs;
  const latenciesMs: number[] = [];
  let ok = 0;
  let errors = 0;
  let firstError: string | null = null;
  let cpuAtWindowStart: NodeJS.CpuUsage | null = null;
  let cpuInWindow: NodeJS.CpuUsage | null = null;
  const cpuTimer = setTimeout(() => {
    cpuAtWindowStart = process.cpuUsage();
    setTimeout(() => {
      cpuInWindow = process.cpuUsage(cpuAtWindowStart ?? undefined);
    }, job.durationMs);
  }, job.warmupMs);
  const slot = async (): Promise<void> => {
    while (performance.now() < end) {
      const t0 = performance.now();
      try {
        await call(take());
        const t1 = performance.now();
        if (t0 >= windowStart && t1 <= end) {
          ok++;
          latenciesMs.push(t1 - t0);
        }
      } catch (err) {
        errors++;
        firstError ??= err instanceof Error ? err.message : String(err);
      }
      if (job.pauseMs) await new Promise((r) => setTimeout(r, job.pauseMs));
    }
  };
  await Promise.all(Array.from({ length: job.concurrency }, slot));
  clearTimeout(cpuTimer);
  const started = cpuAtWindowStart as NodeJS.CpuUsage | null;
  const cpu =
    (cpuInWindow as NodeJS.CpuUsage | null) ?? (started ? process.cpuUsage(started) : null);
  return {
    type: 'report',
    ok,
    errors,
    firstError,
    latenciesMs,
    windowMs: job.durationMs,
    cpuSeconds: cpu ? (cpu.user + cpu.system) / 1e6 : NaN,
    reusedCsrs,
  };
}

function fail(err: unknown): void {
  const report: LoadReport = {
    type: 'report',
    ok: 0,
    errors: 1,
    firstError: String(err),
    latenciesMs: [],
    windowMs: 0,
    cpuSeconds: NaN,
    reusedCsrs: false,
  };
  process.send?.(report, () => process.exit(1));
}

let prepared: Promise<Prepared> | null = null;
process.on('message', (message: LoadJob | LoadGo) => {
  if ('type' in message && message.type === 'go') {
    if (!prepared) return fail(new Error('go before the job'));
    prepared.then(run).then((report) => process.send?.(report, () => process.exit(0)), fail);
    return;
  }
  prepared = prepare(message as LoadJob);
  prepared.then(() => process.send?.({ type: 'ready' } satisfies LoadReady), fail);
});
