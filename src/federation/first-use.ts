/**
 * Trust on first use of a provider's federation CA (the three-step flow): an export bundle is signed by the CA it
 * carries, so its signature proves nothing about who made it the first time a consumer meets that provider. The
 * consumer compares the CA's fingerprint with the one the provider shows (`export`, `status`), out of band. Later
 * bundles from the same provider must carry a CA the consumer already trusts, or be confirmed again. Pure.
 */
import { splitPemBundle } from '../pki/index.js';
import { certificateFingerprint } from './bundle.js';
import { FEDERATION_CA_CERTIFICATES, FEDERATION_CA_NAMESPACE, FEDERATION_CA_SECRET, LABELS, MANAGED_BY, MANAGED_BY_LABEL } from './naming.js';
import { NEXT_CA_KEYS } from './relocation.js';
import type { ClusterSnapshot, KubeObject } from './model.js';
import { readSecret } from './objects.js';

/** How a bundle's CA relates to what the consumer cluster already trusts for that provider. */
export interface ProviderCaTrust {
  /** `SHA256:AB:CD:…` of the CA the bundle carries. */
  fingerprint: string;
  /** `known`: a CA the cluster already uses for that provider; `new`: the first from it; `changed`: another CA. */
  status: 'known' | 'new' | 'changed';
  /** Fingerprints of the CAs the cluster uses for that provider now (for `changed`). */
  knownFingerprints: string[];
}

/** `SHA256:` and the colon-separated upper-case hex of a certificate's SHA-256 fingerprint, as `export` prints it. */
export function caFingerprint(pem: string): string {
  return `SHA256:${certificateFingerprint(pem)}`;
}

/** The same fingerprint however it is written: with or without `SHA256:`, colons, any case. */
export function sameFingerprint(a: string, b: string): boolean {
  const norm = (v: string) => v.trim().replace(/^sha256:/i, '').replace(/:/g, '').toUpperCase();
  return norm(a) !== '' && norm(a) === norm(b);
}

/** What the consumer cluster trusts for `providerClusterId`: the CAs of its bindings to that provider's exports. */
export function providerCaTrust(snapshot: ClusterSnapshot, providerClusterId: string, caPem: string): ProviderCaTrust {
  const fingerprint = caFingerprint(caPem);
  const known = new Set<string>();
  for (const object of snapshot.existing as KubeObject[]) {
    const labels = object.metadata.labels ?? {};
    if (object.kind !== 'Secret' || labels[MANAGED_BY_LABEL] !== MANAGED_BY || labels[LABELS.provider] !== providerClusterId) continue;
    const ca = readSecret(object)?.['ca.crt'];
    if (!ca) continue;
    try {
      // During and after a federation CA rotation a binding trusts two CAs (the next one vouched for by the current
      // one in a signed bundle): each of them is known.
      for (const pem of splitPemBundle(ca)) known.add(caFingerprint(pem));
    } catch {
      // A Secret whose CA cannot be read trusts nothing.
    }
  }
  const knownFingerprints = [...known].sort();
  const status = knownFingerprints.length === 0 ? 'new' : knownFingerprints.includes(fingerprint) ? 'known' : 'changed';
  return { fingerprint, status, knownFingerprints };
}

/** The fingerprint of the provider's federation CA among `objects` (planned or read), if there is one. */
export function federationCaFingerprint(objects: readonly KubeObject[]): string | undefined {
  const pem = federationCaCertificates(objects)?.current;
  return pem ? caFingerprint(pem) : undefined;
}

/** A provider's federation CA as whoever may only look sees it: certificates, no keys. */
export interface FederationCaCertificates {
  /** PEM of the CA that signs server certificates. */
  current: string;
  /** PEM of the next CA, during a CA rotation. */
  next?: string;
  /** The consumers whose client certificates the next CA signed (during a CA rotation). */
  renewed: string[];
}

/**
 * The federation CA's certificates among `objects` (planned or read): from its Secret when its data was read, else
 * from the ConfigMap that holds the certificates alone ({@link FEDERATION_CA_CERTIFICATES}), which is what a user who
 * may not read the CA's key sees.
 */
export function federationCaCertificates(objects: readonly KubeObject[]): FederationCaCertificates | undefined {
  const managed = (o: KubeObject): boolean => o.metadata.labels?.[MANAGED_BY_LABEL] === MANAGED_BY;
  // In its own namespace; beside a gateway where versions before that kept it.
  const secret = readSecret(objects.filter((o) => o.kind === 'Secret' && o.metadata.name === FEDERATION_CA_SECRET && managed(o))
    .sort((a, b) => Number(b.metadata.namespace === FEDERATION_CA_NAMESPACE) - Number(a.metadata.namespace === FEDERATION_CA_NAMESPACE))[0]);
  const published = objects.find((o) => o.kind === 'ConfigMap' && o.metadata.name === FEDERATION_CA_CERTIFICATES && managed(o))?.data as Record<string, string> | undefined;
  const data = secret?.['ca.crt'] ? secret : published;
  const current = data?.['ca.crt'];
  if (!data || !current) return undefined;
  let renewed: string[] = [];
  try {
    renewed = JSON.parse(data[NEXT_CA_KEYS.renewed] ?? '[]') as string[];
  } catch {
    renewed = [];
  }
  const next = data[NEXT_CA_KEYS.certificate];
  return { current, ...(next ? { next } : {}), renewed: next ? renewed : [] };
}
