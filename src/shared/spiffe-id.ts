import { WardenError } from './errors.js';

const TRUST_DOMAIN_RE = /^[a-z0-9._-]+$/;
const SEGMENT_RE = /^[a-zA-Z0-9._-]+$/;

/** Checks a SPIFFE trust domain (SPIFFE-ID.md §2.1); returns a reason or null. */
export function trustDomainProblem(td: string): string | null {
  if (td.length === 0) return 'is empty';
  if (Buffer.byteLength(td) > 255) return 'is longer than 255 bytes';
  if (!TRUST_DOMAIN_RE.test(td)) return 'may contain only lowercase letters, digits, ".", "-" and "_"';
  return null;
}

/** Checks one SPIFFE path segment (SPIFFE-ID.md §2.2); returns a reason or null. */
export function pathSegmentProblem(segment: string): string | null {
  if (segment.length === 0) return 'is empty';
  if (segment === '.' || segment === '..') return 'may not be "." or ".."';
  if (!SEGMENT_RE.test(segment)) return 'may contain only letters, digits, ".", "-" and "_"';
  return null;
}

export function assertTrustDomain(td: string, what = 'trust domain'): void {
  const problem = trustDomainProblem(td);
  if (problem) throw new WardenError('ERR_REQUEST_INVALID', `${what} ${problem}`);
}

/**
 * Builds `spiffe://<td>/<seg>/<seg>...` from segments that are each validated; never
 * concatenates an unchecked string (a namespace "a/ns/b" is refused, not embedded).
 */
export function buildSpiffeId(trustDomain: string, segments: readonly string[]): string {
  assertTrustDomain(trustDomain);
  if (segments.length === 0) throw new TypeError('a workload SPIFFE ID needs a path');
  for (const seg of segments) {
    const problem = pathSegmentProblem(seg);
    if (problem) throw new WardenError('ERR_REQUEST_INVALID', `SPIFFE ID path segment "${printable(seg)}" ${problem}`);
  }
  const id = `spiffe://${trustDomain}/${segments.join('/')}`;
  if (Buffer.byteLength(id) > 2048) throw new WardenError('ERR_REQUEST_INVALID', 'SPIFFE ID is longer than 2048 bytes');
  return id;
}

export interface ParsedSpiffeId {
  readonly trustDomain: string;
  readonly segments: readonly string[];
}

/** Parses and validates a SPIFFE ID string strictly; returns null when it is not one. */
export function parseSpiffeId(id: string): ParsedSpiffeId | null {
  if (Buffer.byteLength(id) > 2048 || !id.startsWith('spiffe://')) return null;
  const rest = id.slice('spiffe://'.length);
  const slash = rest.indexOf('/');
  const td = slash === -1 ? rest : rest.slice(0, slash);
  if (trustDomainProblem(td)) return null;
  if (slash === -1) return { trustDomain: td, segments: [] };
  const segments = rest.slice(slash + 1).split('/');
  for (const seg of segments) if (pathSegmentProblem(seg)) return null;
  return { trustDomain: td, segments };
}

/** Makes untrusted text safe to quote in an error message (no control characters, bounded). */
export function printable(text: string, max = 64): string {
  const cleaned = text.replace(/[\u0000-\u001f\u007f-\u009f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
  return cleaned.length > max ? `${cleaned.slice(0, max)}…` : cleaned;
}
