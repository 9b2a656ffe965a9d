import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { spawn } from 'node:child_process';
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { mkdir, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startFileCa, type FileCa } from '../../../src/ca/file-ca.js';
import { acquireFileLock } from '../../../src/ca/file-lock.js';
import { LOCK_FILE } from '../../../src/ca/file-trust-store.js';
import { generateTrustMaterial, type GeneratedTrustMaterial } from '../../../src/ca/generate.js';
import type { TrustBundle } from '../../../src/ca/trust-bundle.js';
import { writeFileAtomic } from '../../../src/shared/atomic-file.js';
import { ManualClock } from '../../../src/shared/clock.js';
import { WardenError } from '../../../src/shared/errors.js';
import { createLogger, type Logger } from '../../../src/shared/logger.js';
import { makeOpensslMaterial } from '../../support/pki-fixtures.js';
import { makeTempDir, removeTempDir } from '../../support/temp-dir.js';

const CHILD = fileURLToPath(new URL('../../support/file-ca-child.js', import.meta.url));
const DAY = 86_400_000;
const TD = 'example.org';

interface CapturedLogger {
  readonly logger: Logger;
  readonly lines: () => Record<string, unknown>[];
  readonly text: () => string;
}

function captureLogs(): CapturedLogger {
  const chunks: string[] = [];
  const logger = createLogger({
    level: 'debug',
    destination: { write: (msg: string) => void chunks.push(msg) },
  });
  return {
    logger,
    text: () => chunks.join(''),
    lines: () =>
      chunks
        .join('')
        .split('\n')
        .filter((l) => l.length > 0)
        .map((l) => JSON.parse(l) as Record<string, unknown>),
  };
}

function keyChunks(pem: string): string[] {
  const body = pem.replace(/-----[A-Z ]+-----/g, '').replace(/\s+/g, '');
  const out: string[] = [];
  for (let i = 0; i + 16 <= body.length; i += 16) out.push(body.slice(i, i + 16));
  return out;
}

/** Names, modes and bytes of everything in a directory: to prove nothing was touched. */
async function snapshot(dir: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const name of (await readdir(dir)).sort()) {
    const file = path.join(dir, name);
    const s = await stat(file);
    out[name] =
      `${(s.mode & 0o777).toString(8)}:${s.isFile() ? await readFile(file, 'base64') : 'dir'}`;
  }
  return out;
}

async function writeMaterial(dir: string, m: GeneratedTrustMaterial['material']): Promise<void> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  await writeFileAtomic(path.join(dir, 'issuer.key'), m.issuerKeyPem);
  await writeFileAtomic(path.join(dir, 'issuer.crt'), m.issuerChainPem);
  await writeFileAtomic(path.join(dir, 'ca.crt'), m.anchorsPem);
}

interface ChildResult {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
}

function runChild(args: readonly string[]): Promise<ChildResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CHILD, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

