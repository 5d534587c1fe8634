/**
 * Istio's visibility rules that decide whether a proxy can see what a federation needs: a Service's `exportTo`
 * (annotation, else the mesh's `defaultServiceExportTo`) and the Sidecar resource that scopes a workload's egress.
 * Pure functions over snapshots; planners use them to refuse or warn, `verify` to report.
 */
import type { KubeObject } from './model.js';

/** The `networking.istio.io/exportTo` annotation of a Service, as Istio splits it (on commas, nothing trimmed). */
export const SERVICE_EXPORT_TO_ANNOTATION = 'networking.istio.io/exportTo';

/**
 * Whether proxies in `fromNamespace` see a Service of `namespace`: its exportTo annotation (`*`, `.`, `~` or namespace
 * names), else the mesh's `defaultServiceExportTo`, of which Istio honours `.` and `*` (`pilot/pkg/model/push_context.go`
 * `initServiceRegistry` at 1.9.1); no setting at all means everywhere.
 */
export function serviceVisibleTo(service: { namespace: string; exportTo?: string[] | undefined }, defaults: string[] | undefined, fromNamespace: string): boolean {
  const list = service.exportTo;
  if (list && list.length > 0) {
    if (list.includes('*')) return true;
    if (list.includes('~')) return false;
    return list.some((e) => ((e === '.' || e === service.namespace) && fromNamespace === service.namespace) || e === fromNamespace);
  }
  if (!defaults) return true;
  if (defaults.includes('.')) return fromNamespace === service.namespace;
  return defaults.includes('*');
}

/** The exportTo list of a Service object's annotation; undefined when it has none. */
export function serviceExportTo(service: KubeObject | { annotations?: Record<string, string> }): string[] | undefined {
  const annotations = 'metadata' in service ? (service as KubeObject).metadata.annotations : service.annotations;
  const text = annotations?.[SERVICE_EXPORT_TO_ANNOTATION];
  return text ? text.split(',') : undefined;
}

/** The annotation value that keeps a Service's current visibility and adds `namespaces`. */
export function widenedExportTo(current: string[] | undefined, defaults: string[] | undefined, namespaces: string[]): string {
  const base = current ?? (defaults?.includes('.') ? ['.'] : []);
  return [...new Set([...base, ...namespaces])].join(',');
}

/** What a workload must reach through its sidecar: a host of a namespace, on a port (its outbound listener). */
export interface EgressNeed {
  namespace: string;
  host: string;
  /** The port the workload connects to (needs an outbound listener there); undefined: a cluster is enough. */
  port?: number;
  /** Every port of the host (a port-scoped listener selects a host only if it has that port). */
  ports: number[];
  /**
   * The VirtualService host (in `namespace` of the VirtualService) whose route sends to this host: a listener that
   * selects that VirtualService takes its destinations into scope too.
   */
  via?: { namespace: string; host: string };
}

interface Listener { port?: number; hosts: Array<[string, string]> }

function listenersOf(sidecar: KubeObject): Listener[] {
  const ns = sidecar.metadata.namespace ?? 'default';
  const egress = ((sidecar.spec as { egress?: Array<{ port?: { number?: number }; hosts?: string[] }> } | undefined)?.egress) ?? [];
  return egress.map((e) => ({
    ...(e.port?.number !== undefined ? { port: e.port.number } : {}),
    hosts: (e.hosts ?? []).map((h): [string, string] => {
      const [n, host] = h.includes('/') ? [h.slice(0, h.indexOf('/')), h.slice(h.indexOf('/') + 1)] : ['*', h];
      return [n === '.' ? ns : n, host.toLowerCase()];
    }),
  }));
}

const hostMatch = (egress: string, host: string): boolean =>
  egress === '*' || egress === host || (egress.startsWith('*.') && host.endsWith(egress.slice(1)));

function selects(listener: Listener, need: EgressNeed): boolean {
  return listener.hosts.some(([n, h]) => n !== '~' && (n === '*' || n === need.namespace) && hostMatch(h, need.host))
    && (listener.port === undefined || need.ports.includes(listener.port));
}

/**
 * The Sidecar resource that scopes the workloads of `namespace` (with `podLabels`, when known): the first of that
 * namespace whose workloadSelector they carry, else its selector-less one, else the root namespace's selector-less
 * one (`pilot/pkg/model/push_context.go` `getSidecarScope` at 1.9.1); undefined when none applies.
 */
