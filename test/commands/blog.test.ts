/**
 * The seed blog scenario, end to end through the built CLI: cluster2 exports reviews v2 (Service myreviews,
 * boundary mode, HTTP), cluster1 imports it and attaches it 50/50 to its own reviews; the data-path model proves
 * that a pod in cluster1 reaches reviews v2 in cluster2. Also: dry-run output equals what is applied, re-runs
 * write nothing, foreign objects are refused, and removal leaves only meshfed's shared infrastructure.
 */
import test from 'ava';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import YAML from 'yaml';
import { isSubset } from '../../src/kube/apply.js';
import type { KubeObject } from '../support/emulator/index.js';
import { startFederationWorld, type FederationWorld } from '../support/federation.js';

let fed: FederationWorld;

const EXPORT = ['export', '--context', 'cluster2', '-n', 'bookinfo', '--service', 'myreviews', '--port', 'http', '--subset', 'version=v2', '--name', 'reviews'];
const IMPORT = ['import', '--context', 'cluster1', '-n', 'default', '--from', 'cluster2', '--export', 'bookinfo/reviews', '--name', 'myreviews', '--attach', 'reviews', '--weight', '50'];

/** Kinds whose objects no controller rewrites: their resourceVersion changes only if someone writes them. */
const STABLE_KINDS: Array<[string, string]> = [
  ['v1', 'Service'], ['v1', 'ServiceAccount'], ['v1', 'ConfigMap'], ['v1', 'Secret'],
  ['networking.istio.io/v1beta1', 'VirtualService'], ['networking.istio.io/v1beta1', 'DestinationRule'],
  ['networking.istio.io/v1beta1', 'Gateway'], ['security.istio.io/v1beta1', 'AuthorizationPolicy'],
];

function foreignVersions(cluster: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const [apiVersion, kind] of STABLE_KINDS) {
    for (const o of fed.world.cluster(cluster).list(apiVersion, kind)) {
      if (o.metadata.labels?.['app.kubernetes.io/managed-by'] === 'kubectl-meshfed') continue;
      out.set(`${kind} ${o.metadata.namespace}/${o.metadata.name}`, o.metadata.resourceVersion ?? '');
    }
  }
  return out;
}

let before: Record<string, Map<string, string>>;

test.before(async () => {
  fed = await startFederationWorld({ seed: 'bookinfo', clusters: [{ name: 'cluster1' }, { name: 'cluster2' }] });
  before = { cluster1: foreignVersions('cluster1'), cluster2: foreignVersions('cluster2') };
});

test.after.always(async () => {
  await fed?.stop();
});

test.serial('export input mistakes name the object and the flag, exit 1 and write nothing', async (t) => {
  const noService = await fed.runCounting(['export', '--context', 'cluster2', '-n', 'bookinfo', '--service', 'myreview', '--port', 'http']);
  t.is(noService.code, 1);
  t.regex(noService.stderr, /Service bookinfo\/myreview was not found in cluster cluster2: check --namespace and --service/);
  const noPortName = await fed.runCounting(['export', '--context', 'cluster2', '-n', 'bookinfo', '--service', 'myreviews', '--port', 'grpc']);
  t.is(noPortName.code, 1, 'a port name the Service lacks is an input error, like a port number it lacks');
  t.regex(noPortName.stderr, /Service bookinfo\/myreviews has no port named "grpc"; its ports are 9080\/http \(--port\)/);
  const noPortNumber = await fed.runCounting(['export', '--context', 'cluster2', '-n', 'bookinfo', '--service', 'myreviews', '--port', '9081']);
  t.is(noPortNumber.code, 1);
  const badTimeout = await fed.runCounting(['export', '--context', 'cluster2', '-n', 'bookinfo', '--service', 'myreviews', '--port', '9080', '--timeout', '5x']);
  t.is(badTimeout.code, 2);
  t.regex(badTimeout.stderr, /invalid --timeout "5x"/);
  t.false(badTimeout.stderr.includes('created'), 'a flag mistake is found before anything is applied');
  for (const run of [noService, noPortName, noPortNumber, badTimeout]) t.deepEqual(run.writes.cluster2, []);
  for (const args of [['unexport', '--name', 'reviews'], ['revoke', '--name', 'reviews', '--consumer', 'cluster1']]) {
    const missing = await fed.runCounting([...args, '--context', 'cluster2', '-n', 'bookinfo']);
    t.is(missing.code, 1);
    t.regex(missing.stderr, /export bookinfo\/reviews does not exist in cluster cluster2 \(exports: none\); check -n and --name/);
    t.false(missing.stderr.includes('export first'), 'removing an export that is not there is not fixed by exporting it');
    t.deepEqual(missing.writes.cluster2, []);
  }
});

