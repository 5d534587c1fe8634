/**
 * The emulator's authorization is kube-apiserver's RBAC: Roles, ClusterRoles (aggregated too) and their bindings,
 * for users (tokens, client certificates with CN and O), groups and service accounts; verbs, API groups, resources,
 * subresources, resourceNames and non-resource URLs; impersonation checked against the same objects; and
 * SelfSubjectAccessReview answered by the same evaluator.
 */
import test from 'ava';
import { startWorld, type EmulatedCluster, type World } from '../support/emulator/index.js';
import { apiRequest } from '../support/emulator/request.js';
import { grant } from '../support/rbac.js';

let world: World;
let cluster: EmulatedCluster;

test.before(async () => {
  world = await startWorld({ clusters: [{ name: 'c1' }] });
  cluster = world.clusters[0]!;
  cluster.create({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'team' } });
  cluster.create({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'open', namespace: 'team' }, data: {} });
  cluster.create({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'closed', namespace: 'team' }, data: {} });
  await world.waitIdle();
});

test.after.always(async () => {
  await world?.stop();
});

const status = async (token: string, path: string, method = 'GET', body?: unknown) => (await apiRequest(cluster, { path, method, token, ...(body ? { body } : {}) })).status;

async function review(token: string, attributes: Record<string, string>): Promise<boolean> {
  const answer = await apiRequest(cluster, {
    method: 'POST', path: '/apis/authorization.k8s.io/v1/selfsubjectaccessreviews', token,
    body: { apiVersion: 'authorization.k8s.io/v1', kind: 'SelfSubjectAccessReview', spec: { resourceAttributes: attributes } },
  });
  return (answer.body as { status: { allowed: boolean } }).status.allowed;
}

test.serial('a RoleBinding grants its Role in its namespace only; resourceNames and verbs restrict; reviews agree with requests', async (t) => {
  cluster.addToken('ann-token', 'ann');
  grant(cluster, 'reader', { user: 'ann' }, [{ verbs: ['get'], apiGroups: [''], resources: ['configmaps'], resourceNames: ['open'] }, { verbs: ['list'], apiGroups: [''], resources: ['configmaps'] }], 'team');
  t.is(await status('ann-token', '/api/v1/namespaces/team/configmaps/open'), 200);
  t.is(await status('ann-token', '/api/v1/namespaces/team/configmaps/closed'), 403);
  t.is(await status('ann-token', '/api/v1/namespaces/team/configmaps'), 200);
  t.is(await status('ann-token', '/api/v1/namespaces/default/configmaps'), 403, 'not in another namespace');
  t.is(await status('ann-token', '/api/v1/configmaps'), 403, 'not across namespaces');
  t.is(await status('ann-token', '/api/v1/namespaces/team/configmaps/open', 'DELETE'), 403);
  t.true(await review('ann-token', { verb: 'get', resource: 'configmaps', namespace: 'team', name: 'open' }));
  t.false(await review('ann-token', { verb: 'get', resource: 'configmaps', namespace: 'team', name: 'closed' }));
  t.false(await review('ann-token', { verb: 'get', resource: 'configmaps', namespace: 'team' }), 'resourceNames never match a request without a name');
  t.true(await review('ann-token', { verb: 'list', resource: 'configmaps', namespace: 'team' }));
  t.false(await review('ann-token', { verb: 'list', resource: 'configmaps' }));
  t.true(await review('ann-token', { verb: 'create', group: 'authorization.k8s.io', resource: 'selfsubjectaccessreviews' }), 'system:basic-user for every authenticated user');
});

