import { PassThrough } from 'node:stream';
import test from 'ava';
import {
  ApiException, AppsV1Api, CoreV1Api, KubeConfig, KubernetesObjectApi, Log, PatchStrategy, Watch, loadYaml,
} from '@kubernetes/client-node';
import type { KubernetesObject } from '@kubernetes/client-node';
import { startWorld } from '../support/emulator/index.js';
import { apiRequest } from '../support/emulator/request.js';
import { grant } from '../support/rbac.js';
import type { ContainerRuntime, World } from '../support/emulator/index.js';

let world: World;
let kc: KubeConfig;

/**
 * Containers with command `ticker N` print `tick 1` … `tick N`, then exit 0; each line after the first is printed only
 * once the test has received the one before (it opens the next gate), so a follow stream is checked without timing.
 */
const tickerGates: Array<() => void> = [];
const ticker: ContainerRuntime = (run) => {
  if (run.container.command?.[0] !== 'ticker') return undefined;
  const n = Number(run.container.command[1] ?? 3);
  return (async () => {
    for (let i = 1; i <= n; i++) {
      run.log(`tick ${i}\n`);
      if (i < n) await new Promise<void>((r) => tickerGates.push(r));
    }
    return 0;
  })();
};

test.before(async () => {
  world = await startWorld({ clusters: [{ name: 'cluster1' }], istio: '1.18.0', runtimes: [ticker] });
  kc = new KubeConfig();
  kc.loadFromFile(world.kubeconfigPath);
});

test.after.always(async () => {
  await world?.stop();
});

let nsCounter = 0;
async function namespace(labels: Record<string, string> = {}): Promise<string> {
  const name = `t${++nsCounter}-${Math.random().toString(36).slice(2, 7)}`;
  await kc.makeApiClient(CoreV1Api).createNamespace({ body: { metadata: { name, labels } } });
  return name;
}

async function apiError(promise: Promise<unknown>): Promise<{ code: number; status: { reason: string; message: string; details?: { causes?: Array<{ field: string; message: string; reason: string }> } } }> {
  try {
    await promise;
  } catch (err) {
    // client-node 1.4 keeps the Status as a JSON string in body (and no body at all for 401).
    if (err instanceof ApiException) return { code: err.code, status: (typeof err.body === 'string' ? JSON.parse(err.body) : (err.body ?? {})) as never };
    throw err;
  }
  throw new Error('expected the request to fail');
}

function deploymentYaml(ns: string, name: string, replicas = 1, image = 'nginx:1.25'): string {
  return `apiVersion: apps/v1
kind: Deployment
metadata: {name: ${name}, namespace: ${ns}}
spec:
  replicas: ${replicas}
  selector: {matchLabels: {app: ${name}}}
  template:
    metadata: {labels: {app: ${name}}}
    spec:
      containers:
      - {name: ${name}, image: "${image}", ports: [{containerPort: 8080, name: http}]}
`;
}

test('typed APIs: create, read, list with selectors, replace with a stale resourceVersion is a Conflict', async (t) => {
  const core = kc.makeApiClient(CoreV1Api);
  const ns = await namespace();
  const created = await core.createNamespacedConfigMap({ namespace: ns, body: { metadata: { name: 'a', labels: { tier: 'web', env: 'prod' } }, data: { k: 'v' } } });
  t.truthy(created.metadata?.uid);
  t.truthy(created.metadata?.creationTimestamp);
  await core.createNamespacedConfigMap({ namespace: ns, body: { metadata: { name: 'b', labels: { tier: 'db' } } } });
  const read = await core.readNamespacedConfigMap({ name: 'a', namespace: ns });
  t.deepEqual(read.data, { k: 'v' });
  const names = async (labelSelector?: string, fieldSelector?: string): Promise<string[]> =>
    (await core.listNamespacedConfigMap({ namespace: ns, ...(labelSelector ? { labelSelector } : {}), ...(fieldSelector ? { fieldSelector } : {}) })).items.map((c) => c.metadata?.name ?? '').filter((n) => n !== 'istio-ca-root-cert');
  t.deepEqual(await names('tier=web'), ['a']);
  t.deepEqual(await names('tier in (web,db),env!=prod'), ['b']);
  t.deepEqual(await names('!env'), ['b']);
  t.deepEqual(await names(undefined, 'metadata.name=b'), ['b']);
  t.deepEqual(await names('tier', `metadata.namespace=${ns}`), ['a', 'b']);

  const stale = { ...read, data: { k: 'second' } };
  await core.replaceNamespacedConfigMap({ name: 'a', namespace: ns, body: { ...read, data: { k: 'first' } } });
  const conflict = await apiError(core.replaceNamespacedConfigMap({ name: 'a', namespace: ns, body: stale }));
  t.is(conflict.code, 409);
  t.is(conflict.status.reason, 'Conflict');
  t.is(conflict.status.message, 'Operation cannot be fulfilled on configmaps "a": the object has been modified; please apply your changes to the latest version and try again');
});

