/**
 * Boundary exports on the Istio releases users run (1.9.0, 1.10.0, 1.18.0, 1.30.3), through the built CLI and the
 * data-path model, which evaluates each release's gateway authorization as its istiod generates it:
 *
 * - an HTTP export admits its consumers on every release (1.9/1.10 cannot see a MUTUAL client's principal in HTTP
 *   rules: admission happens in the TLS handshake), and refuses them once revoked;
 * - an export on an existing gateway leaves that gateway's own traffic alone (the user's public route keeps 200);
 * - the federation CA key sits in a namespace no gateway runs in, and an old layout is moved there;
 * - meshfed's Gateways bind only meshfed's VirtualServices (`./<host>`);
 * - Istio older than 1.9 is refused before anything is written.
 */
import test from 'ava';
import { bookinfoCluster2 } from '../support/emulator/seeds.js';
import type { KubeObject } from '../support/emulator/index.js';
import { startFederationWorld, type FederationWorld } from '../support/federation.js';

let fed: FederationWorld;

/** Provider clusters by Istio release; cluster1 (1.18.0) is the consumer. */
const PROVIDERS = { p190: '1.9.0', p1100: '1.10.0', cluster2: '1.18.0', p1303: '1.30.3' } as const;
type Provider = keyof typeof PROVIDERS;

test.before(async () => {
  fed = await startFederationWorld({
    seed: 'bookinfo',
    clusters: [
      { name: 'cluster1' }, { name: 'cluster2' },
      { name: 'p190', istio: '1.9.0' }, { name: 'p1100', istio: '1.10.0' }, { name: 'p1303', istio: '1.30.3' },
      { name: 'own', istio: '1.30.3' }, { name: 'old', istio: '1.7.8' },
    ],
  });
  for (const name of ['p190', 'p1100', 'p1303', 'own', 'old']) {
    const cluster = fed.world.cluster(name);
    for (const o of bookinfoCluster2()) {
      cluster.create(o.kind === 'Namespace' ? { ...o, metadata: { ...o.metadata, labels: { ...o.metadata.labels, 'istio-injection': 'enabled' } } } : o);
    }
  }
  // Each provider's own public route through its ingress gateway: port 80, every host, to myreviews.
  for (const name of Object.keys(PROVIDERS)) {
    const cluster = fed.world.cluster(name);
    cluster.create({
      apiVersion: 'networking.istio.io/v1beta1', kind: 'Gateway', metadata: { name: 'public', namespace: 'istio-system' },
      spec: { selector: { istio: 'ingressgateway' }, servers: [{ port: { number: 80, name: 'http', protocol: 'HTTP' }, hosts: ['*'] }] },
    });
    cluster.create({
      apiVersion: 'networking.istio.io/v1beta1', kind: 'VirtualService', metadata: { name: 'public', namespace: 'bookinfo' },
      spec: { hosts: ['*'], gateways: ['istio-system/public'], http: [{ route: [{ destination: { host: 'myreviews.bookinfo.svc.cluster.local', port: { number: 9080 } } }] }] },
    });
  }
});

test.after.always(async () => {
  await fed?.stop();
});

function ingressAddress(cluster: string): string {
  const svc = fed.world.cluster(cluster).get('v1', 'Service', 'istio-system', 'istio-ingressgateway')!;
  return (svc.status as { loadBalancer: { ingress: Array<{ ip: string }> } }).loadBalancer.ingress[0]!.ip;
}

/** HTTP status (last line) and body of a curl from cluster1's sleep pod. */
async function call(url: string): Promise<{ status: string; body: string; trace: string }> {
  const r = await fed.curl('cluster1', 'default', 'sleep', ['curl', '-sS', '-w', '\n%{http_code}', url]);
  const lines = r.stdout.split('\n');
  return { status: lines[lines.length - 1]!, body: lines.slice(0, -1).join('\n'), trace: `${r.stderr}\n${r.trace.join('\n')}` };
}

const publicRoute = (provider: Provider) => call(`http://${ingressAddress(provider)}/reviews/0`);

