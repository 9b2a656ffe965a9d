import { randomBytes } from 'node:crypto';
import { promises as fs, type Stats } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { hostname } from 'node:os';
import path from 'node:path';
import { WardenError } from '../shared/errors.js';

/**
 * An advisory lock between processes sharing a directory: a file created with O_EXCL
 * (`open(path, 'wx')`) that names its holder. Used only around the short critical section
 * "check whether trust material exists, and write it if not".
 */
export interface FileLockOptions {
  /** A lock older than this is broken even if its holder looks alive (pid reuse, other hosts). */
  readonly staleMs: number;
  /** Give up waiting for a live holder after this long. */
  readonly timeoutMs: number;
  /** Poll interval while waiting. */
  readonly retryMs: number;
}

export const DEFAULT_FILE_LOCK_OPTIONS: FileLockOptions = Object.freeze({
  staleMs: 30_000,
  timeoutMs: 15_000,
  retryMs: 25,
});

export interface FileLock {
  /** Removes the lock if it is still ours; false when someone broke it meanwhile. */
  release(): Promise<boolean>;
}

interface LockRecord {
  readonly pid: number;
  readonly host: string;
  readonly nonce: string;
  readonly createdAt: string;
}

interface Observed {
  readonly text: string;
  readonly stat: Stats;
}

export async function acquireFileLock(
  lockPath: string,
  options: Partial<FileLockOptions> = {},
): Promise<FileLock> {
  const settings = { ...DEFAULT_FILE_LOCK_OPTIONS, ...options };
  const record: LockRecord = {
    pid: process.pid,
    host: hostname(),
    nonce: randomBytes(12).toString('hex'),
    createdAt: new Date().toISOString(),
  };
  const text = `${JSON.stringify(record)}\n`;
  const started = Date.now();
  let holder: LockRecord | null = null;
  for (;;) {
    if (await tryCreate(lockPath, text)) {
      await removeOrphanedLockTemps(lockPath);
      return { release: () => releaseLock(lockPath, record.nonce) };
    }
    const observed = await observe(lockPath);
    // null: released between our attempt and our look, so try again at once.
    if (observed) {
      holder = parseRecord(observed.text);
      if (isStale(holder, observed.stat, settings.staleMs)) {
        await breakStaleLock(lockPath, observed, settings.staleMs);
        continue;
      }
    }
    if (Date.now() - started > settings.timeoutMs) {
      const who = holder ? `process ${holder.pid} on ${holder.host}` : 'another process';
      throw new WardenError(
        'ERR_TRUST_MATERIAL_IO',
        `timed out after ${settings.timeoutMs} ms waiting for the lock ${lockPath} held by ${who}`,
      );
    }
    if (observed) await sleep(settings.retryMs);
  }
}

/**
 * Creates the lock with its record already in it: the record is written to a private temp
 * file, which is then hard-linked to the lock path (link fails with EEXIST exactly like
 * O_EXCL). A holder killed at any point therefore leaves either no lock or a complete one
 * naming a dead pid, never an empty lock that others could only break by age.
 */
async function tryCreate(lockPath: string, text: string): Promise<boolean> {
  const tmpPath = `${lockPath}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`;
  let handle: FileHandle;
  try {
    handle = await fs.open(tmpPath, 'wx', 0o600);
  } catch (err) {
    throw ioError(`cannot create the lock ${lockPath}`, err);
  }
  try {
    await handle.writeFile(text);
    await handle.sync();
    await handle.close();
    try {
      await fs.link(tmpPath, lockPath);
    } catch (err) {
      if (errnoCode(err) === 'EEXIST') return false;
      throw ioError(`cannot create the lock ${lockPath}`, err);
    }
    return true;
  } catch (err) {
    await handle.close().catch(() => undefined);
    if (err instanceof WardenError) throw err;
    throw ioError(`cannot write the lock ${lockPath}`, err);
  } finally {
    await fs.rm(tmpPath, { force: true });
  }
}

