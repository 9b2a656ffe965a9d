import { WardenError } from '../../../shared/errors.js';
import { MAX_SECRET_VALUE_BYTES } from '../../secret-name.js';
import type { SecretData } from '../../secret-store.js';

export interface SecretsFileLayout {
  /** Joins nested keys (`a:b`) and array indexes (`arr:0`); Dapr's `nestedSeparator`. */
  readonly nestedSeparator: string;
  /** Dapr's `multiValued`: top-level keys are secrets, their nested objects the keys in them. */
  readonly multiValued: boolean;
}

export interface ParsedSecretsFile {
  readonly secrets: ReadonlyMap<string, SecretData>;
  /** Secrets holding a value over MAX_SECRET_VALUE_BYTES: never handed out. */
  readonly tooLarge: ReadonlySet<string>;
}

type Leaf = string;

function leafOf(value: unknown): Leaf | undefined {
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  return undefined; // null: Warden treats it as absent rather than as an empty secret
}

/** Depth-first flattening: `{a: {b: 1}, arr: [x]}` → `a:b`, `arr:0`. */
function flatten(value: unknown, prefix: string, separator: string, out: Map<string, string>): void {
  if (Array.isArray(value)) {
    value.forEach((item, index) => flatten(item, prefix === '' ? String(index) : `${prefix}${separator}${index}`, separator, out));
    return;
  }
  if (value !== null && typeof value === 'object') {
    for (const [key, child] of Object.entries(value)) {
      flatten(child, prefix === '' ? key : `${prefix}${separator}${key}`, separator, out);
    }
    return;
  }
  const leaf = leafOf(value);
  if (leaf !== undefined) out.set(prefix, leaf);
}

function oversize(data: ReadonlyMap<string, string>): boolean {
  for (const v of data.values()) {
    // UTF-8 needs at most 3 bytes per UTF-16 unit, so only long strings need measuring
    if (v.length * 3 > MAX_SECRET_VALUE_BYTES && Buffer.byteLength(v) > MAX_SECRET_VALUE_BYTES) return true;
  }
  return false;
}

/**
 * Parses the secrets file text. The error never quotes the text: JSON.parse's own message
 * includes a snippet of the input, which may be a secret, so only the position is kept.
 */
export function parseSecretsFile(text: string, layout: SecretsFileLayout, file: string): ParsedSecretsFile {
  let document: unknown;
  try {
    document = JSON.parse(text);
  } catch (err) {
    const position = /position (\d+)/.exec(err instanceof Error ? err.message : '')?.[1];
    throw new WardenError(
      'ERR_SECRET_STORE_CONFIG',
      `secrets file ${file} is not valid JSON${position === undefined ? '' : ` (near byte offset ${position})`}`,
    );
  }
  if (document === null || typeof document !== 'object' || Array.isArray(document)) {
    throw new WardenError('ERR_SECRET_STORE_CONFIG', `secrets file ${file} must hold a JSON object at the top level`);
  }
  const secrets = new Map<string, SecretData>();
  const tooLarge = new Set<string>();
  const add = (name: string, data: Map<string, string>): void => {
    if (oversize(data)) {
      tooLarge.add(name);
      return;
    }
    secrets.set(name, Object.freeze(Object.fromEntries(data)));
  };
  if (layout.multiValued) {
    for (const [name, value] of Object.entries(document)) {
      const data = new Map<string, string>();
      if (value !== null && typeof value === 'object') flatten(value, '', layout.nestedSeparator, data);
      else {
        const leaf = leafOf(value);
        if (leaf === undefined) continue;
        data.set(name, leaf);
      }
      add(name, data);
    }
  } else {
    const flat = new Map<string, string>();
    flatten(document, '', layout.nestedSeparator, flat);
    for (const [name, value] of flat) add(name, new Map([[name, value]]));
  }
  return { secrets, tooLarge };
}
