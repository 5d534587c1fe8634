/**
 * The static checks over snapshots built from the planners' own output, without clusters: every golden scenario
 * (both modes, HTTP, TCP and gRPC, deployed, overlay and existing gateways, Istio 1.9 to 1.30) passes every check
 * once its gateways run; then single changes that the end-to-end tests do not make — certificates about to expire,
 * an old Istio, a passthrough gateway without sni-dnat, an object meshfed does not manage, a consumer admitted
 * under another trust domain — are reported with their codes, as (code, object) pairs.
 */
import test from 'ava';
import {
  runChecks, STATIC_CHECKS, type CheckResult, type SideSnapshot, type VerifySnapshot,
} from '../../src/federation/checks/index.js';
import { autoPassthroughMatchesLiteralHosts, readImportRecords, readSecret, type KubeObject } from '../../src/federation/index.js';
import { runScenario, scenarioNames, type ScenarioResult } from '../federation/scenario.js';
import { issueCertificate } from '../support/mesh/pki.js';

const ready = { phase: 'Running', conditions: [{ type: 'Ready', status: 'True' }] };

function pod(namespace: string, name: string, labels: Record<string, string>, serviceAccount: string, env: Array<{ name: string; value: string }> = []): KubeObject {
  return {
    apiVersion: 'v1', kind: 'Pod', metadata: { name, namespace, labels },
    spec: { serviceAccountName: serviceAccount, containers: [{ name: 'istio-proxy', image: 'docker.io/istio/proxyv2:1.18.2', env }] },
    status: ready,
  };
}

/**
 * The cluster as it looks once the plans are applied and their gateways run: each meshfed Gateway's selector has a
 * ready pod and a Service (a LoadBalancer with `address` on the provider side), unless the plan deployed them.
 */
function side(planned: KubeObject[], extra: KubeObject[], options: { address?: string; sniDnat: boolean; existingGateway?: { namespace: string; serviceName: string } }): KubeObject[] {
  const objects = [...structuredClone(planned), ...extra];
  for (const gateway of planned.filter((o) => o.kind === 'Gateway')) {
    const namespace = gateway.metadata.namespace!;
    const selector = (gateway.spec as { selector: Record<string, string> }).selector;
    const name = options.existingGateway?.namespace === namespace ? options.existingGateway.serviceName : Object.values(selector)[0]!;
    if (!objects.some((o) => o.kind === 'Pod' && o.metadata.namespace === namespace && Object.entries(selector).every(([k, v]) => o.metadata.labels?.[k] === v))) {
      objects.push(pod(namespace, `${name}-7d9f8-abcde`, { ...selector }, name, options.sniDnat ? [{ name: 'ISTIO_META_ROUTER_MODE', value: 'sni-dnat' }] : []));
    }
    let service = objects.find((o) => o.kind === 'Service' && o.metadata.namespace === namespace && o.metadata.name === name);
    if (!service) {
      service = { apiVersion: 'v1', kind: 'Service', metadata: { name, namespace }, spec: { type: options.address ? 'LoadBalancer' : 'ClusterIP', selector, ports: [{ name: 'tls', port: 15443, targetPort: 15443 }] } };
      objects.push(service);
    }
    if (options.address) {
      service.status = { loadBalancer: { ingress: [/^\d/.test(options.address) ? { ip: options.address } : { hostname: options.address }] } };
    }
  }
  return objects;
}

/** A certificate to stand in for a mesh root CA (only its fingerprint is compared). */
function rootCa(result: ScenarioResult): string {
  const secret = result.providerObjects.find((o) => o.kind === 'Secret' && o.metadata.name === 'meshfed-federation-ca')!;
  return readSecret(secret)!['ca.crt']!;
}

