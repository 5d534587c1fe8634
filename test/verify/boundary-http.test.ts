/**
 * `verify` end to end on the seed blog federation (cluster2 exports reviews v2 over HTTP in boundary mode, cluster1
 * imports it as myreviews), through the built CLI against emulated clusters with the data-path model: the healthy
 * federation passes, and each single fault is reported with its own code by the static checks and, where traffic
 * is affected, by the probe — with exit code 3 and no probe pod left behind.
 */
import test, { type ExecutionContext } from 'ava';
import { createFederationCA, inspectCertificate, issueClientCertificate } from '../../src/pki/index.js';
import { readSecret } from '../../src/federation/index.js';
import type { KubeObject } from '../support/emulator/index.js';
import { startFederationWorld, type FederationWorld } from '../support/federation.js';
import { issueCertificate } from '../support/mesh/pki.js';
import { assertFails, breakObject, failingCodes, probePods, verifyJson, type VerifyRun } from './helpers.js';
import { converse } from '../support/cli.js';

let fed: FederationWorld;
const VERIFY = ['--context', 'cluster1', '-n', 'default', '--name', 'myreviews', '--from', 'cluster2', '--path', '/reviews/0'];
const HOME = 'istio-meshfed';
const EXPORT = 'mf-export-bookinfo-reviews';
const BINDING = 'mf-bind-cluster2-bookinfo-reviews';
const HOST = 'reviews.bookinfo.cluster2.export.meshfed.internal';
const PROBE = 'http://myreviews.default:9080/reviews/0';
const ISTIO = 'networking.istio.io/v1beta1';

test.before(async () => {
  fed = await startFederationWorld({ seed: 'bookinfo', clusters: [{ name: 'cluster1' }, { name: 'cluster2' }] });
  const exported = await fed.run(['export', '--context', 'cluster2', '-n', 'bookinfo', '--service', 'myreviews', '--port', 'http', '--subset', 'version=v2', '--name', 'reviews']);
  if (exported.code !== 0) throw new Error(exported.stderr);
  const imported = await fed.run(['import', '--context', 'cluster1', '-n', 'default', '--from', 'cluster2', '--export', 'bookinfo/reviews', '--name', 'myreviews']);
  if (imported.code !== 0) throw new Error(imported.stderr);
});

test.after.always(async () => {
  await fed?.stop();
});

/**
 * A server certificate for `host` signed by the federation CA that has already expired: valid from just after the
 * CA's start to a second ago (the CA is minutes old, and src/pki rightly refuses to issue such a certificate).
 */
function expiredServerCertificate(caPem: string, caKeyPem: string, host: string): { certificatePem: string; privateKeyPem: string } {
  const { cert, key } = issueCertificate(
    { commonName: host, dnsNames: [host], notBefore: new Date(inspectCertificate(caPem).notBefore.getTime() + 1000), notAfter: new Date(Date.now() - 1000) },
    { cert: caPem, key: caKeyPem, certChain: caPem, root: caPem },
  );
  return { certificatePem: cert, privateKeyPem: key };
}

function assertCleanFailure(t: ExecutionContext, run: VerifyRun): void {
  t.is(run.code, 3, run.stderr);
  t.false(run.report.ok);
  t.deepEqual(probePods(fed, 'cluster1'), [], 'no probe pod is left behind');
}

