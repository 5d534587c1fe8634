/**
 * PATCH semantics: JSON merge patch (RFC 7386), JSON patch (RFC 6902), strategic merge patch (the common
 * Kubernetes merge keys; approximate), and server-side apply with field ownership recorded in
 * `metadata.managedFields` (fieldsV1), conflicts and `force`.
 */
import { ApiError, badRequest } from './errors.js';
import type { KubeObject } from './runtime.js';

type Json = unknown;
type JsonMap = Record<string, Json>;

function isMap(v: Json): v is JsonMap {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function clone<T>(v: T): T {
  return v === undefined ? v : structuredClone(v);
}

/* ------------------------------------------------ merge patch ------------------------------------------------ */

/** RFC 7386 JSON merge patch. */
export function mergePatch(target: Json, patch: Json): Json {
  if (!isMap(patch)) return clone(patch);
  const out: JsonMap = isMap(target) ? { ...target } : {};
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k];
    else out[k] = mergePatch(out[k], v);
  }
  return out;
}

/* ------------------------------------------------ JSON patch ------------------------------------------------- */

function pointer(path: string): string[] {
  if (path === '') return [];
  if (!path.startsWith('/')) throw badRequest(`the server rejected our request due to an error in our request: invalid JSON pointer "${path}"`);
  return path.slice(1).split('/').map((p) => p.replace(/~1/g, '/').replace(/~0/g, '~'));
}

function parentOf(doc: Json, parts: string[], path: string): { parent: JsonMap | Json[]; key: string } {
  let cur: Json = doc;
  for (const p of parts.slice(0, -1)) {
    if (Array.isArray(cur)) cur = cur[Number(p)];
    else if (isMap(cur)) cur = cur[p];
    else cur = undefined;
    if (cur === undefined) throw new ApiError(422, 'Invalid', `the server rejected our request due to an error in our request: doc is missing path: "${path}": missing value`);
  }
  if (!isMap(cur) && !Array.isArray(cur)) throw new ApiError(422, 'Invalid', `doc is missing path: "${path}"`);
  return { parent: cur, key: parts[parts.length - 1] as string };
}

function getAt(doc: Json, path: string): Json {
  let cur = doc;
  for (const p of pointer(path)) {
    if (Array.isArray(cur)) cur = cur[Number(p)];
    else if (isMap(cur)) cur = cur[p];
    else return undefined;
  }
  return cur;
}

/** RFC 6902 JSON patch. */
export function jsonPatch(target: Json, ops: Json): Json {
  if (!Array.isArray(ops)) throw badRequest('json: cannot unmarshal object into Go value of type jsonpatch.Patch');
  let doc = clone(target);
  for (const raw of ops) {
    const op = raw as { op: string; path: string; from?: string; value?: Json };
    const parts = pointer(op.path);
    const missing = (): ApiError => new ApiError(422, 'Invalid', `the server rejected our request due to an error in our request: doc is missing path: "${op.path}": missing value`);
    const add = (value: Json): void => {
      if (parts.length === 0) {
        doc = value;
        return;
      }
      const { parent, key } = parentOf(doc, parts, op.path);
      if (Array.isArray(parent)) {
        const i = key === '-' ? parent.length : Number(key);
        if (!(i >= 0 && i <= parent.length)) throw missing();
        parent.splice(i, 0, value);
      } else {
        parent[key] = value;
      }
    };
    const remove = (): Json => {
      const { parent, key } = parentOf(doc, parts, op.path);
      if (Array.isArray(parent)) {
        const i = Number(key);
        if (!(i >= 0 && i < parent.length)) throw missing();
        return parent.splice(i, 1)[0];
      }
      if (!(key in parent)) throw missing();
      const old = parent[key];
      delete parent[key];
      return old;
    };
    switch (op.op) {
      case 'add': add(clone(op.value)); break;
      case 'remove': remove(); break;
      case 'replace': remove(); add(clone(op.value)); break;
      case 'move': {
        const value = getAt(doc, op.from ?? '');
        if (value === undefined) throw missing();
        const fromParts = pointer(op.from ?? '');
        const { parent, key } = parentOf(doc, fromParts, op.from ?? '');
        if (Array.isArray(parent)) parent.splice(Number(key), 1);
        else delete parent[key];
        add(value);
        break;
      }
      case 'copy': {
        const value = getAt(doc, op.from ?? '');
        if (value === undefined) throw missing();
        add(clone(value));
        break;
      }
      case 'test':
        if (JSON.stringify(getAt(doc, op.path)) !== JSON.stringify(op.value)) {
          throw new ApiError(422, 'Invalid', `the server rejected our request due to an error in our request: testing value ${op.path} failed: test failed`);
        }
        break;
      default:
        throw badRequest(`the server rejected our request due to an error in our request: Unexpected kind: ${op.op}`);
    }
  }
  return doc;
}

