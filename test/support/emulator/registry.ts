/**
 * The kinds an emulated cluster serves: the built-in ones and those registered by CustomResourceDefinitions,
 * with what discovery (`/api`, `/apis`, `/apis/{group}/{version}`) and OpenAPI v3 say about them.
 */
import { createHash } from 'node:crypto';
import type { JSONSchemaProps } from '../crd-schema.js';
import type { KubeObject } from './runtime.js';

/** A printer column of a CRD version (`additionalPrinterColumns`). */
export interface PrinterColumn {
  name: string;
  type: string;
  jsonPath: string;
  description?: string;
  format?: string;
  priority?: number;
}

/** One kind the API serves. */
export interface ResourceType {
  group: string;
  /** Served versions, the storage version first. */
  versions: string[];
  kind: string;
  listKind: string;
  plural: string;
  singular: string;
  namespaced: boolean;
  shortNames: string[];
  categories: string[];
  verbs: string[];
  /** Subresources: `status`, `log`, `scale`. */
  subresources: string[];
  /** For custom resources: per-version schema and printer columns. */
  custom?: { schemas: Record<string, JSONSchemaProps | undefined>; columns: Record<string, PrinterColumn[]>; crdName: string };
}

const ALL_VERBS = ['create', 'delete', 'deletecollection', 'get', 'list', 'patch', 'update', 'watch'];

function builtin(group: string, version: string, kind: string, plural: string, opts: Partial<ResourceType> = {}): ResourceType {
  return {
    group,
    versions: [version],
    kind,
    listKind: `${kind}List`,
    plural,
    singular: kind.toLowerCase(),
    namespaced: true,
    shortNames: [],
    categories: [],
    verbs: ALL_VERBS,
    subresources: [],
    ...opts,
  };
}

/** The built-in kinds of every emulated cluster. */
export function builtinTypes(): ResourceType[] {
  return [
    builtin('', 'v1', 'Namespace', 'namespaces', { namespaced: false, shortNames: ['ns'], subresources: ['status'], verbs: ['create', 'delete', 'get', 'list', 'patch', 'update', 'watch'] }),
    builtin('', 'v1', 'Node', 'nodes', { namespaced: false, shortNames: ['no'], subresources: ['status'] }),
    builtin('', 'v1', 'Service', 'services', { shortNames: ['svc'], categories: ['all'], subresources: ['status'] }),
    builtin('', 'v1', 'Endpoints', 'endpoints', { shortNames: ['ep'], singular: 'endpoints' }),
    builtin('', 'v1', 'Pod', 'pods', { shortNames: ['po'], categories: ['all'], subresources: ['status', 'log', 'exec'] }),
    builtin('', 'v1', 'Secret', 'secrets'),
    builtin('', 'v1', 'ConfigMap', 'configmaps', { shortNames: ['cm'] }),
    builtin('', 'v1', 'ServiceAccount', 'serviceaccounts', { shortNames: ['sa'] }),
    builtin('', 'v1', 'Event', 'events', { shortNames: ['ev'] }),
    builtin('apps', 'v1', 'Deployment', 'deployments', { shortNames: ['deploy'], categories: ['all'], subresources: ['status', 'scale'] }),
    builtin('discovery.k8s.io', 'v1', 'EndpointSlice', 'endpointslices'),
    builtin('rbac.authorization.k8s.io', 'v1', 'Role', 'roles'),
    builtin('rbac.authorization.k8s.io', 'v1', 'RoleBinding', 'rolebindings'),
    builtin('rbac.authorization.k8s.io', 'v1', 'ClusterRole', 'clusterroles', { namespaced: false }),
    builtin('rbac.authorization.k8s.io', 'v1', 'ClusterRoleBinding', 'clusterrolebindings', { namespaced: false }),
    builtin('apiextensions.k8s.io', 'v1', 'CustomResourceDefinition', 'customresourcedefinitions', {
      namespaced: false,
      shortNames: ['crd', 'crds'],
      categories: ['api-extensions'],
      subresources: ['status'],
    }),
    builtin('authorization.k8s.io', 'v1', 'SelfSubjectAccessReview', 'selfsubjectaccessreviews', { namespaced: false, verbs: ['create'] }),
  ];
}

