import { promises as fs, watch, type FSWatcher } from 'node:fs';
import path from 'node:path';
import { describeError } from '../shared/errors.js';
import { silentLogger, type Logger } from '../shared/logger.js';
import type { FileTrustMaterialStore } from './file-trust-store.js';
import { TRUST_MATERIAL_PARTS } from './trust-material.js';

export interface CredentialsWatcherOptions {
  /** The credentials directory (--issuer-credentials). */
  readonly directory: string;
  /** The files whose changes matter (ca.crt, issuer.crt, issuer.key), for the stat fallback. */
  readonly files: readonly string[];
  /**
   * The CA's reload(): it re-reads, validates, and swaps the bundle only when the new files
   * are complete and valid (it logs and reports refusals itself).
   */
  readonly reload: () => Promise<unknown>;
  readonly logger?: Logger;
  /** Quiet time after the last event before reloading (default 300 ms): writers touch several files. */
  readonly debounceMs?: number;
  /**
   * How often the files are stat'ed in case fs.watch missed an event (default 3 s): it
   * does on some filesystems (network mounts, some container overlays) and when the
   * directory itself is replaced.
   */
  readonly pollIntervalMs?: number;
  /** Default true; false leaves only the stat fallback (tests of that path). */
  readonly useFsWatch?: boolean;
}

export interface CredentialsWatcher {
  /** Resolves once no reload is pending or running (for tests and orderly shutdown). */
  settled(): Promise<void>;
  close(): Promise<void>;
}

/**
 * Hot reload: watches the credentials directory and calls reload() when an operator,
 * cert-manager or `warden rotate` changes the files, within debounceMs of the last change
 * (or pollIntervalMs when fs.watch missed it). Reloads never overlap; changes during a
 * reload cause one more.
 */
export function watchCredentials(options: CredentialsWatcherOptions): CredentialsWatcher {
  const logger = options.logger ?? silentLogger;
  const debounceMs = options.debounceMs ?? 300;
  const pollIntervalMs = options.pollIntervalMs ?? 3_000;
  const useFsWatch = options.useFsWatch ?? true;
  const files = options.files.map((f) => path.resolve(options.directory, f));
  let watcher: FSWatcher | null = null;
  let debounce: NodeJS.Timeout | null = null;
  let running: Promise<void> | null = null;
  let pending = false;
  let closed = false;
  // The files as they were at the last reload attempt: the poll reloads when they differ.
  let attempted: string | null = null;

  function startFsWatch(): void {
    if (!useFsWatch || watcher || closed) return;
    try {
      watcher = watch(options.directory, { persistent: false }, () => schedule());
      watcher.on('error', (err) => {
        logger.warn(
          { directory: options.directory, error: describeError(err) },
          'watching the credentials directory failed; relying on periodic checks',
        );
        watcher?.close();
        watcher = null;
      });
    } catch (err) {
      // The directory may not exist yet or may be replaced; the poll retries.
      logger.debug(
        { directory: options.directory, error: describeError(err) },
        'cannot watch the credentials directory yet',
      );
      watcher = null;
    }
  }

  function schedule(): void {
    if (closed) return;
    if (debounce) clearTimeout(debounce);
    debounce = setTimeout(() => {
      debounce = null;
      void run();
    }, debounceMs);
    debounce.unref();
  }

  function run(): Promise<void> {
    if (running) {
      pending = true;
      return running;
    }
    running = (async () => {
      do {
        pending = false;
        attempted = await signature(files);
        try {
          await options.reload();
        } catch (err) {
          // The CA logged why and keeps serving the old material; nothing else to do here.
          logger.debug(
            { error: describeError(err) },
            'credentials changed but the reload was refused',
          );
        }
      } while (pending && !closed);
    })().finally(() => {
      running = null;
    });
    return running;
  }

  startFsWatch();
  void signature(files).then((sig) => {
    attempted ??= sig;
  });
  const poll = setInterval(() => {
    startFsWatch();
    void signature(files).then((sig) => {
      if (!closed && attempted !== null && sig !== attempted && !debounce && !running) schedule();
    });
  }, pollIntervalMs);
  poll.unref();

  return {
    async settled() {
      while (debounce || running) {
        if (running) await running;
        else await new Promise((resolve) => setTimeout(resolve, debounceMs));
      }
    },
    async close() {
      closed = true;
      clearInterval(poll);
      if (debounce) clearTimeout(debounce);
      debounce = null;
      watcher?.close();
      watcher = null;
      if (running) await running;
    },
  };
}

/** Watches a file store's directory for its three parts. */
export function watchFileStore(
  store: FileTrustMaterialStore,
  reload: () => Promise<unknown>,
  options: Omit<CredentialsWatcherOptions, 'directory' | 'files' | 'reload'> = {},
): CredentialsWatcher {
  return watchCredentials({
    ...options,
    directory: store.directory,
    files: TRUST_MATERIAL_PARTS.map((part) => store.pathOf(part)),
    reload,
  });
}

/** Identity of the files' contents: stat follows symlinks, so a Kubernetes ..data swap shows too. */
async function signature(files: readonly string[]): Promise<string> {
  const parts = await Promise.all(
    files.map(async (file) => {
      try {
        const s = await fs.stat(file, { bigint: true });
        return `${s.ino}:${s.size}:${s.mtimeNs}:${s.ctimeNs}`;
      } catch {
        return 'absent';
      }
    }),
  );
  return parts.join('|');
}
