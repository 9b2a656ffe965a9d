/**
 * JSON document helpers for PATCH: RFC 7386 merge patch, RFC 6902 JSON patch, and the path
 * arithmetic server-side apply needs. Documents are plain JSON values.
 */
export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
export type JsonObject = { [key: string]: Json };

export class PatchError extends Error {
  override readonly name = 'PatchError';
}

export function isObject(value: unknown): value is JsonObject {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

export function clone<T>(value: T): T {
  return structuredClone(value);
}

export function deepEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (Array.isArray(a) && Array.isArray(b))
    return a.length === b.length && a.every((v, i) => deepEqual(v, b[i]));
  if (isObject(a) && isObject(b)) {
    const ka = Object.keys(a);
    const kb = Object.keys(b);
    return (
      ka.length === kb.length &&
      ka.every((k) => Object.prototype.hasOwnProperty.call(b, k) && deepEqual(a[k], b[k]))
    );
  }
  return false;
}

/** RFC 7386: objects merge recursively, null deletes, anything else replaces. */
export function mergePatch(target: Json | undefined, patch: Json): Json {
  if (!isObject(patch)) return clone(patch);
  const result: JsonObject = isObject(target) ? clone(target) : {};
  for (const [key, value] of Object.entries(patch)) {
    if (value === null) delete result[key];
    else result[key] = mergePatch(result[key], value);
  }
  return result;
}

function decodePointer(pointer: string): string[] {
  if (pointer === '') return [];
  if (!pointer.startsWith('/'))
    throw new PatchError(`invalid JSON pointer ${JSON.stringify(pointer)}`);
  return pointer
    .slice(1)
    .split('/')
    .map((p) => p.replace(/~1/g, '/').replace(/~0/g, '~'));
}

function parentOf(doc: Json, parts: string[], op: string): { parent: Json; key: string } {
  if (parts.length === 0)
    throw new PatchError(`${op} operation does not apply to the document root`);
  let cur: Json = doc;
  for (const part of parts.slice(0, -1)) {
    if (Array.isArray(cur)) cur = cur[Number(part)] as Json;
    else if (isObject(cur)) cur = cur[part] as Json;
    else cur = undefined as unknown as Json;
    if (cur === undefined)
      throw new PatchError(
        `${op} operation does not apply: doc is missing path: /${parts.join('/')}`,
      );
  }
  return { parent: cur, key: parts[parts.length - 1] as string };
}

function getAt(doc: Json, parts: string[]): Json | undefined {
  let cur: Json | undefined = doc;
  for (const part of parts) {
    if (Array.isArray(cur)) cur = cur[Number(part)];
    else if (isObject(cur))
      cur = Object.prototype.hasOwnProperty.call(cur, part) ? cur[part] : undefined;
    else return undefined;
    if (cur === undefined) return undefined;
  }
  return cur;
}

function addAt(doc: Json, parts: string[], value: Json, op: string): Json {
  if (parts.length === 0) return clone(value);
  const { parent, key } = parentOf(doc, parts, op);
  if (Array.isArray(parent)) {
    const index = key === '-' ? parent.length : Number(key);
    if (!Number.isInteger(index) || index < 0 || index > parent.length)
      throw new PatchError(`${op} operation: index out of range: ${key}`);
    parent.splice(index, 0, clone(value));
  } else if (isObject(parent)) {
    parent[key] = clone(value);
  } else {
    throw new PatchError(
      `${op} operation does not apply: doc is missing path: /${parts.join('/')}`,
    );
  }
  return doc;
}

function removeAt(doc: Json, parts: string[], op: string): Json {
  const { parent, key } = parentOf(doc, parts, op);
  if (Array.isArray(parent)) {
    const index = Number(key);
    if (!Number.isInteger(index) || index < 0 || index >= parent.length)
      throw new PatchError(`${op} operation: index out of range: ${key}`);
    parent.splice(index, 1);
  } else if (isObject(parent) && Object.prototype.hasOwnProperty.call(parent, key)) {
    delete parent[key];
  } else {
    throw new PatchError(
      `${op} operation does not apply: doc is missing path: /${parts.join('/')}`,
    );
  }
  return doc;
}

