/**
 * Trust domains in shared-root mode: which consumer trust domains a provider can tell apart from its own workloads
 * and from each other, how the provider mesh accepts a consumer's certificates, the workload guard's rules, and
 * whether a revocation takes effect. Pure; what Istio does is cited where it is relied on.
 *
 * Istio facts (1.9.0 to 1.30.3 alike):
 * - A sidecar accepts an mTLS peer whose certificate chains to the root and whose trust domain is the mesh's own or
 *   one of `meshConfig.trustDomainAliases` (SAN prefix `spiffe://<td>/`), or any trust domain when istiod runs with
 *   `PILOT_SKIP_VALIDATE_TRUST_DOMAIN=true` (`pilot/pkg/networking/plugin/authn/util.go`
 *   `trustDomainsForValidation`; `pilot/pkg/security/model/authentication.go` `ApplyToCommonTLSContext`).
 * - In AuthorizationPolicies (`principals`, `notPrincipals`, `source.principal`), a principal of exactly five
 *   `/`-separated parts whose trust domain is the mesh's own, an alias, or `cluster.local` is rewritten into one
 *   principal per trust domain of `[trustDomain, ...trustDomainAliases]` (`pilot/pkg/security/trustdomain/bundle.go`
 *   `ReplaceTrustDomainAliases`). So `ops.example/ns/vault/sa/vault` also admits `prod.example/ns/vault/sa/vault` once
 *   `ops.example` is an alias, and `cluster.local/ns/vault/sa/vault` never names a workload of a mesh whose trust
 *   domain is not `cluster.local`. Patterns such as `ops.example/*` are never rewritten.
 */
import { FederationInputError } from './errors.js';
import type { ConsumerIdentity } from './model.js';

/** What Istio reads as "this mesh's own trust domain" in a policy (`constants.DefaultKubernetesDomain`). */
export const LOCAL_TRUST_DOMAIN_NAME = 'cluster.local';

const dnsLabel = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

/**
 * Checks a trust domain strictly: lower-case DNS labels separated by dots, at most 253 characters; no wildcard,
 * `/`, scheme or port (a trust domain ends up in `spiffe://<td>/…` principals and `<td>/*` policy patterns).
 * @throws FederationInputError naming `what` and `flag`
 */
export function checkTrustDomain(value: string, what: string, flag?: string): string {
  if (typeof value !== 'string' || value.length === 0 || value.length > 253 || !value.split('.').every((l) => dnsLabel.test(l))) {
    throw new FederationInputError(
      `${what} "${String(value)}" is not a trust domain: use lower-case DNS labels separated by dots (e.g. operations.example.com), without wildcards, "/" or a port${flag ? ` (${flag})` : ''}`,
      flag,
    );
  }
  return value;
}

/** The provider mesh as shared-root admission sees it. */
export interface ProviderTrust {
  trustDomain: string;
  trustDomainAliases?: string[];
  /** istiod runs with PILOT_SKIP_VALIDATE_TRUST_DOMAIN=true. */
  skipValidateTrustDomain?: boolean;
}

/**
 * Why no AuthorizationPolicy on the provider can admit this consumer's service accounts without also admitting
 * workloads of another mesh (the provider's own, or another consumer's), or undefined when one can.
 * `others`: the consumers of every shared-root export of the provider except this one.
 */
export function inseparableReason(provider: ProviderTrust, consumer: ConsumerIdentity, others: ConsumerIdentity[]): string | undefined {
  const td = consumer.trustDomain ?? LOCAL_TRUST_DOMAIN_NAME;
  if (td === provider.trustDomain) {
    return `consumer ${consumer.clusterId} has the trust domain of this mesh (${td}): its workloads carry the same identities as this mesh's own ` +
      'workloads with the same namespace and service account, and no policy can tell them apart';
  }
  if (td === LOCAL_TRUST_DOMAIN_NAME) {
    return `consumer ${consumer.clusterId} has trust domain ${LOCAL_TRUST_DOMAIN_NAME}, which Istio reads in a policy as this mesh's own trust domain ` +
      `(${provider.trustDomain}): a policy cannot name its workloads`;
  }
  const twin = others.find((o) => o.clusterId !== consumer.clusterId && (o.trustDomain ?? LOCAL_TRUST_DOMAIN_NAME) === td);
  if (twin) {
    return `consumers ${twin.clusterId} and ${consumer.clusterId} have the same trust domain (${td}): their workloads with the same namespace and ` +
      'service account carry the same identity, and no policy can admit one without the other';
  }
  return undefined;
}

/** How the provider's sidecars treat the consumer's certificates. */
export type TrustDomainAcceptance = 'local' | 'alias' | 'skip-validation' | 'rejected';

