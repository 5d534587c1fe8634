/**
 * `verify` right after an import, as on a real mesh where istiod pushes new configuration some time after it is
 * written: the data-path model here applies Istio objects only once istiod has pushed them (`pushes`), and the test
 * makes that push happen on an event of the run: when `verify --wait` pauses between two probes. Without `--wait` the
 * probe meets the old configuration and fails (and says to use --wait); with `--wait` it probes again after its pause
 * and passes. `verify` finds the provider's context from the import's record, without `--from`.
 */
import test from 'ava';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import YAML from 'yaml';
import { runCli } from '../support/cli.js';
import { startFederationWorld, type FederationWorld } from '../support/federation.js';
import { ConfigPushes } from '../support/mesh/index.js';

const pushes = new ConfigPushes();
let fed: FederationWorld;

test.before(async () => {
  fed = await startFederationWorld({ seed: 'bookinfo', clusters: [{ name: 'cluster1' }, { name: 'cluster2' }], mesh: { pushes } });
  // The seed's own Istio configuration is in effect; what meshfed writes from now on is not, until the next push.
  pushes.push(fed.world.clusters);
  const exported = await fed.run(['export', '--context', 'cluster2', '-n', 'bookinfo', '--service', 'myreviews', '--port', '9080', '--subset', 'version=v2', '--name', 'reviews']);
  if (exported.code !== 0) throw new Error(exported.stderr);
  const imported = await fed.run(['import', '--context', 'cluster1', '-n', 'default', '--from', 'cluster2', '--export', 'bookinfo/reviews', '--name', 'myreviews']);
  if (imported.code !== 0) throw new Error(imported.stderr);
});

test.after.always(async () => {
  await fed?.stop();
});

test.serial('right after the import, verify without --wait probes once: the configuration is not pushed yet, the probe fails and the hint names --wait', async (t) => {
  const result = await fed.run(['verify', '--context', 'cluster1', '-n', 'default', '--name', 'myreviews', '--path', '/reviews/0']);
  t.is(result.code, 3, `${result.stdout}\n${result.stderr}`);
  // No --from: the provider was found from the import's record, and its checks ran.
  t.regex(result.stderr, /Provider: context cluster2 \(federation cluster cluster2, named by the import's record\)/);
  t.regex(result.stdout, /provider \(context cluster2\)/);
  t.regex(result.stdout, /√ the provider gateway has an external address .*\[MF0206\]/);
  // The call fails at some hop (which one depends on what was not pushed yet): an error in the probe section.
  t.regex(result.stdout.slice(result.stdout.indexOf('probe (http://myreviews.default:9080/reviews/0)')), /\n× /);
  t.regex(result.stderr, /kubectl meshfed verify myreviews --context cluster1 -n default --wait 60s probes again until it passes/);
});

test.serial('verify --wait probes again, with pauses, until the pushed configuration lets the call through', async (t) => {
  // A fresh import, not pushed when the first probe runs; istiod pushes while verify pauses after it.
  const imported = await fed.run(['import', '--context', 'cluster1', '-n', 'default', '--from', 'cluster2', '--export', 'bookinfo/reviews', '--name', 'myreviews2']);
  t.is(imported.code, 0, imported.stderr);
  const pushesBefore = pushes.count;
  const pauses: number[] = [];
  const pushWhilePaused = async (ms: number) => {
    pauses.push(ms);
    pushes.push(fed.world.clusters);
  };
  const result = await fed.run(['verify', '--context', 'cluster1', '-n', 'default', '--name', 'myreviews2', '--path', '/reviews/0', '--wait', '100s'], { session: { pause: pushWhilePaused } });
  t.is(result.code, 0, `${result.stdout}\n${result.stderr}`);
  t.deepEqual(pauses, [1000], 'one pause, after the first probe failed; the second probe, after the push, passed');
  t.is(pushes.count, pushesBefore + 1);
  t.regex(result.stderr, /probe 1 failed \(MF05\d\d: .*\); probing again in 1s \(--wait 100s\)/);
  t.notRegex(result.stderr, /probe 2 failed/);
  t.regex(result.stdout, /√ the probe calls the imported service through the federation \(http:\/\/myreviews2\.default:9080\/reviews\/0: HTTP 200/);
  t.regex(result.stdout, /verify passed/);
});

test.serial('without --from and without a context of the provider cluster in the kubeconfig, provider checks are skipped naming that cluster', async (t) => {
  const kubeconfig = YAML.parse(readFileSync(fed.kubeconfig, 'utf8')) as { contexts: Array<{ name: string }>; 'current-context'?: string };
  kubeconfig.contexts = kubeconfig.contexts.filter((c) => c.name === 'cluster1');
  kubeconfig['current-context'] = 'cluster1';
  const path = join(mkdtempSync(join(tmpdir(), 'meshfed-verify-')), 'kubeconfig');
  writeFileSync(path, YAML.stringify(kubeconfig));
  const result = await runCli(['verify', '--context', 'cluster1', '-n', 'default', '--name', 'myreviews', '--no-probe', '--kubeconfig', path]);
  t.is(result.code, 0, `${result.stdout}\n${result.stderr}`);
  t.regex(result.stdout, /no context of the kubeconfig is the provider cluster cluster2: pass --from <the context of cluster2> to check the provider side/);
});

test.serial('hints name the real consumers and contexts: unexport lists a revoke command per admitted consumer', async (t) => {
  const refused = await fed.run(['unexport', '--context', 'cluster2', '-n', 'bookinfo', '--name', 'reviews']);
  t.is(refused.code, 1);
  t.regex(refused.stderr, /revoke them first \(kubectl meshfed revoke reviews --context cluster2 -n bookinfo --consumer cluster1\), or pass --force/);
  t.notRegex(refused.stderr, /<id>/);
});
