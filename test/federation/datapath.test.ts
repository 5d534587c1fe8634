// The planned objects, applied to both clusters of a scenario, carry real requests through the Istio data-path
// model (test/support/mesh): the consumer's app reaches the exported Service, and only it. The clusters get what
// a real cluster adds on its own: workload pods, ClusterIPs, the gateway pods a Deployment (or the IstioOperator
// overlay) creates, a LoadBalancer address, and the mesh CA.
import test from 'ava';
import { planRevoke, planUnexport, type KubeObject } from '../../src/federation/index.js';
import { cacertsData, createIntermediateCA, createRootCA, simulateCurl, staticWorld } from '../support/mesh/index.js';
import { POSTGRES_CHECK, secret } from '../support/mesh/scenarios.js';
import { applyPlan, runScenario, runScenarioInput, scenarioInput, type ScenarioResult } from './scenario.js';
import { meshConfig, pod, realise } from './world.js';

type Loose = KubeObject & Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

async function curl(world: ReturnType<typeof staticWorld>, cluster: string, namespace: string, podName: string, argv: string[], random = 0) {
  const r = await simulateCurl(world, { cluster, namespace, pod: podName }, argv, { random: () => random });
  const lines = r.stdout.trimEnd().split('\n');
  return { ...r, status: lines[lines.length - 1], body: lines.slice(0, -1).join('\n') };
}

let blogResult: ScenarioResult | undefined;
const blog = (): ScenarioResult => (blogResult ??= runScenario('seed-blog-boundary-http'));

function blogWorld(r: ScenarioResult, providerObjects = r.providerObjects) {
  return staticWorld({
    cluster2: [
      meshConfig('cluster.local'), secret('istio-system', 'cacerts', cacertsData(createRootCA('cluster2 mesh root'))),
      { apiVersion: 'v1', kind: 'Service', metadata: { name: 'myreviews', namespace: 'bookinfo' }, spec: { clusterIP: '10.97.40.20', selector: { app: 'reviews' }, ports: [{ name: 'http', port: 9080, targetPort: 9080 }] } },
      pod('reviews-v2-5cfcfb547f-2t6l4', 'bookinfo', { app: 'reviews', version: 'v2' }, 'bookinfo-reviews', [{ name: 'reviews', image: 'docker.io/istio/examples-bookinfo-reviews-v2:1.18.0', ports: [{ containerPort: 9080 }] }], '1.18.2', '10.245.2.11'),
      pod('reviews-v3-75b4759787-58wpr', 'bookinfo', { app: 'reviews', version: 'v3' }, 'bookinfo-reviews', [{ name: 'reviews', image: 'docker.io/istio/examples-bookinfo-reviews-v3:1.18.0', ports: [{ containerPort: 9080 }] }], '1.18.2', '10.245.2.12'),
      ...realise(providerObjects, '1.18.2', '10.245.1', r.admission.overlay, r.input.provider.gatewayAddress),
    ],
    cluster1: [
      meshConfig('cluster.local'), secret('istio-system', 'cacerts', cacertsData(createRootCA('cluster1 mesh root'))),
      { apiVersion: 'v1', kind: 'Service', metadata: { name: 'reviews', namespace: 'default' }, spec: { clusterIP: '10.96.40.30', selector: { app: 'reviews' }, ports: [{ name: 'http', port: 9080, targetPort: 9080 }] } },
      pod('reviews-v1-657b76fc99-lx46g', 'default', { app: 'reviews', version: 'v1' }, 'bookinfo-reviews', [{ name: 'reviews', image: 'docker.io/istio/examples-bookinfo-reviews-v1:1.18.0', ports: [{ containerPort: 9080 }] }], '1.18.2', '10.244.2.11'),
      pod('sleep-6f8b4', 'default', { app: 'sleep' }, 'sleep', [{ name: 'sleep', image: 'curlimages/curl:8.11.1', command: ['sleep', '3600'] }], '1.18.2', '10.244.1.20'),
      ...realise(r.consumerObjects, '1.18.2', '10.244.1', r.importPlan.overlay),
    ],
  });
}

const probe = ['curl', '-sS', '-w', '\\n%{http_code}\\n'];

