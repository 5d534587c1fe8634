/**
 * Consumer-side planners: import an export under a local name (optionally attached to an existing local
 * Service), and remove an import.
 *
 * Boundary mode path: app → sidecar (VirtualService of the local name) → ISTIO_MUTUAL with the export's SNI →
 * meshfed egress gateway (Gateway + VirtualService of the export host) → MUTUAL TLS with the client certificate
 * (DestinationRule credentialName) → ServiceEntry of the export host = provider gateway address:15443.
 *
 * Shared-root mode path: app → sidecar (VirtualService of the local name) → ServiceEntry of a hidden host whose
 * endpoint is the provider gateway → ISTIO_MUTUAL with SNI `outbound_.<port>_.<subset>_.<provider fqdn>`
 * (DestinationRule) → provider AUTO_PASSTHROUGH gateway → provider workload.
 */
import { inspectCertificate, keyMatchesCertificate, verifyCertificateChain } from '../pki/index.js';
import { publishedRequestName, removePublishedRequest } from './bundle.js';
import { publishedCertificatesName, readPublishedCertificates, withPublishedCertificates } from './certificates.js';
import { FederationInputError } from './errors.js';
import {
  detectProtocol, type ClusterPlan, type ConsumerSnapshot, type ExportEndpoint, type GatewayPlacement, type ImportSpec,
  type KubeObject, type ServicePort,
} from './model.js';
import {
  bindingLabel, checkDnsLabel, EXPORT_TO_ANNOTATION, type Role, FEDERATION_PORT, importHost, importLabel, LABELS, MANAGED_BY, MANAGED_BY_LABEL, names, REQUEST_NONCE_ANNOTATION,
  serviceFqdn, workloadPrincipal,
} from './naming.js';
import {
  API, checkNotForeign, checkSupportedIstio, emptyPlan, findObject, finishPlan, gatewaySetup, homeNamespaceOf, isManaged, kubeObject,
  PRUNABLE_KINDS, meshfedLabels, objectKey, readSecret, secretData,
} from './objects.js';
import { importRecordObject, readImportRecords, type ImportRecord } from './records.js';
import {
  SERVICE_EXPORT_TO_ANNOTATION, serviceVisibleTo, describeNeeds, importEgressNeeds, sidecarFix, sidecarsScoping, unmetEgressNeeds, type EgressNeed,
} from './visibility.js';

/** The consumer's half of a boundary-mode binding: its client certificate, its key, and the provider's federation CA. */
export interface ImportCredentials {
  /** Client certificate signed by the provider's federation CA (from the export bundle). */
  certificatePem: string;
  /** The private key that never left the consumer cluster (from the pending key Secret). */
  privateKeyPem: string;
  /** The provider's federation CA certificate: verifies the provider gateway's server certificate. */
  caCertificatePem: string;
}

/** A consumer plan for one import. */
export interface ImportPlan extends ClusterPlan {
  record: ImportRecord;
  /** What apps call: `<local>.<namespace>.svc.cluster.local`. */
  localHost: string;
}

function istioPortProtocol(endpoint: ExportEndpoint): string {
  if (endpoint.protocol === 'TCP') return 'TCP';
  const declared = (endpoint.port.appProtocol ?? endpoint.port.name.split('-')[0] ?? '').toLowerCase();
  // The upstream cluster speaks what the port declares: gRPC and HTTP/2 need HTTP/2 to the next hop.
  if (declared === 'grpc') return 'GRPC';
  if (declared === 'grpc-web') return 'GRPC-WEB';
  if (declared === 'http2' || declared === 'h2c' || declared === 'kubernetes.io/h2c') return 'HTTP2';
  return 'HTTP';
}

/**
 * The port of the local Service apps call, named so that the consumer's sidecars treat it as the export's protocol.
 * Istio reads a Service port's protocol from `appProtocol`, else from the name's prefix (`pkg/config/kube/conversion.go`
 * `ConvertProtocol`, appProtocol honoured since Istio 1.6.0, commit 3a2b767614f); a port that declares neither
 * (`db`, `web`) is sniffed, so an HTTP-looking request on a TCP import goes to the HTTP route table, where the import
 * has no route, and a server-first protocol (MySQL) waits for a first client byte that never comes. A name whose
 * prefix already declares the exported protocol is kept; any other gets the protocol's prefix (`db` → `tcp-db`), and
 * an `appProtocol` that would declare another protocol is left out (it overrides the name).
 */
export function localServicePort(endpoint: Pick<ExportEndpoint, 'port' | 'protocol'>): ServicePort {
  const { name, number, appProtocol } = endpoint.port;
  const byName = detectProtocol({ name, port: number });
  const keepName = byName.source === 'name' && byName.protocol === endpoint.protocol;
  const prefix = endpoint.protocol === 'TCP' ? 'tcp' : httpPrefix(endpoint.port);
  const localName = keepName ? name : `${prefix}-${name}`.slice(0, 63).replace(/-+$/, '');
  const keepAppProtocol = appProtocol !== undefined && detectProtocol({ name: '', port: number, appProtocol }).source === 'appProtocol'
    && detectProtocol({ name: '', port: number, appProtocol }).protocol === endpoint.protocol;
  return { name: localName, port: number, targetPort: number, protocol: 'TCP', ...(keepAppProtocol ? { appProtocol } : {}) };
}

function httpPrefix(port: ExportEndpoint['port']): string {
  const declared = (port.appProtocol ?? port.name.split('-')[0] ?? '').toLowerCase();
  return ['grpc', 'grpc-web', 'http2'].includes(declared) ? declared : declared === 'h2c' || declared === 'kubernetes.io/h2c' ? 'http2' : 'http';
}

function checkEndpoint(endpoint: ExportEndpoint): void {
  checkDnsLabel(endpoint.providerClusterId, 'provider cluster id');
  checkDnsLabel(endpoint.namespace, 'export namespace');
  checkDnsLabel(endpoint.exportName, 'export name');
  if (!endpoint.gateway.address) throw new FederationInputError('the export has no provider gateway address; re-run the export once the provider gateway has an external address');
}

/**
 * Checks the local name of an import of `source` in `namespace`: a DNS label that no other import of the namespace
 * uses (an import of the same export may keep it: that is a re-import), and that no object meshfed does not manage
 * already takes as a Service. Returns the name.
 * @throws FederationInputError
 */
export function checkLocalName(snapshot: ConsumerSnapshot, namespace: string, localName: string, source: { providerClusterId: string; namespace: string; exportName: string }): string {
  checkDnsLabel(localName, 'local name', '--local-name');
  const existing = readImportRecords(snapshot, { removing: true }).find((r) => r.namespace === namespace && r.localName === localName);
  if (existing?.removing) {
    throw new FederationInputError(
      `import ${namespace}/${localName} is being removed (an unimport is running, or one stopped half-way); ` +
      `finish it with kubectl meshfed unimport ${localName} -n ${namespace}, then import again, or choose another local name (--local-name)`, '--local-name');
  }
  if (existing && bindingLabel(existing.endpoint.providerClusterId, existing.endpoint.namespace, existing.endpoint.exportName)
    !== bindingLabel(source.providerClusterId, source.namespace, source.exportName)) {
    throw new FederationInputError(
      `${namespace}/${localName} already imports ${existing.endpoint.providerClusterId}/${existing.endpoint.namespace}/${existing.endpoint.exportName}; ` +
      'choose another local name (--local-name) or unimport it first', '--local-name');
  }
  checkNotForeign(snapshot, [kubeObject('v1', 'Service', localName, namespace, {}, {})]);
  return localName;
}

