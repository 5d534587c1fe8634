/**
 * The whole lifecycle of the seed blog scenario through the built CLI, with both contexts at hand: export, import,
 * rotation of the server, client and federation CA certificates with the probe (verify) passing before, during and
 * after each one, unimport with the provider at hand (the admission is withdrawn), unexport, and uninstall on both
 * sides: nothing meshfed manages is left in either cluster, and the user's own objects are untouched.
 */
import test, { type ExecutionContext } from 'ava';
import { countCertificates, managedObjectNames, secretText, startFederationWorld, userObjects, type FederationWorld } from '../support/federation.js';

let fed: FederationWorld;

const EXPORT = ['export', '--context', 'cluster2', '-n', 'bookinfo', '--service', 'myreviews', '--port', 'http', '--subset', 'version=v2', '--name', 'reviews'];
const IMPORT = ['import', '--context', 'cluster1', '-n', 'default', '--from', 'cluster2', '--export', 'bookinfo/reviews', '--name', 'myreviews', '--attach', 'reviews', '--weight', '50'];
const VERIFY = ['verify', '--context', 'cluster1', '-n', 'default', '--name', 'myreviews', '--from', 'cluster2', '--path', '/reviews/0', '--timeout', '2m'];
async function probePasses(t: ExecutionContext, when: string): Promise<void> {
  const verify = await fed.run(VERIFY);
  t.is(verify.code, 0, `${when}: ${verify.stdout}\n${verify.stderr}`);
  t.regex(verify.stdout, /the probe calls the imported service through the federation/, when);
}

let before: Record<string, Map<string, string>>;

test.before(async () => {
  fed = await startFederationWorld({ seed: 'bookinfo', clusters: [{ name: 'cluster1' }, { name: 'cluster2' }] });
});

test.after.always(async () => {
  await fed?.stop();
});

test.serial('export and import, then a re-run of each re-keys nothing', async (t) => {
  before = { cluster1: userObjects(fed.world, 'cluster1'), cluster2: userObjects(fed.world, 'cluster2') };
  t.is((await fed.run(EXPORT)).code, 0);
  const imported = await fed.run(IMPORT);
  t.is(imported.code, 0, imported.stderr);
  const server = secretText(fed.world, 'cluster2', 'istio-meshfed', 'mf-export-bookinfo-reviews', 'tls.key');
  const client = secretText(fed.world, 'cluster1', 'istio-meshfed', 'mf-bind-cluster2-bookinfo-reviews', 'tls.key');
  const again = await fed.runCounting(EXPORT);
  const againImport = await fed.runCounting(IMPORT);
  t.deepEqual(again.writes.cluster2, []);
  t.deepEqual(againImport.writes, { cluster1: [], cluster2: [] });
  t.is(secretText(fed.world, 'cluster2', 'istio-meshfed', 'mf-export-bookinfo-reviews', 'tls.key'), server, 'the server key is kept');
  t.is(secretText(fed.world, 'cluster1', 'istio-meshfed', 'mf-bind-cluster2-bookinfo-reviews', 'tls.key'), client, 'the client key is kept');
  await probePasses(t, 'before any rotation');
});

test.serial('rotate renews the server certificate (new key, same CA); the probe passes after', async (t) => {
  const key = secretText(fed.world, 'cluster2', 'istio-meshfed', 'mf-export-bookinfo-reviews', 'tls.key');
  const rotated = await fed.runCounting(['rotate', '--context', 'cluster2', '--validity', '90d']);
  t.is(rotated.code, 0, rotated.stderr);
  t.regex(rotated.stderr, /Renewed the server certificates of bookinfo\/reviews/);
  t.deepEqual(rotated.writes.cluster1, []);
  t.not(secretText(fed.world, 'cluster2', 'istio-meshfed', 'mf-export-bookinfo-reviews', 'tls.key'), key);
  const status = JSON.parse((await fed.run(['status', '--context', 'cluster2', '-o', 'json'])).stdout);
  const days = (Date.parse(status.exports[0].certificateExpires) - Date.now()) / 86_400_000;
  t.true(days > 88 && days <= 90, `--validity 90d gives 90 days (${days})`);
  t.falsy(status.exports[0].certificateExpired);
  t.truthy(status.federationCa.expires);
  const bad = await fed.runCounting(['rotate', '--context', 'cluster2', '--validity', '3 weeks']);
  t.is(bad.code, 2);
  t.regex(bad.stderr, /invalid --validity "3 weeks"/);
  t.deepEqual(bad.writes.cluster2, []);
  await probePasses(t, 'after the server rotation');
});

