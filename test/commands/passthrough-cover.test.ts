/**
 * A shared-root export on an existing gateway that already carries Istio's standard east-west Gateway (an
 * AUTO_PASSTHROUGH server for `*.local` on port 15443): a second server for the exported host would make istiod
 * (>= 1.9.5) emit the same filter chain match twice and Envoy reject the listener. meshfed adds none, says that its
 * host list no longer limits exposure there, later commands still find the gateway, and the consumer gets through.
 */
import test from 'ava';
import YAML from 'yaml';
import { startFederationWorld, type FederationWorld } from '../support/federation.js';
import { failing, failingCodes, verifyJson } from '../verify/helpers.js';

let fed: FederationWorld;
const POSTGRES_PROBE = "printf '\\000\\000\\000\\010\\004\\322\\026\\057' | nc -w 3 postgres.vault 5432 | grep -q N && echo postgres answered || { echo no answer from postgres; exit 1; }";
const EXPORT = ['export', '--context', 'production', '-n', 'db', '--service', 'postgres', '--port', '5432', '--mode', 'shared-root', '--gateway-selector', 'istio=ingressgateway'];

test.before(async () => {
  fed = await startFederationWorld({ seed: 'federation', clusters: [{ name: 'operations', istio: '1.18.0' }, { name: 'staging', istio: '1.18.0' }, { name: 'production', istio: '1.18.0' }] });
  const production = fed.world.cluster('production');
  const mesh = YAML.parse((production.get('v1', 'ConfigMap', 'istio-system', 'istio')!.data as { mesh: string }).mesh) as Record<string, unknown>;
  production.apply({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'istio', namespace: 'istio-system' }, data: { mesh: YAML.stringify({ ...mesh, trustDomainAliases: ['operations.local'] }) } }, 'test');
  // Istio's samples/multicluster/expose-services.yaml, on the gateway meshfed is asked to use.
  production.create({
    apiVersion: 'networking.istio.io/v1beta1', kind: 'Gateway', metadata: { name: 'cross-network-gateway', namespace: 'istio-system' },
    spec: { selector: { istio: 'ingressgateway' }, servers: [{ port: { number: 15443, name: 'tls', protocol: 'TLS' }, tls: { mode: 'AUTO_PASSTHROUGH' }, hosts: ['*.local'] }] },
  });
  await fed.world.waitIdle();
});

test.after.always(async () => {
  await fed?.stop();
});

test.serial('export adds no passthrough server for a host *.local already covers, and says the host list no longer limits exposure', async (t) => {
  const exported = await fed.run(EXPORT);
  t.is(exported.code, 0, exported.stderr);
  t.regex(exported.stderr, /Gateway istio-system\/cross-network-gateway already passes \*\.local through on port 15443 .* meshfed adds no server of its own for it/);
  t.regex(exported.stderr, /The explicit host list no longer limits exposure there/);
  const gateways = fed.world.cluster('production').list('networking.istio.io/v1beta1', 'Gateway').map((g) => `${g.metadata.namespace}/${g.metadata.name}`);
  t.deepEqual(gateways, ['istio-system/cross-network-gateway']);
});

test.serial('the consumer imports without naming the gateway, and Vault reaches postgres through the *.local server', async (t) => {
  const imported = await fed.run(['import', '--context', 'operations', '-n', 'vault', '--from', 'production', '--export', 'db/postgres', '--service-account', 'vault']);
  t.is(imported.code, 0, imported.stderr);
  const probe = await fed.curl('operations', 'vault', 'vault', ['sh', '-c', POSTGRES_PROBE]);
  t.is(probe.code, 0, probe.stdout + probe.stderr + probe.trace.join('\n'));
  const run = await verifyJson(fed, ['--context', 'operations', '-n', 'vault', '--name', 'postgres', '--from', 'production']);
  t.is(run.code, 0, JSON.stringify(failing(run)));
  t.deepEqual(failingCodes(run), ['MF0225'], 'a warning: every *.local service passes through that gateway');
  t.regex(run.report.checks.find((c) => c.code === 'MF0225')!.message!, /Gateway istio-system\/cross-network-gateway passes \*\.local through/);
});

test.serial('a passthrough server of meshfed beside the *.local one (as earlier versions planned it) is MF0226, and the listener is rejected', async (t) => {
  const production = fed.world.cluster('production');
  production.create({
    apiVersion: 'networking.istio.io/v1beta1', kind: 'Gateway',
    metadata: { name: 'meshfed-eastwest', namespace: 'istio-system', labels: { 'app.kubernetes.io/managed-by': 'kubectl-meshfed', 'meshfed.io/role': 'gateway' } },
    spec: { selector: { istio: 'ingressgateway' }, servers: [{ port: { number: 15443, name: 'tls-passthrough', protocol: 'TLS' }, hosts: ['postgres.db.svc.cluster.local'], tls: { mode: 'AUTO_PASSTHROUGH' } }] },
  });
  await fed.world.waitIdle();
  try {
    const probe = await fed.curl('operations', 'vault', 'vault', ['sh', '-c', POSTGRES_PROBE]);
    t.is(probe.code, 1, 'Envoy rejects the listener with duplicate filter chain matches');
    const run = await verifyJson(fed, ['--context', 'operations', '-n', 'vault', '--name', 'postgres', '--from', 'production']);
    t.true(failingCodes(run).includes('MF0226'), JSON.stringify(failing(run)));
    t.regex(run.report.checks.find((c) => c.code === 'MF0226')!.message!, /Istio 1\.18\.0 builds a filter chain per covered service and server/);
    // export again repairs it: the host is left to the *.local server.
    const again = await fed.run(EXPORT);
    t.is(again.code, 0, again.stderr);
    t.is(production.get('networking.istio.io/v1beta1', 'Gateway', 'istio-system', 'meshfed-eastwest'), undefined);
    t.is((await fed.curl('operations', 'vault', 'vault', ['sh', '-c', POSTGRES_PROBE])).code, 0);
  } finally {
    production.delete('networking.istio.io/v1beta1', 'Gateway', 'istio-system', 'meshfed-eastwest');
    await fed.world.waitIdle();
  }
});
