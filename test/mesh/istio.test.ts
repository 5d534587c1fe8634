/**
 * Istio behaviours of the model on one mesh: VirtualService weights and exportTo, DestinationRule precedence,
 * PeerAuthentication, AuthorizationPolicy semantics, ServiceEntry DNS, outbound traffic policy, and loud failure
 * on configuration the model does not implement.
 */
import test from 'ava';
import type { KubeObject } from '../support/emulator/runtime.js';
import { fixtureYaml } from '../support/mesh/scenarios.js';
import { staticWorld } from '../support/mesh/index.js';
import { edit, run } from './helpers.js';
import type { World } from './helpers.js';

const world = (): World => staticWorld({ c1: fixtureYaml('single', 'c1') });
const GET = (url: string) => ['curl', '-sS', '-w', '\\n%{http_code}', url];

function istio(kind: string, namespace: string, name: string, spec: Record<string, unknown>, group = 'networking.istio.io'): KubeObject {
  return { apiVersion: `${group}/v1beta1`, kind, metadata: { name, namespace }, spec };
}

function podOf(stdout: string): string | undefined {
  return /"podname":"([^"]+)"/.exec(stdout)?.[1];
}

test('VirtualService weights split between subsets', async (t) => {
  const w = world();
  t.is(podOf((await run(w, 'c1', 'demo', 'client', GET('reviews:9080/reviews/0'), () => 0.1)).stdout), 'reviews-v1');
  t.is(podOf((await run(w, 'c1', 'demo', 'client', GET('reviews:9080/reviews/0'), () => 0.9)).stdout), 'reviews-v3');
});

test('a VirtualService exported only to its namespace does not apply to other namespaces', async (t) => {
  const w = world();
  edit(w, 'c1', 'networking.istio.io', 'VirtualService', 'demo', 'reviews', (vs) => { vs.spec.exportTo = ['.']; });
  const inDemo = await run(w, 'c1', 'demo', 'client', ['curl', '-s', '-H', 'end-user: jason', 'reviews:9080/reviews/0']);
  t.is(podOf(inDemo.stdout), 'reviews-v2');
  const fromTeam = await run(w, 'c1', 'team', 'team-client', ['curl', '-s', '-H', 'end-user: jason', 'reviews.demo:9080/reviews/0'], () => 0.99);
  t.is(podOf(fromTeam.stdout), 'reviews-v3', 'without the VirtualService the Service balances over all pods');
});

