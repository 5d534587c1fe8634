/**
 * The part of Istio's Sidecar resource that decides what a workload's sidecar can reach: its egress listeners.
 * A sidecar uses the first Sidecar of its namespace whose `workloadSelector` its labels carry (those with a selector
 * first, oldest first), else the namespace's selector-less one, else the mesh root namespace's selector-less one
 * (`pilot/pkg/model/push_context.go` `getSidecarScope` and `initSidecarScopes` at 1.9.1). An egress listener's hosts
 * are `namespace/dnsName`: `.` is the Sidecar's namespace, `*` any namespace, `~` none; a Service, ServiceEntry or
 * VirtualService is in scope when a host of its own namespace (or of `*`) matches one of its hosts
 * (`pilot/pkg/model/sidecar.go` `convertIstioListenerToWrapper`, `selectServices`, `matchingService`,
 * `selectVirtualServices` at 1.9.1). A listener with a port builds the outbound listener of that port only and
 * trims the services it selects to that port; the selector-less listener covers every other port. The destinations
 * of the VirtualServices a listener selects are in scope too ("Infer more possible destinations from virtual
 * services", `pilot/pkg/model/sidecar.go` `ConvertToSidecarScope`, at Istio main eed52ebb66ad — the oracle's pin —
 * and in the 1.9 line's form `virtualServiceDestinations`): a Sidecar that does not list the egress gateway's
 * namespace still reaches it through the import's VirtualService.
 * Ingress listeners, `outboundTrafficPolicy`, `bind`, `captureMode` and `localhost` are not modelled (fail loudly).
 */
import type { ClusterView, KubeObject } from '../emulator/runtime.js';
import { labelsMatch, meshSettings, ref, specOf, unmodelled } from './world.js';
import type { Spec } from './world.js';

/** One egress listener: its port (undefined: all other ports) and its hosts as `[namespace, dnsName]`. */
export interface EgressListener { port?: number; hosts: Array<[string, string]> }

/** The egress scope of one sidecar: the Sidecar it comes from and its listeners. */
export interface SidecarScope { sidecar: KubeObject; listeners: EgressListener[] }

/** Fails loudly on the parts of a Sidecar resource the model does not implement. */
export function assertModelledSidecar(sidecar: KubeObject): void {
  const spec = specOf(sidecar);
  for (const k of Object.keys(spec)) if (!['workloadSelector', 'egress'].includes(k)) unmodelled(`${ref(sidecar)}: spec.${k} (Sidecar resources: only workloadSelector and egress are modelled)`);
  for (const e of (spec['egress'] as Spec[] | undefined) ?? []) {
    for (const k of Object.keys(e)) if (!['port', 'hosts'].includes(k)) unmodelled(`${ref(sidecar)}: egress[].${k}`);
  }
}

function byAge(a: KubeObject, b: KubeObject): number {
  return (a.metadata.creationTimestamp ?? '').localeCompare(b.metadata.creationTimestamp ?? '') || a.metadata.name.localeCompare(b.metadata.name);
}

/** The Sidecar that configures `pod`'s sidecar, as getSidecarScope picks it; undefined: Istio's default (everything). */
export function sidecarScopeFor(cluster: ClusterView, pod: KubeObject): SidecarScope | undefined {
  const ns = pod.metadata.namespace ?? 'default';
  const all = cluster.list('networking.istio.io', 'Sidecar');
  const selectorOf = (s: KubeObject): Record<string, string> | undefined => (specOf(s)['workloadSelector'] as Spec | undefined)?.['labels'] as Record<string, string> | undefined;
  const inNs = all.filter((s) => s.metadata.namespace === ns).sort(byAge);
  const root = meshSettings(cluster).rootNamespace;
  const chosen = inNs.find((s) => selectorOf(s) && labelsMatch(selectorOf(s), pod.metadata.labels))
    ?? inNs.find((s) => !selectorOf(s))
    ?? all.filter((s) => s.metadata.namespace === root && !selectorOf(s)).sort(byAge)[0];
  if (!chosen) return undefined;
  assertModelledSidecar(chosen);
  const sidecarNs = chosen.metadata.namespace ?? 'default';
  const listeners = ((specOf(chosen)['egress'] as Spec[] | undefined) ?? []).map((e): EgressListener => ({
    ...((e['port'] as Spec | undefined)?.['number'] !== undefined ? { port: (e['port'] as Spec)['number'] as number } : {}),
    hosts: ((e['hosts'] as string[] | undefined) ?? []).map((h): [string, string] => {
      const [n, host] = h.includes('/') ? [h.slice(0, h.indexOf('/')), h.slice(h.indexOf('/') + 1)] : ['*', h];
      // The namespace-relative form is rewritten to the Sidecar's own namespace.
      return [n === '.' ? sidecarNs : n, host.toLowerCase()];
    }),
  }));
  return { sidecar: chosen, listeners };
}

