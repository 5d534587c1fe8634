/**
 * Istio configuration lookups as a proxy sees them: service registry (Kubernetes Services and ServiceEntries),
 * exportTo visibility, host name expansion and matching, VirtualService and DestinationRule selection with
 * Istio's precedence, PeerAuthentication mode, endpoints with labels.
 */
import type { ClusterView, KubeObject } from '../emulator/runtime.js';
import {
  CLUSTER_DOMAIN, isPodReady, labelsMatch, meshSettings, podIp, ref, specOf, targetPortOn, unmodelled,
} from './world.js';
import type { Spec } from './world.js';
import { assertModelledSidecar } from './sidecar-scope.js';

/** A port of a registry service. `protocol` is Istio's: from the port name / appProtocol, or 'auto'. */
export interface ServicePort {
  number: number;
  name?: string;
  protocol: 'http' | 'tcp' | 'tls' | 'auto';
  /** For Kubernetes Services: the raw port object (targetPort resolution). */
  raw: Spec;
}

/** One host of the service registry. */
export interface RegistryService {
  host: string;
  namespace: string;
  kind: 'Service' | 'ServiceEntry';
  object: KubeObject;
  ports: ServicePort[];
  /** Virtual IPs (ClusterIP, ServiceEntry addresses). */
  addresses: string[];
}

/** One endpoint a proxy can send to. */
export interface Endpoint {
  address: string;
  port: number;
  labels: Record<string, string>;
  pod?: KubeObject;
}

export function expandHost(host: string, namespace: string): string {
  if (host === '*' || host.includes('.')) return host.toLowerCase();
  return `${host}.${namespace}.svc.${CLUSTER_DOMAIN}`.toLowerCase();
}

export function hostMatches(pattern: string, host: string): boolean {
  if (pattern === '*') return true;
  if (pattern.startsWith('*')) return host.endsWith(pattern.slice(1));
  return pattern === host;
}

/** 0 for an exact match, larger for less specific wildcards, -1 for none. */
function matchRank(pattern: string, host: string): number {
  if (pattern === host) return 0;
  if (!hostMatches(pattern, host)) return -1;
  return 1000 - pattern.length;
}

function protocolOf(name: string | undefined, appProtocol: string | undefined): ServicePort['protocol'] {
  const p = (appProtocol ?? name ?? '').toLowerCase().split('-')[0]!;
  if (['http', 'http2', 'grpc', 'grpc-web', 'h2c'].includes(p)) return 'http';
  if (['https', 'tls'].includes(p)) return 'tls';
  if (['tcp', 'mongo', 'mysql', 'redis'].includes(p)) return 'tcp';
  return 'auto';
}

function exportedTo(exportTo: string[] | undefined, ownNs: string, fromNs: string): boolean {
  if (!exportTo || exportTo.length === 0) return true;
  return exportTo.some((e) => e === '*' || e === fromNs || (e === '.' && ownNs === fromNs));
}

export function visibleTo(obj: KubeObject, fromNs: string): boolean {
  const ns = obj.metadata.namespace ?? 'default';
  const annotation = obj.metadata.annotations?.['networking.istio.io/exportTo'];
  const exportTo = obj.kind === 'Service' ? annotation?.split(',').map((s) => s.trim()) : specOf(obj)['exportTo'] as string[] | undefined;
  return exportedTo(exportTo, ns, fromNs);
}

function byAge(a: KubeObject, b: KubeObject): number {
  const ta = a.metadata.creationTimestamp ?? '';
  const tb = b.metadata.creationTimestamp ?? '';
  return ta === tb ? `${a.metadata.namespace}/${a.metadata.name}`.localeCompare(`${b.metadata.namespace}/${b.metadata.name}`) : ta.localeCompare(tb);
}

/** Fails loudly on cluster-wide Istio features that would change every proxy's behaviour. */
export function assertModelledCluster(cluster: ClusterView): void {
  for (const sidecar of cluster.list('networking.istio.io', 'Sidecar')) assertModelledSidecar(sidecar);
  // Istio's own telemetry filters (installed by 1.9-era profiles in the root namespace) do not change routing.
  const root = meshSettings(cluster).rootNamespace;
  const telemetry = /^(tcp-)?(stats-filter|metadata-exchange)-1\.\d+$/;
  const filter = cluster.list('networking.istio.io', 'EnvoyFilter').find((f) => !(f.metadata.namespace === root && telemetry.test(f.metadata.name)));
  if (filter) unmodelled(`${ref(filter)} (EnvoyFilter)`);
}

/**
 * Whether a Kubernetes Service is visible to proxies in `fromNs`: its `networking.istio.io/exportTo` annotation
 * (comma-separated, no trimming: `pilot/pkg/serviceregistry/kube/conversion.go` `ConvertService` at 1.9.1), else the
 * mesh's `defaultServiceExportTo`, of which Istio honours `.` and `*` (`pilot/pkg/model/push_context.go`
 * `initDefaultExportMaps` and `initServiceRegistry` at 1.9.1); `~` hides it from everyone.
 */