/**
 * Plans an import. Boundary mode needs the binding's credentials (from the export bundle and the pending key);
 * shared-root mode needs none.
 *
 * ```ts
 * const plan = planImport(snapshot, { endpoint: bundle.endpoint, credentials }, { consumerClusterId: 'cluster1',
 *   namespace: 'default', localName: 'myreviews', attach: { service: 'reviews', weight: 50 } });
 * ```
 * @throws FederationInputError for invalid names, missing credentials, a missing attach Service, or names taken by
 *   objects meshfed does not manage
 */
export function planImport(
  snapshot: ConsumerSnapshot,
  input: { endpoint: ExportEndpoint; credentials?: ImportCredentials },
  spec: ImportSpec,
  options: { now?: Date } = {},
): ImportPlan {
  const { endpoint } = input;
  checkSupportedIstio(snapshot);
  checkEndpoint(endpoint);
  checkDnsLabel(spec.consumerClusterId, 'consumer cluster id', '--to');
  checkDnsLabel(spec.namespace, 'namespace', '--namespace');
  const localName = checkLocalName(snapshot, spec.namespace, spec.localName ?? endpoint.exportName, endpoint);
  for (const sa of spec.serviceAccounts ?? []) checkDnsLabel(sa, 'service account', '--service-account');
  const accounts = [...new Set(spec.serviceAccounts ?? [])].sort();
  const record: ImportRecord = {
    consumerClusterId: spec.consumerClusterId,
    namespace: spec.namespace,
    localName,
    endpoint,
    ...(spec.attach ? { attach: spec.attach } : {}),
    ...(accounts.length ? { serviceAccounts: accounts } : {}),
  };
  const home = homeNamespaceOf(snapshot);
  const plan = emptyPlan(snapshot.clusterId);
  const others = readImportRecords(snapshot).filter((r) => !(r.namespace === spec.namespace && r.localName === localName));
  const all = [...others, record];

  if (!snapshot.existingGateway) plan.objects.push(kubeObject('v1', 'Namespace', home, undefined, { [MANAGED_BY_LABEL]: MANAGED_BY }, {}));
  let placement: GatewayPlacement | undefined;
  if (endpoint.mode === 'boundary') {
    if (!input.credentials) {
      throw new FederationInputError(`importing ${endpoint.providerClusterId}/${endpoint.namespace}/${endpoint.exportName} in boundary mode needs the client certificate from the export bundle (--bundle)`, '--bundle');
    }
    const setup = gatewaySetup(snapshot, 'egress');
    placement = setup.placement;
    plan.warnings.push(...setup.warnings);
    if (setup.overlay) plan.overlay = setup.overlay;
    plan.objects.push(...setup.objects);
    plan.objects.push(...bindingObjects(endpoint, input.credentials, placement, all, snapshot, options.now));
    plan.secretsWithPrivateKeys.push(`${placement.namespace}/${names.binding(endpoint.providerClusterId, endpoint.namespace, endpoint.exportName)}`);
    plan.objects.push(egressRoutes(all, placement, snapshot.partialImportRecords ? findObject(snapshot, 'DestinationRule', placement.namespace, names.egressRoutes()) : undefined));
    // Sidecars of the import namespace route to the egress gateway's Service: it must be exported to them.
    const egressService = setup.objects.find((o) => o.kind === 'Service' && o.metadata.name === placement!.serviceName);
    if (!serviceVisibleTo({ namespace: placement.namespace }, snapshot.defaultServiceExportTo, spec.namespace)) {
      if (egressService) {
        egressService.metadata.annotations = { ...egressService.metadata.annotations, [SERVICE_EXPORT_TO_ANNOTATION]: '*' };
      } else {
        plan.warnings.push(
          `the mesh's defaultServiceExportTo ${JSON.stringify(snapshot.defaultServiceExportTo)} hides the egress gateway Service ${placement.namespace}/${placement.serviceName} ` +
          `from namespace ${spec.namespace} unless it says otherwise: kubectl annotate service ${placement.serviceName} -n ${placement.namespace} ${SERVICE_EXPORT_TO_ANNOTATION}=* --overwrite (verify reports it as MF0323)`,
        );
      }
    }
  } else {
    // The request's key signed the request only; shared-root traffic uses the workloads' own mesh certificates.
    const pendingKey = names.binding(endpoint.providerClusterId, endpoint.namespace, endpoint.exportName);
    if (findObject(snapshot, 'Secret', home, pendingKey)) plan.remove.push({ apiVersion: 'v1', kind: 'Secret', namespace: home, name: pendingKey });
  }
  // The request is complete: its published copy goes (a re-run of the same import removes one a failed run left).
  removePublishedRequest(snapshot, plan, home, names.binding(endpoint.providerClusterId, endpoint.namespace, endpoint.exportName));
  plan.objects.push(...importObjects(snapshot, record, placement, plan.warnings));
  // mergeAttach records the user's VirtualService it changes (with consent) in the record.
  if (record.mergedInto) plan.consented = [`VirtualService/${record.mergedInto.namespace}/${record.mergedInto.name}`];
  plan.objects.push(importRecordObject(record, home));
  if (placement) relocateImports(snapshot, others, all, placement, plan, options.now);

  checkNotForeign(snapshot, plan.objects.filter((o) => !plan.consented?.includes(objectKey(o))));
  const label = { [LABELS.import]: importLabel(spec.namespace, localName) };
  plan.prune.push({
    selector: { [MANAGED_BY_LABEL]: MANAGED_BY, ...label },
    kinds: [...PRUNABLE_KINDS],
    keep: plan.objects.filter((o) => o.metadata.labels?.[LABELS.import] === label[LABELS.import]).map(objectKey),
  });
  return { ...finishPlan(plan), record, localHost: serviceFqdn(localName, spec.namespace) };
}

/** The labels of one import's own objects. */
function importLabelsOf(record: ImportRecord): Record<string, string> {
  const e = record.endpoint;
  return meshfedLabels('import', {
    [LABELS.import]: importLabel(record.namespace, record.localName),
    [LABELS.binding]: bindingLabel(e.providerClusterId, e.namespace, e.exportName),
    [LABELS.provider]: e.providerClusterId,
  });
}

/**
 * The objects of one import in its namespace: the local Service, its VirtualService, (shared-root) the hidden
 * ServiceEntry and DestinationRule, and the attach route. Every one is visible to the import's namespace only
 * (`exportTo`), so the other namespaces of the cluster cannot use the import (issue: any namespace could).
 * @param placement the egress gateway (boundary mode); undefined in shared-root mode
 */
