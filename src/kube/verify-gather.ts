/**
 * Reading what `verify`'s checks need from both clusters, in parallel and only by reads: the import record, every
 * object meshfed manages, the Services, pods and Namespaces of the namespaces involved, and the mesh facts (Istio
 * version, trust domain and aliases, root CA). An unreachable provider is a finding (MF0102), not an error; an
 * unreachable consumer or a missing import is an error, because there is nothing to verify.
 */
import { ClusterError, InputError } from '../errors.js';
import {
  bindingLabel, exportLabel, exportRefText, FEDERATION_CA_SECRET, importLabel, isDnsLabel, LABELS, MANAGED_BY, MANAGED_BY_LABEL, publishedRequestsIn, type ImportRecord, type PendingRequest,
} from '../federation/index.js';
import type { ProviderSide, SideSnapshot, VerifySnapshot } from '../federation/checks/index.js';
import type { ClusterWriter } from './apply.js';
import { exportScope, IDENTITY_CONFIGMAP, IDENTITY_NAMESPACE, importScope, listGateways, optional, readManaged, readMesh, type ManagedRead } from './gather.js';
import type { KubeObject } from './resources.js';

/** Objects meshfed does not manage (the user's): meshfed's own come with the read scoped to the import or export. */
const NOT_MANAGED = `${MANAGED_BY_LABEL}!=${MANAGED_BY}`;

/**
 * Services, pods and the Namespace object of each namespace. The Services are the user's: meshfed's own (an import's
 * local Service, its gateways') come with the scoped read of its objects, so the other imports' local Services of the
 * namespace are not read.
 */
async function namespaceObjects(writer: ClusterWriter, namespaces: string[]): Promise<KubeObject[]> {
  const lists = await Promise.all([...new Set(namespaces)].map(async (ns) => {
    const [namespace, services, pods] = await Promise.all([
      writer.get('v1', 'Namespace', undefined, ns),
      writer.list('v1', 'Service', ns, NOT_MANAGED),
      writer.list('v1', 'Pod', ns),
    ]);
    return [...(namespace ? [{ ...namespace, apiVersion: 'v1', kind: 'Namespace' }] : []), ...services, ...pods];
  }));
  return lists.flat();
}

/** Objects of `extra` not already in `base` (same kind, namespace and name). */
function merge(base: KubeObject[], extra: KubeObject[]): KubeObject[] {
  const key = (o: KubeObject) => `${o.kind}/${o.metadata.namespace ?? ''}/${o.metadata.name}`;
  const seen = new Set(base.map(key));
  return [...base, ...extra.filter((o) => !seen.has(key(o)))];
}

function parseRecord(object: KubeObject): ImportRecord | undefined {
  try {
    return JSON.parse((object.data as Record<string, string> | undefined)?.['import.json'] ?? '') as ImportRecord;
  } catch {
    return undefined;
  }
}

/**
 * The import records of a consumer cluster (ConfigMaps labelled as meshfed import records, any namespace); with
 * `selector`, those it also selects.
 */
export async function listImports(writer: ClusterWriter, selector?: string): Promise<Array<{ record: ImportRecord; object: KubeObject }>> {
  const objects = await writer.list('v1', 'ConfigMap', undefined, `${MANAGED_BY_LABEL}=${MANAGED_BY},${LABELS.role}=import-record${selector ? `,${selector}` : ''}`);
  return objects.flatMap((object) => {
    const record = parseRecord(object);
    return record ? [{ record, object }] : [];
  });
}

/**
 * The import record of `<namespace>/<localName>`, read by the label that names it (the other imports' records only
 * when there is no such import, for the message).
 * @throws InputError naming the imports that do exist, and the import requests still pending for the namespace, when
 *   there is no such import
 */
