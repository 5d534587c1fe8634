/**
 * The runner's policy, with small hand-made check lists over a hand-made snapshot: category order, skipping with a
 * reason (no provider, unreachable provider, failed prerequisite, fatal failure), trust-mode filtering, and a check
 * that throws becoming a failure of that check instead of ending verify.
 */
import test from 'ava';
import { differences, runChecks, type CheckDefinition, type VerifySnapshot } from '../../src/federation/checks/index.js';
import { fail, ok, skip } from '../../src/federation/checks/runner.js';

function snapshot(provider: VerifySnapshot['provider'] = { status: 'absent' }, mode: 'boundary' | 'shared-root' = 'boundary'): VerifySnapshot {
  return {
    now: new Date('2026-06-01T00:00:00Z'),
    consumerHome: 'istio-meshfed',
    consumer: { context: 'cluster1', mesh: { trustDomain: 'cluster1.local', trustDomainAliases: [], istioVersion: '1.18.0' }, objects: [] },
    record: {
      consumerClusterId: 'cluster1', namespace: 'default', localName: 'myreviews',
      endpoint: {
        providerClusterId: 'cluster2', namespace: 'bookinfo', exportName: 'reviews', service: 'myreviews',
        port: { number: 9080, name: 'http' }, protocol: 'HTTP', mode, gateway: { address: '203.0.113.11', port: 15443 },
        sni: 'reviews.bookinfo.cluster2.export.meshfed.internal',
      },
    },
    provider,
  };
}

const present: VerifySnapshot['provider'] = {
  status: 'present',
  snapshot: { context: 'cluster2', mesh: { trustDomain: 'cluster2.local', trustDomainAliases: [] }, objects: [] },
};

const outcomes = (results: ReturnType<typeof runChecks>) => results.map((r) => [r.code, r.outcome.status, r.outcome.status === 'skip' ? r.outcome.reason : r.object ?? '']);

test('checks run in category order; failures get the catalogue message and hint filled in', (t) => {
  const checks: CheckDefinition[] = [
    { code: 'MF0301', run: () => [fail({ detail: 'Service default/myreviews does not exist' }, 'Service default/myreviews')] },
    { code: 'MF0105', run: () => [ok('Namespace default')] },
  ];
  const results = runChecks(snapshot(), checks);
  t.deepEqual(results.map((r) => r.code), ['MF0105', 'MF0301']);
  const failed = results[1]!;
  t.like(failed, { level: 'error', category: 'consumer', docs: 'docs/checks.md#mf0301', object: 'Service default/myreviews' });
  t.deepEqual(failed.outcome, { status: 'fail', message: 'Service default/myreviews does not exist', hint: 'run kubectl meshfed import again for default/myreviews' });
});

test('provider checks are skipped with the reason when there is no provider or it is unreachable', (t) => {
  const checks: CheckDefinition[] = [{ code: 'MF0206', needsProvider: true, run: () => [ok('x')] }, { code: 'MF0301', run: () => [ok('y')] }];
  t.deepEqual(outcomes(runChecks(snapshot(), checks)), [
    ['MF0206', 'skip', 'no context of the kubeconfig is the provider cluster cluster2: pass --from <the context of cluster2> to check the provider side'],
    ['MF0301', 'ok', 'y'],
  ]);
  const unreachable = runChecks(snapshot({ status: 'unreachable', context: 'cluster2', message: 'connection refused' }), checks);
  t.deepEqual(outcomes(unreachable)[0], ['MF0206', 'skip', 'the provider context "cluster2" is not reachable (MF0102)']);
  t.deepEqual(outcomes(runChecks(snapshot(present), checks))[0], ['MF0206', 'ok', 'x']);
});

test('a failed or skipped prerequisite skips its dependents, naming it; a warning does not', (t) => {
  const checks: CheckDefinition[] = [
    { code: 'MF0201', run: () => [fail({ context: 'cluster2', known: 'none' }, 'export bookinfo/reviews')] },
    { code: 'MF0202', requires: ['MF0201'], run: () => [ok()] },
    { code: 'MF0305', run: () => [skip('no Secret', 'Secret istio-meshfed/x')] },
    { code: 'MF0306', requires: ['MF0305'], run: () => [ok()] },
    { code: 'MF0211', run: () => [fail({ secret: 'a/b', date: '2026-06-02', days: 1 })] },
    { code: 'MF0210', requires: ['MF0211'], run: () => [ok('cert')] },
  ];
  const results = outcomes(runChecks(snapshot(present), checks));
  t.deepEqual(results.find(([code]) => code === 'MF0202'), ['MF0202', 'skip', 'not run: needs MF0201 (the export exists in the provider cluster)']);
  t.deepEqual(results.find(([code]) => code === 'MF0306')?.slice(0, 2), ['MF0306', 'skip']);
  t.deepEqual(results.find(([code]) => code === 'MF0210'), ['MF0210', 'ok', 'cert']);
});

test('a fatal failure stops the rest of its category only', (t) => {
  const checks: CheckDefinition[] = [
    { code: 'MF0201', fatal: true, run: () => [fail({ context: 'cluster2', known: 'none' })] },
    { code: 'MF0206', run: () => [ok()] },
    { code: 'MF0301', run: () => [ok()] },
  ];
  t.deepEqual(outcomes(runChecks(snapshot(present), checks)), [
    ['MF0201', 'fail', ''],
    ['MF0206', 'skip', 'not run: MF0201 failed'],
    ['MF0301', 'ok', ''],
  ]);
});

test('checks of the other trust mode are left out; a throwing check fails alone', (t) => {
  const checks: CheckDefinition[] = [
    { code: 'MF0405', mode: 'shared-root', run: () => [ok()] },
    { code: 'MF0403', mode: 'boundary', run: () => { throw new Error('unexpected shape'); } },
    { code: 'MF0301', run: () => [] },
  ];
  const results = runChecks(snapshot(present), checks);
  t.deepEqual(results.map((r) => [r.code, r.outcome.status]), [['MF0301', 'ok'], ['MF0403', 'fail']]);
  t.regex((results[1]!.outcome as { message: string }).message, /could not be evaluated: unexpected shape/);
  t.deepEqual(runChecks(snapshot(present, 'shared-root'), checks).map((r) => r.code), ['MF0301', 'MF0405']);
});

test('differences names each field that differs, with the live and the expected value', (t) => {
  t.deepEqual(differences({ spec: { hosts: ['a'], port: { number: 15443 } } }, { spec: { hosts: ['a'], port: { number: 15443, name: 'tls' } }, status: {} }), []);
  t.deepEqual(differences({ spec: { hosts: ['a'], tls: { sni: 'x' } } }, { spec: { hosts: ['b', 'c'], tls: {} } }), [
    'spec.hosts is ["b","c"], expected ["a"]',
    'spec.tls.sni is (unset), expected "x"',
  ]);
});
