import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { createHash } from 'node:crypto';
import { chmod, mkdir, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import path from 'node:path';
import {
  createFileTrustStore,
  JOURNAL_FILE,
  LOCK_FILE,
  REPLACE_JOURNAL_FILE,
  STAGING_DIR,
} from '../../../src/ca/file-trust-store.js';
import { generateTrustMaterial } from '../../../src/ca/generate.js';
import type { TrustMaterialPem } from '../../../src/ca/trust-material.js';
import {
  DEFAULT_TRUST_EXTRA_NAMES,
  TRUST_EXTRAS,
  type TrustExtra,
} from '../../../src/ca/trust-store.js';
import { ManualClock } from '../../../src/shared/clock.js';
import type { WardenError } from '../../../src/shared/errors.js';
import { describeTrustMaterialStoreConformance } from '../../conformance/trust-material-store-conformance.js';
import { makeTempDir, removeTempDir } from '../../support/temp-dir.js';

const NAMES = { anchors: 'ca.crt', issuerChain: 'issuer.crt', issuerKey: 'issuer.key' } as const;

async function readIfPresent(file: string): Promise<string | undefined> {
  return readFile(file, 'utf8').catch(() => undefined);
}

describeTrustMaterialStoreConformance('file store', async () => {
  const root = await makeTempDir();
  // A directory that does not exist yet: the store creates it on first create().
  const directory = path.join(root, 'credentials');
  const open = () => createFileTrustStore({ directory });
  return {
    store: open(),
    open,
    async seed(parts) {
      await mkdir(directory, { recursive: true });
      if (parts.anchorsPem !== undefined)
        await writeFile(path.join(directory, NAMES.anchors), parts.anchorsPem);
      if (parts.issuerChainPem !== undefined)
        await writeFile(path.join(directory, NAMES.issuerChain), parts.issuerChainPem);
      if (parts.issuerKeyPem !== undefined)
        await writeFile(path.join(directory, NAMES.issuerKey), parts.issuerKeyPem);
    },
    async seedExtras(extras) {
      await mkdir(directory, { recursive: true });
      for (const [extra, text] of Object.entries(extras)) {
        if (text !== undefined)
          await writeFile(
            path.join(directory, DEFAULT_TRUST_EXTRA_NAMES[extra as TrustExtra]),
            text,
          );
      }
    },
    async peekExtras() {
      const out: Partial<Record<TrustExtra, string>> = {};
      for (const extra of TRUST_EXTRAS) {
        const text = await readIfPresent(path.join(directory, DEFAULT_TRUST_EXTRA_NAMES[extra]));
        if (text !== undefined) out[extra] = text;
      }
      return out;
    },
    async peek() {
      const out: Partial<Record<keyof TrustMaterialPem, string>> = {};
      const a = await readIfPresent(path.join(directory, NAMES.anchors));
      const c = await readIfPresent(path.join(directory, NAMES.issuerChain));
      const k = await readIfPresent(path.join(directory, NAMES.issuerKey));
      if (a !== undefined) out.anchorsPem = a;
      if (c !== undefined) out.issuerChainPem = c;
      if (k !== undefined) out.issuerKeyPem = k;
      return out;
    },
    cleanup: () => removeTempDir(root),
  };
});

describe('file trust store specifics', () => {
  let root: string;
  let material: TrustMaterialPem;
  let n = 0;
  const freshDir = (): string => path.join(root, `case-${++n}`);

  beforeAll(async () => {
    root = await makeTempDir();
    material = (
      await generateTrustMaterial({ trustDomain: 'example.org', clock: new ManualClock() })
    ).material;
  });
  afterAll(async () => {
    await removeTempDir(root);
  });

  it('creates the directory (and missing parents) 0700 and every file 0600', async () => {
    const directory = path.join(freshDir(), 'nested', 'credentials');
    await createFileTrustStore({ directory }).create(material);
    expect((await stat(directory)).mode & 0o777).toBe(0o700);
    expect((await stat(path.dirname(directory))).mode & 0o777).toBe(0o700);
    for (const name of Object.values(NAMES)) {
      expect((await stat(path.join(directory, name))).mode & 0o777).toBe(0o600);
    }
  });

  it('tightens an existing, empty, group-readable directory to 0700 before writing keys', async () => {
    const directory = freshDir();
    await mkdir(directory, { mode: 0o755 });
    await chmod(directory, 0o755);
    await createFileTrustStore({ directory }).create(material);
    expect((await stat(directory)).mode & 0o777).toBe(0o700);
  });

  it('leaves exactly the three files behind: no lock, journal, staging or temp files', async () => {
    const directory = freshDir();
    await createFileTrustStore({ directory }).create(material);
    expect((await readdir(directory)).sort()).toEqual(['ca.crt', 'issuer.crt', 'issuer.key']);
  });

  it('uses the configured file names', async () => {
    const directory = freshDir();
    const names = { anchors: 'roots.pem', issuerChain: 'chain.pem', issuerKey: 'signing.pem' };
    const store = createFileTrustStore({ directory, names });
    await store.create(material);
    expect((await readdir(directory)).sort()).toEqual(['chain.pem', 'roots.pem', 'signing.pem']);
    expect(await readFile(path.join(directory, 'signing.pem'), 'utf8')).toBe(material.issuerKeyPem);
    expect(store.pathOf('anchors')).toBe(path.join(directory, 'roots.pem'));
    expect(store.describe()).toContain('roots.pem');
  });

  it.each([
    [
      'a path instead of a name',
      { ...NAMES, issuerKey: '../issuer.key' },
      'must be a plain file name',
    ],
    ['an empty name', { ...NAMES, anchors: '' }, 'must be a plain file name'],
    ['a reserved name', { ...NAMES, anchors: JOURNAL_FILE }, 'is reserved'],
    ['two parts with one name', { ...NAMES, issuerChain: 'ca.crt' }, 'must differ'],
  ])('refuses %s as a file name', (_what, names, fragment) => {
    let err: unknown;
    try {
      createFileTrustStore({ directory: freshDir(), names });
    } catch (e) {
      err = e;
    }
    expect((err as WardenError).code).toBe('ERR_CONFIG_INVALID');
    expect((err as WardenError).message).toContain(fragment);
  });

  it('loads null without creating anything when the directory does not exist', async () => {
    const directory = freshDir();
    expect(await createFileTrustStore({ directory }).load()).toBeNull();
    await expect(stat(directory)).rejects.toThrow();
  });

  it('loads complete material without touching the lock (so a read-only mount works)', async () => {
    const directory = freshDir();
    await createFileTrustStore({ directory }).create(material);
    // A lock held by a live process (this one): a load that tried to take it would time out.
    const lock = JSON.stringify({
      pid: process.pid,
      host: hostname(),
      nonce: 'held',
      createdAt: new Date().toISOString(),
    });
    await writeFile(path.join(directory, LOCK_FILE), lock);
    const store = createFileTrustStore({ directory, lock: { timeoutMs: 50 } });
    expect(await store.load()).toEqual(material);
    // ...and the same lock does block a load that needs to settle a partial set.
    await rm(path.join(directory, NAMES.anchors));
    const err = await store.load().catch((e: unknown) => e);
    expect((err as WardenError).message).toContain('timed out');
    expect(await readFile(path.join(directory, LOCK_FILE), 'utf8')).toBe(lock);
  });

  function journalFor(parts: readonly (keyof typeof NAMES)[]): string {
    const files = parts.map((part) => {
      const text =
        part === 'anchors'
          ? material.anchorsPem
          : part === 'issuerChain'
            ? material.issuerChainPem
            : material.issuerKeyPem;
      return { name: NAMES[part], sha256: createHash('sha256').update(text).digest('hex') };
    });
    return JSON.stringify({ version: 1, pid: 999999, files });
  }

  it('rolls back an interrupted creation (journal present, key placed, ca.crt not) and then reports absent', async () => {
    const directory = freshDir();
    await mkdir(path.join(directory, STAGING_DIR), { recursive: true });
    await writeFile(path.join(directory, STAGING_DIR, 'ca.crt'), material.anchorsPem);
    await writeFile(path.join(directory, NAMES.issuerKey), material.issuerKeyPem);
    await writeFile(path.join(directory, NAMES.issuerChain), material.issuerChainPem);
    await writeFile(
      path.join(directory, JOURNAL_FILE),
      journalFor(['issuerKey', 'issuerChain', 'anchors']),
    );
    expect(await createFileTrustStore({ directory }).load()).toBeNull();
    expect(await readdir(directory)).toEqual([]);
  });

  it('does not treat a complete set as committed while its journal exists', async () => {
    const directory = freshDir();
    await createFileTrustStore({ directory }).create(material);
    await writeFile(
      path.join(directory, JOURNAL_FILE),
      journalFor(['issuerKey', 'issuerChain', 'anchors']),
    );
    expect(await createFileTrustStore({ directory }).load()).toBeNull();
    expect(await readdir(directory)).toEqual([]);
  });

  it('keeps a file an operator put in place of ours during the interruption, and then refuses the partial set', async () => {
    const directory = freshDir();
    await mkdir(directory, { recursive: true });
    await writeFile(path.join(directory, NAMES.issuerKey), material.issuerKeyPem);
    await writeFile(path.join(directory, NAMES.issuerChain), 'operator bytes\n');
    await writeFile(
      path.join(directory, JOURNAL_FILE),
      journalFor(['issuerKey', 'issuerChain', 'anchors']),
    );
    const err = await createFileTrustStore({ directory })
      .load()
      .catch((e: unknown) => e);
    expect((err as WardenError).code).toBe('ERR_TRUST_MATERIAL_INVALID');
    expect((err as WardenError).message).toContain(
      'ca.crt, issuer.key missing (issuer.crt present)',
    );
    expect(await readFile(path.join(directory, NAMES.issuerChain), 'utf8')).toBe(
      'operator bytes\n',
    );
  });

  it('removes a leftover staging directory (a crash before the journal) and creates normally', async () => {
    const directory = freshDir();
    await mkdir(path.join(directory, STAGING_DIR), { recursive: true });
    await writeFile(path.join(directory, STAGING_DIR, 'issuer.key'), 'half');
    expect(await createFileTrustStore({ directory }).create(material)).toBe('created');
    expect((await readdir(directory)).sort()).toEqual(['ca.crt', 'issuer.crt', 'issuer.key']);
  });

  it('refuses to guess when the journal is not one of ours', async () => {
    const directory = freshDir();
    await mkdir(directory, { recursive: true });
    await writeFile(path.join(directory, JOURNAL_FILE), 'garbage');
    const err = await createFileTrustStore({ directory })
      .load()
      .catch((e: unknown) => e);
    expect((err as WardenError).code).toBe('ERR_TRUST_MATERIAL_IO');
    expect((err as WardenError).message).toContain('remove it by hand');
  });

  it('rolls back what it placed when a write fails part-way, leaving nothing', async () => {
    const directory = freshDir();
    const store = createFileTrustStore({
      directory,
      onCreateStep: (step) => {
        if (step === 'placed:issuerChain') throw new Error('disk full (simulated)');
      },
    });
    const err = await store.create(material).catch((e: unknown) => e);
    expect((err as WardenError).code).toBe('ERR_TRUST_MATERIAL_IO');
    expect(await readdir(directory)).toEqual([]);
    expect(await createFileTrustStore({ directory }).create(material)).toBe('created');
  });

  it('refuses a part that is a directory, and an oversized part, by name', async () => {
    const directory = freshDir();
    await mkdir(path.join(directory, NAMES.anchors), { recursive: true });
    await writeFile(path.join(directory, NAMES.issuerChain), material.issuerChainPem);
    await writeFile(path.join(directory, NAMES.issuerKey), material.issuerKeyPem);
    const err = await createFileTrustStore({ directory })
      .load()
      .catch((e: unknown) => e);
    expect((err as WardenError).message).toContain('ca.crt');
    expect((err as WardenError).message).toContain('not a regular file');

    await rm(path.join(directory, NAMES.anchors), { recursive: true });
    await writeFile(path.join(directory, NAMES.anchors), 'x'.repeat(1024 * 1024 + 1));
    const big = await createFileTrustStore({ directory })
      .load()
      .catch((e: unknown) => e);
    expect((big as WardenError).code).toBe('ERR_TRUST_MATERIAL_INVALID');
    expect((big as WardenError).message).toContain('ca.crt is larger than');
  });

  describe('replace()', () => {
    const EXTRAS = { rootKey: 'root key\n', rotationState: '{"revision":1}\n' };

    async function created(directory: string): Promise<ReturnType<typeof createFileTrustStore>> {
      const store = createFileTrustStore({ directory });
      await store.create(material, EXTRAS);
      return store;
    }

    it('writes changed files 0600 and leaves no journal, staging or temp files', async () => {
      const directory = freshDir();
      const store = await created(directory);
      const next = {
        material: { ...material, anchorsPem: material.anchorsPem + material.anchorsPem },
        extras: { rotationState: '{"revision":2}\n', nextRootKey: 'k' },
      };
      expect(await store.replace({ material, extras: EXTRAS }, next)).toBe('replaced');
      expect((await readdir(directory)).sort()).toEqual([
        'ca.crt',
        'issuer.crt',
        'issuer.key',
        'next-root.key',
        'rotation.json',
      ]);
      for (const name of await readdir(directory))
        expect((await stat(path.join(directory, name))).mode & 0o777).toBe(0o600);
    });

    it('uses --root-key-filename for the root key', async () => {
      const directory = freshDir();
      const store = createFileTrustStore({ directory, rootKeyName: 'warden-root.pem' });
      await store.create(material, { rootKey: 'k' });
      expect(await readFile(path.join(directory, 'warden-root.pem'), 'utf8')).toBe('k');
      expect(store.extraNames.rootKey).toBe('warden-root.pem');
      expect(() => createFileTrustStore({ directory, rootKeyName: 'issuer.key' })).toThrow(
        'already used',
      );
    });

    it('rolls an interrupted replacement forward (journal written, one file placed, one still staged)', async () => {
      const directory = freshDir();
      await created(directory);
      const nextAnchors = material.anchorsPem + material.anchorsPem;
      const nextState = '{"revision":2}\n';
      const sha = (t: string): string => createHash('sha256').update(t).digest('hex');
      // As a writer killed after placing ca.crt: rotation.json still staged, root.key to go.
      await mkdir(path.join(directory, STAGING_DIR));
      await writeFile(path.join(directory, STAGING_DIR, 'rotation.json'), nextState);
      await writeFile(path.join(directory, NAMES.anchors), nextAnchors);
      await writeFile(
        path.join(directory, REPLACE_JOURNAL_FILE),
        JSON.stringify({
          version: 1,
          kind: 'replace',
          pid: 999999,
          writes: [
            { name: 'ca.crt', sha256: sha(nextAnchors) },
            { name: 'rotation.json', sha256: sha(nextState) },
          ],
          removes: ['root.key'],
        }),
      );
      const store = createFileTrustStore({ directory });
      expect(await store.read()).toEqual({
        material: { ...material, anchorsPem: nextAnchors },
        extras: { rotationState: nextState },
      });
      expect((await readdir(directory)).sort()).toEqual([
        'ca.crt',
        'issuer.crt',
        'issuer.key',
        'rotation.json',
      ]);
    });

    it('drops a staging directory without a journal (a crash before the commit point)', async () => {
      const directory = freshDir();
      const store = await created(directory);
      await mkdir(path.join(directory, STAGING_DIR));
      await writeFile(path.join(directory, STAGING_DIR, 'ca.crt'), 'half');
      expect(
        await store.replace(
          { material, extras: EXTRAS },
          { material, extras: { ...EXTRAS, rotationState: 'x' } },
        ),
      ).toBe('replaced');
      expect(await readFile(path.join(directory, NAMES.anchors), 'utf8')).toBe(material.anchorsPem);
      expect(await readdir(directory)).not.toContain(STAGING_DIR);
    });

    it.each([
      ['staged', 'conflict-free but abandoned', false],
      ['journal-written', 'committed and rolled forward', true],
      ['placed:anchors', 'committed and rolled forward', true],
    ] as const)('a failure right after "%s" is %s', async (failAt, _what, replaced) => {
      const directory = freshDir();
      await created(directory);
      const failing = createFileTrustStore({
        directory,
        onReplaceStep: (step) => {
          if (step === failAt) throw new Error('disk trouble (simulated)');
        },
      });
      const next = {
        material: { ...material, anchorsPem: material.anchorsPem + material.anchorsPem },
        extras: { rotationState: 'next' },
      };
      const outcome = await failing
        .replace({ material, extras: EXTRAS }, next)
        .catch((e: unknown) => e);
      const after = await createFileTrustStore({ directory }).read();
      if (replaced) {
        expect(outcome).toBe('replaced');
        expect(after).toEqual(next);
      } else {
        expect((outcome as WardenError).code).toBe('ERR_TRUST_MATERIAL_IO');
        expect(after).toEqual({ material, extras: EXTRAS });
      }
      expect((await readdir(directory)).filter((n) => n.startsWith('.'))).toEqual([]);
    });

    it('refuses to guess when the replacement journal is not one of ours, or names a path', async () => {
      for (const journal of [
        'garbage',
        JSON.stringify({
          version: 1,
          kind: 'replace',
          pid: 1,
          writes: [{ name: '../x', sha256: 'a' }],
          removes: [],
        }),
      ]) {
        const directory = freshDir();
        await created(directory);
        await writeFile(path.join(directory, REPLACE_JOURNAL_FILE), journal);
        const err = await createFileTrustStore({ directory })
          .read()
          .catch((e: unknown) => e);
        expect((err as WardenError).code).toBe('ERR_TRUST_MATERIAL_IO');
        expect((err as WardenError).message).toContain('remove it by hand');
      }
    });

    it('never lets a lock-free reader see a mixture of two replacements', async () => {
      const directory = freshDir();
      const writer = await created(directory);
      const a = { material, extras: EXTRAS };
      const b = {
        material: {
          anchorsPem: `${material.anchorsPem}${material.anchorsPem}`,
          issuerChainPem: `${material.issuerChainPem}\n`,
          issuerKeyPem: `${material.issuerKeyPem}\n`,
        },
        extras: { rootKey: 'other\n', rotationState: '{"revision":2}\n' },
      };
      const reader = createFileTrustStore({ directory });
      let flips = 0;
      let reads = 0;
      let done = false;
      const writing = (async () => {
        let current = a;
        for (let i = 0; i < 40; i++) {
          const next = current === a ? b : a;
          expect(await writer.replace(current, next)).toBe('replaced');
          current = next;
          flips++;
        }
        done = true;
      })();
      while (!done) {
        const seen = await reader.read();
        expect([a, b]).toContainEqual(seen);
        reads++;
      }
      await writing;
      expect(flips).toBe(40);
      expect(reads).toBeGreaterThan(0);
    });
  });

  it('does not leave its lock behind after load or create', async () => {
    const directory = freshDir();
    const store = createFileTrustStore({ directory });
    await store.create(material);
    await store.load();
    await expect(stat(path.join(directory, LOCK_FILE))).rejects.toThrow();
  });
});
