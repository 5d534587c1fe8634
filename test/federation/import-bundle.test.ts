// Completing an import with a bundle: what the bundle claims, which key or record it is checked against, and trust
// on first use of the provider's federation CA.
import test from 'ava';
import YAML from 'yaml';
import {
  admitImportRequest, BundleError, claimedExport, createImportRequest, homeNamespaceOf, importBeingRekeyed, LABELS, parseImportRequest, pendingRequestOf,
  planImport, readImportRecords, samePem, serializeDocument, trustedFederationCa, verifyBundleForImport, type ConsumerSnapshot, type KubeObject,
} from '../../src/federation/index.js';
import { applyPlan, runScenario, seedBlogExchange } from './scenario.js';

const { base, now, provider, consumerStart, ref } = seedBlogExchange();

const requested = createImportRequest(consumerStart, { consumerClusterId: 'cluster1', namespace: 'default', export: ref }, { now });
const consumerPending = applyPlan(consumerStart, requested.plan);
const { bundle } = admitImportRequest(provider, parseImportRequest(serializeDocument(requested.request), { now }), { now });
const bundleText = serializeDocument(bundle);
/** The consumer of the scenario after its import was applied: no pending request left, the key and certificate stored. */
const consumerImported: ConsumerSnapshot = { ...base.input.consumer, existing: base.consumerObjects };
const importedBundleText = serializeDocument(base.bundle);

function caSecret(providerClusterId: string, caPem: string): KubeObject {
  return {
    apiVersion: 'v1', kind: 'Secret',
    metadata: { name: `mf-bind-${providerClusterId}-other`, namespace: homeNamespaceOf(consumerStart), labels: { [LABELS.provider]: providerClusterId } },
    data: { 'ca.crt': Buffer.from(caPem).toString('base64') },
  };
}

test('claimedExport reads the export, mode, nonce and certificate a bundle claims', (t) => {
  const claim = claimedExport(bundleText);
  t.deepEqual(claim.export, ref);
  t.is(claim.mode, 'boundary');
  t.is(claim.nonce, requested.request.spec.nonce);
  t.true(samePem(claim.clientCertificatePem!, bundle.spec.clientCertificatePem!));
});

test('claimedExport never throws: an unreadable or incomplete file claims empty values', (t) => {
  const empty = { export: { providerClusterId: '', namespace: '', exportName: '' } };
  t.deepEqual(claimedExport('{ not yaml'), empty);
  t.deepEqual(claimedExport(''), empty);
  t.deepEqual(claimedExport('- a list'), empty);
  t.deepEqual(claimedExport('kind: ExportBundle\nspec: 5\n'), empty);
  // A request handed to the wrong step has no endpoint.
  t.deepEqual(claimedExport(serializeDocument(requested.request)).export, empty.export);
  t.deepEqual(claimedExport('spec: { endpoint: { providerClusterId: cluster2, namespace: db, exportName: 7 }, nonce: 3 }'), {
    export: { providerClusterId: 'cluster2', namespace: 'db', exportName: '7' },
  });
});

test('a bundle is checked against the pending request: its key comes back with it', (t) => {
  const verified = verifyBundleForImport(consumerPending, bundleText, { consumerClusterId: 'cluster1', now });
  t.deepEqual(verified?.bundle, bundle);
  t.is(verified?.privateKeyPem, pendingRequestOf(consumerPending, ref)!.privateKeyPem);
  const error = t.throws(() => verifyBundleForImport(consumerPending, bundleText, { consumerClusterId: 'cluster3', now }), { instanceOf: BundleError });
  t.is(error?.code, 'foreign');
  t.is(t.throws(() => verifyBundleForImport(consumerPending, bundleText, { consumerClusterId: 'cluster1', now: new Date(now.getTime() + 80 * 3_600_000) }), { instanceOf: BundleError })?.code, 'expired');
});

test('without a pending request or an import made with it, there is nothing to check a bundle against', (t) => {
  t.is(verifyBundleForImport(consumerStart, bundleText, { consumerClusterId: 'cluster1', now }), undefined);
  t.is(verifyBundleForImport(consumerPending, '{ not yaml', { consumerClusterId: 'cluster1', now }), undefined);
  // The imported cluster stores another certificate than this bundle's (it came from another request).
  t.is(verifyBundleForImport(consumerImported, bundleText, { consumerClusterId: 'cluster1', now }), undefined);
});

test('the bundle already imported is checked again against the stored certificate and key', (t) => {
  t.is(pendingRequestOf(consumerImported, ref), undefined);
  const verified = verifyBundleForImport(consumerImported, importedBundleText, { consumerClusterId: 'cluster1', now });
  t.deepEqual(verified?.bundle, base.bundle);
  t.true(verified?.privateKeyPem?.includes('PRIVATE KEY'));
});

