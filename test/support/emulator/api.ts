/**
 * The semantics of the API behind the HTTP layer: create, update, patch (merge, strategic, JSON, apply),
 * delete with garbage collection, defaulting, admission (mutating hooks such as sidecar injection) and
 * validation, including CRD schemas and `fieldValidation`.
 */
import { randomUUID } from 'node:crypto';
import { pruneUnknownFields, validateAgainstSchema } from '../crd-schema.js';
import type { JSONSchemaProps } from '../crd-schema.js';
import { BUILTIN_SCHEMAS } from './builtin-schemas.js';
import { ApiError, alreadyExists, badRequest, conflict, invalid, notFound } from './errors.js';
import type { StatusCause } from './errors.js';
import { jsonPatch, mergePatch, recordUpdate, serverSideApply, strategicMergePatch } from './patch.js';
import { Registry, typeFromCrd } from './registry.js';
import type { ResourceType } from './registry.js';
import type { KubeObject } from './runtime.js';
import { Store, typeKey } from './store.js';

/** Options of a write, from the query string. */
export interface WriteOptions {
  /** `dryRun=All`: validate and admit, but store nothing. */
  dryRun?: boolean;
  /** Default: derived from the user agent, as the apiserver does (`kubectl`, `node`…). */
  fieldManager?: string;
  /** Default 'Warn' (the apiserver's default): unknown fields pruned with a warning. */
  fieldValidation?: 'Strict' | 'Warn' | 'Ignore';
  force?: boolean;
  /** Warnings collected for the `Warning` response header. */
  warnings?: string[];
}

/** The content types PATCH accepts. */
export type PatchType = 'application/merge-patch+json' | 'application/strategic-merge-patch+json' | 'application/json-patch+json' | 'application/apply-patch+yaml' | 'application/apply-patch+cbor';

/** A mutating admission hook: may change the object before validation. Runs on create only. */
export type Mutator = (type: ResourceType, obj: KubeObject) => void;

/**
 * A validating admission webhook: throws an ApiError to deny a create or update (after defaulting and mutation, as
 * the apiserver calls validating webhooks last).
 */
export type Validator = (type: ResourceType, obj: KubeObject) => void;

const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

function timestamp(): string {
  return new Date().toISOString().replace(/\.\d{3}Z$/, 'Z');
}

