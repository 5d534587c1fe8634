/**
 * The single faults the model knows, on the two hand-written seed scenarios (`scenarios.ts`): each one corrupts one
 * object of a working federation the way a real mistake would. The model's own tests (test/mesh/boundary.test.ts,
 * test/mesh/shared-root.test.ts) assert the failure each gives under the model; the Istio oracle's differential
 * tests (test/istio) run the same list through Istio's translator and compare the verdicts. One list, so the two
 * can never drift apart.
 */
import type { KubeObject } from '../emulator/runtime.js';
import { cacertsData, createRootCA, issueCertificate } from './pki.js';
import type { IssueOptions } from './pki.js';
import { BOUNDARY_CLIENT_ID, BOUNDARY_HOST, boundaryWorld, clientCredential, getBoundaryPki, getSharedRootPki, secret, sharedRootWorld } from './scenarios.js';
import type { staticWorld } from './world.js';

export type FaultWorld = ReturnType<typeof staticWorld>;

/**
 * The hops of a federated call, named as the Istio oracle (test/istio) names them. A fault belongs to the hop the
 * request cannot pass: for a failed TLS handshake, the hop being connected to, whichever side rejects the other.
 */
export type Hop = 'client-sidecar' | 'egress-gateway' | 'provider-gateway' | 'workload';

/** A call made from a pod: the URL as the application would use it (`http://…` or `tcp://host:port`). */
export interface FaultCall {
  cluster: string;
  namespace: string;
  pod: string;
  url: string;
}

/** The working scenario a fault corrupts, with the call that proves it works. */
export interface FaultScenario {
  name: 'boundary' | 'shared-root';
  world: () => FaultWorld;
  probe: FaultCall;
}

export const BOUNDARY_SCENARIO: FaultScenario = {
  name: 'boundary',
  world: boundaryWorld,
  probe: { cluster: 'cluster1', namespace: 'default', pod: 'sleep-6f8b4', url: 'http://reviews.default:9080/reviews/0' },
};

export const SHARED_ROOT_SCENARIO: FaultScenario = {
  name: 'shared-root',
  world: sharedRootWorld,
  probe: { cluster: 'operations', namespace: 'vault', pod: 'vault-0', url: 'tcp://postgres.vault:5432' },
};

export interface ModelFault {
  /** Stable id, `<scenario>/<what>`. */
  id: string;
  scenario: FaultScenario;
  /** What the fault is, in a sentence. */
  description: string;
  /** The hop that refuses the call because of the fault. */
  hop: Hop;
  /** The call that shows the fault, when not the scenario's probe. */
  call?: FaultCall;
  /**
   * Only Istio releases before this one (`[major, minor]`) refuse: a newer Istio does what the fault removed by
   * itself. On a newer release the call reaches the backend.
   */
  before?: [number, number];
  /** Corrupts a fresh scenario world in place. */
  apply(world: FaultWorld): void;
}

// Stored objects are arbitrary JSON: faults reach into them freely.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Loose = KubeObject & Record<string, any>;

function edit(world: FaultWorld, cluster: string, group: string, kind: string, namespace: string, name: string, change: (o: Loose) => void): void {
  const obj = world.cluster(cluster)!.get(group, kind, namespace, name);
  if (!obj) throw new Error(`no ${kind} ${namespace}/${name} in ${cluster}`);
  change(obj as Loose);
  world.add(cluster, obj);
}

/** A certificate key: ECDSA on a curve, RSA of a size, or Ed25519. */
export type KeyType = NonNullable<IssueOptions['keyType']>;

/** The boundary scenario's provider gateway server certificate re-issued by the federation CA on a key of `keyType`. */
export function withServerKey(world: FaultWorld, keyType: KeyType): void {
  const { federation } = getBoundaryPki();
  const server = issueCertificate({ commonName: BOUNDARY_HOST, dnsNames: [BOUNDARY_HOST], keyType }, federation);
  world.add('cluster2', secret('istio-meshfed', 'federation-server', { 'tls.crt': server.certChain, 'tls.key': server.key, 'ca.crt': federation.cert }, 'kubernetes.io/tls'));
}

/** The boundary scenario's consumer gateway client certificate re-issued by the federation CA on a key of `keyType`. */
export function withClientKey(world: FaultWorld, keyType: KeyType): void {
  const { federation } = getBoundaryPki();
  world.add('cluster1', clientCredential(issueCertificate({ commonName: 'cluster1 egress', uris: [BOUNDARY_CLIENT_ID], keyType }, federation), federation.cert));
}

