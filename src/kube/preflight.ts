/**
 * The permissions preflight: before the first write of a command, one SelfSubjectAccessReview per (verb, resource,
 * namespace) the plan needs, in every cluster the command writes to, all in parallel. Missing permissions are
 * reported together, with the RBAC rules that grant them, and nothing is written; without the preflight the first
 * forbidden write would stop a half-applied plan.
 *
 * What a plan needs follows what the apply step sends (src/kube/apply.ts): a new object is created (`create`: a POST,
 * or a server-side apply, a PATCH that creates, for which the API server also checks `create`: kubernetes
 * `staging/src/k8s.io/apiserver/pkg/endpoints/handlers/patch.go`, `PatchResource`: the patcher's `createValidation` is
 * wrapped in `withAuthorization` with verb "create") and its field ownership handed over (`patch`); a changed object
 * is patched (`patch`: a JSON patch with a resourceVersion precondition, or a server-side apply); objects the plan removes or
 * prunes are deleted one by one (`delete`). The reads the plan was computed from (lists by label, the diff's reads
 * by name) ran before this check, so a missing read permission has already stopped the command before any write.
 */
import { ClusterError } from '../errors.js';
import type { Change } from './apply.js';
import type { KubeClient } from './client.js';
import { groupOf, type KubeObject, type ResourceMapper } from './resources.js';

/** One cluster a command is about to write to: the diffed changes and the objects to delete. */
export interface PreflightTarget {
  writer: { client: KubeClient; mapper: ResourceMapper; contextName: string };
  changes?: readonly Change[];
  deletions: readonly KubeObject[];
}

/** One permission a plan needs. */
export interface Permission {
  verb: string;
  /** API group, '' for the core group. */
  group: string;
  /** Plural resource name. */
  resource: string;
  /** Undefined for cluster-scoped resources. */
  namespace: string | undefined;
  /**
   * The object, for cluster-scoped resources: a cluster admin may grant them by name (`resourceNames`, as meshfed's
   * documented roles do for its own Namespaces), and the API server authorizes a write with the object's name.
   */
  name?: string;
}

/** A permission the user lacks in one context. */
export interface MissingPermission extends Permission {
  context: string;
  user: string;
}

/** What the preflight did. */
export interface PreflightReport {
  /** SelfSubjectAccessReviews sent, all clusters together. */
  reviews: number;
  /**
   * Contexts whose API server does not serve SelfSubjectAccessReviews or whose user may not ask them: not checked
   * (their writes say what is missing). A server that fails to answer stops the command instead.
   */
  skipped: string[];
}

/** The order verbs are listed in, in messages and rules. */
const VERB_ORDER = ['get', 'list', 'watch', 'create', 'patch', 'update', 'delete'];

/** The permissions one cluster's writes need, deduplicated. */
export async function neededPermissions(target: PreflightTarget): Promise<Permission[]> {
  const needs = new Map<string, Permission>();
  const add = async (object: KubeObject, verbs: string[]) => {
    const info = await target.writer.mapper.info(object.apiVersion, object.kind);
    const namespace = info.namespaced ? object.metadata.namespace : undefined;
    const name = info.namespaced ? undefined : object.metadata.name;
    for (const verb of verbs) {
      const permission = { verb, group: groupOf(object.apiVersion), resource: info.plural, namespace, ...(name !== undefined ? { name } : {}) };
      needs.set(`${verb}/${permission.group}/${permission.resource}/${namespace ?? ''}/${name ?? ''}`, permission);
    }
  };
  for (const change of target.changes ?? []) {
    if (change.action === 'create') await add(change.object, ['create', 'patch']);
    else if (change.action === 'update') await add(change.object, ['patch']);
  }
  for (const object of target.deletions) await add(object, ['delete']);
  // What the command reads once it has applied, checked now so that a missing read does not stop it half-way: it
  // reads the gateway Deployment of the plan and, when that changes, waits for it to be ready (list and watch); an
  // import lists the pods of its egress gateway (src/commands/shared.ts waitForGatewayReady, src/commands/import.ts).
  const changes = target.changes ?? [];
  const writes = (change: Change) => change.action === 'create' || change.action === 'update';
  if (changes.some(writes)) {
    for (const change of changes) {
      if (change.object.kind === 'Deployment') await add(change.object, writes(change) ? ['get', 'list', 'watch'] : ['get']);
      if (change.object.kind === 'Gateway' && change.object.metadata.labels?.['meshfed.io/role'] === 'binding') {
        await add({ apiVersion: 'v1', kind: 'Pod', metadata: { name: '', namespace: change.object.metadata.namespace! } }, ['list']);
      }
    }
  }
  return [...needs.values()];
}

