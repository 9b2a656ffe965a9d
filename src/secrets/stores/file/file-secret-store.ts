import { createHash } from 'node:crypto';
import { constants as fsConstants, promises as fs, watch, type FSWatcher } from 'node:fs';
import path from 'node:path';
import { WardenError, describeError } from '../../../shared/errors.js';
import type { Logger } from '../../../shared/logger.js';
import { ChangeListeners, type SecretChangeSource } from '../../secret-change-source.js';
import { assertSecretName } from '../../secret-name.js';
import type { RequestMetadata, SecretData, SecretStore, SecretStoreFeatures } from '../../secret-store.js';
import type { SecretStoreFactory } from '../../store-factory.js';
import { booleanField, requiredString, optionalString } from '../../store-metadata.js';
import { parseSecretsFile, type ParsedSecretsFile, type SecretsFileLayout } from './secrets-file-parser.js';

export const FILE_SECRET_STORE_TYPE = 'secretstores.local.file';

/** A secrets file larger than this is refused before it is read. */
export const MAX_SECRETS_FILE_BYTES = 64 * 1024 * 1024;

/** Events from fs.watch come in bursts (write, then rename); one check per burst. */
const WATCH_DEBOUNCE_MS = 25;

export interface FileSecretStoreOptions extends SecretsFileLayout {
  readonly componentName: string;
  /** Absolute path (realpath) of the secrets file, already checked by resolveSecretsFilePath. */
  readonly file: string;
  readonly logger: Logger;
  /** Watch the directory and reload on change (default true). */
  readonly watch?: boolean;
}

interface FileIdentity {
  readonly ino: number;
  readonly size: number;
  readonly mtimeMs: number;
  readonly ctimeMs: number;
}

function sameIdentity(a: FileIdentity | undefined, b: FileIdentity): boolean {
  return a !== undefined && a.ino === b.ino && a.size === b.size && a.mtimeMs === b.mtimeMs && a.ctimeMs === b.ctimeMs;
}

/**
 * Resolves `secretsFile` once: relative to the working directory, then through realpath.
 * A symlink whose target lies outside the link's own directory is refused, so a link
 * dropped into a secrets directory cannot expose /etc/shadow; links inside it (Kubernetes'
 * `..data/` swap) are fine.
 */
export async function resolveSecretsFilePath(secretsFile: string, workingDirectory: string, componentName: string): Promise<string> {
  const lexical = path.resolve(workingDirectory, secretsFile);
  let directory: string;
  let file: string;
  try {
    directory = await fs.realpath(path.dirname(lexical));
    file = await fs.realpath(lexical);
  } catch (err) {
    throw new WardenError(
      'ERR_SECRET_STORE_CONFIG',
      `secret store "${componentName}": secretsFile ${lexical} cannot be opened (${(err as NodeJS.ErrnoException).code ?? 'error'})`,
    );
  }
  if (!file.startsWith(directory + path.sep)) {
    throw new WardenError(
      'ERR_SECRET_STORE_CONFIG',
      `secret store "${componentName}": secretsFile ${lexical} is a symlink that points outside its directory ${directory}`,
    );
  }
  return file;
}

/**
 * Dapr's `secretstores.local.file`, plus what Dapr lacks: the file is re-read when it
 * changes (a file that then fails to parse keeps the last good data and logs an error), a
 * value over the size cap is never handed out, and the file is opened without following
 * a symlink swapped in after start-up.
 */
export class FileSecretStore implements SecretStore, SecretChangeSource {
  readonly type = FILE_SECRET_STORE_TYPE;
  readonly #options: FileSecretStoreOptions;
  readonly #listeners = new ChangeListeners();
  #data: ParsedSecretsFile | undefined;
  #identity: FileIdentity | undefined;
  #digest = '';
  #watcher: FSWatcher | undefined;
  #debounce: NodeJS.Timeout | undefined;
  #checking: Promise<boolean> | undefined;
  #recheck = false;
  #closed = false;

  private constructor(options: FileSecretStoreOptions) {
    this.#options = options;
  }

  /** Reads the file (rejecting when it cannot be read or parsed) and starts watching it. */
  static async open(options: FileSecretStoreOptions): Promise<FileSecretStore> {
    const store = new FileSecretStore(options);
    const { identity, text } = await store.#read();
    store.#data = parseSecretsFile(text, options, options.file);
    store.#identity = identity;
    store.#digest = createHash('sha256').update(text).digest('hex');
    store.#logTooLarge();
    if (options.watch !== false) store.#startWatching();
    return store;
  }

  async get(name: string, _metadata?: RequestMetadata): Promise<SecretData> {
    assertSecretName(name);
    const data = this.#current();
    if (data.tooLarge.has(name)) {
      throw new WardenError('ERR_SECRET_TOO_LARGE', `secret "${name}" in store "${this.#options.componentName}" holds a value larger than the limit`);
    }
    const secret = data.secrets.get(name);
    if (!secret) throw new WardenError('ERR_SECRET_NOT_FOUND', `secret "${name}" not found in store "${this.#options.componentName}"`);
    return secret;
  }