test.serial('seed blog: cluster1 reaches reviews v2 of cluster2 through the planned federation gateways', async (t) => {
  const world = blogWorld(blog());
  const imported = await curl(world, 'cluster1', 'default', 'sleep-6f8b4', [...probe, 'http://myreviews.default:9080/reviews/0']);
  t.is(imported.status, '200', `${imported.stderr}\n${imported.body}\n${imported.trace.join('\n')}`);
  t.regex(JSON.parse(imported.body).podname, /^reviews-v2-/, 'the subset: v2 only, never v3');
  // The attach keeps half of reviews.default local (v1).
  const local = await curl(world, 'cluster1', 'default', 'sleep-6f8b4', [...probe, 'http://reviews.default:9080/reviews/0'], 0.1);
  t.is(local.status, '200', local.stderr);
  t.regex(JSON.parse(local.body).podname, /^reviews-v1-/);
});

// The remote half of the attach relies on a per-destination authority (headers.request.set host on the weighted
// destination, which Istio turns into the weighted cluster's host_rewrite_literal).
test.serial('seed blog: the other half of reviews.default goes to v2 in cluster2 (per-destination authority)', async (t) => {
  const remote = await curl(blogWorld(blog()), 'cluster1', 'default', 'sleep-6f8b4', [...probe, 'http://reviews.default:9080/reviews/0'], 0.9);
  t.is(remote.status, '200', `${remote.stderr}\n${remote.body}\n${remote.trace.join('\n')}`);
  t.regex(JSON.parse(remote.body).podname, /^reviews-v2-/);
});

// Istio adds the destinations of the VirtualServices a Sidecar's egress listener selects to that listener's scope
// (pilot/pkg/model/sidecar.go ConvertToSidecarScope, "Infer more possible destinations from virtual services"; the
// Istio oracle's consumer-namespace-with-sidecar scenario): the egress gateway need not be listed.
test.serial('seed blog: a Sidecar listing only ./* and istio-system/* still reaches the egress gateway through the import\'s VirtualService; one listing istio-system/* only does not', async (t) => {
  const r = blog();
  const sidecar = (hosts: string[]): KubeObject => ({ apiVersion: 'networking.istio.io/v1beta1', kind: 'Sidecar', metadata: { name: 'default', namespace: 'default' }, spec: { egress: [{ hosts }] } });
  const withSidecar = (hosts: string[]) => {
    const world = blogWorld(r);
    world.add('cluster1', sidecar(hosts));
    return world;
  };
  const scoped = await curl(withSidecar(['./*', 'istio-system/*']), 'cluster1', 'default', 'sleep-6f8b4', [...probe, 'http://myreviews.default:9080/reviews/0']);
  t.is(scoped.status, '200', `${scoped.stderr}\n${scoped.body}\n${scoped.trace.join('\n')}`);
  const narrow = await curl(withSidecar(['istio-system/*']), 'cluster1', 'default', 'sleep-6f8b4', [...probe, 'http://myreviews.default:9080/reviews/0']);
  t.not(narrow.status, '200', narrow.trace.join('\n'));
  t.false(narrow.trace.some((h) => h.includes('meshfed-egress')), 'nothing reaches the egress gateway');
});

test.serial('seed blog: before admission the provider gateway admits nobody (403)', async (t) => {
  const r = blog();
  const before = r.providerObjects.map((o) => (o.kind === 'AuthorizationPolicy' ? r.exportPlan.objects.find((p) => p.kind === 'AuthorizationPolicy')! : o));
  const denied = await curl(blogWorld(r, before), 'cluster1', 'default', 'sleep-6f8b4', [...probe, 'http://myreviews.default:9080/reviews/0']);
  t.is(denied.status, '403', `${denied.stderr}\n${denied.body}`);
});