test('ApiException codes: 404 NotFound, 409 AlreadyExists, 422 Invalid with causes, 404 for a missing namespace', async (t) => {
  const core = kc.makeApiClient(CoreV1Api);
  const ns = await namespace();
  const missing = await apiError(core.readNamespacedService({ name: 'nope', namespace: ns }));
  t.is(missing.code, 404);
  t.is(missing.status.message, 'services "nope" not found');
  await core.createNamespacedService({ namespace: ns, body: { metadata: { name: 's' }, spec: { ports: [{ port: 80 }] } } });
  const exists = await apiError(core.createNamespacedService({ namespace: ns, body: { metadata: { name: 's' }, spec: { ports: [{ port: 80 }] } } }));
  t.is(exists.code, 409);
  t.is(exists.status.reason, 'AlreadyExists');
  const bad = await apiError(core.createNamespacedService({ namespace: ns, body: { metadata: { name: 'Bad_Name' }, spec: { ports: [{ port: 70000 }] } } }));
  t.is(bad.code, 422);
  t.is(bad.status.reason, 'Invalid');
  t.deepEqual(bad.status.details?.causes?.map((c) => c.field), ['metadata.name']);
  const noNs = await apiError(core.createNamespacedConfigMap({ namespace: 'does-not-exist', body: { metadata: { name: 'x' } } }));
  t.is(noNs.code, 404);
  t.is(noNs.status.message, 'namespaces "does-not-exist" not found');
});

test('secrets: stringData is stored base64-encoded in data', async (t) => {
  const core = kc.makeApiClient(CoreV1Api);
  const ns = await namespace();
  const secret = await core.createNamespacedSecret({ namespace: ns, body: { metadata: { name: 's' }, stringData: { password: 'hunter2' }, data: { other: Buffer.from('x').toString('base64') } } });
  t.is(secret.type, 'Opaque');
  t.is(secret.stringData, undefined);
  t.is(Buffer.from(secret.data?.password ?? '', 'base64').toString(), 'hunter2');
  t.is(Buffer.from(secret.data?.other ?? '', 'base64').toString(), 'x');
});

test('KubernetesObjectApi server-side apply: create, update, field ownership conflicts and force', async (t) => {
  const objects = KubernetesObjectApi.makeApiClient(kc);
  const ns = await namespace();
  const spec = loadYaml<KubernetesObject>(deploymentYaml(ns, 'web'));
  const created = await objects.patch(spec, undefined, undefined, 'meshfed', false, PatchStrategy.ServerSideApply);
  t.truthy(created.metadata?.uid);
  const managed = created.metadata?.managedFields ?? [];
  t.deepEqual(managed.map((m) => [m.manager, m.operation]), [['meshfed', 'Apply']]);
  t.truthy((managed[0]?.fieldsV1 as Record<string, Record<string, unknown>>)['f:spec']?.['f:replicas']);

  // Another manager that changes replicas with an update takes ownership; applying a different value conflicts.
  const scaled = await objects.patch({ apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'web', namespace: ns }, spec: { replicas: 3 } } as KubernetesObject, undefined, undefined, 'hpa', false, PatchStrategy.MergePatch);
  t.is((scaled as { spec: { replicas: number } }).spec.replicas, 3);
  const conflict = await apiError(objects.patch(loadYaml<KubernetesObject>(deploymentYaml(ns, 'web', 5)), undefined, undefined, 'meshfed', false, PatchStrategy.ServerSideApply));
  t.is(conflict.code, 409);
  t.is(conflict.status.message, 'Apply failed with 1 conflict: conflict with "hpa" using apps/v1: .spec.replicas');
  const forced = await objects.patch(loadYaml<KubernetesObject>(deploymentYaml(ns, 'web', 5)), undefined, undefined, 'meshfed', true, PatchStrategy.ServerSideApply);
  t.is((forced as { spec: { replicas: number } }).spec.replicas, 5);

  // Fields a manager stops applying are removed.
  const withLabel = loadYaml<KubernetesObject>(deploymentYaml(ns, 'web', 5));
  withLabel.metadata = { ...withLabel.metadata, labels: { team: 'mesh' } };
  await objects.patch(withLabel, undefined, undefined, 'meshfed', false, PatchStrategy.ServerSideApply);
  const without = await objects.patch(loadYaml<KubernetesObject>(deploymentYaml(ns, 'web', 5)), undefined, undefined, 'meshfed', false, PatchStrategy.ServerSideApply);
  t.is(without.metadata?.labels?.team, undefined);
});

