/**
 * Building blocks shared by the planners: object metadata and labels, Secrets, the Istio version rule,
 * gateway placement and deployment objects, and the plan container.
 */
import { FederationInputError } from './errors.js';
import type { ClusterPlan, ClusterSnapshot, GatewayPlacement, KubeObject } from './model.js';
import {
  DEFAULT_GATEWAY_NAMESPACE, FEDERATION_PORT, GATEWAY_NAMES, LABELS, MANAGED_BY, MANAGED_BY_LABEL,
  type GatewayRole, type Role,
} from './naming.js';

/** API versions meshfed emits for Istio kinds: the only ones every Istio release from 1.9 on serves. */
export const API = {
  networking: 'networking.istio.io/v1beta1',
  security: 'security.istio.io/v1beta1',
  operator: 'install.istio.io/v1alpha1',
} as const;

/**
 * Which of meshfed's objects a kind can hold, as the planners label them: `shared` ones carry no export, import or
 * binding label (gateways and their accounts, the federation CA, the cluster identity, the egress routes, subsets,
 * workload guards); `own` ones belong to one export, import or binding (they carry its label). A read scoped to one
 * export or import lists a kind only with the selectors it can match; the planners' tests check every planned object
 * against it.
 */
export type KindHolds = 'shared' | 'own' | 'both';

/** Every kind meshfed may create, with its apiVersion, in dependency (apply) order, and what it holds ({@link KindHolds}). */
export const MANAGED_KINDS: ReadonlyArray<{ apiVersion: string; kind: string; holds: KindHolds }> = [
  { apiVersion: 'v1', kind: 'Namespace', holds: 'shared' },
  { apiVersion: 'v1', kind: 'ServiceAccount', holds: 'shared' },
  { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'Role', holds: 'shared' },
  { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'RoleBinding', holds: 'shared' },
  { apiVersion: 'v1', kind: 'Secret', holds: 'both' },
  { apiVersion: 'v1', kind: 'ConfigMap', holds: 'both' },
  { apiVersion: 'apps/v1', kind: 'Deployment', holds: 'shared' },
  { apiVersion: 'v1', kind: 'Service', holds: 'both' },
  { apiVersion: API.networking, kind: 'ServiceEntry', holds: 'own' },
  { apiVersion: API.networking, kind: 'DestinationRule', holds: 'both' },
  { apiVersion: API.networking, kind: 'Gateway', holds: 'both' },
  { apiVersion: API.networking, kind: 'VirtualService', holds: 'both' },
  { apiVersion: API.security, kind: 'AuthorizationPolicy', holds: 'both' },
];

/** Whether a planned object of meshfed's is one of its `own` objects ({@link KindHolds}): it carries an export, import or binding label. */
export function holdsOwn(o: KubeObject): boolean {
  const labels = o.metadata.labels ?? {};
  return labels[LABELS.export] !== undefined || labels[LABELS.import] !== undefined || labels[LABELS.binding] !== undefined;
}

/** The kinds label-selected pruning considers: every managed kind but Namespace, which is never pruned. */
export const PRUNABLE_KINDS: ReadonlyArray<{ apiVersion: string; kind: string }> = MANAGED_KINDS.filter((k) => k.kind !== 'Namespace').map(({ apiVersion, kind }) => ({ apiVersion, kind }));

const ORDER = new Map(MANAGED_KINDS.map((k, i) => [k.kind, i]));

/** Sorts objects into dependency order (stable within a kind). */
export function inApplyOrder(objects: KubeObject[]): KubeObject[] {
  return objects
    .map((o, i) => ({ o, i }))
    .sort((a, b) => (ORDER.get(a.o.kind) ?? 99) - (ORDER.get(b.o.kind) ?? 99) || a.i - b.i)
    .map(({ o }) => o);
}

/** `Kind/namespace/name`, how plans refer to objects. */
export function objectKey(o: { kind: string; metadata?: { namespace?: string; name: string }; namespace?: string; name?: string }): string {
  const namespace = o.metadata?.namespace ?? o.namespace ?? '';
  return `${o.kind}/${namespace}/${o.metadata?.name ?? o.name}`;
}

