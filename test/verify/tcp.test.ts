/**
 * `verify` end to end on the three-cluster federation seed (production exports postgres, TCP 5432, to operations):
 * boundary and shared-root TCP pass, a TCP probe is not fooled by a sidecar that accepts the connection itself,
 * and the probe pod never outlives verify — after success, failure, a timeout, a pod that cannot start, and Ctrl-C
 * (SIGINT to the CLI process). An unreachable provider is reported, and the consumer side is still checked.
 */
import test from 'ava';
import { spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import YAML from 'yaml';
import { binDir, runCli } from '../support/cli.js';
import { BoundClock, ofRecord } from '../support/clock.js';
import { startFederationWorld, type FederationWorld } from '../support/federation.js';
import { assertFails, breakObject, failingCodes, probePods, verifyJson } from './helpers.js';

let fed: FederationWorld;
const BOUNDARY = ['--context', 'operations', '-n', 'vault', '--name', 'postgres', '--from', 'production'];
const SHARED = ['--context', 'operations', '-n', 'vault', '--name', 'pgshared', '--from', 'production'];
/** An image the kubelet pulls whose container neither calls out nor ends: the probe never completes. */
const IDLE_IMAGE = 'nginx:1.27';

async function must(args: string[]): Promise<void> {
  const result = await fed.run(args);
  if (result.code !== 0) throw new Error(`${args.join(' ')}: ${result.stderr}`);
}

test.before(async () => {
  fed = await startFederationWorld({ seed: 'federation', clusters: [{ name: 'operations' }, { name: 'staging' }, { name: 'production' }] });
  await must(['export', '--context', 'production', '-n', 'db', '--service', 'postgres', '--port', '5432']);
  await must(['import', '--context', 'operations', '-n', 'vault', '--from', 'production', '--export', 'db/postgres']);
  await must(['export', '--context', 'production', '-n', 'db', '--service', 'postgres', '--port', '5432', '--name', 'pgshared', '--mode', 'shared-root']);
  await must(['import', '--context', 'operations', '-n', 'vault', '--from', 'production', '--export', 'db/pgshared', '--name', 'pgshared', '--service-account', 'vault']);
});

test.after.always(async () => {
  await fed?.stop();
});

test.serial('boundary TCP: healthy, and the probe gets an answer from postgres through both gateways', async (t) => {
  const run = await verifyJson(fed, BOUNDARY);
  t.is(run.code, 0, JSON.stringify(failingCodes(run)));
  t.deepEqual(failingCodes(run), []);
  t.like(run.report.probe, { target: 'tcp://postgres.vault:5432', answered: true, ending: 'completed' });
  t.deepEqual(probePods(fed, 'operations'), []);
});

test.serial('--send replaces the greeting: postgres closes on bytes that are not a startup packet, and says why with MF0508', async (t) => {
  const garbage = await verifyJson(fed, [...BOUNDARY, '--send', 'hello\\r\\n']);
  t.is(garbage.code, 3);
  t.deepEqual(failingCodes(garbage), ['MF0508']);
  const explicit = await verifyJson(fed, [...BOUNDARY, '--send', '\\x00\\x00\\x00\\x08\\x04\\xd2\\x16\\x2f']);
  t.is(explicit.code, 0, 'the SSLRequest written by hand gets the answer');
});

test.serial('boundary TCP: a consumer that is not admitted is reported by the static check and by the probe', async (t) => {
  const undo = await breakObject(fed, 'production', ['security.istio.io/v1beta1', 'AuthorizationPolicy', 'istio-meshfed', 'mf-export-db-postgres'], (o) => {
    (o.spec as { rules: Array<{ from: Array<{ source: { principals: string[] } }> }> }).rules[0]!.from[0]!.source.principals = ['staging.meshfed.internal/ns/istio-meshfed/sa/meshfed-egress'];
  });
  try {
    const run = await verifyJson(fed, BOUNDARY);
    t.is(run.code, 3);
    assertFails(t, run, [['MF0402', 'consumer operations'], ['MF0508', 'tcp://postgres.vault:5432']]);
    t.deepEqual(failingCodes(run), ['MF0402', 'MF0508'], 'the sidecar accepting the connection does not fool the probe');
    t.deepEqual(probePods(fed, 'operations'), []);
  } finally {
    await undo();
  }
});

test.serial('shared-root TCP: the provider mesh must accept the consumer trust domain; with the alias it passes', async (t) => {
  const before = await verifyJson(fed, SHARED);
  t.is(before.code, 3);
  assertFails(t, before, [['MF0407', 'provider trust domain aliases'], ['MF0508', 'tcp://pgshared.vault:5432']]);
  t.deepEqual(failingCodes(before), ['MF0407', 'MF0508']);
  t.regex(before.report.checks.find((c) => c.code === 'MF0407')!.hint!, /add "operations\.local" to meshConfig\.trustDomainAliases/);

  const production = fed.world.cluster('production');
  const meshConfig = production.get('v1', 'ConfigMap', 'istio-system', 'istio')!;
  const mesh = YAML.parse((meshConfig.data as { mesh: string }).mesh) as Record<string, unknown>;
  production.apply({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'istio', namespace: 'istio-system' }, data: { mesh: YAML.stringify({ ...mesh, trustDomainAliases: ['operations.local'] }) } }, 'test');
  await fed.world.waitIdle();
  const after = await verifyJson(fed, SHARED);
  t.is(after.code, 0, JSON.stringify(failingCodes(after)));
  t.like(after.report.probe, { target: 'tcp://pgshared.vault:5432', answered: true });
  t.true(after.report.checks.some((c) => c.code === 'MF0405' && c.status === 'ok'), 'the root CAs are compared');
  t.deepEqual(probePods(fed, 'operations'), []);
});

