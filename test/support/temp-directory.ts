// A temp directory handle ({ path, remove }) for the secrets tests.
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

/** A fresh private directory under the OS temp dir; `remove()` deletes it. */
export async function makeTempDir(label = 'warden-test'): Promise<{ path: string; remove(): Promise<void> }> {
  const dir = await mkdtemp(path.join(os.tmpdir(), `${label}-`));
  return { path: dir, remove: () => rm(dir, { recursive: true, force: true }) };
}
