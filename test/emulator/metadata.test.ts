/**
 * Metadata-only responses, as kube-apiserver serves them: `Accept: application/json;as=PartialObjectMetadataList;
 * g=meta.k8s.io;v=v1` (client-go's metadata client, kubectl) turns a list into names, labels and annotations without
 * the objects' content (a Secret's data included); a conversion the endpoint cannot serve is 406 NotAcceptable
 * (`staging/src/k8s.io/apiserver/pkg/endpoints/handlers/response.go`: `asPartialObjectMetadataList`,
 * `asPartialObjectMetadata`; `negotiation.NegotiateOutputMediaType` tries the Accept clauses in order).
 */
import test from 'ava';
import { startWorld, type World } from '../support/emulator/index.js';
import { apiRequest } from '../support/emulator/request.js';

const LIST = 'application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1';
const ONE = 'application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1';

let world: World;

test.before(async () => {
  world = await startWorld({ clusters: [{ name: 'meta' }] });
  const c = world.clusters[0]!;
  await apiRequest(c, { method: 'POST', path: '/api/v1/namespaces', body: { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'keys' } } });
  for (const name of ['a', 'b']) {
    const created = await apiRequest(c, {
      method: 'POST', path: '/api/v1/namespaces/keys/secrets',
      body: { apiVersion: 'v1', kind: 'Secret', metadata: { name, labels: { app: name } }, data: { 'tls.key': Buffer.from(`key of ${name}`).toString('base64') } },
    });
    if (created.status !== 201) throw new Error(JSON.stringify(created.body));
  }
});

test.after.always(async () => {
  await world?.stop();
});

test('a metadata list has every object\'s metadata and none of its data', async (t) => {
  const c = world.clusters[0]!;
  const res = await apiRequest(c, { path: '/api/v1/namespaces/keys/secrets', accept: LIST });
  t.is(res.status, 200);
  const body = res.body as { kind: string; apiVersion: string; metadata: { resourceVersion?: string }; items: Array<Record<string, unknown>> };
  t.is(body.kind, 'PartialObjectMetadataList');
  t.is(body.apiVersion, 'meta.k8s.io/v1');
  t.truthy(body.metadata.resourceVersion);
  t.deepEqual(body.items.map((i) => [i.kind, i.apiVersion, (i.metadata as { name: string }).name]), [['PartialObjectMetadata', 'meta.k8s.io/v1', 'a'], ['PartialObjectMetadata', 'meta.k8s.io/v1', 'b']]);
  t.false(JSON.stringify(body).includes(Buffer.from('key of a').toString('base64')), 'no Secret data in a metadata list');
  t.deepEqual(body.items.map((i) => Object.keys(i).sort()), [['apiVersion', 'kind', 'metadata'], ['apiVersion', 'kind', 'metadata']]);
  // Label selectors apply as to a full list.
  const selected = await apiRequest(c, { path: '/api/v1/namespaces/keys/secrets?labelSelector=app%3Db', accept: LIST });
  t.deepEqual((selected.body as { items: Array<{ metadata: { name: string } }> }).items.map((i) => i.metadata.name), ['b']);
});

test('v1beta1 is served too; one object is PartialObjectMetadata', async (t) => {
  const c = world.clusters[0]!;
  const beta = await apiRequest(c, { path: '/api/v1/namespaces/keys/secrets', accept: 'application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1beta1' });
  t.is((beta.body as { apiVersion: string }).apiVersion, 'meta.k8s.io/v1beta1');
  const one = await apiRequest(c, { path: '/api/v1/namespaces/keys/secrets/a', accept: ONE });
  t.is(one.status, 200);
  t.like(one.body as object, { kind: 'PartialObjectMetadata', apiVersion: 'meta.k8s.io/v1', metadata: { name: 'a', namespace: 'keys' } });
  t.is((one.body as { data?: unknown }).data, undefined);
});

test('a list asked for as one object, or one object as a list, is 406 NotAcceptable', async (t) => {
  const c = world.clusters[0]!;
  const list = await apiRequest(c, { path: '/api/v1/namespaces/keys/secrets', accept: ONE });
  t.is(list.status, 406);
  t.like(list.body as object, { kind: 'Status', reason: 'NotAcceptable', code: 406 });
  t.regex((list.body as { message: string }).message, /you requested PartialObjectMetadata, but the requested object is a list/);
  const one = await apiRequest(c, { path: '/api/v1/namespaces/keys/secrets/a', accept: LIST });
  t.is(one.status, 406);
  t.regex((one.body as { message: string }).message, /you requested PartialObjectMetadataList, but the requested object is not a list/);
});

test('a conversion the server does not serve falls back to the next Accept clause, else 406', async (t) => {
  const c = world.clusters[0]!;
  // No group and version: not a conversion kube-apiserver serves.
  const bare = await apiRequest(c, { path: '/api/v1/namespaces/keys/secrets', accept: 'application/json;as=PartialObjectMetadataList' });
  t.is(bare.status, 406);
  const otherGroup = await apiRequest(c, { path: '/api/v1/namespaces/keys/secrets', accept: 'application/json;as=PartialObjectMetadataList;g=example.com;v=v1' });
  t.is(otherGroup.status, 406);
  // client-go's metadata client ends its Accept with plain JSON: a server that cannot convert answers the full list.
  const fallback = await apiRequest(c, { path: '/api/v1/namespaces/keys/secrets', accept: 'application/json;as=Thing;g=meta.k8s.io;v=v1,application/json' });
  t.is(fallback.status, 200);
  t.is((fallback.body as { kind: string }).kind, 'SecretList');
  // Protobuf clauses are passed over: the emulator answers the JSON one.
  const protobufFirst = await apiRequest(c, { path: '/api/v1/namespaces/keys/secrets', accept: `application/vnd.kubernetes.protobuf;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,${LIST}` });
  t.is((protobufFirst.body as { kind: string }).kind, 'PartialObjectMetadataList');
});
