/**
 * What `istioctl install` (default profile) and istiod leave in a cluster, as far as the federation cares:
 * istio-system with istiod and the ingress gateway, the mesh ConfigMap with its trust domain, the plug-in CA
 * Secret `cacerts`, the `istio-ca-root-cert` ConfigMap in every namespace, the CRDs of the release, and the
 * sidecar injector (a mutating hook on pod creation).
 */
import YAML from 'yaml';
import { compareIstioVersions, loadIstioCrds } from '../crd-schema.js';
import type { IstioVersion } from '../crd-schema.js';
import type { ClusterApi } from './api.js';
import { holdsApplication } from './kubelet.js';
import type { IstioCaCerts } from './pki.js';
import { ApiError } from './errors.js';
import type { ResourceType } from './registry.js';
import type { KubeObject } from './runtime.js';

/** Istio settings of one emulated cluster. */
export interface IstioSetup {
  version: IstioVersion;
  /** The mesh trust domain (`<cluster>.local` or `cluster.local`). */
  trustDomain: string;
  caCerts: IstioCaCerts;
}

/** The proxy image of a release. */
export function proxyImage(version: string): string {
  return `docker.io/istio/proxyv2:${version}`;
}

const MANAGER = 'istio-operator';

/** Installs Istio into a cluster and registers the sidecar injector. */
export function installIstio(api: ClusterApi, setup: IstioSetup): void {
  const { version } = setup;
  const write = (obj: KubeObject): void => {
    api.writeAsController(api.typeOfObject(obj), obj, MANAGER);
  };
  for (const crd of loadIstioCrds(version)) {
    api.create(api.typeOf('apiextensions.k8s.io', 'CustomResourceDefinition'), undefined, crd, { fieldManager: MANAGER });
  }
  write({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'istio-system', labels: { 'topology.istio.io/network': `network-${api.clusterName}` } } });
  const mesh = {
    defaultConfig: { discoveryAddress: 'istiod.istio-system.svc:15012', proxyMetadata: {}, tracing: { zipkin: { address: 'zipkin.istio-system:9411' } } },
    enablePrometheusMerge: true,
    rootNamespace: 'istio-system',
    trustDomain: setup.trustDomain,
  };
  const labels = { 'install.operator.istio.io/owning-resource': 'installed-state', 'istio.io/rev': 'default', 'operator.istio.io/component': 'Pilot', release: 'istio' };
  write({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'istio', namespace: 'istio-system', labels }, data: { mesh: YAML.stringify(mesh), meshNetworks: 'networks: {}' } });
  write({
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name: 'cacerts', namespace: 'istio-system' },
    type: 'Opaque',
    data: Object.fromEntries(Object.entries(setup.caCerts).map(([k, v]) => [k, Buffer.from(v).toString('base64')])),
  });
  write({ apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'istiod', namespace: 'istio-system', labels: { app: 'istiod', release: 'istio' } } });
  write(deployment('istiod', { app: 'istiod', istio: 'pilot', 'istio.io/rev': 'default' }, 'istiod', {
    name: 'discovery',
    image: `docker.io/istio/pilot:${version}`,
    args: ['discovery', '--monitoringAddr=:15014', '--log_output_level=default:info', '--domain', 'cluster.local', '--keepaliveMaxServerConnectionAge', '30m'],
    ports: [{ containerPort: 8080, protocol: 'TCP' }, { containerPort: 15010, protocol: 'TCP' }, { containerPort: 15017, protocol: 'TCP' }],
    env: [{ name: 'CLUSTER_ID', value: api.clusterName }, { name: 'REVISION', value: 'default' }],
  }));
  write(service('istiod', { app: 'istiod', istio: 'pilot' }, 'ClusterIP', [
    { name: 'grpc-xds', port: 15010, targetPort: 15010 },
    { name: 'https-dns', port: 15012, targetPort: 15012 },
    { name: 'https-webhook', port: 443, targetPort: 15017 },
    { name: 'http-monitoring', port: 15014, targetPort: 15014 },
  ]));
  write({ apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'istio-ingressgateway-service-account', namespace: 'istio-system', labels: { app: 'istio-ingressgateway', istio: 'ingressgateway' } } });
  write(deployment('istio-ingressgateway', { app: 'istio-ingressgateway', istio: 'ingressgateway' }, 'istio-ingressgateway-service-account', {
    name: 'istio-proxy',
    image: proxyImage(version),
    args: ['proxy', 'router', '--domain', '$(POD_NAMESPACE).svc.cluster.local', '--proxyLogLevel=warning', '--proxyComponentLogLevel=misc:error', '--log_output_level=default:info'],
    ports: [
      { containerPort: 15021, protocol: 'TCP' }, { containerPort: 8080, protocol: 'TCP' }, { containerPort: 8443, protocol: 'TCP' },
      { containerPort: 15443, protocol: 'TCP' }, { containerPort: 15090, name: 'http-envoy-prom', protocol: 'TCP' },
    ],
    env: [{ name: 'ISTIO_META_CLUSTER_ID', value: api.clusterName }, { name: 'ISTIO_META_ROUTER_MODE', value: 'standard' }],
  }));
  write(service('istio-ingressgateway', { app: 'istio-ingressgateway', istio: 'ingressgateway' }, 'LoadBalancer', [
    { name: 'status-port', port: 15021, targetPort: 15021 },
    { name: 'http2', port: 80, targetPort: 8080 },
    { name: 'https', port: 443, targetPort: 8443 },
    { name: 'tls', port: 15443, targetPort: 15443 },
  ]));

  const configMaps = api.typeOf('', 'ConfigMap');
  const rootCert = (ns: string): void => {
    const existing = api.find(configMaps, ns, 'istio-ca-root-cert');
    const data = { 'root-cert.pem': setup.caCerts['root-cert.pem'] };
    if (existing && JSON.stringify(existing.data) === JSON.stringify(data)) return;
    api.writeAsController(configMaps, { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'istio-ca-root-cert', namespace: ns, labels: { 'istio.io/config': 'true' } }, data }, 'pilot-discovery');
  };
  for (const ns of api.list(api.typeOf('', 'Namespace'))) rootCert(ns.metadata.name);
  // istiod publishes the root certificate into namespaces created later, and restores it when deleted.
  api.store.subscribe((e) => {
    if (e.type === 'ADDED' && e.typeKey === '/namespaces') setImmediate(() => api.find(api.typeOf('', 'Namespace'), undefined, e.object.metadata.name) && rootCert(e.object.metadata.name));
    if (e.type === 'DELETED' && e.typeKey === '/configmaps' && e.object.metadata.name === 'istio-ca-root-cert') {
      setImmediate(() => api.find(api.typeOf('', 'Namespace'), undefined, e.object.metadata.namespace as string) && rootCert(e.object.metadata.namespace as string));
    }
  });
  api.mutators.push((type, obj) => inject(api, setup, type, obj));
  api.validators.push((type, obj) => validateIstioConfig(setup.version, type, obj));
}

