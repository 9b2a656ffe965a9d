import { WardenError } from '../../../shared/errors.js';

/**
 * Vault paths are built only from segments that passed these rules, and every segment is
 * percent-encoded on the way out. Nothing else ever reaches a URL: a secret name cannot
 * climb out of the KV prefix (`..`), smuggle an encoded traversal past us for Vault or a
 * proxy to decode (`%2e%2e`), collapse into a different path (`a//b`), or change the URL's
 * structure (`?`, `#`, `\`).
 */
export type VaultPathSegments = readonly string[];

/** Longest secret name accepted, in UTF-16 code units (Vault's own paths are far shorter in practice). */
export const MAX_SECRET_NAME_LENGTH = 1024;
/** Longest single segment accepted. */
export const MAX_SEGMENT_LENGTH = 255;

// C0 controls, DEL, C1 controls; backslash; percent (no pre-encoded input); URL delimiters ? and #.
const FORBIDDEN_CHARACTERS = /[\u0000-\u001f\u007f-\u009f\\%?#]/u;

/** A printable, bounded rendering of untrusted input for error messages. */
export function quoteForMessage(value: string): string {
  const shown = value.length > 80 ? `${value.slice(0, 80)}…` : value;
  return JSON.stringify(shown);
}

/** Returns why `segments` are not acceptable, or undefined when every segment is. */
function segmentProblem(segments: readonly string[]): string | undefined {
  for (const segment of segments) {
    if (segment.length === 0) return 'has an empty path segment (leading, trailing or doubled "/")';
    if (segment === '.' || segment === '..') return 'has a "." or ".." path segment';
    if (segment.length > MAX_SEGMENT_LENGTH)
      return `has a path segment longer than ${MAX_SEGMENT_LENGTH} characters`;
    if (FORBIDDEN_CHARACTERS.test(segment)) {
      return 'contains a control character, "\\", "%", "?" or "#"';
    }
  }
  return undefined;
}

/**
 * Splits a secret name into validated segments. Throws ERR_SECRET_NAME_INVALID; the
 * message quotes the (non-secret, but untrusted) name in escaped, truncated form.
 */
export function parseSecretName(name: string): VaultPathSegments {
  if (typeof name !== 'string') throw new TypeError('secret name must be a string');
  if (name.length === 0) throw new WardenError('ERR_SECRET_NAME_INVALID', 'secret name is empty');
  if (name.length > MAX_SECRET_NAME_LENGTH) {
    throw new WardenError(
      'ERR_SECRET_NAME_INVALID',
      `secret name is longer than ${MAX_SECRET_NAME_LENGTH} characters`,
    );
  }
  const segments = name.split('/');
  const problem = segmentProblem(segments);
  if (problem !== undefined) {
    throw new WardenError(
      'ERR_SECRET_NAME_INVALID',
      `secret name ${quoteForMessage(name)} ${problem}`,
    );
  }
  return Object.freeze(segments);
}

/**
 * Parses a configured path (engine path, KV prefix, auth mount, namespace). A single
 * leading and trailing "/" is tolerated because Vault's own docs write mounts both ways;
 * an empty value yields no segments. Returns a problem sentence instead of throwing so
 * that config validation can collect every problem at once.
 */
export function parseConfiguredPath(
  value: string,
): { segments: VaultPathSegments } | { problem: string } {
  let trimmed = value;
  if (trimmed.startsWith('/')) trimmed = trimmed.slice(1);
  if (trimmed.endsWith('/')) trimmed = trimmed.slice(0, -1);
  if (trimmed.length === 0) return { segments: Object.freeze([]) };
  if (trimmed.length > MAX_SECRET_NAME_LENGTH)
    return { problem: `is longer than ${MAX_SECRET_NAME_LENGTH} characters` };
  const segments = trimmed.split('/');
  const problem = segmentProblem(segments);
  return problem === undefined ? { segments: Object.freeze(segments) } : { problem };
}

/**
 * Checks one entry of a Vault LIST answer before it is followed: a directory ("dir/") or a
 * leaf ("name"). A server that answers "../x" or "a/b" is not trusted to steer us.
 */
export function parseListedKey(key: unknown): { segment: string; directory: boolean } | undefined {
  if (typeof key !== 'string') return undefined;
  const directory = key.endsWith('/');
  const segment = directory ? key.slice(0, -1) : key;
  if (segment.includes('/')) return undefined;
  return segmentProblem([segment]) === undefined ? { segment, directory } : undefined;
}

/** Encodes validated segments into a URL path below `/v1/`. */
export function encodeVaultPath(segments: VaultPathSegments, trailingSlash = false): string {
  const joined = segments.map((segment) => encodeURIComponent(segment)).join('/');
  return `/v1/${joined}${trailingSlash ? '/' : ''}`;
}

/** Human-readable form of a Vault API path for messages and logs (never carries a token). */
export function describeVaultPath(segments: VaultPathSegments): string {
  return segments.join('/');
}
