/**
 * Emulated Kubernetes clusters for tests and the sandbox: several API servers on 127.0.0.1 in this process
 * that `@kubernetes/client-node` and the real `kubectl` accept. See README.md in this folder.
 *
 * @example
 * const world = await startWorld({ clusters: [{ name: 'cluster1', istio: '1.18.0' }, { name: 'cluster2', istio: '1.18.0' }], seed: 'bookinfo' });
 * try {
 *   // KUBECONFIG=world.kubeconfigPath kubectl --context cluster2 -n bookinfo get svc myreviews
 * } finally {
 *   await world.stop();
 * }
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import YAML from 'yaml';
import { crdFileWorkSoFar } from '../crd-schema.js';
import type { IstioVersion } from '../crd-schema.js';
import { keysGenerated } from '../mesh/pki.js';
import { ClusterApi } from './api.js';
import { Holds, type Hold, type HoldHandle } from './holds.js';
import { Controllers } from './controllers.js';
import { installIstio } from './istio.js';
import { DEFAULT_IMAGE_ALLOW_LIST, Kubelet } from './kubelet.js';
import { clientCertificate, createIstioCaCerts, createRootCa, servingCertificates } from './pki.js';
import type { IstioCaCerts, PemPair } from './pki.js';
import type { ClusterView, ContainerRuntime, ExecHandler, KubeObject, WorldView } from './runtime.js';
import { seedObjects } from './seeds.js';
import type { SeedName } from './seeds.js';
import { startServer } from './server.js';
import type { Fault, RequestRecord, ServerContext, TokenGrant } from './server.js';
import { bootstrapRbac } from './rbac.js';

export type { Fault, RequestRecord, TokenGrant } from './server.js';
export type { PolicyRule, Subject } from './rbac.js';
export type { ClusterView, ContainerExec, ContainerRun, ContainerRuntime, ExecHandler, ExecResult, KubeObject, WorldView } from './runtime.js';
export type { IstioCaCerts, PemPair } from './pki.js';
export type { SeedName } from './seeds.js';
export type { Hold, HoldHandle } from './holds.js';
export { certificateFingerprint } from './pki.js';
export { DEFAULT_IMAGE_ALLOW_LIST, defaultRuntime, imageAllowed } from './kubelet.js';
export { loadBalancerPool } from './controllers.js';
export { BOOKINFO_VERSION, bookinfoCluster1, bookinfoCluster2, federationOperations, federationProduction, federationStaging, seedObjects, sleepClient } from './seeds.js';

/** One cluster to start. */
export interface ClusterOptions {
  /** The cluster's name: its kubeconfig context, cluster and user are named after it. */
  name: string;
  /** What `/version` reports, `1.31` or `1.31.4`. Default `1.31.4`. kubectl's dispatcher picks its version from it. */
  kubernetesVersion?: string;
  /** The Istio release installed, or null/absent for a cluster without Istio. Default: the world's `istio`. */
  istio?: IstioVersion | null;
  /** The mesh's trust domain, overriding the world's `trustDomain` for this cluster (e.g. `cluster.local`). */
  trustDomain?: string;
  /**
   * Extra bearer tokens and who they authenticate as (default: a user named after the token, no groups); what they
   * may do is up to the cluster's RBAC objects. The admin token (user `kubernetes-admin`, group `system:masters`)
   * is always present.
   */
  tokens?: Record<string, { user?: string; groups?: string[] }>;
}

/** Options of {@link startWorld}. */
export interface WorldOptions {
  clusters: ClusterOptions[];
  /** Istio release for clusters that do not say; default none (no Istio). */
  istio?: IstioVersion | null;
  /** Runtimes tried in order before the default one (runs forever, prints nothing). */
  runtimes?: ContainerRuntime[];
  /** Objects to start with. Default 'none'. */
  seed?: SeedName;
  /** 'shared' (default): one root CA for the world and an intermediate per cluster; 'distinct': a self-signed root per cluster. */
  root?: 'shared' | 'distinct';
  /** 'per-cluster' (default): trust domain `<cluster>.local`; 'cluster.local': the same for every cluster. */
  trustDomain?: 'per-cluster' | 'cluster.local';
  /** Image globs the kubelets can pull. Default {@link DEFAULT_IMAGE_ALLOW_LIST}. */
  imageAllowList?: readonly string[];
  /** What `kubectl exec` runs, tried in order; without one that takes a command, it is "not found" (exit 126). */
  execHandlers?: ExecHandler[];
}

