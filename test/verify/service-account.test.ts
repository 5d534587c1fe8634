/**
 * Shared-root admits workloads by service account, so `verify` must check the accounts that call, not the namespace's
 * `default`: on the three-cluster seed (Vault runs as service account `vault`), the probe runs as the admitted account,
 * a namespace whose workloads run as accounts the provider does not admit is an error of its own (MF0430), a probe
 * account the user names that is not admitted (MF0515) or does not exist (MF0516) is said before anything is called.
 */
import test from 'ava';
import YAML from 'yaml';
import { startFederationWorld, type FederationWorld } from '../support/federation.js';
import { failing, failingCodes, probePods, verifyJson } from './helpers.js';

let fed: FederationWorld;
const VAULT = ['--context', 'operations', '-n', 'vault', '--name', 'pg-vault', '--from', 'production'];
const DEFAULT = ['--context', 'operations', '-n', 'vault', '--name', 'pg-default', '--from', 'production'];

async function must(args: string[]): Promise<void> {
  const result = await fed.run(args);
  if (result.code !== 0) throw new Error(`${args.join(' ')}: ${result.stderr}`);
}

test.before(async () => {
  fed = await startFederationWorld({ seed: 'federation', clusters: [{ name: 'operations' }, { name: 'staging' }, { name: 'production' }] });
  // The provider mesh accepts the consumer's trust domain.
  const production = fed.world.cluster('production');
  const mesh = YAML.parse((production.get('v1', 'ConfigMap', 'istio-system', 'istio')!.data as { mesh: string }).mesh) as Record<string, unknown>;
  production.apply({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'istio', namespace: 'istio-system' }, data: { mesh: YAML.stringify({ ...mesh, trustDomainAliases: ['operations.local'] }) } }, 'test');
  await fed.world.waitIdle();
  await must(['export', '--context', 'production', '-n', 'db', '--service', 'postgres', '--port', '5432', '--name', 'pg-vault', '--mode', 'shared-root']);
  await must(['import', '--context', 'operations', '-n', 'vault', '--from', 'production', '--export', 'db/pg-vault', '--service-account', 'vault']);
});

test.after.always(async () => {
  await fed?.stop();
});

test.serial('admitted as vault: the probe runs as vault (the account Vault runs as) and reaches postgres', async (t) => {
  const run = await verifyJson(fed, VAULT);
  t.is(run.code, 0, JSON.stringify(failing(run)));
  t.deepEqual(failingCodes(run), []);
  t.like(run.report.checks.find((c) => c.code === 'MF0515'), { status: 'ok', object: 'service account vault/vault' });
  t.like(run.report.checks.find((c) => c.code === 'MF0430'), { status: 'ok' });
  t.like(run.report.probe, { answered: true });
  t.deepEqual(probePods(fed, 'operations'), []);
});

test.serial('without --from the import\'s own record says who was admitted: the probe still runs as vault', async (t) => {
  const run = await verifyJson(fed, VAULT.slice(0, -2));
  t.is(run.code, 0, JSON.stringify(failing(run)));
  t.like(run.report.checks.find((c) => c.code === 'MF0515'), { status: 'ok', object: 'service account vault/vault' });
});

test.serial('--service-account naming an account the provider does not admit: MF0515 before the call, which is then denied', async (t) => {
  const run = await verifyJson(fed, [...VAULT, '--service-account', 'default']);
  t.is(run.code, 3);
  const named = run.report.checks.find((c) => c.code === 'MF0515')!;
  t.like(named, { status: 'fail', object: 'service account vault/default' });
  t.is(named.message, 'the probe runs as service account default, but the provider admits vault of namespace vault: its call will be denied');
  t.regex(named.hint!, /--service-account vault/);
  t.deepEqual(failingCodes(run), ['MF0508', 'MF0515']);
});

test.serial('--service-account naming an account that does not exist: MF0516, and no probe pod is created', async (t) => {
  const run = await verifyJson(fed, [...VAULT, '--service-account', 'nobody']);
  t.is(run.code, 3);
  t.deepEqual(failingCodes(run), ['MF0515', 'MF0516']);
  t.regex(run.report.checks.find((c) => c.code === 'MF0516')!.hint!, /kubectl create serviceaccount nobody -n vault/);
  t.is(run.report.probe, null);
  t.like(run.report.checks.find((c) => c.code === 'MF0503'), { status: 'skip' });
});

test.serial('admitted as default while Vault runs as vault: MF0430 says who is admitted and who calls (the probe as default would pass)', async (t) => {
  await must(['export', '--context', 'production', '-n', 'db', '--service', 'postgres', '--port', '5432', '--name', 'pg-default', '--mode', 'shared-root']);
  await must(['import', '--context', 'operations', '-n', 'vault', '--from', 'production', '--export', 'db/pg-default']);
  const run = await verifyJson(fed, DEFAULT);
  t.is(run.code, 3);
  t.deepEqual(failingCodes(run), ['MF0430']);
  const mismatch = run.report.checks.find((c) => c.code === 'MF0430')!;
  t.regex(mismatch.message!, /admits service account\(s\) default of namespace vault, but its pods \(vault-[a-z0-9-]+\) run as vault: their calls are denied/);
  t.regex(mismatch.hint!, /--service-account vault/);
  t.like(run.report.probe, { answered: true }, 'a probe as default is admitted, which says nothing about Vault');
});
