/**
 * Snapshots: what the pure planners need to know about a cluster, read from it in one go (reads only, in
 * parallel). Also the cluster's federation identity, which meshfed stores in the cluster itself the first time
 * it acts there, so that two people who name their kubeconfig contexts differently still agree on it.
 */
import YAML from 'yaml';
import { ClusterError, InputError, UsageError } from '../errors.js';
import {
  bindingLabel, DEFAULT_GATEWAY_NAMESPACE, exportLabel, FEDERATION_CA_NAMESPACE, FEDERATION_PORT, GATEWAY_NAMES, importLabel, isDnsLabel, LABELS, MANAGED_BY, MANAGED_BY_LABEL,
  MANAGED_KINDS, coverOf, serviceExportTo, type ExistingGateway, type KindHolds, type GatewayRole, type PodSnapshot, type ProviderSnapshot, type ServicePort,
  type ServiceSnapshot,
} from '../federation/index.js';
import type { MeshFacts } from '../federation/checks/index.js';
import type { ClusterWriter } from './apply.js';
import { istioVersionFromImage } from './probe.js';
import type { KubeObject } from './resources.js';

/** Name of the ConfigMap (in {@link IDENTITY_NAMESPACE}) that holds a cluster's federation id. */
export const IDENTITY_CONFIGMAP = 'meshfed-cluster';
/** Namespace of the identity ConfigMap: meshfed's own namespace, whatever gateway a command uses. */
export const IDENTITY_NAMESPACE = DEFAULT_GATEWAY_NAMESPACE;
/** Value of the `meshfed.io/role` label of the identity ConfigMap. */
export const IDENTITY_ROLE = 'cluster-identity';

/** A cluster's federation id and where it comes from. */
export interface ClusterIdentity {
  clusterId: string;
  /** True when the id is already stored in the cluster; false when this run would store it. */
  stored: boolean;
  /** Objects that store the id (Namespace and ConfigMap) when it is not stored yet; empty otherwise. */
  objects: KubeObject[];
}

/**
 * A DNS-label form of a kubeconfig context name (`arn:aws:eks:eu-west-1:1234:cluster/Prod` →
 * `arn-aws-eks-eu-west-1-1234-cluster-prod`): the default cluster id the first time meshfed acts in a cluster.
 */
export function clusterIdFromContext(contextName: string): string {
  const cleaned = contextName.toLowerCase().replace(/[^a-z0-9-]+/g, '-').replace(/-+/g, '-').replace(/^-+|-+$/g, '');
  const cut = cleaned.length > 63 ? cleaned.slice(cleaned.length - 63).replace(/^-+/, '') : cleaned;
  return cut || 'cluster';
}

/** The identity ConfigMap (and its namespace) that stores `clusterId`. */
export function identityObjects(clusterId: string): KubeObject[] {
  return [
    { apiVersion: 'v1', kind: 'Namespace', metadata: { name: IDENTITY_NAMESPACE, labels: { [MANAGED_BY_LABEL]: MANAGED_BY } } },
    {
      apiVersion: 'v1', kind: 'ConfigMap',
      metadata: { name: IDENTITY_CONFIGMAP, namespace: IDENTITY_NAMESPACE, labels: { [MANAGED_BY_LABEL]: MANAGED_BY, [LABELS.role]: IDENTITY_ROLE } },
      data: { clusterId },
    },
  ];
}

/**
 * Reads the cluster id stored in the cluster; when there is none, the id to store: `--cluster-id` if given, else
 * {@link clusterIdFromContext}. A stored id is never replaced: a different `--cluster-id` is a usage error.
 */
export async function readClusterIdentity(writer: ClusterWriter, override?: string, managed?: Promise<KubeObject[]>): Promise<ClusterIdentity> {
  // The identity ConfigMap carries meshfed's label: the list of its objects, when read anyway, already holds it.
  const stored = managed
    ? (await managed).find((o) => o.kind === 'ConfigMap' && o.metadata.namespace === IDENTITY_NAMESPACE && o.metadata.name === IDENTITY_CONFIGMAP)
    : await writer.get('v1', 'ConfigMap', IDENTITY_NAMESPACE, IDENTITY_CONFIGMAP);
  const storedId = (stored?.data as Record<string, string> | undefined)?.clusterId;
  if (stored && storedId) {
    if (override !== undefined && override !== storedId) {
      throw new UsageError(`context "${writer.contextName}" is federation cluster "${storedId}" (ConfigMap ${IDENTITY_NAMESPACE}/${IDENTITY_CONFIGMAP}); --cluster-id "${override}" cannot rename it`, {
        hint: 'omit --cluster-id: a cluster id is chosen once, because other clusters know this one by it',
      });
    }
    return { clusterId: storedId, stored: true, objects: [] };
  }
  const clusterId = override ?? clusterIdFromContext(writer.contextName);
  if (!isDnsLabel(clusterId)) {
    throw new UsageError(`cluster id "${clusterId}" is not a DNS-1123 label (--cluster-id)`, { hint: 'use at most 63 lower-case letters, digits and "-"' });
  }
  return { clusterId, stored: false, objects: identityObjects(clusterId) };
}

