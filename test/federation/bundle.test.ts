// Exchange documents: round trip, never a private key, and refusal of tampered, expired, foreign or mismatched
// documents with a code a command can map to a message.
import test, { type ExecutionContext } from 'ava';
import YAML from 'yaml';
import { generateKeyPair, inspectCertificate, keyMatchesCertificate, verifyCertificateChain } from '../../src/pki/index.js';
import {
  admitImportRequest, BundleError, checkExchangeDocument, createImportRequest, directCredentials, homeNamespaceOf, names, planAdmission, parseExportBundle, parseImportRequest, pendingRequestOf, pendingRequests,
  planCancelRequest, FederationInputError, planImport, planUnimport, publishedRequest, publishedRequests, stalePublishedRequests, bundleCredentials,
  samePem, serializeDocument, type BundleErrorCode, type ConsumerSnapshot, type ImportRequest, type ProviderSnapshot,
} from '../../src/federation/index.js';
import { applyPlan, runScenario, seedBlogExchange } from './scenario.js';

const { base, now, provider, consumerStart, ref } = seedBlogExchange();

function newRequest(at = now) {
  const { request, plan } = createImportRequest(consumerStart, { consumerClusterId: 'cluster1', namespace: 'default', export: ref }, { now: at });
  const consumer = applyPlan(consumerStart, plan);
  return { request, consumer, pending: pendingRequestOf(consumer, ref)! };
}

const { request, pending } = newRequest();
const requestText = serializeDocument(request);
/** When a request made at `now` expires (the default lifetime, 72 hours). */
const requestExpiry = new Date(now.getTime() + 72 * 3_600_000).toISOString();
const { bundle } = admitImportRequest(provider, parseImportRequest(requestText, { now }), { now });
const bundleText = serializeDocument(bundle);

function edit(text: string, change: (doc: Record<string, any>) => void): string { // eslint-disable-line @typescript-eslint/no-explicit-any
  const doc = YAML.parse(text);
  change(doc);
  return YAML.stringify(doc, { lineWidth: 0 });
}

function refused(t: ExecutionContext, fn: () => unknown, code: BundleErrorCode, message?: RegExp): void {
  const error = t.throws(fn, { instanceOf: BundleError });
  t.is(error?.code, code, error?.message);
  if (message) t.regex(error!.message, message);
}

test('documents are versioned YAML and never contain a private key', (t) => {
  for (const text of [requestText, bundleText]) {
    t.false(/PRIVATE KEY/.test(text));
    t.regex(text, /^apiVersion: meshfed\.io\/v1alpha1$/m);
  }
  const keyBody = pending.privateKeyPem.split('\n')[1]!;
  t.false(requestText.includes(keyBody) || bundleText.includes(keyBody));
  t.is(request.spec.export.exportName, 'myreviews');
  t.truthy(bundle.spec.clientCertificatePem);
  t.is(bundle.spec.nonce, request.spec.nonce);
});

test('a document holding a private key is neither written nor read', (t) => {
  const leaky = { ...request, spec: { ...request.spec, csr: pending.privateKeyPem } } as ImportRequest;
  refused(t, () => serializeDocument(leaky), 'contains-private-key');
  refused(t, () => parseImportRequest(edit(requestText, (d) => { d.spec.note = pending.privateKeyPem; }), { now }), 'contains-private-key');
});

test('import request: round trip', (t) => {
  t.deepEqual(parseImportRequest(requestText, { now }), request);
});

test('import request: tampered content is refused', (t) => {
  refused(t, () => parseImportRequest(edit(requestText, (d) => { d.spec.namespace = 'kube-system'; }), { now }), 'bad-signature', /altered/);
  refused(t, () => parseImportRequest(edit(requestText, (d) => { d.spec.serviceAccounts = ['admin']; }), { now }), 'bad-signature');
});

test('import request: a CSR for another key is refused', (t) => {
  const other = newRequest().request;
  refused(t, () => parseImportRequest(edit(requestText, (d) => { d.spec.csr = other.spec.csr; }), { now }), 'key-mismatch');
});

