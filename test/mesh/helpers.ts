/** Shared helpers of the mesh model tests. */
import type { KubeObject } from '../support/emulator/runtime.js';
import { simulateCurl } from '../support/mesh/index.js';
import type { ProxyRegistry } from '../support/mesh/index.js';
import type { staticWorld } from '../support/mesh/world.js';

export type World = ReturnType<typeof staticWorld>;

/** Access logs written by the proxies a request crossed, by `cluster/namespace/pod`. */
export function recordingProxies(): ProxyRegistry & { logs: Map<string, string[]>; logOf(pod: string): string } {
  const logs = new Map<string, string[]>();
  return {
    logs,
    isStopped: () => false,
    accessLog(cluster, namespace, pod, line) {
      const key = `${cluster}/${namespace}/${pod}`;
      logs.set(key, [...(logs.get(key) ?? []), line]);
    },
    logOf(pod) {
      return [...logs.entries()].filter(([k]) => k.endsWith(`/${pod}`)).flatMap(([, v]) => v).join('\n');
    },
  };
}

/** Stored objects are arbitrary JSON: fault tests reach into them freely. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Loose = KubeObject & Record<string, any>;

/** Changes one stored object in place: `edit` receives a copy and the result replaces it. */
export function edit(world: World, cluster: string, group: string, kind: string, namespace: string, name: string, change: (o: Loose) => void): void {
  const obj = world.cluster(cluster)!.get(group, kind, namespace, name);
  if (!obj) throw new Error(`no ${kind} ${namespace}/${name} in ${cluster}`);
  change(obj as Loose);
  world.add(cluster, obj);
}

/** Runs a client command in a pod and returns its output, exit code, trace and the proxies' access logs. */
export async function run(world: World, cluster: string, namespace: string, pod: string, argv: string[], random = () => 0) {
  const proxies = recordingProxies();
  const result = await simulateCurl(world, { cluster, namespace, pod }, argv, { proxies, random });
  return { ...result, proxies };
}

/**
 * Runs every Istio proxy of the world (sidecars, gateways) and istiod on Istio `version`: the model follows the release
 * of each pod's proxyv2 image.
 */
export function onIstio(world: World, version: string): World {
  for (const cluster of world.clusters()) {
    for (const pod of cluster.list('', 'Pod')) {
      const spec = pod.spec as { containers?: Array<{ image: string }> };
      if (!spec.containers?.some((c) => /(^|\/)(proxyv2|pilot):/.test(c.image))) continue;
      for (const c of spec.containers) c.image = c.image.replace(/(^|\/)(proxyv2|pilot):[^@\s]+$/, `$1$2:${version}`);
      world.add(cluster.name, pod);
    }
  }
  return world;
}