export async function findImport(writer: ClusterWriter, namespace: string, localName: string): Promise<{ record: ImportRecord; home: string }> {
  const label = importLabel(namespace, localName);
  const named = await listImports(writer, `${LABELS.import}=${label}`);
  const own = named.find(({ record }) => record.namespace === namespace && record.localName === localName) ?? named[0];
  if (own) return { record: own.record, home: own.object.metadata.namespace ?? 'istio-meshfed' };
  const imports = await listImports(writer);
  const found = imports.find(({ record, object }) => object.metadata.labels?.[LABELS.import] === label || (record.namespace === namespace && record.localName === localName));
  if (!found) {
    const requests = await pendingRequestsFor(writer, namespace, localName);
    if (requests.length) {
      const listed = requests.map((r) => `${exportRefText(r)}${r.expiresAt ? ` (expires ${r.expiresAt.slice(0, 10)})` : ''}`).join(', ');
      throw new InputError(`import "${localName}" does not exist in namespace "${namespace}" of context "${writer.contextName}" yet: an import request for ${listed} is pending`, {
        hint: 'the provider admits the request (kubectl meshfed admit --request <file> --bundle-out bundle.yaml); kubectl meshfed import --bundle bundle.yaml then completes the import, and verify checks it',
      });
    }
    const here = imports.filter(({ record }) => record.namespace === namespace).map(({ record }) => record.localName).sort();
    const elsewhere = imports.filter(({ record }) => record.namespace !== namespace).map(({ record }) => `${record.namespace}/${record.localName}`).sort();
    const known = here.length ? `imports in namespace "${namespace}": ${here.join(', ')}` : `no import in namespace "${namespace}"${elsewhere.length ? `; elsewhere: ${elsewhere.join(', ')}` : ''}`;
    throw new InputError(`import "${localName}" does not exist in namespace "${namespace}" of context "${writer.contextName}" (${known})`, {
      hint: 'check --name and -n, or import the service first: kubectl meshfed import',
    });
  }
  return { record: found.record, home: found.object.metadata.namespace ?? 'istio-meshfed' };
}

/**
 * The import requests pending for `namespace`, as published beside their Secrets (what the viewer role reads): those
 * that import into the namespace and ask for export `exportName`, else every one that imports into the namespace.
 */
async function pendingRequestsFor(writer: ClusterWriter, namespace: string, exportName: string): Promise<PendingRequest[]> {
  const copies = await optional(writer.list('v1', 'ConfigMap', undefined, `${MANAGED_BY_LABEL}=${MANAGED_BY},${LABELS.role}=binding`), [] as KubeObject[]).catch(() => [] as KubeObject[]);
  const here = publishedRequestsIn(copies).filter((r) => r.importNamespace === namespace);
  const named = here.filter((r) => r.exportName === exportName);
  return named.length ? named : here;
}

/** Options of {@link gatherVerify}. */
export interface VerifyGatherOptions {
  consumer: ClusterWriter;
  /**
   * The provider's writer (`--from`), or how to find it from the import's record (see {@link findClusterContext});
   * none: the provider side is not read.
   */
  provider?: ClusterWriter | ((record: ImportRecord) => Promise<{ writer?: ClusterWriter; searched: string[] }>);
  namespace: string;
  localName: string;
  /** The import's record and home, when already read ({@link findImport}). */
  found?: { record: ImportRecord; home: string };
  istioNamespace: string;
  now: Date;
}

async function gatherConsumer(writer: ClusterWriter, namespaces: string[], istioNamespace: string, read: ManagedRead): Promise<SideSnapshot> {
  const managed = read.objects;
  const [mesh, extra, virtualServices, accounts] = await Promise.all([
    readMesh(writer, istioNamespace).then((read) => read.facts),
    namespaceObjects(writer, namespaces),
    // The user's VirtualServices too: which one sidecars use for an attached Service (MF0308).
    // meshfed's own (the import's) come with the scoped read: the other imports' are not read.
    optional(writer.list('networking.istio.io/v1beta1', 'VirtualService', undefined, NOT_MANAGED), [] as KubeObject[]),
    // The probe runs as one of the import namespace's service accounts; a cluster that does not let us list them
    // leaves the list empty (every namespace has at least `default`, so empty means unknown).
    writer.list('v1', 'ServiceAccount', namespaces[0]).catch((error: unknown) => {
      if (error instanceof ClusterError && (error.status === 403 || error.status === 404)) return [] as KubeObject[];
      throw error;
    }),
  ]);
  // Sidecar resources of the import namespace and of the mesh root namespace scope what its workloads reach (MF0322).
  const sidecars = (await Promise.all([...new Set([namespaces[0]!, mesh.rootNamespace ?? istioNamespace])].map((ns) =>
    optional(writer.list('networking.istio.io/v1beta1', 'Sidecar', ns), [] as KubeObject[])))).flat();
  const serviceAccounts = accounts.map((a) => ({ ...a, apiVersion: 'v1', kind: 'ServiceAccount' }));
  return {
    context: writer.contextName, mesh, objects: merge(merge(merge(merge(managed, extra), virtualServices), serviceAccounts), sidecars),
    ...(read.unreadableSecrets.length ? { unreadableSecrets: read.unreadableSecrets } : {}),
  };
}