test('import request: expiry, clock and format', (t) => {
  refused(t, () => parseImportRequest(requestText, { now: new Date(now.getTime() + 73 * 3_600_000) }), 'expired', /expired/);
  refused(t, () => parseImportRequest(requestText, { now: new Date(now.getTime() - 3_600_000) }), 'not-yet-valid');
  refused(t, () => parseImportRequest(edit(requestText, (d) => { d.apiVersion = 'meshfed.io/v2'; }), { now }), 'unsupported-version');
  refused(t, () => parseImportRequest(edit(requestText, (d) => { d.kind = 'ExportBundle'; }), { now }), 'malformed');
  refused(t, () => parseImportRequest('{ not yaml', { now }), 'malformed');
  refused(t, () => parseImportRequest(edit(requestText, (d) => { delete d.signature; }), { now }), 'malformed');
});

test('admission refuses a request for another provider or for another cluster\'s identity', (t) => {
  refused(t, () => admitImportRequest(provider, { ...request, spec: { ...request.spec, export: { ...ref, providerClusterId: 'cluster9' } } }, { now }), 'foreign');
  // cluster3 replays cluster1's CSR under its own name: the CSR's SPIFFE id names cluster1.
  refused(t, () => admitImportRequest(provider, { ...request, spec: { ...request.spec, consumerClusterId: 'cluster3' } }, { now }), 'foreign', /another cluster/);
});

test('export bundle: round trip against the pending request', (t) => {
  t.deepEqual(parseExportBundle(bundleText, { now, expect: pending }), bundle);
  t.deepEqual(parseExportBundle(bundleText, { now, expect: pending, trustedCaPem: bundle.spec.federationCaPem }), bundle);
});

test('export bundle: tampered content is refused', (t) => {
  refused(t, () => parseExportBundle(edit(bundleText, (d) => { d.spec.endpoint.gateway.address = '192.0.2.66'; }), { now, expect: pending }), 'bad-signature');
  refused(t, () => parseExportBundle(edit(bundleText, (d) => { d.spec.endpoint.sni = 'other.bookinfo.cluster2.export.meshfed.internal'; }), { now, expect: pending }), 'bad-signature');
});

test('export bundle: expired', (t) => {
  refused(t, () => parseExportBundle(bundleText, { now: new Date(now.getTime() + 80 * 3_600_000), expect: pending }), 'expired');
});

test('export bundle: foreign consumer, request or CA', (t) => {
  refused(t, () => parseExportBundle(bundleText, { now, expect: { ...pending, consumerClusterId: 'cluster3' } }), 'foreign', /cluster3/);
  refused(t, () => parseExportBundle(bundleText, { now, expect: { ...pending, nonce: 'f'.repeat(32) } }), 'foreign', /another import request/);
  const otherProvider = runScenario('boundary-tcp').bundle.spec.federationCaPem;
  refused(t, () => parseExportBundle(bundleText, { now, expect: pending, trustedCaPem: otherProvider }), 'foreign');
  // A bundle that swaps in another CA does not pass as the trusted provider's.
  const forged = edit(bundleText, (d) => { d.spec.federationCaPem = otherProvider; });
  refused(t, () => parseExportBundle(forged, { now, expect: pending, trustedCaPem: bundle.spec.federationCaPem }), 'foreign');
  // Without a pinned CA, the swapped CA did not sign the bundle.
  refused(t, () => parseExportBundle(forged, { now, expect: pending }), 'bad-signature');
});

test('export bundle: a client certificate for another key is refused', (t) => {
  refused(t, () => parseExportBundle(bundleText, { now, expect: { ...pending, privateKeyPem: generateKeyPair().privateKeyPem } }), 'key-mismatch');
});

test('a file handed to the wrong step says what it is and who uses it', (t) => {
  refused(t, () => parseImportRequest(bundleText, { now }), 'malformed', /is an ExportBundle \(step 2, written by the provider\), not an ImportRequest: the consumer completes the import with kubectl meshfed import --bundle/);
  refused(t, () => parseExportBundle(requestText, { now, expect: pending }), 'malformed', /is an ImportRequest \(step 1, written by the consumer\), not an ExportBundle: the provider admits it with kubectl meshfed admit --request/);
  refused(t, () => checkExchangeDocument(requestText, 'ExportBundle'), 'malformed', /is an ImportRequest/);
  refused(t, () => checkExchangeDocument('kind: Secret\n', 'ExportBundle'), 'malformed', /is not an ExportBundle .*its kind is Secret/);
  t.notThrows(() => checkExchangeDocument(bundleText, 'ExportBundle'));
  t.notThrows(() => checkExchangeDocument(requestText, 'ImportRequest'));
});

