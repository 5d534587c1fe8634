/**
 * The static checks of `verify`, as a declarative list over both clusters' snapshots. Each check states what it
 * needs (provider, trust mode, prerequisite codes); the runner decides whether it runs. Expected objects are
 * derived here from the import and export records — independently of the planners, so that a planner mistake or
 * a hand edit shows up as a difference.
 */
import { keyMatchesCertificate, verifyCertificateChain } from '../../pki/index.js';
import { detectProtocol, type KubeObject } from '../model.js';
import {
  consumerGatewaySpiffeId, FEDERATION_CA_CERTIFICATES, FEDERATION_CA_NAMESPACE, FEDERATION_CA_SECRET, FEDERATION_PORT, GATEWAY_NAMES, importHost, LABELS, names, principalOf,
  serviceFqdn, workloadPrincipal,
} from '../naming.js';
import { PUBLISHED_CERTIFICATE_KEYS, publishedCertificatesName } from '../certificates.js';
import { winningVirtualService } from '../consumer.js';
import { effectiveDestinationRule, ownerDestinationRule, sameLabels } from '../destination-rules.js';
import { federationCaCertificates } from '../first-use.js';
import { autoPassthroughMatchesLiteralHosts, gatewayHttpSeesClientPrincipal, istioMinor, needsSniDnatRouterMode, readSecret } from '../objects.js';
import type { ExportRecord } from '../records.js';
import {
  describe, describeObject, find, isManaged, isPodReady, labelsMatch, loadBalancerAddress, servicePorts, specOf,
  type CertificateRead, type Credential, type GatewayFacts, type Spec, type VerifyFacts,
} from './facts.js';
import { fail, ok, providerAbsentReason, skip, type CheckDefinition, type Finding } from './runner.js';
import {
  SERVICE_EXPORT_TO_ANNOTATION, serviceExportTo, serviceVisibleTo, describeNeeds, importEgressNeeds, sidecarFix, sidecarsScoping, unmetEgressNeeds, widenedExportTo,
} from '../visibility.js';
import type { SideSnapshot } from './types.js';

/** A certificate expiring sooner than this many days is a warning. */
export const EXPIRY_WARNING_DAYS = 30;

const show = (value: unknown): string => (value === undefined ? '(unset)' : JSON.stringify(value));

/**
 * Where `live` differs from `expected`: every field given in `expected` must be equal in `live` (lists: same
 * length, element by element). Returns descriptions such as `spec.hosts is ["a"], expected ["b"]`.
 */
export function differences(expected: unknown, live: unknown, path = ''): string[] {
  if (expected === null || typeof expected !== 'object') {
    return expected === live ? [] : [`${path || 'value'} is ${show(live)}, expected ${show(expected)}`];
  }
  if (Array.isArray(expected)) {
    if (!Array.isArray(live) || live.length !== expected.length) return [`${path} is ${show(live)}, expected ${show(expected)}`];
    return expected.flatMap((item, i) => differences(item, live[i], `${path}[${i}]`));
  }
  if (live === null || typeof live !== 'object' || Array.isArray(live)) return [`${path} is ${show(live)}, expected an object`];
  return Object.entries(expected as Record<string, unknown>)
    .flatMap(([key, value]) => differences(value, (live as Record<string, unknown>)[key], path ? `${path}.${key}` : key));
}

/** An object meshfed expects, with the fields that matter. */
interface Expected {
  kind: string;
  namespace: string;
  name: string;
  /** Fields that must be equal; undefined: presence is enough. */
  fields?: Spec;
  /** Extra consistency rules a plain comparison cannot express (list membership). */
  extra?: (live: KubeObject) => string[];
}

function presence(side: SideSnapshot, expected: Expected[]): Finding[] {
  return expected.map((e) => {
    const object = describe(e.kind, e.namespace, e.name);
    return find(side, e.kind, e.namespace, e.name) ? ok(object) : fail({ object }, object);
  });
}

function consistency(side: SideSnapshot, expected: Expected[]): Finding[] {
  const findings: Finding[] = [];
  for (const e of expected) {
    const live = find(side, e.kind, e.namespace, e.name);
    if (!live) continue;
    const object = describeObject(live);
    if (!isManaged(live)) {
      findings.push(fail({ detail: `${object} is not managed by kubectl-meshfed (no app.kubernetes.io/managed-by=kubectl-meshfed label): someone else's object has taken its name` }, object));
      continue;
    }
    const problems = [...(e.fields ? differences(e.fields, live) : []), ...(e.extra?.(live) ?? [])];
    findings.push(problems.length ? fail({ detail: `${object}: ${problems.join('; ')}` }, object) : ok(object));
  }
  return findings;
}

function gatewayReadiness(gw: GatewayFacts, what: string): Finding[] {
  const object = gw.gateway ? describeObject(gw.gateway) : describe('Gateway', gw.namespace, '?');
  const selector = Object.entries(gw.selector ?? {}).map(([k, v]) => `${k}=${v}`).join(',');
  if (gw.pods.length === 0) {
    return [fail({ namespace: gw.namespace, detail: `no ${what} pod in namespace "${gw.namespace}" matches the Gateway selector ${selector}` }, object)];
  }
  const ready = gw.pods.filter(isPodReady);
  if (ready.length === 0) {
    return [fail({ namespace: gw.namespace, detail: `none of the ${gw.pods.length} ${what} pod(s) ${gw.pods.map((p) => p.metadata.name).join(', ')} is ready` }, object)];
  }
  return [ok(object, `${ready.length}/${gw.pods.length} pod(s) ready`)];
}

/** The gateway Service port that forwards to the federation listener (15443), as the other side must call it. */
/**
 * A readable certificate that expires within {@link EXPIRY_WARNING_DAYS} fails (with its date and days left); an
 * unreadable one gives nothing, since the check that reads it has already failed.
 */
/** @param rotate the exact command that renews the certificate */
function expiry(cert: CertificateRead, secret: string, rotate: string): Finding[] {
  if (!cert.ok) return [];
  const object = `certificate in Secret ${secret}`;
  return [cert.info.daysLeft < EXPIRY_WARNING_DAYS
    ? fail({ secret, date: cert.info.notAfter.toISOString().slice(0, 10), days: cert.info.daysLeft, rotate }, object)
    : ok(object, `${cert.info.daysLeft} days left`)];
}

/**
 * A gateway credential seen by a user who may not list Secrets in its namespace (the viewer role): its certificates
 * as published beside the Secret are checked for what they show; whether the key matches is not (only the Secret
 * holds the key), which the skipped finding says.
 * @param again the command that publishes them (a gateway set up by an earlier version has no published copy)
 */
function publishedOnly(credential: Credential, again: string): Finding[] {
  const secret = describe('Secret', credential.namespace, credential.name);
  const where = describe('ConfigMap', credential.namespace, publishedCertificatesName(credential.name));
  const missing = PUBLISHED_CERTIFICATE_KEYS.filter((k) => !credential.certificates[k]);
  if (!credential.published || missing.length) {
    return [fail({
      detail: `the Secrets of namespace ${credential.namespace} are not readable with these permissions, and ${credential.published ? `${where} has no ${missing.join(', ')}` : `no ${where} publishes the certificates of ${secret}`}: ` +
        `run ${again} again (it publishes them), or verify as a user who may read ${secret}`,
    }, where)];
  }
  return [
    ok(where, 'tls.crt and ca.crt published'),
    skip(`the Secrets of namespace ${credential.namespace} are not readable with these permissions: whether ${secret} holds the key of its certificate is not checked`, secret),
  ];
}

function federationServicePort(gw: GatewayFacts | undefined): number {
  const ports = gw?.service ? servicePorts(gw.service) : [];
  return (ports.find((p) => p.targetPort === FEDERATION_PORT) ?? ports.find((p) => p.port === FEDERATION_PORT) ?? ports[0])?.port ?? FEDERATION_PORT;
}

// ---------------------------------------------------------------------------------------------------------------
// Expected objects

function consumerExpected(f: VerifyFacts): Expected[] {
  const r = f.record;
  const e = f.endpoint;
  const consumer = f.consumer;
  const localFqdn = serviceFqdn(r.localName, r.namespace);
  const routes = (destination: Spec): Spec => (e.protocol === 'HTTP'
    ? { http: [{ route: [{ destination }] }] }
    : { tcp: [{ match: [{ port: e.port.number }], route: [{ destination }] }] });
  const list: Expected[] = [];
  if (e.mode === 'boundary') {
    const egressNs = f.egressNamespace;
    const egressRoutes = find(consumer, 'DestinationRule', egressNs, names.egressRoutes());
    const egressHost = (specOf(egressRoutes).host as string | undefined) ?? serviceFqdn(GATEWAY_NAMES.egress, egressNs);
    const subset = names.bindingSubset(e.providerClusterId, e.namespace, e.exportName);
    const egressPort = federationServicePort(f.egressGateway);
    const binding = f.bindingName;
    list.push(
      { kind: 'VirtualService', namespace: r.namespace, name: names.import(r.localName), fields: { spec: { hosts: [localFqdn], ...routes({ host: egressHost, port: { number: egressPort }, subset }) } } },
      {
        kind: 'DestinationRule', namespace: egressNs, name: names.egressRoutes(),
        extra: (live) => {
          const found = ((specOf(live).subsets as Spec[] | undefined) ?? []).find((s) => s.name === subset);
          if (!found) return [`spec.subsets has no subset "${subset}" for this import`];
          return differences({ tls: { mode: 'ISTIO_MUTUAL', sni: e.sni } }, found.trafficPolicy, `spec.subsets[${subset}].trafficPolicy`);
        },
      },
      // Who may not list Secrets there (the viewer role) sees the certificates published beside the Secret instead.
      f.clientCredential.secretUnreadable
        ? { kind: 'ConfigMap', namespace: egressNs, name: publishedCertificatesName(binding) }
        : { kind: 'Secret', namespace: egressNs, name: binding },
      { kind: 'ServiceEntry', namespace: egressNs, name: binding, fields: { spec: { hosts: [e.sni], ports: [{ number: e.gateway.port }], endpoints: [{ address: e.gateway.address }] } } },
      { kind: 'DestinationRule', namespace: egressNs, name: binding, fields: { spec: { host: e.sni, trafficPolicy: { tls: { mode: 'MUTUAL', credentialName: binding, sni: e.sni } } } } },
      // The first host is the SNI; the others are attached Services' names (a weighted attach's split share).
      {
        kind: 'Gateway', namespace: egressNs, name: binding, fields: { spec: { servers: [{ tls: { mode: 'ISTIO_MUTUAL' } }] } },
        extra: (live) => differences(`./${e.sni}`, ((specOf(live).servers as Spec[] | undefined)?.[0]?.hosts as string[] | undefined)?.[0], 'spec.servers[0].hosts[0]'),
      },
      {
        kind: 'VirtualService', namespace: egressNs, name: binding,
        fields: { spec: { gateways: [binding], [e.protocol === 'HTTP' ? 'http' : 'tcp']: [{ route: [{ destination: { host: e.sni, port: { number: e.gateway.port } } }] }] } },
        extra: (live) => differences(e.sni, (specOf(live).hosts as string[] | undefined)?.[0], 'spec.hosts[0]'),
      },
      { kind: 'AuthorizationPolicy', namespace: egressNs, name: binding, fields: { spec: { action: 'DENY' } } },
    );
  } else {
    const hidden = importHost(r.namespace, r.localName);
    const name = names.import(r.localName);
    list.push(
      { kind: 'VirtualService', namespace: r.namespace, name, fields: { spec: { hosts: [localFqdn], ...routes({ host: hidden, port: { number: FEDERATION_PORT } }) } } },
      {
        kind: 'ServiceEntry', namespace: r.namespace, name,
        fields: { spec: { hosts: [hidden], location: 'MESH_INTERNAL', endpoints: [{ address: e.gateway.address }] } },
        extra: (live) => {
          const portName = ((specOf(live).ports as Spec[] | undefined) ?? [])[0]?.name as string | undefined;
          const endpointPorts = (((specOf(live).endpoints as Spec[] | undefined) ?? [])[0]?.ports as Record<string, number> | undefined) ?? {};
          const used = portName ? endpointPorts[portName] : undefined;
          return used === e.gateway.port ? [] : [`spec.endpoints[0].ports.${portName ?? '?'} is ${show(used)}, expected ${e.gateway.port} (the provider gateway port)`];
        },
      },
      { kind: 'DestinationRule', namespace: r.namespace, name, fields: { spec: { host: hidden, trafficPolicy: { tls: { mode: 'ISTIO_MUTUAL', sni: e.sni } } } } },
    );
  }
  if (r.attach && !r.mergedInto) list.push({ kind: 'VirtualService', namespace: r.namespace, name: names.attach(r.attach.service) });
  return list;
}