export function serviceVisibleTo(cluster: ClusterView, svc: KubeObject, fromNs: string): boolean {
  const ns = svc.metadata.namespace ?? 'default';
  const annotation = svc.metadata.annotations?.['networking.istio.io/exportTo'];
  if (annotation) {
    const list = annotation.split(',');
    if (list.includes('*')) return true;
    if (list.includes('~')) return false;
    return list.some((e) => ((e === '.' || e === ns) && fromNs === ns) || e === fromNs);
  }
  const defaults = meshSettings(cluster).defaultServiceExportTo;
  if (!defaults) return true;
  if (defaults.includes('.')) return fromNs === ns;
  return defaults.includes('*');
}

/** The service registry as seen from a proxy in `fromNs`. */
export function registry(cluster: ClusterView, fromNs: string): RegistryService[] {
  const out: RegistryService[] = [];
  for (const svc of cluster.list('', 'Service')) {
    if (!serviceVisibleTo(cluster, svc, fromNs)) continue;
    const spec = specOf(svc);
    const ns = svc.metadata.namespace ?? 'default';
    if (spec['type'] === 'ExternalName') continue;
    const clusterIP = spec['clusterIP'] as string | undefined;
    out.push({
      host: `${svc.metadata.name}.${ns}.svc.${CLUSTER_DOMAIN}`,
      namespace: ns,
      kind: 'Service',
      object: svc,
      ports: ((spec['ports'] as Spec[] | undefined) ?? []).map((p) => ({
        number: p['port'] as number, name: p['name'] as string | undefined, protocol: protocolOf(p['name'] as string | undefined, p['appProtocol'] as string | undefined), raw: p,
      })),
      addresses: clusterIP && clusterIP !== 'None' ? [clusterIP] : [],
    });
  }
  for (const se of cluster.list('networking.istio.io', 'ServiceEntry')) {
    if (!visibleTo(se, fromNs)) continue;
    const spec = specOf(se);
    for (const k of Object.keys(spec)) {
      if (!['hosts', 'addresses', 'ports', 'location', 'resolution', 'endpoints', 'exportTo', 'subjectAltNames'].includes(k)) unmodelled(`${ref(se)}: spec.${k}`);
    }
    const ports = ((spec['ports'] as Spec[] | undefined) ?? []).map((p) => ({
      number: p['number'] as number, name: p['name'] as string | undefined, protocol: protocolOf(p['protocol'] as string | undefined ?? p['name'] as string | undefined, undefined), raw: p,
    }));
    for (const host of (spec['hosts'] as string[] | undefined) ?? []) {
      out.push({ host: host.toLowerCase(), namespace: se.metadata.namespace ?? 'default', kind: 'ServiceEntry', object: se, ports, addresses: (spec['addresses'] as string[] | undefined) ?? [] });
    }
  }
  return out;
}

/** The registry service for an exact host name (Kubernetes Services win over ServiceEntries with the same host). */
export function serviceByHost(cluster: ClusterView, fromNs: string, host: string): RegistryService | undefined {
  const all = registry(cluster, fromNs).filter((s) => s.host === host.toLowerCase());
  return all.find((s) => s.kind === 'Service') ?? all.sort((a, b) => byAge(a.object, b.object))[0];
}

/** The VirtualService applying to `hosts` for a gateway (`mesh` for sidecars), visible from `fromNs`. */
export function virtualServiceFor(cluster: ClusterView, fromNs: string, gateway: string, hosts: string[]): { vs: KubeObject; host: string } | undefined {
  let best: { vs: KubeObject; host: string; rank: number } | undefined;
  for (const vs of cluster.list('networking.istio.io', 'VirtualService').sort(byAge)) {
    if (!visibleTo(vs, fromNs)) continue;
    const spec = specOf(vs);
    if (spec['delegate']) unmodelled(`${ref(vs)}: delegate`);
    const vsNs = vs.metadata.namespace ?? 'default';
    const gateways = ((spec['gateways'] as string[] | undefined) ?? ['mesh']).map((g) => normaliseGatewayRef(g, vsNs));
    if (!gateways.includes(gateway)) continue;
    for (const h of (spec['hosts'] as string[] | undefined) ?? []) {
      const pattern = expandHost(h, vsNs);
      for (const host of hosts) {
        const rank = matchRank(pattern, host);
        if (rank >= 0 && (!best || rank < best.rank)) best = { vs, host, rank };
      }
    }
  }
  return best && { vs: best.vs, host: best.host };
}

