/**
 * Reading the emulated clusters: small typed accessors over the {@link ClusterView} contract, and
 * {@link staticWorld}, an in-memory world built from YAML for unit tests that do not need the emulator.
 */
import YAML from 'yaml';
import type { ClusterView, KubeObject, WorldView } from '../emulator/runtime.js';

/** Thrown when the configuration uses an Istio or Kubernetes feature the model does not implement. */
export class UnmodelledFeatureError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UnmodelledFeatureError';
  }
}

/** Fails loudly on a feature the model does not implement: never succeed by default. */
export function unmodelled(what: string): never {
  throw new UnmodelledFeatureError(what);
}

export type Obj = KubeObject;
/** A loose view of an object's spec: stored objects are plain JSON. */
export type Spec = Record<string, unknown>;

export function specOf(obj: KubeObject): Spec {
  return (obj['spec'] as Spec | undefined) ?? {};
}

export function ref(obj: KubeObject): string {
  return `${obj.kind} ${obj.metadata.namespace ? `${obj.metadata.namespace}/` : ''}${obj.metadata.name}`;
}

/** The cluster DNS suffix; the emulated clusters all use the Kubernetes default. */
export const CLUSTER_DOMAIN = 'cluster.local';

/** Mesh-wide settings read from the `istio` ConfigMap in `istio-system`. */
export interface MeshSettings {
  installed: boolean;
  trustDomain: string;
  trustDomainAliases: string[];
  rootNamespace: string;
  outboundPolicy: 'ALLOW_ANY' | 'REGISTRY_ONLY';
  /** `defaultConfig` of the mesh config (proxy config defaults). */
  defaultConfig: Record<string, unknown>;
  /** `defaultServiceExportTo`: the visibility of Services without a `networking.istio.io/exportTo` annotation. */
  defaultServiceExportTo?: string[];
}

export function meshSettings(cluster: ClusterView): MeshSettings {
  const cm = cluster.get('', 'ConfigMap', 'istio-system', 'istio');
  const raw = (cm?.['data'] as Record<string, string> | undefined)?.['mesh'];
  const mesh = (raw ? (YAML.parse(raw) as Record<string, unknown> | null) : null) ?? {};
  const outbound = ((mesh['outboundTrafficPolicy'] as Spec | undefined)?.['mode'] as string | undefined) ?? 'ALLOW_ANY';
  return {
    installed: cm !== undefined,
    trustDomain: (mesh['trustDomain'] as string | undefined) ?? 'cluster.local',
    trustDomainAliases: (mesh['trustDomainAliases'] as string[] | undefined) ?? [],
    rootNamespace: (mesh['rootNamespace'] as string | undefined) ?? 'istio-system',
    outboundPolicy: outbound === 'REGISTRY_ONLY' ? 'REGISTRY_ONLY' : 'ALLOW_ANY',
    defaultConfig: (mesh['defaultConfig'] as Record<string, unknown> | undefined) ?? {},
    ...(Array.isArray(mesh['defaultServiceExportTo']) ? { defaultServiceExportTo: mesh['defaultServiceExportTo'] as string[] } : {}),
  };
}

/** What the mesh's istiod runs: its release (from the `discovery` container image) and its environment. */
export interface IstiodSettings {
  /** `[major, minor, patch]` of istiod's image tag, or undefined (no istiod, or an untagged image). */
  version?: [number, number, number];
  env: Record<string, string>;
}

/** istiod as the emulated cluster runs it (Deployment `istio-system/istiod`). */
export function istiodSettings(cluster: ClusterView): IstiodSettings {
  const istiod = cluster.get('apps', 'Deployment', 'istio-system', 'istiod');
  const template = ((istiod?.['spec'] as Spec | undefined)?.['template'] as Spec | undefined)?.['spec'] as Spec | undefined;
  const containers = (template?.['containers'] as ContainerSpec[] | undefined) ?? [];
  const discovery = containers.find((c) => c.name === 'discovery') ?? containers[0];
  const m = /:(\d+)\.(\d+)(?:\.(\d+))?/.exec(discovery?.image ?? '');
  const env: Record<string, string> = {};
  for (const e of discovery?.env ?? []) if (e.value !== undefined) env[e.name] = e.value;
  return { ...(m ? { version: [Number(m[1]), Number(m[2]), Number(m[3] ?? 0)] as [number, number, number] } : {}), env };
}