/** What to read for a snapshot. */
export interface GatherOptions {
  /** Namespaces whose Services, pods and (non-meshfed) VirtualServices the plan refers to. */
  namespaces: string[];
  /** `--cluster-id`, used only if the cluster has no id yet. */
  clusterIdOverride?: string;
  /** Namespace of istiod and the mesh config; default `istio-system`. */
  istioNamespace?: string;
  /** Use this existing gateway (`--gateway-selector`) instead of deploying one. */
  gatewaySelector?: Record<string, string>;
  /** Namespace of the existing gateway; default the Istio namespace. */
  gatewayNamespace?: string;
  /** Which meshfed gateway's external address to read (provider side). */
  addressOf?: GatewayRole;
  /** Istio is not required (status on a cluster without Istio). Default false. */
  istioOptional?: boolean;
  /** Fail (before anything is written) when one of `namespaces` does not exist. Default false. */
  requireNamespaces?: boolean;
  /** Read only the objects of one export or import and the shared ones (see {@link ReadScope}); default everything. */
  scope?: ReadScope;
  /** Which Secrets' data to read (see {@link ManagedReadOptions}); default every Secret read. */
  secretData?: (secret: KubeObject) => boolean;
  /** Read on without the Secrets of a namespace the user may not list them in (see {@link ManagedReadOptions}). */
  secretsOptional?: boolean;
  /**
   * Read what `status` shows and no more (see {@link readOverview}): meshfed's ConfigMaps, its gateways' Services and
   * the other objects an import needs as metadata only; no user objects. Default false.
   */
  overview?: boolean;
}

/** A snapshot with the facts the command layer needs besides it. */
export interface GatheredCluster {
  context: string;
  identity: ClusterIdentity;
  snapshot: ProviderSnapshot;
}

interface Deployment extends KubeObject {
  spec?: { template?: { spec?: { containers?: Array<{ name: string; image?: string; env?: Array<{ name: string; value?: string }> }> } } };
}

/** The external address of a gateway Service (LoadBalancer ingress IP or host name), if it has one. */
export function serviceAddress(service: KubeObject | undefined): string | undefined {
  const ingress = (service?.status as { loadBalancer?: { ingress?: Array<{ ip?: string; hostname?: string }> } } | undefined)?.loadBalancer?.ingress?.[0];
  return ingress?.ip || ingress?.hostname || undefined;
}

function serviceSnapshot(object: KubeObject): ServiceSnapshot {
  const spec = (object.spec ?? {}) as { ports?: ServicePort[]; selector?: Record<string, string> };
  return {
    name: object.metadata.name,
    namespace: object.metadata.namespace ?? '',
    ports: (spec.ports ?? []).map((p) => ({
      port: p.port,
      ...(p.name ? { name: p.name } : {}),
      ...(p.targetPort !== undefined ? { targetPort: p.targetPort } : {}),
      ...(p.protocol ? { protocol: p.protocol } : {}),
      ...(p.appProtocol ? { appProtocol: p.appProtocol } : {}),
    })),
    ...(spec.selector ? { selector: spec.selector } : {}),
    ...(object.metadata.labels ? { labels: object.metadata.labels } : {}),
    ...(serviceExportTo(object) ? { exportTo: serviceExportTo(object)! } : {}),
  };
}

function podSnapshot(object: KubeObject): PodSnapshot {
  const spec = (object.spec ?? {}) as { serviceAccountName?: string; containers?: Array<{ name: string }>; initContainers?: Array<{ name: string }> };
  const status = (object.status ?? {}) as { phase?: string; conditions?: Array<{ type: string; status: string }> };
  const ready = status.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? status.phase === 'Running';
  const sidecar = [...(spec.containers ?? []), ...(spec.initContainers ?? [])].some((c) => c.name === 'istio-proxy');
  return {
    name: object.metadata.name,
    namespace: object.metadata.namespace ?? '',
    labels: object.metadata.labels ?? {},
    ready,
    serviceAccount: spec.serviceAccountName ?? 'default',
    sidecar,
  };
}

/**
 * The result of `read`, or `fallback` when the server answers 404: the object does not exist, or the cluster does
 * not serve its kind (Istio not installed, an older Istio without that CRD).
 */
export async function optional<T>(read: Promise<T>, fallback: T): Promise<T> {
  try {
    return await read;
  } catch (error) {
    if (error instanceof ClusterError && error.status === 404) return fallback;
    throw error;
  }
}

/**
 * The namespaces where meshfed keeps Secrets: its own (gateways, records, cluster identity), the federation CA's,
 * and every namespace where it placed a gateway, a record or a service account (an existing gateway's namespace
 * with `--gateway-selector`; a CA copy left beside a gateway by an earlier version). Never the applications'.
 */
