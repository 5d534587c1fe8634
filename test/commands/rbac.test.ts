/**
 * Least privilege, proven on the emulator's RBAC (Roles, ClusterRoles and their bindings, evaluated as kube-apiserver
 * does): every command runs as a user bound only to the documented role of `kubectl meshfed rbac` (docs/rbac.md), and
 * removing any one rule of a role makes the command that needs it fail before it writes anything, with a message
 * naming the missing verb, resource and namespace.
 *
 * Users: alice is the provider operator (cluster2), bob the consumer operator (cluster1; for `import --from` he acts
 * on cluster2 as alice, whose role grants the admission), carol the viewer (both clusters).
 */
import test from 'ava';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import YAML from 'yaml';
import { DEFAULT_GATEWAY_NAMESPACE, FEDERATION_CA_NAMESPACE } from '../../src/federation/naming.js';
import { RBAC_RULES, rbacObjects, type RbacRole, type RbacRule } from '../../src/federation/rbac.js';
import { runCli, writeKubeconfig, type CliResult } from '../support/cli.js';
import type { EmulatedCluster, KubeObject } from '../support/emulator/index.js';
import { startFederationWorld, type FederationWorld } from '../support/federation.js';
import { bindRole, describeRule, namesRule, withWrites } from '../support/rbac.js';

const USERS: Record<RbacRole, string> = { provider: 'alice', consumer: 'bob', viewer: 'carol' };
const RBAC = 'rbac.authorization.k8s.io/v1';

let fed: FederationWorld;
let dir: string;
const kubeconfigs = {} as Record<RbacRole | 'admit', string>;

const EXPORT = ['export', '--context', 'cluster2', '-n', 'bookinfo', '--service', 'myreviews', '--port', 'http', '--subset', 'version=v2', '--name', 'reviews'];
const IMPORT = ['import', '--context', 'cluster1', '-n', 'default', '--from', 'cluster2', '--export', 'bookinfo/reviews', '--name', 'myreviews', '--attach', 'reviews', '--weight', '50'];
const STATUS1 = ['status', '--context', 'cluster1'];
const STATUS2 = ['status', '--context', 'cluster2'];
const VERIFY = ['verify', '--context', 'cluster1', '-n', 'default', '--name', 'myreviews', '--from', 'cluster2'];

/** Every object of the kinds a command could write, with its resourceVersion: equal before and after means nothing was written. */
function store(cluster: EmulatedCluster): Map<string, string> {
  const kinds: Array<[string, string]> = [
    ['v1', 'Namespace'], ['v1', 'ServiceAccount'], ['v1', 'Secret'], ['v1', 'ConfigMap'], ['v1', 'Service'], ['apps/v1', 'Deployment'],
    [RBAC, 'Role'], [RBAC, 'RoleBinding'], ['networking.istio.io/v1beta1', 'Gateway'], ['networking.istio.io/v1beta1', 'VirtualService'],
    ['networking.istio.io/v1beta1', 'DestinationRule'], ['networking.istio.io/v1beta1', 'ServiceEntry'], ['security.istio.io/v1beta1', 'AuthorizationPolicy'],
  ];
  const out = new Map<string, string>();
  for (const [apiVersion, kind] of kinds) {
    for (const o of cluster.list(apiVersion, kind)) out.set(`${kind} ${o.metadata.namespace ?? ''}/${o.metadata.name}`, o.metadata.resourceVersion ?? '');
  }
  for (const pod of cluster.list('v1', 'Pod')) if (pod.metadata.name.startsWith('meshfed-probe')) out.set(`Pod ${pod.metadata.namespace}/${pod.metadata.name}`, '');
  return out;
}

/** Runs a command as `role`'s user; also returns the writes the clusters received from it. */
function as(role: RbacRole | 'admit', args: string[]): Promise<CliResult & { writes: string[] }> {
  return withWrites(fed.world, () => runCli([...args, '--kubeconfig', kubeconfigs[role]]));
}

/** Binds `role` to its user in `cluster` with exactly `rules` (the role's by default), replacing an earlier binding. */
function bind(cluster: EmulatedCluster, role: RbacRole, rules?: readonly RbacRule[], namespaces?: string[]): Promise<void> {
  return bindRole(fed.world, cluster, role, USERS[role], { ...(rules ? { rules } : {}), ...(namespaces ? { namespaces } : {}) });
}

/** The namespaces a rule of `scope` applies to in this scenario, as messages name them. */
function namespacesOf(rule: RbacRule, app: string[]): string[] {
  switch (rule.scope) {
    case 'home': return [DEFAULT_GATEWAY_NAMESPACE, FEDERATION_CA_NAMESPACE];
    case 'apps': return app;
    case 'istio': return ['istio-system'];
    default: return [];
  }
}

