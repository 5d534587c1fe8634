/**
 * `verify` on shared-root HTTP federations of the bookinfo seed: with one root CA and distinct trust domains
 * (the provider listing the consumer's as an alias) everything passes end to end; with a root CA per mesh and the
 * same trust domain everywhere (set after the import: meshfed refuses to admit such a pair), verify explains both
 * problems — different roots (MF0405, and the probe's failed handshake) and indistinguishable principals (MF0406,
 * MF0315).
 */
import test from 'ava';
import YAML from 'yaml';
import { docsBase } from '../../scripts/esbuild-options.mjs';
import { startFederationWorld, type FederationWorld } from '../support/federation.js';
import { assertFails, failing, failingCodes, probePods, verifyJson } from './helpers.js';

let shared: FederationWorld;
let distinct: FederationWorld;
const VERIFY = ['--context', 'cluster1', '-n', 'default', '--name', 'myreviews', '--from', 'cluster2', '--path', '/reviews/0'];
const PROBE = 'http://myreviews.default:9080/reviews/0';

/** Changes the mesh config (ConfigMap istio-system/istio) of a cluster, as an operator would. */
function editMesh(fed: FederationWorld, cluster: string, changes: Record<string, unknown>): void {
  const c = fed.world.cluster(cluster);
  const mesh = YAML.parse((c.get('v1', 'ConfigMap', 'istio-system', 'istio')!.data as { mesh: string }).mesh) as Record<string, unknown>;
  c.apply({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'istio', namespace: 'istio-system' }, data: { mesh: YAML.stringify({ ...mesh, ...changes }) } }, 'test');
}

/** Exports and imports; returns what the import printed on stderr. */
async function federate(fed: FederationWorld): Promise<string> {
  let stderr = '';
  for (const args of [
    ['export', '--context', 'cluster2', '-n', 'bookinfo', '--service', 'myreviews', '--port', 'http', '--subset', 'version=v2', '--name', 'reviews', '--mode', 'shared-root'],
    // The sleep client calls it: shared-root admits it by its service account.
    ['import', '--context', 'cluster1', '-n', 'default', '--from', 'cluster2', '--export', 'bookinfo/reviews', '--name', 'myreviews', '--service-account', 'sleep'],
  ]) {
    const result = await fed.run(args);
    if (result.code !== 0) throw new Error(`${args.join(' ')}: ${result.stderr}`);
    stderr = result.stderr;
  }
  return stderr;
}

let importOutput: { shared: string; distinct: string };

test.before(async () => {
  [shared, distinct] = await Promise.all([
    startFederationWorld({ seed: 'bookinfo', clusters: [{ name: 'cluster1' }, { name: 'cluster2' }] }),
    startFederationWorld({ seed: 'bookinfo', clusters: [{ name: 'cluster1' }, { name: 'cluster2' }], root: 'distinct' }),
  ]);
  // The provider mesh accepts the consumer's trust domain, as meshfed's export warns it must.
  editMesh(shared, 'cluster2', { trustDomainAliases: ['cluster1.local'] });
  await Promise.all([shared.world.waitIdle(), distinct.world.waitIdle()]);
  const [sharedImport, distinctImport] = await Promise.all([federate(shared), federate(distinct)]);
  importOutput = { shared: sharedImport, distinct: distinctImport };
  // Then both meshes go back to Istio's default trust domain, as many installations have it: meshfed refuses to admit
  // such a pair, so only verify can find it.
  editMesh(distinct, 'cluster1', { trustDomain: 'cluster.local' });
  editMesh(distinct, 'cluster2', { trustDomain: 'cluster.local' });
  await distinct.world.waitIdle();
});

test.after.always(async () => {
  await Promise.all([shared?.stop(), distinct?.stop()]);
});

test('shared root, distinct trust domains: every check passes and the probe reaches reviews v2 end to end', async (t) => {
  const run = await verifyJson(shared, VERIFY);
  t.is(run.code, 0, JSON.stringify(failing(run)));
  t.deepEqual(failingCodes(run), []);
  for (const code of ['MF0405', 'MF0406', 'MF0407', 'MF0401', 'MF0402']) {
    t.true(run.report.checks.some((c) => c.code === code && c.status === 'ok'), `${code} passes`);
  }
  t.false(run.report.checks.some((c) => c.code === 'MF0209'), 'boundary-only checks are not listed in shared-root mode');
  t.like(run.report.probe, { httpStatus: 200 });
  t.deepEqual(probePods(shared, 'cluster1'), []);
});

test('distinct roots and one trust domain: MF0405 and MF0406 (errors), the consumer on cluster.local (MF0315), and the probe\'s handshake fails', async (t) => {
  const run = await verifyJson(distinct, VERIFY);
  t.is(run.code, 3);
  // The consumer was admitted under its earlier trust domain: MF0402 says the mesh changed since.
  t.deepEqual(failingCodes(run), ['MF0315', 'MF0402', 'MF0405', 'MF0406', 'MF0510']);
  assertFails(t, run, [['MF0315', 'consumer trust domain'], ['MF0405', 'mesh root CAs'], ['MF0406', 'trust domains'], ['MF0510', PROBE]]);
  t.is(run.report.checks.find((c) => c.code === 'MF0406')!.level, 'error');
  t.regex(run.report.checks.find((c) => c.code === 'MF0406')!.message!, /both meshes use trust domain "cluster\.local"/);
  t.deepEqual(probePods(distinct, 'cluster1'), []);
  // The built executable (what users run) carries the versioned docs links; from source they stay repo-relative.
  const text = await distinct.run(['verify', ...VERIFY], { subprocess: true });
  t.is(text.code, 3);
  t.regex(text.stdout, /^× in shared-root mode, the two meshes share a root CA \[MF0405\]\n {4}the root CAs differ: consumer [0-9A-F:]+, provider [0-9A-F:]+\n {4}hint: .*\n {4}see (\S+)$/m);
  // The link is the docs of this version (a tag of the repository), which exist after a krew install.
  t.regex(text.stdout, new RegExp(`\n {4}see ${docsBase.replace(/[.?+/]/g, '\\$&')}docs/checks\\.md#mf0405\n`));
  t.regex(text.stdout, /^× in shared-root mode, the two meshes have distinct trust domains \[MF0406\]$/m);
  t.regex(text.stdout, /\n× verify failed: 5 errors \(\d+ passed.*\)\n$/);
  t.regex(text.stderr, /error: 5 checks failed for import default\/myreviews/);
});

test('import says at once when shared-root meshes do not share a root CA (and is silent when they do)', (t) => {
  t.regex(importOutput.distinct, /Warning: shared-root needs one root CA, but this mesh's root \([0-9A-F:]+…\) is not that of cluster cluster2 \([0-9A-F:]+…\): calls will fail the mTLS handshake; .*--mode boundary/);
  t.false(importOutput.shared.includes('root CA'), importOutput.shared);
});