function importObjects(snapshot: ConsumerSnapshot, record: ImportRecord, placement: GatewayPlacement | undefined, warnings: string[]): KubeObject[] {
  const endpoint = record.endpoint;
  const labels = importLabelsOf(record);
  const out: KubeObject[] = [];
  // A selector-less ClusterIP Service: a DNS name and a VIP for the sidecar to intercept, on every Istio version. The
  // exportTo annotation (Istio 1.9 pilot/pkg/serviceregistry/kube/conversion.go `ConvertService`) keeps it out of
  // the other namespaces' sidecars: they get no listener for its VIP, so their calls go nowhere.
  // The port is named by protocol (localServicePort), so the sidecars do not sniff it.
  const port = localServicePort(endpoint);
  out.push({
    ...kubeObject('v1', 'Service', record.localName, record.namespace, labels, { spec: { type: 'ClusterIP', ports: [port] } }),
    metadata: { name: record.localName, namespace: record.namespace, labels, annotations: { [EXPORT_TO_ANNOTATION]: '.' } },
  });
  let remote: RemoteDestination;
  if (endpoint.mode === 'boundary') {
    remote = {
      namespace: placement!.namespace,
      destination: {
        host: serviceFqdn(placement!.serviceName, placement!.namespace),
        port: { number: placement!.port },
        subset: names.bindingSubset(endpoint.providerClusterId, endpoint.namespace, endpoint.exportName),
      },
      authority: endpoint.protocol === 'HTTP' ? endpoint.sni : undefined,
    };
  } else {
    const hidden = importHost(record.namespace, record.localName);
    const name = names.import(record.localName);
    const address = endpoint.gateway.address;
    const isIp = /^\d{1,3}(\.\d{1,3}){3}$/.test(address) || address.includes(':');
    out.push(kubeObject(API.networking, 'ServiceEntry', name, record.namespace, labels, {
      spec: {
        hosts: [hidden],
        // Only the import namespace's sidecars: a ServiceEntry without addresses gives every sidecar it is visible
        // to a 0.0.0.0:15443 listener that forwards whatever is opened there to the provider.
        exportTo: ['.'],
        location: 'MESH_INTERNAL',
        // Port 15443 rather than the exported port: a ServiceEntry without addresses listens on 0.0.0.0:<port>
        // in every sidecar it is visible to, and 15443 is not a port applications use.
        ports: [{ number: FEDERATION_PORT, name: `${istioPortProtocol(endpoint).toLowerCase()}-federation`, protocol: istioPortProtocol(endpoint) }],
        resolution: isIp ? 'STATIC' : 'DNS',
        endpoints: [{ address, ports: { [`${istioPortProtocol(endpoint).toLowerCase()}-federation`]: endpoint.gateway.port } }],
      },
    }));
    const sans = (endpoint.serviceAccounts ?? []).map((sa) => `spiffe://${workloadPrincipal(endpoint.trustDomain ?? 'cluster.local', endpoint.namespace, sa)}`);
    out.push(kubeObject(API.networking, 'DestinationRule', name, record.namespace, labels, {
      spec: {
        host: hidden,
        exportTo: ['.'],
        trafficPolicy: { tls: { mode: 'ISTIO_MUTUAL', sni: endpoint.sni, ...(sans.length ? { subjectAltNames: sans } : {}) } },
      },
    }));
    remote = { namespace: record.namespace, destination: { host: hidden, port: { number: FEDERATION_PORT } } };
  }
  out.push(kubeObject(API.networking, 'VirtualService', names.import(record.localName), record.namespace, labels, {
    spec: { hosts: [serviceFqdn(record.localName, record.namespace)], exportTo: ['.'], ...routesTo(endpoint, remote, endpoint.port.number) },
  }));
  const localHost = serviceFqdn(record.localName, record.namespace);
  warnings.push(...visibilityWarnings(snapshot, record.namespace, importEgressNeeds(
    { namespace: record.namespace, host: localHost, port: endpoint.port.number },
    { namespace: remote.namespace, host: remote.destination.host, ports: [remote.destination.port.number] },
  )));
  if (record.attach) out.push(attachObject(snapshot, record, remote, labels, warnings));
  return out;
}

/**
 * The egress gateway moved (another `--gateway-namespace`/`--gateway-selector` than the imports were made with):
 * every boundary binding moves with it — its client certificate and key copied from the Secret in the old namespace,
 * which stays in the cluster — every other import is re-planned to reach the new gateway, and what is left in the
 * old namespace (binding Secrets with their private keys, routes, policies, records) is removed. An import whose
 * old Secret holds no usable certificate cannot move: it is said, and it must be imported again.
 */
function relocateImports(snapshot: ConsumerSnapshot, others: ImportRecord[], all: ImportRecord[], placement: GatewayPlacement, plan: ClusterPlan, now?: Date): void {
  const home = homeNamespaceOf(snapshot);
  const movable = new Set<Role>(['binding', 'egress-routes', 'import-record']);
  const stale = snapshot.existing.filter((o) => isManaged(o) && o.metadata.namespace !== undefined && o.metadata.namespace !== placement.namespace
    && movable.has(o.metadata.labels?.[LABELS.role] as Role) && (o.metadata.labels?.[LABELS.role] !== 'import-record' || o.metadata.namespace !== home));
  if (stale.length === 0) return;
  const from = [...new Set(stale.map((o) => o.metadata.namespace!))].sort();
  for (const o of stale) plan.remove.push({ apiVersion: o.apiVersion, kind: o.kind, namespace: o.metadata.namespace!, name: o.metadata.name });
  const moved = new Set<string>();
  for (const r of others) {
    const e = r.endpoint;
    if (e.mode === 'boundary') {
      const name = names.binding(e.providerClusterId, e.namespace, e.exportName);
      if (!moved.has(name)) {
        const old = stale.find((o) => o.kind === 'Secret' && o.metadata.name === name);
        const data = readSecret(old);
        if (!data?.['tls.crt'] || !data['tls.key'] || !data['ca.crt']) {
          plan.warnings.push(`import ${r.namespace}/${r.localName} cannot move to the egress gateway in ${placement.namespace}: Secret ${from.join(', ')}/${name} holds no client certificate; import it again`);
          continue;
        }
        plan.objects.push(...bindingObjects(e, { certificatePem: data['tls.crt'], privateKeyPem: data['tls.key'], caCertificatePem: data['ca.crt'] }, placement, all, snapshot, now));
        plan.secretsWithPrivateKeys.push(`${placement.namespace}/${name}`);
        moved.add(name);
      }
    }
    plan.objects.push(...importObjects(snapshot, r, placement, plan.warnings), importRecordObject(r, home));
    if (r.mergedInto) plan.consented = [...(plan.consented ?? []), `VirtualService/${r.mergedInto.namespace}/${r.mergedInto.name}`];
  }
  plan.warnings.push(`the egress gateway moved to ${describePlacement(placement)}: every import moves with it, and meshfed's objects in ${from.join(', ')} (client certificates included) are removed`);
}

function describePlacement(p: GatewayPlacement): string {
  return `${p.namespace} (${Object.entries(p.selector).map(([k, v]) => `${k}=${v}`).join(',')})`;
}

