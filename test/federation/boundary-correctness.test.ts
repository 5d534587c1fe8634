// Boundary mode as real Istio runs it, release by release: the planned objects, applied to clusters that run the
// Istio release a user's cluster would have, must carry (or refuse) traffic as Istio's source says. Each test names
// the Istio behaviour it depends on; test/support/mesh/README.md cites the source.
import test from 'ava';
import {
  planExport, planImport, readImportRecords, winningVirtualService, type KubeObject, type ProviderSnapshot,
} from '../../src/federation/index.js';
import { startWorld } from '../support/emulator/index.js';
import { cacertsData, createRootCA, simulateCurl, staticWorld } from '../support/mesh/index.js';
import { secret } from '../support/mesh/scenarios.js';
import { applyPlan, runScenarioInput, type ScenarioInput, type ScenarioResult } from './scenario.js';
import { meshConfig, pod, realise } from './world.js';

type Loose = KubeObject & Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

const NOW = '2026-06-01T12:00:00.000Z';
const LB = '203.0.113.20';

/** The seed blog federation (reviews v2 of cluster2 imported into cluster1's default namespace), with changes. */
function blogInput(change: { providerVersion?: string; consumerVersion?: string; provider?: Partial<ProviderSnapshot>; consumerExisting?: KubeObject[]; import?: Partial<ScenarioInput['import']> } = {}): ScenarioInput {
  return {
    description: 'seed blog, varied', now: NOW,
    provider: {
      clusterId: 'cluster2', istioVersion: change.providerVersion ?? '1.18.0', trustDomain: 'cluster.local', gatewayAddress: LB,
      services: [{ name: 'myreviews', namespace: 'bookinfo', selector: { app: 'reviews' }, ports: [{ name: 'http', port: 9080, targetPort: 9080, protocol: 'TCP' }] }],
      pods: [
        { name: 'reviews-v2-0', namespace: 'bookinfo', labels: { app: 'reviews', version: 'v2' }, ready: true, serviceAccount: 'bookinfo-reviews', sidecar: true },
        { name: 'reviews-v3-0', namespace: 'bookinfo', labels: { app: 'reviews', version: 'v3' }, ready: true, serviceAccount: 'bookinfo-reviews', sidecar: true },
      ],
      existing: [],
      ...change.provider,
    },
    consumer: {
      clusterId: 'cluster1', istioVersion: change.consumerVersion ?? '1.18.0', trustDomain: 'cluster.local',
      services: [{ name: 'reviews', namespace: 'default', selector: { app: 'reviews' }, ports: [{ name: 'http', port: 9080, targetPort: 9080, protocol: 'TCP' }] }],
      existing: change.consumerExisting ?? [],
    },
    export: { providerClusterId: 'cluster2', namespace: 'bookinfo', service: 'myreviews', port: { number: 9080 }, subset: { version: 'v2' } },
    import: { consumerClusterId: 'cluster1', namespace: 'default', localName: 'myreviews', attach: { service: 'reviews', weight: 50 }, ...change.import },
  };
}

const reviewsPod = (name: string, ns: string, version: string, proxy: string, ip: string): KubeObject =>
  pod(name, ns, { app: 'reviews', version }, 'bookinfo-reviews', [{ name: 'reviews', image: `docker.io/istio/examples-bookinfo-reviews-${version}:1.18.0`, ports: [{ containerPort: 9080 }] }], proxy, ip);