export function sidecarFor(sidecars: KubeObject[], namespace: string, rootNamespace: string, podLabels?: Record<string, string>): KubeObject | undefined {
  const byAge = (a: KubeObject, b: KubeObject): number =>
    String(a.metadata.creationTimestamp ?? '').localeCompare(String(b.metadata.creationTimestamp ?? '')) || a.metadata.name.localeCompare(b.metadata.name);
  const selectorOf = (s: KubeObject): Record<string, string> | undefined => (s.spec as { workloadSelector?: { labels?: Record<string, string> } } | undefined)?.workloadSelector?.labels;
  const inNamespace = sidecars.filter((s) => s.kind === 'Sidecar' && s.metadata.namespace === namespace).sort(byAge);
  const selected = podLabels ? inNamespace.find((s) => { const sel = selectorOf(s); return sel && Object.entries(sel).every(([k, v]) => podLabels[k] === v); }) : undefined;
  return selected ?? inNamespace.find((s) => !selectorOf(s))
    ?? sidecars.filter((s) => s.kind === 'Sidecar' && s.metadata.namespace === rootNamespace && !selectorOf(s)).sort(byAge)[0];
}

/**
 * The needs a Sidecar's egress listeners do not meet (`pilot/pkg/model/sidecar.go` `selectServices`,
 * `matchingService` at 1.9.1): a need with a port must be selected by the listener of that port (or the port-less
 * one); one without, by any listener.
 */
export function unmetEgressNeeds(sidecar: KubeObject, needs: EgressNeed[]): EgressNeed[] {
  const listeners = listenersOf(sidecar);
  return needs.filter((need) => {
    if (need.port !== undefined) {
      const listener = listeners.find((l) => l.port === need.port) ?? listeners.find((l) => l.port === undefined);
      return !listener || !selects(listener, need);
    }
    return !listeners.some((l) => selects(l, need) || inferred(l, need));
  });
}

/**
 * Istio adds the destinations of the VirtualServices a listener selects to its services ("Infer more possible
 * destinations from virtual services", `pilot/pkg/model/sidecar.go` `ConvertToSidecarScope`, present in the 1.9 line
 * and at main); a listener with a port keeps only destinations that have that port.
 */
function inferred(listener: Listener, need: EgressNeed): boolean {
  if (!need.via) return false;
  const via = need.via;
  return listener.hosts.some(([n, h]) => n !== '~' && (n === '*' || n === via.namespace) && hostMatch(h, via.host))
    && (listener.port === undefined || need.ports.includes(listener.port));
}

/**
 * What the workloads of an import's namespace must reach: the import's local Service (`host`, on the port they call)
 * and the next hop its VirtualService routes to, which a listener selecting the local host takes in too.
 */
export function importEgressNeeds(local: { namespace: string; host: string; port: number }, next: { namespace: string; host: string; ports: number[] }): EgressNeed[] {
  return [
    { namespace: local.namespace, host: local.host, port: local.port, ports: [local.port] },
    { ...next, via: { namespace: local.namespace, host: local.host } },
  ];
}

/**
 * The Sidecar resources that scope the workloads of `namespace`, one per distinct resource chosen for their label
 * sets (or for the namespace as a whole when no labels are known), keyed by `namespace/name`.
 */
export function sidecarsScoping(objects: KubeObject[], namespace: string, rootNamespace: string, labelSets: Array<Record<string, string>>): KubeObject[] {
  const sidecars = new Map<string, KubeObject>();
  for (const labels of labelSets.length ? labelSets : [undefined]) {
    const sidecar = sidecarFor(objects, namespace, rootNamespace, labels);
    if (sidecar) sidecars.set(`${sidecar.metadata.namespace}/${sidecar.metadata.name}`, sidecar);
  }
  return [...sidecars.values()];
}

/** Unmet needs as `namespace/host (port N)`, comma-separated. */
export function describeNeeds(unmet: EgressNeed[]): string {
  return unmet.map((n) => `${n.namespace}/${n.host}${n.port !== undefined ? ` (port ${n.port})` : ''}`).join(', ');
}

/** How to fix unmet needs: the egress hosts to add (and listeners to add for ports no listener covers). */
export function sidecarFix(sidecar: KubeObject, unmet: EgressNeed[]): string {
  const listeners = listenersOf(sidecar);
  const hosts = [...new Set(unmet.map((n) => `${n.namespace}/${n.host}`))];
  const portless = listeners.some((l) => l.port === undefined);
  const missingPorts = [...new Set(unmet.filter((n) => n.port !== undefined && !listeners.some((l) => l.port === n.port) && !portless).map((n) => n.port!))];
  const where = `Sidecar ${sidecar.metadata.namespace}/${sidecar.metadata.name}`;
  const parts = [`add ${hosts.map((h) => `"${h}"`).join(', ')} to the hosts of ${where}'s egress listener${portless ? ' without a port' : 's'}`];
  if (missingPorts.length) parts.push(`and an egress listener for port${missingPorts.length > 1 ? 's' : ''} ${missingPorts.join(', ')} (or one without a port)`);
  return parts.join(' ');
}
