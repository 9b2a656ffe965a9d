import { createHash } from 'node:crypto';
import { constants as fsConstants, promises as fs } from 'node:fs';
import path from 'node:path';
import { ensurePrivateDirectory, syncDirectory, writeFileAtomic } from '../shared/atomic-file.js';
import { WardenError } from '../shared/errors.js';
import { silentLogger, type Logger } from '../shared/logger.js';
import { acquireFileLock, errnoCode, type FileLockOptions } from './file-lock.js';
import {
  DEFAULT_TRUST_MATERIAL_NAMES,
  TRUST_MATERIAL_PARTS,
  pemOf,
  type TrustMaterialNames,
  type TrustMaterialPart,
  type TrustMaterialPem,
} from './trust-material.js';
import type { TrustMaterialStore } from './trust-store.js';
import { MAX_TRUST_FILE_BYTES } from './validate.js';

/*
 * Crash consistency of create(): a kill -9 at any instant must leave either no material
 * or a complete set, never a set that looks usable but is wrong, and never anything that
 * makes Warden refuse to start on its own half-written files.
 *
 *   1. stage:   write all three files into <dir>/.warden-staging/ (each fsynced, 0600)
 *   2. journal: write <dir>/.warden-create.journal naming each target file and the SHA-256
 *               of the bytes we are about to place (written atomically)
 *   3. place:   rename issuer.key, issuer.crt, then ca.crt from staging into <dir>
 *   4. commit:  remove the (now empty) staging directory, delete the journal, fsync the directory
 *
 * The journal's removal is the commit point. While a journal exists the set is not
 * committed: load() does not return it, and whoever next takes the lock rolls it back,
 * deleting only files whose bytes still hash to what the journal recorded (so an
 * operator's file that replaced ours is never touched), then the staging directory.
 * A crash before the journal leaves only the staging directory, which is ours by name.
 * Keys are placed first and ca.crt last so that even a reader that ignored the journal
 * would see "ca.crt missing" rather than anchors without their issuer.
 *
 * Partial sets that no journal accounts for are an operator's files: load() and create()
 * refuse them with a message naming what is missing, and nothing is ever regenerated over
 * them. Creation is serialised between processes by an O_EXCL lock file; after taking it
 * the store re-checks whether material appeared while it waited.
 */

export const LOCK_FILE = '.warden.lock';
export const JOURNAL_FILE = '.warden-create.journal';
export const STAGING_DIR = '.warden-staging';
/** writeFileAtomic's temp file for the journal: `.<name>.<12 hex>.tmp`. */
const JOURNAL_TEMP = /^\.\.warden-create\.journal\.[0-9a-f]{12}\.tmp$/;

/** Points in create() at which `onCreateStep` is called (after the step is durable). */
export type FileCreateStep =
  'locked' | 'staged' | 'journal-written' | `placed:${TrustMaterialPart}` | 'committed';

export interface FileTrustStoreOptions {
  /** Dapr's --issuer-credentials. */
  readonly directory: string;
  /** File names (Dapr's --issuer-ca-filename etc.); default ca.crt, issuer.crt, issuer.key. */
  readonly names?: TrustMaterialNames;
  readonly lock?: Partial<FileLockOptions>;
  readonly logger?: Logger;
  /**
   * Called after each durable step of create(), for crash tests (a child process kills
   * itself at a chosen step) and tracing. If it throws, create() fails as if that step's
   * I/O had failed (and rolls back).
   */
  readonly onCreateStep?: (step: FileCreateStep) => void;
}

/** The file store also tells a file watcher which paths to watch. */
export interface FileTrustMaterialStore extends TrustMaterialStore {
  readonly directory: string;
  pathOf(part: TrustMaterialPart): string;
}

interface Journal {
  readonly version: 1;
  readonly pid: number;
  readonly files: readonly { readonly name: string; readonly sha256: string }[];
}

type ReadState =
  | { readonly kind: 'complete'; readonly material: TrustMaterialPem }
  | { readonly kind: 'absent' }
  | { readonly kind: 'partial'; readonly present: readonly TrustMaterialPart[] }
  | { readonly kind: 'uncommitted' };

