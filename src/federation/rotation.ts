/**
 * Consumer-side certificate rotation with both contexts at hand: new client keys and certificates for the imports of
 * one provider, signed by the provider's federation CA (the next one during a CA rotation), with the CAs the provider
 * trusts. Pure: the provider's CA comes in as data ({@link federationCaStateIn}).
 */
import { createCertificateRequest, generateKeyPair, inspectCertificate, signClientCertificate } from '../pki/index.js';
import { withPublishedCertificates } from './certificates.js';
import { FederationInputError } from './errors.js';
import type { ClusterPlan, ConsumerSnapshot, KubeObject, ProviderSnapshot } from './model.js';
import { FEDERATION_CA_SECRET, names } from './naming.js';
import { emptyPlan, finishPlan, homeNamespaceOf, readSecret, secretData } from './objects.js';
import { clientSigner, federationCaObjects, federationCaSecret, federationCaStateIn, trustBundle, type FederationCaState } from './provider.js';
import { readImportRecords, type ImportRecord } from './records.js';

/** What a consumer's rotation renews. */
export interface ClientRotation {
  consumerClusterId: string;
  /** The egress gateway's SPIFFE id, for a binding whose stored certificate cannot be read (else its own is kept). */
  spiffeId: string;
  /** The provider's cluster id. */
  providerClusterId: string;
  /** Only this import (`namespace/localName`); default: every import of the provider. */
  only?: { namespace: string; localName: string };
  /** Lifetime of the new client certificates in days; default 365 (never beyond the CA's). */
  validityDays?: number;
  now?: Date;
}

/** The two halves of a direct client rotation. */
export interface ClientRotationPlan {
  /** Consumer: the binding Secrets with new keys and certificates, and the CAs the provider trusts. */
  consumer: ClusterPlan;
  /** Provider: during a CA rotation, its CA Secret noting that the next CA signed for this consumer; else nothing. */
  provider: ClusterPlan;
  /** The imports renewed, as `namespace/localName`. */
  imports: string[];
  /** Shared-root imports of the provider, which hold no federation certificate (nothing to renew). */
  skipped: string[];
}

/**
 * Plans new client certificates for a consumer's boundary imports of one provider.
 * @throws FederationInputError when the provider has no federation CA or the consumer imports nothing from it
 */
export function planClientRotation(consumer: ConsumerSnapshot, provider: ProviderSnapshot, rotation: ClientRotation): ClientRotationPlan {
  const ca = federationCaStateIn(provider, rotation.now);
  if (!ca) throw new FederationInputError(`cluster ${provider.clusterId} has no federation CA: it exports nothing`, '--from');
  const all = readImportRecords(consumer).filter((r) => r.endpoint.providerClusterId === rotation.providerClusterId);
  const chosen = rotation.only ? all.filter((r) => r.namespace === rotation.only!.namespace && r.localName === rotation.only!.localName) : all;
  if (chosen.length === 0) {
    if (!rotation.only) throw new FederationInputError(`cluster ${consumer.clusterId} imports nothing from ${rotation.providerClusterId}: there is no client certificate to renew`, '--from');
    throw new FederationInputError(`cluster ${consumer.clusterId} has no import ${rotation.only.namespace}/${rotation.only.localName} of ${rotation.providerClusterId} (its imports of it: ${all.map((r) => `${r.namespace}/${r.localName}`).join(', ') || 'none'})`, '--name');
  }
  const boundary = chosen.filter((r) => r.endpoint.mode === 'boundary');
  const plan = emptyPlan(consumer.clusterId);
  const home = homeNamespaceOf(consumer);
  const done = new Set<string>();
  for (const record of boundary) {
    const name = names.binding(record.endpoint.providerClusterId, record.endpoint.namespace, record.endpoint.exportName);
    if (done.has(name)) continue;
    done.add(name);
    plan.objects.push(...withPublishedCertificates(renewedBinding(consumer, home, name, record, ca, rotation)));
    plan.secretsWithPrivateKeys.push(`${home}/${name}`);
  }
  const providerPlan = emptyPlan(provider.clusterId);
  if (ca.next && boundary.length > 0 && !ca.renewed.includes(rotation.consumerClusterId)) {
    providerPlan.objects.push(...federationCaObjects({ ...ca, renewed: [...ca.renewed, rotation.consumerClusterId] }, homeNamespaceOf(provider)));
    providerPlan.secretsWithPrivateKeys.push(`${federationCaSecret(ca).metadata.namespace}/${FEDERATION_CA_SECRET}`);
  }
  return {
    consumer: finishPlan(plan),
    provider: finishPlan(providerPlan),
    imports: boundary.map((r) => `${r.namespace}/${r.localName}`),
    skipped: chosen.filter((r) => r.endpoint.mode !== 'boundary').map((r) => `${r.namespace}/${r.localName}`),
  };
}

/** The binding Secret as it is, with a new key, a certificate for it and the CAs to trust. */
function renewedBinding(consumer: ConsumerSnapshot, home: string, name: string, record: ImportRecord, ca: FederationCaState, rotation: ClientRotation): KubeObject {
  const live = consumer.existing.find((o) => o.kind === 'Secret' && o.metadata.namespace === home && o.metadata.name === name);
  if (!live) {
    throw new FederationInputError(`Secret ${home}/${name} of import ${record.namespace}/${record.localName} is missing: import it again (kubectl meshfed import) instead of rotating`);
  }
  const stored = readSecret(live) ?? {};
  // The identity the provider admits is the one the current certificate carries (the gateway it was made for).
  let spiffeId = rotation.spiffeId;
  try {
    spiffeId = inspectCertificate(stored['tls.crt'] ?? '').uris.find((u) => u.startsWith('spiffe://')) ?? spiffeId;
  } catch {
    // No readable certificate: the egress gateway's default identity.
  }
  const keys = generateKeyPair();
  const csrPem = createCertificateRequest({ privateKeyPem: keys.privateKeyPem, commonName: `${rotation.consumerClusterId} federation egress`, spiffeId });
  const certificatePem = signClientCertificate({
    ca: clientSigner(ca), csrPem, expectSpiffeId: spiffeId,
    ...(rotation.now ? { now: rotation.now } : {}), ...(rotation.validityDays ? { validityDays: rotation.validityDays } : {}),
  });
  // Other keys (a pending re-keying request's key) and the metadata stay as they are.
  const data = { ...stored, 'tls.crt': certificatePem, 'tls.key': keys.privateKeyPem, 'ca.crt': trustBundle(ca) };
  return {
    apiVersion: 'v1', kind: 'Secret',
    metadata: {
      name, namespace: home, labels: { ...(live.metadata.labels ?? {}) },
      ...(live.metadata.annotations ? { annotations: { ...live.metadata.annotations } } : {}),
    },
    type: (live as { type?: string }).type ?? 'Opaque',
    data: secretData(data),
  } as KubeObject;
}