test.before(async () => {
  fed = await startFederationWorld({ seed: 'bookinfo', clusters: [{ name: 'cluster1' }, { name: 'cluster2' }] });
  dir = mkdtempSync(join(tmpdir(), 'meshfed-rbac-'));
  const c1 = fed.world.cluster('cluster1');
  const c2 = fed.world.cluster('cluster2');
  for (const cluster of [c1, c2]) for (const user of Object.values(USERS)) cluster.addToken(`${user}-token`, user);
  const entry = (cluster: EmulatedCluster, user: string) => ({ name: cluster.name, server: cluster.server, caPem: cluster.caPem, token: `${user}-token`, user: `${user}-${cluster.name}` });
  kubeconfigs.provider = writeKubeconfig([entry(c2, 'alice')], 'cluster2', dir);
  kubeconfigs.admit = kubeconfigs.provider;
  kubeconfigs.consumer = writeKubeconfig([entry(c1, 'bob'), entry(c2, 'alice')], 'cluster1', dir);
  kubeconfigs.viewer = writeKubeconfig([entry(c1, 'carol'), entry(c2, 'carol')], 'cluster1', dir);
});

test.after.always(async () => {
  await fed?.stop();
});

test.serial('rbac prints, as YAML a cluster admin applies, exactly the documented rules of each role', async (t) => {
  for (const role of ['provider', 'consumer', 'viewer'] as const) {
    const printed = await runCli(['rbac', '--role', role, '--user', USERS[role]]);
    t.is(printed.code, 0, printed.stderr);
    const objects = YAML.parseAllDocuments(printed.stdout).map((d) => d.toJS() as KubeObject);
    t.deepEqual(objects, rbacObjects(role, { subject: { kind: 'User', name: USERS[role] } }));
  }
  const scoped = await runCli(['rbac', '--role', 'consumer', '--service-account', 'ops/deployer', '-n', 'shop,web']);
  t.is(scoped.code, 0, scoped.stderr);
  const bindings = YAML.parseAllDocuments(scoped.stdout).map((d) => d.toJS() as KubeObject).filter((o) => o.kind.endsWith('Binding'));
  t.deepEqual(bindings.filter((o) => o.metadata.name.endsWith('-apps')).map((o) => `${o.kind} ${o.metadata.namespace}`), ['RoleBinding shop', 'RoleBinding web']);
  t.deepEqual((bindings[0] as unknown as { subjects: unknown[] }).subjects, [{ kind: 'ServiceAccount', name: 'deployer', namespace: 'ops' }]);
  const none = await runCli(['rbac', '--role', 'viewer']);
  t.is(none.code, 2);
  t.regex(none.stderr, /say whom the role is for: --user, --group or --service-account/);
});

test.serial('the viewer role has no rule about Secrets at all: the certificates it shows are published without their keys', (t) => {
  t.deepEqual(RBAC_RULES.viewer.filter((rule) => rule.resources.some((r) => r === 'secrets' || r.startsWith('secrets/') || r === '*')), []);
  const printed = rbacObjects('viewer', { subject: { kind: 'User', name: USERS.viewer } });
  const rules = printed.flatMap((o) => ((o as unknown as { rules?: Array<{ resources: string[] }> }).rules ?? []));
  t.true(rules.length > 0);
  t.false(rules.some((rule) => rule.resources.includes('secrets')), 'no printed ClusterRole of the viewer names secrets');
  // The operators' roles still list Secrets (as metadata) in meshfed's namespaces: their commands write them.
  for (const role of ['provider', 'consumer'] as const) t.true(RBAC_RULES[role].some((rule) => rule.resources.includes('secrets') && rule.verbs.includes('list')));
});

/** One test per rule: the role without it, the commands that need it fail before writing and say what is missing. */
function removalTests(role: RbacRole, commands: string[][], app: string[], cluster: () => EmulatedCluster[]): void {
  RBAC_RULES[role].forEach((rule, index) => {
    if (rule.when) return;
    test.serial(`${role} without rule ${index} (${describeRule(rule)}): ${commands.map((c) => c[0]).join(', ')} fail before writing and name it`, async (t) => {
      const without = RBAC_RULES[role].filter((_, i) => i !== index);
      // The application rules bound in the scenario's namespaces only: bound cluster-wide, they would also grant what
      // other rules grant in meshfed's and Istio's namespaces.
      for (const c of cluster()) await bind(c, role, without, app);
      const before = fed.world.clusters.map(store);
      const results = [];
      for (const args of commands) results.push(await as(role, args));
      const failed = results.filter((r) => r.code !== 0);
      t.true(failed.length > 0, `some command needs the rule:\n${results.map((r) => r.stderr).join('\n')}`);
      t.true(failed.some((r) => namesRule(rule, namespacesOf(rule, app)).test(r.stderr)), `the message names the rule (${namesRule(rule, namespacesOf(rule, app))}):\n${failed.map((r) => r.stderr).join('\n')}`);
      for (const r of results) t.deepEqual(r.writes, [], 'nothing was sent');
      t.deepEqual(fed.world.clusters.map(store), before, 'nothing was written');
    });
  });
}