test('server-side apply of Istio objects: pruned unknown fields with a warning (Warn), 400 with Strict, 422 when mistyped', async (t) => {
  const objects = KubernetesObjectApi.makeApiClient(kc);
  const ns = await namespace();
  const vs = (extra: string): KubernetesObject => loadYaml<KubernetesObject>(`apiVersion: networking.istio.io/v1beta1
kind: VirtualService
metadata: {name: reviews, namespace: ${ns}}
spec:
  hosts: [reviews]
  http:
  - route:
    - destination: {host: reviews, subset: v2}
${extra}`);
  const stored = await objects.patch(vs('    timeoutt: 5s'), undefined, undefined, 'meshfed', false, PatchStrategy.ServerSideApply);
  t.false('timeoutt' in ((stored as { spec: { http: object[] } }).spec.http[0] as object));

  const cluster = world.clusters[0]!;
  const warn = await apiRequest(cluster, { method: 'PATCH', path: `/apis/networking.istio.io/v1beta1/namespaces/${ns}/virtualservices/reviews?fieldManager=meshfed`, contentType: 'application/apply-patch+yaml', body: JSON.stringify(vs('    timeoutt: 5s')) });
  t.is(warn.status, 200);
  t.is(warn.headers.warning, '299 - "unknown field \\"spec.http[0].timeoutt\\""');
  const strict = await apiRequest(cluster, { method: 'PATCH', path: `/apis/networking.istio.io/v1beta1/namespaces/${ns}/virtualservices/reviews?fieldManager=meshfed&fieldValidation=Strict`, contentType: 'application/apply-patch+yaml', body: JSON.stringify(vs('    timeoutt: 5s')) });
  t.is(strict.status, 400);
  t.is((strict.body as { message: string }).message, 'VirtualService in version "v1beta1" cannot be handled as a VirtualService: strict decoding error: unknown field "spec.http[0].timeoutt"');

  const mistyped = await apiError(objects.patch(vs('    timeout: 5'), undefined, undefined, 'meshfed', false, PatchStrategy.ServerSideApply));
  t.is(mistyped.code, 422);
  t.is(mistyped.status.message, 'VirtualService.networking.istio.io "reviews" is invalid: spec.http[0].timeout: Invalid value: "integer": spec.http[0].timeout in body must be of type string: "integer"');
});

test('built-in kinds: unknown fields are a strict decoding error with Strict, pruned with a warning by default', async (t) => {
  const cluster = world.clusters[0]!;
  const ns = await namespace();
  const service = { apiVersion: 'v1', kind: 'Service', metadata: { name: 'web', namespace: ns }, spec: { prots: [{ port: 80 }], ports: [{ port: 80, targetPort: 8080, nme: 'http' }] } };
  const strict = await apiRequest(cluster, { method: 'POST', path: `/api/v1/namespaces/${ns}/services?fieldValidation=Strict`, body: service });
  t.is(strict.status, 400);
  t.is((strict.body as { message: string }).message, 'Service in version "v1" cannot be handled as a Service: strict decoding error: unknown field "spec.prots", unknown field "spec.ports[0].nme"');
  const warned = await apiRequest(cluster, { method: 'POST', path: `/api/v1/namespaces/${ns}/services`, body: service });
  t.is(warned.status, 201);
  t.deepEqual(warned.headers.warning, '299 - "unknown field \\"spec.prots\\"", 299 - "unknown field \\"spec.ports[0].nme\\""');
  const stored = cluster.get('v1', 'Service', ns, 'web')!.spec as Record<string, unknown>;
  t.false('prots' in stored);
  t.deepEqual(stored.ports, [{ port: 80, targetPort: 8080, protocol: 'TCP' }]);
});