/**
 * What visibility settings of the consumer mesh keep the import namespace's workloads from reaching the import, with
 * the exact change: a Sidecar resource whose egress listeners do not select the local Service (on its port) and the
 * next hop (see visibility.ts).
 */
function visibilityWarnings(snapshot: ConsumerSnapshot, namespace: string, needs: EgressNeed[]): string[] {
  const root = snapshot.rootNamespace ?? 'istio-system';
  const labelSets = (snapshot.pods ?? []).filter((p) => p.namespace === namespace).map((p) => p.labels ?? {});
  const warnings: string[] = [];
  for (const sidecar of sidecarsScoping(snapshot.existing, namespace, root, labelSets)) {
    const unmet = unmetEgressNeeds(sidecar, needs);
    if (unmet.length === 0) continue;
    warnings.push(
      `Sidecar ${sidecar.metadata.namespace}/${sidecar.metadata.name} limits what the workloads of namespace ${namespace} reach, and not to ` +
      `${describeNeeds(unmet)}: their calls to the import will not leave the pod. ` +
      `Fix: ${sidecarFix(sidecar, unmet)} (verify reports it as MF0322)`,
    );
  }
  return warnings;
}

/** Where the consumer's sidecars send an import's traffic, and the HTTP authority the next hop routes by. */
interface RemoteDestination {
  /** Namespace of the destination host (the import namespace, or the egress gateway's). */
  namespace: string;
  destination: { host: string; port: { number: number }; subset?: string };
  authority?: string | undefined;
}

function routesTo(endpoint: ExportEndpoint, remote: RemoteDestination, port: number): Record<string, unknown> {
  if (endpoint.protocol === 'HTTP') {
    // The egress and provider gateways select routes by Host: it must be the export host, not the local name.
    return { http: [{ route: [{ destination: remote.destination }], ...(remote.authority ? { rewrite: { authority: remote.authority } } : {}) }] };
  }
  return { tcp: [{ match: [{ port }], route: [{ destination: remote.destination }] }] };
}

/** Whether two import records are bound to one provider export. */
function sameBinding(a: ExportEndpoint, b: ExportEndpoint): boolean {
  return bindingLabel(a.providerClusterId, a.namespace, a.exportName) === bindingLabel(b.providerClusterId, b.namespace, b.exportName);
}

/**
 * The local Services whose traffic a weighted HTTP attach splits onto this binding. The sidecar rewrites the split
 * route's authority to the attached Service's own name (a route-level `rewrite.authority`, Envoy's
 * `host_rewrite_literal` on every Istio from 1.9: `pilot/pkg/networking/core/v1alpha3/route/route.go`
 * `translateRoute`), and the egress gateway rewrites that name to the export host. A per-destination Host header
 * would not do: Istio 1.10.0's webhook rejects it (`pkg/config/validation/validation.go`
 * `validateHTTPRouteDestinations` → `ValidateHTTPHeaderOperationName`: "cannot set Host header"), and before 1.12
 * it is a plain request header that only Envoy's `treat_host_like_authority` turned into the authority
 * (1.11.0 `route.go` `translateAppendHeadersForDestination`).
 */
function attachHosts(records: ImportRecord[], endpoint: ExportEndpoint): string[] {
  return [...new Set(records
    .filter((r) => sameBinding(r.endpoint, endpoint) && r.attach && 'weight' in r.attach && r.attach.weight < 100 && endpoint.protocol === 'HTTP')
    .map((r) => serviceFqdn(r.attach!.service, r.namespace)))].sort();
}

/**
 * Consumer objects of one binding (one provider export), shared by every import of that export: its client
 * credential, the provider's address, the TLS origination, the egress Gateway server and routes, and the policy
 * that admits only the importing namespaces (and service accounts) at the egress gateway.
 * @param records every import of the cluster (the ones of this binding are used)
 */
function bindingObjects(
  endpoint: ExportEndpoint, credentials: ImportCredentials, placement: GatewayPlacement, records: ImportRecord[],
  snapshot: ConsumerSnapshot, now?: Date,
): KubeObject[] {
  const at = now ?? new Date();
  if (!keyMatchesCertificate(credentials.privateKeyPem, credentials.certificatePem)) {
    throw new FederationInputError('the client certificate in the export bundle was not issued for this cluster\'s pending key; create a new import request and have it admitted again');
  }
  const chain = verifyCertificateChain(credentials.certificatePem, [credentials.caCertificatePem], at);
  if (!chain.ok) throw new FederationInputError(`the client certificate in the export bundle is not usable: ${chain.reason}; have the provider admit a new import request`);
  if (inspectCertificate(credentials.certificatePem, at).uris.length === 0) {
    throw new FederationInputError('the client certificate in the export bundle has no SPIFFE id; have the provider admit a new import request');
  }
  const name = names.binding(endpoint.providerClusterId, endpoint.namespace, endpoint.exportName);
  const namespace = placement.namespace;
  const labels = meshfedLabels('binding', {
    [LABELS.binding]: bindingLabel(endpoint.providerClusterId, endpoint.namespace, endpoint.exportName),
    [LABELS.provider]: endpoint.providerClusterId,
  });
  const host = endpoint.sni;
  const protocol = istioPortProtocol(endpoint);
  const isIp = /^\d{1,3}(\.\d{1,3}){3}$/.test(endpoint.gateway.address) || endpoint.gateway.address.includes(':');
  const serverProtocol = endpoint.protocol === 'HTTP' ? 'HTTPS' : 'TLS';
  const attached = attachHosts(records, endpoint);
  const toProvider = { destination: { host, port: { number: endpoint.gateway.port } } };
  return [
    // The certificates are also published beside it (no key), for whoever may only look (status, verify).
    ...withPublishedCertificates(kubeObject('v1', 'Secret', name, namespace, labels, {
      // Opaque, like the pending key Secret it replaces: a Secret's type cannot change.
      type: 'Opaque',
      data: secretData({ 'tls.crt': credentials.certificatePem, 'tls.key': credentials.privateKeyPem, 'ca.crt': credentials.caCertificatePem }),
    })),
    kubeObject(API.networking, 'ServiceEntry', name, namespace, labels, {
      spec: {
        hosts: [host],
        // Only meshfed's egress gateway (in this namespace) needs to know the provider's address.
        exportTo: ['.'],
        location: 'MESH_EXTERNAL',
        ports: [{ number: endpoint.gateway.port, name: `${protocol.toLowerCase()}-federation`, protocol }],
        resolution: isIp ? 'STATIC' : 'DNS',
        endpoints: [{ address: endpoint.gateway.address }],
      },
    }),
    kubeObject(API.networking, 'DestinationRule', name, namespace, labels, {
      spec: {
        host,
        exportTo: ['.'],
        trafficPolicy: {
          tls: { mode: 'MUTUAL', credentialName: name, sni: host, subjectAltNames: [host] },
        },
      },
    }),
    kubeObject(API.networking, 'Gateway', name, namespace, labels, {
      spec: {
        selector: { ...placement.selector },
        servers: [{
          port: { number: placement.port, name: `${serverProtocol.toLowerCase()}-${name}`, protocol: serverProtocol },
          // "./": only VirtualServices of this namespace (meshfed's) can bind to these hosts on this Gateway. The
          // attached Services' names are hosts of this server too (selected by the export host's SNI) so that the
          // split share, which arrives with such a name as its authority, is routed here.
          hosts: [host, ...attached].map((h) => `./${h}`),
          tls: { mode: 'ISTIO_MUTUAL' },
        }],
      },
    }),
    kubeObject(API.networking, 'VirtualService', name, namespace, labels, {
      spec: {
        hosts: [host, ...attached],
        gateways: [name],
        exportTo: ['.'],
        ...(endpoint.protocol === 'HTTP'
          ? { http: [{ match: [{ port: placement.port }], ...(attached.length ? { rewrite: { authority: host } } : {}), route: [toProvider] }] }
          : { tcp: [{ match: [{ port: placement.port }], route: [toProvider] }] }),
      },
    }),
    egressAdmission(endpoint, placement, records, snapshot, labels, name),
  ];
}