test.serial('rotate --from renews the client certificate (new key kept in the consumer); the probe passes after', async (t) => {
  const key = secretText(fed.world, 'cluster1', 'istio-meshfed', 'mf-bind-cluster2-bookinfo-reviews', 'tls.key');
  const rotated = await fed.runCounting(['rotate', '--context', 'cluster1', '--from', 'cluster2']);
  t.is(rotated.code, 0, rotated.stderr);
  t.regex(rotated.stderr, /Renewed the client certificates of default\/myreviews/);
  t.deepEqual(rotated.writes.cluster2, [], 'outside a CA rotation the provider is not written');
  const renewed = secretText(fed.world, 'cluster1', 'istio-meshfed', 'mf-bind-cluster2-bookinfo-reviews', 'tls.key');
  t.not(renewed, key);
  for (const secret of fed.world.cluster('cluster2').list('v1', 'Secret')) {
    t.false(Buffer.from(String((secret.data as Record<string, string> | undefined)?.['tls.key'] ?? ''), 'base64').toString().includes(renewed.split('\n')[1]!), 'the new key is only in the consumer');
  }
  await probePasses(t, 'after the client rotation');
});

test.serial('rotate --ca: both CAs trusted during the overlap, the probe passes at every step, finish drops the old CA', async (t) => {
  const oldCa = secretText(fed.world, 'cluster2', 'meshfed-ca', 'meshfed-federation-ca', 'ca.crt');
  const early = await fed.run(['rotate', '--context', 'cluster2', '--ca', '--finish']);
  t.is(early.code, 1, 'finishing a rotation never started is refused');
  t.regex(early.stderr, /no federation CA rotation is under way/);

  const start = await fed.run(['rotate', '--context', 'cluster2', '--ca']);
  t.is(start.code, 0, start.stderr);
  t.regex(start.stderr, /kubectl meshfed rotate --context cluster1 --from cluster2/);
  t.regex(start.stderr, /kubectl meshfed rotate --context cluster2 --ca --finish/);
  t.is(countCertificates(secretText(fed.world, 'cluster2', 'istio-meshfed', 'mf-export-bookinfo-reviews', 'ca.crt')), 2, 'the provider gateway trusts both CAs');
  t.is(secretText(fed.world, 'cluster2', 'meshfed-ca', 'meshfed-federation-ca', 'ca.crt'), oldCa, 'the current CA stays until the finish');
  await probePasses(t, 'after the CA rotation started');

  const refused = await fed.runCounting(['rotate', '--context', 'cluster2', '--ca', '--finish']);
  t.is(refused.code, 1, 'a consumer without a certificate from the next CA would be cut off');
  t.regex(refused.stderr, /has not signed a client certificate for cluster1 yet/);
  t.regex(refused.stderr, /kubectl meshfed rotate --context cluster1 --from cluster2/);
  t.deepEqual(refused.writes.cluster2, []);

  const during = JSON.parse((await fed.run(['status', '--context', 'cluster2', '-o', 'json'])).stdout);
  t.deepEqual(during.federationCa.rotation.renewedConsumers, []);
  const consumer = await fed.run(['rotate', '--context', 'cluster1', '--from', 'cluster2']);
  t.is(consumer.code, 0, consumer.stderr);
  t.deepEqual(JSON.parse((await fed.run(['status', '--context', 'cluster2', '-o', 'json'])).stdout).federationCa.rotation.renewedConsumers, ['cluster1']);
  t.regex((await fed.run(['status', '--context', 'cluster2'])).stdout, /rotation under way .*renewed consumers: cluster1; finish: kubectl meshfed rotate --context cluster2 --ca --finish/);
  t.is(countCertificates(secretText(fed.world, 'cluster1', 'istio-meshfed', 'mf-bind-cluster2-bookinfo-reviews', 'ca.crt')), 2, 'the consumer trusts both CAs');
  await probePasses(t, 'during the CA rotation, the consumer renewed under the next CA');

  const finish = await fed.run(['rotate', '--context', 'cluster2', '--ca', '--finish']);
  t.is(finish.code, 0, finish.stderr);
  const newCa = secretText(fed.world, 'cluster2', 'meshfed-ca', 'meshfed-federation-ca', 'ca.crt');
  t.not(newCa, oldCa);
  t.is(secretText(fed.world, 'cluster2', 'meshfed-ca', 'meshfed-federation-ca', 'next.crt'), '', 'no next CA is left');
  t.is(countCertificates(secretText(fed.world, 'cluster2', 'istio-meshfed', 'mf-export-bookinfo-reviews', 'ca.crt')), 1, 'the provider trusts the new CA only');
  await probePasses(t, 'after the CA rotation finished');

  const drop = await fed.run(['rotate', '--context', 'cluster1', '--from', 'cluster2']);
  t.is(drop.code, 0, drop.stderr);
  t.is(countCertificates(secretText(fed.world, 'cluster1', 'istio-meshfed', 'mf-bind-cluster2-bookinfo-reviews', 'ca.crt')), 1, 'the consumer dropped the old CA');
  await probePasses(t, 'after the consumer dropped the old CA');
});