test('a request admitted in another provider names the cluster it is for', (t) => {
  const foreign = { ...request, spec: { ...request.spec, export: { ...ref, providerClusterId: 'cluster9' } } };
  refused(t, () => admitImportRequest(provider, foreign, { now }), 'foreign', /is for provider cluster9, but this is cluster2; admit it in the context of cluster cluster9 \(--from\)$/);
});

test('pendingRequests lists the exports a consumer has asked for and not imported yet', (t) => {
  t.deepEqual(pendingRequests(consumerStart), []);
  const { consumer } = newRequest();
  t.deepEqual(pendingRequests(consumer), [{ ...ref, importNamespace: 'default', expiresAt: requestExpiry, published: true }]);
  const other = { providerClusterId: 'cluster3', namespace: 'db', exportName: 'postgres' };
  const second = applyPlan(consumer, createImportRequest(consumer, { consumerClusterId: 'cluster1', namespace: 'default', export: other }, { now }).plan);
  t.deepEqual(new Set(pendingRequests(second).map((r) => `${r.providerClusterId}/${r.namespace}/${r.exportName}`)), new Set(['cluster2/bookinfo/myreviews', 'cluster3/db/postgres']));
});

test('pendingRequests reads back a request whose export name is too long for the binding label', (t) => {
  const long = { providerClusterId: 'cluster3', namespace: 'payments-and-settlements-production', exportName: 'postgres-primary-read-write-endpoint' };
  const consumer = applyPlan(consumerStart, createImportRequest(consumerStart, { consumerClusterId: 'cluster1', namespace: 'default', export: long }, { now }).plan);
  const secret = consumer.existing.find((o) => o.kind === 'Secret' && o.metadata.name === names.binding(long.providerClusterId, long.namespace, long.exportName))!;
  t.not(secret.metadata.labels?.['meshfed.io/binding'], `${long.providerClusterId}.${long.namespace}.${long.exportName}`, 'the label is shortened');
  t.deepEqual(pendingRequests(consumer), [{ ...long, importNamespace: 'default', expiresAt: requestExpiry, published: true }]);
  // Its published copy names the export in full too (the viewer role reads it).
  t.deepEqual(publishedRequests(consumer), [{ ...long, importNamespace: 'default', expiresAt: requestExpiry }]);
  t.truthy(pendingRequestOf(consumer, long));
});

test('pendingRequests still reads requests recorded by label only (Secrets of earlier versions)', (t) => {
  const { consumer } = newRequest();
  const old = {
    ...consumer,
    // Nor was a request published beside its Secret.
    existing: consumer.existing.filter((o) => !(o.kind === 'ConfigMap' && o.metadata.name.endsWith('.request'))).map((o) => {
      if (o.kind !== 'Secret' || !o.metadata.annotations) return o;
      const annotations = Object.fromEntries(Object.entries(o.metadata.annotations).filter(([k]) => k !== 'meshfed.io/request-export' && k !== 'meshfed.io/request-namespace'));
      return { ...o, metadata: { ...o.metadata, annotations } };
    }),
  };
  t.deepEqual(pendingRequests(old), [{ ...ref, expiresAt: requestExpiry, published: false }]);
  t.deepEqual(publishedRequests(old), []);
});