/** Labels of a meshfed object: managed-by, role, plus the given ones. */
export function meshfedLabels(role: Role, extra: Record<string, string> = {}): Record<string, string> {
  return { [MANAGED_BY_LABEL]: MANAGED_BY, [LABELS.role]: role, ...extra };
}

/** A fully specified object. */
export function kubeObject(
  apiVersion: string, kind: string, name: string, namespace: string | undefined,
  labels: Record<string, string>, body: Record<string, unknown>,
): KubeObject {
  const metadata: KubeObject['metadata'] = { name, ...(namespace ? { namespace } : {}), labels };
  return { apiVersion, kind, metadata, ...body };
}

/** Secret `data` from text values (base64, as the API stores it; `stringData` does not mix with server-side apply). */
export function secretData(values: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(values).map(([k, v]) => [k, Buffer.from(v, 'utf8').toString('base64')]));
}

/** Text values of a Secret's `data` (or `stringData`). */
export function readSecret(secret: KubeObject | undefined): Record<string, string> | undefined {
  if (!secret) return undefined;
  const data = (secret.data ?? {}) as Record<string, string>;
  const out: Record<string, string> = Object.fromEntries(Object.entries(data).map(([k, v]) => [k, Buffer.from(v, 'base64').toString('utf8')]));
  Object.assign(out, (secret.stringData ?? {}) as Record<string, string>);
  return out;
}

/** Whether an object carries meshfed's managed-by label. */
export function isManaged(o: KubeObject): boolean {
  return o.metadata.labels?.[MANAGED_BY_LABEL] === MANAGED_BY;
}

/** Finds an object of a snapshot by kind, namespace and name. */
export function findObject(snapshot: ClusterSnapshot, kind: string, namespace: string | undefined, name: string): KubeObject | undefined {
  return findObjectIn(snapshot.existing, kind, namespace, name);
}

/** Finds an object among `objects` by kind, namespace and name. */
export function findObjectIn(objects: readonly KubeObject[], kind: string, namespace: string | undefined, name: string): KubeObject | undefined {
  return objects.find((o) => o.kind === kind && o.metadata.name === name && (o.metadata.namespace ?? undefined) === namespace);
}

/**
 * Refuses to plan an object whose name is taken by an object meshfed does not manage: it would be
 * overwritten by the apply.
 */
export function checkNotForeign(snapshot: ClusterSnapshot, objects: KubeObject[]): void {
  for (const o of objects) {
    if (o.kind === 'Namespace') continue;
    const existing = findObject(snapshot, o.kind, o.metadata.namespace, o.metadata.name);
    if (existing && !isManaged(existing)) {
      throw new FederationInputError(
        `${o.kind} ${o.metadata.namespace ? `${o.metadata.namespace}/` : ''}${o.metadata.name} already exists and is not managed by kubectl-meshfed; ` +
        'meshfed will not overwrite it: rename or delete it, or choose another name',
      );
    }
  }
}

/** An empty plan for a cluster. */
export function emptyPlan(clusterId: string): ClusterPlan {
  return { clusterId, objects: [], remove: [], prune: [], warnings: [], secretsWithPrivateKeys: [] };
}

/** Puts objects in apply order, drops repeated objects (the first one wins) and de-duplicates warnings. */
export function finishPlan(plan: ClusterPlan): ClusterPlan {
  const seen = new Set<string>();
  plan.objects = inApplyOrder(plan.objects.filter((o) => {
    const key = objectKey(o);
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  }));
  plan.warnings = [...new Set(plan.warnings)];
  plan.secretsWithPrivateKeys = [...new Set(plan.secretsWithPrivateKeys)].sort();
  return plan;
}

/**
 * Major and minor of an Istio version string (`1.18.2`, `v1.9.1`, `1.20.0-beta.1`).
 * @throws FederationInputError when it is not a version
 */