/** Istio's `host.Name.Matches` for an egress host against a host of a service or VirtualService. */
function hostMatch(egress: string, host: string): boolean {
  if (egress === '*') return true;
  if (egress.startsWith('*.')) return host.endsWith(egress.slice(1)) || host === egress;
  return egress === host;
}

function listenerSelects(listener: EgressListener, namespace: string, hosts: string[]): boolean {
  return listener.hosts.some(([n, h]) => n !== '~' && (n === '*' || n === namespace) && hosts.some((x) => hostMatch(h, x)));
}

/** The egress listener that handles outbound traffic on `port`: the one for that port, else the port-less one. */
export function listenerFor(scope: SidecarScope, port: number): EgressListener | undefined {
  return scope.listeners.find((l) => l.port === port) ?? scope.listeners.find((l) => l.port === undefined);
}

/**
 * Whether a service (its namespace, host and ports) is in the scope: selected by the listener of `port` (outbound
 * listeners), or, with `port` undefined, by any listener (the clusters the sidecar has).
 */
export function serviceInScope(scope: SidecarScope, namespace: string, host: string, ports: number[], port?: number): boolean {
  if (port !== undefined) {
    const listener = listenerFor(scope, port);
    return listener !== undefined && listenerSelects(listener, namespace, [host]) && (listener.port === undefined || ports.includes(listener.port));
  }
  return scope.listeners.some((l) => listenerSelects(l, namespace, [host]) && (l.port === undefined || ports.includes(l.port)));
}

/** Whether a VirtualService is selected by the listener of `port` (selectVirtualServices: namespace and host). */
export function virtualServiceInScope(scope: SidecarScope, vs: KubeObject, port: number): boolean {
  const listener = listenerFor(scope, port);
  const hosts = ((specOf(vs)['hosts'] as string[] | undefined) ?? []).map((h) => h.toLowerCase());
  const ns = vs.metadata.namespace ?? 'default';
  // Short VirtualService hosts are written relative to the VirtualService's namespace.
  const expanded = hosts.map((h) => (h.includes('.') || h === '*' ? h : `${h}.${ns}.svc.cluster.local`));
  return listener !== undefined && listenerSelects(listener, ns, [...hosts, ...expanded]);
}

/** The hosts (and the port, when the route names one) a VirtualService's routes send to, short names resolved. */
function destinationsOf(vs: KubeObject): Array<{ host: string; port?: number }> {
  const ns = vs.metadata.namespace ?? 'default';
  const out: Array<{ host: string; port?: number }> = [];
  for (const kind of ['http', 'tcp', 'tls']) {
    for (const route of (specOf(vs)[kind] as Spec[] | undefined) ?? []) {
      for (const r of (route['route'] as Spec[] | undefined) ?? []) {
        const d = (r['destination'] as Spec | undefined) ?? {};
        const h = ((d['host'] as string | undefined) ?? '').toLowerCase();
        if (!h) continue;
        const port = (d['port'] as Spec | undefined)?.['number'] as number | undefined;
        out.push({ host: h.includes('.') ? h : `${h}.${ns}.svc.cluster.local`, ...(port !== undefined ? { port } : {}) });
      }
    }
  }
  return out;
}

/**
 * Whether a service is in scope as the destination of a VirtualService some egress listener selects (Istio adds
 * those destinations to the listener's services; see the file comment). `virtualServices`: the mesh-bound
 * VirtualServices visible to the sidecar's namespace.
 */
export function inferredFromVirtualServices(scope: SidecarScope, virtualServices: KubeObject[], host: string, ports: number[]): boolean {
  return scope.listeners.some((listener) => virtualServices.some((vs) => {
    const ns = vs.metadata.namespace ?? 'default';
    const hosts = ((specOf(vs)['hosts'] as string[] | undefined) ?? []).map((h) => h.toLowerCase());
    const expanded = hosts.map((h) => (h.includes('.') || h === '*' ? h : `${h}.${ns}.svc.cluster.local`));
    if (!listenerSelects(listener, ns, [...hosts, ...expanded])) return false;
    return destinationsOf(vs).some((d) => d.host === host && (d.port === undefined || ports.includes(d.port)));
  }));
}