/** A VerifySnapshot of a scenario: its planned objects, its Services, pods and namespaces, gateways running. */
function snapshotOf(result: ScenarioResult): VerifySnapshot {
  const { input } = result;
  const now = new Date(input.now);
  const record = readImportRecords({ ...input.consumer, existing: result.consumerObjects })[0]!;
  const home = result.consumerObjects.find((o) => o.kind === 'ConfigMap' && o.metadata.labels?.['meshfed.io/role'] === 'import-record')!.metadata.namespace!;
  const services = (list: typeof input.provider.services) => list.map((s): KubeObject => ({
    apiVersion: 'v1', kind: 'Service', metadata: { name: s.name, namespace: s.namespace, ...(s.labels ? { labels: s.labels } : {}) },
    spec: { ...(s.selector ? { selector: s.selector } : {}), ports: s.ports },
  }));
  const exportedSelector = input.provider.services.find((s) => s.name === input.export.service)!.selector!;
  const pods = (input.provider.pods ?? []).length
    ? input.provider.pods!.map((p) => pod(p.namespace, p.name, p.labels, p.serviceAccount ?? 'default'))
    : [pod(input.export.namespace, `${input.export.service}-0`, { ...exportedSelector, ...(input.export.subset ?? {}) }, input.export.service)];
  const root = rootCa(result);
  const sniDnat = /^1\.(8|9|10|11)\./.test(input.provider.istioVersion);
  const provider: SideSnapshot = {
    context: input.provider.clusterId,
    mesh: { istioVersion: input.provider.istioVersion, trustDomain: input.provider.trustDomain ?? 'cluster.local', trustDomainAliases: input.provider.trustDomainAliases ?? [], rootCaPem: root },
    objects: side(result.providerObjects, [...services(input.provider.services), ...pods], {
      address: input.provider.gatewayAddress!, sniDnat, ...(input.provider.existingGateway ? { existingGateway: input.provider.existingGateway } : {}),
    }),
  };
  const consumer: SideSnapshot = {
    context: input.consumer.clusterId,
    mesh: { istioVersion: input.consumer.istioVersion, trustDomain: input.consumer.trustDomain ?? 'cluster.local', trustDomainAliases: [], rootCaPem: root },
    objects: side(result.consumerObjects, [
      ...services(input.consumer.services),
      { apiVersion: 'v1', kind: 'Namespace', metadata: { name: input.import.namespace, labels: { 'istio-injection': 'enabled' } } },
    ], { sniDnat: false }),
  };
  return { now, consumer, consumerHome: home, record, provider: { status: 'present', snapshot: provider } };
}

const failures = (results: CheckResult[]) => results.filter((r) => r.outcome.status === 'fail').map((r) => [r.code, r.object ?? ''] as [string, string]);
const scenarios = new Map<string, ScenarioResult>();
const scenario = (name: string): ScenarioResult => {
  if (!scenarios.has(name)) scenarios.set(name, runScenario(name));
  return scenarios.get(name)!;
};

for (const name of scenarioNames()) {
  test(`golden scenario ${name}: every static check passes on what the planners produce`, (t) => {
    const snapshot = snapshotOf(scenario(name));
    const results = runChecks(snapshot, STATIC_CHECKS);
    // Istio 1.9.0–1.9.4 carry ISTIO-SECURITY-2021-006: verify says so (a warning), whatever the planners did.
    const vulnerable = snapshot.provider.status === 'present' && snapshot.record.endpoint.mode === 'shared-root' && autoPassthroughMatchesLiteralHosts(snapshot.provider.snapshot.mesh.istioVersion ?? '');
    t.deepEqual(failures(results), vulnerable ? [['MF0420', 'provider Istio release']] : []);
    t.true(results.filter((r) => r.outcome.status === 'fail').every((r) => r.level === 'warning'));
    t.deepEqual(results.filter((r) => r.outcome.status === 'skip').map((r) => r.code), []);
    const mode = snapshot.record.endpoint.mode;
    t.is(results.some((r) => r.code === 'MF0209'), mode === 'boundary', 'boundary-only checks follow the mode');
    t.is(results.some((r) => r.code === 'MF0405'), mode === 'shared-root', 'shared-root-only checks follow the mode');
  });
}