test.serial('Istio 1.30.3: the federation CA key is out of the gateway\'s namespace, and the gateway mounts no Kubernetes API token', async (t) => {
  const exported = await fed.run(['export', '--context', 'own', '-n', 'bookinfo', '--service', 'ratings', '--port', '9080', '--timeout', '0']);
  t.is(exported.code, 0, exported.stderr);
  const cluster = fed.world.cluster('own');
  const caSecrets = cluster.list('v1', 'Secret').filter((s) => s.metadata.name === 'meshfed-federation-ca').map((s) => s.metadata.namespace);
  t.deepEqual(caSecrets, ['meshfed-ca']);
  const gatewayNamespaces = new Set(cluster.list('v1', 'Pod').filter((p) => (p.spec as { containers: Array<{ image: string }> }).containers.every((c) => /proxyv2/.test(c.image))).map((p) => p.metadata.namespace));
  t.true(gatewayNamespaces.has('istio-meshfed'));
  t.false(gatewayNamespaces.has('meshfed-ca'), 'no gateway runs beside the CA');
  const keys = cluster.list('v1', 'Secret', 'istio-meshfed').filter((s) => 'ca.key' in ((s.data as Record<string, string> | undefined) ?? {}));
  t.deepEqual(keys.map((s) => s.metadata.name), [], 'no Secret a gateway can read holds the CA key');
  const deployment = cluster.get('apps/v1', 'Deployment', 'istio-meshfed', 'meshfed-ingress')!;
  t.is((deployment.spec as { template: { spec: { automountServiceAccountToken?: boolean } } }).template.spec.automountServiceAccountToken, false);
});

test.serial('a federation CA left beside the gateway by an earlier version moves to its own namespace; admitted consumers keep working', async (t) => {
  const cluster = fed.world.cluster('own');
  const exported = await fed.run(['export', '--context', 'own', '-n', 'bookinfo', '--service', 'myreviews', '--port', '9080', '--name', 'moved', '--timeout', '0']);
  t.is(exported.code, 0, exported.stderr);
  t.is((await fed.run(['import', '--context', 'cluster1', '-n', 'default', '--from', 'own', '--export', 'bookinfo/moved', '--name', 'moved'])).code, 0);
  // The layout of earlier versions: the CA Secret in the gateway's namespace only.
  const ca = cluster.get('v1', 'Secret', 'meshfed-ca', 'meshfed-federation-ca')!;
  cluster.create({ apiVersion: 'v1', kind: 'Secret', metadata: { name: ca.metadata.name, namespace: 'istio-meshfed', labels: ca.metadata.labels }, type: ca.type, data: ca.data } as KubeObject);
  cluster.delete('v1', 'Secret', 'meshfed-ca', 'meshfed-federation-ca');
  const again = await fed.run(['export', '--context', 'own', '-n', 'bookinfo', '--service', 'myreviews', '--port', '9080', '--name', 'moved', '--timeout', '0']);
  t.is(again.code, 0, again.stderr);
  t.regex(again.stderr, /federation CA moves to namespace meshfed-ca/);
  t.falsy(cluster.get('v1', 'Secret', 'istio-meshfed', 'meshfed-federation-ca'), 'the copy beside the gateway is gone');
  t.deepEqual(cluster.get('v1', 'Secret', 'meshfed-ca', 'meshfed-federation-ca')?.data, ca.data, 'the same CA: certificates it signed stay valid');
  const r = await call('http://moved.default:9080/reviews/0');
  t.is(r.status, '200', r.trace);
});

test.serial('a VirtualService of another namespace cannot bind to meshfed\'s Gateway and take its host', async (t) => {
  const cluster = fed.world.cluster('own');
  const host = 'ratings.bookinfo.own.export.meshfed.internal';
  // Prepared before the export, so it is the oldest VirtualService for the host.
  cluster.create({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'attacker' } });
  cluster.create({
    apiVersion: 'networking.istio.io/v1beta1', kind: 'VirtualService', metadata: { name: 'steal', namespace: 'attacker' },
    spec: { hosts: [host], gateways: ['istio-meshfed/mf-export-bookinfo-ratings'], http: [{ route: [{ destination: { host: 'myreviews.bookinfo.svc.cluster.local', port: { number: 9080 } } }] }] },
  });
  const exported = await fed.run(['export', '--context', 'own', '-n', 'bookinfo', '--service', 'ratings', '--port', '9080', '--timeout', '0']);
  t.is(exported.code, 0, exported.stderr);
  t.is((await fed.run(['import', '--context', 'cluster1', '-n', 'default', '--from', 'own', '--export', 'bookinfo/ratings'])).code, 0);
  const r = await call('http://ratings.default:9080/ratings/0');
  t.is(r.status, '200', r.trace);
  t.notRegex(r.body, /reviews/, 'the request reaches ratings, not the other namespace\'s destination');
  const gateway = cluster.get('networking.istio.io/v1beta1', 'Gateway', 'istio-meshfed', 'mf-export-bookinfo-ratings')!;
  t.deepEqual((gateway.spec as { servers: Array<{ hosts: string[] }> }).servers[0]!.hosts, [`./${host}`]);
  const egress = fed.world.cluster('cluster1').list('networking.istio.io/v1beta1', 'Gateway', 'istio-meshfed').filter((g) => g.metadata.name.includes('ratings'));
  t.true(egress.length > 0 && egress.every((g) => (g.spec as { servers: Array<{ hosts: string[] }> }).servers.every((s) => s.hosts.every((h) => h.startsWith('./')))));
});

