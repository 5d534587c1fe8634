/**
 * Trust on first use of a provider's federation CA in the three-step flow: on a terminal, importing the first bundle
 * of a provider shows the CA's fingerprint (the one the provider's export and status print) and asks; declining
 * writes nothing. A bundle from a provider the cluster already trusts is taken without asking; one carrying another
 * CA for that provider (here: the provider uninstalled meshfed and exported again, so its CA is new) is refused
 * without a terminal, naming both fingerprints, unless the new one is given.
 */
import test from 'ava';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { providerCaTrust } from '../../src/federation/index.js';
import { converse } from '../support/cli.js';
import { clusterObjects, startFederationWorld, type FederationWorld } from '../support/federation.js';

let fed: FederationWorld;
const dir = mkdtempSync(join(tmpdir(), 'meshfed-first-use-'));
const file = (name: string) => join(dir, name);
const ENTER = '\r';

test.before(async () => {
  fed = await startFederationWorld({ seed: 'federation', clusters: [{ name: 'operations' }, { name: 'staging' }, { name: 'production' }] });
  const steps = [
    ['export', '--context', 'production', '-n', 'db', '--service', 'postgres', '--port', '5432'],
    ['import', '--context', 'operations', '-n', 'vault', '--from', 'production', '--export', 'db/postgres', '--request-out', file('request.yaml')],
    ['admit', '--context', 'production', '--request', file('request.yaml'), '--bundle-out', file('bundle.yaml')],
  ];
  for (const step of steps) {
    const result = await fed.run(step);
    if (result.code !== 0) throw new Error(`${step.join(' ')}: ${result.stderr}`);
  }
});

test.after.always(async () => {
  await fed?.stop();
});

test.serial('export prints the provider\'s federation CA fingerprint, the same status shows', async (t) => {
  const again = await fed.run(['export', '--context', 'production', '-n', 'db', '--service', 'postgres', '--port', '5432']);
  t.is(again.code, 0, again.stderr);
  const fingerprint = await fed.caFingerprint('production');
  t.true(again.stderr.includes(`Federation CA of this provider: ${fingerprint}`), again.stderr);
});

test.serial('on a terminal, the first bundle of a provider shows its CA fingerprint and asks; declining writes nothing', async (t) => {
  const fingerprint = await fed.caFingerprint('production');
  const escaped = fingerprint.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const declined = await converse(fed.kubeconfig, ['import', '--context', 'operations', '-n', 'vault', '--bundle', file('bundle.yaml')], [
    { expect: new RegExp(`Trust federation CA ${escaped} for provider production\\?`), keys: 'n' + ENTER },
  ]);
  t.is(declined.code, 1, declined.screen);
  t.regex(declined.screen, /imports from provider production for the first time/);
  t.regex(declined.screen, /not confirmed; nothing was written/);
  t.falsy(fed.world.cluster('operations').get('v1', 'Service', 'vault', 'postgres'));

  const accepted = await converse(fed.kubeconfig, ['import', '--context', 'operations', '-n', 'vault', '--bundle', file('bundle.yaml')], [
    { expect: new RegExp(`Trust federation CA ${escaped} for provider production\\?`), keys: 'y' + ENTER },
    { expect: /Local name apps will call/, keys: ENTER },
    { expect: /Apply these changes to context "operations"\?/, keys: 'y' + ENTER },
  ]);
  t.is(accepted.code, 0, accepted.screen);
  t.truthy(fed.world.cluster('operations').get('v1', 'Service', 'vault', 'postgres'));
});

test.serial('a known provider\'s CA is taken without asking; another CA for it is "changed" and needs confirming', async (t) => {
  const again = await fed.runCounting(['import', '--context', 'operations', '-n', 'vault', '--bundle', file('bundle.yaml')]);
  t.is(again.code, 0, again.stderr);
  t.deepEqual(again.writes.operations, []);

  // The consumer's view: its binding to production carries production's CA.
  const operations = fed.world.cluster('operations');
  const existing = ['Secret'].flatMap((kind) => operations.list('', kind));
  const snapshot = { existing } as unknown as Parameters<typeof providerCaTrust>[0];
  const productionCa = Buffer.from((fed.world.cluster('production').get('v1', 'Secret', 'meshfed-ca', 'meshfed-federation-ca')!.data as Record<string, string>)['ca.crt']!, 'base64').toString('utf8');
  const known = providerCaTrust(snapshot, 'production', productionCa);
  t.is(known.status, 'known');
  t.is(known.fingerprint, await fed.caFingerprint('production'));
  // Any other CA (here the operations mesh's root) for the same provider is a change, naming the one trusted.
  const otherCa = Buffer.from((operations.get('v1', 'Secret', 'istio-system', 'cacerts')!.data as Record<string, string>)['ca-cert.pem']!, 'base64').toString('utf8');
  const changed = providerCaTrust(snapshot, 'production', otherCa);
  t.is(changed.status, 'changed');
  t.deepEqual(changed.knownFingerprints, [known.fingerprint]);
  t.is(providerCaTrust(snapshot, 'staging', otherCa).status, 'new');
});