/** One emulated cluster. */
export interface EmulatedCluster {
  readonly name: string;
  /** `https://127.0.0.1:<port>`. */
  readonly server: string;
  /** The CA that signed the API server's certificate (as in the kubeconfig). */
  readonly caPem: string;
  /** The admin bearer token (as in the kubeconfig). */
  readonly token: string;
  /** The Istio release installed, or null. */
  readonly istio: IstioVersion | null;
  /** The `cacerts` material of this cluster's Istio, when installed. */
  readonly istioCa: IstioCaCerts | undefined;
  /** The mesh trust domain, when Istio is installed. */
  readonly trustDomain: string | undefined;
  /** Read-only view for runtimes and assertions. */
  readonly view: ClusterView;
  /** Every request received, in order. */
  readonly requests: RequestRecord[];
  /**
   * Client connections open now (TCP). Every request a client wrote on a connection is in {@link requests} once that
   * connection has closed: a command in this process closes its connections as it ends.
   */
  openConnections(): number;
  readonly faults: {
    /** Adds a fault for the next `times` (default 1) matching requests. */
    add(fault: Fault): void;
    clear(): void;
  };
  /**
   * Resolves with the next request with this method and path (a RegExp is tested against the path) that the server
   * starts to answer from now on: e.g. a client's retry of a request a fault holds.
   */
  nextAnswer(method: string, path: string | RegExp): Promise<RequestRecord>;
  /** Holds requests until several users each have one waiting (holds.ts): deterministic interleavings. */
  readonly holds: {
    add(hold: Hold): HoldHandle;
  };
  /** Creates an object, bypassing HTTP (admission, defaulting and validation still apply). */
  create(obj: KubeObject): KubeObject;
  /** Server-side applies an object (field manager `test`, forced), bypassing HTTP. */
  apply(obj: KubeObject, fieldManager?: string): KubeObject;
  /** One object by apiVersion or group (`apps/v1`, `apps`, `v1`, `''`), kind, namespace and name. */
  get(apiVersionOrGroup: string, kind: string, namespace: string | undefined, name: string): KubeObject | undefined;
  list(apiVersionOrGroup: string, kind: string, namespace?: string): KubeObject[];
  /** Deletes an object; false when it did not exist. */
  delete(apiVersionOrGroup: string, kind: string, namespace: string | undefined, name: string): boolean;
  /**
   * Accepts another bearer token, authenticating as `user` (default: the token) with `groups`; what it may do is up
   * to the cluster's RBAC objects (group `system:masters` is bound to `cluster-admin`).
   */
  addToken(token: string, user?: string, groups?: string[]): void;
  /** A client certificate (and key) signed by the cluster's CA: CN `user`, O `groups`, as kubeadm issues them. */
  clientCertificate(user: string, groups?: string[]): Promise<PemPair>;
  /** Sets a Service's load balancer address (an IPv4 address or a hostname), as a cloud LB that changed would. */
  setLoadBalancerAddress(namespace: string, name: string, address: string): KubeObject;
  /** The last resourceVersion handed out (one counter for all kinds, as etcd's revision). */
  resourceVersion(): number;
  /** Forgets the watch history: watches from an older resourceVersion get 410 Expired. */
  compactHistory(): void;
  /** Resolves when controllers and the kubelet have nothing left to do right now. */
  waitIdle(): Promise<void>;
}

/** A started set of clusters. */
export interface World {
  readonly clusters: EmulatedCluster[];
  /** A kubeconfig with one context per cluster, named after it; current context: the first cluster. */
  readonly kubeconfigPath: string;
  readonly world: WorldView;
  /** The shared root CA (with `root: 'shared'` and Istio), for assertions. */
  readonly rootCa: PemPair | undefined;
  cluster(name: string): EmulatedCluster;
  waitIdle(): Promise<void>;
  /** Stops the servers, aborts running containers and removes the kubeconfig. */
  stop(): Promise<void>;
}

