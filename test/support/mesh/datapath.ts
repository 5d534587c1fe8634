/**
 * The data path: a connection leaves a pod, is resolved, captured by the sidecar or sent directly, crosses
 * gateways and clusters by LoadBalancer address, is TLS-terminated and re-originated with real handshakes,
 * authorized, and answered by the destination application — following the Istio objects stored in the clusters.
 *
 * Each hop returns what its client sees: a reply, or a connection-level failure the client maps to its own error
 * (curl's exit codes, or Envoy's 503 with response flags).
 */
import { createHash } from 'node:crypto';
import type { ClusterView, KubeObject, WorldView } from '../emulator/runtime.js';
import { applicationOn } from './apps.js';
import { duplicatePassthroughChain } from './gateway-chains.js';
import { inferredFromVirtualServices, serviceInScope, sidecarScopeFor, virtualServiceInScope } from './sidecar-scope.js';
import type { HttpRequest, Payload, Reply } from './apps.js';
import { authorize } from './authz.js';
import {
  assertModelledCluster, destinationRuleFor, endpointsOf, expandHost, gatewayListenPort, gatewaysForPod, hostMatches,
  normaliseGatewayRef, peerAuthenticationMode, registry, serviceByHost, virtualServiceFor, visibleTo,
} from './istio.js';
import type { RegistryService, ServicePort } from './istio.js';
import { envoyKeyRefusal, envoyOfIstio, workloadCertificate } from './pki.js';
import { ENVOY_CLIENT_SIGALGS, handshake } from './tls.js';
import type { TlsClientSide, TlsServerSide } from './tls.js';
import {
  CLUSTER_DOMAIN, envBool, findPodByIp, istiodSettings, skipsTrustDomainValidation, hasSidecar, isGatewayPod, isPodReady, labelsMatch, meshSettings, podIp, proxyVersion,
  containersOf, isProxyImage, ref, secretData, serviceAccountOf, specOf, unmodelled,
} from './world.js';
import type { Spec } from './world.js';

/** A connection as one hop opens it. */
export interface Conn {
  /** TLS the client originates on this connection; absent for plaintext. */
  tls?: TlsClientSide & { istio?: boolean };
  /** What is carried (inside the TLS, if any). `stream` is an inner connection carried opaquely (TLS in TLS). */
  payload: Payload | { kind: 'stream'; conn: Conn };
}

/** A connection-level failure, as the connecting side experiences it. */
export type Failure =
  | { kind: 'resolve'; host: string }
  | { kind: 'refused' }
  | { kind: 'timeout' }
  /** The peer closed or reset the connection during the TLS handshake (e.g. no filter chain for the SNI). */
  | { kind: 'handshake-reset'; reason: string }
  /** A TLS handshake was refused: `side: 'client'` means the connecting side rejected the server's certificate. */
  | { kind: 'tls'; side: 'client' | 'server'; code: string; message: string }
  /**
   * The client's own TLS material is missing, or Envoy refused to load it into the TLS context (`reason`): Envoy
   * has no client context and reports the secret as not supplied by SDS.
   */
  | { kind: 'sds'; secret: string; reason?: string }
  /** The peer reset the connection after it was established and before answering. */
  | { kind: 'reset' };

export type HopResult = { ok: true; reply: Reply } | { ok: false; failure: Failure };

/** Runtime state of proxies the model knows about (stopped sidecars, access logs). */
export interface ProxyRegistry {
  /** Whether the istio-proxy of this pod was stopped (quitquitquit, container exit). */
  isStopped(cluster: string, namespace: string, pod: string): boolean;
  /** Appends an access log line to the proxy container's log, if the proxy is running under the model. */
  accessLog(cluster: string, namespace: string, pod: string, line: string): void;
}

/** Everything one simulated request needs. */
export interface PathContext {
  world: WorldView;
  proxies?: ProxyRegistry;
  /** Random source for load balancing and weights. Default Math.random. */
  random?: () => number;
  /** The hops travelled, for diagnostics and tests. */
  trace: string[];
  /** Hops of the current request (connections opened), bounded to catch routing loops; reset per client request. */
  depth?: number;
}

const MAX_HOPS = 24;

function podKey(cluster: ClusterView, pod: KubeObject): [string, string, string] {
  return [cluster.name, pod.metadata.namespace ?? 'default', pod.metadata.name];
}

export function sidecarRunning(ctx: PathContext, cluster: ClusterView, pod: KubeObject): boolean {
  return hasSidecar(pod) && !(ctx.proxies?.isStopped(...podKey(cluster, pod)) ?? false);
}

function log(ctx: PathContext, cluster: ClusterView, pod: KubeObject, line: string): void {
  ctx.proxies?.accessLog(...podKey(cluster, pod), `[${new Date().toISOString()}] ${line}`);
}

/** The Envoy release a proxy pod runs: that of the Istio release of its proxyv2 image (an image without a tag is current). */
function envoyOf(pod: KubeObject): [number, number] {
  const proxy = containersOf(pod).find((c) => isProxyImage(c.image));
  return envoyOfIstio(proxyVersion(proxy?.image ?? ''));
}

/** Envoy's warning when it NACKs an SDS secret it cannot load (the update is rejected; no TLS context is built). */
function secretRejected(name: string, reason: string): string {
  return `warning envoy config gRPC config for type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret rejected (${name}): ${reason}`;
}

function httpLogLine(req: HttpRequest, status: number, flags: string, upstream: string, cluster: string): string {
  return `"${req.method} ${req.path} HTTP/1.1" ${status} ${flags || '-'} "${req.authority}" "${upstream}" ${cluster}`;
}

function tcpLogLine(flags: string, upstream: string, cluster: string, sni?: string): string {
  return `"- - -" 0 ${flags || '-'} "${sni ?? '-'}" "${upstream}" ${cluster}`;
}

/** Envoy's local reply. */
function envoyReply(status: number, body: string, flags: string): Reply & { flags: string } {
  return { kind: 'http', response: { status, headers: body ? { 'content-type': 'text/plain', server: 'envoy' } : { server: 'envoy' }, body }, flags };
}

function stableIndex(ctx: PathContext, n: number): number {
  return Math.min(n - 1, Math.floor((ctx.random ?? Math.random)() * n));
}

// ---------------------------------------------------------------------------------------------------------------
// DNS

function autoAllocated(host: string): string {
  const h = createHash('sha256').update(host).digest();
  return `240.240.${h[0]}.${h[1]}`;
}

function dnsCapture(cluster: ClusterView, pod: KubeObject): { capture: boolean; autoAllocate: boolean } {
  const meta = { ...((meshSettings(cluster).defaultConfig['proxyMetadata'] as Record<string, string> | undefined) ?? {}) };
  const annotation = pod.metadata.annotations?.['proxy.istio.io/config'];
  if (annotation) {
    try {
      const parsed = JSON.parse(annotation) as Spec;
      Object.assign(meta, (parsed['proxyMetadata'] as Record<string, string> | undefined) ?? {});
    } catch {
      // Istio also accepts YAML here; a non-JSON annotation simply carries no proxy metadata for the model.
    }
  }
  return { capture: meta['ISTIO_META_DNS_CAPTURE'] === 'true', autoAllocate: meta['ISTIO_META_DNS_AUTO_ALLOCATE'] === 'true' };
}

/**
 * Resolves a name as a pod would: the pod's search path (`<ns>.svc.cluster.local svc.cluster.local
 * cluster.local`), cluster Services, and ServiceEntry hosts when the pod's sidecar proxies DNS
 * (`ISTIO_META_DNS_CAPTURE`). The emulated clusters have no upstream DNS: other names do not resolve.
 */
export function resolveName(ctx: PathContext, cluster: ClusterView, pod: KubeObject, name: string): string | undefined {
  const host = name.toLowerCase().replace(/\.$/, '');
  if (/^\d+\.\d+\.\d+\.\d+$/.test(host)) return host;
  if (host === 'localhost') return '127.0.0.1';
  const ns = pod.metadata.namespace ?? 'default';
  const search = [`${ns}.svc.${CLUSTER_DOMAIN}`, `svc.${CLUSTER_DOMAIN}`, CLUSTER_DOMAIN];
  const dots = host.split('.').length - 1;
  const candidates = name.endsWith('.') ? [host] : dots >= 5 ? [host, ...search.map((s) => `${host}.${s}`)] : [...search.map((s) => `${host}.${s}`), host];
  const proxyDns = sidecarRunning(ctx, cluster, pod) ? dnsCapture(cluster, pod) : { capture: false, autoAllocate: false };
  for (const c of candidates) {
    if (proxyDns.capture) {
      const se = registry(cluster, ns).find((s) => s.kind === 'ServiceEntry' && hostMatches(s.host, c));
      if (se) {
        if (se.addresses[0]) return se.addresses[0];
        if (proxyDns.autoAllocate && !se.host.includes('*')) return autoAllocated(se.host);
      }
    }
    const m = new RegExp(`^([^.]+)\\.([^.]+)\\.svc\\.${CLUSTER_DOMAIN.replace('.', '\\.')}$`).exec(c);
    if (!m) continue;
    const svc = cluster.get('', 'Service', m[2], m[1]!);
    if (!svc) continue;
    const spec = specOf(svc);
    if (spec['type'] === 'ExternalName') unmodelled(`${ref(svc)}: type ExternalName`);
    const ip = spec['clusterIP'] as string | undefined;
    if (ip && ip !== 'None') return ip;
    // Headless: the first ready endpoint.
    const pods = cluster.list('', 'Pod', m[2]).filter((p) => isPodReady(p) && labelsMatch(spec['selector'] as Record<string, string> | undefined, p.metadata.labels));
    const first = pods.map(podIp).find((x) => x);
    if (first) return first;
  }
  return undefined;
}