export function istioMinor(version: string): [number, number] {
  const m = /^v?(\d+)\.(\d+)/.exec(version.trim());
  if (!m) throw new FederationInputError(`Istio version "${version}" is not a version number such as 1.18.2; check the Istio installation of the cluster`);
  return [Number(m[1]), Number(m[2])];
}

/** The oldest Istio release meshfed supports: the first that serves every field and API version it writes. */
export const MIN_ISTIO_VERSION = '1.9';

/**
 * Refuses a cluster whose Istio is older than {@link MIN_ISTIO_VERSION}: its CRDs and istiod do not know what
 * meshfed writes (`networking.istio.io/v1beta1` with `credentialName` gateways, `security.istio.io/v1beta1`), so
 * nothing is planned and nothing is written.
 * @throws FederationInputError naming the cluster and its version
 */
export function checkSupportedIstio(snapshot: Pick<ClusterSnapshot, 'clusterId' | 'istioVersion'>): void {
  const [major, minor] = istioMinor(snapshot.istioVersion);
  if (major === 1 && minor < 9) {
    throw new FederationInputError(
      `cluster ${snapshot.clusterId} runs Istio ${snapshot.istioVersion}, older than ${MIN_ISTIO_VERSION}, the oldest release kubectl meshfed supports; ` +
      'nothing was changed: upgrade Istio in this cluster to 1.9 or later, then run the command again',
    );
  }
}

/**
 * Whether a gateway's HTTP authorization sees the principal of a client certificate on a `MUTUAL` (non-Istio)
 * server. Istio 1.9 and 1.10 match HTTP `principals` against the `istio_authn` filter's metadata
 * (`pilot/pkg/security/authz/model/generator.go`, `srcPrincipalGenerator.principal`, at 1.9.0 and 1.10.0), and
 * istiod only adds that filter to a gateway's filter chain for `ISTIO_MUTUAL` servers
 * (`pilot/pkg/networking/core/v1alpha3/gateway.go` sets `IstioMutualGateway`; `plugin/authn/authentication.go`
 * `buildFilter`; `security/authn/v1beta1/policy_applier.go` `setAuthnFilterForPeerAuthn`). From 1.11 the
 * generator matches the certificate itself (`principalAuthenticated`). TCP rules match the certificate on every
 * release.
 */
export function gatewayHttpSeesClientPrincipal(version: string): boolean {
  const [major, minor] = istioMinor(version);
  return major > 1 || minor >= 11;
}

/**
 * Whether the gateway injection template mounts istiod's token as a projected volume on every install, so the pod
 * needs no auto-mounted ServiceAccount token. Before 1.22 the template only does so with
 * `global.jwtPolicy=third-party-jwt` and pilot-agent reads the auto-mounted token otherwise
 * (`manifests/charts/istio-control/istio-discovery/files/gateway-injection-template.yaml`, `istio-token` volume,
 * at 1.21.0 and 1.22.0).
 */
export function gatewayNeedsNoServiceAccountToken(version: string): boolean {
  const [major, minor] = istioMinor(version);
  return major > 1 || minor >= 22;
}

/** Istio >= 1.12 deploys gateways by injection (`inject.istio.io/templates: gateway`, image `auto`). */
export function supportsGatewayInjection(version: string): boolean {
  const [major, minor] = istioMinor(version);
  return major > 1 || minor >= 12;
}

/**
 * Istio releases whose AUTO_PASSTHROUGH filter chain matches the SNI against the Gateway server's hosts taken
 * literally as Envoy `server_names` (1.8.0–1.8.5, 1.9.0–1.9.4, before the fix of ISTIO-SECURITY-2021-006 /
 * CVE-2021-31921): `pilot/pkg/networking/core/v1alpha3/gateway.go` `buildGatewayNetworkFiltersFromTLSRoutes` at
 * 1.9.0 sets `sniHosts: node.MergedGateway.SNIHostsByServer[server]`; 1.9.5 and 1.10.0 build one chain per Service
 * port and subset instead (`builtAutoPassthroughFilterChains`). Those releases also route any SNI that reaches the
 * chain to the cluster it names (the `sni_cluster` filter), the published vulnerability.
 */
