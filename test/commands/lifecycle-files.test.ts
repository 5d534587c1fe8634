/**
 * The whole lifecycle of the seed blog scenario with the two sides unable to reach each other: no command is given
 * both contexts, and everything crossing between them goes through the exchange files (import request, export
 * bundle). Export, import in three steps, rotation of the server, client and federation CA certificates (the client
 * ones through the same files) with the probe (verify) passing before, during and after each one, unimport (the
 * provider's operator gets the exact revoke command), unexport, and uninstall on both sides.
 */
import test, { type ExecutionContext } from 'ava';
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { countCertificates, managedObjectNames, secretText, startFederationWorld, userObjects, type FederationWorld } from '../support/federation.js';

let fed: FederationWorld;
const dir = mkdtempSync(join(tmpdir(), 'meshfed-lifecycle-files-'));
const file = (name: string) => join(dir, name);

const EXPORT = ['export', '--context', 'cluster2', '-n', 'bookinfo', '--service', 'myreviews', '--port', 'http', '--subset', 'version=v2', '--name', 'reviews'];
// Without --from: provider checks are skipped, the probe still runs.
const VERIFY = ['verify', '--context', 'cluster1', '-n', 'default', '--name', 'myreviews', '--path', '/reviews/0', '--timeout', '2m'];
async function probePasses(t: ExecutionContext, when: string): Promise<void> {
  const verify = await fed.run(VERIFY);
  t.is(verify.code, 0, `${when}: ${verify.stdout}\n${verify.stderr}`);
  t.regex(verify.stdout, /the probe calls the imported service through the federation/, when);
}

let before: Record<string, Map<string, string>>;
let round = 0;

/**
 * The three steps: a request from the consumer, the provider's bundle, the consumer imports it (the first time) or
 * completes its renewal (`rotate --request-out` and `rotate --bundle` later).
 */
