/**
 * Authorization as kube-apiserver's RBAC authorizer decides it, from the Role, ClusterRole, RoleBinding and
 * ClusterRoleBinding objects stored in the cluster (kubernetes `plugin/pkg/auth/authorizer/rbac/rbac.go`,
 * `RBACAuthorizer.Authorize`, and `pkg/apis/rbac/v1/evaluation_helpers.go`, `RuleAllows`):
 *
 * - a ClusterRoleBinding grants its ClusterRole's rules everywhere (resources of every namespace, cluster-scoped
 *   resources, non-resource URLs);
 * - a RoleBinding grants its Role's (same namespace) or ClusterRole's rules for namespaced requests in its own
 *   namespace only;
 * - subjects are users (by name), groups, and service accounts (user `system:serviceaccount:<ns>:<name>`);
 * - a rule matches a verb (`*` for any), an API group, a resource or `resource/subresource` (`*`, and `*&#47;sub`
 *   for one subresource of every resource), optional resourceNames (which never match a list or a create without
 *   a name), or non-resource URLs (`/path`, `/prefix*`, `*`);
 * - an aggregated ClusterRole (`aggregationRule.clusterRoleSelectors`, matchLabels) has the rules of the
 *   ClusterRoles its selectors match, as the aggregation controller would have copied them.
 *
 * The bootstrap policy every cluster starts with (`bootstrapRbac`) is the part of kube-apiserver's that matters
 * here: `cluster-admin` for group `system:masters`, `system:basic-user` (access reviews about oneself) and
 * `system:discovery`/`system:public-info-viewer` (discovery, version, health) for every authenticated user.
 */
import type { ClusterApi } from './api.js';
import type { KubeObject } from './runtime.js';

/** Who a request is from, after authentication and impersonation. */
export interface Subject {
  user: string;
  groups: string[];
  uid?: string;
  extra?: Record<string, string[]>;
}

/** What a request does, as the authorizer sees it. */
export interface Attributes {
  verb: string;
  /** For resource requests: API group ('' for core), plural resource and optional subresource. */
  group?: string;
  resource?: string;
  subresource?: string;
  namespace?: string;
  name?: string;
  /** For non-resource requests (`/version`, `/apis`…): the path. */
  path?: string;
}

/** One RBAC PolicyRule. */
export interface PolicyRule {
  verbs: string[];
  apiGroups?: string[];
  resources?: string[];
  resourceNames?: string[];
  nonResourceURLs?: string[];
}

interface RoleRef { apiGroup?: string; kind: string; name: string }
interface BindingSubject { kind: string; name: string; namespace?: string; apiGroup?: string }
interface Binding extends KubeObject { roleRef: RoleRef; subjects?: BindingSubject[] }
interface Role extends KubeObject { rules?: PolicyRule[]; aggregationRule?: { clusterRoleSelectors?: Array<{ matchLabels?: Record<string, string> }> } }

const RBAC = 'rbac.authorization.k8s.io';

function has(list: readonly string[] | undefined, value: string): boolean {
  return !!list && (list.includes('*') || list.includes(value));
}

/** `RuleAllows` of kube's evaluation helpers. */
export function ruleAllows(rule: PolicyRule, attrs: Attributes): boolean {
  if (!has(rule.verbs, attrs.verb)) return false;
  if (attrs.path !== undefined) {
    return (rule.nonResourceURLs ?? []).some((url) => url === '*' || url === attrs.path || (url.endsWith('*') && attrs.path!.startsWith(url.slice(0, -1))));
  }
  if (!has(rule.apiGroups, attrs.group ?? '')) return false;
  const combined = attrs.subresource ? `${attrs.resource}/${attrs.subresource}` : attrs.resource ?? '';
  const resourceOk = (rule.resources ?? []).some((r) => r === '*' || r === combined || (!!attrs.subresource && r === `*/${attrs.subresource}`));
  if (!resourceOk) return false;
  if (!rule.resourceNames || rule.resourceNames.length === 0) return true;
  return !!attrs.name && rule.resourceNames.includes(attrs.name);
}

function subjectMatches(s: BindingSubject, who: Subject, bindingNamespace: string | undefined): boolean {
  switch (s.kind) {
    case 'User': return s.name === who.user;
    case 'Group': return who.groups.includes(s.name);
    case 'ServiceAccount': return who.user === `system:serviceaccount:${s.namespace ?? bindingNamespace ?? ''}:${s.name}`;
    default: return false;
  }
}