/** The seed question's clusters (shared root, Istio 1.9.1) with the planned objects of `r` and extra consumer pods. */
function questionWorld(r: ScenarioResult, extraConsumer: KubeObject[] = [], postgresPortName = 'tcp-postgres') {
  const root = createRootCA('NRC shared root');
  return staticWorld({
    production: [
      meshConfig(r.input.provider.trustDomain!, r.input.provider.trustDomainAliases), secret('istio-system', 'cacerts', cacertsData(createIntermediateCA('production intermediate', root))),
      { apiVersion: 'v1', kind: 'Service', metadata: { name: 'postgres', namespace: 'db' }, spec: { clusterIP: '10.101.20.5', selector: { app: 'postgres' }, ports: [{ name: postgresPortName, port: 5432, targetPort: 5432 }] } },
      pod('postgres-0', 'db', { app: 'postgres' }, 'postgres', [{ name: 'postgres', image: 'docker.io/library/postgres:15', ports: [{ containerPort: 5432 }] }], '1.9.1', '10.245.8.10'),
      ...realise(r.providerObjects, '1.9.1', '10.245.7', r.admission.overlay, r.input.provider.gatewayAddress),
    ],
    operations: [
      meshConfig(r.input.consumer.trustDomain!), secret('istio-system', 'cacerts', cacertsData(createIntermediateCA('operations intermediate', root))),
      pod('vault-0', 'vault', { app: 'vault' }, 'vault', [{ name: 'vault', image: 'busybox:1.36' }], '1.9.1', '10.244.5.10'),
      ...extraConsumer,
      ...realise(r.consumerObjects, '1.9.1', '10.244.6', r.importPlan.overlay),
    ],
  });
}

test.serial('shared-root: only the import namespace\'s sidecars get the 15443 path to the provider; a pod elsewhere in the consumer mesh does not', async (t) => {
  const r = runScenario('seed-question-shared-root-tcp');
  const toolbox = pod('toolbox-0', 'tools', { app: 'toolbox' }, 'toolbox', [{ name: 'toolbox', image: 'busybox:1.36' }], '1.9.1', '10.244.5.20');
  const world = questionWorld(r, [toolbox]);
  // Any address on port 15443: a ServiceEntry without addresses is a 0.0.0.0:15443 listener in every sidecar that sees it.
  const stray = await simulateCurl(world, { cluster: 'operations', namespace: 'tools', pod: 'toolbox-0' }, ['sh', '-c', "printf '\\000\\000\\000\\010\\004\\322\\026\\057' | nc -w 3 10.96.200.1 15443"], { random: () => 0 });
  t.false(stray.trace.some((h) => h.includes(`LoadBalancer ${r.input.provider.gatewayAddress}:15443`)), stray.trace.join('\n'));
  t.true(stray.trace.some((h) => h.startsWith('PassthroughCluster 10.96.200.1:15443')), stray.trace.join('\n'));
  const vault = await simulateCurl(world, { cluster: 'operations', namespace: 'vault', pod: 'vault-0' }, ['sh', '-c', POSTGRES_CHECK], { random: () => 0 });
  t.is(vault.stdout.trim(), 'postgres answered', vault.trace.join('\n'));
});

test.serial('a TCP export whose port name declares no protocol (db): the consumer\'s local port says tcp, so even an HTTP-looking request is carried to the provider', async (t) => {
  const input = scenarioInput('seed-question-shared-root-tcp');
  input.provider.services[0]!.ports = [{ name: 'db', port: 5432, targetPort: 5432, protocol: 'TCP' }];
  const r = runScenarioInput(input);
  const local = r.importPlan.objects.find((o) => o.kind === 'Service' && o.metadata.name === 'postgres') as Loose;
  t.deepEqual(local.spec.ports, [{ name: 'tcp-db', port: 5432, targetPort: 5432, protocol: 'TCP' }]);
  const world = questionWorld(r, [], 'db');
  const vault = await simulateCurl(world, { cluster: 'operations', namespace: 'vault', pod: 'vault-0' }, ['sh', '-c', POSTGRES_CHECK], { random: () => 0 });
  t.is(vault.stdout.trim(), 'postgres answered', vault.trace.join('\n'));
  // A sniffed port would hand this request to the HTTP route table, where the TCP import has no route (404 NR).
  const http = await simulateCurl(world, { cluster: 'operations', namespace: 'vault', pod: 'vault-0' }, ['curl', '-sS', '-w', '%{http_code}', 'http://postgres.vault:5432/'], { random: () => 0 });
  t.not(http.stdout, '404', http.trace.join('\n'));
  t.true(http.trace.some((h) => h.includes(`LoadBalancer ${r.input.provider.gatewayAddress}:15443`)), http.trace.join('\n'));
  t.true(http.trace.some((h) => h.includes('10.245.8.10:5432')), 'the bytes reach postgres');
});