test('planCancelRequest deletes the pending key of a request never completed, and only that', (t) => {
  const { consumer } = newRequest();
  const other = { providerClusterId: 'cluster3', namespace: 'db', exportName: 'postgres' };
  const both = applyPlan(consumer, createImportRequest(consumer, { consumerClusterId: 'cluster1', namespace: 'default', export: other }, { now }).plan);
  const plan = planCancelRequest(both, ref);
  const name = names.binding(ref.providerClusterId, ref.namespace, ref.exportName);
  t.deepEqual(plan.remove, [
    { apiVersion: 'v1', kind: 'ConfigMap', namespace: homeNamespaceOf(both), name: `${name}.request` },
    { apiVersion: 'v1', kind: 'Secret', namespace: homeNamespaceOf(both), name },
  ]);
  t.deepEqual(plan.objects, []);
  const after = applyPlan(both, plan);
  t.deepEqual(pendingRequests(after), [{ ...other, importNamespace: 'default', expiresAt: requestExpiry, published: true }]);
  t.deepEqual(publishedRequests(after), [{ ...other, importNamespace: 'default', expiresAt: requestExpiry }]);
  t.is(pendingRequestOf(after, ref), undefined);
  const error = t.throws(() => planCancelRequest(after, ref), { instanceOf: FederationInputError });
  t.is(error?.message, 'no import request for cluster2/bookinfo/myreviews is pending in cluster cluster1 (pending: cluster3/db/postgres)');
});

test('planCancelRequest refuses a request that re-keys a working import (its Secret holds the key in use)', (t) => {
  const imported: ConsumerSnapshot = { ...base.input.consumer, existing: base.consumerObjects };
  const rekeying = applyPlan(imported, createImportRequest(imported, { consumerClusterId: 'cluster1', namespace: 'default', export: ref }, { now }).plan);
  t.deepEqual(pendingRequests(rekeying), [{ ...ref, importNamespace: 'default', expiresAt: requestExpiry, published: true }]);
  const error = t.throws(() => planCancelRequest(rekeying, ref), { instanceOf: FederationInputError });
  t.regex(error!.message, /cluster2\/bookinfo\/myreviews is imported already \(as default\/myreviews\)/);
});

test('directCredentials: a new key and a CA-signed certificate, kept on a re-run, replaced when the CA changed', (t) => {
  const spiffeId = 'spiffe://cluster.local/ns/istio-meshfed/sa/meshfed-egress';
  const endpoint = ref;
  const home = homeNamespaceOf(consumerStart);
  const admission = planAdmission(provider, { namespace: 'bookinfo', exportName: 'myreviews', consumer: { clusterId: 'cluster1', gatewaySpiffeId: spiffeId } }, { now });
  const first = directCredentials(consumerStart, admission, { consumerClusterId: 'cluster1', spiffeId, endpoint });
  const ca = admission.objects.find((o) => o.kind === 'Secret' && o.metadata.name === 'meshfed-federation-ca');
  const caPem = Buffer.from((ca!.data as Record<string, string>)['ca.crt']!, 'base64').toString('utf8');
  t.is(first.caCertificatePem, caPem);
  t.true(verifyCertificateChain(first.certificatePem, [caPem]).ok);
  t.true(keyMatchesCertificate(first.privateKeyPem, first.certificatePem));
  t.deepEqual(inspectCertificate(first.certificatePem).uris, [spiffeId]);

  const binding = (credentials: typeof first) => ({
    apiVersion: 'v1', kind: 'Secret',
    metadata: { name: names.binding(ref.providerClusterId, ref.namespace, ref.exportName), namespace: home },
    data: Object.fromEntries(Object.entries({ 'tls.crt': credentials.certificatePem, 'tls.key': credentials.privateKeyPem, 'ca.crt': credentials.caCertificatePem })
      .map(([k, v]) => [k, Buffer.from(v).toString('base64')])),
  });
  const stored: ConsumerSnapshot = { ...consumerStart, existing: [binding(first)] };
  // A re-run keeps the stored key and certificate: it never re-keys a working import.
  const kept = directCredentials(stored, admission, { consumerClusterId: 'cluster1', spiffeId, endpoint });
  t.false(kept.renewed);
  t.deepEqual({ ...kept, renewed: true }, first);
  // Even with fewer than 30 days left (renewing ahead of expiry is rotate's job, which passes renew).
  const late = directCredentials(stored, admission, { consumerClusterId: 'cluster1', spiffeId, endpoint }, { now: new Date(Date.now() + 350 * 86_400_000) });
  t.is(late.privateKeyPem, first.privateKeyPem);
  const rotated = directCredentials(stored, admission, { consumerClusterId: 'cluster1', spiffeId, endpoint }, { renew: true });
  t.true(rotated.renewed);
  t.not(rotated.privateKeyPem, first.privateKeyPem);

  // Without its CA Secret the provider gets a new federation CA: the stored certificate no longer chains to it.
  const newCa: ProviderSnapshot = { ...provider, existing: provider.existing.filter((o) => o.metadata.name !== 'meshfed-federation-ca') };
  const otherAdmission = planAdmission(newCa, { namespace: 'bookinfo', exportName: 'myreviews', consumer: { clusterId: 'cluster1', gatewaySpiffeId: spiffeId } }, { now });
  const renewed = directCredentials(stored, otherAdmission, { consumerClusterId: 'cluster1', spiffeId, endpoint });
  t.not(renewed.caCertificatePem, first.caCertificatePem);
  t.not(renewed.privateKeyPem, first.privateKeyPem);
});

