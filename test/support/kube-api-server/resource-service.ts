import { randomUUID } from 'node:crypto';
import { parse as parseYaml } from 'yaml';
import {
  metadataOf,
  type FieldOwner,
  type ObjectStore,
  type StoredObject,
} from './object-store.js';
import {
  PatchError,
  applyJsonPatch,
  applyMerge,
  clone,
  deepEqual,
  deletePath,
  fieldsV1,
  isObject,
  leafPaths,
  mergePatch,
  parsePathKey,
  type Json,
  type JsonObject,
} from './patch.js';
import { apiVersionOf, type ResourceRegistry, type ResourceType } from './resources.js';
import {
  StatusError,
  alreadyExists,
  badRequest,
  conflict,
  failure,
  invalid,
  namespaceNotFound,
  notFound,
  unsupportedMediaType,
  type FieldError,
} from './status.js';
import { configKeyErrors, isStdBase64, nameErrors } from './validation.js';

/**
 * The API semantics over ObjectStore, shared by the HTTP handlers and the in-process control
 * API: create / update / patch / delete with the real server's validation, conflicts,
 * server-managed metadata, Secret stringData folding and server-side apply field ownership.
 */
export interface WriteOptions {
  /** metadata.managedFields manager; the HTTP layer derives it from ?fieldManager or the User-Agent. */
  readonly fieldManager: string;
  readonly dryRun?: boolean;
  /** Called before a PUT or apply creates a missing object (the real server authorises `create` too). */
  readonly authorizeCreate?: () => void;
  /** The control API writes unconditionally and skips NamespaceLifecycle. */
  readonly control?: boolean;
}

export interface PatchOptions extends WriteOptions {
  readonly force?: boolean;
}

export interface WriteResult {
  readonly object: JsonObject;
  readonly created: boolean;
}

export const PATCH_TYPES = [
  'application/json-patch+json',
  'application/merge-patch+json',
  'application/strategic-merge-patch+json',
  'application/apply-patch+yaml',
] as const;

const MAX_DATA_BYTES = 1024 * 1024;
const NAME_SUFFIX_ALPHABET = 'bcdfghjklmnpqrstvwxz2456789';
const METADATA_ORDER = [
  'name',
  'generateName',
  'namespace',
  'uid',
  'resourceVersion',
  'generation',
  'creationTimestamp',
  'deletionTimestamp',
  'deletionGracePeriodSeconds',
  'labels',
  'annotations',
  'ownerReferences',
  'finalizers',
  'managedFields',
];
const OWNED_METADATA = ['labels', 'annotations', 'ownerReferences', 'finalizers'];

