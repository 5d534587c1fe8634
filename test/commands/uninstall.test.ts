/**
 * uninstall --force: with an export and an import still in place, the plan is shown and, without a terminal, applied
 * only with --yes; a namespace meshfed created but in which the user put an object of their own stays, as does that
 * object; a VirtualService an import was folded into gets back its routes.
 */
import test from 'ava';
import { startFederationWorld, type FederationWorld } from '../support/federation.js';

let fed: FederationWorld;
const MANAGED = 'app.kubernetes.io/managed-by';

test.before(async () => {
  fed = await startFederationWorld({ seed: 'bookinfo', clusters: [{ name: 'cluster1' }, { name: 'cluster2' }] });
});

test.after.always(async () => {
  await fed?.stop();
});

test.serial('uninstall --force removes exports and imports too, after the plan; keeps a namespace holding the user\'s object, and the object', async (t) => {
  t.is((await fed.run(['export', '--context', 'cluster2', '-n', 'bookinfo', '--service', 'myreviews', '--port', 'http', '--name', 'reviews'])).code, 0);
  const imported = await fed.run(['import', '--context', 'cluster1', '-n', 'default', '--from', 'cluster2', '--export', 'bookinfo/reviews', '--name', 'myreviews']);
  t.is(imported.code, 0, imported.stderr);
  // The user keeps a ConfigMap of their own in meshfed's namespace.
  fed.world.cluster('cluster1').create({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'notes', namespace: 'istio-meshfed' }, data: { mine: 'yes' } });

  const unconfirmed = await fed.runCounting(['uninstall', '--context', 'cluster1', '--force']);
  t.is(unconfirmed.code, 2, 'without a terminal, --force needs --yes');
  t.regex(unconfirmed.stderr, /- Service default\/myreviews/, 'the plan is shown first');
  t.regex(unconfirmed.stderr, /--force removes imports default\/myreviews \(from cluster2\/bookinfo\/reviews\): without a terminal to confirm on, pass --yes as well/);
  t.deepEqual(unconfirmed.writes.cluster1, []);

  const removed = await fed.run(['uninstall', '--context', 'cluster1', '--force', '--yes']);
  t.is(removed.code, 0, removed.stderr);
  t.regex(removed.stderr, /namespace istio-meshfed stays, no longer labelled as meshfed.s: meshfed created it, but it also holds ConfigMap\/notes/);
  t.deepEqual(fed.managedObjects('cluster1'), []);
  t.truthy(fed.world.cluster('cluster1').get('v1', 'Namespace', undefined, 'istio-meshfed'));
  t.is((fed.world.cluster('cluster1').get('v1', 'ConfigMap', 'istio-meshfed', 'notes')?.data as Record<string, string>).mine, 'yes');
  t.truthy(fed.world.cluster('cluster1').get('v1', 'Service', 'default', 'reviews'), 'the user\'s Service stays');

  const provider = await fed.run(['uninstall', '--context', 'cluster2', '--force', '--yes']);
  t.is(provider.code, 0, provider.stderr);
  t.deepEqual(fed.managedObjects('cluster2'), []);
  t.falsy(fed.world.cluster('cluster2').get('v1', 'Namespace', undefined, 'meshfed-ca'));
  t.truthy(fed.world.cluster('cluster2').get('v1', 'Service', 'bookinfo', 'myreviews'), 'the exported Service stays');
  t.false(fed.world.cluster('cluster2').list('security.istio.io/v1beta1', 'AuthorizationPolicy').some((o) => o.metadata.labels?.[MANAGED]));

  const again = await fed.runCounting(['uninstall', '--context', 'cluster2']);
  t.is(again.code, 0, again.stderr);
  t.deepEqual(again.writes.cluster2, [], 'nothing left to remove');
});