test('a DestinationRule in the client namespace shadows the service namespace one (subsets vanish: 503 NC)', async (t) => {
  const w = world();
  w.add('c1', istio('DestinationRule', 'team', 'reviews-tls', { host: 'reviews.demo.svc.cluster.local', trafficPolicy: { tls: { mode: 'ISTIO_MUTUAL' } } }));
  const r = await run(w, 'c1', 'team', 'team-client', GET('reviews.demo:9080/reviews/0'));
  t.is(r.stdout, '\n503');
  t.regex(r.proxies.logOf('team-client'), /" 503 NC /);
  edit(w, 'c1', 'networking.istio.io', 'DestinationRule', 'team', 'reviews-tls', (dr) => { dr.spec.exportTo = ['demo']; });
  const exported = await run(w, 'c1', 'team', 'team-client', GET('reviews.demo:9080/reviews/0'));
  t.regex(exported.stdout, /\n200$/, 'a DestinationRule not exported to its own namespace does not apply there');
});

test('a short DestinationRule host with a dot is not expanded: "reviews.demo" does not match the service', async (t) => {
  const w = world();
  edit(w, 'c1', 'networking.istio.io', 'DestinationRule', 'demo', 'reviews', (dr) => { dr.spec.host = 'reviews.demo'; });
  const r = await run(w, 'c1', 'demo', 'client', GET('reviews:9080/reviews/0'));
  t.is(r.stdout, '\n503');
});

test('plaintext from the client DestinationRule to a STRICT workload: 503 UC connection termination', async (t) => {
  const w = world();
  w.add('c1', istio('PeerAuthentication', 'demo', 'default', { mtls: { mode: 'STRICT' } }, 'security.istio.io'));
  w.add('c1', istio('DestinationRule', 'team', 'ratings-plain', { host: 'ratings.demo.svc.cluster.local', trafficPolicy: { tls: { mode: 'DISABLE' } } }));
  const r = await run(w, 'c1', 'team', 'team-client', GET('ratings.demo:9080/ratings/0'));
  t.is(r.stdout, 'upstream connect error or disconnect/reset before headers. reset reason: connection termination\n503');
  const plain = await run(w, 'c1', 'demo', 'plain', GET('ratings.demo:9080/ratings/0'));
  t.is(plain.exitCode, 56);
  t.regex(plain.stderr, /curl: \(56\) Recv failure: Connection reset by peer/);
  const auto = await run(w, 'c1', 'demo', 'client', GET('ratings.demo:9080/ratings/0'));
  t.regex(auto.stdout, /\n200$/, 'auto mTLS between sidecars');
});

test('AuthorizationPolicy: DENY before ALLOW, namespaces, notPrincipals, paths; an empty ALLOW denies all', async (t) => {
  const w = world();
  w.add('c1', istio('AuthorizationPolicy', 'demo', 'ratings-allow', {
    selector: { matchLabels: { app: 'ratings' } },
    rules: [{ from: [{ source: { namespaces: ['demo', 'team'] } }], to: [{ operation: { methods: ['GET'], paths: ['/ratings/*', '/health'] } }] }],
  }, 'security.istio.io'));
  w.add('c1', istio('AuthorizationPolicy', 'demo', 'ratings-deny', {
    selector: { matchLabels: { app: 'ratings' } }, action: 'DENY',
    rules: [{ from: [{ source: { notPrincipals: ['cluster.local/ns/demo/sa/client'] } }], to: [{ operation: { paths: ['/health'] } }] }],
  }, 'security.istio.io'));
  t.regex((await run(w, 'c1', 'demo', 'client', GET('ratings:9080/ratings/0'))).stdout, /\n200$/);
  t.regex((await run(w, 'c1', 'demo', 'client', GET('ratings:9080/health'))).stdout, /\n200$/);
  t.is((await run(w, 'c1', 'team', 'team-client', GET('ratings.demo:9080/health'))).stdout, 'RBAC: access denied\n403');
  t.regex((await run(w, 'c1', 'team', 'team-client', GET('ratings.demo:9080/ratings/1'))).stdout, /\n200$/);
  t.is((await run(w, 'c1', 'demo', 'client', ['curl', '-s', '-X', 'POST', '-w', '\\n%{http_code}', 'ratings:9080/ratings/0'])).stdout, 'RBAC: access denied\n403');
  t.is((await run(w, 'c1', 'demo', 'plain', GET('ratings:9080/ratings/0'))).stdout, 'RBAC: access denied\n403', 'no peer identity, no namespace');
  w.add('c1', istio('AuthorizationPolicy', 'demo', 'deny-all', {}, 'security.istio.io'));
  t.is((await run(w, 'c1', 'demo', 'client', GET('reviews:9080/reviews/0'))).stdout, 'RBAC: access denied\n403');
});

test('ServiceEntry hosts resolve only through the sidecar DNS proxy', async (t) => {
  const w = world();
  w.add('c1', istio('ServiceEntry', 'demo', 'ratings-alias', {
    hosts: ['ratings.example.internal'], addresses: ['240.0.0.10'], location: 'MESH_INTERNAL', resolution: 'STATIC',
    ports: [{ number: 80, name: 'http', protocol: 'HTTP' }], endpoints: [{ address: '10.244.0.14', ports: { http: 9080 } }],
  }));
  const without = await run(w, 'c1', 'demo', 'client', GET('http://ratings.example.internal/ratings/3'));
  t.is(without.exitCode, 6);
  edit(w, 'c1', '', 'Pod', 'demo', 'client', (p) => {
    p.metadata.annotations = { 'proxy.istio.io/config': '{"proxyMetadata": {"ISTIO_META_DNS_CAPTURE": "true"}}' };
  });
  const withDns = await run(w, 'c1', 'demo', 'client', GET('http://ratings.example.internal/ratings/3'));
  t.regex(withDns.stdout, /^\{"id":3,.*\n200$/);
});

test('outbound traffic: ALLOW_ANY passes unknown destinations through; REGISTRY_ONLY answers 502', async (t) => {
  const w = world();
  const direct = await run(w, 'c1', 'demo', 'client', ['curl', '-sS', 'http://10.244.0.14:9080/ratings/0']);
  t.regex(direct.stdout, /^\{"id":0/);
  const nowhere = await run(w, 'c1', 'demo', 'client', GET('http://10.99.0.1:8080/'));
  t.is(nowhere.stdout, 'upstream connect error or disconnect/reset before headers. reset reason: connection timeout\n503');
  edit(w, 'c1', '', 'ConfigMap', 'istio-system', 'istio', (cm) => { cm.data.mesh = 'trustDomain: cluster.local\noutboundTrafficPolicy:\n  mode: REGISTRY_ONLY\n'; });
  const blocked = await run(w, 'c1', 'demo', 'client', GET('http://10.244.0.14:9080/ratings/0'));
  t.is(blocked.stdout, '\n502');
});

test('configuration the model does not implement fails loudly instead of succeeding', async (t) => {
  const w = world();
  edit(w, 'c1', 'networking.istio.io', 'VirtualService', 'demo', 'reviews', (vs) => { vs.spec.http[1].fault = { abort: { httpStatus: 500, percentage: { value: 100 } } }; });
  const fault = await run(w, 'c1', 'demo', 'client', GET('reviews:9080/reviews/0'));
  t.is(fault.exitCode, 125);
  t.is(fault.stderr, 'mesh model: not modelled: VirtualService demo/reviews: http[].fault\n');
  const w2 = world();
  w2.add('c1', istio('EnvoyFilter', 'istio-system', 'lua', { configPatches: [] }));
  const filter = await run(w2, 'c1', 'demo', 'client', GET('ratings:9080/ratings/0'));
  t.is(filter.exitCode, 125);
  t.regex(filter.stderr, /not modelled: EnvoyFilter istio-system\/lua/);
});

function ingressGateway(w: World): void {
  w.add('c1', {
    apiVersion: 'v1', kind: 'Service', metadata: { name: 'istio-ingressgateway', namespace: 'istio-system' },
    spec: { type: 'LoadBalancer', clusterIP: '10.96.9.9', selector: { istio: 'ingressgateway' }, ports: [{ name: 'http2', port: 80, targetPort: 8080 }, { name: 'https', port: 443, targetPort: 8443 }] },
    status: { loadBalancer: { ingress: [{ ip: '203.0.113.50' }] } },
  });
  w.add('c1', {
    apiVersion: 'v1', kind: 'Pod', metadata: { name: 'istio-ingressgateway-1', namespace: 'istio-system', labels: { istio: 'ingressgateway' } },
    spec: { serviceAccountName: 'istio-ingressgateway-service-account', containers: [{ name: 'istio-proxy', image: 'docker.io/istio/proxyv2:1.18.0' }] },
    status: { phase: 'Running', podIP: '10.244.9.9', conditions: [{ type: 'Ready', status: 'True' }] },
  });
  w.add('c1', istio('Gateway', 'demo', 'public', {
    selector: { istio: 'ingressgateway' },
    servers: [
      { port: { number: 80, name: 'http', protocol: 'HTTP' }, hosts: ['*'] },
      { port: { number: 443, name: 'tls', protocol: 'TLS' }, hosts: ['ratings.example.com'], tls: { mode: 'PASSTHROUGH' } },
    ],
  }));
  w.add('c1', istio('VirtualService', 'demo', 'public', {
    hosts: ['*'], gateways: ['public'],
    http: [{ match: [{ uri: { prefix: '/ratings' } }], route: [{ destination: { host: 'ratings', port: { number: 9080 } } }] }],
  }));
  w.add('c1', istio('VirtualService', 'demo', 'public-tls', {
    hosts: ['ratings.example.com'], gateways: ['public'],
    tls: [{ match: [{ sniHosts: ['ratings.example.com'], port: 443 }], route: [{ destination: { host: 'ratings', port: { number: 9080 } } }] }],
  }));
}

test('ingress gateway: HTTP server on port 80 (pod port 8080) routes by path; others get 404 NR', async (t) => {
  const w = world();
  ingressGateway(w);
  const r = await run(w, 'c1', 'demo', 'plain', GET('http://203.0.113.50/ratings/5'));
  t.regex(r.stdout, /^\{"id":5,.*\n200$/);
  t.regex(r.proxies.logOf('istio-ingressgateway-1'), /"GET \/ratings\/5 HTTP\/1.1" 200 - "203.0.113.50"/);
  const other = await run(w, 'c1', 'demo', 'plain', GET('http://203.0.113.50/reviews/5'));
  t.is(other.stdout, '\n404');
});

test('ingress gateway: PASSTHROUGH relays the client TLS by SNI to the destination; an unknown SNI is reset', async (t) => {
  const w = world();
  ingressGateway(w);
  const relayed = await run(w, 'c1', 'demo', 'plain', ['curl', '-sSk', '--resolve', 'ratings.example.com:443:203.0.113.50', 'https://ratings.example.com/ratings/0']);
  t.is(relayed.exitCode, 35, 'ratings speaks plaintext: the relayed handshake meets an HTTP server');
  t.regex(relayed.stderr, /wrong version number/);
  t.true(relayed.trace.some((h) => h.includes('outbound|9080||ratings.demo.svc.cluster.local')));
  const unknown = await run(w, 'c1', 'demo', 'plain', ['curl', '-sSk', '--resolve', 'details.example.com:443:203.0.113.50', 'https://details.example.com/']);
  t.is(unknown.exitCode, 35);
  t.regex(unknown.stderr, /Connection reset by peer/);
});
