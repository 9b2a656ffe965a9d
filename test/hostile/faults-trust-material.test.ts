import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { spawn } from 'node:child_process';
import { watch, type FSWatcher } from 'node:fs';
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { startFileCa } from '../../src/ca/file-ca.js';
import { DEFAULT_TRUST_EXTRA_NAMES } from '../../src/ca/trust-store.js';
import { silentLogger } from '../../src/shared/logger.js';
import { startHostileWarden } from '../support/hostile-warden.js';
import { makePeculiarCsr } from '../support/signing-test-pki.js';
import { runWardenCli, startWardenChild, WARDEN_MAIN } from '../support/warden-child.js';
import { attemptSign } from './sign-outcome.js';
import { createSentryTestClient } from '../support/sentry-proto-client.js';

const MATERIAL = ['ca.crt', 'issuer.crt', 'issuer.key'];
/** Files a store may keep beside the three (root.key since rotation; next-* during one). */
const EXTRAS: readonly string[] = Object.values(DEFAULT_TRUST_EXTRA_NAMES);
const KEY_FILES = new Set(['issuer.key', ...EXTRAS.filter((name) => name.endsWith('.key'))]);
const SENTRY_ID = 'spiffe://localhost/ns/warden-system/dapr-sentry';

function certificatesIn(pem: string): X509Certificate[] {
  return (pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? []).map(
    (block) => new X509Certificate(block),
  );
}

/** Problems with the material files visible in `dir` (each must be whole if present). */
async function halfWrittenFiles(dir: string): Promise<string[]> {
  const problems: string[] = [];
  for (const name of [...MATERIAL, ...EXTRAS]) {
    let text: string;
    try {
      text = await readFile(path.join(dir, name), 'utf8');
    } catch {
      continue;
    }
    try {
      if (KEY_FILES.has(name)) createPrivateKey(text);
      else if (name.endsWith('.json')) JSON.parse(text);
      else if (
        certificatesIn(text).length === 0 ||
        !text.trimEnd().endsWith('-----END CERTIFICATE-----')
      )
        problems.push(`${name} holds no whole certificate`);
    } catch {
      problems.push(`${name} does not parse`);
    }
  }
  return problems;
}

/**
 * When to SIGKILL: `delayMs` after spawning, or `delayMs` after the credentials directory
 * appears (it is created just before the lock, the staged files, the journal and the renames,
 * so that trigger lands inside the write sequence).
 */
type KillTrigger = { readonly afterSpawnMs: number } | { readonly afterDirectoryMs: number };

/** Runs `warden <args>` and SIGKILLs it at `trigger`; resolves when it has exited. */
function killAt(
  args: readonly string[],
  directory: string,
  trigger: KillTrigger,
): Promise<NodeJS.Signals | number | null> {
  const child = spawn(process.execPath, [WARDEN_MAIN, ...args], {
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', NAMESPACE: 'warden-system' },
    stdio: 'ignore',
  });
  const timers: NodeJS.Timeout[] = [];
  let watcher: FSWatcher | null = null;
  if ('afterSpawnMs' in trigger) {
    timers.push(setTimeout(() => child.kill('SIGKILL'), trigger.afterSpawnMs));
  } else {
    const name = path.basename(directory);
    watcher = watch(path.dirname(directory), (_event, file) => {
      if (file !== name || watcher === null) return;
      watcher.close();
      watcher = null;
      timers.push(setTimeout(() => child.kill('SIGKILL'), trigger.afterDirectoryMs));
    });
  }
  return new Promise((resolve) => {
    child.on('exit', (code, signal) => {
      for (const t of timers) clearTimeout(t);
      watcher?.close();
      resolve(signal ?? code);
    });
  });
}

/** `kill -9` at random moments while `warden init` or a first `warden serve` generates keys. */
const KILL_ROUNDS = 8;

