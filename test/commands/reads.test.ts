/**
 * What export and import read does not grow with the cluster's other exports and imports: a re-run of one export
 * (and one import) reads the same bytes with 1 and with many existing exports and imports, because each reads its
 * own objects by the labels that name it, the shared objects, and the records that shared objects depend on; Secrets
 * are listed as metadata and only the command's own are read with their data. Bytes, not time, are compared. Each
 * kind is listed once per selector it can match (a kind that holds shared objects only is not listed by an export's
 * label). `status` sends as many requests with many exports and imports as with one (it reads the certificates
 * published beside their Secrets, no Secret's data), and a viewer (the documented role, which has no rule about
 * Secrets) runs status and verify without a Secret answered to it.
 */
import test from 'ava';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DEFAULT_GATEWAY_NAMESPACE, MANAGED_KINDS, names } from '../../src/federation/index.js';
import { runCli, writeKubeconfig } from '../support/cli.js';
import type { RequestRecord } from '../support/emulator/index.js';
import { startFederationWorld, type FederationWorld } from '../support/federation.js';
import { bindRole } from '../support/rbac.js';

/** Existing exports (and as many imports) of the second measurement. */
const MANY = 30;
/** What may grow from 1 to {@link MANY}: the shared egress routes gain one subset per import (about 0.2 KiB). */
const TOLERANCE = 0.05;

let fed: FederationWorld;
/** A kubeconfig of user vera, bound to the viewer role in both clusters (by the viewer test). */
let viewerKubeconfig: string | undefined;

function exportArgs(i: number): string[] {
  return ['export', '--context', 'cluster2', '-n', 'bookinfo', '--service', 'myreviews', '--port', 'http', '--name', `reviews-${i}`];
}

function importArgs(i: number): string[] {
  return ['import', '--context', 'cluster1', '-n', 'default', '--from', 'cluster2', '--export', `bookinfo/reviews-${i}`, '--name', `myreviews-${i}`];
}

async function must(args: string[]): Promise<void> {
  const result = await fed.run(args);
  if (result.code !== 0) throw new Error(`kubectl meshfed ${args.join(' ')}: exit ${result.code}\n${result.stderr}`);
}

type Sent = RequestRecord & { cluster: string };

/** What meshfed sent both clusters while running `args` (which must succeed), as `run` runs it. */
async function sentBy(args: string[], run: (args: string[]) => Promise<void> = must): Promise<Sent[]> {
  const marks = new Map(fed.world.clusters.map((c) => [c.name, c.requests.length]));
  await run(args);
  return fed.world.clusters.flatMap((c) => c.requests.slice(marks.get(c.name)).map((r) => ({ ...r, cluster: c.name })))
    .filter((r) => r.userAgent?.startsWith('kubectl-meshfed'));
}

/** Secrets read with their data: single-object GETs (lists are metadata only). */
function secretsWithData(sent: Sent[]): string[] {
  return sent.filter((r) => r.method === 'GET' && /\/secrets\/[^/]+$/.test(r.path)).map((r) => `${r.cluster} ${r.path.split('/').slice(-3).join('/')}`).sort();
}

/** Response bytes meshfed received from both clusters while running `args` (which must succeed), and its requests. */
async function bytesRead(args: string[]): Promise<{ bytes: number; requests: number; secretsWithData: string[]; sent: Sent[] }> {
  const sent = await sentBy(args);
  return { bytes: sent.reduce((n, r) => n + r.bytes, 0), requests: sent.length, secretsWithData: secretsWithData(sent), sent };
}

/** The cluster-wide lists of a kind of meshfed's, by label selector, that a run sent to `cluster`. */
function listsOf(sent: Sent[], cluster: string, plural: string): string[] {
  return sent.filter((r) => r.cluster === cluster && r.method === 'GET' && new RegExp(`^/apis?(/[^/]+)*/${plural}$`).test(r.path)
    && !r.path.includes('/namespaces/') && (r.query.labelSelector ?? '').startsWith('app.kubernetes.io/managed-by=kubectl-meshfed')
    && r.query.limit === undefined).map((r) => r.query.labelSelector!).sort();
}

test.before(async () => {
  fed = await startFederationWorld({ seed: 'bookinfo', clusters: [{ name: 'cluster1' }, { name: 'cluster2' }] });
});

