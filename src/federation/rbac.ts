/**
 * The least privilege meshfed needs, as data: per role (provider operator, consumer operator, viewer of `status` and
 * `verify`), the RBAC rules each command of that role uses, and where they apply. `kubectl meshfed rbac` prints
 * them as objects a cluster admin applies (docs/rbac.md); the tests bind users to exactly these objects and run every
 * command with them. A new command adds its rules here, to the roles that run it.
 *
 * Where a rule applies (its scope):
 * - `cluster`: every namespace and cluster-scoped objects (a ClusterRole and a ClusterRoleBinding): meshfed finds its
 *   objects by its label across namespaces, and reads the user's DestinationRules, Gateways and VirtualServices,
 *   which decide how meshfed's own must look;
 * - `home`: meshfed's namespaces, where its gateways, records, certificates and the federation CA live (a ClusterRole
 *   bound by a RoleBinding in each): `istio-meshfed`, `meshfed-ca` on a provider, and the namespace of an existing
 *   gateway chosen with `--gateway-selector`;
 * - `apps`: the namespaces of the exported Services and of the imports (a ClusterRole bound in every namespace, or
 *   in the listed ones only);
 * - `istio`: Istio's namespace (istiod's Deployment, the mesh config, the root CA, mesh-wide Sidecars and policies).
 */
import type { KubeObject } from './model.js';
import { DEFAULT_GATEWAY_NAMESPACE, FEDERATION_CA_NAMESPACE } from './naming.js';

/** The roles meshfed's documentation and `rbac` command know. */
export const RBAC_ROLES = ['provider', 'consumer', 'viewer'] as const;
export type RbacRole = (typeof RBAC_ROLES)[number];

/** Where a rule applies; see the module comment. */
export type RbacScope = 'cluster' | 'home' | 'apps' | 'istio';

/** One RBAC rule of a role, with the reason meshfed needs it. */
export interface RbacRule {
  scope: RbacScope;
  apiGroups: string[];
  resources: string[];
  verbs: string[];
  /** Only these objects (cluster-scoped Namespaces meshfed creates). */
  resourceNames?: string[];
  /** Only `verify`'s probe pod needs it (left out with `--no-probe`). */
  probe?: boolean;
  /** Only needed in this case (a mode or flag), which the role's usual commands may not meet. */
  when?: string;
  why: string;
}

const CORE = '';
const APPS = 'apps';
const RBAC = 'rbac.authorization.k8s.io';
const NETWORKING = 'networking.istio.io';
const SECURITY = 'security.istio.io';

/** What every role reads (`status` included): meshfed's objects and the mesh's facts. */
const COMMON_READS: RbacRule[] = [
  {
    scope: 'cluster', apiGroups: [CORE], resources: ['namespaces', 'serviceaccounts', 'configmaps', 'services'], verbs: ['list'],
    why: 'meshfed\'s objects, found by its label in every namespace',
  },
  {
    scope: 'cluster', apiGroups: [APPS], resources: ['deployments'], verbs: ['list'],
    why: 'meshfed\'s gateway Deployments by its label, and istiod\'s (the Istio version) in Istio\'s namespace',
  },
  { scope: 'cluster', apiGroups: [RBAC], resources: ['roles', 'rolebindings'], verbs: ['list'], why: 'the gateways\' Roles, by meshfed\'s label' },
  {
    scope: 'cluster', apiGroups: [NETWORKING], resources: ['gateways', 'virtualservices', 'destinationrules', 'serviceentries'], verbs: ['list'],
    why: 'meshfed\'s routes by its label; the user\'s DestinationRules, Gateways and VirtualServices, which meshfed\'s must agree with',
  },
  {
    scope: 'cluster', apiGroups: [SECURITY], resources: ['authorizationpolicies'], verbs: ['list'],
    why: 'meshfed\'s policies by its label; for verify, the policies that decide who may call the exported Service and its gateway',
  },
  { scope: 'istio', apiGroups: [CORE], resources: ['configmaps'], verbs: ['get'], why: 'the mesh config (trust domain, root namespace) and the root CA' },
  { scope: 'istio', apiGroups: [NETWORKING], resources: ['sidecars'], verbs: ['list'], why: 'the mesh-wide default Sidecar' },
];

/** What export and import read besides: the applications involved, and each planned object by name (the diff). */
const OPERATOR_READS: RbacRule[] = [
  {
    scope: 'home', apiGroups: [CORE], resources: ['secrets'], verbs: ['list'],
    why: 'which certificates, keys and CA meshfed keeps, listed as metadata only (Secrets are read in meshfed\'s namespaces only)',
  },
  { scope: 'apps', apiGroups: [CORE], resources: ['services', 'pods'], verbs: ['list'], why: 'the exported Service and its pods; the calling apps of an import' },
  { scope: 'apps', apiGroups: [NETWORKING], resources: ['virtualservices', 'sidecars'], verbs: ['list'], why: 'the user\'s routes and Sidecar scopes in the namespaces involved' },
  {
    scope: 'home', apiGroups: [CORE], resources: ['configmaps', 'secrets', 'services', 'serviceaccounts'], verbs: ['get'],
    why: 'each object of the plan, read by name before it is written (what changes)',
  },
  { scope: 'home', apiGroups: [APPS], resources: ['deployments'], verbs: ['get', 'list', 'watch'], why: 'the gateway Deployment, and waiting for it to be ready' },
  { scope: 'home', apiGroups: [RBAC], resources: ['roles', 'rolebindings'], verbs: ['get'], why: 'the gateway\'s Role, read by name before it is written' },
];