// ---------------------------------------------------------------------------------------------------------------
// The network: addresses to pods

/**
 * Opens a connection from `from` to address:port: pod IPs and ClusterIPs of the same cluster, LoadBalancer
 * ingress addresses of any cluster. An address nobody owns, or a port nobody forwards, times out.
 */
export async function connectTo(ctx: PathContext, from: ClusterView, address: string, port: number, conn: Conn): Promise<HopResult> {
  ctx.depth = (ctx.depth ?? 0) + 1;
  if (ctx.depth > MAX_HOPS) unmodelled(`a routing loop (more than ${MAX_HOPS} hops, last to ${address}:${port})`);
  for (const cluster of ctx.world.clusters()) {
    for (const svc of cluster.list('', 'Service')) {
      const spec = specOf(svc);
      if (spec['type'] !== 'LoadBalancer') continue;
      const ingress = ((svc['status'] as Spec | undefined)?.['loadBalancer'] as Spec | undefined)?.['ingress'] as Spec[] | undefined;
      if (!ingress?.some((i) => i['ip'] === address || i['hostname'] === address)) continue;
      ctx.trace.push(`${from.name} -> LoadBalancer ${address}:${port} (${cluster.name} ${ref(svc)})`);
      const svcPort = ((spec['ports'] as Spec[] | undefined) ?? []).find((p) => p['port'] === port);
      if (!svcPort) return { ok: false, failure: { kind: 'timeout' } };
      return viaService(ctx, cluster, svc, svcPort, conn, 'timeout');
    }
  }
  const pod = findPodByIp(from, address);
  if (pod) return deliverToPod(ctx, from, pod, port, conn);
  const svc = from.list('', 'Service').find((s) => specOf(s)['clusterIP'] === address);
  if (svc) {
    const svcPort = ((specOf(svc)['ports'] as Spec[] | undefined) ?? []).find((p) => p['port'] === port);
    if (!svcPort) return { ok: false, failure: { kind: 'timeout' } };
    ctx.trace.push(`${from.name} -> ClusterIP ${address}:${port} (${ref(svc)})`);
    return viaService(ctx, from, svc, svcPort, conn, 'refused');
  }
  ctx.trace.push(`${from.name} -> ${address}:${port}: no route to this address`);
  return { ok: false, failure: { kind: 'timeout' } };
}

/** kube-proxy / cloud load balancer: one ready endpoint of the Service, at its target port. */
async function viaService(ctx: PathContext, cluster: ClusterView, svc: KubeObject, svcPort: Spec, conn: Conn, noEndpoints: 'refused' | 'timeout'): Promise<HopResult> {
  const ns = svc.metadata.namespace ?? 'default';
  const rsvc = registry(cluster, ns).find((s) => s.kind === 'Service' && s.object.metadata.name === svc.metadata.name && s.namespace === ns);
  const port = rsvc?.ports.find((p) => p.number === svcPort['port']);
  const eps = rsvc && port ? endpointsOf(cluster, rsvc, port) : [];
  if (eps === 'original-destination' || eps.length === 0) {
    ctx.trace.push(`${cluster.name} ${ref(svc)}: no ready endpoints`);
    return { ok: false, failure: { kind: noEndpoints } };
  }
  const ep = eps[stableIndex(ctx, eps.length)]!;
  const pod = ep.pod ?? findPodByIp(cluster, ep.address);
  if (!pod) return connectTo(ctx, cluster, ep.address, ep.port, conn);
  return deliverToPod(ctx, cluster, pod, ep.port, conn);
}

async function deliverToPod(ctx: PathContext, cluster: ClusterView, pod: KubeObject, port: number, conn: Conn): Promise<HopResult> {
  const phase = (pod['status'] as Spec | undefined)?.['phase'];
  if (phase !== 'Running' && phase !== undefined) return { ok: false, failure: { kind: 'refused' } };
  ctx.trace.push(`${cluster.name} pod ${pod.metadata.namespace}/${pod.metadata.name}:${port}`);
  if (isGatewayPod(pod)) return gatewayInbound(ctx, cluster, pod, port, conn);
  if (sidecarRunning(ctx, cluster, pod) && ![15020, 15021, 15090].includes(port)) return sidecarInbound(ctx, cluster, pod, port, conn);
  return application(ctx, cluster, pod, port, conn);
}

/** A plain application socket: no TLS termination. */
function application(ctx: PathContext, _cluster: ClusterView, pod: KubeObject, port: number, conn: Conn): HopResult {
  const handler = applicationOn(pod, port);
  if (!handler) return { ok: false, failure: { kind: 'refused' } };
  if (conn.tls) {
    ctx.trace.push(`pod ${pod.metadata.name}:${port} does not speak TLS`);
    return { ok: false, failure: { kind: 'tls', side: 'client', code: 'WRONG_VERSION_NUMBER', message: 'the server answered a TLS handshake in plaintext' } };
  }
  if (conn.payload.kind === 'stream') return { ok: true, reply: { kind: 'closed' } };
  return { ok: true, reply: handler(conn.payload) };
}

// ---------------------------------------------------------------------------------------------------------------
// Sidecar inbound

async function sidecarInbound(ctx: PathContext, cluster: ClusterView, pod: KubeObject, port: number, conn: Conn): Promise<HopResult> {
  assertModelledCluster(cluster);
  const mode = peerAuthenticationMode(cluster, pod, port);
  const ns = pod.metadata.namespace ?? 'default';
  const inboundCluster = `inbound|${port}||`;
  let principal: string | undefined;
  let inner: Conn = conn;
  if (conn.tls && mode !== 'DISABLE' && (conn.tls.istio || mode === 'STRICT')) {
    const cert = workloadCertificate(cluster, ns, serviceAccountOf(pod));
    const hs = await handshake(conn.tls, { certChain: cert.certChain, key: cert.key, clientCa: cert.root, requireClientCert: true });
    if (!hs.ok) {
      ctx.trace.push(`${pod.metadata.name}: Istio mTLS handshake refused by the ${hs.side}: ${hs.code}`);
      log(ctx, cluster, pod, tcpLogLine('-', '-', inboundCluster, conn.tls.servername) + ` TLS error: ${hs.code}`);
      return { ok: false, failure: { kind: 'tls', side: hs.side, code: hs.code, message: hs.message } };
    }
    const uri = hs.clientCertificate?.uris.find((u) => u.startsWith('spiffe://'));
    const mesh = meshSettings(cluster);
    const td = uri ? uri.slice('spiffe://'.length).split('/')[0] : undefined;
    // Istio's inbound TLS context only accepts peers from the local trust domain and its aliases (a SAN prefix match
    // on spiffe://<td>/ for each), unless istiod runs with PILOT_SKIP_VALIDATE_TRUST_DOMAIN=true: then any peer
    // whose certificate chains to the root. `pilot/pkg/networking/plugin/authn/util.go` `trustDomainsForValidation`
    // and `pilot/pkg/security/model/authentication.go` `ApplyToCommonTLSContext` (1.9.0; the same at 1.30.3).
    if (!td || (td !== mesh.trustDomain && !mesh.trustDomainAliases.includes(td) && !skipsTrustDomainValidation(cluster))) {
      ctx.trace.push(`${pod.metadata.name}: peer trust domain ${td ?? '(none)'} is not ${mesh.trustDomain} or an alias`);
      return { ok: false, failure: { kind: 'tls', side: 'server', code: 'CERTIFICATE_VERIFY_FAILED', message: `peer trust domain ${td ?? '(none)'} not accepted` } };
    }
    principal = uri!.slice('spiffe://'.length);
    inner = conn.payload.kind === 'stream' ? conn.payload.conn : { payload: conn.payload };
  } else if (!conn.tls && mode === 'STRICT') {
    ctx.trace.push(`${pod.metadata.name}: plaintext refused by STRICT mTLS`);
    log(ctx, cluster, pod, tcpLogLine('NR', '-', inboundCluster) + ' filter_chain_not_found');
    return { ok: false, failure: { kind: 'reset' } };
  }
  const payload = inner.payload;
  // TLS that is not Istio's passes through the sidecar to the application as opaque bytes.
  const opaque = inner.tls !== undefined;
  const http = payload.kind === 'http' && !opaque ? payload.request : undefined;
  const decision = authorize(cluster, pod, {
    principal, port, sni: conn.tls?.servername,
    http: http && { host: http.authority, method: http.method, path: http.path, headers: http.headers },
  });
  if (!decision.allowed) {
    ctx.trace.push(`${pod.metadata.name}: denied by ${decision.policy}`);
    if (http) {
      log(ctx, cluster, pod, httpLogLine(http, 403, '-', '-', inboundCluster) + ' rbac_access_denied_matched_policy[none]');
      return { ok: true, reply: { kind: 'http', response: { status: 403, headers: { 'content-type': 'text/plain', server: 'istio-envoy' }, body: 'RBAC: access denied' } } };
    }
    log(ctx, cluster, pod, tcpLogLine('-', '-', inboundCluster) + ' rbac_access_denied_matched_policy[none]');
    return { ok: true, reply: { kind: 'closed' } };
  }
  const result = application(ctx, cluster, pod, port, inner);
  if (opaque) return result;
  if (!result.ok) {
    if (http) {
      log(ctx, cluster, pod, httpLogLine(http, 503, 'UF', `127.0.0.1:${port}`, inboundCluster));
      return { ok: true, reply: envoyReply(503, 'upstream connect error or disconnect/reset before headers. reset reason: connection failure, transport failure reason: delayed connect error: 111', 'UF') };
    }
    log(ctx, cluster, pod, tcpLogLine('UF', `127.0.0.1:${port}`, inboundCluster));
    return { ok: true, reply: { kind: 'closed' } };
  }
  if (http && result.reply.kind === 'http') log(ctx, cluster, pod, httpLogLine(http, result.reply.response.status, '-', `${podIp(pod)}:${port}`, inboundCluster));
  return result;
}