/**
 * A DENY policy on the egress gateway for one binding's SNI: a caller that is neither in an importing namespace
 * (imports without service accounts) nor one of the admitted service accounts is refused. DENY, scoped by
 * `connection.sni`, because an ALLOW policy would deny every other use of the gateway; the egress gateway's server
 * is ISTIO_MUTUAL, so the caller's principal and namespace come from its workload certificate on every Istio from
 * 1.9 (`pilot/pkg/security/authz/model/generator.go` `srcPrincipalGenerator`, `srcNamespaceGenerator`).
 */
function egressAdmission(
  endpoint: ExportEndpoint, placement: GatewayPlacement, records: ImportRecord[], snapshot: ConsumerSnapshot,
  labels: Record<string, string>, name: string,
): KubeObject {
  const trustDomain = snapshot.trustDomain ?? 'cluster.local';
  const bound = records.filter((r) => sameBinding(r.endpoint, endpoint));
  const namespaces = [...new Set(bound.filter((r) => !r.serviceAccounts?.length).map((r) => r.namespace))].sort();
  const principals = [...new Set(bound.flatMap((r) => (r.serviceAccounts ?? []).map((sa) => workloadPrincipal(trustDomain, r.namespace, sa))))].sort();
  const source = { ...(namespaces.length ? { notNamespaces: namespaces } : {}), ...(principals.length ? { notPrincipals: principals } : {}) };
  return kubeObject(API.security, 'AuthorizationPolicy', name, placement.namespace, labels, {
    spec: {
      selector: { matchLabels: { ...placement.selector } },
      action: 'DENY',
      rules: [{ from: [{ source }], when: [{ key: 'connection.sni', values: [endpoint.sni] }] }],
    },
  });
}

/**
 * The DestinationRule of the consumer's egress gateway: one subset per imported export, each with the SNI the
 * egress gateway's Gateway server for that export matches. One object, recomputed from every import, visible to
 * the importing namespaces only.
 */
/**
 * @param kept the egress routes in the cluster, when `records` are not every import's (see
 *   {@link ClusterSnapshot.partialImportRecords}): their subsets and namespaces stay, those of `records` are recomputed
 */
function egressRoutes(records: ImportRecord[], placement: GatewayPlacement, kept?: KubeObject): KubeObject {
  const keptSpec = (kept?.spec ?? {}) as { exportTo?: string[]; subsets?: Array<{ name: string }> };
  const subsets = new Map<string, unknown>((keptSpec.subsets ?? []).map((s) => [s.name, structuredClone(s)]));
  for (const r of records) {
    if (r.endpoint.mode !== 'boundary') continue;
    const e = r.endpoint;
    const name = names.bindingSubset(e.providerClusterId, e.namespace, e.exportName);
    subsets.set(name, {
      name,
      trafficPolicy: {
        // HTTP/2 and gRPC stay HTTP/2 on the way to the egress gateway, whose port is not an HTTP port.
        ...(e.protocol === 'HTTP' ? { connectionPool: { http: { useClientProtocol: true } } } : {}),
        tls: { mode: 'ISTIO_MUTUAL', sni: e.sni },
      },
    });
  }
  return kubeObject(API.networking, 'DestinationRule', names.egressRoutes(), placement.namespace, meshfedLabels('egress-routes'), {
    spec: {
      host: serviceFqdn(placement.serviceName, placement.namespace),
      // Only the namespaces with a boundary import see it (and so can reach the bindings at all).
      exportTo: [...new Set([...(keptSpec.exportTo ?? []), ...records.filter((r) => r.endpoint.mode === 'boundary').map((r) => r.namespace)])].sort(),
      subsets: [...subsets.entries()].sort(([a], [b]) => a.localeCompare(b)).map(([, subset]) => subset),
    },
  });
}

/** A user VirtualService that routes `fqdn` for the sidecars of `namespace`, with the host it routes it by. */
function routesHostForSidecars(vs: KubeObject, fqdn: string, namespace: string, service: string): boolean {
  const spec = vs.spec as { hosts?: string[]; gateways?: string[]; exportTo?: string[] } | undefined;
  if (spec?.gateways?.length && !spec.gateways.includes('mesh')) return false;
  const own = vs.metadata.namespace ?? 'default';
  const exportTo = spec?.exportTo ?? [];
  if (exportTo.length && !exportTo.some((e) => e === '*' || e === namespace || (e === '.' && own === namespace))) return false;
  const shortNames = new Set([`${service}.${namespace}`, `${service}.${namespace}.svc`, fqdn]);
  return (spec?.hosts ?? []).some((h) => {
    const expanded = h.includes('.') || h === '*' ? h : `${h}.${own}.svc.cluster.local`;
    if (expanded === fqdn || shortNames.has(h)) return true;
    return expanded.startsWith('*') && fqdn.endsWith(expanded.slice(1));
  });
}

/** An object not created yet (planned) is the newest. */
function createdAt(o: KubeObject): string {
  return typeof o.metadata.creationTimestamp === 'string' ? o.metadata.creationTimestamp : '\uffff';
}

/**
 * The VirtualService Istio uses for `service`'s host on the sidecars of `namespace`: on sidecars two VirtualServices
 * for one host are not merged and the oldest one wins (`pilot/pkg/model/push_context.go` `initVirtualServices` sorts
 * by creation time; `pilot/pkg/networking/core/v1alpha3/httproute.go` `buildSidecarOutboundVirtualHosts` (`duplicateVirtualHost`) keeps
 * the first virtual host per domain). Undefined when no VirtualService routes it.
 */
export function winningVirtualService(snapshot: ConsumerSnapshot, namespace: string, service: string): KubeObject | undefined {
  const fqdn = serviceFqdn(service, namespace);
  return snapshot.existing
    .filter((o) => o.kind === 'VirtualService' && routesHostForSidecars(o, fqdn, namespace, service))
    .sort((a, b) => createdAt(a).localeCompare(createdAt(b)) || `${a.metadata.namespace}/${a.metadata.name}`.localeCompare(`${b.metadata.namespace}/${b.metadata.name}`))[0];
}

