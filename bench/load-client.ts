// A load-generator process: several of these run beside the server so that the client side
// is not the bottleneck. It receives a LoadJob over IPC and answers with a LoadReport.
import { createCaller } from './callers.js';
import type { LoadJob, LoadReport } from './load-protocol.js';

async function run(job: LoadJob): Promise<LoadReport> {
  const call = createCaller(job.target, job.concurrency);
  let next = 0;
  let reusedCsrs = false;
  const takeCsr = (): string => {
    if (next >= job.csrs.length) {
      next = 0;
      reusedCsrs = true;
    }
    return job.csrs[next++] as string;
  };
  const start = performance.now();
  const windowStart = start + job.warmupMs;
  const end = windowStart + job.durationMs;
  const latenciesMs: number[] = [];
  let ok = 0;
  let errors = 0;
  let firstError: string | null = null;
  const worker = async (): Promise<void> => {
    while (performance.now() < end) {
      const t0 = performance.now();
      try {
        await call(takeCsr());
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
  await Promise.all(Array.from({ length: job.concurrency }, worker));
  return { ok, errors, firstError, latenciesMs, windowMs: job.durationMs, reusedCsrs };
}

process.on('message', (job: LoadJob) => {
  run(job).then(
    (report) => {
      process.send?.(report, () => process.exit(0));
    },
    (err: unknown) => {
      process.send?.(
        {
          ok: 0,
          errors: 1,
          firstError: String(err),
          latenciesMs: [],
          windowMs: 0,
          reusedCsrs: false,
        } satisfies LoadReport,
        () => process.exit(1),
      );
    },
  );
});
