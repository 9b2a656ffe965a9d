/**
 * Strict PEM reading for trust material. Peers silently ignore text around and after PEM
 * blocks; Warden refuses it, so a file never means more (or less) than what is validated.
 */

export interface PemBlock {
  readonly label: string;
  readonly der: Buffer;
}

export type PemParseResult =
  | { readonly ok: true; readonly blocks: readonly PemBlock[] }
  | { readonly ok: false; readonly problem: string };

/** Upper bound on blocks in one file: a trust file is a handful of certificates, not a DoS. */
export const MAX_PEM_BLOCKS = 64;

const BLOCK_RE = /-----BEGIN ([A-Z0-9 ]{1,64})-----\r?\n([\s\S]*?)-----END ([A-Z0-9 ]{1,64})-----/g;
const BASE64_BODY_RE = /^[A-Za-z0-9+/\r\n\t ]*={0,2}[\r\n\t ]*$/;

/**
 * Splits text into PEM blocks. Problems (worded to follow a file name, e.g. "contains text
 * outside PEM blocks") never quote the file's content, which may be a private key.
 */
export function parsePemBlocks(text: string): PemParseResult {
  const blocks: PemBlock[] = [];
  let last = 0;
  BLOCK_RE.lastIndex = 0;
  let match: RegExpExecArray | null;
  while ((match = BLOCK_RE.exec(text)) !== null) {
    const [, label, body, endLabel] = match as unknown as [string, string, string, string];
    if (text.slice(last, match.index).trim().length > 0) {
      return { ok: false, problem: 'contains text outside PEM blocks' };
    }
    last = BLOCK_RE.lastIndex;
    if (label !== endLabel) {
      return {
        ok: false,
        problem: `has a PEM block that begins "${label}" but ends "${endLabel}"`,
      };
    }
    if (/^[A-Za-z-]+:/m.test(body)) {
      // RFC 1421 headers: in practice "Proc-Type: 4,ENCRYPTED" on a legacy encrypted key.
      return {
        ok: false,
        problem: `has a ${label} PEM block with headers (an encrypted key is not supported)`,
      };
    }
    if (!BASE64_BODY_RE.test(body)) {
      return { ok: false, problem: `has a ${label} PEM block that is not valid base64` };
    }
    const der = Buffer.from(body.replace(/\s+/g, ''), 'base64');
    if (der.length === 0) return { ok: false, problem: `has an empty ${label} PEM block` };
    blocks.push({ label, der });
    if (blocks.length > MAX_PEM_BLOCKS) {
      return { ok: false, problem: `has more than ${MAX_PEM_BLOCKS} PEM blocks` };
    }
  }
  if (text.slice(last).trim().length > 0) {
    return {
      ok: false,
      problem: blocks.length === 0 ? 'contains no PEM block' : 'contains text outside PEM blocks',
    };
  }
  if (blocks.length === 0) return { ok: false, problem: 'contains no PEM block' };
  return { ok: true, blocks };
}

/** Encodes DER as PEM with 64-character lines and a trailing newline. */
export function toPem(label: string, der: Uint8Array): string {
  const b64 = Buffer.from(der).toString('base64');
  const lines = b64.match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${label}-----\n${lines.join('\n')}\n-----END ${label}-----\n`;
}