  async bulkGet(_metadata?: RequestMetadata): Promise<Readonly<Record<string, SecretData>>> {
    return Object.freeze(Object.fromEntries(this.#current().secrets));
  }

  features(): SecretStoreFeatures {
    return { multipleKeyValuesPerSecret: this.#options.multiValued };
  }

  ready(): boolean {
    return !this.#closed && this.#data !== undefined;
  }

  onSecretsChanged(listener: () => void): () => void {
    return this.#listeners.onSecretsChanged(listener);
  }

  /**
   * Stats the file and reloads it when it changed; resolves true when new data was loaded.
   * The watcher calls this; callers that need a fresh view right now may too.
   */
  checkForChanges(): Promise<boolean> {
    if (this.#checking) {
      this.#recheck = true;
      return this.#checking;
    }
    this.#checking = this.#check().finally(() => {
      this.#checking = undefined;
      if (this.#recheck && !this.#closed) {
        this.#recheck = false;
        void this.checkForChanges();
      }
    });
    return this.#checking;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearTimeout(this.#debounce);
    this.#watcher?.close();
    this.#watcher = undefined;
    this.#listeners.clear();
    this.#data = undefined;
  }

  #current(): ParsedSecretsFile {
    if (this.#closed || !this.#data) {
      throw new WardenError('ERR_SECRET_STORE_UNAVAILABLE', `secret store "${this.#options.componentName}" is closed`);
    }
    return this.#data;
  }

  async #read(): Promise<{ identity: FileIdentity; text: string }> {
    const file = this.#options.file;
    let handle: fs.FileHandle;
    try {
      // O_NOFOLLOW: the path was checked once; a symlink put in its place later is refused.
      handle = await fs.open(file, fsConstants.O_RDONLY | fsConstants.O_NOFOLLOW);
    } catch (err) {
      throw new WardenError('ERR_SECRET_STORE_UNAVAILABLE', `secrets file ${file} cannot be opened (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
    }
    try {
      const stat = await handle.stat();
      if (!stat.isFile()) throw new WardenError('ERR_SECRET_STORE_CONFIG', `secrets file ${file} is not a regular file`);
      if (stat.size > MAX_SECRETS_FILE_BYTES) {
        throw new WardenError('ERR_SECRET_TOO_LARGE', `secrets file ${file} is larger than ${MAX_SECRETS_FILE_BYTES} bytes`);
      }
      const text = await handle.readFile({ encoding: 'utf8' });
      return { identity: { ino: stat.ino, size: stat.size, mtimeMs: stat.mtimeMs, ctimeMs: stat.ctimeMs }, text };
    } finally {
      await handle.close();
    }
  }

  async #check(): Promise<boolean> {
    if (this.#closed) return false;
    const file = this.#options.file;
    try {
      const stat = await fs.stat(file);
      if (sameIdentity(this.#identity, stat)) return false;
      const { identity, text } = await this.#read();
      const digest = createHash('sha256').update(text).digest('hex');
      if (digest === this.#digest) {
        this.#identity = identity;
        return false;
      }
      const parsed = parseSecretsFile(text, this.#options, file);
      if (this.#closed) return false;
      this.#data = parsed;
      this.#identity = identity;
      this.#digest = digest;
      this.#options.logger.info({ store: this.#options.componentName, file, secrets: parsed.secrets.size }, 'secrets file reloaded');
      this.#logTooLarge();
      this.#listeners.emit();
      return true;
    } catch (err) {
      // Keep serving the last good data: a half-written or broken file must not empty the store.
      this.#options.logger.error(
        { store: this.#options.componentName, file, error: describeError(err) },
        'secrets file changed but could not be loaded; keeping the previous secrets',
      );
      return false;
    }
  }

  #logTooLarge(): void {
    const names = [...(this.#data?.tooLarge ?? [])];
    if (names.length > 0) {
      this.#options.logger.warn(
        { store: this.#options.componentName, secrets: names },
        'secrets with values over the size limit are never handed out',
      );
    }
  }

  #startWatching(): void {
    const file = this.#options.file;
    const base = path.basename(file);
    try {
      // The directory, not the file: editors and atomic writers replace the file by rename.
      this.#watcher = watch(path.dirname(file), { persistent: false }, (_event, changed) => {
        if (changed !== null && changed !== base) return;
        clearTimeout(this.#debounce);
        this.#debounce = setTimeout(() => void this.checkForChanges(), WATCH_DEBOUNCE_MS);
      });
      this.#watcher.on('error', (err) => {
        this.#options.logger.error({ store: this.#options.componentName, error: describeError(err) }, 'watching the secrets file failed');
      });
    } catch (err) {
      this.#options.logger.error({ store: this.#options.componentName, error: describeError(err) }, 'cannot watch the secrets file; changes will not be seen');
    }
  }
}

/** The registry's factory: Dapr's metadata names, `nestedSeparator` ":" and `multiValued` false by default. */
export const createFileSecretStore: SecretStoreFactory = async (_component, context) => {
  const name = context.componentName;
  const secretsFile = requiredString(context.metadata, name, 'secretsFile');
  const nestedSeparator = optionalString(context.metadata, 'nestedSeparator') ?? ':';
  const multiValued = booleanField(context.metadata, name, 'multiValued', false);
  const file = await resolveSecretsFilePath(secretsFile, context.workingDirectory, name);
  return FileSecretStore.open({ componentName: name, file, nestedSeparator, multiValued, logger: context.logger });
};
