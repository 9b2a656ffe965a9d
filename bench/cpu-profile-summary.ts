// Reads V8 .cpuprofile files (node --cpu-prof) and says where the time went: self time by
// package or file, or by function. Used by bench/profile-server.ts and by hand:
//
//   node dist/bench/cpu-profile-summary.js <file.cpuprofile> [--by=package|function] [--top=25]
import { readFileSync } from 'node:fs';

interface CpuProfileNode {
  readonly id: number;
  readonly callFrame: {
    readonly functionName: string;
    readonly url: string;
    readonly lineNumber: number;
  };
}

interface CpuProfile {
  readonly nodes: readonly CpuProfileNode[];
  readonly samples: readonly number[];
  readonly timeDeltas: readonly number[];
}

export type SummaryKey = 'package' | 'function';

export interface ProfileSummary {
  /** Sampled time in ms, idle included. */
  readonly totalMs: number;
  /** Sampled time in ms that was not (idle). */
  readonly busyMs: number;
  /** [what, self ms], largest first. */
  readonly rows: ReadonlyArray<readonly [string, number]>;
}

/** The package (node_modules/<pkg>), the Warden file (dist/...), node's own module, or a V8 bucket. */
function packageOf(frame: CpuProfileNode['callFrame']): string {
  const { url, functionName } = frame;
  if (!url) return functionName.startsWith('(') ? functionName : `(native) ${functionName}`;
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (pkg) return pkg[1] as string;
  const dist = url.indexOf('/dist/');
  if (dist !== -1) return `warden ${url.slice(dist + 6)}`;
  return url.replace(/^node:/, 'node:');
}

function functionOf(frame: CpuProfileNode['callFrame']): string {
  const file = frame.url.split('/').slice(-2).join('/');
  return `${frame.functionName || '(anonymous)'} ${file}:${frame.lineNumber + 1}`;
}

export function summarizeCpuProfile(file: string, by: SummaryKey = 'package'): ProfileSummary {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  const frames = new Map(profile.nodes.map((n) => [n.id, n.callFrame]));
  const totals = new Map<string, number>();
  let totalUs = 0;
  let idleUs = 0;
  profile.samples.forEach((id, i) => {
    const us = profile.timeDeltas[i] ?? 0;
    const frame = frames.get(id);
    if (!frame) return;
    totalUs += us;
    if (frame.functionName === '(idle)') idleUs += us;
    const key = by === 'package' ? packageOf(frame) : functionOf(frame);
    totals.set(key, (totals.get(key) ?? 0) + us);
  });
  return {
    totalMs: totalUs / 1000,
    busyMs: (totalUs - idleUs) / 1000,
    rows: [...totals].map(([k, us]) => [k, us / 1000] as const).sort((a, b) => b[1] - a[1]),
  };
}

export function formatSummary(summary: ProfileSummary, top: number): string {
  const lines = [`sampled ${summary.totalMs.toFixed(0)} ms, busy ${summary.busyMs.toFixed(0)} ms`];
  for (const [what, ms] of summary.rows.slice(0, top)) {
    const share = summary.busyMs > 0 ? (100 * ms) / summary.busyMs : 0;
    lines.push(`${ms.toFixed(1).padStart(9)} ms ${share.toFixed(1).padStart(5)}%  ${what}`);
  }
  return lines.join('\n');
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const files = process.argv.slice(2).filter((a) => !a.startsWith('--'));
  const by = process.argv.includes('--by=function') ? 'function' : 'package';
  const topArg = process.argv.find((a) => a.startsWith('--top='));
  const top = topArg ? Number(topArg.slice(6)) : 25;
  for (const file of files) {
    process.stdout.write(`${file}\n${formatSummary(summarizeCpuProfile(file, by), top)}\n\n`);
  }
}