test('shared-root keeps no key: the bundle already imported is checked against the import record', (t) => {
  const shared = runScenario('seed-question-shared-root-tcp');
  const consumer: ConsumerSnapshot = { ...shared.input.consumer, existing: shared.consumerObjects };
  const text = serializeDocument(shared.bundle);
  const sharedRef = claimedExport(text).export;
  t.is(pendingRequestOf(consumer, sharedRef), undefined);
  const verified = verifyBundleForImport(consumer, text, { consumerClusterId: shared.input.import.consumerClusterId, now: new Date(shared.input.now) });
  t.deepEqual(verified?.bundle, shared.bundle);
  t.is(verified?.privateKeyPem, undefined);
  // The same cluster before the import had neither a record nor a pending key left.
  t.is(verifyBundleForImport({ ...consumer, existing: [] }, text, { consumerClusterId: shared.input.import.consumerClusterId, now: new Date(shared.input.now) }), undefined);
});

test('trust on first use: a provider already trusted must sign with the same federation CA', (t) => {
  t.is(trustedFederationCa(consumerPending, 'cluster2'), undefined, 'a pending key Secret holds no CA');
  t.true(samePem(trustedFederationCa(consumerImported, 'cluster2')!, base.bundle.spec.federationCaPem));
  t.is(trustedFederationCa(consumerImported, 'cluster9'), undefined);

  const otherCa = runScenario('boundary-tcp').bundle.spec.federationCaPem;
  const pinned = { ...consumerPending, existing: [...consumerPending.existing, caSecret('cluster2', otherCa)] };
  t.is(trustedFederationCa(pinned, 'cluster2'), otherCa);
  const error = t.throws(() => verifyBundleForImport(pinned, bundleText, { consumerClusterId: 'cluster1', now }), { instanceOf: BundleError });
  t.is(error?.code, 'foreign');
  t.regex(error!.message, /already trusts/);
  // The CA of another provider does not pin this one.
  const elsewhere = { ...consumerPending, existing: [...consumerPending.existing, caSecret('cluster9', otherCa)] };
  t.deepEqual(verifyBundleForImport(elsewhere, bundleText, { consumerClusterId: 'cluster1', now })?.bundle, bundle);
});

test('a bundle edited to claim another export is not checked against this export\'s key', (t) => {
  const edited = YAML.stringify({ ...bundle, spec: { ...bundle.spec, endpoint: { ...bundle.spec.endpoint, exportName: 'ratings' } } }, { lineWidth: 0 });
  t.deepEqual(claimedExport(edited).export, { ...ref, exportName: 'ratings' });
  t.is(verifyBundleForImport(consumerPending, edited, { consumerClusterId: 'cluster1', now }), undefined);
});

test('the import a re-keying bundle completes: the one of its export in the namespace; of several, the one the command names', (t) => {
  const [record] = readImportRecords(consumerImported);
  const target = record!.endpoint;
  t.is(importBeingRekeyed(consumerImported, target, record!.namespace)?.localName, record!.localName);
  t.is(importBeingRekeyed(consumerImported, target, record!.namespace, record!.localName)?.localName, record!.localName);
  t.is(importBeingRekeyed(consumerImported, target, record!.namespace, 'elsewhere'), undefined, 'a name no import of the export has: a new import');
  t.is(importBeingRekeyed(consumerImported, target, 'other'), undefined, 'not imported in that namespace');
  // A second import of the same export shares its binding: the credentials stored there.
  const binding = consumerImported.existing.find((o) => o.kind === 'Secret' && o.metadata.labels?.[LABELS.binding] && o.data && 'tls.crt' in (o.data as object))!;
  const pem = (key: string) => Buffer.from((binding.data as Record<string, string>)[key]!, 'base64').toString('utf8');
  const credentials = { certificatePem: pem('tls.crt'), privateKeyPem: pem('tls.key'), caCertificatePem: pem('ca.crt') };
  const second = planImport(consumerImported, { endpoint: target, credentials }, { consumerClusterId: 'cluster1', namespace: record!.namespace, localName: 'second' }, { now });
  const twice = applyPlan(consumerImported, second);
  t.throws(() => importBeingRekeyed(twice, target, record!.namespace), { message: new RegExp(`under several local names \\((${record!.localName}, second|second, ${record!.localName})\\): say which one the bundle re-keys with --local-name`) });
  t.is(importBeingRekeyed(twice, target, record!.namespace, 'second')?.localName, 'second');
  t.is(importBeingRekeyed(twice, target, record!.namespace, record!.localName)?.localName, record!.localName);
});
