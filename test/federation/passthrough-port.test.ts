// The passthrough server of shared-root exports on an existing gateway that carries Gateways of its own: a host an
// AUTO_PASSTHROUGH server there already covers gets no server of meshfed's (Istio >= 1.9.5 would emit duplicate filter
// chains), the others keep theirs; a plain-text server on that port is refused (Istio skips one of the two); the
// static checks say the same (MF0225, MF0226, MF0228).
import test from 'ava';
import { runChecks, STATIC_CHECKS } from '../../src/federation/checks/index.js';
import { FederationInputError, planExport, type KubeObject, type ProviderSnapshot } from '../../src/federation/index.js';

const now = new Date('2026-06-01T12:00:00Z');

function gateway(name: string, servers: unknown[], selector = { istio: 'eastwestgateway' }): KubeObject {
  return { apiVersion: 'networking.istio.io/v1beta1', kind: 'Gateway', metadata: { name, namespace: 'istio-system' }, spec: { selector, servers } };
}

function provider(existing: KubeObject[]): ProviderSnapshot {
  return {
    clusterId: 'production', istioVersion: '1.18.0', trustDomain: 'production.local', gatewayAddress: '198.51.100.7',
    existingGateway: { namespace: 'istio-system', selector: { istio: 'eastwestgateway' }, serviceName: 'istio-eastwestgateway', port: 15443 },
    services: [
      { name: 'postgres', namespace: 'db', selector: { app: 'postgres' }, ports: [{ name: 'tcp-postgres', port: 5432, targetPort: 5432 }] },
      { name: 'billing', namespace: 'finance', selector: { app: 'billing' }, ports: [{ name: 'http', port: 8080, targetPort: 8080 }] },
    ],
    pods: [], existing,
  };
}

const localOnly = gateway('cross-network-gateway', [{ port: { number: 15443, name: 'tls', protocol: 'TLS' }, tls: { mode: 'AUTO_PASSTHROUGH' }, hosts: ['*.db.svc.cluster.local'] }]);

test('a host an AUTO_PASSTHROUGH server of the gateway already covers gets no server of meshfed\'s; others keep theirs', (t) => {
  const postgres = planExport(provider([localOnly]), { providerClusterId: 'production', namespace: 'db', service: 'postgres', port: { number: 5432 }, mode: 'shared-root' }, { now });
  t.false(postgres.objects.some((o) => o.kind === 'Gateway'), 'no passthrough Gateway for a covered host');
  t.deepEqual(postgres.record.coveredBy, { gateway: 'istio-system/cross-network-gateway', hosts: ['*.db.svc.cluster.local'], selector: { istio: 'eastwestgateway' }, port: 15443 });
  t.true(postgres.warnings.some((w) => /The explicit host list no longer limits exposure there: every service matching \*\.db\.svc\.cluster\.local is reachable/.test(w)), postgres.warnings.join('\n'));

  const after = { ...provider([localOnly]), existing: [localOnly, ...postgres.objects] };
  const billing = planExport(after, { providerClusterId: 'production', namespace: 'finance', service: 'billing', port: { number: 8080 }, mode: 'shared-root' }, { now });
  const own = billing.objects.find((o) => o.kind === 'Gateway' && o.metadata.name === 'meshfed-eastwest')!;
  t.deepEqual((own.spec as { servers: Array<{ hosts: string[] }> }).servers[0]!.hosts, ['billing.finance.svc.cluster.local'], 'only the host nothing else covers');
  t.is(billing.record.coveredBy, undefined);
});

test('a Gateway on another workload, or on another port, covers nothing', (t) => {
  const elsewhere = gateway('other', [{ port: { number: 15443, name: 'tls', protocol: 'TLS' }, tls: { mode: 'AUTO_PASSTHROUGH' }, hosts: ['*.local'] }], { istio: 'ingressgateway' });
  const otherPort = gateway('port', [{ port: { number: 15444, name: 'tls', protocol: 'TLS' }, tls: { mode: 'AUTO_PASSTHROUGH' }, hosts: ['*.local'] }]);
  const plan = planExport(provider([elsewhere, otherPort]), { providerClusterId: 'production', namespace: 'db', service: 'postgres', port: { number: 5432 }, mode: 'shared-root' }, { now });
  t.true(plan.objects.some((o) => o.kind === 'Gateway' && o.metadata.name === 'meshfed-eastwest'));
});

