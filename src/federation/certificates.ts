/**
 * Published gateway certificates. Beside each Secret that holds a gateway's certificate and private key (the
 * provider's server certificate of an export, a consumer's client certificate of a binding), meshfed keeps a
 * ConfigMap with the certificates alone, named after the Secret with `.crt` (as Kubernetes' `kube-root-ca.crt` and
 * the federation CA's `meshfed-federation-ca.crt`), with the Secret's labels: planned, moved, pruned and
 * removed with it. `status` and `verify` read expiry and fingerprints there, so that looking needs no access to
 * Secrets, which RBAC cannot grant without their private keys.
 */
import type { KubeObject } from './model.js';
import { findObjectIn, kubeObject, readSecret } from './objects.js';

/**
 * The keys a published certificate ConfigMap carries, both from the Secret: `tls.crt`, the gateway's certificate
 * chain; `ca.crt`, the CAs it verifies its peer with. Never `tls.key`, nor any other key of the Secret.
 */
export const PUBLISHED_CERTIFICATE_KEYS = ['tls.crt', 'ca.crt'] as const;

/** What a published certificate ConfigMap holds. */
export type PublishedCertificates = Partial<Record<(typeof PUBLISHED_CERTIFICATE_KEYS)[number], string>>;

/** The name of the ConfigMap that publishes the certificates of Secret `secretName` (in the same namespace). */
export function publishedCertificatesName(secretName: string): string {
  return `${secretName}${CERTIFICATES_SUFFIX}`;
}

const CERTIFICATES_SUFFIX = '.crt';

/**
 * A ConfigMap published beside `secret`: named `<secret><suffix>`, in its namespace, with its labels (so that it is
 * planned, pruned and removed with it), holding `data` (`what` names it in the error).
 * @throws Error when a value holds a private key: that is a planner's bug, and nothing may be written
 */
export function publishedBeside(secret: KubeObject, suffix: string, data: Record<string, string>, what: string): KubeObject {
  const leaking = Object.keys(data).find((key) => /PRIVATE KEY/.test(data[key]!));
  if (leaking !== undefined) throw new Error(`${what.replace('%s', leaking)} of Secret ${secret.metadata.namespace}/${secret.metadata.name} holds a private key: it is not published`);
  return kubeObject('v1', 'ConfigMap', `${secret.metadata.name}${suffix}`, secret.metadata.namespace, { ...(secret.metadata.labels ?? {}) }, { data });
}

/**
 * The ConfigMap that publishes the certificates of a planned `secret` (same namespace and labels), or undefined when
 * it holds no certificate yet (a pending request's key alone).
 * @throws Error when a value to publish holds a private key: that is a planner's bug, and nothing may be written
 */
export function publishedCertificates(secret: KubeObject): KubeObject | undefined {
  const stored = readSecret(secret) ?? {};
  if (!stored['tls.crt']) return undefined;
  const data = Object.fromEntries(PUBLISHED_CERTIFICATE_KEYS.filter((key) => stored[key] !== undefined).map((key) => [key, stored[key]!]));
  return publishedBeside(secret, CERTIFICATES_SUFFIX, data, '%s');
}

/** A planned certificate Secret and, once it holds a certificate, the ConfigMap that publishes it. */
export function withPublishedCertificates(secret: KubeObject): KubeObject[] {
  const published = publishedCertificates(secret);
  return published ? [secret, published] : [secret];
}

/**
 * The certificates of Secret `namespace/secretName` as published beside it, from objects read or planned; undefined
 * when there is no such ConfigMap (a gateway set up by an earlier version gets one at the next export or import).
 */
export function readPublishedCertificates(objects: readonly KubeObject[], namespace: string | undefined, secretName: string): PublishedCertificates | undefined {
  const found = findObjectIn(objects, 'ConfigMap', namespace, publishedCertificatesName(secretName));
  if (!found) return undefined;
  const data = (found.data ?? {}) as Record<string, string>;
  return Object.fromEntries(PUBLISHED_CERTIFICATE_KEYS.filter((k) => data[k]).map((k) => [k, data[k]!])) as PublishedCertificates;
}

/**
 * The certificates of a gateway credential as whoever reads them can: from the Secret when its data was read (the
 * operator's roles), else from the ConfigMap published beside it (the viewer role, which reads no Secret).
 */
export function credentialCertificates(objects: readonly KubeObject[], namespace: string | undefined, secretName: string): PublishedCertificates & { from?: 'Secret' | 'ConfigMap' } {
  const stored = readSecret(findObjectIn(objects, 'Secret', namespace, secretName));
  if (stored?.['tls.crt']) {
    return { 'tls.crt': stored['tls.crt'], ...(stored['ca.crt'] ? { 'ca.crt': stored['ca.crt'] } : {}), from: 'Secret' };
  }
  const published = readPublishedCertificates(objects, namespace, secretName);
  return published?.['tls.crt'] ? { ...published, from: 'ConfigMap' } : {};
}
