/** One entry of Node's `subjectAltName` text, e.g. { type: 'URI', value: 'spiffe://td/ns/a/b' }. */
export interface SanEntry {
  readonly type: string;
  readonly value: string;
}

/**
 * Splits Node's `subjectAltName` text ("DNS:a, URI:spiffe://…"). Node quotes a value that
 * holds a comma, quote or unusual character in JSON string syntax, so a quoted value is
 * read with JSON.parse and a crafted DNS name cannot smuggle in a second "URI:" entry.
 * Returns null when the text cannot be read (callers then refuse the certificate).
 */
export function parseSubjectAltNames(text: string): SanEntry[] | null {
  const entries: SanEntry[] = [];
  let i = 0;
  while (i < text.length) {
    const colon = text.indexOf(':', i);
    if (colon === -1) return null;
    const type = text.slice(i, colon);
    let value: string;
    let next: number;
    if (text[colon + 1] === '"') {
      let end = colon + 2;
      while (end < text.length && text[end] !== '"') end += text[end] === '\\' ? 2 : 1;
      if (end >= text.length) return null;
      try {
        value = JSON.parse(text.slice(colon + 1, end + 1)) as string;
      } catch {
        return null;
      }
      next = end + 1;
    } else {
      const comma = text.indexOf(', ', colon + 1);
      next = comma === -1 ? text.length : comma;
      value = text.slice(colon + 1, next);
    }
    entries.push({ type, value });
    if (next === text.length) break;
    if (text.slice(next, next + 2) !== ', ') return null;
    i = next + 2;
  }
  return entries;
}

/** The URI SANs of a certificate's subjectAltName text, or null when the text cannot be read. */
export function uriSubjectAltNames(text: string | undefined): string[] | null {
  const entries = parseSubjectAltNames(text ?? '');
  return entries === null ? null : entries.filter((e) => e.type === 'URI').map((e) => e.value);
}
