/**
 * What export and import read does not grow with the cluster's other exports and imports: a re-run of one export
 * (and one import) reads the same bytes with 1 and with many existing exports and imports, because each reads its
 * own objects by the labels that name it, the shared objects, and the records that shared objects depend on; Secrets
 * are listed as metadata and only the command's own are read with their data. Bytes, not time, are compared.
 */
import test from 'ava';
import { DEFAULT_GATEWAY_NAMESPACE, names } from '../../src/federation/index.js';
import { startFederationWorld, type FederationWorld } from '../support/federation.js';

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

/** Response bytes meshfed received from both clusters while running `args` (which must succeed). */
async function bytesRead(args: string[]): Promise<{ bytes: number; secretsWithData: string[] }> {
  const marks = new Map(fed.world.clusters.map((c) => [c.name, c.requests.length]));
  await must(args);
  const sent = fed.world.clusters.flatMap((c) => c.requests.slice(marks.get(c.name)).map((r) => ({ ...r, cluster: c.name })))
    .filter((r) => r.userAgent?.startsWith('kubectl-meshfed'));
  return {
    bytes: sent.reduce((n, r) => n + r.bytes, 0),
    // Secrets read with their data: single-object GETs (lists are metadata only).
    secretsWithData: sent.filter((r) => r.method === 'GET' && /\/secrets\/[^/]+$/.test(r.path)).map((r) => `${r.cluster} ${r.path.split('/').slice(-3).join('/')}`).sort(),
  };
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
});

test.serial('the other exports and imports still work after the narrowed re-runs (their shared objects are kept)', async (t) => {
  // The egress routes and the provider's shared objects were re-planned by runs that read only export 1 and import 1.
  const verify = await fed.run(['verify', '--context', 'cluster1', '-n', 'default', '--import', `myreviews-${MANY}`, '--from', 'cluster2']);
  t.is(verify.code, 0, verify.stdout + verify.stderr);
  const routes = fed.world.cluster('cluster1').get('networking.istio.io/v1beta1', 'DestinationRule', DEFAULT_GATEWAY_NAMESPACE, names.egressRoutes());
  t.is(((routes?.spec as { subsets?: unknown[] } | undefined)?.subsets ?? []).length, MANY, 'one egress subset per imported export');
});