test.serial('a bundle carrying another CA for a provider this cluster already trusts is refused, naming both fingerprints and what to do; nothing is written', async (t) => {
  const trusted = await fed.caFingerprint('production');
  // The provider starts over: meshfed uninstalled (its federation CA with it), the export made again under a new CA.
  const uninstalled = await fed.run(['uninstall', '--context', 'production', '--force', '--yes']);
  t.is(uninstalled.code, 0, uninstalled.stderr);
  const exported = await fed.run(['export', '--context', 'production', '-n', 'db', '--service', 'postgres', '--port', '5432']);
  t.is(exported.code, 0, exported.stderr);
  const other = await fed.caFingerprint('production');
  t.not(other, trusted);
  // The consumer asks again (re-keying its import) and the provider admits the request: the bundle carries the new CA.
  const requested = await fed.run(['import', '--context', 'operations', '-n', 'vault', '--from', 'production', '--export', 'db/postgres', '--request-out', file('request-2.yaml'), '--force']);
  t.is(requested.code, 0, requested.stderr);
  const admitted = await fed.run(['admit', '--context', 'production', '--request', file('request-2.yaml'), '--bundle-out', file('bundle-2.yaml')]);
  t.is(admitted.code, 0, admitted.stderr);

  const versions = () => new Map(clusterObjects(fed.world, 'operations').map((o) => [`${o.kind} ${o.metadata.namespace ?? ''}/${o.metadata.name}`, o.metadata.resourceVersion]));
  const before = versions();
  for (const extra of [[], ['--ca-fingerprint', other]]) {
    const refused = await fed.runCounting(['import', '--context', 'operations', '-n', 'vault', '--bundle', file('bundle-2.yaml'), ...extra]);
    t.is(refused.code, 1, refused.stderr);
    t.true(refused.stderr.includes(`the ExportBundle carries federation CA ${other} for provider production, and the CA this cluster already trusts for it (${trusted}) did not sign it`), refused.stderr);
    t.true(refused.stderr.includes(`compare ${other} with the fingerprint the provider's status prints: if the provider has a new federation CA, remove this cluster's imports from production (unimport) and import again`), refused.stderr);
    t.deepEqual(refused.writes.operations, []);
    t.deepEqual(versions(), before);
  }

  // What the message says to do, once the fingerprint is compared: the imports from production go, and the new CA is
  // confirmed as a first one.
  const removed = await fed.run(['unimport', '--context', 'operations', '-n', 'vault', 'postgres']);
  t.is(removed.code, 0, removed.stderr);
  const requestedAgain = await fed.run(['import', '--context', 'operations', '-n', 'vault', '--from', 'production', '--export', 'db/postgres', '--request-out', file('request-3.yaml')]);
  t.is(requestedAgain.code, 0, requestedAgain.stderr);
  const admittedAgain = await fed.run(['admit', '--context', 'production', '--request', file('request-3.yaml'), '--bundle-out', file('bundle-3.yaml')]);
  t.is(admittedAgain.code, 0, admittedAgain.stderr);
  const unconfirmed = await fed.run(['import', '--context', 'operations', '-n', 'vault', '--bundle', file('bundle-3.yaml'), '--name', 'postgres']);
  t.is(unconfirmed.code, 1, unconfirmed.stderr);
  t.regex(unconfirmed.stderr, /imports from provider production for the first time/);
  const confirmed = await fed.run(['import', '--context', 'operations', '-n', 'vault', '--bundle', file('bundle-3.yaml'), '--name', 'postgres', '--ca-fingerprint', other]);
  t.is(confirmed.code, 0, confirmed.stderr);
  t.truthy(fed.world.cluster('operations').get('v1', 'Service', 'vault', 'postgres'));
});
