/**
 * The three-cluster case (operations, staging, production), without shared kubeconfigs: production exports
 * postgres (TCP 5432) and admits operations through the three-step exchange of files; staging, never admitted,
 * is refused; exchange files that were tampered with, expired, or meant for someone else are refused; revoking
 * operations removes its access. The data-path model carries a real postgres SSLRequest probe from Vault's pod.
 */
import test from 'ava';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { createImportRequest, serializeDocument } from '../../src/federation/index.js';
import YAML from 'yaml';
import { binDir } from '../support/cli.js';
import { startFederationWorld, type FederationWorld } from '../support/federation.js';

let fed: FederationWorld;
const dir = mkdtempSync(join(tmpdir(), 'meshfed-exchange-'));
const file = (name: string) => join(dir, name);

/** The postgres SSLRequest; postgres answers "N". Through postgres.vault:5432, the imported name. */
const POSTGRES_PROBE = "printf '\\000\\000\\000\\010\\004\\322\\026\\057' | nc -w 3 postgres.vault 5432 | grep -q N && echo postgres answered || { echo no answer from postgres; exit 1; }";

async function probeFromVault() {
  return fed.curl('operations', 'vault', 'vault', ['sh', '-c', POSTGRES_PROBE]);
}

test.before(async () => {
  fed = await startFederationWorld({
    seed: 'federation',
    clusters: [{ name: 'operations' }, { name: 'staging' }, { name: 'production' }],
  });
});

test.after.always(async () => {
  await fed?.stop();
});

test.serial('production exports postgres as TCP; operations is admitted through request and bundle files and reaches it', async (t) => {
  const exported = await fed.run(['export', '--context', 'production', '-n', 'db', '--service', 'postgres', '--port', '5432']);
  t.is(exported.code, 0, exported.stderr);
  t.regex(exported.stderr, /Service postgres:5432, TCP, boundary/);

  const request = await fed.runCounting(['import', '--context', 'operations', '-n', 'vault', '--from', 'production', '--export', 'db/postgres', '--request-out', file('request.yaml')]);
  t.is(request.code, 0, request.stderr);
  t.deepEqual(request.writes.production, [], 'step 1 touches only the consumer');
  const requestText = readFileSync(file('request.yaml'), 'utf8');
  t.regex(requestText, /kind: ImportRequest/);
  t.regex(requestText, /BEGIN CERTIFICATE REQUEST/);
  t.false(requestText.includes('PRIVATE KEY'), 'the request carries no private key');
  t.truthy(fed.world.cluster('operations').get('v1', 'Secret', 'istio-meshfed', 'mf-bind-production-db-postgres'), 'the key stays in the consumer cluster');

  const admitted = await fed.runCounting(['admit', '--context', 'production', '--request', file('request.yaml'), '--bundle-out', file('bundle.yaml')]);
  t.is(admitted.code, 0, admitted.stderr);
  t.deepEqual(admitted.writes.operations, [], 'step 2 touches only the provider');
  const bundleText = readFileSync(file('bundle.yaml'), 'utf8');
  t.regex(bundleText, /kind: ExportBundle/);
  t.false(bundleText.includes('PRIVATE KEY'), 'the bundle carries no private key');

  // Trust on first use: operations has never imported from production, so the bundle's CA must be confirmed.
  const fingerprint = await fed.caFingerprint('production');
  t.regex(fingerprint, /^SHA256:([0-9A-F]{2}:){31}[0-9A-F]{2}$/);
  const unconfirmed = await fed.runCounting(['import', '--context', 'operations', '-n', 'vault', '--bundle', file('bundle.yaml')]);
  t.is(unconfirmed.code, 1);
  t.regex(unconfirmed.stderr, new RegExp(`imports from provider production for the first time: the bundle's federation CA is ${fingerprint}; nothing was written`));
  t.regex(unconfirmed.stderr, new RegExp(`kubectl meshfed status --context production \\(or export\\) prints on the provider, then pass --ca-fingerprint ${fingerprint}`));
  t.deepEqual(unconfirmed.writes.operations, []);
  const wrong = await fed.runCounting(['import', '--context', 'operations', '-n', 'vault', '--bundle', file('bundle.yaml'), '--ca-fingerprint', `SHA256:${'AB:'.repeat(31)}AB`]);
  t.is(wrong.code, 1);
  t.regex(wrong.stderr, /not the one --ca-fingerprint names/);
  t.deepEqual(wrong.writes.operations, []);
  const providerStatus = await fed.run(['status', '--context', 'production']);
  t.true(providerStatus.stdout.includes(`Federation CA: ${fingerprint}`), providerStatus.stdout);

  const completed = await fed.runCounting(['import', '--context', 'operations', '-n', 'vault', '--bundle', file('bundle.yaml'), '--ca-fingerprint', fingerprint.toLowerCase()]);
  t.is(completed.code, 0, completed.stderr);
  t.regex(completed.stderr, /connect to postgres\.vault:5432/);
  t.deepEqual(completed.writes.production, []);

  const probe = await probeFromVault();
  t.is(probe.code, 0, probe.stdout + probe.stderr + probe.trace.join('\n'));
  t.regex(probe.stdout, /postgres answered/);
});

