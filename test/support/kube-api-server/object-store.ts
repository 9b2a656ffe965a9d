import type { JsonObject } from './patch.js';
import type { ResourceType } from './resources.js';

/**
 * Raw storage under the API semantics: objects per resource type keyed by namespace/name,
 * one global resourceVersion counter (etcd's revision), and a bounded history of change
 * events that watches replay from (the watch cache). Nothing here validates.
 */
export type EventType = 'ADDED' | 'MODIFIED' | 'DELETED';

export interface FieldOwner {
  readonly manager: string;
  readonly operation: 'Apply' | 'Update';
  readonly apiVersion: string;
  time: string;
  paths: Set<string>;
}

export interface StoredObject {
  /** The object as the API returns it (metadata complete). Never mutated after commit. */
  readonly object: JsonObject;
  readonly owners: readonly FieldOwner[];
}

export interface StoreEvent {
  readonly type: EventType;
  readonly rt: ResourceType;
  readonly rv: number;
  readonly object: JsonObject;
  /** The previous state, for MODIFIED (selectors need it to turn updates into ADDED/DELETED). */
  readonly oldObject?: JsonObject;
}

export type StoreListener = (event: StoreEvent) => void;

export function objectKey(namespace: string | undefined, name: string): string {
  return `${namespace ?? ''}/${name}`;
}

export function metadataOf(obj: JsonObject): JsonObject {
  return (obj.metadata ?? {}) as JsonObject;
}

export class ObjectStore {
  readonly #data = new Map<ResourceType, Map<string, StoredObject>>();
  readonly #history: StoreEvent[] = [];
  readonly #listeners = new Set<StoreListener>();
  readonly #historyLimit: number;
  #rv: number;
  /** Every event with rv > historyStartRv is still in #history. */
  #historyStartRv: number;

  constructor(historyLimit: number, startRv = 1000) {
    if (!Number.isInteger(historyLimit) || historyLimit < 1)
      throw new TypeError('historyLimit must be a positive integer');
    this.#historyLimit = historyLimit;
    this.#rv = startRv;
    this.#historyStartRv = startRv;
  }

  get currentRv(): number {
    return this.#rv;
  }

  get historyStartRv(): number {
    return this.#historyStartRv;
  }

  read(rt: ResourceType, namespace: string | undefined, name: string): StoredObject | undefined {
    return this.#data.get(rt)?.get(objectKey(namespace, name));
  }

  /** In key order (namespace, then name), as etcd returns a range. */
  list(rt: ResourceType, namespace?: string): StoredObject[] {
    const bucket = this.#data.get(rt);
    if (!bucket) return [];
    const prefix = namespace === undefined ? undefined : `${namespace}/`;
    return [...bucket.entries()]
      .filter(([k]) => prefix === undefined || k.startsWith(prefix))
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([, v]) => v);
  }

  /** Assigns the next resourceVersion to `object` (mutating it), stores or removes it, records and publishes the event. */
  commit(
    rt: ResourceType,
    type: EventType,
    object: JsonObject,
    owners: readonly FieldOwner[],
    oldObject?: JsonObject,
  ): JsonObject {
    this.#rv += 1;
    const meta = metadataOf(object);
    meta.resourceVersion = String(this.#rv);
    object.metadata = meta;
    const key = objectKey(meta.namespace as string | undefined, meta.name as string);
    let bucket = this.#data.get(rt);
    if (!bucket) {
      bucket = new Map();
      this.#data.set(rt, bucket);
    }
    if (type === 'DELETED') bucket.delete(key);
    else bucket.set(key, { object, owners });
    const event: StoreEvent =
      oldObject === undefined
        ? { type, rt, rv: this.#rv, object }
        : { type, rt, rv: this.#rv, object, oldObject };
    this.#history.push(event);
    while (this.#history.length > this.#historyLimit) {
      const evicted = this.#history.shift() as StoreEvent;
      this.#historyStartRv = evicted.rv;
    }
    for (const listener of [...this.#listeners]) listener(event);
    return object;
  }

  /** Events after `rv`, or undefined when some of them are no longer retained (410 Expired). */
  eventsAfter(rv: number): StoreEvent[] | undefined {
    if (rv < this.#historyStartRv) return undefined;
    return this.#history.filter((e) => e.rv > rv);
  }

  /** Forget the history: a watch from any resourceVersion older than now gets 410. */
  expireHistory(): void {
    this.#history.length = 0;
    this.#historyStartRv = this.#rv;
  }

  subscribe(listener: StoreListener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }
}
