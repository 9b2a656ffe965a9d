import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { spawn } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { cp, readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startFileCa } from '../../../src/ca/file-ca.js';
import {
  createFileTrustStore,
  LOCK_FILE,
  type FileReplaceStep,
} from '../../../src/ca/file-trust-store.js';
import { parsePemBlocks } from '../../../src/ca/pem.js';
import { DEFAULT_ROTATION_POLICY } from '../../../src/ca/rotation/rotation-policy.js';
import { parseRotationState, type RotationPhase } from '../../../src/ca/rotation/rotation-state.js';
import {
  activateRotation,
  prepareRotation,
  readRotationView,
  retireRotation,
  type RotationContext,
  type StepResult,
} from '../../../src/ca/rotation/rotation-steps.js';
import type { StoredTrust } from '../../../src/ca/trust-store.js';
import { makeTempDir, removeTempDir } from '../../support/temp-dir.js';

const CHILD = fileURLToPath(new URL('../../support/rotation-child.js', import.meta.url));
const TD = 'example.org';

interface ChildResult {
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
    child.on('exit', (_code, signal) => {
      clearTimeout(timer);
      resolve({ signal, stdout, stderr });
    });
  });
}

type Step = 'prepare' | 'activate' | 'retire';
const RUN: Record<Step, (c: RotationContext) => Promise<StepResult>> = {
  prepare: (c) => prepareRotation(c),
  activate: (c) => activateRotation(c, { force: true }),
  retire: (c) => retireRotation(c, { force: true }),
};
const BEFORE: Record<Step, RotationPhase> = {
  prepare: 'idle',
  activate: 'prepared',
  retire: 'activated',
};
const AFTER: Record<Step, RotationPhase> = {
  prepare: 'prepared',
  activate: 'activated',
  retire: 'idle',
};

/** Every durable point of each step's replace(), in the order the store reaches them. */
const CRASH_POINTS: Record<Step, readonly FileReplaceStep[]> = {
  prepare: [
    'locked',
    'staged',
    'journal-written',
    'placed:anchors',
    'placed:rotationState',
    'placed:nextRootKey',
    'placed:nextIssuerChain',
    'placed:nextIssuerKey',
    'committed',
  ],
  activate: [
    'locked',
    'staged',
    'journal-written',
    'placed:issuerChain',
    'placed:issuerKey',
    'placed:rootKey',
    'placed:rotationState',
    'removed:nextRootKey',
    'removed:nextIssuerChain',
    'removed:nextIssuerKey',
    'committed',
  ],
  retire: [
    'locked',
    'staged',
    'journal-written',
    'placed:anchors',
    'placed:rotationState',
    'committed',
  ],
};
const UNCOMMITTED: readonly FileReplaceStep[] = ['locked', 'staged'];

/** Every file Warden wrote must be whole: PEM that parses, or a rotation state that parses. */
async function expectNoHalfWrittenFile(dir: string): Promise<void> {
  for (const name of await readdir(dir)) {
    if (name.startsWith('.')) continue;
    const text = await readFile(path.join(dir, name), 'utf8');
    if (name === 'rotation.json') parseRotationState(text);
    else expect(parsePemBlocks(text)).toMatchObject({ ok: true });
  }
}

function anchorsOf(stored: StoredTrust): string[] {
  const parsed = parsePemBlocks(stored.material.anchorsPem);
  if (!parsed.ok) throw new Error(parsed.problem);
  return parsed.blocks.map((b) => new X509Certificate(b.der).fingerprint256);
}

describe('kill -9 in the middle of a rotation step, then a rerun or restart', () => {
  let root: string;
  let n = 0;
  // Concurrent tests may start before beforeAll hooks finish, so every test awaits this.
  let templates: Promise<Record<Step, string>> | null = null;
  const templatesReady = (): Promise<Record<Step, string>> => (templates ??= makeTemplates());

  /** One directory per starting phase, copied for every crash point. */
  async function makeTemplates(): Promise<Record<Step, string>> {
    root = await makeTempDir();
    const context = (dir: string): RotationContext => ({
      store: createFileTrustStore({ directory: dir }),
      policy: DEFAULT_ROTATION_POLICY,
    });
    const prepare = path.join(root, 'template-prepare');
    const ca = await startFileCa({ credentialsDir: prepare, trustDomain: TD });
    await ca.close();
    const activate = path.join(root, 'template-activate');
    await cp(prepare, activate, { recursive: true });
    await prepareRotation(context(activate));
    const retire = path.join(root, 'template-retire');
    await cp(activate, retire, { recursive: true });
    await activateRotation(context(retire), { force: true });
    return { prepare, activate, retire };
  }

  beforeAll(async () => {
    await templatesReady();
  });
  afterAll(async () => {
    await removeTempDir(root);
  });

  const cases = (Object.keys(CRASH_POINTS) as Step[]).flatMap((step) =>
    CRASH_POINTS[step].map((at) => [step, at] as const),
  );
  // Children run a few at a time: each one is mostly waiting for its own start-up.
  it.concurrent.each(cases)('%s killed right after "%s" converges', async (step, at) => {
    const dir = path.join(root, `case-${++n}`);
    await cp((await templatesReady())[step], dir, { recursive: true });
    const context: RotationContext = {
      store: createFileTrustStore({ directory: dir }),
      policy: DEFAULT_ROTATION_POLICY,
    };
    const before = await context.store.read();
    const beforeState = (await readRotationView(context)).state;
    expect(beforeState.phase).toBe(BEFORE[step]);

    const crashed = await runChild([step, dir, at]);
    expect(crashed.stderr).toBe('');
    expect(crashed.signal).toBe('SIGKILL');
    await expectNoHalfWrittenFile(dir);

    // Recovery happens on the next read (a restart, a reload, the CLI): all or nothing.
    const ca = await startFileCa({ credentialsDir: dir, trustDomain: TD, generateIfAbsent: false });
    const recovered = await readRotationView(context);
    const committed = !UNCOMMITTED.includes(at);
    expect(recovered.state.phase).toBe(committed ? AFTER[step] : BEFORE[step]);
    expect(recovered.state.revision).toBe(beforeState.revision + (committed ? 1 : 0));
    if (!committed) expect(recovered.stored).toEqual(before);
    expect(ca.current().anchorsPem).toBe(recovered.material.anchorsPem);
    expect(ca.current().issuerChainPem).toBe(recovered.material.issuerChainPem);
    await ca.close();
    // A journal is always settled by then. Staging without a journal (killed before the
    // commit point) is inert: readers ignore it and the next writer removes it.
    expect((await readdir(dir)).filter((f) => f.startsWith('.') && f !== LOCK_FILE)).toEqual(
      at === 'staged' ? ['.warden-staging'] : [],
    );

    // Rerunning the step finishes the job or finds it done; either way exactly one outcome.
    const rerun = await RUN[step](context);
    expect(rerun.changed).toBe(!committed);
    expect(rerun.state.phase).toBe(AFTER[step]);
    const final = (await context.store.read()) as StoredTrust;
    if (step === 'prepare') {
      // Never two different "next" roots: the one the child committed is the one kept.
      expect(anchorsOf(final)).toHaveLength(2);
      if (committed) expect(anchorsOf(final)).toEqual(anchorsOf(recovered.stored));
    }
    if (step === 'retire') expect(anchorsOf(final)).toHaveLength(1);
    await expectNoHalfWrittenFile(dir);
    expect((await readdir(dir)).filter((f) => f.startsWith('.') && f !== LOCK_FILE)).toEqual([]);
  });
});
