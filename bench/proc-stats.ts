import { readFileSync, readdirSync } from 'node:fs';

const CLOCK_TICKS = 100; // USER_HZ on Linux

function readStat(pid: number | string): { utime: number; stime: number; ppid: number } | null {
  try {
    const text = readFileSync(`/proc/${String(pid)}/stat`, 'utf8');
    // Fields after the command name (which may hold spaces) start after the last ')'.
    const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
    return { ppid: Number(fields[1]), utime: Number(fields[11]), stime: Number(fields[12]) };
  } catch {
    return null;
  }
}

/** Every live descendant of pid (and pid itself). */
export function processTree(pid: number): number[] {
  const children = new Map<number, number[]>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = readStat(Number(entry));
    if (!stat) continue;
    const list = children.get(stat.ppid) ?? [];
    list.push(Number(entry));
    children.set(stat.ppid, list);
  }
  const out: number[] = [];
  const queue = [pid];
  while (queue.length > 0) {
    const p = queue.shift() as number;
    out.push(p);
    queue.push(...(children.get(p) ?? []));
  }
  return out;
}

/** CPU seconds (user + system, all threads) used so far by pid and its descendants. */
export function cpuSeconds(pid: number): number {
  let ticks = 0;
  for (const p of processTree(pid)) {
    const stat = readStat(p);
    if (stat) ticks += stat.utime + stat.stime;
  }
  return ticks / CLOCK_TICKS;
}

/** CPU seconds used so far by one thread (tid) of process pid; the main thread's tid is pid. */
export function threadCpuSeconds(pid: number, tid: number = pid): number {
  const stat = readStat(`${pid}/task/${tid}`);
  return stat ? (stat.utime + stat.stime) / CLOCK_TICKS : NaN;
}

/** Peak resident set size in MB (VmHWM), summed over pid and its descendants. */
export function peakRssMb(pid: number): number {
  let kb = 0;
  for (const p of processTree(pid)) {
    try {
      const match = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${p}/status`, 'utf8'));
      if (match) kb += Number(match[1]);
    } catch {
      // the process ended between listing and reading
    }
  }
  return kb / 1024;
}