test.serial('admitting the same request and importing the same bundle again write nothing', async (t) => {
  const admit = await fed.runCounting(['admit', '--context', 'production', '--request', file('request.yaml'), '--bundle-out', file('bundle-again.yaml')]);
  t.is(admit.code, 0, admit.stderr);
  t.deepEqual(admit.writes.production, []);
  const complete = await fed.runCounting(['import', '--context', 'operations', '-n', 'vault', '--bundle', file('bundle.yaml')]);
  t.is(complete.code, 0, complete.stderr);
  t.deepEqual(complete.writes.operations, []);
});

test.serial('tampered, expired and foreign files are refused before anything is written', async (t) => {
  const tamperedBundle = readFileSync(file('bundle.yaml'), 'utf8').replace(/address: .*/, 'address: 198.51.100.66');
  writeFileSync(file('tampered-bundle.yaml'), tamperedBundle);
  const tb = await fed.runCounting(['import', '--context', 'operations', '-n', 'vault', '--bundle', file('tampered-bundle.yaml')]);
  t.is(tb.code, 1);
  t.regex(tb.stderr, /altered/);
  t.deepEqual(tb.writes.operations, []);

  const tamperedRequest = readFileSync(file('request.yaml'), 'utf8').replace(/namespace: vault/, 'namespace: kube-system');
  writeFileSync(file('tampered-request.yaml'), tamperedRequest);
  const tr = await fed.runCounting(['admit', '--context', 'production', '--request', file('tampered-request.yaml'), '--bundle-out', file('never.yaml')]);
  t.is(tr.code, 1);
  t.regex(tr.stderr, /altered/);
  t.deepEqual(tr.writes.production, []);

  // A request signed correctly but four days ago: requests live 72 hours.
  const { request } = createImportRequest(
    { clusterId: 'operations', istioVersion: '1.18.0', services: [], existing: [] },
    { consumerClusterId: 'operations', namespace: 'vault', export: { providerClusterId: 'production', namespace: 'db', exportName: 'postgres' } },
    { now: new Date(Date.now() - 4 * 24 * 3_600_000) },
  );
  writeFileSync(file('expired-request.yaml'), serializeDocument(request));
  const expired = await fed.runCounting(['admit', '--context', 'production', '--request', file('expired-request.yaml'), '--bundle-out', file('never.yaml')]);
  t.is(expired.code, 1);
  t.regex(expired.stderr, /expired/);
  t.deepEqual(expired.writes.production, []);

  // A request for another provider.
  const wrongProvider = await fed.runCounting(['admit', '--context', 'staging', '--request', file('request.yaml'), '--bundle-out', file('never.yaml')]);
  t.is(wrongProvider.code, 1);
  t.regex(wrongProvider.stderr, /exported nothing yet|is for provider production/);
  t.deepEqual(wrongProvider.writes.staging, []);
});

test.serial('staging, never admitted, is refused: operations\' bundle is not for it, and the provider gateway turns it away', async (t) => {
  const noPending = await fed.runCounting(['import', '--context', 'staging', '-n', 'apps', '--bundle', file('bundle.yaml')]);
  t.is(noPending.code, 1);
  t.regex(noPending.stderr, /no pending import request/);
  t.deepEqual(noPending.writes.staging, []);

  const request = await fed.run(['import', '--context', 'staging', '-n', 'apps', '--from', 'production', '--export', 'db/postgres', '--request-out', file('staging-request.yaml')]);
  t.is(request.code, 0, request.stderr);
  const pending = JSON.parse((await fed.run(['status', '--context', 'staging', '-o', 'json'])).stdout);
  t.like(pending.imports[0], { source: 'production/db/postgres', state: 'pending' });
  const foreign = await fed.runCounting(['import', '--context', 'staging', '-n', 'apps', '--bundle', file('bundle.yaml')]);
  t.is(foreign.code, 1);
  t.regex(foreign.stderr, /for consumer operations, not staging/);
  t.deepEqual(foreign.writes.staging, []);

  // Straight to the provider gateway without an admitted certificate: the TLS handshake is refused.
  const address = fed.world.cluster('production').get('v1', 'Service', 'istio-meshfed', 'meshfed-ingress')!;
  const ip = (address.status as { loadBalancer: { ingress: Array<{ ip: string }> } }).loadBalancer.ingress[0]!.ip;
  const direct = await fed.curl('staging', 'apps', 'sleep', ['sh', '-c', `printf '\\000\\000\\000\\010\\004\\322\\026\\057' | nc -w 3 ${ip} 15443 | grep -q N`]);
  t.not(direct.code, 0, direct.trace.join('\n'));
});