function timestamp(date: Date): string {
  return date.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

function orderedMetadata(meta: JsonObject): JsonObject {
  const out: JsonObject = {};
  for (const key of METADATA_ORDER) if (meta[key] !== undefined) out[key] = meta[key] as Json;
  for (const [key, value] of Object.entries(meta))
    if (!(key in out) && value !== undefined) out[key] = value;
  return out;
}

/** kind, apiVersion, metadata first, as the real server serialises. */
function canonical(rt: ResourceType, obj: JsonObject): JsonObject {
  const { kind: _k, apiVersion: _a, metadata, ...rest } = obj;
  void _k;
  void _a;
  return {
    kind: rt.kind,
    apiVersion: apiVersionOf(rt),
    metadata: orderedMetadata((metadata ?? {}) as JsonObject),
    ...rest,
  };
}

/** The part of an object field managers can own: content plus labels/annotations/ownerReferences/finalizers. */
function ownedView(obj: JsonObject): JsonObject {
  const { kind: _k, apiVersion: _a, metadata, ...rest } = obj;
  void _k;
  void _a;
  const view: JsonObject = { ...rest };
  const meta = (metadata ?? {}) as JsonObject;
  const ownedMeta: JsonObject = {};
  for (const key of OWNED_METADATA) if (meta[key] !== undefined) ownedMeta[key] = meta[key] as Json;
  if (Object.keys(ownedMeta).length > 0) view.metadata = ownedMeta;
  return view;
}

/** Content that bumps metadata.generation: everything except metadata and status. */
function specView(obj: JsonObject): JsonObject {
  const { metadata: _m, status: _s, kind: _k, apiVersion: _a, ...rest } = obj;
  void _m;
  void _s;
  void _k;
  void _a;
  return rest;
}

function fieldPathString(key: string): string {
  return parsePathKey(key)
    .map((p) => `.${p}`)
    .join('');
}

export class ResourceService {
  readonly #store: ObjectStore;
  readonly #now: () => Date;
  readonly #registry: ResourceRegistry;

  constructor(store: ObjectStore, now: () => Date, registry: ResourceRegistry) {
    this.#store = store;
    this.#now = now;
    this.#registry = registry;
  }

  #namespaces(): ResourceType {
    return this.#registry.resolve('namespaces');
  }

  get(rt: ResourceType, namespace: string | undefined, name: string): JsonObject {
    const found = this.#store.read(rt, namespace, name);
    if (!found) throw notFound(rt, name);
    return clone(found.object);
  }

  exists(rt: ResourceType, namespace: string | undefined, name: string): boolean {
    return this.#store.read(rt, namespace, name) !== undefined;
  }

  list(rt: ResourceType, namespace: string | undefined): JsonObject[] {
    return this.#store.list(rt, namespace).map((s) => clone(s.object));
  }

  create(
    rt: ResourceType,
    namespace: string | undefined,
    body: unknown,
    options: WriteOptions,
  ): WriteResult {
    const obj = this.#checkBody(rt, body);
    const meta = metadataOf(obj);
    this.#checkNamespace(rt, namespace, meta);
    if (
      (meta.name === undefined || meta.name === '') &&
      typeof meta.generateName === 'string' &&
      meta.generateName !== ''
    ) {
      meta.name = this.#generateName(rt, namespace, meta.generateName);
    }
    const name = typeof meta.name === 'string' ? meta.name : '';
    if (name === '') {
      throw invalid(rt, '', [
        {
          type: 'FieldValueRequired',
          field: 'metadata.name',
          detail: 'name or generateName is required',
        },
      ]);
    }
    const nameProblems = nameErrors(rt.nameRule, name);
    if (nameProblems.length > 0) throw invalid(rt, name, nameProblems);
    if (
      rt.namespaced &&
      !options.control &&
      !this.#store.read(this.#namespaces(), undefined, namespace as string)
    ) {
      throw namespaceNotFound(namespace as string);
    }
    if (this.#store.read(rt, namespace, name)) throw alreadyExists(rt, name);
    return { object: this.#insert(rt, namespace, obj, options), created: true };
  }

  update(
    rt: ResourceType,
    namespace: string | undefined,
    name: string,
    body: unknown,
    options: WriteOptions,
  ): WriteResult {
    const obj = this.#checkBody(rt, body);
    const meta = metadataOf(obj);
    this.#checkNamespace(rt, namespace, meta);
    if (meta.name !== name) {
      throw badRequest(
        `the name of the object (${String(meta.name ?? '')}) does not match the name on the URL (${name})`,
      );
    }
    const existing = this.#store.read(rt, namespace, name);
    if (!existing) {
      if (!rt.allowCreateOnUpdate && !options.control) throw notFound(rt, name);
      const nameProblems = nameErrors(rt.nameRule, name);
      if (nameProblems.length > 0) throw invalid(rt, name, nameProblems);
      if (
        rt.namespaced &&
        !options.control &&
        !this.#store.read(this.#namespaces(), undefined, namespace as string)
      ) {
        throw namespaceNotFound(namespace as string);
      }
      options.authorizeCreate?.();
      delete meta.resourceVersion;
      return { object: this.#insert(rt, namespace, obj, options), created: true };
    }
    const requested = typeof meta.resourceVersion === 'string' ? meta.resourceVersion : '';
    if (!options.control)
      this.#checkResourceVersion(rt, name, requested, existing, rt.allowUnconditionalUpdate);
    return { object: this.#replace(rt, existing, obj, options, undefined), created: false };
  }

  patch(
    rt: ResourceType,
    namespace: string | undefined,
    name: string,
    contentType: string,
    raw: string,
    options: PatchOptions,
  ): WriteResult {
    const type = contentType.split(';')[0]?.trim().toLowerCase() ?? '';
    if (!(PATCH_TYPES as readonly string[]).includes(type))
      throw unsupportedMediaType(contentType, PATCH_TYPES);
    const existing = this.#store.read(rt, namespace, name);
    if (type === 'application/apply-patch+yaml')
      return this.#apply(rt, namespace, name, raw, existing, options);
    if (!existing) throw notFound(rt, name);
    let patchBody: Json;
    try {
      patchBody = JSON.parse(raw) as Json;
    } catch (err) {
      throw badRequest(`error decoding patch: ${(err as Error).message}`);
    }
    let patched: Json;
    try {
      patched =
        type === 'application/json-patch+json'
          ? applyJsonPatch(clone(existing.object), patchBody)
          : mergePatch(clone(existing.object), patchBody);
    } catch (err) {
      if (err instanceof PatchError) {
        throw new StatusError(
          failure(
            422,
            'Invalid',
            `the server rejected our request due to an error in our request: ${err.message}`,
            {},
          ),
        );
      }
      throw err;
    }
    if (!isObject(patched)) throw badRequest('the patch produced something that is not an object');
    const meta = metadataOf(patched);
    if (meta.name !== name)
      throw badRequest(
        `the name of the object (${String(meta.name ?? '')}) does not match the name on the URL (${name})`,
      );
    this.#checkNamespace(rt, namespace, meta);
    const requested = typeof meta.resourceVersion === 'string' ? meta.resourceVersion : '';
    this.#checkResourceVersion(rt, name, requested, existing, true);
    return { object: this.#replace(rt, existing, patched, options, undefined), created: false };
  }

  delete(
    rt: ResourceType,
    namespace: string | undefined,
    name: string,
    options: { dryRun?: boolean; preconditions?: { uid?: string; resourceVersion?: string } } = {},
  ): JsonObject {
    const existing = this.#store.read(rt, namespace, name);
    if (!existing) throw notFound(rt, name);
    const meta = metadataOf(existing.object);
    const pre = options.preconditions ?? {};
    if (pre.uid !== undefined && pre.uid !== meta.uid) {
      throw conflict(
        rt,
        name,
        `Precondition failed: UID in precondition: ${pre.uid}, UID in object meta: ${String(meta.uid)}`,
      );
    }
    if (pre.resourceVersion !== undefined && pre.resourceVersion !== meta.resourceVersion) {
      throw conflict(
        rt,
        name,
        `Precondition failed: ResourceVersion in precondition: ${pre.resourceVersion}, ResourceVersion in object meta: ${String(meta.resourceVersion)}`,
      );
    }
    if (options.dryRun) return clone(existing.object);
    if (rt === this.#namespaces()) this.#deleteNamespaceContents(name);
    return clone(this.#store.commit(rt, 'DELETED', clone(existing.object), []));
  }

  #deleteNamespaceContents(namespace: string): void {
    for (const rt of this.#registry.all()) {
      if (!rt.namespaced || rt.virtual) continue;
      for (const stored of this.#store.list(rt, namespace)) {
        this.#store.commit(rt, 'DELETED', clone(stored.object), []);
      }
    }
  }

  #checkBody(rt: ResourceType, body: unknown): JsonObject {
    if (!isObject(body))
      throw badRequest(
        `${rt.kind} in version "${rt.version}" cannot be handled as a ${rt.kind}: the request body is not a JSON object`,
      );
    const obj = clone(body);
    if (obj.apiVersion !== undefined && obj.apiVersion !== apiVersionOf(rt)) {
      throw badRequest(
        `the API version in the data (${String(obj.apiVersion)}) does not match the expected API version (${apiVersionOf(rt)})`,
      );
    }
    if (obj.kind !== undefined && obj.kind !== rt.kind) {
      throw badRequest(
        `${String(obj.kind)} in version "${rt.version}" cannot be handled as a ${rt.kind}: the kind in the data does not match`,
      );
    }
    if (obj.metadata !== undefined && !isObject(obj.metadata))
      throw badRequest('metadata must be an object');
    obj.metadata = (obj.metadata ?? {}) as JsonObject;
    return obj;
  }

  #checkNamespace(rt: ResourceType, namespace: string | undefined, meta: JsonObject): void {
    if (!rt.namespaced) {
      delete meta.namespace;
      return;
    }
    if (meta.namespace !== undefined && meta.namespace !== '' && meta.namespace !== namespace) {
      throw badRequest(
        'the namespace of the provided object does not match the namespace sent on the request',
      );
    }
    meta.namespace = namespace as string;
  }

  #checkResourceVersion(
    rt: ResourceType,
    name: string,
    requested: string,
    existing: StoredObject,
    unconditionalAllowed: boolean,
  ): void {
    if (requested === '') {
      if (unconditionalAllowed) return;
      throw invalid(
        rt,
        name,
        [
          {
            type: 'FieldValueInvalid',
            field: 'metadata.resourceVersion',
            value: '0x0',
            detail: 'must be specified for an update',
          },
        ],
        { group: rt.group, kind: rt.resource },
      );
    }
    if (requested !== metadataOf(existing.object).resourceVersion) throw conflict(rt, name);
  }

  #generateName(rt: ResourceType, namespace: string | undefined, base: string): string {
    for (;;) {
      let suffix = '';
      for (let i = 0; i < 5; i += 1)
        suffix += NAME_SUFFIX_ALPHABET[Math.floor(Math.random() * NAME_SUFFIX_ALPHABET.length)];
      const candidate = `${base.slice(0, 58)}${suffix}`;
      if (!this.#store.read(rt, namespace, candidate)) return candidate;
    }
  }

  /** Per-type defaulting and validation, including Secret stringData folding. */
  #normalise(rt: ResourceType, obj: JsonObject): void {
    const name = String(metadataOf(obj).name ?? '');
    const errors: FieldError[] = [];
    if (rt.group === '' && rt.resource === 'secrets') {
      if (obj.stringData !== undefined) {
        if (!isObject(obj.stringData))
          throw badRequest(
            'Secret in version "v1" cannot be handled as a Secret: stringData must be a map of strings',
          );
        const data = isObject(obj.data) ? obj.data : {};
        for (const [key, value] of Object.entries(obj.stringData)) {
          if (typeof value !== 'string')
            throw badRequest(
              `Secret in version "v1" cannot be handled as a Secret: stringData.${key} must be a string`,
            );
          data[key] = Buffer.from(value, 'utf8').toString('base64');
        }
        obj.data = data;
        delete obj.stringData;
      }
      let size = 0;
      if (obj.data !== undefined && obj.data !== null) {
        if (!isObject(obj.data))
          throw badRequest(
            'Secret in version "v1" cannot be handled as a Secret: data must be a map',
          );
        for (const [key, value] of Object.entries(obj.data)) {
          if (typeof value !== 'string' || !isStdBase64(value)) {
            throw badRequest(
              `Secret in version "v1" cannot be handled as a Secret: illegal base64 data at input byte 0`,
            );
          }
          errors.push(...configKeyErrors(key, `data[${key}]`));
          size += Buffer.from(value, 'base64').length;
        }
      }
      if (size > MAX_DATA_BYTES)
        errors.push({
          type: 'FieldValueTooLong',
          field: 'data',
          detail: `must have at most ${MAX_DATA_BYTES} bytes`,
        });
      if (obj.type === undefined || obj.type === '') obj.type = 'Opaque';
    } else if (rt.group === '' && rt.resource === 'configmaps') {
      let size = 0;
      const seen = new Set<string>();
      for (const field of ['data', 'binaryData'] as const) {
        const map = obj[field];
        if (map === undefined || map === null) continue;
        if (!isObject(map))
          throw badRequest(
            `ConfigMap in version "v1" cannot be handled as a ConfigMap: ${field} must be a map`,
          );
        for (const [key, value] of Object.entries(map)) {
          if (typeof value !== 'string' || (field === 'binaryData' && !isStdBase64(value))) {
            throw badRequest(
              `ConfigMap in version "v1" cannot be handled as a ConfigMap: ${field}.${key} has the wrong type`,
            );
          }
          errors.push(...configKeyErrors(key, `${field}[${key}]`));
          if (seen.has(key))
            errors.push({
              type: 'FieldValueInvalid',
              field: `${field}[${key}]`,
              value: JSON.stringify(key),
              detail: 'duplicate of key present in data',
            });
          seen.add(key);
          size +=
            field === 'binaryData' ? Buffer.from(value, 'base64').length : Buffer.byteLength(value);
        }
      }
      if (size > MAX_DATA_BYTES)
        errors.push({
          type: 'FieldValueTooLong',
          field: '[]',
          detail: `must have at most ${MAX_DATA_BYTES} bytes`,
        });
    } else if (rt.group === '' && rt.resource === 'namespaces') {
      const meta = metadataOf(obj);
      meta.labels = {
        ...((meta.labels as JsonObject | undefined) ?? {}),
        'kubernetes.io/metadata.name': name,
      };
      const spec = isObject(obj.spec) ? obj.spec : {};
      if (spec.finalizers === undefined) spec.finalizers = ['kubernetes'];
      obj.spec = spec;
      obj.status = { phase: 'Active', ...(isObject(obj.status) ? obj.status : {}) };
    } else if (rt.group === '' && rt.resource === 'pods') {
      const spec = isObject(obj.spec) ? obj.spec : {};
      if (spec.serviceAccountName === undefined) spec.serviceAccountName = 'default';
      obj.spec = spec;
      obj.status = { phase: 'Pending', ...(isObject(obj.status) ? obj.status : {}) };
    }
    const meta = metadataOf(obj);
    for (const mapField of ['labels', 'annotations'] as const) {
      const map = meta[mapField];
      if (map === undefined || map === null) continue;
      if (!isObject(map) || Object.values(map).some((v) => typeof v !== 'string')) {
        throw badRequest(
          `${rt.kind} in version "${rt.version}" cannot be handled as a ${rt.kind}: metadata.${mapField} must be a map of strings`,
        );
      }
    }
    if (errors.length > 0) throw invalid(rt, name, errors);
  }

  #insert(
    rt: ResourceType,
    namespace: string | undefined,
    obj: JsonObject,
    options: WriteOptions,
    applyOwner?: FieldOwner,
  ): JsonObject {
    this.#normalise(rt, obj);
    const meta = metadataOf(obj);
    for (const serverField of [
      'uid',
      'resourceVersion',
      'creationTimestamp',
      'deletionTimestamp',
      'selfLink',
      'generation',
      'managedFields',
    ]) {
      delete meta[serverField];
    }
    if (rt.namespaced) meta.namespace = namespace as string;
    meta.uid = randomUUID();
    meta.creationTimestamp = timestamp(this.#now());
    if (rt.tracksGeneration) meta.generation = 1;
    const time = timestamp(this.#now());
    const owners: FieldOwner[] = applyOwner
      ? [{ ...applyOwner, time }]
      : [
          {
            manager: options.fieldManager,
            operation: 'Update',
            apiVersion: apiVersionOf(rt),
            time,
            paths: new Set(leafPaths(ownedView(obj)).keys()),
          },
        ];
    const result = canonical(rt, obj);
    metadataOf(result).managedFields = this.#renderOwners(owners);
    if (options.dryRun) return clone(result);
    return clone(this.#store.commit(rt, 'ADDED', result, owners));
  }

  /** Replace `existing` with `next`; ownership moves to the Update manager for changed fields, or follows `applyOwners`. */
  #replace(
    rt: ResourceType,
    existing: StoredObject,
    next: JsonObject,
    options: WriteOptions,
    applyOwners: FieldOwner[] | undefined,
  ): JsonObject {
    this.#normalise(rt, next);
    const old = existing.object;
    const oldMeta = metadataOf(old);
    const meta = metadataOf(next);
    meta.uid = oldMeta.uid as Json;
    meta.creationTimestamp = oldMeta.creationTimestamp as Json;
    meta.name = oldMeta.name as Json;
    if (rt.namespaced) meta.namespace = oldMeta.namespace as Json;
    delete meta.managedFields;
    delete meta.selfLink;
    if (rt.tracksGeneration) {
      const generation = typeof oldMeta.generation === 'number' ? oldMeta.generation : 1;
      meta.generation = deepEqual(specView(old), specView(next)) ? generation : generation + 1;
    } else {
      delete meta.generation;
    }
    meta.resourceVersion = oldMeta.resourceVersion as Json;

    const time = timestamp(this.#now());
    let owners: FieldOwner[];
    if (applyOwners) {
      owners = applyOwners;
    } else {
      const before = leafPaths(ownedView(old));
      const after = leafPaths(ownedView(next));
      owners = existing.owners.map((o) => ({ ...o, paths: new Set(o.paths) }));
      const changed = [...after.entries()]
        .filter(([k, v]) => !before.has(k) || !deepEqual(before.get(k), v))
        .map(([k]) => k);
      const removed = [...before.keys()].filter((k) => !after.has(k));
      for (const o of owners) {
        for (const k of removed) o.paths.delete(k);
        for (const k of changed) o.paths.delete(k);
      }
      if (changed.length > 0) {
        let mine = owners.find(
          (o) => o.manager === options.fieldManager && o.operation === 'Update',
        );
        if (!mine) {
          mine = {
            manager: options.fieldManager,
            operation: 'Update',
            apiVersion: apiVersionOf(rt),
            time,
            paths: new Set(),
          };
          owners.push(mine);
        }
        mine.time = time;
        for (const k of changed) mine.paths.add(k);
      }
      owners = owners.filter((o) => o.paths.size > 0);
    }

    const result = canonical(rt, next);
    const comparableOld = { ...old, metadata: { ...oldMeta, managedFields: null } };
    const comparableNew = { ...result, metadata: { ...metadataOf(result), managedFields: null } };
    // A no-op write keeps its resourceVersion and sends no watch event, as the real server does.
    if (deepEqual(comparableOld, comparableNew) && sameOwnership(existing.owners, owners))
      return clone(old);
    metadataOf(result).managedFields = this.#renderOwners(owners);
    if (options.dryRun) return clone(result);
    return clone(this.#store.commit(rt, 'MODIFIED', result, owners, old));
  }

  #renderOwners(owners: readonly FieldOwner[]): Json {
    return owners
      .filter((o) => o.paths.size > 0)
      .map((o) => ({
        manager: o.manager,
        operation: o.operation,
        apiVersion: o.apiVersion,
        time: o.time,
        fieldsType: 'FieldsV1',
        fieldsV1: fieldsV1(o.paths),
      }));
  }

  /** Server-side apply: merge the applied configuration, own its fields, refuse to take others' fields without force. */
  #apply(
    rt: ResourceType,
    namespace: string | undefined,
    name: string,
    raw: string,
    existing: StoredObject | undefined,
    options: PatchOptions,
  ): WriteResult {
    if (!options.fieldManager || options.fieldManager === '')
      throw badRequest('fieldManager is required for apply requests');
    let applied: unknown;
    try {
      applied = parseYaml(raw);
    } catch (err) {
      throw badRequest(`error decoding YAML: ${(err as Error).message}`);
    }
    if (!isObject(applied)) throw badRequest('apply body must be an object');
    if (applied.apiVersion === undefined || applied.kind === undefined) {
      throw badRequest('apiVersion and kind must be set in an applied configuration');
    }
    const obj = this.#checkBody(rt, applied);
    const meta = metadataOf(obj);
    if (meta.name !== undefined && meta.name !== name) {
      throw badRequest(
        `the name of the object (${String(meta.name)}) does not match the name on the URL (${name})`,
      );
    }
    this.#checkNamespace(rt, namespace, meta);
    const appliedLeaves = leafPaths(ownedView(obj));
    const manager = options.fieldManager;
    const apiVersion = apiVersionOf(rt);

    if (!existing) {
      const nameProblems = nameErrors(rt.nameRule, name);
      if (nameProblems.length > 0) throw invalid(rt, name, nameProblems);
      if (
        rt.namespaced &&
        !options.control &&
        !this.#store.read(this.#namespaces(), undefined, namespace as string)
      ) {
        throw namespaceNotFound(namespace as string);
      }
      options.authorizeCreate?.();
      meta.name = name;
      const owner: FieldOwner = {
        manager,
        operation: 'Apply',
        apiVersion,
        time: '',
        paths: new Set(appliedLeaves.keys()),
      };
      return { object: this.#insert(rt, namespace, obj, options, owner), created: true };
    }

    const requested = typeof meta.resourceVersion === 'string' ? meta.resourceVersion : '';
    if (requested !== '' && requested !== metadataOf(existing.object).resourceVersion)
      throw conflict(rt, name);

    const live = existing.object;
    const liveLeaves = leafPaths(ownedView(live));
    const owners = existing.owners.map((o) => ({ ...o, paths: new Set(o.paths) }));
    const isMe = (o: FieldOwner): boolean => o.manager === manager && o.operation === 'Apply';

    const conflicts: { manager: string; apiVersion: string; path: string }[] = [];
    for (const [path, value] of appliedLeaves) {
      if (!liveLeaves.has(path) || deepEqual(liveLeaves.get(path), value)) continue;
      for (const o of owners)
        if (!isMe(o) && o.paths.has(path))
          conflicts.push({ manager: o.manager, apiVersion: o.apiVersion, path });
    }
    if (conflicts.length > 0 && !options.force) throw applyConflict(conflicts);

    let result: JsonObject = clone(live);
    const mine = owners.find(isMe);
    if (mine) {
      for (const path of mine.paths) {
        if (appliedLeaves.has(path)) continue;
        if (owners.some((o) => !isMe(o) && o.paths.has(path))) continue;
        deletePath(result, parsePathKey(path));
      }
    }
    const { metadata: appliedMeta, kind: _k, apiVersion: _a, ...content } = obj;
    void _k;
    void _a;
    result = applyMerge(result, content as JsonObject);
    const resultMeta = metadataOf(result);
    for (const key of OWNED_METADATA) {
      const value = (appliedMeta as JsonObject)[key];
      if (value === undefined) continue;
      resultMeta[key] =
        isObject(value) && isObject(resultMeta[key])
          ? applyMerge(resultMeta[key] as JsonObject, value)
          : clone(value);
    }
    result.metadata = resultMeta;

    const time = timestamp(this.#now());
    if (options.force) {
      for (const c of conflicts) for (const o of owners) if (!isMe(o)) o.paths.delete(c.path);
    }
    let me = owners.find(isMe);
    if (!me) {
      me = { manager, operation: 'Apply', apiVersion, time, paths: new Set() };
      owners.push(me);
    }
    me.paths = new Set(appliedLeaves.keys());
    me.time = time;
    const finalOwners = owners.filter((o) => o.paths.size > 0);
    return { object: this.#replace(rt, existing, result, options, finalOwners), created: false };
  }
}

function sameOwnership(a: readonly FieldOwner[], b: readonly FieldOwner[]): boolean {
  const render = (owners: readonly FieldOwner[]): string[] =>
    owners.map((o) => `${o.manager}|${o.operation}|${[...o.paths].sort().join(',')}`).sort();
  return deepEqual(render(a), render(b));
}

function applyConflict(
  conflicts: readonly { manager: string; apiVersion: string; path: string }[],
): StatusError {
  const byManager = new Map<string, string[]>();
  for (const c of conflicts) {
    const label = `"${c.manager}" using ${c.apiVersion}`;
    byManager.set(label, [...(byManager.get(label) ?? []), fieldPathString(c.path)]);
  }
  const count = conflicts.length;
  const parts = [...byManager.entries()].map(([label, paths]) =>
    paths.length === 1
      ? `conflict with ${label}: ${paths[0]}`
      : `conflicts with ${label}:\n${paths.map((p) => `- ${p}`).join('\n')}`,
  );
  const message = `Apply failed with ${count} conflict${count === 1 ? '' : 's'}: ${parts.join('\n')}`;
  return new StatusError(
    failure(409, 'Conflict', message, {
      causes: conflicts.map((c) => ({
        reason: 'FieldManagerConflict',
        message: `conflict with "${c.manager}" using ${c.apiVersion}`,
        field: fieldPathString(c.path),
      })),
    }),
  );
}
