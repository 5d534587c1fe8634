/**
 * Federation scenarios for the Istio oracle, each run for real: emulated clusters on a current Istio, meshfed's
 * own commands (the built CLI, as a user runs it), then every object of every cluster dumped as the API returns
 * it. The calls listed with each scenario are what a user would check afterwards, with the answer that is right.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import YAML from 'yaml';
import type { IstioVersion } from '../../support/crd-schema.js';
import { sleepClient, type EmulatedCluster, type KubeObject, type SeedName } from '../../support/emulator/index.js';
import { startFederationWorld, type FederationWorld } from '../../support/federation.js';
import { dumpWorld } from './dump.js';
import type { Call, Hop } from './verdict.js';

/** The Istio release of every oracle scenario: the oracle judges current Istio only. */
export const ORACLE_ISTIO: IstioVersion = '1.30.3';

/** A call a user would make, from the first running pod labelled `app` (its name is found after start). */
export interface ScenarioCall {
  /** Short title of what is checked. */
  title: string;
  from: { cluster: string; namespace: string; app: string };
  url: string;
  headers?: Record<string, string>;
  /** The right outcome: the backend is reached (in `cluster` when given), or the named hop refuses. */
  expect: { reached: true; cluster?: string } | { refusedAt: Hop };
  /** Also run the path's gateways as real Envoy processes on loopback and send the request through them. */
  live?: boolean;
  /**
   * A wrong answer meshfed gives today, with the issue item that fixes it: the test is marked failing until then.
   */
  knownFailure?: string;
}

export interface Scenario {
  name: string;
  description: string;
  seed: SeedName;
  clusters: string[];
  /** Prepares the clusters as the user's own setup (before meshfed runs). */
  prepare?(fed: FederationWorld): Promise<void> | void;
  /** meshfed's commands, as the user types them (`--kubeconfig` is added). */
  commands: string[][];
  /**
   * A command (by index in `commands`) meshfed must refuse, with what its error must say: the refusal is checked,
   * and nothing it refused is in the dump the calls are judged on.
   */
  refused?: { command: number; error: RegExp };
  calls: ScenarioCall[];
  /** The model does not implement something this scenario needs (it says so with exit 125): why. */
  modelAbstains?: string;
}

/** A scenario after it ran: the dump directory and each call with its pod resolved. */
export interface RanScenario {
  scenario: Scenario;
  dir: string;
  calls: Array<ScenarioCall & { call: Call }>;
  /** What each command printed, for failure messages. */
  log: string;
}

// ---------------------------------------------------------------------------------------------------------------
// Helpers for the users' own setups

type Loose = KubeObject & Record<string, unknown>;

/** Changes the mesh config (`istio-system/istio`, key `mesh`) of a cluster. */
export function editMesh(cluster: EmulatedCluster, change: (mesh: Record<string, unknown>) => void): void {
  const cm = cluster.get('v1', 'ConfigMap', 'istio-system', 'istio')!;
  const data = cm.data as Record<string, string>;
  const mesh = (YAML.parse(data.mesh ?? '') as Record<string, unknown> | null) ?? {};
  change(mesh);
  cluster.apply({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'istio', namespace: 'istio-system' }, data: { ...data, mesh: YAML.stringify(mesh) } });
}

const addAlias = (alias: string) => (mesh: Record<string, unknown>) => {
  mesh.trustDomainAliases = [...((mesh.trustDomainAliases as string[] | undefined) ?? []), alias];
};

function create(cluster: EmulatedCluster, objects: Loose[]): void {
  for (const o of objects) cluster.create(o);
}

/** Istio's east-west gateway as its multicluster samples install it (`istio=eastwestgateway`, TLS on 15443). */
function eastWestGateway(version: string): Loose[] {
  const labels = { istio: 'eastwestgateway', app: 'istio-eastwestgateway' };
  return [
    { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'istio-eastwestgateway', namespace: 'istio-system' } },
    {
      apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'istio-eastwestgateway', namespace: 'istio-system', labels },
      spec: {
        replicas: 1, selector: { matchLabels: labels },
        template: {
          metadata: { labels: { ...labels, 'sidecar.istio.io/inject': 'false' } },
          spec: { serviceAccountName: 'istio-eastwestgateway', containers: [{ name: 'istio-proxy', image: `docker.io/istio/proxyv2:${version}`, args: ['proxy', 'router'], ports: [{ containerPort: 15443, name: 'tls' }, { containerPort: 15021, name: 'status-port' }] }] },
        },
      },
    },
    {
      apiVersion: 'v1', kind: 'Service', metadata: { name: 'istio-eastwestgateway', namespace: 'istio-system', labels },
      spec: { type: 'LoadBalancer', selector: labels, ports: [{ name: 'status-port', port: 15021, targetPort: 15021 }, { name: 'tls', port: 15443, targetPort: 15443 }] },
    },
  ];
}

