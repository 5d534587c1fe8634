// Planner behaviour beyond the golden scenarios: refusals with actionable messages, objects shared between
// exports and imports, removal, revocation, attach variants, existing gateways, certificate reuse.
import test, { type ExecutionContext } from 'ava';
import {
  createImportRequest, FederationInputError, names, parseImportRequest, pendingRequestOf, planAdmission, planExport,
  noteClientRenewal, planImport, planProviderRotation, planRevoke, planUninstall, hasDependents, planClientRotation, directCredentials, planUnexport, planUnimport, readExportRecords, readImportRecords, readSecret, REMOVING_ANNOTATION, serializeDocument, admitImportRequest, bundleCredentials,
  holdsOwn, importState, MANAGED_KINDS, pendingRequests, publishedCertificatesName,
  type ClusterPlan, type ConsumerSnapshot, type ExportSpec, type KubeObject, type ProviderSnapshot,
} from '../../src/federation/index.js';
import { applyPlan } from './scenario.js';
import { inspectCertificate, verifyCertificateChain } from '../../src/pki/index.js';

type Spec = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
const now = new Date('2026-06-01T12:00:00Z');

// One federation CA for every test's provider: it is reused as a real cluster would reuse its CA Secret, and
// it keeps the tests from generating a CA key each.
let caSecret: KubeObject | undefined;

function provider(over: Partial<ProviderSnapshot> = {}): ProviderSnapshot {
  caSecret ??= planExport(bare(), spec(), { now }).objects.find((o) => o.metadata.name === 'meshfed-federation-ca')!;
  return bare({ existing: [structuredClone(caSecret)], ...over });
}

function bare(over: Partial<ProviderSnapshot> = {}): ProviderSnapshot {
  return {
    clusterId: 'prod', istioVersion: '1.22.3', trustDomain: 'prod.local', gatewayAddress: '192.0.2.10',
    services: [
      { name: 'api', namespace: 'shop', selector: { app: 'api' }, ports: [{ name: 'http', port: 8080, targetPort: 8080 }, { name: 'grpc-admin', port: 9090, targetPort: 9090 }] },
      { name: 'postgres', namespace: 'db', selector: { app: 'postgres' }, ports: [{ name: 'tcp-postgres', port: 5432, targetPort: 5432 }] },
      { name: 'redis', namespace: 'db', selector: { app: 'redis' }, ports: [{ name: 'tcp-redis', port: 6379, targetPort: 6379 }] },
      { name: 'headless', namespace: 'shop', ports: [{ name: 'http', port: 80 }] },
      { name: 'unnamed', namespace: 'shop', selector: { app: 'u' }, ports: [{ port: 80 }] },
    ],
    pods: [
      { name: 'api-1', namespace: 'shop', labels: { app: 'api', version: 'v1' }, ready: true, serviceAccount: 'api', sidecar: true },
    ],
    existing: [],
    ...over,
  };
}

const consumer = (over: Partial<ConsumerSnapshot> = {}): ConsumerSnapshot => ({
  clusterId: 'ops', istioVersion: '1.22.3', trustDomain: 'ops.local', services: [
    { name: 'api', namespace: 'apps', selector: { app: 'api' }, ports: [{ name: 'http', port: 8080 }] },
  ], existing: [], ...over,
});

const spec = (over: Partial<ExportSpec> = {}): ExportSpec => ({ providerClusterId: 'prod', namespace: 'shop', service: 'api', port: { number: 8080 }, ...over });
const find = (plan: ClusterPlan | KubeObject[], kind: string, name?: string): KubeObject | undefined =>
  (Array.isArray(plan) ? plan : plan.objects).find((o) => o.kind === kind && (name === undefined || o.metadata.name === name));
const specOf = (o: KubeObject | undefined): Spec => o!.spec as Spec;

test('export refusals name the object and the flag', (t) => {
  const cases: Array<[Partial<ExportSpec>, RegExp, string]> = [
    [{ service: 'nope' }, /Service shop\/nope was not found/, '--service'],
    [{ port: { number: 1234 } }, /has no port 1234; its ports are 8080 \(http\), 9090 \(grpc-admin\)/, '--port'],
    [{ service: 'headless', port: { number: 80 } }, /no pod selector/, '--service'],
    [{ service: 'unnamed', port: { number: 80 } }, /has no name; Istio needs port names/, '--port'],
    [{ subset: { 'bad key!': 'v' } }, /not a valid Kubernetes label/, '--subset'],
    [{ exportName: 'Bad_Name' }, /export name "Bad_Name" is not a DNS-1123 label/, '--name'],
  ];
  for (const [over, message, flag] of cases) {
    const error = t.throws(() => planExport(provider(), spec(over), { now }), { instanceOf: FederationInputError });
    t.regex(error!.message, message);
    t.is(error!.flag, flag);
  }
  t.throws(() => planExport(provider({ istioVersion: 'unknown' }), spec(), { now }), { message: /Istio version "unknown"/ });
});

test('an object of the same name that meshfed does not manage is never overwritten', (t) => {
  const foreign: KubeObject = { apiVersion: 'networking.istio.io/v1beta1', kind: 'Gateway', metadata: { name: names.export('shop', 'api'), namespace: 'istio-meshfed' } };
  t.throws(() => planExport(provider({ existing: [foreign] }), spec(), { now }), { instanceOf: FederationInputError, message: /not managed by kubectl-meshfed/ });
});

test('workload warnings: a subset with no ready pod', (t) => {
  const plan = planExport(provider(), spec({ subset: { version: 'v2' } }), { now });
  t.true(plan.warnings.some((w) => /no ready pod backs subset version=v2 of Service shop\/api/.test(w)));
});

