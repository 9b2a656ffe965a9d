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
import {
  DEFAULT_TRUST_EXTRA_NAMES,
  TRUST_EXTRAS,
  sameStoredTrust,
  type StoredTrust,
  type TrustExtra,
  type TrustExtraNames,
  type TrustExtras,
  type TrustMaterialStore,
} from './trust-store.js';
import { MAX_TRUST_FILE_BYTES } from './validate.js';

/*
 * Crash consistency: a kill -9 at any instant must leave, after recovery, either the
 * material as it was or as it was meant to become, never a mixture, and never anything
 * that makes Warden refuse to start on its own half-written files. Writers serialise on an
 * O_EXCL lock file and stage every new file first; a journal is the commit point.
 *
 * create() (nothing exists yet):
 *   1. stage:   write every file into <dir>/.warden-staging/ (each fsynced, 0600)
 *   2. journal: write <dir>/.warden-create.journal naming each target file and the SHA-256
 *               of the bytes about to be placed (written atomically)
 *   3. place:   rename extras (root.key), issuer.key, issuer.crt, then ca.crt into <dir>
 *   4. commit:  remove the staging directory, delete the journal, fsync the directory
 *   Its journal's REMOVAL is the commit point: while it exists the set is not committed,
 *   and whoever next takes the lock rolls it back, deleting only files whose bytes still
 *   hash to what the journal recorded (so an operator's file that replaced ours is never
 *   touched). Keys are placed first and ca.crt last so that even a reader that ignored
 *   the journal would see "ca.crt missing" rather than anchors without their issuer.
 *
 * replace() (compare-and-swap of existing material, used by rotation):
 *   1. stage:   write every changed file into <dir>/.warden-staging/
 *   2. journal: write <dir>/.warden-replace.journal naming each file to place (with its
 *               SHA-256) and each extra to remove
 *   3. place the staged files, remove the dropped extras
 *   4. commit:  remove the staging directory and the journal
 *   Here the journal's CREATION is the commit point: everything it names is already staged
 *   durably, so whoever next takes the lock rolls it forward. A crash before it leaves
 *   only the staging directory, which is ours by name and simply removed.
 *
 * Readers take no lock when nothing is in progress: they check for journals, stat every
 * file, read them, stat again and check for journals again. Files only ever change by
 * rename (new inode) under a journal, so equal stats and no journal at either end mean
 * the bytes read existed together at one instant outside any write. Otherwise the read
 * is settled under the lock, where nobody is writing.
 *
 * Partial sets that no journal accounts for are an operator's files: load() and create()
 * refuse them with a message naming what is missing, and nothing is ever generated over
 * them.
 */

export const LOCK_FILE = '.warden.lock';
export const JOURNAL_FILE = '.warden-create.journal';
export const REPLACE_JOURNAL_FILE = '.warden-replace.journal';
export const STAGING_DIR = '.warden-staging';
/** writeFileAtomic's temp file for either journal: `.<name>.<12 hex>.tmp`. */
const JOURNAL_TEMP = /^\.\.warden-(create|replace)\.journal\.[0-9a-f]{12}\.tmp$/;

/** Points in create() at which `onCreateStep` is called (after the step is durable). */
export type FileCreateStep =
  | 'locked'
  | 'staged'
  | 'journal-written'
  | `placed:${TrustMaterialPart}`
  | `placed:${TrustExtra}`
  | 'committed';

/**
 * Points in replace() at which `onReplaceStep` is called (after the step is durable);
 * placed/removed name the entry (anchors, issuerKey, rootKey, rotationState, ...).
 */
export type FileReplaceStep =
  | 'locked'
  | 'staged'
  | 'journal-written'
  | `placed:${TrustMaterialPart | TrustExtra}`
  | `removed:${TrustExtra}`
  | 'committed';

export interface FileTrustStoreOptions {
  /** Dapr's --issuer-credentials. */
  readonly directory: string;
  /** File names (Dapr's --issuer-ca-filename etc.); default ca.crt, issuer.crt, issuer.key. */
  readonly names?: TrustMaterialNames;
  /** --root-key-filename (default root.key). */
  readonly rootKeyName?: string;
  readonly lock?: Partial<FileLockOptions>;
  readonly logger?: Logger;
  /**
   * Called after each durable step of create(), for crash tests (a child process kills
   * itself at a chosen step) and tracing. If it throws, create() fails as if that step's
   * I/O had failed (and rolls back).
   */
  readonly onCreateStep?: (step: FileCreateStep) => void;
  /**
   * Like onCreateStep for replace(). A throw before 'journal-written' abandons the
   * replacement; from 'journal-written' on it is committed and is rolled forward.
   */
  readonly onReplaceStep?: (step: FileReplaceStep) => void;
}

