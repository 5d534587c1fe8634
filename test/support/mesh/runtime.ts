/**
 * The mesh model as emulator container runtimes: istio-proxy (sidecar and gateway) containers, the client images
 * (curlimages/curl with its entrypoint, busybox) running commands through the model's sh and curl, and the
 * application images that serve until their pod goes away.
 */
import type { ClusterView, ContainerRun, ContainerRuntime, KubeObject, WorldView } from '../emulator/runtime.js';
import type { PathContext, ProxyRegistry } from './datapath.js';
import { Shell } from './shell.js';
import type { ProgramResult } from './curl.js';
import { containersOf, isProxyImage, UnmodelledFeatureError } from './world.js';
import { applicationOn } from './apps.js';

/** Exit code of a client container whose command met a feature the model does not implement. */
export const UNMODELLED_EXIT_CODE = 125;

/** Options of {@link meshRuntimes} and {@link simulateCurl}. */
export interface MeshOptions {
  /** Random source for load balancing and VirtualService weights. Default Math.random. */
  random?: () => number;
  /** How long a client waits for its pod's sidecar with holdApplicationUntilProxyStarts, in ms. Default 10000. */
  proxyStartTimeoutMs?: number;
  /**
   * istiod's pushes: when given, an Istio object (`*.istio.io`) is in effect in the data path only once a push came
   * after its last write; until then the proxies do not see it (a changed object is absent until pushed, not in its
   * old form). Default: none, every write is in effect at once. istiod debounces config events (`DebounceAfter`,
   * PILOT_DEBOUNCE_AFTER 100 ms, up to `DebounceMax`, PILOT_DEBOUNCE_MAX 10 s: istio.io/istio
   * pilot/pkg/features/tuning.go, and `debounce` in pilot/pkg/xds/discovery.go, at the commit test/istio/go.mod pins)
   * and then pushes to every proxy, so a probe right after an import can meet the old configuration on a real mesh.
   * The test decides when the push happens (an event of the run, not seconds of waiting).
   */
  pushes?: ConfigPushes;
}

/**
 * istiod's pushes, made when a test says so ({@link MeshOptions.pushes}): an Istio object is in effect once a push
 * came after its last write (its resourceVersion is at most the cluster's at the push).
 */
export class ConfigPushes {
  private readonly pushedUpTo = new Map<string, number>();
  /** How many pushes were made. */
  count = 0;

  /** istiod pushes now: everything each cluster holds (`resourceVersion()`: the last one handed out) is in effect. */
  push(clusters: ReadonlyArray<{ name: string; resourceVersion(): number }>): void {
    for (const cluster of clusters) this.pushedUpTo.set(cluster.name, cluster.resourceVersion());
    this.count += 1;
  }

  /** Whether the proxies of `cluster` see `object`, an Istio object, as it is stored. */
  pushed(cluster: string, object: KubeObject): boolean {
    return Number(object.metadata.resourceVersion) <= (this.pushedUpTo.get(cluster) ?? 0);
  }
}

/** The world as the proxies see it with pushes ({@link MeshOptions.pushes}): Istio objects not pushed yet are not there. */
export function pushedView(world: WorldView, pushes: ConfigPushes): WorldView {
  const pushed = (cluster: string, group: string, object: KubeObject) => !group.endsWith('istio.io') || pushes.pushed(cluster, object);
  const wrap = (cluster: ClusterView): ClusterView => ({
    name: cluster.name,
    list: (group, kind, namespace) => cluster.list(group, kind, namespace).filter((o) => pushed(cluster.name, group, o)),
    get: (group, kind, namespace, name) => {
      const object = cluster.get(group, kind, namespace, name);
      return object && pushed(cluster.name, group, object) ? object : undefined;
    },
  });
  return {
    clusters: () => world.clusters().map(wrap),
    cluster: (name) => {
      const cluster = world.cluster(name);
      return cluster ? wrap(cluster) : undefined;
    },
  };
}

type Key = string;
const keyOf = (cluster: string, namespace: string, pod: string): Key => `${cluster}/${namespace}/${pod}`;

/** Proxy containers running under the model: their logs (access logs) and whether they were stopped. */
export class ProxyTable implements ProxyRegistry {
  private readonly running = new Map<Key, (text: string) => void>();
  private readonly stopped = new Set<Key>();
  private readonly waiters = new Map<Key, Array<() => void>>();

