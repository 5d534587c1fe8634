/**
 * RBAC objects for tests that act as a limited user: a (Cluster)Role with the given rules and its binding to a user,
 * written into an emulated cluster as a cluster admin would apply them.
 */
import type { EmulatedCluster, KubeObject, PolicyRule } from './emulator/index.js';

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