describe('kill -9 during key generation, then restart', () => {
  let root: string;
  let fullRunMs: number;
  const seen: string[] = [];

  beforeAll(async () => {
    root = await mkdtemp(path.join(tmpdir(), 'warden-kill-'));
    const started = Date.now();
    const full = await runWardenCli(['init', '--issuer-credentials', path.join(root, 'timing')]);
    fullRunMs = Date.now() - started;
    expect(full.code).toBe(0);
  });
  afterAll(async () => {
    process.stdout.write(`kill -9 rounds (full init ${fullRunMs} ms): ${seen.join(', ')}\n`);
    await rm(root, { recursive: true, force: true });
  });

  for (let round = 1; round <= KILL_ROUNDS; round++) {
    const command = round % 2 === 1 ? 'init' : 'serve';
    it(`round ${round} (${command}): no half-written file, and the restart serves exactly one root`, async () => {
      const dir = path.join(root, `round-${round}`, 'credentials');
      // Rounds alternate in pairs: a random moment in the second half of the process's life
      // (key generation and writing), or 0-15 ms after the directory appears (inside the write
      // sequence: lock, staging, journal, renames).
      const trigger: KillTrigger =
        round % 4 < 2
          ? { afterSpawnMs: Math.round(fullRunMs * (0.5 + 0.6 * Math.random())) }
          : { afterDirectoryMs: Math.floor(16 * Math.random()) };
      await mkdir(path.dirname(dir), { recursive: true });
      const args =
        command === 'init'
          ? ['init', '--issuer-credentials', dir]
          : [
              'serve',
              '--issuer-credentials',
              dir,
              '--port',
              '0',
              '--healthz-port',
              '0',
              '--enable-metrics=false',
              '--workers',
              '1',
              '--listen-address',
              '127.0.0.1',
            ];
      const ended = await killAt(args, dir, trigger);
      const before = await readdir(dir).catch(() => [] as string[]);
      const committed =
        MATERIAL.every((f) => before.includes(f)) && !before.includes('.warden-create.journal');
      const rootBefore = committed
        ? certificatesIn(await readFile(path.join(dir, 'ca.crt'), 'utf8'))[0]?.fingerprint256
        : undefined;
      seen.push(
        `${'afterSpawnMs' in trigger ? `spawn+${trigger.afterSpawnMs}` : `dir+${trigger.afterDirectoryMs}`}ms→${ended === 'SIGKILL' ? 'killed' : `exit ${String(ended)}`}:${committed ? 'committed' : before.length === 0 ? 'empty' : `partial[${before.sort().join(' ')}]`}`,
      );
      expect(await halfWrittenFiles(dir)).toEqual([]);

      const child = await startWardenChild({ credentialsDir: dir });
      try {
        const anchors = certificatesIn(await child.anchorsPem());
        expect(anchors).toHaveLength(1);
        if (rootBefore !== undefined) expect(anchors[0]?.fingerprint256).toBe(rootBefore);
        const client = createSentryTestClient({
          address: `127.0.0.1:${child.grpcPort}`,
          anchorsPem: await child.anchorsPem(),
          expectedSpiffeId: SENTRY_ID,
        });
        const csr = await makePeculiarCsr('P-256');
        const outcome = await attemptSign(client, {
          id: 'after-crash',
          namespace: 'default',
          certificate_signing_request: Buffer.from(csr.pem),
        });
        client.close();
        expect(outcome.kind).toBe('issued');
      } finally {
        await child.stop();
      }
      // Recovery left the three files and nothing else: no staging directory, journal or temp
      // file. A lock whose holder was killed after the commit may stay (a start that finds
      // complete material needs no lock); it must name a dead process, so it is broken at once.
      const after = (await readdir(dir)).sort();
      expect(after.filter((f) => f !== '.warden.lock' && !EXTRAS.includes(f))).toEqual(MATERIAL);
      if (after.includes('.warden.lock')) {
        const holder = JSON.parse(await readFile(path.join(dir, '.warden.lock'), 'utf8')) as {
          pid: number;
        };
        expect(() => process.kill(holder.pid, 0)).toThrow(/ESRCH/);
      }
    }, 30_000);
  }
});

