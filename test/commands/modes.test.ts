/**
 * Both trust modes, both protocols, both flows, through the built CLI on the bookinfo clusters, each proven with a
 * request through the data-path model: shared-root HTTP (direct), boundary TCP (direct), shared-root TCP (three-step
 * files). Also Istio < 1.12: no gateway deployed, an IstioOperator overlay instead, or an existing gateway chosen
 * with --gateway-selector.
 */
import test from 'ava';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import YAML from 'yaml';
import { runCli } from '../support/cli.js';
import { startFederationWorld, type FederationWorld } from '../support/federation.js';

let fed: FederationWorld;
const dir = mkdtempSync(join(tmpdir(), 'meshfed-modes-'));

test.before(async () => {
  fed = await startFederationWorld({ seed: 'bookinfo', clusters: [{ name: 'cluster1' }, { name: 'cluster2' }, { name: 'legacy', istio: '1.9.0' }] });
  const provider = fed.world.cluster('cluster2');
  // A TCP service next to bookinfo, and the mesh config shared-root needs: cluster2 accepts cluster1's identities.
  provider.create({ apiVersion: 'v1', kind: 'Service', metadata: { name: 'tcp-echo', namespace: 'bookinfo' }, spec: { selector: { app: 'tcp-echo' }, ports: [{ name: 'tcp', port: 9000 }] } });
  provider.create({
    apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'tcp-echo', namespace: 'bookinfo' },
    spec: { replicas: 1, selector: { matchLabels: { app: 'tcp-echo' } }, template: { metadata: { labels: { app: 'tcp-echo' } }, spec: { containers: [{ name: 'tcp-echo', image: 'docker.io/istio/tcp-echo-server:1.3', args: ['9000', 'echo'] }] } } },
  });
  const mesh = provider.get('v1', 'ConfigMap', 'istio-system', 'istio')!;
  const config = YAML.parse((mesh.data as Record<string, string>).mesh) as Record<string, unknown>;
  provider.apply({ ...mesh, metadata: { name: 'istio', namespace: 'istio-system' }, data: { ...(mesh.data as Record<string, string>), mesh: YAML.stringify({ ...config, trustDomainAliases: ['cluster1.local'] }) } });
});

test.after.always(async () => {
  await fed?.stop();
});

test.serial('shared-root HTTP, direct: end-to-end Istio mTLS from cluster1\'s sidecar to reviews v3 in cluster2', async (t) => {
  const exported = await fed.run(['export', '--context', 'cluster2', '-n', 'bookinfo', '--service', 'myreviews', '--port', '9080', '--subset', 'version=v3', '--name', 'reviews-v3', '--mode', 'shared-root']);
  t.is(exported.code, 0, exported.stderr);
  t.regex(exported.stderr, /subset selects where traffic goes, not who may be reached/, 'the limits of shared-root are said');
  const gateway = fed.world.cluster('cluster2').get('networking.istio.io/v1beta1', 'Gateway', 'istio-meshfed', 'meshfed-eastwest')!;
  t.deepEqual((gateway.spec as { servers: Array<{ hosts: string[]; tls: { mode: string } }> }).servers[0], {
    port: { number: 15443, name: 'tls-passthrough', protocol: 'TLS' }, hosts: ['myreviews.bookinfo.svc.cluster.local'], tls: { mode: 'AUTO_PASSTHROUGH' },
  });
  const IMPORT = ['import', '--context', 'cluster1', '-n', 'default', '--from', 'cluster2', '--export', 'bookinfo/reviews-v3', '--name', 'reviews-v3'];
  const dry = await fed.run([...IMPORT, '--dry-run']);
  t.is(dry.code, 0, dry.stderr);
  t.regex(dry.stderr, /only service account default of namespace default, but its pods run as .*sleep.*--service-account/, 'warns that the default identity admits none of the callers');
  const imported = await fed.run([...IMPORT, '--service-account', 'sleep']);
  t.is(imported.code, 0, imported.stderr);
  const principals = JSON.stringify(fed.world.cluster('cluster2').get('security.istio.io/v1beta1', 'AuthorizationPolicy', 'bookinfo', 'mf-guard-myreviews')!.spec);
  t.true(principals.includes('cluster1.local/ns/default/sa/sleep'));
  const call = await fed.curl('cluster1', 'default', 'sleep', ['curl', '-sS', 'http://reviews-v3.default:9080/reviews/0']);
  t.is(call.code, 0, call.stderr + call.trace.join('\n'));
  t.regex(call.stdout, /reviews-v3/);
  const again = await fed.runCounting([...IMPORT, '--service-account', 'sleep']);
  t.deepEqual(again.writes, { cluster1: [], cluster2: [], legacy: [] });
});