test('certificates that expire within 30 days are warnings, not errors', (t) => {
  const result = scenario('seed-blog-boundary-http');
  const base = snapshotOf(result);
  const later = { ...base, now: new Date(base.now.getTime() + 340 * 86_400_000) };
  const results = runChecks(later, STATIC_CHECKS);
  t.deepEqual(failures(results).sort(), [
    ['MF0211', 'certificate in Secret istio-meshfed/mf-export-bookinfo-myreviews'],
    ['MF0306', 'certificate in Secret istio-meshfed/mf-bind-cluster2-bookinfo-myreviews'],
  ]);
  t.true(results.filter((r) => r.outcome.status === 'fail').every((r) => r.level === 'warning'));
});

test('an Istio release before 1.9 is a warning on its context', (t) => {
  const base = snapshotOf(scenario('seed-blog-boundary-http'));
  const old = { ...base, consumer: { ...base.consumer, mesh: { ...base.consumer.mesh, istioVersion: '1.8.6' } } };
  t.deepEqual(failures(runChecks(old, STATIC_CHECKS)), [['MF0104', 'context cluster1']]);
});

test('a passthrough gateway on Istio 1.9 without ISTIO_META_ROUTER_MODE=sni-dnat is MF0212', (t) => {
  const base = snapshotOf(scenario('seed-question-shared-root-tcp'));
  if (base.provider.status !== 'present') throw new Error('no provider');
  const objects = base.provider.snapshot.objects.map((o) => (o.kind === 'Pod' && o.metadata.labels?.istio === 'meshfed-eastwest'
    ? { ...o, spec: { ...(o.spec as object), containers: [{ name: 'istio-proxy', image: 'docker.io/istio/proxyv2:1.9.1' }] } } : o));
  const changed: VerifySnapshot = { ...base, provider: { status: 'present', snapshot: { ...base.provider.snapshot, objects } } };
  t.deepEqual(failures(runChecks(changed, STATIC_CHECKS)), [['MF0212', 'Gateway istio-meshfed/meshfed-eastwest'], ['MF0420', 'provider Istio release']]);
});

test('an object of the same name that meshfed does not manage is MF0303, with the reason', (t) => {
  const base = snapshotOf(scenario('seed-blog-boundary-http'));
  const objects = base.consumer.objects.map((o) => (o.kind === 'VirtualService' && o.metadata.name === 'mf-import-myreviews'
    ? { ...o, metadata: { ...o.metadata, labels: { app: 'someone-else' } } } : o));
  const results = runChecks({ ...base, consumer: { ...base.consumer, objects } }, STATIC_CHECKS);
  t.deepEqual(failures(results), [['MF0303', 'VirtualService default/mf-import-myreviews']]);
  t.regex((results.find((r) => r.code === 'MF0303' && r.outcome.status === 'fail')!.outcome as { message: string }).message, /is not managed by kubectl-meshfed/);
});

test('shared-root: a consumer whose mesh changed trust domain since its admission is not admitted (MF0402)', (t) => {
  const base = snapshotOf(scenario('seed-question-shared-root-tcp'));
  const moved = { ...base, consumer: { ...base.consumer, mesh: { ...base.consumer.mesh, trustDomain: 'ops.example' } } };
  const found = failures(runChecks(moved, STATIC_CHECKS));
  t.true(found.some(([code, object]) => code === 'MF0402' && object === 'consumer operations namespace vault'), JSON.stringify(found));
  t.true(found.some(([code]) => code === 'MF0407'), 'the provider does not accept the new trust domain either');
});

test('an expired federation CA fails the server certificate chain (MF0210) and the client certificate (MF0403)', (t) => {
  const base = snapshotOf(scenario('seed-blog-boundary-http'));
  const after = { ...base, now: new Date(base.now.getTime() + 11 * 365 * 86_400_000) };
  const codes = new Set(failures(runChecks(after, STATIC_CHECKS)).map(([code]) => code));
  for (const code of ['MF0210', 'MF0305', 'MF0403']) t.true(codes.has(code), code);
});

