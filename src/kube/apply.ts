import { ClusterError, InputError } from '../errors.js';
import { FIELD_MANAGER, LABELS, MANAGED_BY as MANAGED_BY_VALUE, MANAGED_BY_LABEL, type Role } from '../federation/naming.js';
import type { KubeClient } from './client.js';
import { describeObject, groupOf, objectKey, ResourceMapper, type KubeObject } from './resources.js';

// The field manager and the label that marks an object as meshfed's (only such objects are ever changed or
// deleted) are domain names, defined once in the core.
export { FIELD_MANAGER, MANAGED_BY_LABEL, MANAGED_BY as MANAGED_BY_VALUE } from '../federation/naming.js';

/** What applying one desired object does to the cluster. */
export type ChangeAction = 'create' | 'update' | 'unchanged';

export interface Change {
  action: ChangeAction;
  /** The desired object (Secrets normalised to base64 `data`). */
  object: KubeObject;
  /** The live object, when it exists. */
  live?: KubeObject;
}

/**
 * The `Accept` header of a metadata-only list, as client-go's metadata client sends it (JSON only): kube-apiserver
 * answers a `meta.k8s.io/v1` PartialObjectMetadataList (`asPartialObjectMetadataList` in
 * `staging/src/k8s.io/apiserver/pkg/endpoints/handlers/response.go`); the plain `application/json` fallback lets a
 * server that cannot convert answer the full list (then each item is cut to its metadata here).
 */
const METADATA_LIST_ACCEPT = 'application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json';

/**
 * Kinds written without a resourceVersion precondition: their content does not depend on which exports or imports
 * exist (a gateway's Deployment, Service and ServiceAccount, a Namespace), and controllers keep changing them (a
 * Deployment's or a LoadBalancer Service's status bumps the resourceVersion), so a precondition would only make
 * them conflict with the cluster itself. Every other meshfed object is guarded (see {@link ClusterWriter.apply}).
 */
const UNGUARDED_KINDS = new Set(['Namespace', 'Deployment', 'Service', 'ServiceAccount']);

/** Roles of the records of exports and imports (deleted after everything else, see {@link ClusterWriter.delete}). */
const RECORD_ROLES = new Set<Role>(['export-record', 'import-record']);

/** Is `object` written with optimistic concurrency (create-if-absent, or an apply that fails on a stale read)? */
export function isGuarded(object: { kind: string }): boolean {
  return !UNGUARDED_KINDS.has(object.kind);
}

/**
 * A guarded write lost a race: the object changed (or appeared, or went away) after meshfed read it. The command
 * re-reads, plans again and re-applies (see `applyWithReplan`); when that keeps happening the error is reported.
 */
export class WriteConflictError extends ClusterError {
  /** `Kind namespace/name` of each object that changed under meshfed. */
  readonly objects: string[];

  constructor(readonly context: string, objects: string[], detail: string) {
    super(`${objects.join(', ')} changed in context "${context}" while meshfed was applying (${detail})`, {
      status: 409, reason: 'Conflict',
      hint: 'another meshfed command (or someone else) is changing the same objects: run the command again once it has finished',
    });
    this.objects = objects;
  }
}

export function isManagedByMeshfed(object: { metadata: { labels?: Record<string, string> } }): boolean {
  return object.metadata.labels?.[MANAGED_BY_LABEL] === MANAGED_BY_VALUE;
}

/** Secrets may be written with `stringData`; the server stores `data` (base64). Compare and apply in that form. */
export function normaliseObject(object: KubeObject): KubeObject {
  if (object.kind !== 'Secret' || !object.stringData) return object;
  const { stringData, ...rest } = object as KubeObject & { stringData: Record<string, string>; data?: Record<string, string> };
  const data = { ...(rest.data ?? {}) };
  for (const [key, value] of Object.entries(stringData)) data[key] = Buffer.from(value, 'utf8').toString('base64');
  return { ...rest, data } as KubeObject;
}

/**
 * Is every field given in `desired` equal in `live`? Fields the server adds (defaults, status, metadata) do not
 * count; lists must have the same length and match element by element. This is how a re-run with the same inputs
 * knows that it has nothing to write.
 */