// ---------------------------------------------------------------------------------------------------------------
// Proxy outbound: cluster selection, endpoints, TLS origination

interface Proxy {
  cluster: ClusterView;
  pod: KubeObject;
  namespace: string;
  kind: 'sidecar' | 'gateway';
}

interface Destination {
  host: string;
  port?: number;
  subset?: string;
}

/** Why a proxy could not use an upstream cluster without connecting: NC (no cluster) or UH (no healthy upstream). */
type ClusterFailure = { kind: 'NC'; detail: string } | { kind: 'UH'; detail: string };

type UpstreamResult = { ok: true; reply: Reply; upstream: string } | { ok: false; failure: Failure; upstream: string } | { ok: false; cluster: ClusterFailure };

function tlsSettingsFor(dr: KubeObject | undefined, subset: string | undefined, port: number): Spec | undefined {
  if (!dr) return undefined;
  const spec = specOf(dr);
  const pick = (policy: Spec | undefined): Spec | undefined => {
    if (!policy) return undefined;
    for (const k of Object.keys(policy)) {
      if (!['tls', 'portLevelSettings', 'connectionPool', 'loadBalancer', 'outlierDetection'].includes(k)) unmodelled(`${ref(dr)}: trafficPolicy.${k}`);
    }
    const pl = (policy['portLevelSettings'] as Spec[] | undefined)?.find((p) => (p['port'] as Spec | undefined)?.['number'] === port);
    return (pl?.['tls'] as Spec | undefined) ?? (policy['tls'] as Spec | undefined);
  };
  const sub = subset ? (spec['subsets'] as Spec[] | undefined)?.find((s) => s['name'] === subset) : undefined;
  return pick(sub?.['trafficPolicy'] as Spec | undefined) ?? pick(spec['trafficPolicy'] as Spec | undefined);
}

/** Reads a `credentialName` Secret the way Istio's SDS does (tls.crt/tls.key/ca.crt, cert/key/cacert, `<name>-cacert`). */
function credential(cluster: ClusterView, namespace: string, name: string): { cert?: string; key?: string; ca?: string } | undefined {
  const secret = cluster.get('', 'Secret', namespace, name);
  const caSecret = cluster.get('', 'Secret', namespace, `${name}-cacert`);
  if (!secret && !caSecret) return undefined;
  const d = secret ? secretData(secret) : {};
  const c = caSecret ? secretData(caSecret) : {};
  return {
    cert: d['tls.crt'] ?? d['cert'],
    key: d['tls.key'] ?? d['key'],
    ca: d['ca.crt'] ?? d['cacert'] ?? c['ca.crt'] ?? c['cacert'],
  };
}

function clientTls(proxy: Proxy, dest: { host: string; port: number; subset?: string }, tls: Spec | undefined, autoMtls: boolean, svc: RegistryService): { tls?: Conn['tls'] } | { sds: string; reason?: string } {
  const mode = (tls?.['mode'] as string | undefined) ?? (autoMtls ? 'ISTIO_MUTUAL' : 'DISABLE');
  for (const k of Object.keys(tls ?? {})) {
    if (!['mode', 'sni', 'subjectAltNames', 'credentialName', 'insecureSkipVerify'].includes(k)) unmodelled(`DestinationRule for ${dest.host}: tls.${k} (file-mounted certificates are not modelled; use credentialName)`);
  }
  const sans = (tls?.['subjectAltNames'] as string[] | undefined) ?? (svc.kind === 'ServiceEntry' ? specOf(svc.object)['subjectAltNames'] as string[] | undefined : undefined);
  const sni = tls?.['sni'] as string | undefined;
  if (mode === 'DISABLE') return {};
  if (mode === 'ISTIO_MUTUAL') {
    const cert = workloadCertificate(proxy.cluster, proxy.namespace, serviceAccountOf(proxy.pod));
    return { tls: { istio: true, servername: sni ?? `outbound_.${dest.port}_.${dest.subset ?? ''}_.${dest.host}`, certChain: cert.certChain, key: cert.key, ca: cert.root, verifySans: sans, sigalgs: ENVOY_CLIENT_SIGALGS } };
  }
  if (mode === 'SIMPLE' || mode === 'MUTUAL') {
    const name = tls?.['credentialName'] as string | undefined;
    if (name && proxy.kind !== 'gateway') unmodelled(`DestinationRule credentialName on a sidecar (${dest.host})`);
    const cred = name ? credential(proxy.cluster, proxy.namespace, name) : undefined;
    if (mode === 'MUTUAL' && (!cred?.cert || !cred.key)) return { sds: name ?? '(no credentialName)' };
    if (name && !cred) return { sds: name };
    // Envoy refuses a client certificate whose key its release does not support (envoyKeyRefusal) and keeps no client
    // context.
    const refusal = mode === 'MUTUAL' ? envoyKeyRefusal(cred!.cert!, envoyOf(proxy.pod)) : undefined;
    if (refusal) return { sds: name ?? '(no credentialName)', reason: refusal };
    const insecure = tls?.['insecureSkipVerify'] === true;
    return { tls: { servername: sni, certChain: mode === 'MUTUAL' ? cred!.cert : undefined, key: mode === 'MUTUAL' ? cred!.key : undefined, ca: insecure ? undefined : cred?.ca, verifySans: sans, sigalgs: ENVOY_CLIENT_SIGALGS } };
  }
  return unmodelled(`DestinationRule tls mode ${mode}`);
}

/**
 * A proxy sends `payload` to the upstream cluster for `dest`: registry lookup, DestinationRule (subset, TLS),
 * endpoints, one endpoint picked, TLS originated. `raw` forwards the downstream connection unchanged (TLS
 * passthrough). `originalDst` is the address a sidecar captured (for resolution NONE).
 */