test('a server certificate that does not name the export host is MF0210 and MF0404', (t) => {
  const result = scenario('seed-blog-boundary-http');
  const base = snapshotOf(result);
  if (base.provider.status !== 'present') throw new Error('no provider');
  const caData = readSecret(base.provider.snapshot.objects.find((o) => o.kind === 'Secret' && o.metadata.name === 'meshfed-federation-ca'))!;
  const ca = { cert: caData['ca.crt']!, key: caData['ca.key']!, certChain: caData['ca.crt']!, root: caData['ca.crt']! };
  const elsewhere = issueCertificate({
    commonName: 'elsewhere.example', dnsNames: ['elsewhere.example'],
    notBefore: new Date(base.now.getTime() - 60_000), notAfter: new Date(base.now.getTime() + 90 * 86_400_000),
  }, ca);
  const b64 = (text: string) => Buffer.from(text).toString('base64');
  const objects = base.provider.snapshot.objects.map((o) => (o.kind === 'Secret' && o.metadata.name === 'mf-export-bookinfo-myreviews'
    ? { ...o, data: { ...(o.data as object), 'tls.crt': b64(elsewhere.cert), 'tls.key': b64(elsewhere.key) } } : o));
  const codes = failures(runChecks({ ...base, provider: { status: 'present', snapshot: { ...base.provider.snapshot, objects } } }, STATIC_CHECKS));
  t.deepEqual(codes.map(([code]) => code).sort(), ['MF0210', 'MF0404']);
});

/** The snapshot with each side's objects changed. */
function changed(base: VerifySnapshot, change: { consumer?: (objects: KubeObject[]) => KubeObject[]; provider?: (objects: KubeObject[]) => KubeObject[]; consumerVersion?: string }): VerifySnapshot {
  if (base.provider.status !== 'present') throw new Error('no provider');
  return {
    ...base,
    consumer: { ...base.consumer, objects: (change.consumer ?? ((o) => o))(base.consumer.objects), mesh: { ...base.consumer.mesh, ...(change.consumerVersion ? { istioVersion: change.consumerVersion } : {}) } },
    provider: { status: 'present', snapshot: { ...base.provider.snapshot, objects: (change.provider ?? ((o) => o))(base.provider.snapshot.objects) } },
  };
}

test('an older VirtualService of the attached Service wins on sidecars: MF0308 names it', (t) => {
  const base = snapshotOf(scenario('seed-blog-boundary-http'));
  const allV1: KubeObject = {
    apiVersion: 'networking.istio.io/v1beta1', kind: 'VirtualService', metadata: { name: 'reviews', namespace: 'default', creationTimestamp: '2025-01-01T00:00:00Z' },
    spec: { hosts: ['reviews'], http: [{ route: [{ destination: { host: 'reviews', subset: 'v1' } }] }] },
  };
  const results = runChecks(changed(base, { consumer: (objects) => [...objects, allV1] }), STATIC_CHECKS);
  t.deepEqual(failures(results), [['MF0308', 'VirtualService default/mf-attach-reviews']]);
  const outcome = results.find((r) => r.code === 'MF0308')!.outcome;
  t.regex(outcome.status === 'fail' ? `${outcome.message} ${outcome.hint}` : '', /VirtualService default\/reviews is older .*--merge-into default\/reviews/);
});

test('DestinationRule conflicts: a changed owner rule is MF0220, a rule beside foreign gateways MF0221, a gateway rule without the subset MF0222', (t) => {
  const base = snapshotOf(scenario('seed-blog-boundary-http'));
  const owner: KubeObject = {
    apiVersion: 'networking.istio.io/v1beta1', kind: 'DestinationRule', metadata: { name: 'myreviews', namespace: 'bookinfo' },
    spec: { host: 'myreviews', trafficPolicy: { connectionPool: { tcp: { maxConnections: 10 } } }, subsets: [{ name: 'v3', labels: { version: 'v3' } }] },
  };
  t.deepEqual(failures(runChecks(changed(base, { provider: (objects) => [...objects, owner] }), STATIC_CHECKS)),
    [['MF0220', 'DestinationRule istio-meshfed/mf-subsets-bookinfo-myreviews']]);
  const foreignGateway = pod('istio-meshfed', 'istio-ingressgateway-0', { istio: 'ingressgateway' }, 'istio-ingressgateway');
  t.deepEqual(failures(runChecks(changed(base, { provider: (objects) => [...objects, foreignGateway] }), STATIC_CHECKS)),
    [['MF0221', 'DestinationRule istio-meshfed/mf-subsets-bookinfo-myreviews']]);
  const withoutOurs = (objects: KubeObject[]) => [...objects.filter((o) => o.metadata.name !== 'mf-subsets-bookinfo-myreviews'), owner];
  t.deepEqual(failures(runChecks(changed(base, { provider: withoutOurs }), STATIC_CHECKS)).filter(([code]) => code !== 'MF0207'),
    [['MF0222', 'DestinationRule bookinfo/myreviews']]);
});