/** Both clusters: what the plans wrote, the workloads, and whatever the test adds. */
function worldOf(r: ScenarioResult, extra: { provider?: KubeObject[]; consumer?: KubeObject[]; providerObjects?: KubeObject[]; consumerObjects?: KubeObject[] } = {}) {
  const pv = r.input.provider.istioVersion;
  const cv = r.input.consumer.istioVersion;
  const userObjects = (objects: KubeObject[]): KubeObject[] => objects.filter((o) => !o.metadata.labels?.['app.kubernetes.io/managed-by']);
  const providerPlanned = (extra.providerObjects ?? r.providerObjects).filter((o) => o.metadata.labels?.['app.kubernetes.io/managed-by']);
  const consumerPlanned = (extra.consumerObjects ?? r.consumerObjects).filter((o) => o.metadata.labels?.['app.kubernetes.io/managed-by'] || o.kind === 'VirtualService');
  return staticWorld({
    cluster2: [
      meshConfig('cluster.local'), secret('istio-system', 'cacerts', cacertsData(createRootCA('cluster2 mesh root'))),
      { apiVersion: 'v1', kind: 'Service', metadata: { name: 'myreviews', namespace: 'bookinfo' }, spec: { clusterIP: '10.97.40.20', selector: { app: 'reviews' }, ports: [{ name: 'http', port: 9080, targetPort: 9080 }] } },
      reviewsPod('reviews-v2-0', 'bookinfo', 'v2', pv, '10.245.2.11'),
      reviewsPod('reviews-v3-0', 'bookinfo', 'v3', pv, '10.245.2.12'),
      ...userObjects(r.input.provider.existing),
      ...realise(providerPlanned, pv, '10.245.1', r.admission.overlay, LB),
      ...(extra.provider ?? []),
    ],
    cluster1: [
      meshConfig('cluster.local'), secret('istio-system', 'cacerts', cacertsData(createRootCA('cluster1 mesh root'))),
      { apiVersion: 'v1', kind: 'Service', metadata: { name: 'reviews', namespace: 'default' }, spec: { clusterIP: '10.96.40.30', selector: { app: 'reviews' }, ports: [{ name: 'http', port: 9080, targetPort: 9080 }] } },
      reviewsPod('reviews-v1-0', 'default', 'v1', cv, '10.244.2.11'),
      pod('sleep-0', 'default', { app: 'sleep' }, 'sleep', [{ name: 'sleep', image: 'curlimages/curl:8.11.1', command: ['sleep', '3600'] }], cv, '10.244.1.20'),
      pod('sleep-0', 'other', { app: 'sleep' }, 'sleep', [{ name: 'sleep', image: 'curlimages/curl:8.11.1', command: ['sleep', '3600'] }], cv, '10.244.1.21'),
      ...realise(consumerPlanned, cv, '10.244.1', r.importPlan.overlay),
      ...(extra.consumer ?? []),
    ],
  });
}

async function curl(world: ReturnType<typeof staticWorld>, cluster: string, namespace: string, url: string, options: { random?: number; headers?: string[]; pod?: string } = {}) {
  const argv = ['curl', '-sS', '-w', '\\n%{http_code}\\n', ...(options.headers ?? []).flatMap((h) => ['-H', h]), url];
  const r = await simulateCurl(world, { cluster, namespace, pod: options.pod ?? 'sleep-0' }, argv, { random: () => options.random ?? 0 });
  const lines = r.stdout.trimEnd().split('\n');
  const body = lines.slice(0, -1).join('\n');
  return { ...r, status: lines[lines.length - 1], body, podname: /"podname"\s*:\s*"([^"]+)"/.exec(body)?.[1] ?? '', why: `${r.stderr}\n${body}\n${r.trace.join('\n')}` };
}

const ownerRule = (subsets: Array<{ name: string; labels: Record<string, string> }>, trafficPolicy?: Record<string, unknown>): KubeObject => ({
  apiVersion: 'networking.istio.io/v1beta1', kind: 'DestinationRule', metadata: { name: 'myreviews', namespace: 'bookinfo', creationTimestamp: '2026-01-01T00:00:00Z' },
  spec: { host: 'myreviews', ...(trafficPolicy ? { trafficPolicy } : {}), subsets },
});

// ---------------------------------------------------------------------------------------------------------------
// Item: a DestinationRule in the proxy's namespace hides the Service owner's (push_context.go DestinationRule).