/* ------------------------------------------ strategic merge patch ------------------------------------------- */

/** The merge key of a built-in list field, or undefined for atomic lists. */
export function mergeKeyOf(field: string, items: Json[]): string[] | undefined {
  switch (field) {
    case 'containers': case 'initContainers': case 'ephemeralContainers': case 'env': case 'volumes': case 'imagePullSecrets':
      return ['name'];
    case 'volumeMounts': return ['mountPath'];
    case 'conditions': return ['type'];
    case 'ownerReferences': return ['uid'];
    case 'hostAliases': return ['ip'];
    case 'ports':
      return items.some((i) => isMap(i) && 'containerPort' in i) ? ['containerPort', 'protocol'] : ['port', 'protocol'];
    default: return undefined;
  }
}

function sameKey(a: Json, b: Json, keys: string[]): boolean {
  if (!isMap(a) || !isMap(b)) return false;
  // protocol defaults to TCP: an item without it matches one that has TCP.
  return keys.every((k) => (a[k] ?? (k === 'protocol' ? 'TCP' : undefined)) === (b[k] ?? (k === 'protocol' ? 'TCP' : undefined)));
}

function stripDirectives(v: Json): Json {
  if (Array.isArray(v)) return v.map(stripDirectives);
  if (!isMap(v)) return v;
  const out: JsonMap = {};
  for (const [k, x] of Object.entries(v)) if (!k.startsWith('$')) out[k] = stripDirectives(x);
  return out;
}

/**
 * Strategic merge patch for built-in kinds: maps merge, the well-known associative lists (containers, env,
 * ports, volumes, conditions…) merge by key with `$patch: delete|replace`, other lists are replaced;
 * `$setElementOrder` and `$retainKeys` are accepted and ignored.
 */
export function strategicMergePatch(target: Json, patch: Json): Json {
  if (!isMap(patch)) return clone(patch);
  if (patch.$patch === 'replace') return stripDirectives(patch);
  const out: JsonMap = isMap(target) ? { ...target } : {};
  for (const [k, v] of Object.entries(patch)) {
    if (k.startsWith('$deleteFromPrimitiveList/')) {
      const field = k.slice('$deleteFromPrimitiveList/'.length);
      const drop = new Set((v as Json[]).map((x) => JSON.stringify(x)));
      if (Array.isArray(out[field])) out[field] = (out[field] as Json[]).filter((x) => !drop.has(JSON.stringify(x)));
      continue;
    }
    if (k.startsWith('$')) continue;
    if (v === null) {
      delete out[k];
    } else if (Array.isArray(v)) {
      const keys = mergeKeyOf(k, [...v, ...(Array.isArray(out[k]) ? (out[k] as Json[]) : [])]);
      if (!keys || !Array.isArray(out[k])) {
        out[k] = stripDirectives(v.filter((i) => !(isMap(i) && i.$patch === 'delete')));
        continue;
      }
      const list = [...(out[k] as Json[])];
      for (const item of v) {
        const at = list.findIndex((x) => sameKey(x, item, keys));
        if (isMap(item) && item.$patch === 'delete') {
          if (at >= 0) list.splice(at, 1);
        } else if (at >= 0) {
          list[at] = strategicMergePatch(list[at], item);
        } else {
          list.push(stripDirectives(item));
        }
      }
      out[k] = list;
    } else if (isMap(v)) {
      if (v.$patch === 'delete') delete out[k];
      else out[k] = strategicMergePatch(out[k], v);
    } else {
      out[k] = v;
    }
  }
  return out;
}

