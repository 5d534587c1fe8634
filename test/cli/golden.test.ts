/**
 * The human output of every command, as golden files (test/golden/cli/<invocation>.txt: the command line, the exit
 * code, stdout and stderr): each command's help, the main output of each command in a federation of two emulated
 * clusters (export, status, import, verify, revoke, unimport, unexport, contexts; the three-step route through files
 * with admit; rotate, rbac and uninstall), and the key usage and input errors. Run in this process (runCli). MESHFED_UPDATE_GOLDEN=1 rewrites the files.
 */
import test from 'ava';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { commandName, commands } from '../../src/commands/index.js';
import { runCli } from '../support/cli.js';
import { startFederationWorld, type FederationWorld } from '../support/federation.js';
import { assertGolden, goldenName } from '../support/golden.js';

/** Runs a command line without a cluster and compares it with its golden file. */
function golden(args: string[]) {
  test(`golden: kubectl meshfed ${args.join(' ')}`, async (t) => {
    assertGolden(t, args, await runCli(args, { env: { KUBECONFIG: '/nonexistent/kubeconfig' } }));
  });
}

golden(['--help']);
for (const entry of commands) golden([commandName(entry), '--help']);
golden([]);
golden(['contxts']);
golden(['export', '--servce', 'reviews']);
golden(['unimport', '--gateway-selector', 'istio=egress']);
golden(['export', '--mode', 'shared']);
golden(['status', '-v=loud']);
golden(['status', '--context', 'a', '--context', 'b']);
golden(['unexport', 'reviews', '--name', 'ratings']);
golden(['completion', 'fish']);

let fed: FederationWorld;

test.before(async () => {
  fed = await startFederationWorld({ seed: 'bookinfo', clusters: [{ name: 'cluster1' }, { name: 'cluster2' }] });
});

test.after.always(async () => {
  await fed?.stop();
});

/**
 * The federation's life as a user lives it, in order (each step needs the ones before): every step's output is
 * compared with its golden file.
 */
const FLOW: string[][] = [
  ['contexts'],
  ['unexport', '--context', 'cluster2', '-n', 'bookinfo'],
  ['export', '--context', 'cluster2', '-n', 'bookinfo', '--service', 'myreviews', '--port', 'http', '--subset', 'version=v2', '--name', 'reviews', '--dry-run'],
  ['export', '--context', 'cluster2', '-n', 'bookinfo', '--service', 'myreviews', '--port', 'http', '--subset', 'version=v2', '--name', 'reviews'],
  ['export', '--context', 'cluster2', '-n', 'bookinfo', '--service', 'ratings', '--port', '9080', '--name', 'reviews'],
  ['import', '--context', 'cluster1', '-n', 'default', '--from', 'cluster2', '--export', 'bookinfo/nosuch'],
  ['import', '--context', 'cluster1', '-n', 'default', '--from', 'cluster2', '--export', 'bookinfo/reviews', '--name', 'myreviews'],
  ['status', '--context', 'cluster2'],
  ['status', '--context', 'cluster1'],
  ['verify', 'myreviews', '--context', 'cluster1', '-n', 'default', '--from', 'cluster2', '--path', '/reviews/0'],
  ['verify', 'nosuch', '--context', 'cluster1', '-n', 'default'],
  ['unexport', 'reviews', '--context', 'cluster2', '-n', 'bookinfo'],
  ['unimport', 'myreviews', '--context', 'cluster1', '-n', 'default'],
  ['revoke', 'reviews', '--context', 'cluster2', '-n', 'bookinfo', '--consumer', 'cluster1'],
  ['unexport', 'reviews', '--context', 'cluster2', '-n', 'bookinfo'],
  ['status', '--context', 'cluster2'],
];

test.serial('golden: a federation from export to unexport, one file per step', async (t) => {
  for (const [index, args] of FLOW.entries()) {
    const result = await fed.run(args);
    // Numbered: the same command line may come twice (status before and after), and the order is the story.
    assertGolden(t, args, result, `flow-${String(index + 1).padStart(2, '0')}_${args.join('_').replace(/[^A-Za-z0-9.=_-]/g, '+')}.txt`);
  }
});

let filesFed: FederationWorld;

test.after.always(async () => {
  await filesFed?.stop();
});

/**
 * The three-step route (no shared kubeconfig: a request file, admit, a bundle file) and upkeep (rotate, rbac,
 * uninstall), one file per step. The files go to a temporary folder (its path is a placeholder in the golden files).
 */
test.serial('golden: the three-step route, rotation, rbac and uninstall, one file per step', async (t) => {
  filesFed = await startFederationWorld({ seed: 'bookinfo', clusters: [{ name: 'cluster1' }, { name: 'cluster2' }] });
  const dir = mkdtempSync(join(tmpdir(), 'meshfed-golden-'));
  const request = join(dir, 'request.yaml');
  const bundle = join(dir, 'bundle.yaml');
  const exported = await filesFed.run(['export', '--context', 'cluster2', '-n', 'bookinfo', '--service', 'myreviews', '--port', '9080', '--name', 'reviews']);
  t.is(exported.code, 0, exported.stderr);
  const fingerprint = await filesFed.caFingerprint('cluster2');
  const steps: string[][] = [
    ['import', '--context', 'cluster1', '-n', 'default', '--from', 'cluster2', '--export', 'bookinfo/reviews', '--name', 'myreviews', '--request-out', request],
    ['admit', '--context', 'cluster2', '--request', request, '--bundle-out', bundle],
    ['import', '--context', 'cluster1', '-n', 'default', '--bundle', bundle],
    ['import', '--context', 'cluster1', '-n', 'default', '--bundle', bundle, '--ca-fingerprint', fingerprint],
    ['rotate', '--context', 'cluster2'],
    ['rotate', '--context', 'cluster1', '--from', 'cluster2'],
    ['rbac', '--role', 'viewer', '--user', 'jane@example.com', '-n', 'default'],
    ['uninstall', '--context', 'cluster1'],
  ];
  for (const [index, args] of steps.entries()) {
    const result = await filesFed.run(args);
    // Named without the run's values: the file's name instead of its path, the fingerprint's algorithm only.
    const named = args.map((word) => word.startsWith(dir) ? basename(word) : word.startsWith('SHA256:') ? 'SHA256' : word);
    const name = `files-${String(index + 1).padStart(2, '0')}_${goldenName(named)}`;
    assertGolden(t, args, result, name);
  }
});