test('merge, JSON and strategic merge patches; strategic merge is refused for custom resources (415)', async (t) => {
  const objects = KubernetesObjectApi.makeApiClient(kc);
  const ns = await namespace();
  await objects.create(loadYaml<KubernetesObject>(deploymentYaml(ns, 'api')));
  const ref = { apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'api', namespace: ns } };
  const smp = await objects.patch({ ...ref, spec: { template: { spec: { containers: [{ name: 'sidecar', image: 'busybox' }] } } } } as KubernetesObject, undefined, undefined, 'test', false, PatchStrategy.StrategicMergePatch);
  t.deepEqual((smp as { spec: { template: { spec: { containers: Array<{ name: string }> } } } }).spec.template.spec.containers.map((c) => c.name), ['api', 'sidecar']);
  const merge = await objects.patch({ ...ref, metadata: { ...ref.metadata, labels: { a: 'b' } } } as KubernetesObject, undefined, undefined, 'test', false, PatchStrategy.MergePatch);
  t.deepEqual(merge.metadata?.labels, { a: 'b' });
  const json = await kc.makeApiClient(AppsV1Api).patchNamespacedDeployment({ name: 'api', namespace: ns, body: [{ op: 'replace', path: '/spec/replicas', value: 4 }, { op: 'test', path: '/metadata/labels/a', value: 'b' }] });
  t.is(json.spec?.replicas, 4);
  const failedTest = await apiError(kc.makeApiClient(AppsV1Api).patchNamespacedDeployment({ name: 'api', namespace: ns, body: [{ op: 'test', path: '/spec/replicas', value: 1 }] }));
  t.is(failedTest.code, 422);
  const gw = await objects.create(loadYaml<KubernetesObject>(`apiVersion: networking.istio.io/v1beta1
kind: Gateway
metadata: {name: gw, namespace: ${ns}}
spec: {selector: {istio: ingressgateway}, servers: [{port: {number: 80, name: http, protocol: HTTP}, hosts: ["*"]}]}`));
  t.truthy(gw.metadata?.uid);
  const refused = await apiError(objects.patch({ apiVersion: 'networking.istio.io/v1beta1', kind: 'Gateway', metadata: { name: 'gw', namespace: ns }, spec: {} } as KubernetesObject, undefined, undefined, 'test', false, PatchStrategy.StrategicMergePatch));
  t.is(refused.code, 415);
  t.is(refused.status.reason, 'UnsupportedMediaType');
});

test('dryRun=All validates and returns the object without storing it', async (t) => {
  const core = kc.makeApiClient(CoreV1Api);
  const ns = await namespace();
  const before = world.clusters[0]!.view.list('', 'ConfigMap', ns).length;
  const dry = await core.createNamespacedConfigMap({ namespace: ns, body: { metadata: { name: 'dry' } }, dryRun: 'All' });
  t.is(dry.metadata?.name, 'dry');
  t.is(world.clusters[0]!.view.list('', 'ConfigMap', ns).length, before);
  const invalid = await apiError(core.createNamespacedConfigMap({ namespace: ns, body: { metadata: { name: 'UPPER' } }, dryRun: 'All' }));
  t.is(invalid.code, 422);
});

test('Watch: ADDED/MODIFIED/DELETED in order, replay from a resourceVersion, 410 Expired after compaction', async (t) => {
  const core = kc.makeApiClient(CoreV1Api);
  const ns = await namespace();
  const first = await core.createNamespacedConfigMap({ namespace: ns, body: { metadata: { name: 'w1' } } });
  const events: string[] = [];
  const done = new Promise<void>((resolve) => {
    void new Watch(kc).watch(`/api/v1/namespaces/${ns}/configmaps`, { resourceVersion: first.metadata?.resourceVersion, fieldSelector: 'metadata.name=w1' }, (type, obj: { metadata: { name: string }; data?: Record<string, string> }) => {
      events.push(`${type} ${obj.metadata.name} ${obj.data?.n ?? ''}`.trim());
      if (type === 'DELETED') resolve();
    }, () => resolve()).then((ctrl) => done.then(() => ctrl.abort()));
  });
  await KubernetesObjectApi.makeApiClient(kc).patch({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'w1', namespace: ns }, data: { n: '1' } } as KubernetesObject, undefined, undefined, 'test', false, PatchStrategy.MergePatch);
  await core.createNamespacedConfigMap({ namespace: ns, body: { metadata: { name: 'other' } } });
  await core.deleteNamespacedConfigMap({ name: 'w1', namespace: ns });
  await done;
  t.deepEqual(events, ['MODIFIED w1 1', 'DELETED w1 1']);

  world.clusters[0]!.compactHistory();
  const expired = await new Promise<unknown>((resolve) => {
    void new Watch(kc).watch(`/api/v1/namespaces/${ns}/configmaps`, { resourceVersion: first.metadata?.resourceVersion }, (type, obj) => {
      if (type === 'ERROR') resolve(obj);
    }, (err) => resolve(err));
  });
  t.like(expired as object, { code: 410, reason: 'Expired' });
});

