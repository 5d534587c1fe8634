/**
 * The model inside the Kubernetes API emulator: pods created through the API (and with the real kubectl) run
 * under the mesh runtimes, with injected sidecars, kubelet pod IPs, controller Endpoints and LoadBalancer
 * addresses, and `kubectl logs` shows what curl really got.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import test from 'ava';
import YAML from 'yaml';
import { startWorld } from '../support/emulator/index.js';
import type { EmulatedCluster, KubeObject } from '../support/emulator/index.js';
import { meshRuntimes } from '../support/mesh/index.js';
import { fixtureYaml, POSTGRES_CHECK } from '../support/mesh/scenarios.js';

const exec = promisify(execFile);

function fixtureObjects(scenario: string, cluster: string): KubeObject[] {
  return YAML.parseAllDocuments(fixtureYaml(scenario, cluster)).map((d) => d.toJS() as KubeObject);
}

/** A fixture object as a user would create it: no status, no fixed addresses. */
function asCreated(obj: KubeObject): KubeObject {
  const copy = structuredClone(obj) as KubeObject & { spec?: Record<string, unknown> };
  delete copy['status'];
  if (copy.spec && copy.kind === 'Service') delete copy.spec['clusterIP'];
  return copy;
}

async function waitFor<T>(what: string, probe: () => T | undefined | Promise<T | undefined>, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

function terminated(cluster: EmulatedCluster, ns: string, pod: string, container: string): { exitCode: number } | undefined {
  const p = cluster.get('v1', 'Pod', ns, pod) as (KubeObject & { status?: { containerStatuses?: Array<{ name: string; state: { terminated?: { exitCode: number } } }> } }) | undefined;
  return p?.status?.containerStatuses?.find((c) => c.name === container)?.state.terminated;
}

test('a user runs a curl pod with kubectl in cluster2 and reads the real outcome with kubectl logs', async (t) => {
  const world = await startWorld({ clusters: [{ name: 'cluster1' }, { name: 'cluster2' }], istio: '1.18.0', seed: 'bookinfo', runtimes: meshRuntimes({ random: () => 0 }) });
  try {
    await world.waitIdle();
    const kubectl = (...args: string[]) => exec('kubectl', ['--kubeconfig', world.kubeconfigPath, '--context', 'cluster2', ...args]);
    await kubectl('-n', 'bookinfo', 'run', 'probe', '--image=curlimages/curl:8.11.1', '--restart=Never', '--', 'curl', '-sS', '-w', '\\n%{http_code}\\n', 'http://myreviews:9080/reviews/0');
    const cluster2 = world.cluster('cluster2');
    const done = await waitFor('the curl container to finish', () => terminated(cluster2, 'bookinfo', 'probe', 'probe'));
    t.is(done.exitCode, 0);
    const { stdout } = await kubectl('-n', 'bookinfo', 'logs', 'probe', '-c', 'probe');
    const [body, status] = stdout.trimEnd().split('\n');
    t.is(status, '200');
    t.regex(JSON.parse(body!).podname as string, /^reviews-v[23]-/);
    await kubectl('-n', 'bookinfo', 'run', 'missing', '--image=curlimages/curl:8.11.1', '--restart=Never', '--', 'curl', '-sS', 'http://reviews.nowhere:9080/');
    const failed = await waitFor('the failing curl to finish', () => terminated(cluster2, 'bookinfo', 'missing', 'missing'));
    t.is(failed.exitCode, 6);
    t.is((await kubectl('-n', 'bookinfo', 'logs', 'missing', '-c', 'missing')).stdout, 'curl: (6) Could not resolve host: reviews.nowhere\n');
  } finally {
    await world.stop();
  }
});

test('the seed question in emulated clusters: the probe pod reaches postgres through the east-west gateway', async (t) => {
  const world = await startWorld({
    clusters: [{ name: 'operations' }, { name: 'staging' }, { name: 'production' }], istio: '1.18.0', seed: 'federation',
    runtimes: meshRuntimes(),
  });
  try {
    await world.waitIdle();
    const production = world.cluster('production');
    const operations = world.cluster('operations');
    // The hand-written provider side, created through the API; trust domain aliases as the fixture's mesh config.
    const mesh = production.get('v1', 'ConfigMap', 'istio-system', 'istio') as KubeObject & { data: Record<string, string> };
    const meshConfig = YAML.parse(mesh.data['mesh']!) as Record<string, unknown>;
    production.apply({ ...mesh, data: { ...mesh.data, mesh: YAML.stringify({ ...meshConfig, trustDomainAliases: ['operations.local'] }) } });
    for (const obj of fixtureObjects('shared-root', 'production')) {
      if (obj.kind === 'ConfigMap' || (obj.kind === 'Service' && obj.metadata.name === 'postgres') || (obj.kind === 'Pod' && obj.metadata.namespace !== 'istio-system')) continue;
      production.create(asCreated(obj));
    }
    await world.waitIdle();
    const lb = production.get('v1', 'Service', 'istio-system', 'istio-eastwestgateway') as KubeObject & { status: { loadBalancer: { ingress: Array<{ ip: string }> } } };
    const address = lb.status.loadBalancer.ingress[0]!.ip;
    for (const obj of fixtureObjects('shared-root', 'operations')) {
      if (obj.kind === 'ConfigMap' || obj.kind === 'Pod') continue;
      const created = asCreated(obj) as KubeObject & { spec: { endpoints?: Array<{ address: string }> } };
      if (obj.kind === 'ServiceEntry') created.spec.endpoints![0]!.address = address;
      operations.create(created);
    }
    operations.create({
      apiVersion: 'v1', kind: 'Pod',
      metadata: { name: 'probe', namespace: 'vault', annotations: { 'proxy.istio.io/config': '{"holdApplicationUntilProxyStarts": true}' } },
      spec: {
        serviceAccountName: 'vault', restartPolicy: 'Never',
        containers: [{ name: 'probe', image: 'curlimages/curl:8.11.1', command: ['sh', '-c', `${POSTGRES_CHECK}; code=$?; curl -fsS -X POST localhost:15020/quitquitquit; exit $code`] }],
      },
    });
    const done = await waitFor('the probe to finish', () => terminated(operations, 'vault', 'probe', 'probe'));
    const logs = await exec('kubectl', ['--kubeconfig', world.kubeconfigPath, '--context', 'operations', '-n', 'vault', 'logs', 'probe', '-c', 'probe']);
    t.is(logs.stdout, 'postgres answered\n');
    t.is(done.exitCode, 0);
    const proxy = await waitFor('the sidecar to stop', () => terminated(operations, 'vault', 'probe', 'istio-proxy'));
    t.is(proxy.exitCode, 0);
  } finally {
    await world.stop();
  }
});