function groupOf(apiVersionOrGroup: string): string {
  if (apiVersionOrGroup.includes('/')) return apiVersionOrGroup.split('/')[0] as string;
  return apiVersionOrGroup === 'v1' ? '' : apiVersionOrGroup;
}

function parseVersion(text: string | undefined): { major: string; minor: string; gitVersion: string } {
  const m = /^v?(\d+)\.(\d+)(?:\.(\d+))?/.exec(text ?? '1.31.4');
  if (!m) throw new Error(`kubernetesVersion "${text}" is not a version like 1.31 or 1.31.4`);
  return { major: m[1] as string, minor: m[2] as string, gitVersion: `v${m[1]}.${m[2]}.${m[3] ?? '0'}` };
}

function randomToken(): string {
  return Buffer.from(Array.from({ length: 24 }, () => Math.floor(Math.random() * 256))).toString('base64url');
}

/**
 * The work of starting worlds that caches spare, counted since the process started; the counts only grow. Private
 * keys were once most of a start (RSA keys of a few hundred milliseconds each), then parsing the Istio CRD files
 * (0.25–0.35 s of CPU each): the API servers' CA and serving certificate are made once per process, the Istio CAs
 * of each world get fresh ECDSA keys, and a CRD file is parsed once per machine and read once per process.
 */
export interface EmulatorWork {
  /** Private keys generated by the test PKI (`test/support/mesh/pki.ts`): certificates issued. */
  keysGenerated: number;
  /** Istio CRD files parsed from their YAML. */
  crdFilesParsed: number;
  /** Istio CRD files whose parse was read back from the JSON a process kept in the temporary directory. */
  crdParsesReadBack: number;
}

/** What starting worlds (and issuing certificates) has cost this process so far: see {@link EmulatorWork}. */
export function emulatorWork(): EmulatorWork {
  const crds = crdFileWorkSoFar();
  return { keysGenerated: keysGenerated(), crdFilesParsed: crds.parsed, crdParsesReadBack: crds.readBack };
}

