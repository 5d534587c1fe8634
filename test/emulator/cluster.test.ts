import test from 'ava';
import { randomUUID, X509Certificate } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import YAML from 'yaml';
import { crdFileWorkSoFar, istioCrdSource, keptCrdParsePath, parseCrdFile } from '../support/crd-schema.js';
import { emulatorWork, startWorld } from '../support/emulator/index.js';
import { apiRequest } from '../support/emulator/request.js';
import type { ContainerRuntime, EmulatorWork, KubeObject, World } from '../support/emulator/index.js';

function decodeSecret(secret: KubeObject | undefined): Record<string, string> {
  return Object.fromEntries(Object.entries((secret?.data as Record<string, string> | undefined) ?? {}).map(([k, v]) => [k, Buffer.from(v, 'base64').toString()]));
}

function verifies(childPem: string, issuerPem: string): boolean {
  try {
    return new X509Certificate(childPem).verify(new X509Certificate(issuerPem).publicKey);
  } catch {
    return false;
  }
}

async function withWorld(options: Parameters<typeof startWorld>[0], body: (world: World) => Promise<void>): Promise<void> {
  const world = await startWorld(options);
  try {
    await body(world);
  } finally {
    await world.stop();
  }
}

function pod(ns: string, name: string, containers: Array<Record<string, unknown>>, extra: { labels?: Record<string, string>; annotations?: Record<string, string>; restartPolicy?: string } = {}): KubeObject {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: ns, ...(extra.labels ? { labels: extra.labels } : {}), ...(extra.annotations ? { annotations: extra.annotations } : {}) },
    spec: { containers, ...(extra.restartPolicy ? { restartPolicy: extra.restartPolicy } : {}) },
  };
}

/** What starting a world with `options` costs (see {@link emulatorWork}), once it has stopped. */
async function startCost(options: Parameters<typeof startWorld>[0]): Promise<EmulatorWork> {
  const before = emulatorWork();
  await withWorld(options, async () => undefined);
  const after = emulatorWork();
  return {
    keysGenerated: after.keysGenerated - before.keysGenerated,
    crdFilesParsed: after.crdFilesParsed - before.crdFilesParsed,
    crdParsesReadBack: after.crdParsesReadBack - before.crdParsesReadBack,
  };
}

// Serial, as the next one: the counts are the process's, and no other test of this file starts a world meanwhile. The
// work a start costs is counted rather than timed: what a cache spares does not depend on the machine's speed.
test.serial('a world start makes keys for its Istio CAs only and reads no CRD file this process has read', async (t) => {
  await withWorld({ clusters: [{ name: 'first1' }, { name: 'first2' }], istio: '1.18.0' }, async () => undefined);
  // A shared root and an intermediate per cluster; the API servers' CA and serving certificate are the process's.
  t.deepEqual(await startCost({ clusters: [{ name: 'a' }, { name: 'b' }], istio: '1.18.0', seed: 'bookinfo' }), { keysGenerated: 3, crdFilesParsed: 0, crdParsesReadBack: 0 });
  t.deepEqual(await startCost({ clusters: [{ name: 'east' }, { name: 'west' }], istio: '1.18.0', root: 'distinct' }), { keysGenerated: 2, crdFilesParsed: 0, crdParsesReadBack: 0 });
  t.deepEqual(await startCost({ clusters: [{ name: 'plain' }] }), { keysGenerated: 0, crdFilesParsed: 0, crdParsesReadBack: 0 });
});

test.serial('a CRD file is parsed once per machine: the same bytes parsed again are read back from the kept parse', (t) => {
  // The 1.9.0 CRDs with a line of their own, so that no other process has kept this file's parse.
  const text = `# ${randomUUID()}\n${readFileSync(istioCrdSource('1.9.0').file, 'utf8')}`;
  const dir = mkdtempSync(join(tmpdir(), 'meshfed-crds-'));
  const file = join(dir, 'istio-crds.yaml');
  writeFileSync(file, text);
  try {
    const before = crdFileWorkSoFar();
    const parsed = parseCrdFile(file);
    const between = crdFileWorkSoFar();
    t.deepEqual(between, { parsed: before.parsed + 1, readBack: before.readBack });
    t.true(existsSync(keptCrdParsePath(text)));
    const readBack = parseCrdFile(file);
    t.deepEqual(crdFileWorkSoFar(), { parsed: between.parsed, readBack: between.readBack + 1 });
    t.deepEqual(readBack, parsed);
    t.true(parsed.some((crd) => crd.metadata.name === 'gateways.networking.istio.io'));
  } finally {
    rmSync(dir, { recursive: true, force: true });
    rmSync(keptCrdParsePath(text), { force: true });
  }
});

