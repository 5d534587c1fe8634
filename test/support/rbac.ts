/**
 * RBAC objects for tests that act as a limited user: a (Cluster)Role with the given rules and its binding to a user,
 * written into an emulated cluster as a cluster admin would apply them.
 */
import { rbacObjects, type RbacRole, type RbacRule } from '../../src/federation/rbac.js';
import type { CliResult } from './cli.js';
import type { EmulatedCluster, KubeObject, PolicyRule, World } from './emulator/index.js';

const RBAC = 'rbac.authorization.k8s.io';

/** A subject of a binding: a user, a group, or a service account (`namespace/name`). */
export type BindingSubject = { user: string } | { group: string } | { serviceAccount: string };

export function subjectOf(who: BindingSubject): Record<string, string> {
  if ('user' in who) return { apiGroup: RBAC, kind: 'User', name: who.user };
  if ('group' in who) return { apiGroup: RBAC, kind: 'Group', name: who.group };
  const [namespace, name] = who.serviceAccount.split('/') as [string, string];
  return { kind: 'ServiceAccount', namespace, name };
}

/**
 * Grants `rules` to `who`: with `namespace`, a Role and a RoleBinding there; without, a ClusterRole and a
 * ClusterRoleBinding. Returns the objects written.
 */
export function grant(cluster: EmulatedCluster, name: string, who: BindingSubject, rules: PolicyRule[], namespace?: string): KubeObject[] {
  const objects: KubeObject[] = namespace
    ? [
      { apiVersion: `${RBAC}/v1`, kind: 'Role', metadata: { name, namespace }, rules } as KubeObject,
      { apiVersion: `${RBAC}/v1`, kind: 'RoleBinding', metadata: { name, namespace }, roleRef: { apiGroup: RBAC, kind: 'Role', name }, subjects: [subjectOf(who)] } as KubeObject,
    ]
    : [
      { apiVersion: `${RBAC}/v1`, kind: 'ClusterRole', metadata: { name }, rules } as KubeObject,
      { apiVersion: `${RBAC}/v1`, kind: 'ClusterRoleBinding', metadata: { name }, roleRef: { apiGroup: RBAC, kind: 'ClusterRole', name }, subjects: [subjectOf(who)] } as KubeObject,
    ];
  for (const object of objects) cluster.apply(object, 'test-rbac');
  return objects;
}

/** Binds meshfed's documented `role` to `user` in `cluster` with exactly `rules` (the role's by default), replacing an earlier binding of the role. */
export async function bindRole(world: World, cluster: EmulatedCluster, role: RbacRole, user: string, options: { rules?: readonly RbacRule[]; namespaces?: string[] } = {}): Promise<void> {
  for (const kind of ['ClusterRoleBinding', 'RoleBinding', 'ClusterRole']) {
    for (const o of cluster.list(`${RBAC}/v1`, kind)) {
      if (o.metadata.labels?.['meshfed.io/rbac-role'] === role) cluster.delete(`${RBAC}/v1`, kind, o.metadata.namespace, o.metadata.name);
    }
  }
  for (const object of rbacObjects(role, { subject: { kind: 'User', name: user }, ...(options.rules ? { rules: options.rules } : {}), ...(options.namespaces ? { namespaces: options.namespaces } : {}) })) {
    if (object.kind === 'Namespace' && cluster.get('v1', 'Namespace', undefined, object.metadata.name)) continue;
    // Bindings for the scenario's application namespaces that this cluster does not have.
    if (object.kind === 'RoleBinding' && !cluster.get('v1', 'Namespace', undefined, object.metadata.namespace!)) continue;
    cluster.apply(object, 'cluster-admin');
  }
  // A new namespace gets its service account and root CA ConfigMap from controllers: let them finish.
  await world.waitIdle();
}

const WRITES = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

/** Runs meshfed with `run`; also returns the writes the world's clusters received from it (access reviews and dry runs write nothing). */
export async function withWrites(world: World, run: () => Promise<CliResult>): Promise<CliResult & { writes: string[] }> {
  const marks = new Map(world.clusters.map((c) => [c.name, c.requests.length]));
  const result = await run();
  const writes = world.clusters.flatMap((c) => c.requests.slice(marks.get(c.name))
    .filter((r) => r.userAgent?.startsWith('kubectl-meshfed') && WRITES.has(r.method) && !r.path.endsWith('/selfsubjectaccessreviews') && r.query.dryRun === undefined)
    .map((r) => `${c.name} ${r.method} ${r.path}`));
  return { ...result, writes };
}

/**
 * A message naming one of the rule's verbs and resources, and where: in one of `namespaces` (any namespace when not
 * given), or cluster-wide. A cluster-wide rule also grants what a command reads in one namespace (istiod's Deployment
 * in Istio's), so a message may name that namespace.
 */
export function namesRule(rule: RbacRule, namespaces?: string[]): RegExp {
  const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const resources = rule.resources.map((r) => {
    const [plural, sub] = r.split('/');
    return escape(`${plural}${rule.apiGroups[0] ? `.${rule.apiGroups[0]}` : ''}${sub ? `/${sub}` : ''}`);
  });
  const where = rule.scope === 'cluster' || !namespaces
    ? '(?:\\(cluster-wide\\)|in namespace "[^"]+")'
    : `in namespace "(?:${namespaces.map(escape).join('|')})"`;
  return new RegExp(`(?:${rule.verbs.join('|')}) (?:${resources.join('|')})(?: "[^"]+")? ${where}`);
}

/** A rule in a test's title. */
export function describeRule(rule: RbacRule): string {
  return `${rule.scope}: ${rule.verbs.join(',')} ${rule.resources.join(',')}${rule.apiGroups[0] ? `.${rule.apiGroups[0]}` : ''}`;
}