async function toUpstream(ctx: PathContext, proxy: Proxy, dest: Destination, defaultPort: number, payload: Conn['payload'], raw?: Conn, originalDst?: string): Promise<UpstreamResult> {
  const svc = serviceByHost(proxy.cluster, proxy.namespace, dest.host);
  const port = dest.port ?? (svc && svc.ports.length === 1 ? svc.ports[0]!.number : defaultPort);
  const clusterName = `outbound|${port}|${dest.subset ?? ''}|${dest.host}`;
  if (!svc) return { ok: false, cluster: { kind: 'NC', detail: `${clusterName}: no service ${dest.host} visible from ${proxy.namespace}` } };
  // A sidecar has clusters only for what its Sidecar resource's egress listeners select.
  const scope = proxy.kind === 'sidecar' ? sidecarScopeFor(proxy.cluster, proxy.pod) : undefined;
  const meshVirtualServices = (): KubeObject[] => proxy.cluster.list('networking.istio.io', 'VirtualService').filter((vs) => visibleTo(vs, proxy.namespace)
    && ((specOf(vs)['gateways'] as string[] | undefined) ?? ['mesh']).includes('mesh'));
  if (scope && !serviceInScope(scope, svc.namespace, svc.host, svc.ports.map((p) => p.number))
    && !inferredFromVirtualServices(scope, meshVirtualServices(), svc.host, svc.ports.map((p) => p.number))) {
    return { ok: false, cluster: { kind: 'NC', detail: `${clusterName}: ${dest.host} is not in the egress hosts of ${ref(scope.sidecar)}` } };
  }
  const svcPort: ServicePort | undefined = svc.ports.find((p) => p.number === port);
  if (!svcPort) return { ok: false, cluster: { kind: 'NC', detail: `${clusterName}: ${dest.host} has no port ${port}` } };
  const dr = destinationRuleFor(proxy.cluster, proxy.namespace, dest.host, svc.namespace);
  let subsetLabels: Record<string, string> | undefined;
  if (dest.subset) {
    const subset = dr && (specOf(dr)['subsets'] as Spec[] | undefined)?.find((s) => s['name'] === dest.subset);
    if (!subset) return { ok: false, cluster: { kind: 'NC', detail: `${clusterName}: subset ${dest.subset} is not defined by a DestinationRule for ${dest.host}` } };
    subsetLabels = (subset['labels'] as Record<string, string> | undefined) ?? {};
  }
  const eps = endpointsOf(proxy.cluster, svc, svcPort);
  let candidates = eps === 'original-destination'
    ? (originalDst ? [{ address: originalDst, port, labels: {} as Record<string, string> }] : [])
    : eps.filter((e) => labelsMatch(subsetLabels, e.labels));
  if (candidates.length === 0) return { ok: false, cluster: { kind: 'UH', detail: `${clusterName}: no healthy endpoints${subsetLabels ? ` with labels ${JSON.stringify(subsetLabels)}` : ''}` } };
  const resolved: typeof candidates = [];
  for (const c of candidates) {
    if (/^\d+\.\d+\.\d+\.\d+$/.test(c.address)) { resolved.push(c); continue; }
    const ip = resolveName(ctx, proxy.cluster, { ...proxy.pod, spec: { ...specOf(proxy.pod), containers: [] } } as KubeObject, c.address);
    if (ip) resolved.push({ ...c, address: ip });
  }
  candidates = resolved;
  if (candidates.length === 0) return { ok: false, cluster: { kind: 'UH', detail: `${clusterName}: endpoint names do not resolve` } };
  const ep = candidates[stableIndex(ctx, candidates.length)]!;
  const upstream = `${ep.address}:${ep.port}`;
  ctx.trace.push(`${proxy.kind} ${proxy.pod.metadata.namespace}/${proxy.pod.metadata.name} -> ${clusterName} ${upstream}`);
  let conn: Conn;
  if (raw) {
    conn = raw;
  } else {
    const epPod = 'pod' in ep ? (ep as { pod?: KubeObject }).pod : undefined;
    const auto = epPod !== undefined && (hasSidecar(epPod) || epPod.metadata.labels?.['security.istio.io/tlsMode'] === 'istio');
    const tls = clientTls(proxy, { host: dest.host, port, subset: dest.subset }, tlsSettingsFor(dr, dest.subset, port), auto, svc);
    if ('sds' in tls) {
      if (tls.reason) {
        ctx.trace.push(`${proxy.kind} ${proxy.pod.metadata.name}: credentialName ${tls.sds} refused: ${tls.reason}`);
        log(ctx, proxy.cluster, proxy.pod, secretRejected(tls.sds, tls.reason));
      }
      return { ok: false, failure: { kind: 'sds', secret: tls.sds, reason: tls.reason }, upstream };
    }
    conn = { tls: tls.tls, payload };
  }
  const result = await connectTo(ctx, proxy.cluster, ep.address, ep.port, conn);
  return result.ok ? { ...result, upstream } : { ...result, upstream };
}

/** Envoy's description of a connection failure, as in its `upstream connect error…` bodies. */
export function envoyFailureReason(f: Failure): string {
  switch (f.kind) {
    case 'refused': return 'remote connection failure, transport failure reason: delayed connect error: 111';
    case 'timeout': return 'connection timeout';
    case 'resolve': return 'remote connection failure, transport failure reason: name resolution failed';
    case 'reset': return 'connection termination';
    case 'handshake-reset': return 'remote connection failure, transport failure reason: TLS_error:|33554536:system library:OPENSSL_internal:Connection reset by peer:TLS_error_end';
    case 'sds': return `remote connection failure, transport failure reason: TLS error: Secret is not supplied by SDS (${f.secret})`;
    case 'tls': {
      if (f.side === 'client') {
        const what = f.code === 'WRONG_VERSION_NUMBER' ? '268435703:SSL routines:OPENSSL_internal:WRONG_VERSION_NUMBER'
          : f.code === 'NO_COMMON_SIGNATURE_ALGORITHMS' ? '268435709:SSL routines:OPENSSL_internal:NO_COMMON_SIGNATURE_ALGORITHMS'
            : `268435581:SSL routines:OPENSSL_internal:CERTIFICATE_VERIFY_FAILED (${f.code})`;
        return `remote connection failure, transport failure reason: TLS_error:|${what}:TLS_error_end`;
      }
      // BoringSSL packs an error as (ERR_LIB_SSL = 16) << 24 | reason (include/openssl/err.h ERR_PACK), and a TLS alert
      // received as reason SSL_AD_REASON_OFFSET (1000) + the alert's number (include/openssl/ssl.h): handshake_failure
      // 40 → 268436496, certificate_expired 45 → 268436501, unknown_ca 48 → 268436504, certificate_required 116 →
      // 268436572 (RFC 8446 section 6 numbers the alerts).
      const alert = f.code === 'NO_COMMON_SIGNATURE_ALGORITHMS' ? '268436496:SSL routines:OPENSSL_internal:SSLV3_ALERT_HANDSHAKE_FAILURE'
        : /expired/i.test(f.code + f.message) ? '268436501:SSL routines:OPENSSL_internal:SSLV3_ALERT_CERTIFICATE_EXPIRED'
          : /did not return a certificate|CERTIFICATE_REQUIRED/i.test(f.code + f.message) ? '268436572:SSL routines:OPENSSL_internal:TLSV1_ALERT_CERTIFICATE_REQUIRED'
            : '268436504:SSL routines:OPENSSL_internal:TLSV1_ALERT_UNKNOWN_CA';
      return `remote connection failure, transport failure reason: TLS_error:|${alert}:TLS_error_end`;
    }
  }
}

/**
 * An HTTP route's upstream call as Envoy answers its downstream: the upstream's response, or a local 503.
 * Istio's default retry policy (2 retries on connect-failure, refused-stream, unavailable, cancelled and 503)
 * turns connect failures into `URX` and makes a retried 503 the final answer.
 */
function httpFromUpstream(result: UpstreamResult, retries: boolean): Reply & { flags: string } {
  if (!result.ok && 'cluster' in result) {
    return result.cluster.kind === 'UH' ? envoyReply(503, 'no healthy upstream', 'UH') : envoyReply(503, '', 'NC');
  }
  if (!result.ok) {
    const f = result.failure;
    if (f.kind === 'reset') return envoyReply(503, 'upstream connect error or disconnect/reset before headers. reset reason: connection termination', 'UC');
    const prefix = retries ? 'upstream connect error or disconnect/reset before headers. retried and the latest reset reason: ' : 'upstream connect error or disconnect/reset before headers. reset reason: ';
    return envoyReply(503, prefix + envoyFailureReason(f), retries ? 'URX,UF' : 'UF');
  }
  const reply = result.reply;
  if (reply.kind === 'http') return { ...reply, flags: retries && reply.response.status === 503 ? 'URX' : '' };
  return envoyReply(503, 'upstream connect error or disconnect/reset before headers. reset reason: connection termination', 'UC');
}

function tcpFlags(result: UpstreamResult): string {
  if (!result.ok && 'cluster' in result) return result.cluster.kind;
  return result.ok ? '' : 'UF';
}

// ---------------------------------------------------------------------------------------------------------------
// HTTP routing (VirtualService http routes)

function stringMatch(m: Spec, value: string | undefined): boolean {
  if (value === undefined) return false;
  if (typeof m['exact'] === 'string') return value === m['exact'];
  if (typeof m['prefix'] === 'string') return value.startsWith(m['prefix']);
  if (typeof m['regex'] === 'string') return new RegExp(`^(?:${m['regex']})$`).test(value);
  return unmodelled(`VirtualService string match ${JSON.stringify(m)}`);
}

const HTTP_MATCH_FIELDS = new Set(['uri', 'method', 'headers', 'authority', 'port', 'gateways', 'sourceLabels', 'sourceNamespace', 'name']);
const HTTP_ROUTE_FIELDS = new Set(['match', 'route', 'rewrite', 'timeout', 'retries', 'headers', 'name']);

interface RouteSource { gateway: string; pod: KubeObject; port: number }

function httpMatch(m: Spec, req: HttpRequest, src: RouteSource, vs: KubeObject): boolean {
  for (const k of Object.keys(m)) if (!HTTP_MATCH_FIELDS.has(k)) unmodelled(`${ref(vs)}: http[].match[].${k}`);
  if (m['uri'] && !stringMatch(m['uri'] as Spec, req.path.split('?')[0])) return false;
  if (m['method'] && !stringMatch(m['method'] as Spec, req.method)) return false;
  if (m['authority'] && !stringMatch(m['authority'] as Spec, req.authority)) return false;
  if (m['port'] !== undefined && m['port'] !== src.port) return false;
  if (m['headers']) {
    for (const [name, sm] of Object.entries(m['headers'] as Record<string, Spec>)) {
      if (!stringMatch(sm, req.headers[name.toLowerCase()])) return false;
    }
  }
  const vsNs = vs.metadata.namespace ?? 'default';
  if (m['gateways'] && !(m['gateways'] as string[]).map((g) => normaliseGatewayRef(g, vsNs)).includes(src.gateway)) return false;
  if (m['sourceLabels'] && (src.gateway !== 'mesh' || !labelsMatch(m['sourceLabels'] as Record<string, string>, src.pod.metadata.labels))) return false;
  if (m['sourceNamespace'] && m['sourceNamespace'] !== src.pod.metadata.namespace) return false;
  return true;
}

function pickWeighted(ctx: PathContext, routes: Spec[]): Spec {
  const weights = routes.map((r) => (r['weight'] as number | undefined) ?? (routes.length === 1 ? 100 : 0));
  const total = weights.reduce((a, b) => a + b, 0);
  if (total <= 0) return routes[0]!;
  let x = (ctx.random ?? Math.random)() * total;
  for (let i = 0; i < routes.length; i++) {
    x -= weights[i]!;
    if (x < 0 && weights[i]! > 0) return routes[i]!;
  }
  return routes[routes.length - 1]!;
}