export function isSubset(desired: unknown, live: unknown): boolean {
  if (desired === null || typeof desired !== 'object') return desired === live || (desired === undefined && live === undefined);
  if (Array.isArray(desired)) {
    return Array.isArray(live) && live.length === desired.length && desired.every((item, index) => isSubset(item, live[index]));
  }
  if (live === null || typeof live !== 'object' || Array.isArray(live)) return false;
  return Object.entries(desired as Record<string, unknown>).every(([key, value]) => isSubset(value, (live as Record<string, unknown>)[key]));
}

/**
 * Would server-side applying `desired` remove a field that meshfed applied before? Server-side apply removes the
 * fields a manager owned and no longer applies (e.g. the rules of an AuthorizationPolicy whose last consumer was
 * revoked); {@link isSubset} alone cannot see that, so the owned field set (`managedFields` of meshfed's Apply
 * entry) is walked and every owned field must still be in `desired`. List items (`k:`, `v:`, `i:` keys) are left to
 * isSubset, which compares lists element by element.
 */
export function dropsOwnedFields(desired: KubeObject, live: KubeObject): boolean {
  return ownedFieldSets(live).some((owned) => missingOwned(owned, desired, live));
}

/**
 * The field sets meshfed owns in `live`: its `Apply` entry (server-side apply, or a create handed over) and its
 * `Update` entry (the conditional patches that update guarded objects, see {@link ClusterWriter.apply}).
 */
function ownedFieldSets(live: KubeObject): Array<Record<string, unknown>> {
  const entries = (live.metadata.managedFields ?? []) as Array<{ manager?: string; operation?: string; subresource?: string; fieldsV1?: Record<string, unknown> }>;
  return entries.filter((entry) => entry.manager === FIELD_MANAGER && (entry.operation === 'Apply' || entry.operation === 'Update') && !entry.subresource && entry.fieldsV1)
    .map((entry) => entry.fieldsV1!);
}

/** Does meshfed own the field at `path` (e.g. `['metadata', 'labels', 'app']`) of `live`? */
function ownsField(live: KubeObject, path: readonly string[]): boolean {
  return ownedFieldSets(live).some((owned) => {
    let node: unknown = owned;
    for (const key of path) {
      node = node && typeof node === 'object' ? (node as Record<string, unknown>)[`f:${key}`] : undefined;
      if (node === undefined) return false;
    }
    return true;
  });
}

/** The union of two `FieldsV1` sets (trees of `f:`, `k:`, `v:`, `i:` and `.` keys). */
function unionFields(a: Record<string, unknown>, b: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...a };
  for (const [key, value] of Object.entries(b)) {
    const mineValue = out[key];
    out[key] = mineValue && typeof mineValue === 'object' && value && typeof value === 'object'
      ? unionFields(mineValue as Record<string, unknown>, value as Record<string, unknown>)
      : value;
  }
  return out;
}

/** Top-level fields that are not content: identity, server-set metadata, and the status subresource. */
const NOT_CONTENT = new Set(['apiVersion', 'kind', 'metadata', 'status']);