test.serial('export --dry-run -o yaml writes nothing and prints exactly what export then applies', async (t) => {
  const dry = await fed.runCounting([...EXPORT, '--dry-run', '-o', 'yaml']);
  t.is(dry.code, 0, dry.stderr);
  t.deepEqual(dry.writes.cluster2, []);
  const printed = YAML.parseAllDocuments(dry.stdout).map((d) => d.toJS() as KubeObject);
  t.true(printed.length >= 10);
  t.false(dry.stdout.includes('PRIVATE KEY'), 'private keys are left out without --show-secrets');
  t.regex(dry.stderr, /left out 2 Secrets holding private keys/);

  const applied = await fed.runCounting(EXPORT);
  t.is(applied.code, 0, applied.stderr);
  t.true(applied.writes.cluster2!.length > 0);
  t.deepEqual(applied.writes.cluster1, []);
  t.true(applied.writes.cluster2!.every((r) => r.query.fieldManager === 'kubectl-meshfed' && r.query.fieldValidation === 'Strict'));
  for (const object of printed) {
    const live = fed.world.cluster('cluster2').get(object.apiVersion, object.kind, object.metadata.namespace, object.metadata.name);
    t.truthy(live, `${object.kind} ${object.metadata.name} was applied`);
    // A first export's federation CA and server certificate are made anew by each run: the certificates the dry run
    // publishes (ConfigMaps meshfed-federation-ca.crt, <Secret>.crt) are not the applied ones.
    if (object.kind === 'ConfigMap' && object.metadata.name.endsWith('.crt')) continue;
    // The emulator's view returns the stored version (e.g. security.istio.io/v1); the API serves the one asked for.
    t.true(isSubset({ ...object, apiVersion: live!.apiVersion }, live), `${object.kind} ${object.metadata.name} is live as printed`);
  }
  // Everything applied was printed, except the two Secrets with private keys (federation CA, gateway certificate).
  const printedNames = new Set(printed.map((o) => `${o.kind} ${o.metadata.namespace ? `${o.metadata.namespace}/` : ''}${o.metadata.name}`));
  const notPrinted = fed.managedObjects('cluster2').filter((name) => !printedNames.has(name));
  t.deepEqual(notPrinted, ['Secret istio-meshfed/mf-export-bookinfo-reviews', 'Secret meshfed-ca/meshfed-federation-ca']);
  t.regex(applied.stderr, /gateway istio-meshfed\/meshfed-ingress has the address \d+\.\d+\.\d+\.\d+/);
});

test.serial('export again with the same inputs sends zero write requests', async (t) => {
  const again = await fed.runCounting(EXPORT);
  t.is(again.code, 0, again.stderr);
  t.deepEqual(again.writes.cluster2, []);
  t.regex(again.stderr, /nothing to change/);
});

test.serial('import refuses to overwrite a Service meshfed does not manage, or to use a missing namespace, before writing anything', async (t) => {
  const badTimeout = await fed.runCounting([...IMPORT, '--timeout', 'soon']);
  t.is(badTimeout.code, 2);
  t.regex(badTimeout.stderr, /invalid --timeout "soon"/);
  t.deepEqual(badTimeout.writes, { cluster1: [], cluster2: [] });
  fed.world.cluster('cluster1').create({ apiVersion: 'v1', kind: 'Service', metadata: { name: 'legacy', namespace: 'default' }, spec: { ports: [{ name: 'http', port: 9080 }] } });
  const refused = await fed.runCounting(['import', '--context', 'cluster1', '-n', 'default', '--from', 'cluster2', '--export', 'bookinfo/reviews', '--name', 'legacy']);
  t.is(refused.code, 1);
  t.regex(refused.stderr, /Service default\/legacy already exists .* not managed by kubectl-meshfed/);
  t.regex(refused.stderr, /rename or delete it|another/);
  t.deepEqual(refused.writes.cluster1, [], 'nothing written in the consumer');
  t.deepEqual(refused.writes.cluster2, [], 'nothing written in the provider either');
  fed.world.cluster('cluster1').delete('v1', 'Service', 'default', 'legacy');

  const noNamespace = await fed.runCounting(['import', '--context', 'cluster1', '-n', 'nowhere', '--from', 'cluster2', '--export', 'bookinfo/reviews']);
  t.is(noNamespace.code, 1);
  t.regex(noNamespace.stderr, /namespace "nowhere" does not exist in context "cluster1" \(-n\)/);
  t.deepEqual(noNamespace.writes, { cluster1: [], cluster2: [] });
});

