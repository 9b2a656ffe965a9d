import { promises as fs } from 'node:fs';
import { describeError } from '../../shared/errors.js';
import type { Logger } from '../../shared/logger.js';

export interface JwtKeyFilePollerOptions {
  /** Absolute paths of the files to watch (jwt.key, jwks.json, jwt-rotation.json). */
  readonly files: readonly string[];
  /** How often the files are looked at. */
  readonly intervalMs: number;
  /** Called once the files changed and then stayed the same for one interval. */
  readonly onChange: () => Promise<unknown>;
  readonly logger: Logger;
}

export interface JwtKeyFilePoller {
  /** Takes the files as they are now as the loaded version (call after loading them). */
  markLoaded(): Promise<void>;
  stop(): void;
}

/**
 * Notices when another process (`warden` rotation commands, an operator, a second replica)
 * rewrites the JWT key files, by polling their stat (inode, size, mtime): three stat calls per
 * interval, and unlike fs.watch it sees atomic renames and symlink swaps (mounted Secrets) on
 * every filesystem. A rotation writes the files one after another, so a change is reported only
 * once the files have stayed the same for a whole interval: the reader then sees the finished
 * rotation, not a half-written one that the loader would "repair".
 */
export function pollJwtKeyFiles(options: JwtKeyFilePollerOptions): JwtKeyFilePoller {
  if (!(options.intervalMs > 0)) throw new TypeError('intervalMs must be positive');
  let loaded: string | null = null;
  let pending: string | null = null;
  let stopped = false;
  let timer: NodeJS.Timeout | null = null;

  const signature = async (): Promise<string> => {
    const parts: string[] = [];
    for (const file of options.files) {
      try {
        const stat = await fs.stat(file);
        parts.push(`${stat.ino}:${stat.size}:${stat.mtimeMs}`);
      } catch (err) {
        parts.push((err as NodeJS.ErrnoException).code === 'ENOENT' ? 'absent' : 'unreadable');
      }
    }
    return parts.join('|');
  };

  const tick = async (): Promise<void> => {
    const now = await signature();
    if (now === loaded) {
      pending = null;
      return;
    }
    if (now !== pending) {
      pending = now; // still changing, or just changed: look again next interval
      return;
    }
    pending = null;
    try {
      await options.onChange();
    } catch (err) {
      options.logger.error({ err: describeError(err) }, 'reloading the JWT key files failed');
    }
    // Whatever the outcome, this version has been dealt with; a repair the reload wrote is
    // picked up as one more (harmless) change.
    loaded = now;
  };

  const schedule = (): void => {
    if (stopped) return;
    timer = setTimeout(() => {
      void tick().finally(schedule);
    }, options.intervalMs);
    timer.unref();
  };
  schedule();

  return {
    async markLoaded(): Promise<void> {
      loaded = await signature();
      pending = null;
    },
    stop(): void {
      stopped = true;
      if (timer) clearTimeout(timer);
      timer = null;
    },
  };
}