test('Istio setup: istiod, mesh config trust domains, shared root with per-cluster intermediates, gateway and CRDs', async (t) => {
  await withWorld({ clusters: [{ name: 'cluster1' }, { name: 'cluster2' }], istio: '1.18.0', root: 'shared' }, async (world) => {
    await world.waitIdle();
    const roots = new Set<string>();
    for (const c of world.clusters) {
      const istiod = c.get('apps/v1', 'Deployment', 'istio-system', 'istiod');
      t.is(istiod?.metadata.labels?.app, 'istiod');
      t.is((istiod?.spec as { template: { spec: { containers: Array<{ image: string }> } } }).template.spec.containers[0]?.image, 'docker.io/istio/pilot:1.18.0');
      const mesh = YAML.parse((c.get('v1', 'ConfigMap', 'istio-system', 'istio')?.data as { mesh: string }).mesh) as { trustDomain: string };
      t.is(mesh.trustDomain, `${c.name}.local`);
      const cacerts = decodeSecret(c.get('v1', 'Secret', 'istio-system', 'cacerts'));
      t.deepEqual(Object.keys(cacerts).sort(), ['ca-cert.pem', 'ca-key.pem', 'cert-chain.pem', 'root-cert.pem']);
      t.true(verifies(cacerts['ca-cert.pem']!, cacerts['root-cert.pem']!));
      t.not(cacerts['ca-cert.pem'], cacerts['root-cert.pem']);
      t.is(cacerts['cert-chain.pem'], cacerts['ca-cert.pem']! + cacerts['root-cert.pem']!);
      roots.add(cacerts['root-cert.pem']!);
      for (const ns of c.list('v1', 'Namespace')) {
        t.is((c.get('v1', 'ConfigMap', ns.metadata.name, 'istio-ca-root-cert')?.data as Record<string, string> | undefined)?.['root-cert.pem'], cacerts['root-cert.pem'], ns.metadata.name);
      }
      const gw = c.get('v1', 'Service', 'istio-system', 'istio-ingressgateway');
      t.deepEqual((gw?.spec as { ports: Array<{ name: string; port: number }> }).ports.map((p) => `${p.name}:${p.port}`), ['status-port:15021', 'http2:80', 'https:443', 'tls:15443']);
      t.is((gw?.spec as { type: string }).type, 'LoadBalancer');
      const gwDeploy = c.get('apps', 'Deployment', 'istio-system', 'istio-ingressgateway');
      t.deepEqual(gwDeploy?.metadata.labels, { app: 'istio-ingressgateway', istio: 'ingressgateway', release: 'istio' });
      t.truthy(c.get('apiextensions.k8s.io', 'CustomResourceDefinition', undefined, 'gateways.networking.istio.io'));
      t.truthy(c.get('apiextensions.k8s.io', 'CustomResourceDefinition', undefined, 'authorizationpolicies.security.istio.io'));
    }
    t.is(roots.size, 1);
    t.is(world.rootCa?.certPem, [...roots][0]);
    const lb = world.clusters.map((c) => ((c.get('v1', 'Service', 'istio-system', 'istio-ingressgateway')?.status as { loadBalancer: { ingress: Array<{ ip: string }> } }).loadBalancer.ingress[0]?.ip));
    t.regex(lb[0] ?? '', /^198\.51\.100\.\d+$/);
    t.regex(lb[1] ?? '', /^203\.0\.113\.\d+$/);

    // Namespaces created later get the root certificate too, as istiod publishes it.
    const c1 = world.clusters[0]!;
    c1.create({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'later' } });
    await world.waitIdle();
    t.truthy(c1.get('v1', 'ConfigMap', 'later', 'istio-ca-root-cert'));

    // A cloud load balancer that changed its address.
    c1.setLoadBalancerAddress('istio-system', 'istio-ingressgateway', 'gw.example.com');
    await world.waitIdle();
    t.deepEqual((c1.get('v1', 'Service', 'istio-system', 'istio-ingressgateway')?.status as { loadBalancer: unknown }).loadBalancer, { ingress: [{ hostname: 'gw.example.com' }] });
  });
});