/** RFC 6902. Throws PatchError (the server answers 422) when an operation cannot apply. */
export function applyJsonPatch(document: Json, operations: Json): Json {
  if (!Array.isArray(operations))
    throw new PatchError('json: cannot unmarshal object into Go value of type jsonpatch.Patch');
  let doc = clone(document);
  for (const raw of operations) {
    if (!isObject(raw) || typeof raw.op !== 'string' || typeof raw.path !== 'string') {
      throw new PatchError('json patch operations need "op" and "path"');
    }
    const parts = decodePointer(raw.path);
    switch (raw.op) {
      case 'add':
        doc = addAt(doc, parts, raw.value as Json, 'add');
        break;
      case 'remove':
        doc = removeAt(doc, parts, 'remove');
        break;
      case 'replace':
        if (getAt(doc, parts) === undefined)
          throw new PatchError(`replace operation does not apply: doc is missing key: ${raw.path}`);
        doc = removeAt(doc, parts, 'replace');
        doc = addAt(doc, parts, raw.value as Json, 'replace');
        break;
      case 'move':
      case 'copy': {
        if (typeof raw.from !== 'string') throw new PatchError(`${raw.op} operation needs "from"`);
        const from = decodePointer(raw.from);
        const value = getAt(doc, from);
        if (value === undefined)
          throw new PatchError(
            `${raw.op} operation does not apply: doc is missing from path: ${raw.from}`,
          );
        if (raw.op === 'move') doc = removeAt(doc, from, 'move');
        doc = addAt(doc, parts, value, raw.op);
        break;
      }
      case 'test':
        if (!deepEqual(getAt(doc, parts), raw.value))
          throw new PatchError(`testing value ${raw.path} failed: test failed`);
        break;
      default:
        throw new PatchError(`Unexpected kind: ${raw.op}`);
    }
  }
  return doc;
}

/** A path into an object, as a list of map keys; arrays are atomic leaves. */
export type FieldPath = readonly string[];

export function pathKey(path: FieldPath): string {
  return JSON.stringify(path);
}

export function parsePathKey(key: string): string[] {
  return JSON.parse(key) as string[];
}

/** Every leaf (scalar, array or empty map) of a document, keyed by pathKey. */
export function leafPaths(doc: JsonObject, prefix: string[] = []): Map<string, Json> {
  const out = new Map<string, Json>();
  for (const [key, value] of Object.entries(doc)) {
    const path = [...prefix, key];
    if (isObject(value) && Object.keys(value).length > 0) {
      for (const [k, v] of leafPaths(value, path)) out.set(k, v);
    } else {
      out.set(pathKey(path), value);
    }
  }
  return out;
}

export function getPath(doc: JsonObject, path: FieldPath): Json | undefined {
  return getAt(doc, [...path]);
}

export function deletePath(doc: JsonObject, path: FieldPath): void {
  let cur: Json | undefined = doc;
  const parents: JsonObject[] = [];
  for (const part of path.slice(0, -1)) {
    if (!isObject(cur)) return;
    parents.push(cur);
    cur = cur[part];
  }
  if (!isObject(cur)) return;
  delete cur[path[path.length - 1] as string];
  // Leave no empty maps behind where the removed field was the last one.
  for (let i = path.length - 2; i >= 0; i -= 1) {
    const parent = parents[i] as JsonObject;
    const child = parent[path[i] as string];
    if (isObject(child) && Object.keys(child).length === 0) delete parent[path[i] as string];
    else break;
  }
}

/** Deep merge for apply: maps merge, everything else (arrays included) replaces. */
export function applyMerge(target: JsonObject, applied: JsonObject): JsonObject {
  const result = clone(target);
  for (const [key, value] of Object.entries(applied)) {
    const existing = result[key];
    result[key] =
      isObject(value) && isObject(existing) ? applyMerge(existing, value) : clone(value);
  }
  return result;
}

/** Render a set of owned paths as the `fieldsV1` structure managedFields carries. */
export function fieldsV1(paths: Iterable<string>): JsonObject {
  const root: JsonObject = {};
  for (const key of paths) {
    let node = root;
    const parts = parsePathKey(key);
    parts.forEach((part, i) => {
      const k = `f:${part}`;
      if (!isObject(node[k])) node[k] = {};
      const child = node[k] as JsonObject;
      if (i < parts.length - 1 && !isObject(child['.'])) child['.'] = {};
      node = child;
    });
  }
  return root;
}
