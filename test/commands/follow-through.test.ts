/**
 * What a user does right after a command: paste the hint it printed, run a removal a second time, take back an
 * import request that will never be answered. production exports postgres; operations imports it; staging asks
 * for exports that do not exist and cancels the requests.
 */
import test from 'ava';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startFederationWorld, type FederationWorld } from '../support/federation.js';

let fed: FederationWorld;
const dir = mkdtempSync(join(tmpdir(), 'meshfed-follow-'));

test.before(async () => {
  fed = await startFederationWorld({
    seed: 'federation',
    clusters: [{ name: 'operations' }, { name: 'staging' }, { name: 'production' }],
  });
});

test.after.always(async () => {
  await fed?.stop();
});

test.serial('the import command export prints as its next step runs once the placeholders are filled in', async (t) => {
  const exported = await fed.run(['export', '--context', 'production', '-n', 'db', '--service', 'postgres', '--port', '5432']);
  t.is(exported.code, 0, exported.stderr);
  const next = /Next: in the consumer cluster, (kubectl meshfed import .*)$/m.exec(exported.stderr)?.[1];
  t.is(next, 'kubectl meshfed import --context <consumer> -n <namespace> --from production --export db/postgres');
  const args = next!.replace('<consumer>', 'operations').replace('<namespace>', 'vault').split(' ').slice(2);
  const imported = await fed.run(args);
  t.is(imported.code, 0, imported.stderr);
  t.regex(imported.stderr, /connect to postgres\.vault:5432/);
});

test.serial('revoke run twice succeeds the second time and writes nothing; revoking from an export that does not exist fails', async (t) => {
  const first = await fed.run(['revoke', '--context', 'production', '-n', 'db', '--name', 'postgres', '--consumer', 'operations']);
  t.is(first.code, 0, first.stderr);
  t.regex(first.stderr, /operations can no longer reach db\/postgres/);
  const second = await fed.runCounting(['revoke', '--context', 'production', '-n', 'db', '--name', 'postgres', '--consumer', 'operations']);
  t.is(second.code, 0, second.stderr);
  t.regex(second.stderr, /operations is not admitted to db\/postgres; nothing to do \(admitted: none\)/);
  t.deepEqual(second.writes.production, []);
  const missing = await fed.run(['revoke', '--context', 'production', '-n', 'db', '--name', 'nothere', '--consumer', 'operations']);
  t.is(missing.code, 1, missing.stderr);
  t.regex(missing.stderr, /export db\/nothere does not exist/);
});