function destinationOf(route: Spec, vs: KubeObject): Destination {
  const d = (route['destination'] as Spec | undefined) ?? {};
  return {
    host: expandHost(d['host'] as string, vs.metadata.namespace ?? 'default'),
    port: (d['port'] as Spec | undefined)?.['number'] as number | undefined,
    subset: d['subset'] as string | undefined,
  };
}

/** Routes an HTTP request with one VirtualService: the answer, or undefined when no route matches (404 NR). */
async function routeHttp(ctx: PathContext, proxy: Proxy, vs: KubeObject, req: HttpRequest, src: RouteSource): Promise<(Reply & { flags: string; upstreamCluster: string; upstream: string }) | undefined> {
  const routes = (specOf(vs)['http'] as Spec[] | undefined) ?? [];
  for (const k of Object.keys(specOf(vs))) if (!['hosts', 'gateways', 'http', 'tcp', 'tls', 'exportTo'].includes(k)) unmodelled(`${ref(vs)}: spec.${k}`);
  for (const route of routes) {
    for (const k of Object.keys(route)) if (!HTTP_ROUTE_FIELDS.has(k)) unmodelled(`${ref(vs)}: http[].${k}`);
    const matches = route['match'] as Spec[] | undefined;
    if (matches && !matches.some((m) => httpMatch(m, req, src, vs))) continue;
    const targets = route['route'] as Spec[] | undefined;
    if (!targets || targets.length === 0) unmodelled(`${ref(vs)}: http route without route destinations`);
    const target = pickWeighted(ctx, targets);
    for (const k of Object.keys(target)) if (!['destination', 'weight', 'headers'].includes(k)) unmodelled(`${ref(vs)}: http[].route[].${k}`);
    const dest = destinationOf(target, vs);
    let forwarded: HttpRequest = { ...req, headers: { ...req.headers } };
    const rewrite = route['rewrite'] as Spec | undefined;
    if (rewrite) {
      for (const k of Object.keys(rewrite)) if (!['uri', 'authority'].includes(k)) unmodelled(`${ref(vs)}: http[].rewrite.${k}`);
      if (typeof rewrite['authority'] === 'string') forwarded.authority = rewrite['authority'];
      if (typeof rewrite['uri'] === 'string') {
        const prefix = (matches?.find((m) => m['uri'] && (m['uri'] as Spec)['prefix'])?.['uri'] as Spec | undefined)?.['prefix'] as string | undefined;
        forwarded = { ...forwarded, path: prefix ? rewrite['uri'] + forwarded.path.slice(prefix.length) : rewrite['uri'] };
      }
    }
    // Route-level, then destination-level header operations; Istio turns a Host/:authority `set` into an
    // authority rewrite.
    for (const [where, headers] of [['http[].headers', route['headers']], ['http[].route[].headers', target['headers']]] as const) {
      if (!headers) continue;
      for (const k of Object.keys(headers as Spec)) if (k !== 'request') unmodelled(`${ref(vs)}: ${where}.${k}`);
      const request = ((headers as Spec)['request'] ?? {}) as Spec;
      for (const k of Object.keys(request)) if (!['set', 'add', 'remove'].includes(k)) unmodelled(`${ref(vs)}: ${where}.request.${k}`);
      for (const [n, v] of Object.entries({ ...(request['add'] ?? {}) as Record<string, string>, ...(request['set'] ?? {}) as Record<string, string> })) {
        const name = n.toLowerCase();
        if (name === 'host' || name === ':authority') forwarded.authority = v; else forwarded.headers[name] = v;
      }
      for (const n of (request['remove'] ?? []) as string[]) delete forwarded.headers[n.toLowerCase()];
    }
    forwarded.headers['host'] = forwarded.authority;
    const retries = (route['retries'] as Spec | undefined)?.['attempts'] !== 0;
    const result = await toUpstream(ctx, proxy, dest, src.port, { kind: 'http', request: forwarded });
    const reply = httpFromUpstream(result, retries);
    const upstreamCluster = `outbound|${dest.port ?? src.port}|${dest.subset ?? ''}|${dest.host}`;
    return { ...reply, upstreamCluster, upstream: 'upstream' in result ? result.upstream : '-' };
  }
  return undefined;
}

// ---------------------------------------------------------------------------------------------------------------
// Sidecar outbound

/** Fully qualified names an HTTP authority may stand for, from a pod in `ns` (Envoy's virtual host domains). */
function authorityHosts(cluster: ClusterView, ns: string, authority: string): string[] {
  const host = authority.toLowerCase().replace(/:\d+$/, '');
  const out = new Set<string>([host]);
  const parts = host.split('.');
  if (parts.length === 1) out.add(`${host}.${ns}.svc.${CLUSTER_DOMAIN}`);
  if (parts.length === 2) out.add(`${host}.svc.${CLUSTER_DOMAIN}`);
  if (parts.length === 3 && parts[2] === 'svc') out.add(`${host}.${CLUSTER_DOMAIN}`);
  const byIp = cluster.list('', 'Service').find((s) => specOf(s)['clusterIP'] === host);
  if (byIp) out.add(`${byIp.metadata.name}.${byIp.metadata.namespace}.svc.${CLUSTER_DOMAIN}`);
  return [...out];
}

/**
 * The consumer pod's sidecar handles a connection its application opened to dst (captured by iptables):
 * HTTP by Host header and port, TCP (and TLS from the application) by destination address and port.
 */
export async function sidecarOutbound(ctx: PathContext, cluster: ClusterView, pod: KubeObject, dstIp: string, dstPort: number, conn: Conn): Promise<HopResult> {
  assertModelledCluster(cluster);
  const ns = pod.metadata.namespace ?? 'default';
  const proxy: Proxy = { cluster, pod, namespace: ns, kind: 'sidecar' };
  // The outbound listener of this port knows only what the Sidecar resource's egress listener for it selects.
  const scope = sidecarScopeFor(cluster, pod);
  const reg = registry(cluster, ns).filter((s) => !scope || serviceInScope(scope, s.namespace, s.host, s.ports.map((p) => p.number), dstPort));
  const scopedVirtualService = (hosts: string[]): ReturnType<typeof virtualServiceFor> => {
    const found = virtualServiceFor(cluster, ns, 'mesh', hosts);
    return found && scope && !virtualServiceInScope(scope, found.vs, dstPort) ? undefined : found;
  };
  if (scope) ctx.trace.push(`${ref(scope.sidecar)} scopes the sidecar of ${ns}/${pod.metadata.name}`);
  ctx.trace.push(`${cluster.name} sidecar ${ns}/${pod.metadata.name} outbound ${dstIp}:${dstPort}`);
  const byVip = reg.find((s) => s.addresses.includes(dstIp) && s.ports.some((p) => p.number === dstPort));
  const vipPort = byVip?.ports.find((p) => p.number === dstPort);
  const payload = conn.payload;
  const httpListener = !conn.tls && payload.kind === 'http' && (vipPort ? vipPort.protocol === 'http' || vipPort.protocol === 'auto'
    : reg.some((s) => s.ports.some((p) => p.number === dstPort && (p.protocol === 'http' || p.protocol === 'auto'))));
  if (httpListener && payload.kind === 'http') {
    const req = payload.request;
    const hosts = authorityHosts(cluster, ns, req.authority);
    const src: RouteSource = { gateway: 'mesh', pod, port: dstPort };
    const match = scopedVirtualService(hosts);
    if (match) {
      ctx.trace.push(`${ref(match.vs)} for ${match.host}`);
      const reply = await routeHttp(ctx, proxy, match.vs, req, src);
      if (!reply) {
        log(ctx, cluster, pod, httpLogLine(req, 404, 'NR', '-', '-') + ' route_not_found');
        return { ok: true, reply: envoyReply(404, '', 'NR') };
      }
      log(ctx, cluster, pod, httpLogLine(req, reply.kind === 'http' ? reply.response.status : 0, reply.flags, reply.upstream, reply.upstreamCluster));
      return { ok: true, reply };
    }
    const svc = reg.filter((s) => s.ports.some((p) => p.number === dstPort)).find((s) => hosts.includes(s.host));
    if (svc) {
      const result = await toUpstream(ctx, proxy, { host: svc.host, port: dstPort }, dstPort, payload, undefined, dstIp);
      const reply = httpFromUpstream(result, true);
      log(ctx, cluster, pod, httpLogLine(req, reply.kind === 'http' ? reply.response.status : 0, reply.flags, 'upstream' in result ? result.upstream : '-', `outbound|${dstPort}||${svc.host}`));
      return { ok: true, reply };
    }
  } else {
    // TCP: the listener for the destination address (a VIP, or a ServiceEntry without addresses on this port).
    const svc = byVip ?? (reg.find((s) => s.kind === 'ServiceEntry' && s.addresses.length === 0 && !s.host.includes('*') && s.ports.some((p) => p.number === dstPort)))
      ?? reg.find((s) => s.kind === 'ServiceEntry' && autoAllocated(s.host) === dstIp);
    if (svc) {
      let dest: Destination = { host: svc.host, port: dstPort };
      const match = scopedVirtualService([svc.host]);
      if (match) {
        const tcp = (specOf(match.vs)['tcp'] as Spec[] | undefined) ?? [];
        const route = tcp.find((r) => ((r['match'] as Spec[] | undefined) ?? [{}]).some((m) => {
          for (const k of Object.keys(m)) if (!['port', 'sourceLabels', 'gateways'].includes(k)) unmodelled(`${ref(match.vs)}: tcp[].match[].${k}`);
          return (m['port'] === undefined || m['port'] === dstPort) && labelsMatch(m['sourceLabels'] as Record<string, string> | undefined, pod.metadata.labels);
        }));
        if (route) dest = destinationOf(pickWeighted(ctx, route['route'] as Spec[]), match.vs);
        else if ((specOf(match.vs)['tls'] as unknown[] | undefined)?.length) unmodelled(`${ref(match.vs)}: tls routes for the mesh gateway`);
      }
      const result = await toUpstream(ctx, proxy, dest, dstPort, conn.tls ? { kind: 'stream', conn } : payload, undefined, dstIp);
      log(ctx, cluster, pod, tcpLogLine(tcpFlags(result), 'upstream' in result ? result.upstream : '-', `outbound|${dest.port ?? dstPort}|${dest.subset ?? ''}|${dest.host}`));
      if (result.ok) return result;
      // Envoy accepted the connection locally; with no usable upstream it closes it.
      return { ok: true, reply: { kind: 'closed' } };
    }
  }
  if (meshSettings(cluster).outboundPolicy === 'REGISTRY_ONLY') {
    log(ctx, cluster, pod, tcpLogLine('-', '-', 'BlackHoleCluster'));
    return payload.kind === 'http' && !conn.tls ? { ok: true, reply: envoyReply(502, '', '') } : { ok: true, reply: { kind: 'closed' } };
  }
  ctx.trace.push(`PassthroughCluster ${dstIp}:${dstPort}`);
  const passthrough = await connectTo(ctx, cluster, dstIp, dstPort, conn);
  log(ctx, cluster, pod, tcpLogLine(passthrough.ok ? '-' : 'UF', `${dstIp}:${dstPort}`, 'PassthroughCluster'));
  if (passthrough.ok) return passthrough;
  // The application's own TLS is relayed end to end: the peer's handshake verdict reaches it unchanged.
  if (conn.tls && ['tls', 'handshake-reset', 'reset'].includes(passthrough.failure.kind)) return passthrough;
  // The application's connection was accepted by the sidecar itself: an upstream failure never reaches it as
  // "refused" or "timed out", only as Envoy's answer (HTTP) or a closed connection (TCP).
  if (payload.kind === 'http' && !conn.tls) return { ok: true, reply: httpFromUpstream({ ...passthrough, upstream: `${dstIp}:${dstPort}` }, false) };
  return { ok: true, reply: { kind: 'closed' } };
}