export function secretNamespaces(managed: readonly KubeObject[]): string[] {
  const homes = managed.filter((o) => ['Gateway', 'ConfigMap', 'ServiceAccount', 'Deployment'].includes(o.kind) && o.metadata.namespace).map((o) => o.metadata.namespace!);
  return [...new Set([DEFAULT_GATEWAY_NAMESPACE, FEDERATION_CA_NAMESPACE, ...homes])].sort();
}

/**
 * Which of meshfed's objects a command reads. Without a scope, every object meshfed manages; with one, the objects of
 * one export or import (by the labels that name it), the shared ones (no export, import or binding label: gateways,
 * the federation CA, the cluster identity, the egress routes, subsets), and the other records the shared objects are
 * recomputed from: the exports that have a part in them ({@link LABELS.shares}), every import (the egress routes).
 */
export interface ReadScope {
  /** Labels naming the command's objects, each read by its own selector (an import's: its import and binding labels). */
  own: Array<{ key: string; value: string }>;
  /**
   * The label selector of the other records the planner recomputes shared objects from (its own come with its
   * objects); none: the shared objects that depend on every record are recomputed from what the cluster holds.
   */
  records?: string;
}

/** The read scope of one export (provider side: export, admit, revoke, the provider half of `import --from`). */
export function exportScope(namespace: string, exportName: string): ReadScope {
  // The exports with a part in shared objects; a record written before the label says nothing, and is read too.
  return { own: [{ key: LABELS.export, value: exportLabel(namespace, exportName) }], records: `${LABELS.role}=export-record,${LABELS.shares}!=false` };
}

/** The read scope of one import and its binding (the objects it shares with other imports of the same export). */
export function importScope(namespace: string, localName: string, binding?: { providerClusterId: string; namespace: string; exportName: string }): ReadScope {
  return {
    own: [
      { key: LABELS.import, value: importLabel(namespace, localName) },
      ...(binding ? [{ key: LABELS.binding, value: bindingLabel(binding.providerClusterId, binding.namespace, binding.exportName) }] : []),
    ],
    // The egress routes, shared by every import, keep what the cluster holds for the others (partialImportRecords).
  };
}

/** Options of {@link managedObjects}. */
export interface ManagedReadOptions {
  scope?: ReadScope;
  /**
   * Which Secrets' data to read (each by name: Secrets are listed as metadata only); default every Secret. Those left
   * out stay metadata only in the result (names, labels, annotations).
   */
  secretData?: (secret: KubeObject) => boolean;
  /**
   * A user who may not list Secrets in a namespace (the viewer role, which reads no Secret) reads on without them: the
   * namespace is reported in `unreadableSecrets`. Default false: such a refusal is an error.
   */
  secretsOptional?: boolean;
}

/** What {@link readManaged} read. */
export interface ManagedRead {
  objects: KubeObject[];
  /** False when the read fell back to everything (see {@link managedObjects}). */
  scoped: boolean;
  /** Namespaces whose Secrets the user may not list (with `secretsOptional`). */
  unreadableSecrets: string[];
}

const MANAGED_SELECTOR = `${MANAGED_BY_LABEL}=${MANAGED_BY}`;
/** Objects meshfed does not manage (the user's), which meshfed's own must agree with. */
const NOT_MANAGED_SELECTOR = `${MANAGED_BY_LABEL}!=${MANAGED_BY}`;
/** Objects that belong to no one export, import or binding. */
const SHARED_SELECTOR = `${MANAGED_SELECTOR},!${LABELS.export},!${LABELS.import},!${LABELS.binding}`;

/**
 * Every object meshfed manages in the cluster, or those of a {@link ReadScope} (kinds the cluster does not serve are
 * skipped): each kind listed by meshfed's label across namespaces, except Secrets, which are listed as metadata only
 * and only in {@link secretNamespaces}, so that meshfed never reads Secrets cluster-wide, then read one by one by name
 * where their data is needed (`secretData`). The federation CA's namespace exists on providers only: a consumer's
 * user, who has no business there, may be refused it (then it holds nothing of the consumer's); a provider's user who
 * may not read it may not write it either, which the preflight says.
 *
 * A scoped read falls back to reading everything when a record or a Gateway of meshfed's lies outside its own
 * namespace (an existing gateway chosen by `--gateway-selector`, or objects left behind by a gateway move): the
 * planners then look at every export or import served from there.
 */
export async function managedObjects(writer: ClusterWriter, options: ManagedReadOptions = {}): Promise<KubeObject[]> {
  return (await readManaged(writer, options)).objects;
}