describe('startFileCa', () => {
  let root: string;
  let n = 0;
  const freshDir = (): string => path.join(root, `case-${++n}`);
  let other: GeneratedTrustMaterial;
  const opened: FileCa[] = [];
  const start = async (options: Parameters<typeof startFileCa>[0]): Promise<FileCa> => {
    const ca = await startFileCa(options);
    opened.push(ca);
    return ca;
  };

  beforeAll(async () => {
    root = await makeTempDir();
    other = await generateTrustMaterial({ trustDomain: 'other.org' });
  });
  afterAll(async () => {
    for (const ca of opened) await ca.close();
    await removeTempDir(root);
  });

  it('generates material on an empty directory and serves it as a TrustBundle of generation 1', async () => {
    const dir = freshDir();
    const logs = captureLogs();
    const ca = await start({ credentialsDir: dir, trustDomain: TD, logger: logs.logger });
    const bundle = ca.current();
    expect(ca.origin).toBe('generated');
    expect(ca.ready()).toBe(true);
    expect(bundle.generation).toBe(1);
    expect(bundle.anchors).toHaveLength(1);
    expect(bundle.issuerChain[0]?.checkIssued(bundle.anchors[0] as X509Certificate)).toBe(true);
    expect(bundle.issuerKey.type).toBe('private');
    expect(bundle.issuerChain[0]?.checkPrivateKey(bundle.issuerKey)).toBe(true);
    expect(bundle.issuerKeyPem).toMatch(/^-----BEGIN PRIVATE KEY-----\n/);
    expect(await readFile(path.join(dir, 'ca.crt'), 'utf8')).toBe(bundle.anchorsPem);
    expect(await readFile(path.join(dir, 'issuer.crt'), 'utf8')).toBe(bundle.issuerChainPem);
    expect(Object.isFrozen(bundle)).toBe(true);

    const line = logs.lines().find((l) => l.msg === 'generated new trust material');
    expect(line).toMatchObject({
      level: 'info',
      generation: 1,
      anchors: [
        {
          sha256Fingerprint: bundle.anchors[0]?.fingerprint256,
          subject: `O=${TD}, CN=warden-root`,
        },
      ],
      issuer: { sha256Fingerprint: bundle.issuerChain[0]?.fingerprint256 },
    });
    expect((line?.issuer as Record<string, string>).notAfter).toMatch(/^\d{4}-\d\d-\d\dT/);
    for (const chunk of keyChunks(bundle.issuerKeyPem)) expect(logs.text()).not.toContain(chunk);
    expect(logs.text()).not.toContain('PRIVATE KEY');
  });

  it('keeps the same root across a restart on the same directory, and logs that it loaded it', async () => {
    const dir = freshDir();
    const first = await start({ credentialsDir: dir, trustDomain: TD });
    const before = await snapshot(dir);
    await first.close();
    expect(first.ready()).toBe(false);
    const logs = captureLogs();
    const second = await start({ credentialsDir: dir, trustDomain: TD, logger: logs.logger });
    expect(second.origin).toBe('loaded');
    expect(second.current().anchors[0]?.fingerprint256).toBe(
      first.current().anchors[0]?.fingerprint256,
    );
    expect(second.current().issuerKeyPem).toBe(first.current().issuerKeyPem);
    expect(await snapshot(dir)).toEqual(before);
    expect(logs.lines().some((l) => l.msg === 'loaded existing trust material')).toBe(true);
  });

  it('generates Ed25519 material when asked', async () => {
    const ca = await start({
      credentialsDir: freshDir(),
      trustDomain: TD,
      keyAlgorithm: 'ed25519',
    });
    expect(ca.current().issuerKey.asymmetricKeyType).toBe('ed25519');
    expect(ca.current().anchors[0]?.publicKey.asymmetricKeyType).toBe('ed25519');
  });

  const BROKEN: readonly [
    string,
    (dir: string, good: GeneratedTrustMaterial['material']) => Promise<void>,
    string,
  ][] = [
    [
      'a corrupt ca.crt',
      (dir) => writeFile(path.join(dir, 'ca.crt'), 'garbage\n'),
      'ca.crt contains no PEM block',
    ],
    [
      'an issuer.key that belongs to another issuer',
      (dir) => writeFile(path.join(dir, 'issuer.key'), other.material.issuerKeyPem),
      'issuer.key does not match the public key of issuer.crt',
    ],
    [
      'a truncated issuer.crt',
      async (dir, good) =>
        writeFile(path.join(dir, 'issuer.crt'), good.issuerChainPem.slice(0, 200)),
      'issuer.crt contains',
    ],
    [
      'a missing issuer.key',
      (dir) => rm(path.join(dir, 'issuer.key')),
      'issuer.key missing (ca.crt, issuer.crt present)',
    ],
    [
      'anchors from another root',
      (dir) => writeFile(path.join(dir, 'ca.crt'), other.material.anchorsPem),
      'is not signed by any certificate in ca.crt',
    ],
  ];
  it.each(BROKEN)(
    'stops start-up on %s with a clear message and leaves every file byte-for-byte untouched',
    async (_name, breakIt, fragment) => {
      const dir = freshDir();
      const good = (await generateTrustMaterial({ trustDomain: TD })).material;
      await writeMaterial(dir, good);
      await breakIt(dir, good);
      const before = await snapshot(dir);
      const logs = captureLogs();
      const err = await startFileCa({
        credentialsDir: dir,
        trustDomain: TD,
        logger: logs.logger,
      }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(WardenError);
      expect((err as WardenError).code).toBe('ERR_TRUST_MATERIAL_INVALID');
      expect((err as WardenError).message).toContain(fragment);
      expect(await snapshot(dir)).toEqual(before);
      expect(
        logs.lines().some((l) => l.level === 'error' && String(l.error).includes(fragment)),
      ).toBe(true);
      for (const chunk of keyChunks(good.issuerKeyPem)) expect(logs.text()).not.toContain(chunk);
    },
  );

  it('refuses to start on material that has expired by the injected clock', async () => {
    const dir = freshDir();
    const clock = new ManualClock(Date.now());
    await start({
      credentialsDir: dir,
      trustDomain: TD,
      rootTtlMs: 30 * DAY,
      issuerTtlMs: 30 * DAY,
      clock,
    });
    clock.advance(31 * DAY);
    const err = await startFileCa({ credentialsDir: dir, trustDomain: TD, clock }).catch(
      (e: unknown) => e,
    );
    expect((err as WardenError).message).toContain(
      'ca.crt (O=example.org, CN=warden-root) expired at',
    );
  });

  it('refuses to generate when generateIfAbsent is false', async () => {
    const err = await startFileCa({
      credentialsDir: freshDir(),
      trustDomain: TD,
      generateIfAbsent: false,
    }).catch((e: unknown) => e);
    expect((err as WardenError).code).toBe('ERR_TRUST_MATERIAL_INVALID');
    expect((err as WardenError).message).toContain('no trust material in directory');
  });

  it('loads BYO material made with openssl, under custom file names, without touching it', async () => {
    const dir = freshDir();
    const work = freshDir();
    await mkdir(dir);
    await mkdir(work);
    const byo = await makeOpensslMaterial(work, {
      rootKey: 'rsa2048-pkcs1',
      issuerKey: 'p256-sec1-with-params',
      intermediate: true,
    });
    await writeFile(path.join(dir, 'roots.pem'), byo.anchorsPem, { mode: 0o644 });
    await writeFile(path.join(dir, 'chain.pem'), byo.issuerChainPem, { mode: 0o644 });
    await writeFile(path.join(dir, 'signing.key'), byo.issuerKeyPem, { mode: 0o600 });
    const before = await snapshot(dir);
    const ca = await start({
      credentialsDir: dir,
      caFilename: 'roots.pem',
      issuerCertificateFilename: 'chain.pem',
      issuerKeyFilename: 'signing.key',
      trustDomain: TD,
    });
    expect(ca.origin).toBe('loaded');
    expect(ca.current().issuerChain).toHaveLength(2);
    expect(ca.current().issuerKeyPem).toMatch(/^-----BEGIN PRIVATE KEY-----/); // SEC1 normalised to PKCS#8
    expect(await snapshot(dir)).toEqual(before);
  });

  it('warns in the log when something expires within the warning window', async () => {
    const logs = captureLogs();
    await start({
      credentialsDir: freshDir(),
      trustDomain: TD,
      issuerTtlMs: 10 * DAY,
      logger: logs.logger,
    });
    const warning = logs.lines().find((l) => l.msg === 'trust material expires within 30 days');
    expect(warning).toMatchObject({ level: 'warn', role: 'issuer' });
  });

  describe('reload()', () => {
    it('keeps the old bundle when the new key does not match, and reports why', async () => {
      const dir = freshDir();
      const logs = captureLogs();
      const ca = await start({ credentialsDir: dir, trustDomain: TD, logger: logs.logger });
      const before = ca.current();
      const heard: TrustBundle[] = [];
      ca.onChange((b) => heard.push(b));
      await writeFileAtomic(path.join(dir, 'issuer.key'), other.material.issuerKeyPem);
      const err = await ca.reload().catch((e: unknown) => e);
      expect((err as WardenError).code).toBe('ERR_TRUST_MATERIAL_INVALID');
      expect((err as WardenError).message).toContain(
        'issuer.key does not match the public key of issuer.crt',
      );
      expect(ca.current()).toBe(before);
      expect(heard).toEqual([]);
      expect(
        logs.lines().some((l) => l.msg === 'reload refused: keeping the current trust material'),
      ).toBe(true);
      for (const chunk of keyChunks(other.material.issuerKeyPem))
        expect(logs.text()).not.toContain(chunk);
    });

    it('swaps in valid new material with generation + 1 and tells every listener', async () => {
      const dir = freshDir();
      const ca = await start({ credentialsDir: dir, trustDomain: TD });
      const heard: number[] = [];
      const heardToo: number[] = [];
      ca.onChange((b) => heard.push(b.generation));
      const unsubscribe = ca.onChange((b) => heardToo.push(b.generation));
      ca.onChange(() => {
        throw new Error('a broken listener must not stop the others');
      });
      const next = (await generateTrustMaterial({ trustDomain: TD })).material;
      await writeMaterial(dir, next);
      const bundle = await ca.reload();
      expect(bundle.generation).toBe(2);
      expect(ca.current()).toBe(bundle);
      expect(bundle.anchorsPem).toBe(next.anchorsPem);
      expect(heard).toEqual([2]);
      expect(heardToo).toEqual([2]);

      unsubscribe();
      await writeMaterial(dir, (await generateTrustMaterial({ trustDomain: TD })).material);
      expect((await ca.reload()).generation).toBe(3);
      expect(heard).toEqual([2, 3]);
      expect(heardToo).toEqual([2]);
    });

    it('changes nothing when the files are unchanged, even when called concurrently', async () => {
      const dir = freshDir();
      const ca = await start({ credentialsDir: dir, trustDomain: TD });
      const heard: number[] = [];
      ca.onChange((b) => heard.push(b.generation));
      const before = ca.current();
      const results = await Promise.all([ca.reload(), ca.reload(), ca.reload()]);
      results.forEach((b) => expect(b).toBe(before));
      expect(heard).toEqual([]);

      await writeMaterial(dir, (await generateTrustMaterial({ trustDomain: TD })).material);
      const after = await Promise.all([ca.reload(), ca.reload()]);
      expect(after.map((b) => b.generation)).toEqual([2, 2]);
      expect(heard).toEqual([2]);
    });

    it('keeps the old bundle when the files disappear, and never regenerates', async () => {
      const dir = freshDir();
      const ca = await start({ credentialsDir: dir, trustDomain: TD });
      const before = ca.current();
      for (const f of ['ca.crt', 'issuer.crt', 'issuer.key']) await rm(path.join(dir, f));
      const err = await ca.reload().catch((e: unknown) => e);
      expect((err as WardenError).message).toContain('disappeared');
      expect(ca.current()).toBe(before);
      expect(await readdir(dir)).toEqual(['root.key']);
    });

    it('is refused after close()', async () => {
      const ca = await start({ credentialsDir: freshDir(), trustDomain: TD });
      await ca.close();
      await ca.close();
      await expect(ca.reload()).rejects.toThrow(TypeError);
    });
  });

  describe('across processes', () => {
    it.each([1, 2])(
      'two processes racing on one empty directory end with one root (round %i)',
      async () => {
        const dir = freshDir();
        const at = String(Date.now() + 600);
        const results = await Promise.all([
          runChild(['start', dir, at]),
          runChild(['start', dir, at]),
        ]);
        const outputs = results.map((r) => {
          expect(r.stderr).toBe('');
          expect(r.code).toBe(0);
          return JSON.parse(r.stdout) as { origin: string; fingerprint: string };
        });
        expect(outputs.map((o) => o.origin).sort()).toEqual(['generated', 'loaded']);
        expect(outputs[0]?.fingerprint).toBe(outputs[1]?.fingerprint);
        expect((await readdir(dir)).sort()).toEqual([
          'ca.crt',
          'issuer.crt',
          'issuer.key',
          'root.key',
        ]);
        expect(new X509Certificate(await readFile(path.join(dir, 'ca.crt'))).fingerprint256).toBe(
          outputs[0]?.fingerprint,
        );
      },
    );

    const STEPS = [
      'locked',
      'staged',
      'journal-written',
      'placed:rootKey',
      'placed:issuerKey',
      'placed:issuerChain',
      'placed:anchors',
      'committed',
    ] as const;
    it.each(STEPS)(
      'a kill -9 right after "%s" leaves nothing or a complete set, and the next start recovers',
      async (step) => {
        const dir = freshDir();
        const crashed = await runChild(['crash-at', dir, step]);
        expect(crashed.signal).toBe('SIGKILL');
        const leftover = await readFile(path.join(dir, 'ca.crt'), 'utf8').catch(() => undefined);

        const ca = await start({ credentialsDir: dir, trustDomain: TD });
        if (step === 'committed') {
          expect(ca.origin).toBe('loaded');
          expect(ca.current().anchorsPem).toBe(leftover);
        } else {
          // Uncommitted: rolled back and generated afresh (never served half of it).
          expect(ca.origin).toBe('generated');
          if (leftover !== undefined) expect(ca.current().anchorsPem).not.toBe(leftover);
        }
        const entries = (await readdir(dir)).sort();
        if (step === 'committed') {
          // Killed before releasing the lock: the file stays, but its holder is dead, so the
          // next process that needs the lock breaks it at once.
          expect(entries.filter((e) => e !== LOCK_FILE)).toEqual([
            'ca.crt',
            'issuer.crt',
            'issuer.key',
            'root.key',
          ]);
          const lock = await acquireFileLock(path.join(dir, LOCK_FILE), { timeoutMs: 200 });
          await lock.release();
        } else {
          expect(entries).toEqual(['ca.crt', 'issuer.crt', 'issuer.key', 'root.key']);
        }
        // Whatever survived, the root key belongs to the root that is served.
        const rootKey = createPrivateKey(await readFile(path.join(dir, 'root.key')));
        expect(ca.current().anchors[0]?.checkPrivateKey(rootKey)).toBe(true);
      },
    );
  });
});