export function autoPassthroughMatchesLiteralHosts(version: string): boolean {
  const m = /^v?(\d+)\.(\d+)(?:\.(\d+))?/.exec(version.trim());
  if (!m) return false;
  const [major, minor, patch] = [Number(m[1]), Number(m[2]), Number(m[3] ?? 0)];
  return major === 1 && ((minor === 8 && patch < 6) || (minor === 9 && patch < 5));
}

/** Istio 1.8 to 1.11 need `ISTIO_META_ROUTER_MODE=sni-dnat` for AUTO_PASSTHROUGH gateways. */
export function needsSniDnatRouterMode(version: string): boolean {
  const [major, minor] = istioMinor(version);
  return major === 1 && minor >= 8 && minor <= 11;
}

/** The gateway namespace of a snapshot. */
export function gatewayNamespaceOf(snapshot: ClusterSnapshot): string {
  return snapshot.gatewayNamespace ?? DEFAULT_GATEWAY_NAMESPACE;
}

/**
 * Where meshfed keeps its own objects in a cluster (federation CA, certificates, records, gateway config):
 * the namespace of the existing gateway when one is used (credential Secrets must be next to the gateway
 * workload), otherwise the gateway namespace.
 */
export function homeNamespaceOf(snapshot: ClusterSnapshot): string {
  return snapshot.existingGateway?.namespace ?? gatewayNamespaceOf(snapshot);
}

/**
 * Whether meshfed owns the gateway workload at `placement`: the one it deploys (or whose overlay it prints) for the
 * role, in its gateway namespace. A gateway chosen with `--gateway-selector` belongs to whoever installed it and
 * may carry other traffic, which meshfed's objects must leave alone.
 */
export function ownsGateway(snapshot: ClusterSnapshot, placement: GatewayPlacement, role: GatewayRole): boolean {
  if (!snapshot.existingGateway) return true;
  const own = { istio: GATEWAY_NAMES[role] };
  const keys = Object.keys(placement.selector);
  return placement.namespace === gatewayNamespaceOf(snapshot) && keys.length === 1 && placement.selector['istio'] === own.istio;
}

/** What a gateway role resolves to in one cluster. */
export interface GatewaySetup {
  placement: GatewayPlacement;
  /** Namespace (when meshfed owns the gateway namespace), ServiceAccount, Role, RoleBinding, Deployment, Service. */
  objects: KubeObject[];
  overlay?: KubeObject;
  warnings: string[];
}

/**
 * Where the gateway of a role runs, and the objects that deploy it: an existing gateway when the snapshot names
 * one; a Deployment with the injection template on Istio >= 1.12; otherwise an IstioOperator overlay for the
 * operator to install (the gateway then appears under the same names).
 */
