import { readFile } from 'node:fs/promises';
import { WardenError } from '../shared/errors.js';

/** Reads a file named by a flag (anchors, token); a failure names the file and the errno, not the content. */
export async function readInputFile(file: string, what: string): Promise<string> {
  try {
    return await readFile(file, 'utf8');
  } catch (err) {
    throw new WardenError(
      'ERR_CONFIG_INVALID',
      `cannot read the ${what} ${file}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`,
      { cause: err },
    );
  }
}