test.after.always(async () => {
  await fed?.stop();
});

/** verify of import 1, without the probe (its pod's polling depends on timing): the reads of the checks. */
const VERIFY = ['verify', '--context', 'cluster1', '-n', 'default', '--import', 'myreviews-1', '--from', 'cluster2', '--no-probe'];

test.serial(`export and import re-runs, and verify, read as many bytes with ${MANY} existing exports and imports as with 1`, async (t) => {
  t.timeout(30 * 60_000);
  await must(exportArgs(1));
  await must(importArgs(1));
  const exportOne = await bytesRead(exportArgs(1));
  const importOne = await bytesRead(importArgs(1));
  const verifyOne = await bytesRead(VERIFY);
  for (let i = 2; i <= MANY; i++) {
    await must(exportArgs(i));
    await must(importArgs(i));
  }
  const exportMany = await bytesRead(exportArgs(1));
  const importMany = await bytesRead(importArgs(1));
  const verifyMany = await bytesRead(VERIFY);
  // verify reads the import's objects, its binding's and the shared ones, and its export's on the provider: by the
  // labels that name them, and the user's objects by managed-by!=, never the other imports' and exports'.
  t.log(`verify: ${verifyOne.requests} requests, ${(verifyOne.bytes / 1024).toFixed(1)} KiB at N=1; ${verifyMany.requests}, ${(verifyMany.bytes / 1024).toFixed(1)} KiB at N=${MANY}`);
  t.is(verifyMany.requests, verifyOne.requests, 'verify: requests flat in N');
  t.true(verifyMany.bytes <= verifyOne.bytes * (1 + TOLERANCE), `verify: ${verifyOne.bytes} bytes at N=1, ${verifyMany.bytes} at N=${MANY}`);
  t.deepEqual(verifyMany.secretsWithData, verifyOne.secretsWithData);
  t.true(verifyOne.secretsWithData.every((s) => /reviews-1|federation-ca/.test(s)), verifyOne.secretsWithData.join('\n'));
  const kib = (n: number) => `${(n / 1024).toFixed(1)} KiB`;
  t.log(`export re-run: ${kib(exportOne.bytes)} at N=1, ${kib(exportMany.bytes)} at N=${MANY}; import re-run: ${kib(importOne.bytes)}, ${kib(importMany.bytes)}`);
  t.true(exportMany.bytes <= exportOne.bytes * (1 + TOLERANCE), `export: ${kib(exportOne.bytes)} at N=1, ${kib(exportMany.bytes)} at N=${MANY}`);
  t.true(importMany.bytes <= importOne.bytes * (1 + TOLERANCE), `import: ${kib(importOne.bytes)} at N=1, ${kib(importMany.bytes)} at N=${MANY}`);
  // The Secrets read with their data are the command's own (its certificate, the federation CA), whatever N.
  t.deepEqual(exportMany.secretsWithData, exportOne.secretsWithData);
  t.deepEqual(importMany.secretsWithData, importOne.secretsWithData);
  t.true(exportOne.secretsWithData.every((s) => /reviews-1-|federation-ca/.test(s)), exportOne.secretsWithData.join('\n'));
  // As many requests too.
  t.is(exportMany.requests, exportOne.requests, 'export re-run: requests flat in N');
  t.is(importMany.requests, importOne.requests, 'import re-run: requests flat in N');
  // Each kind once per selector it can match: a kind that only holds shared objects (the gateways' accounts, Roles,
  // Deployments, meshfed's Namespaces) once, by the shared selector; ServiceEntries (only ever an export's, an
  // import's or a binding's) never by it.
  const plural: Record<string, string> = { Namespace: 'namespaces', ServiceAccount: 'serviceaccounts', Role: 'roles', RoleBinding: 'rolebindings', Deployment: 'deployments', ServiceEntry: 'serviceentries' };
  for (const { kind, holds } of MANAGED_KINDS.filter((k) => k.holds !== 'both')) {
    for (const [run, cluster, own] of [[exportOne, 'cluster2', 1], [importOne, 'cluster1', 2]] as const) {
      const lists = listsOf(run.sent, cluster, plural[kind]!);
      t.is(lists.length, holds === 'shared' ? 1 : own, `${cluster} ${kind}: ${lists.join(' | ')}`);
      t.is(lists.some((selector) => selector.includes('!meshfed.io/export')), holds === 'shared', `${cluster} ${kind} by the shared selector only if it holds shared objects`);
    }
  }
  t.log(`requests: export re-run ${exportOne.requests}, import re-run ${importOne.requests}`);
});