interface CrdSpec {
  group: string;
  scope: 'Namespaced' | 'Cluster';
  names: { kind: string; listKind?: string; plural: string; singular?: string; shortNames?: string[]; categories?: string[] };
  versions: Array<{
    name: string;
    served: boolean;
    storage: boolean;
    schema?: { openAPIV3Schema?: JSONSchemaProps };
    subresources?: { status?: object; scale?: object };
    additionalPrinterColumns?: PrinterColumn[];
  }>;
}

/** The kind a (v1) CustomResourceDefinition registers, or undefined when it serves no version. */
export function typeFromCrd(crd: KubeObject): ResourceType | undefined {
  const spec = crd.spec as CrdSpec;
  const served = spec.versions.filter((v) => v.served);
  if (served.length === 0) return undefined;
  // Discovery lists the storage version first only if it is the highest priority; kube sorts by version
  // priority (v1 > v1beta1 > v1alpha3), which is what clients treat as preferred.
  const ordered = [...served].sort((a, b) => versionPriority(b.name) - versionPriority(a.name));
  const sub = ordered[0]?.subresources ?? {};
  return {
    group: spec.group,
    versions: ordered.map((v) => v.name),
    kind: spec.names.kind,
    listKind: spec.names.listKind ?? `${spec.names.kind}List`,
    plural: spec.names.plural,
    singular: spec.names.singular ?? spec.names.kind.toLowerCase(),
    namespaced: spec.scope !== 'Cluster',
    shortNames: spec.names.shortNames ?? [],
    categories: spec.names.categories ?? [],
    verbs: ALL_VERBS,
    subresources: [...('status' in sub ? ['status'] : []), ...('scale' in sub ? ['scale'] : [])],
    custom: {
      crdName: crd.metadata.name,
      schemas: Object.fromEntries(served.map((v) => [v.name, v.schema?.openAPIV3Schema])),
      columns: Object.fromEntries(served.map((v) => [v.name, v.additionalPrinterColumns ?? []])),
    },
  };
}

/** Kubernetes version priority: GA > beta > alpha, higher numbers first. */
export function versionPriority(version: string): number {
  const m = /^v(\d+)(?:(alpha|beta)(\d+))?$/.exec(version);
  if (!m) return 0;
  const major = Number(m[1]);
  const stage = m[2] === 'alpha' ? 1 : m[2] === 'beta' ? 2 : 3;
  return stage * 1_000_000 + major * 1000 + Number(m[3] ?? 0);
}

/** The served kinds of one cluster. */
export class Registry {
  private readonly types = new Map<string, ResourceType>();
  private readonly openApiCache = new Map<string, { doc: Record<string, unknown> | undefined; hash: string }>();
  /** Changes whenever a kind is added or removed, so cached documents are rebuilt. */
  generation = 0;

  constructor() {
    for (const t of builtinTypes()) this.add(t);
  }

  add(type: ResourceType): void {
    this.types.set(`${type.group}/${type.plural}`, type);
    this.generation += 1;
    this.openApiCache.clear();
  }

  remove(group: string, plural: string): void {
    this.types.delete(`${group}/${plural}`);
    this.generation += 1;
    this.openApiCache.clear();
  }

  /** The OpenAPI v3 document of a group version with its content hash, built once per registry generation. */
  openApiV3Cached(group: string, version: string): { doc: Record<string, unknown> | undefined; hash: string } {
    const key = `${group}/${version}`;
    let entry = this.openApiCache.get(key);
    if (!entry) {
      const doc = this.openApiV3(group, version);
      entry = { doc, hash: createHash('sha512').update(JSON.stringify(doc ?? {})).digest('hex').slice(0, 64).toUpperCase() };
      this.openApiCache.set(key, entry);
    }
    return entry;
  }

  all(): ResourceType[] {
    return [...this.types.values()];
  }

  /** The type served at /{group}/{version}/{plural}. */
  byResource(group: string, version: string, plural: string): ResourceType | undefined {
    const t = this.types.get(`${group}/${plural}`);
    return t && t.versions.includes(version) ? t : undefined;
  }

  /** The type of a group and kind, whatever the version. */
  byKind(group: string, kind: string): ResourceType | undefined {
    for (const t of this.types.values()) if (t.group === group && t.kind === kind) return t;
    return undefined;
  }

  /** Groups with their versions, preferred first, in registration order (core group excluded). */
  groups(): Array<{ name: string; versions: string[] }> {
    const out = new Map<string, Set<string>>();
    for (const t of this.types.values()) {
      if (t.group === '') continue;
      const set = out.get(t.group) ?? new Set<string>();
      for (const v of t.versions) set.add(v);
      out.set(t.group, set);
    }
    return [...out].map(([name, set]) => ({ name, versions: [...set].sort((a, b) => versionPriority(b) - versionPriority(a)) }));
  }