/** Starts the clusters of a world, Istio and seeds included. */
export async function startWorld(options: WorldOptions): Promise<World> {
  const names = options.clusters.map((c) => c.name);
  if (new Set(names).size !== names.length) throw new Error(`cluster names must be unique: ${names.join(', ')}`);
  const serving = await servingCertificates();
  const runtimes = options.runtimes ?? [];
  const istioOf = (c: ClusterOptions): IstioVersion | null => (c.istio === undefined ? (options.istio ?? null) : c.istio);
  const needsIstio = options.clusters.some((c) => istioOf(c) !== null);
  const rootCa = needsIstio && (options.root ?? 'shared') === 'shared' ? await createRootCa() : undefined;
  const caCerts = await Promise.all(options.clusters.map((c) => (istioOf(c) ? createIstioCaCerts(c.name, rootCa) : Promise.resolve(undefined))));

  const clusters: EmulatedCluster[] = [];
  const stops: Array<() => Promise<void> | void> = [];
  const views = new Map<string, ClusterView>();
  const worldView: WorldView = {
    clusters: () => [...views.values()],
    cluster: (name) => views.get(name),
  };
  const idlers: Array<() => boolean> = [];
  const waitIdle = async (): Promise<void> => {
    // Settled when nothing is scheduled for two consecutive turns (work schedules more work).
    let quiet = 0;
    const deadline = Date.now() + 10_000;
    while (quiet < 2 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 2));
      quiet = idlers.every((busy) => !busy()) ? quiet + 1 : 0;
    }
  };

  for (const [index, options_] of options.clusters.entries()) {
    const api = new ClusterApi(options_.name);
    const view: ClusterView = {
      name: options_.name,
      list: (group, kind, namespace) => {
        const t = api.registry.byKind(group, kind);
        return t ? api.list(t, namespace).map((o) => structuredClone(o)) : [];
      },
      get: (group, kind, namespace, name) => {
        const t = api.registry.byKind(group, kind);
        const o = t ? api.find(t, namespace, name) : undefined;
        return o ? structuredClone(o) : undefined;
      },
    };
    views.set(options_.name, view);
    const adminToken = randomToken();
    const tokens = new Map<string, TokenGrant>([[adminToken, { user: 'kubernetes-admin', groups: ['system:masters'] }]]);
    for (const [token, grant] of Object.entries(options_.tokens ?? {})) tokens.set(token, { user: grant.user ?? token, ...(grant.groups ? { groups: grant.groups } : {}) });
    const kubelet = new Kubelet(api, view, () => worldView, () => runtimes, options.imageAllowList ?? DEFAULT_IMAGE_ALLOW_LIST, index);
    const controllers = new Controllers(api, index);
    idlers.push(() => controllers.busy || kubelet.busy > 0);
    const ctx: ServerContext = {
      api,
      version: parseVersion(options_.kubernetesVersion),
      tokens,
      faults: [],
      holds: new Holds(),
      requests: [],
      logs: {
        read: (ns, pod, o) => kubelet.readLog(ns, pod, o),
        follow: (ns, pod, o, write, end) => kubelet.followLog(ns, pod, o, write, end),
      },
      openStreams: new Set(),
      delays: new Set(),
      answered: new Set(),
      execHandlers: () => options.execHandlers ?? [],
      exec: { cluster: view, world: () => worldView },
    };
    bootstrap(api, kubelet.nodeName, ctx.version.gitVersion);
    const istio = istioOf(options_);
    const ca = caCerts[index];
    const trustDomain = istio ? (options_.trustDomain ?? (options.trustDomain === 'cluster.local' ? 'cluster.local' : `${options_.name}.local`)) : undefined;
    if (istio && ca && trustDomain) installIstio(api, { version: istio, trustDomain, caCerts: ca });
    const server = await startServer(ctx, { ...serving.server, clientCaPem: serving.ca.certPem });
    stops.push(async () => {
      ctx.holds.releaseAll();
      controllers.stop();
      kubelet.stop();
      await server.close();
    });
    const typeFor = (apiVersionOrGroup: string, kind: string) => api.typeOf(groupOf(apiVersionOrGroup), kind);
    const cluster: EmulatedCluster = {
      name: options_.name,
      server: `https://127.0.0.1:${server.port}`,
      caPem: serving.ca.certPem,
      token: adminToken,
      istio,
      istioCa: ca,
      trustDomain,
      view,
      requests: ctx.requests,
      openConnections: () => server.openConnections(),
      holds: {
        add: (hold) => ctx.holds.add(hold),
      },
      faults: {
        add: (fault) => {
          ctx.faults.push({ ...fault, remaining: fault.times ?? 1 });
        },
        clear: () => {
          ctx.faults.length = 0;
        },
      },
      nextAnswer: (method, path) => new Promise<RequestRecord>((resolve) => {
        const listener = (record: RequestRecord) => {
          if (record.method !== method.toUpperCase() || !(typeof path === 'string' ? record.path === path : path.test(record.path))) return;
          ctx.answered.delete(listener);
          resolve(record);
        };
        ctx.answered.add(listener);
      }),
      create: (obj) => api.create(api.typeOfObject(obj), obj.metadata.namespace, obj, { fieldManager: 'test' }, obj.apiVersion.split('/').pop()),
      apply: (obj, fieldManager = 'test') =>
        api.patch(api.typeOfObject(obj), obj.metadata.namespace, obj.metadata.name, 'application/apply-patch+yaml', structuredClone(obj), { fieldManager, force: true }, obj.apiVersion.split('/').pop()),
      get: (g, kind, namespace, name) => {
        const o = api.find(typeFor(g, kind), namespace, name);
        return o ? structuredClone(o) : undefined;
      },
      list: (g, kind, namespace) => api.list(typeFor(g, kind), namespace).map((o) => structuredClone(o)),
      delete: (g, kind, namespace, name) => {
        const t = typeFor(g, kind);
        if (!api.find(t, namespace, name)) return false;
        api.delete(t, namespace, name);
        return true;
      },
      addToken: (token, user, groups) => {
        tokens.set(token, { user: user ?? token, ...(groups ? { groups } : {}) });
      },
      clientCertificate: (user, groups = []) => clientCertificate(serving.ca, user, groups),
      setLoadBalancerAddress: (namespace, name, address) => {
        const t = api.typeOf('', 'Service');
        const svc = api.get(t, namespace, name);
        const entry = /^\d+\.\d+\.\d+\.\d+$/.test(address) ? { ip: address, ipMode: 'VIP' } : { hostname: address };
        return structuredClone(api.writeAsController(t, { ...svc, status: { loadBalancer: { ingress: [entry] } } }, 'cloud-controller-manager', 'status'));
      },
      resourceVersion: () => api.store.revision,
      compactHistory: () => api.store.compact(),
      waitIdle,
    };
    clusters.push(cluster);
  }

  const seeds = seedObjects(options.seed ?? 'none', names);
  for (const cluster of clusters) for (const obj of seeds.get(cluster.name) ?? []) cluster.apply(obj, 'emulator-seed');
  await waitIdle();

  const dir = mkdtempSync(join(tmpdir(), 'meshfed-emulator-'));
  const kubeconfigPath = join(dir, 'kubeconfig');
  writeFileSync(kubeconfigPath, kubeconfig(clusters), { mode: 0o600 });

  let stopped = false;
  return {
    clusters,
    kubeconfigPath,
    world: worldView,
    rootCa,
    cluster: (name) => {
      const c = clusters.find((x) => x.name === name);
      if (!c) throw new Error(`no emulated cluster named ${name} (have ${names.join(', ')})`);
      return c;
    },
    waitIdle,
    stop: async () => {
      if (stopped) return;
      stopped = true;
      await Promise.all(stops.map((s) => s()));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A kubeconfig for clusters: contexts, clusters and users named after each cluster, token auth. */
export function kubeconfig(clusters: Array<Pick<EmulatedCluster, 'name' | 'server' | 'caPem' | 'token'>>): string {
  return YAML.stringify({
    apiVersion: 'v1',
    kind: 'Config',
    preferences: {},
    clusters: clusters.map((c) => ({ name: c.name, cluster: { server: c.server, 'certificate-authority-data': Buffer.from(c.caPem).toString('base64') } })),
    users: clusters.map((c) => ({ name: c.name, user: { token: c.token } })),
    contexts: clusters.map((c) => ({ name: c.name, context: { cluster: c.name, user: c.name } })),
    'current-context': clusters[0]?.name ?? '',
  });
}

/** What every new cluster has: the system namespaces, its node and the `kubernetes` Service. */
function bootstrap(api: ClusterApi, nodeName: string, gitVersion: string): void {
  const write = (obj: KubeObject): void => {
    api.writeAsController(api.typeOfObject(obj), obj, 'kube-apiserver');
  };
  for (const name of ['default', 'kube-system', 'kube-public', 'kube-node-lease']) write({ apiVersion: 'v1', kind: 'Namespace', metadata: { name } });
  write({
    apiVersion: 'v1',
    kind: 'Node',
    metadata: { name: nodeName, labels: { 'kubernetes.io/hostname': nodeName, 'kubernetes.io/os': 'linux', 'node-role.kubernetes.io/control-plane': '' } },
    spec: { podCIDR: '10.244.0.0/24' },
    status: {
      addresses: [{ type: 'InternalIP', address: '172.18.0.2' }, { type: 'Hostname', address: nodeName }],
      conditions: [{ type: 'Ready', status: 'True', reason: 'KubeletReady', message: 'kubelet is posting ready status' }],
      nodeInfo: { kubeletVersion: gitVersion, containerRuntimeVersion: 'containerd://1.7.18', operatingSystem: 'linux', architecture: 'amd64' },
    },
  });
  for (const obj of bootstrapRbac()) write(obj);
  write({
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: 'kubernetes', namespace: 'default', labels: { component: 'apiserver', provider: 'kubernetes' } },
    spec: { type: 'ClusterIP', clusterIP: '10.96.0.1', clusterIPs: ['10.96.0.1'], ports: [{ name: 'https', port: 443, targetPort: 6443, protocol: 'TCP' }] },
  });
}