function isMap(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function randomSuffix(n = 5): string {
  const alphabet = 'bcdfghjklmnpqrstvwxz2456789';
  let s = '';
  for (let i = 0; i < n; i++) s += alphabet[Math.floor(Math.random() * alphabet.length)];
  return s;
}

/** The API of one cluster: every write goes through here, from HTTP, tests and simulated controllers alike. */
export class ClusterApi {
  readonly store = new Store();
  readonly registry = new Registry();
  readonly mutators: Mutator[] = [];
  readonly validators: Validator[] = [];
  private readonly serviceIps = new Set<string>();
  private nextServiceIp = 10;
  private nextNodePort = 30000;

  constructor(readonly clusterName: string) {}

  /** The type of a group and kind (any version), or a 404 naming the kind. */
  typeOf(group: string, kind: string): ResourceType {
    const t = this.registry.byKind(group, kind);
    if (!t) throw new ApiError(404, 'NotFound', `the server could not find the requested resource (${kind}.${group})`);
    return t;
  }

  /** The type of an object's apiVersion and kind. */
  typeOfObject(obj: { apiVersion?: string; kind?: string }): ResourceType {
    const apiVersion = obj.apiVersion ?? '';
    const group = apiVersion.includes('/') ? (apiVersion.split('/')[0] as string) : '';
    const version = apiVersion.includes('/') ? (apiVersion.split('/')[1] as string) : apiVersion;
    const t = this.registry.byKind(group, obj.kind ?? '');
    if (!t || !t.versions.includes(version)) {
      throw new ApiError(404, 'NotFound', `no matches for kind "${obj.kind}" in version "${apiVersion}"`);
    }
    return t;
  }

  get(type: ResourceType, namespace: string | undefined, name: string): KubeObject {
    const obj = this.store.get(typeKey(type), type.namespaced ? namespace : undefined, name);
    if (!obj) throw notFound(type.plural, type.group, name);
    return obj;
  }

  find(type: ResourceType, namespace: string | undefined, name: string): KubeObject | undefined {
    return this.store.get(typeKey(type), type.namespaced ? namespace : undefined, name);
  }

  list(type: ResourceType, namespace?: string): KubeObject[] {
    return this.store.list(typeKey(type), type.namespaced ? namespace : undefined);
  }

  private storageVersion(type: ResourceType): string {
    const v = type.versions[0] as string;
    return type.group ? `${type.group}/${v}` : v;
  }

  private checkNamespace(type: ResourceType, namespace: string | undefined): void {
    if (!type.namespaced) return;
    if (!namespace) throw badRequest('the namespace of the provided object does not match the namespace sent on the request');
    const nsType = this.typeOf('', 'Namespace');
    if (!this.find(nsType, undefined, namespace)) throw notFound('namespaces', '', namespace);
  }

  /**
   * Unknown fields per `fieldValidation`: 400 strict decoding error with Strict, otherwise a warning each
   * (unless Ignore), and the object without them.
   */
  private unknownFields(type: ResourceType, version: string, obj: KubeObject, schema: JSONSchemaProps, opts: WriteOptions): KubeObject {
    const { unknownFields } = validateAgainstSchema(obj, schema);
    if (unknownFields.length === 0) return obj;
    const mode = opts.fieldValidation ?? 'Warn';
    if (mode === 'Strict') {
      throw badRequest(`${type.kind} in version "${version}" cannot be handled as a ${type.kind}: strict decoding error: ${unknownFields.map((f) => `unknown field "${f.slice(1)}"`).join(', ')}`);
    }
    if (mode === 'Warn') for (const f of unknownFields) opts.warnings?.push(`unknown field "${f.slice(1)}"`);
    return pruneUnknownFields(obj, schema);
  }

  /** The schema unknown fields are judged by: the CRD's for custom resources, a field list for common built-ins. */
  private fieldSchema(type: ResourceType, version: string): JSONSchemaProps | undefined {
    return type.custom ? type.custom.schemas[version] : BUILTIN_SCHEMAS[`${type.group}/${type.kind}`];
  }

  /** Unknown fields, then (custom resources) schema validation: 422 with causes. */
  private checkFields(type: ResourceType, version: string, obj: KubeObject, opts: WriteOptions): KubeObject {
    const schema = this.fieldSchema(type, version);
    if (!schema) return obj;
    const pruned = this.unknownFields(type, version, obj, schema, opts);
    if (!type.custom) return pruned;
    const { causes } = validateAgainstSchema(pruned, schema);
    if (causes.length > 0) throw invalid(type.kind, type.group, obj.metadata.name, causes);
    return pruned;
  }

  private validateMetadata(type: ResourceType, obj: KubeObject): void {
    const causes: StatusCause[] = [];
    const name = obj.metadata.name;
    const pattern = type.kind === 'Namespace' || type.kind === 'Service' ? DNS1123_LABEL : DNS1123_SUBDOMAIN;
    if (!name) causes.push({ reason: 'FieldValueRequired', field: 'metadata.name', message: 'Required value: name or generateName is required' });
    else if (!pattern.test(name) || name.length > (pattern === DNS1123_LABEL ? 63 : 253)) {
      const what = pattern === DNS1123_LABEL ? 'a lowercase RFC 1123 label' : 'a lowercase RFC 1123 subdomain';
      causes.push({ reason: 'FieldValueInvalid', field: 'metadata.name', message: `Invalid value: "${name}": ${what} must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character` });
    }
    for (const [k, v] of Object.entries(obj.metadata.labels ?? {})) {
      if (typeof v !== 'string' || v.length > 63 || !/^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/.test(v)) {
        causes.push({ reason: 'FieldValueInvalid', field: 'metadata.labels', message: `Invalid value: "${String(v)}": a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character` });
      }
      if (!/^([a-z0-9.-]+\/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/.test(k)) {
        causes.push({ reason: 'FieldValueInvalid', field: 'metadata.labels', message: `Invalid value: "${k}": name part must consist of alphanumeric characters, '-', '_' or '.'` });
      }
    }
    if (causes.length > 0) throw invalid(type.kind, type.group, name ?? '', causes);
  }

  /** Built-in validation that matters to users: the mistakes a real server rejects with 422. */
  private validateBuiltin(type: ResourceType, obj: KubeObject): void {
    const causes: StatusCause[] = [];
    const spec = (obj.spec ?? {}) as Record<string, unknown>;
    const containersOf = (podSpec: Record<string, unknown>, path: string): void => {
      const containers = podSpec.containers as Array<Record<string, unknown>> | undefined;
      if (!containers || containers.length === 0) causes.push({ reason: 'FieldValueRequired', field: `${path}.containers`, message: 'Required value' });
      containers?.forEach((c, i) => {
        if (!c.name) causes.push({ reason: 'FieldValueRequired', field: `${path}.containers[${i}].name`, message: 'Required value' });
        if (!c.image) causes.push({ reason: 'FieldValueRequired', field: `${path}.containers[${i}].image`, message: 'Required value' });
      });
    };
    switch (type.kind) {
      case 'Pod':
        containersOf(spec, 'spec');
        break;
      case 'Deployment': {
        const selector = spec.selector as { matchLabels?: Record<string, string> } | undefined;
        const template = spec.template as { metadata?: { labels?: Record<string, string> }; spec?: Record<string, unknown> } | undefined;
        if (!selector) causes.push({ reason: 'FieldValueRequired', field: 'spec.selector', message: 'Required value' });
        const labels = template?.metadata?.labels ?? {};
        if (selector && Object.entries(selector.matchLabels ?? {}).some(([k, v]) => labels[k] !== v)) {
          causes.push({ reason: 'FieldValueInvalid', field: 'spec.template.metadata.labels', message: `Invalid value: map[string]string{${Object.entries(labels).map(([k, v]) => `"${k}":"${v}"`).join(', ')}}: \`selector\` does not match template \`labels\`` });
        }
        containersOf(template?.spec ?? {}, 'spec.template.spec');
        break;
      }
      case 'Service': {
        const ports = (spec.ports as Array<Record<string, unknown>> | undefined) ?? [];
        if (ports.length === 0 && spec.type !== 'ExternalName' && spec.clusterIP !== 'None') causes.push({ reason: 'FieldValueRequired', field: 'spec.ports', message: 'Required value' });
        ports.forEach((p, i) => {
          if (typeof p.port !== 'number' || p.port < 1 || p.port > 65535) {
            causes.push({ reason: 'FieldValueInvalid', field: `spec.ports[${i}].port`, message: `Invalid value: ${JSON.stringify(p.port ?? 0)}: must be between 1 and 65535, inclusive` });
          }
          if (ports.length > 1 && !p.name) causes.push({ reason: 'FieldValueRequired', field: `spec.ports[${i}].name`, message: 'Required value' });
        });
        if (spec.type && !['ClusterIP', 'NodePort', 'LoadBalancer', 'ExternalName'].includes(spec.type as string)) {
          causes.push({ reason: 'FieldValueNotSupported', field: 'spec.type', message: `Unsupported value: "${String(spec.type)}": supported values: "ClusterIP", "ExternalName", "LoadBalancer", "NodePort"` });
        }
        break;
      }
      case 'CustomResourceDefinition': {
        const s = obj.spec as { group?: string; names?: { plural?: string }; versions?: unknown[] } | undefined;
        if (s?.group && s.names?.plural && obj.metadata.name !== `${s.names.plural}.${s.group}`) {
          causes.push({ reason: 'FieldValueInvalid', field: 'metadata.name', message: `Invalid value: "${obj.metadata.name}": must be spec.names.plural+"."+spec.group` });
        }
        if (!s?.versions || s.versions.length === 0) causes.push({ reason: 'FieldValueRequired', field: 'spec.versions', message: 'Required value' });
        break;
      }
      default:
        break;
    }
    if (causes.length > 0) throw invalid(type.kind, type.group, obj.metadata.name, causes);
  }

  /** What the apiserver fills in on create (and keeps on update) for built-in kinds. */
  private defaults(type: ResourceType, obj: KubeObject, previous?: KubeObject): void {
    const spec = (obj.spec ?? {}) as Record<string, unknown>;
    const podSpecDefaults = (podSpec: Record<string, unknown>): void => {
      podSpec.restartPolicy ??= 'Always';
      podSpec.dnsPolicy ??= 'ClusterFirst';
      podSpec.schedulerName ??= 'default-scheduler';
      podSpec.terminationGracePeriodSeconds ??= 30;
      podSpec.securityContext ??= {};
      if (podSpec.serviceAccountName || podSpec.serviceAccount) {
        podSpec.serviceAccountName ??= podSpec.serviceAccount;
        podSpec.serviceAccount ??= podSpec.serviceAccountName;
      }
      for (const list of ['containers', 'initContainers'] as const) {
        for (const c of (podSpec[list] as Array<Record<string, unknown>> | undefined) ?? []) {
          const image = String(c.image ?? '');
          c.imagePullPolicy ??= image.endsWith(':latest') || !/:[^/]+$/.test(image) ? 'Always' : 'IfNotPresent';
          c.terminationMessagePath ??= '/dev/termination-log';
          c.terminationMessagePolicy ??= 'File';
          c.resources ??= {};
          for (const p of (c.ports as Array<Record<string, unknown>> | undefined) ?? []) p.protocol ??= 'TCP';
        }
      }
    };
    switch (type.kind) {
      case 'Namespace':
        obj.metadata.labels = { ...obj.metadata.labels, 'kubernetes.io/metadata.name': obj.metadata.name };
        obj.spec = { finalizers: ['kubernetes'], ...spec };
        obj.status = { phase: 'Active', ...(obj.status as object | undefined) };
        break;
      case 'Pod':
        podSpecDefaults(spec);
        spec.serviceAccountName ??= 'default';
        spec.serviceAccount ??= spec.serviceAccountName;
        obj.spec = spec;
        break;
      case 'Deployment': {
        spec.replicas ??= 1;
        spec.revisionHistoryLimit ??= 10;
        spec.progressDeadlineSeconds ??= 600;
        spec.strategy ??= { type: 'RollingUpdate', rollingUpdate: { maxSurge: '25%', maxUnavailable: '25%' } };
        const template = (spec.template ?? {}) as Record<string, unknown>;
        podSpecDefaults((template.spec ?? {}) as Record<string, unknown>);
        obj.spec = spec;
        break;
      }
      case 'Service': {
        spec.type ??= 'ClusterIP';
        spec.sessionAffinity ??= 'None';
        const prevSpec = (previous?.spec ?? {}) as Record<string, unknown>;
        if (spec.type !== 'ExternalName') {
          spec.clusterIP ??= prevSpec.clusterIP ?? this.allocateServiceIp();
          spec.clusterIPs ??= spec.clusterIP === 'None' ? ['None'] : [spec.clusterIP];
          spec.ipFamilies ??= ['IPv4'];
          spec.ipFamilyPolicy ??= 'SingleStack';
          spec.internalTrafficPolicy ??= 'Cluster';
        }
        const prevPorts = (prevSpec.ports as Array<Record<string, unknown>> | undefined) ?? [];
        for (const p of (spec.ports as Array<Record<string, unknown>> | undefined) ?? []) {
          p.protocol ??= 'TCP';
          p.targetPort ??= p.port;
          if (spec.type === 'LoadBalancer' || spec.type === 'NodePort') {
            p.nodePort ??= prevPorts.find((q) => q.port === p.port)?.nodePort ?? this.nextNodePort++;
          }
        }
        if (spec.type === 'LoadBalancer') {
          spec.externalTrafficPolicy ??= 'Cluster';
          spec.allocateLoadBalancerNodePorts ??= true;
        }
        obj.spec = spec;
        obj.status ??= previous?.status ?? { loadBalancer: {} };
        break;
      }
      case 'Secret': {
        obj.type ??= 'Opaque';
        const stringData = obj.stringData as Record<string, string> | undefined;
        if (stringData) {
          const data = { ...((obj.data as Record<string, string> | undefined) ?? {}) };
          for (const [k, v] of Object.entries(stringData)) data[k] = Buffer.from(String(v)).toString('base64');
          obj.data = data;
          delete obj.stringData;
        }
        break;
      }
      default:
        break;
    }
  }

  private allocateServiceIp(): string {
    let ip: string;
    do {
      const n = this.nextServiceIp++;
      ip = `10.96.${Math.floor(n / 250)}.${(n % 250) + 1}`;
    } while (this.serviceIps.has(ip));
    this.serviceIps.add(ip);
    return ip;
  }

  private checkKind(type: ResourceType, obj: KubeObject, version: string): void {
    const expected = type.group ? `${type.group}/${version}` : version;
    if (!isMap(obj) || !isMap(obj.metadata)) throw badRequest('Object \'metadata\' is missing');
    if (obj.kind !== undefined && obj.kind !== type.kind) {
      throw badRequest(`the API version in the data (${obj.apiVersion}) does not match the expected API version (${expected})`);
    }
    if (obj.apiVersion !== undefined && obj.apiVersion !== expected) {
      throw badRequest(`the API version in the data (${obj.apiVersion}) does not match the expected API version (${expected})`);
    }
  }

  /** Creates an object. `version` is the one the request used (the object is stored in the storage version). */
  create(type: ResourceType, namespace: string | undefined, body: KubeObject, opts: WriteOptions = {}, version = type.versions[0] as string, managed?: unknown[]): KubeObject {
    this.checkKind(type, body, version);
    let obj = structuredClone(body);
    obj.apiVersion = type.group ? `${type.group}/${version}` : version;
    obj.kind = type.kind;
    if (!obj.metadata.name && typeof obj.metadata.generateName === 'string') obj.metadata.name = `${obj.metadata.generateName}${randomSuffix()}`;
    if (type.namespaced) {
      if (obj.metadata.namespace && namespace && obj.metadata.namespace !== namespace) {
        throw badRequest('the namespace of the provided object does not match the namespace sent on the request');
      }
      obj.metadata.namespace = namespace ?? obj.metadata.namespace;
    } else {
      delete obj.metadata.namespace;
    }
    this.validateMetadata(type, obj);
    this.checkNamespace(type, obj.metadata.namespace);
    if (this.find(type, obj.metadata.namespace, obj.metadata.name)) throw alreadyExists(type.plural, type.group, obj.metadata.name);
    if (type.subresources.includes('status') && type.kind !== 'Namespace') delete obj.status;
    delete obj.metadata.resourceVersion;
    obj = this.checkFields(type, version, obj, opts);
    this.defaults(type, obj);
    for (const m of this.mutators) m(type, obj);
    this.validateBuiltin(type, obj);
    for (const v of this.validators) v(type, obj);
    obj.metadata.uid = randomUUID();
    obj.metadata.creationTimestamp = timestamp();
    if (type.subresources.includes('status') || type.custom) obj.metadata.generation = 1;
    if (managed) obj.metadata.managedFields = managed;
    else recordUpdate(undefined, obj, opts.fieldManager ?? 'unknown', !type.custom);
    if (type.kind === 'CustomResourceDefinition') this.checkCrd(obj);
    return this.commit(type, obj, opts);
  }

  private checkCrd(crd: KubeObject): void {
    const t = typeFromCrd(crd);
    if (!t) return;
    const existing = this.registry.byResource(t.group, t.versions[0] as string, t.plural);
    if (existing && !existing.custom) {
      throw invalid('CustomResourceDefinition', 'apiextensions.k8s.io', crd.metadata.name, [{ reason: 'FieldValueInvalid', field: 'spec.group', message: `Invalid value: "${t.group}": a built-in group cannot be used` }]);
    }
  }

  /** Stores an object with a new resourceVersion (unless dry-run) and returns a copy for the caller. */
  private commit(type: ResourceType, obj: KubeObject, opts: WriteOptions): KubeObject {
    obj.apiVersion = this.storageVersion(type);
    if (opts.dryRun) return structuredClone(obj);
    obj.metadata.resourceVersion = String(this.store.nextRevision());
    this.store.put(typeKey(type), obj);
    if (type.kind === 'CustomResourceDefinition') this.registerCrd(obj);
    return structuredClone(obj);
  }

  /** Registers (or re-registers) the kind a CRD defines and marks the CRD Established, as the apiserver does. */
  private registerCrd(crd: KubeObject): void {
    const t = typeFromCrd(crd);
    if (!t) return;
    this.registry.add(t);
    const status = crd.status as { conditions?: unknown[] } | undefined;
    if (!status?.conditions) {
      const now = timestamp();
      const next = structuredClone(crd);
      const names = (crd.spec as { names: object }).names;
      next.status = {
        acceptedNames: names,
        storedVersions: [(crd.spec as { versions: Array<{ name: string; storage: boolean }> }).versions.find((v) => v.storage)?.name],
        conditions: [
          { type: 'NamesAccepted', status: 'True', lastTransitionTime: now, reason: 'NoConflicts', message: 'no conflicts found' },
          { type: 'Established', status: 'True', lastTransitionTime: now, reason: 'InitialNamesAccepted', message: 'the initial names have been accepted' },
        ],
      };
      next.metadata.resourceVersion = String(this.store.nextRevision());
      this.store.put(typeKey(this.typeOf('apiextensions.k8s.io', 'CustomResourceDefinition')), next);
    }
  }

  /** Replaces an object (PUT). A stale `metadata.resourceVersion` is a 409 Conflict. */
  update(type: ResourceType, namespace: string | undefined, name: string, body: KubeObject, opts: WriteOptions = {}, version = type.versions[0] as string, subresource?: string): KubeObject {
    this.checkKind(type, body, version);
    const current = this.get(type, namespace, name);
    if (body.metadata.name && body.metadata.name !== name) {
      throw badRequest(`the name of the object (${body.metadata.name}) does not match the name on the URL (${name})`);
    }
    const rv = body.metadata.resourceVersion;
    if (rv !== undefined && rv !== '' && rv !== current.metadata.resourceVersion) {
      throw conflict(type.plural, type.group, name, 'the object has been modified; please apply your changes to the latest version and try again');
    }
    return this.replace(type, current, structuredClone(body), opts, version, subresource);
  }

  private replace(type: ResourceType, current: KubeObject, next: KubeObject, opts: WriteOptions, version: string, subresource?: string, managed?: unknown[]): KubeObject {
    next.apiVersion = type.group ? `${type.group}/${version}` : version;
    next.kind = type.kind;
    if (subresource === 'status') {
      next = { ...structuredClone(current), status: next.status };
    } else if (type.subresources.includes('status')) {
      next.status = structuredClone(current.status);
      if (next.status === undefined) delete next.status;
    }
    // Immutable and server-owned metadata.
    next.metadata = {
      ...next.metadata,
      name: current.metadata.name,
      uid: current.metadata.uid,
      creationTimestamp: current.metadata.creationTimestamp,
      ...(current.metadata.namespace ? { namespace: current.metadata.namespace } : {}),
    };
    if (next.metadata.managedFields === undefined) next.metadata.managedFields = current.metadata.managedFields;
    if (subresource !== 'status') next = this.checkFields(type, version, next, opts);
    this.defaults(type, next, current);
    this.validateMetadata(type, next);
    this.validateBuiltin(type, next);
    if (subresource !== 'status') for (const v of this.validators) v(type, next);
    const specChanged = JSON.stringify(stripMeta(current)) !== JSON.stringify(stripMeta(next));
    if (current.metadata.generation !== undefined) {
      next.metadata.generation = (current.metadata.generation as number) + (specChanged && subresource !== 'status' ? 1 : 0);
    }
    const explicit = next.metadata.managedFields !== undefined && JSON.stringify(next.metadata.managedFields) !== JSON.stringify(current.metadata.managedFields);
    if (managed) next.metadata.managedFields = managed;
    // A write that sets managedFields itself (kubectl's client-side to server-side apply migration) is taken as given.
    else if (!explicit) recordUpdate(current, next, opts.fieldManager ?? 'unknown', !type.custom, subresource);
    next.metadata.resourceVersion = current.metadata.resourceVersion;
    // A no-op write does not bump the resourceVersion, as the apiserver skips writing unchanged objects.
    if (JSON.stringify(next) === JSON.stringify(current)) return structuredClone(current);
    return this.commit(type, next, opts);
  }

  /** PATCH in one of the four patch types. Server-side apply creates the object when it does not exist. */
  patch(type: ResourceType, namespace: string | undefined, name: string, patchType: string, body: unknown, opts: WriteOptions = {}, version = type.versions[0] as string, subresource?: string): KubeObject {
    const current = this.find(type, namespace, name);
    if (patchType.startsWith('application/apply-patch')) {
      if (!opts.fieldManager) throw badRequest('PatchOptions.meta.k8s.io "" is invalid: fieldManager: Required value: is required for apply patch');
      let applied = body as KubeObject;
      if (!isMap(applied)) throw badRequest('error decoding YAML: object expected');
      this.checkKind(type, applied, version);
      if (applied.apiVersion === undefined || applied.kind === undefined) {
        throw badRequest('invalid object type: /, Kind=');
      }
      if (applied.metadata.name !== undefined && applied.metadata.name !== name) {
        throw badRequest(`the name of the object (${applied.metadata.name}) does not match the name on the URL (${name})`);
      }
      applied.metadata.name = name;
      // A resourceVersion in the applied configuration is a precondition, as for an update: the apiserver's
      // registry Store.Update (staging/src/k8s.io/apiserver/pkg/registry/generic/registry/store.go) answers 409
      // Conflict when it differs from the stored object's ("the object has been modified; please apply your
      // changes to the latest version and try again"), which is why the server-side apply documentation tells
      // controllers to leave it out unless they want that check.
      const precondition = applied.metadata.resourceVersion;
      if (current && precondition !== undefined && precondition !== '' && precondition !== current.metadata.resourceVersion) {
        throw conflict(type.plural, type.group, name, 'the object has been modified; please apply your changes to the latest version and try again');
      }
      // Unknown fields are judged on the applied configuration, before they could be merged into anything.
      const schema = this.fieldSchema(type, version);
      if (schema) applied = this.unknownFields(type, version, applied, schema, opts);
      const merged = serverSideApply(current, applied, opts.fieldManager, opts.force === true, !type.custom);
      const managed = merged.metadata.managedFields as unknown[];
      if (!current) return this.create(type, namespace, merged, { ...opts, fieldValidation: 'Ignore' }, version, managed);
      return this.replace(type, current, merged, { ...opts, fieldValidation: 'Ignore' }, version, subresource, managed);
    }
    if (!current) throw notFound(type.plural, type.group, name);
    let next: unknown;
    switch (patchType) {
      case 'application/merge-patch+json':
        next = mergePatch(current, body);
        break;
      case 'application/json-patch+json':
        next = jsonPatch(current, body);
        break;
      case 'application/strategic-merge-patch+json':
        if (type.custom) {
          throw new ApiError(415, 'UnsupportedMediaType', `the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml`);
        }
        next = strategicMergePatch(current, body);
        break;
      default:
        throw new ApiError(415, 'UnsupportedMediaType', `the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml, application/strategic-merge-patch+json`);
    }
    const nextObj = next as KubeObject;
    if (!isMap(nextObj) || !isMap(nextObj.metadata)) throw badRequest('the patch removed metadata');
    const rv = nextObj.metadata.resourceVersion;
    if (rv !== undefined && rv !== current.metadata.resourceVersion) {
      throw conflict(type.plural, type.group, name, 'the object has been modified; please apply your changes to the latest version and try again');
    }
    return this.replace(type, current, structuredClone(nextObj), opts, version, subresource);
  }

  /** Deletes an object and, through ownerReferences, what it owns; deleting a namespace empties it. */
  delete(type: ResourceType, namespace: string | undefined, name: string, opts: WriteOptions & { propagationPolicy?: string; preconditions?: { resourceVersion?: string; uid?: string } } = {}): KubeObject {
    const current = this.get(type, namespace, name);
    // DeleteOptions.preconditions, checked against the stored object as etcd3's store checkPreconditions does
    // (staging/src/k8s.io/apiserver/pkg/storage/etcd3/store.go), which the registry answers with 409 Conflict.
    const pre = opts.preconditions;
    if (pre?.uid && pre.uid !== current.metadata.uid) {
      throw conflict(type.plural, type.group, name, `Precondition failed: UID in precondition: ${pre.uid}, UID in object meta: ${current.metadata.uid}`);
    }
    if (pre?.resourceVersion && pre.resourceVersion !== current.metadata.resourceVersion) {
      throw conflict(type.plural, type.group, name, `Precondition failed: ResourceVersion in precondition: ${pre.resourceVersion}, ResourceVersion in object meta: ${current.metadata.resourceVersion}`);
    }
    if (opts.dryRun) return structuredClone(current);
    if (type.kind === 'Namespace') {
      for (const t of this.registry.all()) {
        if (!t.namespaced) continue;
        for (const o of this.list(t, name)) this.store.remove(typeKey(t), o.metadata.namespace, o.metadata.name);
      }
    }
    const removed = this.store.remove(typeKey(type), type.namespaced ? namespace : undefined, name) as KubeObject;
    if (type.kind === 'CustomResourceDefinition') {
      const t = typeFromCrd(current);
      if (t) {
        for (const o of this.store.list(typeKey(t))) this.store.remove(typeKey(t), o.metadata.namespace, o.metadata.name);
        this.registry.remove(t.group, t.plural);
      }
    }
    if (opts.propagationPolicy !== 'Orphan') this.collectGarbage(current.metadata.uid as string);
    return removed;
  }

  private collectGarbage(ownerUid: string): void {
    for (const key of this.store.keys()) {
      for (const o of this.store.list(key)) {
        const refs = (o.metadata.ownerReferences as Array<{ uid: string }> | undefined) ?? [];
        if (refs.some((r) => r.uid === ownerUid)) {
          this.store.remove(key, o.metadata.namespace, o.metadata.name);
          this.collectGarbage(o.metadata.uid as string);
        }
      }
    }
  }

  /**
   * Writes an object as a controller or the kubelet does: no admission, no validation, the field manager
   * recorded. Creates it when missing. Returns the stored copy.
   */
  writeAsController(type: ResourceType, obj: KubeObject, manager: string, subresource?: string): KubeObject {
    const current = this.find(type, obj.metadata.namespace, obj.metadata.name);
    if (!current) {
      const next = structuredClone(obj);
      next.metadata.uid ??= randomUUID();
      next.metadata.creationTimestamp ??= timestamp();
      if (type.subresources.includes('status') || type.custom) next.metadata.generation ??= 1;
      this.defaults(type, next);
      recordUpdate(undefined, next, manager, !type.custom);
      return this.commit(type, next, {});
    }
    const next = structuredClone(obj);
    if (subresource === 'status') {
      const merged = { ...structuredClone(current), status: next.status };
      if (JSON.stringify(merged.status) === JSON.stringify(current.status)) return structuredClone(current);
      recordUpdate(current, merged, manager, !type.custom, 'status');
      return this.commit(type, merged, {});
    }
    next.metadata = { ...current.metadata, ...next.metadata, uid: current.metadata.uid, creationTimestamp: current.metadata.creationTimestamp };
    if (JSON.stringify(stripMeta(next)) === JSON.stringify(stripMeta(current)) && JSON.stringify(next.metadata.labels) === JSON.stringify(current.metadata.labels)) {
      return structuredClone(current);
    }
    recordUpdate(current, next, manager, !type.custom);
    return this.commit(type, next, {});
  }
}

function stripMeta(obj: KubeObject): unknown {
  const { metadata: _m, status: _s, ...rest } = obj;
  return rest;
}
