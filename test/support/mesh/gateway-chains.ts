/**
 * The filter chains istiod builds for a gateway listener's AUTO_PASSTHROUGH servers, as far as they decide whether
 * Envoy accepts the listener at all. Since Istio 1.9.5 / 1.10.0 (the fix of ISTIO-SECURITY-2021-006;
 * `PILOT_ENABLE_LEGACY_AUTO_PASSTHROUGH` defaults to false, `pilot/pkg/features/pilot.go`), an AUTO_PASSTHROUGH
 * server gets one filter chain per service it covers, per port and per DestinationRule subset, matching the SNI
 * `outbound_.<port>_.<subset>_.<host>` (`pilot/pkg/networking/core/v1alpha3/gateway.go`
 * `builtAutoPassthroughFilterChains` at 1.10.0 and 1.18.0; `pilot/pkg/networking/core/gateway.go` at 1.30.3). Nothing
 * removes a chain another server of the same port already produced: `MergeGateways` (`pilot/pkg/model/gateway.go`)
 * drops a server only when its literal hosts repeat an earlier server's (`CheckDuplicates`), so a `*.local` server and
 * a server listing `postgres.db.svc.cluster.local` both emit `outbound_.5432_._.postgres.db.svc.cluster.local`, and
 * Envoy rejects the listener ("multiple filter chains with the same matching rules are defined"). Before 1.9.5 the
 * chain matches the server's literal hosts (legacy `sni_cluster`), so those two servers do not collide.
 */
import type { ClusterView, KubeObject } from '../emulator/runtime.js';
import { destinationRuleFor, registry } from './istio.js';
import { containersOf, specOf } from './world.js';
import type { Spec } from './world.js';

/** Major, minor and patch of a proxy image tag (`docker.io/istio/proxyv2:1.9.5`); undefined for other tags. */
export function proxyRelease(image: string): [number, number, number] | undefined {
  const m = /:(\d+)\.(\d+)(?:\.(\d+))?/.exec(image);
  return m ? [Number(m[1]), Number(m[2]), Number(m[3] ?? 0)] : undefined;
}

/** Whether istiod builds per-service AUTO_PASSTHROUGH filter chains for this gateway (1.9.5 and later). */
export function perServicePassthroughChains(pod: KubeObject): boolean {
  const release = proxyRelease(containersOf(pod)[0]?.image ?? '');
  if (!release) return true;
  const [major, minor, patch] = release;
  return major > 1 || minor > 9 || (minor === 9 && patch >= 5);
}

/** Istio's `host.Name.SubsetOf`: the service host is the server host, or falls under its wildcard. */
function subsetOf(service: string, serverHost: string): boolean {
  if (serverHost === '*') return true;
  if (serverHost.startsWith('*.')) return service.endsWith(serverHost.slice(1));
  return service === serverHost;
}

/** A server of a gateway listener: the Gateway it comes from and the server as written. */
export interface ListenerServer { gateway: KubeObject; server: Spec }

/**
 * The SNI a listener's AUTO_PASSTHROUGH filter chains would match more than once, with the Gateways whose servers
 * produce it; undefined when every chain is distinct (or the gateway builds legacy literal-host chains).
 */
export function duplicatePassthroughChain(cluster: ClusterView, pod: KubeObject, servers: ListenerServer[]): { sni: string; gateways: string[] } | undefined {
  if (!perServicePassthroughChains(pod)) return undefined;
  const gwNs = pod.metadata.namespace ?? 'default';
  // MergeGateways keeps the first server of a port for each literal host list it has not seen (CheckDuplicates).
  const seenHosts = new Set<string>();
  const passthrough = servers.filter(({ server }) => (server['tls'] as Spec | undefined)?.['mode'] === 'AUTO_PASSTHROUGH').filter(({ server }) => {
    const hosts = ((server['hosts'] as string[] | undefined) ?? []);
    if (hosts.some((h) => seenHosts.has(h))) return false;
    hosts.forEach((h) => seenHosts.add(h));
    return true;
  });
  if (passthrough.length < 2) return undefined;
  // Services the gateway proxy sees (exportTo), mesh-internal only, as in builtAutoPassthroughFilterChains.
  const services = registry(cluster, gwNs).filter((s) => s.kind === 'Service' || specOf(s.object)['location'] !== 'MESH_EXTERNAL');
  const producers = new Map<string, Set<string>>();
  for (const { gateway, server } of passthrough) {
    const hosts = ((server['hosts'] as string[] | undefined) ?? []).map((h) => (h.includes('/') ? h.split('/')[1]! : h).toLowerCase());
    const produced = new Set<string>();
    for (const svc of services) {
      if (!hosts.some((h) => subsetOf(svc.host, h))) continue;
      const dr = destinationRuleFor(cluster, gwNs, svc.host, svc.namespace);
      const subsets = dr ? ((specOf(dr)['subsets'] as Spec[] | undefined) ?? []).map((s) => s['name'] as string) : [];
      for (const port of svc.ports) {
        produced.add(`outbound_.${port.number}_._.${svc.host}`);
        for (const subset of subsets) produced.add(`outbound_.${port.number}_.${subset}_.${svc.host}`);
      }
    }
    for (const sni of produced) {
      const from = producers.get(sni) ?? new Set<string>();
      from.add(`${gateway.metadata.namespace}/${gateway.metadata.name}`);
      producers.set(sni, from);
    }
  }
  for (const [sni, from] of [...producers.entries()].sort(([a], [b]) => a.localeCompare(b))) {
    // One Gateway with two servers covering a host also duplicates: count servers, not Gateways.
    const count = passthrough.filter(({ server }) => ((server['hosts'] as string[] | undefined) ?? [])
      .some((h) => {
        const m = /^outbound_\.\d+_\.[^_]*_\.(.+)$/.exec(sni);
        return m !== null && subsetOf(m[1]!, (h.includes('/') ? h.split('/')[1]! : h).toLowerCase());
      })).length;
    if (count > 1) return { sni, gateways: [...from].sort() };
  }
  return undefined;
}