test('distinct roots: a self-signed root per cluster; trustDomain cluster.local everywhere when asked', async (t) => {
  await withWorld({ clusters: [{ name: 'east' }, { name: 'west' }], istio: '1.9.0', root: 'distinct', trustDomain: 'cluster.local' }, async (world) => {
    const [east, west] = world.clusters.map((c) => decodeSecret(c.get('v1', 'Secret', 'istio-system', 'cacerts')));
    t.not(east!['root-cert.pem'], west!['root-cert.pem']);
    t.is(east!['ca-cert.pem'], east!['root-cert.pem']);
    t.false(verifies(east!['ca-cert.pem']!, west!['root-cert.pem']!));
    t.is(world.rootCa, undefined);
    for (const c of world.clusters) {
      t.is(c.trustDomain, 'cluster.local');
      t.regex((c.get('v1', 'ConfigMap', 'istio-system', 'istio')?.data as { mesh: string }).mesh, /trustDomain: cluster\.local/);
    }
    // Istio 1.9 serves v1alpha3 and v1beta1, not v1.
    const gwCrd = world.clusters[0]!.get('apiextensions.k8s.io', 'CustomResourceDefinition', undefined, 'gateways.networking.istio.io');
    t.deepEqual((gwCrd?.spec as { versions: Array<{ name: string }> }).versions.map((v) => v.name), ['v1alpha3', 'v1beta1']);
  });
});

test('sidecar injection: labelled namespaces, opt-out, istio.io/rev, and holdApplicationUntilProxyStarts ordering', async (t) => {
  const starts: string[] = [];
  const recorder: ContainerRuntime = (run) => {
    starts.push(`${run.pod.metadata.name}/${run.container.name}`);
    return undefined;
  };
  await withWorld({ clusters: [{ name: 'c1' }], istio: '1.18.0', runtimes: [recorder] }, async (world) => {
    const c = world.clusters[0]!;
    c.create({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'mesh', labels: { 'istio-injection': 'enabled' } } });
    c.create({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'rev', labels: { 'istio.io/rev': 'default' } } });
    c.create({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'plain' } });
    const app = [{ name: 'app', image: 'nginx:1.25' }];
    c.create(pod('mesh', 'injected', app));
    c.create(pod('mesh', 'optout', app, { annotations: { 'sidecar.istio.io/inject': 'false' } }));
    c.create(pod('rev', 'revision', app));
    c.create(pod('plain', 'plain', app));
    c.create(pod('mesh', 'held', app, { annotations: { 'proxy.istio.io/config': '{ "holdApplicationUntilProxyStarts": true }' } }));
    await world.waitIdle();
    const containers = (ns: string, name: string): string[] => ((c.get('v1', 'Pod', ns, name)?.spec as { containers: Array<{ name: string }> }).containers.map((x) => x.name));
    t.deepEqual(containers('mesh', 'injected'), ['app', 'istio-proxy']);
    t.deepEqual(containers('rev', 'revision'), ['app', 'istio-proxy']);
    t.deepEqual(containers('mesh', 'optout'), ['app']);
    t.deepEqual(containers('plain', 'plain'), ['app']);
    t.deepEqual(containers('mesh', 'held'), ['istio-proxy', 'app']);
    const injected = c.get('v1', 'Pod', 'mesh', 'injected')!;
    const spec = injected.spec as { containers: Array<{ image: string }>; initContainers: Array<{ name: string; image: string }> };
    t.is(spec.containers[1]?.image, 'docker.io/istio/proxyv2:1.18.0');
    t.deepEqual(spec.initContainers.map((x) => `${x.name} ${x.image}`), ['istio-init docker.io/istio/proxyv2:1.18.0']);
    t.is(injected.metadata.labels?.['security.istio.io/tlsMode'], 'istio');
    t.is((injected.status as { phase: string }).phase, 'Running');
    t.is((injected.status as { containerStatuses: Array<{ ready: boolean }> }).containerStatuses.filter((s) => s.ready).length, 2);
    const held = starts.filter((s) => s.startsWith('held/'));
    t.deepEqual(held, ['held/istio-init', 'held/istio-proxy', 'held/app']);
  });
});

