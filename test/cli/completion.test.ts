/**
 * Shell completion (`--get-yargs-completions`, as the bash and zsh scripts and bin/kubectl_complete-meshfed call it):
 * candidates filtered by the typed prefix, long flags only (no `--n`, `--o`, `--y`), and names read from the
 * cluster — namespaces, Services, exports and imports — bounded and silent when the cluster does not answer.
 */
import test from 'ava';
import { runCli, writeKubeconfig } from '../support/cli.js';
import { startFederationWorld, type FederationWorld } from '../support/federation.js';

let fed: FederationWorld;

test.before(async () => {
  fed = await startFederationWorld({ seed: 'bookinfo', clusters: [{ name: 'cluster1' }, { name: 'cluster2' }] });
  for (const args of [
    ['export', '--context', 'cluster2', '-n', 'bookinfo', '--service', 'myreviews', '--port', '9080', '--name', 'reviews'],
    ['import', '--context', 'cluster1', '-n', 'default', '--from', 'cluster2', '--export', 'bookinfo/reviews', '--name', 'myreviews'],
  ]) {
    const result = await fed.run(args);
    if (result.code !== 0) throw new Error(result.stderr);
  }
});

test.after.always(async () => {
  await fed?.stop();
});

/** The candidates for `kubectl meshfed <words>` (the last word is the one being typed). */
async function complete(words: string[], kubeconfig = fed.kubeconfig): Promise<string[]> {
  const result = await runCli(['--get-yargs-completions', 'kubectl-meshfed', ...words], { env: { KUBECONFIG: kubeconfig } });
  if (result.code !== 0 || result.stderr) throw new Error(`completion failed: ${result.stderr}`);
  return result.stdout.split('\n').filter(Boolean);
}

test('commands and flags are filtered by the prefix; flags are long forms only', async (t) => {
  t.deepEqual(await complete(['un']), ['unexport', 'unimport', 'uninstall']);
  t.deepEqual(await complete(['unexport', '--n']), ['--name', '--namespace']);
  const flags = await complete(['unimport', '-']);
  t.true(flags.includes('--export') && flags.includes('--kubeconfig'), flags.join(' '));
  t.false(flags.some((flag) => /^--?[a-z]$/.test(flag) || /[A-Z]/.test(flag)), flags.join(' '));
  // A flag of another command is not offered.
  t.false(flags.includes('--gateway-selector'), flags.join(' '));
});

test('-o values, fixed choices and the shell of completion', async (t) => {
  t.deepEqual(await complete(['status', '-o', '']), ['json', 'yaml']);
  t.deepEqual(await complete(['contexts', '--output', 'w']), ['wide']);
  t.deepEqual(await complete(['export', '--mode', '']), ['boundary', 'shared-root']);
  t.deepEqual(await complete(['completion', '']), ['bash', 'zsh']);
});

test('contexts, namespaces and Services come from the kubeconfig and the cluster', async (t) => {
  t.deepEqual(await complete(['status', '--context', 'cluster']), ['cluster1', 'cluster2']);
  t.true((await complete(['export', '--context', 'cluster2', '-n', ''])).includes('bookinfo'));
  t.deepEqual(await complete(['export', '--context', 'cluster2', '-n', 'bookinfo', '--service', 'myr']), ['myreviews']);
});

test('export and import names: NAME (and --name) of unexport, revoke, unimport and verify, and --export of import', async (t) => {
  t.deepEqual(await complete(['unexport', '--context', 'cluster2', '-n', 'bookinfo', '']), ['reviews']);
  t.deepEqual(await complete(['revoke', '--context', 'cluster2', '-n', 'bookinfo', 'r']), ['reviews']);
  t.deepEqual(await complete(['unimport', '--context', 'cluster1', '-n', 'default', '']), ['myreviews']);
  t.deepEqual(await complete(['verify', '-n', 'default', '--context', 'cluster1', 'my']), ['myreviews']);
  t.deepEqual(await complete(['verify', '--context', 'cluster1', '-n', 'other', '']), []);
  t.deepEqual(await complete(['import', '--context', 'cluster1', '--from', 'cluster2', '--export', '']), ['bookinfo/reviews']);
  // The same names after --name (and verify's --import, its alias).
  t.deepEqual(await complete(['unexport', '--context', 'cluster2', '-n', 'bookinfo', '--name', '']), ['reviews']);
  t.deepEqual(await complete(['unimport', '--context', 'cluster1', '-n', 'default', '--name', 'my']), ['myreviews']);
  t.deepEqual(await complete(['verify', '--context', 'cluster1', '-n', 'default', '--name', '']), ['myreviews']);
  t.deepEqual(await complete(['verify', '--context', 'cluster1', '-n', 'default', '--import', '']), ['myreviews']);
});

test('a cluster that does not answer gives no candidates and no error', async (t) => {
  const unreachable = writeKubeconfig([{ name: 'gone', server: 'https://127.0.0.1:1' }], 'gone');
  t.deepEqual(await complete(['unexport', '-n', 'db', ''], unreachable), []);
  t.deepEqual(await complete(['unexport', '-n', ''], '/nonexistent/kubeconfig'), []);
});