/**
 * istiod's validating webhook (`validation.istio.io`), for the rules that differ between the releases the tests run.
 * Istio 1.10.0 validates the header operations of a weighted destination with `ValidateHTTPHeaderOperationName`,
 * which refuses `Host` (1.10.0 `pkg/config/validation/validation.go` `validateHTTPRouteDestinations`); 1.9.x only
 * checks that names are not empty (`ValidateHTTPHeaderName`) and 1.10.1 allows Host again
 * (`ValidateHTTPHeaderWithHostOperationName`). A denial is a 403 (a webhook's `allowed: false` without a code).
 */
export function validateIstioConfig(version: string, type: ResourceType, obj: KubeObject): void {
  if (type.group !== 'networking.istio.io' || type.kind !== 'VirtualService' || version !== '1.10.0') return;
  const http = ((obj.spec as { http?: Array<{ route?: Array<{ headers?: { request?: Record<string, unknown> } }> }> } | undefined)?.http) ?? [];
  const errors: string[] = [];
  for (const route of http) {
    for (const destination of route.route ?? []) {
      const request = destination.headers?.request ?? {};
      const names = [...Object.keys((request.add ?? {}) as object), ...Object.keys((request.set ?? {}) as object), ...((request.remove ?? []) as string[])];
      for (const name of names) if (name.toLowerCase() === 'host') errors.push(`invalid header "${name}": cannot set Host header`);
    }
  }
  if (errors.length) {
    throw new ApiError(403, 'Forbidden', `admission webhook "validation.istio.io" denied the request: configuration is invalid: ${errors.join(', ')}`);
  }
}