test.serial('boundary TCP, direct: bytes through both federation gateways to tcp-echo', async (t) => {
  const exported = await fed.run(['export', '--context', 'cluster2', '-n', 'bookinfo', '--service', 'tcp-echo', '--port', 'tcp']);
  t.is(exported.code, 0, exported.stderr);
  t.regex(exported.stderr, /TCP, boundary/);
  const imported = await fed.run(['import', '--context', 'cluster1', '-n', 'default', '--from', 'cluster2', '--export', 'bookinfo/tcp-echo']);
  t.is(imported.code, 0, imported.stderr);
  const call = await fed.curl('cluster1', 'default', 'sleep', ['sh', '-c', 'echo hello | nc -w 3 tcp-echo.default 9000']);
  t.is(call.code, 0, call.stderr + call.trace.join('\n'));
  t.regex(call.stdout, /echo hello/);
});

test.serial('shared-root TCP, three-step: request and bundle files, then bytes reach tcp-echo end to end', async (t) => {
  t.is((await fed.run(['export', '--context', 'cluster2', '-n', 'bookinfo', '--service', 'tcp-echo', '--port', '9000', '--name', 'echo-sr', '--mode', 'shared-root'])).code, 0);
  const request = await fed.run(['import', '--context', 'cluster1', '-n', 'default', '--export', 'cluster2/bookinfo/echo-sr', '--service-account', 'sleep', '--request-out', join(dir, 'request.yaml')]);
  t.is(request.code, 0, request.stderr);
  const admit = await fed.run(['admit', '--context', 'cluster2', '--request', join(dir, 'request.yaml'), '--bundle-out', join(dir, 'bundle.yaml')]);
  t.is(admit.code, 0, admit.stderr);
  t.regex(readFileSync(join(dir, 'bundle.yaml'), 'utf8'), /mode: shared-root/);
  const fingerprint = await fed.caFingerprint('cluster2');
  const complete = await fed.run(['import', '--context', 'cluster1', '-n', 'default', '--bundle', join(dir, 'bundle.yaml'), '--name', 'echo-sr', '--ca-fingerprint', fingerprint]);
  t.is(complete.code, 0, complete.stderr);
  t.false(complete.stderr.includes('root CA'), 'one root: nothing to warn about');
  // The bundle carries the provider's root fingerprint: a consumer mesh on another root hears about it at once.
  const c1 = fed.world.cluster('cluster1');
  const rootConfig = c1.get('v1', 'ConfigMap', 'istio-system', 'istio-ca-root-cert')!;
  const otherRoot = Buffer.from((c1.get('v1', 'Secret', 'istio-system', 'cacerts')!.data as Record<string, string>)['ca-cert.pem']!, 'base64').toString('utf8');
  c1.apply({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'istio-ca-root-cert', namespace: 'istio-system' }, data: { 'root-cert.pem': otherRoot } }, 'test');
  const otherMesh = await fed.run(['import', '--context', 'cluster1', '-n', 'default', '--bundle', join(dir, 'bundle.yaml'), '--name', 'echo-sr', '--dry-run', '--ca-fingerprint', fingerprint]);
  c1.apply({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'istio-ca-root-cert', namespace: 'istio-system' }, data: rootConfig.data as Record<string, string> }, 'test');
  t.is(otherMesh.code, 0, otherMesh.stderr);
  t.regex(otherMesh.stderr, /shared-root needs one root CA, but this mesh's root .* is not that of cluster cluster2/);
  t.falsy(fed.world.cluster('cluster1').get('v1', 'Secret', 'istio-meshfed', 'mf-bind-cluster2-bookinfo-echo-sr'), 'shared-root keeps no key');
  const call = await fed.curl('cluster1', 'default', 'sleep', ['sh', '-c', 'echo hi | nc -w 3 echo-sr.default 9000']);
  t.is(call.code, 0, call.stderr + call.trace.join('\n'));
  t.regex(call.stdout, /echo hi/);
  const guard = fed.world.cluster('cluster2').get('security.istio.io/v1beta1', 'AuthorizationPolicy', 'bookinfo', 'mf-guard-tcp-echo');
  t.truthy(guard, 'authorization sits on the destination workload');
});