async function gatherProvider(writer: ClusterWriter, record: ImportRecord, istioNamespace: string): Promise<ProviderSide> {
  try {
    // The data of the export's Secret (its gateway's certificate) and of the federation CA's; the others as metadata.
    const exported = exportLabel(record.endpoint.namespace, record.endpoint.exportName);
    const isExportRecord = (o: KubeObject) => o.kind === 'ConfigMap' && o.metadata.labels?.[LABELS.role] === 'export-record' && o.metadata.labels?.[LABELS.export] === exported;
    // A user who may not list Secrets (the viewer role) reads the certificates published beside them instead.
    const options = {
      secretData: (secret: KubeObject) => secret.metadata.labels?.[LABELS.export] === exported || secret.metadata.name === FEDERATION_CA_SECRET,
      secretsOptional: true,
    };
    // The export's objects and the shared ones (its gateway, the federation CA, subsets): not the other exports'. Without
    // its record (MF0202), everything, so that the finding can name the exports there are.
    const scoped = isDnsLabel(record.endpoint.namespace) && isDnsLabel(record.endpoint.exportName)
      ? await readManaged(writer, { ...options, scope: exportScope(record.endpoint.namespace, record.endpoint.exportName) }) : undefined;
    const read = scoped?.objects.some(isExportRecord) ? scoped : await readManaged(writer, options);
    const managed = read.objects;
    // The export record says where meshfed's home namespace is in this cluster (the gateway's namespace).
    const exportRecord = managed.find(isExportRecord);
    const home = exportRecord?.metadata.namespace ?? 'istio-meshfed';
    const { facts: mesh } = await readMesh(writer, istioNamespace);
    // Authorization policies of the exported workload's namespace, of the gateway's and of the mesh root namespace
    // decide who may call them.
    const policyNamespaces = [...new Set([record.endpoint.namespace, home, mesh.rootNamespace ?? 'istio-system'])];
    // Where federation CA Secrets are, and whether a gateway runs there (a user who may not read the CA's namespace,
    // as the viewer role, sees no Secret there and reads nothing else of it).
    const caNamespaces = managed.filter((o) => o.kind === 'Secret' && o.metadata.name === FEDERATION_CA_SECRET).map((o) => o.metadata.namespace!);
    const [extra, gateways, destinationRules, ...policies] = await Promise.all([
      namespaceObjects(writer, [record.endpoint.namespace, home, ...caNamespaces]),
      // Every Gateway: another's Gateway selecting the federation gateway's pods shares it with other traffic, and
      // may serve the same gateway workload and port (MF0225, MF0226).
      listGateways(writer),
      // The user's DestinationRules too: the rule the gateway gets for the Service, and the owner's (MF0220–MF0222).
      optional(writer.list('networking.istio.io/v1beta1', 'DestinationRule', undefined, NOT_MANAGED), [] as KubeObject[]),
      // The user's: meshfed's own (the export's admission, the workload guard) come with its objects.
      ...policyNamespaces.map((ns) => optional(writer.list('security.istio.io/v1beta1', 'AuthorizationPolicy', ns, NOT_MANAGED), [] as KubeObject[])),
    ]);
    return {
      status: 'present',
      snapshot: {
        context: writer.contextName, mesh, objects: merge(merge(merge(merge(managed, extra), policies.flat()), gateways), destinationRules),
        ...(read.unreadableSecrets.length ? { unreadableSecrets: read.unreadableSecrets } : {}),
      },
    };
  } catch (error) {
    if (error instanceof ClusterError) {
      return { status: 'unreachable', context: writer.contextName, message: error.message };
    }
    throw error;
  }
}