test.serial('the other exports and imports still work after the narrowed re-runs (their shared objects are kept)', async (t) => {
  // The egress routes and the provider's shared objects were re-planned by runs that read only export 1 and import 1.
  const verify = await fed.run(['verify', '--context', 'cluster1', '-n', 'default', '--name', `myreviews-${MANY}`, '--from', 'cluster2']);
  t.is(verify.code, 0, verify.stdout + verify.stderr);
  const routes = fed.world.cluster('cluster1').get('networking.istio.io/v1beta1', 'DestinationRule', DEFAULT_GATEWAY_NAMESPACE, names.egressRoutes());
  t.is(((routes?.spec as { subsets?: unknown[] } | undefined)?.subsets ?? []).length, MANY, 'one egress subset per imported export');
});

test.serial(`status sends as many requests with ${MANY} exports and imports as with 1, and reads no Secret's data`, async (t) => {
  // The world holds MANY exports and imports now; one of each is removed and measured again after re-creating it.
  const many = { provider: await sentBy(['status', '--context', 'cluster2']), consumer: await sentBy(['status', '--context', 'cluster1']) };
  for (const [side, sent] of Object.entries(many)) {
    t.deepEqual(secretsWithData(sent), [], `status (${side}) reads the certificates published beside the Secrets`);
  }
  const json = await fed.run(['status', '--context', 'cluster2', '-o', 'json']);
  const status = JSON.parse(json.stdout) as { exports: Array<{ name: string; certificateExpires?: string }> };
  t.is(status.exports.length, MANY);
  t.true(status.exports.every((e) => e.certificateExpires), 'every export\'s certificate expiry, from its published copy');
  const consumerJson = JSON.parse((await fed.run(['status', '--context', 'cluster1', '-o', 'json'])).stdout) as { imports: Array<{ state: string; certificateExpires?: string }> };
  t.true(consumerJson.imports.every((i) => i.state === 'active' && i.certificateExpires), 'every import active, with its client certificate\'s expiry');
  for (let i = 2; i <= MANY; i++) {
    await must(['unimport', '--context', 'cluster1', '-n', 'default', '--name', `myreviews-${i}`]);
    await must(['unexport', '--context', 'cluster2', '-n', 'bookinfo', '--name', `reviews-${i}`, '--force']);
  }
  const one = { provider: await sentBy(['status', '--context', 'cluster2']), consumer: await sentBy(['status', '--context', 'cluster1']) };
  t.is(many.provider.length, one.provider.length, `status (provider): ${one.provider.length} requests at N=1, ${many.provider.length} at N=${MANY}`);
  t.is(many.consumer.length, one.consumer.length, `status (consumer): ${one.consumer.length} requests at N=1, ${many.consumer.length} at N=${MANY}`);
  const kib = (sent: Sent[]) => (sent.reduce((n, r) => n + r.bytes, 0) / 1024).toFixed(1);
  t.log(`status requests: provider ${one.provider.length}, consumer ${one.consumer.length} (N=1 and N=${MANY}); KiB read: provider ${kib(one.provider)} at N=1, ${kib(many.provider)} at N=${MANY}; consumer ${kib(one.consumer)}, ${kib(many.consumer)}`);
  // No more than it shows: none of meshfed's accounts, Roles, Deployments, Namespaces or policies, nor the user's
  // objects; the objects whose existence tells whether an import is complete as metadata only (no spec).
  for (const sent of [...Object.values(many), ...Object.values(one)]) {
    const paths = sent.filter((r) => r.method === 'GET').map((r) => r.path);
    // (istiod's Deployment, in Istio's namespace, tells the Istio version it shows.)
    t.deepEqual(paths.filter((path) => (!path.includes('/namespaces/') && /\/(serviceaccounts|roles|rolebindings|deployments|authorizationpolicies)$/.test(path)) || path === '/api/v1/namespaces'), []);
    t.false(sent.some((r) => (r.query.labelSelector ?? '').includes('managed-by!=')), 'no user object is read');
    const existence = sent.filter((r) => /\/(virtualservices|destinationrules|serviceentries)$/.test(r.path));
    t.true(existence.length === 3 && existence.every((r) => /as=PartialObjectMetadataList/.test(String(r.headers.accept))), existence.map((r) => `${r.path} ${r.headers.accept}`).join('\n'));
  }
});

