/**
 * Istio facts the shared-root mode relies on, in the data-path model (test/support/mesh/README.md): how istiod's
 * release decides whether an explicit-host AUTO_PASSTHROUGH Gateway matches outbound_.<port>_._.<fqdn> (1.9.0–1.9.4
 * vs 1.9.5+), how trustDomainAliases rewrite policy principals, and what PILOT_SKIP_VALIDATE_TRUST_DOMAIN does.
 */
import test from 'ava';
import type { KubeObject } from '../support/emulator/runtime.js';
import { expandPolicyPrincipal } from '../support/mesh/authz.js';
import { POSTGRES_CHECK, sharedRootWorld } from '../support/mesh/scenarios.js';
import { edit, run } from './helpers.js';
import type { World } from './helpers.js';

const probe = (world: World) => run(world, 'operations', 'vault', 'vault-0', ['sh', '-c', POSTGRES_CHECK]);

function istiod(version: string, env: Array<{ name: string; value: string }> = []): KubeObject {
  return {
    apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'istiod', namespace: 'istio-system' },
    spec: { template: { spec: { containers: [{ name: 'discovery', image: `docker.io/istio/pilot:${version}`, env }] } } },
  } as KubeObject;
}

const setHosts = (world: World, hosts: string[]): void => edit(world, 'production', 'networking.istio.io', 'Gateway', 'istio-system', 'cross-mesh-gateway', (gw) => {
  gw.spec.servers[0].hosts = hosts;
});

test('istiod 1.9.1: the explicit host never matches outbound_.5432_._.<fqdn> (filter_chain_not_found); *.<fqdn> does', async (t) => {
  const world = sharedRootWorld();
  world.add('production', istiod('1.9.1'));
  const literal = await probe(world);
  t.is(literal.exitCode, 1, literal.trace.join('\n'));
  t.true(literal.trace.some((h) => h.includes('filter_chain_not_found for SNI outbound_.5432_._.postgres.db.svc.cluster.local')), literal.trace.join('\n'));
  setHosts(world, ['*.postgres.db.svc.cluster.local', 'postgres.db.svc.cluster.local']);
  const wildcard = await probe(world);
  t.is(wildcard.stdout, 'postgres answered\n', wildcard.trace.join('\n'));
});

test('istiod 1.9.5 and 1.10.0: the explicit host matches; *.<fqdn> alone covers only hosts under it', async (t) => {
  for (const version of ['1.9.5', '1.10.0']) {
    const world = sharedRootWorld();
    world.add('production', istiod(version));
    t.is((await probe(world)).stdout, 'postgres answered\n', version);
    setHosts(world, ['*.postgres.db.svc.cluster.local']);
    t.is((await probe(world)).exitCode, 1, version);
    // PILOT_ENABLE_LEGACY_AUTO_PASSTHROUGH restores the 1.9.0 filter chain.
    world.add('production', istiod(version, [{ name: 'PILOT_ENABLE_LEGACY_AUTO_PASSTHROUGH', value: 'true' }]));
    t.is((await probe(world)).stdout, 'postgres answered\n', `${version} legacy`);
  }
});

test('ReplaceTrustDomainAliases: five-part principals of the bundle or cluster.local are rewritten; patterns and other trust domains are not', (t) => {
  const bundle = ['prod.local', 'ops.local'];
  t.deepEqual(expandPolicyPrincipal('ops.local/ns/vault/sa/vault', bundle), ['prod.local/ns/vault/sa/vault', 'ops.local/ns/vault/sa/vault']);
  t.deepEqual(expandPolicyPrincipal('cluster.local/ns/vault/sa/vault', bundle), ['prod.local/ns/vault/sa/vault', 'ops.local/ns/vault/sa/vault']);
  t.deepEqual(expandPolicyPrincipal('staging.local/ns/vault/sa/vault', bundle), ['staging.local/ns/vault/sa/vault']);
  t.deepEqual(expandPolicyPrincipal('prod.local/*', bundle), ['prod.local/*']);
  t.deepEqual(expandPolicyPrincipal('ops.local/ns/vault/*', bundle), ['ops.local/ns/vault/*']);
  t.deepEqual(expandPolicyPrincipal('*/ns/vault/sa/vault', bundle), ['*/ns/vault/sa/vault']);
});

test('with an alias, a DENY of everything outside prod.local/* still denies the aliased peer (the pattern is not rewritten)', async (t) => {
  const world = sharedRootWorld();
  world.add('production', {
    apiVersion: 'security.istio.io/v1beta1', kind: 'AuthorizationPolicy', metadata: { name: 'foreign', namespace: 'db' },
    spec: { selector: { matchLabels: { app: 'postgres' } }, action: 'DENY', rules: [{ from: [{ source: { principals: ['*'], notPrincipals: ['production.local/*'] } }] }] },
  } as KubeObject);
  const r = await probe(world);
  t.is(r.exitCode, 1, r.trace.join('\n'));
  t.true(r.trace.some((h) => h.includes('denied by db/foreign')), r.trace.join('\n'));
});

test('PILOT_SKIP_VALIDATE_TRUST_DOMAIN on istiod: the sidecar accepts a trust domain that is neither its own nor an alias', async (t) => {
  const world = sharedRootWorld();
  edit(world, 'production', '', 'ConfigMap', 'istio-system', 'istio', (cm) => { cm.data.mesh = 'trustDomain: production.local\n'; });
  t.is((await probe(world)).exitCode, 1);
  world.add('production', istiod('1.9.5', [{ name: 'PILOT_SKIP_VALIDATE_TRUST_DOMAIN', value: 'true' }]));
  const r = await probe(world);
  t.is(r.stdout, 'postgres answered\n', r.trace.join('\n'));
});