test.serial('import into a namespace without sidecar injection warns that its apps cannot reach the import', async (t) => {
  fed.world.cluster('cluster1').create({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'plain' } });
  const plain = await fed.run(['import', '--context', 'cluster1', '-n', 'plain', '--from', 'cluster2', '--export', 'bookinfo/reviews', '--dry-run']);
  t.is(plain.code, 0, plain.stderr);
  t.regex(plain.stderr, /Warning: namespace plain does not inject Istio sidecars .*sidecar\.istio\.io\/inject/);
  const injected = await fed.run([...IMPORT, '--dry-run']);
  t.false(injected.stderr.includes('does not inject'), injected.stderr);
});

test.serial('import with both contexts admits cluster1, attaches 50/50 to reviews, and a pod in cluster1 reaches reviews v2 in cluster2', async (t) => {
  const first = await fed.runCounting(IMPORT);
  t.is(first.code, 0, first.stderr);
  t.regex(first.stderr, /Imported: apps in the mesh call http:\/\/myreviews\.default:9080\//);
  t.true(first.writes.cluster1!.length > 0);
  t.true(first.writes.cluster2!.length > 0, 'the provider admits the consumer');
  const policy = fed.world.cluster('cluster2').get('security.istio.io/v1beta1', 'AuthorizationPolicy', 'istio-meshfed', 'mf-export-bookinfo-reviews')!;
  t.deepEqual((policy.spec as { rules: Array<{ from: Array<{ source: { principals: string[] } }> }> }).rules[0]!.from[0]!.source.principals,
    ['cluster1.meshfed.internal/ns/istio-meshfed/sa/meshfed-egress']);
  // The consumer's private key is only in the consumer cluster.
  t.truthy(fed.world.cluster('cluster1').get('v1', 'Secret', 'istio-meshfed', 'mf-bind-cluster2-bookinfo-reviews'));
  const providerSecrets = fed.world.cluster('cluster2').list('v1', 'Secret').map((s) => Buffer.from(String((s.data as Record<string, string> | undefined)?.['tls.key'] ?? ''), 'base64').toString());
  const consumerKey = Buffer.from(String((fed.world.cluster('cluster1').get('v1', 'Secret', 'istio-meshfed', 'mf-bind-cluster2-bookinfo-reviews')!.data as Record<string, string>)['tls.key']), 'base64').toString();
  t.false(providerSecrets.includes(consumerKey));
  t.false(first.stdout.includes('PRIVATE KEY') || first.stderr.includes('PRIVATE KEY'));

  const attach = fed.world.cluster('cluster1').get('networking.istio.io/v1beta1', 'VirtualService', 'default', 'mf-attach-reviews')!;
  const route = (attach.spec as { http: Array<{ route: Array<{ weight: number; destination: { host: string } }> }> }).http[0]!.route;
  t.deepEqual(route.map((r) => r.weight), [50, 50]);
  t.is(route[0]!.destination.host, 'reviews.default.svc.cluster.local');

  const call = await fed.curl('cluster1', 'default', 'sleep', ['curl', '-sS', 'http://myreviews.default:9080/reviews/0']);
  t.is(call.code, 0, call.stderr + call.trace.join('\n'));
  t.regex(call.stdout, /reviews-v2/);
  t.true(call.trace.some((hop) => hop.includes('meshfed-ingress')), 'through the provider federation gateway');
  // reviews.default: the first half of the weight range stays in cluster1 (v1), the second half goes to cluster2 (v2).
  const low = await fed.curl('cluster1', 'default', 'sleep', ['curl', '-sS', 'http://reviews.default:9080/reviews/0'], { random: () => 0.2 });
  const high = await fed.curl('cluster1', 'default', 'sleep', ['curl', '-sS', 'http://reviews.default:9080/reviews/0'], { random: () => 0.8 });
  t.regex(low.stdout, /"podname":"reviews-v1-/, low.trace.join('\n'));
  t.regex(high.stdout, /"podname":"reviews-v2-/, high.trace.join('\n'));

  const again = await fed.runCounting(IMPORT);
  t.is(again.code, 0, again.stderr);
  t.deepEqual(again.writes, { cluster1: [], cluster2: [] }, 'a re-run writes nothing in either cluster');
});

test.serial('a curl pod started with kubectl run in cluster1 gets its answer from reviews v2 in cluster2', async (t) => {
  const kubectl = (args: string[]) => new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
    execFile('kubectl', ['--kubeconfig', fed.kubeconfig, '--context', 'cluster1', '-n', 'default', ...args], (error, stdout, stderr) => {
      resolve({ code: error ? (typeof error.code === 'number' ? error.code : 1) : 0, stdout, stderr });
    });
  });
  const run = await kubectl(['run', 'probe', '--image=curlimages/curl', '--restart=Never', '--', 'curl', '-sS', 'http://myreviews.default:9080/reviews/0']);
  t.is(run.code, 0, run.stderr);
  let logs = '';
  for (let i = 0; i < 100 && !logs.includes('reviews'); i++) {
    await new Promise((resolve) => setTimeout(resolve, 100));
    logs = (await kubectl(['logs', 'probe', '-c', 'probe'])).stdout;
  }
  t.regex(logs, /"podname":"reviews-v2-/);
  await kubectl(['delete', 'pod', 'probe', '--wait=false']);
});

test.serial('import --dry-run=server -o json --output-dir: both API servers validate the objects, nothing is stored, one List per cluster in its own file', async (t) => {
  const out = mkdtempSync(join(tmpdir(), 'meshfed-blog-objects-'));
  const dry = await fed.runCounting(['import', '--context', 'cluster1', '-n', 'default', '--from', 'cluster2', '--export', 'bookinfo/reviews', '--name', 'reviews-two', '--dry-run=server', '-o', 'json', '--output-dir', out]);
  t.is(dry.code, 0, dry.stderr);
  t.deepEqual(dry.writes, { cluster1: [], cluster2: [] }, 'no stored write');
  const validated = fed.world.cluster('cluster1').requests.filter((r) => r.query.dryRun === 'All');
  t.true(validated.some((r) => r.path.endsWith('/services/reviews-two')), 'the consumer objects went to the server as a dry run');
  t.is(dry.stdout, '');
  const lists = ['cluster2', 'cluster1'].map((context) => JSON.parse(readFileSync(join(out, `${context}.json`), 'utf8')) as { kind: string; items: Array<{ kind: string; metadata: { name: string } }> });
  t.deepEqual(lists.map((l) => l.kind), ['List', 'List']);
  t.true(lists[1]!.items.some((o) => o.kind === 'Service' && o.metadata.name === 'reviews-two'));
  t.false(lists[0]!.items.some((o) => o.kind === 'Service' && o.metadata.name === 'reviews-two'));
  t.regex(dry.stderr, /Wrote the consumer's objects to .*cluster1\.json: kubectl --context cluster1 apply -f /);
  t.falsy(fed.world.cluster('cluster1').get('v1', 'Service', 'default', 'reviews-two'));
});

test.serial('status shows the export with its consumer and the import as active, as a table and as JSON', async (t) => {
  const provider = await fed.run(['status', '--context', 'cluster2', '-o', 'json']);
  t.is(provider.code, 0, provider.stderr);
  const status = JSON.parse(provider.stdout);
  t.is(status.clusterId, 'cluster2');
  t.like(status.exports[0], { namespace: 'bookinfo', name: 'reviews', service: 'myreviews', port: 9080, protocol: 'HTTP', mode: 'boundary', consumers: ['cluster1'], subset: { version: 'v2' } });
  t.regex(status.exports[0].gateway, /^\d+\.\d+\.\d+\.\d+:15443$/);
  t.true(Date.parse(status.exports[0].certificateExpires) > Date.now());
  const consumer = await fed.run(['status', '--context', 'cluster1']);
  t.is(consumer.code, 0, consumer.stderr);
  t.regex(consumer.stdout, /default\/myreviews\s+cluster2\/bookinfo\/reviews\s+9080\/HTTP\s+boundary\s+active\s+reviews \(50%\)/);
});

test.serial('unimporting one of two imports of the same export does not tell the user to revoke the admission the other uses', async (t) => {
  const second = await fed.run(['import', '--context', 'cluster1', '-n', 'default', '--from', 'cluster2', '--export', 'bookinfo/reviews', '--name', 'myreviews2']);
  t.is(second.code, 0, second.stderr);
  const removed = await fed.run(['unimport', '--context', 'cluster1', '-n', 'default', '--name', 'myreviews2']);
  t.is(removed.code, 0, removed.stderr);
  t.regex(removed.stderr, /default\/myreviews still imports cluster2\/bookinfo\/reviews: keep the provider's admission of this cluster/);
  t.false(removed.stderr.includes('kubectl meshfed revoke'), removed.stderr);
  t.truthy(fed.world.cluster('cluster1').get('v1', 'Secret', 'istio-meshfed', 'mf-bind-cluster2-bookinfo-reviews'), 'the binding the other import uses stays');
});

test.serial('unexport refuses while a consumer is admitted; unimport, revoke and unexport remove exactly meshfed\'s objects of it', async (t) => {
  const refused = await fed.runCounting(['unexport', '--context', 'cluster2', '-n', 'bookinfo', '--name', 'reviews']);
  t.is(refused.code, 1);
  t.regex(refused.stderr, /still admits cluster1/);
  t.regex(refused.stderr, /--force/);
  t.deepEqual(refused.writes.cluster2, []);

  const unimport = await fed.run(['unimport', '--context', 'cluster1', '-n', 'default', '--name', 'myreviews']);
  t.is(unimport.code, 0, unimport.stderr);
  t.regex(unimport.stderr, /cluster2\/bookinfo\/reviews still admits this cluster until its operator runs: kubectl meshfed revoke reviews --context cluster2 -n bookinfo --consumer cluster1/);
  const revoke = await fed.run(['revoke', '--context', 'cluster2', '-n', 'bookinfo', '--name', 'reviews', '--consumer', 'cluster1']);
  t.is(revoke.code, 0, revoke.stderr);
  const unexport = await fed.run(['unexport', '--context', 'cluster2', '-n', 'bookinfo', '--name', 'reviews']);
  t.is(unexport.code, 0, unexport.stderr);

  // What stays is the shared infrastructure: gateways, the federation CA and the cluster id.
  t.deepEqual(fed.managedObjects('cluster1'), [
    'ConfigMap istio-meshfed/meshfed-cluster', 'Deployment istio-meshfed/meshfed-egress', 'Namespace istio-meshfed',
    'Role istio-meshfed/meshfed-egress', 'RoleBinding istio-meshfed/meshfed-egress', 'Service istio-meshfed/meshfed-egress',
    'ServiceAccount istio-meshfed/meshfed-egress',
  ]);
  t.deepEqual(fed.managedObjects('cluster2'), [
    'ConfigMap istio-meshfed/meshfed-cluster', 'ConfigMap istio-meshfed/meshfed-federation-ca.crt', 'Deployment istio-meshfed/meshfed-ingress', 'Namespace istio-meshfed', 'Namespace meshfed-ca',
    'Role istio-meshfed/meshfed-ingress', 'RoleBinding istio-meshfed/meshfed-ingress', 'Secret meshfed-ca/meshfed-federation-ca',
    'Service istio-meshfed/meshfed-ingress', 'ServiceAccount istio-meshfed/meshfed-ingress',
  ]);
  // Nothing meshfed does not manage was written.
  for (const cluster of ['cluster1', 'cluster2']) {
    const after = foreignVersions(cluster);
    for (const [key, version] of before[cluster]!) t.is(after.get(key), version, `${cluster}: ${key} untouched`);
  }
  const call = await fed.curl('cluster1', 'default', 'sleep', ['curl', '-sS', 'http://myreviews.default:9080/reviews/0']);
  t.not(call.code, 0, 'the import is gone');
});