function deployment(name: string, labels: Record<string, string>, serviceAccount: string, container: Record<string, unknown>): KubeObject {
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name, namespace: 'istio-system', labels: { ...labels, release: 'istio' } },
    spec: {
      replicas: 1,
      selector: { matchLabels: labels },
      template: {
        metadata: { labels: { ...labels, 'sidecar.istio.io/inject': 'false' }, annotations: { 'prometheus.io/port': '15014', 'prometheus.io/scrape': 'true' } },
        spec: { serviceAccountName: serviceAccount, containers: [container] },
      },
    },
  };
}

function service(name: string, selector: Record<string, string>, type: string, ports: Array<{ name: string; port: number; targetPort: number }>): KubeObject {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name, namespace: 'istio-system', labels: { ...selector, release: 'istio' } },
    spec: { type, selector, ports: ports.map((p) => ({ ...p, protocol: 'TCP' })) },
  };
}

/** Whether the injector acts on a pod: namespace labels, then the pod's own label or annotation. */
function injectionWanted(api: ClusterApi, pod: KubeObject): boolean {
  const podSetting = pod.metadata.labels?.['sidecar.istio.io/inject'] ?? pod.metadata.annotations?.['sidecar.istio.io/inject'];
  if (podSetting === 'false') return false;
  const ns = api.find(api.typeOf('', 'Namespace'), undefined, pod.metadata.namespace as string);
  const nsLabels = ns?.metadata.labels ?? {};
  if (nsLabels['istio-injection'] === 'disabled') return false;
  if (nsLabels['istio-injection'] === 'enabled' || nsLabels['istio.io/rev'] !== undefined) return true;
  return podSetting === 'true' || pod.metadata.labels?.['istio.io/rev'] !== undefined;
}