test('objects of imports left in another namespace are MF0310; an import visible to every namespace is MF0311', (t) => {
  const base = snapshotOf(scenario('seed-blog-boundary-http'));
  const stale = (objects: KubeObject[]) => [...objects, ...objects.filter((o) => o.kind === 'Secret' && o.metadata.labels?.['meshfed.io/role'] === 'binding')
    .map((o) => ({ ...o, metadata: { ...o.metadata, namespace: 'old-egress' } }))];
  t.deepEqual(failures(runChecks(changed(base, { consumer: stale }), STATIC_CHECKS)), [['MF0310', 'namespace old-egress']]);
  const open = (objects: KubeObject[]) => objects.map((o) => (o.kind === 'Service' && o.metadata.name === 'myreviews' ? { ...o, metadata: { ...o.metadata, annotations: {} } } : o));
  t.deepEqual(failures(runChecks(changed(base, { consumer: open }), STATIC_CHECKS)), [['MF0311', 'import default/myreviews']]);
});

test('a Host header on a weighted destination (an older meshfed\'s attach) is MF0312 on Istio 1.10.0, not on 1.12', (t) => {
  const base = snapshotOf(scenario('seed-blog-boundary-http'));
  const old = (objects: KubeObject[]) => objects.map((o) => {
    if (o.metadata.name !== 'mf-attach-reviews') return o;
    const spec = structuredClone(o.spec) as { http: Array<{ route: Array<Record<string, unknown>>; rewrite?: unknown }> };
    delete spec.http[0]!.rewrite;
    spec.http[0]!.route[1]!.headers = { request: { set: { host: 'myreviews.bookinfo.cluster2.export.meshfed.internal' } } };
    return { ...o, spec };
  });
  t.deepEqual(failures(runChecks(changed(base, { consumer: old, consumerVersion: '1.10.0' }), STATIC_CHECKS)), [['MF0312', 'VirtualService default/mf-attach-reviews']]);
  t.deepEqual(failures(runChecks(changed(base, { consumer: old, consumerVersion: '1.12.0' }), STATIC_CHECKS)), []);
});

test('an export route that hands the workload the federation host is MF0223', (t) => {
  const base = snapshotOf(scenario('seed-blog-boundary-http'));
  const noRewrite = (objects: KubeObject[]) => objects.map((o) => {
    if (o.kind !== 'VirtualService' || o.metadata.name !== 'mf-export-bookinfo-myreviews') return o;
    const spec = structuredClone(o.spec) as { http: Array<{ rewrite?: unknown }> };
    delete spec.http[0]!.rewrite;
    return { ...o, spec };
  });
  t.deepEqual(failures(runChecks(changed(base, { provider: noRewrite }), STATIC_CHECKS)), [['MF0223', 'VirtualService istio-meshfed/mf-export-bookinfo-myreviews']]);
});

/** The seed question's snapshot with the provider's objects or mesh changed. */
function sharedRootChanged(change: (objects: KubeObject[]) => KubeObject[], mesh: Partial<VerifySnapshot['consumer']['mesh']> = {}): VerifySnapshot {
  const base = snapshotOf(scenario('seed-question-shared-root-tcp'));
  if (base.provider.status !== 'present') throw new Error('no provider');
  const p = base.provider.snapshot;
  return { ...base, provider: { status: 'present', snapshot: { ...p, mesh: { ...p.mesh, ...mesh }, objects: change(structuredClone(p.objects)) } } };
}

const passthrough = (objects: KubeObject[]) => objects.find((o) => o.kind === 'Gateway' && o.metadata.name === 'meshfed-eastwest')! as KubeObject & { spec: { servers: Array<{ hosts: string[] }> } };