/** Whether a provider Gateway selector is meshfed's own ingress gateway (not one chosen with --gateway-selector). */
function ownGateway(selector: Record<string, string> | undefined): boolean {
  return selector !== undefined && Object.keys(selector).length === 1 && selector['istio'] === GATEWAY_NAMES.ingress;
}

function providerExpected(f: VerifyFacts): Expected[] {
  const x = f.exportRecord!;
  const home = f.providerHome;
  const fqdn = serviceFqdn(x.service, x.namespace);
  const list: Expected[] = [];
  if (x.mode === 'boundary') {
    const name = f.exportObjectName;
    const selector = specOf(f.providerGatewayObject).selector as Record<string, string> | undefined;
    const destination = { host: fqdn, port: { number: x.port.number }, ...(x.subsetName ? { subset: x.subsetName } : {}) };
    // On a gateway meshfed does not own, the export's policy denies (scoped to its SNI host) rather than allows.
    const action = ownGateway(selector) ? 'ALLOW' : 'DENY';
    // A user who may not read the CA's namespace (the viewer role) sees its certificates' ConfigMap instead.
    const caSeen = f.provider!.objects.some((o) => o.kind === 'Secret' && o.metadata.namespace === FEDERATION_CA_NAMESPACE && o.metadata.name === FEDERATION_CA_SECRET);
    const caPublished = f.provider!.objects.some((o) => o.kind === 'ConfigMap' && o.metadata.name === FEDERATION_CA_CERTIFICATES);
    list.push(
      caSeen || !caPublished
        ? { kind: 'Secret', namespace: FEDERATION_CA_NAMESPACE, name: FEDERATION_CA_SECRET }
        : { kind: 'ConfigMap', namespace: home, name: FEDERATION_CA_CERTIFICATES },
      f.serverCredential?.secretUnreadable
        ? { kind: 'ConfigMap', namespace: home, name: publishedCertificatesName(name) }
        : { kind: 'Secret', namespace: home, name },
      { kind: 'Gateway', namespace: home, name, fields: { spec: { servers: [{ hosts: [`./${x.host}`], tls: { mode: 'MUTUAL', credentialName: name } }] } } },
      { kind: 'VirtualService', namespace: home, name, fields: { spec: { hosts: [x.host], gateways: [name], [x.protocol === 'HTTP' ? 'http' : 'tcp']: [{ route: [{ destination }] }] } } },
      { kind: 'AuthorizationPolicy', namespace: home, name, fields: { spec: { action, ...(selector ? { selector: { matchLabels: selector } } : {}) } } },
    );
  } else {
    // An export covered by a passthrough server meshfed does not manage has no server of meshfed's (MF0225 says so).
    if (!x.coveredBy) list.push(
      {
        kind: 'Gateway', namespace: home, name: GATEWAY_NAMES.eastwest,
        extra: (live) => {
          const servers = (specOf(live).servers as Spec[] | undefined) ?? [];
          const server = servers.find((s) => ((s.hosts as string[] | undefined) ?? []).includes(x.host));
          if (!server) return [`no server lists host ${x.host} (hosts: ${show(servers.flatMap((s) => (s.hosts as string[] | undefined) ?? []))})`];
          const mode = (server.tls as Spec | undefined)?.mode;
          return mode === 'AUTO_PASSTHROUGH' ? [] : [`the server for ${x.host} has tls.mode ${show(mode)}, expected "AUTO_PASSTHROUGH"`];
        },
      },
    );
    list.push(
      { kind: 'AuthorizationPolicy', namespace: x.namespace, name: names.guard(x.service), fields: { spec: { action: 'DENY' } } },
    );
  }
  // meshfed writes no rule of its own when the Service owner's rule (the one its gateway gets) defines the subset.
  const owner = ownerDestinationRule(sideCluster(f.provider!), home, fqdn, x.namespace);
  const ownerDefines = owner?.subsets.some((s) => s.name === x.subsetName && x.subset && sameLabels(s.labels, x.subset));
  if (x.subset && x.subsetName && !ownerDefines) {
    list.push({
      kind: 'DestinationRule', namespace: home, name: names.subsets(x.namespace, x.service), fields: { spec: { host: fqdn } },
      extra: (live) => {
        const found = ((specOf(live).subsets as Spec[] | undefined) ?? []).find((s) => s.name === x.subsetName);
        if (!found) return [`spec.subsets has no subset "${x.subsetName}"`];
        return differences(x.subset, found.labels, `spec.subsets[${x.subsetName}].labels`);
      },
    });
  }
  return list;
}

// ---------------------------------------------------------------------------------------------------------------
// Authorization of the exported workload

/** Istio principal matching: exact, `*`, or a `prefix*` / `*suffix` pattern. */
function principalMatches(pattern: string, principal: string): boolean {
  if (pattern === '*' || pattern === principal) return true;
  if (pattern.endsWith('*')) return principal.startsWith(pattern.slice(0, -1));
  if (pattern.startsWith('*')) return principal.endsWith(pattern.slice(1));
  return false;
}

/**
 * Whether an ALLOW rule admits a caller by its source (operations and conditions are not the federation's concern);
 * `bundle`: the provider's trust domain and aliases, which Istio applies to the rule's principals.
 */
function ruleAdmits(rule: Spec, principal: string, bundle: string[] = []): boolean {
  const froms = rule.from as Array<{ source?: Spec }> | undefined;
  if (!froms || froms.length === 0) return true;
  const namespace = /\/ns\/([^/]+)\//.exec(principal)?.[1] ?? '';
  return froms.some(({ source = {} }) => {
    const list = (key: string) => source[key] as string[] | undefined;
    const expanded = (key: string) => list(key)?.flatMap((p) => (bundle.length ? expandForBundle(p, bundle) : [p]));
    if (expanded('notPrincipals')?.some((p) => principalMatches(p, principal))) return false;
    if (list('notNamespaces')?.some((n) => principalMatches(n, namespace))) return false;
    const principals = expanded('principals');
    const namespaces = list('namespaces');
    if (!principals && !namespaces) return true;
    return Boolean(principals?.some((p) => principalMatches(p, principal)) || namespaces?.some((n) => principalMatches(n, namespace)));
  });
}

/**
 * Istio's rewriting of policy principals for the mesh's trust domains `bundle` (`pilot/pkg/security/trustdomain/bundle.go`
 * `ReplaceTrustDomainAliases`): a five-part principal of a trust domain in the bundle, or of `cluster.local`, stands for
 * that identity in every trust domain of the bundle; anything else (`td/*`, `*`, other trust domains) stays as written.
 */
function expandForBundle(principal: string, bundle: string[]): string[] {
  const parts = principal.split('/');
  if (parts.length !== 5 || parts[0] === '*') return [principal];
  if (!bundle.includes(parts[0]!) && parts[0] !== 'cluster.local') return [principal];
  return [...new Set(bundle.map((td) => [td, ...parts.slice(1)].join('/')))];
}

/** Whether a DENY policy denies an authenticated caller on a workload port (sources and ports; other fields deny nothing here). */
function guardDenies(policy: KubeObject, principal: string, port: number, bundle: string[]): boolean {
  const matches = (list: string[] | undefined): boolean => (list ?? []).flatMap((p) => expandForBundle(p, bundle)).some((p) => principalMatches(p, principal));
  return ((specOf(policy).rules as Spec[] | undefined) ?? []).some((rule) => {
    const froms = (rule.from as Array<{ source?: Spec }> | undefined) ?? [{}];
    const fromOk = froms.some(({ source = {} }) => {
      const principals = source.principals as string[] | undefined;
      const notPrincipals = source.notPrincipals as string[] | undefined;
      return (!principals || matches(principals)) && !(notPrincipals && matches(notPrincipals));
    });
    const tos = (rule.to as Array<{ operation?: Spec }> | undefined) ?? [{}];
    const toOk = tos.some(({ operation = {} }) => {
      const ports = operation.ports as string[] | undefined;
      const notPorts = operation.notPorts as string[] | undefined;
      return (!ports || ports.includes(String(port))) && !(notPorts && notPorts.includes(String(port)));
    });
    return fromOk && toOk;
  });
}

/** The principals that call the exported workload: the provider gateway's pods (boundary), the consumer's workloads (shared-root). */
function workloadCallers(f: VerifyFacts): string[] {
  const x = f.exportRecord!;
  const provider = f.provider!;
  if (x.mode === 'boundary') {
    const accounts = new Set((f.providerGateway?.pods ?? []).map((p) => (specOf(p).serviceAccountName as string | undefined) ?? 'default'));
    if (accounts.size === 0) accounts.add(GATEWAY_NAMES.ingress);
    return [...accounts].map((sa) => workloadPrincipal(provider.mesh.trustDomain, f.providerGateway?.namespace ?? f.providerHome, sa));
  }
  const entry = x.consumers.find((c) => c.clusterId === f.record.consumerClusterId && c.namespace === f.record.namespace);
  const accounts = entry?.serviceAccounts?.length ? entry.serviceAccounts : ['default'];
  return accounts.map((sa) => workloadPrincipal(entry?.trustDomain ?? f.consumer.mesh.trustDomain, f.record.namespace, sa));
}

// ---------------------------------------------------------------------------------------------------------------
// Authorization at the provider gateway (boundary mode)

/** What the provider gateway's RBAC knows about a request of the export. */
interface GatewayRequest {
  /** The caller's principal, when the release's rules can see it (see {@link principalVisible}). */
  principal?: string;
  sni: string;
  /** HTTP only: the Host of the request. */
  host?: string;
  port: number;
}

/**
 * Whether the provider gateway's rules see the consumer's principal: TCP rules on every release, HTTP rules from
 * Istio 1.11 ({@link gatewayHttpSeesClientPrincipal}). An unknown release counts as a current one.
 */
function principalVisible(f: VerifyFacts): boolean {
  const version = f.provider?.mesh.istioVersion;
  if (f.exportRecord?.protocol !== 'HTTP' || !version) return true;
  try {
    return gatewayHttpSeesClientPrincipal(version);
  } catch {
    return true;
  }
}

function listMatches(patterns: unknown, value: string | undefined): boolean {
  return value !== undefined && ((patterns as string[] | undefined) ?? []).some((p) => principalMatches(p, value));
}

/**
 * Whether a rule matches the request as Istio's RBAC filter would: sources by principal and namespace, operations by
 * host and port (methods and paths match any request), and `connection.sni` conditions. A field the request does not
 * carry never matches a positive list and always satisfies a negative one, as Envoy's `not` matchers do.
 */