export function gatewaySetup(snapshot: ClusterSnapshot, role: GatewayRole): GatewaySetup {
  const name = GATEWAY_NAMES[role];
  if (snapshot.existingGateway) {
    const g = snapshot.existingGateway;
    if (Object.keys(g.selector).length === 0) {
      throw new FederationInputError('the existing gateway selector is empty: give the gateway pod labels, e.g. istio=eastwestgateway (--gateway-selector)', '--gateway-selector');
    }
    return {
      placement: { namespace: g.namespace, selector: { ...g.selector }, serviceName: g.serviceName, port: g.port ?? FEDERATION_PORT, deployed: false },
      // The namespace of an existing gateway belongs to whoever installed it.
      objects: [],
      warnings: [],
    };
  }
  const namespace = gatewayNamespaceOf(snapshot);
  const selector = { istio: name };
  const placement: GatewayPlacement = { namespace, selector, serviceName: name, port: FEDERATION_PORT, deployed: true };
  const serviceType = role === 'egress' ? 'ClusterIP' : 'LoadBalancer';
  if (!supportsGatewayInjection(snapshot.istioVersion)) {
    return {
      placement: { ...placement, deployed: false },
      objects: [namespaceObject(namespace)],
      overlay: istioOperatorOverlay(role, namespace, serviceType, needsSniDnatRouterMode(snapshot.istioVersion) && role === 'eastwest'),
      warnings: [
        `Istio ${snapshot.istioVersion} cannot deploy gateways by injection (needs 1.12 or later): apply this plan (it creates namespace ${namespace}), ` +
        `then install the ${name} gateway with the IstioOperator overlay (istioctl install -f <file>); or use an existing gateway (--gateway-selector)`,
      ],
    };
  }
  const labels = meshfedLabels('gateway');
  const objects: KubeObject[] = [namespaceObject(namespace), kubeObject('v1', 'ServiceAccount', name, namespace, labels, {})];
  if (role !== 'eastwest') {
    // Istio reads credentialName Secrets on behalf of a gateway only if the gateway's service account may.
    objects.push(
      kubeObject('rbac.authorization.k8s.io/v1', 'Role', name, namespace, labels, {
        rules: [{ apiGroups: [''], resources: ['secrets'], verbs: ['get', 'watch', 'list'] }],
      }),
      kubeObject('rbac.authorization.k8s.io/v1', 'RoleBinding', name, namespace, labels, {
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name },
        subjects: [{ kind: 'ServiceAccount', name, namespace }],
      }),
    );
  }
  objects.push(
    kubeObject('apps/v1', 'Deployment', name, namespace, labels, {
      spec: {
        selector: { matchLabels: selector },
        template: {
          metadata: {
            annotations: { 'inject.istio.io/templates': 'gateway' },
            labels: { ...selector, app: name, 'sidecar.istio.io/inject': 'true', [MANAGED_BY_LABEL]: MANAGED_BY },
          },
          spec: {
            serviceAccountName: name,
            // The gateway talks to istiod with its projected istio-token; no Kubernetes API token for an internet-facing pod.
            ...(gatewayNeedsNoServiceAccountToken(snapshot.istioVersion) ? { automountServiceAccountToken: false } : {}),
            containers: [{ name: 'istio-proxy', image: 'auto', ports: [{ name: 'tls', containerPort: FEDERATION_PORT }] }],
          },
        },
      },
    }),
    kubeObject('v1', 'Service', name, namespace, labels, {
      spec: {
        type: serviceType,
        selector,
        ports: [{ name: 'tls', port: FEDERATION_PORT, targetPort: FEDERATION_PORT, protocol: 'TCP' }],
      },
    }),
  );
  return { placement, objects, warnings: [] };
}

function namespaceObject(namespace: string): KubeObject {
  return kubeObject('v1', 'Namespace', namespace, undefined, { [MANAGED_BY_LABEL]: MANAGED_BY }, {});
}

/**
 * An IstioOperator that installs one meshfed gateway next to an existing Istio (`profile: empty`, its own
 * name, so `istioctl install -f` leaves the rest of the installation alone).
 */
function istioOperatorOverlay(role: GatewayRole, namespace: string, serviceType: string, sniDnat: boolean): KubeObject {
  const name = GATEWAY_NAMES[role];
  const component = {
    name,
    namespace,
    enabled: true,
    label: { istio: name, app: name },
    k8s: {
      ...(sniDnat ? { env: [{ name: 'ISTIO_META_ROUTER_MODE', value: 'sni-dnat' }] } : {}),
      service: { type: serviceType, ports: [{ name: 'tls', port: FEDERATION_PORT, targetPort: FEDERATION_PORT }] },
    },
  };
  return kubeObject(API.operator, 'IstioOperator', name, 'istio-system', meshfedLabels('gateway'), {
    spec: {
      profile: 'empty',
      components: role === 'egress' ? { egressGateways: [component] } : { ingressGateways: [component] },
    },
  });
}