function attachObject(
  snapshot: ConsumerSnapshot, record: ImportRecord, remote: RemoteDestination, labels: Record<string, string>, warnings: string[],
): KubeObject {
  const attach = record.attach!;
  const endpoint = record.endpoint;
  const namespace = record.namespace;
  const service = snapshot.services.find((s) => s.namespace === namespace && s.name === attach.service);
  if (!service) {
    throw new FederationInputError(`Service ${namespace}/${attach.service} to attach the import to was not found; attach to an existing Service in the import namespace (--attach)`, '--attach');
  }
  const localPort = attach.port !== undefined
    ? service.ports.find((p) => p.port === attach.port)
    : service.ports.find((p) => p.port === endpoint.port.number) ?? (service.ports.length === 1 ? service.ports[0] : undefined);
  if (!localPort) {
    throw new FederationInputError(`Service ${namespace}/${attach.service} has several ports and none is ${attach.port ?? endpoint.port.number}: choose one (--attach-port)`, '--attach-port');
  }
  const fqdn = serviceFqdn(attach.service, namespace);
  const local = { host: fqdn, port: { number: localPort.port } };
  const ownName = names.attach(attach.service);
  const winner = winningVirtualService({ ...snapshot, existing: snapshot.existing.filter((o) => !(isManaged(o) && o.metadata.namespace === namespace && o.metadata.name === ownName)) }, namespace, attach.service);
  if (winner && isManaged(winner)) {
    throw new FederationInputError(
      `VirtualService ${winner.metadata.namespace}/${winner.metadata.name} of another import already routes ${fqdn}; one Service can be attached to one import: unimport that one first`, '--attach');
  }
  if ('weight' in attach && (!Number.isInteger(attach.weight) || attach.weight < 1 || attach.weight > 100)) {
    throw new FederationInputError(`attach weight ${attach.weight} must be a whole percentage from 1 to 100 (--weight)`, '--weight');
  }
  if (!('weight' in attach)) {
    if (endpoint.protocol !== 'HTTP') {
      throw new FederationInputError(`export ${endpoint.namespace}/${endpoint.exportName} is TCP: header matching needs HTTP; attach by --weight instead`, '--header');
    }
    if (!/^[a-z0-9-]+$/i.test(attach.header.name)) {
      throw new FederationInputError(`header name "${attach.header.name}" is not an HTTP header name (--header)`, '--header');
    }
  }
  const remoteRoute = {
    ...('weight' in attach ? {} : { match: [{ headers: { [attach.header.name.toLowerCase()]: { exact: attach.header.value } } }] }),
    route: [{ destination: remote.destination }],
    ...(remote.authority ? { rewrite: { authority: remote.authority } } : {}),
  };
  // The split route: its authority becomes the attached Service's own name (the egress gateway maps that name to the
  // export host), so the local share keeps a name its workloads answer to. See attachHosts.
  const split = (destinations: Array<{ destination: unknown; weight: number }>): Record<string, unknown> => ({
    route: [...destinations, { destination: remote.destination, weight: (attach as { weight: number }).weight }],
    ...(remote.authority ? { rewrite: { authority: fqdn } } : {}),
  });

  if (attach.mergeInto !== undefined) return mergeAttach(snapshot, record, winner, remoteRoute, split, warnings);
  if (winner) {
    throw new FederationInputError(
      `VirtualService ${winner.metadata.namespace}/${winner.metadata.name} already routes ${fqdn} for sidecars, and Istio uses only the oldest VirtualService of a host there: ` +
      `meshfed's ${ownName} would be ignored and no traffic would reach the import. Fold the split into it with --merge-into ${winner.metadata.namespace}/${winner.metadata.name} ` +
      '(the plan shows the change; unimport restores it), or delete it', '--merge-into');
  }
  let spec: Record<string, unknown>;
  if ('weight' in attach) {
    if (endpoint.protocol === 'HTTP') {
      spec = { http: [attach.weight === 100 ? remoteRoute : split([{ destination: local, weight: 100 - attach.weight }])] };
    } else {
      const remoteShare = { destination: remote.destination, weight: attach.weight };
      const route = attach.weight === 100 ? [remoteShare] : [{ destination: local, weight: 100 - attach.weight }, remoteShare];
      spec = { tcp: [{ match: [{ port: localPort.port }], route }] };
    }
  } else {
    spec = { http: [remoteRoute, { route: [{ destination: local }] }] };
  }
  return kubeObject(API.networking, 'VirtualService', ownName, namespace, { ...labels, [LABELS.role]: 'attach' }, {
    // Visible in the import's namespace only: callers of the Service in other namespaces keep reaching it locally.
    spec: { hosts: [fqdn], exportTo: ['.'], ...spec },
  });
}

/** `<namespace>/<name>` or `<name>` (in `namespace`). */
function parseVirtualServiceRef(ref: string, namespace: string): { namespace: string; name: string } {
  const [ns, name] = ref.includes('/') ? ref.split('/', 2) as [string, string] : [namespace, ref];
  checkDnsLabel(ns, 'namespace of the VirtualService', '--merge-into');
  if (!/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/.test(name)) throw new FederationInputError(`"${ref}" is not a VirtualService name (--merge-into)`, '--merge-into');
  return { namespace: ns, name };
}

/**
 * `--merge-into`: the split folded into the user's VirtualService, which sidecars use for the host. Weighted: every
 * HTTP (or TCP) route keeps its destinations, scaled to the local share, plus the import's share; by header: a route
 * for the header first. Computed from the spec recorded before meshfed first changed it, so a re-run never applies
 * the split twice; unimport restores that spec.
 */