test('re-planning reuses the federation CA and a still-valid server certificate', (t) => {
  const first = planExport(provider(), spec(), { now });
  const again = planExport(applyPlan(provider(), first), spec(), { now: new Date(now.getTime() + 86_400_000) });
  const secret = (p: ClusterPlan, name: string) => readSecret(find(p, 'Secret', name));
  t.deepEqual(secret(again, 'meshfed-federation-ca'), secret(first, 'meshfed-federation-ca'));
  t.deepEqual(secret(again, names.export('shop', 'api')), secret(first, names.export('shop', 'api')));
  // Close to expiry a re-run still keeps it: it never re-keys a working gateway (renewing ahead is rotate's job).
  const late = planExport(applyPlan(provider(), first), spec(), { now: new Date(now.getTime() + 340 * 86_400_000) });
  t.deepEqual(secret(late, names.export('shop', 'api')), secret(first, names.export('shop', 'api')));
  t.false(late.warnings.some((w) => w.includes('is replaced')));
  // Asked to renew (rotate), it is reissued by the same CA, with a new key.
  const renewed = planExport(applyPlan(provider(), first), spec(), { now: new Date(now.getTime() + 340 * 86_400_000), renewServerCertificates: true });
  t.not(secret(renewed, names.export('shop', 'api'))!['tls.key'], secret(first, names.export('shop', 'api'))!['tls.key']);
  t.is(secret(renewed, 'meshfed-federation-ca')!['ca.crt'], secret(first, 'meshfed-federation-ca')!['ca.crt']);
  // Once expired, a re-run replaces it and says why.
  const expired = planExport(applyPlan(provider(), first), spec(), { now: new Date(now.getTime() + 366 * 86_400_000) });
  t.not(secret(expired, names.export('shop', 'api'))!['tls.crt'], secret(first, names.export('shop', 'api'))!['tls.crt']);
  t.true(expired.warnings.some((w) => /server certificate in Secret istio-meshfed\/mf-export-shop-api is replaced \(new key\): it expires on/.test(w)), expired.warnings.join('\n'));
});

test('a federation CA rotation: the next CA is trusted beside the current one, signs client certificates, and replaces it at the finish', (t) => {
  let p = applyPlan(provider(), planExport(provider(), spec({ consumers: [{ clusterId: 'c1' }] }), { now }));
  const secret = (plan: ClusterPlan, name: string) => readSecret(find(plan, 'Secret', name));
  const before = secret(planExport(p, spec(), { now }), 'meshfed-federation-ca')!;
  t.throws(() => planProviderRotation(p, { servers: false, ca: 'finish', now }), { instanceOf: FederationInputError, message: /no federation CA rotation is under way/ });
  const start = planProviderRotation(p, { servers: false, ca: 'start', now });
  const started = secret(start, 'meshfed-federation-ca')!;
  t.is(started['ca.crt'], before['ca.crt'], 'the current CA stays');
  t.truthy(started['next.crt']);
  t.is((secret(start, names.export('shop', 'api'))!['ca.crt']!.match(/BEGIN CERTIFICATE/g) ?? []).length, 2, 'the gateway trusts both');
  t.deepEqual(start.notRenewed, []);
  p = applyPlan(p, start);
  t.throws(() => planProviderRotation(p, { servers: false, ca: 'start', now }), { instanceOf: FederationInputError, message: /already under way/ });
  // A re-run of export during the rotation keeps it going.
  t.is(secret(planExport(p, spec(), { now }), 'meshfed-federation-ca')!['next.crt'], started['next.crt']);
  t.deepEqual(planProviderRotation(p, { servers: false, ca: 'finish', now }).notRenewed, ['c1'], 'c1 has no certificate from the next CA');
  const admission = planAdmission(p, { namespace: 'shop', exportName: 'api', consumer: { clusterId: 'c1' } }, { now });
  noteClientRenewal(admission, 'c1');
  p = applyPlan(p, admission);
  const finish = planProviderRotation(p, { servers: false, ca: 'finish', now });
  t.deepEqual(finish.notRenewed, []);
  const finished = secret(finish, 'meshfed-federation-ca')!;
  t.is(finished['ca.crt'], started['next.crt'], 'the next CA is the only one');
  t.false('next.crt' in finished);
  const server = secret(finish, names.export('shop', 'api'))!;
  t.is(server['ca.crt'], started['next.crt']);
  t.true(verifyCertificateChain(server['tls.crt']!, [started['next.crt']!], now).ok, 'the server certificate comes from the new CA');
});

test('two exports of one Service share one subsets DestinationRule; unexport recomputes it', (t) => {
  let p = provider();
  const v1 = planExport(p, spec({ exportName: 'api-v1', subset: { version: 'v1' } }), { now });
  p = applyPlan(p, v1);
  const v2 = planExport(p, spec({ exportName: 'api-v2', subset: { version: 'v2' } }), { now });
  p = applyPlan(p, v2);
  const dr = find(v2, 'DestinationRule', names.subsets('shop', 'api'));
  t.deepEqual(specOf(dr).subsets, [{ name: 'version-v1', labels: { version: 'v1' } }, { name: 'version-v2', labels: { version: 'v2' } }]);
  const un = planUnexport(p, { namespace: 'shop', exportName: 'api-v1' });
  t.deepEqual(specOf(find(un, 'DestinationRule')).subsets, [{ name: 'version-v2', labels: { version: 'v2' } }]);
  t.true(un.remove.some((r) => r.kind === 'Gateway' && r.name === names.export('shop', 'api-v1')));
  t.true(un.remove.some((r) => r.kind === 'ConfigMap' && r.name === names.export('shop', 'api-v1')));
  t.false(un.remove.some((r) => r.name === names.export('shop', 'api-v2')));
  t.deepEqual(un.prune[0]!.selector, { 'app.kubernetes.io/managed-by': 'kubectl-meshfed', 'meshfed.io/export': 'shop.api-v1' });
});

test('shared-root: the passthrough host list covers every export and shrinks on unexport', (t) => {
  let p = provider();
  const pg = planExport(p, spec({ namespace: 'db', service: 'postgres', port: { number: 5432 }, mode: 'shared-root' }), { now });
  p = applyPlan(p, pg);
  const rd = planExport(p, spec({ namespace: 'db', service: 'redis', port: { number: 6379 }, mode: 'shared-root' }), { now });
  p = applyPlan(p, rd);
  t.deepEqual(specOf(find(rd, 'Gateway', 'meshfed-eastwest')).servers[0].hosts, ['postgres.db.svc.cluster.local', 'redis.db.svc.cluster.local']);
  const un = planUnexport(p, { namespace: 'db', exportName: 'redis' });
  t.deepEqual(specOf(find(un, 'Gateway', 'meshfed-eastwest')).servers[0].hosts, ['postgres.db.svc.cluster.local']);
  t.true(un.remove.some((r) => r.kind === 'AuthorizationPolicy' && r.name === names.guard('redis') && r.namespace === 'db'));
  p = applyPlan(p, un);
  const last = planUnexport(p, { namespace: 'db', exportName: 'postgres' });
  t.true(last.remove.some((r) => r.kind === 'Gateway' && r.name === 'meshfed-eastwest'));
  t.is(find(last, 'Gateway'), undefined);
});

