/**
 * Attaching an import to a local Service that already has a VirtualService of the user's, through the built CLI:
 * refused by default (Istio keeps the oldest VirtualService of a host on sidecars, so meshfed's would be ignored),
 * folded into the user's VirtualService with --merge-into (shown in the plan, reported by status, restored by
 * unimport), and the split share reaches cluster2 on the data path.
 */
import test from 'ava';
import { startFederationWorld, type FederationWorld } from '../support/federation.js';

let fed: FederationWorld;

// bookinfo's virtual-service-all-v1 and destination-rule-all, for reviews in cluster1.
const ALL_V1 = {
  apiVersion: 'networking.istio.io/v1beta1', kind: 'VirtualService', metadata: { name: 'reviews', namespace: 'default' },
  spec: { hosts: ['reviews'], http: [{ route: [{ destination: { host: 'reviews', subset: 'v1' } }] }] },
};

test.before(async () => {
  fed = await startFederationWorld({ seed: 'bookinfo', clusters: [{ name: 'cluster1' }, { name: 'cluster2' }] });
  const c1 = fed.world.cluster('cluster1');
  c1.create(ALL_V1);
  c1.create({
    apiVersion: 'networking.istio.io/v1beta1', kind: 'DestinationRule', metadata: { name: 'reviews', namespace: 'default' },
    spec: { host: 'reviews', subsets: [{ name: 'v1', labels: { version: 'v1' } }] },
  });
});

test.after.always(async () => {
  await fed?.stop();
});

test.serial('attach to reviews with bookinfo\'s virtual-service-all-v1: refused, then folded in with --merge-into, and restored by unimport', async (t) => {
  t.is((await fed.run(['export', '--context', 'cluster2', '-n', 'bookinfo', '--service', 'myreviews', '--port', '9080', '--subset', 'version=v2', '--name', 'reviews'])).code, 0);
  const IMPORT = ['import', '--context', 'cluster1', '-n', 'default', '--from', 'cluster2', '--export', 'bookinfo/reviews', '--name', 'myreviews', '--attach', 'reviews', '--weight', '50'];
  const refused = await fed.runCounting(IMPORT);
  t.is(refused.code, 1, refused.stderr);
  t.regex(refused.stderr, /VirtualService default\/reviews already routes reviews\.default\.svc\.cluster\.local .*oldest.*--merge-into default\/reviews/);
  t.deepEqual(refused.writes.cluster1, [], 'nothing written in the consumer');

  const merged = await fed.run([...IMPORT, '--merge-into', 'default/reviews']);
  t.is(merged.code, 0, merged.stderr);
  t.regex(merged.stderr, /~ VirtualService default\/reviews \(change\)/, 'the plan shows the change to the user\'s VirtualService');
  t.regex(merged.stderr, /changed with your consent \(--merge-into\)/);
  const live = fed.world.cluster('cluster1').get('networking.istio.io/v1beta1', 'VirtualService', 'default', 'reviews')!;
  t.falsy(live.metadata.labels?.['app.kubernetes.io/managed-by'], 'it stays the user\'s');
  t.falsy(fed.world.cluster('cluster1').get('networking.istio.io/v1beta1', 'VirtualService', 'default', 'mf-attach-reviews'));

  const status = JSON.parse((await fed.run(['status', '--context', 'cluster1', '-o', 'json'])).stdout);
  t.deepEqual(status.imports[0].attachRoute, { virtualService: 'default/reviews', used: true });
  const remote = await fed.curl('cluster1', 'default', 'sleep', ['curl', '-sS', 'http://reviews:9080/reviews/0'], { random: () => 0.9 });
  t.is(remote.code, 0, remote.stderr + remote.trace.join('\n'));
  t.regex(remote.stdout, /reviews-v2/);
  const again = await fed.runCounting([...IMPORT, '--merge-into', 'default/reviews']);
  t.is(again.code, 0, again.stderr);
  t.deepEqual(again.writes.cluster1, [], 'a re-run does not split twice');

  t.is((await fed.run(['unimport', '--context', 'cluster1', '-n', 'default', '--name', 'myreviews'])).code, 0);
  const restored = fed.world.cluster('cluster1').get('networking.istio.io/v1beta1', 'VirtualService', 'default', 'reviews')!;
  t.deepEqual(restored.spec, ALL_V1.spec);
});