test('gateway injection replaces image "auto" on Istio 1.12+; on 1.9 the pod stays in ErrImagePull', async (t) => {
  const gateway = (ns: string): KubeObject => ({
    apiVersion: 'v1', kind: 'Pod',
    metadata: { name: 'gw', namespace: ns, labels: { 'sidecar.istio.io/inject': 'true', istio: 'eastwestgateway' }, annotations: { 'inject.istio.io/templates': 'gateway' } },
    spec: { containers: [{ name: 'istio-proxy', image: 'auto' }] },
  });
  await withWorld({ clusters: [{ name: 'new', istio: '1.18.0' }, { name: 'old', istio: '1.9.0' }] }, async (world) => {
    for (const c of world.clusters) c.create(gateway('default'));
    await world.waitIdle();
    await new Promise((r) => setTimeout(r, 80));
    const [fresh, old] = world.clusters.map((c) => c.get('v1', 'Pod', 'default', 'gw')!);
    t.is((fresh!.spec as { containers: Array<{ image: string }> }).containers[0]?.image, 'docker.io/istio/proxyv2:1.18.0');
    t.is((fresh!.status as { phase: string }).phase, 'Running');
    t.is((old!.spec as { containers: Array<{ image: string }> }).containers[0]?.image, 'auto');
    t.is((old!.status as { phase: string }).phase, 'Pending');
    t.is((old!.status as { containerStatuses: Array<{ state: { waiting: { reason: string } } }> }).containerStatuses[0]?.state.waiting.reason, 'ImagePullBackOff');
  });
});

test('kubelet: runtimes decide exits and logs; Succeeded, Failed, restarts with previous logs, stopContainer, image allow-list', async (t) => {
  const runtime: ContainerRuntime = (run) => {
    const cmd = [...(run.container.command ?? []), ...(run.container.args ?? [])].join(' ');
    const m = /^exit (\d+) (.*)$/.exec(cmd);
    if (m) {
      run.log(`${m[2]}\n`);
      return Promise.resolve(Number(m[1]));
    }
    if (cmd === 'quit-proxy') {
      run.log('stopping proxy\n');
      run.stopContainer('istio-proxy', 0);
      return Promise.resolve(0);
    }
    return undefined;
  };
  await withWorld({ clusters: [{ name: 'c1' }], istio: '1.18.0', runtimes: [runtime] }, async (world) => {
    const c = world.clusters[0]!;
    c.create({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'mesh', labels: { 'istio-injection': 'enabled' } } });
    c.create(pod('default', 'ok', [{ name: 'main', image: 'busybox', command: ['exit', '0', 'all good'] }], { restartPolicy: 'Never' }));
    c.create(pod('default', 'bad', [{ name: 'main', image: 'busybox', command: ['exit', '3', 'boom'] }], { restartPolicy: 'Never' }));
    c.create(pod('default', 'loop', [{ name: 'main', image: 'busybox', command: ['exit', '1', 'crash'] }]));
    c.create(pod('default', 'private', [{ name: 'main', image: 'registry.example.com/private:1' }]));
    c.create(pod('mesh', 'probe', [{ name: 'curl', image: 'curlimages/curl:8.5.0', command: ['quit-proxy'] }], { restartPolicy: 'Never' }));
    await world.waitIdle();
    await new Promise((r) => setTimeout(r, 200));
    const phase = (ns: string, name: string): string => (c.get('v1', 'Pod', ns, name)?.status as { phase: string }).phase;
    t.is(phase('default', 'ok'), 'Succeeded');
    t.is(phase('default', 'bad'), 'Failed');
    t.is(phase('mesh', 'probe'), 'Succeeded');
    const probe = (c.get('v1', 'Pod', 'mesh', 'probe')?.status as { containerStatuses: Array<{ name: string; state: { terminated: { exitCode: number; reason: string } } }> }).containerStatuses;
    t.deepEqual(probe.map((s) => [s.name, s.state.terminated.exitCode, s.state.terminated.reason]), [['curl', 0, 'Completed'], ['istio-proxy', 0, 'Completed']]);
    const loop = (c.get('v1', 'Pod', 'default', 'loop')?.status as { containerStatuses: Array<{ restartCount: number; lastState: { terminated?: { exitCode: number } } }> }).containerStatuses[0]!;
    t.true(loop.restartCount >= 1);
    t.is(loop.lastState.terminated?.exitCode, 1);
    const log = async (name: string, query = ''): Promise<unknown> => (await apiRequest(c, { path: `/api/v1/namespaces/default/pods/${name}/log${query}` })).body;
    t.is(await log('ok'), 'all good\n');
    t.is(await log('loop', '?previous=true'), 'crash\n');
    t.like(await log('private') as object, { code: 400, message: 'container "main" in pod "private" is waiting to start: trying and failing to pull image' });
    t.is(await apiRequest(c, { path: '/api/v1/namespaces/mesh/pods/probe/log?container=curl' }).then((r) => r.body), 'stopping proxy\n');
    t.like((await apiRequest(c, { path: '/api/v1/namespaces/mesh/pods/probe/log' })).body as object, { code: 400, message: 'a container name must be specified for pod probe, choose one of: [curl istio-proxy] or one of the init containers: [istio-init]' });
    const priv = (c.get('v1', 'Pod', 'default', 'private')?.status as { phase: string; containerStatuses: Array<{ state: { waiting: { reason: string } } }> });
    t.is(priv.phase, 'Pending');
    t.is(priv.containerStatuses[0]?.state.waiting.reason, 'ImagePullBackOff');
  });
});