test.serial('Istio older than 1.9 is refused before anything is written', async (t) => {
  const exported = await fed.runCounting(['export', '--context', 'old', '-n', 'bookinfo', '--service', 'myreviews', '--port', '9080', '--gateway-selector', 'istio=ingressgateway']);
  t.not(exported.code, 0);
  t.regex(exported.stderr, /Istio 1\.7\.8, older than 1\.9.*upgrade Istio/);
  t.deepEqual(exported.writes.old, []);
  const imported = await fed.runCounting(['import', '--context', 'old', '-n', 'bookinfo', '--from', 'own', '--export', 'bookinfo/ratings', '--name', 'old-ratings']);
  t.not(imported.code, 0);
  t.regex(imported.stderr, /Istio 1\.7\.8, older than 1\.9/);
  t.deepEqual(imported.writes.old, []);
  t.deepEqual(imported.writes.own, [], 'nor in the provider');
});

for (const [provider, version] of Object.entries(PROVIDERS) as Array<[Provider, string]>) {
  test.serial(`Istio ${version}: an HTTP export on the existing ingress gateway admits its consumer, refuses it once revoked, and leaves the gateway's public route alone`, async (t) => {
    const before = await publicRoute(provider);
    t.is(before.status, '200', before.trace);
    const local = `reviews-${provider}`;
    const exported = await fed.run(['export', '--context', provider, '-n', 'bookinfo', '--service', 'myreviews', '--port', '9080', '--gateway-selector', 'istio=ingressgateway', '--timeout', '0']);
    t.is(exported.code, 0, exported.stderr);
    const imported = await fed.run(['import', '--context', 'cluster1', '-n', 'default', '--from', provider, '--export', 'bookinfo/myreviews', '--name', local]);
    t.is(imported.code, 0, imported.stderr);
    const admitted = await call(`http://${local}.default:9080/reviews/0`);
    t.is(admitted.status, '200', admitted.trace);
    t.regex(admitted.body, /"podname": ?"reviews-v[23]-/);
    const open = await publicRoute(provider);
    t.is(open.status, '200', `the user's public route through istio-ingressgateway still answers\n${open.trace}`);
    // Only what the release can evaluate: no HTTP principal rule where the gateway cannot see the client's principal.
    const gateway = fed.world.cluster(provider).get('networking.istio.io/v1beta1', 'Gateway', 'istio-system', 'mf-export-bookinfo-myreviews')!;
    const policy = fed.world.cluster(provider).get('security.istio.io/v1beta1', 'AuthorizationPolicy', 'istio-system', 'mf-export-bookinfo-myreviews')!;
    t.is((policy.spec as { action: string }).action, 'DENY', 'never an ALLOW policy on a gateway meshfed does not own');
    const sans = (gateway.spec as { servers: Array<{ tls: { subjectAltNames?: string[] } }> }).servers[0]!.tls.subjectAltNames;
    if (version.startsWith('1.9.') || version.startsWith('1.10.')) {
      t.deepEqual(sans, ['spiffe://cluster1.meshfed.internal/ns/istio-meshfed/sa/meshfed-egress'], 'admitted in the handshake');
      t.false(JSON.stringify(policy.spec).includes('rincipals'), JSON.stringify(policy.spec));
    } else {
      t.is(sans, undefined);
    }

    const revoked = await fed.run(['revoke', '--context', provider, '-n', 'bookinfo', '--name', 'myreviews', '--consumer', 'cluster1']);
    t.is(revoked.code, 0, revoked.stderr);
    const refused = await call(`http://${local}.default:9080/reviews/0`);
    t.not(refused.status, '200', refused.trace);
    t.notRegex(refused.body, /podname/);
    const still = await publicRoute(provider);
    t.is(still.status, '200', `an export without consumers leaves the public route open\n${still.trace}`);
  });
}
