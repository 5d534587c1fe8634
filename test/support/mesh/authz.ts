/**
 * Istio AuthorizationPolicy evaluation for one workload (sidecar or gateway): DENY first, then ALLOW with the
 * default-deny an ALLOW policy brings. Fields the model does not implement fail loudly.
 */
import type { ClusterView, KubeObject } from '../emulator/runtime.js';
import { labelsMatch, meshSettings, ref, specOf, unmodelled } from './world.js';
import type { Spec } from './world.js';

/** What the enforcing proxy knows about one request or connection. */
export interface AuthzRequest {
  /** `trust-domain/ns/x/sa/y` from the peer certificate's SPIFFE URI SAN, if an mTLS peer presented one. */
  principal?: string;
  /** The destination port on the workload. */
  port: number;
  /** The TLS SNI the client sent, if any. */
  sni?: string;
  /** Present for HTTP; absent for TCP. */
  http?: { host: string; method: string; path: string; headers: Record<string, string> };
}

export type AuthzDecision = { allowed: true } | { allowed: false; policy: string };

function matchValue(pattern: string, value: string | undefined): boolean {
  if (value === undefined) return false;
  if (pattern === '*') return value !== '';
  if (pattern.startsWith('*')) return value.endsWith(pattern.slice(1));
  if (pattern.endsWith('*')) return value.startsWith(pattern.slice(0, -1));
  return pattern === value;
}

function matchAny(patterns: unknown, value: string | undefined): boolean {
  return (patterns as string[]).some((p) => matchValue(p, value));
}

/** `pilot/pkg/security/trustdomain/util.go` `prefixMatch`/`suffixMatch`/`stringMatch` (1.9.0, unchanged at 1.30.3). */
function tdPrefixMatch(a: string, pattern: string): boolean {
  return pattern.endsWith('*') && a.startsWith(pattern.slice(0, -1));
}
function tdSuffixMatch(a: string, pattern: string): boolean {
  return pattern.startsWith('*') && a.endsWith(pattern.slice(1));
}
function tdStringMatch(a: string, list: string[]): boolean {
  return list.some((s) => a === s || s === '*' || tdPrefixMatch(a, s) || tdPrefixMatch(s, a) || tdSuffixMatch(a, s) || tdSuffixMatch(s, a));
}

/**
 * How istiod rewrites a policy principal for the mesh's trust domain bundle `[trustDomain, ...trustDomainAliases]`
 * (`pilot/pkg/security/trustdomain/bundle.go` `ReplaceTrustDomainAliases`, applied to `principals`,
 * `notPrincipals` and `source.principal` by `pilot/pkg/security/authz/model/model.go` `MigrateTrustDomain`; 1.9.0
 * and 1.30.3 alike): a principal of exactly five `/`-separated parts whose trust domain is in the bundle, or is
 * `cluster.local` (which stands for the local trust domain), becomes one principal per bundle trust domain (the
 * literal `cluster.local` one is dropped unless it is in the bundle). Other principals — other trust domains,
 * `*` as the trust domain, and patterns such as `td/*` or `td/ns/x/*` — stay as written. The peer's own
 * principal is never rewritten: Envoy compares it with the expanded list.
 */
export function expandPolicyPrincipal(principal: string, bundle: string[]): string[] {
  const parts = principal.split('/');
  if (parts.length !== 5 || parts[0] === '*') return [principal];
  const td = parts[0]!;
  if (!tdStringMatch(td, bundle) && td !== 'cluster.local') return [principal];
  const out: string[] = [];
  for (const t of bundle) {
    const p = tdSuffixMatch(t, td) ? principal : [t, ...parts.slice(1)].join('/');
    if (!out.includes(p)) out.push(p);
  }
  return out;
}

const SOURCE_FIELDS = new Set(['principals', 'notPrincipals', 'namespaces', 'notNamespaces']);
const OPERATION_FIELDS = new Set(['hosts', 'notHosts', 'ports', 'notPorts', 'methods', 'notMethods', 'paths', 'notPaths']);
const HTTP_ONLY_OPERATION_FIELDS = new Set(['hosts', 'notHosts', 'methods', 'notMethods', 'paths', 'notPaths']);

interface Ctx { req: AuthzRequest; bundle: string[]; where: string; action: string }

function sourceMatches(source: Spec, ctx: Ctx): boolean {
  for (const k of Object.keys(source)) if (!SOURCE_FIELDS.has(k)) unmodelled(`${ctx.where}: rules[].from[].source.${k}`);
  const principal = ctx.req.principal;
  const norm = (list: unknown): string[] => (list as string[]).flatMap((p) => expandPolicyPrincipal(p, ctx.bundle));
  const namespace = principal ? /\/ns\/([^/]+)\//.exec(principal)?.[1] : undefined;
  if (source['principals'] && !matchAny(norm(source['principals']), principal)) return false;
  if (source['notPrincipals'] && principal !== undefined && matchAny(norm(source['notPrincipals']), principal)) return false;
  if (source['namespaces'] && !matchAny(source['namespaces'], namespace)) return false;
  if (source['notNamespaces'] && namespace !== undefined && matchAny(source['notNamespaces'], namespace)) return false;
  return true;
}