test.serial('verify warns ahead of expiry with the exact rotate command; status marks the near expiry', async (t) => {
  t.is((await fed.run(['rotate', '--context', 'cluster2', '-n', 'bookinfo', '--name', 'reviews', '--validity', '20d'])).code, 0);
  t.is((await fed.run(['rotate', '--context', 'cluster1', '--from', 'cluster2', '-n', 'default', '--name', 'myreviews', '--validity', '20d'])).code, 0);
  const verify = await fed.run(VERIFY);
  t.is(verify.code, 0, 'warnings only');
  t.regex(verify.stdout, /MF0211[\s\S]*kubectl meshfed rotate --context cluster2 -n bookinfo --name reviews/);
  t.regex(verify.stdout, /MF0306[\s\S]*kubectl meshfed rotate --context cluster1 --from cluster2 -n default --name myreviews/);
  const status = await fed.run(['status', '--context', 'cluster1']);
  t.regex(status.stdout, /default\/myreviews .*\d{4}-\d\d-\d\d \(19d\)/);
  // Renewed again with the default validity, the warnings go.
  t.is((await fed.run(['rotate', '--context', 'cluster2'])).code, 0);
  t.is((await fed.run(['rotate', '--context', 'cluster1', '--from', 'cluster2'])).code, 0);
  const clean = await fed.run([...VERIFY, '--no-probe']);
  t.false(/MF0211|MF0306/.test(clean.stdout.split('\n').filter((l) => !l.startsWith('√')).join('\n')), clean.stdout);
});

test.serial('uninstall refuses while something still depends on meshfed, naming it', async (t) => {
  const refused = await fed.runCounting(['uninstall', '--context', 'cluster1']);
  t.is(refused.code, 1);
  t.regex(refused.stderr, /still uses meshfed: imports default\/myreviews \(from cluster2\/bookinfo\/reviews\)/);
  t.deepEqual(refused.writes.cluster1, []);
});

test.serial('unimport --from withdraws the admission on the provider; unexport and uninstall leave nothing of meshfed', async (t) => {
  const unimport = await fed.run(['unimport', '--context', 'cluster1', '-n', 'default', '--name', 'myreviews', '--from', 'cluster2']);
  t.is(unimport.code, 0, unimport.stderr);
  t.regex(unimport.stderr, /cluster2\/bookinfo\/reviews no longer admits this cluster \(cluster1\)/);
  const status = JSON.parse((await fed.run(['status', '--context', 'cluster2', '-o', 'json'])).stdout);
  t.deepEqual(status.exports[0].consumers, [], 'the provider no longer admits cluster1');
  const unexport = await fed.run(['unexport', '--context', 'cluster2', '-n', 'bookinfo', '--name', 'reviews']);
  t.is(unexport.code, 0, unexport.stderr);
  for (const cluster of ['cluster1', 'cluster2']) {
    const removed = await fed.run(['uninstall', '--context', cluster]);
    t.is(removed.code, 0, removed.stderr);
    t.regex(removed.stderr, /meshfed is uninstalled/);
    t.deepEqual(fed.managedObjects(cluster), [], `${cluster}: nothing managed by meshfed is left`);
    t.deepEqual(managedObjectNames(fed.world, cluster), []);
    for (const ns of ['istio-meshfed', 'meshfed-ca']) t.falsy(fed.world.cluster(cluster).get('v1', 'Namespace', undefined, ns), `${cluster}: namespace ${ns} is gone`);
    const after = userObjects(fed.world, cluster);
    for (const [key, version] of before[cluster]!) t.is(after.get(key), version, `${cluster}: ${key} untouched`);
  }
});
