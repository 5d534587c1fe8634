/**
 * The seed question's scenario (shared root, TCP: Vault's sidecar -> Istio mTLS with the provider's own SNI ->
 * AUTO_PASSTHROUGH east-west gateway -> postgres's sidecar -> postgres), end to end, and its single faults. The
 * check sends postgres's SSLRequest and requires its `N`: a local sidecar accepting the connection cannot fake it.
 */
import test from 'ava';
import type { ExecutionContext } from 'ava';
import type { KubeObject } from '../support/emulator/runtime.js';
import { faultyWorld } from '../support/mesh/faults.js';
import { POSTGRES_CHECK, sharedRootWorld } from '../support/mesh/scenarios.js';
import { edit, run } from './helpers.js';
import type { World } from './helpers.js';

const probe = (world: World) => run(world, 'operations', 'vault', 'vault-0', ['sh', '-c', POSTGRES_CHECK]);

function assertNoAnswer(t: ExecutionContext, r: Awaited<ReturnType<typeof probe>>): void {
  t.is(r.exitCode, 1);
  t.is(r.stdout, 'no answer from postgres\n');
}

test('the seed question: Vault in operations reaches postgres in production through the east-west gateway', async (t) => {
  const r = await probe(sharedRootWorld());
  t.is(r.stdout, 'postgres answered\n', r.trace.join('\n'));
  t.is(r.exitCode, 0);
  t.true(r.trace.some((h) => h.includes('LoadBalancer 203.0.113.10:15443 (production')));
  t.true(r.trace.some((h) => h.includes('outbound|5432||postgres.db.svc.cluster.local 10.245.8.10:5432')));
  t.regex(r.proxies.logOf('istio-eastwestgateway-6c9b8'), /"outbound_.5432_._.postgres.db.svc.cluster.local"/);
});

test('the postgres reply reaches nc unchanged', async (t) => {
  const r = await run(sharedRootWorld(), 'operations', 'vault', 'vault-0', ['sh', '-c', "printf '\\000\\000\\000\\010\\004\\322\\026\\057' | nc postgres.vault 5432"]);
  t.is(r.stdout, 'N');
  t.is(r.exitCode, 0);
});

test('fault: shared-root mode with distinct roots -> the consumer sidecar rejects the provider certificate', async (t) => {
  const world = faultyWorld('shared-root/distinct-roots');
  const r = await probe(world);
  assertNoAnswer(t, r);
  t.true(r.trace.some((h) => /postgres-0: Istio mTLS handshake refused by the client: (SELF_SIGNED_CERT_IN_CHAIN|UNABLE_TO_GET_ISSUER_CERT)/.test(h)), r.trace.join('\n'));
  t.regex(r.proxies.logOf('vault-0'), /"- - -" 0 UF /);
});

test('fault: distinct trust domains without trustDomainAliases -> the provider sidecar refuses the peer', async (t) => {
  const world = faultyWorld('shared-root/trust-domain-not-aliased');
  const r = await probe(world);
  assertNoAnswer(t, r);
  t.true(r.trace.some((h) => h.includes('peer trust domain operations.local is not production.local')), r.trace.join('\n'));
});

test('fault: consumer not admitted by the workload AuthorizationPolicy -> connection closed by RBAC', async (t) => {
  const world = faultyWorld('shared-root/consumer-not-admitted');
  const r = await probe(world);
  assertNoAnswer(t, r);
  t.regex(r.proxies.logOf('postgres-0'), /rbac_access_denied/);
});

test('fault: the ALLOW policy locks out in-mesh callers it does not name; named ones still pass', async (t) => {
  const world = faultyWorld('shared-root/allow-locks-out-local-callers');
  const check = "printf '\\000\\000\\000\\010\\004\\322\\026\\057' | nc -w 3 postgres.db 5432 | grep -q N && echo ok || echo denied";
  const reporting = await run(world, 'production', 'analytics', 'reporting-5f6d8', ['sh', '-c', check]);
  t.is(reporting.stdout, 'denied\n');
  const migrations = await run(world, 'production', 'db', 'migrations-x7k2p', ['sh', '-c', check]);
  t.is(migrations.stdout, 'ok\n');
});

test('fault: Istio 1.9 east-west gateway without ISTIO_META_ROUTER_MODE=sni-dnat -> no SNI clusters', async (t) => {
  const world = faultyWorld('shared-root/no-sni-dnat');
  const r = await probe(world);
  assertNoAnswer(t, r);
  t.true(r.trace.some((h) => h.includes('without ISTIO_META_ROUTER_MODE=sni-dnat')));
});

test('fault: SNI for a host the AUTO_PASSTHROUGH gateway does not list -> filter_chain_not_found', async (t) => {
  const world = faultyWorld('shared-root/sni-not-listed');
  const r = await probe(world);
  assertNoAnswer(t, r);
  t.regex(r.proxies.logOf('istio-eastwestgateway-6c9b8'), /filter_chain_not_found/);
});

