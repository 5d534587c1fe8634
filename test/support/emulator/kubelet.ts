/**
 * The simulated kubelet (with the scheduler's binding): pods go Pending → Running → Succeeded/Failed, their
 * containers run through the {@link ContainerRuntime} chain, what they print is kept for `pods/log`.
 */
import YAML from 'yaml';
import type { ClusterApi } from './api.js';
import { ApiError, badRequest, notFound } from './errors.js';
import type { ResourceType } from './registry.js';
import type { ClusterView, ContainerRun, ContainerRuntime, KubeObject, WorldView } from './runtime.js';
import type { StoreEvent } from './store.js';

/** Query options of `pods/log`. */
export interface LogOptions {
  container?: string;
  previous?: boolean;
  timestamps?: boolean;
  tailLines?: number;
  limitBytes?: number;
}

/** The images a kubelet can pull when no allow-list is configured (globs; `docker.io/` and `library/` optional). */
export const DEFAULT_IMAGE_ALLOW_LIST: readonly string[] = [
  'docker.io/istio/*', 'istio/*', 'curlimages/curl*', 'docker.io/istio/examples-bookinfo-*', 'busybox*', 'postgres*', 'nginx*', 'hashicorp/vault*',
];

function normalizeImage(image: string): string[] {
  const forms = new Set([image]);
  let short = image.replace(/^docker\.io\//, '');
  forms.add(short);
  short = short.replace(/^library\//, '');
  forms.add(short);
  forms.add(`docker.io/${short}`);
  return [...forms];
}

/** True when an image matches one of the allow-list globs. */
export function imageAllowed(image: string, allowList: readonly string[]): boolean {
  const forms = normalizeImage(image);
  return allowList.some((glob) => {
    const re = new RegExp(`^${glob.split('*').map((p) => p.replace(/[.+?^${}()|[\]\\/]/g, '\\$&')).join('.*')}$`);
    return forms.some((f) => re.test(f));
  });
}

/** Runs forever (until the pod goes away) and prints nothing; init containers complete at once. */
export const defaultRuntime: ContainerRuntime = (run) =>
  new Promise<number>((resolve) => {
    if (run.signal.aborted) resolve(137);
    else run.signal.addEventListener('abort', () => resolve(137), { once: true });
  });

interface LogLine {
  time: string;
  text: string;
}

interface ContainerState {
  name: string;
  image: string;
  init: boolean;
  restartCount: number;
  state: Record<string, unknown>;
  lastState: Record<string, unknown>;
  ready: boolean;
  started: boolean;
  controller?: AbortController;
  /** Incremented per start, so a late result of an earlier run is ignored. */
  attempt: number;
  logs: LogLine[];
  previousLogs?: LogLine[];
  followers: Set<{ write: (t: string) => void; end: () => void; timestamps: boolean }>;
  containerId: string;
}

interface PodState {
  uid: string;
  namespace: string;
  name: string;
  containers: Map<string, ContainerState>;
  initOrder: string[];
  appOrder: string[];
  podIP: string;
  startTime: string;
  deleted: boolean;
  phase: 'init' | 'app' | 'done';
  restartPolicy: string;
  backoff: Map<string, number>;
  timers: Set<NodeJS.Timeout>;
  steadyTimers: Set<NodeJS.Timeout>;
}

function now(): string {
  return new Date().toISOString().replace(/\.\d{3}Z$/, 'Z');
}

function hex(n: number): string {
  let s = '';
  for (let i = 0; i < n; i++) s += Math.floor(Math.random() * 16).toString(16);
  return s;
}

/** The kubelet of one emulated cluster (a single node). */
export class Kubelet {
  private readonly pods = new Map<string, PodState>();
  private readonly podType: ResourceType;
  private nextIp = 0;
  private pending = 0;
  private readonly unsubscribe: () => void;
  readonly nodeName: string;

  constructor(
    private readonly api: ClusterApi,
    private readonly view: ClusterView,
    private readonly world: () => WorldView,
    private readonly runtimes: () => ContainerRuntime[],
    private readonly allowList: readonly string[],
    private readonly podCidrIndex: number,
  ) {
    this.podType = api.typeOf('', 'Pod');
    this.nodeName = `${api.clusterName}-control-plane`;
    this.unsubscribe = api.store.subscribe((e) => this.onEvent(e));
  }

  /** Records an Event about a pod, as `kubectl describe` and `kubectl get events` show them. */
  private event(pod: PodState, type: 'Normal' | 'Warning', reason: string, message: string, container?: string, component = 'kubelet'): void {
    const t = new Date().toISOString().replace(/\.\d{3}Z$/, 'Z');
    this.api.writeAsController(this.api.typeOf('', 'Event'), {
      apiVersion: 'v1',
      kind: 'Event',
      metadata: { name: `${pod.name}.${hex(16)}`, namespace: pod.namespace },
      involvedObject: { kind: 'Pod', namespace: pod.namespace, name: pod.name, uid: pod.uid, apiVersion: 'v1', ...(container ? { fieldPath: `spec.containers{${container}}` } : {}) },
      reason,
      message,
      type,
      source: component === 'kubelet' ? { component, host: this.nodeName } : { component },
      firstTimestamp: t,
      lastTimestamp: t,
      count: 1,
      reportingComponent: component,
      reportingInstance: component === 'kubelet' ? this.nodeName : '',
    }, component);
  }

  /** Number of pod operations in flight (used by `waitIdle`). */
  get busy(): number {
    return this.pending;
  }

  stop(): void {
    this.unsubscribe();
    for (const pod of this.pods.values()) this.teardown(pod);
    this.pods.clear();
  }

  private onEvent(e: StoreEvent): void {
    if (e.typeKey !== '/pods') return;
    const uid = e.object.metadata.uid as string;
    if (e.type === 'DELETED') {
      const pod = this.pods.get(uid);
      if (pod) {
        this.teardown(pod);
        this.pods.delete(uid);
      }
      return;
    }
    if (e.type === 'ADDED' && !this.pods.has(uid)) this.admit(e.object);
  }

  /** Runs `fn` later for this pod. Crash-loop back-offs pass `steady`: they do not keep the cluster busy. */
  private later(pod: PodState, ms: number, fn: () => void, steady = false): void {
    if (!steady) this.pending += 1;
    const t = setTimeout(() => {
      pod.timers.delete(t);
      pod.steadyTimers.delete(t);
      if (!steady) this.pending -= 1;
      if (!pod.deleted) fn();
    }, ms);
    pod.timers.add(t);
    if (steady) pod.steadyTimers.add(t);
  }

  private teardown(pod: PodState): void {
    pod.deleted = true;
    for (const t of pod.timers) {
      clearTimeout(t);
      if (!pod.steadyTimers.has(t)) this.pending -= 1;
    }
    pod.timers.clear();
    pod.steadyTimers.clear();
    for (const c of pod.containers.values()) {
      c.controller?.abort();
      for (const f of c.followers) f.end();
      c.followers.clear();
    }
  }

  private admit(obj: KubeObject): void {
    const spec = obj.spec as { containers: Array<{ name: string; image: string }>; initContainers?: Array<{ name: string; image: string }>; restartPolicy?: string; nodeName?: string };
    const n = this.nextIp++;
    const pod: PodState = {
      uid: obj.metadata.uid as string,
      namespace: obj.metadata.namespace as string,
      name: obj.metadata.name,
      containers: new Map(),
      initOrder: (spec.initContainers ?? []).map((c) => c.name),
      appOrder: spec.containers.map((c) => c.name),
      podIP: `10.${244 + (this.podCidrIndex % 10)}.${Math.floor(n / 250)}.${(n % 250) + 2}`,
      startTime: now(),
      deleted: false,
      phase: 'init',
      restartPolicy: spec.restartPolicy ?? 'Always',
      backoff: new Map(),
      timers: new Set(),
      steadyTimers: new Set(),
    };
    for (const [init, list] of [[true, spec.initContainers ?? []], [false, spec.containers]] as const) {
      for (const c of list) {
        pod.containers.set(c.name, {
          name: c.name, image: c.image, init, restartCount: 0, state: { waiting: { reason: init ? 'PodInitializing' : 'ContainerCreating' } }, lastState: {},
          ready: false, started: false, attempt: 0, logs: [], followers: new Set(), containerId: `containerd://${hex(64)}`,
        });
      }
    }
    this.pods.set(pod.uid, pod);
    // The scheduler binds at once; the kubelet picks the pod up on the next turn.
    this.later(pod, 0, () => {
      const current = this.api.find(this.podType, pod.namespace, pod.name);
      if (!current || current.metadata.uid !== pod.uid) return;
      if (!(current.spec as { nodeName?: string }).nodeName) {
        this.api.writeAsController(this.podType, { ...current, spec: { ...(current.spec as object), nodeName: this.nodeName } }, 'kube-scheduler');
      }
      this.event(pod, 'Normal', 'Scheduled', `Successfully assigned ${pod.namespace}/${pod.name} to ${this.nodeName}`, undefined, 'default-scheduler');
      this.writeStatus(pod);
      this.later(pod, 0, () => this.advance(pod));
    });
  }

  /** Starts what can start: init containers one by one, then the app containers. */
  private advance(pod: PodState): void {
    if (pod.deleted) return;
    if (pod.phase === 'init') {
      for (const name of pod.initOrder) {
        const c = pod.containers.get(name) as ContainerState;
        if (c.state.terminated && (c.state.terminated as { exitCode: number }).exitCode === 0) continue;
        if (!c.state.running && !c.state.terminated && !(c.state.waiting as { reason?: string } | undefined)?.reason?.includes('BackOff') && !this.isPullFailure(c)) this.start(pod, c);
        this.writeStatus(pod);
        return;
      }
      pod.phase = 'app';
      for (const c of pod.containers.values()) if (!c.init) c.state = { waiting: { reason: 'ContainerCreating' } };
    }
    if (pod.phase === 'app') {
      const current = this.api.find(this.podType, pod.namespace, pod.name);
      const annotations = current?.metadata.annotations ?? {};
      const hold = holdsApplication(annotations);
      const proxy = pod.containers.get('istio-proxy');
      const ordered = hold && proxy && !proxy.init ? ['istio-proxy', ...pod.appOrder.filter((n) => n !== 'istio-proxy')] : pod.appOrder;
      for (const name of ordered) {
        const c = pod.containers.get(name) as ContainerState;
        if (c.started || c.state.terminated) continue;
        if (hold && proxy && c !== proxy && !proxy.started) continue;
        this.start(pod, c);
        if (hold && c === proxy) {
          // The app containers start once the proxy has started, on a later turn, as with the postStart hook.
          this.writeStatus(pod);
          this.later(pod, 1, () => this.advance(pod));
          return;
        }
      }
      this.writeStatus(pod);
    }
  }

  private isPullFailure(c: ContainerState): boolean {
    const reason = (c.state.waiting as { reason?: string } | undefined)?.reason;
    return reason === 'ErrImagePull' || reason === 'ImagePullBackOff';
  }

  private start(pod: PodState, c: ContainerState): void {
    const current = this.api.find(this.podType, pod.namespace, pod.name);
    if (!current) return;
    if (!imageAllowed(c.image, this.allowList)) {
      this.event(pod, 'Normal', 'Pulling', `Pulling image "${c.image}"`, c.name);
      this.event(pod, 'Warning', 'Failed', `Failed to pull image "${c.image}": rpc error: code = NotFound desc = failed to pull and unpack image "${c.image}": not found`, c.name);
      this.event(pod, 'Warning', 'Failed', 'Error: ErrImagePull', c.name);
      c.state = { waiting: { reason: 'ErrImagePull', message: `rpc error: code = NotFound desc = failed to pull and unpack image "${c.image}": failed to resolve reference "${c.image}": not found` } };
      this.writeStatus(pod);
      this.later(pod, 50, () => {
        c.state = { waiting: { reason: 'ImagePullBackOff', message: `Back-off pulling image "${c.image}"` } };
        this.writeStatus(pod);
      });
      return;
    }
    const spec = ((current.spec as Record<string, Array<{ name: string }>>)[c.init ? 'initContainers' : 'containers'] ?? []).find((x) => x.name === c.name) as ContainerRun['container'];
    c.attempt += 1;
    const attempt = c.attempt;
    if (c.restartCount === 0) this.event(pod, 'Normal', 'Pulled', `Container image "${c.image}" already present on machine`, c.name);
    this.event(pod, 'Normal', 'Created', `Created container ${c.name}`, c.name);
    this.event(pod, 'Normal', 'Started', `Started container ${c.name}`, c.name);
    const controller = new AbortController();
    c.controller = controller;
    c.started = true;
    c.ready = !c.init;
    c.state = { running: { startedAt: now() } };
    c.logs = [];
    const run: ContainerRun = {
      cluster: this.view,
      world: this.world(),
      pod: structuredClone(current),
      container: structuredClone(spec),
      log: (text: string) => this.appendLog(c, text),
      signal: controller.signal,
      stopContainer: (name: string, exitCode = 0) => {
        const other = pod.containers.get(name);
        if (other && other.state.running) this.exited(pod, other, other.attempt, exitCode);
      },
    };
    // Runtimes run after every container of this pass is marked running, as containers of a pod start
    // together: a client that stops its sidecar at once must find it running.
    queueMicrotask(() => {
      if (pod.deleted || c.attempt !== attempt || !c.state.running) return;
      let result: Promise<number> | undefined;
      for (const runtime of [...this.runtimes(), ...(c.init ? [initRuntime] : []), defaultRuntime]) {
        result = runtime(run);
        if (result) break;
      }
      (result as Promise<number>).then(
        (code) => this.exited(pod, c, attempt, code),
        (err: unknown) => {
          this.appendLog(c, `${err instanceof Error ? err.message : String(err)}\n`);
          this.exited(pod, c, attempt, 1);
        },
      );
    });
  }

  private appendLog(c: ContainerState, text: string): void {
    if (text === '') return;
    const time = new Date().toISOString();
    const lines = text.split(/(?<=\n)/);
    for (const line of lines) {
      c.logs.push({ time, text: line });
      for (const f of c.followers) f.write(f.timestamps ? `${time} ${line}` : line);
    }
  }

  private exited(pod: PodState, c: ContainerState, attempt: number, exitCode: number): void {
    if (pod.deleted || attempt !== c.attempt || !c.state.running) return;
    const startedAt = (c.state.running as { startedAt: string }).startedAt;
    c.controller?.abort();
    c.ready = false;
    c.state = { terminated: { exitCode, reason: exitCode === 0 ? 'Completed' : 'Error', startedAt, finishedAt: now(), containerID: c.containerId } };
    for (const f of c.followers) f.end();
    c.followers.clear();
    const restart = pod.restartPolicy === 'Always' || (pod.restartPolicy === 'OnFailure' && exitCode !== 0);
    if (c.init && exitCode === 0) {
      this.writeStatus(pod);
      this.later(pod, 0, () => this.advance(pod));
      return;
    }
    if (restart && !(c.init && pod.restartPolicy === 'Never')) {
      const delay = Math.min(1000, pod.backoff.get(c.name) ?? 50);
      pod.backoff.set(c.name, delay * 2);
      this.writeStatus(pod);
      this.later(pod, delay, () => {
        c.lastState = c.state;
        c.previousLogs = c.logs;
        c.restartCount += 1;
        c.started = false;
        c.state = { waiting: { reason: 'ContainerCreating' } };
        if (c.init) this.advance(pod);
        else this.start(pod, c);
        this.writeStatus(pod);
      }, true);
      return;
    }
    if (!c.init && [...pod.containers.values()].filter((x) => !x.init).every((x) => x.state.terminated)) pod.phase = 'done';
    this.writeStatus(pod);
  }

  private writeStatus(pod: PodState): void {
    const current = this.api.find(this.podType, pod.namespace, pod.name);
    if (!current || current.metadata.uid !== pod.uid || pod.deleted) return;
    const inits = pod.initOrder.map((n) => pod.containers.get(n) as ContainerState);
    const apps = pod.appOrder.map((n) => pod.containers.get(n) as ContainerState);
    const initialized = inits.every((c) => (c.state.terminated as { exitCode?: number } | undefined)?.exitCode === 0);
    const initFailed = inits.some((c) => (c.state.terminated as { exitCode?: number } | undefined)?.exitCode !== undefined && (c.state.terminated as { exitCode: number }).exitCode !== 0) && pod.restartPolicy === 'Never';
    const allTerminated = apps.every((c) => c.state.terminated);
    let phase: string;
    if (initFailed) phase = 'Failed';
    else if (initialized && allTerminated && pod.phase === 'done') phase = apps.every((c) => (c.state.terminated as { exitCode: number }).exitCode === 0) ? 'Succeeded' : 'Failed';
    else if (initialized && apps.every((c) => c.started || c.state.terminated) && apps.some((c) => c.state.running || c.state.terminated)) phase = 'Running';
    else phase = 'Pending';
    const ready = phase === 'Running' && apps.every((c) => c.ready && c.state.running);
    const t = now();
    const previous = (current.status ?? {}) as { conditions?: Array<{ type: string; status: string; lastTransitionTime?: string }> };
    const condition = (type: string, ok: boolean, reason?: string): Record<string, unknown> => {
      const before = previous.conditions?.find((c) => c.type === type);
      const status = ok ? 'True' : 'False';
      return { type, status, lastProbeTime: null, lastTransitionTime: before && before.status === status ? before.lastTransitionTime : t, ...(reason ? { reason } : {}) };
    };
    const completed = phase === 'Succeeded' || phase === 'Failed';
    const notReadyReason = completed ? 'PodCompleted' : 'ContainersNotReady';
    const statusOf = (c: ContainerState): Record<string, unknown> => ({
      name: c.name,
      image: c.image,
      imageID: c.state.waiting && !c.started ? '' : `${c.image.includes('/') ? c.image : `docker.io/library/${c.image}`}@sha256:${createDigest(c.image)}`,
      ...(c.started || c.state.terminated ? { containerID: c.containerId } : {}),
      ready: c.ready && Boolean(c.state.running),
      restartCount: c.restartCount,
      started: Boolean(c.state.running),
      state: c.state,
      lastState: c.lastState,
    });
    const status: Record<string, unknown> = {
      phase,
      conditions: [
        condition('PodReadyToStartContainers', true),
        condition('Initialized', initialized, initialized ? undefined : 'ContainersNotInitialized'),
        condition('Ready', ready, ready ? undefined : notReadyReason),
        condition('ContainersReady', ready, ready ? undefined : notReadyReason),
        condition('PodScheduled', true),
      ],
      hostIP: '172.18.0.2',
      hostIPs: [{ ip: '172.18.0.2' }],
      podIP: pod.podIP,
      podIPs: [{ ip: pod.podIP }],
      startTime: pod.startTime,
      qosClass: 'BestEffort',
      ...(inits.length > 0 ? { initContainerStatuses: inits.map(statusOf) } : {}),
      containerStatuses: apps.map(statusOf),
    };
    this.api.writeAsController(this.podType, { ...current, status }, 'kubelet', 'status');
  }

  private podState(namespace: string, name: string): { pod: PodState; obj: KubeObject } {
    const obj = this.api.find(this.podType, namespace, name);
    if (!obj) throw notFound('pods', '', name);
    const pod = this.pods.get(obj.metadata.uid as string);
    if (!pod) throw badRequest(`pod ${name} is not yet scheduled`);
    return { pod, obj };
  }

  private container(namespace: string, name: string, opts: LogOptions): { pod: PodState; c: ContainerState } {
    const { pod } = this.podState(namespace, name);
    let containerName = opts.container;
    if (!containerName) {
      // The server does not read kubectl.kubernetes.io/default-container: kubectl does, and names the container.
      if (pod.appOrder.length === 1) containerName = pod.appOrder[0];
      else {
        const inits = pod.initOrder.length > 0 ? ` or one of the init containers: [${pod.initOrder.join(' ')}]` : '';
        throw badRequest(`a container name must be specified for pod ${name}, choose one of: [${pod.appOrder.join(' ')}]${inits}`);
      }
    }
    const c = pod.containers.get(containerName as string);
    if (!c) throw badRequest(`container ${containerName} is not valid for pod ${name}`);
    if (opts.previous) {
      if (!c.previousLogs) throw badRequest(`previous terminated container "${c.name}" in pod "${name}" not found`);
      return { pod, c };
    }
    const waiting = c.state.waiting as { reason?: string } | undefined;
    if (waiting && !c.started && c.restartCount === 0) {
      const why = waiting.reason === 'ErrImagePull' || waiting.reason === 'ImagePullBackOff' ? 'trying and failing to pull image' : waiting.reason;
      throw new ApiError(400, 'BadRequest', `container "${c.name}" in pod "${name}" is waiting to start: ${why}`);
    }
    return { pod, c };
  }

  /** `pods/log` without `follow`. */
  readLog(namespace: string, name: string, opts: LogOptions): string {
    const { c } = this.container(namespace, name, opts);
    let lines = opts.previous ? (c.previousLogs ?? []) : c.logs;
    if (opts.tailLines !== undefined) lines = opts.tailLines === 0 ? [] : lines.slice(-opts.tailLines);
    let text = lines.map((l) => (opts.timestamps ? `${l.time} ${l.text}` : l.text)).join('');
    if (opts.limitBytes !== undefined) text = Buffer.from(text).subarray(0, opts.limitBytes).toString('utf8');
    return text;
  }

  /** `pods/log?follow=true`: what the container prints from now on, until it exits or the pod goes. */
  followLog(namespace: string, name: string, opts: LogOptions, write: (text: string) => void, end: () => void): () => void {
    const { c } = this.container(namespace, name, opts);
    if (opts.previous || !c.state.running) {
      end();
      return () => undefined;
    }
    const follower = { write, end, timestamps: opts.timestamps === true };
    c.followers.add(follower);
    return () => c.followers.delete(follower);
  }
}

/** Whether `proxy.istio.io/config` (YAML or JSON) sets holdApplicationUntilProxyStarts. */
export function holdsApplication(annotations: Record<string, string> | undefined): boolean {
  const text = annotations?.['proxy.istio.io/config'];
  if (!text) return false;
  try {
    return (YAML.parse(text) as { holdApplicationUntilProxyStarts?: unknown } | null)?.holdApplicationUntilProxyStarts === true;
  } catch {
    return false;
  }
}

/** Init containers without a runtime of their own complete successfully at once (as istio-init does). */
const initRuntime: ContainerRuntime = () => Promise.resolve(0);

function createDigest(image: string): string {
  let h = 0n;
  for (const ch of image) h = (h * 131n + BigInt(ch.charCodeAt(0))) % (1n << 256n);
  return h.toString(16).padStart(64, '0');
}