/* ------------------------------------------- server-side apply --------------------------------------------- */

/** One `metadata.managedFields` entry. */
export interface ManagedFieldsEntry {
  manager: string;
  operation: 'Apply' | 'Update';
  apiVersion: string;
  time: string;
  fieldsType: 'FieldsV1';
  fieldsV1: JsonMap;
  subresource?: string;
}

const LAST_APPLIED = 'kubectl.kubernetes.io/last-applied-configuration';

/** Fields the server owns: never tracked, never conflicting. */
const IGNORED_METADATA = new Set(['name', 'namespace', 'uid', 'resourceVersion', 'generation', 'creationTimestamp', 'managedFields', 'selfLink', 'deletionTimestamp', 'deletionGracePeriodSeconds']);

/**
 * Field paths in fieldsV1 segments (`f:spec`, `k:{"name":"app"}`, `.`), each path joined by `\u0001`. Leaves are
 * scalars, atomic lists and empty maps; an associative-list item also contributes its `.` marker and key fields.
 */
function collectFields(value: Json, path: string[], out: Set<string>, keyed: boolean, field = ''): void {
  if (isMap(value)) {
    const entries = Object.entries(value).filter(([k]) => {
      if (path.length === 0 && (k === 'apiVersion' || k === 'kind' || k === 'status')) return false;
      if (path.length === 1 && path[0] === 'f:metadata' && IGNORED_METADATA.has(k)) return false;
      return true;
    });
    // An empty map is a field of its own, except metadata left empty by the fields the server owns.
    if (entries.length === 0 && path.length > 0) {
      if (!(path.length === 1 && path[0] === 'f:metadata')) out.add(path.join('\u0001'));
      return;
    }
    for (const [k, v] of entries) collectFields(v, [...path, `f:${k}`], out, keyed, k);
    return;
  }
  if (Array.isArray(value) && keyed) {
    const keys = mergeKeyOf(field, value);
    if (keys && value.every(isMap)) {
      for (const item of value as JsonMap[]) {
        const seg = `k:${JSON.stringify(Object.fromEntries(keys.filter((k) => k in item || k === 'protocol').map((k) => [k, item[k] ?? 'TCP'])))}`;
        out.add([...path, seg, '.'].join('\u0001'));
        collectFields(item, [...path, seg], out, keyed);
      }
      return;
    }
  }
  out.add(path.join('\u0001'));
}

/** The set of fields an object sets. `keyed` is false for custom resources, whose lists are atomic. */
export function fieldSet(obj: Json, keyed: boolean): Set<string> {
  const out = new Set<string>();
  collectFields(obj, [], out, keyed);
  return out;
}

/** A set of field paths as a `fieldsV1` object (`{"f:spec": {"f:replicas": {}}}`). */
export function encodeFieldsV1(set: Set<string>): JsonMap {
  const root: JsonMap = {};
  for (const p of set) {
    let cur = root;
    for (const seg of p.split('\u0001')) {
      cur[seg] ??= {};
      cur = cur[seg] as JsonMap;
    }
  }
  return root;
}