test('Watch without resourceVersion starts with ADDED for what exists; bookmarks and timeoutSeconds', async (t) => {
  const core = kc.makeApiClient(CoreV1Api);
  const ns = await namespace();
  await core.createNamespacedConfigMap({ namespace: ns, body: { metadata: { name: 'existing' } } });
  const types: string[] = [];
  const started = Date.now();
  await new Promise<void>((resolve) => {
    void new Watch(kc).watch(`/api/v1/namespaces/${ns}/configmaps`, { allowWatchBookmarks: true, timeoutSeconds: 2 }, (type, obj: { metadata: { name?: string } }) => {
      types.push(type === 'BOOKMARK' ? type : `${type} ${obj.metadata.name}`);
    }, () => resolve());
  });
  t.true(Date.now() - started >= 1900);
  t.true(types.includes('ADDED existing'));
  t.true(types.includes('BOOKMARK'));
});

test('pods: Running with container statuses, logs from the runtime, Log follow streams until the container exits', async (t) => {
  const core = kc.makeApiClient(CoreV1Api);
  const ns = await namespace();
  const chatter = world.clusters[0]!;
  // The default runtime prints nothing; these pods use the world's runtime chain via a dedicated image name.
  await core.createNamespacedPod({ namespace: ns, body: { metadata: { name: 'quiet' }, spec: { containers: [{ name: 'main', image: 'busybox:1.36' }] } } });
  await chatter.waitIdle();
  const pod = await core.readNamespacedPod({ name: 'quiet', namespace: ns });
  t.is(pod.status?.phase, 'Running');
  t.is(pod.status?.containerStatuses?.[0]?.ready, true);
  t.truthy(pod.status?.containerStatuses?.[0]?.state?.running?.startedAt);
  t.true(pod.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'));
  t.regex(pod.status?.podIP ?? '', /^10\.\d+\.\d+\.\d+$/);
  t.is(await core.readNamespacedPodLog({ name: 'quiet', namespace: ns }), '');

  // Follow: the lines arrive as the container prints them, and the stream ends when it exits.
  await core.createNamespacedPod({ namespace: ns, body: { metadata: { name: 'ticker' }, spec: { restartPolicy: 'Never', containers: [{ name: 'main', image: 'busybox:1.36', command: ['ticker', '3'] }] } } });
  await chatter.waitIdle();
  const stream = new PassThrough();
  const chunks: string[] = [];
  stream.on('data', (chunk: Buffer) => {
    chunks.push(chunk.toString());
    tickerGates.shift()?.();
  });
  // client-node 1.4 never calls a done callback: the piped stream ending is the signal.
  const ended = new Promise<void>((resolve) => stream.on('end', () => resolve()));
  await new Log(kc).log(ns, 'ticker', 'main', stream, { follow: true });
  await ended;
  t.is(chunks.join(''), 'tick 1\ntick 2\ntick 3\n');
  // Each line was printed only after the previous one arrived: the stream delivers lines while the container runs.
  t.true(chunks.length >= 3, 'lines arrived one by one, as printed');
  t.is(await core.readNamespacedPodLog({ name: 'ticker', namespace: ns, tailLines: 1 }), 'tick 3\n');
  await chatter.waitIdle();
  t.is((await core.readNamespacedPod({ name: 'ticker', namespace: ns })).status?.phase, 'Succeeded');
});

test('least privilege: a user bound by a RoleBinding gets 403 Forbidden outside its Role, 401 without a valid token', async (t) => {
  const cluster = world.clusters[0]!;
  const ns = await namespace();
  cluster.addToken('reader-token', 'reader');
  grant(cluster, 'reader', { user: 'reader' }, [{ verbs: ['get', 'list'], apiGroups: [''], resources: ['configmaps'] }], ns);
  const limited = new KubeConfig();
  limited.loadFromFile(world.kubeconfigPath);
  limited.users[0] = { ...limited.users[0]!, token: 'reader-token' };
  const core = limited.makeApiClient(CoreV1Api);
  t.true(Array.isArray((await core.listNamespacedConfigMap({ namespace: ns })).items));
  const write = await apiError(core.createNamespacedConfigMap({ namespace: ns, body: { metadata: { name: 'x' } } }));
  t.is(write.code, 403);
  t.is(write.status.message, `configmaps is forbidden: User "reader" cannot create resource "configmaps" in API group "" in the namespace "${ns}"`);
  const elsewhere = await apiError(core.listNamespacedSecret({ namespace: ns }));
  t.is(elsewhere.code, 403);
  limited.users[0] = { ...limited.users[0]!, token: 'wrong' };
  const unauth = await apiError(limited.makeApiClient(CoreV1Api).listNamespace());
  t.is(unauth.code, 401);
});

test('faults: a status code N times, then normal answers; the request log records method, path, query and status', async (t) => {
  const cluster = world.clusters[0]!;
  const core = kc.makeApiClient(CoreV1Api);
  const ns = await namespace();
  cluster.faults.add({ method: 'GET', path: new RegExp(`/namespaces/${ns}/configmaps$`), status: 503, times: 2 });
  t.is((await apiError(core.listNamespacedConfigMap({ namespace: ns }))).code, 503);
  t.is((await apiError(core.listNamespacedConfigMap({ namespace: ns }))).code, 503);
  t.true(Array.isArray((await core.listNamespacedConfigMap({ namespace: ns, labelSelector: 'a=b' })).items));
  const log = cluster.requests.filter((r) => r.path === `/api/v1/namespaces/${ns}/configmaps`);
  t.deepEqual(log.map((r) => [r.method, r.status]), [['GET', 503], ['GET', 503], ['GET', 200]]);
  t.is(log[2]!.query.labelSelector, 'a=b');
  t.regex(log[2]!.userAgent ?? '', /node/i);

  cluster.faults.add({ path: `/api/v1/namespaces/${ns}`, drop: true });
  await t.throwsAsync(core.readNamespace({ name: ns }), { any: true, message: /socket hang up/ });
  cluster.faults.add({ path: `/api/v1/namespaces/${ns}`, delayMs: 150 });
  const started = Date.now();
  await core.readNamespace({ name: ns });
  t.true(Date.now() - started >= 140);
  t.false(cluster.requests.some((r) => r.path.includes(ns) && ['POST', 'PUT', 'PATCH', 'DELETE'].includes(r.method) && r.path !== '/api/v1/namespaces'));
});

test('creating a CRD registers its kind in discovery; deleting a namespace removes what is in it', async (t) => {
  const objects = KubernetesObjectApi.makeApiClient(kc);
  await objects.create(loadYaml<KubernetesObject>(`apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: widgets.example.com}
spec:
  group: example.com
  scope: Namespaced
  names: {kind: Widget, plural: widgets, singular: widget, shortNames: [wd]}
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec: {type: object, properties: {size: {type: integer}}, required: [size]}
`));
  const ns = await namespace();
  const widget = await objects.create(loadYaml<KubernetesObject>(`apiVersion: example.com/v1
kind: Widget
metadata: {name: w, namespace: ${ns}}
spec: {size: 3}`));
  t.is((widget as { spec: { size: number } }).spec.size, 3);
  const bad = await apiError(objects.create(loadYaml<KubernetesObject>(`apiVersion: example.com/v1
kind: Widget
metadata: {name: w2, namespace: ${ns}}
spec: {}`)));
  t.is(bad.status.message, 'Widget.example.com "w2" is invalid: spec.size: Required value');
  const core = kc.makeApiClient(CoreV1Api);
  await core.deleteNamespace({ name: ns });
  await t.throwsAsync(objects.read({ apiVersion: 'example.com/v1', kind: 'Widget', metadata: { name: 'w', namespace: ns } }));
  t.is(world.clusters[0]!.view.list('', 'ConfigMap', ns).length, 0);
});