test.serial('a bundle that answers an older request is refused once a new request is pending', async (t) => {
  const refusedRekey = await fed.run(['import', '--context', 'operations', '-n', 'vault', '--from', 'production', '--export', 'db/postgres', '--request-out', file('request2.yaml')]);
  t.is(refusedRekey.code, 1, 'a working import is not re-keyed by accident');
  t.regex(refusedRekey.stderr, /--force/);
  const rekey = await fed.run(['import', '--context', 'operations', '-n', 'vault', '--from', 'production', '--export', 'db/postgres', '--request-out', file('request2.yaml'), '--force']);
  t.is(rekey.code, 0, rekey.stderr);
  t.is((await probeFromVault()).code, 0, 'the working key and certificate serve traffic until the new bundle is imported');
  const mismatched = await fed.runCounting(['import', '--context', 'operations', '-n', 'vault', '--bundle', file('bundle.yaml')]);
  t.is(mismatched.code, 1);
  t.regex(mismatched.stderr, /another import request|different key/);
  t.deepEqual(mismatched.writes.operations, []);

  t.is((await fed.run(['admit', '--context', 'production', '--request', file('request2.yaml'), '--bundle-out', file('bundle2.yaml')])).code, 0);
  const completed = await fed.run(['import', '--context', 'operations', '-n', 'vault', '--bundle', file('bundle2.yaml')]);
  t.is(completed.code, 0, completed.stderr);
  t.is((await probeFromVault()).code, 0, 'the renewed certificate works');
  const binding = fed.world.cluster('operations').get('v1', 'Secret', 'istio-meshfed', 'mf-bind-production-db-postgres')!;
  t.deepEqual(Object.keys(binding.data as Record<string, string>).sort(), ['ca.crt', 'tls.crt', 'tls.key'], 'the pending key became the key');
  t.deepEqual(Object.keys(binding.metadata.annotations ?? {}).filter((k) => k.startsWith('meshfed.io/request')), []);
  const bundle2 = YAML.parse(readFileSync(file('bundle2.yaml'), 'utf8')) as { spec: { clientCertificatePem: string } };
  t.is(Buffer.from((binding.data as Record<string, string>)['tls.crt']!, 'base64').toString('utf8').trim(), bundle2.spec.clientCertificatePem.trim());
});

test.serial('revoking operations removes its access', async (t) => {
  const revoked = await fed.runCounting(['revoke', '--context', 'production', '-n', 'db', '--name', 'postgres', '--consumer', 'operations']);
  t.is(revoked.code, 0, revoked.stderr);
  t.deepEqual(revoked.writes.operations, []);
  const probe = await probeFromVault();
  t.not(probe.code, 0, probe.stdout);
  t.regex(probe.stdout, /no answer from postgres/);
  const status = JSON.parse((await fed.run(['status', '--context', 'production', '-o', 'json'])).stdout);
  t.deepEqual(status.exports[0].consumers, []);
});

test.serial('the three steps piped into each other, with - for every file, as one shell pipeline', async (t) => {
  const meshfed = `kubectl meshfed --kubeconfig '${fed.kubeconfig}'`;
  const pipeline = [
    `${meshfed} import --context staging -n apps --from production --export db/postgres --request-out -`,
    `${meshfed} admit --context production --request - --bundle-out -`,
    `${meshfed} import --context staging -n apps --bundle - --ca-fingerprint ${await fed.caFingerprint('production')}`,
  ].join(' | ');
  // Each step starts at once; the last one must wait for the bundle before it looks for the pending request.
  const result = await new Promise<{ code: number | null; stderr: string }>((resolve, reject) => {
    const child = spawn('bash', ['-c', `set -o pipefail; ${pipeline}`], { env: { ...process.env, PATH: `${binDir}${delimiter}${process.env.PATH ?? ''}` }, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stderr }));
  });
  t.is(result.code, 0, result.stderr);
  t.regex(result.stderr, /Imported: apps in the mesh connect to postgres\.apps:5432/);
  const probe = await fed.curl('staging', 'apps', 'sleep', ['sh', '-c', POSTGRES_PROBE.replace('postgres.vault', 'postgres.apps')]);
  t.is(probe.code, 0, probe.stdout + probe.stderr + probe.trace.join('\n'));

  const empty = await fed.run(['admit', '--context', 'production', '--request', '-', '--bundle-out', '-']);
  t.is(empty.code, 1);
  t.regex(empty.stderr, /--request -: standard input is empty/);
  const swapped = await fed.runCounting(['import', '--context', 'staging', '-n', 'apps', '--bundle', file('request.yaml')]);
  t.is(swapped.code, 1);
  t.regex(swapped.stderr, /the file is an ImportRequest .*the provider admits it with kubectl meshfed admit/);
  t.deepEqual(swapped.writes.staging, []);
});