test.serial('an unreachable provider is reported (MF0102), its checks are skipped, and the probe still runs', async (t) => {
  const config = YAML.parse(readFileSync(fed.kubeconfig, 'utf8')) as { clusters: Array<{ name: string; cluster: Record<string, unknown> }>; users: Array<{ name: string }>; contexts: Array<{ name: string; context: Record<string, string> }> };
  config.clusters.push({ name: 'gone', cluster: { server: 'https://127.0.0.1:9' } });
  config.contexts.push({ name: 'gone', context: { cluster: 'gone', user: config.users[0]!.name } });
  const path = join(fed.kubeconfig, '..', 'with-gone.yaml');
  writeFileSync(path, YAML.stringify(config));
  const result = await runCli(['verify', '--context', 'operations', '-n', 'vault', '--name', 'postgres', '--from', 'gone', '-o', 'json', '--kubeconfig', path]);
  t.is(result.code, 3, result.stderr);
  const report = JSON.parse(result.stdout) as { checks: Array<{ code: string; status: string; message: string | null; reason: string | null }>; probe: { answered: boolean } };
  const reachability = report.checks.find((c) => c.code === 'MF0102')!;
  t.is(reachability.status, 'fail');
  t.regex(reachability.message!, /cannot reach https:\/\/127\.0\.0\.1:9 \(context "gone"\): connection refused/);
  t.true(report.checks.filter((c) => c.code.startsWith('MF02')).every((c) => c.status === 'skip' && /"gone" is not reachable \(MF0102\)/.test(c.reason ?? '')));
  t.is(report.probe.answered, true);

  const consumerGone = await runCli(['verify', '--context', 'gone', '-n', 'vault', '--name', 'postgres', '--kubeconfig', path]);
  t.is(consumerGone.code, 1, 'without the consumer there is nothing to verify');
  t.regex(consumerGone.stderr, /error: cannot reach https:\/\/127\.0\.0\.1:9 \(context "gone"\): connection refused, 5 attempts to list \S+\n {2}check that the cluster is running/);
});

test.serial('--from naming another cluster than the import\'s provider: MF0201 names the right one, the rest is skipped', async (t) => {
  const run = await verifyJson(fed, ['--context', 'operations', '-n', 'vault', '--name', 'postgres', '--from', 'staging']);
  t.is(run.code, 3);
  const missing = run.report.checks.find((c) => c.code === 'MF0201')!;
  t.like(missing, { status: 'fail', object: 'export db/postgres', message: 'context "staging" has no export db/postgres (exports: none)' });
  t.regex(missing.hint!, /the import comes from cluster production/);
  t.true(run.report.checks.filter((c) => c.category === 'provider' && c.code !== 'MF0201').every((c) => c.status === 'skip' && c.reason === 'not run: MF0201 failed'));
  t.like(run.report.probe, { answered: true }, 'the probe does not depend on --from');
});

