/**
 * `--as` on `import` and `unimport` impersonates, as on every other command and as kubectl's; the import's local
 * Service is named with `--name`. ops may only impersonate users (nothing else); bob holds the documented consumer role
 * on cluster1 and the provider role on cluster2 (where `import --from` admits cluster1). A user who still writes
 * `import … --as NAME` for the local name is refused with a hint to use `--name`, and nothing is written.
 */
import test, { type ExecutionContext } from 'ava';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli, writeKubeconfig, type CliResult } from '../support/cli.js';
import type { RequestRecord } from '../support/emulator/index.js';
import { startFederationWorld, type FederationWorld } from '../support/federation.js';
import { bindRole, grant } from '../support/rbac.js';

const EXPORT = ['export', '--context', 'cluster2', '-n', 'bookinfo', '--service', 'myreviews', '--port', 'http', '--name', 'reviews'];
const IMPORT = ['import', '--context', 'cluster1', '-n', 'default', '--from', 'cluster2', '--export', 'bookinfo/reviews'];

let fed: FederationWorld;
/** Both contexts, as ops. */
let kubeconfig: string;

test.before(async () => {
  fed = await startFederationWorld({ seed: 'bookinfo', clusters: [{ name: 'cluster1' }, { name: 'cluster2' }] });
  const c1 = fed.world.cluster('cluster1');
  const c2 = fed.world.cluster('cluster2');
  for (const cluster of [c1, c2]) {
    cluster.addToken('ops-token', 'ops');
    grant(cluster, 'impersonator', { user: 'ops' }, [{ verbs: ['impersonate'], apiGroups: [''], resources: ['users'] }]);
  }
  await bindRole(fed.world, c1, 'consumer', 'bob', { namespaces: ['default'] });
  await bindRole(fed.world, c2, 'provider', 'bob', { namespaces: ['bookinfo'] });
  const entry = (cluster: typeof c1) => ({ name: cluster.name, server: cluster.server, caPem: cluster.caPem, token: 'ops-token', user: `ops-${cluster.name}` });
  kubeconfig = writeKubeconfig([entry(c1), entry(c2)], 'cluster1', mkdtempSync(join(tmpdir(), 'meshfed-import-as-')));
  const exported = await fed.run(EXPORT);
  if (exported.code !== 0) throw new Error(`export failed: ${exported.stderr}`);
});

test.after.always(async () => {
  await fed?.stop();
});

/** Runs a command as ops (in this process); also returns every request meshfed sent to either cluster. */
async function asOps(args: string[]): Promise<CliResult & { sent: RequestRecord[]; writes: RequestRecord[] }> {
  const marks = new Map(fed.world.clusters.map((c) => [c.name, c.requests.length]));
  const result = await runCli([...args, '--kubeconfig', kubeconfig]);
  const sent = fed.world.clusters.flatMap((c) => c.requests.slice(marks.get(c.name)).filter((r) => r.userAgent?.startsWith('kubectl-meshfed')));
  const writes = sent.filter((r) => ['POST', 'PUT', 'PATCH', 'DELETE'].includes(r.method) && !r.path.endsWith('/selfsubjectaccessreviews') && r.query.dryRun === undefined);
  return { ...result, sent, writes };
}

function actedAs(t: ExecutionContext, run: { sent: RequestRecord[] }, user: string): void {
  t.true(run.sent.length > 0);
  for (const record of run.sent) {
    t.is(record.headers['impersonate-user'], user, `${record.method} ${record.path} asks to act as ${user}`);
    t.is(record.user, user, `${record.method} ${record.path} was judged as ${user}`);
  }
}

function localServices(): string[] {
  return fed.world.cluster('cluster1').list('v1', 'Service', 'default').map((s) => s.metadata.name);
}

test.serial('import --as USER acts as USER on both clusters, as kubectl --as does; --name names the local Service', async (t) => {
  const alone = await asOps([...IMPORT, '--name', 'myreviews']);
  t.is(alone.code, 1, 'ops may only impersonate: on its own it cannot read the cluster');
  t.regex(alone.stderr, /user "ops-cluster1" \(context "cluster1"\) is forbidden to/);
  t.deepEqual(alone.writes, []);

  const imported = await asOps([...IMPORT, '--name', 'myreviews', '--as', 'bob']);
  t.is(imported.code, 0, imported.stderr);
  actedAs(t, imported, 'bob');
  t.true(imported.writes.some((r) => r.path.includes('/namespaces/default/services/myreviews')), 'the local Service was written');
  t.true(localServices().includes('myreviews'));
  t.false(localServices().includes('bob'), '--as did not name anything');
});

test.serial('import … --as NAME meant as the local name: refused as that user, the hint says --name, nothing is written', async (t) => {
  const run = await asOps([...IMPORT, '--as', 'myreviews2']);
  t.is(run.code, 1);
  actedAs(t, run, 'myreviews2');
  t.regex(run.stderr, /user "ops-cluster1" acting as "myreviews2" \(context "cluster1"\) is forbidden to/);
  t.regex(run.stderr, /--as impersonates the user "myreviews2", as kubectl.s does: if you meant myreviews2 as the local Service.s name, use --name myreviews2; otherwise ask a cluster admin/);
  t.deepEqual(run.writes, []);
  t.false(localServices().includes('myreviews2'));
  // A user name that cannot be a Service name gets no such hint.
  const email = await asOps([...IMPORT, '--as', 'jane@example.com']);
  t.is(email.code, 1);
  t.regex(email.stderr, /acting as "jane@example.com"/);
  t.notRegex(email.stderr, /--name/);
});

test.serial('unimport --as NAME without NAME says --as impersonates; unimport NAME --as USER removes the import as USER', async (t) => {
  const old = await asOps(['unimport', '--context', 'cluster1', '-n', 'default', '--as', 'myreviews']);
  t.is(old.code, 2);
  t.regex(old.stderr, /missing value for NAME: --as impersonates a user \(as in kubectl\), it does not name the import/);
  t.regex(old.stderr, /name the import to remove as NAME or with --name \(e\.g\. kubectl meshfed unimport myreviews --context cluster1 -n default\)/);
  t.deepEqual(old.sent, [], 'refused before any request');

  const removed = await asOps(['unimport', 'myreviews', '--context', 'cluster1', '-n', 'default', '--as', 'bob']);
  t.is(removed.code, 0, removed.stderr);
  actedAs(t, removed, 'bob');
  t.true(removed.writes.some((r) => r.method === 'DELETE'));
  t.false(localServices().includes('myreviews'));
});