test.serial('ClusterRoleBindings, groups, subresources and aggregated ClusterRoles', async (t) => {
  cluster.addToken('bo-token', 'bo', ['ops']);
  grant(cluster, 'ops-logs', { group: 'ops' }, [{ verbs: ['get'], apiGroups: [''], resources: ['pods/log'] }, { verbs: ['list'], apiGroups: [''], resources: ['pods'] }]);
  t.is(await status('bo-token', '/api/v1/pods'), 200, 'a ClusterRoleBinding to a group covers every namespace');
  t.true(await review('bo-token', { verb: 'get', resource: 'pods', subresource: 'log', namespace: 'team' }));
  t.false(await review('bo-token', { verb: 'get', resource: 'pods', namespace: 'team' }), 'a subresource rule does not grant the resource');
  cluster.apply({ apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'ClusterRole', metadata: { name: 'agg' }, aggregationRule: { clusterRoleSelectors: [{ matchLabels: { 'example.com/agg': 'true' } }] }, rules: [] } as never);
  cluster.apply({ apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'ClusterRole', metadata: { name: 'agg-part', labels: { 'example.com/agg': 'true' } }, rules: [{ verbs: ['list'], apiGroups: [''], resources: ['secrets'] }] } as never);
  cluster.apply({ apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'RoleBinding', metadata: { name: 'agg', namespace: 'team' }, roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'agg' }, subjects: [{ apiGroup: 'rbac.authorization.k8s.io', kind: 'Group', name: 'ops' }] } as never);
  t.is(await status('bo-token', '/api/v1/namespaces/team/secrets'), 200, 'the aggregated role has its parts\' rules, in the RoleBinding\'s namespace');
  t.is(await status('bo-token', '/api/v1/namespaces/default/secrets'), 403);
});

test.serial('service accounts and client certificates authenticate; non-resource URLs need a rule', async (t) => {
  cluster.addToken('sa-token', 'system:serviceaccount:team:builder');
  grant(cluster, 'builder', { serviceAccount: 'team/builder' }, [{ verbs: ['create'], apiGroups: [''], resources: ['configmaps'] }], 'team');
  t.is(await status('sa-token', '/api/v1/namespaces/team/configmaps', 'POST', { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'built' } }), 201);
  const cert = await cluster.clientCertificate('cert-user', ['cert-group']);
  grant(cluster, 'cert-group', { group: 'cert-group' }, [{ verbs: ['get'], apiGroups: [''], resources: ['namespaces'] }]);
  const answer = await apiRequest(cluster, { path: '/api/v1/namespaces/team', clientCert: cert });
  t.is(answer.status, 200, JSON.stringify(answer.body));
  t.is(cluster.requests.at(-1)!.user, 'cert-user');
  t.is((await apiRequest(cluster, { path: '/api/v1/namespaces/default', clientCert: cert })).status, 200);
  t.is((await apiRequest(cluster, { path: '/api/v1/secrets', clientCert: cert })).status, 403);
  t.is(await status('sa-token', '/version'), 200, 'system:public-info-viewer');
  t.is(await status('nobody', '/api/v1/namespaces'), 401);
});

test.serial('impersonation is checked against RBAC and then acts as the impersonated user', async (t) => {
  cluster.addToken('imp-token', 'imp');
  grant(cluster, 'imp', { user: 'imp' }, [{ verbs: ['impersonate'], apiGroups: [''], resources: ['users'], resourceNames: ['ann'] }]);
  const asAnn = await apiRequest(cluster, { path: '/api/v1/namespaces/team/configmaps/open', token: 'imp-token', headers: { 'Impersonate-User': 'ann' } });
  t.is(asAnn.status, 200);
  t.is(cluster.requests.at(-1)!.user, 'ann');
  const asBo = await apiRequest(cluster, { path: '/api/v1/pods', token: 'imp-token', headers: { 'Impersonate-User': 'bo' } });
  t.is(asBo.status, 403);
  t.regex((asBo.body as { message: string }).message, /User "imp" cannot impersonate resource "users" in API group "" at the cluster scope/);
  const withGroup = await apiRequest(cluster, { path: '/api/v1/pods', token: 'imp-token', headers: { 'Impersonate-User': 'ann', 'Impersonate-Group': 'ops' } });
  t.is(withGroup.status, 403, 'impersonating a group needs its own permission');
});