/**
 * istiod's PILOT_SKIP_VALIDATE_TRUST_DOMAIN: the inbound mTLS context of every sidecar then accepts peers of any
 * trust domain under the root (`pilot/pkg/networking/plugin/authn/util.go` `trustDomainsForValidation`, 1.9.0 and
 * 1.30.3: nil instead of the trust domain and its aliases). Policies are unchanged by it.
 */
export function skipsTrustDomainValidation(cluster: ClusterView): boolean {
  return envBool(istiodSettings(cluster).env['PILOT_SKIP_VALIDATE_TRUST_DOMAIN']);
}

/** Go's strconv.ParseBool, which istiod's boolean variables use (invalid values keep the default, false here). */
export function envBool(value: string | undefined): boolean {
  return ['1', 't', 'T', 'true', 'TRUE', 'True'].includes(value ?? '');
}

export interface ContainerSpec {
  name: string;
  image: string;
  command?: string[];
  args?: string[];
  env?: Array<{ name: string; value?: string }>;
  ports?: Array<{ containerPort: number; name?: string; protocol?: string }>;
}

export function containersOf(pod: KubeObject): ContainerSpec[] {
  return ((specOf(pod)['containers'] as ContainerSpec[] | undefined) ?? []);
}

export function isProxyImage(image: string): boolean {
  return /(^|\/)proxyv2(:|@|$)/.test(image);
}

/** The Istio version of a proxy image tag (`1.9.1`, `1.18.0-distroless`), or undefined for `auto`/unknown. */
export function proxyVersion(image: string): [number, number] | undefined {
  const m = /:(\d+)\.(\d+)/.exec(image);
  return m ? [Number(m[1]), Number(m[2])] : undefined;
}

/** A pod whose only proxy is a gateway: a proxyv2 container and no application container beside it. */
export function isGatewayPod(pod: KubeObject): boolean {
  const cs = containersOf(pod);
  return cs.length > 0 && cs.every((c) => isProxyImage(c.image));
}

/** A pod with an injected sidecar: an `istio-proxy` proxyv2 container beside application containers. */
export function hasSidecar(pod: KubeObject): boolean {
  const cs = containersOf(pod);
  return !isGatewayPod(pod) && cs.some((c) => c.name === 'istio-proxy' && isProxyImage(c.image));
}

export function podIp(pod: KubeObject): string | undefined {
  return (pod['status'] as Spec | undefined)?.['podIP'] as string | undefined;
}

export function isPodReady(pod: KubeObject): boolean {
  const status = (pod['status'] as Spec | undefined) ?? {};
  if (pod.metadata['deletionTimestamp']) return false;
  const conditions = status['conditions'] as Array<{ type: string; status: string }> | undefined;
  const ready = conditions?.find((c) => c.type === 'Ready');
  if (ready) return ready.status === 'True';
  return status['phase'] === 'Running';
}

export function labelsMatch(selector: Record<string, string> | undefined, labels: Record<string, string> | undefined): boolean {
  if (!selector) return true;
  return Object.entries(selector).every(([k, v]) => labels?.[k] === v);
}

export function serviceAccountOf(pod: KubeObject): string {
  const s = specOf(pod);
  return (s['serviceAccountName'] as string | undefined) ?? (s['serviceAccount'] as string | undefined) ?? 'default';
}

/** Resolves a Service port's targetPort to a number on one pod (named target ports look up container ports). */
export function targetPortOn(pod: KubeObject | undefined, svcPort: Spec): number | undefined {
  const target = svcPort['targetPort'] ?? svcPort['port'];
  if (typeof target === 'number') return target;
  if (typeof target === 'string' && /^\d+$/.test(target)) return Number(target);
  if (!pod) return undefined;
  for (const c of containersOf(pod)) {
    const p = c.ports?.find((cp) => cp.name === target);
    if (p) return p.containerPort;
  }
  return undefined;
}

export function findPodByIp(cluster: ClusterView, ip: string): KubeObject | undefined {
  return cluster.list('', 'Pod').find((p) => podIp(p) === ip && (p['status'] as Spec | undefined)?.['phase'] !== 'Succeeded');
}

