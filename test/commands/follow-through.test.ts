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

test.serial('an import request that is never answered is cancelled by unimport, with --name as for an import or with --export', async (t) => {
  const pendingSources = async () => (JSON.parse((await fed.run(['status', '--context', 'staging', '-o', 'json'])).stdout) as { imports: Array<{ source: string; state: string }> })
    .imports.filter((i) => i.state === 'pending').map((i) => i.source).sort();
  for (const name of ['nothere', 'gone']) {
    const request = await fed.run(['import', '--context', 'staging', '-n', 'apps', '--from', 'production', '--export', `db/${name}`, '--request-out', join(dir, `${name}.yaml`)]);
    t.is(request.code, 0, request.stderr);
  }
  t.deepEqual(await pendingSources(), ['production/db/gone', 'production/db/nothere']);

  // Elsewhere than the request's namespace, --name finds no import and says how to cancel a request.
  const wrongNamespace = await fed.run(['unimport', '--context', 'staging', '-n', 'default', '--name', 'nothere']);
  t.is(wrongNamespace.code, 1, wrongNamespace.stderr);
  t.regex(wrongNamespace.stderr, /pending import requests: production\/db\/(nothere|gone) into apps/);
  t.regex(wrongNamespace.stderr, /--export <provider cluster id>\/<namespace>\/<name>/);

  const byName = await fed.runCounting(['unimport', '--context', 'staging', '-n', 'apps', '--name', 'nothere']);
  t.is(byName.code, 0, byName.stderr);
  t.regex(byName.stderr, /Cancelled the import request for production\/db\/nothere/);
  // The Secret that keeps the request's key, and the request's published copy (no key).
  t.deepEqual(byName.writes.staging!.map((w) => `${w.method} ${w.path}`).sort(), [
    'DELETE /api/v1/namespaces/istio-meshfed/configmaps/mf-bind-production-db-nothere.request',
    'DELETE /api/v1/namespaces/istio-meshfed/secrets/mf-bind-production-db-nothere',
  ]);
  t.deepEqual(byName.writes.production, []);
  t.deepEqual(await pendingSources(), ['production/db/gone']);

  const byExport = await fed.run(['unimport', '--context', 'staging', '--export', 'production/db/gone']);
  t.is(byExport.code, 0, byExport.stderr);
  t.deepEqual(await pendingSources(), []);
  t.false(fed.managedObjects('staging').some((o) => o.startsWith('Secret istio-meshfed/mf-bind-') || /^ConfigMap istio-meshfed\/mf-bind-.*\.request$/.test(o)), fed.managedObjects('staging').join('\n'));

  const again = await fed.run(['unimport', '--context', 'staging', '--export', 'production/db/gone']);
  t.is(again.code, 1, again.stderr);
  t.regex(again.stderr, /no import request for production\/db\/gone is pending in cluster staging \(pending: none\)/);
});
