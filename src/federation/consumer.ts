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
import { FederationInputError } from './errors.js';
import {
  detectProtocol, type AttachSpec, type ClusterPlan, type ConsumerSnapshot, type ExportEndpoint, type GatewayPlacement, type ImportSpec,
  type KubeObject, type ServicePort,
} from './model.js';
import {
  bindingLabel, checkDnsLabel, FEDERATION_PORT, importHost, importLabel, LABELS, MANAGED_BY, MANAGED_BY_LABEL, names,
  serviceFqdn, workloadPrincipal,
} from './naming.js';
import {
  API, checkNotForeign, emptyPlan, findObject, finishPlan, gatewaySetup, homeNamespaceOf, isManaged, kubeObject,
  PRUNABLE_KINDS, meshfedLabels, objectKey, readSecret, secretData,
} from './objects.js';
import { importRecordObject, readImportRecords, type ImportRecord } from './records.js';
import {
  SERVICE_EXPORT_TO_ANNOTATION, serviceVisibleTo, sidecarFix, sidecarFor, unmetEgressNeeds, type EgressNeed,
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
  checkEndpoint(endpoint);
  checkDnsLabel(spec.consumerClusterId, 'consumer cluster id', '--to');
  checkDnsLabel(spec.namespace, 'namespace', '--namespace');
  const localName = checkDnsLabel(spec.localName ?? endpoint.exportName, 'local name', '--local-name');
  const record: ImportRecord = {
    consumerClusterId: spec.consumerClusterId,
    namespace: spec.namespace,
    localName,
    endpoint,
    ...(spec.attach ? { attach: spec.attach } : {}),
    ...(endpoint.mode === 'shared-root' && spec.serviceAccounts?.length ? { serviceAccounts: [...new Set(spec.serviceAccounts)].sort() } : {}),
  };
  for (const sa of record.serviceAccounts ?? []) checkDnsLabel(sa, 'service account', '--service-account');
  const existing = readImportRecords(snapshot).find((r) => r.namespace === spec.namespace && r.localName === localName);
  if (existing && bindingLabel(existing.endpoint.providerClusterId, existing.endpoint.namespace, existing.endpoint.exportName)
    !== bindingLabel(endpoint.providerClusterId, endpoint.namespace, endpoint.exportName)) {
    throw new FederationInputError(
      `${spec.namespace}/${localName} already imports ${existing.endpoint.providerClusterId}/${existing.endpoint.namespace}/${existing.endpoint.exportName}; ` +
      'choose another local name (--local-name) or unimport it first', '--local-name');
  }
  const home = homeNamespaceOf(snapshot);
  const plan = emptyPlan(snapshot.clusterId);
  const importLabels = meshfedLabels('import', {
    [LABELS.import]: importLabel(spec.namespace, localName),
    [LABELS.binding]: bindingLabel(endpoint.providerClusterId, endpoint.namespace, endpoint.exportName),
    [LABELS.provider]: endpoint.providerClusterId,
  });
  const localHost = serviceFqdn(localName, spec.namespace);

  // A selector-less ClusterIP Service: a DNS name and a VIP for the sidecar to intercept, on every Istio version.
  const port = localServicePort(endpoint);
  plan.objects.push(kubeObject('v1', 'Service', localName, spec.namespace, importLabels, { spec: { type: 'ClusterIP', ports: [port] } }));

  if (!snapshot.existingGateway) plan.objects.push(kubeObject('v1', 'Namespace', home, undefined, { [MANAGED_BY_LABEL]: MANAGED_BY }, {}));
  let remote: RemoteDestination;
  if (endpoint.mode === 'boundary') {
    if (!input.credentials) {
      throw new FederationInputError(`importing ${endpoint.providerClusterId}/${endpoint.namespace}/${endpoint.exportName} in boundary mode needs the client certificate from the export bundle (--bundle)`, '--bundle');
    }
    const setup = gatewaySetup(snapshot, 'egress');
    plan.warnings.push(...setup.warnings);
    if (setup.overlay) plan.overlay = setup.overlay;
    plan.objects.push(...setup.objects);
    plan.objects.push(...bindingObjects(endpoint, input.credentials, setup.placement, options.now));
    plan.secretsWithPrivateKeys.push(`${setup.placement.namespace}/${names.binding(endpoint.providerClusterId, endpoint.namespace, endpoint.exportName)}`);
    const bindings = [...readImportRecords(snapshot).filter((r) => !(r.namespace === spec.namespace && r.localName === localName)), record];
    plan.objects.push(egressRoutes(bindings, setup.placement));
    // Sidecars of the import namespace route to the egress gateway's Service: it must be exported to them.
    const egressService = setup.objects.find((o) => o.kind === 'Service' && o.metadata.name === setup.placement.serviceName);
    if (!serviceVisibleTo({ namespace: setup.placement.namespace }, snapshot.defaultServiceExportTo, spec.namespace)) {
      if (egressService) {
        egressService.metadata.annotations = { ...egressService.metadata.annotations, [SERVICE_EXPORT_TO_ANNOTATION]: '*' };
      } else {
        plan.warnings.push(
          `the mesh's defaultServiceExportTo ${JSON.stringify(snapshot.defaultServiceExportTo)} hides the egress gateway Service ${setup.placement.namespace}/${setup.placement.serviceName} ` +
          `from namespace ${spec.namespace} unless it says otherwise: kubectl annotate service ${setup.placement.serviceName} -n ${setup.placement.namespace} ${SERVICE_EXPORT_TO_ANNOTATION}=* --overwrite (verify reports it as MF0323)`,
        );
      }
    }
    remote = {
      namespace: setup.placement.namespace,
      destination: {
        host: serviceFqdn(setup.placement.serviceName, setup.placement.namespace),
        port: { number: setup.placement.port },
        subset: names.bindingSubset(endpoint.providerClusterId, endpoint.namespace, endpoint.exportName),
      },
      authority: endpoint.protocol === 'HTTP' ? endpoint.sni : undefined,
    };
  } else {
    const hidden = importHost(spec.namespace, localName);
    const name = names.import(localName);
    const address = endpoint.gateway.address;
    const isIp = /^\d{1,3}(\.\d{1,3}){3}$/.test(address) || address.includes(':');
    plan.objects.push(kubeObject(API.networking, 'ServiceEntry', name, spec.namespace, importLabels, {
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
    plan.objects.push(kubeObject(API.networking, 'DestinationRule', name, spec.namespace, importLabels, {
      spec: {
        host: hidden,
        exportTo: ['.'],
        trafficPolicy: { tls: { mode: 'ISTIO_MUTUAL', sni: endpoint.sni, ...(sans.length ? { subjectAltNames: sans } : {}) } },
      },
    }));
    remote = { namespace: spec.namespace, destination: { host: hidden, port: { number: FEDERATION_PORT } } };
    // The request's key signed the request only; shared-root traffic uses the workloads' own mesh certificates.
    const pendingKey = names.binding(endpoint.providerClusterId, endpoint.namespace, endpoint.exportName);
    if (findObject(snapshot, 'Secret', home, pendingKey)) plan.remove.push({ apiVersion: 'v1', kind: 'Secret', namespace: home, name: pendingKey });
  }

  // Shared-root: the path exists for the import namespace only (its ServiceEntry is not exported further), and so do its routes.
  const scope = endpoint.mode === 'shared-root' ? { exportTo: ['.'] } : {};
  plan.objects.push(kubeObject(API.networking, 'VirtualService', names.import(localName), spec.namespace, importLabels, {
    spec: { hosts: [localHost], ...scope, ...routesTo(endpoint, remote, endpoint.port.number) },
  }));
  plan.warnings.push(...visibilityWarnings(snapshot, spec.namespace, [
    { namespace: spec.namespace, host: localHost, port: endpoint.port.number, ports: [endpoint.port.number] },
    { namespace: remote.namespace, host: remote.destination.host, ports: [remote.destination.port.number] },
  ]));
  if (spec.attach) plan.objects.push(attachObject(snapshot, spec.attach, endpoint, remote, spec.namespace, importLabels, plan.warnings));
  plan.objects.push(importRecordObject(record, home));

  checkNotForeign(snapshot, plan.objects);
  const label = { [LABELS.import]: importLabel(spec.namespace, localName) };
  plan.prune.push({
    selector: { [MANAGED_BY_LABEL]: MANAGED_BY, ...label },
    kinds: [...PRUNABLE_KINDS],
    keep: plan.objects.filter((o) => o.metadata.labels?.[LABELS.import] === label[LABELS.import]).map(objectKey),
  });
  return { ...finishPlan(plan), record, localHost };
}

/**
 * What visibility settings of the consumer mesh keep the import namespace's workloads from reaching the import, with
 * the exact change: a Sidecar resource whose egress listeners do not select the local Service (on its port) and the
 * next hop (see visibility.ts).
 */
function visibilityWarnings(snapshot: ConsumerSnapshot, namespace: string, needs: EgressNeed[]): string[] {
  const root = snapshot.rootNamespace ?? 'istio-system';
  const labelSets = (snapshot.pods ?? []).filter((p) => p.namespace === namespace).map((p) => p.labels);
  const sidecars = new Map<string, KubeObject>();
  for (const labels of labelSets.length ? labelSets : [undefined]) {
    const sidecar = sidecarFor(snapshot.existing, namespace, root, labels);
    if (sidecar) sidecars.set(`${sidecar.metadata.namespace}/${sidecar.metadata.name}`, sidecar);
  }
  const warnings: string[] = [];
  for (const sidecar of sidecars.values()) {
    const unmet = unmetEgressNeeds(sidecar, needs);
    if (unmet.length === 0) continue;
    warnings.push(
      `Sidecar ${sidecar.metadata.namespace}/${sidecar.metadata.name} limits what the workloads of namespace ${namespace} reach, and not to ` +
      `${unmet.map((n) => `${n.namespace}/${n.host}${n.port !== undefined ? ` (port ${n.port})` : ''}`).join(', ')}: their calls to the import will not leave the pod. ` +
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

/** Consumer objects of one binding (one provider export), shared by every import of that export. */
function bindingObjects(endpoint: ExportEndpoint, credentials: ImportCredentials, placement: GatewayPlacement, now?: Date): KubeObject[] {
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
  return [
    kubeObject('v1', 'Secret', name, namespace, labels, {
      // Opaque, like the pending key Secret it replaces: a Secret's type cannot change.
      type: 'Opaque',
      data: secretData({ 'tls.crt': credentials.certificatePem, 'tls.key': credentials.privateKeyPem, 'ca.crt': credentials.caCertificatePem }),
    }),
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
          hosts: [host],
          tls: { mode: 'ISTIO_MUTUAL' },
        }],
      },
    }),
    kubeObject(API.networking, 'VirtualService', name, namespace, labels, {
      spec: {
        hosts: [host],
        gateways: [name],
        exportTo: ['.'],
        ...(endpoint.protocol === 'HTTP'
          ? { http: [{ match: [{ port: placement.port }], route: [{ destination: { host, port: { number: endpoint.gateway.port } } }] }] }
          : { tcp: [{ match: [{ port: placement.port }], route: [{ destination: { host, port: { number: endpoint.gateway.port } } }] }] }),
      },
    }),
  ];
}

/**
 * The DestinationRule of the consumer's egress gateway: one subset per imported export, each with the SNI the
 * egress gateway's Gateway server for that export matches. One object because two DestinationRules for one host
 * do not merge; visible to all namespaces because sidecars in every importing namespace use it.
 */
function egressRoutes(records: ImportRecord[], placement: GatewayPlacement): KubeObject {
  const subsets = new Map<string, { sni: string; http: boolean }>();
  for (const r of records) {
    if (r.endpoint.mode !== 'boundary') continue;
    const e = r.endpoint;
    subsets.set(names.bindingSubset(e.providerClusterId, e.namespace, e.exportName), { sni: e.sni, http: e.protocol === 'HTTP' });
  }
  return kubeObject(API.networking, 'DestinationRule', names.egressRoutes(), placement.namespace, meshfedLabels('egress-routes'), {
    spec: {
      host: serviceFqdn(placement.serviceName, placement.namespace),
      exportTo: ['*'],
      subsets: [...subsets.entries()].sort(([a], [b]) => a.localeCompare(b)).map(([name, s]) => ({
        name,
        trafficPolicy: {
          // HTTP/2 and gRPC stay HTTP/2 on the way to the egress gateway, whose port is not an HTTP port.
          ...(s.http ? { connectionPool: { http: { useClientProtocol: true } } } : {}),
          tls: { mode: 'ISTIO_MUTUAL', sni: s.sni },
        },
      })),
    },
  });
}

function attachObject(
  snapshot: ConsumerSnapshot, attach: AttachSpec, endpoint: ExportEndpoint, remote: RemoteDestination,
  namespace: string, labels: Record<string, string>, warnings: string[],
): KubeObject {
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
  const shortNames = new Set([attach.service, `${attach.service}.${namespace}`, `${attach.service}.${namespace}.svc`, fqdn]);
  for (const o of snapshot.existing) {
    if (o.kind !== 'VirtualService' || isManaged(o)) continue;
    const spec = o.spec as { hosts?: string[]; gateways?: string[] } | undefined;
    const forSidecars = !spec?.gateways || spec.gateways.includes('mesh');
    const sameNamespaceShort = (h: string): boolean => h === attach.service && o.metadata.namespace === namespace;
    if (forSidecars && spec?.hosts?.some((h) => (shortNames.has(h) && h !== attach.service) || sameNamespaceShort(h))) {
      warnings.push(
        `VirtualService ${o.metadata.namespace}/${o.metadata.name} already routes ${fqdn}; Istio does not merge two VirtualServices for one host on sidecars, ` +
        `so one of them is ignored: fold its routes into ${names.attach(attach.service)} or delete it`,
      );
    }
  }
  let spec: Record<string, unknown>;
  if ('weight' in attach) {
    if (!Number.isInteger(attach.weight) || attach.weight < 1 || attach.weight > 100) {
      throw new FederationInputError(`attach weight ${attach.weight} must be a whole percentage from 1 to 100 (--weight)`, '--weight');
    }
    const remoteShare = { destination: remote.destination, weight: attach.weight };
    if (endpoint.protocol === 'HTTP') {
      // Per-destination authority: only the remote share must carry the export host.
      const remoteRoute = remote.authority ? { ...remoteShare, headers: { request: { set: { host: remote.authority } } } } : remoteShare;
      const route = attach.weight === 100 ? [{ ...remoteRoute, weight: 100 }] : [{ destination: local, weight: 100 - attach.weight }, remoteRoute];
      spec = { http: [{ route }] };
    } else {
      const route = attach.weight === 100 ? [remoteShare] : [{ destination: local, weight: 100 - attach.weight }, remoteShare];
      spec = { tcp: [{ match: [{ port: localPort.port }], route }] };
    }
  } else {
    if (endpoint.protocol !== 'HTTP') {
      throw new FederationInputError(`export ${endpoint.namespace}/${endpoint.exportName} is TCP: header matching needs HTTP; attach by --weight instead`, '--header');
    }
    if (!/^[a-z0-9-]+$/i.test(attach.header.name)) {
      throw new FederationInputError(`header name "${attach.header.name}" is not an HTTP header name (--header)`, '--header');
    }
    spec = {
      http: [
        {
          match: [{ headers: { [attach.header.name.toLowerCase()]: { exact: attach.header.value } } }],
          route: [{ destination: remote.destination }],
          ...(remote.authority ? { rewrite: { authority: remote.authority } } : {}),
        },
        { route: [{ destination: local }] },
      ],
    };
  }
  // Shared-root: the remote share reaches the provider only from the import namespace (see the ServiceEntry), so the
  // attach applies there alone; callers in other namespaces keep the local Service as it was.
  return kubeObject(API.networking, 'VirtualService', names.attach(attach.service), namespace, { ...labels, [LABELS.role]: 'attach' }, {
    spec: { hosts: [fqdn], ...(endpoint.mode === 'shared-root' ? { exportTo: ['.'] } : {}), ...spec },
  });
}

/**
 * Removes an import: its own objects, and the binding's objects when no other import of the same export is
 * left; the egress gateway's routes are recomputed. The egress gateway itself stays.
 * @throws FederationInputError when the import does not exist
 */
export function planUnimport(snapshot: ConsumerSnapshot, input: { namespace: string; localName: string }): ClusterPlan {
  const records = readImportRecords(snapshot);
  const record = records.find((r) => r.namespace === input.namespace && r.localName === input.localName);
  if (!record) {
    const known = records.map((r) => `${r.namespace}/${r.localName}`).join(', ') || 'none';
    throw new FederationInputError(`import ${input.namespace}/${input.localName} does not exist in cluster ${snapshot.clusterId} (imports: ${known})`, '--local-name');
  }
  const e = record.endpoint;
  const remaining = records.filter((r) => r !== record);
  const home = homeNamespaceOf(snapshot);
  const plan = emptyPlan(snapshot.clusterId);
  const del = (apiVersion: string, kind: string, namespace: string, name: string): void => {
    if (findObject(snapshot, kind, namespace, name)) plan.remove.push({ apiVersion, kind, namespace, name });
  };
  const own = names.import(record.localName);
  del(API.networking, 'VirtualService', record.namespace, own);
  if (record.attach) del(API.networking, 'VirtualService', record.namespace, names.attach(record.attach.service));
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
      del('v1', 'Secret', placement.namespace, name);
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
    if (live && ref.kind === 'Secret') {
      clientCertificatePem = readSecret(live)?.['tls.crt'] || undefined;
      return !clientCertificatePem;
    }
    return !live;
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