test('controllers: deployments scale and roll out, endpoints and endpoint slices follow ready pods, deletes cascade', async (t) => {
  await withWorld({ clusters: [{ name: 'c1' }] }, async (world) => {
    const c = world.clusters[0]!;
    const deployment = (replicas: number, image: string): KubeObject => ({
      apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'web', namespace: 'default' },
      spec: { replicas, selector: { matchLabels: { app: 'web' } }, template: { metadata: { labels: { app: 'web' } }, spec: { containers: [{ name: 'web', image, ports: [{ name: 'http', containerPort: 8080 }] }] } } },
    });
    c.apply(deployment(2, 'nginx:1.25'));
    c.apply({ apiVersion: 'v1', kind: 'Service', metadata: { name: 'web', namespace: 'default' }, spec: { selector: { app: 'web' }, ports: [{ name: 'http', port: 80, targetPort: 'http' }] } });
    await world.waitIdle();
    const pods = (): KubeObject[] => c.list('v1', 'Pod', 'default').filter((p) => p.metadata.labels?.app === 'web');
    t.is(pods().length, 2);
    const status = c.get('apps', 'Deployment', 'default', 'web')?.status as { readyReplicas: number; availableReplicas: number; observedGeneration: number };
    t.like(status, { readyReplicas: 2, availableReplicas: 2, observedGeneration: 1 });
    const ep = c.get('v1', 'Endpoints', 'default', 'web') as { subsets: Array<{ addresses: Array<{ ip: string }>; ports: Array<{ port: number; name: string }> }> } & KubeObject;
    t.deepEqual(ep.subsets[0]?.ports, [{ name: 'http', port: 8080, protocol: 'TCP' }]);
    t.deepEqual(ep.subsets[0]?.addresses.map((a) => a.ip).sort(), pods().map((p) => (p.status as { podIP: string }).podIP).sort());
    const slices = c.list('discovery.k8s.io', 'EndpointSlice', 'default').filter((s) => s.metadata.labels?.['kubernetes.io/service-name'] === 'web');
    t.is(slices.length, 1);
    t.is((slices[0]!.endpoints as unknown[]).length, 2);

    c.apply(deployment(1, 'nginx:1.26'));
    await world.waitIdle();
    t.deepEqual(pods().map((p) => (p.spec as { containers: Array<{ image: string }> }).containers[0]?.image), ['nginx:1.26']);
    t.is((c.get('v1', 'Endpoints', 'default', 'web') as { subsets: Array<{ addresses: unknown[] }> } & KubeObject).subsets[0]?.addresses.length, 1);

    // A pod whose image cannot be pulled is not ready: it shows up as notReadyAddresses.
    c.apply(deployment(1, 'example.invalid/web:1'));
    await world.waitIdle();
    const notReady = c.get('v1', 'Endpoints', 'default', 'web') as { subsets: Array<{ addresses?: unknown[]; notReadyAddresses?: unknown[] }> } & KubeObject;
    t.is(notReady.subsets[0]?.addresses, undefined);
    t.is(notReady.subsets[0]?.notReadyAddresses?.length, 1);

    t.true(c.delete('apps', 'Deployment', 'default', 'web'));
    await world.waitIdle();
    t.is(pods().length, 0);
    c.delete('v1', 'Service', 'default', 'web');
    await world.waitIdle();
    t.is(c.get('v1', 'Endpoints', 'default', 'web'), undefined);
    t.is(c.list('discovery.k8s.io', 'EndpointSlice', 'default').filter((s) => s.metadata.labels?.['kubernetes.io/service-name'] === 'web').length, 0);
  });
});