test.serial('re-exporting in another mode prunes what the old mode needed, and only that', async (t) => {
  const EXPORT = ['export', '--context', 'cluster2', '-n', 'bookinfo', '--service', 'ratings', '--port', '9080'];
  t.is((await fed.run(EXPORT)).code, 0);
  const boundaryOnly = ['Gateway', 'VirtualService', 'AuthorizationPolicy'].map((kind) => `${kind} istio-meshfed/mf-export-bookinfo-ratings`);
  for (const name of boundaryOnly) t.true(fed.managedObjects('cluster2').includes(name), name);
  const others = fed.managedObjects('cluster2').filter((name) => !name.includes('ratings'));
  const switched = await fed.runCounting([...EXPORT, '--mode', 'shared-root']);
  t.is(switched.code, 0, switched.stderr);
  t.regex(switched.stderr, /- Gateway istio-meshfed\/mf-export-bookinfo-ratings \(delete\)/);
  for (const name of boundaryOnly) t.false(fed.managedObjects('cluster2').includes(name), `${name} pruned`);
  t.true(fed.managedObjects('cluster2').includes('AuthorizationPolicy bookinfo/mf-guard-ratings'));
  for (const name of others) t.true(fed.managedObjects('cluster2').includes(name), `${name} kept`);
  t.is((await fed.run(['unexport', '--context', 'cluster2', '-n', 'bookinfo', '--name', 'ratings'])).code, 0);
  t.false(fed.managedObjects('cluster2').some((name) => name.includes('ratings')));
});