export function createFileTrustStore(options: FileTrustStoreOptions): FileTrustMaterialStore {
  const names = checkNames(options.names ?? DEFAULT_TRUST_MATERIAL_NAMES);
  const directory = path.resolve(options.directory);
  const logger = options.logger ?? silentLogger;
  const step = options.onCreateStep ?? (() => undefined);
  const pathOf = (part: TrustMaterialPart): string => path.join(directory, names[part]);
  const journalPath = path.join(directory, JOURNAL_FILE);
  const stagingPath = path.join(directory, STAGING_DIR);
  const lockPath = path.join(directory, LOCK_FILE);
  const description = `directory ${directory} (${names.anchors}, ${names.issuerChain}, ${names.issuerKey})`;

  async function readState(): Promise<ReadState> {
    // The journal is checked before and after the files: files read while no journal
    // existed at either moment belong to committed material (or to nothing).
    if (await exists(journalPath)) return { kind: 'uncommitted' };
    const parts: Partial<Record<TrustMaterialPart, string>> = {};
    for (const part of TRUST_MATERIAL_PARTS) {
      const text = await readPart(part);
      if (text !== undefined) parts[part] = text;
    }
    if (await exists(journalPath)) return { kind: 'uncommitted' };
    const present = TRUST_MATERIAL_PARTS.filter((p) => parts[p] !== undefined);
    if (present.length === 0) return { kind: 'absent' };
    if (present.length < TRUST_MATERIAL_PARTS.length) return { kind: 'partial', present };
    return {
      kind: 'complete',
      material: {
        anchorsPem: parts.anchors as string,
        issuerChainPem: parts.issuerChain as string,
        issuerKeyPem: parts.issuerKey as string,
      },
    };
  }

  async function readPart(part: TrustMaterialPart): Promise<string | undefined> {
    const file = pathOf(part);
    try {
      const stat = await fs.stat(file);
      if (!stat.isFile())
        throw new WardenError(
          'ERR_TRUST_MATERIAL_INVALID',
          `${names[part]} in ${directory} is not a regular file`,
        );
      if (stat.size > MAX_TRUST_FILE_BYTES) {
        throw new WardenError(
          'ERR_TRUST_MATERIAL_INVALID',
          `${names[part]} is larger than ${MAX_TRUST_FILE_BYTES} bytes`,
        );
      }
      return await fs.readFile(file, 'utf8');
    } catch (err) {
      if (errnoCode(err) === 'ENOENT') return undefined;
      if (err instanceof WardenError) throw err;
      throw ioError(`cannot read ${names[part]} in ${directory}`, err);
    }
  }

  function partialError(present: readonly TrustMaterialPart[]): WardenError {
    const missing = TRUST_MATERIAL_PARTS.filter((p) => !present.includes(p));
    const list = (parts: readonly TrustMaterialPart[]): string =>
      parts.map((p) => names[p]).join(', ');
    return new WardenError(
      'ERR_TRUST_MATERIAL_INVALID',
      `trust material in ${directory} is incomplete: ${list(missing)} missing (${list(present)} present); ` +
        `Warden never generates over existing files: provide all of ${list(TRUST_MATERIAL_PARTS)}, or remove ${list(present)}`,
    );
  }

  /** Under the lock: undo an interrupted create(). */
  async function recover(): Promise<void> {
    let journalText: string | undefined;
    try {
      journalText = await fs.readFile(journalPath, 'utf8');
    } catch (err) {
      if (errnoCode(err) !== 'ENOENT') throw ioError(`cannot read ${journalPath}`, err);
    }
    if (journalText !== undefined) {
      const journal = parseJournal(journalText);
      if (!journal) {
        throw new WardenError(
          'ERR_TRUST_MATERIAL_IO',
          `${journalPath} is not a Warden creation journal; inspect ${directory} and remove it by hand`,
        );
      }
      const removed: string[] = [];
      for (const file of journal.files) {
        const target = path.join(directory, file.name);
        const text = await fs.readFile(target).catch(() => undefined);
        if (text !== undefined && sha256Hex(text) === file.sha256) {
          await fs.rm(target, { force: true });
          removed.push(file.name);
        }
      }
      await syncDirectory(directory);
      await fs.rm(journalPath, { force: true });
      await syncDirectory(directory);
      logger.warn(
        { directory, removed, interruptedPid: journal.pid },
        'rolled back an interrupted creation of trust material',
      );
    }
    await fs.rm(stagingPath, { recursive: true, force: true });
    // A kill -9 while the journal itself was being written leaves writeFileAtomic's temp
    // file (never the journal, so nothing above sees it); it is ours by name.
    for (const name of await fs.readdir(directory).catch(() => [] as string[])) {
      if (JOURNAL_TEMP.test(name)) await fs.rm(path.join(directory, name), { force: true });
    }
  }

  async function writeNew(material: TrustMaterialPem): Promise<void> {
    await fs.mkdir(stagingPath, { mode: 0o700 });
    // Key first, anchors last (see the comment at the top).
    const order: readonly TrustMaterialPart[] = ['issuerKey', 'issuerChain', 'anchors'];
    for (const part of order) {
      await writeFileAtomic(path.join(stagingPath, names[part]), pemOf(material, part), 0o600);
    }
    step('staged');
    const journal: Journal = {
      version: 1,
      pid: process.pid,
      files: order.map((part) => ({
        name: names[part],
        sha256: sha256Hex(Buffer.from(pemOf(material, part))),
      })),
    };
    await writeFileAtomic(journalPath, `${JSON.stringify(journal)}\n`, 0o600);
    step('journal-written');
    for (const part of order) {
      await fs.rename(path.join(stagingPath, names[part]), pathOf(part));
      await syncDirectory(directory);
      step(`placed:${part}`);
    }
    // Staging is empty now; removing it before the commit means a crash after the commit
    // leaves nothing behind but the three files.
    await fs.rm(stagingPath, { recursive: true, force: true });
    await fs.rm(journalPath);
    await syncDirectory(directory);
    step('committed');
  }

  async function withLock<T>(work: () => Promise<T>): Promise<T> {
    const lock = await acquireFileLock(lockPath, options.lock);
    try {
      step('locked');
      return await work();
    } finally {
      if (!(await lock.release())) {
        logger.warn(
          { lockPath },
          'the trust-material lock was broken by another process while held',
        );
      }
    }
  }

  return {
    directory,
    names,
    pathOf,
    describe: () => description,

    async load() {
      const fast = await readState();
      if (fast.kind === 'complete') return fast.material;
      if (fast.kind === 'absent') return null;
      // A journal (creation in progress, or interrupted) or a partial set (an operator's,
      // or ours caught mid-creation): decide under the lock, where nobody is writing.
      if (fast.kind === 'partial' && !(await exists(journalPath)) && !(await canWrite(directory))) {
        throw partialError(fast.present);
      }
      return withLock(async () => {
        await recover();
        const settled = await readState();
        if (settled.kind === 'complete') return settled.material;
        if (settled.kind === 'partial') throw partialError(settled.present);
        return null;
      });
    },

    async create(material) {
      await ensurePrivateDirectory(directory).catch((err: unknown) => {
        throw ioError(`cannot create ${directory}`, err);
      });
      return withLock(async () => {
        await recover();
        const state = await readState();
        if (state.kind === 'complete') return 'exists' as const;
        if (state.kind === 'partial') throw partialError(state.present);
        try {
          await writeNew(material);
        } catch (err) {
          // Undo what we placed now rather than leave it to the next start (best effort:
          // if this fails too, the journal still lets the next lock holder roll back).
          await recover().catch(() => undefined);
          throw ioError(`cannot write trust material into ${directory}`, err);
        }
        return 'created' as const;
      });
    },
  };
}