/** {@link managedObjects}, whether the read kept to its scope (false: everything was read) and what it could not read. */
export async function readManaged(writer: ClusterWriter, options: ManagedReadOptions): Promise<ManagedRead> {
  const scope = options.scope;
  const own = scope ? scope.own.map(({ key, value }) => `${MANAGED_SELECTOR},${key}=${value}`) : [];
  // Scoped: each kind once per selector it can match (MANAGED_KINDS says which of meshfed's objects a kind holds).
  const selectorsOf = (holds: KindHolds): string[] => !scope ? [MANAGED_SELECTOR]
    : holds === 'shared' ? [SHARED_SELECTOR] : holds === 'own' ? own : [SHARED_SELECTOR, ...own];
  const kinds = MANAGED_KINDS.filter(({ kind }) => kind !== 'Secret');
  // Awaited together with the lists: a refused list must not leave the probe's own refusal unhandled.
  const [elsewhere, listed] = await Promise.all([
    scope ? placedElsewhere(writer) : false,
    Promise.all([
      ...kinds.flatMap(({ apiVersion, kind, holds }) => selectorsOf(holds).map((selector) => optional(writer.list(apiVersion, kind, undefined, selector), [] as KubeObject[]))),
      ...(scope?.records ? [writer.list('v1', 'ConfigMap', undefined, `${MANAGED_SELECTOR},${scope.records}`)] : []),
    ]),
  ]);
  const objects = distinct(listed.flat());
  if (elsewhere) return readManaged(writer, { ...options, scope: undefined });
  // The federation CA's namespace holds the CA's Secret alone, which is shared.
  const { secrets, unreadableSecrets } = await listSecretMetadata(writer, secretNamespaces(objects),
    (ns) => selectorsOf(ns === FEDERATION_CA_NAMESPACE ? 'shared' : 'both'), options.secretsOptional);
  const wanted = options.secretData ?? (() => true);
  const read = await Promise.all(secrets.map(async (secret) => {
    if (!wanted(secret)) return secret;
    // Deleted since it was listed: gone from the snapshot too.
    const full = await writer.get('v1', 'Secret', secret.metadata.namespace, secret.metadata.name);
    return full ? { ...full, apiVersion: 'v1', kind: 'Secret' } : undefined;
  }));
  return {
    objects: [...objects, ...read.filter((o): o is KubeObject => o !== undefined)],
    scoped: scope !== undefined,
    unreadableSecrets,
  };
}

/** The kinds of an import's objects whose existence `status` shows (importState), read as metadata only. */
const OVERVIEW_METADATA_KINDS = MANAGED_KINDS.filter(({ kind }) => ['Service', 'ServiceEntry', 'DestinationRule', 'Gateway', 'VirtualService'].includes(kind));

/**
 * What `status` reads of meshfed's objects, no more than it shows: every ConfigMap with its data (records, the
 * certificates published beside the Secrets, the published import requests, the cluster identity), the Services that
 * belong to no export or import with their content (the gateways', whose address it shows), the Gateways placed outside
 * meshfed's namespace with their content (they select the existing gateway whose address it shows), and as metadata
 * only (names, labels and annotations) the bindings' Secrets and the objects whose existence tells whether an import is
 * complete. meshfed's Namespaces, accounts, Roles, Deployments and policies, an export's objects other than its
 * records and published certificates, and the federation CA's Secrets, which it does not show, are not read.
 */
async function readOverview(writer: ClusterWriter, options: ManagedReadOptions): Promise<ManagedRead> {
  const [configMaps, gatewayServices, placed, ...existence] = await Promise.all([
    writer.list('v1', 'ConfigMap', undefined, MANAGED_SELECTOR),
    writer.list('v1', 'Service', undefined, SHARED_SELECTOR),
    optional(writer.list('networking.istio.io/v1beta1', 'Gateway', undefined, MANAGED_SELECTOR, { fieldSelector: `metadata.namespace!=${DEFAULT_GATEWAY_NAMESPACE}` }), [] as KubeObject[]),
    // An export's objects (its Gateway, routes and policy) tell nothing status shows: not listed.
    ...OVERVIEW_METADATA_KINDS.map(({ apiVersion, kind }) => optional(writer.listMetadata(apiVersion, kind, undefined, `${MANAGED_SELECTOR},!${LABELS.export}`), [] as KubeObject[])),
  ]);
  // Content first: an object also listed as metadata is kept with its content.
  const objects = distinct([...configMaps, ...gatewayServices, ...placed, ...existence.flat()]);
  // The bindings' Secrets (an import's client certificate, a pending request's key); not the federation CA's, nor the
  // exports' certificates, whose published copies status reads.
  const { secrets, unreadableSecrets } = await listSecretMetadata(writer, secretNamespaces(objects).filter((ns) => ns !== FEDERATION_CA_NAMESPACE),
    () => [`${MANAGED_SELECTOR},${LABELS.binding}`], options.secretsOptional);
  return { objects: [...objects, ...secrets], scoped: false, unreadableSecrets };
}

/**
 * meshfed's Secrets in `namespaces` as metadata only, by the selectors `selectorsOf` gives each namespace. The
 * federation CA's namespace holds no gateway's certificate: a user refused it (a consumer's, the viewer) reads on;
 * with `optional`, also a user refused another namespace (the viewer role), which `unreadableSecrets` then names.
 */