/** A JSON pointer segment (RFC 6901: `~` and `/` escaped). */
function pointerSegment(key: string): string {
  return key.replace(/~/g, '~0').replace(/\//g, '~1');
}

/**
 * The JSON patch (RFC 6902) that turns guarded object `live` into `desired`, carrying `live`'s resourceVersion as a
 * precondition. Content fields are replaced whole (meshfed computes the complete value of each), content fields
 * meshfed wrote before and no longer wants are removed, and of labels and annotations only meshfed's own change:
 * the same result as a server-side apply, but a patch that is not an apply never creates the object, so the
 * server answers 404 NotFound when the object was deleted after meshfed read it and 409 Conflict when it was changed
 * or replaced (a resourceVersion is the revision of the object's last write in the cluster's storage: a new object
 * of the same name never has the old one's).
 */
export function conditionalPatch(desired: KubeObject, live: KubeObject): Array<{ op: string; path: string; value?: unknown }> {
  const ops: Array<{ op: string; path: string; value?: unknown }> = [
    { op: 'replace', path: '/metadata/resourceVersion', value: live.metadata.resourceVersion },
  ];
  for (const field of ['labels', 'annotations'] as const) {
    const wanted = (desired.metadata[field] ?? {}) as Record<string, string>;
    const current = (live.metadata[field] ?? {}) as Record<string, string>;
    // Keys someone else added stay; keys meshfed set and no longer wants go.
    const kept = Object.fromEntries(Object.entries(current).filter(([key]) => !(key in wanted) && !ownsField(live, ['metadata', field, key])));
    const next = { ...kept, ...wanted };
    if (sameValue(next, current) && sameValue(current, next)) continue;
    // None left: the field goes, as an apply that no longer sets it leaves none (an empty map would stay meshfed's
    // field and count as a change on every later run).
    if (Object.keys(next).length === 0) ops.push({ op: 'remove', path: `/metadata/${field}` });
    else ops.push({ op: 'add', path: `/metadata/${field}`, value: next });
  }
  for (const [key, value] of Object.entries(desired)) {
    if (NOT_CONTENT.has(key)) continue;
    // `add` replaces a member that exists (RFC 6902 section 4.1).
    ops.push({ op: 'add', path: `/${pointerSegment(key)}`, value });
  }
  for (const key of Object.keys(live)) {
    if (NOT_CONTENT.has(key) || key in desired || !ownsField(live, [key])) continue;
    ops.push({ op: 'remove', path: `/${pointerSegment(key)}` });
  }
  return ops;
}

function missingOwned(fields: Record<string, unknown>, desired: unknown, live: unknown): boolean {
  for (const [key, sub] of Object.entries(fields)) {
    if (!key.startsWith('f:')) continue;
    if (desired === null || typeof desired !== 'object' || Array.isArray(desired)) return true;
    const value = (desired as Record<string, unknown>)[key.slice(2)];
    if (value === undefined) return true;
    const liveValue = live !== null && typeof live === 'object' && !Array.isArray(live) ? (live as Record<string, unknown>)[key.slice(2)] : undefined;
    if (Array.isArray(value)) {
      // An atomic list (no `k:`/`v:`/`i:` item keys: Istio's lists) is owned whole: applying it replaces it, so a
      // field dropped inside an item (a Gateway server's subjectAltNames, a rule's `from`) is a change too.
      const atomic = !sub || typeof sub !== 'object' || Object.keys(sub).every((k) => !/^[kvi]:/.test(k));
      if (atomic && !sameValue(value, liveValue)) return true;
      continue;
    }
    if (sub && typeof sub === 'object' && missingOwned(sub as Record<string, unknown>, value, liveValue)) return true;
  }
  return false;
}

function sameValue(a: unknown, b: unknown): boolean {
  return isSubset(a, b) && isSubset(b, a);
}

/** Dependency tiers: a tier is applied after the one before it; objects of one tier go in parallel. */
function tierOf(object: KubeObject): number {
  switch (object.kind) {
    case 'Namespace': return 0;
    case 'ServiceAccount': case 'Secret': case 'ConfigMap': case 'Role': return 1;
    case 'RoleBinding': case 'Deployment': case 'Service': return 2;
    default: return groupOf(object.apiVersion).endsWith('istio.io') ? 3 : 2;
  }
}

/** Groups objects into dependency tiers, keeping the given order inside a tier. */
export function inDependencyOrder<T extends KubeObject>(objects: readonly T[]): T[][] {
  const tiers: T[][] = [];
  for (const object of objects) (tiers[tierOf(object)] ??= []).push(object);
  return tiers.filter(Boolean);
}

export interface ApplyOutcome {
  object: KubeObject;
  action: ChangeAction;
  /** Server warnings (e.g. deprecations). */
  warnings: string[];
}

/**
 * Reads and writes one cluster's objects on behalf of a command: diffs desired objects against live ones, applies
 * them with server-side apply (field manager `kubectl-meshfed`, `fieldValidation=Strict`) in dependency order,
 * prunes meshfed objects that are no longer wanted, and deletes by label. It never changes an object that meshfed
 * does not manage.
 */
export class ClusterWriter {
  readonly mapper: ResourceMapper;

  constructor(readonly client: KubeClient) {
    this.mapper = new ResourceMapper(client);
  }

  get contextName(): string {
    return this.client.context.name;
  }

  /** One object, or undefined when it does not exist. */
  async get(apiVersion: string, kind: string, namespace: string | undefined, name: string): Promise<KubeObject | undefined> {
    const path = await this.mapper.objectPath(apiVersion, kind, namespace, name);
    try {
      return (await this.client.request<KubeObject>({ method: 'GET', path })).body;
    } catch (error) {
      if (error instanceof ClusterError && error.status === 404) return undefined;
      throw error;
    }
  }

  /** Objects of a kind in a namespace (or all namespaces), optionally filtered by a label selector. */
  async list(
    apiVersion: string, kind: string, namespace: string | undefined, labelSelector?: string, more: { fieldSelector?: string; limit?: number } = {},
  ): Promise<KubeObject[]> {
    const path = await this.mapper.collectionPath(apiVersion, kind, namespace);
    const query = { labelSelector, fieldSelector: more.fieldSelector, limit: more.limit !== undefined ? String(more.limit) : undefined };
    const { body } = await this.client.request<{ items?: KubeObject[] }>({ method: 'GET', path, query });
    return (body.items ?? []).map((item) => ({ ...item, apiVersion, kind }));
  }

  /**
   * Objects of a kind as metadata only (`PartialObjectMetadataList`, as kubectl and client-go's metadata client ask
   * for it): names, labels and annotations without the rest, so that listing Secrets returns no data. Each item has
   * `apiVersion` and `kind` of the listed kind and carries no `data` or `spec`.
   */
  async listMetadata(apiVersion: string, kind: string, namespace: string | undefined, labelSelector?: string): Promise<KubeObject[]> {
    const path = await this.mapper.collectionPath(apiVersion, kind, namespace);
    const { body } = await this.client.request<{ items?: Array<{ metadata: KubeObject['metadata'] }> }>({ method: 'GET', path, query: { labelSelector }, accept: METADATA_LIST_ACCEPT });
    return (body.items ?? []).map((item) => ({ apiVersion, kind, metadata: item.metadata }));
  }

  /**
   * What applying `desired` would do. Refuses — before anything is written — when an object of the same name exists
   * and meshfed does not manage it (except namespaces, which are used as they are). `known`: meshfed objects the
   * caller has just read (only those labelled as meshfed's are used), so that they are not read again. `consented`:
   * objects (`Kind/namespace/name`) the user explicitly allowed meshfed to change although it does not manage them.
   */
  async diff(desired: readonly KubeObject[], options: { known?: readonly KubeObject[]; consented?: readonly string[] } = {}): Promise<Change[]> {
    // Objects just read (e.g. listed by label) need not be read again; anything else, foreign ones included, is.
    const known = new Map((options.known ?? []).filter(isManagedByMeshfed).map((object) => [objectKey(object), object]));
    const changes = await Promise.all(desired.map(async (raw): Promise<Change> => {
      const object = normaliseObject(raw);
      const live = known.get(objectKey(object)) ?? await this.get(object.apiVersion, object.kind, object.metadata.namespace, object.metadata.name);
      if (!live) return { action: 'create', object };
      // The snapshot holds every meshfed object: one that is not in it but exists now was written by someone else
      // after the plan was computed, so the plan does not account for it.
      if (options.known && !known.has(objectKey(object)) && isManagedByMeshfed(live) && isGuarded(object)) {
        throw new WriteConflictError(this.contextName, [describeObject(object)], 'it was created after meshfed read the cluster');
      }
      if (object.kind === 'Namespace' && !isManagedByMeshfed(live)) return { action: 'unchanged', object, live };
      return { action: isSubset(object, live) && !dropsOwnedFields(object, live) ? 'unchanged' : 'update', object, live };
    }));
    const consented = new Set(options.consented ?? []);
    const foreign = changes.filter((change) => change.live && change.object.kind !== 'Namespace' && !isManagedByMeshfed(change.live)
      && !consented.has(`${change.object.kind}/${change.object.metadata.namespace ?? ''}/${change.object.metadata.name}`));
    if (foreign.length) {
      const names = foreign.map((change) => describeObject(change.object)).join(', ');
      throw new InputError(`${names} already exist${foreign.length === 1 ? 's' : ''} in context "${this.contextName}" and ${foreign.length === 1 ? 'is' : 'are'} not managed by kubectl-meshfed; nothing was changed`, {
        hint: `meshfed never overwrites objects it did not create: rename or delete ${foreign.length === 1 ? 'it' : 'them'}, or choose another export/local name`,
      });
    }
    return changes;
  }

  /**
   * Applies the changes that are not `unchanged`, tier by tier. With `dryRun` the server validates and defaults
   * everything (dryRun=All) and stores nothing.
   */
  async apply(changes: readonly Change[], options: { dryRun?: boolean } = {}): Promise<ApplyOutcome[]> {
    const outcomes: ApplyOutcome[] = [];
    const dryRun = options.dryRun ?? false;
    for (const tier of inDependencyOrder(changes.map((change) => change.object))) {
      const created: KubeObject[] = [];
      const results = await Promise.allSettled(tier.map(async (object): Promise<ApplyOutcome> => {
        const change = changes.find((c) => c.object === object)!;
        if (change.action === 'unchanged') return { object: change.live ?? object, action: 'unchanged', warnings: [] };
        if (isGuarded(object) && change.action === 'create') {
          const applied = await this.createIfAbsent(object, dryRun);
          if (!dryRun) created.push(applied.object);
          return { object: applied.object, action: change.action, warnings: applied.warnings };
        }
        // A guarded object read from the cluster is updated only if it is still the version the plan was computed
        // from: a server-side apply would re-create it if someone deleted it meanwhile (an apply is an upsert;
        // kubernetes/kubernetes#106745), undoing a removal that raced this command.
        if (isGuarded(object) && change.live) {
          const applied = await this.patchIfUnchanged(object, change.live, dryRun);
          if (!dryRun) created.push(applied.object);
          return { object: applied.object, action: change.action, warnings: applied.warnings };
        }
        const applied = await this.serverSideApply(object, dryRun);
        return { object: applied.object, action: change.action, warnings: applied.warnings };
      }));
      // The guarded objects this tier created or updated get their field ownership handed over together (also when
      // another write of the tier conflicted: they are written now, and a re-plan leaves them unchanged).
      const handOvers = await Promise.allSettled(created.map((object) => this.handOver(object)));
      const failed = [...results, ...handOvers].filter((r): r is PromiseRejectedResult => r.status === 'rejected');
      if (failed.length) {
        // Every write of the tier has finished (none is left in flight while the command re-plans); a conflict is
        // reported with all the objects that conflicted, any other error as it is.
        const other = failed.find((r) => !(r.reason instanceof WriteConflictError));
        if (other) throw other.reason;
        const lost = failed.map((r) => r.reason as WriteConflictError);
        throw new WriteConflictError(this.contextName, lost.flatMap((e) => e.objects), 'it was changed after meshfed read it');
      }
      const handedOver = new Map(handOvers.map((r, i) => [created[i]!, (r as PromiseFulfilledResult<KubeObject>).value]));
      outcomes.push(...results.map((r) => {
        const outcome = (r as PromiseFulfilledResult<ApplyOutcome>).value;
        return { ...outcome, object: handedOver.get(outcome.object) ?? outcome.object };
      }));
    }
    return outcomes;
  }

  /**
   * Creates a guarded object that did not exist when the plan was computed: POST, which fails with 409
   * AlreadyExists when someone else created it meanwhile (server-side apply would merge into theirs).
   */
  private async createIfAbsent(object: KubeObject, dryRun: boolean): Promise<{ object: KubeObject; warnings: string[] }> {
    const collection = await this.mapper.collectionPath(object.apiVersion, object.kind, object.metadata.namespace);
    try {
      const response = await this.client.request<KubeObject>({
        method: 'POST', path: collection,
        query: { fieldManager: FIELD_MANAGER, fieldValidation: 'Strict', dryRun: dryRun ? 'All' : undefined },
        body: object,
        objectName: object.metadata.name,
        // Safe to send again after a 5xx or a timeout: a create of a named object cannot happen twice; a repeat
        // whose first copy did land meets 409 AlreadyExists, and the conflict re-plans from a fresh read.
        idempotent: true,
      });
      return { object: response.body, warnings: response.warnings };
    } catch (error) {
      if (error instanceof ClusterError && error.status === 409) {
        throw new WriteConflictError(this.contextName, [describeObject(object)], 'it was created by someone else after meshfed read the cluster');
      }
      throw this.rejected(object, error);
    }
  }

  /**
   * A POST or a JSON patch records the field manager's fields as an `Update` operation; they are handed to meshfed's
   * `Apply` entry (merged into it; managedFields set explicitly, with the written resourceVersion as precondition),
   * so that meshfed owns its fields as one applier, exactly as for objects written by server-side apply: an apply
   * of meshfed's field manager (an earlier version of meshfed, or `kubectl apply --server-side
   * --field-manager=kubectl-meshfed`) then removes the fields it no longer applies, whichever way they were written.
   */
  private async handOver(created: KubeObject): Promise<KubeObject> {
    const managed = (created.metadata.managedFields ?? []) as Array<{ manager?: string; operation?: string; subresource?: string; fieldsV1?: Record<string, unknown> }>;
    const mine = (entry: (typeof managed)[number]) => entry.manager === FIELD_MANAGER && !entry.subresource;
    const updates = managed.filter((entry) => mine(entry) && entry.operation === 'Update');
    if (updates.length === 0) return created;
    const applier = managed.find((entry) => mine(entry) && entry.operation === 'Apply');
    const merged = { ...(applier ?? updates[0]!), operation: 'Apply', fieldsV1: [applier, ...updates].reduce<Record<string, unknown>>((all, entry) => unionFields(all, entry?.fieldsV1 ?? {}), {}) };
    const first = managed.findIndex((entry) => entry === applier || updates.includes(entry));
    const handedOver = managed.flatMap((entry, index) => (index === first ? [merged] : entry === applier || updates.includes(entry) ? [] : [entry]));
    const path = await this.mapper.objectPath(created.apiVersion, created.kind, created.metadata.namespace, created.metadata.name);
    try {
      const response = await this.client.request<KubeObject>({
        method: 'PATCH', path,
        // Only managedFields change: no field is recorded for the manager of this patch.
        query: { fieldManager: FIELD_MANAGER, fieldValidation: 'Strict' },
        contentType: 'application/json-patch+json',
        body: [
          // A resourceVersion in the patched object is a precondition: 409 Conflict if it changed since the POST.
          { op: 'replace', path: '/metadata/resourceVersion', value: created.metadata.resourceVersion },
          { op: 'replace', path: '/metadata/managedFields', value: handedOver },
        ],
      });
      return response.body;
    } catch (error) {
      if (error instanceof ClusterError && (error.status === 409 || error.status === 404)) {
        throw new WriteConflictError(this.contextName, [describeObject(created)], 'it was changed by someone else right after meshfed wrote it');
      }
      throw error;
    }
  }

  /**
   * Server-side apply, unconditional: for the unguarded kinds, whose content does not depend on which exports or
   * imports exist (see {@link UNGUARDED_KINDS}).
   */
  private async serverSideApply(object: KubeObject, dryRun: boolean): Promise<{ object: KubeObject; warnings: string[] }> {
    const path = await this.mapper.objectPath(object.apiVersion, object.kind, object.metadata.namespace, object.metadata.name);
    try {
      const response = await this.client.request<KubeObject>({
        method: 'PATCH',
        path,
        // Force: the object is meshfed's (checked in diff), so meshfed takes back fields someone edited by hand.
        query: { fieldManager: FIELD_MANAGER, fieldValidation: 'Strict', force: 'true', dryRun: dryRun ? 'All' : undefined },
        contentType: 'application/apply-patch+yaml',
        body: object,
      });
      return { object: response.body, warnings: response.warnings };
    } catch (error) {
      throw this.rejected(object, error);
    }
  }

  /**
   * Adds annotations to an object meshfed read, only if it is still the version read (a lost race is a
   * {@link WriteConflictError}, which re-plans). Returns the object as written, with its new resourceVersion.
   */
  async annotate(live: KubeObject, annotations: Record<string, string>): Promise<KubeObject> {
    const desired: KubeObject = { ...live, metadata: { ...live.metadata, annotations: { ...live.metadata.annotations, ...annotations } } };
    return (await this.patchIfUnchanged(desired, live, false)).object;
  }

  /**
   * Updates a guarded object with {@link conditionalPatch}: 409 Conflict when it changed or was replaced since
   * `live` was read, 404 NotFound when it was deleted (a patch that is not an apply never creates; the API server's
   * patch handler allows a create only for apply patches, `staging/src/k8s.io/apiserver/pkg/endpoints/handlers/
   * patch.go`, `patchResource`: `forceAllowCreate`). Either is a lost race: the command re-reads and plans again. The
   * patch carries the resourceVersion it expects, so it is safe to send again after a 5xx or a timeout (a copy that
   * landed makes the repeat meet 409, which re-plans).
   */
  private async patchIfUnchanged(object: KubeObject, live: KubeObject, dryRun: boolean): Promise<{ object: KubeObject; warnings: string[] }> {
    const path = await this.mapper.objectPath(object.apiVersion, object.kind, object.metadata.namespace, object.metadata.name);
    try {
      const response = await this.client.request<KubeObject>({
        method: 'PATCH', path,
        query: { fieldManager: FIELD_MANAGER, fieldValidation: 'Strict', dryRun: dryRun ? 'All' : undefined },
        contentType: 'application/json-patch+json',
        body: conditionalPatch(object, live),
      });
      return { object: response.body, warnings: response.warnings };
    } catch (error) {
      if (error instanceof ClusterError && error.status === 409) {
        throw new WriteConflictError(this.contextName, [describeObject(object)], 'it was changed by someone else after meshfed read it');
      }
      if (error instanceof ClusterError && error.status === 404) {
        throw new WriteConflictError(this.contextName, [describeObject(object)], 'it was deleted by someone else after meshfed read it');
      }
      throw this.rejected(object, error);
    }
  }

  /** A validation error of the server, said in terms of the object; other errors as they are. */
  private rejected(object: KubeObject, error: unknown): unknown {
    if (error instanceof ClusterError && (error.status === 400 || error.status === 422)) {
      return new ClusterError(`context "${this.contextName}" rejected ${describeObject(object)}: ${error.message.replace(/^.*?failed \(context "[^"]*"\): /, '')}`, {
        status: error.status, reason: error.reason,
        hint: 'the cluster\'s Istio may not know a field meshfed uses; check `kubectl meshfed contexts --probe` for its version',
      });
    }
    return error;
  }

  /**
   * Deletes objects (only meshfed's; others are skipped and reported). Already-gone objects are fine. A guarded
   * object read with a resourceVersion is deleted only if it is still that version, any other only if it is still
   * the object read (its uid) (DeleteOptions preconditions: 409 Conflict otherwise), so that a deletion planned from
   * a stale read never removes what someone else just wrote into it; either precondition makes the delete safe to
   * retry.
   */
  async delete(objects: readonly KubeObject[], options: { dryRun?: boolean } = {}): Promise<KubeObject[]> {
    const deleted: KubeObject[] = [];
    // Reverse dependency order: routes and policies first, then workloads, then secrets and accounts; the records of
    // exports and imports last, since a command finds what it removes by them: a removal stopped half-way (an API
    // server that kept failing) is finished by running it again.
    const isRecord = (object: KubeObject) => RECORD_ROLES.has(object.metadata.labels?.[LABELS.role] as Role);
    const batches = [...inDependencyOrder(objects.filter((object) => !isRecord(object))).reverse(), objects.filter(isRecord)].filter((batch) => batch.length > 0);
    for (const tier of batches) {
      const results = await Promise.allSettled(tier.map(async (object) => {
        if (!isManagedByMeshfed(object)) return;
        const path = await this.mapper.objectPath(object.apiVersion, object.kind, object.metadata.namespace, object.metadata.name);
        const resourceVersion = isGuarded(object) ? object.metadata.resourceVersion as string | undefined : undefined;
        // Unguarded kinds are changed by controllers (no resourceVersion precondition), but the uid still makes the
        // delete one of this very object: never of one created again under its name, and safe to send again after a
        // 5xx or a timeout (a repeat of a delete that landed meets 404).
        const uid = object.metadata.uid as string | undefined;
        const preconditions = { ...(uid ? { uid } : {}), ...(resourceVersion ? { resourceVersion } : {}) };
        try {
          await this.client.request({
            method: 'DELETE', path,
            query: { dryRun: options.dryRun ? 'All' : undefined, propagationPolicy: 'Background' },
            ...(uid || resourceVersion ? { body: { kind: 'DeleteOptions', apiVersion: 'v1', preconditions } } : {}),
          });
          deleted.push(object);
        } catch (error) {
          if (error instanceof ClusterError && error.status === 404) return;
          if ((uid || resourceVersion) && error instanceof ClusterError && error.status === 409) {
            throw new WriteConflictError(this.contextName, [describeObject(object)], resourceVersion
              ? 'it was changed by someone else after meshfed read it'
              : 'it was replaced by someone else after meshfed read it');
          }
          throw error;
        }
      }));
      const failed = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
      if (failed.length) {
        const other = failed.find((r) => !(r.reason instanceof WriteConflictError));
        if (other) throw other.reason;
        throw new WriteConflictError(this.contextName, failed.flatMap((r) => (r.reason as WriteConflictError).objects), 'it was changed by someone else after meshfed read it');
      }
    }
    return deleted;
  }

  /**
   * Lists meshfed's objects of the given kinds that match `labelSelector` (always restricted to objects managed by
   * meshfed) and are not in `keep`: what a prune would delete.
   */
  async findStale(kinds: ReadonlyArray<{ apiVersion: string; kind: string }>, labelSelector: string, keep: readonly KubeObject[]): Promise<KubeObject[]> {
    const keepKeys = new Set(keep.map(objectKey));
    const selector = [`${MANAGED_BY_LABEL}=${MANAGED_BY_VALUE}`, labelSelector].filter(Boolean).join(',');
    const lists = await Promise.all(kinds.map(async ({ apiVersion, kind }) => {
      try {
        return await this.list(apiVersion, kind, undefined, selector);
      } catch (error) {
        // A cluster without Istio has no Istio kinds, hence nothing of ours to prune there.
        if (error instanceof ClusterError && error.status === 404) return [];
        throw error;
      }
    }));
    return lists.flat().filter((object) => !keepKeys.has(objectKey(object)));
  }

  /**
   * Watches one object until `ready(object)` returns true, and returns it. Uses a watch (not polling) and gives up
   * after `timeoutMs` with an error that says what was awaited.
   */
  async waitFor(
    ref: { apiVersion: string; kind: string; namespace?: string; name: string },
    ready: (object: KubeObject) => boolean,
    options: { timeoutMs: number; what: string; signal?: AbortSignal },
  ): Promise<KubeObject> {
    const collection = await this.mapper.collectionPath(ref.apiVersion, ref.kind, ref.namespace);
    const controller = new AbortController();
    const onOuterAbort = () => controller.abort();
    options.signal?.addEventListener('abort', onOuterAbort, { once: true });
    const timer = setTimeout(() => controller.abort(), options.timeoutMs);
    let last: KubeObject | undefined;
    try {
      const fieldSelector = `metadata.name=${ref.name}`;
      const list = await this.client.request<{ items: KubeObject[]; metadata: { resourceVersion: string } }>({ method: 'GET', path: collection, query: { fieldSelector } });
      last = list.body.items[0];
      if (last && ready(last)) return last;
      let resourceVersion = list.body.metadata.resourceVersion;
      while (!controller.signal.aborted) {
        let found: KubeObject | undefined;
        await this.client.stream({ path: collection, query: { watch: '1', fieldSelector, resourceVersion, allowWatchBookmarks: 'true', timeoutSeconds: String(Math.ceil(options.timeoutMs / 1000)) }, timeoutMs: 0 }, (line) => {
          let event: { type: string; object: KubeObject };
          try { event = JSON.parse(line); } catch { return; }
          if (event.object?.metadata?.resourceVersion) resourceVersion = String(event.object.metadata.resourceVersion);
          if (event.type === 'ADDED' || event.type === 'MODIFIED') {
            last = event.object;
            if (ready(event.object)) {
              found = event.object;
              controller.abort();
            }
          } else if (event.type === 'DELETED') last = undefined;
        }, controller.signal);
        if (found) return found;
      }
      if (options.signal?.aborted) throw new ClusterError(`stopped waiting for ${options.what}`);
      throw new ClusterError(`timed out after ${Math.round(options.timeoutMs / 1000)}s waiting for ${options.what} (context "${this.contextName}")`, {
        hint: last ? undefined : `${ref.kind} ${ref.namespace ? `${ref.namespace}/` : ''}${ref.name} does not exist`,
      });
    } finally {
      clearTimeout(timer);
      options.signal?.removeEventListener('abort', onOuterAbort);
    }
  }
}