for (const name of ['seed-question-shared-root-tcp', 'boundary-tcp']) {
  test.serial(`${name}: vault reaches postgres in production over the planned path; other workloads do not`, async (t) => {
    const r = runScenario(name);
    const shared = r.input.export.mode === 'shared-root';
    const root = createRootCA('NRC shared root');
    const productionCa = shared ? createIntermediateCA('production intermediate', root) : createRootCA('production mesh root');
    const operationsCa = shared ? createIntermediateCA('operations intermediate', root) : createRootCA('operations mesh root');
    const world = staticWorld({
      production: [
        meshConfig(r.input.provider.trustDomain!, r.input.provider.trustDomainAliases), secret('istio-system', 'cacerts', cacertsData(productionCa)),
        { apiVersion: 'v1', kind: 'Service', metadata: { name: 'postgres', namespace: 'db' }, spec: { clusterIP: '10.101.20.5', selector: { app: 'postgres' }, ports: [{ name: 'tcp-postgres', port: 5432, targetPort: 5432 }] } },
        pod('postgres-0', 'db', { app: 'postgres' }, 'postgres', [{ name: 'postgres', image: 'docker.io/library/postgres:15', ports: [{ containerPort: 5432 }] }], '1.9.1', '10.245.8.10'),
        ...realise(r.providerObjects, '1.9.1', '10.245.7', r.admission.overlay, r.input.provider.gatewayAddress),
      ],
      operations: [
        meshConfig(r.input.consumer.trustDomain!), secret('istio-system', 'cacerts', cacertsData(operationsCa)),
        pod('vault-0', 'vault', { app: 'vault' }, 'vault', [{ name: 'vault', image: 'busybox:1.36' }], '1.9.1', '10.244.5.10'),
        pod('intruder-0', 'vault', { app: 'intruder' }, 'intruder', [{ name: 'intruder', image: 'busybox:1.36' }], '1.9.1', '10.244.5.11'),
        ...realise(r.consumerObjects, '1.9.1', '10.244.6', r.importPlan.overlay),
      ],
    });
    const check = ['sh', '-c', "printf '\\000\\000\\000\\010\\004\\322\\026\\057' | nc -w 3 postgres.vault 5432 | grep -q N && echo postgres answered || { echo no answer from postgres; exit 1; }"];
    const vault = await simulateCurl(world, { cluster: 'operations', namespace: 'vault', pod: 'vault-0' }, check, { random: () => 0 });
    t.is(vault.stdout.trim(), 'postgres answered', `${vault.stderr}\n${vault.trace.join('\n')}`);
    const intruder = await simulateCurl(world, { cluster: 'operations', namespace: 'vault', pod: 'intruder-0' }, check, { random: () => 0 });
    // Shared-root admits workloads: another service account in the same namespace is denied at postgres. Boundary
    // admits the consumer's gateway, and the import (--service-account vault) only vault at the egress gateway.
    t.is(intruder.stdout.trim(), 'no answer from postgres', intruder.trace.join('\n'));
    if (!shared) t.true(intruder.trace.some((h) => /denied by .*mf-bind-production-db-postgres/.test(h)), intruder.trace.join('\n'));
  });
}

test.serial('seed blog: after revocation the provider gateway refuses cluster1 (403); after unexport the host is gone', async (t) => {
  const r = blog();
  const provider = { ...r.input.provider, existing: r.providerObjects };
  const revoked = applyPlan(provider, planRevoke(provider, { namespace: 'bookinfo', exportName: 'myreviews', consumerClusterId: 'cluster1' }, { now: new Date(r.input.now) }));
  const denied = await curl(blogWorld(r, revoked.existing), 'cluster1', 'default', 'sleep-6f8b4', [...probe, 'http://myreviews.default:9080/reviews/0']);
  t.is(denied.status, '403', `${denied.stderr}\n${denied.body}`);
  const unexported = applyPlan(provider, planUnexport(provider, { namespace: 'bookinfo', exportName: 'myreviews' }));
  const gone = await curl(blogWorld(r, unexported.existing), 'cluster1', 'default', 'sleep-6f8b4', [...probe, 'http://myreviews.default:9080/reviews/0']);
  t.is(gone.status, '503', `${gone.stderr}\n${gone.body}`);
});