/** The `*.local` AUTO_PASSTHROUGH server of Istio's multicluster sample `expose-services.yaml`. */
const CROSS_NETWORK_GATEWAY: Loose = {
  apiVersion: 'networking.istio.io/v1beta1', kind: 'Gateway', metadata: { name: 'cross-network-gateway', namespace: 'istio-system' },
  spec: { selector: { istio: 'eastwestgateway' }, servers: [{ port: { number: 15443, name: 'tls', protocol: 'TLS' }, tls: { mode: 'AUTO_PASSTHROUGH' }, hosts: ['*.local'] }] },
};

/** The Service owner's DestinationRule for myreviews: subsets v2 and v3 (meshfed uses its subset beside gateways it does not own). */
const OWNER_SUBSETS: Loose = {
  apiVersion: 'networking.istio.io/v1beta1', kind: 'DestinationRule', metadata: { name: 'myreviews', namespace: 'bookinfo' },
  spec: { host: 'myreviews', subsets: [{ name: 'v2', labels: { version: 'v2' } }, { name: 'v3', labels: { version: 'v3' } }] },
};

/** A public route of the provider's own through istio-ingressgateway: `/reviews` to myreviews v3. */
function publicBookinfoRoute(): Loose[] {
  return [
    {
      apiVersion: 'networking.istio.io/v1beta1', kind: 'Gateway', metadata: { name: 'bookinfo-gateway', namespace: 'bookinfo' },
      spec: { selector: { istio: 'ingressgateway' }, servers: [{ port: { number: 80, name: 'http', protocol: 'HTTP' }, hosts: ['*'] }] },
    },
    {
      apiVersion: 'networking.istio.io/v1beta1', kind: 'VirtualService', metadata: { name: 'bookinfo', namespace: 'bookinfo' },
      spec: { hosts: ['*'], gateways: ['bookinfo-gateway'], http: [{ match: [{ uri: { prefix: '/reviews' } }], route: [{ destination: { host: 'myreviews', port: { number: 9080 }, subset: 'v3' } }] }] },
    },
    OWNER_SUBSETS,
  ];
}

/** A client of the provider's own: sleep in namespace `web` of cluster2. */
function providerClient(cluster: EmulatedCluster): void {
  cluster.create({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'web', labels: { 'istio-injection': 'enabled' } } });
  create(cluster, sleepClient('web') as Loose[]);
}

/** A curl client with its own service account (pods labelled `app=<name>`), injected, in `ns` (created if missing). */
function clientAs(cluster: EmulatedCluster, ns: string, name: string): void {
  if (!cluster.get('v1', 'Namespace', undefined, ns)) cluster.create({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns } });
  create(cluster, [
    { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name, namespace: ns } },
    {
      apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name, namespace: ns },
      spec: {
        replicas: 1, selector: { matchLabels: { app: name } },
        template: { metadata: { labels: { app: name, 'sidecar.istio.io/inject': 'true' } }, spec: { serviceAccountName: name, containers: [{ name: 'curl', image: 'curlimages/curl', command: ['/bin/sleep', 'infinity'] }] } },
      },
    },
  ]);
}

/** `tcp-echo` (istio/tcp-echo-server) on port 9000, with the Service port name given. */
function tcpEcho(cluster: EmulatedCluster, ns: string, portName: string): void {
  create(cluster, [
    { apiVersion: 'v1', kind: 'Service', metadata: { name: 'tcp-echo', namespace: ns }, spec: { selector: { app: 'tcp-echo' }, ports: [{ name: portName, port: 9000 }] } },
    {
      apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'tcp-echo', namespace: ns },
      spec: { replicas: 1, selector: { matchLabels: { app: 'tcp-echo' } }, template: { metadata: { labels: { app: 'tcp-echo' } }, spec: { containers: [{ name: 'tcp-echo', image: 'docker.io/istio/tcp-echo-server:1.3', args: ['9000', 'echo'] }] } } },
    },
  ]);
}