/** Removes lock temp files left by processes on this host that were killed mid-create. */
async function removeOrphanedLockTemps(lockPath: string): Promise<void> {
  const dir = path.dirname(lockPath);
  const prefix = `${path.basename(lockPath)}.`;
  let names: string[];
  try {
    names = await fs.readdir(dir);
  } catch {
    return;
  }
  for (const name of names) {
    const match = /^(\d+)\.[0-9a-f]+\.tmp$/.exec(name.startsWith(prefix) ? name.slice(prefix.length) : '');
    if (match && !processExists(Number(match[1]))) await fs.rm(path.join(dir, name), { force: true });
  }
}

async function observe(lockPath: string): Promise<Observed | null> {
  try {
    const stat = await fs.stat(lockPath);
    const text = await fs.readFile(lockPath, 'utf8');
    return { text, stat };
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return null;
    throw ioError(`cannot read the lock ${lockPath}`, err);
  }
}

function parseRecord(text: string): LockRecord | null {
  try {
    const value = JSON.parse(text) as Partial<LockRecord>;
    if (
      typeof value.pid === 'number' &&
      typeof value.host === 'string' &&
      typeof value.nonce === 'string'
    ) {
      return value as LockRecord;
    }
  } catch {
    // empty (holder between open and write, or died there) or not ours: judged by age only
  }
  return null;
}

/**
 * Stale when its holder is a process on this host that no longer exists, or when it is
 * older than `staleMs` (pid reused, holder on another host sharing the directory, or a
 * holder that died before writing its record).
 */
function isStale(holder: LockRecord | null, stat: Stats, staleMs: number): boolean {
  if (Date.now() - stat.mtimeMs > staleMs) return true;
  if (!holder || holder.host !== hostname()) return false;
  return !processExists(holder.pid);
}

function processExists(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: it exists but belongs to someone else.
    return errnoCode(err) !== 'ESRCH';
  }
}

/**
 * Breaking must not delete a fresh lock that a faster breaker already re-created. So
 * breakers serialise on a second O_EXCL file, and under it delete the lock only if it is
 * still exactly the one judged stale (same content, inode and mtime; a re-created lock
 * differs in all three, and in its random nonce).
 */
async function breakStaleLock(lockPath: string, judged: Observed, staleMs: number): Promise<void> {
  const breakerPath = `${lockPath}.break`;
  let breaker: FileHandle;
  try {
    breaker = await fs.open(breakerPath, 'wx', 0o600);
  } catch (err) {
    if (errnoCode(err) !== 'EEXIST') throw ioError(`cannot create ${breakerPath}`, err);
    // Another process is breaking it. A breaker holds this file for microseconds, so one
    // older than the stale bound belongs to a breaker that died: remove it and retry.
    const stat = await fs.stat(breakerPath).catch(() => null);
    if (stat && Date.now() - stat.mtimeMs > staleMs) await fs.rm(breakerPath, { force: true });
    else await sleep(5);
    return;
  }
  try {
    await breaker.close();
    const now = await observe(lockPath);
    if (
      now &&
      now.text === judged.text &&
      now.stat.ino === judged.stat.ino &&
      now.stat.mtimeMs === judged.stat.mtimeMs
    ) {
      await fs.rm(lockPath, { force: true });
    }
  } finally {
    await fs.rm(breakerPath, { force: true });
  }
}

async function releaseLock(lockPath: string, nonce: string): Promise<boolean> {
  const observed = await observe(lockPath);
  if (!observed || parseRecord(observed.text)?.nonce !== nonce) return false;
  await fs.rm(lockPath, { force: true });
  return true;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

export function errnoCode(err: unknown): string | undefined {
  return typeof err === 'object' && err !== null && 'code' in err
    ? String((err as { code: unknown }).code)
    : undefined;
}

function ioError(message: string, cause: unknown): WardenError {
  const code = errnoCode(cause);
  return new WardenError('ERR_TRUST_MATERIAL_IO', code ? `${message}: ${code}` : message, {
    cause,
  });
}
