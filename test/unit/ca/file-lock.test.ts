import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { spawn, type ChildProcess } from 'node:child_process';
import { readFile, utimes, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import path from 'node:path';
import { acquireFileLock } from '../../../src/ca/file-lock.js';
import { WardenError } from '../../../src/shared/errors.js';
import { makeTempDir, removeTempDir } from '../../support/temp-dir.js';

function record(pid: number, host = hostname()): string {
  return JSON.stringify({ pid, host, nonce: `n${pid}`, createdAt: new Date().toISOString() });
}

async function exitedPid(): Promise<number> {
  const child = spawn(process.execPath, ['-e', '']);
  await new Promise((resolve) => child.on('exit', resolve));
  return child.pid as number;
}

describe('acquireFileLock', () => {
  let dir: string;
  let sleeper: ChildProcess;
  let n = 0;
  const lockPath = (): string => path.join(dir, `lock-${++n}`);

  beforeAll(async () => {
    dir = await makeTempDir();
    sleeper = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60000)']);
  });
  afterAll(async () => {
    sleeper.kill('SIGKILL');
    await removeTempDir(dir);
  });

  it('creates the lock file holding this process’s pid, and removes it on release', async () => {
    const file = lockPath();
    const lock = await acquireFileLock(file);
    expect(JSON.parse(await readFile(file, 'utf8'))).toMatchObject({
      pid: process.pid,
      host: hostname(),
    });
    expect(await lock.release()).toBe(true);
    await expect(readFile(file)).rejects.toThrow();
  });

  it('breaks a lock whose holder process is dead', async () => {
    const file = lockPath();
    await writeFile(file, record(await exitedPid()));
    const lock = await acquireFileLock(file, { timeoutMs: 1000 });
    expect(JSON.parse(await readFile(file, 'utf8')).pid).toBe(process.pid);
    await lock.release();
  });

  it('waits for a live holder and times out with a message naming it', async () => {
    const file = lockPath();
    await writeFile(file, record(sleeper.pid as number));
    const err = await acquireFileLock(file, { timeoutMs: 100, retryMs: 10 }).catch(
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(WardenError);
    expect((err as WardenError).code).toBe('ERR_TRUST_MATERIAL_IO');
    expect((err as WardenError).message).toContain(`held by process ${sleeper.pid}`);
    expect(JSON.parse(await readFile(file, 'utf8')).pid).toBe(sleeper.pid); // not stolen
  });

  it('breaks a lock older than the bound even when its pid is alive (pid reuse)', async () => {
    const file = lockPath();
    await writeFile(file, record(sleeper.pid as number));
    const old = new Date(Date.now() - 120_000);
    await utimes(file, old, old);
    const lock = await acquireFileLock(file, { staleMs: 30_000, timeoutMs: 1000 });
    expect(JSON.parse(await readFile(file, 'utf8')).pid).toBe(process.pid);
    await lock.release();
  });

  it('does not trust a pid from another host: only age breaks such a lock', async () => {
    const file = lockPath();
    await writeFile(file, record(await exitedPid(), 'some-other-host'));
    const err = await acquireFileLock(file, { timeoutMs: 100, retryMs: 10 }).catch(
      (e: unknown) => e,
    );
    expect((err as WardenError).message).toContain('timed out');
  });

  it('treats an empty lock (holder died before writing) as held until it is old', async () => {
    const file = lockPath();
    await writeFile(file, '');
    await expect(acquireFileLock(file, { timeoutMs: 80, retryMs: 10 })).rejects.toThrow(
      'timed out',
    );
    const old = new Date(Date.now() - 120_000);
    await utimes(file, old, old);
    const lock = await acquireFileLock(file, { timeoutMs: 1000 });
    await lock.release();
  });

  it('release() leaves alone a lock that someone else now holds', async () => {
    const file = lockPath();
    const lock = await acquireFileLock(file);
    await writeFile(file, record(sleeper.pid as number));
    expect(await lock.release()).toBe(false);
    expect(JSON.parse(await readFile(file, 'utf8')).pid).toBe(sleeper.pid);
  });

  it('admits one holder at a time among many concurrent acquirers', async () => {
    const file = lockPath();
    let inside = 0;
    let maxInside = 0;
    await Promise.all(
      Array.from({ length: 8 }, async () => {
        const lock = await acquireFileLock(file, { retryMs: 2 });
        inside++;
        maxInside = Math.max(maxInside, inside);
        await new Promise((r) => setTimeout(r, 5));
        inside--;
        await lock.release();
      }),
    );
    expect(maxInside).toBe(1);
  });
});