function inject(api: ClusterApi, setup: IstioSetup, type: ResourceType, pod: KubeObject): void {
  if (type.kind !== 'Pod' || type.group !== '') return;
  const spec = pod.spec as { containers: Array<Record<string, unknown>>; initContainers?: Array<Record<string, unknown>>; hostNetwork?: boolean; serviceAccountName?: string };
  if (spec.hostNetwork || !injectionWanted(api, pod)) return;
  if (spec.containers.some((c) => c.name === 'istio-proxy') && !pod.metadata.annotations?.['inject.istio.io/templates']) return;
  const annotations = { ...pod.metadata.annotations };
  const image = proxyImage(setup.version);
  if (annotations['inject.istio.io/templates'] === 'gateway') {
    // Gateway injection (Istio 1.12+) only fills in the proxy image of containers declared with image "auto".
    if (compareIstioVersions(setup.version, '1.12.0') < 0) return;
    for (const c of spec.containers) if (c.image === 'auto') c.image = image;
    annotations['sidecar.istio.io/status'] = JSON.stringify({ initContainers: null, containers: ['istio-proxy'], volumes: ['workload-socket', 'credential-socket', 'workload-certs', 'istio-envoy', 'istio-data', 'istio-podinfo', 'istio-token', 'istiod-ca-cert'], imagePullSecrets: null, revision: 'default' });
    pod.metadata.annotations = annotations;
    return;
  }
  const labels = { ...pod.metadata.labels };
  const appName = labels.app ?? labels['app.kubernetes.io/name'] ?? pod.metadata.name.replace(/-[a-z0-9]{10}-[a-z0-9]{5}$/, '');
  const hold = holdsApplication(annotations);
  const proxy: Record<string, unknown> = {
    name: 'istio-proxy',
    image,
    args: ['proxy', 'sidecar', '--domain', '$(POD_NAMESPACE).svc.cluster.local', '--proxyLogLevel=warning', '--proxyComponentLogLevel=misc:error', '--log_output_level=default:info'],
    env: [
      { name: 'PILOT_CERT_PROVIDER', value: 'istiod' },
      { name: 'CA_ADDR', value: 'istiod.istio-system.svc:15012' },
      { name: 'ISTIO_META_CLUSTER_ID', value: api.clusterName },
      { name: 'ISTIO_META_WORKLOAD_NAME', value: appName },
      { name: 'TRUST_DOMAIN', value: setup.trustDomain },
    ],
    ports: [{ containerPort: 15090, name: 'http-envoy-prom', protocol: 'TCP' }],
    readinessProbe: { httpGet: { path: '/healthz/ready', port: 15021 }, initialDelaySeconds: 1, periodSeconds: 2, failureThreshold: 30 },
    securityContext: { runAsUser: 1337, runAsGroup: 1337, runAsNonRoot: true, readOnlyRootFilesystem: true, allowPrivilegeEscalation: false },
    imagePullPolicy: 'IfNotPresent',
    terminationMessagePath: '/dev/termination-log',
    terminationMessagePolicy: 'File',
    resources: { requests: { cpu: '100m', memory: '128Mi' }, limits: { cpu: '2', memory: '1Gi' } },
    ...(hold ? { lifecycle: { postStart: { exec: { command: ['pilot-agent', 'wait'] } } } } : {}),
  };
  const init: Record<string, unknown> = {
    name: 'istio-init',
    image,
    args: ['istio-iptables', '-p', '15001', '-z', '15006', '-u', '1337', '-m', 'REDIRECT', '-i', '*', '-x', '', '-b', '*', '-d', '15090,15021,15020', '--log_output_level=default:info'],
    imagePullPolicy: 'IfNotPresent',
    terminationMessagePath: '/dev/termination-log',
    terminationMessagePolicy: 'File',
    resources: {},
    securityContext: { capabilities: { add: ['NET_ADMIN', 'NET_RAW'], drop: ['ALL'] }, runAsUser: 0, runAsNonRoot: false },
  };
  const firstApp = spec.containers[0]?.name as string | undefined;
  spec.containers = hold ? [proxy, ...spec.containers] : [...spec.containers, proxy];
  spec.initContainers = [...(spec.initContainers ?? []), init];
  labels['security.istio.io/tlsMode'] = 'istio';
  labels['service.istio.io/canonical-name'] = appName;
  labels['service.istio.io/canonical-revision'] = labels.version ?? 'latest';
  annotations['sidecar.istio.io/status'] = JSON.stringify({ initContainers: ['istio-init'], containers: ['istio-proxy'], volumes: ['workload-socket', 'credential-socket', 'workload-certs', 'istio-envoy', 'istio-data', 'istio-podinfo', 'istio-token', 'istiod-ca-cert'], imagePullSecrets: null, revision: 'default' });
  if (firstApp) {
    annotations['kubectl.kubernetes.io/default-container'] = firstApp;
    annotations['kubectl.kubernetes.io/default-logs-container'] = firstApp;
  }
  annotations['istio.io/rev'] = 'default';
  pod.metadata.labels = labels;
  pod.metadata.annotations = annotations;
}
