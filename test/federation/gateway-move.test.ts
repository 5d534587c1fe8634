// Moving an export to another gateway: one federation CA per provider wherever its gateways live, nothing left in
// the namespace it moved from, and no silent move while consumers are admitted.
import test from 'ava';
import {
  FederationInputError, objectKey, planAdmission, planExport, planRevoke, planUnexport, readSecret,
  type ClusterPlan, type ExistingGateway, type ExportSpec, type KubeObject, type ProviderSnapshot,
} from '../../src/federation/index.js';
import { createFederationCA } from '../../src/pki/index.js';

type Spec = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
const now = new Date('2026-06-01T12:00:00Z');
const existingGateway: ExistingGateway = { namespace: 'istio-system', selector: { istio: 'ingressgateway' }, serviceName: 'istio-ingressgateway', port: 15443 };

/** The Service owner's DestinationRule for shop/api, with these subsets (by version). */
const ownerRule = (...versions: string[]): KubeObject => ({
  apiVersion: 'networking.istio.io/v1beta1', kind: 'DestinationRule', metadata: { name: 'api', namespace: 'shop' },
  spec: { host: 'api', subsets: versions.map((v) => ({ name: v, labels: { version: v } })) },
});

// The owner's rule names the subsets: meshfed never writes a DestinationRule beside an existing gateway, which it does
// not own (see boundary-correctness.test.ts), so exports with a subset move there only with the owner's subset.
function provider(over: Partial<ProviderSnapshot> = {}): ProviderSnapshot {
  return {
    clusterId: 'prod', istioVersion: '1.9.5', trustDomain: 'prod.local', gatewayAddress: '192.0.2.10',
    services: [
      { name: 'api', namespace: 'shop', selector: { app: 'api' }, ports: [{ name: 'http', port: 8080, targetPort: 8080 }] },
      { name: 'postgres', namespace: 'db', selector: { app: 'postgres' }, ports: [{ name: 'tcp-postgres', port: 5432, targetPort: 5432 }] },
    ],
    existing: [ownerRule('v1', 'v2')],
    ...over,
  };
}

const spec = (over: Partial<ExportSpec> = {}): ExportSpec => ({
  providerClusterId: 'prod', namespace: 'shop', service: 'api', port: { number: 8080 }, subset: { version: 'v2' }, exportName: 'api', ...over,
});

/** Applies a plan as the commands do: upserts its objects, deletes what it removes and what its prune specs select. */
function apply(snapshot: ProviderSnapshot, plan: ClusterPlan): ProviderSnapshot {
  const planned = new Set(plan.objects.map(objectKey));
  const removed = new Set(plan.remove.map((r) => `${r.kind}/${r.namespace ?? ''}/${r.name}`));
  for (const spec of plan.prune) {
    const kinds = new Set(spec.kinds.map((k) => k.kind));
    for (const o of snapshot.existing) {
      const selected = kinds.has(o.kind) && Object.entries(spec.selector).every(([k, v]) => o.metadata.labels?.[k] === v);
      if (selected && !(spec.keep ?? []).includes(objectKey(o))) removed.add(objectKey(o));
    }
  }
  const byKey = new Map(snapshot.existing.filter((o) => !removed.has(objectKey(o)) || planned.has(objectKey(o))).map((o) => [objectKey(o), o]));
  for (const o of plan.objects) byKey.set(objectKey(o), structuredClone(o));
  return { ...snapshot, existing: [...byKey.values()] };
}

const keys = (snapshot: ProviderSnapshot, namespace: string): string[] =>
  snapshot.existing.filter((o) => o.metadata.namespace === namespace).map(objectKey).sort();
const caSecrets = (snapshot: ProviderSnapshot): KubeObject[] => snapshot.existing.filter((o) => o.kind === 'Secret' && o.metadata.name === 'meshfed-federation-ca');
const caPem = (o: KubeObject | undefined): string | undefined => readSecret(o)?.['ca.crt'];
const admitted = (snapshot: ProviderSnapshot): ProviderSnapshot =>
  apply(snapshot, planAdmission(snapshot, { namespace: 'shop', exportName: 'api', consumer: { clusterId: 'ops' } }, { now }));