/** The two halves of {@link gatherVerify}, each as soon as it is read. */
export interface VerifyReads {
  /** The consumer's side: the import's record, where its egress gateway lives, and what the checks need there. */
  consumer: Promise<{ record: ImportRecord; home: string; side: SideSnapshot }>;
  /** Both sides (the provider's, whose failure to answer is part of the snapshot). */
  snapshot: Promise<VerifySnapshot>;
}

/**
 * Starts reading both clusters for the checks: the consumer (which must be reachable and hold the import) and, with
 * a provider writer, the provider, in parallel. `consumer` fails when the consumer cannot be read (ClusterError) or
 * the import does not exist (InputError); `snapshot` then fails with the same error.
 */
export function startGatherVerify(options: VerifyGatherOptions): VerifyReads {
  const { consumer, namespace, localName, istioNamespace } = options;
  // The import's objects, its binding's and the shared ones (the egress gateway, its routes), not the other imports':
  // the data of its binding's Secret only (its client certificate), the others as metadata.
  const first = (options.found ? Promise.resolve(options.found) : findImport(consumer, namespace, localName)).then(async (found) => {
    const e = found.record.endpoint;
    const binding = bindingLabel(e.providerClusterId, e.namespace, e.exportName);
    const scope = isDnsLabel(found.record.namespace) && isDnsLabel(found.record.localName)
      ? { scope: importScope(found.record.namespace, found.record.localName, { providerClusterId: e.providerClusterId, namespace: e.namespace, exportName: e.exportName }) } : {};
    const managed = await readManaged(consumer, { ...scope, secretData: (secret) => secret.metadata.labels?.[LABELS.binding] === binding, secretsOptional: true });
    return [found, managed] as const;
  });
  const consumerSide = first.then(async ([{ record, home }, managed]) => ({ record, home, side: await gatherConsumer(consumer, [namespace, home], istioNamespace, managed) }));
  const providerSide = first.then(async ([{ record }]): Promise<ProviderSide> => {
    const found = typeof options.provider === 'function' ? await options.provider(record) : { writer: options.provider, searched: [] };
    return found.writer ? gatherProvider(found.writer, record, istioNamespace) : { status: 'absent', searched: found.searched };
  });
  // Each is awaited by the caller; a failure of one is not left unhandled while the other is awaited.
  providerSide.catch(() => undefined);
  const snapshot = Promise.all([consumerSide, providerSide]).then(([{ record, home, side }, provider]) => ({
    now: options.now, consumer: side, consumerHome: home, record, provider,
  }));
  consumerSide.catch(() => undefined);
  snapshot.catch(() => undefined);
  return { consumer: consumerSide, snapshot };
}

/**
 * Reads both clusters for the checks (see {@link startGatherVerify}).
 * @throws ClusterError when the consumer cannot be read; InputError when the import does not exist
 */
export async function gatherVerify(options: VerifyGatherOptions): Promise<VerifySnapshot> {
  return startGatherVerify(options).snapshot;
}

/** The federation cluster id stored in a cluster (ConfigMap istio-meshfed/meshfed-cluster), or undefined. */
async function storedClusterId(writer: ClusterWriter): Promise<string | undefined> {
  try {
    const stored = await writer.get('v1', 'ConfigMap', IDENTITY_NAMESPACE, IDENTITY_CONFIGMAP);
    return (stored?.data as Record<string, string> | undefined)?.clusterId;
  } catch {
    // Unreachable, or not allowed to read it: not a context this run can use as the provider.
    return undefined;
  }
}

/**
 * Which of `candidates` (kubeconfig contexts) is the federation cluster `clusterId`, as its stored identity says: the
 * context named like the id first (the default id is the context name), all the others, in parallel, only when that
 * one is not it. Contexts that cannot be read are passed over. `searched` lists the contexts read.
 */
export async function findClusterContext(candidates: ClusterWriter[], clusterId: string): Promise<{ writer?: ClusterWriter; searched: string[] }> {
  const named = candidates.find((w) => w.contextName === clusterId);
  if (named && await storedClusterId(named) === clusterId) return { writer: named, searched: [named.contextName] };
  const others = candidates.filter((w) => w !== named);
  const ids = await Promise.all(others.map(storedClusterId));
  const writer = others.find((_, i) => ids[i] === clusterId);
  return { ...(writer ? { writer } : {}), searched: candidates.map((w) => w.contextName) };
}