test('MF0421: the passthrough hosts must suit the release — *.<fqdn> on 1.9.1, not on 1.9.5', (t) => {
  const without = sharedRootChanged((objects) => {
    passthrough(objects).spec.servers[0]!.hosts = ['postgres.db.svc.cluster.local'];
    return objects;
  });
  const found = runChecks(without, STATIC_CHECKS).find((r) => r.code === 'MF0421')!;
  t.is(found.outcome.status, 'fail');
  t.regex((found.outcome as { message: string }).message, /Istio 1\.9\.1 matches the SNI against the Gateway hosts literally: outbound_\.5432_\._\.postgres\.db\.svc\.cluster\.local matches none of postgres\.db\.svc\.cluster\.local \(it needs \*\.postgres\.db\.svc\.cluster\.local\)/);
  // Upgraded to 1.9.5 without exporting again: the leftover wildcard is reported, the vulnerability no longer.
  const upgraded = runChecks(sharedRootChanged((objects) => objects, { istioVersion: '1.9.5' }), STATIC_CHECKS);
  t.deepEqual(failures(upgraded), [['MF0421', 'Gateway istio-meshfed/meshfed-eastwest']]);
  t.regex((upgraded.find((r) => r.code === 'MF0421')!.outcome as { message: string }).message, /\*\.postgres\.db\.svc\.cluster\.local is only needed before Istio 1\.9\.5/);
});

test('MF0423: a guard that trust domain aliases widen (the admitted principal as a positive principal) lets the aliased twin through', (t) => {
  const widened = sharedRootChanged((objects) => {
    const guard = objects.find((o) => o.kind === 'AuthorizationPolicy' && o.metadata.name === 'mf-guard-postgres')! as KubeObject & { spec: { rules: unknown[] } };
    guard.spec.rules = [{ from: [{ source: { principals: ['*'], notPrincipals: ['production.nrc.local/*', 'operations.nrc.local/ns/vault/sa/vault'] } }] }];
    return objects;
  }, { trustDomainAliases: ['operations.nrc.local', 'cluster.local'] });
  const found = runChecks(widened, STATIC_CHECKS).find((r) => r.code === 'MF0423')!;
  t.is(found.outcome.status, 'fail');
  t.regex((found.outcome as { message: string }).message, /it lets cluster\.local\/ns\/vault\/sa\/vault through on port 5432/);
  // The guard meshfed writes holds under the same aliases.
  const fine = sharedRootChanged((objects) => objects, { trustDomainAliases: ['operations.nrc.local', 'cluster.local'] });
  t.is(runChecks(fine, STATIC_CHECKS).find((r) => r.code === 'MF0423')!.outcome.status, 'ok');
});

test('MF0422: another consumer of the provider with the same trust domain is reported', (t) => {
  const twin = sharedRootChanged((objects) => {
    const record = objects.find((o) => o.kind === 'ConfigMap' && o.metadata.labels?.['meshfed.io/role'] === 'export-record')! as KubeObject & { data: Record<string, string> };
    const x = JSON.parse(record.data['export.json']!) as { consumers: Array<Record<string, unknown>> };
    x.consumers.push({ clusterId: 'staging', trustDomain: 'operations.nrc.local', namespace: 'apps', serviceAccounts: ['sleep'] });
    record.data['export.json'] = JSON.stringify(x);
    return objects;
  });
  const found = runChecks(twin, STATIC_CHECKS).find((r) => r.code === 'MF0422')!;
  t.is(found.outcome.status, 'fail');
  t.regex((found.outcome as { message: string }).message, /consumer staging of the provider has the trust domain of operations \(operations\.nrc\.local\)/);
});