test('shared-root: a consumer no policy can separate is refused before anything is written; a missing alias is one piece of advice', (t) => {
  // Same trust domain as the provider: refused (it used to be a warning, and the guard admitted the provider's own twins).
  t.throws(() => planExport(provider({ trustDomain: 'cluster.local' }), spec({
    mode: 'shared-root', consumers: [{ clusterId: 'ops', namespace: 'vault', serviceAccounts: ['vault'] }],
  }), { now }), { message: /shared-root cannot admit ops .*trust domain of this mesh \(cluster\.local\).*boundary mode/ });
  // cluster.local is what Istio calls "the local trust domain" in policies: refused with the fix.
  t.throws(() => planExport(provider(), spec({
    mode: 'shared-root', consumers: [{ clusterId: 'ops', trustDomain: 'cluster.local', namespace: 'vault', serviceAccounts: ['vault'] }],
  }), { now }), { message: /trust domain cluster\.local, which Istio reads in a policy as this mesh's own.*meshConfig\.trustDomain/ });
  const alias = planExport(provider(), spec({ mode: 'shared-root', subset: { version: 'v1' }, consumers: [{ clusterId: 'ops', trustDomain: 'ops.local', namespace: 'vault' }] }), { now });
  t.true(alias.warnings.some((w) => /a subset selects where traffic goes, not who may be reached/.test(w)));
  t.true(alias.warnings.some((w) => /add "ops\.local" to meshConfig\.trustDomainAliases of the provider mesh/.test(w)));
  t.false(alias.warnings.some((w) => /PILOT_SKIP_VALIDATE_TRUST_DOMAIN=true on istiod/.test(w)), 'one recommendation, not two');
  t.deepEqual(alias.admittedPrincipals, ['spiffe://ops.local/ns/vault/sa/default']);
  const guard = specOf(find(alias, 'AuthorizationPolicy', names.guard('api')));
  t.deepEqual(guard.rules, [
    { from: [{ source: { principals: ['*'], notPrincipals: ['prod.local/*', 'ops.local/*'] } }] },
    { from: [{ source: { principals: ['ops.local/*'], notPrincipals: ['ops.local/ns/vault/sa/default'] } }] },
    { from: [{ source: { principals: ['ops.local/*'] } }], to: [{ operation: { notPorts: ['8080'] } }] },
  ]);
});

test('shared-root: two consumer clusters with one trust domain are refused; a bad trust domain is refused by name', (t) => {
  const ops = planExport(provider(), spec({ mode: 'shared-root', consumers: [{ clusterId: 'ops', trustDomain: 'corp.example', namespace: 'vault', serviceAccounts: ['vault'] }] }), { now });
  const p = applyPlan(provider(), ops);
  t.throws(() => planAdmission(p, { namespace: 'shop', exportName: 'api', consumer: { clusterId: 'staging', trustDomain: 'corp.example', namespace: 'vault', serviceAccounts: ['vault'] } }, { now }),
    { message: /consumers ops and staging have the same trust domain \(corp\.example\)/ });
  for (const td of ['*', 'ops.local/ns/x', 'Ops.Local', '*.local', '']) {
    t.throws(() => planAdmission(p, { namespace: 'shop', exportName: 'api', consumer: { clusterId: 'dev', trustDomain: td, namespace: 'vault' } }, { now }), { message: /is not a trust domain/ }, td);
  }
  t.throws(() => planAdmission(p, { namespace: 'shop', exportName: 'api', consumer: { clusterId: 'dev', trustDomain: 'dev.local', namespace: 'vault', serviceAccounts: ['*'] } }, { now }), { message: /service account "\*" is not a DNS-1123 label/ });
});

test('admission and revocation change exactly the admitted principals', (t) => {
  let p = applyPlan(provider(), planExport(provider(), spec(), { now }));
  const admitted = planAdmission(p, { namespace: 'shop', exportName: 'api', consumer: { clusterId: 'ops' } }, { now });
  p = applyPlan(p, admitted);
  const policy = (plan: ClusterPlan) => specOf(find(plan, 'AuthorizationPolicy'));
  t.deepEqual(policy(admitted).rules[0].from[0].source.principals, ['ops.meshfed.internal/ns/istio-meshfed/sa/meshfed-egress']);
  const both = planAdmission(p, { namespace: 'shop', exportName: 'api', consumer: { clusterId: 'dev' } }, { now });
  p = applyPlan(p, both);
  t.is(policy(both).rules[0].from[0].source.principals.length, 2);
  const revoked = planRevoke(p, { namespace: 'shop', exportName: 'api', consumerClusterId: 'ops' }, { now });
  t.deepEqual(policy(revoked).rules[0].from[0].source.principals, ['dev.meshfed.internal/ns/istio-meshfed/sa/meshfed-egress']);
  p = applyPlan(p, revoked);
  const none = planRevoke(p, { namespace: 'shop', exportName: 'api', consumerClusterId: 'dev' }, { now });
  t.is(policy(none).rules, undefined, 'no consumer left: the policy admits nobody');
  t.throws(() => planAdmission(p, { namespace: 'shop', exportName: 'missing', consumer: { clusterId: 'ops' } }), { message: /export shop\/missing does not exist .*exports: shop\/api/ });
});

test('an existing gateway is used as is: no deployment, its namespace and selector', (t) => {
  const existingGateway = { namespace: 'istio-system', selector: { istio: 'ingressgateway' }, serviceName: 'istio-ingressgateway', port: 15443 };
  const plan = planExport(provider({ existingGateway, istioVersion: '1.9.5' }), spec(), { now });
  t.is(find(plan, 'Deployment'), undefined);
  t.deepEqual(plan.objects.filter((o) => o.kind === 'Namespace').map((o) => o.metadata.name), ['meshfed-ca'], 'only the federation CA\'s own namespace');
  t.is(plan.overlay, undefined);
  t.deepEqual(specOf(find(plan, 'Gateway')).selector, { istio: 'ingressgateway' });
  t.true(plan.objects.filter((o) => o.metadata.namespace && o.metadata.name !== 'meshfed-federation-ca').every((o) => o.metadata.namespace === 'istio-system'));
  t.is(find(plan, 'Secret', 'meshfed-federation-ca')?.metadata.namespace, 'meshfed-ca', 'the CA key is out of the gateway\'s namespace');
});

/** Export + request + admission + import of `api` into `apps` of the consumer, with an attach. */
function imported(attach: Parameters<typeof planImport>[2]['attach'], c: ConsumerSnapshot = consumer()) {
  let p = applyPlan(provider(), planExport(provider(), spec(), { now }));
  const ref = { providerClusterId: 'prod', namespace: 'shop', exportName: 'api' };
  const { request, plan: requestPlan } = createImportRequest(c, { consumerClusterId: 'ops', namespace: 'apps', export: ref }, { now });
  const withKey = applyPlan(c, requestPlan);
  const { bundle, plan } = admitImportRequest(p, parseImportRequest(serializeDocument(request), { now }), { now });
  p = applyPlan(p, plan);
  const pending = pendingRequestOf(withKey, ref)!;
  const importPlan = planImport(withKey, { endpoint: bundle.spec.endpoint, credentials: bundleCredentials(bundle, pending.privateKeyPem) },
    { consumerClusterId: 'ops', namespace: 'apps', localName: 'remote-api', ...(attach ? { attach } : {}) }, { now });
  return { consumer: applyPlan(withKey, importPlan), importPlan, bundle, pending };
}

test('attach by header: matching requests go remote with the export host, the rest stays local', (t) => {
  const { importPlan, bundle } = imported({ service: 'api', header: { name: 'X-Canary', value: 'remote' } });
  const vs = specOf(find(importPlan, 'VirtualService', names.attach('api')));
  t.deepEqual(vs.hosts, ['api.apps.svc.cluster.local']);
  t.deepEqual(vs.http[0].match, [{ headers: { 'x-canary': { exact: 'remote' } } }]);
  t.is(vs.http[0].rewrite.authority, bundle.spec.endpoint.sni);
  t.is(vs.http[0].route[0].destination.host, 'meshfed-egress.istio-meshfed.svc.cluster.local');
  t.deepEqual(vs.http[1].route, [{ destination: { host: 'api.apps.svc.cluster.local', port: { number: 8080 } } }]);
});

test('attach refusals; a Service with a VirtualService of its own: refused (the oldest wins on sidecars), or folded in with --merge-into', (t) => {
  t.throws(() => imported({ service: 'api', weight: 0 }), { message: /whole percentage from 1 to 100/ });
  t.throws(() => imported({ service: 'nope', weight: 10 }), { message: /Service apps\/nope to attach/ });
  const theirs: KubeObject = {
    apiVersion: 'networking.istio.io/v1beta1', kind: 'VirtualService', metadata: { name: 'api', namespace: 'apps', creationTimestamp: '2026-01-01T00:00:00Z' },
    spec: { hosts: ['api'], http: [{ route: [{ destination: { host: 'api', subset: 'v1' }, weight: 75 }, { destination: { host: 'api', subset: 'v2' }, weight: 25 }] }] },
  };
  t.throws(() => imported({ service: 'api', weight: 20 }, consumer({ existing: [theirs] })),
    { instanceOf: FederationInputError, message: /VirtualService apps\/api already routes api\.apps\.svc\.cluster\.local .*oldest.*--merge-into apps\/api/ });
  t.throws(() => imported({ service: 'api', weight: 20, mergeInto: 'apps/other' }, consumer({ existing: [theirs] })), { message: /VirtualService apps\/other was not found/ });
  const { importPlan, consumer: after, bundle, pending } = imported({ service: 'api', weight: 20, mergeInto: 'apps/api' }, consumer({ existing: [theirs] }));
  t.is(find(importPlan, 'VirtualService', names.attach('api')), undefined, 'no VirtualService of meshfed\'s for the host');
  t.deepEqual(importPlan.consented, ['VirtualService/apps/api']);
  const merged = specOf(find(importPlan, 'VirtualService', 'api'));
  t.deepEqual(merged.http[0].route.map((r: Spec) => [r.destination.subset ?? r.destination.host, r.weight]),
    [['v1', 60], ['v2', 20], ['mf-bind-prod-shop-api', 20]]);
  t.is(merged.http[0].rewrite.authority, 'api.apps.svc.cluster.local');
  // A re-run starts from the recorded original: the split is not applied twice.
  const again = planImport(after, { endpoint: bundle.spec.endpoint, credentials: bundleCredentials(bundle, pending.privateKeyPem) },
    { consumerClusterId: 'ops', namespace: 'apps', localName: 'remote-api', attach: { service: 'api', weight: 20, mergeInto: 'apps/api' } }, { now });
  t.deepEqual(specOf(find(again, 'VirtualService', 'api')), merged);
  const removed = planUnimport(after, { namespace: 'apps', localName: 'remote-api' });
  t.deepEqual(specOf(find(removed, 'VirtualService', 'api')), theirs.spec, 'unimport restores the user\'s routes');
});

test('import refuses a bundle certificate that is not for the pending key', (t) => {
  const { bundle } = imported(undefined);
  const other = imported(undefined).pending;
  t.throws(() => planImport(consumer(), { endpoint: bundle.spec.endpoint, credentials: bundleCredentials(bundle, other.privateKeyPem) },
    { consumerClusterId: 'ops', namespace: 'apps' }, { now }), { instanceOf: FederationInputError, message: /not issued for this cluster's pending key/ });
  t.throws(() => planImport(consumer(), { endpoint: bundle.spec.endpoint }, { consumerClusterId: 'ops', namespace: 'apps' }), { message: /needs the client certificate/ });
});

test('unimport removes the import, then the binding when no import of that export is left', (t) => {
  const { consumer: c, importPlan, bundle, pending } = imported({ service: 'api', weight: 50 });
  const second = planImport(c, { endpoint: bundle.spec.endpoint, credentials: bundleCredentials(bundle, pending.privateKeyPem) },
    { consumerClusterId: 'ops', namespace: 'other', localName: 'api' }, { now });
  const both = applyPlan(c, second);
  t.is(specOf(find(second, 'DestinationRule', 'meshfed-egress-routes')).subsets.length, 1, 'one subset per export, not per import');
  const first = planUnimport(both, { namespace: 'apps', localName: 'remote-api' });
  const removed = first.remove.map((r) => `${r.kind}/${r.namespace}/${r.name}`);
  t.true(removed.includes(`Service/apps/remote-api`));
  t.true(removed.includes(`VirtualService/apps/${names.attach('api')}`));
  t.false(removed.some((r) => r.startsWith('Secret/')), 'the binding stays while namespace other imports it');
  const left = applyPlan(both, first);
  const last = planUnimport(left, { namespace: 'other', localName: 'api' });
  const binding = names.binding('prod', 'shop', 'api');
  for (const kind of ['Secret', 'ServiceEntry', 'DestinationRule', 'Gateway', 'VirtualService']) {
    t.true(last.remove.some((r) => r.kind === kind && r.name === binding), `${kind} of the binding removed`);
  }
  t.true(last.remove.some((r) => r.name === 'meshfed-egress-routes'));
  t.truthy(importPlan.record);
  t.throws(() => planUnimport(left, { namespace: 'apps', localName: 'remote-api' }), { message: /does not exist/ });
});

test('an explicit protocol that differs from Istio\'s selection is kept, with a warning', (t) => {
  const plan = planExport(provider(), spec({ protocol: 'TCP' }), { now });
  t.is(plan.record.protocol, 'TCP');
  t.truthy(specOf(find(plan, 'VirtualService')).tcp);
  t.true(plan.warnings.some((w) => /is HTTP for Istio \(from its name\) but is exported as TCP/.test(w)));
});

test('switching an export between modes prunes the old mode\'s objects and shared entries', (t) => {
  let p = applyPlan(provider(), planExport(provider(), spec({ namespace: 'db', service: 'postgres', port: { number: 5432 }, mode: 'shared-root' }), { now }));
  const boundary = planExport(p, spec({ namespace: 'db', service: 'postgres', port: { number: 5432 }, mode: 'boundary' }), { now });
  t.true(boundary.remove.some((r) => r.kind === 'Gateway' && r.name === 'meshfed-eastwest'), 'no shared-root export left: passthrough gateway removed');
  t.true(boundary.remove.some((r) => r.kind === 'AuthorizationPolicy' && r.name === names.guard('postgres')));
  p = applyPlan(p, boundary);
  const back = planExport(p, spec({ namespace: 'db', service: 'postgres', port: { number: 5432 }, mode: 'shared-root' }), { now });
  const prune = back.prune[0]!;
  t.deepEqual(prune.keep, [`ConfigMap/istio-meshfed/${names.export('db', 'postgres')}`], 'the boundary Gateway, VirtualService, policy and certificate are pruned');
  t.false(prune.kinds.some((k) => k.kind === 'Namespace'));
});

test('admission per Istio release and gateway owner: what each release can evaluate, nothing beyond the export\'s SNI on a shared gateway', (t) => {
  const existingGateway = { namespace: 'istio-system', selector: { istio: 'ingressgateway' }, serviceName: 'istio-ingressgateway', port: 15443 };
  const host = 'api.shop.prod.export.meshfed.internal';
  const sni = { key: 'connection.sni', values: [host] };
  const principal = 'ops.meshfed.internal/ns/istio-meshfed/sa/meshfed-egress';
  const consumers = [{ clusterId: 'ops' }];
  const admitted = (over: Partial<ProviderSnapshot>, s: Partial<ExportSpec> = {}) => {
    const plan = planExport(provider(over), spec({ consumers, ...s }), { now });
    return { tls: specOf(find(plan, 'Gateway')).servers[0].tls, policy: specOf(find(plan, 'AuthorizationPolicy')) };
  };
  // 1.9/1.10, HTTP: the gateway's HTTP rules see no principal of a MUTUAL client: the handshake admits.
  for (const istioVersion of ['1.9.0', '1.10.6']) {
    const own = admitted({ istioVersion });
    t.deepEqual(own.tls.subjectAltNames, [`spiffe://${principal}`], istioVersion);
    t.deepEqual(own.policy.rules, [{ to: [{ operation: { hosts: [host] } }], when: [sni] }], istioVersion);
    const shared = admitted({ istioVersion, existingGateway });
    t.is(shared.policy.action, 'DENY');
    t.deepEqual(shared.policy.rules, [{ to: [{ operation: { notHosts: [host] } }], when: [sni] }]);
    // TCP rules see the certificate on every release.
    const tcp = admitted({ istioVersion }, { service: 'postgres', namespace: 'db', port: { number: 5432 } });
    t.is(tcp.tls.subjectAltNames, undefined);
    t.deepEqual(tcp.policy.rules[0].from, [{ source: { principals: [principal] } }]);
  }
  // 1.11 on: principals in the policy, no handshake list.
  const current = admitted({ istioVersion: '1.11.0' });
  t.is(current.tls.subjectAltNames, undefined);
  t.deepEqual(current.policy, { selector: { matchLabels: { istio: 'meshfed-ingress' } }, action: 'ALLOW', rules: [{ from: [{ source: { principals: [principal] } }], to: [{ operation: { hosts: [host] } }], when: [sni] }] });
  const shared = admitted({ existingGateway });
  t.deepEqual(shared.policy.rules, [
    { from: [{ source: { notPrincipals: [principal] } }], when: [sni] },
    { to: [{ operation: { notHosts: [host] } }], when: [sni] },
  ]);
  // No consumer: nobody is admitted, on a shared gateway only the export's SNI is closed.
  for (const istioVersion of ['1.9.0', '1.30.3']) {
    const closed = planExport(provider({ istioVersion, existingGateway }), spec(), { now });
    t.is(specOf(find(closed, 'Gateway')).servers[0].tls.subjectAltNames, undefined);
    t.deepEqual(specOf(find(closed, 'AuthorizationPolicy')).rules, [{ when: [sni] }]);
    t.is(specOf(find(closed, 'AuthorizationPolicy')).action, 'DENY');
  }
});

test('the gateway mounts no Kubernetes API token where the injection template always projects istiod\'s token (1.22 on)', (t) => {
  const automount = (istioVersion: string) => specOf(find(planExport(provider({ istioVersion }), spec(), { now }), 'Deployment')).template.spec.automountServiceAccountToken;
  t.is(automount('1.22.0'), false);
  t.is(automount('1.30.3'), false);
  t.is(automount('1.21.4'), undefined, 'first-party-jwt installs still read the mounted token');
});

test('Istio older than 1.9 is refused by every planner that writes, naming the cluster and version', (t) => {
  for (const istioVersion of ['1.7.8', '1.8.6']) {
    t.throws(() => planExport(provider({ istioVersion }), spec(), { now }), { instanceOf: FederationInputError, message: new RegExp(`cluster prod runs Istio ${istioVersion.replace(/\./g, '\\.')}, older than 1\\.9.*nothing was changed`) });
    t.throws(() => createImportRequest(consumer({ istioVersion }), { consumerClusterId: 'ops', namespace: 'apps', export: { providerClusterId: 'prod', namespace: 'shop', exportName: 'api' } }, { now }), { message: /cluster ops runs Istio .*older than 1\.9/ });
  }
  t.notThrows(() => planExport(provider({ istioVersion: '1.9.0' }), spec(), { now }));
});

test('no gateway may be placed in the federation CA\'s namespace', (t) => {
  const existingGateway = { namespace: 'meshfed-ca', selector: { istio: 'ingressgateway' }, serviceName: 'istio-ingressgateway', port: 15443 };
  const error = t.throws(() => planExport(provider({ existingGateway }), spec(), { now }), { instanceOf: FederationInputError });
  t.regex(error!.message, /namespace meshfed-ca holds the federation CA and must stay free of gateways/);
  t.is(error!.flag, '--gateway-namespace');
});

test('shared-root on Istio 1.9.0–1.9.4: the passthrough Gateway adds *.<fqdn> and says the release is vulnerable; 1.9.5 needs neither', (t) => {
  const consumers = [{ clusterId: 'ops', trustDomain: 'ops.local', namespace: 'vault', serviceAccounts: ['vault'] }];
  const old = planExport(provider({ istioVersion: '1.9.1' }), spec({ mode: 'shared-root', consumers }), { now });
  t.deepEqual(specOf(find(old, 'Gateway', 'meshfed-eastwest')).servers[0].hosts, ['*.api.shop.svc.cluster.local', 'api.shop.svc.cluster.local']);
  t.true(old.warnings.some((w) => /Istio 1\.9\.1 .*ISTIO-SECURITY-2021-006 \(CVE-2021-31921\).*Upgrade the mesh to Istio 1\.9\.5 or later/.test(w)));
  for (const version of ['1.9.5', '1.10.0', '1.30.3']) {
    const fixed = planExport(provider({ istioVersion: version }), spec({ mode: 'shared-root', consumers }), { now });
    t.deepEqual(specOf(find(fixed, 'Gateway', 'meshfed-eastwest')).servers[0].hosts, ['api.shop.svc.cluster.local'], version);
    t.false(fixed.warnings.some((w) => /ISTIO-SECURITY-2021-006/.test(w)), version);
  }
});

test('shared-root revoke says whether it takes effect: not when the consumer now shares the provider\'s trust domain', (t) => {
  const consumers = [{ clusterId: 'ops', trustDomain: 'ops.local', namespace: 'vault', serviceAccounts: ['vault'] }];
  const p = applyPlan(provider(), planExport(provider(), spec({ mode: 'shared-root', consumers }), { now }));
  t.deepEqual(planRevoke(p, { namespace: 'shop', exportName: 'api', consumerClusterId: 'ops' }, { now }).revocation, { effective: true });
  // The provider mesh was later moved to the consumer's trust domain: its workloads pass as local ones.
  const merged = { ...p, trustDomain: 'ops.local' };
  const revoked = planRevoke(merged, { namespace: 'shop', exportName: 'api', consumerClusterId: 'ops' }, { now });
  t.like(revoked.revocation, { effective: false });
  t.regex((revoked.revocation as { reason: string }).reason, /this mesh's trust domain \(ops\.local\)/);
});

test('shared-root guard: identities admitted to different ports of one Service are each confined to their own', (t) => {
  const ops = (sa: string) => ({ clusterId: 'ops', trustDomain: 'ops.local', namespace: 'vault', serviceAccounts: [sa] });
  let p = applyPlan(provider(), planExport(provider(), spec({ mode: 'shared-root', consumers: [ops('vault')] }), { now }));
  const second = planExport(p, spec({ mode: 'shared-root', port: { number: 9090 }, exportName: 'api-admin', consumers: [{ ...ops('admin'), namespace: 'tools' }] }), { now });
  p = applyPlan(p, second);
  t.deepEqual(specOf(find(second, 'AuthorizationPolicy', names.guard('api'))).rules, [
    { from: [{ source: { principals: ['*'], notPrincipals: ['prod.local/*', 'ops.local/*'] } }] },
    { from: [{ source: { principals: ['ops.local/*'], notPrincipals: ['ops.local/ns/tools/sa/admin', 'ops.local/ns/vault/sa/vault'] } }] },
    { from: [{ source: { principals: ['ops.local/*'], notPrincipals: ['ops.local/ns/tools/sa/admin'] } }], to: [{ operation: { notPorts: ['8080'] } }] },
    { from: [{ source: { principals: ['ops.local/*'], notPrincipals: ['ops.local/ns/vault/sa/vault'] } }], to: [{ operation: { notPorts: ['9090'] } }] },
  ]);
});

test('uninstall: every meshfed object, its own namespaces unless they hold objects of others; dependents listed', (t) => {
  const p = applyPlan(provider(), planExport(provider(), spec({ consumers: [{ clusterId: 'c1' }] }), { now }));
  const plan = planUninstall(p, { foreign: { 'istio-meshfed': ['ConfigMap/notes'] } });
  t.deepEqual(plan.dependents, { exports: [{ namespace: 'shop', exportName: 'api' }], imports: [], pending: [] });
  t.true(hasDependents(plan.dependents));
  t.true(plan.remove.some((r) => r.kind === 'Secret' && r.name === 'meshfed-federation-ca'));
  t.true(plan.remove.some((r) => r.kind === 'Namespace' && r.name === 'meshfed-ca'));
  t.false(plan.remove.some((r) => r.kind === 'Namespace' && r.name === 'istio-meshfed'), 'a namespace holding the user\'s object stays');
  t.deepEqual(plan.keptNamespaces, { 'istio-meshfed': ['ConfigMap/notes'] });
  t.false(plan.remove.some((r) => r.kind === 'Service' && r.name === 'api'), 'the exported Service is the user\'s');
  // Objects before namespaces: a namespace goes last.
  t.is(plan.remove.at(-1)!.kind, 'Namespace');
  t.false(hasDependents(planUninstall(bare(), { foreign: {} }).dependents));
});

test('client rotation: new keys for the provider\'s boundary imports, the CAs the provider trusts, a note on the provider during a CA rotation', (t) => {
  let p = applyPlan(provider(), planExport(provider(), spec({ consumers: [{ clusterId: 'ops' }] }), { now }));
  const spiffeId = 'spiffe://ops.meshfed.internal/ns/istio-meshfed/sa/meshfed-egress';
  const admission = planAdmission(p, { namespace: 'shop', exportName: 'api', consumer: { clusterId: 'ops', gatewaySpiffeId: spiffeId } }, { now });
  const first = directCredentials(consumer(), admission, { consumerClusterId: 'ops', spiffeId, endpoint: admission.endpoint! }, { now });
  t.throws(() => planClientRotation(consumer(), p, { consumerClusterId: 'ops', providerClusterId: 'prod', spiffeId, now }),
    { instanceOf: FederationInputError, message: 'cluster ops imports nothing from prod: there is no client certificate to renew' });
  const imported = planImport(consumer(), { endpoint: admission.endpoint!, credentials: first }, { consumerClusterId: 'ops', namespace: 'apps' }, { now });
  let c = applyPlan(consumer(), imported) as ConsumerSnapshot;
  t.throws(() => planClientRotation(c, p, { consumerClusterId: 'ops', providerClusterId: 'prod', spiffeId, now, only: { namespace: 'apps', localName: 'nope' } }), { instanceOf: FederationInputError, message: /has no import apps\/nope of prod \(its imports of it: apps\/api\)/ });
  const plain = planClientRotation(c, p, { consumerClusterId: 'ops', providerClusterId: 'prod', spiffeId, now });
  t.deepEqual(plain.imports, ['apps/api']);
  t.deepEqual(plain.provider.objects, [], 'outside a CA rotation the provider is not written');
  const renewed = readSecret(plain.consumer.objects[0]);
  t.not(renewed!['tls.key'], first.privateKeyPem);
  t.deepEqual(inspectCertificate(renewed!['tls.crt']!, now).uris, [spiffeId]);
  p = applyPlan(p, planProviderRotation(p, { servers: false, ca: 'start', now }));
  c = applyPlan(c, plain.consumer) as ConsumerSnapshot;
  const during = planClientRotation(c, p, { consumerClusterId: 'ops', providerClusterId: 'prod', spiffeId, now });
  const trusted = readSecret(during.consumer.objects[0])!['ca.crt']!;
  t.is((trusted.match(/BEGIN CERTIFICATE/g) ?? []).length, 2, 'both CAs trusted');
  const next = readSecret(find(p.existing, 'Secret', 'meshfed-federation-ca'))!['next.crt']!;
  t.true(verifyCertificateChain(readSecret(during.consumer.objects[0])!['tls.crt']!, [next], now).ok, 'signed by the next CA');
  t.deepEqual(JSON.parse(readSecret(during.provider.objects[0])!['next-consumers.json']!), ['ops']);
});

/** The snapshot with the record ConfigMap of `role` (`export-record`, `import-record`) marked as being removed. */
function marked<T extends ProviderSnapshot | ConsumerSnapshot>(snapshot: T, role: string): T {
  return {
    ...snapshot,
    existing: snapshot.existing.map((o) => o.kind === 'ConfigMap' && o.metadata.labels?.['meshfed.io/role'] === role
      ? { ...o, metadata: { ...o.metadata, annotations: { ...o.metadata.annotations, [REMOVING_ANNOTATION]: now.toISOString() } } } : o),
  };
}

test('an import being removed is left out of the shared objects, refused as a local name, and still found by its removal', (t) => {
  const { consumer: c, bundle, pending } = imported(undefined);
  const removing = marked(c, 'import-record');
  t.deepEqual(readImportRecords(removing), [], 'planners do not see it');
  t.deepEqual(readImportRecords(removing, { removing: true }).map((r) => [r.localName, r.removing]), [['remote-api', true]]);
  const credentials = bundleCredentials(bundle, pending.privateKeyPem);
  // Another import planned meanwhile routes only itself (it reads while the removal is half-way).
  const other = planImport(removing, { endpoint: bundle.spec.endpoint, credentials }, { consumerClusterId: 'ops', namespace: 'other', localName: 'api' }, { now });
  t.deepEqual(specOf(find(other, 'DestinationRule', names.egressRoutes())).subsets.length, 1);
  t.deepEqual(specOf(find(other, 'AuthorizationPolicy', names.binding('prod', 'shop', 'api'))).rules[0].from[0].source.notNamespaces, ['other'],
    'the egress gateway admits only the import that stays, not the namespace of the one being removed');
  t.throws(() => planImport(removing, { endpoint: bundle.spec.endpoint, credentials }, { consumerClusterId: 'ops', namespace: 'apps', localName: 'remote-api' }, { now }),
    { instanceOf: FederationInputError, message: /import apps\/remote-api is being removed .*kubectl meshfed unimport remote-api -n apps/ });
  const removal = planUnimport(removing, { namespace: 'apps', localName: 'remote-api' });
  t.true(removal.remove.some((r) => r.name === names.egressRoutes()), 'its removal finishes: the last import\'s routes go');
  t.true(removal.remove.some((r) => r.name === names.importRecord('apps', 'remote-api')), 'and its record, last');
});

test('an export being removed is left out of the shared objects, refused as an export name, and still found by its removal', (t) => {
  let p = applyPlan(provider(), planExport(provider(), spec({ exportName: 'pg1', namespace: 'db', service: 'postgres', port: { number: 5432 }, subset: { app: 'postgres' } }), { now }));
  const removing = marked(p, 'export-record');
  t.deepEqual(readExportRecords(removing), []);
  const second = planExport(removing, spec({ exportName: 'pg2', namespace: 'db', service: 'postgres', port: { number: 5432 }, subset: { app: 'postgres', tier: 'primary' } }), { now });
  const subsets = second.objects.filter((o) => o.kind === 'DestinationRule').flatMap((o) => (specOf(o).subsets ?? []) as Spec[]);
  t.deepEqual(subsets.map((s) => s.labels), [{ app: 'postgres', tier: 'primary' }], 'only the export that stays has a subset');
  t.throws(() => planExport(removing, spec({ exportName: 'pg1', namespace: 'db', service: 'postgres', port: { number: 5432 } }), { now }),
    { instanceOf: FederationInputError, message: /export db\/pg1 is being removed .*kubectl meshfed unexport pg1 -n db/ });
  t.throws(() => planAdmission(removing, { namespace: 'db', exportName: 'pg1', consumer: { clusterId: 'ops', trustDomain: 'ops.local', namespace: 'apps' } as never }, { now }), { message: /does not exist/ });
  p = applyPlan(removing, planUnexport(removing, { namespace: 'db', exportName: 'pg1' }));
  t.deepEqual(readExportRecords(p, { removing: true }), [], 'its removal finishes');
});

/** The published copy of Secret `name` among `objects`, and what it holds. */
function published(objects: KubeObject[], name: string): Record<string, string> | undefined {
  return objects.find((o) => o.kind === 'ConfigMap' && o.metadata.name === publishedCertificatesName(name))?.data as Record<string, string> | undefined;
}

/** Every ConfigMap of the plans holds no private key, and each published copy holds exactly its Secret's certificates. */
function publishesWithoutKeys(t: ExecutionContext, plans: ClusterPlan[]): void {
  for (const plan of plans) {
    for (const o of plan.objects.filter((x) => x.kind === 'ConfigMap')) {
      t.false(/PRIVATE KEY/.test(JSON.stringify(o.data ?? {})), `ConfigMap ${o.metadata.name} holds no key`);
    }
    for (const secret of plan.objects.filter((o) => o.kind === 'Secret' && readSecret(o)?.['tls.crt'])) {
      const copy = plan.objects.find((o) => o.kind === 'ConfigMap' && o.metadata.name === publishedCertificatesName(secret.metadata.name));
      t.truthy(copy, `Secret ${secret.metadata.name} is published`);
      t.is(copy!.metadata.namespace, secret.metadata.namespace);
      t.deepEqual(copy!.metadata.labels, secret.metadata.labels, 'same labels: pruned, moved and removed with its Secret');
      const data = readSecret(secret)!;
      t.deepEqual(copy!.data, { 'tls.crt': data['tls.crt'], 'ca.crt': data['ca.crt'] });
    }
  }
}

test('gateway certificates are published beside their Secrets without keys, follow rotation and go with unexport and unimport', (t) => {
  const p = applyPlan(provider(), planExport(provider(), spec(), { now }));
  const exportName = names.export('shop', 'api');
  const exportPlan = planExport(p, spec(), { now });
  const { consumer: c, importPlan } = imported(undefined);
  const binding = names.binding('prod', 'shop', 'api');
  publishesWithoutKeys(t, [exportPlan, importPlan]);
  t.truthy(published(exportPlan.objects, exportName));
  t.truthy(published(importPlan.objects, binding));
  t.deepEqual(exportPlan.prune[0]!.keep!.filter((k) => k.startsWith('ConfigMap/')).sort(), [`ConfigMap/istio-meshfed/${exportName}`, `ConfigMap/istio-meshfed/${exportName}.crt`],
    'kept by the export\'s prune');

  // A rotation publishes the new certificates.
  const rotated = planProviderRotation(p, { servers: true, now });
  publishesWithoutKeys(t, [rotated]);
  t.not(published(rotated.objects, exportName)!['tls.crt'], published(exportPlan.objects, exportName)!['tls.crt']);
  const spiffeId = inspectCertificate(readSecret(find(c.existing, 'Secret', binding))!['tls.crt']!, now).uris[0]!;
  const renewed = planClientRotation(c, applyPlan(p, exportPlan), { consumerClusterId: 'ops', providerClusterId: 'prod', spiffeId, now });
  publishesWithoutKeys(t, [renewed.consumer]);
  t.is(published(renewed.consumer.objects, binding)!['tls.crt'], readSecret(find(renewed.consumer, 'Secret', binding))!['tls.crt']);

  // Removal takes the published copies with their Secrets; nothing is published for a key alone.
  t.true(planUnexport(p, { namespace: 'shop', exportName: 'api' }).remove.some((r) => r.kind === 'ConfigMap' && r.name === `${exportName}.crt`));
  t.true(planUnimport(c, { namespace: 'apps', localName: 'remote-api' }).remove.some((r) => r.kind === 'ConfigMap' && r.name === `${binding}.crt`));
  const { plan: requestPlan } = createImportRequest(consumer(), { consumerClusterId: 'ops', namespace: 'apps', export: { providerClusterId: 'prod', namespace: 'shop', exportName: 'api' } }, { now });
  // A pending key publishes no certificate: only the request (what it asks for, no key) is published beside it.
  t.deepEqual(requestPlan.objects.filter((o) => o.kind === 'ConfigMap').map((o) => o.metadata.name), [`${names.binding('prod', 'shop', 'api')}.request`], 'a pending key publishes no certificate');
  t.false(/PRIVATE KEY/.test(JSON.stringify(requestPlan.objects.filter((o) => o.kind === 'ConfigMap'))));
});

test('import state and pending requests read from metadata and published certificates alone (status reads no Secret data)', (t) => {
  const { consumer: c } = imported(undefined);
  const binding = names.binding('prod', 'shop', 'api');
  const record = readImportRecords(c)[0]!;
  const metadataOnly = (s: ConsumerSnapshot): ConsumerSnapshot => ({ ...s, existing: s.existing.map((o) => (o.kind === 'Secret' ? { ...o, data: undefined } as unknown as KubeObject : o)) });
  const withData = importState(c, record);
  t.is(withData.state, 'active');
  const seen = importState(metadataOnly(c), record);
  t.is(seen.state, 'active');
  t.is(seen.clientCertificatePem, withData.clientCertificatePem, 'the published certificate is the Secret\'s');
  // The viewer lists no Secret: the published certificate alone tells.
  const viewer = { ...c, existing: c.existing.filter((o) => o.kind !== 'Secret'), unreadableSecrets: ['istio-meshfed'] };
  t.is(importState(viewer, record).state, 'active');
  t.is(importState({ ...viewer, existing: viewer.existing.filter((o) => o.metadata.name !== `${binding}.crt`) }, record).state, 'incomplete');
  // Who may list Secrets sees one that is missing, whatever is published.
  t.is(importState(metadataOnly({ ...c, existing: c.existing.filter((o) => o.kind !== 'Secret') }), record).state, 'incomplete');
  // A pending request, told by its Secret's annotations.
  const { plan } = createImportRequest(consumer(), { consumerClusterId: 'ops', namespace: 'apps', export: { providerClusterId: 'prod', namespace: 'other', exportName: 'db' } }, { now });
  const waiting = applyPlan(consumer(), plan) as ConsumerSnapshot;
  t.deepEqual(pendingRequests(metadataOnly(waiting)).map((r) => `${r.providerClusterId}/${r.namespace}/${r.exportName}`), ['prod/other/db']);
  t.deepEqual(pendingRequests(metadataOnly(waiting)), pendingRequests(waiting));
});

test('what each kind holds (MANAGED_KINDS) is what the planners write: scoped reads list a kind only with the selectors it can match', (t) => {
  const p = applyPlan(provider(), planExport(provider(), spec({ subset: { version: 'v1' } }), { now }));
  const { importPlan } = imported({ service: 'api', weight: 50 });
  const plans: ClusterPlan[] = [
    planExport(p, spec({ subset: { version: 'v1' } }), { now }),
    planExport(provider(), spec({ namespace: 'db', service: 'postgres', port: { number: 5432 }, mode: 'shared-root', consumers: [{ clusterId: 'ops', namespace: 'vault', trustDomain: 'ops.local' }] }), { now }),
    planAdmission(p, { namespace: 'shop', exportName: 'api', consumer: { clusterId: 'ops' } }, { now }),
    importPlan,
    createImportRequest(consumer(), { consumerClusterId: 'ops', namespace: 'apps', export: { providerClusterId: 'prod', namespace: 'shop', exportName: 'api' } }, { now }).plan,
  ];
  const holds = new Map(MANAGED_KINDS.map((k) => [k.kind, k.holds]));
  for (const o of plans.flatMap((plan) => plan.objects).filter((x) => x.metadata.labels?.['app.kubernetes.io/managed-by'] === 'kubectl-meshfed' || x.kind === 'Namespace')) {
    const kind = holds.get(o.kind);
    t.truthy(kind, `${o.kind} is a managed kind`);
    if (kind === 'shared') t.false(holdsOwn(o), `${o.kind} ${o.metadata.name} holds shared objects only`);
    if (kind === 'own') t.true(holdsOwn(o), `${o.kind} ${o.metadata.name} belongs to an export, import or binding`);
  }
});