  /** `APIResourceList` of one group version. */
  resourceList(group: string, version: string): Record<string, unknown> | undefined {
    const types = [...this.types.values()].filter((t) => t.group === group && t.versions.includes(version));
    if (types.length === 0) return undefined;
    const resources: Array<Record<string, unknown>> = [];
    for (const t of types) {
      const entry: Record<string, unknown> = {
        name: t.plural,
        singularName: t.singular,
        namespaced: t.namespaced,
        kind: t.kind,
        verbs: t.verbs,
      };
      if (t.shortNames.length > 0) entry.shortNames = t.shortNames;
      if (t.categories.length > 0) entry.categories = t.categories;
      entry.storageVersionHash = Buffer.from(`${t.group}/${t.plural}`).toString('base64').slice(0, 11);
      resources.push(entry);
      for (const sub of t.subresources) {
        const verbs = sub === 'log' ? ['get'] : sub === 'exec' ? ['create', 'get'] : ['get', 'patch', 'update'];
        const kind = sub === 'scale' ? 'Scale' : sub === 'exec' ? 'PodExecOptions' : t.kind;
        resources.push({ name: `${t.plural}/${sub}`, singularName: '', namespaced: t.namespaced, kind, verbs, ...(sub === 'scale' ? { group: 'autoscaling', version: 'v1' } : {}) });
      }
    }
    return { kind: 'APIResourceList', apiVersion: 'v1', groupVersion: group ? `${group}/${version}` : version, resources };
  }

  /** The OpenAPI v3 document of one group version: every path with its PATCH advertising `fieldValidation`. */
  openApiV3(group: string, version: string): Record<string, unknown> | undefined {
    const types = [...this.types.values()].filter((t) => t.group === group && t.versions.includes(version));
    if (types.length === 0) return undefined;
    const prefix = group ? `/apis/${group}/${version}` : `/api/${version}`;
    const paths: Record<string, unknown> = {};
    const schemas: Record<string, unknown> = {};
    const params = [
      { name: 'dryRun', in: 'query', schema: { type: 'string', uniqueItems: true } },
      { name: 'fieldManager', in: 'query', schema: { type: 'string', uniqueItems: true } },
      { name: 'fieldValidation', in: 'query', schema: { type: 'string', uniqueItems: true } },
      { name: 'force', in: 'query', schema: { type: 'boolean', uniqueItems: true } },
    ];
    for (const t of types) {
      const schemaName = `${reverseDomain(t.group || 'io.k8s.api.core')}.${version}.${t.kind}`;
      const custom = t.custom?.schemas[version];
      schemas[schemaName] = {
        ...(custom ?? { type: 'object', 'x-kubernetes-preserve-unknown-fields': true }),
        'x-kubernetes-group-version-kind': [{ group: t.group, version, kind: t.kind }],
      };
      const gvk = { group: t.group, version, kind: t.kind };
      const ref = { $ref: `#/components/schemas/${schemaName}` };
      const body = { content: { '*/*': { schema: ref } } };
      const op = (action: string, extra: object = {}): object => ({
        operationId: `${action}${t.kind}`,
        parameters: action === 'patch' || action === 'create' || action === 'replace' ? params : [],
        responses: { '200': { description: 'OK', content: { 'application/json': { schema: ref } } } },
        'x-kubernetes-action': action,
        'x-kubernetes-group-version-kind': gvk,
        ...extra,
      });
      const item = t.namespaced ? `${prefix}/namespaces/{namespace}/${t.plural}/{name}` : `${prefix}/${t.plural}/{name}`;
      const collection = t.namespaced ? `${prefix}/namespaces/{namespace}/${t.plural}` : `${prefix}/${t.plural}`;
      paths[collection] = { get: op('list'), post: op('post', { requestBody: body }) };
      paths[item] = { get: op('get'), put: op('put', { requestBody: body }), patch: op('patch', { requestBody: body }), delete: op('delete') };
    }
    return {
      openapi: '3.0.0',
      info: { title: 'Kubernetes', version: 'unversioned' },
      paths,
      components: { schemas },
    };
  }
}

function reverseDomain(group: string): string {
  return group.includes('.') ? group.split('.').reverse().join('.') : group;
}