/** `mesh`, or `namespace/name` for a Gateway reference written relative to `namespace`. */
export function normaliseGatewayRef(g: string, namespace: string): string {
  if (g === 'mesh') return g;
  if (g.includes('/')) return g;
  if (g.includes('.')) {
    // The deprecated `name.namespace.svc.cluster.local` form.
    const [name, ns] = g.split('.');
    return `${ns}/${name}`;
  }
  return `${namespace}/${g}`;
}

/**
 * The DestinationRule for `host` as Istio picks it for a proxy in `proxyNs` (`pilot/pkg/model/push_context.go`
 * `DestinationRule`, 1.9.0; `destinationRule`, 1.30.3): the proxy's namespace first — for a proxy in the root namespace
 * only the root namespace's `exportTo: ["."]` rules — then the service's namespace, then the root namespace, each only
 * if exported to the proxy's namespace; never merged across namespaces. Within a namespace the most specific host; the
 * rules of one namespace for that host are merged, the oldest first: subsets appended (a repeated name is dropped),
 * the first top-level traffic policy kept (`pilot/pkg/model/destination_rule.go` `mergeDestinationRule`).
 */
export function destinationRuleFor(cluster: ClusterView, proxyNs: string, host: string, serviceNs: string | undefined): KubeObject | undefined {
  const root = meshSettings(cluster).rootNamespace;
  const all = cluster.list('networking.istio.io', 'DestinationRule');
  const privateOnly = (dr: KubeObject): boolean => {
    const e = (specOf(dr)['exportTo'] as string[] | undefined) ?? [];
    return e.length === 1 && e[0] === '.';
  };
  const steps: Array<{ ns: string | undefined; keep: (dr: KubeObject) => boolean }> = [
    { ns: proxyNs, keep: (dr) => (proxyNs === root ? privateOnly(dr) : visibleTo(dr, proxyNs)) },
    { ns: serviceNs, keep: (dr) => !privateOnly(dr) && visibleTo(dr, proxyNs) },
    { ns: root, keep: (dr) => !privateOnly(dr) && visibleTo(dr, proxyNs) },
  ];
  for (const { ns, keep } of steps) {
    if (ns === undefined) continue;
    let best = -1;
    const ranked: Array<{ dr: KubeObject; rank: number }> = [];
    for (const dr of all.filter((d) => (d.metadata.namespace ?? 'default') === ns).sort(byAge)) {
      if (!keep(dr)) continue;
      const spec = specOf(dr);
      if (spec['workloadSelector']) unmodelled(`${ref(dr)}: workloadSelector`);
      const rank = matchRank(expandHost(spec['host'] as string, ns), host);
      if (rank < 0) continue;
      ranked.push({ dr, rank });
      if (best < 0 || rank < best) best = rank;
    }
    if (best < 0) continue;
    const rules = ranked.filter((r) => r.rank === best).map((r) => r.dr);
    if (rules.length === 1) return rules[0];
    const merged = structuredClone(rules[0]!);
    const spec = specOf(merged);
    const subsets = [...((spec['subsets'] as Spec[] | undefined) ?? [])];
    for (const dr of rules.slice(1)) {
      for (const subset of (specOf(dr)['subsets'] as Spec[] | undefined) ?? []) if (!subsets.some((x) => x['name'] === subset['name'])) subsets.push(subset);
      if (spec['trafficPolicy'] === undefined && specOf(dr)['trafficPolicy'] !== undefined) spec['trafficPolicy'] = specOf(dr)['trafficPolicy'];
    }
    spec['subsets'] = subsets;
    return merged;
  }
  return undefined;
}

/** Pods selected by a Gateway's selector (across namespaces, Istio's default). */
export function gatewaysForPod(cluster: ClusterView, pod: KubeObject): KubeObject[] {
  return cluster.list('networking.istio.io', 'Gateway').filter((gw) => {
    const selector = specOf(gw)['selector'] as Record<string, string> | undefined;
    return selector !== undefined && Object.keys(selector).length > 0 && labelsMatch(selector, pod.metadata.labels);
  });
}

/** PeerAuthentication mTLS mode for a workload port: workload policy, then namespace, then mesh-wide. */
export function peerAuthenticationMode(cluster: ClusterView, pod: KubeObject, port: number): 'STRICT' | 'PERMISSIVE' | 'DISABLE' {
  const root = meshSettings(cluster).rootNamespace;
  const ns = pod.metadata.namespace ?? 'default';
  const pas = cluster.list('security.istio.io', 'PeerAuthentication');
  const selectorOf = (pa: KubeObject): Record<string, string> | undefined => (specOf(pa)['selector'] as Spec | undefined)?.['matchLabels'] as Record<string, string> | undefined;
  const ordered = [
    ...pas.filter((pa) => pa.metadata.namespace === ns && selectorOf(pa) && labelsMatch(selectorOf(pa), pod.metadata.labels)),
    ...pas.filter((pa) => pa.metadata.namespace === ns && !selectorOf(pa)),
    ...pas.filter((pa) => pa.metadata.namespace === root && !selectorOf(pa)),
  ];
  for (const pa of ordered) {
    const spec = specOf(pa);
    const portLevel = (spec['portLevelMtls'] as Record<string, Spec> | undefined)?.[String(port)];
    const mode = (portLevel?.['mode'] ?? (spec['mtls'] as Spec | undefined)?.['mode']) as string | undefined;
    if (mode === 'STRICT' || mode === 'PERMISSIVE' || mode === 'DISABLE') return mode;
  }
  return 'PERMISSIVE';
}