/** The field paths (leaves and `.` markers) of a `fieldsV1` object. */
export function decodeFieldsV1(fields: JsonMap | undefined): Set<string> {
  const out = new Set<string>();
  const walk = (node: JsonMap, path: string[]): void => {
    for (const [k, v] of Object.entries(node)) {
      const next = [...path, k];
      if (isMap(v) && Object.keys(v).length > 0) walk(v, next);
      else out.add(next.join('\u0001'));
    }
  };
  if (fields) walk(fields, []);
  return out;
}

function segmentMatches(item: Json, seg: string): boolean {
  if (!isMap(item)) return false;
  const want = JSON.parse(seg.slice(2)) as JsonMap;
  return Object.entries(want).every(([k, v]) => (item[k] ?? (k === 'protocol' ? 'TCP' : undefined)) === v);
}

/** The value at a field path, or undefined. */
function valueAt(obj: Json, path: string): Json {
  let cur = obj;
  for (const seg of path.split('\u0001')) {
    if (seg === '.') return cur;
    if (seg.startsWith('f:')) cur = isMap(cur) ? cur[seg.slice(2)] : undefined;
    else if (seg.startsWith('k:')) cur = Array.isArray(cur) ? cur.find((i) => segmentMatches(i, seg)) : undefined;
    if (cur === undefined) return undefined;
  }
  return cur;
}

function removeAt(obj: Json, path: string): void {
  const segs = path.split('\u0001');
  if (segs[segs.length - 1] === '.') segs.pop();
  const chain: Json[] = [obj];
  let cur = obj;
  for (let i = 0; i < segs.length - 1; i++) {
    const seg = segs[i] as string;
    if (seg.startsWith('f:')) cur = isMap(cur) ? cur[seg.slice(2)] : undefined;
    else cur = Array.isArray(cur) ? cur.find((x) => segmentMatches(x, seg)) : undefined;
    if (cur === undefined) return;
    chain.push(cur);
  }
  const last = segs[segs.length - 1] as string;
  if (last.startsWith('f:') && isMap(cur)) delete cur[last.slice(2)];
  else if (last.startsWith('k:') && Array.isArray(cur)) {
    const at = cur.findIndex((x) => segmentMatches(x, last));
    if (at >= 0) cur.splice(at, 1);
  }
  // Maps emptied by the removal go too (labels: {} is not left behind), up to metadata and spec.
  for (let i = chain.length - 1; i >= 2; i--) {
    const node = chain[i];
    const seg = segs[i - 1] as string;
    const parent = chain[i - 1];
    if (isMap(node) && Object.keys(node).length === 0 && seg.startsWith('f:') && isMap(parent)) delete parent[seg.slice(2)];
    else break;
  }
}

/** Prints a field path as the apiserver does in conflicts: `.spec.containers[name="app"].image`. */
export function printPath(path: string): string {
  let out = '';
  for (const seg of path.split('\u0001')) {
    if (seg === '.') continue;
    if (seg.startsWith('f:')) out += `.${seg.slice(2)}`;
    else if (seg.startsWith('k:')) {
      const keys = JSON.parse(seg.slice(2)) as JsonMap;
      out += `[${Object.entries(keys).map(([k, v]) => `${k}=${JSON.stringify(v)}`).join(',')}]`;
    }
  }
  return out;
}

/** Merges an applied configuration into an object: maps merge, keyed lists merge by key, the rest is replaced. */
function mergeApplied(live: Json, applied: Json, keyed: boolean, field = ''): Json {
  if (isMap(applied)) {
    const out: JsonMap = isMap(live) ? { ...live } : {};
    for (const [k, v] of Object.entries(applied)) out[k] = mergeApplied(out[k], v, keyed, k);
    return out;
  }
  if (Array.isArray(applied) && keyed && Array.isArray(live)) {
    const keys = mergeKeyOf(field, applied);
    if (keys && applied.every(isMap)) {
      const out = [...live];
      for (const item of applied) {
        const at = out.findIndex((x) => sameKey(x, item, keys));
        if (at >= 0) out[at] = mergeApplied(out[at], item, keyed);
        else out.push(clone(item));
      }
      return out;
    }
  }
  return clone(applied);
}