  started(key: Key, log: (text: string) => void): void {
    this.running.set(key, log);
    this.stopped.delete(key);
    for (const w of this.waiters.get(key) ?? []) w();
    this.waiters.delete(key);
  }

  stop(key: Key): void {
    this.running.delete(key);
    this.stopped.add(key);
  }

  isStopped(cluster: string, namespace: string, pod: string): boolean {
    return this.stopped.has(keyOf(cluster, namespace, pod));
  }

  accessLog(cluster: string, namespace: string, pod: string, line: string): void {
    this.running.get(keyOf(cluster, namespace, pod))?.(`${line}\n`);
  }

  /** Resolves when the pod's proxy has started (true) or after `timeoutMs` (false). */
  waitStarted(key: Key, timeoutMs: number, signal?: AbortSignal): Promise<boolean> {
    if (this.running.has(key)) return Promise.resolve(true);
    return new Promise((resolve) => {
      const timer = setTimeout(() => resolve(false), timeoutMs);
      const list = this.waiters.get(key) ?? [];
      list.push(() => { clearTimeout(timer); resolve(true); });
      this.waiters.set(key, list);
      signal?.addEventListener('abort', () => { clearTimeout(timer); resolve(false); }, { once: true });
    });
  }
}

function untilAborted(signal: AbortSignal, code = 0): Promise<number> {
  return new Promise((resolve) => {
    if (signal.aborted) resolve(code);
    else signal.addEventListener('abort', () => resolve(code), { once: true });
  });
}

/**
 * The argv a client container runs: `command` replaces the image entrypoint; curlimages/curl's entrypoint runs
 * `curl "$@"` when the first argument starts with `-` (or is absent), and the arguments as a command otherwise.
 */
export function clientArgv(image: string, command: string[] | undefined, args: string[] | undefined): string[] {
  if (command && command.length > 0) return [...command, ...(args ?? [])];
  const a = args ?? [];
  if (/curlimages\/curl/.test(image) || /(^|\/)curl(:|@|$)/.test(image)) {
    if (a.length === 0) return ['curl'];
    if (a[0]!.startsWith('-')) return ['curl', ...a];
    return a;
  }
  return a.length > 0 ? a : ['sh'];
}

function isClientImage(image: string): boolean {
  return /curlimages\/curl/.test(image) || /(^|\/)(curl|busybox|alpine)(:|@|$)/.test(image);
}

