/**
 * One cluster's object store: objects by kind, a resourceVersion counter shared by all kinds (as etcd's
 * revision is), and the event history that watches replay from.
 */
import type { ResourceType } from './registry.js';
import type { KubeObject } from './runtime.js';

/** A change to one object. `previous` is the object before a MODIFIED or DELETED event. */
export interface StoreEvent {
  type: 'ADDED' | 'MODIFIED' | 'DELETED';
  typeKey: string;
  object: KubeObject;
  previous?: KubeObject;
  resourceVersion: number;
}

/** `group/plural`: how the store files a kind. */
export function typeKey(type: Pick<ResourceType, 'group' | 'plural'>): string {
  return `${type.group}/${type.plural}`;
}

function objectKey(namespace: string | undefined, name: string): string {
  return `${namespace ?? ''}/${name}`;
}

/** How many events watches can replay; older resourceVersions get 410 Expired. */
export const EVENT_WINDOW = 5000;

/** The objects of one cluster and their change history. */
export class Store {
  private readonly objects = new Map<string, Map<string, KubeObject>>();
  private readonly history: StoreEvent[] = [];
  private readonly listeners = new Set<(event: StoreEvent) => void>();
  /** The last resourceVersion handed out. */
  revision = 1;
  /** The oldest resourceVersion a watch may resume from. */
  compactedRevision = 0;

  get(key: string, namespace: string | undefined, name: string): KubeObject | undefined {
    return this.objects.get(key)?.get(objectKey(namespace, name));
  }

  list(key: string, namespace?: string): KubeObject[] {
    const all = [...(this.objects.get(key)?.values() ?? [])];
    const filtered = namespace === undefined ? all : all.filter((o) => o.metadata.namespace === namespace);
    return filtered.sort((a, b) => objectKey(a.metadata.namespace, a.metadata.name).localeCompare(objectKey(b.metadata.namespace, b.metadata.name)));
  }

  /** Every kind key with stored objects. */
  keys(): string[] {
    return [...this.objects.keys()];
  }

  nextRevision(): number {
    this.revision += 1;
    return this.revision;
  }

  /** Stores an object (its resourceVersion already set) and notifies watchers. */
  put(key: string, obj: KubeObject): void {
    let map = this.objects.get(key);
    if (!map) {
      map = new Map();
      this.objects.set(key, map);
    }
    const k = objectKey(obj.metadata.namespace, obj.metadata.name);
    const previous = map.get(k);
    map.set(k, obj);
    this.emit({ type: previous ? 'MODIFIED' : 'ADDED', typeKey: key, object: obj, ...(previous ? { previous } : {}), resourceVersion: Number(obj.metadata.resourceVersion) });
  }

  /** Removes an object; the DELETED event carries it with a fresh resourceVersion. */
  remove(key: string, namespace: string | undefined, name: string): KubeObject | undefined {
    const map = this.objects.get(key);
    const k = objectKey(namespace, name);
    const previous = map?.get(k);
    if (!map || !previous) return undefined;
    map.delete(k);
    const rv = this.nextRevision();
    const object = { ...previous, metadata: { ...previous.metadata, resourceVersion: String(rv) } };
    this.emit({ type: 'DELETED', typeKey: key, object, previous, resourceVersion: rv });
    return object;
  }

  private emit(event: StoreEvent): void {
    this.history.push(event);
    if (this.history.length > EVENT_WINDOW) {
      const dropped = this.history.splice(0, this.history.length - EVENT_WINDOW);
      this.compactedRevision = dropped[dropped.length - 1]?.resourceVersion ?? this.compactedRevision;
    }
    for (const l of [...this.listeners]) l(event);
  }

  /** Forgets the event history, as etcd compaction does: watches from older resourceVersions get 410. */
  compact(): void {
    this.history.length = 0;
    this.compactedRevision = this.revision;
  }

  /** Events after `resourceVersion`, or undefined when that version was compacted away. */
  eventsSince(resourceVersion: number): StoreEvent[] | undefined {
    if (resourceVersion < this.compactedRevision) return undefined;
    return this.history.filter((e) => e.resourceVersion > resourceVersion);
  }

  subscribe(listener: (event: StoreEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
}