describe('a kill -9 while the creation journal itself is being written', () => {
  // The window is a millisecond wide (between writeFileAtomic's open and its rename), too
  // narrow to hit with a timed kill, so the state it leaves is made by hand: the staged
  // files and the journal's half-written temp file, no journal.
  it('leaves nothing behind after the restart: the stray temp file is removed with the staging directory', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'warden-journal-temp-'));
    try {
      await mkdir(path.join(dir, '.warden-staging'), { mode: 0o700 });
      await writeFile(path.join(dir, '.warden-staging', 'issuer.key'), 'staged\n');
      await writeFile(
        path.join(dir, '..warden-create.journal.0123456789ab.tmp'),
        '{"version":1,"pid":',
      );
      const ca = await startFileCa({
        credentialsDir: dir,
        trustDomain: 'localhost',
        logger: silentLogger,
      });
      expect(ca.origin).toBe('generated');
      await ca.close();
      expect((await readdir(dir)).filter((f) => !EXTRAS.includes(f)).sort()).toEqual(MATERIAL);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('credentials directory unusable', () => {
  let root: string;
  beforeAll(async () => {
    root = await mkdtemp(path.join(tmpdir(), 'warden-creds-'));
  });
  afterAll(async () => {
    await rm(root, { recursive: true, force: true });
  });

  it('a path component that is a file (ENOTDIR): serve and init exit 1 with a clear error and write nothing', async () => {
    const blocker = path.join(root, 'not-a-directory');
    await writeFile(blocker, 'a file where a directory should be\n');
    const dir = path.join(blocker, 'credentials');
    for (const args of [
      [
        'serve',
        '--issuer-credentials',
        dir,
        '--port',
        '0',
        '--healthz-port',
        '0',
        '--enable-metrics=false',
      ],
      ['init', '--issuer-credentials', dir],
    ]) {
      const result = await runWardenCli(args);
      expect(result.code).toBe(1);
      expect(result.stderr).toMatch(
        /ERR_TRUST_MATERIAL_IO: cannot \w+ .*not-a-directory\/credentials.*: ENOTDIR/,
      );
      expect(result.stderr).not.toMatch(/PRIVATE KEY/);
    }
    expect(await readFile(blocker, 'utf8')).toBe('a file where a directory should be\n');
  });

  /*
   * "Disk full", simulated honestly without a mount: RLIMIT_FSIZE (`ulimit -f`) makes a write
   * past the limit fail with EFBIG after writing what fits (Node ignores SIGXFSZ), the same
   * short-write-then-error path as ENOSPC. 1 block (512 bytes for dash) lets the lock and the
   * key through and cuts the issuer certificate in half.
   */
  it('a disk that fills up mid-write (ulimit -f): a clear error, nothing half-written left behind', async () => {
    const dir = path.join(root, 'full', 'credentials');
    const result = await runWardenCli(['init', '--issuer-credentials', dir], {
      shellPrefix: 'ulimit -f 1;',
    });
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(
      /ERR_TRUST_MATERIAL_IO: cannot write trust material into .*: EFBIG/,
    );
    expect(await readdir(dir)).toEqual([]);
    // The same directory works once there is room again.
    expect((await runWardenCli(['init', '--issuer-credentials', dir])).code).toBe(0);
  });

  it('existing material keeps serving on a full disk (nothing needs writing to start)', async () => {
    const dir = path.join(root, 'existing', 'credentials');
    expect((await runWardenCli(['init', '--issuer-credentials', dir])).code).toBe(0);
    const before = await readFile(path.join(dir, 'ca.crt'), 'utf8');
    const child = await startWardenChild({ credentialsDir: dir, shellPrefix: 'ulimit -f 0;' });
    try {
      const client = createSentryTestClient({
        address: `127.0.0.1:${child.grpcPort}`,
        anchorsPem: before,
        expectedSpiffeId: SENTRY_ID,
      });
      const outcome = await attemptSign(client, {
        id: 'full-disk',
        namespace: 'default',
        certificate_signing_request: Buffer.from((await makePeculiarCsr('P-256')).pem),
      });
      client.close();
      expect(outcome.kind).toBe('issued');
    } finally {
      await child.stop();
    }
    expect(await readFile(path.join(dir, 'ca.crt'), 'utf8')).toBe(before);
  });

  it('the credentials directory replaced by a file while serving: reload refuses with a clear error and the old material keeps serving', async () => {
    const w = await startHostileWarden({ withoutJwks: true });
    try {
      const csr = await makePeculiarCsr('P-256');
      const request = {
        id: 'still-serving',
        namespace: 'default',
        certificate_signing_request: Buffer.from(csr.pem),
      };
      const generation = w.server.ca.current().generation;
      const moved = `${w.credentialsDir}.moved`;
      await rename(w.credentialsDir, moved);
      await writeFile(w.credentialsDir, 'not a directory\n');

      await expect(w.server.ca.reload()).rejects.toMatchObject({
        code: 'ERR_TRUST_MATERIAL_IO',
        message: expect.stringMatching(/cannot (read|inspect) .*ENOTDIR/),
      });
      expect(
        w.log.lines().some((l) => l.msg === 'reload refused: keeping the current trust material'),
      ).toBe(true);
      expect(w.server.ca.current().generation).toBe(generation);
      expect((await attemptSign(w.client, request)).kind).toBe('issued');
      expect((await w.healthz()).status).toBe(200);

      await rm(w.credentialsDir);
      await rename(moved, w.credentialsDir);
      expect((await w.server.ca.reload()).generation).toBe(generation);
      expect((await attemptSign(w.client, request)).kind).toBe('issued');
    } finally {
      await w.close();
    }
  });
});