test('an import whose local port declares no protocol, and whose ServiceEntry every namespace sees: MF0320 and MF0321', (t) => {
  const base = snapshotOf(scenario('seed-question-shared-root-tcp'));
  const objects = base.consumer.objects.map((o) => {
    if (o.kind === 'Service' && o.metadata.name === 'postgres') return { ...o, spec: { ...(o.spec as object), ports: [{ name: 'db', port: 5432, targetPort: 5432, protocol: 'TCP' }] } };
    if (o.kind === 'ServiceEntry') {
      const { exportTo: _exportTo, ...spec } = o.spec as Record<string, unknown>;
      return { ...o, spec };
    }
    return o;
  });
  const found = failures(runChecks({ ...base, consumer: { ...base.consumer, objects } }, STATIC_CHECKS));
  // The seed question's provider runs Istio 1.9.1: MF0420 (ISTIO-SECURITY-2021-006) is reported on every run there.
  t.deepEqual(found, [['MF0320', 'Service vault/postgres'], ['MF0321', 'ServiceEntry vault/mf-import-postgres'], ['MF0420', 'provider Istio release']]);
  const results = runChecks({ ...base, consumer: { ...base.consumer, objects } }, STATIC_CHECKS);
  const mf0320 = results.find((r) => r.code === 'MF0320')!;
  t.is(mf0320.outcome.status === 'fail' && mf0320.outcome.message, 'Service vault/postgres port 5432 (db) declares no protocol Istio knows, so the sidecars sniff it, but the import carries TCP');
  t.regex(mf0320.outcome.status === 'fail' ? mf0320.outcome.hint : '', /names the port by protocol \(e\.g\. tcp-db\)/);
});

test('visibility: an exported Service hidden from the gateway namespace (MF0227), a Sidecar that does not select the import (MF0322), an egress gateway hidden by the mesh default (MF0323)', (t) => {
  const shared = snapshotOf(scenario('seed-question-shared-root-tcp'));
  if (shared.provider.status !== 'present') throw new Error('no provider');
  const hiddenObjects = shared.provider.snapshot.objects.map((o) => (o.kind === 'Service' && o.metadata.name === 'postgres'
    ? { ...o, metadata: { ...o.metadata, annotations: { 'networking.istio.io/exportTo': '.' } } } : o));
  const hidden = runChecks({ ...shared, provider: { status: 'present', snapshot: { ...shared.provider.snapshot, objects: hiddenObjects } } }, STATIC_CHECKS);
  t.deepEqual(failures(hidden), [['MF0227', 'Service db/postgres'], ['MF0420', 'provider Istio release']], 'MF0420: the seed question runs Istio 1.9.1');
  const mf0227 = hidden.find((r) => r.code === 'MF0227')!;
  t.is(mf0227.outcome.status === 'fail' && mf0227.outcome.hint, 'export it there too, keeping what it had: kubectl annotate service postgres -n db networking.istio.io/exportTo=.,istio-meshfed --overwrite');

  const sidecar: KubeObject = { apiVersion: 'networking.istio.io/v1beta1', kind: 'Sidecar', metadata: { name: 'default', namespace: 'vault' }, spec: { egress: [{ hosts: ['istio-system/*'] }] } };
  const scoped = runChecks({ ...shared, consumer: { ...shared.consumer, objects: [...shared.consumer.objects, sidecar] } }, STATIC_CHECKS);
  t.deepEqual(failures(scoped), [['MF0322', 'Sidecar vault/default'], ['MF0420', 'provider Istio release']]);
  const mf0322 = scoped.find((r) => r.code === 'MF0322')!;
  t.regex(mf0322.outcome.status === 'fail' ? mf0322.outcome.hint : '', /^change the Sidecar: add "vault\/postgres\.vault\.svc\.cluster\.local", "vault\/postgres\.vault\.import\.meshfed\.internal" to the hosts/);

  const boundary = snapshotOf(scenario('boundary-tcp'));
  const restricted = runChecks({ ...boundary, consumer: { ...boundary.consumer, mesh: { ...boundary.consumer.mesh, defaultServiceExportTo: ['.'] } } }, STATIC_CHECKS);
  t.deepEqual(failures(restricted).map(([code]) => code), ['MF0323']);
  const mf0323 = restricted.find((r) => r.code === 'MF0323')!;
  t.regex(mf0323.outcome.status === 'fail' ? mf0323.outcome.hint : '', /kubectl annotate service meshfed-egress -n istio-meshfed networking\.istio\.io\/exportTo=\.,vault --overwrite$/);
});