const B = BOUNDARY_SCENARIO;
const S = SHARED_ROOT_SCENARIO;
const EGRESS_ID = 'spiffe://cluster1/ns/istio-meshfed/sa/istio-federation-egressgateway';

/** Every fault the model knows, boundary first. */
export const MODEL_FAULTS: readonly ModelFault[] = [
  {
    id: 'boundary/provider-gateway-missing', scenario: B, hop: 'provider-gateway',
    description: 'the provider Gateway is missing: nothing listens on 15443 at the provider gateway',
    apply: (w) => w.remove('cluster2', 'networking.istio.io', 'Gateway', 'istio-meshfed', 'federation-ingress'),
  },
  {
    id: 'boundary/sni-not-in-gateway-hosts', scenario: B, hop: 'provider-gateway',
    description: 'the federation SNI is not in the provider Gateway hosts (filter_chain_not_found)',
    apply: (w) => edit(w, 'cluster2', 'networking.istio.io', 'Gateway', 'istio-meshfed', 'federation-ingress', (gw) => {
      gw.spec.servers[0].hosts = ['details.bookinfo.svc.cluster2.global'];
    }),
  },
  {
    id: 'boundary/provider-credential-missing', scenario: B, hop: 'provider-gateway',
    description: 'the provider Gateway credentialName names a missing Secret',
    apply: (w) => edit(w, 'cluster2', 'networking.istio.io', 'Gateway', 'istio-meshfed', 'federation-ingress', (gw) => {
      gw.spec.servers[0].tls.credentialName = 'federation-server-typo';
    }),
  },
  {
    id: 'boundary/consumer-credential-missing', scenario: B, hop: 'egress-gateway',
    description: 'the consumer DestinationRule credentialName names a missing Secret',
    apply: (w) => edit(w, 'cluster1', 'networking.istio.io', 'DestinationRule', 'istio-meshfed', 'cluster2-federation', (dr) => {
      dr.spec.trafficPolicy.tls.credentialName = 'cluster2-client-typo';
    }),
  },
  {
    id: 'boundary/client-cert-other-ca', scenario: B, hop: 'provider-gateway',
    description: 'the consumer gateway presents a client certificate from another CA',
    apply: (w) => {
      const rogue = createRootCA('not the federation CA');
      w.add('cluster1', clientCredential(issueCertificate({ commonName: 'cluster1 egress', uris: [EGRESS_ID] }, rogue), getBoundaryPki().federation.cert));
    },
  },
  {
    id: 'boundary/client-cert-expired', scenario: B, hop: 'provider-gateway',
    description: 'the consumer gateway presents an expired client certificate',
    apply: (w) => {
      const pki = getBoundaryPki();
      const expired = issueCertificate({
        commonName: 'cluster1 egress', uris: [EGRESS_ID],
        notBefore: new Date(Date.now() - 20 * 86400_000), notAfter: new Date(Date.now() - 86400_000),
      }, pki.federation);
      w.add('cluster1', clientCredential(expired, pki.federation.cert));
    },
  },
  {
    id: 'boundary/server-cert-untrusted', scenario: B, hop: 'provider-gateway',
    description: 'the consumer gateway does not trust the provider gateway certificate (ca.crt of another CA)',
    apply: (w) => w.add('cluster1', clientCredential(getBoundaryPki().client, createRootCA('some other CA').cert)),
  },
  {
    id: 'boundary/consumer-not-admitted', scenario: B, hop: 'provider-gateway',
    description: 'the provider AuthorizationPolicy admits another consumer only',
    apply: (w) => edit(w, 'cluster2', 'security.istio.io', 'AuthorizationPolicy', 'istio-meshfed', 'federation-ingress', (ap) => {
      ap.spec.rules[0].from[0].source.principals = ['cluster3/ns/istio-meshfed/sa/istio-federation-egressgateway'];
    }),
  },
  {
    id: 'boundary/workload-allow-locks-out-local-callers', scenario: B, hop: 'workload',
    description: 'an ALLOW policy for the federation gateway on reviews denies the provider\'s own in-mesh callers',
    call: { cluster: 'cluster2', namespace: 'bookinfo', pod: 'sleep-7dc47', url: 'http://myreviews:9080/reviews/0' },
    apply: (w) => w.add('cluster2', {
      apiVersion: 'security.istio.io/v1beta1', kind: 'AuthorizationPolicy', metadata: { name: 'reviews-federation', namespace: 'bookinfo' },
      spec: { selector: { matchLabels: { app: 'reviews' } }, action: 'ALLOW', rules: [{ from: [{ source: { principals: ['cluster.local/ns/istio-meshfed/sa/istio-federation-ingressgateway'] } }] }] },
    }),
  },
  {
    id: 'boundary/provider-address-changed', scenario: B, hop: 'egress-gateway',
    description: 'the provider gateway LoadBalancer address changed since the import',
    apply: (w) => edit(w, 'cluster2', '', 'Service', 'istio-meshfed', 'istio-federation-ingressgateway', (svc) => {
      svc.status.loadBalancer.ingress = [{ ip: '198.51.100.77' }];
    }),
  },
  {
    id: 'boundary/no-ready-endpoints', scenario: B, hop: 'provider-gateway',
    description: 'the exported Service has no ready endpoints',
    apply: (w) => {
      for (const pod of ['reviews-v2-5cfcfb547f-2t6l4', 'reviews-v3-75b4759787-58wpr']) {
        edit(w, 'cluster2', '', 'Pod', 'bookinfo', pod, (p) => { p.status.conditions = [{ type: 'Ready', status: 'False' }]; });
      }
    },
  },
  {
    id: 'boundary/subset-matches-no-pod', scenario: B, hop: 'provider-gateway',
    description: 'the exported subset\'s labels match no pod',
    apply: (w) => edit(w, 'cluster2', 'networking.istio.io', 'DestinationRule', 'bookinfo', 'reviews', (dr) => { dr.spec.subsets[0].labels = { version: 'v9' }; }),
  },
  {
    id: 'boundary/subset-undefined', scenario: B, hop: 'provider-gateway',
    description: 'the provider route names a subset no DestinationRule defines',
    apply: (w) => edit(w, 'cluster2', 'networking.istio.io', 'VirtualService', 'istio-meshfed', 'reviews-bookinfo-v2', (vs) => { vs.spec.http[0].route[0].destination.subset = 'v4'; }),
  },
  {
    id: 'boundary/no-consumer-sidecar', scenario: B, hop: 'client-sidecar',
    description: 'the calling pod has no sidecar: the selector-less Service has nobody behind it',
    apply: (w) => edit(w, 'cluster1', '', 'Pod', 'default', 'sleep-6f8b4', (p) => {
      p.spec.containers = p.spec.containers.filter((c: { name: string }) => c.name !== 'istio-proxy');
    }),
  },
  {
    id: 'boundary/gateway-port-mismatch', scenario: B, hop: 'provider-gateway',
    description: 'the provider Gateway listens on 15444 while its LoadBalancer forwards 15443',
    apply: (w) => edit(w, 'cluster2', 'networking.istio.io', 'Gateway', 'istio-meshfed', 'federation-ingress', (gw) => { gw.spec.servers[0].port.number = 15444; }),
  },
  {
    id: 'boundary/authority-not-rewritten', scenario: B, hop: 'egress-gateway',
    description: 'the consumer route does not rewrite the authority to the federation host: the egress gateway has no route for it',
    apply: (w) => edit(w, 'cluster1', 'networking.istio.io', 'VirtualService', 'default', 'reviews', (vs) => { delete vs.spec.http[0].rewrite; }),
  },
  // Keys Envoy does not load (test/support/mesh/pki.ts envoyKeyRefusal): a refused server certificate leaves the
  // provider's filter chain without a TLS context, a refused client certificate the egress gateway without one.
  {
    id: 'boundary/server-key-p384', scenario: B, hop: 'provider-gateway', before: [1, 25],
    description: 'the provider gateway certificate has an ECDSA P-384 key (Envoy takes P-384 from 1.33, Istio 1.25)',
    apply: (w) => withServerKey(w, { kind: 'ec', curve: 'P-384' }),
  },
  {
    id: 'boundary/client-key-p384', scenario: B, hop: 'egress-gateway', before: [1, 25],
    description: 'the consumer gateway certificate has an ECDSA P-384 key (Envoy takes P-384 from 1.33, Istio 1.25)',
    apply: (w) => withClientKey(w, { kind: 'ec', curve: 'P-384' }),
  },
  {
    id: 'boundary/server-key-rsa1024', scenario: B, hop: 'provider-gateway',
    description: 'the provider gateway certificate has an RSA key of 1024 bits (Envoy takes 2048 or more)',
    apply: (w) => withServerKey(w, { kind: 'rsa', bits: 1024 }),
  },
  {
    id: 'boundary/client-key-rsa1024', scenario: B, hop: 'egress-gateway',
    description: 'the consumer gateway certificate has an RSA key of 1024 bits (Envoy takes 2048 or more)',
    apply: (w) => withClientKey(w, { kind: 'rsa', bits: 1024 }),
  },
  {
    id: 'shared-root/distinct-roots', scenario: S, hop: 'workload',
    description: 'the consumer mesh runs on another root CA: the calling sidecar does not trust the provider workload\'s certificate',
    apply: (w) => w.add('operations', secret('istio-system', 'cacerts', cacertsData(getSharedRootPki().other))),
  },
  {
    id: 'shared-root/trust-domain-not-aliased', scenario: S, hop: 'workload',
    description: 'distinct trust domains without trustDomainAliases: the provider sidecar refuses the peer',
    apply: (w) => edit(w, 'production', '', 'ConfigMap', 'istio-system', 'istio', (cm) => { cm.data.mesh = 'trustDomain: production.local\n'; }),
  },
  {
    id: 'shared-root/consumer-not-admitted', scenario: S, hop: 'workload',
    description: 'the workload AuthorizationPolicy admits another identity only',
    apply: (w) => edit(w, 'production', 'security.istio.io', 'AuthorizationPolicy', 'db', 'postgres', (ap) => {
      ap.spec.rules[0].from[0].source.principals = ['production.local/ns/db/sa/migrations'];
    }),
  },
  {
    id: 'shared-root/allow-locks-out-local-callers', scenario: S, hop: 'workload',
    description: 'the workload ALLOW policy denies the in-mesh callers it does not name',
    call: { cluster: 'production', namespace: 'analytics', pod: 'reporting-5f6d8', url: 'tcp://postgres.db:5432' },
    apply: () => undefined,
  },
  {
    id: 'shared-root/no-sni-dnat', scenario: S, hop: 'provider-gateway', before: [1, 12],
    description: 'an Istio 1.9 east-west gateway without ISTIO_META_ROUTER_MODE=sni-dnat builds no SNI clusters',
    apply: (w) => edit(w, 'production', '', 'Pod', 'istio-system', 'istio-eastwestgateway-6c9b8', (p) => { p.spec.containers[0].env = []; }),
  },
  {
    id: 'shared-root/sni-not-listed', scenario: S, hop: 'provider-gateway',
    description: 'the consumer sends an SNI for a host the AUTO_PASSTHROUGH gateway does not list',
    apply: (w) => edit(w, 'operations', 'networking.istio.io', 'DestinationRule', 'vault', 'postgres-production', (dr) => {
      dr.spec.trafficPolicy.tls.sni = 'outbound_.5432_._.postgres.prod.svc.cluster.local';
    }),
  },
  {
    id: 'shared-root/endpoint-port-mismatch', scenario: S, hop: 'client-sidecar',
    description: 'the consumer ServiceEntry endpoint says 15444 while the gateway LoadBalancer serves 15443',
    apply: (w) => edit(w, 'operations', 'networking.istio.io', 'ServiceEntry', 'vault', 'postgres-production', (se) => {
      se.spec.endpoints[0].ports['tcp-federation'] = 15444;
    }),
  },
  {
    id: 'shared-root/no-ready-endpoints', scenario: S, hop: 'provider-gateway',
    description: 'postgres has no ready endpoints',
    apply: (w) => edit(w, 'production', '', 'Pod', 'db', 'postgres-0', (p) => { p.status.conditions = [{ type: 'Ready', status: 'False' }]; }),
  },
  {
    id: 'shared-root/no-consumer-sidecar', scenario: S, hop: 'client-sidecar',
    description: 'the calling pod has no sidecar: the selector-less Service has nobody behind it',
    apply: (w) => edit(w, 'operations', '', 'Pod', 'vault', 'vault-0', (p) => {
      p.spec.containers = p.spec.containers.filter((c: { name: string }) => c.name !== 'istio-proxy');
    }),
  },
];

/** The fault with this id. */
export function modelFault(id: string): ModelFault {
  const fault = MODEL_FAULTS.find((f) => f.id === id);
  if (!fault) throw new Error(`no model fault ${id}; known: ${MODEL_FAULTS.map((f) => f.id).join(', ')}`);
  return fault;
}

/** A fresh world of the fault's scenario with the fault applied. */
export function faultyWorld(id: string): FaultWorld {
  const fault = modelFault(id);
  const world = fault.scenario.world();
  fault.apply(world);
  return world;
}