test('DestinationRule: on an existing gateway in istio-system the owner\'s rule keeps serving every gateway there (1.18.0)', async (t) => {
  const existingGateway = { namespace: 'istio-system', selector: { istio: 'ingressgateway' }, serviceName: 'istio-ingressgateway', port: 15443 };
  const owner = ownerRule([{ name: 'v2', labels: { version: 'v2' } }, { name: 'v3', labels: { version: 'v3' } }]);
  const r = runScenarioInput(blogInput({ provider: { existingGateway, existing: [owner] } }));
  t.false(r.providerObjects.some((o) => o.kind === 'DestinationRule' && o.metadata.labels?.['app.kubernetes.io/managed-by']),
    'the owner\'s rule names the subset: meshfed writes no DestinationRule into istio-system');
  // The user's own internal gateway in istio-system routes reviews.example.com to subset v3 of the owner's rule.
  const internal: KubeObject[] = [
    { apiVersion: 'v1', kind: 'Service', metadata: { name: 'istio-ingressgateway', namespace: 'istio-system' }, spec: { type: 'LoadBalancer', clusterIP: '10.97.0.10', selector: { istio: 'ingressgateway' }, ports: [{ name: 'tls', port: 15443, targetPort: 15443 }] }, status: { loadBalancer: { ingress: [{ ip: LB }] } } },
    pod('istio-ingressgateway-0', 'istio-system', { istio: 'ingressgateway' }, 'istio-ingressgateway', [{ name: 'istio-proxy', image: 'docker.io/istio/proxyv2:1.18.0', ports: [{ containerPort: 15443 }] }], '1.18.0', '10.245.9.10', false),
    { apiVersion: 'v1', kind: 'Service', metadata: { name: 'internal-gateway', namespace: 'istio-system' }, spec: { clusterIP: '10.97.0.11', selector: { istio: 'internalgateway' }, ports: [{ name: 'http', port: 80, targetPort: 8080 }] } },
    pod('internal-gateway-0', 'istio-system', { istio: 'internalgateway' }, 'internal-gateway', [{ name: 'istio-proxy', image: 'docker.io/istio/proxyv2:1.18.0', ports: [{ containerPort: 8080 }] }], '1.18.0', '10.245.9.11', false),
    { apiVersion: 'networking.istio.io/v1beta1', kind: 'Gateway', metadata: { name: 'internal', namespace: 'istio-system' }, spec: { selector: { istio: 'internalgateway' }, servers: [{ port: { number: 8080, name: 'http', protocol: 'HTTP' }, hosts: ['reviews.example.com'] }] } },
    { apiVersion: 'networking.istio.io/v1beta1', kind: 'VirtualService', metadata: { name: 'reviews-v3', namespace: 'istio-system' }, spec: { hosts: ['reviews.example.com'], gateways: ['internal'], http: [{ route: [{ destination: { host: 'myreviews.bookinfo.svc.cluster.local', subset: 'v3', port: { number: 9080 } } }] }] } },
    pod('client-0', 'default', { app: 'client' }, 'default', [{ name: 'client', image: 'curlimages/curl:8.11.1', command: ['sleep', '3600'] }], '1.18.0', '10.245.3.10', false),
  ];
  const world = worldOf(r, { provider: internal });
  const own = await curl(world, 'cluster2', 'default', 'http://internal-gateway.istio-system/reviews/0', { pod: 'client-0', headers: ['Host: reviews.example.com'] });
  t.is(own.status, '200', own.why);
  t.regex(own.podname, /^reviews-v3-/);
  const imported = await curl(world, 'cluster1', 'default', 'http://myreviews.default:9080/reviews/0');
  t.is(imported.status, '200', imported.why);
  t.regex(imported.podname, /^reviews-v2-/);
});

test('DestinationRule: a subset the owner\'s rule lacks is not written beside gateways meshfed does not own', (t) => {
  const existingGateway = { namespace: 'istio-system', selector: { istio: 'ingressgateway' }, serviceName: 'istio-ingressgateway', port: 15443 };
  t.throws(() => runScenarioInput(blogInput({ provider: { existingGateway, existing: [ownerRule([{ name: 'v3', labels: { version: 'v3' } }])] } })), {
    message: /needs subset version-v2 .*meshfed will not write one into istio-system: gateways it does not own run there.* DestinationRule bookinfo\/myreviews/,
  });
});

test('DestinationRule: meshfed\'s rule carries the owner\'s traffic policy and subsets, and follows it when it changes', (t) => {
  const policy = { connectionPool: { http: { http2MaxRequests: 100 } }, outlierDetection: { consecutive5xxErrors: 3 } };
  const owner = ownerRule([{ name: 'v3', labels: { version: 'v3' } }], policy);
  const r = runScenarioInput(blogInput({ provider: { existing: [owner] } }));
  const ours = r.providerObjects.find((o) => o.kind === 'DestinationRule' && o.metadata.labels?.['meshfed.io/role'] === 'subsets') as Loose;
  t.is(ours.metadata.namespace, 'istio-meshfed');
  t.deepEqual(ours.spec.trafficPolicy, policy);
  t.deepEqual(ours.spec.subsets.map((s: Loose) => s.name), ['v3', 'version-v2']);
  // The owner changes the rule: the next run (admission here) carries the new one.
  const changed = { ...owner, spec: { ...(owner.spec as object), trafficPolicy: { connectionPool: { http: { http2MaxRequests: 7 } } } } };
  const provider = { ...r.input.provider, existing: r.providerObjects.map((o) => (o.metadata.name === 'myreviews' && o.kind === 'DestinationRule' ? changed : o)) };
  const again = planExport(provider, r.input.export, { now: new Date(NOW) });
  t.deepEqual((again.objects.find((o) => o.kind === 'DestinationRule' && o.metadata.labels?.['meshfed.io/role'] === 'subsets') as Loose).spec.trafficPolicy, { connectionPool: { http: { http2MaxRequests: 7 } } });
});