/**
 * Checks every target's permissions (all reviews in parallel) and throws one error listing everything missing.
 * @throws ClusterError when any permission is missing; nothing has been written then
 */
export async function preflightPermissions(targets: readonly PreflightTarget[]): Promise<PreflightReport> {
  return checkPermissions(await Promise.all(targets.map(async (target) => ({
    client: target.writer.client, contextName: target.writer.contextName, permissions: await neededPermissions(target),
  }))));
}

/**
 * Asks the API server of each context whether its user has the given permissions (all reviews in parallel): the
 * preflight of a step that writes something other than a plan (verify's probe pod).
 * @throws ClusterError when any permission is missing; nothing has been written then
 */
export async function checkPermissions(targets: ReadonlyArray<{ client: KubeClient; contextName: string; permissions: readonly Permission[] }>): Promise<PreflightReport> {
  const report: PreflightReport = { reviews: 0, skipped: [] };
  const missing: MissingPermission[] = [];
  await Promise.all(targets.map(async ({ client, contextName, permissions: needs }) => {
    if (needs.length === 0) return;
    report.reviews += needs.length;
    const answers = await Promise.all(needs.map((permission) => review(client, permission)));
    if (answers.includes(undefined)) {
      report.skipped.push(`context "${contextName}"`);
      return;
    }
    needs.forEach((permission, index) => {
      if (answers[index] === false) missing.push({ ...permission, context: contextName, user: client.context.userName });
    });
  }));
  if (missing.length) throw missingPermissionsError(missing);
  return report;
}

/**
 * Whether the user may do it; undefined when the server does not serve the question or the user may not ask it
 * (then nothing is known, and the writes say what is missing).
 * @throws ClusterError when the server keeps failing to answer (the client retried 429, 5xx and connection errors):
 * a cluster that cannot answer a question is not written to
 */
async function review(client: KubeClient, permission: Permission): Promise<boolean | undefined> {
  try {
    const { body } = await client.request<{ status?: { allowed?: boolean } }>({
      method: 'POST',
      path: '/apis/authorization.k8s.io/v1/selfsubjectaccessreviews',
      body: {
        apiVersion: 'authorization.k8s.io/v1',
        kind: 'SelfSubjectAccessReview',
        spec: {
          resourceAttributes: {
            // `pods/log`: the resource and its subresource are separate attributes of a review.
            verb: permission.verb, group: permission.group, resource: permission.resource.split('/')[0],
            ...(permission.resource.includes('/') ? { subresource: permission.resource.split('/').slice(1).join('/') } : {}),
            ...(permission.namespace ? { namespace: permission.namespace } : {}), ...(permission.name ? { name: permission.name } : {}),
          },
        },
      },
    });
    return body.status?.allowed === true;
  } catch (error) {
    // An API server that does not serve the review, or a user that may not ask (every authenticated user may,
    // through the system:basic-user ClusterRole, unless an admin took it away): the writes will say what is missing.
    if (error instanceof ClusterError && (error.status === 403 || error.status === 404)) return undefined;
    if (error instanceof ClusterError && error.status !== 401) throw unanswered(client.context.name, error);
    throw error;
  }
}

