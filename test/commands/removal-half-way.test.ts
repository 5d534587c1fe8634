// A removal that stops half-way (its API server keeps failing on the record's delete, the last write): the record
// stays, marked as being removed. `status` says so and names the command that finishes it, an import or export of the
// same name is refused until then, commands planning shared objects leave it out, and running the removal again
// finishes it.
import test, { type ExecutionContext } from 'ava';
import { names } from '../../src/federation/naming.js';
import { startFederationWorld, type FederationWorld } from '../support/federation.js';

const CLUSTERS = [{ name: 'production' }, { name: 'operations' }, { name: 'staging' }];
const exportOf = (name: string) => ['export', '--name', name, '--context', 'production', '-n', 'db', '--service', 'postgres', '--port', '5432'];
const importOf = (name: string) => ['import', '--context', 'operations', '-n', 'vault', '--from', 'production', '--export', `db/${name}`];

/** Runs a command that must succeed. */
const succeeds = (t: ExecutionContext, fed: FederationWorld) => async (args: string[]) => {
  const run = await fed.run(args);
  t.is(run.code, 0, `kubectl meshfed ${args.join(' ')}\n${run.stdout}${run.stderr}`);
  return run;
};

test('an unimport stopped before its record is deleted: status shows it being removed, a new import leaves it out, a re-run finishes', async (t) => {
  const fed = await startFederationWorld({ seed: 'federation', clusters: CLUSTERS });
  try {
    const ok = succeeds(t, fed);
    for (const args of [exportOf('pg1'), exportOf('pg2'), importOf('pg1')]) await ok(args);
    const operations = fed.world.cluster('operations');
    operations.faults.add({ method: 'DELETE', path: `/api/v1/namespaces/istio-meshfed/configmaps/${names.importRecord('vault', 'pg1')}`, status: 503, times: 1000 });
    const stopped = await fed.run(['unimport', 'pg1', '--context', 'operations', '-n', 'vault']);
    operations.faults.clear();
    t.not(stopped.code, 0, 'the unimport fails');
    t.regex(stopped.stderr, /delete configmaps "mf-import-vault-pg1" .* unable to handle the request \(5 attempts\)/);

    const status = await ok(['status', '--context', 'operations', '-o', 'json']);
    const imports = (JSON.parse(status.stdout) as { imports: Array<{ localName: string; state: string }> }).imports;
    t.deepEqual(imports.map((i) => [i.localName, i.state]), [['pg1', 'removing']]);
    const table = await ok(['status', '--context', 'operations']);
    t.regex(table.stderr, /imports being removed .*finish with kubectl meshfed unimport pg1 --context operations -n vault/);

    const again = await fed.run(importOf('pg1'));
    t.not(again.code, 0);
    t.regex(again.stderr, /import vault\/pg1 is being removed .*kubectl meshfed unimport pg1 -n vault/);

    // An import of another export meanwhile routes only itself: the removed import's route does not come back.
    await ok(importOf('pg2'));
    const routes = () => (operations.get('networking.istio.io/v1beta1', 'DestinationRule', 'istio-meshfed', names.egressRoutes())?.spec as { subsets: Array<{ name: string }> }).subsets.map((s) => s.name);
    t.deepEqual(routes(), [names.bindingSubset('production', 'db', 'pg2')]);

    await ok(['unimport', 'pg1', '--context', 'operations', '-n', 'vault']);
    const after = JSON.parse((await ok(['status', '--context', 'operations', '-o', 'json'])).stdout) as { imports: Array<{ localName: string; state: string }> };
    t.deepEqual(after.imports.map((i) => [i.localName, i.state]), [['pg2', 'active']]);
    t.deepEqual(routes(), [names.bindingSubset('production', 'db', 'pg2')]);
    await ok(['verify', 'pg2', '--context', 'operations', '-n', 'vault', '--no-probe']);
  } finally {
    await fed.stop();
  }
});

test('an unexport stopped before its record is deleted: status shows it being removed, an export of the name is refused, a re-run finishes', async (t) => {
  const fed = await startFederationWorld({ seed: 'federation', clusters: CLUSTERS });
  try {
    const ok = succeeds(t, fed);
    await ok(exportOf('pg1'));
    const production = fed.world.cluster('production');
    production.faults.add({ method: 'DELETE', path: `/api/v1/namespaces/istio-meshfed/configmaps/${names.export('db', 'pg1')}`, status: 503, times: 1000 });
    const stopped = await fed.run(['unexport', 'pg1', '--context', 'production', '-n', 'db']);
    production.faults.clear();
    t.not(stopped.code, 0, 'the unexport fails');

    const status = JSON.parse((await ok(['status', '--context', 'production', '-o', 'json'])).stdout) as { exports: Array<{ name: string; removing?: boolean }> };
    t.deepEqual(status.exports.map((e) => [e.name, e.removing]), [['pg1', true]]);
    const table = await ok(['status', '--context', 'production']);
    t.regex(table.stdout, /db\/pg1 \(being removed\)/);
    t.regex(table.stderr, /exports being removed .*finish with kubectl meshfed unexport pg1 --context production -n db/);

    const again = await fed.run(exportOf('pg1'));
    t.not(again.code, 0);
    t.regex(again.stderr, /export db\/pg1 is being removed .*kubectl meshfed unexport pg1 -n db/);

    await ok(['unexport', 'pg1', '--context', 'production', '-n', 'db']);
    const after = JSON.parse((await ok(['status', '--context', 'production', '-o', 'json'])).stdout) as { exports: unknown[] };
    t.deepEqual(after.exports, []);
    await ok(exportOf('pg1'));
  } finally {
    await fed.stop();
  }
});