function gatewayRuleMatches(rule: Spec, req: GatewayRequest): boolean {
  const namespace = req.principal ? /\/ns\/([^/]+)\//.exec(req.principal)?.[1] : undefined;
  const froms = rule.from as Array<{ source?: Spec }> | undefined;
  if (froms && !froms.some(({ source = {} }) => (!source.principals || listMatches(source.principals, req.principal))
    && (!source.notPrincipals || !listMatches(source.notPrincipals, req.principal))
    && (!source.namespaces || listMatches(source.namespaces, namespace))
    && (!source.notNamespaces || !listMatches(source.notNamespaces, namespace)))) return false;
  const tos = rule.to as Array<{ operation?: Spec }> | undefined;
  if (tos && !tos.some(({ operation = {} }) => (!operation.hosts || listMatches(operation.hosts, req.host))
    && (!operation.notHosts || !listMatches(operation.notHosts, req.host))
    && (!operation.ports || listMatches(operation.ports, String(req.port)))
    && (!operation.notPorts || !listMatches(operation.notPorts, String(req.port))))) return false;
  const when = (rule.when as Spec[] | undefined) ?? [];
  return when.every((c) => c.key !== 'connection.sni'
    || ((!c.values || listMatches(c.values, req.sni)) && (!c.notValues || !listMatches(c.notValues, req.sni))));
}

/** Whether a policy lets the request through: an ALLOW policy when a rule matches, a DENY policy when none does. */
function policyLetsThrough(policy: KubeObject, req: GatewayRequest): boolean {
  const rules = (specOf(policy).rules as Spec[] | undefined) ?? [];
  const matched = rules.some((rule) => gatewayRuleMatches(rule, req));
  return ((specOf(policy).action as string | undefined) ?? 'ALLOW') === 'DENY' ? !matched : matched;
}

/** The request the consumer's egress gateway sends for the export, as the provider gateway's RBAC sees it. */
function exportRequest(f: VerifyFacts, spiffe: string | undefined): GatewayRequest {
  const x = f.exportRecord!;
  return {
    ...(spiffe && principalVisible(f) ? { principal: principalOf(spiffe) } : {}),
    sni: x.host,
    ...(x.protocol === 'HTTP' ? { host: x.host } : {}),
    port: FEDERATION_PORT,
  };
}

/** AuthorizationPolicies of others (not meshfed's) that apply to the provider gateway's pods. */
function foreignGatewayPolicies(f: VerifyFacts): KubeObject[] {
  const provider = f.provider!;
  const gw = f.providerGateway;
  const root = provider.mesh.rootNamespace ?? 'istio-system';
  const pods = gw?.pods ?? [];
  return provider.objects.filter((o) => {
    if (o.kind !== 'AuthorizationPolicy' || isManaged(o)) return false;
    if (o.metadata.namespace !== gw?.namespace && o.metadata.namespace !== root) return false;
    const selector = (specOf(o).selector as { matchLabels?: Record<string, string> } | undefined)?.matchLabels;
    return !selector || Object.keys(selector).length === 0 || pods.some((p) => labelsMatch(selector, p.metadata.labels));
  });
}


// ---------------------------------------------------------------------------------------------------------------
// The list

const injectionEnabled = (namespace: KubeObject): boolean => {
  const labels = namespace.metadata.labels ?? {};
  if (labels['istio-injection'] === 'disabled') return false;
  return labels['istio-injection'] === 'enabled' || Boolean(labels['istio.io/rev']);
};

function supportedVersion(version: string | undefined): boolean | undefined {
  if (!version) return undefined;
  try {
    const [major, minor] = istioMinor(version);
    return major > 1 || minor >= 9;
  } catch {
    return undefined;
  }
}

/** A side's objects as the planners' snapshots carry them, for the rules shared with the planners. */
function sideCluster(side: SideSnapshot): { clusterId: string; istioVersion: string; services: []; existing: KubeObject[]; rootNamespace?: string } {
  return { clusterId: side.context, istioVersion: side.mesh.istioVersion ?? '0.0', services: [], existing: side.objects, ...(side.mesh.rootNamespace ? { rootNamespace: side.mesh.rootNamespace } : {}) };
}

/** A gateway pod: every container is the Istio proxy (named istio-proxy, or running the proxyv2 image). */
function isGatewayPod(pod: KubeObject): boolean {
  const containers = (specOf(pod).containers as Array<{ name?: string; image?: string }> | undefined) ?? [];
  return containers.length > 0 && containers.every((c) => c.name === 'istio-proxy' || /(^|\/)proxyv2(:|@|$)/.test(c.image ?? ''));
}

/** A gateway meshfed deployed (its Deployment's label) or had installed from its overlay (its names). */
function ownGatewayPod(pod: KubeObject): boolean {
  const labels = pod.metadata.labels ?? {};
  return isManaged(pod) || (Object.values(GATEWAY_NAMES) as string[]).includes(labels.istio ?? '');
}