// ---------------------------------------------------------------------------------------------------------------
// The scenarios

const SLEEP1 = { cluster: 'cluster1', namespace: 'default', app: 'sleep' };
const VAULT = { cluster: 'operations', namespace: 'vault', app: 'vault' };
const BOOKINFO = ['cluster1', 'cluster2'];

const BLOG_EXPORT = ['export', '--context', 'cluster2', '-n', 'bookinfo', '--service', 'myreviews', '--port', 'http', '--subset', 'version=v2', '--name', 'reviews'];

/** Shared-root HTTP export of reviews v3 on an existing east-west gateway, imported with a header attach. */
const SHARED_ROOT_EXISTING = [
  ['export', '--context', 'cluster2', '-n', 'bookinfo', '--service', 'myreviews', '--port', '9080', '--subset', 'version=v3', '--name', 'reviews-v3', '--mode', 'shared-root', '--gateway-selector', 'istio=eastwestgateway'],
  ['import', '--context', 'cluster1', '-n', 'default', '--from', 'cluster2', '--export', 'bookinfo/reviews-v3', '--name', 'reviews-v3', '--attach', 'reviews', '--match-header', 'x-federate=yes', '--service-account', 'sleep'],
];

export const SCENARIOS: Scenario[] = [
  {
    name: 'seed-blog-boundary-http',
    description: 'the seed blog post: cluster2 exports myreviews v2 (boundary, HTTP), cluster1 imports it and attaches it to its reviews by weight (50%)',
    seed: 'bookinfo', clusters: BOOKINFO,
    commands: [BLOG_EXPORT, ['import', '--context', 'cluster1', '-n', 'default', '--from', 'cluster2', '--export', 'bookinfo/reviews', '--name', 'myreviews', '--attach', 'reviews', '--weight', '50']],
    calls: [
      { title: 'the imported name reaches reviews v2 in cluster2 (live Envoy gateways)', from: SLEEP1, url: 'http://myreviews.default:9080/reviews/0', expect: { reached: true, cluster: 'cluster2' }, live: true },
      { title: 'the attached Service (by weight) still answers', from: SLEEP1, url: 'http://reviews.default:9080/reviews/0', expect: { reached: true } },
    ],
  },
  {
    name: 'seed-blog-boundary-http-revoked',
    description: 'the seed blog federation, then cluster2 revokes cluster1',
    seed: 'bookinfo', clusters: BOOKINFO,
    commands: [
      BLOG_EXPORT,
      ['import', '--context', 'cluster1', '-n', 'default', '--from', 'cluster2', '--export', 'bookinfo/reviews', '--name', 'myreviews'],
      ['revoke', '--context', 'cluster2', '-n', 'bookinfo', '--name', 'reviews', '--consumer', 'cluster1'],
    ],
    calls: [{ title: 'the revoked consumer is refused by the provider gateway (live Envoy gateways)', from: SLEEP1, url: 'http://myreviews.default:9080/reviews/0', expect: { refusedAt: 'provider-gateway' }, live: true }],
  },
  {
    name: 'boundary-tcp',
    description: 'the seed question\'s postgres exported in boundary mode (TCP 5432) from production to operations\' vault namespace',
    seed: 'federation', clusters: ['operations', 'staging', 'production'],
    commands: [
      ['export', '--context', 'production', '-n', 'db', '--service', 'postgres', '--port', '5432', '--mode', 'boundary'],
      ['import', '--context', 'operations', '-n', 'vault', '--from', 'production', '--export', 'db/postgres', '--name', 'postgres'],
    ],
    calls: [{ title: 'vault reaches postgres through both federation gateways (live Envoy gateways)', from: VAULT, url: 'tcp://postgres.vault:5432', expect: { reached: true, cluster: 'production' }, live: true }],
  },
  {
    name: 'boundary-tcp-revoked',
    description: 'the boundary TCP federation of postgres, then production revokes operations',
    seed: 'federation', clusters: ['operations', 'staging', 'production'],
    commands: [
      ['export', '--context', 'production', '-n', 'db', '--service', 'postgres', '--port', '5432', '--mode', 'boundary'],
      ['import', '--context', 'operations', '-n', 'vault', '--from', 'production', '--export', 'db/postgres', '--name', 'postgres'],
      ['revoke', '--context', 'production', '-n', 'db', '--name', 'postgres', '--consumer', 'operations'],
    ],
    calls: [{ title: 'the revoked consumer\'s connection is closed by the provider gateway (live Envoy gateways)', from: VAULT, url: 'tcp://postgres.vault:5432', expect: { refusedAt: 'provider-gateway' }, live: true }],
  },
  {
    name: 'seed-question-shared-root-tcp',
    description: 'the seed question: production shares a root with operations and exports postgres in shared-root mode to the vault service account',
    seed: 'federation', clusters: ['operations', 'staging', 'production'],
    prepare: (fed) => editMesh(fed.world.cluster('production'), addAlias('operations.local')),
    commands: [
      ['export', '--context', 'production', '-n', 'db', '--service', 'postgres', '--port', '5432', '--mode', 'shared-root'],
      ['import', '--context', 'operations', '-n', 'vault', '--from', 'production', '--export', 'db/postgres', '--name', 'postgres', '--service-account', 'vault'],
    ],
    calls: [{ title: 'vault reaches postgres through the passthrough gateway', from: VAULT, url: 'tcp://postgres.vault:5432', expect: { reached: true, cluster: 'production' } }],
  },
  {
    name: 'shared-root-existing-gateway',
    description: 'shared-root export of reviews v3 on an existing east-west gateway (the golden gRPC scenario\'s shape, over HTTP: the model has no gRPC application), with the owner\'s DestinationRule naming the subsets, attached by header',
    seed: 'bookinfo', clusters: BOOKINFO,
    prepare: (fed) => {
      create(fed.world.cluster('cluster2'), [...eastWestGateway(ORACLE_ISTIO), OWNER_SUBSETS]);
      editMesh(fed.world.cluster('cluster2'), addAlias('cluster1.local'));
    },
    commands: SHARED_ROOT_EXISTING,
    calls: [
      { title: 'the imported name reaches reviews v3 in cluster2', from: SLEEP1, url: 'http://reviews-v3.default:9080/reviews/0', expect: { reached: true, cluster: 'cluster2' } },
      { title: 'attach by header: x-federate=yes goes to cluster2', from: SLEEP1, url: 'http://reviews.default:9080/reviews/0', headers: { 'x-federate': 'yes' }, expect: { reached: true, cluster: 'cluster2' } },
      { title: 'attach by header: other requests stay local', from: SLEEP1, url: 'http://reviews.default:9080/reviews/0', expect: { reached: true, cluster: 'cluster1' } },
    ],
  },
  {
    name: 'shared-root-beside-local-passthrough',
    description: 'as shared-root-existing-gateway, but the east-west gateway already serves Istio\'s standard `*.local` AUTO_PASSTHROUGH server on 15443',
    seed: 'bookinfo', clusters: BOOKINFO,
    prepare: (fed) => {
      create(fed.world.cluster('cluster2'), [...eastWestGateway(ORACLE_ISTIO), CROSS_NETWORK_GATEWAY, OWNER_SUBSETS]);
      editMesh(fed.world.cluster('cluster2'), addAlias('cluster1.local'));
    },
    commands: SHARED_ROOT_EXISTING,
    calls: [{
      title: 'the imported name reaches reviews v3 in cluster2', from: SLEEP1, url: 'http://reviews-v3.default:9080/reviews/0', expect: { reached: true, cluster: 'cluster2' },
    }],
  },
  {
    name: 'existing-gateway-public-route',
    description: 'cluster2 serves its own public route (/reviews -> myreviews v3) on istio-ingressgateway; ratings is exported (boundary) on that same gateway',
    seed: 'bookinfo', clusters: BOOKINFO,
    prepare: (fed) => {
      create(fed.world.cluster('cluster2'), publicBookinfoRoute());
      providerClient(fed.world.cluster('cluster2'));
    },
    commands: [
      ['export', '--context', 'cluster2', '-n', 'bookinfo', '--service', 'ratings', '--port', '9080', '--name', 'ratings', '--gateway-selector', 'istio=ingressgateway'],
      ['import', '--context', 'cluster1', '-n', 'default', '--from', 'cluster2', '--export', 'bookinfo/ratings', '--name', 'remote-ratings'],
    ],
    calls: [
      { title: 'the federation reaches ratings', from: SLEEP1, url: 'http://remote-ratings.default:9080/ratings/0', expect: { reached: true, cluster: 'cluster2' } },
      {
        title: 'the provider\'s own public route through the shared gateway still answers', from: { cluster: 'cluster2', namespace: 'web', app: 'sleep' },
        url: 'http://istio-ingressgateway.istio-system:80/reviews/0', expect: { reached: true, cluster: 'cluster2' },
      },
    ],
  },
  {
    name: 'owner-destination-rule-on-existing-gateway',
    description: 'the owner of myreviews has a DestinationRule with subsets v2 and v3 and routes its public traffic to v3; meshfed exports v2 on the same ingress gateway',
    seed: 'bookinfo', clusters: BOOKINFO,
    prepare: (fed) => {
      create(fed.world.cluster('cluster2'), publicBookinfoRoute());
      providerClient(fed.world.cluster('cluster2'));
    },
    commands: [
      [...BLOG_EXPORT, '--gateway-selector', 'istio=ingressgateway'],
      ['import', '--context', 'cluster1', '-n', 'default', '--from', 'cluster2', '--export', 'bookinfo/reviews', '--name', 'myreviews'],
    ],
    calls: [
      { title: 'the federation reaches reviews v2', from: SLEEP1, url: 'http://myreviews.default:9080/reviews/0', expect: { reached: true, cluster: 'cluster2' } },
      {
        title: 'the owner\'s route to subset v3 through the gateway still answers', from: { cluster: 'cluster2', namespace: 'web', app: 'sleep' },
        url: 'http://istio-ingressgateway.istio-system:80/reviews/0', expect: { reached: true, cluster: 'cluster2' },
      },
    ],
  },
  {
    name: 'consumer-own-virtualservice',
    description: 'cluster1 already routes its reviews with its own VirtualService and DestinationRule (all to v1); the import attaches to reviews by header, folded into that VirtualService (--merge-into)',
    seed: 'bookinfo', clusters: BOOKINFO,
    prepare: (fed) => create(fed.world.cluster('cluster1'), [
      { apiVersion: 'networking.istio.io/v1beta1', kind: 'VirtualService', metadata: { name: 'reviews', namespace: 'default' }, spec: { hosts: ['reviews'], http: [{ route: [{ destination: { host: 'reviews', subset: 'v1' } }] }] } },
      { apiVersion: 'networking.istio.io/v1beta1', kind: 'DestinationRule', metadata: { name: 'reviews', namespace: 'default' }, spec: { host: 'reviews', subsets: [{ name: 'v1', labels: { version: 'v1' } }] } },
    ]),
    commands: [BLOG_EXPORT, ['import', '--context', 'cluster1', '-n', 'default', '--from', 'cluster2', '--export', 'bookinfo/reviews', '--name', 'myreviews', '--attach', 'reviews', '--match-header', 'x-federate=yes', '--merge-into', 'default/reviews']],
    calls: [
      { title: 'the user\'s own route still answers', from: SLEEP1, url: 'http://reviews.default:9080/reviews/0', expect: { reached: true, cluster: 'cluster1' } },
      {
        title: 'attach by header beside the user\'s VirtualService goes to cluster2', from: SLEEP1, url: 'http://reviews.default:9080/reviews/0', headers: { 'x-federate': 'yes' }, expect: { reached: true, cluster: 'cluster2' },
      },
    ],
  },
  {
    name: 'consumer-trust-domain-cluster-local',
    description: 'shared-root: the consumer mesh keeps Istio\'s default trust domain cluster.local (the provider aliases it); meshfed refuses the import, since no policy can tell its workloads from the provider\'s own',
    seed: 'bookinfo', clusters: BOOKINFO,
    prepare: (fed) => {
      editMesh(fed.world.cluster('cluster1'), (mesh) => { mesh.trustDomain = 'cluster.local'; });
      editMesh(fed.world.cluster('cluster2'), addAlias('cluster.local'));
      clientAs(fed.world.cluster('cluster2'), 'default', 'reporting');
    },
    commands: [
      ['export', '--context', 'cluster2', '-n', 'bookinfo', '--service', 'myreviews', '--port', '9080', '--subset', 'version=v3', '--name', 'reviews-v3', '--mode', 'shared-root'],
      ['import', '--context', 'cluster1', '-n', 'default', '--from', 'cluster2', '--export', 'bookinfo/reviews-v3', '--name', 'reviews-v3', '--service-account', 'sleep'],
    ],
    refused: { command: 1, error: /consumer cluster1 has trust domain cluster\.local, which Istio reads in a policy as this mesh's own trust domain/ },
    calls: [{
      // The export's workload guard under the provider's alias cluster.local: Istio expands five-part principals
      // only (pilot/pkg/security/trustdomain/bundle.go `ReplaceTrustDomainAliases`), and the model must agree.
      title: 'the provider\'s own caller in a namespace named like the consumer\'s still reaches myreviews', from: { cluster: 'cluster2', namespace: 'default', app: 'reporting' },
      url: 'http://myreviews.bookinfo:9080/reviews/0', expect: { reached: true, cluster: 'cluster2' },
    }],
  },
  {
    name: 'consumer-trust-domain-aliased',
    description: 'shared-root: the provider accepts the consumer\'s trust domain (cluster1.local) as an alias; a workload of the provider runs in a namespace named like the consumer\'s',
    seed: 'bookinfo', clusters: BOOKINFO,
    prepare: (fed) => {
      editMesh(fed.world.cluster('cluster2'), addAlias('cluster1.local'));
      clientAs(fed.world.cluster('cluster1'), 'default', 'intruder');
      clientAs(fed.world.cluster('cluster2'), 'default', 'reporting');
    },
    commands: [
      ['export', '--context', 'cluster2', '-n', 'bookinfo', '--service', 'myreviews', '--port', '9080', '--subset', 'version=v3', '--name', 'reviews-v3', '--mode', 'shared-root'],
      ['import', '--context', 'cluster1', '-n', 'default', '--from', 'cluster2', '--export', 'bookinfo/reviews-v3', '--name', 'reviews-v3', '--service-account', 'sleep'],
    ],
    calls: [
      { title: 'the admitted consumer reaches reviews v3', from: SLEEP1, url: 'http://reviews-v3.default:9080/reviews/0', expect: { reached: true, cluster: 'cluster2' } },
      { title: 'a consumer workload that is not admitted is refused', from: { cluster: 'cluster1', namespace: 'default', app: 'intruder' }, url: 'http://reviews-v3.default:9080/reviews/0', expect: { refusedAt: 'workload' } },
      {
        // The guard names the admitted identity only in notPrincipals and never a four-part pattern such as
        // `cluster1.local/ns/default/*`: Istio expands five-part principals only
        // (pilot/pkg/security/trustdomain/bundle.go `ReplaceTrustDomainAliases`, `isTrustDomainBeingEnforced`).
        title: 'the provider\'s own caller in a namespace named like the consumer\'s still reaches myreviews', from: { cluster: 'cluster2', namespace: 'default', app: 'reporting' },
        url: 'http://myreviews.bookinfo:9080/reviews/0', expect: { reached: true, cluster: 'cluster2' },
      },
    ],
  },
  {
    name: 'tcp-port-without-protocol-prefix',
    description: 'shared-root TCP exports of ports named without a protocol prefix: tcp-echo (`echo`) and ratings behind a Service port named `web`',
    seed: 'bookinfo', clusters: BOOKINFO,
    prepare: (fed) => {
      const provider = fed.world.cluster('cluster2');
      tcpEcho(provider, 'bookinfo', 'echo');
      provider.create({ apiVersion: 'v1', kind: 'Service', metadata: { name: 'ratings-web', namespace: 'bookinfo' }, spec: { selector: { app: 'ratings' }, ports: [{ name: 'web', port: 9080 }] } });
      editMesh(provider, addAlias('cluster1.local'));
    },
    commands: [
      ['export', '--context', 'cluster2', '-n', 'bookinfo', '--service', 'tcp-echo', '--port', '9000', '--mode', 'shared-root'],
      ['import', '--context', 'cluster1', '-n', 'default', '--from', 'cluster2', '--export', 'bookinfo/tcp-echo', '--name', 'tcp-echo', '--service-account', 'sleep'],
      ['export', '--context', 'cluster2', '-n', 'bookinfo', '--service', 'ratings-web', '--port', 'web', '--mode', 'shared-root'],
      ['import', '--context', 'cluster1', '-n', 'default', '--from', 'cluster2', '--export', 'bookinfo/ratings-web', '--name', 'ratings-web', '--service-account', 'sleep'],
    ],
    calls: [
      { title: 'bytes reach tcp-echo', from: SLEEP1, url: 'tcp://tcp-echo.default:9000', expect: { reached: true, cluster: 'cluster2' } },
      {
        title: 'HTTP-looking bytes over the TCP export reach ratings', from: SLEEP1, url: 'http://ratings-web.default:9080/ratings/0', expect: { reached: true, cluster: 'cluster2' },
      },
    ],
  },
  {
    name: 'consumer-namespace-with-sidecar',
    description: 'boundary HTTP import into a consumer namespace whose Sidecar resource limits egress to its own namespace and istio-system',
    seed: 'bookinfo', clusters: BOOKINFO,
    prepare: (fed) => create(fed.world.cluster('cluster1'), [{
      apiVersion: 'networking.istio.io/v1beta1', kind: 'Sidecar', metadata: { name: 'default', namespace: 'default' },
      spec: { egress: [{ hosts: ['./*', 'istio-system/*'] }] },
    }]),
    commands: [BLOG_EXPORT, ['import', '--context', 'cluster1', '-n', 'default', '--from', 'cluster2', '--export', 'bookinfo/reviews', '--name', 'myreviews']],
    // Istio adds the destinations of the VirtualServices a Sidecar imports to its scope ("Infer more possible
    // destinations from virtual services", pilot/pkg/model/sidecar.go `collectImportedServices`, Istio main
    // eed52ebb66ad), so the egress gateway stays reachable although the Sidecar does not list istio-meshfed.
    calls: [{ title: 'the imported name reaches reviews v2', from: SLEEP1, url: 'http://myreviews.default:9080/reviews/0', expect: { reached: true, cluster: 'cluster2' } }],
  },
];

/** Starts the scenario's clusters on {@link ORACLE_ISTIO}, runs meshfed's commands, dumps the clusters, stops them. */
export async function runScenario(scenario: Scenario): Promise<RanScenario> {
  const fed = await startFederationWorld({ seed: scenario.seed, clusters: scenario.clusters.map((name) => ({ name })), istio: ORACLE_ISTIO });
  try {
    await scenario.prepare?.(fed);
    await fed.world.waitIdle();
    let log = '';
    for (const [index, args] of scenario.commands.entries()) {
      const r = await fed.run(args, { timeoutMs: 120_000 });
      log += `$ kubectl meshfed ${args.join(' ')}\n${r.stderr}${r.stdout}(exit ${r.code})\n`;
      if (scenario.refused?.command === index) {
        if (r.code !== 1 || !scenario.refused.error.test(r.stderr)) throw new Error(`scenario ${scenario.name}: kubectl meshfed ${args.join(' ')} was to be refused (exit 1, ${scenario.refused.error})\n${log}`);
        continue;
      }
      if (r.code !== 0) throw new Error(`scenario ${scenario.name}: kubectl meshfed ${args.join(' ')} failed\n${log}`);
    }
    // Pods created by the commands (gateways) must be running before their state is dumped.
    await fed.curl(scenario.calls[0]!.from.cluster, scenario.calls[0]!.from.namespace, scenario.calls[0]!.from.app, ['true']).catch(() => undefined);
    await fed.world.waitIdle();
    const calls = scenario.calls.map((c) => {
      const pod = fed.world.cluster(c.from.cluster).list('v1', 'Pod', c.from.namespace)
        .find((p) => p.metadata.labels?.app === c.from.app && (p.status as { phase?: string } | undefined)?.phase === 'Running');
      if (!pod) throw new Error(`scenario ${scenario.name}: no running pod app=${c.from.app} in ${c.from.cluster}/${c.from.namespace}`);
      return { ...c, call: { cluster: c.from.cluster, namespace: c.from.namespace, pod: pod.metadata.name, url: c.url, ...(c.headers ? { headers: c.headers } : {}) } };
    });
    const dir = join(mkdtempSync(join(tmpdir(), `meshfed-oracle-${scenario.name}-`)));
    await dumpWorld(fed.world, dir);
    return { scenario, dir, calls, log };
  } finally {
    await fed.stop();
  }
}