export function trustDomainAcceptance(provider: ProviderTrust, consumerTrustDomain: string): TrustDomainAcceptance {
  if (consumerTrustDomain === provider.trustDomain) return 'local';
  if ((provider.trustDomainAliases ?? []).includes(consumerTrustDomain)) return 'alias';
  if (provider.skipValidateTrustDomain) return 'skip-validation';
  return 'rejected';
}

/**
 * The one recommendation meshfed gives everywhere (export, import, admit, verify, docs) for a provider mesh that
 * rejects a consumer's trust domain: list it in the provider's `trustDomainAliases`. Only the listed trust domains
 * are accepted, and meshfed's workload guard is written so that the alias does not widen it.
 */
export function trustDomainAdvice(consumerTrustDomain: string, providerClusterId: string): string {
  return `add "${consumerTrustDomain}" to meshConfig.trustDomainAliases of the provider mesh (cluster ${providerClusterId}) so that its sidecars accept ` +
    'the consumer\'s certificates; meshfed\'s workload guard still admits only the admitted service accounts';
}

/** One admitted principal of the guard and the workload ports it may call (undefined: not confinable). */
export interface GuardEntry {
  trustDomain: string;
  principal: string;
  ports?: string[];
}

/**
 * The rules of the shared-root workload guard (a DENY AuthorizationPolicy). Every positive principal is a pattern
 * (`*`, `<td>/*`) that Istio never rewrites, and every rewritten principal only ever narrows what a rule denies
 * inside a `<td>/*` scope, so the rules admit exactly the admitted service accounts whatever trust domain aliases
 * the provider mesh has:
 * 1. authenticated callers of any trust domain other than this mesh's and the admitted consumers';
 * 2. per admitted consumer trust domain, its callers other than the admitted principals;
 * 3. per admitted consumer trust domain and set of exported ports, its admitted principals on other ports.
 */
export function guardRules(localTrustDomain: string, entries: GuardEntry[], confinable: boolean): unknown[] {
  const byDomain = new Map<string, Map<string, Set<string>>>();
  for (const e of entries) {
    const principals = byDomain.get(e.trustDomain) ?? new Map<string, Set<string>>();
    const ports = principals.get(e.principal) ?? new Set<string>();
    for (const p of e.ports ?? []) ports.add(p);
    principals.set(e.principal, ports);
    byDomain.set(e.trustDomain, principals);
  }
  const domains = [...byDomain.keys()].sort();
  const rules: unknown[] = [{ from: [{ source: { principals: ['*'], notPrincipals: [`${localTrustDomain}/*`, ...domains.map((d) => `${d}/*`)] } }] }];
  for (const d of domains) {
    const principals = byDomain.get(d)!;
    const admitted = [...principals.keys()].sort();
    rules.push({ from: [{ source: { principals: [`${d}/*`], notPrincipals: admitted } }] });
    if (!confinable) continue;
    const groups = new Map<string, string[]>();
    for (const p of admitted) {
      const key = [...principals.get(p)!].sort((a, b) => Number(a) - Number(b)).join(',');
      groups.set(key, [...(groups.get(key) ?? []), p]);
    }
    for (const [key, group] of [...groups.entries()].sort(([a], [b]) => a.localeCompare(b))) {
      if (!key) continue;
      const rest = admitted.filter((p) => !group.includes(p));
      rules.push({
        from: [{ source: { principals: [`${d}/*`], ...(rest.length ? { notPrincipals: rest } : {}) } }],
        to: [{ operation: { notPorts: key.split(',') } }],
      });
    }
  }
  return rules;
}

/** Whether removing a consumer from the guard cuts it off, and why not when it does not. */
export type RevocationEffect = { effective: true } | { effective: false; reason: string };

/**
 * Whether a shared-root revocation takes effect: it does not when the revoked consumer's identities still pass the
 * guard, as this mesh's own (same trust domain) or as those of a consumer still admitted with the same identities.
 * @param remaining the consumers still admitted to shared-root exports of the same Service
 */
export function revocationEffect(provider: ProviderTrust, revoked: ConsumerIdentity, principalsOf: (c: ConsumerIdentity) => string[], remaining: ConsumerIdentity[]): RevocationEffect {
  const td = revoked.trustDomain ?? LOCAL_TRUST_DOMAIN_NAME;
  if (td === provider.trustDomain) {
    return { effective: false, reason: `its workloads carry this mesh's trust domain (${td}), and the workload guard lets this mesh's own workloads through` };
  }
  const mine = new Set(principalsOf(revoked));
  const twin = remaining.find((c) => principalsOf(c).some((p) => mine.has(p)));
  if (twin) {
    const shared = principalsOf(twin).filter((p) => mine.has(p));
    return { effective: false, reason: `consumer ${twin.clusterId}, still admitted, has the same identit${shared.length > 1 ? 'ies' : 'y'} (${shared.join(', ')})` };
  }
  return { effective: true };
}
