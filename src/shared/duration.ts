import { WardenError } from './errors.js';

const UNIT_MS: Record<string, number> = {
  ns: 1e-6,
  us: 1e-3,
  µs: 1e-3,
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
};

/**
 * Parses a Go duration string ("24h", "15m", "1h30m", "8760h", "90s", "0") into milliseconds,
 * as Dapr's Configuration and flags write them. Negative durations are refused.
 */
export function parseDuration(text: string, what = 'duration'): number {
  const s = text.trim();
  if (s === '0') return 0;
  const re = /(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)/gy;
  let total = 0;
  let consumed = 0;
  let match: RegExpExecArray | null;
  while ((match = re.exec(s)) !== null) {
    total += Number(match[1]) * (UNIT_MS[match[2] as string] as number);
    consumed = re.lastIndex;
  }
  if (consumed === 0 || consumed !== s.length || !Number.isFinite(total)) {
    throw new WardenError(
      'ERR_CONFIG_INVALID',
      `${what}: "${text}" is not a duration (use Go syntax such as 24h, 15m, 1h30m)`,
    );
  }
  return Math.round(total);
}

/** Formats milliseconds the way Go prints durations (e.g. 24h0m0s), for logs and status. */
export function formatDuration(ms: number): string {
  const sign = ms < 0 ? '-' : '';
  let rest = Math.abs(Math.round(ms / 1000));
  const h = Math.floor(rest / 3600);
  rest -= h * 3600;
  const m = Math.floor(rest / 60);
  const sec = rest - m * 60;
  if (h > 0) return `${sign}${h}h${m}m${sec}s`;
  if (m > 0) return `${sign}${m}m${sec}s`;
  return `${sign}${sec}s`;
}