function mergeAttach(
  snapshot: ConsumerSnapshot, record: ImportRecord, winner: KubeObject | undefined, remoteRoute: Record<string, unknown>,
  split: (destinations: Array<{ destination: unknown; weight: number }>) => Record<string, unknown>, warnings: string[],
): KubeObject {
  const attach = record.attach!;
  const target = parseVirtualServiceRef(attach.mergeInto!, record.namespace);
  const live = snapshot.existing.find((o) => o.kind === 'VirtualService' && o.metadata.namespace === target.namespace && o.metadata.name === target.name);
  if (!live || isManaged(live)) {
    throw new FederationInputError(`VirtualService ${target.namespace}/${target.name} was not found among the user's VirtualServices (--merge-into)`, '--merge-into');
  }
  if (!winner || winner.metadata.namespace !== target.namespace || winner.metadata.name !== target.name) {
    throw new FederationInputError(
      `VirtualService ${target.namespace}/${target.name} is not the one sidecars use for ${serviceFqdn(attach.service, record.namespace)}` +
      `${winner ? ` (the oldest, ${winner.metadata.namespace}/${winner.metadata.name}, is)` : ' (it does not route that host for sidecars)'} (--merge-into)`, '--merge-into');
  }
  const previous = readImportRecords(snapshot).find((r) => r.namespace === record.namespace && r.localName === record.localName)?.mergedInto;
  const originalSpec = previous && previous.namespace === target.namespace && previous.name === target.name
    ? previous.originalSpec
    : structuredClone((live.spec ?? {}) as Record<string, unknown>);
  record.mergedInto = { namespace: target.namespace, name: target.name, originalSpec };
  const spec = structuredClone(originalSpec) as { http?: Array<Record<string, unknown>>; tcp?: Array<Record<string, unknown>>; tls?: unknown[] };
  const what = `VirtualService ${target.namespace}/${target.name}`;
  if ('weight' in attach) {
    const scale = (routes: Array<Record<string, unknown>>, kind: 'http' | 'tcp'): Array<Record<string, unknown>> => routes.map((r, i) => {
      for (const field of ['redirect', 'directResponse', 'delegate']) {
        if (r[field] !== undefined) throw new FederationInputError(`${what}: http route ${i + 1} has ${field}, so it has no destinations to share with the import (--merge-into)`, '--merge-into');
      }
      if (kind === 'http' && (r.rewrite as { authority?: string } | undefined)?.authority) {
        throw new FederationInputError(`${what}: http route ${i + 1} already rewrites the authority, which the import's share needs (--merge-into)`, '--merge-into');
      }
      const destinations = (r.route as Array<{ destination: unknown; weight?: number }> | undefined) ?? [];
      const weights = destinations.map((d) => d.weight ?? (destinations.length === 1 ? 100 : 0));
      const total = weights.reduce((a, b) => a + b, 0) || 1;
      const localShare = 100 - attach.weight;
      const scaled = destinations.map((d, j) => ({ ...d, weight: Math.floor((weights[j]! * localShare) / total) }));
      const rest = localShare - scaled.reduce((a, d) => a + d.weight, 0);
      if (scaled.length) scaled[scaled.length - 1]!.weight += rest;
      const kept = scaled.filter((d) => d.weight > 0);
      if (kind === 'tcp') return { ...r, route: [...kept, { destination: (remoteRoute.route as Array<{ destination: unknown }>)[0]!.destination, weight: attach.weight }] };
      const folded = split(kept);
      return { ...r, ...folded, rewrite: { ...(r.rewrite as object | undefined), ...(folded.rewrite as object | undefined) } };
    });
    if (record.endpoint.protocol === 'HTTP') {
      if (!spec.http?.length) throw new FederationInputError(`${what} has no HTTP routes to fold the split into (--merge-into)`, '--merge-into');
      spec.http = scale(spec.http, 'http').map((r) => (Object.keys(r.rewrite as object).length ? r : (({ rewrite: _unused, ...rest }) => rest)(r)));
    } else {
      if (!spec.tcp?.length) throw new FederationInputError(`${what} has no TCP routes to fold the split into (--merge-into)`, '--merge-into');
      spec.tcp = scale(spec.tcp, 'tcp');
    }
  } else {
    spec.http = [{ name: `meshfed-${record.localName}`, ...remoteRoute }, ...(spec.http ?? [])];
  }
  warnings.push(`${what} is changed with your consent (--merge-into): the import's share is folded into its routes; kubectl meshfed unimport restores it`);
  return { apiVersion: API.networking, kind: 'VirtualService', metadata: { name: target.name, namespace: target.namespace }, spec };
}

/**
 * Removes an import: its own objects, and the binding's objects when no other import of the same export is
 * left; the egress gateway's routes are recomputed. The egress gateway itself stays.
 * @throws FederationInputError when the import does not exist
 */
export function planUnimport(snapshot: ConsumerSnapshot, input: { namespace: string; localName: string }): ClusterPlan {
  // Its own record may be marked as being removed (see REMOVING_ANNOTATION); imports others are removing are gone.
  const records = readImportRecords(snapshot, { removing: true });
  const record = records.find((r) => r.namespace === input.namespace && r.localName === input.localName);
  if (!record) {
    const known = records.map((r) => `${r.namespace}/${r.localName}`).join(', ') || 'none';
    throw new FederationInputError(`import ${input.namespace}/${input.localName} does not exist in cluster ${snapshot.clusterId} (imports: ${known})`, '--local-name');
  }
  const e = record.endpoint;
  const remaining = records.filter((r) => r !== record && !r.removing);
  const home = homeNamespaceOf(snapshot);
  const plan = emptyPlan(snapshot.clusterId);
  const del = (apiVersion: string, kind: string, namespace: string, name: string): void => {
    if (findObject(snapshot, kind, namespace, name)) plan.remove.push({ apiVersion, kind, namespace, name });
  };
  const own = names.import(record.localName);
  del(API.networking, 'VirtualService', record.namespace, own);
  if (record.attach && !record.mergedInto) del(API.networking, 'VirtualService', record.namespace, names.attach(record.attach.service));
  if (record.mergedInto) {
    // The user's VirtualService gets back the spec it had before --merge-into.
    const m = record.mergedInto;
    if (snapshot.existing.some((o) => o.kind === 'VirtualService' && o.metadata.namespace === m.namespace && o.metadata.name === m.name)) {
      plan.objects.push({ apiVersion: API.networking, kind: 'VirtualService', metadata: { name: m.name, namespace: m.namespace }, spec: structuredClone(m.originalSpec) });
      plan.consented = [`VirtualService/${m.namespace}/${m.name}`];
      plan.warnings.push(`VirtualService ${m.namespace}/${m.name} gets back the routes it had before the import was folded into it`);
    }
  }
  del(API.networking, 'DestinationRule', record.namespace, own);
  del(API.networking, 'ServiceEntry', record.namespace, own);
  del('v1', 'Service', record.namespace, record.localName);
  del('v1', 'ConfigMap', home, names.importRecord(record.namespace, record.localName));
  const binding = bindingLabel(e.providerClusterId, e.namespace, e.exportName);
  const stillBound = remaining.some((r) => bindingLabel(r.endpoint.providerClusterId, r.endpoint.namespace, r.endpoint.exportName) === binding);
  if (e.mode === 'boundary') {
    const placement = gatewaySetup(snapshot, 'egress').placement;
    if (!stillBound) {
      const name = names.binding(e.providerClusterId, e.namespace, e.exportName);
      del(API.networking, 'VirtualService', placement.namespace, name);
      del(API.networking, 'Gateway', placement.namespace, name);
      del(API.networking, 'DestinationRule', placement.namespace, name);
      del(API.networking, 'ServiceEntry', placement.namespace, name);
      del(API.security, 'AuthorizationPolicy', placement.namespace, name);
      del('v1', 'Secret', placement.namespace, name);
      del('v1', 'ConfigMap', placement.namespace, publishedCertificatesName(name));
      del('v1', 'ConfigMap', placement.namespace, publishedRequestName(name));
    } else {
      // The binding's hosts (attached Services) and its admitted namespaces are recomputed from the imports left.
      const credentials = readSecret(findObject(snapshot, 'Secret', placement.namespace, names.binding(e.providerClusterId, e.namespace, e.exportName)));
      if (credentials?.['tls.crt'] && credentials['tls.key'] && credentials['ca.crt']) {
        const survivor = remaining.find((r) => bindingLabel(r.endpoint.providerClusterId, r.endpoint.namespace, r.endpoint.exportName) === binding)!;
        try {
          plan.objects.push(...bindingObjects(survivor.endpoint, { certificatePem: credentials['tls.crt'], privateKeyPem: credentials['tls.key'], caCertificatePem: credentials['ca.crt'] }, placement, remaining, snapshot));
          plan.secretsWithPrivateKeys.push(`${placement.namespace}/${names.binding(e.providerClusterId, e.namespace, e.exportName)}`);
          // Rewritten without a pending request's key: its published copy goes too.
          del('v1', 'ConfigMap', placement.namespace, publishedRequestName(names.binding(e.providerClusterId, e.namespace, e.exportName)));
        } catch (error) {
          if (!(error instanceof FederationInputError)) throw error;
          plan.warnings.push(`the routes of ${binding} at the egress gateway were left as they are: ${error.message}`);
        }
      }
    }
    if (remaining.some((r) => r.endpoint.mode === 'boundary')) plan.objects.push(egressRoutes(remaining, placement));
    else del(API.networking, 'DestinationRule', placement.namespace, names.egressRoutes());
  }
  plan.prune.push({ selector: { [MANAGED_BY_LABEL]: MANAGED_BY, [LABELS.import]: importLabel(record.namespace, record.localName) }, kinds: [...PRUNABLE_KINDS], keep: [] });
  return finishPlan(plan);
}