async function listSecretMetadata(
  writer: ClusterWriter, namespaces: string[], selectorsOf: (namespace: string) => string[], optionalSecrets: boolean | undefined,
): Promise<{ secrets: KubeObject[]; unreadableSecrets: string[] }> {
  const unreadableSecrets = new Set<string>();
  const secrets = await Promise.all(namespaces.flatMap((ns) => selectorsOf(ns).map((selector) =>
    optional(writer.listMetadata('v1', 'Secret', ns, selector), [] as KubeObject[]).catch((error: unknown) => {
      if (error instanceof ClusterError && error.status === 403 && (ns === FEDERATION_CA_NAMESPACE || optionalSecrets)) {
        // The CA's namespace holds no gateway's certificate (whoever may only look reads its published certificates).
        if (ns !== FEDERATION_CA_NAMESPACE) unreadableSecrets.add(ns);
        return [] as KubeObject[];
      }
      throw error;
    }))));
  return { secrets: distinct(secrets.flat()), unreadableSecrets: [...unreadableSecrets].sort() };
}

/**
 * Whether meshfed keeps records or Gateways outside its own namespace: exports or imports on an existing gateway
 * (`--gateway-selector`), or left behind by a gateway move. One item of each is enough to tell.
 */
async function placedElsewhere(writer: ClusterWriter): Promise<boolean> {
  const elsewhere = { fieldSelector: `metadata.namespace!=${DEFAULT_GATEWAY_NAMESPACE}`, limit: 1 };
  const found = await Promise.all([
    writer.list('v1', 'ConfigMap', undefined, `${MANAGED_SELECTOR},${LABELS.role} in (export-record,import-record)`, elsewhere),
    optional(writer.list('networking.istio.io/v1beta1', 'Gateway', undefined, MANAGED_SELECTOR, elsewhere), [] as KubeObject[]),
  ]);
  return found.some((items) => items.length > 0);
}