// ---------------------------------------------------------------------------------------------------------------
// Gateways

interface GatewayServer { gateway: KubeObject; gwRef: string; server: Spec; hosts: Array<{ ns: string; host: string }> }

function serverHosts(server: Spec, gwNs: string): Array<{ ns: string; host: string }> {
  return ((server['hosts'] as string[] | undefined) ?? []).map((h) => {
    const [ns, host] = h.includes('/') ? h.split('/') as [string, string] : ['*', h];
    return { ns: ns === '.' ? gwNs : ns, host: host.toLowerCase() };
  });
}

/** VirtualServices bound to a gateway server: gateway referenced, and a VS host allowed by the server's hosts. */
function boundVirtualServices(cluster: ClusterView, gs: GatewayServer, proxyNs: string): Array<{ vs: KubeObject; hosts: string[] }> {
  const out: Array<{ vs: KubeObject; hosts: string[] }> = [];
  for (const vs of cluster.list('networking.istio.io', 'VirtualService').sort((a, b) => (a.metadata.creationTimestamp ?? '').localeCompare(b.metadata.creationTimestamp ?? ''))) {
    if (!visibleTo(vs, proxyNs)) continue;
    const vsNs = vs.metadata.namespace ?? 'default';
    const gws = ((specOf(vs)['gateways'] as string[] | undefined) ?? []).map((g) => normaliseGatewayRef(g, vsNs));
    if (!gws.includes(gs.gwRef)) continue;
    const hosts = ((specOf(vs)['hosts'] as string[] | undefined) ?? []).map((h) => expandHost(h, vsNs))
      .filter((h) => gs.hosts.some((sh) => (sh.ns === '*' || sh.ns === vsNs) && (hostMatches(sh.host, h) || hostMatches(h, sh.host))));
    if (hosts.length > 0) out.push({ vs, hosts });
  }
  return out;
}

/**
 * Whether istiod builds an AUTO_PASSTHROUGH server's filter chain with the server's hosts as Envoy `server_names`
 * (then SNI `outbound_.5432_._.postgres.db.svc.cluster.local` matches `*.local` or `*.postgres.db.svc.cluster.local`
 * by Envoy's wildcard suffix rule, never the literal `postgres.db.svc.cluster.local`): Istio before the fix of
 * ISTIO-SECURITY-2021-006 (1.9.0–1.9.4, 1.8.0–1.8.5), `pilot/pkg/networking/core/v1alpha3/gateway.go`
 * `buildGatewayNetworkFiltersFromTLSRoutes` at 1.9.0 (`sniHosts: node.MergedGateway.SNIHostsByServer[server]`,
 * from `pilot/pkg/model/gateway.go` `GetSNIHostsForServer`, with the `sni_cluster` filter stack). From 1.9.5 and
 * 1.10.0 the same function calls `builtAutoPassthroughFilterChains` (one chain per Service port and subset whose
 * host is a subset of a server host), unless istiod sets PILOT_ENABLE_LEGACY_AUTO_PASSTHROUGH.
 */
function autoPassthroughUsesServerHosts(cluster: ClusterView): boolean {
  const istiod = istiodSettings(cluster);
  if (envBool(istiod.env['PILOT_ENABLE_LEGACY_AUTO_PASSTHROUGH'])) return true;
  const v = istiod.version;
  if (!v || v[0] !== 1) return false;
  return v[1] < 8 || (v[1] === 8 && v[2] < 6) || (v[1] === 9 && v[2] < 5);
}

/**
 * Istio 1.9.5+/1.10.0+ `builtAutoPassthroughFilterChains` (`gateway.go`): an exact `server_names` entry
 * `outbound_.<port>_.<subset>_.<host>` for every non-MESH_EXTERNAL service visible to the gateway whose host is a
 * subset of the server host `serverHost`, for each of its (non-UDP) ports and each subset of its DestinationRule.
 */
function autoPassthroughRank(cluster: ClusterView, gatewayNs: string, serverHost: string, sni: string | undefined): number {
  const m = sni ? /^outbound_\.(\d+)_\.([^_]*)_\.(.+)$/.exec(sni) : null;
  if (!m) return -1;
  const [, port, subset, host] = m as unknown as [string, string, string, string];
  if (serverHost !== '*' && !hostMatches(serverHost, host)) return -1;
  const svc = serviceByHost(cluster, gatewayNs, host);
  if (!svc || !svc.ports.some((p) => p.number === Number(port))) return -1;
  if (svc.kind === 'ServiceEntry' && ((specOf(svc.object)['location'] as string | undefined) ?? 'MESH_EXTERNAL') === 'MESH_EXTERNAL') return -1;
  if (subset) {
    const dr = destinationRuleFor(cluster, gatewayNs, host, svc.namespace);
    if (!((dr && (specOf(dr)['subsets'] as Spec[] | undefined)) ?? []).some((s) => s['name'] === subset)) return -1;
  }
  return 0;
}

/**
 * Envoy's filter chain match on `server_names`: an exact name first, then the longest `*.suffix` wildcard whose
 * suffix (with its dot) ends the SNI (Envoy's `FilterChainMatch` documentation: for `www.example.com`,
 * `www.example.com`, then `*.example.com`, then `*.com`), then a chain without server names (`*` here).
 */
function sniRank(host: string, sni: string | undefined): number {
  if (host === '*') return 2000;
  if (sni === undefined) return -1;
  if (host === sni) return 0;
  return hostMatches(host, sni) ? 1000 - host.length : -1;
}