// ---------------------------------------------------------------------------------------------------------------
// Item: weighted attach without a per-destination Host (1.10.0's webhook refuses it).

test('weighted attach: Istio 1.10.0\'s validation webhook accepts every consumer object, and the split share reaches cluster2 on 1.9.0 and 1.10.0', async (t) => {
  for (const version of ['1.9.0', '1.10.0'] as const) {
    const r = runScenarioInput(blogInput({ consumerVersion: version }));
    const world = await startWorld({ clusters: [{ name: 'cluster1' }], istio: version });
    try {
      const cluster = world.cluster('cluster1');
      for (const ns of ['default', 'istio-meshfed']) if (!cluster.get('v1', 'Namespace', undefined, ns)) cluster.create({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns } });
      for (const o of r.importPlan.objects) t.notThrows(() => cluster.apply(o as never), `${version}: ${o.kind} ${o.metadata.namespace}/${o.metadata.name}`);
    } finally {
      await world.stop();
    }
    const remote = await curl(worldOf(r), 'cluster1', 'default', 'http://reviews.default:9080/reviews/0', { random: 0.9 });
    t.is(remote.status, '200', `${version}: ${remote.why}`);
    t.regex(remote.podname, /^reviews-v2-/, version);
    const local = await curl(worldOf(r), 'cluster1', 'default', 'http://reviews.default:9080/reviews/0', { random: 0.1 });
    t.regex(local.podname, /^reviews-v1-/, version);
  }
});

// ---------------------------------------------------------------------------------------------------------------
// Item: an older VirtualService of the attached Service wins on sidecars.

test('attach to a Service routed by the user\'s own VirtualService: refused; folded in with --merge-into, its share reaches cluster2 (1.18.0)', async (t) => {
  // bookinfo's virtual-service-all-v1, for reviews.
  const allV1: KubeObject = {
    apiVersion: 'networking.istio.io/v1beta1', kind: 'VirtualService', metadata: { name: 'reviews', namespace: 'default', creationTimestamp: '2026-01-01T00:00:00Z' },
    spec: { hosts: ['reviews'], http: [{ route: [{ destination: { host: 'reviews', subset: 'v1' } }] }] },
  };
  const v1Rule: KubeObject = {
    apiVersion: 'networking.istio.io/v1beta1', kind: 'DestinationRule', metadata: { name: 'reviews', namespace: 'default' },
    spec: { host: 'reviews', subsets: [{ name: 'v1', labels: { version: 'v1' } }] },
  };
  t.throws(() => runScenarioInput(blogInput({ consumerExisting: [allV1] })), { message: /VirtualService default\/reviews already routes reviews\.default\.svc\.cluster\.local .*--merge-into default\/reviews/ });
  const r = runScenarioInput(blogInput({ consumerExisting: [allV1], import: { attach: { service: 'reviews', weight: 50, mergeInto: 'default/reviews' } } }));
  t.is(winningVirtualService({ ...r.input.consumer, existing: r.consumerObjects }, 'default', 'reviews')?.metadata.name, 'reviews');
  const world = worldOf(r, { consumer: [v1Rule] });
  const remote = await curl(world, 'cluster1', 'default', 'http://reviews:9080/reviews/0', { random: 0.9 });
  t.is(remote.status, '200', remote.why);
  t.regex(remote.podname, /^reviews-v2-/);
  const local = await curl(world, 'cluster1', 'default', 'http://reviews:9080/reviews/0', { random: 0.1 });
  t.regex(local.podname, /^reviews-v1-/);
  t.deepEqual(readImportRecords({ ...r.input.consumer, existing: r.consumerObjects })[0]!.mergedInto?.originalSpec, allV1.spec);
});

// ---------------------------------------------------------------------------------------------------------------
// Item: an import is for its namespace (and service accounts) only.