export function secretData(secret: KubeObject): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries((secret['data'] as Record<string, string> | undefined) ?? {})) {
    out[k] = Buffer.from(v, 'base64').toString('utf8');
  }
  for (const [k, v] of Object.entries((secret['stringData'] as Record<string, string> | undefined) ?? {})) out[k] = v;
  return out;
}

/**
 * An in-memory world for tests: clusters seeded from multi-document YAML (or objects). Objects are looked up by
 * API group and kind like the emulator does. Selector Services get Endpoints of their ready pods (as the
 * endpoints controller would) unless the YAML already holds Endpoints for them.
 */
export function staticWorld(byCluster: Record<string, string | KubeObject[]>): WorldView & {
  add(cluster: string, obj: KubeObject): void;
  remove(cluster: string, group: string, kind: string, namespace: string | undefined, name: string): void;
} {
  const stores = new Map<string, KubeObject[]>();
  for (const [name, content] of Object.entries(byCluster)) {
    const objs = typeof content === 'string'
      ? YAML.parseAllDocuments(content).map((d) => d.toJS() as KubeObject | null).filter((o): o is KubeObject => !!o)
      : content;
    stores.set(name, objs.map((o) => structuredClone(o)));
  }
  const groupOf = (apiVersion: string): string => (apiVersion.includes('/') ? apiVersion.split('/')[0]! : '');
  const derivedEndpoints = (objs: KubeObject[]): KubeObject[] => {
    const out: KubeObject[] = [];
    for (const svc of objs.filter((o) => o.kind === 'Service' && groupOf(o.apiVersion) === '')) {
      const selector = specOf(svc)['selector'] as Record<string, string> | undefined;
      if (!selector) continue;
      const ns = svc.metadata.namespace ?? 'default';
      if (objs.some((o) => o.kind === 'Endpoints' && o.metadata.namespace === ns && o.metadata.name === svc.metadata.name)) continue;
      const pods = objs.filter((p) => p.kind === 'Pod' && (p.metadata.namespace ?? 'default') === ns && labelsMatch(selector, p.metadata.labels));
      const ready = pods.filter((p) => isPodReady(p) && podIp(p));
      const ports = ((specOf(svc)['ports'] as Spec[] | undefined) ?? []).map((sp) => ({
        name: sp['name'], port: targetPortOn(ready[0], sp) ?? sp['port'], protocol: sp['protocol'] ?? 'TCP',
      }));
      out.push({
        apiVersion: 'v1', kind: 'Endpoints', metadata: { name: svc.metadata.name, namespace: ns },
        subsets: ready.length === 0 ? [] : [{
          addresses: ready.map((p) => ({ ip: podIp(p), targetRef: { kind: 'Pod', name: p.metadata.name, namespace: ns } })),
          ports,
        }],
      });
    }
    return out;
  };
  const view = (name: string): ClusterView => ({
    name,
    list(group, kind, namespace) {
      const objs = stores.get(name) ?? [];
      const all = group === '' && kind === 'Endpoints' ? [...objs, ...derivedEndpoints(objs)] : objs;
      return all
        .filter((o) => o.kind === kind && groupOf(o.apiVersion) === group)
        .filter((o) => namespace === undefined || (o.metadata.namespace ?? 'default') === namespace)
        .map((o) => structuredClone(o));
    },
    get(group, kind, namespace, objName) {
      return this.list(group, kind).find((o) => o.metadata.name === objName && (namespace === undefined || o.metadata.namespace === undefined || o.metadata.namespace === namespace));
    },
  });
  return {
    clusters: () => [...stores.keys()].map(view),
    cluster: (name) => (stores.has(name) ? view(name) : undefined),
    add(cluster, obj) {
      const objs = stores.get(cluster);
      if (!objs) throw new Error(`no cluster ${cluster}`);
      const idx = objs.findIndex((o) => o.kind === obj.kind && o.apiVersion === obj.apiVersion && o.metadata.name === obj.metadata.name && o.metadata.namespace === obj.metadata.namespace);
      if (idx >= 0) objs[idx] = structuredClone(obj); else objs.push(structuredClone(obj));
    },
    remove(cluster, group, kind, namespace, objName) {
      const objs = stores.get(cluster) ?? [];
      const idx = objs.findIndex((o) => o.kind === kind && groupOf(o.apiVersion) === group && o.metadata.name === objName && (namespace === undefined || o.metadata.namespace === namespace));
      if (idx >= 0) objs.splice(idx, 1);
    },
  };
}