/** Every static check, in the order they run within their category. */
export const STATIC_CHECKS: readonly CheckDefinition[] = [
  // contexts and mesh --------------------------------------------------------------------------------------
  {
    code: 'MF0101',
    run: (f) => {
      const mesh = f.consumer.mesh;
      const object = `context ${f.consumer.context}`;
      return [mesh.istioVersion ? ok(object, `Istio ${mesh.istioVersion}`) : fail({ context: f.consumer.context, detail: mesh.problem ?? 'istiod not found' }, object)];
    },
  },
  {
    // Not fatal: the consumer checks of this category do not depend on the provider (its checks say needsProvider).
    code: 'MF0102',
    run: (f) => {
      const provider = f.snapshot.provider;
      if (provider.status === 'absent') return [skip(providerAbsentReason(f.snapshot))];
      if (provider.status === 'unreachable') return [fail({ context: provider.context, detail: provider.message }, `context ${provider.context}`)];
      return [ok(`context ${provider.snapshot.context}`)];
    },
  },
  {
    code: 'MF0103',
    needsProvider: true,
    run: (f) => {
      const provider = f.provider!;
      const object = `context ${provider.context}`;
      return [provider.mesh.istioVersion ? ok(object, `Istio ${provider.mesh.istioVersion}`) : fail({ context: provider.context, detail: provider.mesh.problem ?? 'istiod not found' }, object)];
    },
  },
  {
    code: 'MF0104',
    run: (f) => {
      const sides = [f.consumer, ...(f.provider ? [f.provider] : [])];
      return sides.filter((s) => s.mesh.istioVersion).map((s) => {
        const object = `context ${s.context}`;
        return supportedVersion(s.mesh.istioVersion) === false ? fail({ context: s.context, version: s.mesh.istioVersion }, object) : ok(object, `Istio ${s.mesh.istioVersion}`);
      });
    },
  },
  {
    code: 'MF0105',
    run: (f) => {
      const ns = f.record.namespace;
      const object = describe('Namespace', undefined, ns);
      const namespace = find(f.consumer, 'Namespace', undefined, ns);
      if (!namespace) return [fail({ namespace: ns }, object)];
      return [injectionEnabled(namespace) ? ok(object) : fail({ namespace: ns }, object)];
    },
  },
  // provider ----------------------------------------------------------------------------------------------
  {
    code: 'MF0201',
    needsProvider: true,
    fatal: true,
    run: (f) => {
      const object = `export ${f.exportName}`;
      if (!f.exportRecordObject) return [fail({ context: f.provider!.context, known: f.knownExports.join(', ') || 'none' }, object)];
      if (!f.exportRecord) {
        return [fail({ context: f.provider!.context, known: f.knownExports.join(', ') || 'none' }, describeObject(f.exportRecordObject))];
      }
      return [ok(object, `${f.exportRecord.mode}, ${f.exportRecord.protocol}`)];
    },
  },
  {
    code: 'MF0202',
    needsProvider: true,
    requires: ['MF0201'],
    run: (f) => {
      const x = f.exportRecord!;
      const object = describe('Service', x.namespace, x.service);
      const service = f.exportedService;
      if (!service) return [fail({ detail: `Service ${x.namespace}/${x.service} does not exist in context "${f.provider!.context}"` }, object)];
      const ports = servicePorts(service);
      const port = ports.find((p) => p.port === x.port.number);
      if (!port) return [fail({ detail: `Service ${x.namespace}/${x.service} has no port ${x.port.number} any more (ports: ${ports.map((p) => p.port).join(', ') || 'none'})` }, object)];
      return [ok(object, `port ${x.port.number}`)];
    },
  },
  {
    code: 'MF0203',
    needsProvider: true,
    requires: ['MF0202'],
    run: (f) => {
      const x = f.exportRecord!;
      const object = describe('Service', x.namespace, x.service);
      const pods = f.exportedPods;
      const selector = Object.entries((specOf(f.exportedService).selector as Record<string, string> | undefined) ?? {}).map(([k, v]) => `${k}=${v}`).join(',');
      const params = { service: `${x.namespace}/${x.service}`, namespace: x.namespace, context: f.provider!.context };
      if (pods.length === 0) return [fail({ ...params, detail: `no pod matches its selector ${selector || '(none)'}` }, object)];
      const ready = pods.filter(isPodReady);
      if (ready.length === 0) return [fail({ ...params, detail: `0 of ${pods.length} pod(s) ready` }, object)];
      return [ok(object, `${ready.length}/${pods.length} pod(s) ready`)];
    },
  },
  {
    code: 'MF0204',
    needsProvider: true,
    requires: ['MF0203'],
    run: (f) => {
      const x = f.exportRecord!;
      if (!x.subset) return [];
      const labels = Object.entries(x.subset).map(([k, v]) => `${k}=${v}`).join(',');
      const object = `subset ${labels} of Service ${x.namespace}/${x.service}`;
      const ready = f.exportedPods.filter((p) => isPodReady(p) && labelsMatch(x.subset, p.metadata.labels));
      if (ready.length === 0) {
        const seen = f.exportedPods.filter(isPodReady).map((p) => `${p.metadata.name} (${Object.keys(x.subset!).map((k) => `${k}=${p.metadata.labels?.[k] ?? '-'}`).join(',')})`);
        return [fail({ detail: `no ready pod of Service ${x.namespace}/${x.service} has the labels ${labels}; ready pods: ${seen.join(', ')}` }, object)];
      }
      return [ok(object, `${ready.length} ready pod(s)`)];
    },
  },
  {
    code: 'MF0205',
    needsProvider: true,
    requires: ['MF0201'],
    run: (f) => gatewayReadiness(f.providerGateway!, 'provider gateway').map((finding) =>
      (finding.status === 'fail' ? { ...finding, params: { ...finding.params, context: f.provider!.context } } : finding)),
  },
  {
    code: 'MF0206',
    needsProvider: true,
    requires: ['MF0201'],
    run: (f) => {
      const gw = f.providerGateway!;
      const service = gw.service;
      const params = { namespace: gw.namespace, context: f.provider!.context };
      if (!service) {
        return [fail({ ...params, service: `(none selects the pods of Gateway ${gw.gateway ? describeObject(gw.gateway) : 'of the export'} in ${gw.namespace})` }, `gateway Service in ${gw.namespace}`)];
      }
      const object = describeObject(service);
      const address = loadBalancerAddress(service);
      return [address ? ok(object, address) : fail({ ...params, service: `${service.metadata.namespace}/${service.metadata.name}` }, object)];
    },
  },
  {
    code: 'MF0207',
    needsProvider: true,
    requires: ['MF0201'],
    run: (f) => presence(f.provider!, providerExpected(f)),
  },
  {
    code: 'MF0208',
    needsProvider: true,
    requires: ['MF0201'],
    run: (f) => consistency(f.provider!, providerExpected(f)),
  },
  {
    code: 'MF0209',
    needsProvider: true,
    mode: 'boundary',
    requires: ['MF0201'],
    run: (f) => {
      const gateway = f.providerGatewayObject;
      if (!gateway) return [skip(`the provider Gateway ${f.providerHome}/${f.exportObjectName} is missing (MF0207)`)];
      const tls = ((specOf(gateway).servers as Spec[] | undefined) ?? [])[0]?.tls as Spec | undefined;
      const name = tls?.credentialName as string | undefined;
      const namespace = gateway.metadata.namespace!;
      if (!name) return [fail({ detail: `${describeObject(gateway)} has no tls.credentialName` }, describeObject(gateway))];
      const object = describe('Secret', namespace, name);
      const credential = f.serverCredential!;
      if (credential.secretUnreadable) return publishedOnly(credential, 'kubectl meshfed export');
      const secret = credential.secret;
      if (!secret) return [fail({ detail: `${describeObject(gateway)} names credentialName "${name}", but there is no Secret ${namespace}/${name}: the gateway cannot complete a TLS handshake` }, object)];
      const data = readSecret(secret) ?? {};
      const missing = ['tls.crt', 'tls.key', 'ca.crt'].filter((k) => !data[k]);
      if (missing.length) return [fail({ detail: `Secret ${namespace}/${name} has no ${missing.join(', ')}` }, object)];
      let matches = false;
      try {
        matches = keyMatchesCertificate(data['tls.key']!, data['tls.crt']!);
      } catch {
        matches = false;
      }
      if (!matches) return [fail({ detail: `tls.key of Secret ${namespace}/${name} is not the key of its tls.crt` }, object)];
      return [ok(object)];
    },
  },
  {
    code: 'MF0210',
    needsProvider: true,
    mode: 'boundary',
    requires: ['MF0209'],
    run: (f) => {
      const x = f.exportRecord!;
      const credential = f.serverCredential!;
      const object = `certificate in Secret ${credential.namespace}/${credential.name}`;
      const cert = f.serverCertificate;
      if (!cert.ok) return [fail({ detail: cert.reason }, object)];
      const ca = f.federationCa;
      if (!ca.ok) return [fail({ detail: `the federation CA cannot be read: ${ca.reason}` }, object)];
      const chain = verifyCertificateChain(cert.pem, [ca.pem], f.snapshot.now);
      if (!chain.ok) return [fail({ detail: `the server certificate is not valid under the federation CA: ${chain.reason}` }, object)];
      if (!cert.info.dnsNames.includes(x.host)) {
        return [fail({ detail: `the server certificate names ${cert.info.dnsNames.join(', ') || 'no DNS name'}, not the export host ${x.host}` }, object)];
      }
      return [ok(object, `valid until ${cert.info.notAfter.toISOString().slice(0, 10)}`)];
    },
  },
  {
    code: 'MF0211',
    needsProvider: true,
    mode: 'boundary',
    requires: ['MF0210'],
    run: (f) => {
      const credential = f.serverCredential!;
      const x = f.exportRecord!;
      return expiry(f.serverCertificate, `${credential.namespace}/${credential.name}`, `kubectl meshfed rotate --context ${f.provider!.context} -n ${x.namespace} --name ${x.exportName}`);
    },
  },
  {
    code: 'MF0212',
    needsProvider: true,
    mode: 'shared-root',
    requires: ['MF0205'],
    run: (f) => {
      const version = f.provider!.mesh.istioVersion;
      const gw = f.providerGateway!;
      if (!version || !needsSniDnatRouterMode(version)) return [ok(gw.gateway ? describeObject(gw.gateway) : undefined, `Istio ${version ?? '?'} needs no sni-dnat`)];
      const lacking = gw.pods.filter((pod) => {
        const containers = (specOf(pod).containers as Array<{ name: string; env?: Array<{ name: string; value?: string }> }> | undefined) ?? [];
        return !containers.some((c) => (c.env ?? []).some((v) => v.name === 'ISTIO_META_ROUTER_MODE' && v.value === 'sni-dnat'));
      });
      return lacking.length
        ? [fail({ pods: lacking.map((p) => p.metadata.name).join(', '), version }, describe('Gateway', gw.namespace, GATEWAY_NAMES.eastwest))]
        : [ok(describe('Gateway', gw.namespace, GATEWAY_NAMES.eastwest))];
    },
  },
  {
    code: 'MF0213',
    needsProvider: true,
    requires: ['MF0201'],
    run: (f) => {
      const x = f.exportRecord!;
      if (x.mode !== 'boundary') return [];
      const policy = find(f.provider!, 'AuthorizationPolicy', f.providerHome, f.exportObjectName);
      if (!policy) return [];
      const object = describeObject(policy);
      if (principalVisible(f)) return [ok(object)];
      const blind = ((specOf(policy).rules as Spec[] | undefined) ?? []).flatMap((rule) => ((rule.from as Array<{ source?: Spec }> | undefined) ?? []))
        .flatMap(({ source = {} }) => ['principals', 'notPrincipals', 'namespaces', 'notNamespaces'].filter((k) => source[k]));
      if (blind.length === 0) return [ok(object, 'no rule depends on the client\'s principal')];
      return [fail({
        detail: `${object} matches ${[...new Set(blind)].join(', ')} of HTTP requests, but on Istio ${f.provider!.mesh.istioVersion} a gateway's HTTP rules see no principal of a MUTUAL client certificate ` +
          '(only ISTIO_MUTUAL servers get the istio_authn filter before 1.11): such a rule never admits anyone',
      }, object)];
    },
  },
  {
    code: 'MF0214',
    needsProvider: true,
    requires: ['MF0201'],
    run: (f) => {
      const x = f.exportRecord!;
      if (x.mode !== 'boundary') return [];
      const cert = f.clientCertificate;
      const spiffe = cert.ok ? cert.info.uris.find((u) => u.startsWith('spiffe://')) : undefined;
      const req = exportRequest(f, spiffe ?? consumerGatewaySpiffeId(f.record.consumerClusterId));
      const allows = foreignGatewayPolicies(f).filter((p) => ((specOf(p).action as string | undefined) ?? 'ALLOW') === 'ALLOW');
      const object = `provider gateway in ${f.providerGateway?.namespace ?? f.providerHome}`;
      if (allows.length === 0) return [ok(object, 'no other ALLOW policy selects it')];
      if (allows.some((p) => policyLetsThrough(p, req))) return [ok(object, `admitted by ${allows.filter((p) => policyLetsThrough(p, req)).map(describeObject).join(', ')}`)];
      const listed = allows.map(describeObject).join(', ');
      return [fail({
        detail: `ALLOW ${allows.length === 1 ? 'policy' : 'policies'} ${listed} ${allows.length === 1 ? 'selects' : 'select'} the provider gateway and match${allows.length === 1 ? 'es' : ''} no request of the export (SNI ${x.host}): the gateway denies them`,
        host: x.host,
        policy: listed,
      }, object)];
    },
  },
  {
    code: 'MF0215',
    needsProvider: true,
    requires: ['MF0201'],
    run: (f) => {
      if (f.exportRecord!.mode !== 'boundary') return [];
      const pods = f.providerGateway?.pods ?? [];
      const object = `provider gateway in ${f.providerGateway?.namespace ?? f.providerHome}`;
      const others = f.provider!.objects.filter((o) => o.kind === 'Gateway' && !isManaged(o)
        && pods.some((p) => labelsMatch(specOf(o).selector as Record<string, string> | undefined, p.metadata.labels)));
      if (others.length === 0) return [ok(object)];
      return [fail({ detail: `the gateway pods also serve ${others.map(describeObject).join(', ')}, which meshfed does not manage` }, object)];
    },
  },
  {
    code: 'MF0216',
    needsProvider: true,
    run: (f) => {
      const provider = f.provider!;
      const secrets = provider.objects.filter((o) => o.kind === 'Secret' && o.metadata.name === FEDERATION_CA_SECRET && isManaged(o));
      if (secrets.length === 0) {
        // The viewer role reads the CA's certificates (their ConfigMap), not the namespace of its key.
        return [skip(federationCaCertificates(provider.objects)
          ? `the federation CA's Secret is not readable with these permissions (namespace ${FEDERATION_CA_NAMESPACE}); no copy of it is beside a gateway`
          : 'no federation CA Secret in the provider cluster')];
      }
      return secrets.map((secret) => {
        const object = describeObject(secret);
        const ns = secret.metadata.namespace!;
        const gateways = provider.objects.filter((o) => o.kind === 'Pod' && o.metadata.namespace === ns && isGatewayPod(o)).map((p) => p.metadata.name);
        if (ns !== FEDERATION_CA_NAMESPACE) {
          return fail({ detail: `${object} holds the federation CA key in namespace ${ns}, not in ${FEDERATION_CA_NAMESPACE}${gateways.length ? `, where gateway pod(s) ${gateways.join(', ')} run` : ''}`, caNamespace: FEDERATION_CA_NAMESPACE }, object);
        }
        if (gateways.length) return fail({ detail: `gateway pod(s) ${gateways.join(', ')} run in ${ns}, beside the federation CA key`, caNamespace: FEDERATION_CA_NAMESPACE }, object);
        return ok(object);
      });
    },
  },
  {
    code: 'MF0220',
    needsProvider: true,
    requires: ['MF0201'],
    run: (f) => {
      const x = f.exportRecord!;
      const ours = find(f.provider!, 'DestinationRule', f.providerHome, names.subsets(x.namespace, x.service));
      if (!ours) return [ok(`export ${f.exportName}`, 'meshfed writes no DestinationRule for the Service')];
      const object = describeObject(ours);
      const owner = ownerDestinationRule(sideCluster(f.provider!), f.providerHome, serviceFqdn(x.service, x.namespace), x.namespace);
      if (!owner) return [ok(object, 'the Service owner has no DestinationRule')];
      const spec = specOf(ours);
      const problems = [
        ...differences(owner.trafficPolicy ?? null, spec.trafficPolicy ?? null, 'trafficPolicy'),
        ...owner.subsets.flatMap((subset) => {
          const carried = ((spec.subsets as Spec[] | undefined) ?? []).find((s) => s.name === subset.name);
          return carried ? differences(subset, carried, `subsets[${subset.name}]`) : [`subset ${subset.name} is missing`];
        }),
      ];
      const ownerName = owner.rules.map((o) => describeObject(o)).join(' + ');
      return [problems.length ? fail({ object, owner: ownerName, detail: problems.join('; ') }, object) : ok(object, `carries ${ownerName}`)];
    },
  },
  {
    code: 'MF0221',
    needsProvider: true,
    requires: ['MF0201'],
    run: (f) => {
      const x = f.exportRecord!;
      const ours = find(f.provider!, 'DestinationRule', f.providerHome, names.subsets(x.namespace, x.service));
      if (!ours) return [ok(`export ${f.exportName}`, 'meshfed writes no DestinationRule for the Service')];
      const foreign = f.provider!.objects.filter((o) => o.kind === 'Pod' && o.metadata.namespace === f.providerHome && isGatewayPod(o) && !ownGatewayPod(o));
      const object = describeObject(ours);
      return [foreign.length
        ? fail({ object, namespace: f.providerHome, pods: foreign.map((p) => p.metadata.name).join(', '), host: serviceFqdn(x.service, x.namespace) }, object)
        : ok(object)];
    },
  },
  {
    code: 'MF0222',
    needsProvider: true,
    requires: ['MF0201'],
    run: (f) => {
      const x = f.exportRecord!;
      if (!x.subset || !x.subsetName) return [ok(`export ${f.exportName}`, 'no subset')];
      const fqdn = serviceFqdn(x.service, x.namespace);
      const rule = effectiveDestinationRule(sideCluster(f.provider!), f.providerHome, fqdn, x.namespace);
      const labels = Object.entries(x.subset).map(([k, v]) => `${k}=${v}`).join(',');
      const params = { subset: x.subsetName, labels };
      if (!rule) return [fail({ ...params, detail: `the gateways in ${f.providerHome} get no DestinationRule for ${fqdn}, so subset ${x.subsetName} is unknown to them (503 NC)` }, `export ${f.exportName}`)];
      const object = rule.rules.map((o) => describeObject(o)).join(' + ');
      const found = rule.subsets.find((s) => s.name === x.subsetName);
      if (!found) return [fail({ ...params, detail: `the gateways in ${f.providerHome} get ${object} for ${fqdn}, which has no subset ${x.subsetName} (503 NC)` }, object)];
      if (!sameLabels(found.labels, x.subset)) {
        return [fail({ ...params, detail: `the gateways in ${f.providerHome} get ${object} for ${fqdn}, whose subset ${x.subsetName} selects ${show(found.labels)}, not ${labels}` }, object)];
      }
      return [ok(object)];
    },
  },
  {
    code: 'MF0223',
    needsProvider: true,
    mode: 'boundary',
    requires: ['MF0201'],
    run: (f) => {
      const x = f.exportRecord!;
      if (x.protocol !== 'HTTP') return [ok(`export ${f.exportName}`, 'TCP: no authority')];
      const vs = find(f.provider!, 'VirtualService', f.providerHome, f.exportObjectName);
      if (!vs) return [skip('the export\'s VirtualService is missing (MF0208)')];
      const fqdn = serviceFqdn(x.service, x.namespace);
      const routes = (specOf(vs).http as Spec[] | undefined) ?? [];
      const rewrites = routes.length > 0 && routes.every((r) => (r.rewrite as Spec | undefined)?.authority === fqdn);
      return [rewrites ? ok(describeObject(vs)) : fail({ object: describeObject(vs), fqdn }, describeObject(vs))];
    },
  },
  {
    code: 'MF0225',
    needsProvider: true,
    mode: 'shared-root',
    requires: ['MF0201'],
    run: (f) => {
      const x = f.exportRecord!;
      const covers = f.foreignPassthroughCovers;
      const object = `host ${x.host}`;
      if (covers.length === 0) return [ok(object, 'only explicit hosts pass through')];
      return covers.map(({ gateway, hosts }) => fail({ gateway: describeObject(gateway), hosts: hosts.join(', '), host: x.host }, object));
    },
  },
  {
    code: 'MF0226',
    needsProvider: true,
    mode: 'shared-root',
    requires: ['MF0201'],
    run: (f) => {
      const x = f.exportRecord!;
      const own = find(f.provider!, 'Gateway', f.providerHome, GATEWAY_NAMES.eastwest);
      const listed = ((specOf(own).servers as Spec[] | undefined) ?? []).some((s) => ((s.hosts as string[] | undefined) ?? []).includes(x.host));
      const object = own ? describeObject(own) : `host ${x.host}`;
      const covers = f.foreignPassthroughCovers;
      const version = f.provider!.mesh.istioVersion;
      if (!listed || covers.length === 0) return [ok(object)];
      // Istio 1.9.0-1.9.4 match the servers' literal hosts: the two servers do not collide there.
      const m = /^v?(\d+)\.(\d+)\.(\d+)/.exec(version ?? '');
      const perService = !m || Number(m[1]) > 1 || Number(m[2]) > 9 || (Number(m[2]) === 9 && Number(m[3]) >= 5);
      if (!perService) return [ok(object, `Istio ${version} matches literal hosts`)];
      return [fail({ object, host: x.host, gateway: covers.map((c) => describeObject(c.gateway)).join(', '), hosts: covers.flatMap((c) => c.hosts).join(', '), version: version ?? '?' }, object)];
    },
  },
  {
    code: 'MF0228',
    needsProvider: true,
    mode: 'shared-root',
    requires: ['MF0201'],
    run: (f) => {
      const x = f.exportRecord!;
      const own = find(f.provider!, 'Gateway', f.providerHome, GATEWAY_NAMES.eastwest);
      const selector = (specOf(own).selector as Record<string, string> | undefined) ?? x.coveredBy?.selector;
      const port = (((specOf(own).servers as Spec[] | undefined)?.[0]?.port as Spec | undefined)?.number as number | undefined) ?? x.coveredBy?.port;
      const object = `port ${port ?? '?'} of the passthrough gateway`;
      if (!selector || port === undefined) return [skip('the passthrough Gateway is missing (MF0207)', object)];
      const clashes = f.provider!.objects.filter((o) => o.kind === 'Gateway' && !isManaged(o)).flatMap((gateway) => {
        const gwSelector = (specOf(gateway).selector as Record<string, string> | undefined) ?? {};
        if (Object.keys(gwSelector).length === 0 || !Object.entries(gwSelector).every(([k, v]) => selector[k] === v)) return [];
        return ((specOf(gateway).servers as Spec[] | undefined) ?? []).filter((sv) => (sv.port as Spec | undefined)?.number === port && !sv.tls)
          .map((sv) => `${describeObject(gateway)} (${String((sv.port as Spec | undefined)?.protocol ?? '?')})`);
      });
      return [clashes.length ? fail({ gateways: clashes.join(', '), port }, object) : ok(object)];
    },
  },
  {
    code: 'MF0227',
    needsProvider: true,
    requires: ['MF0202'],
    run: (f) => {
      const x = f.exportRecord!;
      const service = f.exportedService!;
      const gatewayNamespace = f.providerGateway?.namespace ?? f.providerHome;
      const exportTo = serviceExportTo(service);
      const defaults = f.provider!.mesh.defaultServiceExportTo;
      const object = describeObject(service);
      if (serviceVisibleTo({ namespace: x.namespace, exportTo }, defaults, gatewayNamespace)) return [ok(object, `visible in ${gatewayNamespace}`)];
      return [fail({
        service: `${x.namespace}/${x.service}`, gatewayNamespace,
        why: exportTo ? `its annotation ${SERVICE_EXPORT_TO_ANNOTATION}=${exportTo.join(',')}` : `the mesh's defaultServiceExportTo ${JSON.stringify(defaults)}`,
        command: `kubectl annotate service ${x.service} -n ${x.namespace} ${SERVICE_EXPORT_TO_ANNOTATION}=${widenedExportTo(exportTo, defaults, [gatewayNamespace])} --overwrite`,
      }, object)];
    },
  },
  // consumer ----------------------------------------------------------------------------------------------
  {
    code: 'MF0301',
    run: (f) => {
      const r = f.record;
      const object = describe('Service', r.namespace, r.localName);
      const service = find(f.consumer, 'Service', r.namespace, r.localName);
      if (!service) return [fail({ detail: `Service ${r.namespace}/${r.localName} does not exist: apps cannot resolve ${r.localName}.${r.namespace}` }, object)];
      if (!isManaged(service)) return [fail({ detail: `Service ${r.namespace}/${r.localName} is not managed by kubectl-meshfed` }, object)];
      const ports = servicePorts(service);
      if (!ports.some((p) => p.port === f.endpoint.port.number)) {
        return [fail({ detail: `Service ${r.namespace}/${r.localName} has no port ${f.endpoint.port.number} (ports: ${ports.map((p) => p.port).join(', ') || 'none'})` }, object)];
      }
      return [ok(object, `port ${f.endpoint.port.number}`)];
    },
  },
  { code: 'MF0302', run: (f) => presence(f.consumer, consumerExpected(f)) },
  { code: 'MF0303', run: (f) => consistency(f.consumer, consumerExpected(f)) },
  {
    code: 'MF0304',
    mode: 'boundary',
    run: (f) => gatewayReadiness(f.egressGateway, 'egress gateway').map((finding) =>
      (finding.status === 'fail' ? { ...finding, params: { ...finding.params, context: f.consumer.context } } : finding)),
  },
  {
    code: 'MF0305',
    mode: 'boundary',
    run: (f) => {
      const credential = f.clientCredential;
      const object = describe('Secret', credential.namespace, credential.name);
      if (credential.secretUnreadable) {
        const cert = f.clientCertificate;
        const seen = publishedOnly(credential, 'kubectl meshfed import');
        if (!cert.ok || seen.some((finding) => finding.status === 'fail')) return seen;
        if (!cert.info.uris.some((u) => u.startsWith('spiffe://'))) return [fail({ detail: 'the client certificate carries no SPIFFE id' }, object)];
        const chain = verifyCertificateChain(cert.pem, [credential.certificates['ca.crt']!], f.snapshot.now);
        if (!chain.ok) return [fail({ detail: `the client certificate is not valid under the CA stored with it: ${chain.reason}` }, object)];
        return seen;
      }
      const secret = credential.secret;
      if (!secret) return [skip(`Secret ${f.egressNamespace}/${f.bindingName} is missing (MF0302)`, object)];
      const data = readSecret(secret) ?? {};
      const cert = f.clientCertificate;
      if (!cert.ok) return [fail({ detail: cert.reason }, object)];
      if (!data['ca.crt']) return [fail({ detail: `Secret ${f.egressNamespace}/${f.bindingName} has no ca.crt (the provider's federation CA)` }, object)];
      const chain = verifyCertificateChain(cert.pem, [data['ca.crt']], f.snapshot.now);
      if (!chain.ok) return [fail({ detail: `the client certificate is not valid under the CA stored with it: ${chain.reason}` }, object)];
      let matches = false;
      try {
        matches = Boolean(data['tls.key']) && keyMatchesCertificate(data['tls.key']!, cert.pem);
      } catch {
        matches = false;
      }
      if (!matches) return [fail({ detail: `tls.key of Secret ${f.egressNamespace}/${f.bindingName} is not the key of its client certificate` }, object)];
      if (!cert.info.uris.some((u) => u.startsWith('spiffe://'))) return [fail({ detail: 'the client certificate carries no SPIFFE id' }, object)];
      return [ok(object, `${cert.info.uris[0]}, valid until ${cert.info.notAfter.toISOString().slice(0, 10)}`)];
    },
  },
  {
    code: 'MF0306',
    mode: 'boundary',
    requires: ['MF0305'],
    run: (f) => {
      const from = f.provider?.context ?? f.record.endpoint.providerClusterId;
      return expiry(f.clientCertificate, `${f.egressNamespace}/${f.bindingName}`, `kubectl meshfed rotate --context ${f.consumer.context} --from ${from} -n ${f.record.namespace} --name ${f.record.localName}`);
    },
  },
  {
    code: 'MF0307',
    needsProvider: true,
    requires: ['MF0206'],
    run: (f) => {
      const gw = f.providerGateway!;
      const current = loadBalancerAddress(gw.service)!;
      const used = f.endpoint.gateway.address;
      const object = `import ${f.importName}`;
      return [used === current
        ? ok(object, used)
        : fail({ used, current, service: `${gw.service!.metadata.namespace}/${gw.service!.metadata.name}` }, object)];
    },
  },
  {
    code: 'MF0308',
    run: (f) => {
      const r = f.record;
      if (!r.attach) return [ok(`import ${f.importName}`, 'not attached')];
      const winner = winningVirtualService(sideCluster(f.consumer), r.namespace, r.attach.service);
      const expected = r.mergedInto ?? { namespace: r.namespace, name: names.attach(r.attach.service) };
      const ours = describe('VirtualService', expected.namespace, expected.name);
      if (!winner) return [skip(`no VirtualService routes ${serviceFqdn(r.attach.service, r.namespace)} (MF0302)`, ours)];
      if (winner.metadata.namespace === expected.namespace && winner.metadata.name === expected.name) return [ok(ours, 'it is the oldest for the host')];
      return [fail({
        winner: describeObject(winner), winnerRef: `${winner.metadata.namespace}/${winner.metadata.name}`, ours, service: r.attach.service,
        host: serviceFqdn(r.attach.service, r.namespace),
      }, ours)];
    },
  },
  {
    code: 'MF0309',
    run: (f) => {
      const r = f.record;
      if (!r.mergedInto || !r.attach) return [ok(`import ${f.importName}`, 'not folded into a VirtualService of yours')];
      const vs = find(f.consumer, 'VirtualService', r.mergedInto.namespace, r.mergedInto.name);
      const object = describe('VirtualService', r.mergedInto.namespace, r.mergedInto.name);
      const params = { service: r.attach.service, winnerRef: `${r.mergedInto.namespace}/${r.mergedInto.name}` };
      if (!vs) return [fail({ ...params, detail: `${object}, which the import was folded into, no longer exists: the attach sends nothing to the import` }, object)];
      const e = r.endpoint;
      const remote = e.mode === 'boundary' ? names.bindingSubset(e.providerClusterId, e.namespace, e.exportName) : importHost(r.namespace, r.localName);
      return [JSON.stringify(specOf(vs)).includes(`"${remote}"`) ? ok(object) : fail({ ...params, detail: `${object} has no route to the import (${remote}) any more` }, object)];
    },
  },
  {
    code: 'MF0310',
    run: (f) => {
      const movable = new Set(['binding', 'egress-routes', 'import-record']);
      const egressNs = f.egressNamespace;
      const stale = f.consumer.objects.filter((o) => isManaged(o) && o.metadata.namespace && movable.has(o.metadata.labels?.['meshfed.io/role'] ?? '')
        && (o.metadata.labels?.['meshfed.io/role'] === 'import-record' ? o.metadata.namespace !== f.snapshot.consumerHome : o.metadata.namespace !== egressNs));
      if (stale.length === 0) return [ok(`namespace ${egressNs}`)];
      const secrets = stale.filter((o) => o.kind === 'Secret').length;
      return [fail({
        objects: stale.map((o) => describeObject(o)).join(', '), namespaces: [...new Set(stale.map((o) => o.metadata.namespace))].join(', '), namespace: egressNs,
        secrets: secrets ? `, ${secrets} Secret(s) with a private key among them` : '',
      }, `namespace ${[...new Set(stale.map((o) => o.metadata.namespace))].join(', ')}`)];
    },
  },
  {
    code: 'MF0311',
    run: (f) => {
      const r = f.record;
      const problems: string[] = [];
      const service = find(f.consumer, 'Service', r.namespace, r.localName);
      if (service && service.metadata.annotations?.['networking.istio.io/exportTo'] !== '.') problems.push(`Service ${r.namespace}/${r.localName} is visible to every namespace (no networking.istio.io/exportTo: "." annotation)`);
      const vs = find(f.consumer, 'VirtualService', r.namespace, names.import(r.localName));
      if (vs && JSON.stringify(specOf(vs).exportTo) !== JSON.stringify(['.'])) problems.push(`VirtualService ${r.namespace}/${names.import(r.localName)} is not limited to its namespace (exportTo)`);
      if (r.endpoint.mode === 'boundary') {
        const policy = find(f.consumer, 'AuthorizationPolicy', f.egressNamespace, f.bindingName);
        const source = ((((specOf(policy).rules as Spec[] | undefined) ?? [])[0]?.from as Spec[] | undefined)?.[0]?.source ?? {}) as Spec;
        const trustDomain = f.consumer.mesh.trustDomain;
        const admitted = r.serviceAccounts?.length
          ? r.serviceAccounts.every((sa) => ((source.notPrincipals as string[] | undefined) ?? []).includes(workloadPrincipal(trustDomain, r.namespace, sa)))
          : ((source.notNamespaces as string[] | undefined) ?? []).includes(r.namespace);
        if (!policy) problems.push(`the egress gateway has no AuthorizationPolicy ${f.egressNamespace}/${f.bindingName}: every namespace can use the import`);
        else if (specOf(policy).action !== 'DENY' || !admitted) problems.push(`AuthorizationPolicy ${f.egressNamespace}/${f.bindingName} does not admit exactly the import's callers`);
      }
      const object = `import ${f.importName}`;
      return [problems.length ? fail({ detail: problems.join('; ') }, object) : ok(object)];
    },
  },
  {
    code: 'MF0312',
    run: (f) => {
      const r = f.record;
      const version = f.consumer.mesh.istioVersion;
      if (!r.attach || !version) return [ok(`import ${f.importName}`)];
      const name = r.mergedInto ?? { namespace: r.namespace, name: names.attach(r.attach.service) };
      const vs = find(f.consumer, 'VirtualService', name.namespace, name.name);
      if (!vs) return [ok(`import ${f.importName}`)];
      const hostOnWeighted = ((specOf(vs).http as Spec[] | undefined) ?? []).some((route) => ((route.route as Spec[] | undefined) ?? []).some((d) => {
        const request = ((d.headers as Spec | undefined)?.request ?? {}) as Spec;
        return [...Object.keys((request.set ?? {}) as Spec), ...Object.keys((request.add ?? {}) as Spec)].some((h) => h.toLowerCase() === 'host');
      }));
      if (!hostOnWeighted) return [ok(describeObject(vs))];
      let minor: [number, number];
      try {
        minor = istioMinor(version);
      } catch {
        return [ok(describeObject(vs))];
      }
      if (minor[0] > 1 || minor[1] >= 12) return [ok(describeObject(vs), `Istio ${version} turns it into an authority rewrite`)];
      const why = version.replace(/^v/, '').startsWith('1.10.0')
        ? 'refuses (its validation webhook rejects the next change of it)'
        : 'passes to Envoy as a plain header that only a deprecated Envoy behaviour turns into the authority';
      return [fail({ object: describeObject(vs), version, why }, describeObject(vs))];
    },
  },
  {
    code: 'MF0315',
    mode: 'shared-root',
    run: (f) => {
      const td = f.consumer.mesh.trustDomain;
      return [td === 'cluster.local' ? fail({ context: f.consumer.context }, 'consumer trust domain') : ok('consumer trust domain', td)];
    },
  },
  {
    // Istio reads the protocol from appProtocol, else the name's prefix (pkg/config/kube/conversion.go ConvertProtocol);
    // an undeclared port is sniffed, which breaks TCP imports (HTTP-looking bytes miss the TCP route, server-first hangs).
    code: 'MF0320',
    requires: ['MF0301'],
    run: (f) => {
      const r = f.record;
      const service = find(f.consumer, 'Service', r.namespace, r.localName)!;
      const port = servicePorts(service).find((p) => p.port === f.endpoint.port.number)! as { name?: string; port: number; appProtocol?: string };
      const object = describe('Service', r.namespace, r.localName);
      let declared: ReturnType<typeof detectProtocol> | undefined;
      try {
        declared = detectProtocol({ port: port.port, ...(port.name ? { name: port.name } : {}), ...(port.appProtocol ? { appProtocol: port.appProtocol } : {}) });
      } catch {
        declared = undefined;
      }
      const shown = `port ${port.port}${port.name ? ` (${port.name}${port.appProtocol ? `, appProtocol ${port.appProtocol}` : ''})` : ''}`;
      const params = { service: `${r.namespace}/${r.localName}`, port: shown, protocol: f.endpoint.protocol, name: `${f.endpoint.protocol === 'TCP' ? 'tcp' : 'http'}-${port.name ?? 'port'}` };
      if (!declared || declared.source === 'default') return [fail({ ...params, detail: 'declares no protocol Istio knows, so the sidecars sniff it' }, object)];
      if (declared.protocol !== f.endpoint.protocol) return [fail({ ...params, detail: `declares ${declared.declared} (${declared.protocol}) from its ${declared.source}` }, object)];
      return [ok(object, `${shown}: ${declared.declared}`)];
    },
  },
  {
    code: 'MF0321',
    mode: 'shared-root',
    run: (f) => {
      const r = f.record;
      const entry = find(f.consumer, 'ServiceEntry', r.namespace, names.import(r.localName));
      if (!entry) return [skip(`ServiceEntry ${r.namespace}/${names.import(r.localName)} is missing (MF0302)`)];
      const exportTo = specOf(entry).exportTo as string[] | undefined;
      const object = describeObject(entry);
      const scoped = exportTo !== undefined && exportTo.length > 0 && exportTo.every((e) => e === '.' || e === r.namespace);
      return [scoped ? ok(object, `exportTo ${JSON.stringify(exportTo)}`) : fail({ object, exportTo: show(exportTo), namespace: r.namespace }, object)];
    },
  },
  {
    code: 'MF0322',
    run: (f) => {
      const r = f.record;
      const e = f.endpoint;
      const root = f.consumer.mesh.rootNamespace ?? 'istio-system';
      const next = e.mode === 'shared-root'
        ? { namespace: r.namespace, host: importHost(r.namespace, r.localName), ports: [FEDERATION_PORT] }
        : { namespace: f.egressNamespace, host: serviceFqdn(f.egressGateway.service?.metadata.name ?? GATEWAY_NAMES.egress, f.egressNamespace), ports: [federationServicePort(f.egressGateway)] };
      const needs = importEgressNeeds({ namespace: r.namespace, host: serviceFqdn(r.localName, r.namespace), port: e.port.number }, next);
      const sidecars = sidecarsScoping(f.consumer.objects, r.namespace, root, f.callerPods.map((p) => p.metadata.labels ?? {}));
      if (sidecars.length === 0) return [ok(`namespace ${r.namespace}`, 'no Sidecar resource limits its egress')];
      return sidecars.map((sidecar) => {
        const unmet = unmetEgressNeeds(sidecar, needs);
        const object = describeObject(sidecar);
        return unmet.length === 0 ? ok(object) : fail({
          sidecar: object, namespace: r.namespace,
          hosts: describeNeeds(unmet),
          fix: sidecarFix(sidecar, unmet),
        }, object);
      });
    },
  },
  {
    code: 'MF0323',
    mode: 'boundary',
    requires: ['MF0304'],
    run: (f) => {
      const service = f.egressGateway.service;
      if (!service) return [];
      const exportTo = serviceExportTo(service);
      const defaults = f.consumer.mesh.defaultServiceExportTo;
      const object = describeObject(service);
      if (serviceVisibleTo({ namespace: service.metadata.namespace!, exportTo }, defaults, f.record.namespace)) return [ok(object, `visible in ${f.record.namespace}`)];
      return [fail({
        service: `${service.metadata.namespace}/${service.metadata.name}`,
        why: exportTo ? `its annotation ${SERVICE_EXPORT_TO_ANNOTATION}=${exportTo.join(',')}` : `the mesh's defaultServiceExportTo ${JSON.stringify(defaults)}`,
        command: `kubectl annotate service ${service.metadata.name} -n ${service.metadata.namespace} ${SERVICE_EXPORT_TO_ANNOTATION}=${widenedExportTo(exportTo, defaults, [f.record.namespace])} --overwrite`,
      }, object)];
    },
  },
  // across the two -------------------------------------------------------------------------------------------
  {
    code: 'MF0401',
    needsProvider: true,
    requires: ['MF0201'],
    run: (f) => {
      const x = f.exportRecord!;
      const gateway = f.providerGatewayObject;
      const servers = (specOf(gateway).servers as Spec[] | undefined) ?? [];
      // A Gateway host is `[namespace/]host`: the namespace part limits which VirtualServices bind, not the SNI served.
      const served = servers.flatMap((s) => (s.hosts as string[] | undefined) ?? []).map((h) => h.slice(h.indexOf('/') + 1));
      if (f.endpoint.mode === 'boundary') {
        const dr = f.bindingObject('DestinationRule');
        const sni = (((specOf(dr).trafficPolicy as Spec | undefined)?.tls as Spec | undefined)?.sni as string | undefined) ?? f.endpoint.sni;
        const object = `SNI ${sni}`;
        if (!gateway) return [fail({ detail: `the consumer sends SNI ${sni}, and the provider has no Gateway ${f.providerHome}/${f.exportObjectName} to serve it` }, object)];
        if (!served.some((h) => h === sni || (h.startsWith('*.') && sni.endsWith(h.slice(1))))) {
          return [fail({ detail: `the consumer sends SNI ${sni}, but ${describeObject(gateway)} serves ${served.join(', ') || 'no host'}` }, object)];
        }
        if (sni !== x.host) return [fail({ detail: `the consumer sends SNI ${sni}, but the export's host is ${x.host}` }, object)];
        return [ok(object)];
      }
      const dr = find(f.consumer, 'DestinationRule', f.record.namespace, names.import(f.record.localName));
      const sni = (((specOf(dr).trafficPolicy as Spec | undefined)?.tls as Spec | undefined)?.sni as string | undefined) ?? f.endpoint.sni;
      const object = `SNI ${sni}`;
      const m = /^outbound_\.(\d+)_\.([^_]*)_\.(.+)$/.exec(sni);
      if (!m) return [fail({ detail: `the consumer sends SNI ${sni}, which is not of the form outbound_.<port>_.<subset>_.<host> that a passthrough gateway routes by` }, object)];
      const [, port, subset, host] = m;
      if (!gateway) return [fail({ detail: `the consumer sends SNI ${sni}, and the provider has no Gateway ${f.providerHome}/${GATEWAY_NAMES.eastwest}` }, object)];
      const covers = (h: string): boolean => {
        const bare = h.includes('/') ? h.slice(h.indexOf('/') + 1) : h;
        return bare === host || bare === '*' || (bare.startsWith('*.') && host!.endsWith(bare.slice(1)));
      };
      if (!served.some(covers)) return [fail({ detail: `the consumer sends SNI for ${host}, but ${describeObject(gateway)} serves ${served.join(', ') || 'no host'}` }, object)];
      if (host !== x.host) return [fail({ detail: `the consumer's SNI names ${host}, the export is ${x.host}` }, object)];
      if (Number(port) !== x.port.number) return [fail({ detail: `the consumer's SNI names port ${port}, the export is port ${x.port.number}` }, object)];
      if ((subset || undefined) !== x.subsetName) return [fail({ detail: `the consumer's SNI names subset "${subset}", the export's subset is "${x.subsetName ?? ''}"` }, object)];
      return [ok(object)];
    },
  },
  {
    code: 'MF0402',
    needsProvider: true,
    requires: ['MF0201'],
    run: (f) => {
      const x = f.exportRecord!;
      const r = f.record;
      if (x.mode === 'boundary') {
        const cert = f.clientCertificate;
        const spiffe = cert.ok ? cert.info.uris.find((u) => u.startsWith('spiffe://')) : undefined;
        const object = `consumer ${r.consumerClusterId}`;
        if (!spiffe) return [skip('the client certificate cannot be read (MF0305)', object)];
        const principal = principalOf(spiffe);
        const listed = x.consumers.some((c) => principalOf(c.gatewaySpiffeId ?? consumerGatewaySpiffeId(c.clusterId)) === principal);
        const policy = find(f.provider!, 'AuthorizationPolicy', f.providerHome, f.exportObjectName);
        if (!policy) return [fail({ detail: `the provider has no AuthorizationPolicy ${f.providerHome}/${f.exportObjectName}: the gateway admits no one` }, object)];
        if (!policyLetsThrough(policy, exportRequest(f, spiffe))) {
          const unseen = principalVisible(f) ? '' : ` (on Istio ${f.provider!.mesh.istioVersion} the gateway's HTTP rules see no principal of a MUTUAL client certificate)`;
          return [fail({ detail: `${describeObject(policy)} does not admit principal ${principal} (the client certificate's SPIFFE id)${unseen}${listed ? ', although the export record lists it' : ''}` }, object)];
        }
        if (!listed) return [fail({ detail: `export ${f.exportName} does not list consumer ${r.consumerClusterId} (${principal}); the policy admits it only until the next export` }, object)];
        return [ok(object, principal)];
      }
      const object = `consumer ${r.consumerClusterId} namespace ${r.namespace}`;
      const entry = x.consumers.find((c) => c.clusterId === r.consumerClusterId && c.namespace === r.namespace);
      if (!entry) {
        const listed = x.consumers.map((c) => `${c.clusterId}/${c.namespace ?? '*'}`).join(', ') || 'none';
        return [fail({ detail: `export ${f.exportName} does not admit namespace ${r.namespace} of consumer ${r.consumerClusterId} (admitted: ${listed})` }, object)];
      }
      const consumerTd = f.consumer.mesh.trustDomain;
      if ((entry.trustDomain ?? 'cluster.local') !== consumerTd) {
        return [fail({ detail: `export ${f.exportName} admits consumer ${r.consumerClusterId} with trust domain ${entry.trustDomain ?? 'cluster.local'}, but its mesh now uses ${consumerTd}` }, object)];
      }
      return [ok(object, (entry.serviceAccounts ?? ['default']).join(', '))];
    },
  },
  {
    code: 'MF0403',
    needsProvider: true,
    mode: 'boundary',
    requires: ['MF0201'],
    run: (f) => {
      const cert = f.clientCertificate;
      const object = `client certificate of ${describe('Secret', f.egressNamespace, f.bindingName)}`;
      if (!cert.ok) return [skip(`the client certificate cannot be read (${cert.reason})`, object)];
      const ca = f.federationCa;
      if (!ca.ok) return [fail({ detail: `the provider's federation CA cannot be read: ${ca.reason}` }, object)];
      const chain = verifyCertificateChain(cert.pem, [ca.pem], f.snapshot.now);
      // During a CA rotation the next CA signs the renewed consumers' certificates; the provider trusts both.
      const next = f.nextFederationCa;
      if (!chain.ok && next?.ok && verifyCertificateChain(cert.pem, [next.pem], f.snapshot.now).ok) return [ok(object, `${next.info.subject} (the next CA of the rotation under way)`)];
      return [chain.ok ? ok(object, ca.info.subject) : fail({ detail: `the client certificate is not valid under the provider's federation CA (${ca.info.subject}): ${chain.reason}` }, object)];
    },
  },
  {
    code: 'MF0404',
    needsProvider: true,
    mode: 'boundary',
    requires: ['MF0209'],
    run: (f) => {
      const trusted = f.clientCredential.certificates['ca.crt'];
      const cert = f.serverCertificate;
      const object = `server certificate of ${f.exportName}`;
      if (!trusted) return [skip(`Secret ${f.egressNamespace}/${f.bindingName} has no ca.crt (MF0305)`, object)];
      if (!cert.ok) return [skip(`the server certificate cannot be read (${cert.reason})`, object)];
      const chain = verifyCertificateChain(cert.pem, [trusted], f.snapshot.now);
      if (!chain.ok) return [fail({ detail: `the consumer's CA (ca.crt of Secret ${f.egressNamespace}/${f.bindingName}) does not verify the provider gateway's certificate: ${chain.reason}` }, object)];
      if (!cert.info.dnsNames.includes(f.endpoint.sni)) {
        return [fail({ detail: `the provider gateway's certificate names ${cert.info.dnsNames.join(', ')}, not ${f.endpoint.sni}, the name the consumer verifies` }, object)];
      }
      return [ok(object)];
    },
  },
  {
    code: 'MF0405',
    needsProvider: true,
    mode: 'shared-root',
    run: (f) => {
      const consumerRoot = f.consumer.mesh.rootCaPem;
      const providerRoot = f.provider!.mesh.rootCaPem;
      if (!consumerRoot || !providerRoot) {
        return [skip(`the root CA of the ${!consumerRoot ? 'consumer' : 'provider'} mesh cannot be read (ConfigMap istio-ca-root-cert)`, 'mesh root CAs')];
      }
      const fingerprint = (pem: string): string => {
        try {
          return f.fingerprint(pem);
        } catch {
          return '(unreadable)';
        }
      };
      const c = fingerprint(consumerRoot);
      const p = fingerprint(providerRoot);
      return [c === p && c !== '(unreadable)' ? ok('mesh root CAs', `${c.slice(0, 23)}…`) : fail({ consumerFingerprint: c, providerFingerprint: p }, 'mesh root CAs')];
    },
  },
  {
    code: 'MF0406',
    needsProvider: true,
    mode: 'shared-root',
    run: (f) => {
      const c = f.consumer.mesh.trustDomain;
      const p = f.provider!.mesh.trustDomain;
      return [c === p ? fail({ trustDomain: c }, 'trust domains') : ok('trust domains', `consumer ${c}, provider ${p}`)];
    },
  },
  {
    code: 'MF0407',
    needsProvider: true,
    mode: 'shared-root',
    run: (f) => {
      const c = f.consumer.mesh.trustDomain;
      const provider = f.provider!.mesh;
      if (c === provider.trustDomain) return [ok('provider trust domain aliases', 'same trust domain (see MF0406)')];
      if (provider.trustDomainAliases.includes(c)) return [ok('provider trust domain aliases', c)];
      // istiod's PILOT_SKIP_VALIDATE_TRUST_DOMAIN: sidecars accept every trust domain of the root
      // (`pilot/pkg/networking/plugin/authn/util.go` `trustDomainsForValidation`).
      if (provider.skipValidateTrustDomain) return [ok('provider trust domain aliases', `${c} accepted: istiod skips trust domain validation (mesh-wide; an alias is narrower)`)];
      return [fail({ consumerTrustDomain: c, providerTrustDomain: provider.trustDomain }, 'provider trust domain aliases')];
    },
  },
  {
    code: 'MF0408',
    needsProvider: true,
    requires: ['MF0201'],
    run: (f) => {
      const x = f.exportRecord!;
      const e = f.endpoint;
      const object = `import ${f.importName} → export ${f.exportName}`;
      const problems: string[] = [];
      if (e.port.number !== x.port.number) problems.push(`the consumer imports port ${e.port.number}, the export is port ${x.port.number}`);
      const gw = f.providerGateway;
      const service = gw?.service;
      if (service) {
        const port = servicePorts(service).find((p) => p.port === e.gateway.port);
        const listener = ((specOf(f.providerGatewayObject).servers as Spec[] | undefined) ?? [])[0]?.port as Spec | undefined;
        if (!port) {
          problems.push(`the consumer calls the provider gateway on port ${e.gateway.port}, Service ${service.metadata.namespace}/${service.metadata.name} has ports ${servicePorts(service).map((p) => p.port).join(', ')}`);
        } else if (listener?.number !== undefined) {
          const target = port.targetPort ?? port.port;
          const containerPort = typeof target === 'number' ? target : undefined;
          if (containerPort !== undefined && containerPort !== listener.number) {
            problems.push(`Service ${service.metadata.namespace}/${service.metadata.name} forwards port ${port.port} to ${containerPort}, the Gateway ${f.providerGatewayObject!.metadata.name} listens on ${String(listener.number)}`);
          }
        }
      }
      const vs = x.mode === 'boundary' ? find(f.provider!, 'VirtualService', f.providerHome, f.exportObjectName) : undefined;
      if (vs) {
        const route = ((specOf(vs)[x.protocol === 'HTTP' ? 'http' : 'tcp'] as Spec[] | undefined) ?? [])[0];
        const destination = ((route?.route as Spec[] | undefined) ?? [])[0]?.destination as Spec | undefined;
        const port = (destination?.port as Spec | undefined)?.number;
        if (port !== undefined && port !== x.port.number) problems.push(`${describeObject(vs)} routes to port ${String(port)}, the exported Service port is ${x.port.number}`);
      }
      const exported = f.exportedService;
      if (exported && !servicePorts(exported).some((p) => p.port === x.port.number)) {
        problems.push(`Service ${x.namespace}/${x.service} no longer has port ${x.port.number}`);
      }
      return [problems.length ? fail({ detail: problems.join('; ') }, object) : ok(object, `${e.port.number} → ${e.gateway.port} → ${x.port.number}`)];
    },
  },
  {
    code: 'MF0420',
    needsProvider: true,
    mode: 'shared-root',
    run: (f) => {
      const version = f.provider!.mesh.istioVersion;
      if (!version) return [skip('the provider\'s Istio version is unknown', 'provider Istio release')];
      return [autoPassthroughMatchesLiteralHosts(version) ? fail({ version }, 'provider Istio release') : ok('provider Istio release', version)];
    },
  },
  {
    code: 'MF0421',
    needsProvider: true,
    mode: 'shared-root',
    requires: ['MF0201'],
    run: (f) => {
      const version = f.provider!.mesh.istioVersion;
      const gateway = f.providerGatewayObject;
      if (!version || !gateway) return [skip(!version ? 'the provider\'s Istio version is unknown' : 'the passthrough Gateway is missing (MF0205)', 'passthrough Gateway hosts')];
      const hosts = ((specOf(gateway).servers as Spec[] | undefined) ?? []).flatMap((s) => ((s.hosts as string[] | undefined) ?? []).map((h) => h.split('/').pop()!));
      const fqdn = serviceFqdn(f.exportRecord!.service, f.exportRecord!.namespace);
      const sni = f.endpoint.sni;
      const object = describeObject(gateway);
      if (autoPassthroughMatchesLiteralHosts(version)) {
        // Envoy `server_names`: exact, or `*.suffix` ending the SNI (Envoy FilterChainMatch docs: www.example.com, then *.example.com, then *.com).
        const matched = hosts.some((h) => h === '*' || h === sni || (h.startsWith('*.') && sni.endsWith(h.slice(1))));
        return [matched ? ok(object, `SNI ${sni} matches`) : fail({ detail: `Istio ${version} matches the SNI against the Gateway hosts literally: ${sni} matches none of ${hosts.join(', ')} (it needs *.${fqdn})` }, object)];
      }
      const stale = hosts.filter((h) => h === `*.${fqdn}`);
      return [stale.length
        ? fail({ detail: `host ${stale.join(', ')} is only needed before Istio 1.9.5; on ${version} it also serves every host under ${fqdn}` }, object)
        : ok(object)];
    },
  },
  {
    code: 'MF0422',
    needsProvider: true,
    mode: 'shared-root',
    requires: ['MF0201'],
    run: (f) => {
      const r = f.record;
      const td = f.consumer.mesh.trustDomain;
      const object = `consumer ${r.consumerClusterId}`;
      const twins = new Set<string>();
      for (const o of f.provider!.objects) {
        if (o.kind !== 'ConfigMap' || o.metadata.labels?.[LABELS.role] !== 'export-record') continue;
        let record: ExportRecord;
        try {
          record = JSON.parse((o.data as Record<string, string> | undefined)?.['export.json'] ?? '') as ExportRecord;
        } catch {
          continue;
        }
        if (record.mode !== 'shared-root') continue;
        for (const c of record.consumers) if (c.clusterId !== r.consumerClusterId && (c.trustDomain ?? 'cluster.local') === td) twins.add(c.clusterId);
      }
      return [twins.size
        ? fail({ detail: `consumer${twins.size > 1 ? 's' : ''} ${[...twins].sort().join(', ')} of the provider ${twins.size > 1 ? 'have' : 'has'} the trust domain of ${r.consumerClusterId} (${td}): their workloads with the same namespace and service account carry the same identity` }, object)
        : ok(object, td)];
    },
  },
  {
    code: 'MF0423',
    needsProvider: true,
    mode: 'shared-root',
    requires: ['MF0402'],
    run: (f) => {
      const x = f.exportRecord!;
      const provider = f.provider!;
      const guard = find(provider, 'AuthorizationPolicy', x.namespace, names.guard(x.service));
      const object = describe('AuthorizationPolicy', x.namespace, names.guard(x.service));
      if (!guard) return [fail({ detail: `${object} is missing: every authenticated caller of the root reaches the exported workload` }, object)];
      const bundle = [provider.mesh.trustDomain, ...provider.mesh.trustDomainAliases];
      const port = typeof x.port.targetPort === 'number' ? x.port.targetPort : x.port.number;
      const entry = x.consumers.find((c) => c.clusterId === f.record.consumerClusterId && c.namespace === f.record.namespace);
      const td = entry?.trustDomain ?? f.consumer.mesh.trustDomain;
      const accounts = entry?.serviceAccounts?.length ? entry.serviceAccounts : ['default'];
      const admittedElsewhere = new Set(x.consumers.flatMap((c) => (c.serviceAccounts?.length ? c.serviceAccounts : ['default']).map((sa) => workloadPrincipal(c.trustDomain ?? 'cluster.local', c.namespace ?? '', sa))));
      const problems: string[] = [];
      for (const sa of accounts) {
        const p = workloadPrincipal(td, f.record.namespace, sa);
        if (guardDenies(guard, p, port, bundle)) problems.push(`it denies the admitted ${p} on port ${port}`);
      }
      const mustDeny = [
        workloadPrincipal(td, f.record.namespace, 'meshfed-not-admitted'),
        workloadPrincipal('not-admitted.invalid', f.record.namespace, accounts[0]!),
        ...bundle.filter((d) => d !== td && d !== provider.mesh.trustDomain).map((d) => workloadPrincipal(d, f.record.namespace, accounts[0]!)),
      ].filter((p) => !admittedElsewhere.has(p));
      for (const p of mustDeny) if (!guardDenies(guard, p, port, bundle)) problems.push(`it lets ${p} through on port ${port}`);
      const local = workloadPrincipal(provider.mesh.trustDomain, f.record.namespace, accounts[0]!);
      if (guardDenies(guard, local, port, bundle)) problems.push(`it denies this mesh's own ${local}`);
      return [problems.length ? fail({ detail: `under the provider's trust domains (${bundle.join(', ')}), ${problems.join('; ')}` }, object) : ok(object)];
    },
  },
  {
    // Who is admitted and who calls: shared-root admits service accounts, so a namespace whose workloads run as others gets nothing.
    code: 'MF0430',
    mode: 'shared-root',
    run: (f) => {
      const admitted = f.admittedAccounts;
      const object = `namespace ${f.record.namespace}`;
      if (!admitted) return [skip(`the admitted service accounts are unknown: pass --from <the context of cluster ${f.endpoint.providerClusterId}> to read them from the export`, object)];
      const pods = f.callerPods;
      if (pods.length === 0) return [ok(object, 'no pod with a sidecar runs there yet')];
      const accountOf = (p: KubeObject): string => (specOf(p).serviceAccountName as string | undefined) ?? 'default';
      const callers = pods.filter((p) => admitted.accounts.includes(accountOf(p)));
      if (callers.length > 0) return [ok(object, `${callers.length} pod(s) run as ${[...new Set(callers.map(accountOf))].sort().join(', ')}`)];
      const running = [...new Set(pods.map(accountOf))].sort();
      return [fail({
        namespace: f.record.namespace,
        admitted: admitted.accounts.join(', '),
        accounts: running.join(', '),
        pods: pods.map((p) => p.metadata.name).sort().join(', '),
        account: running[0]!,
      }, object)];
    },
  },
  {
    code: 'MF0409',
    needsProvider: true,
    requires: ['MF0202'],
    run: (f) => {
      const x = f.exportRecord!;
      const provider = f.provider!;
      const pods = f.exportedPods;
      const root = provider.mesh.rootNamespace ?? 'istio-system';
      const object = `workload of Service ${x.namespace}/${x.service}`;
      const allowPolicies = provider.objects.filter((o) => {
        if (o.kind !== 'AuthorizationPolicy' || ((specOf(o).action as string | undefined) ?? 'ALLOW') !== 'ALLOW') return false;
        if (o.metadata.namespace !== x.namespace && o.metadata.namespace !== root) return false;
        const selector = (specOf(o).selector as { matchLabels?: Record<string, string> } | undefined)?.matchLabels;
        return !selector || Object.keys(selector).length === 0 || pods.some((p) => labelsMatch(selector, p.metadata.labels));
      });
      if (allowPolicies.length === 0) return [ok(object, 'no ALLOW policy selects it')];
      const callers = workloadCallers(f);
      const locked = callers.filter((principal) => !allowPolicies.some((policy) =>
        ((specOf(policy).rules as Spec[] | undefined) ?? []).some((rule) => ruleAdmits(rule, principal, [provider.mesh.trustDomain, ...provider.mesh.trustDomainAliases]))));
      if (locked.length === 0) return [ok(object, `admitted by ${allowPolicies.map(describeObject).join(', ')}`)];
      const listed = allowPolicies.map(describeObject).join(', ');
      return [fail({
        detail: `ALLOW ${allowPolicies.length === 1 ? 'policy' : 'policies'} ${listed} ${allowPolicies.length === 1 ? 'selects' : 'select'} the exported workload and admit${allowPolicies.length === 1 ? 's' : ''} none of ${locked.join(', ')}: every caller an ALLOW policy does not list is denied`,
        principals: locked.join(', '),
        policy: listed,
      }, object)];
    },
  },
  {
    code: 'MF0410',
    needsProvider: true,
    requires: ['MF0201'],
    run: (f) => {
      const x = f.exportRecord!;
      if (x.mode !== 'boundary') return [];
      const cert = f.clientCertificate;
      const spiffe = cert.ok ? cert.info.uris.find((u) => u.startsWith('spiffe://')) : undefined;
      const object = `consumer ${f.record.consumerClusterId}`;
      if (!spiffe) return [skip('the client certificate cannot be read (MF0305)', object)];
      const server = ((specOf(f.providerGatewayObject).servers as Spec[] | undefined) ?? [])[0];
      const sans = (server?.tls as Spec | undefined)?.subjectAltNames as string[] | undefined;
      if (sans?.length && !sans.includes(spiffe)) {
        return [fail({ detail: `${describeObject(f.providerGatewayObject!)} accepts client certificates of ${sans.join(', ')} only, not ${spiffe}: the handshake is refused` }, object)];
      }
      if (!sans?.length && !principalVisible(f)) {
        return [fail({ detail: `${describeObject(f.providerGatewayObject!)} lists no subjectAltNames, and on Istio ${f.provider!.mesh.istioVersion} its HTTP rules cannot tell consumers apart: any certificate of the federation CA is accepted or none is` }, object)];
      }
      return [ok(object, sans?.length ? 'listed in the server\'s subjectAltNames' : 'any certificate of the federation CA; the policy decides')];
    },
  },
];