test('an import serves its own namespace only; with --service-account only those workloads (1.9.0)', async (t) => {
  const r = runScenarioInput(blogInput({ consumerVersion: '1.9.0', import: { attach: undefined } }));
  const world = worldOf(r);
  const mine = await curl(world, 'cluster1', 'default', 'http://myreviews.default:9080/reviews/0');
  t.is(mine.status, '200', mine.why);
  const other = await curl(world, 'cluster1', 'other', 'http://myreviews.default:9080/reviews/0');
  t.not(other.status, '200', other.why);
  t.falsy(other.podname);

  const limited = runScenarioInput(blogInput({ consumerVersion: '1.9.0', import: { attach: undefined, serviceAccounts: ['productpage'] } }));
  const limitedWorld = worldOf(limited, {
    consumer: [pod('productpage-0', 'default', { app: 'productpage' }, 'productpage', [{ name: 'productpage', image: 'curlimages/curl:8.11.1', command: ['sleep', '3600'] }], '1.9.0', '10.244.1.30')],
  });
  const allowed = await curl(limitedWorld, 'cluster1', 'default', 'http://myreviews.default:9080/reviews/0', { pod: 'productpage-0' });
  t.is(allowed.status, '200', allowed.why);
  const denied = await curl(limitedWorld, 'cluster1', 'default', 'http://myreviews.default:9080/reviews/0');
  t.is(denied.status, '403', denied.why);
});

// ---------------------------------------------------------------------------------------------------------------
// Item: the provider's workload sees its Service's own name.

test('the provider workload sees its Service\'s own name as the authority, not the federation host (1.18.0)', async (t) => {
  // A policy of the Service owner that refuses requests for hosts it does not serve.
  const hostGuard: KubeObject = {
    apiVersion: 'security.istio.io/v1beta1', kind: 'AuthorizationPolicy', metadata: { name: 'own-hosts-only', namespace: 'bookinfo' },
    spec: { selector: { matchLabels: { app: 'reviews' } }, action: 'DENY', rules: [{ to: [{ operation: { hosts: ['*.meshfed.internal', '*.meshfed.internal:*'] } }] }] },
  };
  const r = runScenarioInput(blogInput({ import: { attach: undefined } }));
  const call = await curl(worldOf(r, { provider: [hostGuard] }), 'cluster1', 'default', 'http://myreviews.default:9080/reviews/0');
  t.is(call.status, '200', call.why);
  t.regex(call.podname, /^reviews-v2-/);
});

// ---------------------------------------------------------------------------------------------------------------
// Item: moving the egress gateway leaves nothing behind.

test('moving the egress gateway moves every import and leaves nothing in the old namespace (1.18.0)', async (t) => {
  const r = runScenarioInput(blogInput({ import: { attach: undefined } }));
  const consumer = { ...r.input.consumer, existing: r.consumerObjects };
  const second = planImport(consumer, { endpoint: r.importPlan.record.endpoint, credentials: credentialsOf(r) },
    { consumerClusterId: 'cluster1', namespace: 'other', localName: 'myreviews' }, { now: new Date(NOW) });
  const both = applyPlan(consumer, second);
  const moved = planImport({ ...both, gatewayNamespace: 'federation' }, { endpoint: r.importPlan.record.endpoint, credentials: credentialsOf(r) },
    { consumerClusterId: 'cluster1', namespace: 'default', localName: 'myreviews' }, { now: new Date(NOW) });
  const after = applyPlan(both, moved);
  const left = after.existing.filter((o) => o.metadata.namespace === 'istio-meshfed' && o.metadata.labels?.['meshfed.io/role'] !== 'gateway');
  t.deepEqual(left.map((o) => `${o.kind}/${o.metadata.name}`), [], 'nothing of the imports is left in istio-meshfed');
  t.true(after.existing.some((o) => o.kind === 'Secret' && o.metadata.namespace === 'federation' && o.metadata.name === 'mf-bind-cluster2-bookinfo-myreviews'));
  t.is(readImportRecords(after).length, 2);
  const world = worldOf({ ...r, consumerObjects: after.existing, importPlan: moved as never });
  for (const ns of ['default', 'other']) {
    const call = await curl(world, 'cluster1', ns, `http://myreviews.${ns}:9080/reviews/0`);
    t.is(call.status, '200', `${ns}: ${call.why}`);
  }
});

function credentialsOf(r: ScenarioResult) {
  const secretObject = r.consumerObjects.find((o) => o.kind === 'Secret' && o.metadata.name === 'mf-bind-cluster2-bookinfo-myreviews') as Loose;
  const data = Object.fromEntries(Object.entries(secretObject.data as Record<string, string>).map(([k, v]) => [k, Buffer.from(v, 'base64').toString('utf8')]));
  return { certificatePem: data['tls.crt']!, privateKeyPem: data['tls.key']!, caCertificatePem: data['ca.crt']! };
}
