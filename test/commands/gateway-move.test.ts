/**
 * Moving an export to another gateway through the built CLI: nothing is left where it was, the provider keeps one
 * federation CA, and consumers admitted before are not cut off without being told (and reach it again after
 * importing anew).
 */
import test from 'ava';
import { startFederationWorld, type FederationWorld } from '../support/federation.js';

let fed: FederationWorld;

test.before(async () => {
  fed = await startFederationWorld({ seed: 'bookinfo', clusters: [{ name: 'cluster1' }, { name: 'cluster2' }, { name: 'legacy', istio: '1.9.0' }] });
  const legacy = fed.world.cluster('legacy');
  legacy.create({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'bookinfo' } });
  legacy.create({ apiVersion: 'v1', kind: 'Service', metadata: { name: 'myreviews', namespace: 'bookinfo' }, spec: { selector: { app: 'reviews' }, ports: [{ name: 'http', port: 9080 }] } });
  // The Service owner's rule (bookinfo's destination-rule-all): meshfed's gateways use its subsets, wherever they run.
  for (const cluster of ['cluster2', 'legacy']) {
    fed.world.cluster(cluster).create({
      apiVersion: 'networking.istio.io/v1beta1', kind: 'DestinationRule', metadata: { name: 'myreviews', namespace: 'bookinfo' },
      spec: { host: 'myreviews', subsets: ['v1', 'v2', 'v3'].map((v) => ({ name: v, labels: { version: v } })) },
    });
  }
});

test.after.always(async () => {
  await fed?.stop();
});

const caCertificates = (cluster: string): Array<[string, string]> => fed.world.cluster(cluster).list('v1', 'Secret')
  .filter((s) => s.metadata.name === 'meshfed-federation-ca')
  .map((s) => [s.metadata.namespace!, Buffer.from((s.data as Record<string, string>)['ca.crt']!, 'base64').toString('utf8')]);

test.serial('Istio 1.9: an export moved onto the existing ingress gateway leaves no subsets behind; the CA stays in its own namespace', async (t) => {
  const EXPORT = ['export', '--context', 'legacy', '-n', 'bookinfo', '--service', 'myreviews', '--port', '9080', '--subset', 'version=v2', '--name', 'reviews', '--timeout', '0'];
  const first = await fed.run(EXPORT);
  t.is(first.code, 0, first.stderr);
  const [[, ca]] = caCertificates('legacy') as [[string, string]];
  const moved = await fed.run([...EXPORT, '--gateway-selector', 'istio=ingressgateway']);
  t.is(moved.code, 0, moved.stderr);
  t.deepEqual(caCertificates('legacy'), [['meshfed-ca', ca]], 'one federation CA, the same one, where no gateway runs');
  const left = fed.managedObjects('legacy').filter((o) => o.includes(' istio-meshfed/') && !/^(ConfigMap istio-meshfed\/meshfed-cluster)$/.test(o));
  t.deepEqual(left, [], 'nothing of the export is left in istio-meshfed');
  t.false(fed.managedObjects('legacy').some((o) => o.startsWith('DestinationRule ')), 'the owner\'s rule defines v2: meshfed writes no DestinationRule beside the ingress gateway');
  const route = fed.world.cluster('legacy').get('networking.istio.io/v1beta1', 'VirtualService', 'istio-system', 'mf-export-bookinfo-reviews')!;
  t.is((route.spec as { http: Array<{ route: Array<{ destination: { subset: string } }> }> }).http[0]!.route[0]!.destination.subset, 'v2');
});