removalTests('provider', [EXPORT], ['bookinfo'], () => [fed.world.cluster('cluster2')]);

test.serial('provider: export runs as a user bound only to the provider role', async (t) => {
  await bind(fed.world.cluster('cluster2'), 'provider');
  const exported = await as('provider', EXPORT);
  t.is(exported.code, 0, exported.stderr);
});

removalTests('consumer', [IMPORT], ['default'], () => [fed.world.cluster('cluster1')]);

test.serial('consumer: import --from runs as a user bound only to the consumer role (the provider role on the provider)', async (t) => {
  await bind(fed.world.cluster('cluster1'), 'consumer');
  const imported = await as('consumer', IMPORT);
  t.is(imported.code, 0, imported.stderr);
});

removalTests('viewer', [STATUS1, STATUS2, VERIFY], ['default', 'bookinfo'], () => [fed.world.cluster('cluster1'), fed.world.cluster('cluster2')]);

test.serial('every command runs as a user bound only to its role', async (t) => {
  for (const cluster of fed.world.clusters) await bind(cluster, 'viewer');
  const steps: Array<[RbacRole | 'admit', string[]]> = [
    ['viewer', STATUS1],
    ['viewer', STATUS2],
    ['viewer', VERIFY],
    ['viewer', [...VERIFY, '--no-probe']],
    ['provider', ['export', '--context', 'cluster2', '-n', 'bookinfo', '--service', 'myreviews', '--port', 'http', '--name', 'reviews-b']],
    ['consumer', ['import', '--context', 'cluster1', '-n', 'default', '--from', 'cluster2', '--export', 'bookinfo/reviews-b', '--request-out', join(dir, 'request.yaml')]],
    ['admit', ['admit', '--context', 'cluster2', '--request', join(dir, 'request.yaml'), '--bundle-out', join(dir, 'bundle.yaml')]],
    ['consumer', ['import', '--context', 'cluster1', '-n', 'default', '--bundle', join(dir, 'bundle.yaml'), '--name', 'myreviews-b']],
    ['viewer', ['verify', '--context', 'cluster1', '-n', 'default', '--name', 'myreviews-b', '--from', 'cluster2']],
    ['consumer', ['unimport', '--context', 'cluster1', '-n', 'default', '--name', 'myreviews']],
    ['provider', ['revoke', '--context', 'cluster2', '-n', 'bookinfo', '--name', 'reviews', '--consumer', 'cluster1']],
    ['provider', ['unexport', '--context', 'cluster2', '-n', 'bookinfo', '--name', 'reviews']],
    ['consumer', ['unimport', '--context', 'cluster1', '-n', 'default', '--name', 'myreviews-b']],
    ['provider', ['revoke', '--context', 'cluster2', '-n', 'bookinfo', '--name', 'reviews-b', '--consumer', 'cluster1']],
    ['provider', ['unexport', '--context', 'cluster2', '-n', 'bookinfo', '--name', 'reviews-b']],
    ['viewer', STATUS1],
    ['viewer', STATUS2],
  ];
  const marks = new Map(fed.world.clusters.map((c) => [c.name, c.requests.length]));
  for (const [role, args] of steps) {
    const result = await as(role, args);
    t.is(result.code, 0, `${role}: kubectl meshfed ${args.join(' ')}\n${result.stderr}`);
    // status and verify as the viewer: every check on the certificates runs from what is published.
    if (role === 'viewer' && args[0] === 'verify') t.notRegex(result.stdout, /not readable with these permissions and no ConfigMap/);
  }
  // The viewer read no Secret: none was answered to it, not even as a list of names (its lists are refused, and said so).
  const viewerSecrets = fed.world.clusters.flatMap((c) => c.requests.slice(marks.get(c.name)))
    .filter((r) => r.user === USERS.viewer && /\/secrets(\/|$)/.test(r.path) && r.status >= 200 && r.status < 300);
  t.deepEqual(viewerSecrets.map((r) => `${r.method} ${r.path}`), []);
  writeFileSync(join(dir, 'done'), '');
});