test('bookinfo seed: the blog post starting point, with bookinfo labels, service accounts, images and ports', async (t) => {
  await withWorld({ clusters: [{ name: 'cluster1' }, { name: 'cluster2' }], istio: '1.18.0', seed: 'bookinfo' }, async (world) => {
    const [c1, c2] = world.clusters;
    t.is(c1!.get('v1', 'Namespace', undefined, 'default')?.metadata.labels?.['istio-injection'], 'enabled');
    t.deepEqual(c1!.list('apps', 'Deployment', 'default').map((d) => d.metadata.name), ['details-v1', 'productpage-v1', 'reviews-v1', 'sleep']);
    t.deepEqual(c2!.list('apps', 'Deployment', 'bookinfo').map((d) => d.metadata.name), ['ratings-v1', 'reviews-v2', 'reviews-v3']);
    const reviews = c2!.get('apps', 'Deployment', 'bookinfo', 'reviews-v2')!.spec as { template: { metadata: { labels: Record<string, string> }; spec: { serviceAccountName: string; containers: Array<{ image: string; ports: Array<{ containerPort: number }> }> } } };
    t.deepEqual(reviews.template.metadata.labels, { app: 'reviews', version: 'v2' });
    t.is(reviews.template.spec.serviceAccountName, 'bookinfo-reviews');
    t.is(reviews.template.spec.containers[0]?.image, 'docker.io/istio/examples-bookinfo-reviews-v2:1.20.1');
    t.is(reviews.template.spec.containers[0]?.ports[0]?.containerPort, 9080);
    const myreviews = c2!.get('v1', 'Service', 'bookinfo', 'myreviews')!.spec as { selector: Record<string, string>; ports: Array<{ name: string; port: number }> };
    t.deepEqual(myreviews.selector, { app: 'reviews' });
    t.deepEqual(myreviews.ports.map((p) => [p.name, p.port]), [['http', 9080]]);
    t.truthy(c2!.get('v1', 'Service', 'bookinfo', 'ratings'));
    const sleep = c1!.get('apps', 'Deployment', 'default', 'sleep')!.spec as { template: { spec: { containers: Array<{ image: string; command: string[] }> } } };
    t.is(sleep.template.spec.containers[0]?.image, 'curlimages/curl');
    t.deepEqual(sleep.template.spec.containers[0]?.command, ['/bin/sleep', 'infinity']);
    for (const p of c1!.list('v1', 'Pod', 'default')) {
      t.is((p.status as { phase: string }).phase, 'Running', p.metadata.name);
      t.deepEqual((p.spec as { containers: Array<{ name: string }> }).containers.map((x) => x.name).slice(-1), ['istio-proxy']);
    }
  });
});

test('federation seed: postgres in production/db, vault in operations/vault', async (t) => {
  await withWorld({ clusters: [{ name: 'operations' }, { name: 'staging' }, { name: 'production' }], istio: '1.30.3', seed: 'federation' }, async (world) => {
    const production = world.cluster('production');
    const pg = production.get('v1', 'Service', 'db', 'postgres')!.spec as { ports: Array<{ name: string; port: number; protocol: string }> };
    t.deepEqual(pg.ports.map((p) => [p.name, p.port, p.protocol]), [['tcp-postgres', 5432, 'TCP']]);
    t.truthy(production.get('apps', 'Deployment', 'db', 'postgres'));
    const operations = world.cluster('operations');
    t.truthy(operations.get('v1', 'ServiceAccount', 'vault', 'vault'));
    t.is((operations.get('apps', 'Deployment', 'vault', 'vault')!.spec as { template: { spec: { serviceAccountName: string } } }).template.spec.serviceAccountName, 'vault');
    t.is(world.cluster('staging').trustDomain, 'staging.local');
    for (const p of [...production.list('v1', 'Pod', 'db'), ...operations.list('v1', 'Pod', 'vault')]) t.is((p.status as { phase: string }).phase, 'Running', p.metadata.name);
  });
});