test.serial('a move that would cut admitted consumers off is refused; with --force they are told to import again, and then reach it', async (t) => {
  const EXPORT = ['export', '--context', 'cluster2', '-n', 'bookinfo', '--service', 'myreviews', '--port', '9080', '--subset', 'version=v2', '--name', 'reviews'];
  const IMPORT = ['import', '--context', 'cluster1', '-n', 'default', '--from', 'cluster2', '--export', 'bookinfo/reviews', '--name', 'reviews-v2'];
  const CALL = ['curl', '-sS', 'http://reviews-v2.default:9080/reviews/0'];
  t.is((await fed.run(EXPORT)).code, 0);
  const imported = await fed.run(IMPORT);
  t.is(imported.code, 0, imported.stderr);
  const before = await fed.curl('cluster1', 'default', 'sleep', CALL);
  t.is(before.code, 0, before.stderr + before.trace.join('\n'));
  const [[, ca]] = caCertificates('cluster2') as [[string, string]];

  const refused = await fed.runCounting([...EXPORT, '--gateway-selector', 'istio=ingressgateway']);
  t.is(refused.code, 1, refused.stderr);
  t.regex(refused.stderr, /consumer cluster1 is admitted to it/);
  t.regex(refused.stderr, /run the export with no --gateway-selector; to move it anyway, add --force/);
  t.deepEqual(refused.writes.cluster2, [], 'nothing was changed');
  t.is((await fed.curl('cluster1', 'default', 'sleep', CALL)).code, 0, 'the consumer still works');

  const forced = await fed.run([...EXPORT, '--gateway-selector', 'istio=ingressgateway', '--force']);
  t.is(forced.code, 0, forced.stderr);
  t.regex(forced.stderr, /consumer cluster1 reach it again once they import it again \(kubectl meshfed import in each consumer/);
  t.notRegex(refused.stderr, /--cluster-id/, 'the hint names no flag the export command would rename');
  t.deepEqual(caCertificates('cluster2'), [['meshfed-ca', ca]], 'the consumer certificate still chains to the one federation CA');
  t.deepEqual(fed.managedObjects('cluster2').filter((o) => /istio-meshfed\/(mf-|meshfed-federation-ca)/.test(o)), [], 'nothing of the export is left in istio-meshfed');

  const reimported = await fed.run(IMPORT);
  t.is(reimported.code, 0, reimported.stderr);
  const after = await fed.curl('cluster1', 'default', 'sleep', CALL);
  t.is(after.code, 0, after.stderr + after.trace.join('\n'));
  t.regex(after.stdout, /reviews-v2/);
});

test.serial('a provider serving exports from both meshfed\'s gateway and an existing one: import --from finds the right gateway', async (t) => {
  // cluster2 exports reviews v3 on meshfed's own gateway and ratings on the default ingress gateway.
  const own = await fed.run(['export', '--context', 'cluster2', '-n', 'bookinfo', '--service', 'myreviews', '--port', '9080', '--subset', 'version=v3', '--name', 'reviews-v3']);
  t.is(own.code, 0, own.stderr);
  const existing = await fed.run(['export', '--context', 'cluster2', '-n', 'bookinfo', '--service', 'ratings', '--port', '9080', '--name', 'ratings', '--gateway-selector', 'istio=ingressgateway']);
  t.is(existing.code, 0, existing.stderr);
  const imported = await fed.run(['import', '--context', 'cluster1', '-n', 'default', '--from', 'cluster2', '--export', 'bookinfo/ratings', '--name', 'remote-ratings']);
  t.is(imported.code, 0, imported.stderr);
  const call = await fed.curl('cluster1', 'default', 'sleep', ['curl', '-sS', 'http://remote-ratings.default:9080/ratings/0']);
  t.is(call.code, 0, call.stderr + call.trace.join('\n'));
  t.regex(call.stdout, /ratings/);
  t.true(call.trace.some((hop) => hop.includes('istio-system/istio-ingressgateway')), call.trace.join('\n'));
});

test.serial('the consumer\'s egress gateway moves: every import goes along, nothing is left behind, calls still answer', async (t) => {
  t.is((await fed.run(['export', '--context', 'cluster2', '-n', 'bookinfo', '--service', 'ratings', '--port', '9080', '--name', 'moving'])).code, 0);
  const IMPORT = ['import', '--context', 'cluster1', '-n', 'default', '--from', 'cluster2', '--export', 'bookinfo/moving', '--name', 'moving'];
  t.is((await fed.run(IMPORT)).code, 0);
  const moved = await fed.run([...IMPORT, '--gateway-selector', 'istio=ingressgateway']);
  t.is(moved.code, 0, moved.stderr);
  t.regex(moved.stderr, /the egress gateway moved to istio-system/);
  const left = fed.managedObjects('cluster1').filter((o) => o.includes(' istio-meshfed/') && !/meshfed-egress|meshfed-cluster/.test(o));
  t.deepEqual(left, [], 'no binding, Secret, route or record is left in istio-meshfed');
  const call = await fed.curl('cluster1', 'default', 'sleep', ['curl', '-sS', 'http://moving.default:9080/ratings/0']);
  t.is(call.code, 0, call.stderr + call.trace.join('\n'));
  t.true(call.trace.some((hop) => hop.includes('istio-system/istio-ingressgateway')), call.trace.join('\n'));
  t.is((await fed.run(['unimport', '--context', 'cluster1', '-n', 'default', '--name', 'moving'])).code, 0);
});

test.serial('Istio 1.9 consumer without an egress gateway: the import is applied and says it cannot work yet (exit 1)', async (t) => {
  // Nothing of meshfed's on legacy's ingress gateway any more, so the import would use meshfed's own egress gateway.
  t.is((await fed.run(['unexport', '--context', 'legacy', '-n', 'bookinfo', '--name', 'reviews'])).code, 0);
  const r = await fed.run(['import', '--context', 'legacy', '-n', 'bookinfo', '--from', 'cluster2', '--export', 'bookinfo/moving', '--name', 'remote', '--timeout', '0']);
  t.is(r.code, 1, r.stderr);
  t.regex(r.stderr, /the import is applied but cannot work yet: no egress gateway pod labelled istio=meshfed-egress runs in namespace istio-meshfed/);
  t.regex(r.stderr, /IstioOperator overlay/);
  t.notRegex(r.stderr, /Imported:/);
});
