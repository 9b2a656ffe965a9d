import { WardenError } from '../shared/errors.js';
import { printable } from '../shared/spiffe-id.js';

/** Longest secret name any store accepts (Vault paths are the longest real names). */
export const MAX_SECRET_NAME_BYTES = 1024;

/** Largest single secret value a store hands out (Kubernetes caps a whole Secret at 1 MiB). */
export const MAX_SECRET_VALUE_BYTES = 1024 * 1024;

 
const CONTROL_CHARACTERS = /[\u0000-\u001f\u007f]/;

function literalProblem(name: string): string | null {
  if (name.length === 0) return 'is empty';
  if (Buffer.byteLength(name) > MAX_SECRET_NAME_BYTES) return `is longer than ${MAX_SECRET_NAME_BYTES} bytes`;
  if (CONTROL_CHARACTERS.test(name)) return 'contains a control character';
  if (name.startsWith('/') || name.startsWith('\\')) return 'is an absolute path';
  for (const segment of name.split(/[/\\]/)) {
    if (segment === '.' || segment === '..') return 'contains a "." or ".." path segment';
    if (segment.length === 0) return 'contains an empty path segment';
  }
  return null;
}

/**
 * Checks a secret name (already URL-decoded once by the edge) for every store; returns a
 * reason or null. Names are flat keys to the file and env stores but paths to Vault and
 * Kubernetes, so anything that could walk a path is refused everywhere. A name that would
 * turn into a traversal if some layer decoded it a second time (`%2e%2e%2f`) is refused too:
 * we never decode twice, but a backend or proxy behind us might.
 */
export function secretNameProblem(name: string): string | null {
  const literal = literalProblem(name);
  if (literal) return literal;
  if (name.includes('%')) {
    let decoded: string;
    try {
      decoded = decodeURIComponent(name);
    } catch {
      return null; // a literal "%" that is not an escape cannot decode into anything
    }
    if (decoded !== name) {
      const encoded = literalProblem(decoded);
      if (encoded) return `${encoded} once percent-decoded`;
    }
  }
  return null;
}

export function assertSecretName(name: string, what = 'secret name'): void {
  const problem = secretNameProblem(name);
  if (problem) throw new WardenError('ERR_SECRET_NAME_INVALID', `${what} "${printable(name)}" ${problem}`);
}