async function runClientArgv(shell: Shell, argv: string[], sink: { out(t: string): void; err(t: string): void }): Promise<number> {
  const first = argv[0]?.replace(/^\/(usr\/)?bin\//, '');
  if ((first === 'sh' || first === 'ash' || first === 'bash') && argv[1] === '-c') return shell.run(argv[2] ?? '', sink);
  if (first === 'sh' && argv.length === 1) return 0;
  return shell.runArgv(argv, sink);
}

/** istio-init (proxyv2 image, iptables setup) is an init container: it is left to the emulator, which completes it. */
function isInitContainer(run: ContainerRun): boolean {
  const inits = ((run.pod['spec'] as { initContainers?: Array<{ name: string }> } | undefined)?.initContainers) ?? [];
  return inits.some((c) => c.name === run.container.name);
}

function holdsForProxy(pod: KubeObject): boolean {
  const raw = pod.metadata.annotations?.['proxy.istio.io/config'] ?? '';
  return /holdApplicationUntilProxyStarts["']?\s*:\s*true/.test(raw);
}

/**
 * The runtimes the emulator chains for every container: proxy, client, application. A container none of them
 * recognises is left to the next runtime (the emulator's default).
 */
export function meshRuntimes(options: MeshOptions = {}): ContainerRuntime[] {
  const proxies = new ProxyTable();
  const ctxFor = (run: ContainerRun): PathContext => ({ world: options.pushes ? pushedView(run.world, options.pushes) : run.world, proxies, random: options.random, trace: [] });

  const proxyRuntime: ContainerRuntime = (run) => {
    if (!isProxyImage(run.container.image) || isInitContainer(run)) return undefined;
    const key = keyOf(run.cluster.name, run.pod.metadata.namespace ?? 'default', run.pod.metadata.name);
    return (async () => {
      run.log(`info\tEnvoy proxy is ready (model of ${run.container.image})\n`);
      proxies.started(key, (text) => run.log(text));
      const code = await untilAborted(run.signal);
      proxies.stop(key);
      return code;
    })();
  };

  const clientRuntime: ContainerRuntime = (run) => {
    if (!isClientImage(run.container.image)) return undefined;
    const ns = run.pod.metadata.namespace ?? 'default';
    const key = keyOf(run.cluster.name, ns, run.pod.metadata.name);
    return (async () => {
      const hasProxy = containersOf(run.pod).some((c) => c.name === 'istio-proxy' && isProxyImage(c.image));
      if (hasProxy && holdsForProxy(run.pod)) await proxies.waitStarted(key, options.proxyStartTimeoutMs ?? 10_000, run.signal);
      const shell = new Shell({
        ctx: ctxFor(run),
        cluster: run.cluster,
        pod: run.pod,
        stopSidecar: () => { proxies.stop(key); run.stopContainer('istio-proxy', 0); },
      }, run.signal, Object.fromEntries((run.container.env ?? []).map((e) => [e.name, e.value ?? ''])));
      try {
        return await runClientArgv(shell, clientArgv(run.container.image, run.container.command, run.container.args), { out: (t) => run.log(t), err: (t) => run.log(t) });
      } catch (e) {
        if (run.signal.aborted) return 137;
        if (e instanceof UnmodelledFeatureError) {
          run.log(`mesh model: not modelled: ${e.message}\n`);
          return UNMODELLED_EXIT_CODE;
        }
        run.log(`mesh model: internal error: ${(e as Error).stack ?? String(e)}\n`);
        return UNMODELLED_EXIT_CODE;
      }
    })();
  };

  const appRuntime: ContainerRuntime = (run) => {
    const probePod = { ...run.pod, spec: { containers: [run.container] } } as KubeObject;
    let serves = false;
    try {
      serves = [9080, 5432, 9000].some((p) => applicationOn(probePod, p) !== undefined)
        || (run.container.args ?? []).some((a) => /^\d+$/.test(a) && applicationOn(probePod, Number(a)) !== undefined);
    } catch {
      serves = false;
    }
    if (!serves) return undefined;
    return (async () => {
      run.log(`${run.container.name} listening (model of ${run.container.image})\n`);
      return untilAborted(run.signal);
    })();
  };

  return [proxyRuntime, clientRuntime, appRuntime];
}

/** Where {@link simulateCurl} runs its command. */
export interface PodRef {
  cluster: string;
  namespace: string;
  pod: string;
}

/**
 * Runs a client command in an existing pod of `world` as the curl image would (`['-sS', url]`, `['curl', …]`,
 * `['sh', '-c', script]`) and returns its output and exit code, plus the hops travelled.
 */
export async function simulateCurl(world: WorldView, from: PodRef, argv: string[], options: MeshOptions & { proxies?: ProxyRegistry } = {}): Promise<ProgramResult & { trace: string[] }> {
  const cluster = world.cluster(from.cluster);
  if (!cluster) throw new Error(`no cluster ${from.cluster}`);
  const pod = cluster.get('', 'Pod', from.namespace, from.pod);
  if (!pod) throw new Error(`no pod ${from.namespace}/${from.pod} in ${from.cluster}`);
  const ctx: PathContext = { world, proxies: options.proxies, random: options.random, trace: [] };
  const stopped = new Set<string>();
  const proxies: ProxyRegistry = {
    isStopped: (c, n, p) => stopped.has(keyOf(c, n, p)) || (options.proxies?.isStopped(c, n, p) ?? false),
    accessLog: (c, n, p, line) => options.proxies?.accessLog(c, n, p, line),
  };
  ctx.proxies = proxies;
  const shell = new Shell({ ctx, cluster, pod, stopSidecar: () => stopped.add(keyOf(from.cluster, from.namespace, from.pod)) });
  let stdout = '';
  let stderr = '';
  const image = containersOf(pod).find((c) => !isProxyImage(c.image))?.image ?? 'curlimages/curl:latest';
  try {
    const exitCode = await runClientArgv(shell, clientArgv(image, undefined, argv), { out: (t) => { stdout += t; }, err: (t) => { stderr += t; } });
    return { stdout, stderr, exitCode, trace: ctx.trace };
  } catch (e) {
    if (e instanceof UnmodelledFeatureError) return { stdout, stderr: `${stderr}mesh model: not modelled: ${e.message}\n`, exitCode: UNMODELLED_EXIT_CODE, trace: ctx.trace };
    throw e;
  }
}