test('an export moved to an existing gateway keeps the federation CA in its own namespace and leaves nothing in the namespace it left', (t) => {
  const before = apply(provider(), planExport(provider(), spec(), { now }));
  const ca = caPem(caSecrets(before)[0]);
  t.deepEqual(caSecrets(before).map((o) => o.metadata.namespace), ['meshfed-ca']);

  const plan = planExport({ ...before, existingGateway }, spec(), { now });
  t.deepEqual(plan.remove.filter((r) => r.kind === 'Secret'), []);
  const after = apply({ ...before, existingGateway }, plan);

  t.deepEqual(caSecrets(after).map((o) => o.metadata.namespace), ['meshfed-ca'], 'one federation CA, out of every gateway\'s namespace');
  t.is(caPem(caSecrets(after)[0]), ca, 'the same CA: certificates it signed stay valid');
  t.is(plan.federationCaPem, ca!);
  t.deepEqual(keys(after, 'istio-meshfed'), [], 'no export object or subsets DestinationRule is left behind');
  t.deepEqual(keys(after, 'istio-system'), [
    'AuthorizationPolicy/istio-system/mf-export-shop-api', 'ConfigMap/istio-system/meshfed-federation-ca.crt', 'ConfigMap/istio-system/mf-export-shop-api',
    'ConfigMap/istio-system/mf-export-shop-api.crt', 'Gateway/istio-system/mf-export-shop-api',
    'Secret/istio-system/mf-export-shop-api', 'VirtualService/istio-system/mf-export-shop-api',
  ]);
  t.is(readSecret(after.existing.find((o) => objectKey(o) === 'Secret/istio-system/mf-export-shop-api'))?.['ca.crt'], ca, 'the gateway trusts client certificates of the same CA');
  t.false(plan.warnings.some((w) => /moves from/.test(w)), 'nobody to tell when no consumer is admitted');

  const again = planExport(after, spec(), { now });
  t.deepEqual(again.remove, [], 'a re-run where it now lives removes nothing');
  t.is(caPem(again.objects.find((o) => o.metadata.name === 'meshfed-federation-ca')), ca);
});

test('a move that would break admitted consumers is refused with the way forward, and goes ahead when asked', (t) => {
  const before = admitted(apply(provider({ istioVersion: '1.22.3' }), planExport(provider({ istioVersion: '1.22.3' }), spec(), { now })));
  const moved = { ...before, existingGateway };
  const error = t.throws(() => planExport(moved, spec(), { now }), { instanceOf: FederationInputError });
  t.regex(error!.message, /export shop\/api is served by the gateway in namespace istio-meshfed \(istio=meshfed-ingress, port 15443\) and consumer ops is admitted/);
  t.regex(error!.message, /namespace istio-system \(istio=ingressgateway, port 15443\) changes the address they connect to/);
  t.regex(error!.message, /run the export with no --gateway-selector; to move it anyway, add --force, then import it again \(kubectl meshfed import in each consumer, or a new bundle from kubectl meshfed admit\)/);
  t.is(error!.flag, '--gateway-selector');

  const plan = planExport(moved, spec(), { now, allowGatewayMove: true });
  t.true(plan.warnings.some((w) => /export shop\/api moves from the gateway in namespace istio-meshfed .* consumer ops reach it again once they import it again/.test(w)), plan.warnings.join('\n'));
  t.deepEqual(plan.record.consumers.map((c) => c.clusterId), ['ops'], 'the consumers stay admitted');
  const policy = plan.objects.find((o) => o.kind === 'AuthorizationPolicy')!;
  t.is(policy.metadata.namespace, 'istio-system');
  t.is((policy.spec as Spec).action, 'DENY', 'a gateway meshfed does not own gets no ALLOW policy');
  t.deepEqual((policy.spec as Spec).rules[0].from[0].source.notPrincipals, ['ops.meshfed.internal/ns/istio-meshfed/sa/meshfed-egress']);
  const after = apply(moved, plan);
  t.is(caSecrets(after).length, 1);
  t.is(caPem(caSecrets(after)[0]), caPem(caSecrets(before)[0]), 'their certificates still chain to the CA');

  // Back on the same gateway (same selector, same namespace): no move, nothing refused.
  t.notThrows(() => planExport(before, spec(), { now }));
});