async function gatewayInbound(ctx: PathContext, cluster: ClusterView, pod: KubeObject, port: number, conn: Conn): Promise<HopResult> {
  assertModelledCluster(cluster);
  const ns = pod.metadata.namespace ?? 'default';
  const proxy: Proxy = { cluster, pod, namespace: ns, kind: 'gateway' };
  if (port === 15021) return { ok: true, reply: { kind: 'http', response: { status: 200, headers: {}, body: '' } } };
  const servers: GatewayServer[] = [];
  for (const gw of gatewaysForPod(cluster, pod)) {
    const gwNs = gw.metadata.namespace ?? 'default';
    for (const server of (specOf(gw)['servers'] as Spec[] | undefined) ?? []) {
      const number = (server['port'] as Spec)['number'] as number;
      if (gatewayListenPort(cluster, pod, number) !== port) continue;
      servers.push({ gateway: gw, gwRef: `${gwNs}/${gw.metadata.name}`, server, hosts: serverHosts(server, gwNs) });
    }
  }
  if (servers.length === 0) {
    ctx.trace.push(`gateway ${ns}/${pod.metadata.name}: no Gateway server listens on ${port}`);
    return { ok: false, failure: { kind: 'refused' } };
  }
  // Envoy refuses a listener whose filter chains repeat a match; a proxy that never accepted one has nothing on the port.
  const duplicate = duplicatePassthroughChain(cluster, pod, servers);
  if (duplicate) {
    ctx.trace.push(`gateway ${ns}/${pod.metadata.name}: listener on ${port} rejected: multiple filter chains with the same matching rules (SNI ${duplicate.sni}, from ${duplicate.gateways.join(', ')})`);
    log(ctx, cluster, pod, `listener 0.0.0.0_${port} rejected: error adding listener: multiple filter chains with the same matching rules are defined (${duplicate.sni})`);
    return { ok: false, failure: { kind: 'refused' } };
  }
  const serverPort = ((servers[0]!.server['port'] as Spec)['number'] as number);
  const tlsServers = servers.filter((s) => s.server['tls']);
  const plainServers = servers.filter((s) => !s.server['tls']);
  if (!conn.tls) {
    const gs = plainServers[0];
    if (!gs) {
      ctx.trace.push(`gateway ${pod.metadata.name}: plaintext on a TLS-only port`);
      return { ok: false, failure: { kind: 'reset' } };
    }
    return gatewayServe(ctx, proxy, gs, serverPort, conn.payload, undefined, undefined);
  }
  const sni = conn.tls.servername;
  let chosen: GatewayServer | undefined;
  let bestRank = Infinity;
  const literalServerNames = autoPassthroughUsesServerHosts(cluster);
  for (const s of tlsServers) {
    for (const h of s.hosts) {
      const mode = (s.server['tls'] as Spec)['mode'] as string | undefined;
      const r = mode === 'AUTO_PASSTHROUGH' && !literalServerNames ? autoPassthroughRank(cluster, ns, h.host, sni) : sniRank(h.host, sni);
      if (r >= 0 && r < bestRank) { bestRank = r; chosen = s; }
    }
  }
  if (!chosen) {
    if (tlsServers.length === 0) return { ok: false, failure: { kind: 'tls', side: 'client', code: 'WRONG_VERSION_NUMBER', message: 'plaintext listener' } };
    ctx.trace.push(`gateway ${pod.metadata.name}: filter_chain_not_found for SNI ${sni ?? '(none)'}`);
    log(ctx, cluster, pod, tcpLogLine('NR', '-', '-', sni) + ' filter_chain_not_found');
    return { ok: false, failure: { kind: 'handshake-reset', reason: `no Gateway server on port ${serverPort} matches SNI ${sni ?? '(none)'}` } };
  }
  const tls = chosen.server['tls'] as Spec;
  const mode = (tls['mode'] as string | undefined) ?? 'SIMPLE';
  for (const k of Object.keys(tls)) {
    if (!['mode', 'credentialName', 'subjectAltNames', 'minProtocolVersion', 'maxProtocolVersion'].includes(k)) unmodelled(`${ref(chosen.gateway)}: servers[].tls.${k} (file-mounted certificates are not modelled; use credentialName)`);
  }
  const authz = (principal: string | undefined, http?: HttpRequest): boolean => {
    const decision = authorize(cluster, pod, { principal, port, sni, http: http && { host: http.authority, method: http.method, path: http.path, headers: http.headers } });
    if (!decision.allowed) ctx.trace.push(`gateway ${pod.metadata.name}: denied by ${decision.policy}`);
    return decision.allowed;
  };
  if (mode === 'PASSTHROUGH' || mode === 'AUTO_PASSTHROUGH') {
    if (!authz(undefined)) {
      log(ctx, cluster, pod, tcpLogLine('-', '-', '-', sni) + ' rbac_access_denied_matched_policy[none]');
      return { ok: true, reply: { kind: 'closed' } };
    }
    let dest: Destination | undefined;
    if (mode === 'AUTO_PASSTHROUGH') {
      const version = proxyVersion(containersOf(pod)[0]?.image ?? '');
      const env = containersOf(pod)[0]?.env ?? [];
      if (version && version[0] === 1 && version[1] < 12 && !env.some((e) => e.name === 'ISTIO_META_ROUTER_MODE' && e.value === 'sni-dnat')) {
        ctx.trace.push(`gateway ${pod.metadata.name}: Istio ${version.join('.')} builds no SNI clusters without ISTIO_META_ROUTER_MODE=sni-dnat`);
        log(ctx, cluster, pod, tcpLogLine('NR', '-', '-', sni));
        return { ok: true, reply: { kind: 'closed' } };
      }
      const m = sni ? /^outbound_\.(\d+)_\.([^_]*)_\.(.+)$/.exec(sni) : null;
      if (m) dest = { host: m[3]!, port: Number(m[1]), subset: m[2] || undefined };
    } else {
      for (const { vs } of boundVirtualServices(cluster, chosen, ns)) {
        const route = ((specOf(vs)['tls'] as Spec[] | undefined) ?? []).find((r) => ((r['match'] as Spec[] | undefined) ?? []).some((mm) => {
          for (const k of Object.keys(mm)) if (!['sniHosts', 'port', 'gateways'].includes(k)) unmodelled(`${ref(vs)}: tls[].match[].${k}`);
          return (mm['port'] === undefined || mm['port'] === serverPort) && ((mm['sniHosts'] as string[] | undefined) ?? []).some((h) => sni !== undefined && hostMatches(expandHost(h, vs.metadata.namespace ?? 'default'), sni));
        }));
        if (route) { dest = destinationOf(pickWeighted(ctx, route['route'] as Spec[]), vs); break; }
      }
    }
    if (!dest) {
      log(ctx, cluster, pod, tcpLogLine('NR', '-', '-', sni));
      return { ok: true, reply: { kind: 'closed' } };
    }
    const result = await toUpstream(ctx, proxy, dest, serverPort, conn.payload, conn);
    log(ctx, cluster, pod, tcpLogLine(tcpFlags(result), 'upstream' in result ? result.upstream : '-', `outbound_.${dest.port ?? serverPort}_.${dest.subset ?? ''}_.${dest.host}`, sni));
    if ('cluster' in result && !result.ok) return { ok: true, reply: { kind: 'closed' } };
    if (!result.ok) return { ok: false, failure: (result as { failure: Failure }).failure };
    return result;
  }
  let server: TlsServerSide;
  if (mode === 'ISTIO_MUTUAL') {
    const cert = workloadCertificate(cluster, ns, serviceAccountOf(pod));
    server = { certChain: cert.certChain, key: cert.key, clientCa: cert.root, requireClientCert: true };
  } else if (mode === 'SIMPLE' || mode === 'MUTUAL') {
    const name = tls['credentialName'] as string | undefined;
    if (!name) unmodelled(`${ref(chosen.gateway)}: a ${mode} server without credentialName`);
    const cred = credential(cluster, ns, name);
    if (!cred?.cert || !cred.key || (mode === 'MUTUAL' && !cred.ca)) {
      ctx.trace.push(`gateway ${pod.metadata.name}: credentialName ${name} not found or incomplete in ${ns}`);
      return { ok: false, failure: { kind: 'handshake-reset', reason: `credential ${ns}/${name} not found or incomplete` } };
    }
    // Envoy refuses a server certificate whose key its release does not support (envoyKeyRefusal): the filter chain
    // has no TLS context and closes the connection, as for a missing credential.
    const refusal = envoyKeyRefusal(cred.cert, envoyOf(pod));
    if (refusal) {
      ctx.trace.push(`gateway ${pod.metadata.name}: credentialName ${name} refused: ${refusal}`);
      log(ctx, cluster, pod, secretRejected(name, refusal));
      return { ok: false, failure: { kind: 'handshake-reset', reason: `credential ${ns}/${name}: ${refusal}` } };
    }
    server = { certChain: cred.cert, key: cred.key, clientCa: mode === 'MUTUAL' ? cred.ca : undefined, requireClientCert: mode === 'MUTUAL' };
  } else {
    return unmodelled(`${ref(chosen.gateway)}: tls mode ${mode}`);
  }
  const hs = await handshake(conn.tls, server);
  if (!hs.ok) {
    ctx.trace.push(`gateway ${pod.metadata.name}: TLS handshake refused by the ${hs.side}: ${hs.code}`);
    log(ctx, cluster, pod, tcpLogLine('-', '-', '-', sni) + ` TLS error: ${hs.code}`);
    return { ok: false, failure: { kind: 'tls', side: hs.side, code: hs.code, message: hs.message } };
  }
  const requiredSans = tls['subjectAltNames'] as string[] | undefined;
  const presented = [...(hs.clientCertificate?.uris ?? []), ...(hs.clientCertificate?.dnsNames ?? [])];
  if (requiredSans && !requiredSans.some((s) => presented.includes(s))) {
    return { ok: false, failure: { kind: 'tls', side: 'server', code: 'CERTIFICATE_VERIFY_FAILED', message: 'client certificate SAN not allowed' } };
  }
  const uri = hs.clientCertificate?.uris.find((u) => u.startsWith('spiffe://'));
  const principal = uri?.slice('spiffe://'.length);
  const inner = conn.payload.kind === 'stream' ? conn.payload.conn.payload : conn.payload;
  if (inner.kind === 'stream') return { ok: true, reply: { kind: 'closed' } };
  // HTTP RBAC on Istio 1.9/1.10 reads the principal from istio_authn metadata, which istiod only configures on a
  // gateway for ISTIO_MUTUAL servers (1.9.0/1.10.0 generator.go srcPrincipalGenerator.principal; gateway.go
  // IstioMutualGateway; authn/v1beta1/policy_applier.go setAuthnFilterForPeerAuthn). TCP rules read the certificate.
  const rbacPrincipal = inner.kind === 'http' && mode !== 'ISTIO_MUTUAL' && !httpRbacSeesCertificate(pod) ? undefined : principal;
  if (!authz(rbacPrincipal, inner.kind === 'http' ? inner.request : undefined)) {
    if (inner.kind === 'http') {
      log(ctx, cluster, pod, httpLogLine(inner.request, 403, '-', '-', '-') + ' rbac_access_denied_matched_policy[none]');
      return { ok: true, reply: { kind: 'http', response: { status: 403, headers: { 'content-type': 'text/plain', server: 'istio-envoy' }, body: 'RBAC: access denied' } } };
    }
    log(ctx, cluster, pod, tcpLogLine('-', '-', '-', sni) + ' rbac_access_denied_matched_policy[none]');
    return { ok: true, reply: { kind: 'closed' } };
  }
  return gatewayServe(ctx, proxy, chosen, serverPort, inner, principal, sni);
}