function now(): string {
  return new Date().toISOString().replace(/\.\d{3}Z$/, 'Z');
}

function managersOf(obj: KubeObject | undefined): ManagedFieldsEntry[] {
  return clone((obj?.metadata.managedFields as ManagedFieldsEntry[] | undefined) ?? []);
}

function setEntry(entries: ManagedFieldsEntry[], entry: Omit<ManagedFieldsEntry, 'time' | 'fieldsType' | 'fieldsV1'>, set: Set<string>): ManagedFieldsEntry[] {
  const same = (e: ManagedFieldsEntry): boolean => e.manager === entry.manager && e.operation === entry.operation && (e.subresource ?? '') === (entry.subresource ?? '');
  const existing = entries.find(same);
  const fieldsV1 = encodeFieldsV1(set);
  // Unchanged ownership keeps its timestamp, so a repeated identical write stays a no-op.
  const sorted = (f: JsonMap): string => JSON.stringify([...decodeFieldsV1(f)].sort());
  if (existing && sorted(existing.fieldsV1) === sorted(fieldsV1) && existing.apiVersion === entry.apiVersion) return entries;
  const rest = entries.filter((e) => !same(e));
  if (set.size === 0) return rest;
  return [...rest, { ...entry, time: now(), fieldsType: 'FieldsV1', fieldsV1 }];
}

function dropFields(entries: ManagedFieldsEntry[], paths: Set<string>, except: (e: ManagedFieldsEntry) => boolean): ManagedFieldsEntry[] {
  return entries
    .map((e) => {
      if (except(e)) return e;
      const set = decodeFieldsV1(e.fieldsV1);
      let changed = false;
      for (const p of paths) if (set.delete(p)) changed = true;
      return changed ? { ...e, fieldsV1: encodeFieldsV1(set) } : e;
    })
    .filter((e) => except(e) || decodeFieldsV1(e.fieldsV1).size > 0);
}

/**
 * Server-side apply of `applied` (the parsed apply configuration) by `manager` onto `live` (undefined when the
 * object does not exist yet). Throws 409 Conflict naming the other managers' fields unless `force`.
 */
export function serverSideApply(live: KubeObject | undefined, applied: KubeObject, manager: string, force: boolean, keyed: boolean): KubeObject {
  const entries = managersOf(live);
  const mine = (e: ManagedFieldsEntry): boolean => e.manager === manager && e.operation === 'Apply';
  const newSet = fieldSet(applied, keyed);
  const oldSet = decodeFieldsV1(entries.find(mine)?.fieldsV1);
  const conflicts: Array<{ manager: ManagedFieldsEntry; path: string }> = [];
  if (live) {
    for (const e of entries) {
      if (mine(e)) continue;
      const theirs = decodeFieldsV1(e.fieldsV1);
      for (const p of newSet) {
        if (!theirs.has(p) || p.endsWith('.')) continue;
        if (JSON.stringify(valueAt(live, p)) !== JSON.stringify(valueAt(applied, p))) conflicts.push({ manager: e, path: p });
      }
    }
  }
  // Upgrading from client-side apply: conflicts only over fields the last client-side apply set (its
  // last-applied-configuration annotation) are resolved in favour of the applier, as the apiserver's
  // last-applied manager does, so a first `kubectl apply --server-side` after `kubectl apply` just works.
  const lastApplied = live?.metadata.annotations?.[LAST_APPLIED];
  if (conflicts.length > 0 && !force && lastApplied) {
    let previous: Set<string> | undefined;
    try {
      previous = fieldSet(JSON.parse(lastApplied) as Json, keyed);
    } catch {
      previous = undefined;
    }
    if (previous && conflicts.every((c) => previous.has(c.path))) force = true;
  }
  if (conflicts.length > 0 && !force) throw applyConflict(conflicts);
  let result = clone(live ?? ({ apiVersion: applied.apiVersion, kind: applied.kind, metadata: { name: applied.metadata.name } } as KubeObject));
  const othersOwn = new Set<string>();
  for (const e of entries) if (!mine(e)) for (const p of decodeFieldsV1(e.fieldsV1)) othersOwn.add(p);
  for (const p of oldSet) if (!newSet.has(p) && !othersOwn.has(p)) removeAt(result, p);
  result = mergeApplied(result, applied, keyed) as KubeObject;
  // The apiserver keeps an existing last-applied annotation in step with server-side applies, so that a later
  // client-side apply computes its patch from what was really applied last.
  if (lastApplied && !applied.metadata.annotations?.[LAST_APPLIED]) {
    const { managedFields: _m, ...metadata } = applied.metadata;
    result.metadata.annotations = { ...result.metadata.annotations, [LAST_APPLIED]: `${JSON.stringify({ ...applied, metadata })}\n` };
  }
  let next = entries;
  if (force) next = dropFields(next, new Set(conflicts.map((c) => c.path)), mine);
  next = setEntry(next, { manager, operation: 'Apply', apiVersion: applied.apiVersion }, newSet);
  result.metadata.managedFields = next;
  return result;
}

