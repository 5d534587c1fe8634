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

test.serial(`export and import re-runs read as many bytes with ${MANY} existing exports and imports as with 1`, async (t) => {
  t.timeout(30 * 60_000);
  await must(exportArgs(1));
  await must(importArgs(1));
  const exportOne = await bytesRead(exportArgs(1));
  const importOne = await bytesRead(importArgs(1));
  for (let i = 2; i <= MANY; i++) {
    await must(exportArgs(i));
    await must(importArgs(i));
  }
  const exportMany = await bytesRead(exportArgs(1));
  const importMany = await bytesRead(importArgs(1));
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
  t.log(`status requests: provider ${one.provider.length}, consumer ${one.consumer.length} (N=1 and N=${MANY})`);
});

test.serial('the viewer (no rule about Secrets) runs status and verify: no Secret is answered to it, and the certificates are checked from their published copies', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'meshfed-reads-'));
  const entries = fed.world.clusters.map((c) => {
    c.addToken('viewer-token', 'vera');
    return { name: c.name, server: c.server, caPem: c.caPem, token: 'viewer-token', user: `vera-${c.name}` };
  });
  for (const c of fed.world.clusters) await bindRole(fed.world, c, 'viewer', 'vera');
  const kubeconfig = writeKubeconfig(entries, 'cluster1', dir);
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