test.serial('the viewer (no rule about Secrets) runs status and verify: no Secret is answered to it, and the certificates are checked from their published copies', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'meshfed-reads-'));
  const entries = fed.world.clusters.map((c) => {
    c.addToken('viewer-token', 'vera');
    return { name: c.name, server: c.server, caPem: c.caPem, token: 'viewer-token', user: `vera-${c.name}` };
  });
  for (const c of fed.world.clusters) await bindRole(fed.world, c, 'viewer', 'vera');
  const kubeconfig = viewerKubeconfig = writeKubeconfig(entries, 'cluster1', dir);
  const outputs: string[] = [];
  const asViewer = async (args: string[]): Promise<void> => {
    const result = await runCli([...args, '--kubeconfig', kubeconfig]);
    if (result.code !== 0) throw new Error(`as the viewer: kubectl meshfed ${args.join(' ')}: exit ${result.code}\n${result.stdout}${result.stderr}`);
    outputs.push(result.stdout);
  };
  const sent = [
    ...await sentBy(['status', '--context', 'cluster1'], asViewer),
    ...await sentBy(['status', '--context', 'cluster2', '-o', 'json'], asViewer),
    ...await sentBy(['verify', '--context', 'cluster1', '-n', 'default', '--name', 'myreviews-1', '--from', 'cluster2', '--no-probe', '-o', 'json'], asViewer),
  ];
  t.deepEqual(sent.filter((r) => /\/secrets(\/|$)/.test(r.path) && r.status >= 200 && r.status < 300).map((r) => `${r.cluster} ${r.method} ${r.path}`), []);
  const status = JSON.parse(outputs[1]!) as { exports: Array<{ certificateExpires?: string }>; unreadableSecrets?: string[] };
  t.true(status.exports.every((e) => e.certificateExpires), 'the expiry comes from the published certificate');
  t.deepEqual(status.unreadableSecrets, ['istio-meshfed']);
  const report = JSON.parse(outputs[2]!) as { checks: Array<{ code: string; status: string; reason: string | null }> };
  const byCode = (code: string) => report.checks.filter((r) => r.code === code).map((r) => r.status);
  for (const code of ['MF0210', 'MF0211', 'MF0306', 'MF0403', 'MF0404']) t.deepEqual(byCode(code), ['ok'], `${code} runs on the published certificates`);
  t.true(byCode('MF0209').includes('ok') && byCode('MF0305').includes('ok'), 'what is published is checked');
  t.true(report.checks.some((r) => r.code === 'MF0209' && r.status === 'skip' && /key/.test(r.reason ?? '')), 'the key is not checked, and that is said');
  t.false(report.checks.some((r) => r.status === 'fail'), JSON.stringify(report.checks.filter((r) => r.status === 'fail')));
});