/** One object a complete import has in the consumer cluster. */
export interface ImportObjectRef {
  kind: string;
  namespace: string;
  name: string;
}

/** Whether the objects an import needs to carry traffic are all in the consumer cluster, for `status`. */
export interface ImportState {
  /** `active` when nothing is missing, `incomplete` otherwise (running the import again recreates what is missing). */
  state: 'active' | 'incomplete';
  /** What is missing. A boundary binding Secret without a client certificate (only a pending key) counts as missing. */
  missing: ImportObjectRef[];
  /** Boundary: the client certificate the egress gateway presents, when the binding Secret holds one. */
  clientCertificatePem?: string;
}

/**
 * The objects {@link planImport} writes for one import that its traffic goes through, named as the planner names
 * them: the local Service and its VirtualService, then (shared-root) the hidden ServiceEntry and DestinationRule, or
 * (boundary) the binding's Secret, ServiceEntry, DestinationRule, Gateway and VirtualService next to the egress
 * gateway.
 */
export function importObjectRefs(snapshot: ConsumerSnapshot, record: ImportRecord): ImportObjectRef[] {
  const e = record.endpoint;
  const own = names.import(record.localName);
  const refs: ImportObjectRef[] = [
    { kind: 'Service', namespace: record.namespace, name: record.localName },
    { kind: 'VirtualService', namespace: record.namespace, name: own },
  ];
  if (e.mode === 'boundary') {
    const binding = names.binding(e.providerClusterId, e.namespace, e.exportName);
    // Where gatewaySetup places the egress gateway, without its checks: status reads, it does not plan.
    const placement = homeNamespaceOf(snapshot);
    for (const kind of ['Secret', 'ServiceEntry', 'DestinationRule', 'Gateway', 'VirtualService']) refs.push({ kind, namespace: placement, name: binding });
  } else {
    refs.push({ kind: 'ServiceEntry', namespace: record.namespace, name: own }, { kind: 'DestinationRule', namespace: record.namespace, name: own });
  }
  return refs;
}

/**
 * Whether an import recorded in the consumer cluster still has all its objects ({@link importObjectRefs}) and, in
 * boundary mode, a client certificate.
 *
 * ```ts
 * for (const record of readImportRecords(snapshot)) console.log(record.localName, importState(snapshot, record).state);
 * ```
 */
export function importState(snapshot: ConsumerSnapshot, record: ImportRecord): ImportState {
  let clientCertificatePem: string | undefined;
  const missing = importObjectRefs(snapshot, record).filter((ref) => {
    const live = findObject(snapshot, ref.kind, ref.namespace, ref.name);
    if (ref.kind !== 'Secret') return !live;
    // The certificate from the Secret's data when it was read, else as published beside it (status reads no Secret data).
    const dataRead = live?.data !== undefined;
    const stored = dataRead ? readSecret(live)?.['tls.crt'] || undefined : undefined;
    clientCertificatePem = dataRead ? stored : readPublishedCertificates(snapshot.existing, ref.namespace, ref.name)?.['tls.crt'] || undefined;
    // Who may not list Secrets there (the viewer role) sees the published certificate only.
    if (snapshot.unreadableSecrets?.includes(ref.namespace)) return !clientCertificatePem;
    if (!live) return true;
    if (dataRead) return !stored;
    // Listed as metadata: a Secret that only keeps a pending request's key has no certificate (and none is published).
    return !clientCertificatePem && live.metadata.annotations?.[REQUEST_NONCE_ANNOTATION] !== undefined;
  });
  return { state: missing.length === 0 ? 'active' : 'incomplete', missing, ...(clientCertificatePem ? { clientCertificatePem } : {}) };
}

/**
 * What a consumer should know before a shared-root import, which nothing else reports until the first call fails:
 * that the two meshes do not share one root CA (their workloads' mTLS handshake fails; verify reports it as MF0405),
 * and, when the admitted service accounts are known (an import with both contexts), that no pod of the import
 * namespace runs as one of them (the provider denies the others).
 *
 * ```ts
 * plan.warnings.push(...sharedRootWarnings(consumer, { providerClusterId: 'cluster2', providerRootCaFingerprint,
 *   namespace: 'default', serviceAccounts: ['default'] }));
 * ```
 * @param input.providerRootCaFingerprint SHA-256 fingerprint of the provider mesh's root CA; without it (or without
 *   the consumer's root CA) the roots are not compared
 * @param input.serviceAccounts the accounts the provider admits; without them the pods are not checked
 */
export function sharedRootWarnings(
  snapshot: ConsumerSnapshot,
  input: { providerClusterId: string; providerRootCaFingerprint?: string | undefined; namespace: string; serviceAccounts?: string[] | undefined },
): string[] {
  const warnings: string[] = [];
  if (snapshot.rootCaPem && input.providerRootCaFingerprint) {
    const consumerRootFingerprint = inspectCertificate(snapshot.rootCaPem).fingerprintSha256;
    if (consumerRootFingerprint !== input.providerRootCaFingerprint) {
      warnings.push(`shared-root needs one root CA, but this mesh's root (${consumerRootFingerprint.slice(0, 23)}…) is not that of cluster ${input.providerClusterId} ` +
        `(${input.providerRootCaFingerprint.slice(0, 23)}…): calls will fail the mTLS handshake; plug both meshes into one root CA, or export in boundary mode (--mode boundary)`);
    }
  }
  const admitted = input.serviceAccounts;
  if (admitted) {
    const accounts = [...new Set((snapshot.pods ?? []).filter((p) => p.namespace === input.namespace).map((p) => p.serviceAccount ?? 'default'))].sort();
    if (accounts.length > 0 && !accounts.some((a) => admitted.includes(a))) {
      warnings.push(`shared-root admits callers by identity: only service account${admitted.length > 1 ? 's' : ''} ${admitted.join(', ')} of namespace ${input.namespace}, ` +
        `but its pods run as ${accounts.join(', ')}; the provider will deny them: pass --service-account <account> (repeatable)`);
    }
  }
  return warnings;
}