test('admitting or revoking a consumer never moves an export: the command is told which gateway it lives on', (t) => {
  const onExisting = { ...provider(), existingGateway };
  const before = apply(onExisting, planExport(onExisting, spec(), { now }));
  const elsewhere: ProviderSnapshot = { ...before, existingGateway: { ...existingGateway, selector: { istio: 'eastwestgateway' }, serviceName: 'istio-eastwestgateway' } };
  const error = t.throws(() => planAdmission(elsewhere, { namespace: 'shop', exportName: 'api', consumer: { clusterId: 'ops' } }, { now }), { instanceOf: FederationInputError });
  t.regex(error!.message, /served by the gateway in namespace istio-system \(istio=ingressgateway, port 15443\), not by the one this command selected \(namespace istio-system \(istio=eastwestgateway/);
  t.regex(error!.message, /admitting a consumer does not move an export: run the command with --gateway-selector istio=ingressgateway --gateway-namespace istio-system/);
  const withConsumer = admitted(before);
  t.throws(() => planRevoke({ ...withConsumer, existingGateway: elsewhere.existingGateway! }, { namespace: 'shop', exportName: 'api', consumerClusterId: 'ops' }, { now }), {
    message: /revoking a consumer does not move an export/,
  });
  t.notThrows(() => planRevoke(withConsumer, { namespace: 'shop', exportName: 'api', consumerClusterId: 'ops' }, { now }));
});

test('exports still served from the old namespace keep their subsets there until the last one goes; the CA stays in its own namespace', (t) => {
  // The owner's rule names v1 only: api-v2 needs meshfed's rule, which only meshfed's own gateway namespace may hold.
  let cluster = provider({ existing: [ownerRule('v1')] });
  for (const s of [spec({ exportName: 'api-v1', subset: { version: 'v1' } }), spec({ exportName: 'api-v2', subset: { version: 'v2' } })]) {
    cluster = apply(cluster, planExport(cluster, s, { now }));
  }
  const ca = caPem(caSecrets(cluster)[0]);
  const plan = planExport({ ...cluster, existingGateway }, spec({ exportName: 'api-v1', subset: { version: 'v1' } }), { now });
  cluster = apply({ ...cluster, existingGateway }, plan);
  const subsets = (namespace: string): unknown =>
    (cluster.existing.find((o) => objectKey(o) === `DestinationRule/${namespace}/mf-subsets-shop-api`)?.spec as Spec | undefined)?.subsets;
  t.is(subsets('istio-system'), undefined, 'no rule of meshfed\'s beside the existing gateway: api-v1 uses the owner\'s subset');
  const route = cluster.existing.find((o) => o.kind === 'VirtualService' && o.metadata.namespace === 'istio-system' && o.metadata.labels?.['meshfed.io/export'] === 'shop.api-v1')?.spec as Spec;
  t.is(route.http[0].route[0].destination.subset, 'v1');
  t.deepEqual(subsets('istio-meshfed'), [{ name: 'v1', labels: { version: 'v1' } }, { name: 'version-v2', labels: { version: 'v2' } }], 'api-v2 keeps its subset, beside the owner\'s');
  t.deepEqual(caSecrets(cluster).map((o) => [o.metadata.namespace, caPem(o) === ca]), [['meshfed-ca', true]], 'one CA, in neither gateway namespace');
  t.false(cluster.existing.some((o) => o.metadata.namespace === 'istio-meshfed' && o.metadata.name === 'mf-export-shop-api-v1'));

  const unexported = planUnexport({ ...cluster, existingGateway }, { namespace: 'shop', exportName: 'api-v2' });
  cluster = apply(cluster, unexported);
  t.is(subsets('istio-meshfed'), undefined, 'unexport removes the subsets where the export was served, whatever gateway the command selected');
  t.is(subsets('istio-system'), undefined);
  t.deepEqual(keys(cluster, 'istio-meshfed'), []);
  const rerun = planExport({ ...cluster, existingGateway }, spec({ exportName: 'api-v1', subset: { version: 'v1' } }), { now });
  t.deepEqual(rerun.remove, []);
});

test('a cluster left with two federation CAs is told which one is used and how to keep the other', (t) => {
  const onExisting = { ...provider(), existingGateway };
  const cluster = apply(onExisting, planExport(onExisting, spec(), { now }));
  const other = createFederationCA({ provider: 'prod', now });
  const stale: KubeObject = {
    apiVersion: 'v1', kind: 'Secret', type: 'Opaque',
    metadata: { name: 'meshfed-federation-ca', namespace: 'istio-meshfed', labels: { 'app.kubernetes.io/managed-by': 'kubectl-meshfed', 'meshfed.io/role': 'federation-ca' } },
    data: { 'ca.crt': Buffer.from(other.certificatePem).toString('base64'), 'ca.key': Buffer.from(other.privateKeyPem).toString('base64') },
  };
  const plan = planExport({ ...cluster, existing: [...cluster.existing, stale] }, spec(), { now });
  t.is(plan.federationCaPem, caPem(caSecrets(cluster)[0])!, 'the CA in its own namespace is used');
  t.deepEqual(plan.remove, [], 'a different CA is never deleted by meshfed');
  t.true(plan.warnings.some((w) => /Secret istio-meshfed\/meshfed-federation-ca holds another federation CA than meshfed-ca\/meshfed-federation-ca.*delete meshfed-ca\/meshfed-federation-ca and run the export again/.test(w)), plan.warnings.join('\n'));
  t.false(JSON.stringify(plan.warnings).includes('PRIVATE KEY'));
});

test('shared-root: placing an export on another passthrough gateway of the namespace moves the exports it serves, so their consumers count', (t) => {
  const shared = (over: Partial<ExportSpec>): ExportSpec => spec({ mode: 'shared-root', subset: undefined, ...over });
  let cluster = provider({ istioVersion: '1.22.3' });
  cluster = apply(cluster, planExport(cluster, shared({ exportName: 'api' }), { now }));
  cluster = apply(cluster, planAdmission(cluster, { namespace: 'shop', exportName: 'api', consumer: { clusterId: 'ops', namespace: 'apps', trustDomain: 'ops.local' } }, { now }));
  const other: ProviderSnapshot = { ...cluster, existingGateway: { namespace: 'istio-meshfed', selector: { istio: 'other-eastwest' }, serviceName: 'other-eastwest' } };
  const db = shared({ namespace: 'db', service: 'postgres', port: { number: 5432 }, exportName: 'postgres' });
  t.throws(() => planExport(other, db, { now }), { instanceOf: FederationInputError, message: /^export shop\/api is served by the gateway in namespace istio-meshfed \(istio=meshfed-eastwest, port 15443\) and consumer ops is admitted to it/ });
  const plan = planExport(other, db, { now, allowGatewayMove: true });
  t.true(plan.warnings.some((w) => /^export shop\/api moves from the gateway in namespace istio-meshfed \(istio=meshfed-eastwest/.test(w)), plan.warnings.join('\n'));
  t.deepEqual((plan.objects.find((o) => o.kind === 'Gateway' && o.metadata.name === 'meshfed-eastwest')!.spec as Spec).selector, { istio: 'other-eastwest' });
  t.notThrows(() => planExport(cluster, db, { now }), 'on the same passthrough gateway nothing moves');

  // A boundary export beside them leaves their passthrough Gateway on the gateway it is on.
  const boundary = planExport(cluster, spec({ exportName: 'api-b', subset: undefined }), { now });
  const passthrough = boundary.objects.find((o) => o.kind === 'Gateway' && o.metadata.name === 'meshfed-eastwest');
  t.deepEqual((passthrough!.spec as Spec).selector, { istio: 'meshfed-eastwest' });
  t.deepEqual((passthrough!.spec as Spec).servers[0].hosts, ['api.shop.svc.cluster.local']);
});

test('unexport re-plans the passthrough Gateway where the export was served, on the gateway it is on', (t) => {
  const eastwest: ExistingGateway = { namespace: 'istio-system', selector: { istio: 'eastwestgateway' }, serviceName: 'istio-eastwestgateway', port: 15443 };
  const shared = (over: Partial<ExportSpec>): ExportSpec => spec({ mode: 'shared-root', subset: undefined, ...over });
  let cluster: ProviderSnapshot = { ...provider({ istioVersion: '1.22.3' }), existingGateway: eastwest };
  cluster = apply(cluster, planExport(cluster, shared({ exportName: 'api' }), { now }));
  cluster = apply(cluster, planExport(cluster, shared({ namespace: 'db', service: 'postgres', port: { number: 5432 }, exportName: 'postgres' }), { now }));
  // A command run without --gateway-selector selects meshfed's own gateway: the Gateway stays where it is, as it is.
  const { existingGateway: _, ...withoutFlag } = cluster;
  const plan = planUnexport(withoutFlag, { namespace: 'db', exportName: 'postgres' });
  const gateway = plan.objects.find((o) => o.kind === 'Gateway');
  t.is(gateway?.metadata.namespace, 'istio-system');
  t.deepEqual((gateway!.spec as Spec).selector, { istio: 'eastwestgateway' });
  t.deepEqual((gateway!.spec as Spec).servers[0].hosts, ['api.shop.svc.cluster.local']);
});