async function exchange(t: ExecutionContext, renew: boolean): Promise<void> {
  round += 1;
  const request = await fed.runCounting(renew
    ? ['rotate', '--context', 'cluster1', '--from', 'cluster2', '--request-out', file(`request-${round}.yaml`)]
    : ['import', '--context', 'cluster1', '-n', 'default', '--from', 'cluster2', '--export', 'cluster2/bookinfo/reviews', '--name', 'myreviews', '--request-out', file(`request-${round}.yaml`)]);
  t.is(request.code, 0, request.stderr);
  t.deepEqual(request.writes.cluster2, [], 'the consumer step never touches the provider');
  const admit = await fed.runCounting(['admit', '--context', 'cluster2', '--request', file(`request-${round}.yaml`), '--bundle-out', file(`bundle-${round}.yaml`)]);
  t.is(admit.code, 0, admit.stderr);
  t.deepEqual(admit.writes.cluster1, [], 'the provider step never touches the consumer');
  const complete = await fed.runCounting(renew
    ? ['rotate', '--context', 'cluster1', '--bundle', file(`bundle-${round}.yaml`)]
    // No --name: the bundle imports under the name the request was made for.
    : ['import', '--context', 'cluster1', '-n', 'default', '--bundle', file(`bundle-${round}.yaml`), '--ca-fingerprint', await fed.caFingerprint('cluster2')]);
  t.is(complete.code, 0, complete.stderr);
  if (!renew) t.regex(complete.stderr, /Imported: apps in the mesh call http:\/\/myreviews\.default:9080\//);
  t.deepEqual(complete.writes.cluster2, []);
}

test.before(async () => {
  fed = await startFederationWorld({ seed: 'bookinfo', clusters: [{ name: 'cluster1' }, { name: 'cluster2' }] });
});

test.after.always(async () => {
  await fed?.stop();
});

test.serial('an import request for a local name someone else\'s Service has is refused at once, naming the Service and --name', async (t) => {
  before = { cluster1: userObjects(fed.world, 'cluster1'), cluster2: userObjects(fed.world, 'cluster2') };
  const exported = await fed.run(EXPORT);
  t.is(exported.code, 0, exported.stderr);
  // bookinfo's own reviews Service of cluster1 has the export's name.
  t.truthy(fed.world.cluster('cluster1').get('v1', 'Service', 'default', 'reviews'));
  const refused = await fed.runCounting(['import', '--context', 'cluster1', '-n', 'default', '--from', 'cluster2', '--export', 'cluster2/bookinfo/reviews', '--request-out', file('refused.yaml')]);
  t.is(refused.code, 1);
  t.regex(refused.stderr, /^error: Service default\/reviews already exists in context "cluster1" and is not managed by kubectl-meshfed, so the import cannot take that name; nothing was written\n\s+pass --name <another local name>/);
  t.deepEqual(refused.writes, { cluster1: [], cluster2: [] }, 'nothing was written');
  t.false(existsSync(file('refused.yaml')), 'no request file');

  // A request made with --name: status shows it pending under that name, and unimport NAME cancels it.
  const requested = await fed.run(['import', '--context', 'cluster1', '-n', 'default', '--from', 'cluster2', '--export', 'cluster2/bookinfo/reviews', '--name', 'other', '--request-out', file('other.yaml')]);
  t.is(requested.code, 0, requested.stderr);
  const status = JSON.parse((await fed.run(['status', '--context', 'cluster1', '-o', 'json'])).stdout) as { imports: Array<Record<string, unknown>> };
  t.like(status.imports.find((i) => i.state === 'pending'), { namespace: 'default', localName: 'other', source: 'cluster2/bookinfo/reviews' });
  const cancelled = await fed.run(['unimport', 'other', '--context', 'cluster1', '-n', 'default']);
  t.is(cancelled.code, 0, cancelled.stderr);
  const after = JSON.parse((await fed.run(['status', '--context', 'cluster1', '-o', 'json'])).stdout) as { imports: unknown[] };
  t.deepEqual(after.imports, [], 'the pending request is gone');
});

test.serial('export, then import in three steps through the exchange files; the probe passes', async (t) => {
  t.is((await fed.run(EXPORT)).code, 0);
  await exchange(t, false);
  await probePasses(t, 'after the import');
  const status = JSON.parse((await fed.run(['status', '--context', 'cluster2', '--check-consumers', '-o', 'json'])).stdout);
  t.deepEqual(status.exports[0].consumerUse, { cluster1: 'imports' });
});

test.serial('server rotation on the provider alone; client rotation through the same files (re-keying request)', async (t) => {
  const server = secretText(fed.world, 'cluster2', 'istio-meshfed', 'mf-export-bookinfo-reviews', 'tls.key');
  const rotated = await fed.runCounting(['rotate', '--context', 'cluster2']);
  t.is(rotated.code, 0, rotated.stderr);
  t.deepEqual(rotated.writes.cluster1, []);
  t.not(secretText(fed.world, 'cluster2', 'istio-meshfed', 'mf-export-bookinfo-reviews', 'tls.key'), server);
  await probePasses(t, 'after the server rotation');

  const client = secretText(fed.world, 'cluster1', 'istio-meshfed', 'mf-bind-cluster2-bookinfo-reviews', 'tls.key');
  await exchange(t, true);
  t.not(secretText(fed.world, 'cluster1', 'istio-meshfed', 'mf-bind-cluster2-bookinfo-reviews', 'tls.key'), client);
  await probePasses(t, 'after the client rotation');
});

test.serial('CA rotation through the files: both CAs trusted during the overlap, the probe passes at every step', async (t) => {
  const oldCa = secretText(fed.world, 'cluster2', 'meshfed-ca', 'meshfed-federation-ca', 'ca.crt');
  const start = await fed.runCounting(['rotate', '--context', 'cluster2', '--ca']);
  t.is(start.code, 0, start.stderr);
  t.deepEqual(start.writes.cluster1, []);
  t.regex(start.stderr, /kubectl meshfed rotate --context cluster1 --from cluster2 --request-out request\.yaml, then kubectl meshfed admit --context cluster2 --request request\.yaml --bundle-out bundle\.yaml, then kubectl meshfed rotate --context cluster1 --bundle bundle\.yaml/);
  await probePasses(t, 'after the CA rotation started');

  await exchange(t, true);
  t.is(countCertificates(secretText(fed.world, 'cluster1', 'istio-meshfed', 'mf-bind-cluster2-bookinfo-reviews', 'ca.crt')), 2, 'the bundle brought the next CA beside the current one');
  await probePasses(t, 'during the CA rotation, the consumer renewed under the next CA');

  const finish = await fed.runCounting(['rotate', '--context', 'cluster2', '--ca', '--finish']);
  t.is(finish.code, 0, finish.stderr);
  t.deepEqual(finish.writes.cluster1, []);
  t.not(secretText(fed.world, 'cluster2', 'meshfed-ca', 'meshfed-federation-ca', 'ca.crt'), oldCa);
  await probePasses(t, 'after the CA rotation finished');

  // A bundle signed by the new CA is accepted by the consumer that trusts it beside the old one, and drops the old.
  await exchange(t, true);
  t.is(countCertificates(secretText(fed.world, 'cluster1', 'istio-meshfed', 'mf-bind-cluster2-bookinfo-reviews', 'ca.crt')), 1);
  await probePasses(t, 'after the consumer dropped the old CA');
});

test.serial('unimport without the provider names the exact revoke command; then unexport and uninstall leave nothing of meshfed', async (t) => {
  const unimport = await fed.runCounting(['unimport', '--context', 'cluster1', '-n', 'default', '--name', 'myreviews']);
  t.is(unimport.code, 0, unimport.stderr);
  t.deepEqual(unimport.writes.cluster2, []);
  const command = /kubectl meshfed revoke reviews --context cluster2 -n bookinfo --consumer cluster1/.exec(unimport.stderr);
  t.truthy(command, unimport.stderr);
  const status = await fed.run(['status', '--context', 'cluster2', '--check-consumers']);
  t.regex(status.stdout, /cluster1 \(no longer imports\)/, 'the provider sees an admitted consumer that no longer imports');
  t.regex(status.stderr, /withdraw their admission with kubectl meshfed revoke reviews --context cluster2 -n bookinfo --consumer cluster1/);
  const revoke = await fed.run(command![0].split(' ').slice(2));
  t.is(revoke.code, 0, revoke.stderr);
  t.is((await fed.run(['unexport', '--context', 'cluster2', '-n', 'bookinfo', '--name', 'reviews'])).code, 0);
  for (const cluster of ['cluster1', 'cluster2']) {
    const removed = await fed.run(['uninstall', '--context', cluster]);
    t.is(removed.code, 0, removed.stderr);
    t.deepEqual(managedObjectNames(fed.world, cluster), [], `${cluster}: nothing of meshfed is left`);
    for (const ns of ['istio-meshfed', 'meshfed-ca']) t.falsy(fed.world.cluster(cluster).get('v1', 'Namespace', undefined, ns), `${cluster}: namespace ${ns} is gone`);
    const after = userObjects(fed.world, cluster);
    for (const [key, version] of before[cluster]!) t.is(after.get(key), version, `${cluster}: ${key} untouched`);
  }
});