/** Endpoints of a registry service port: ready pods from Endpoints/EndpointSlices, or ServiceEntry endpoints. */
export function endpointsOf(cluster: ClusterView, svc: RegistryService, port: ServicePort): Endpoint[] | 'original-destination' {
  if (svc.kind === 'ServiceEntry') {
    const spec = specOf(svc.object);
    const resolution = (spec['resolution'] as string | undefined) ?? 'NONE';
    const eps = spec['endpoints'] as Spec[] | undefined;
    if (resolution === 'NONE') return 'original-destination';
    if (resolution !== 'STATIC' && resolution !== 'DNS') unmodelled(`${ref(svc.object)}: resolution ${resolution}`);
    if (!eps || eps.length === 0) {
      if (resolution === 'STATIC') return [];
      return [{ address: svc.host, port: port.number, labels: {} }];
    }
    return eps.map((e) => {
      for (const k of Object.keys(e)) if (!['address', 'ports', 'labels'].includes(k)) unmodelled(`${ref(svc.object)}: endpoints[].${k}`);
      const mapped = port.name ? (e['ports'] as Record<string, number> | undefined)?.[port.name] : undefined;
      return { address: e['address'] as string, port: mapped ?? port.number, labels: (e['labels'] as Record<string, string> | undefined) ?? {} };
    });
  }
  const ns = svc.namespace;
  const name = svc.object.metadata.name;
  const pods = cluster.list('', 'Pod', ns);
  const podFor = (ip: string, targetName?: string): KubeObject | undefined => pods.find((p) => (targetName ? p.metadata.name === targetName : podIp(p) === ip));
  const out: Endpoint[] = [];
  const slices = cluster.list('discovery.k8s.io', 'EndpointSlice', ns).filter((s) => s.metadata.labels?.['kubernetes.io/service-name'] === name);
  if (slices.length > 0) {
    for (const slice of slices) {
      const p = ((slice['ports'] as Spec[] | undefined) ?? []).find((sp) => (sp['name'] ?? '') === (port.name ?? ''));
      if (!p) continue;
      for (const e of (slice['endpoints'] as Spec[] | undefined) ?? []) {
        if ((e['conditions'] as Spec | undefined)?.['ready'] === false) continue;
        const target = (e['targetRef'] as Spec | undefined)?.['name'] as string | undefined;
        for (const address of (e['addresses'] as string[] | undefined) ?? []) {
          const pod = podFor(address, target);
          out.push({ address, port: p['port'] as number, labels: pod?.metadata.labels ?? {}, pod });
        }
      }
    }
    return out;
  }
  const endpoints = cluster.get('', 'Endpoints', ns, name);
  for (const subset of (endpoints?.['subsets'] as Spec[] | undefined) ?? []) {
    const p = ((subset['ports'] as Spec[] | undefined) ?? []).find((sp) => (sp['name'] ?? '') === (port.name ?? '') || ((subset['ports'] as Spec[]).length === 1 && !port.name));
    if (!p) continue;
    for (const a of (subset['addresses'] as Spec[] | undefined) ?? []) {
      const target = (a['targetRef'] as Spec | undefined)?.['name'] as string | undefined;
      const pod = podFor(a['ip'] as string, target);
      if (pod && !isPodReady(pod)) continue;
      out.push({ address: a['ip'] as string, port: p['port'] as number, labels: pod?.metadata.labels ?? {}, pod });
    }
  }
  return out;
}

/** Where a gateway pod listens for a Gateway server port: the targetPort of its Service's port, else the number. */
export function gatewayListenPort(cluster: ClusterView, pod: KubeObject, serverPort: number): number {
  const ns = pod.metadata.namespace ?? 'default';
  for (const svc of cluster.list('', 'Service', ns)) {
    const selector = specOf(svc)['selector'] as Record<string, string> | undefined;
    if (!selector || !labelsMatch(selector, pod.metadata.labels)) continue;
    const p = ((specOf(svc)['ports'] as Spec[] | undefined) ?? []).find((sp) => sp['port'] === serverPort);
    if (p) return targetPortOn(pod, p) ?? serverPort;
  }
  return serverPort;
}