/** The preflight could not get an answer from a cluster (after the client's retries): nothing has been written. */
function unanswered(context: string, error: ClusterError): ClusterError {
  return new ClusterError(`could not check permissions in context "${context}" before writing (SelfSubjectAccessReview): ${error.message}; nothing was written`, {
    ...(error.status !== undefined ? { status: error.status } : {}), ...(error.reason ? { reason: error.reason } : {}), cause: error,
    hint: error.hint ?? `check that the API server of context "${context}" is healthy, then run the command again`,
  });
}

function resourceName(permission: Permission): string {
  return permission.group ? `${permission.resource}.${permission.group}` : permission.resource;
}

function byVerb(a: string, b: string): number {
  return VERB_ORDER.indexOf(a) - VERB_ORDER.indexOf(b);
}

/** The error: every missing permission, then the RBAC rules to add, per context and namespace. */
export function missingPermissionsError(missing: readonly MissingPermission[]): ClusterError {
  const sorted = [...missing].sort((a, b) => a.context.localeCompare(b.context) || (a.namespace ?? '').localeCompare(b.namespace ?? '')
    || resourceName(a).localeCompare(resourceName(b)) || byVerb(a.verb, b.verb));
  const lines = sorted.map((m) => `  - ${m.verb} ${resourceName(m)}${m.name ? ` "${m.name}"` : ''}${m.namespace ? ` in namespace "${m.namespace}"` : ' (cluster-wide)'} (context "${m.context}", user "${m.user}")`);
  // One Role (or ClusterRole) per context and namespace; one rule per API group and set of verbs.
  const scopes = new Map<string, MissingPermission[]>();
  for (const m of sorted) {
    const key = `${m.context}\u0000${m.namespace ?? ''}`;
    scopes.set(key, [...(scopes.get(key) ?? []), m]);
  }
  const rules: string[] = [];
  for (const permissions of scopes.values()) {
    const first = permissions[0]!;
    rules.push(first.namespace
      ? `context "${first.context}": a Role in namespace ${first.namespace}, bound to user "${first.user}", with`
      : `context "${first.context}": a ClusterRole, bound to user "${first.user}", with`);
    const grouped = new Map<string, { group: string; resources: Set<string>; names: Set<string>; verbs: Set<string> }>();
    for (const m of permissions) {
      const verbsOf = [...new Set(permissions.filter((p) => p.group === m.group && p.resource === m.resource).map((p) => p.verb))].sort(byVerb).join(',');
      const key = `${m.group}\u0000${verbsOf}`;
      const rule = grouped.get(key) ?? { group: m.group, resources: new Set<string>(), names: new Set<string>(), verbs: new Set(verbsOf.split(',')) };
      rule.resources.add(m.resource);
      if (m.name) rule.names.add(m.name);
      grouped.set(key, rule);
    }
    for (const rule of grouped.values()) {
      rules.push(`  - apiGroups: ["${rule.group}"]`, `    resources: [${[...rule.resources].sort().map((r) => `"${r}"`).join(', ')}]`);
      if (rule.names.size) rules.push(`    resourceNames: [${[...rule.names].sort().map((n) => `"${n}"`).join(', ')}]`);
      rules.push(`    verbs: [${[...rule.verbs].map((v) => `"${v}"`).join(', ')}]`);
    }
  }
  const contexts = [...new Set(sorted.map((m) => m.context))];
  return new ClusterError(
    `missing permission${missing.length > 1 ? 's' : ''} in ${contexts.map((c) => `context "${c}"`).join(' and ')}; nothing was written:\n${lines.join('\n')}`,
    { status: 403, reason: 'Forbidden', hint: `ask a cluster admin to add these RBAC rules, then run the command again:\n${rules.map((line) => `  ${line}`).join('\n')}` },
  );
}