test.serial('a provider API server that does not answer in time is MF0102, not a hang', async (t) => {
  // Every request to the provider is held; once the server holds one, the client's bound of it runs out on the clock.
  const production = fed.world.cluster('production');
  const mark = production.requests.length;
  const clock = new BoundClock();
  production.faults.add({ path: /.*/, delayMs: 30_000, held: (record) => clock.elapse(ofRecord(production.server, record)), times: 100 });
  try {
    const run = await verifyJson(fed, [...BOUNDARY, '--timeout', '6s'], { session: { boundTimer: clock.timer } });
    t.is(run.code, 3);
    t.deepEqual(failingCodes(run), ['MF0102']);
    t.regex(run.report.checks.find((c) => c.code === 'MF0102')!.message!, /no answer within 3s \(--request-timeout\)/);
    // Bounded, not a hang: each request to the provider was given up after its second attempt.
    const attempts = new Map<string, number>();
    for (const r of production.requests.slice(mark)) {
      const request = `${r.method} ${r.path} ${JSON.stringify(r.query)}`;
      attempts.set(request, (attempts.get(request) ?? 0) + 1);
    }
    t.true(attempts.size > 0 && [...attempts.values()].every((n) => n <= 2), JSON.stringify([...attempts]));
    t.like(run.report.probe, { answered: true });
  } finally {
    fed.world.cluster('production').faults.clear();
  }
});

test.serial('--keep-probe keeps the completed pod and says how to read and delete it', async (t) => {
  const result = await fed.run(['verify', ...BOUNDARY, '--keep-probe']);
  t.is(result.code, 0, result.stderr);
  const kept = probePods(fed, 'operations');
  t.is(kept.length, 1);
  const name = kept[0]!.split('/')[1]!;
  t.true(result.stderr.includes(`kubectl logs ${name} -n vault --context operations`), result.stderr);
  fed.world.cluster('operations').delete('v1', 'Pod', 'vault', name);
});

test.serial('a probe image that cannot be pulled: MF0501 with the --probe-image hint; the pod is deleted', async (t) => {
  const run = await verifyJson(fed, [...BOUNDARY, '--probe-image', 'registry.invalid/curl:8']);
  t.is(run.code, 3);
  const started = run.report.checks.find((c) => c.code === 'MF0501')!;
  t.is(started.status, 'fail');
  t.regex(started.message!, /cannot start: probe waiting: (ErrImagePull|ImagePullBackOff)/);
  t.regex(started.hint!, /--probe-image/);
  t.deepEqual(probePods(fed, 'operations'), []);
});

test.serial('a probe pod the cluster refuses to create is MF0501 with the API server\'s reason; the static checks are still reported', async (t) => {
  fed.world.cluster('operations').faults.add({ method: 'POST', path: /\/namespaces\/vault\/pods$/, status: 403 });
  const run = await verifyJson(fed, BOUNDARY);
  t.is(run.code, 3);
  t.deepEqual(failingCodes(run), ['MF0501']);
  t.regex(run.report.checks.find((c) => c.code === 'MF0501')!.message!, /the cluster refused to create the probe pod in namespace "vault": .*forbidden/);
  t.true(run.report.checks.filter((c) => c.category !== 'probe').every((c) => c.status === 'ok'));
  t.like(run.report.probe, { ending: 'refused' });
});

test.serial('--timeout bounds the run: a probe that never completes is MF0514, and its pod is deleted', async (t) => {
  const run = await verifyJson(fed, [...BOUNDARY, '--probe-image', IDLE_IMAGE, '--timeout', '4s']);
  t.is(run.code, 3);
  assertFails(t, run, [['MF0514', null]]);
  t.like(run.report.probe, { ending: 'timeout' });
  t.regex(run.report.checks.find((c) => c.code === 'MF0514')!.message!, /^the probe pod vault\/meshfed-probe-[0-9a-f]+ did not complete within 4s \(phase Running/, 'the bound is --timeout');
  t.deepEqual(probePods(fed, 'operations'), []);
});

test.serial('Ctrl-C (SIGINT) while the probe runs: exit 130, and the probe pod is deleted', async (t) => {
  const child = spawn(join(binDir, 'kubectl-meshfed'), ['verify', ...BOUNDARY, '--probe-image', IDLE_IMAGE, '--timeout', '60s', '--kubeconfig', fed.kubeconfig], {
    env: { ...process.env, NO_COLOR: '1' }, stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
  const deadline = Date.now() + 20_000;
  // The test may poll the emulator: it is the user watching `kubectl get pods`, not the product.
  while (probePods(fed, 'operations').length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  t.is(probePods(fed, 'operations').length, 1, 'the probe pod was created');
  child.kill('SIGINT');
  const code = await exited;
  t.is(code, 130, stderr);
  t.regex(stderr, /interrupted/);
  await fed.world.waitIdle();
  t.deepEqual(probePods(fed, 'operations'), [], 'the probe pod was deleted before exiting');
});