/** What verify reads besides, on both sides: the namespaces involved, their workloads and the policies in force. */
const VERIFY_READS: RbacRule[] = [
  { scope: 'cluster', apiGroups: [CORE], resources: ['namespaces'], verbs: ['get'], why: 'the namespaces involved (sidecar injection)' },
  { scope: 'apps', apiGroups: [CORE], resources: ['services', 'pods', 'serviceaccounts'], verbs: ['list'], why: 'the exported and calling workloads and their service accounts' },
  { scope: 'apps', apiGroups: [NETWORKING], resources: ['sidecars'], verbs: ['list'], why: 'Sidecar scopes of the import\'s namespace' },
  { scope: 'home', apiGroups: [CORE], resources: ['services', 'pods'], verbs: ['list'], why: 'the federation gateways and their pods' },
  // No Secret: the gateways' certificates and the federation CA's are published without their keys in ConfigMaps
  // (`<secret>.crt`, `meshfed-federation-ca.crt`), which the cluster-wide `list configmaps` reads.
];

const WRITE = ['create', 'patch', 'delete'];

/** Writes in meshfed's namespaces: gateways, records, certificates, routes and policies (server-side apply, prune). */
function homeWrites(networking: string[]): RbacRule[] {
  return [
    {
      scope: 'home', apiGroups: [CORE], resources: ['configmaps', 'secrets', 'services', 'serviceaccounts'], verbs: WRITE,
      why: 'records, certificates (and on a provider the federation CA), the gateway\'s Service and service account',
    },
    { scope: 'home', apiGroups: [APPS], resources: ['deployments'], verbs: WRITE, why: 'the gateway Deployment' },
    { scope: 'home', apiGroups: [RBAC], resources: ['roles', 'rolebindings'], verbs: WRITE, why: 'the gateway\'s Role (reading its certificates)' },
    { scope: 'home', apiGroups: [NETWORKING], resources: networking, verbs: ['get', ...WRITE], why: 'gateway servers and routes' },
    { scope: 'home', apiGroups: [SECURITY], resources: ['authorizationpolicies'], verbs: ['get', ...WRITE], why: 'who the gateway admits' },
  ];
}

/** The rules of each role. */
export const RBAC_RULES: Readonly<Record<RbacRole, readonly RbacRule[]>> = {
  provider: [
    ...COMMON_READS,
    ...OPERATOR_READS,
    ...homeWrites(['gateways', 'virtualservices', 'destinationrules']),
    {
      scope: 'cluster', apiGroups: [CORE], resources: ['namespaces'], verbs: ['get'], resourceNames: [DEFAULT_GATEWAY_NAMESPACE, FEDERATION_CA_NAMESPACE],
      why: 'meshfed\'s own namespaces, which the cluster admin creates with the role (meshfed never changes a namespace it did not create)',
    },
    {
      scope: 'apps', apiGroups: [SECURITY], resources: ['authorizationpolicies'], verbs: ['get', ...WRITE], when: 'shared-root mode',
      why: 'shared-root mode: the policy that guards the exported workload',
    },
  ],
  consumer: [
    ...COMMON_READS,
    ...OPERATOR_READS,
    {
      scope: 'cluster', apiGroups: [CORE], resources: ['namespaces'], verbs: ['get'],
      why: 'whether the import\'s namespace exists; meshfed\'s own, which the cluster admin creates with the role',
    },
    { scope: 'home', apiGroups: [CORE], resources: ['pods'], verbs: ['list'], why: 'whether the egress gateway runs' },
    ...homeWrites(['gateways', 'virtualservices', 'destinationrules', 'serviceentries']),
    { scope: 'apps', apiGroups: [CORE], resources: ['services'], verbs: ['get', ...WRITE], why: 'the import\'s local Service' },
    {
      scope: 'apps', apiGroups: [NETWORKING], resources: ['serviceentries', 'destinationrules', 'virtualservices'], verbs: ['get', ...WRITE],
      why: 'the import\'s routes, and attaching it to one of the namespace\'s Services (--attach)',
    },
  ],
  viewer: [
    ...COMMON_READS,
    ...VERIFY_READS,
    { scope: 'apps', apiGroups: [CORE], resources: ['pods'], verbs: ['create', 'delete', 'watch'], probe: true, why: 'verify\'s probe pod (none with --no-probe)' },
    { scope: 'apps', apiGroups: [CORE], resources: ['pods/log'], verbs: ['get'], probe: true, why: 'what verify\'s probe pod saw' },
  ],
};

