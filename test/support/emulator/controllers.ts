/**
 * Simulated controllers: Deployments create pods from their template (directly, without ReplicaSets),
 * Services of type LoadBalancer get an address from the cluster's pool, Endpoints and EndpointSlices follow
 * the ready pods behind a selector, and every namespace gets its `default` ServiceAccount.
 */
import { createHash } from 'node:crypto';
import type { ClusterApi } from './api.js';
import type { ResourceType } from './registry.js';
import type { KubeObject } from './runtime.js';
import { matchesMap } from './selectors.js';

/** The documentation ranges (RFC 5737) load balancer addresses come from: cluster index i uses range i % 3. */
const LB_RANGES = ['198.51.100', '203.0.113', '192.0.2'];

/** The load balancer address pool of the cluster at `index`: strings only, never connected to. */
export function loadBalancerPool(index: number): string[] {
  const base = LB_RANGES[index % LB_RANGES.length] as string;
  const offset = 10 + Math.floor(index / LB_RANGES.length) * 60;
  return Array.from({ length: 50 }, (_, i) => `${base}.${offset + i}`);
}

function hash(text: string, length: number): string {
  const alphabet = 'bcdfghjklmnpqrstvwxz2456789';
  const digest = createHash('sha256').update(text).digest();
  let out = '';
  for (let i = 0; i < length; i++) out += alphabet[(digest[i] as number) % alphabet.length];
  return out;
}

function randomSuffix(): string {
  const alphabet = 'bcdfghjklmnpqrstvwxz2456789';
  let s = '';
  for (let i = 0; i < 5; i++) s += alphabet[Math.floor(Math.random() * alphabet.length)];
  return s;
}

function isReady(pod: KubeObject): boolean {
  const conditions = ((pod.status as { conditions?: Array<{ type: string; status: string }> } | undefined)?.conditions ?? []);
  return conditions.some((c) => c.type === 'Ready' && c.status === 'True');
}