test('fault: port mismatch (ServiceEntry endpoint port 15444, gateway LoadBalancer on 15443) -> timeout', async (t) => {
  const world = faultyWorld('shared-root/endpoint-port-mismatch');
  const r = await probe(world);
  assertNoAnswer(t, r);
  t.regex(r.proxies.logOf('vault-0'), /"- - -" 0 UF "-" "203.0.113.10:15444"/);
});

test('fault: postgres has no ready endpoints -> the gateway has no upstream', async (t) => {
  const world = faultyWorld('shared-root/no-ready-endpoints');
  const r = await probe(world);
  assertNoAnswer(t, r);
  t.regex(r.proxies.logOf('istio-eastwestgateway-6c9b8'), /"- - -" 0 UH /);
});

test('fault: no sidecar in the consumer pod -> the selector-less Service refuses the connection', async (t) => {
  const world = faultyWorld('shared-root/no-consumer-sidecar');
  const r = await probe(world);
  t.is(r.exitCode, 1);
  t.is(r.stdout, 'no answer from postgres\n');
  t.is(r.stderr, "nc: can't connect to remote host: Connection refused\n");
});

test('nc -z is fooled by the local sidecar: it succeeds even when nothing is configured behind it', async (t) => {
  const world = sharedRootWorld();
  world.remove('production', 'networking.istio.io', 'Gateway', 'istio-system', 'cross-mesh-gateway');
  const zero = await run(world, 'operations', 'vault', 'vault-0', ['sh', '-c', 'nc -z -w 3 postgres.vault 5432 && echo open']);
  t.is(zero.stdout, 'open\n');
  assertNoAnswer(t, await probe(world));
});

test('an AuthorizationPolicy on the passthrough gateway can only use connection.sni: no principal is seen there', async (t) => {
  const world = sharedRootWorld();
  const policy = (when: Record<string, unknown>): KubeObject => ({
    apiVersion: 'security.istio.io/v1beta1', kind: 'AuthorizationPolicy', metadata: { name: 'eastwest', namespace: 'istio-system' },
    spec: { selector: { matchLabels: { istio: 'eastwestgateway' } }, action: 'ALLOW', rules: [{ when: [when] }] },
  });
  world.add('production', policy({ key: 'connection.sni', values: ['outbound_.5432_._.postgres.db.svc.cluster.local'] }));
  t.is((await probe(world)).stdout, 'postgres answered\n');
  world.add('production', policy({ key: 'source.principal', values: ['operations.local/ns/vault/sa/vault'] }));
  const r = await probe(world);
  assertNoAnswer(t, r);
  t.regex(r.proxies.logOf('istio-eastwestgateway-6c9b8'), /rbac_access_denied/);
});

// Istio's own east-west gateway Gateway (samples/multicluster/expose-services.yaml): AUTO_PASSTHROUGH for *.local.
const crossNetwork = (): KubeObject => ({
  apiVersion: 'networking.istio.io/v1beta1', kind: 'Gateway', metadata: { name: 'cross-network-gateway', namespace: 'istio-system' },
  spec: { selector: { istio: 'eastwestgateway' }, servers: [{ port: { number: 15443, name: 'tls', protocol: 'TLS' }, hosts: ['*.local'], tls: { mode: 'AUTO_PASSTHROUGH' } }] },
});

test('a *.local AUTO_PASSTHROUGH server beside an explicit one on the same port: Istio 1.10+ emits duplicate filter chains and Envoy rejects the listener', async (t) => {
  const world = sharedRootWorld();
  world.add('production', crossNetwork());
  edit(world, 'production', '', 'Pod', 'istio-system', 'istio-eastwestgateway-6c9b8', (p) => { p.spec.containers[0].image = 'docker.io/istio/proxyv2:1.10.0'; });
  const r = await probe(world);
  assertNoAnswer(t, r);
  t.regex(r.proxies.logOf('istio-eastwestgateway-6c9b8'), /listener 0\.0\.0\.0_15443 rejected: error adding listener: multiple filter chains with the same matching rules are defined \(outbound_\.5432_\._\.postgres\.db\.svc\.cluster\.local\)/);
  // The *.local server alone serves the host (and every other *.local service).
  world.remove('production', 'networking.istio.io', 'Gateway', 'istio-system', 'cross-mesh-gateway');
  t.is((await probe(world)).stdout, 'postgres answered\n');
});

test('the same two servers on Istio 1.9.1: chains match the literal hosts (legacy sni_cluster), no duplicate; *.local matches the SNI', async (t) => {
  const world = sharedRootWorld();
  world.add('production', crossNetwork());
  const r = await probe(world);
  t.is(r.stdout, 'postgres answered\n', r.trace.join('\n'));
  t.notRegex(r.proxies.logOf('istio-eastwestgateway-6c9b8'), /rejected/);
});