test('a plain-text server on the passthrough port of the gateway is refused: Istio keeps one of the two', (t) => {
  const plain = gateway('public', [{ port: { number: 15443, name: 'http', protocol: 'HTTP' }, hosts: ['*'] }]);
  const error = t.throws(() => planExport(provider([plain]), { providerClusterId: 'production', namespace: 'db', service: 'postgres', port: { number: 5432 }, mode: 'shared-root' }, { now }), { instanceOf: FederationInputError });
  t.regex(error!.message, /^Gateway istio-system\/public serves HTTP without TLS on port 15443 of the gateway in namespace istio-system \(istio=eastwestgateway\); Istio does not put a plain-text and a TLS server on one gateway port/);
  t.is(error!.flag, '--gateway-selector');
});

test('verify: an export covered by *.local is MF0225 (warning); meshfed\'s server beside it on Istio 1.18 is MF0226; a plain-text server is MF0228', (t) => {
  const star = gateway('cross-network-gateway', [{ port: { number: 15443, name: 'tls', protocol: 'TLS' }, tls: { mode: 'AUTO_PASSTHROUGH' }, hosts: ['*.local'] }]);
  const plan = planExport(provider([star]), { providerClusterId: 'production', namespace: 'db', service: 'postgres', port: { number: 5432 }, mode: 'shared-root', consumers: [{ clusterId: 'operations', trustDomain: 'operations.local', namespace: 'vault', serviceAccounts: ['vault'] }] }, { now });
  const record = { consumerClusterId: 'operations', namespace: 'vault', localName: 'postgres', endpoint: plan.endpoint! };
  const mesh = (td: string, version: string) => ({ istioVersion: version, trustDomain: td, trustDomainAliases: td === 'production.local' ? ['operations.local'] : [] });
  const eastwest: KubeObject[] = [
    { apiVersion: 'v1', kind: 'Service', metadata: { name: 'istio-eastwestgateway', namespace: 'istio-system' }, spec: { type: 'LoadBalancer', selector: { istio: 'eastwestgateway' }, ports: [{ name: 'tls', port: 15443, targetPort: 15443 }] }, status: { loadBalancer: { ingress: [{ ip: '198.51.100.7' }] } } },
    { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'istio-eastwestgateway-1', namespace: 'istio-system', labels: { istio: 'eastwestgateway' } }, spec: { containers: [{ name: 'istio-proxy' }] }, status: { phase: 'Running', conditions: [{ type: 'Ready', status: 'True' }] } },
    { apiVersion: 'v1', kind: 'Service', metadata: { name: 'postgres', namespace: 'db' }, spec: { selector: { app: 'postgres' }, ports: [{ name: 'tcp-postgres', port: 5432, targetPort: 5432 }] } },
    { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'postgres-0', namespace: 'db', labels: { app: 'postgres' } }, spec: { serviceAccountName: 'postgres', containers: [{ name: 'istio-proxy' }] }, status: { phase: 'Running', conditions: [{ type: 'Ready', status: 'True' }] } },
  ];
  const snapshot = (objects: KubeObject[]) => ({
    now, consumerHome: 'istio-meshfed', record,
    consumer: { context: 'operations', mesh: mesh('operations.local', '1.18.0'), objects: [] },
    provider: { status: 'present' as const, snapshot: { context: 'production', mesh: mesh('production.local', '1.18.0'), objects: [...eastwest, ...objects] } },
  });
  const codes = (objects: KubeObject[]) => runChecks(snapshot(objects), STATIC_CHECKS).filter((r) => r.category === 'provider' && r.outcome.status === 'fail').map((r) => r.code);
  t.deepEqual(codes([star, ...plan.objects]), ['MF0225']);
  const ours = gateway('meshfed-eastwest', [{ port: { number: 15443, name: 'tls-passthrough', protocol: 'TLS' }, hosts: ['postgres.db.svc.cluster.local'], tls: { mode: 'AUTO_PASSTHROUGH' } }]);
  ours.metadata.labels = { 'app.kubernetes.io/managed-by': 'kubectl-meshfed', 'meshfed.io/role': 'gateway' };
  t.deepEqual(codes([star, ours, ...plan.objects]), ['MF0225', 'MF0226']);
  const plain = gateway('public', [{ port: { number: 15443, name: 'http', protocol: 'HTTP' }, hosts: ['*'] }]);
  t.true(codes([ours, plain, ...plan.objects]).includes('MF0228'));
  t.false(codes([ours, ...plan.objects]).includes('MF0228'));
});