function now(): string {
  return new Date().toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/**
 * The controllers of one cluster. They reconcile everything on the next turn after a relevant change (the
 * clusters are small), writing only what differs, so they settle.
 */
export class Controllers {
  private scheduled = false;
  private running = false;
  private readonly unsubscribe: () => void;
  private readonly pool: string[];
  private readonly t: Record<string, ResourceType>;

  constructor(private readonly api: ClusterApi, index: number) {
    this.pool = loadBalancerPool(index);
    this.t = {
      pod: api.typeOf('', 'Pod'),
      deployment: api.typeOf('apps', 'Deployment'),
      service: api.typeOf('', 'Service'),
      endpoints: api.typeOf('', 'Endpoints'),
      slice: api.typeOf('discovery.k8s.io', 'EndpointSlice'),
      namespace: api.typeOf('', 'Namespace'),
      serviceAccount: api.typeOf('', 'ServiceAccount'),
    };
    this.unsubscribe = api.store.subscribe((e) => {
      if (['/pods', 'apps/deployments', '/services', '/namespaces'].includes(e.typeKey)) this.schedule();
    });
    this.schedule();
  }

  /** True while a reconcile is pending. */
  get busy(): boolean {
    return this.scheduled || this.running;
  }

  stop(): void {
    this.unsubscribe();
  }

  schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      this.running = true;
      try {
        this.reconcile();
      } finally {
        this.running = false;
      }
    });
  }

  private reconcile(): void {
    for (const ns of this.api.list(this.t.namespace as ResourceType)) this.namespace(ns);
    for (const d of this.api.list(this.t.deployment as ResourceType)) this.deployment(d);
    for (const s of this.api.list(this.t.service as ResourceType)) this.service(s);
    this.endpointsGarbage();
  }

  private namespace(ns: KubeObject): void {
    const sa = this.t.serviceAccount as ResourceType;
    if (!this.api.find(sa, ns.metadata.name, 'default')) {
      this.api.writeAsController(sa, { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'default', namespace: ns.metadata.name } }, 'kube-controller-manager');
    }
  }

  private deployment(d: KubeObject): void {
    const podType = this.t.pod as ResourceType;
    const spec = d.spec as { replicas: number; selector: { matchLabels?: Record<string, string> }; template: { metadata?: { labels?: Record<string, string>; annotations?: Record<string, string> }; spec: object } };
    const templateHash = hash(JSON.stringify(spec.template), 10);
    const ns = d.metadata.namespace as string;
    const owned = this.api.list(podType, ns).filter((p) => ((p.metadata.ownerReferences as Array<{ uid: string }> | undefined) ?? []).some((r) => r.uid === d.metadata.uid));
    const current = owned.filter((p) => p.metadata.labels?.['pod-template-hash'] === templateHash);
    // Rollouts replace every old pod at once: there is no surge or availability budget to honour here.
    for (const p of owned) if (!current.includes(p)) this.api.delete(podType, ns, p.metadata.name);
    for (let i = current.length; i < spec.replicas; i++) {
      const pod: KubeObject = {
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: {
          name: `${d.metadata.name}-${templateHash}-${randomSuffix()}`,
          namespace: ns,
          labels: { ...spec.template.metadata?.labels, 'pod-template-hash': templateHash },
          ...(spec.template.metadata?.annotations ? { annotations: { ...spec.template.metadata.annotations } } : {}),
          ownerReferences: [{ apiVersion: 'apps/v1', kind: 'Deployment', name: d.metadata.name, uid: d.metadata.uid as string, controller: true, blockOwnerDeletion: true }],
        },
        spec: structuredClone(spec.template.spec),
      };
      try {
        current.push(this.api.create(podType, ns, pod, { fieldManager: 'kube-controller-manager' }));
      } catch {
        // A pod the API refuses (e.g. invalid template) leaves the Deployment short of replicas, as in a real cluster.
        break;
      }
    }
    const extra = current.slice(spec.replicas);
    for (const p of extra) this.api.delete(podType, ns, p.metadata.name);
    const live = current.slice(0, spec.replicas);
    const ready = live.filter(isReady).length;
    const previous = (d.status ?? {}) as { conditions?: Array<{ type: string; status: string; lastTransitionTime?: string; lastUpdateTime?: string }> };
    const condition = (type: string, ok: boolean, reason: string, message: string): Record<string, unknown> => {
      const before = previous.conditions?.find((c) => c.type === type);
      const status = ok ? 'True' : 'False';
      const unchanged = before && before.status === status;
      return { type, status, lastUpdateTime: unchanged ? before.lastUpdateTime : now(), lastTransitionTime: unchanged ? before.lastTransitionTime : now(), reason, message };
    };
    const available = ready >= spec.replicas;
    const status: Record<string, unknown> = {
      observedGeneration: d.metadata.generation,
      replicas: live.length,
      updatedReplicas: live.length,
      ...(ready > 0 ? { readyReplicas: ready, availableReplicas: ready } : {}),
      ...(live.length - ready > 0 ? { unavailableReplicas: live.length - ready } : {}),
      conditions: [
        condition('Available', available, available ? 'MinimumReplicasAvailable' : 'MinimumReplicasUnavailable', available ? 'Deployment has minimum availability.' : 'Deployment does not have minimum availability.'),
        condition('Progressing', true, available ? 'NewReplicaSetAvailable' : 'ReplicaSetUpdated', `ReplicaSet "${d.metadata.name}-${templateHash}" ${available ? 'has successfully progressed.' : 'is progressing.'}`),
      ],
    };
    this.api.writeAsController(this.t.deployment as ResourceType, { ...d, status }, 'kube-controller-manager', 'status');
  }

  private service(svc: KubeObject): void {
    const spec = svc.spec as { type?: string; selector?: Record<string, string>; ports?: Array<{ name?: string; port: number; targetPort?: number | string; protocol?: string; appProtocol?: string }> };
    const status = (svc.status ?? {}) as { loadBalancer?: { ingress?: Array<{ ip?: string; hostname?: string }> } };
    const ingress = status.loadBalancer?.ingress ?? [];
    if (spec.type === 'LoadBalancer' && ingress.length === 0) {
      const used = new Set(this.api.list(this.t.service as ResourceType).flatMap((s) => ((s.status as typeof status | undefined)?.loadBalancer?.ingress ?? []).map((i) => i.ip)));
      const ip = this.pool.find((a) => !used.has(a));
      if (ip) this.api.writeAsController(this.t.service as ResourceType, { ...svc, status: { loadBalancer: { ingress: [{ ip, ipMode: 'VIP' }] } } }, 'service-controller', 'status');
    } else if (spec.type !== 'LoadBalancer' && ingress.length > 0) {
      this.api.writeAsController(this.t.service as ResourceType, { ...svc, status: { loadBalancer: {} } }, 'service-controller', 'status');
    }
    if (!spec.selector || Object.keys(spec.selector).length === 0) return;
    const ns = svc.metadata.namespace as string;
    const pods = this.api.list(this.t.pod as ResourceType, ns).filter((p) => matchesMap(spec.selector, p.metadata.labels) && (p.status as { podIP?: string } | undefined)?.podIP);
    const resolvePort = (pod: KubeObject, target: number | string | undefined, port: number): number | undefined => {
      if (typeof target === 'number') return target;
      if (target === undefined) return port;
      if (/^\d+$/.test(target)) return Number(target);
      for (const c of ((pod.spec as { containers?: Array<{ ports?: Array<{ name?: string; containerPort: number }> }> }).containers ?? [])) {
        const found = c.ports?.find((p) => p.name === target);
        if (found) return found.containerPort;
      }
      return undefined;
    };
    const ports = spec.ports ?? [];
    // Endpoints: one subset per distinct resolved port set, as the endpoints controller groups them.
    const subsets = new Map<string, { addresses: object[]; notReadyAddresses: object[]; ports: object[] }>();
    const sliceEndpoints: object[] = [];
    let slicePorts: object[] = [];
    for (const pod of pods) {
      const resolved = ports.map((p) => ({ ...(p.name ? { name: p.name } : {}), port: resolvePort(pod, p.targetPort, p.port), protocol: p.protocol ?? 'TCP', ...(p.appProtocol ? { appProtocol: p.appProtocol } : {}) }));
      if (resolved.some((p) => p.port === undefined)) continue;
      const key = JSON.stringify(resolved);
      const subset = subsets.get(key) ?? { addresses: [], notReadyAddresses: [], ports: resolved };
      const ip = (pod.status as { podIP: string }).podIP;
      const address = { ip, nodeName: (pod.spec as { nodeName?: string }).nodeName, targetRef: { kind: 'Pod', namespace: ns, name: pod.metadata.name, uid: pod.metadata.uid } };
      (isReady(pod) ? subset.addresses : subset.notReadyAddresses).push(address);
      subsets.set(key, subset);
      const ready = isReady(pod);
      sliceEndpoints.push({ addresses: [ip], conditions: { ready, serving: ready, terminating: false }, nodeName: (pod.spec as { nodeName?: string }).nodeName, targetRef: address.targetRef });
      slicePorts = resolved;
    }
    const endpoints: KubeObject = {
      apiVersion: 'v1',
      kind: 'Endpoints',
      metadata: { name: svc.metadata.name, namespace: ns, labels: { ...svc.metadata.labels } },
      subsets: [...subsets.values()].map((s) => ({
        ...(s.addresses.length > 0 ? { addresses: s.addresses } : {}),
        ...(s.notReadyAddresses.length > 0 ? { notReadyAddresses: s.notReadyAddresses } : {}),
        ports: s.ports,
      })),
    };
    if (endpoints.subsets && (endpoints.subsets as unknown[]).length === 0) delete endpoints.subsets;
    this.writeIfChanged(this.t.endpoints as ResourceType, endpoints, ['subsets', 'metadata.labels']);
    const slice: KubeObject = {
      apiVersion: 'discovery.k8s.io/v1',
      kind: 'EndpointSlice',
      metadata: {
        name: `${svc.metadata.name}-${hash(svc.metadata.uid as string, 5)}`,
        namespace: ns,
        labels: { ...svc.metadata.labels, 'kubernetes.io/service-name': svc.metadata.name, 'endpointslice.kubernetes.io/managed-by': 'endpointslice-controller.k8s.io' },
        generateName: `${svc.metadata.name}-`,
        ownerReferences: [{ apiVersion: 'v1', kind: 'Service', name: svc.metadata.name, uid: svc.metadata.uid as string, controller: true, blockOwnerDeletion: true }],
      },
      addressType: 'IPv4',
      endpoints: sliceEndpoints,
      ports: slicePorts.length > 0 ? slicePorts : ports.map((p) => ({ ...(p.name ? { name: p.name } : {}), protocol: p.protocol ?? 'TCP' })),
    };
    this.writeIfChanged(this.t.slice as ResourceType, slice, ['endpoints', 'ports', 'metadata.labels']);
  }

  private writeIfChanged(type: ResourceType, obj: KubeObject, fields: string[]): void {
    const current = this.api.find(type, obj.metadata.namespace, obj.metadata.name);
    const pick = (o: KubeObject | undefined): string => JSON.stringify(fields.map((f) => f.split('.').reduce<unknown>((v, k) => (v as Record<string, unknown> | undefined)?.[k], o)));
    if (current && pick(current) === pick(obj)) return;
    if (current) {
      const next: KubeObject = { ...current, ...obj, metadata: { ...current.metadata, labels: obj.metadata.labels } };
      if (!('subsets' in obj)) delete next.subsets;
      this.api.writeAsController(type, next, 'kube-controller-manager');
    } else {
      this.api.writeAsController(type, obj, 'kube-controller-manager');
    }
  }

  /** Endpoints whose Service is gone go too (EndpointSlices are owned by their Service and collected). */
  private endpointsGarbage(): void {
    for (const ep of this.api.list(this.t.endpoints as ResourceType)) {
      if (!this.api.find(this.t.service as ResourceType, ep.metadata.namespace, ep.metadata.name) && ep.metadata.managedFields && JSON.stringify(ep.metadata.managedFields).includes('kube-controller-manager')) {
        this.api.delete(this.t.endpoints as ResourceType, ep.metadata.namespace, ep.metadata.name);
      }
    }
  }
}