test('exchange files carry PEM blocks as plain YAML blocks (no \\r escapes), and their signatures hold', (t) => {
  for (const text of [requestText, bundleText]) {
    t.false(text.includes('\\r'), 'no escaped carriage returns');
    t.regex(text, /Pem: \|\n {4}-----BEGIN /);
  }
  t.regex(requestText, /csr: \|\n {4}-----BEGIN CERTIFICATE REQUEST-----\n/);
  t.deepEqual(parseImportRequest(requestText, { now }), request);
  t.notThrows(() => parseExportBundle(bundleText, { now, expect: pending }));
  t.true(samePem('-----BEGIN X-----\r\nAAAA\r\n-----END X-----\r\n', '-----BEGIN X-----\nAAAA\n-----END X-----\n'));
  t.false(samePem('-----BEGIN X-----\nAAAA\n-----END X-----\n', '-----BEGIN X-----\nAAAB\n-----END X-----\n'));
});

test('import request: a signed request with a wildcard or malformed trust domain or name is refused as malformed', (t) => {
  const signed = (trustDomain: string, serviceAccounts?: string[], namespace = 'default') => serializeDocument(createImportRequest(
    { ...consumerStart, trustDomain },
    { consumerClusterId: 'cluster1', namespace, export: ref, ...(serviceAccounts ? { serviceAccounts } : {}) },
    { now },
  ).request);
  for (const td of ['*', '*.local', 'ops.local/ns/vault', 'Ops.Local', 'spiffe://ops.local', 'ops.local:443']) {
    refused(t, () => parseImportRequest(signed(td), { now }), 'malformed', /is not a trust domain/);
  }
  t.notThrows(() => parseImportRequest(signed('operations.nrc.example'), { now }));
  // createImportRequest checks names itself; a request written by something else is checked on reading.
  refused(t, () => parseImportRequest(edit(requestText, (d) => { d.spec.serviceAccounts = ['*']; }), { now }), 'malformed', /service account "\*" is not a DNS-1123 label/);
});

/** Every value of every ConfigMap in a plan's objects or a snapshot, as one text. */
function configMapText(objects: ReadonlyArray<{ kind: string; data?: unknown }>): string {
  return JSON.stringify(objects.filter((o) => o.kind === 'ConfigMap').map((o) => o.data ?? {}));
}

