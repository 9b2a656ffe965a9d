/**
 * Tiny timing helpers for the micro-benchmarks. Wall time per operation plus process CPU time
 * per operation (all threads, so work pushed to libuv's pool or to workers is counted).
 */
export interface Measurement {
  readonly name: string;
  readonly ops: number;
  readonly wallUsPerOp: number;
  readonly cpuUsPerOp: number;
}

function cpuMicros(): number {
  const u = process.cpuUsage();
  return u.user + u.system;
}

/** Runs `fn` (sync or async) `warmup` times, then `ops` times sequentially. */
export async function measure(
  name: string,
  ops: number,
  fn: (i: number) => unknown,
  warmup = Math.min(100, ops),
): Promise<Measurement> {
  for (let i = 0; i < warmup; i++) await fn(i);
  const cpu0 = cpuMicros();
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < ops; i++) await fn(i);
  const wallUs = Number(process.hrtime.bigint() - t0) / 1000;
  const cpuUs = cpuMicros() - cpu0;
  return { name, ops, wallUsPerOp: wallUs / ops, cpuUsPerOp: cpuUs / ops };
}

/** Best of `rounds` (least disturbed by the other processes sharing the machine). */
export async function measureBest(
  name: string,
  ops: number,
  fn: (i: number) => unknown,
  rounds = 3,
): Promise<Measurement> {
  let best: Measurement | undefined;
  for (let r = 0; r < rounds; r++) {
    const m = await measure(name, ops, fn, r === 0 ? Math.min(100, ops) : 0);
    if (!best || m.wallUsPerOp < best.wallUsPerOp) best = m;
  }
  return best as Measurement;
}

export function formatRow(m: Measurement, width = 58): string {
  return `${m.name.padEnd(width)} ${m.wallUsPerOp.toFixed(1).padStart(9)} µs/op  ${m.cpuUsPerOp.toFixed(1).padStart(9)} CPU-µs/op  ${(1e6 / m.wallUsPerOp).toFixed(0).padStart(7)} ops/s`;
}

/** Reads `--name=value` from argv as a number. */
export function numberFlag(name: string, fallback: number): number {
  const arg = process.argv.find((a) => a.startsWith(`--${name}=`));
  if (!arg) return fallback;
  const n = Number(arg.slice(name.length + 3));
  if (!Number.isFinite(n) || n <= 0) throw new TypeError(`--${name} must be a positive number`);
  return n;
}