test.serial('the viewer sees pending import requests from their published copies (no key in any ConfigMap); one of an earlier version is named with the command that publishes it', async (t) => {
  t.truthy(viewerKubeconfig, 'the viewer test ran first');
  const dir = mkdtempSync(join(tmpdir(), 'meshfed-reads-request-'));
  const request = ['import', '--context', 'cluster1', '-n', 'default', '--from', 'cluster2', '--export', 'bookinfo/later', '--request-out', join(dir, 'request.yaml')];
  await must(request);
  const consumer = fed.world.cluster('cluster1');
  const copies = consumer.list('v1', 'ConfigMap').filter((o) => o.metadata.name.endsWith('.request'));
  t.deepEqual(copies.map((o) => o.metadata.name), [names.binding('cluster2', 'bookinfo', 'later') + '.request']);
  // Private keys stay in Secrets: no ConfigMap of either cluster holds one.
  for (const c of fed.world.clusters) t.false(c.list('v1', 'ConfigMap').some((o) => /PRIVATE KEY/.test(JSON.stringify(o.data ?? {}))), `${c.name}: no private key in a ConfigMap`);
  const asViewer = (args: string[]) => runCli([...args, '--kubeconfig', viewerKubeconfig!]);
  const sent = await sentBy(['status', '--context', 'cluster1', '-o', 'json'], async (args) => {
    const result = await asViewer(args);
    t.is(result.code, 0, result.stderr);
    const status = JSON.parse(result.stdout) as { imports: Array<{ source: string; state: string; namespace: string; requestExpires?: string }> };
    const pending = status.imports.filter((i) => i.state === 'pending');
    t.is(pending.length, 1);
    t.like(pending[0], { source: 'cluster2/bookinfo/later', state: 'pending', namespace: 'default' });
    t.true(Date.parse(pending[0]!.requestExpires ?? '') > Date.now(), 'with the request\'s expiry');
  });
  t.deepEqual(sent.filter((r) => /\/secrets(\/|$)/.test(r.path) && r.status >= 200 && r.status < 300).map((r) => r.path), [], 'no Secret answered to the viewer');
  const text = await asViewer(['status', '--context', 'cluster1']);
  t.regex(text.stdout, /default\/later\s+cluster2\/bookinfo\/later\s.*pending/);
  // verify of the request's name says the import is still a pending request, not just that it does not exist.
  const verify = await asViewer(['verify', '--context', 'cluster1', '-n', 'default', '--import', 'later', '--from', 'cluster2', '--no-probe']);
  t.is(verify.code, 1, verify.stderr);
  t.regex(verify.stderr, /import "later" does not exist in namespace "default" of context "cluster1" yet: an import request for cluster2\/bookinfo\/later \(expires \d{4}-\d\d-\d\d\) is pending/);
  t.regex(verify.stderr, /kubectl meshfed import --bundle bundle\.yaml then completes the import/);

  // A request made by a version that did not publish requests: the copy is not there.
  consumer.delete('v1', 'ConfigMap', copies[0]!.metadata.namespace, copies[0]!.metadata.name);
  const viewerStatus = JSON.parse((await asViewer(['status', '--context', 'cluster1', '-o', 'json'])).stdout) as { imports: Array<{ state: string }> };
  t.false(viewerStatus.imports.some((i) => i.state === 'pending'), 'the viewer cannot see it');
  const viewerText = await asViewer(['status', '--context', 'cluster1']);
  t.regex(viewerText.stdout, /one made by an earlier version of meshfed has none until it is made again, and kubectl meshfed status --context cluster1 as the consumer's operator lists it/);
  const operator = await fed.run(['status', '--context', 'cluster1']);
  t.is(operator.code, 0, operator.stderr);
  t.regex(operator.stderr, /import requests made by a version of meshfed that did not publish them are not shown to users who may not read Secrets \(the viewer role\): cluster2\/bookinfo\/later; publish one by making it again .*: kubectl meshfed import --context cluster1 -n default --from cluster2 --export bookinfo\/later --request-out request\.yaml/);
  const operatorJson = JSON.parse((await fed.run(['status', '--context', 'cluster1', '-o', 'json'])).stdout) as { imports: Array<{ source: string; state: string; published?: boolean }> };
  t.like(operatorJson.imports.find((i) => i.state === 'pending'), { source: 'cluster2/bookinfo/later', published: false });
  // Running the command the hint names publishes it; cancelling the request removes both.
  await must(request);
  t.like((JSON.parse((await asViewer(['status', '--context', 'cluster1', '-o', 'json'])).stdout) as { imports: Array<{ state: string }> }).imports.find((i) => i.state === 'pending'), { source: 'cluster2/bookinfo/later' });
  await must(['unimport', '--context', 'cluster1', '--export', 'cluster2/bookinfo/later']);
  t.deepEqual(consumer.list('v1', 'ConfigMap').filter((o) => o.metadata.name.endsWith('.request')).map((o) => o.metadata.name), []);
  t.deepEqual(consumer.list('v1', 'Secret').filter((o) => o.metadata.name === names.binding('cluster2', 'bookinfo', 'later')).map((o) => o.metadata.name), []);
});