function applyConflict(conflicts: Array<{ manager: ManagedFieldsEntry; path: string }>): ApiError {
  const who = (e: ManagedFieldsEntry): string => (e.operation === 'Update' ? `"${e.manager}" using ${e.apiVersion}` : `"${e.manager}"`);
  const groups = new Map<string, string[]>();
  for (const c of conflicts) groups.set(who(c.manager), [...(groups.get(who(c.manager)) ?? []), printPath(c.path)]);
  const parts = [...groups].map(([w, paths]) => (paths.length === 1 ? `conflict with ${w}: ${paths[0]}` : `conflicts with ${w}:\n${paths.map((p) => `- ${p}`).join('\n')}`));
  const n = conflicts.length;
  return new ApiError(409, 'Conflict', `Apply failed with ${n} conflict${n === 1 ? '' : 's'}: ${parts.join('\n')}`, {
    causes: conflicts.map((c) => ({ reason: 'FieldManagerConflict', message: `conflict with ${who(c.manager)}`, field: printPath(c.path) })),
  });
}

/**
 * Records a non-apply write (create, update, patch) by `manager`: the fields whose values changed become its
 * own (operation Update) and are taken from other managers, as the apiserver's field manager does.
 */
export function recordUpdate(before: KubeObject | undefined, after: KubeObject, manager: string, keyed: boolean, subresource?: string): void {
  let entries = managersOf(before);
  const afterSet = fieldSet(after, keyed);
  const changed = new Set<string>();
  for (const p of afterSet) if (!before || JSON.stringify(valueAt(before, p)) !== JSON.stringify(valueAt(after, p))) changed.add(p);
  const mine = (e: ManagedFieldsEntry): boolean => e.manager === manager && e.operation === 'Update' && (e.subresource ?? '') === (subresource ?? '');
  // Fields that disappeared are owned by nobody any more.
  const gone = new Set<string>();
  for (const e of entries) for (const p of decodeFieldsV1(e.fieldsV1)) if (!afterSet.has(p) && !subresource) gone.add(p);
  entries = dropFields(entries, new Set([...changed, ...gone]), () => false);
  const own = decodeFieldsV1(managersOf(before).find(mine)?.fieldsV1);
  for (const p of changed) own.add(p);
  for (const p of gone) own.delete(p);
  if (own.size > 0 || changed.size > 0) {
    entries = setEntry(entries, { manager, operation: 'Update', apiVersion: after.apiVersion, ...(subresource ? { subresource } : {}) }, own);
  }
  after.metadata.managedFields = entries;
}