/** The file store also tells a file watcher which paths to watch. */
export interface FileTrustMaterialStore extends TrustMaterialStore {
  readonly directory: string;
  pathOf(entry: TrustMaterialPart | TrustExtra): string;
}

type Entry = TrustMaterialPart | TrustExtra;
const ENTRIES: readonly Entry[] = [...TRUST_MATERIAL_PARTS, ...TRUST_EXTRAS];

interface CreateJournal {
  readonly version: 1;
  readonly pid: number;
  readonly files: readonly { readonly name: string; readonly sha256: string }[];
}

interface ReplaceJournal {
  readonly version: 1;
  readonly kind: 'replace';
  readonly pid: number;
  readonly writes: readonly { readonly name: string; readonly sha256: string }[];
  readonly removes: readonly string[];
}

type ReadState =
  | { readonly kind: 'complete'; readonly stored: StoredTrust }
  | { readonly kind: 'absent'; readonly extrasPresent: readonly TrustExtra[] }
  | { readonly kind: 'partial'; readonly present: readonly TrustMaterialPart[] }
  | { readonly kind: 'uncommitted' }
  | { readonly kind: 'unstable' };

/** Lock-free read attempts before settling under the lock. */
const FAST_READ_ATTEMPTS = 3;
/** Read attempts under the lock (only an operator writing in place can make them differ). */
const LOCKED_READ_ATTEMPTS = 5;