test.serial('a healthy federation passes every check, and the probe gets HTTP 200 through both gateways', async (t) => {
  const run = await verifyJson(fed, VERIFY);
  t.is(run.code, 0, run.stdout);
  t.true(run.report.ok);
  t.deepEqual(failingCodes(run), []);
  t.is(run.report.summary.errors, 0);
  t.is(run.report.summary.skipped, 0);
  t.true(run.report.summary.passed >= 30);
  t.like(run.report.probe, { ending: 'completed', httpStatus: 200, exitCode: 0, kept: false });
  t.deepEqual(probePods(fed, 'cluster1'), []);
  // The JSON schema is stable: every field always present.
  const report = JSON.parse(run.stdout) as Record<string, unknown>;
  t.deepEqual(Object.keys(report), ['apiVersion', 'kind', 'import', 'ok', 'summary', 'checks', 'probe']);
  t.like(report, { apiVersion: 'meshfed.io/v1alpha1', kind: 'VerifyReport', import: { context: 'cluster1', namespace: 'default', localName: 'myreviews', mode: 'boundary', protocol: 'HTTP', port: 9080 } });
  for (const check of report.checks as Array<Record<string, unknown>>) {
    t.deepEqual(Object.keys(check), ['code', 'category', 'level', 'description', 'status', 'object', 'message', 'hint', 'reason', 'note', 'docs']);
  }
  t.deepEqual(Object.keys(report.probe as object), ['pod', 'image', 'target', 'ending', 'kept', 'httpStatus', 'exitCode', 'timeMs', 'answered', 'responseFlags']);
});

test.serial('the text output groups √ lines by category and ends with a summary; stdout only, exit 0', async (t) => {
  const run = await fed.run(['verify', ...VERIFY]);
  t.is(run.code, 0, run.stderr);
  for (const heading of ['contexts and mesh', 'provider (context cluster2)', 'consumer (context cluster1)', 'across the two clusters', `probe (${PROBE})`]) {
    t.true(run.stdout.includes(`\n${heading}\n`), heading);
  }
  t.regex(run.stdout, /^√ the provider gateway has an external address \(Service istio-meshfed\/meshfed-ingress: [\d.]+\) \[MF0206\]$/m);
  t.regex(run.stdout, /^√ the probe calls the imported service through the federation \(.*HTTP 200 in \d+ ms\) \[MF0503\]$/m);
  t.regex(run.stdout, /^√ both meshes run an Istio version meshfed supports \(1\.9 or later\) \(context cluster1: Istio 1\.18\.0; context cluster2: Istio 1\.18\.0\) \[MF0104\]$/m);
  t.regex(run.stdout, /\n√ verify passed: all \d+ checks passed\n$/);
  t.notRegex(run.stdout + run.stderr, /PRIVATE KEY/);
});