function operationMatches(op: Spec, ctx: Ctx): boolean {
  for (const k of Object.keys(op)) if (!OPERATION_FIELDS.has(k)) unmodelled(`${ctx.where}: rules[].to[].operation.${k}`);
  const http = ctx.req.http;
  if (!http && Object.keys(op).some((k) => HTTP_ONLY_OPERATION_FIELDS.has(k))) {
    // For TCP traffic Istio drops an ALLOW rule with HTTP-only fields (it never matches) and keeps a DENY rule
    // without them (more restrictive).
    if (ctx.action === 'ALLOW') return false;
  }
  const port = String(ctx.req.port);
  if (op['ports'] && !matchAny(op['ports'], port)) return false;
  if (op['notPorts'] && matchAny(op['notPorts'], port)) return false;
  if (http) {
    const host = http.host.toLowerCase();
    const hostNoPort = host.replace(/:\d+$/, '');
    const hostMatch = (list: unknown): boolean => (list as string[]).some((h) => matchValue(h.toLowerCase(), host) || matchValue(h.toLowerCase(), hostNoPort));
    if (op['hosts'] && !hostMatch(op['hosts'])) return false;
    if (op['notHosts'] && hostMatch(op['notHosts'])) return false;
    if (op['methods'] && !matchAny(op['methods'], http.method)) return false;
    if (op['notMethods'] && matchAny(op['notMethods'], http.method)) return false;
    const path = http.path.split('?')[0];
    if (op['paths'] && !matchAny(op['paths'], path)) return false;
    if (op['notPaths'] && matchAny(op['notPaths'], path)) return false;
  }
  return true;
}

function conditionMatches(cond: Spec, ctx: Ctx): boolean {
  const key = cond['key'] as string;
  const values = cond['values'] as string[] | undefined;
  const notValues = cond['notValues'] as string[] | undefined;
  let actual: string | undefined;
  const principal = ctx.req.principal;
  if (key === 'connection.sni') actual = ctx.req.sni;
  else if (key === 'source.principal') actual = principal;
  else if (key === 'source.namespace') actual = principal ? /\/ns\/([^/]+)\//.exec(principal)?.[1] : undefined;
  else if (key === 'destination.port') actual = String(ctx.req.port);
  else if (key.startsWith('request.headers[')) {
    if (!ctx.req.http) return ctx.action !== 'ALLOW';
    actual = ctx.req.http.headers[key.slice('request.headers['.length, -1).toLowerCase()];
  } else unmodelled(`${ctx.where}: rules[].when[].key ${key}`);
  const norm = (list: string[]): string[] => (key === 'source.principal' ? list.flatMap((p) => expandPolicyPrincipal(p, ctx.bundle)) : list);
  if (values && !matchAny(norm(values), actual)) return false;
  if (notValues && actual !== undefined && matchAny(norm(notValues), actual)) return false;
  return true;
}

function ruleMatches(rule: Spec, ctx: Ctx): boolean {
  for (const k of Object.keys(rule)) if (!['from', 'to', 'when'].includes(k)) unmodelled(`${ctx.where}: rules[].${k}`);
  const from = rule['from'] as Spec[] | undefined;
  const to = rule['to'] as Spec[] | undefined;
  const when = rule['when'] as Spec[] | undefined;
  if (from && !from.some((f) => sourceMatches((f['source'] as Spec | undefined) ?? {}, ctx))) return false;
  if (to && !to.some((t) => operationMatches((t['operation'] as Spec | undefined) ?? {}, ctx))) return false;
  if (when && !when.every((c) => conditionMatches(c, ctx))) return false;
  return true;
}

/** The AuthorizationPolicies that apply to a pod: root-namespace ones, and those of its namespace, by selector. */
export function policiesFor(cluster: ClusterView, pod: KubeObject): KubeObject[] {
  const root = meshSettings(cluster).rootNamespace;
  const ns = pod.metadata.namespace ?? 'default';
  return cluster.list('security.istio.io', 'AuthorizationPolicy').filter((p) => {
    const pns = p.metadata.namespace ?? 'default';
    if (pns !== root && pns !== ns) return false;
    const spec = specOf(p);
    if (spec['targetRef'] || spec['targetRefs']) unmodelled(`${ref(p)}: spec.targetRef(s)`);
    const selector = (spec['selector'] as Spec | undefined)?.['matchLabels'] as Record<string, string> | undefined;
    return labelsMatch(selector, pod.metadata.labels);
  });
}

/** Evaluates the AuthorizationPolicies that apply to `pod` for one request. */
export function authorize(cluster: ClusterView, pod: KubeObject, req: AuthzRequest): AuthzDecision {
  const mesh = meshSettings(cluster);
  const policies = policiesFor(cluster, pod);
  const byAction = (action: string): KubeObject[] => policies.filter((p) => ((specOf(p)['action'] as string | undefined) ?? 'ALLOW') === action);
  for (const p of policies) {
    const action = (specOf(p)['action'] as string | undefined) ?? 'ALLOW';
    if (!['ALLOW', 'DENY'].includes(action)) unmodelled(`${ref(p)}: action ${action}`);
    if (specOf(p)['provider']) unmodelled(`${ref(p)}: provider`);
  }
  const bundle = [mesh.trustDomain, ...mesh.trustDomainAliases];
  const ctxFor = (p: KubeObject, action: string): Ctx => ({ req, bundle, where: ref(p), action });
  for (const p of byAction('DENY')) {
    const rules = (specOf(p)['rules'] as Spec[] | undefined) ?? [];
    if (rules.some((r) => ruleMatches(r, ctxFor(p, 'DENY')))) return { allowed: false, policy: `${p.metadata.namespace}/${p.metadata.name}` };
  }
  const allows = byAction('ALLOW');
  if (allows.length === 0) return { allowed: true };
  for (const p of allows) {
    const rules = (specOf(p)['rules'] as Spec[] | undefined) ?? [];
    if (rules.some((r) => ruleMatches(r, ctxFor(p, 'ALLOW')))) return { allowed: true };
  }
  return { allowed: false, policy: allows.map((p) => `${p.metadata.namespace}/${p.metadata.name}`).join(', ') };
}
