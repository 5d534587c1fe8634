/**
 * Emulated federation worlds for end-to-end tests of the federation commands (and of `verify`): starts clusters
 * with a seed and the mesh data-path model, runs the built CLI as `kubectl meshfed` against them, counts the write
 * requests each command sent, and sends requests from pods through the modelled data path.
 */
import type { IstioVersion } from './crd-schema.js';
import { runCli, runMeshfed, type CliOptions, type CliResult } from './cli.js';
import { startWorld, type ClusterOptions, type KubeObject, type RequestRecord, type SeedName, type World } from './emulator/index.js';
import { meshRuntimes, simulateCurl } from './mesh/index.js';
import type { MeshOptions } from './mesh/runtime.js';

/** A started world and helpers bound to it. */
export interface FederationWorld {
  readonly world: World;
  /** The kubeconfig with one context per cluster. */
  readonly kubeconfig: string;
  /**
   * Runs `kubectl meshfed <args> --kubeconfig <world>` (no terminal): in this process, or as a subprocess of the
   * build with `direct` (the launcher itself) or `subprocess`.
   */
  run(args: string[], options?: CliOptions): Promise<CliResult>;
  /** Runs a command and also returns the write requests it sent, per cluster. */
  runCounting(args: string[], options?: CliOptions): Promise<CliResult & { writes: Record<string, RequestRecord[]>; reads: Record<string, number> }>;
  /**
   * Sends a request from the first running pod labelled `app=<app>` in `namespace` of `cluster` through the data-path
   * model (`argv` as for the curl image, e.g. `['curl', '-sS', 'http://myreviews.default:9080/reviews/0']`).
   * `random` drives load balancing and route weights (default: always 0.5).
   */
  curl(cluster: string, namespace: string, app: string, argv: string[], options?: { random?: () => number }): Promise<{ code: number; stdout: string; stderr: string; trace: string[] }>;
  /** The federation CA fingerprint a provider's `status -o json` shows (what a consumer passes as --ca-fingerprint). */
  caFingerprint(cluster: string): Promise<string>;
  /** Objects carrying `app.kubernetes.io/managed-by: kubectl-meshfed` in a cluster, as `Kind ns/name`. */
  managedObjects(cluster: string): string[];
  stop(): Promise<void>;
}

/** Options of {@link startFederationWorld}. */
export interface FederationWorldOptions {
  seed: SeedName;
  clusters: ClusterOptions[];
  /** Istio for clusters that do not say; default 1.18.0. */
  istio?: IstioVersion;
  root?: 'shared' | 'distinct';
  /** Options of the mesh data-path model (e.g. `pushes`); `random` is always 0.5. */
  mesh?: Omit<MeshOptions, 'random'>;
}

const WRITE_METHODS = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

/** Kinds meshfed may create, as `[apiVersion, kind]`, in dependency order (for {@link FederationWorld.managedObjects}). */
export const MESHFED_KINDS: ReadonlyArray<readonly [string, string]> = [
  ['v1', 'Namespace'], ['v1', 'ServiceAccount'], ['v1', 'Secret'], ['v1', 'ConfigMap'], ['v1', 'Service'],
  ['apps/v1', 'Deployment'], ['rbac.authorization.k8s.io/v1', 'Role'], ['rbac.authorization.k8s.io/v1', 'RoleBinding'],
  ['networking.istio.io/v1beta1', 'Gateway'], ['networking.istio.io/v1beta1', 'VirtualService'],
  ['networking.istio.io/v1beta1', 'DestinationRule'], ['networking.istio.io/v1beta1', 'ServiceEntry'],
  ['security.istio.io/v1beta1', 'AuthorizationPolicy'],
];

const MANAGED_BY = 'app.kubernetes.io/managed-by';

/** Every object of the kinds meshfed may create in one cluster of the world, meshfed's and the user's. */
export function clusterObjects(world: World, cluster: string): KubeObject[] {
  return MESHFED_KINDS.flatMap(([apiVersion, kind]) => world.cluster(cluster).list(apiVersion, kind));
}

/** meshfed's objects (its managed-by label) in one cluster, as `Kind name`. */
export function managedObjectNames(world: World, cluster: string): string[] {
  return clusterObjects(world, cluster).filter((o) => o.metadata.labels?.[MANAGED_BY] === 'kubectl-meshfed').map((o) => `${o.kind} ${o.metadata.name}`);
}

/** The user's objects (not meshfed's) in one cluster, as `Kind namespace/name` → resourceVersion. */
export function userObjects(world: World, cluster: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const o of clusterObjects(world, cluster)) {
    if (o.metadata.labels?.[MANAGED_BY] === 'kubectl-meshfed') continue;
    out.set(`${o.kind} ${o.metadata.namespace ?? ''}/${o.metadata.name}`, o.metadata.resourceVersion ?? '');
  }
  return out;
}

/** One key of a Secret, decoded ('' when the Secret or the key is missing). */
export function secretText(world: World, cluster: string, namespace: string, name: string, key: string): string {
  const data = world.cluster(cluster).get('v1', 'Secret', namespace, name)?.data as Record<string, string> | undefined;
  return Buffer.from(String(data?.[key] ?? ''), 'base64').toString('utf8');
}