test.serial('without --from, the provider context is found from the import\'s record and its checks run', async (t) => {
  const run = await verifyJson(fed, VERIFY.filter((a, i, all) => a !== '--from' && all[i - 1] !== '--from'));
  t.is(run.code, 0, run.stdout);
  t.is((run.report as unknown as { import: { provider: { context: string } } }).import.provider.context, 'cluster2');
  t.true(run.report.checks.some((c) => c.code === 'MF0206' && c.status === 'ok'));
  t.false(run.report.checks.some((c) => c.category === 'provider' && c.status === 'skip' && /--from/.test(c.reason ?? '')));
  t.like(run.report.probe, { httpStatus: 200 });
  const text = await fed.run(['verify', ...VERIFY.slice(0, 6)]);
  t.is(text.code, 0);
  t.regex(text.stderr, /Provider: context cluster2 \(federation cluster cluster2, named by the import's record\)/);
  t.regex(text.stdout, /provider \(context cluster2\)\n-+\n√ the export exists in the provider cluster/);
});

test.serial('an import that does not exist is a clear error (exit 1) naming the imports there are', async (t) => {
  const run = await fed.run(['verify', '--context', 'cluster1', '-n', 'default', '--name', 'nosuch']);
  t.is(run.code, 1);
  t.regex(run.stderr, /error: import "nosuch" does not exist in namespace "default" of context "cluster1" \(imports in namespace "default": myreviews\)\n {2}check --name and -n/);
  t.deepEqual(probePods(fed, 'cluster1'), []);
});

test.serial('--import, the first spelling of --name, still names the import (scripts use it)', async (t) => {
  const run = await fed.run(['verify', '--context', 'cluster1', '-n', 'default', '--import', 'myreviews', '--no-probe']);
  t.is(run.code, 0, run.stderr);
  t.regex(run.stdout, /^Import default\/myreviews in context cluster1/);
  const both = await fed.run(['verify', 'myreviews', '--context', 'cluster1', '-n', 'default', '--import', 'other', '--no-probe']);
  t.is(both.code, 2);
  t.regex(both.stderr, /error: NAME "myreviews" and --name other name different objects\n {2}give the name once: as NAME or with --name/);
});

test.serial('on a terminal, a missing --name is asked for among the namespace\'s imports; without one it is a usage error', async (t) => {
  const asked = await converse(fed.kubeconfig, ['verify', '--context', 'cluster1', '-n', 'default', '--from', 'cluster2', '--path', '/reviews/0'], [
    { expect: /Which import do you want to verify\?[\s\S]*myreviews[\s\S]*cluster2\/bookinfo\/reviews \(boundary, HTTP\)/, keys: '\r' },
  ]);
  t.is(asked.code, 0, asked.screen);
  t.regex(asked.screen, /verify passed: all \d+ checks passed/);
  const missing = await fed.run(['verify', '--context', 'cluster1', '-n', 'default']);
  t.is(missing.code, 2);
  t.regex(missing.stderr, /error: missing value for --name\n {2}imports in namespace "default": myreviews/);
});

test.serial('fault: the provider Gateway is missing', async (t) => {
  const undo = await breakObject(fed, 'cluster2', [ISTIO, 'Gateway', HOME, EXPORT], () => null);
  try {
    const run = await verifyJson(fed, VERIFY);
    assertCleanFailure(t, run);
    assertFails(t, run, [['MF0207', `Gateway ${HOME}/${EXPORT}`], ['MF0510', PROBE]]);
  } finally {
    await undo();
  }
});

test.serial('fault: the SNI is not in the provider Gateway hosts', async (t) => {
  const undo = await breakObject(fed, 'cluster2', [ISTIO, 'Gateway', HOME, EXPORT], (o) => {
    (o.spec as { servers: Array<{ hosts: string[] }> }).servers[0]!.hosts = ['other.bookinfo.cluster2.export.meshfed.internal'];
  });
  try {
    const run = await verifyJson(fed, VERIFY);
    assertCleanFailure(t, run);
    assertFails(t, run, [['MF0401', `SNI ${HOST}`], ['MF0208', `Gateway ${HOME}/${EXPORT}`], ['MF0510', PROBE]]);
  } finally {
    await undo();
  }
});

test.serial('fault: the provider Gateway names a credentialName Secret that does not exist', async (t) => {
  const undo = await breakObject(fed, 'cluster2', [ISTIO, 'Gateway', HOME, EXPORT], (o) => {
    (o.spec as { servers: Array<{ tls: { credentialName: string } }> }).servers[0]!.tls.credentialName = 'reviews-cert';
  });
  try {
    const run = await verifyJson(fed, VERIFY);
    assertCleanFailure(t, run);
    assertFails(t, run, [['MF0209', `Secret ${HOME}/reviews-cert`], ['MF0510', PROBE]]);
  } finally {
    await undo();
  }
});

test.serial('fault: the consumer is not admitted by the provider AuthorizationPolicy', async (t) => {
  const undo = await breakObject(fed, 'cluster2', ['security.istio.io/v1beta1', 'AuthorizationPolicy', HOME, EXPORT], (o) => {
    (o.spec as { rules: Array<{ from: Array<{ source: { principals: string[] } }> }> }).rules[0]!.from[0]!.source.principals = ['cluster3.meshfed.internal/ns/istio-meshfed/sa/meshfed-egress'];
  });
  try {
    const run = await verifyJson(fed, VERIFY);
    assertCleanFailure(t, run);
    assertFails(t, run, [['MF0402', 'consumer cluster1'], ['MF0512', PROBE]]);
    t.deepEqual(failingCodes(run), ['MF0402', 'MF0512'], 'nothing else is wrong');
  } finally {
    await undo();
  }
});

test.serial('fault: the provider LoadBalancer address changed since the import', async (t) => {
  const c = fed.world.cluster('cluster2');
  const before = (c.get('v1', 'Service', HOME, 'meshfed-ingress')!.status as { loadBalancer: { ingress: Array<{ ip: string }> } }).loadBalancer.ingress[0]!.ip;
  c.setLoadBalancerAddress(HOME, 'meshfed-ingress', '203.0.113.200');
  await fed.world.waitIdle();
  try {
    const run = await verifyJson(fed, VERIFY);
    assertCleanFailure(t, run);
    assertFails(t, run, [['MF0307', 'import default/myreviews'], ['MF0510', PROBE]]);
    t.deepEqual(failingCodes(run), ['MF0307', 'MF0510']);
    const message = run.report.checks.find((r) => r.code === 'MF0307')!.message!;
    t.true(message.includes(`sends traffic to ${before}`) && message.includes('now has address 203.0.113.200'), message);
  } finally {
    c.setLoadBalancerAddress(HOME, 'meshfed-ingress', before);
    await fed.world.waitIdle();
  }
});

test.serial('fault: the exported Service has no ready endpoints', async (t) => {
  const undo = await breakObject(fed, 'cluster2', ['v1', 'Service', 'bookinfo', 'myreviews'], (o) => {
    const spec = o.spec as Record<string, unknown>;
    spec.selector = { app: 'reviews-retired' };
    delete spec.clusterIP;
    delete spec.clusterIPs;
  });
  try {
    const run = await verifyJson(fed, VERIFY);
    assertCleanFailure(t, run);
    assertFails(t, run, [['MF0203', 'Service bookinfo/myreviews']]);
    t.deepEqual(failingCodes(run), ['MF0203', 'MF0511'], 'a hop finds no healthy upstream');
  } finally {
    await undo();
  }
});

test.serial('fault: the provider VirtualService routes to another port than the exported one', async (t) => {
  const undo = await breakObject(fed, 'cluster2', [ISTIO, 'VirtualService', HOME, EXPORT], (o) => {
    (o.spec as { http: Array<{ route: Array<{ destination: { port: { number: number } } }> }> }).http[0]!.route[0]!.destination.port.number = 9081;
  });
  try {
    const run = await verifyJson(fed, VERIFY);
    assertCleanFailure(t, run);
    assertFails(t, run, [['MF0408', 'import default/myreviews → export bookinfo/reviews'], ['MF0208', `VirtualService ${HOME}/${EXPORT}`]]);
    t.deepEqual(failingCodes(run), ['MF0208', 'MF0408', 'MF0510'], 'the probe fails too');
  } finally {
    await undo();
  }
});

test.serial('fault: the provider server certificate has expired', async (t) => {
  const c = fed.world.cluster('cluster2');
  const caData = readSecret(c.get('v1', 'Secret', 'meshfed-ca', 'meshfed-federation-ca') as never)!;
  const expired = expiredServerCertificate(caData['ca.crt']!, caData['ca.key']!, HOST);
  const undo = await breakObject(fed, 'cluster2', ['v1', 'Secret', HOME, EXPORT], (o) => {
    const data = o.data as Record<string, string>;
    data['tls.crt'] = Buffer.from(expired.certificatePem).toString('base64');
    data['tls.key'] = Buffer.from(expired.privateKeyPem).toString('base64');
  });
  try {
    const run = await verifyJson(fed, VERIFY);
    assertCleanFailure(t, run);
    assertFails(t, run, [['MF0210', `certificate in Secret ${HOME}/${EXPORT}`], ['MF0404', null], ['MF0510', PROBE]]);
    t.regex(run.report.checks.find((r) => r.code === 'MF0210' && r.status === 'fail')!.message!, /expired on/);
  } finally {
    await undo();
  }
});

test.serial('fault: the consumer client certificate comes from another CA', async (t) => {
  const other = createFederationCA({ provider: 'intruder' });
  const cert = issueClientCertificate({ ca: other, commonName: 'cluster1', spiffeId: 'spiffe://cluster1.meshfed.internal/ns/istio-meshfed/sa/meshfed-egress' });
  const undo = await breakObject(fed, 'cluster1', ['v1', 'Secret', HOME, BINDING], (o: KubeObject) => {
    const data = o.data as Record<string, string>;
    data['tls.crt'] = Buffer.from(cert.certificatePem).toString('base64');
    data['tls.key'] = Buffer.from(cert.privateKeyPem).toString('base64');
  });
  try {
    const run = await verifyJson(fed, VERIFY);
    assertCleanFailure(t, run);
    const object = `Secret ${HOME}/${BINDING}`;
    assertFails(t, run, [['MF0305', object], ['MF0403', `client certificate of ${object}`], ['MF0510', PROBE]]);
  } finally {
    await undo();
  }
});

test.serial('fault: an ALLOW policy on the provider workload locks the federation gateway out', async (t) => {
  const c = fed.world.cluster('cluster2');
  c.create({
    apiVersion: 'security.istio.io/v1beta1', kind: 'AuthorizationPolicy', metadata: { name: 'reviews-callers', namespace: 'bookinfo' },
    spec: { selector: { matchLabels: { app: 'reviews' } }, action: 'ALLOW', rules: [{ from: [{ source: { principals: ['cluster2.local/ns/bookinfo/sa/bookinfo-productpage'] } }] }] },
  });
  await fed.world.waitIdle();
  try {
    const run = await verifyJson(fed, VERIFY);
    assertCleanFailure(t, run);
    t.deepEqual(failingCodes(run), ['MF0409', 'MF0512']);
    assertFails(t, run, [['MF0409', 'workload of Service bookinfo/myreviews'], ['MF0512', PROBE]]);
    t.regex(run.report.checks.find((r) => r.code === 'MF0409' && r.status === 'fail')!.hint!, /add the principal\(s\) cluster2\.local\/ns\/istio-meshfed\/sa\/meshfed-ingress to AuthorizationPolicy bookinfo\/reviews-callers/);
  } finally {
    c.delete('security.istio.io/v1beta1', 'AuthorizationPolicy', 'bookinfo', 'reviews-callers');
    await fed.world.waitIdle();
  }
});

test.serial('fault: the export\'s subset labels match no ready pod', async (t) => {
  const c = fed.world.cluster('cluster2');
  const scale = (replicas: number) => c.apply({ apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'reviews-v2', namespace: 'bookinfo' }, spec: { replicas } }, 'test');
  scale(0);
  await fed.world.waitIdle();
  try {
    const run = await verifyJson(fed, VERIFY);
    assertCleanFailure(t, run);
    t.deepEqual(failingCodes(run), ['MF0204', 'MF0511']);
    t.regex(run.report.checks.find((r) => r.code === 'MF0204' && r.status === 'fail')!.message!, /no ready pod of Service bookinfo\/myreviews has the labels version=v2; ready pods: reviews-v3-\S+ \(version=v3\)/);
  } finally {
    scale(1);
    // The user waits for the rollout, as with kubectl rollout status.
    const deadline = Date.now() + 15_000;
    const v2Running = () => c.list('v1', 'Pod', 'bookinfo').some((p) => p.metadata.labels?.version === 'v2' && (p.status as { phase?: string } | undefined)?.phase === 'Running');
    while (!v2Running() && Date.now() < deadline) {
      await fed.world.waitIdle();
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
});

test.serial('fault: no sidecar injection in the consumer namespace', async (t) => {
  const c = fed.world.cluster('cluster1');
  const labels = c.get('v1', 'Namespace', undefined, 'default')!.metadata.labels ?? {};
  const { 'istio-injection': _removed, ...rest } = labels;
  c.apply({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'default', labels: rest } }, 'emulator-seed');
  await fed.world.waitIdle();
  try {
    const run = await verifyJson(fed, VERIFY);
    assertCleanFailure(t, run);
    assertFails(t, run, [['MF0105', 'Namespace default'], ['MF0502', null], ['MF0505', PROBE]]);
  } finally {
    c.apply({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'default', labels } }, 'emulator-seed');
    await fed.world.waitIdle();
  }
});

test.serial('after the faults are undone, the federation passes again', async (t) => {
  const run = await verifyJson(fed, VERIFY);
  t.is(run.code, 0, JSON.stringify(failingCodes(run)));
  t.deepEqual(probePods(fed, 'cluster1'), []);
});