function checkNames(names: TrustMaterialNames): TrustMaterialNames {
  const problems: string[] = [];
  for (const part of TRUST_MATERIAL_PARTS) {
    const name = names[part];
    if (name.length === 0 || name !== path.basename(name) || name === '.' || name === '..') {
      problems.push(`file name "${name}" must be a plain file name`);
    } else if (name.startsWith('.warden')) {
      problems.push(`file name "${name}" is reserved`);
    }
  }
  if (new Set(TRUST_MATERIAL_PARTS.map((p) => names[p])).size !== TRUST_MATERIAL_PARTS.length) {
    problems.push('the CA, certificate and key file names must differ');
  }
  if (problems.length > 0) throw new WardenError('ERR_CONFIG_INVALID', problems.join('; '));
  return Object.freeze({ ...names });
}

function parseJournal(text: string): Journal | null {
  try {
    const value = JSON.parse(text) as Partial<Journal>;
    if (
      value.version === 1 &&
      Array.isArray(value.files) &&
      value.files.every(
        (f) =>
          typeof f?.name === 'string' &&
          f.name === path.basename(f.name) &&
          typeof f.sha256 === 'string',
      )
    ) {
      return value as Journal;
    }
  } catch {
    // fall through
  }
  return null;
}

function sha256Hex(data: Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

async function exists(file: string): Promise<boolean> {
  try {
    await fs.lstat(file);
    return true;
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return false;
    throw ioError(`cannot inspect ${file}`, err);
  }
}

async function canWrite(directory: string): Promise<boolean> {
  try {
    await fs.access(directory, fsConstants.W_OK);
    return true;
  } catch {
    return false;
  }
}

function ioError(message: string, cause: unknown): WardenError {
  if (cause instanceof WardenError) return cause;
  const code = errnoCode(cause);
  return new WardenError('ERR_TRUST_MATERIAL_IO', code ? `${message}: ${code}` : message, {
    cause,
  });
}