test('a pending request is published beside its Secret without any key, and its copy goes with it (completed, cancelled, unimported)', (t) => {
  const { consumer, request: mine, pending: key } = newRequest();
  const home = homeNamespaceOf(consumer);
  const name = names.binding(ref.providerClusterId, ref.namespace, ref.exportName);
  const copy = consumer.existing.find((o) => o.kind === 'ConfigMap' && o.metadata.name === `${name}.request`);
  t.truthy(copy, 'the request is published beside its Secret');
  t.is(copy!.metadata.namespace, home);
  const secret = consumer.existing.find((o) => o.kind === 'Secret' && o.metadata.name === name)!;
  t.deepEqual(copy!.metadata.labels, secret.metadata.labels, 'with the Secret\'s labels (scoped reads of the binding find it)');
  const published = JSON.parse((copy!.data as Record<string, string>)['request.json']!) as Record<string, unknown>;
  t.deepEqual(published, {
    export: ref, namespace: 'default', consumerClusterId: 'cluster1', serviceAccounts: ['default'], expiresAt: requestExpiry, nonce: mine.spec.nonce,
  });
  // No key, nor the CSR: the request's private key stays in the Secret.
  t.false(/PRIVATE KEY|CERTIFICATE REQUEST/.test(configMapText(consumer.existing)));
  t.true(/PRIVATE KEY/.test(Buffer.from((secret.data as Record<string, string>)['tls.key']!, 'base64').toString('utf8')), 'the key is in the Secret');
  // A Secret whose annotations (what is published) hold a key is a planner's bug: nothing is published.
  const leaking = { ...secret, metadata: { ...secret.metadata, annotations: { ...secret.metadata.annotations, 'meshfed.io/request-namespace': key.privateKeyPem } } };
  t.throws(() => publishedRequest(leaking), { message: /holds a private key: it is not published/ });

  // Completing the import removes the copy; the binding Secret then holds the key, no ConfigMap does.
  const { bundle } = admitImportRequest(provider, parseImportRequest(serializeDocument(mine), { now }), { now });
  const credentials = bundleCredentials(bundle, key.privateKeyPem);
  const plan = planImport(consumer, { endpoint: bundle.spec.endpoint, credentials }, { consumerClusterId: 'cluster1', namespace: 'default', localName: 'myreviews' }, { now });
  t.deepEqual(plan.remove, [{ apiVersion: 'v1', kind: 'ConfigMap', namespace: home, name: `${name}.request` }]);
  t.false(/PRIVATE KEY/.test(configMapText(plan.objects)));
  const imported = applyPlan(consumer, plan);
  t.deepEqual(publishedRequests(imported), []);
  t.deepEqual(pendingRequests(imported), []);

  // A re-keying request (import --request-out --force) is published too, and goes with the last import of its export.
  const rekeying = applyPlan(imported, createImportRequest(imported, { consumerClusterId: 'cluster1', namespace: 'default', export: ref }, { now }).plan);
  t.deepEqual(publishedRequests(rekeying), [{ ...ref, importNamespace: 'default', expiresAt: requestExpiry }]);
  t.false(/PRIVATE KEY/.test(configMapText(rekeying.existing)));
  const removed = planUnimport(rekeying, { namespace: 'default', localName: 'myreviews' });
  t.true(removed.remove.some((r) => r.kind === 'ConfigMap' && r.name === `${name}.request`), 'unimport removes the published request');
});

test('a copy left by a cancellation stopped half-way is stale for who reads the Secrets, and cancelling again removes it', (t) => {
  const { consumer } = newRequest();
  const name = names.binding(ref.providerClusterId, ref.namespace, ref.exportName);
  // The Secret's delete landed, the copy's did not.
  const halfWay = { ...consumer, existing: consumer.existing.filter((o) => !(o.kind === 'Secret' && o.metadata.name === name)) };
  t.deepEqual(pendingRequests(halfWay), []);
  t.deepEqual(stalePublishedRequests(halfWay), [ref]);
  // Who may not read the Secrets cannot tell it from a pending one: it sees the copy until the re-run removes it.
  t.deepEqual(stalePublishedRequests({ ...halfWay, unreadableSecrets: [homeNamespaceOf(halfWay)] }), []);
  t.deepEqual(publishedRequests(halfWay), [{ ...ref, importNamespace: 'default', expiresAt: requestExpiry }]);
  const again = planCancelRequest(halfWay, ref);
  t.deepEqual(again.remove, [{ apiVersion: 'v1', kind: 'ConfigMap', namespace: homeNamespaceOf(halfWay), name: `${name}.request` }]);
  t.deepEqual(publishedRequests(applyPlan(halfWay, again)), []);
  // A copy of an older request of the same Secret (another nonce) is stale too.
  const newer = applyPlan(halfWay, createImportRequest(halfWay, { consumerClusterId: 'cluster1', namespace: 'default', export: ref }, { now: new Date(now.getTime() + 1000) }).plan);
  t.deepEqual(stalePublishedRequests(newer), [], 'a new request rewrites its copy');
});
