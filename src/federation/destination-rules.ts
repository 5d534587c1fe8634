/**
 * The user's DestinationRules as Istio applies them to a proxy, so that meshfed's own rule for a host it does not own
 * (the subsets of an export) carries the owner's rule instead of hiding it.
 *
 * Istio picks one rule per host for a proxy and never merges across namespaces (`pilot/pkg/model/push_context.go`
 * `DestinationRule`, 1.9.0; `destinationRule`, 1.30.3): the rules of the proxy's own namespace first (for a proxy in
 * the root namespace only the root namespace's `exportTo: ["."]` rules), then those of the Service's namespace exported
 * to the proxy's, then those of the root namespace exported to it; the most specific host wins in each. Rules for one
 * host in one namespace are merged: subsets appended, the first (oldest) traffic policy kept
 * (`pilot/pkg/model/destination_rule.go` `mergeDestinationRule`).
 */
import type { ClusterSnapshot, KubeObject } from './model.js';
import { isManaged } from './objects.js';

/** One subset of a DestinationRule. */
export interface DestinationRuleSubset {
  name: string;
  labels?: Record<string, string>;
  trafficPolicy?: Record<string, unknown>;
}

/** The rule a proxy gets for a host: where it comes from, and the merged content. */
export interface EffectiveDestinationRule {
  /** The namespace whose rules apply. */
  namespace: string;
  /** The rules of that namespace merged into this one, oldest first. */
  rules: KubeObject[];
  trafficPolicy?: Record<string, unknown>;
  subsets: DestinationRuleSubset[];
}

interface DrSpec {
  host?: string;
  exportTo?: string[];
  trafficPolicy?: Record<string, unknown>;
  subsets?: DestinationRuleSubset[];
  workloadSelector?: unknown;
}

const specOf = (o: KubeObject): DrSpec => (o.spec ?? {}) as DrSpec;

function expand(host: string, namespace: string): string {
  return host.includes('.') || host === '*' ? host : `${host}.${namespace}.svc.cluster.local`;
}

/** 0 for the exact host, more for less specific wildcards, -1 when it does not match. */
function rank(pattern: string, host: string): number {
  if (pattern === host) return 0;
  if (pattern === '*') return 10_000;
  if (pattern.startsWith('*') && host.endsWith(pattern.slice(1))) return 1000 - pattern.length;
  return -1;
}

function privateOnly(o: KubeObject): boolean {
  const e = specOf(o).exportTo ?? [];
  return e.length === 1 && e[0] === '.';
}

function exportedTo(o: KubeObject, namespace: string): boolean {
  const e = specOf(o).exportTo ?? [];
  const own = o.metadata.namespace;
  return e.length === 0 || e.some((x) => x === '*' || x === namespace || (x === '.' && own === namespace));
}

function byAge(a: KubeObject, b: KubeObject): number {
  const ta = String(a.metadata.creationTimestamp ?? '');
  const tb = String(b.metadata.creationTimestamp ?? '');
  return ta.localeCompare(tb) || a.metadata.name.localeCompare(b.metadata.name);
}

function pick(candidates: KubeObject[], host: string, namespace: string): EffectiveDestinationRule | undefined {
  let best = -1;
  for (const o of candidates) {
    const r = rank(expand(specOf(o).host ?? '', o.metadata.namespace ?? ''), host);
    if (r >= 0 && (best < 0 || r < best)) best = r;
  }
  if (best < 0) return undefined;
  const rules = candidates.filter((o) => rank(expand(specOf(o).host ?? '', o.metadata.namespace ?? ''), host) === best).sort(byAge);
  const subsets: DestinationRuleSubset[] = [];
  let trafficPolicy: Record<string, unknown> | undefined;
  for (const rule of rules) {
    for (const s of specOf(rule).subsets ?? []) if (!subsets.some((x) => x.name === s.name)) subsets.push(structuredClone(s));
    if (!trafficPolicy && specOf(rule).trafficPolicy) trafficPolicy = structuredClone(specOf(rule).trafficPolicy);
  }
  return { namespace, rules, ...(trafficPolicy ? { trafficPolicy } : {}), subsets };
}

/**
 * The DestinationRule a proxy in `proxyNamespace` gets for `host` (a Service in `serviceNamespace`) from the rules
 * in `snapshot.existing`; `include` filters the rules considered (e.g. the user's only).
 */
export function effectiveDestinationRule(
  snapshot: Pick<ClusterSnapshot, 'existing' | 'rootNamespace'>, proxyNamespace: string, host: string, serviceNamespace: string,
  include: (o: KubeObject) => boolean = () => true,
): EffectiveDestinationRule | undefined {
  const root = snapshot.rootNamespace ?? 'istio-system';
  const rules = snapshot.existing.filter((o) => o.kind === 'DestinationRule' && !specOf(o).workloadSelector && include(o));
  const inNs = (ns: string): KubeObject[] => rules.filter((o) => o.metadata.namespace === ns);
  const first = proxyNamespace === root
    ? inNs(root).filter(privateOnly)
    : inNs(proxyNamespace).filter((o) => exportedTo(o, proxyNamespace));
  return pick(first, host, proxyNamespace)
    ?? pick(inNs(serviceNamespace).filter((o) => !privateOnly(o) && exportedTo(o, proxyNamespace)), host, serviceNamespace)
    ?? pick(inNs(root).filter((o) => !privateOnly(o) && exportedTo(o, proxyNamespace)), host, root);
}

/**
 * The Service owner's rule for meshfed's gateways in `gatewayNamespace`: what they would get without meshfed's own
 * rules (the user's rules only).
 */
export function ownerDestinationRule(
  snapshot: Pick<ClusterSnapshot, 'existing' | 'rootNamespace'>, gatewayNamespace: string, host: string, serviceNamespace: string,
): EffectiveDestinationRule | undefined {
  return effectiveDestinationRule(snapshot, gatewayNamespace, host, serviceNamespace, (o) => !isManaged(o));
}

/** Whether a subset selects exactly these labels. */
export function sameLabels(a: Record<string, string> | undefined, b: Record<string, string>): boolean {
  const ka = Object.keys(a ?? {});
  return ka.length === Object.keys(b).length && ka.every((k) => a![k] === b[k]);
}