function read(api: ClusterApi, kind: string, namespace?: string): KubeObject[] {
  return api.list(api.typeOf(RBAC, kind), namespace);
}

function clusterRoleRules(api: ClusterApi, name: string, seen = new Set<string>()): PolicyRule[] {
  if (seen.has(name)) return [];
  seen.add(name);
  const role = api.find(api.typeOf(RBAC, 'ClusterRole'), undefined, name) as Role | undefined;
  if (!role) return [];
  const selectors = role.aggregationRule?.clusterRoleSelectors;
  if (!selectors) return role.rules ?? [];
  const matching = (read(api, 'ClusterRole') as Role[]).filter((other) => other.metadata.name !== name
    && selectors.some((sel) => Object.entries(sel.matchLabels ?? {}).every(([k, v]) => other.metadata.labels?.[k] === v)));
  return [...(role.rules ?? []), ...matching.flatMap((other) => clusterRoleRules(api, other.metadata.name, seen))];
}

function bindingRules(api: ClusterApi, binding: Binding): PolicyRule[] {
  if (binding.roleRef.kind === 'ClusterRole') return clusterRoleRules(api, binding.roleRef.name);
  if (binding.roleRef.kind === 'Role' && binding.metadata.namespace) {
    const role = api.find(api.typeOf(RBAC, 'Role'), binding.metadata.namespace, binding.roleRef.name) as Role | undefined;
    return role?.rules ?? [];
  }
  return [];
}

/** True when the RBAC objects of the cluster allow `who` to do `attrs`. */
export function authorize(api: ClusterApi, who: Subject, attrs: Attributes): boolean {
  const applies = (binding: Binding, namespace: string | undefined): boolean =>
    (binding.subjects ?? []).some((s) => subjectMatches(s, who, namespace)) && bindingRules(api, binding).some((rule) => ruleAllows(rule, attrs));
  if ((read(api, 'ClusterRoleBinding') as Binding[]).some((b) => applies(b, undefined))) return true;
  if (attrs.path !== undefined || !attrs.namespace) return false;
  return (read(api, 'RoleBinding', attrs.namespace) as Binding[]).some((b) => applies(b, attrs.namespace));
}

/** The groups an authenticated user has besides those its credential names (`system:authenticated`, and a service account's). */
export function withImpliedGroups(user: string, groups: readonly string[]): string[] {
  const all = [...groups];
  const sa = /^system:serviceaccount:([^:]+):/.exec(user);
  if (sa) all.push('system:serviceaccounts', `system:serviceaccounts:${sa[1]}`);
  if (!all.includes('system:authenticated')) all.push('system:authenticated');
  return [...new Set(all)];
}

/** The part of kube-apiserver's bootstrap policy (`plugin/pkg/auth/authorizer/rbac/bootstrappolicy/policy.go`) the emulator serves. */
export function bootstrapRbac(): KubeObject[] {
  const bootstrap = { 'kubernetes.io/bootstrapping': 'rbac-defaults' };
  const role = (name: string, rules: PolicyRule[]): KubeObject => ({ apiVersion: `${RBAC}/v1`, kind: 'ClusterRole', metadata: { name, labels: bootstrap }, rules });
  const binding = (name: string, group: string): KubeObject => ({
    apiVersion: `${RBAC}/v1`, kind: 'ClusterRoleBinding', metadata: { name, labels: bootstrap },
    roleRef: { apiGroup: RBAC, kind: 'ClusterRole', name }, subjects: [{ apiGroup: RBAC, kind: 'Group', name: group }],
  });
  return [
    role('cluster-admin', [{ verbs: ['*'], apiGroups: ['*'], resources: ['*'] }, { verbs: ['*'], nonResourceURLs: ['*'] }]),
    binding('cluster-admin', 'system:masters'),
    role('system:basic-user', [{ verbs: ['create'], apiGroups: ['authorization.k8s.io'], resources: ['selfsubjectaccessreviews', 'selfsubjectrulesreviews'] }]),
    binding('system:basic-user', 'system:authenticated'),
    role('system:discovery', [{ verbs: ['get'], nonResourceURLs: ['/api', '/api/*', '/apis', '/apis/*', '/healthz', '/livez', '/openapi', '/openapi/*', '/readyz', '/version', '/version/'] }]),
    binding('system:discovery', 'system:authenticated'),
    role('system:public-info-viewer', [{ verbs: ['get'], nonResourceURLs: ['/healthz', '/livez', '/readyz', '/version', '/version/'] }]),
    binding('system:public-info-viewer', 'system:authenticated'),
  ];
}