/** Who the printed bindings bind. */
export type RbacSubject = { kind: 'User' | 'Group'; name: string } | { kind: 'ServiceAccount'; name: string; namespace: string };

/** Options of {@link rbacObjects}. */
export interface RbacOptions {
  subject: RbacSubject;
  /** Bind the `apps` rules in these namespaces only; default every namespace. */
  namespaces?: readonly string[];
  /** Istio's namespace; default `istio-system`. */
  istioNamespace?: string;
  /** The namespace of an existing gateway (`--gateway-namespace` with `--gateway-selector`), also meshfed's then. */
  gatewayNamespace?: string;
  /** Leave out the probe pod's rules (viewer: `verify --no-probe` only). */
  noProbe?: boolean;
  /** These rules instead of the role's (tests take one out). */
  rules?: readonly RbacRule[];
}

/** The rules of `role` for the given options (probe rules left out with `noProbe`). */
export function rulesOf(role: RbacRole, options: Pick<RbacOptions, 'noProbe'> = {}): RbacRule[] {
  return RBAC_RULES[role].filter((rule) => !(options.noProbe && rule.probe));
}

/** meshfed's namespaces for a role: where its `home` rules are bound. */
export function homeNamespaces(role: RbacRole, options: Pick<RbacOptions, 'gatewayNamespace'> = {}): string[] {
  // The federation CA's namespace holds its key: the provider's alone (the viewer reads the CA's certificates from
  // their ConfigMap in meshfed's namespace).
  const own = role === 'provider' ? [DEFAULT_GATEWAY_NAMESPACE, FEDERATION_CA_NAMESPACE] : [DEFAULT_GATEWAY_NAMESPACE];
  return [...new Set([...own, ...(options.gatewayNamespace ? [options.gatewayNamespace] : [])])];
}

/** A DNS-label form of a subject, for binding names. */
function slug(subject: RbacSubject): string {
  const text = subject.kind === 'ServiceAccount' ? `sa-${subject.namespace}-${subject.name}` : `${subject.kind.toLowerCase()}-${subject.name}`;
  return text.toLowerCase().replace(/[^a-z0-9-]+/g, '-').replace(/-+/g, '-').replace(/^-|-$/g, '').slice(0, 200);
}

/**
 * The objects a cluster admin applies to give `subject` the role: the Namespaces the bindings need (meshfed's own,
 * which meshfed would otherwise create), one ClusterRole per scope the role uses, and its bindings.
 */
export function rbacObjects(role: RbacRole, options: RbacOptions): KubeObject[] {
  const rules = options.rules ?? rulesOf(role, options);
  const labels = { 'meshfed.io/rbac-role': role };
  const subject = options.subject.kind === 'ServiceAccount'
    ? { kind: 'ServiceAccount', name: options.subject.name, namespace: options.subject.namespace }
    : { apiGroup: RBAC, kind: options.subject.kind, name: options.subject.name };
  const homes = homeNamespaces(role, options);
  const objects: KubeObject[] = homes.map((name) => ({ apiVersion: 'v1', kind: 'Namespace', metadata: { name } }));
  const bindingName = `meshfed-${role}-${slug(options.subject)}`;
  for (const scope of ['cluster', 'home', 'apps', 'istio'] as const) {
    const scoped = rules.filter((rule) => rule.scope === scope);
    if (!scoped.length) continue;
    const roleName = scope === 'cluster' ? `meshfed-${role}` : `meshfed-${role}-${scope}`;
    objects.push({
      apiVersion: `${RBAC}/v1`, kind: 'ClusterRole', metadata: { name: roleName, labels },
      rules: scoped.map((rule) => ({ apiGroups: rule.apiGroups, resources: rule.resources, ...(rule.resourceNames ? { resourceNames: rule.resourceNames } : {}), verbs: rule.verbs })),
    });
    const roleRef = { apiGroup: RBAC, kind: 'ClusterRole', name: roleName };
    const bindIn = scope === 'home' ? homes : scope === 'istio' ? [options.istioNamespace ?? 'istio-system'] : scope === 'apps' && options.namespaces?.length ? [...new Set(options.namespaces)] : [];
    if (scope === 'cluster' || (scope === 'apps' && !options.namespaces?.length)) {
      objects.push({ apiVersion: `${RBAC}/v1`, kind: 'ClusterRoleBinding', metadata: { name: scope === 'cluster' ? bindingName : `${bindingName}-${scope}`, labels }, roleRef, subjects: [subject] });
    }
    for (const namespace of bindIn) {
      objects.push({ apiVersion: `${RBAC}/v1`, kind: 'RoleBinding', metadata: { name: `${bindingName}-${scope}`, namespace, labels }, roleRef, subjects: [subject] });
    }
  }
  return objects;
}