/** Objects listed by more than one selector, once. */
function distinct(objects: KubeObject[]): KubeObject[] {
  const seen = new Set<string>();
  return objects.filter((o) => {
    const key = `${o.apiVersion}/${o.kind}/${o.metadata.namespace ?? ''}/${o.metadata.name}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

/**
 * Every Istio Gateway in the cluster, whoever manages it: another's passthrough server on a gateway meshfed uses
 * decides whether meshfed adds one (two covering one service make Envoy reject the listener), and `verify` reports
 * Gateways that share a federation gateway (MF0225, MF0226). A user who may not list them cluster-wide, or a cluster
 * without Istio's CRDs, gets none: the checks then say what they could not see.
 */
export async function listGateways(writer: ClusterWriter): Promise<KubeObject[]> {
  try {
    // meshfed's own Gateways come with its objects (managedObjects).
    return await writer.list('networking.istio.io/v1beta1', 'Gateway', undefined, NOT_MANAGED_SELECTOR);
  } catch (error) {
    if (error instanceof ClusterError && (error.status === 403 || error.status === 404)) return [];
    throw error;
  }
}

function selectorMatches(selector: Record<string, string> | undefined, labels: Record<string, string>): boolean {
  return !!selector && Object.keys(selector).length > 0 && Object.entries(selector).every(([k, v]) => labels[k] === v);
}

/** What the Istio namespace of a cluster says about its mesh. */
export interface MeshReading {
  /** The facts as the checks see them; `problem` says what is missing or unreadable. */
  facts: MeshFacts;
  /** An istiod Deployment was found. */
  istiod: boolean;
  /** The image of istiod's discovery container, when found. */
  image?: string;
  /** The mesh config (ConfigMap istio, key `mesh`) exists but is not valid YAML. */
  invalidMeshConfig: boolean;
}

/**
 * Istio version (from istiod's image, else its operator label), trust domain, aliases and root namespace (mesh
 * config) and root CA of the mesh whose istiod runs in `istioNamespace`. What is absent is reported, not thrown:
 * each command decides whether it can do without it.
 */
export async function readMesh(writer: ClusterWriter, istioNamespace: string): Promise<MeshReading> {
  const [istiods, mesh, root] = await Promise.all([
    optional(writer.list('apps/v1', 'Deployment', istioNamespace, 'app=istiod'), [] as KubeObject[]),
    optional(writer.get('v1', 'ConfigMap', istioNamespace, 'istio'), undefined),
    optional(writer.get('v1', 'ConfigMap', istioNamespace, 'istio-ca-root-cert'), undefined),
  ]);
  const facts: MeshFacts = { trustDomain: 'cluster.local', trustDomainAliases: [] };
  const istiod = (istiods as Deployment[]).find((d) => d.metadata.name === 'istiod') ?? (istiods as Deployment[])[0];
  const containers = istiod?.spec?.template?.spec?.containers ?? [];
  const discovery = containers.find((c) => c.name === 'discovery') ?? containers[0];
  const image = discovery?.image;
  // Go's strconv.ParseBool, as istiod reads it.
  const skip = discovery?.env?.find((e) => e.name === 'PILOT_SKIP_VALIDATE_TRUST_DOMAIN')?.value;
  if (skip !== undefined && ['1', 't', 'T', 'true', 'TRUE', 'True'].includes(skip)) facts.skipValidateTrustDomain = true;
  const version = istioVersionFromImage(image) ?? istiod?.metadata.labels?.['operator.istio.io/version'];
  if (version) facts.istioVersion = version;
  else facts.problem = istiod ? `cannot tell the Istio version from istiod's image "${image ?? ''}"` : `no istiod Deployment in namespace "${istioNamespace}"`;
  let invalidMeshConfig = false;
  const text = (mesh?.data as Record<string, string> | undefined)?.mesh;
  if (text) {
    try {
      const config = YAML.parse(text) as { trustDomain?: string; trustDomainAliases?: string[]; rootNamespace?: string; defaultServiceExportTo?: string[] } | null;
      facts.trustDomain = config?.trustDomain || 'cluster.local';
      if (Array.isArray(config?.defaultServiceExportTo)) facts.defaultServiceExportTo = config.defaultServiceExportTo.map(String);
      if (config?.rootNamespace) facts.rootNamespace = config.rootNamespace;
      if (Array.isArray(config?.trustDomainAliases)) facts.trustDomainAliases = config.trustDomainAliases;
    } catch {
      invalidMeshConfig = true;
      facts.problem = `the mesh config (ConfigMap ${istioNamespace}/istio) is not valid YAML`;
    }
  }
  const rootPem = (root?.data as Record<string, string> | undefined)?.['root-cert.pem'];
  if (rootPem) facts.rootCaPem = rootPem;
  return { facts, istiod: istiod !== undefined, ...(image !== undefined ? { image } : {}), invalidMeshConfig };
}

/**
 * Fails when one of `namespaces` does not exist (an import goes into a namespace where the calling apps run).
 * @throws InputError naming the namespace
 */
export async function requireNamespaces(writer: ClusterWriter, namespaces: string[]): Promise<void> {
  const found = await Promise.all(namespaces.map((ns) => writer.get('v1', 'Namespace', undefined, ns)));
  const missing = namespaces.find((_, i) => !found[i]);
  if (missing !== undefined) {
    throw new InputError(`namespace "${missing}" does not exist in context "${writer.contextName}" (-n)`, {
      hint: 'import into a namespace where the calling apps run (with sidecar injection)',
    });
  }
}

/**
 * Reads one cluster for the planners: its id, Istio version, trust domain and root CA, the Services and pods of
 * the given namespaces, every object meshfed manages there (any namespace), the VirtualServices of the given
 * namespaces, and the external address of a meshfed gateway. Only reads.
 * @throws ClusterError when the cluster cannot be read or does not run Istio (unless `istioOptional`)
 */
export async function gatherCluster(writer: ClusterWriter, options: GatherOptions): Promise<GatheredCluster> {
  const istioNamespace = options.istioNamespace ?? 'istio-system';
  const meshP = readMesh(writer, istioNamespace);
  const scope = options.scope && !options.gatewaySelector ? options.scope : undefined;
  const readP = options.overview ? readOverview(writer, { ...(options.secretsOptional ? { secretsOptional: true } : {}) }) : readManaged(writer, {
    ...(scope ? { scope } : {}), ...(options.secretData ? { secretData: options.secretData } : {}), ...(options.secretsOptional ? { secretsOptional: true } : {}),
  });
  const managedP = readP.then((read) => read.objects);
  const identityP = readClusterIdentity(writer, options.clusterIdOverride, managedP);
  const namespaces = [...new Set(options.namespaces)];
  const perNamespaceP = Promise.all(namespaces.map(async (ns) => {
    if (options.requireNamespaces) await requireNamespaces(writer, [ns]);
    const [services, pods, virtualServices, sidecars] = await Promise.all([
      // meshfed's own Services and VirtualServices (an import's) come with its objects, the command's only when scoped.
      writer.list('v1', 'Service', ns, options.scope ? NOT_MANAGED_SELECTOR : undefined),
      writer.list('v1', 'Pod', ns),
      optional(writer.list('networking.istio.io/v1beta1', 'VirtualService', ns, NOT_MANAGED_SELECTOR), [] as KubeObject[]),
      // Sidecar resources scope what the namespace's workloads reach (an import's objects included).
      optional(writer.list('networking.istio.io/v1beta1', 'Sidecar', ns), [] as KubeObject[]),
    ]);
    return { services, pods, virtualServices: [...virtualServices, ...sidecars] };
  }));
  const gatewayNamespace = options.gatewayNamespace ?? istioNamespace;
  const existingGatewayP: Promise<ExistingGateway | undefined> = options.gatewaySelector
    ? findExistingGateway(writer, gatewayNamespace, options.gatewaySelector)
    : // Without --gateway-selector, the gateway earlier exports and imports were placed on, if any.
    managedP.then((objects) => {
      const used = existingGatewayInUse(objects);
      return used ? findExistingGateway(writer, used.namespace, used.selector) : undefined;
    });

  // The user's DestinationRules: meshfed's own rule for a Service carries its owner's (Istio never merges the two).
  // (status plans nothing: it reads none of the user's objects.)
  const none = Promise.resolve([] as KubeObject[]);
  const destinationRulesP = options.overview ? none : optional(writer.list('networking.istio.io/v1beta1', 'DestinationRule', undefined, NOT_MANAGED_SELECTOR), [] as KubeObject[]);
  // Gateways meshfed does not manage, in every namespace (see listGateways).
  const gatewaysP = options.overview ? none : listGateways(writer);
  // The mesh root namespace's selector-less Sidecar applies to every namespace without one of its own.
  const rootSidecarsP = options.overview ? none : meshP.then((m) => optional(writer.list('networking.istio.io/v1beta1', 'Sidecar', m.facts.rootNamespace ?? istioNamespace), [] as KubeObject[]));
  const [identity, mesh, read, perNamespace, existingGateway, destinationRules, gateways, rootSidecars] = await Promise.all([
    identityP, meshP, readP, perNamespaceP, existingGatewayP, destinationRulesP, gatewaysP, rootSidecarsP,
  ]);
  const managed = read.objects;

  const { facts } = mesh;
  if (!facts.istioVersion && !options.istioOptional) {
    throw new ClusterError(
      mesh.istiod
        ? `cannot tell the Istio version of context "${writer.contextName}" from istiod's image "${mesh.image ?? ''}"`
        : `context "${writer.contextName}" runs no istiod in namespace "${istioNamespace}"; meshfed federates Istio meshes`,
      { hint: mesh.istiod ? undefined : 'install Istio there, or pass --istio-namespace if istiod runs elsewhere' },
    );
  }
  if (mesh.invalidMeshConfig) {
    throw new InputError(`the mesh config (ConfigMap ${istioNamespace}/istio, key "mesh") of context "${writer.contextName}" is not valid YAML`, {
      hint: `istiod cannot read it either: fix it (kubectl --context ${writer.contextName} -n ${istioNamespace} edit configmap istio) or reinstall Istio`,
    });
  }

  const existing = managed;
  const seen = new Set(existing.map((o) => `${o.kind}/${o.metadata.namespace ?? ''}/${o.metadata.name}`));
  for (const { virtualServices } of perNamespace) {
    for (const vs of virtualServices) {
      const key = `${vs.kind}/${vs.metadata.namespace ?? ''}/${vs.metadata.name}`;
      if (!seen.has(key)) {
        seen.add(key);
        existing.push(vs);
      }
    }
  }
  for (const dr of destinationRules) {
    const key = `${dr.kind}/${dr.metadata.namespace ?? ''}/${dr.metadata.name}`;
    if (!seen.has(key)) {
      seen.add(key);
      existing.push(dr);
    }
  }
  for (const gateway of [...gateways, ...rootSidecars]) {
    const key = `${gateway.kind}/${gateway.metadata.namespace ?? ''}/${gateway.metadata.name}`;
    if (!seen.has(key)) {
      seen.add(key);
      existing.push({ ...gateway, apiVersion: 'networking.istio.io/v1beta1' });
    }
  }
  const services = perNamespace.flatMap((n) => n.services).map(serviceSnapshot);
  const pods = perNamespace.flatMap((n) => n.pods).map(podSnapshot);

  const gatewayAddress = options.addressOf || existingGateway
    ? await readGatewayAddress(writer, { existing, ...(existingGateway ? { existingGateway } : {}) }, options.addressOf ?? 'ingress')
    : undefined;

  const snapshot: ProviderSnapshot = {
    clusterId: identity.clusterId,
    istioVersion: facts.istioVersion ?? '0.0',
    trustDomain: facts.trustDomain,
    ...(facts.trustDomainAliases.length ? { trustDomainAliases: facts.trustDomainAliases } : {}),
    rootNamespace: facts.rootNamespace ?? istioNamespace,
    ...(facts.skipValidateTrustDomain ? { skipValidateTrustDomain: true } : {}),
    ...(facts.defaultServiceExportTo ? { defaultServiceExportTo: facts.defaultServiceExportTo } : {}),
    ...(facts.rootCaPem ? { rootCaPem: facts.rootCaPem } : {}),
    ...(existingGateway ? { existingGateway } : {}),
    services,
    pods,
    existing,
    ...(gatewayAddress ? { gatewayAddress } : {}),
    ...(read.scoped && scope?.records === undefined ? { partialImportRecords: true } : {}),
    ...(read.unreadableSecrets.length ? { unreadableSecrets: read.unreadableSecrets } : {}),
  };
  return { context: writer.contextName, identity, snapshot };
}

/**
 * The external address of the gateway of a role in a gathered cluster: the `--gateway-selector` gateway's Service
 * if one was chosen, else meshfed's gateway Service of that role (deployed by meshfed, or installed from the
 * IstioOperator overlay on Istio < 1.12, in which case it is not labelled as meshfed's and is read by name).
 */
export async function readGatewayAddress(
  writer: ClusterWriter, snapshot: Pick<ProviderSnapshot, 'existing' | 'existingGateway'>, role: GatewayRole,
): Promise<string | undefined> {
  if (snapshot.existingGateway) {
    return serviceAddress(await optional(writer.get('v1', 'Service', snapshot.existingGateway.namespace, snapshot.existingGateway.serviceName), undefined));
  }
  const name = GATEWAY_NAMES[role];
  const live = snapshot.existing.find((o) => o.kind === 'Service' && o.metadata.name === name && o.metadata.namespace === DEFAULT_GATEWAY_NAMESPACE);
  if (live) return serviceAddress(live as KubeObject);
  return serviceAddress(await optional(writer.get('v1', 'Service', DEFAULT_GATEWAY_NAMESPACE, name), undefined));
}

/**
 * The existing gateway meshfed's objects were placed on by an earlier `--gateway-selector`: meshfed's own Gateway
 * objects live in its namespace, so a meshfed Gateway elsewhere selects an existing gateway there. Later commands
 * (import and admit on the provider, status, revoke, unexport, a re-run) then find it without the flag. Undefined
 * when there is none, or when objects sit on several or also on meshfed's own gateways (the flag must then say which).
 */
export function existingGatewayInUse(managed: KubeObject[]): { namespace: string; selector: Record<string, string> } | undefined {
  const placements = new Map<string, { namespace: string; selector: Record<string, string> }>();
  for (const o of managed) {
    // A shared-root export served through a passthrough server meshfed does not manage has no Gateway of meshfed's there.
    const cover = o.kind === 'ConfigMap' && o.metadata.labels?.[LABELS.role] === 'export-record' ? coverOf(o) : undefined;
    if (cover && o.metadata.namespace && o.metadata.namespace !== DEFAULT_GATEWAY_NAMESPACE) {
      placements.set(`${o.metadata.namespace}/${Object.entries(cover.selector).sort().map(([k, v]) => `${k}=${v}`).join(',')}`, { namespace: o.metadata.namespace, selector: cover.selector });
    }
    if (o.kind !== 'Gateway' || !o.metadata.namespace) continue;
    // Some objects use meshfed's own gateways: which one a command means is for the flag to say.
    if (o.metadata.namespace === DEFAULT_GATEWAY_NAMESPACE) return undefined;
    const selector = (o.spec as { selector?: Record<string, string> } | undefined)?.selector;
    if (!selector || Object.keys(selector).length === 0) continue;
    const key = `${o.metadata.namespace}/${Object.entries(selector).sort().map(([k, v]) => `${k}=${v}`).join(',')}`;
    placements.set(key, { namespace: o.metadata.namespace, selector });
  }
  return placements.size === 1 ? [...placements.values()][0] : undefined;
}

/**
 * The existing gateway chosen with `--gateway-selector`: its Service in `namespace` is the one whose selector the
 * gateway pods' labels satisfy, and its port is the one that reaches container port 15443.
 */
async function findExistingGateway(writer: ClusterWriter, namespace: string, selector: Record<string, string>): Promise<ExistingGateway> {
  const wanted = Object.entries(selector).map(([k, v]) => `${k}=${v}`).join(',');
  const [services, pods] = await Promise.all([writer.list('v1', 'Service', namespace), writer.list('v1', 'Pod', namespace, wanted)]);
  // The gateway's Service is one that selects the gateway pods (its selector may name other labels of theirs too).
  const matching = services.filter((s) => {
    const spec = s.spec as { selector?: Record<string, string> } | undefined;
    return pods.length > 0
      ? pods.some((pod) => selectorMatches(spec?.selector, pod.metadata.labels ?? {}))
      : selectorMatches(spec?.selector, selector);
  });
  if (matching.length === 0) {
    throw new InputError(`no Service in namespace "${namespace}" of context "${writer.contextName}" selects gateway pods labelled ${wanted} (--gateway-selector)`, {
      hint: 'check the labels of the gateway pods (kubectl get pods --show-labels) and --gateway-namespace',
    });
  }
  const service = matching[0]!;
  const ports = ((service.spec as { ports?: ServicePort[] }).ports ?? []);
  const port = ports.find((p) => p.targetPort === FEDERATION_PORT || p.port === FEDERATION_PORT);
  if (!port) {
    throw new InputError(`gateway Service ${namespace}/${service.metadata.name} has no port reaching ${FEDERATION_PORT}; add one (name tls, port ${FEDERATION_PORT}) to the gateway (--gateway-selector)`);
  }
  return { namespace, selector: { ...selector }, serviceName: service.metadata.name, port: port.port };
}