test.serial('export --dry-run -o yaml --show-secrets piped into kubectl apply -f - is exactly what export applies: the run after it writes nothing', async (t) => {
  const EXPORT = ['export', '--context', 'cluster1', '-n', 'default', '--service', 'details', '--port', '9080'];
  const dry = await fed.run([...EXPORT, '--dry-run', '-o', 'yaml', '--show-secrets']);
  t.is(dry.code, 0, dry.stderr);
  t.regex(dry.stderr, /contains private keys/);
  const applied = await new Promise<{ code: number | null; stderr: string }>((resolve) => {
    const child = spawn('kubectl', ['--kubeconfig', fed.kubeconfig, '--context', 'cluster1', 'apply', '-f', '-'], { stdio: ['pipe', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    child.on('close', (code) => resolve({ code, stderr }));
    child.stdin.end(dry.stdout);
  });
  t.is(applied.code, 0, applied.stderr);
  const after = await fed.runCounting(EXPORT);
  t.is(after.code, 0, after.stderr);
  t.deepEqual(after.writes.cluster1, [], 'meshfed finds everything as it would have applied it');
  t.is((await fed.run(['unexport', '--context', 'cluster1', '-n', 'default', '--name', 'details'])).code, 0);
});

test.serial('Istio 1.9: no gateway deployed; the IstioOperator overlay is printed, or an existing gateway is used', async (t) => {
  fed.world.cluster('legacy').create({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'shop' } });
  fed.world.cluster('legacy').create({ apiVersion: 'v1', kind: 'Service', metadata: { name: 'cart', namespace: 'shop' }, spec: { selector: { app: 'cart' }, ports: [{ name: 'http', port: 8080 }] } });
  const overlay = await fed.runCounting(['export', '--context', 'legacy', '-n', 'shop', '--service', 'cart', '--port', '8080', '--timeout', '0', '--cluster-id', 'legacy-eu']);
  t.is(overlay.code, 0, overlay.stderr);
  t.regex(overlay.stderr, /cannot deploy gateways by injection/);
  const printed = YAML.parse(overlay.stdout);
  t.is(printed.kind, 'IstioOperator');
  t.is(printed.spec.components.ingressGateways[0].name, 'meshfed-ingress');
  t.false(overlay.writes.legacy!.some((r) => /deployments/.test(r.path)), 'no Deployment is created');

  const selected = await fed.run(['unexport', '--context', 'legacy', '-n', 'shop', '--name', 'cart']);
  t.is(selected.code, 0, selected.stderr);
  const existing = await fed.run(['export', '--context', 'legacy', '-n', 'shop', '--service', 'cart', '--port', '8080', '--gateway-selector', 'istio=ingressgateway']);
  t.is(existing.code, 0, existing.stderr);
  const gateway = fed.world.cluster('legacy').get('networking.istio.io/v1beta1', 'Gateway', 'istio-system', 'mf-export-shop-cart')!;
  t.deepEqual((gateway.spec as { selector: Record<string, string> }).selector, { istio: 'ingressgateway' });
  t.regex(existing.stderr, /Exported shop\/cart: gateway \d+\.\d+\.\d+\.\d+:15443, host cart\.shop\.legacy-eu\.export\.meshfed\.internal/, 'the cluster id chosen the first time is kept');
});

test.serial('an export on an existing gateway is found by later commands without --gateway-selector: import, status, revoke, unexport', async (t) => {
  const imported = await fed.run(['import', '--context', 'cluster1', '-n', 'default', '--from', 'legacy', '--export', 'shop/cart']);
  t.is(imported.code, 0, imported.stderr);
  t.regex(imported.stderr, /AuthorizationPolicy istio-system\/mf-export-shop-cart \(change\)/, 'the admission changes the objects where the export lives');
  const se = fed.world.cluster('cluster1').list('networking.istio.io/v1beta1', 'ServiceEntry', 'istio-meshfed').find((o) => o.metadata.name.startsWith('mf-bind-legacy-eu-shop-cart'));
  t.truthy(se, fed.managedObjects('cluster1').join('\n'));
  const address = (fed.world.cluster('legacy').get('v1', 'Service', 'istio-system', 'istio-ingressgateway')!.status as { loadBalancer: { ingress: Array<{ ip: string }> } }).loadBalancer.ingress[0]!.ip;
  t.is((se!.spec as { endpoints: Array<{ address: string }> }).endpoints[0]!.address, address, 'the consumer calls the existing gateway');
  const status = JSON.parse((await fed.run(['status', '--context', 'legacy', '-o', 'json'])).stdout);
  t.like(status.exports[0], { name: 'cart', gateway: `${address}:15443`, consumers: ['cluster1'] });
  t.truthy(status.exports[0].certificateExpires);
  t.is((await fed.run(['unimport', '--context', 'cluster1', '-n', 'default', '--name', 'cart'])).code, 0);
  const revoked = await fed.run(['revoke', '--context', 'legacy', '-n', 'shop', '--name', 'cart', '--consumer', 'cluster1']);
  t.is(revoked.code, 0, revoked.stderr);
  const removed = await fed.run(['unexport', '--context', 'legacy', '-n', 'shop', '--name', 'cart']);
  t.is(removed.code, 0, removed.stderr);
  t.falsy(fed.world.cluster('legacy').get('networking.istio.io/v1beta1', 'Gateway', 'istio-system', 'mf-export-shop-cart'));
  const again = await fed.run(['export', '--context', 'legacy', '-n', 'shop', '--service', 'cart', '--port', '8080', '--gateway-selector', 'istio=ingressgateway']);
  t.is(again.code, 0, again.stderr);
});

test.serial('a cluster id is stored in the cluster the first time, never renamed, and never taken from a later context name', async (t) => {
  const rename = await fed.runCounting(['export', '--context', 'legacy', '-n', 'shop', '--service', 'cart', '--port', '8080', '--gateway-selector', 'istio=ingressgateway', '--cluster-id', 'other']);
  t.is(rename.code, 2);
  t.regex(rename.stderr, /is federation cluster "legacy-eu".*--cluster-id "other" cannot rename it/);
  t.deepEqual(rename.writes.legacy, []);
  // Another user's kubeconfig names the same cluster differently: the id stays the stored one.
  const config = YAML.parse(readFileSync(fed.kubeconfig, 'utf8')) as { contexts: Array<{ name: string; context: { cluster: string } }>; 'current-context': string };
  config.contexts = config.contexts.map((c) => (c.name === 'cluster2' ? { ...c, name: 'prod-eu-west' } : c));
  const renamed = join(dir, 'kubeconfig-renamed.yaml');
  writeFileSync(renamed, YAML.stringify(config));
  const status = await runCli(['status', '--context', 'prod-eu-west', '-o', 'json', '--kubeconfig', renamed]);
  t.is(status.code, 0, status.stderr);
  t.is(JSON.parse(status.stdout).clusterId, 'cluster2');
});