export function createFileTrustStore(options: FileTrustStoreOptions): FileTrustMaterialStore {
  const names = checkNames(options.names ?? DEFAULT_TRUST_MATERIAL_NAMES);
  const extraNames = checkExtraNames(names, {
    ...DEFAULT_TRUST_EXTRA_NAMES,
    rootKey: options.rootKeyName ?? DEFAULT_TRUST_EXTRA_NAMES.rootKey,
  });
  const nameOf = (entry: Entry): string => (isPart(entry) ? names[entry] : extraNames[entry]);
  const directory = path.resolve(options.directory);
  const logger = options.logger ?? silentLogger;
  const createStep = options.onCreateStep ?? (() => undefined);
  const replaceStep = options.onReplaceStep ?? (() => undefined);
  const pathOf = (entry: Entry): string => path.join(directory, nameOf(entry));
  const journalPath = path.join(directory, JOURNAL_FILE);
  const replaceJournalPath = path.join(directory, REPLACE_JOURNAL_FILE);
  const stagingPath = path.join(directory, STAGING_DIR);
  const lockPath = path.join(directory, LOCK_FILE);
  const description = `directory ${directory} (${names.anchors}, ${names.issuerChain}, ${names.issuerKey})`;

  async function journalPresent(): Promise<boolean> {
    return (await exists(journalPath)) || (await exists(replaceJournalPath));
  }

  async function readState(): Promise<ReadState> {
    if (await journalPresent()) return { kind: 'uncommitted' };
    const before = await Promise.all(ENTRIES.map((e) => signature(pathOf(e))));
    const texts: Partial<Record<Entry, string>> = {};
    for (const entry of ENTRIES) {
      const text = await readEntry(entry);
      if (text !== undefined) texts[entry] = text;
    }
    const after = await Promise.all(ENTRIES.map((e) => signature(pathOf(e))));
    if (await journalPresent()) return { kind: 'uncommitted' };
    if (before.some((sig, i) => sig !== after[i])) return { kind: 'unstable' };

    const present = TRUST_MATERIAL_PARTS.filter((p) => texts[p] !== undefined);
    const extras: Partial<Record<TrustExtra, string>> = {};
    for (const extra of TRUST_EXTRAS) {
      const text = texts[extra];
      if (text !== undefined) extras[extra] = text;
    }
    if (present.length === 0) {
      return { kind: 'absent', extrasPresent: TRUST_EXTRAS.filter((e) => e in extras) };
    }
    if (present.length < TRUST_MATERIAL_PARTS.length) return { kind: 'partial', present };
    return {
      kind: 'complete',
      stored: {
        material: {
          anchorsPem: texts.anchors as string,
          issuerChainPem: texts.issuerChain as string,
          issuerKeyPem: texts.issuerKey as string,
        },
        extras,
      },
    };
  }

  /** Under the lock: retries while an operator is mid-write, then gives up loudly. */
  async function readSettled(): Promise<Exclude<ReadState, { kind: 'unstable' | 'uncommitted' }>> {
    for (let attempt = 0; attempt < LOCKED_READ_ATTEMPTS; attempt++) {
      const state = await readState();
      if (state.kind !== 'unstable' && state.kind !== 'uncommitted') return state;
      if (state.kind === 'uncommitted') {
        // Only a writer that ignores the lock could have started one; recover it.
        await recover();
        continue;
      }
      await sleep(20 * (attempt + 1));
    }
    throw new WardenError(
      'ERR_TRUST_MATERIAL_IO',
      `the files in ${directory} kept changing while being read; try again when the writer is done`,
    );
  }

  async function readEntry(entry: Entry): Promise<string | undefined> {
    const file = pathOf(entry);
    const name = nameOf(entry);
    try {
      const stat = await fs.stat(file);
      if (!stat.isFile())
        throw new WardenError(
          'ERR_TRUST_MATERIAL_INVALID',
          `${name} in ${directory} is not a regular file`,
        );
      if (stat.size > MAX_TRUST_FILE_BYTES) {
        throw new WardenError(
          'ERR_TRUST_MATERIAL_INVALID',
          `${name} is larger than ${MAX_TRUST_FILE_BYTES} bytes`,
        );
      }
      return await fs.readFile(file, 'utf8');
    } catch (err) {
      if (errnoCode(err) === 'ENOENT') return undefined;
      if (err instanceof WardenError) throw err;
      throw ioError(`cannot read ${name} in ${directory}`, err);
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

  /** Under the lock: undo an interrupted create(), finish an interrupted replace(). */
  async function recover(): Promise<void> {
    const createText = await readOptional(journalPath);
    if (createText !== undefined) await rollBackCreate(createText);
    const replaceText = await readOptional(replaceJournalPath);
    if (replaceText !== undefined) await rollForwardReplace(replaceText);
    await fs.rm(stagingPath, { recursive: true, force: true });
    // A kill -9 while a journal itself was being written leaves writeFileAtomic's temp file
    // (never the journal, so nothing above sees it); it is ours by name.
    for (const name of await fs.readdir(directory).catch(() => [] as string[])) {
      if (JOURNAL_TEMP.test(name)) await fs.rm(path.join(directory, name), { force: true });
    }
  }

  async function rollBackCreate(journalText: string): Promise<void> {
    const journal = parseCreateJournal(journalText);
    if (!journal) {
      throw new WardenError(
        'ERR_TRUST_MATERIAL_IO',
        `${journalPath} is not a Warden creation journal; inspect ${directory} and remove it by hand`,
      );
    }
    const removed: string[] = [];
    for (const file of journal.files) {
      const target = path.join(directory, file.name);
      const bytes = await fs.readFile(target).catch(() => undefined);
      if (bytes !== undefined && sha256Hex(bytes) === file.sha256) {
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

  async function rollForwardReplace(journalText: string): Promise<void> {
    const journal = parseReplaceJournal(journalText);
    if (!journal) {
      throw new WardenError(
        'ERR_TRUST_MATERIAL_IO',
        `${replaceJournalPath} is not a Warden replacement journal; inspect ${directory} and remove it by hand`,
      );
    }
    await placeAndRemove(journal, () => undefined);
    await fs.rm(stagingPath, { recursive: true, force: true });
    await fs.rm(replaceJournalPath, { force: true });
    await syncDirectory(directory);
    logger.warn(
      {
        directory,
        placed: journal.writes.map((w) => w.name),
        removed: journal.removes,
        interruptedPid: journal.pid,
      },
      'completed an interrupted replacement of trust material',
    );
  }

  /** Idempotent: a staged file is moved into place once; a missing one was placed already. */
  async function placeAndRemove(
    journal: ReplaceJournal,
    onStep: (done: 'placed' | 'removed', name: string) => void,
  ): Promise<void> {
    for (const write of journal.writes) {
      const staged = path.join(stagingPath, write.name);
      const bytes = await fs.readFile(staged).catch((err: unknown) => {
        if (errnoCode(err) === 'ENOENT') return undefined;
        throw ioError(`cannot read staged ${write.name}`, err);
      });
      if (bytes !== undefined) {
        if (sha256Hex(bytes) !== write.sha256) {
          throw new WardenError(
            'ERR_TRUST_MATERIAL_IO',
            `staged ${write.name} in ${stagingPath} does not match the replacement journal; inspect ${directory}`,
          );
        }
        await fs.rename(staged, path.join(directory, write.name));
      }
      onStep('placed', write.name);
    }
    for (const name of journal.removes) {
      await fs.rm(path.join(directory, name), { force: true });
      onStep('removed', name);
    }
    // One sync for all of them: their order does not matter once the journal is durable,
    // since recovery finishes whatever a crash left undone.
    await syncDirectory(directory);
  }

  async function writeNew(
    material: TrustMaterialPem,
    extras: TrustExtras,
    stale: readonly TrustExtra[],
  ): Promise<void> {
    await fs.mkdir(stagingPath, { mode: 0o700 });
    // Extras and keys first, anchors last (see the comment at the top).
    const order: readonly Entry[] = [
      ...TRUST_EXTRAS.filter((e) => extras[e] !== undefined),
      'issuerKey',
      'issuerChain',
      'anchors',
    ];
    const textOf = (entry: Entry): string =>
      isPart(entry) ? pemOf(material, entry) : (extras[entry] as string);
    for (const entry of order) {
      await writeStaged(path.join(stagingPath, nameOf(entry)), textOf(entry));
    }
    await syncDirectory(stagingPath);
    createStep('staged');
    const journal: CreateJournal = {
      version: 1,
      pid: process.pid,
      files: order.map((entry) => ({
        name: nameOf(entry),
        sha256: sha256Hex(Buffer.from(textOf(entry))),
      })),
    };
    await writeFileAtomic(journalPath, `${JSON.stringify(journal)}\n`, 0o600);
    createStep('journal-written');
    for (const entry of order) {
      await fs.rename(path.join(stagingPath, nameOf(entry)), pathOf(entry));
      await syncDirectory(directory);
      createStep(`placed:${entry}`);
    }
    // Extras of material that no longer exists describe nothing; a rollback deletes ours
    // too, so either way none of them outlives this creation.
    for (const extra of stale) await fs.rm(pathOf(extra), { force: true });
    if (stale.length > 0) {
      logger.warn(
        { directory, removed: stale.map((e) => extraNames[e]) },
        'removed files left over from trust material that no longer exists',
      );
    }
    // Staging is empty now; removing it before the commit means a crash after the commit
    // leaves nothing behind but the new files.
    await fs.rm(stagingPath, { recursive: true, force: true });
    await fs.rm(journalPath);
    await syncDirectory(directory);
    createStep('committed');
  }

  async function writeReplacement(current: StoredTrust, next: StoredTrust): Promise<void> {
    const writes: { entry: Entry; text: string }[] = [];
    for (const part of TRUST_MATERIAL_PARTS) {
      const text = pemOf(next.material, part);
      if (text !== pemOf(current.material, part)) writes.push({ entry: part, text });
    }
    const removes: TrustExtra[] = [];
    for (const extra of TRUST_EXTRAS) {
      const text = next.extras[extra];
      if (text === undefined) {
        if (current.extras[extra] !== undefined) removes.push(extra);
      } else if (text !== current.extras[extra]) {
        writes.push({ entry: extra, text });
      }
    }
    if (writes.length === 0 && removes.length === 0) return;

    await fs.mkdir(stagingPath, { mode: 0o700 });
    for (const write of writes) {
      await writeStaged(path.join(stagingPath, nameOf(write.entry)), write.text);
    }
    await syncDirectory(stagingPath);
    replaceStep('staged');
    const journal: ReplaceJournal = {
      version: 1,
      kind: 'replace',
      pid: process.pid,
      writes: writes.map((w) => ({
        name: nameOf(w.entry),
        sha256: sha256Hex(Buffer.from(w.text)),
      })),
      removes: removes.map((e) => extraNames[e]),
    };
    await writeFileAtomic(replaceJournalPath, `${JSON.stringify(journal)}\n`, 0o600);
    replaceStep('journal-written');
    const entryByName = new Map(ENTRIES.map((e) => [nameOf(e), e] as const));
    await placeAndRemove(journal, (done, name) => {
      // Names come from this journal, written from ENTRIES just above.
      replaceStep(`${done}:${entryByName.get(name) as Entry}` as FileReplaceStep);
    });
    await fs.rm(stagingPath, { recursive: true, force: true });
    await fs.rm(replaceJournalPath);
    await syncDirectory(directory);
    replaceStep('committed');
  }

  async function withLock<T>(onLocked: () => void, work: () => Promise<T>): Promise<T> {
    const lock = await acquireFileLock(lockPath, options.lock);
    try {
      onLocked();
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

  /** The lock-free path when it can answer, else the settled answer under the lock. */
  async function readAny(): Promise<Exclude<ReadState, { kind: 'unstable' | 'uncommitted' }>> {
    for (let attempt = 0; attempt < FAST_READ_ATTEMPTS; attempt++) {
      const fast = await readState();
      if (fast.kind === 'complete' || fast.kind === 'absent') return fast;
      if (fast.kind === 'uncommitted') break;
      if (fast.kind === 'partial') {
        // An operator's partial set, or ours caught mid-creation: without write access
        // nobody here can be creating, and the lock could not be taken anyway.
        if (!(await journalPresent()) && !(await canWrite(directory))) return fast;
        break;
      }
      await sleep(10);
    }
    return withLock(
      () => undefined,
      async () => {
        await recover();
        return readSettled();
      },
    );
  }

  return {
    directory,
    names,
    extraNames,
    pathOf,
    describe: () => description,

    async load() {
      const state = await readAny();
      if (state.kind === 'complete') return state.stored.material;
      if (state.kind === 'partial') throw partialError(state.present);
      return null;
    },

    async read() {
      const state = await readAny();
      if (state.kind === 'complete') return state.stored;
      if (state.kind === 'partial') throw partialError(state.present);
      return null;
    },

    async create(material, extras = {}) {
      checkStored({ material, extras });
      await ensurePrivateDirectory(directory).catch((err: unknown) => {
        throw ioError(`cannot create ${directory}`, err);
      });
      return withLock(
        () => createStep('locked'),
        async () => {
          await recover();
          const state = await readSettled();
          if (state.kind === 'complete') return 'exists' as const;
          if (state.kind === 'partial') throw partialError(state.present);
          const stale = state.extrasPresent.filter((e) => extras[e] === undefined);
          try {
            await writeNew(material, extras, stale);
          } catch (err) {
            // Undo what we placed now rather than leave it to the next start (best effort:
            // if this fails too, the journal still lets the next lock holder roll back).
            await recover().catch(() => undefined);
            throw ioError(`cannot write trust material into ${directory}`, err);
          }
          return 'created' as const;
        },
      );
    },

    async replace(expected, next) {
      checkStored(expected);
      checkStored(next);
      // Nothing can equal `expected` where there is not even a directory (and no lock file
      // can be created there).
      if (!(await exists(directory))) return 'conflict';
      return withLock(
        () => replaceStep('locked'),
        async () => {
          await recover();
          const state = await readSettled();
          if (state.kind !== 'complete' || !sameStoredTrust(state.stored, expected)) {
            return 'conflict' as const;
          }
          try {
            await writeReplacement(state.stored, next);
          } catch (err) {
            // Before its journal, nothing happened (recover() drops the staging); after it,
            // the replacement is committed and recover() finishes it.
            const committed = await exists(replaceJournalPath).catch(() => true);
            try {
              await recover();
            } catch {
              throw ioError(`cannot replace trust material in ${directory}`, err);
            }
            if (committed) return 'replaced' as const;
            throw ioError(`cannot replace trust material in ${directory}`, err);
          }
          return 'replaced' as const;
        },
      );
    },
  };
}

function isPart(entry: Entry): entry is TrustMaterialPart {
  return (TRUST_MATERIAL_PARTS as readonly string[]).includes(entry);
}

/** Programmer misuse: a snapshot must carry text for every part and only text in extras. */
function checkStored(stored: StoredTrust): void {
  for (const part of TRUST_MATERIAL_PARTS) {
    if (typeof pemOf(stored.material, part) !== 'string')
      throw new TypeError(`trust material ${part} must be a string`);
  }
  for (const [extra, text] of Object.entries(stored.extras)) {
    if (!(TRUST_EXTRAS as readonly string[]).includes(extra))
      throw new TypeError(`unknown trust extra ${extra}`);
    if (text !== undefined && typeof text !== 'string')
      throw new TypeError(`trust extra ${extra} must be a string`);
  }
}

function plainNameProblem(name: string): string | null {
  if (name.length === 0 || name !== path.basename(name) || name === '.' || name === '..') {
    return `file name "${name}" must be a plain file name`;
  }
  if (name.startsWith('.warden')) return `file name "${name}" is reserved`;
  return null;
}

function checkNames(names: TrustMaterialNames): TrustMaterialNames {
  const problems: string[] = [];
  for (const part of TRUST_MATERIAL_PARTS) {
    const problem = plainNameProblem(names[part]);
    if (problem) problems.push(problem);
  }
  if (new Set(TRUST_MATERIAL_PARTS.map((p) => names[p])).size !== TRUST_MATERIAL_PARTS.length) {
    problems.push('the CA, certificate and key file names must differ');
  }
  if (problems.length > 0) throw new WardenError('ERR_CONFIG_INVALID', problems.join('; '));
  return Object.freeze({ ...names });
}

function checkExtraNames(parts: TrustMaterialNames, extras: TrustExtraNames): TrustExtraNames {
  const problems: string[] = [];
  const taken = new Set(TRUST_MATERIAL_PARTS.map((p) => parts[p]));
  for (const extra of TRUST_EXTRAS) {
    const name = extras[extra];
    const problem = plainNameProblem(name);
    if (problem) problems.push(problem);
    else if (taken.has(name)) problems.push(`file name "${name}" is already used by another file`);
    taken.add(name);
  }
  if (problems.length > 0) throw new WardenError('ERR_CONFIG_INVALID', problems.join('; '));
  return Object.freeze({ ...extras });
}

function parseCreateJournal(text: string): CreateJournal | null {
  try {
    const value = JSON.parse(text) as Partial<CreateJournal>;
    if (
      value.version === 1 &&
      Array.isArray(value.files) &&
      value.files.every((f) => plainJournalName(f?.name) && typeof f.sha256 === 'string')
    ) {
      return value as CreateJournal;
    }
  } catch {
    // fall through
  }
  return null;
}

function parseReplaceJournal(text: string): ReplaceJournal | null {
  try {
    const value = JSON.parse(text) as Partial<ReplaceJournal>;
    if (
      value.version === 1 &&
      value.kind === 'replace' &&
      Array.isArray(value.writes) &&
      value.writes.every((w) => plainJournalName(w?.name) && typeof w.sha256 === 'string') &&
      Array.isArray(value.removes) &&
      value.removes.every((name) => plainJournalName(name))
    ) {
      return value as ReplaceJournal;
    }
  } catch {
    // fall through
  }
  return null;
}

/** A journal can only name plain files of this directory, never a path elsewhere. */
function plainJournalName(name: unknown): name is string {
  return typeof name === 'string' && plainNameProblem(name) === null;
}

/**
 * A new file in our own staging directory: no temp-and-rename needed (nobody reads staging,
 * and a journal names a staged file only after it is durable), just write and fsync.
 */
async function writeStaged(file: string, text: string): Promise<void> {
  const handle = await fs.open(file, 'wx', 0o600);
  try {
    await handle.writeFile(text);
    await handle.sync();
  } finally {
    await handle.close();
  }
}

function sha256Hex(data: Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

/** Identity of a file's current contents: a rename gives a new inode, a write a new mtime/ctime. */
async function signature(file: string): Promise<string> {
  try {
    const s = await fs.stat(file, { bigint: true });
    return `${s.ino}:${s.size}:${s.mtimeNs}:${s.ctimeNs}`;
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return 'absent';
    throw ioError(`cannot inspect ${file}`, err);
  }
}

async function readOptional(file: string): Promise<string | undefined> {
  try {
    return await fs.readFile(file, 'utf8');
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return undefined;
    throw ioError(`cannot read ${file}`, err);
  }
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

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function ioError(message: string, cause: unknown): WardenError {
  if (cause instanceof WardenError) return cause;
  const code = errnoCode(cause);
  return new WardenError('ERR_TRUST_MATERIAL_IO', code ? `${message}: ${code}` : message, {
    cause,
  });
}