/**
 * Whether a gateway's HTTP authorization sees the principal of a non-Istio (MUTUAL) client certificate: from Istio
 * 1.11 (`srcPrincipalGenerator` matches the certificate, `principalAuthenticated`); on 1.9 and 1.10 it only sees
 * the `istio_authn` metadata of ISTIO_MUTUAL servers. A gateway of unknown version counts as a current one.
 */
function httpRbacSeesCertificate(pod: KubeObject): boolean {
  const version = proxyVersion(containersOf(pod)[0]?.image ?? '');
  return !version || version[0] > 1 || version[1] >= 11;
}

/** After any TLS termination: HTTP routes for HTTP/HTTPS servers, TCP routes for TCP/TLS servers. */
async function gatewayServe(ctx: PathContext, proxy: Proxy, gs: GatewayServer, serverPort: number, payload: Conn['payload'], principal: string | undefined, sni: string | undefined): Promise<HopResult> {
  const { cluster, pod } = proxy;
  const protocol = String(((gs.server['port'] as Spec)['protocol'] as string | undefined) ?? 'TCP').toUpperCase();
  const bound = boundVirtualServices(cluster, gs, proxy.namespace);
  if (['HTTP', 'HTTPS', 'HTTP2', 'GRPC'].includes(protocol)) {
    if (payload.kind !== 'http') {
      log(ctx, cluster, pod, tcpLogLine('-', '-', '-', sni) + ' not HTTP');
      return { ok: true, reply: { kind: 'closed' } };
    }
    if (!principal && gs.server['tls'] === undefined) {
      const decision = authorize(cluster, pod, { port: (gatewayListenPort(cluster, pod, serverPort)), http: { host: payload.request.authority, method: payload.request.method, path: payload.request.path, headers: payload.request.headers } });
      if (!decision.allowed) {
        log(ctx, cluster, pod, httpLogLine(payload.request, 403, '-', '-', '-') + ' rbac_access_denied_matched_policy[none]');
        return { ok: true, reply: { kind: 'http', response: { status: 403, headers: { 'content-type': 'text/plain', server: 'istio-envoy' }, body: 'RBAC: access denied' } } };
      }
    }
    const req = payload.request;
    const host = req.authority.toLowerCase().replace(/:\d+$/, '');
    let best: { vs: KubeObject; rank: number } | undefined;
    for (const { vs, hosts } of bound) {
      for (const h of hosts) {
        const r = h === host ? 0 : hostMatches(h, host) ? 1000 - h.length : -1;
        if (r >= 0 && (!best || r < best.rank)) best = { vs, rank: r };
      }
    }
    const reply = best ? await routeHttp(ctx, proxy, best.vs, req, { gateway: gs.gwRef, pod, port: serverPort }) : undefined;
    if (!reply) {
      ctx.trace.push(`gateway ${pod.metadata.name}: no route for ${req.authority}`);
      log(ctx, cluster, pod, httpLogLine(req, 404, 'NR', '-', '-') + ' route_not_found');
      return { ok: true, reply: envoyReply(404, '', 'NR') };
    }
    log(ctx, cluster, pod, httpLogLine(req, reply.kind === 'http' ? reply.response.status : 0, reply.flags, reply.upstream, reply.upstreamCluster));
    return { ok: true, reply };
  }
  if (!['TCP', 'TLS', 'MONGO'].includes(protocol)) unmodelled(`${ref(gs.gateway)}: server protocol ${protocol}`);
  for (const { vs } of bound) {
    const route = ((specOf(vs)['tcp'] as Spec[] | undefined) ?? []).find((r) => ((r['match'] as Spec[] | undefined) ?? [{}]).some((m) => {
      for (const k of Object.keys(m)) if (!['port', 'gateways'].includes(k)) unmodelled(`${ref(vs)}: tcp[].match[].${k}`);
      return (m['port'] === undefined || m['port'] === serverPort)
        && (!m['gateways'] || (m['gateways'] as string[]).map((g) => normaliseGatewayRef(g, vs.metadata.namespace ?? 'default')).includes(gs.gwRef));
    }));
    if (!route) continue;
    const dest = destinationOf(pickWeighted(ctx, route['route'] as Spec[]), vs);
    const result = await toUpstream(ctx, proxy, dest, serverPort, payload);
    log(ctx, cluster, pod, tcpLogLine(tcpFlags(result), 'upstream' in result ? result.upstream : '-', `outbound|${dest.port ?? serverPort}|${dest.subset ?? ''}|${dest.host}`, sni));
    return result.ok ? result : { ok: true, reply: { kind: 'closed' } };
  }
  log(ctx, cluster, pod, tcpLogLine('NR', '-', '-', sni));
  return { ok: true, reply: { kind: 'closed' } };
}

// ---------------------------------------------------------------------------------------------------------------
// The entry point for clients running in pods

/** The result of a client's connection attempt, before the client formats it. */
export type ClientOutcome = HopResult | { ok: false; failure: { kind: 'resolve'; host: string } };

/**
 * A client in `pod` connects to host:port and sends `conn`: DNS as the pod, pod-local ports (15020/15021 of the
 * sidecar), sidecar capture when the pod has a running sidecar, otherwise a direct connection.
 */
export async function clientConnect(ctx: PathContext, cluster: ClusterView, pod: KubeObject, host: string, port: number, conn: Conn, hooks: { stopSidecar?: () => void } = {}): Promise<ClientOutcome> {
  // One script can run many requests with one context: the loop guard bounds the hops of this request only.
  ctx.depth = 0;
  const ip = resolveName(ctx, cluster, pod, host);
  if (!ip) return { ok: false, failure: { kind: 'resolve', host } };
  ctx.trace.push(`${cluster.name} ${pod.metadata.namespace}/${pod.metadata.name} resolves ${host} to ${ip}`);
  if (ip.startsWith('127.')) {
    const proxyUp = sidecarRunning(ctx, cluster, pod);
    if ((port === 15020 || port === 15021) && proxyUp && !conn.tls && conn.payload.kind === 'http') {
      const req = conn.payload.request;
      if (port === 15020 && req.path === '/quitquitquit' && req.method === 'POST') {
        hooks.stopSidecar?.();
        return { ok: true, reply: { kind: 'http', response: { status: 200, headers: {}, body: '' } } };
      }
      if (port === 15021 && req.path === '/healthz/ready') return { ok: true, reply: { kind: 'http', response: { status: 200, headers: {}, body: '' } } };
      return unmodelled(`pilot-agent endpoint ${req.method} localhost:${port}${req.path}`);
    }
    if (port === 15000 && proxyUp) unmodelled('the Envoy admin interface (localhost:15000)');
    return application(ctx, cluster, pod, port, conn);
  }
  if (hasSidecar(pod)) {
    const excluded = pod.metadata.annotations?.['traffic.sidecar.istio.io/excludeOutboundPorts']?.split(',').map((s) => Number(s.trim()));
    if (pod.metadata.annotations?.['traffic.sidecar.istio.io/excludeOutboundIPRanges'] || pod.metadata.annotations?.['traffic.sidecar.istio.io/includeOutboundIPRanges']) {
      unmodelled('traffic.sidecar.istio.io outbound IP range annotations');
    }
    if (!excluded?.includes(port)) {
      if (!sidecarRunning(ctx, cluster, pod)) {
        // iptables still redirects to the proxy's port 15001, where nothing listens any more.
        ctx.trace.push(`${pod.metadata.name}: sidecar stopped, outbound capture refuses`);
        return { ok: false, failure: { kind: 'refused' } };
      }
      return sidecarOutbound(ctx, cluster, pod, ip, port, conn);
    }
  }
  return connectTo(ctx, cluster, ip, port, conn);
}

export type { HttpRequest, HttpResponse, Payload, Reply } from './apps.js';
