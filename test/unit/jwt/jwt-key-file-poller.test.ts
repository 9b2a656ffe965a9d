import { afterEach, describe, expect, it } from '@jest/globals';
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { writeFileAtomic } from '../../../src/shared/atomic-file.js';
import { pollJwtKeyFiles, type JwtKeyFilePoller } from '../../../src/ca/jwt/jwt-key-file-poller.js';
import { captureLog } from '../../support/log-capture.js';
import { makeTempDir, removeTempDir } from '../../support/temp-dir.js';
import { waitFor } from '../../support/wait-for.js';

const INTERVAL_MS = 20;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('polling the JWT key files', () => {
  const cleanups: Array<() => Promise<void> | void> = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  async function setUp(onChange: () => Promise<unknown>) {
    const dir = await makeTempDir('warden-jwt-poll-');
    cleanups.push(() => removeTempDir(dir));
    const files = ['jwt.key', 'jwks.json'].map((name) => path.join(dir, name));
    for (const file of files) await writeFileAtomic(file, 'first', 0o600);
    const log = captureLog();
    const poller: JwtKeyFilePoller = pollJwtKeyFiles({
      files,
      intervalMs: INTERVAL_MS,
      onChange,
      logger: log.logger,
    });
    cleanups.push(() => poller.stop());
    await poller.markLoaded();
    return { files, poller, log };
  }

  it('reports nothing while the files stay as loaded', async () => {
    let calls = 0;
    await setUp(async () => calls++);
    await sleep(INTERVAL_MS * 6);
    expect(calls).toBe(0);
  });

  it('reports a replaced file once, after it settled', async () => {
    let calls = 0;
    const { files } = await setUp(async () => calls++);
    await writeFileAtomic(files[1] as string, 'second version', 0o600);
    await waitFor(() => (calls > 0 ? true : undefined), 2000, 'the change');
    await sleep(INTERVAL_MS * 5);
    expect(calls).toBe(1);
  });

  it('treats a removed file as a change, and logs a failing reload without stopping', async () => {
    let calls = 0;
    const { files, log } = await setUp(async () => {
      calls++;
      throw new Error('bad material');
    });
    await rm(files[0] as string);
    await waitFor(() => (calls === 1 ? true : undefined), 2000, 'the first change');
    await writeFileAtomic(files[0] as string, 'back again', 0o600);
    await waitFor(() => (calls === 2 ? true : undefined), 2000, 'the second change');
    expect(log.text()).toContain('reloading the JWT key files failed');
  });

  it('stops looking when stopped', async () => {
    let calls = 0;
    const { files, poller } = await setUp(async () => calls++);
    poller.stop();
    await writeFileAtomic(files[0] as string, 'changed after stop', 0o600);
    await sleep(INTERVAL_MS * 6);
    expect(calls).toBe(0);
  });
});