/** How many certificates a PEM bundle holds. */
export const countCertificates = (pem: string): number => (pem.match(/BEGIN CERTIFICATE/g) ?? []).length;

function isRunning(pod: KubeObject): boolean {
  return (pod.status as { phase?: string } | undefined)?.phase === 'Running';
}

/** Waits until every Deployment of every cluster has its pods running (seeds start with Deployments only). */
async function untilPodsRun(world: World, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    await world.waitIdle();
    const pending = world.clusters.some((c) => {
      const pods = c.list('v1', 'Pod');
      return c.list('apps/v1', 'Deployment').some((d) => {
        const selector = (d.spec as { selector?: { matchLabels?: Record<string, string> } }).selector?.matchLabels ?? {};
        return !pods.some((p) => p.metadata.namespace === d.metadata.namespace && isRunning(p)
          && Object.entries(selector).every(([k, v]) => p.metadata.labels?.[k] === v));
      });
    });
    if (!pending || Date.now() > deadline) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/**
 * Waits until every request the clusters have received is answered and no new one has come in for a moment (watches
 * aside): requests a command sent just before it ended — retries of a failed one — reach the server after the command
 * returned, and would take a fault a test adds next.
 */
export async function untilAnswered(world: World, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  const pending = () => world.clusters.some((c) => c.requests.some((r) => r.status === 0 && r.query.watch === undefined));
  const count = () => world.clusters.reduce((n, c) => n + c.requests.length, 0);
  // A request written just before the command closed its connection is read by the server before it sees the close:
  // once no connection is open, every request sent is in the log (a quiet moment alone was not enough on a loaded
  // machine).
  const connected = () => world.clusters.some((c) => c.openConnections() > 0);
  for (let seen = -1; Date.now() < deadline;) {
    const now = count();
    if (now === seen && !pending() && !connected()) return;
    seen = now;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** Starts a world for federation tests; stop it in `test.after.always`. */
export async function startFederationWorld(options: FederationWorldOptions): Promise<FederationWorld> {
  const world = await startWorld({
    clusters: options.clusters,
    istio: options.istio ?? '1.18.0',
    seed: options.seed,
    runtimes: meshRuntimes({ ...options.mesh, random: () => 0.5 }),
    ...(options.root ? { root: options.root } : {}),
  });
  await untilPodsRun(world);
  const kubeconfig = world.kubeconfigPath;
  const run = (args: string[], runOptions: CliOptions = {}) => runOptions.direct || runOptions.subprocess
    ? runMeshfed([...args, '--kubeconfig', kubeconfig], runOptions)
    : runCli([...args, '--kubeconfig', kubeconfig], runOptions);
  return {
    world,
    kubeconfig,
    run,
    async caFingerprint(cluster) {
      const status = await run(['status', '--context', cluster, '-o', 'json']);
      const fingerprint = (JSON.parse(status.stdout) as { federationCaFingerprint?: string | null }).federationCaFingerprint;
      if (!fingerprint) throw new Error(`context ${cluster} shows no federation CA fingerprint: ${status.stdout}${status.stderr}`);
      return fingerprint;
    },
    async runCounting(args, runOptions) {
      const marks = new Map(world.clusters.map((c) => [c.name, c.requests.length]));
      const result = await run(args, runOptions);
      const writes: Record<string, RequestRecord[]> = {};
      const reads: Record<string, number> = {};
      for (const cluster of world.clusters) {
        const sent = cluster.requests.slice(marks.get(cluster.name)).filter((r) => r.userAgent?.startsWith('kubectl-meshfed'));
        // A SelfSubjectAccessReview (the permissions preflight) is a POST that asks and stores nothing: a read.
        writes[cluster.name] = sent.filter((r) => WRITE_METHODS.has(r.method) && r.query.dryRun === undefined && !r.path.endsWith('/selfsubjectaccessreviews'));
        reads[cluster.name] = sent.length - writes[cluster.name]!.length;
      }
      return { ...result, writes, reads };
    },
    async curl(cluster, namespace, app, argv, curlOptions = {}) {
      await untilPodsRun(world);
      const pods = world.cluster(cluster).list('v1', 'Pod', namespace).filter((p: KubeObject) => p.metadata.labels?.app === app && isRunning(p));
      if (!pods[0]) throw new Error(`no running pod app=${app} in ${cluster}/${namespace}`);
      const result = await simulateCurl(world.world, { cluster, namespace, pod: pods[0].metadata.name }, argv, { random: curlOptions.random ?? (() => 0.5) });
      return { code: result.exitCode, stdout: result.stdout, stderr: result.stderr, trace: result.trace };
    },
    managedObjects(cluster) {
      const c = world.cluster(cluster);
      return MESHFED_KINDS.flatMap(([apiVersion, kind]) => c.list(apiVersion, kind)
        .filter((o) => o.metadata.labels?.['app.kubernetes.io/managed-by'] === 'kubectl-meshfed')
        .map((o) => `${kind} ${o.metadata.namespace ? `${o.metadata.namespace}/` : ''}${o.metadata.name}`)).sort();
    },
    stop: () => world.stop(),
  };
}
