/**
 * The documents two clusters exchange when no one holds both kubeconfigs: the consumer's ImportRequest
 * (its identity and, for boundary mode, a CSR whose key stays in the consumer cluster) and the provider's
 * ExportBundle (how to reach the export, the federation CA, the signed client certificate).
 *
 * Both are YAML with `apiVersion: meshfed.io/v1alpha1`, never contain a private key, and are signed over a
 * canonical JSON serialisation of `{apiVersion, kind, spec}`: the request by the consumer's new key (proving
 * possession), the bundle by the provider's federation CA key.
 */
import { createHash, createPublicKey } from 'node:crypto';
import YAML from 'yaml';
import {
  createCertificateRequest, generateKeyPair, inspectCertificate, inspectCertificateRequest, keyMatchesCertificate,
  PkiError, signClientCertificate, signDetached, splitPemBundle, verifyCertificateChain, verifyDetached,
} from '../pki/index.js';
import { publishedBeside } from './certificates.js';
import { checkLocalName, type ImportCredentials } from './consumer.js';
import { BundleError, FederationInputError } from './errors.js';
import type { ClusterPlan, ClusterSnapshot, ConsumerIdentity, ConsumerSnapshot, ExportEndpoint, KubeObject, ProviderSnapshot } from './model.js';
import {
  bindingLabel, checkDnsLabel, consumerGatewaySpiffeId, FEDERATION_DOMAIN, GATEWAY_NAMES, isDnsLabel, LABELS, MANAGED_BY, MANAGED_BY_LABEL, names, REQUEST_NONCE_ANNOTATION,
} from './naming.js';
import { checkSupportedIstio, emptyPlan, findObject, finishPlan, gatewayNamespaceOf, homeNamespaceOf, kubeObject, meshfedLabels, readSecret, secretData } from './objects.js';
import { clientSigner, federationCaStateOf, noteClientRenewal, planAdmission, trustBundle, type ExportPlan, type PlanOptions } from './provider.js';
import { readExportRecords, readImportRecords, type ImportRecord } from './records.js';
import { checkTrustDomain } from './trust.js';

/** apiVersion of the exchange documents. */
export const EXCHANGE_API_VERSION = 'meshfed.io/v1alpha1' as const;
/** Default lifetime of an import request. */
export const DEFAULT_REQUEST_TTL_HOURS = 72;
/** Default lifetime of an export bundle (the time to import it, not the certificate's validity). */
export const DEFAULT_BUNDLE_TTL_HOURS = 72;
/** Clock difference tolerated between the two clusters' operators. */
const SKEW_MS = 5 * 60 * 1000;

/** Which export an import request asks for. */
export interface ExportRef {
  providerClusterId: string;
  namespace: string;
  exportName: string;
}

/** The consumer's request to be admitted to an export. */
export interface ImportRequest {
  apiVersion: typeof EXCHANGE_API_VERSION;
  kind: 'ImportRequest';
  spec: {
    consumerClusterId: string;
    /** The consumer mesh's trust domain. */
    trustDomain: string;
    /** Namespace the export will be imported into (shared-root: the calling workloads' namespace). */
    namespace: string;
    /** Shared-root: service accounts of the calling workloads. */
    serviceAccounts: string[];
    export: ExportRef;
    /** PKCS#10 request for the egress gateway's client certificate (boundary; present in both modes). */
    csr: string;
    /** Public key of the request's key pair; signs this document. */
    publicKeyPem: string;
    /** Binds the bundle to this request. */
    nonce: string;
    createdAt: string;
    expiresAt: string;
  };
  /** base64 signature by the request's key over the canonical form. */
  signature: string;
}

/** The provider's answer to an import request. */
export interface ExportBundle {
  apiVersion: typeof EXCHANGE_API_VERSION;
  kind: 'ExportBundle';
  spec: {
    endpoint: ExportEndpoint;
    consumerClusterId: string;
    /** The request's nonce. */
    nonce: string;
    createdAt: string;
    expiresAt: string;
    /** The provider's federation CA: it signed this bundle, the client certificate and the gateway's server certificate. */
    federationCaPem: string;
    /** Boundary: the consumer gateway's client certificate. */
    clientCertificatePem?: string;
    /** Shared-root: SHA-256 fingerprint of the provider mesh root CA, to compare with the consumer's. */
    providerRootCaFingerprint?: string;
  };
  /** base64 signature by the federation CA key over the canonical form. */
  signature: string;
}

/** Recursively key-sorted JSON: the bytes that are signed. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>).filter(([, v]) => v !== undefined).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

function signedBytes(doc: { apiVersion: string; kind: string; spec: unknown }): string {
  return canonicalJson({ apiVersion: doc.apiVersion, kind: doc.kind, spec: doc.spec });
}

const PRIVATE_KEY = /PRIVATE KEY/;

/**
 * YAML of an exchange document.
 * @throws BundleError `contains-private-key` if any private key material slipped in
 */
export function serializeDocument(doc: ImportRequest | ExportBundle): string {
  const text = YAML.stringify(doc, { lineWidth: 0 });
  if (PRIVATE_KEY.test(text)) throw new BundleError('contains-private-key', `the ${doc.kind} would contain a private key; refusing to write it`);
  return text;
}

function fingerprint(publicKeyPem: string): string {
  const der = createPublicKey(publicKeyPem).export({ type: 'spki', format: 'der' });
  return createHash('sha256').update(der).digest('hex').toUpperCase().match(/../g)!.join(':');
}

/** SHA-256 fingerprint (`AB:CD:...`) of a certificate, as the bundle carries for root CAs. */
export function certificateFingerprint(pem: string): string {
  return inspectCertificate(pem).fingerprintSha256;
}

/**
 * Starts an import: a new key pair for the consumer's egress gateway (kept in a pending Secret of the consumer
 * cluster), a CSR for it, and a signed request to hand to the provider.
 *
 * ```ts
 * const { request, plan } = createImportRequest(consumer, { consumerClusterId: 'cluster1', namespace: 'default',
 *   export: { providerClusterId: 'cluster2', namespace: 'bookinfo', exportName: 'myreviews' } });
 * // apply plan (the pending key Secret), write serializeDocument(request) for the provider
 * ```
 */
export function createImportRequest(
  snapshot: ConsumerSnapshot,
  input: { consumerClusterId: string; namespace: string; serviceAccounts?: string[]; export: ExportRef; localName?: string },
  options: { now?: Date; ttlHours?: number } = {},
): { request: ImportRequest; plan: ClusterPlan } {
  checkSupportedIstio(snapshot);
  checkDnsLabel(input.consumerClusterId, 'consumer cluster id', '--to');
  checkDnsLabel(input.namespace, 'namespace', '--namespace');
  checkDnsLabel(input.export.providerClusterId, 'provider cluster id', '--from');
  checkDnsLabel(input.export.namespace, 'export namespace', '--export-namespace');
  checkDnsLabel(input.export.exportName, 'export name', '--export');
  const serviceAccounts = input.serviceAccounts?.length ? input.serviceAccounts : ['default'];
  for (const sa of serviceAccounts) checkDnsLabel(sa, 'service account', '--service-account');
  // The name apps will call, checked now rather than when the bundle comes back: a clash found then would cost the
  // provider's admin a round for nothing.
  const localName = requestLocalName(snapshot, input);
  if (localName) checkLocalName(snapshot, input.namespace, localName, input.export);
  const now = options.now ?? new Date();
  const expires = new Date(now.getTime() + (options.ttlHours ?? DEFAULT_REQUEST_TTL_HOURS) * 3_600_000);
  const keys = generateKeyPair();
  const gatewayNamespace = snapshot.existingGateway?.namespace ?? gatewayNamespaceOf(snapshot);
  const spiffeId = consumerGatewaySpiffeId(input.consumerClusterId, gatewayNamespace, GATEWAY_NAMES.egress);
  const csr = createCertificateRequest({ privateKeyPem: keys.privateKeyPem, commonName: `${input.consumerClusterId} federation egress`, spiffeId });
  // The key is fresh for every request, so a digest of it and the time is a nonce without another random source.
  const nonce = createHash('sha256').update(`${keys.publicKeyPem}\0${now.toISOString()}`).digest('hex').slice(0, 32);
  const spec: ImportRequest['spec'] = {
    consumerClusterId: input.consumerClusterId,
    trustDomain: snapshot.trustDomain ?? 'cluster.local',
    namespace: input.namespace,
    serviceAccounts,
    export: { ...input.export },
    csr: unixLines(csr),
    publicKeyPem: unixLines(keys.publicKeyPem),
    nonce,
    createdAt: now.toISOString(),
    expiresAt: expires.toISOString(),
  };
  const unsigned = { apiVersion: EXCHANGE_API_VERSION, kind: 'ImportRequest' as const, spec };
  const request: ImportRequest = { ...unsigned, signature: signDetached(keys.privateKeyPem, signedBytes(unsigned)) };

  const home = homeNamespaceOf(snapshot);
  const name = names.binding(input.export.providerClusterId, input.export.namespace, input.export.exportName);
  const plan = emptyPlan(snapshot.clusterId);
  if (!snapshot.existingGateway) plan.objects.push(kubeObject('v1', 'Namespace', home, undefined, { [MANAGED_BY_LABEL]: MANAGED_BY }, {}));
  const secret = kubeObject('v1', 'Secret', name, home, meshfedLabels('binding', {
    [LABELS.binding]: bindingLabel(input.export.providerClusterId, input.export.namespace, input.export.exportName),
    [LABELS.provider]: input.export.providerClusterId,
  }), { type: 'Opaque', data: secretData(keyData(readSecret(findObject(snapshot, 'Secret', home, name)), keys.privateKeyPem)) });
  secret.metadata.annotations = {
    [REQUEST_NONCE_ANNOTATION]: nonce, [PENDING_CONSUMER]: input.consumerClusterId, [PENDING_EXPIRES]: spec.expiresAt,
    [PENDING_EXPORT]: exportRefText(input.export), [PENDING_NAMESPACE]: input.namespace,
    [PENDING_ACCOUNTS]: serviceAccounts.join(','),
    ...(input.localName !== undefined ? { [PENDING_LOCAL_NAME]: input.localName } : {}),
  };
  // What a viewer may see of the request (no key) is published beside the Secret, written with it.
  plan.objects.push(secret, publishedRequest(secret));
  plan.secretsWithPrivateKeys.push(`${home}/${name}`);
  return { request, plan: finishPlan(plan) };
}

/** Where a binding Secret that already serves an import keeps the key of a newer request (re-keying). */
const PENDING_KEY = 'pending.key';

/**
 * The binding Secret's data for a new request's key. A working import keeps its key and certificate (the egress
 * gateway serves traffic with them) until the bundle for the new key is imported; the new key waits beside them.
 */
function keyData(current: Record<string, string> | undefined, privateKeyPem: string): Record<string, string> {
  if (current?.['tls.crt'] && current['tls.key']) {
    return { 'tls.key': current['tls.key'], 'tls.crt': current['tls.crt'], ...(current['ca.crt'] ? { 'ca.crt': current['ca.crt'] } : {}), [PENDING_KEY]: privateKeyPem };
  }
  return { 'tls.key': privateKeyPem };
}

const PENDING_CONSUMER = 'meshfed.io/request-consumer';
const PENDING_EXPIRES = 'meshfed.io/request-expires';
/** `<provider>/<namespace>/<export>` the request asks for, in full: the binding label may be shortened with a hash. */
const PENDING_EXPORT = 'meshfed.io/request-export';
/** The namespace the request imports into, so that `unimport -n <namespace> --name <export>` finds it. */
const PENDING_NAMESPACE = 'meshfed.io/request-namespace';
/** The service accounts the request asks to admit (comma-separated), recorded with the import for verify's probe. */
const PENDING_ACCOUNTS = 'meshfed.io/request-service-accounts';

/** The local name the request was made for (`import --name … --request-out`), which `import --bundle` then uses. */
const PENDING_LOCAL_NAME = 'meshfed.io/request-local-name';

/**
 * The local name an import request reserves: `--name`, else the export's name; none for a request that re-keys an
 * import of the export in that namespace without `--name` (the import keeps its name).
 */
export function requestLocalName(snapshot: ConsumerSnapshot, input: { namespace: string; export: ExportRef; localName?: string }): string | undefined {
  if (input.localName !== undefined) return input.localName;
  const rekeys = readImportRecords(snapshot).some((r) => r.namespace === input.namespace && exportRefText(r.endpoint) === exportRefText(input.export));
  return rekeys ? undefined : input.export.exportName;
}

/**
 * The local name a pending import request was made for (`--name` with `--request-out`), as recorded by
 * {@link createImportRequest}; undefined when none was given (the export's name applies), for no pending request, or
 * for one made by an earlier version.
 */
export function pendingLocalName(snapshot: ConsumerSnapshot, ref: ExportRef): string | undefined {
  const secret = findObject(snapshot, 'Secret', homeNamespaceOf(snapshot), names.binding(ref.providerClusterId, ref.namespace, ref.exportName));
  return secret?.metadata.annotations?.[PENDING_LOCAL_NAME] || undefined;
}

/**
 * The service accounts a pending import request asked the provider to admit (shared-root), as recorded by
 * {@link createImportRequest}; undefined for no pending request, or one made by an earlier version.
 */
export function pendingServiceAccounts(snapshot: ConsumerSnapshot, ref: ExportRef): string[] | undefined {
  const secret = findObject(snapshot, 'Secret', homeNamespaceOf(snapshot), names.binding(ref.providerClusterId, ref.namespace, ref.exportName));
  const text = secret?.metadata.annotations?.[PENDING_ACCOUNTS];
  return text ? text.split(',').filter(Boolean) : undefined;
}

/** `<provider>/<namespace>/<export>`: how messages, status and `--export` name an export of another cluster. */
export function exportRefText(ref: ExportRef): string {
  return `${ref.providerClusterId}/${ref.namespace}/${ref.exportName}`;
}

/** The export a pending Secret's request asks for: from its annotation, else (Secrets of earlier versions) its labels. */
function requestedExport(secret: KubeObject, provider: string): ExportRef {
  const [providerClusterId, namespace, exportName, ...rest] = (secret.metadata.annotations?.[PENDING_EXPORT] ?? '').split('/');
  if (providerClusterId && namespace && exportName && rest.length === 0) return { providerClusterId, namespace, exportName };
  // The binding label reads <provider>.<namespace>.<export> (see bindingLabel); a label shortened with a hash does
  // not parse back, and pendingRequestOf then finds no Secret under the parsed name, so such a request is left out.
  const binding = secret.metadata.labels?.[LABELS.binding] ?? '';
  const labelRest = binding.startsWith(`${provider}.`) ? binding.slice(provider.length + 1) : binding;
  const [labelNamespace = '', ...exportParts] = labelRest.split('.');
  return { providerClusterId: provider, namespace: labelNamespace, exportName: exportParts.join('.') };
}

/**
 * The pending key of an import request, as stored in the consumer cluster by {@link createImportRequest}.
 * @returns undefined when there is no pending request for that export
 */
export function pendingRequestOf(snapshot: ConsumerSnapshot, ref: ExportRef): { privateKeyPem: string; nonce: string; consumerClusterId: string } | undefined {
  const secret = findObject(snapshot, 'Secret', homeNamespaceOf(snapshot), names.binding(ref.providerClusterId, ref.namespace, ref.exportName));
  const data = readSecret(secret);
  const key = data?.[PENDING_KEY] ?? data?.['tls.key'];
  const annotations = secret?.metadata.annotations ?? {};
  if (!key || !annotations[REQUEST_NONCE_ANNOTATION] || !annotations[PENDING_CONSUMER]) return undefined;
  return { privateKeyPem: key, nonce: annotations[REQUEST_NONCE_ANNOTATION]!, consumerClusterId: annotations[PENDING_CONSUMER]! };
}

/** An import request this consumer cluster has sent and not completed: the export it asks for. */
export interface PendingRequest extends ExportRef {
  /** The namespace it imports into; absent for requests made by earlier versions, which did not record it. */
  importNamespace?: string;
  /** The local name it was made for (`--name`); absent when none was given (the export's name applies). */
  localName?: string;
  /** When the request expires (ISO 8601); absent for requests made by earlier versions. */
  expiresAt?: string;
  /**
   * Whether the request is published beside its Secret ({@link publishedRequest}), as who may not read Secrets (the
   * viewer role) sees it: false for a request made by a version that did not publish requests. Absent when the
   * request was read from its copy.
   */
  published?: boolean;
}

/**
 * The name of the ConfigMap that publishes the pending import request kept in Secret `secretName` (same namespace),
 * as `<secret>.crt` publishes a gateway's certificates.
 */
export function publishedRequestName(secretName: string): string {
  return `${secretName}${REQUEST_SUFFIX}`;
}

const REQUEST_SUFFIX = '.request';

/** The key of a published request's ConfigMap. */
const PUBLISHED_REQUEST_KEY = 'request.json';

/** What a published import request says: what a viewer needs to see about it (never a key, nor the CSR). */
interface PublishedRequestData {
  export: ExportRef;
  /** The namespace it imports into. */
  namespace?: string;
  /** The local name it was made for (`--name`), when one was given. */
  localName?: string;
  consumerClusterId: string;
  serviceAccounts?: string[];
  expiresAt?: string;
  /** The request's nonce: which request of the Secret the copy is of. */
  nonce: string;
}

/**
 * The ConfigMap that publishes a pending import request kept in `secret` (same namespace and labels): the export it
 * asks for, the namespace it imports into, the consumer, the service accounts, its expiry and nonce, all from the
 * Secret's annotations. Written and removed with the Secret, so that `status` and `verify` show pending requests to a
 * user who may not read Secrets (the viewer role), which RBAC cannot grant without their private keys.
 * @throws Error when a value to publish holds a private key: that is a planner's bug, and nothing may be written
 */
export function publishedRequest(secret: KubeObject): KubeObject {
  const annotations = secret.metadata.annotations ?? {};
  const provider = secret.metadata.labels?.[LABELS.provider] ?? '';
  const accounts = annotations[PENDING_ACCOUNTS]?.split(',').filter(Boolean);
  const data: PublishedRequestData = {
    export: requestedExport(secret, provider),
    ...(annotations[PENDING_NAMESPACE] ? { namespace: annotations[PENDING_NAMESPACE] } : {}),
    ...(annotations[PENDING_LOCAL_NAME] ? { localName: annotations[PENDING_LOCAL_NAME] } : {}),
    consumerClusterId: annotations[PENDING_CONSUMER] ?? '',
    ...(accounts?.length ? { serviceAccounts: accounts } : {}),
    ...(annotations[PENDING_EXPIRES] ? { expiresAt: annotations[PENDING_EXPIRES] } : {}),
    nonce: annotations[REQUEST_NONCE_ANNOTATION] ?? '',
  };
  return publishedBeside(secret, REQUEST_SUFFIX, { [PUBLISHED_REQUEST_KEY]: `${JSON.stringify(data, null, 2)}\n` }, 'the import request');
}

/** The published request a ConfigMap holds, or undefined when it is not one (or not readable as one). */
function readPublishedRequest(object: KubeObject): PublishedRequestData | undefined {
  if (object.kind !== 'ConfigMap' || !object.metadata.name.endsWith(REQUEST_SUFFIX) || object.metadata.labels?.[MANAGED_BY_LABEL] !== MANAGED_BY) return undefined;
  try {
    const data = JSON.parse((object.data as Record<string, string> | undefined)?.[PUBLISHED_REQUEST_KEY] ?? '') as PublishedRequestData;
    const e = data.export;
    return e && typeof e.providerClusterId === 'string' && typeof e.namespace === 'string' && typeof e.exportName === 'string' && typeof data.nonce === 'string' ? data : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The import requests published in the meshfed home namespace ({@link publishedRequest}), as who may not read Secrets
 * (the viewer role) sees pending requests. A request made by a version that did not publish requests has no copy.
 */
export function publishedRequests(snapshot: ClusterSnapshot): PendingRequest[] {
  return publishedRequestsIn(snapshot.existing, homeNamespaceOf(snapshot));
}

/** The import requests published among `objects` (in `namespace`, or in any). */
export function publishedRequestsIn(objects: readonly KubeObject[], namespace?: string): PendingRequest[] {
  return objects.filter((o) => namespace === undefined || o.metadata.namespace === namespace).flatMap((o) => {
    const data = readPublishedRequest(o);
    if (!data) return [];
    return [{
      ...data.export, ...(data.namespace ? { importNamespace: data.namespace } : {}), ...(data.localName ? { localName: data.localName } : {}),
      ...(data.expiresAt ? { expiresAt: data.expiresAt } : {}),
    }];
  });
}

/**
 * Copies of import requests that are no longer pending: the request was completed or cancelled and the copy was left
 * (its removal failed; the next run of the same command removes it). Only who may list the Secrets can tell.
 */
export function stalePublishedRequests(snapshot: ClusterSnapshot): ExportRef[] {
  const home = homeNamespaceOf(snapshot);
  if (snapshot.unreadableSecrets?.includes(home)) return [];
  return snapshot.existing.filter((o) => o.metadata.namespace === home).flatMap((o) => {
    const data = readPublishedRequest(o);
    if (!data) return [];
    const secret = findObject(snapshot, 'Secret', home, o.metadata.name.slice(0, -REQUEST_SUFFIX.length));
    return secret?.metadata.annotations?.[REQUEST_NONCE_ANNOTATION] === data.nonce ? [] : [data.export];
  });
}

/** The removal of the published copy of the request kept in Secret `home/name`, when there is one. */
export function removePublishedRequest(snapshot: ClusterSnapshot, plan: ClusterPlan, home: string, name: string): void {
  const copy = publishedRequestName(name);
  if (findObject(snapshot, 'ConfigMap', home, copy)) plan.remove.push({ apiVersion: 'v1', kind: 'ConfigMap', namespace: home, name: copy });
}

/**
 * The exports this consumer cluster has sent an import request for and not imported yet (the request's key is still
 * pending in the meshfed home namespace), for `status` and `unimport`.
 */
export function pendingRequests(snapshot: ConsumerSnapshot): PendingRequest[] {
  const home = homeNamespaceOf(snapshot);
  const refs: PendingRequest[] = [];
  for (const secret of snapshot.existing) {
    const provider = secret.metadata.labels?.[LABELS.provider];
    if (secret.kind !== 'Secret' || !provider || secret.metadata.namespace !== home || !secret.metadata.annotations?.[REQUEST_NONCE_ANNOTATION]) continue;
    const ref = requestedExport(secret, provider);
    const importNamespace = secret.metadata.annotations[PENDING_NAMESPACE];
    const localName = secret.metadata.annotations[PENDING_LOCAL_NAME];
    // Listed as metadata (status reads no Secret data): its annotations tell a pending request; with its data, its key too.
    const pending = secret.data === undefined
      ? secret.metadata.annotations[PENDING_CONSUMER] !== undefined && findObject(snapshot, 'Secret', home, names.binding(ref.providerClusterId, ref.namespace, ref.exportName)) === secret
      : pendingRequestOf(snapshot, ref) !== undefined;
    if (!pending) continue;
    const expiresAt = secret.metadata.annotations[PENDING_EXPIRES];
    const copy = findObject(snapshot, 'ConfigMap', home, publishedRequestName(secret.metadata.name));
    refs.push({
      ...ref, ...(importNamespace ? { importNamespace } : {}), ...(localName ? { localName } : {}), ...(expiresAt ? { expiresAt } : {}),
      published: copy !== undefined && readPublishedRequest(copy)?.nonce === secret.metadata.annotations[REQUEST_NONCE_ANNOTATION],
    });
  }
  return refs;
}

/**
 * Cancels an import request that was never completed: deletes the Secret that keeps its key (and the request's
 * published copy; a copy left by a cancellation or completion stopped half-way alone), so that no bundle made
 * for it can be imported any more. A provider that admitted the request already keeps admitting this cluster until
 * it revokes it.
 *
 * ```ts
 * const plan = planCancelRequest(consumer, { providerClusterId: 'production', namespace: 'db', exportName: 'postgres' });
 * ```
 * @throws FederationInputError (flag `--export`) when no request for that export is pending, or when the export is
 *   imported already (a re-keying request: its Secret also holds the key in use; unimport the import instead)
 */
export function planCancelRequest(snapshot: ConsumerSnapshot, ref: ExportRef): ClusterPlan {
  const wanted = exportRefText(ref);
  const pending = pendingRequests(snapshot);
  const home = homeNamespaceOf(snapshot);
  const name = names.binding(ref.providerClusterId, ref.namespace, ref.exportName);
  if (!pending.some((p) => exportRefText(p) === wanted) && stalePublishedRequests(snapshot).some((p) => exportRefText(p) === wanted)) {
    // A cancellation (or completion) that removed the Secret and not its copy: removing the copy finishes it.
    const plan = emptyPlan(snapshot.clusterId);
    removePublishedRequest(snapshot, plan, home, name);
    return finishPlan(plan);
  }
  if (!pending.some((p) => exportRefText(p) === wanted)) {
    const known = pending.map(exportRefText).join(', ') || 'none';
    throw new FederationInputError(`no import request for ${wanted} is pending in cluster ${snapshot.clusterId} (pending: ${known})`, '--export');
  }
  const imports = readImportRecords(snapshot).filter((r) => exportRefText(r.endpoint) === wanted);
  if (imports.length > 0) {
    const where = imports.map((r) => `${r.namespace}/${r.localName}`).join(', ');
    throw new FederationInputError(`${wanted} is imported already (as ${where}) and its pending request re-keys that import: `
      + 'complete it with import --bundle, or remove the import with unimport -n <namespace> --name <local name>', '--export');
  }
  const plan = emptyPlan(snapshot.clusterId);
  removePublishedRequest(snapshot, plan, home, name);
  plan.remove.push({ apiVersion: 'v1', kind: 'Secret', namespace: home, name });
  return finishPlan(plan);
}

/**
 * PEM with `\n` line ends. A PEM with `\r\n` (as some tools write it) YAML can only keep as an escaped double-quoted string:
 * exchange files people read and pass around carry PEM blocks as plain `|` blocks instead.
 */
function unixLines(pem: string): string {
  return pem.replace(/\r\n/g, '\n');
}

/** The same PEM text, whatever its line ends and surrounding whitespace (files from earlier versions kept `\r\n`). */
export function samePem(a: string, b: string): boolean {
  return unixLines(a).trim() === unixLines(b).trim();
}

/** What each exchange document is and who uses it, for a file handed to the wrong step. */
const EXCHANGE_STEPS: Record<string, { what: string; use: string }> = {
  ImportRequest: { what: 'an ImportRequest (step 1, written by the consumer)', use: 'the provider admits it with kubectl meshfed admit --request <file> --bundle-out bundle.yaml' },
  ExportBundle: { what: 'an ExportBundle (step 2, written by the provider)', use: 'the consumer completes the import with kubectl meshfed import --bundle <file>' },
};

function wrongKind(expected: string, got: unknown): string {
  const found = typeof got === 'string' ? EXCHANGE_STEPS[got] : undefined;
  // Both kinds begin with a vowel: "an" reads right for either.
  if (found) return `the file is ${found.what}, not an ${expected}: ${found.use}`;
  return `the file is not an ${expected} (${typeof got === 'string' ? `its kind is ${got}` : 'it has no kind'})`;
}

/**
 * Checks that `text` is an exchange document of `kind` (YAML, kind, apiVersion, spec and signature present, no
 * private key) without verifying its content, so that a file handed to the wrong step is named as such before a
 * command looks for what it refers to.
 * @throws BundleError malformed, unsupported-version or contains-private-key
 */
export function checkExchangeDocument(text: string, kind: 'ImportRequest' | 'ExportBundle'): void {
  parseYaml(text, kind);
}

function parseYaml(text: string, kind: string): Record<string, unknown> {
  if (PRIVATE_KEY.test(text)) throw new BundleError('contains-private-key', `the ${kind} contains a private key; it was not made by kubectl-meshfed (which never exports keys): discard it`);
  let doc: unknown;
  try {
    doc = YAML.parse(text);
  } catch (e) {
    throw new BundleError('malformed', `the ${kind} is not valid YAML: ${(e as Error).message.split('\n')[0]}`);
  }
  if (!doc || typeof doc !== 'object' || Array.isArray(doc)) throw new BundleError('malformed', `the ${kind} is not a YAML mapping`);
  const d = doc as Record<string, unknown>;
  if (d.kind !== kind) throw new BundleError('malformed', wrongKind(kind, d.kind));
  if (d.apiVersion !== EXCHANGE_API_VERSION) {
    throw new BundleError('unsupported-version', `${kind} apiVersion ${String(d.apiVersion)} is not supported (this kubectl-meshfed reads ${EXCHANGE_API_VERSION}); use the same kubectl-meshfed version on both sides`);
  }
  if (!d.spec || typeof d.spec !== 'object' || typeof d.signature !== 'string') throw new BundleError('malformed', `the ${kind} has no spec or no signature`);
  return d;
}

function requireStrings(spec: Record<string, unknown>, kind: string, keys: string[]): void {
  for (const k of keys) {
    if (typeof spec[k] !== 'string' || spec[k] === '') throw new BundleError('malformed', `the ${kind} has no ${k}`);
  }
}

function checkTimes(spec: { createdAt: string; expiresAt: string }, kind: string, now: Date): void {
  const created = Date.parse(spec.createdAt);
  const expires = Date.parse(spec.expiresAt);
  if (Number.isNaN(created) || Number.isNaN(expires)) throw new BundleError('malformed', `the ${kind} has unreadable createdAt/expiresAt times`);
  if (created - SKEW_MS > now.getTime()) throw new BundleError('not-yet-valid', `the ${kind} was created in the future (${spec.createdAt}); check the clocks`);
  if (expires < now.getTime()) throw new BundleError('expired', `the ${kind} expired at ${spec.expiresAt}; ask for a new one`);
}

/**
 * Reads and verifies an import request: format, signature by the key of its CSR, expiry.
 * @throws BundleError with code malformed, unsupported-version, contains-private-key, key-mismatch, bad-signature, expired or not-yet-valid
 */
export function parseImportRequest(text: string, options: { now?: Date } = {}): ImportRequest {
  const doc = parseYaml(text, 'ImportRequest');
  const spec = doc.spec as ImportRequest['spec'];
  requireStrings(spec as unknown as Record<string, unknown>, 'ImportRequest', ['consumerClusterId', 'trustDomain', 'namespace', 'csr', 'publicKeyPem', 'nonce', 'createdAt', 'expiresAt']);
  const ref = spec.export as ExportRef | undefined;
  if (!ref || typeof ref.providerClusterId !== 'string' || typeof ref.namespace !== 'string' || typeof ref.exportName !== 'string') {
    throw new BundleError('malformed', 'the ImportRequest does not say which export it asks for');
  }
  if (!Array.isArray(spec.serviceAccounts) || !spec.serviceAccounts.every((s) => typeof s === 'string')) throw new BundleError('malformed', 'the ImportRequest has no service account list');
  // Every name below ends up in the provider's policies (`<trustDomain>/ns/<namespace>/sa/<account>`): a wildcard or
  // a `/` there would admit workloads the consumer never named, so anything but plain names is refused.
  try {
    checkTrustDomain(spec.trustDomain, 'the ImportRequest\'s trust domain');
  } catch (e) {
    throw new BundleError('malformed', `${(e as Error).message}; the consumer's mesh must have a trust domain of that form`);
  }
  for (const [value, what] of [[spec.consumerClusterId, 'consumer cluster id'], [spec.namespace, 'namespace'], ...spec.serviceAccounts.map((sa) => [sa, 'service account'])] as Array<[string, string]>) {
    if (!isDnsLabel(value)) throw new BundleError('malformed', `the ImportRequest's ${what} "${value}" is not a DNS-1123 label (lower-case letters, digits and "-"; no wildcard)`);
  }
  let csrFingerprint: string;
  let keyFingerprint: string;
  try {
    csrFingerprint = inspectCertificateRequest(spec.csr).publicKeyFingerprint;
    keyFingerprint = fingerprint(spec.publicKeyPem);
  } catch (e) {
    throw new BundleError('malformed', `the ImportRequest's CSR or public key is unreadable: ${(e as Error).message}`);
  }
  if (csrFingerprint !== keyFingerprint) throw new BundleError('key-mismatch', 'the ImportRequest\'s CSR is for a different key than the one that signed the request; it was altered: ask for a new one');
  const request = doc as unknown as ImportRequest;
  if (!verifyDetached(spec.publicKeyPem, signedBytes(request), request.signature)) {
    throw new BundleError('bad-signature', 'the ImportRequest\'s signature does not match its content: it was altered after it was created; ask for a new one');
  }
  checkTimes(spec, 'ImportRequest', options.now ?? new Date());
  return request;
}

/**
 * Admits the consumer of a verified import request to the export it names and answers with a signed bundle.
 * Boundary mode signs the request's CSR with the federation CA (the SPIFFE id must be the consumer cluster's
 * own gateway id); shared-root admits the request's namespace and service accounts.
 * @throws FederationInputError when the export does not exist or the provider gateway has no address yet
 * @throws BundleError `foreign` when the CSR names another cluster's identity
 */
export function admitImportRequest(
  snapshot: ProviderSnapshot,
  request: ImportRequest,
  options: PlanOptions & { bundleTtlHours?: number; rootCaFingerprint?: string } = {},
): { plan: ExportPlan; bundle: ExportBundle } {
  const r = request.spec;
  if (r.export.providerClusterId !== snapshot.clusterId) {
    throw new BundleError('foreign', `the import request is for provider ${r.export.providerClusterId}, but this is ${snapshot.clusterId}; admit it in the context of cluster ${r.export.providerClusterId} (--from)`);
  }
  const now = options.now ?? new Date();
  const csr = inspectCertificateRequest(r.csr);
  const expectedDomain = `${r.consumerClusterId}.${FEDERATION_DOMAIN}`;
  if (!csr.spiffeId.startsWith(`spiffe://${expectedDomain}/`)) {
    throw new BundleError('foreign', `the import request from ${r.consumerClusterId} asks for identity ${csr.spiffeId}, which belongs to another cluster; refusing to sign it`);
  }
  // Boundary admits the consumer cluster's gateway, shared-root the calling workloads: keep only what the mode uses.
  const mode = readExportRecords(snapshot).find((e) => e.namespace === r.export.namespace && e.exportName === r.export.exportName)?.mode;
  const consumer: ConsumerIdentity = mode === 'shared-root'
    ? { clusterId: r.consumerClusterId, trustDomain: r.trustDomain, namespace: r.namespace, serviceAccounts: [...r.serviceAccounts] }
    : { clusterId: r.consumerClusterId, gatewaySpiffeId: csr.spiffeId };
  const plan = planAdmission(snapshot, { namespace: r.export.namespace, exportName: r.export.exportName, consumer }, options);
  if (!plan.endpoint) {
    throw new FederationInputError('the provider gateway has no external address yet, so consumers cannot reach it; wait for its LoadBalancer address and admit the request again');
  }
  // During a CA rotation the next CA signs the client certificate and the bundle names both CAs; the bundle itself is
  // signed by the current CA, the one the consumer already trusts, which so vouches for the next one.
  const caState = federationCaStateOf(plan);
  const ca = clientSigner(caState);
  if (plan.record.mode === 'boundary') noteClientRenewal(plan, r.consumerClusterId);
  let clientCertificatePem: string | undefined;
  if (plan.record.mode === 'boundary') {
    try {
      clientCertificatePem = signClientCertificate({
        ca, csrPem: r.csr, expectSpiffeId: csr.spiffeId, now,
        ...(options.certificateValidityDays ? { validityDays: options.certificateValidityDays } : {}),
      });
    } catch (e) {
      if (e instanceof PkiError) throw new BundleError('malformed', `the import request's CSR cannot be signed: ${e.message}`);
      throw e;
    }
  }
  const spec: ExportBundle['spec'] = {
    endpoint: plan.endpoint,
    consumerClusterId: r.consumerClusterId,
    nonce: r.nonce,
    createdAt: now.toISOString(),
    expiresAt: new Date(now.getTime() + (options.bundleTtlHours ?? DEFAULT_BUNDLE_TTL_HOURS) * 3_600_000).toISOString(),
    federationCaPem: unixLines(trustBundle(caState)),
    ...(clientCertificatePem ? { clientCertificatePem: unixLines(clientCertificatePem) } : {}),
    ...(plan.record.mode === 'shared-root' && (options.rootCaFingerprint ?? snapshot.rootCaPem)
      ? { providerRootCaFingerprint: options.rootCaFingerprint ?? certificateFingerprint(snapshot.rootCaPem!) }
      : {}),
  };
  const unsigned = { apiVersion: EXCHANGE_API_VERSION, kind: 'ExportBundle' as const, spec };
  const bundle: ExportBundle = { ...unsigned, signature: signDetached(caState.current.privateKeyPem, signedBytes(unsigned)) };
  return { plan, bundle };
}

/**
 * Reads and verifies an export bundle against the consumer's pending request.
 * @param options.expect the pending request ({@link pendingRequestOf}): nonce, consumer id and the key the client
 *   certificate must be for
 * @param options.trustedCaPem the provider's federation CA from an earlier import, when there is one: the bundle
 *   must be signed by it (otherwise the CA in the bundle is trusted on first use)
 * @throws BundleError malformed, unsupported-version, contains-private-key, bad-signature, expired, not-yet-valid,
 *   foreign (another consumer, another request, another CA) or key-mismatch
 */
export function parseExportBundle(
  text: string,
  options: { now?: Date; expect: { nonce: string; consumerClusterId: string; privateKeyPem?: string }; trustedCaPem?: string },
): ExportBundle {
  const doc = parseYaml(text, 'ExportBundle');
  const spec = doc.spec as ExportBundle['spec'];
  requireStrings(spec as unknown as Record<string, unknown>, 'ExportBundle', ['consumerClusterId', 'nonce', 'createdAt', 'expiresAt', 'federationCaPem']);
  const e = spec.endpoint as ExportEndpoint | undefined;
  if (!e || typeof e.sni !== 'string' || typeof e.gateway?.address !== 'string' || typeof e.port?.number !== 'number'
    || (e.mode !== 'boundary' && e.mode !== 'shared-root') || (e.protocol !== 'HTTP' && e.protocol !== 'TCP')) {
    throw new BundleError('malformed', 'the ExportBundle does not describe a complete export endpoint');
  }
  const now = options.now ?? new Date();
  const bundle = doc as unknown as ExportBundle;
  const signer = options.trustedCaPem ?? spec.federationCaPem;
  let signed: boolean;
  try {
    if (!inspectCertificate(spec.federationCaPem, now).isCA) throw new BundleError('malformed', 'the ExportBundle\'s federation CA is not a CA certificate');
    // A CA bundle (during and after a CA rotation, the consumer trusts two): any of its CAs may have signed it.
    signed = splitPemBundle(signer).some((pem) => verifyDetached(pem, signedBytes(bundle), bundle.signature));
  } catch (err) {
    if (err instanceof BundleError) throw err;
    throw new BundleError('malformed', `the ExportBundle's federation CA is unreadable: ${(err as Error).message}`);
  }
  if (!signed) {
    if (options.trustedCaPem && !samePem(options.trustedCaPem, spec.federationCaPem)) {
      const fingerprints = (pem: string) => splitPemBundle(pem).map((ca) => `SHA256:${certificateFingerprint(ca)}`).join(', ');
      const carried = fingerprints(spec.federationCaPem);
      throw new BundleError('foreign', `the ExportBundle carries federation CA ${carried} for provider ${e.providerClusterId}, and the CA this cluster already trusts for it (${fingerprints(options.trustedCaPem)}) did not sign it; `
        + `compare ${carried} with the fingerprint the provider's status prints: if the provider has a new federation CA, remove this cluster's imports from ${e.providerClusterId} (unimport) and import again, confirming the new CA; otherwise the bundle does not come from that provider`);
    }
    throw new BundleError('bad-signature', 'the ExportBundle\'s signature does not match its content: it was altered after the provider made it; ask for a new one');
  }
  checkTimes(spec, 'ExportBundle', now);
  if (spec.consumerClusterId !== options.expect.consumerClusterId) {
    throw new BundleError('foreign', `the ExportBundle is for consumer ${spec.consumerClusterId}, not ${options.expect.consumerClusterId}; use it in the cluster it was made for`);
  }
  if (spec.nonce !== options.expect.nonce) {
    throw new BundleError('foreign', 'the ExportBundle answers another import request than the one pending in this cluster; use the bundle made for the latest request, or create a new request');
  }
  if (e.mode === 'boundary') {
    if (typeof spec.clientCertificatePem !== 'string') throw new BundleError('malformed', 'the boundary-mode ExportBundle has no client certificate');
    const chain = verifyCertificateChain(spec.clientCertificatePem, [spec.federationCaPem], now);
    if (!chain.ok) throw new BundleError('bad-signature', `the ExportBundle's client certificate is not valid under its federation CA: ${chain.reason}`);
    if (options.expect.privateKeyPem && !keyMatchesCertificate(options.expect.privateKeyPem, spec.clientCertificatePem)) {
      throw new BundleError('key-mismatch', 'the ExportBundle\'s client certificate is for a different key than the one pending in this cluster; ask the provider to admit the current request');
    }
  }
  return bundle;
}

/** Certificates with fewer days left than this are reported ahead of expiry (status, verify), to be renewed with `rotate`. */
export const RENEW_BEFORE_DAYS = 30;

/**
 * The credentials planImport needs for a direct boundary-mode import (both contexts at hand): those stored in the
 * consumer's binding Secret when they can be kept (the gateway's SPIFFE id, still valid under a CA the provider
 * trusts, the key matching; the CAs to trust are brought up to date), else a new key pair and a certificate the
 * provider's federation CA signs for it (during a CA rotation: the next CA). A re-run never re-keys a working import:
 * renewing ahead of expiry is `rotate`'s job (`renew`), and `reason` says why new credentials were made. The new key
 * exists only in the returned credentials, which the consumer plan writes to the consumer cluster alone.
 * @param options.renew make a new key and certificate even when the stored ones can be kept (`rotate`)
 * @throws PkiError when the CSR made here does not satisfy the CA (not expected: it is made for `spiffeId`)
 */
export function directCredentials(
  consumer: ConsumerSnapshot, admission: ClusterPlan, input: { consumerClusterId: string; spiffeId: string; endpoint: Pick<ExportEndpoint, 'providerClusterId' | 'namespace' | 'exportName'> },
  options: { renew?: boolean; now?: Date; validityDays?: number } = {},
): ImportCredentials & { renewed: boolean; reason?: string } {
  const state = federationCaStateOf(admission);
  const ca = clientSigner(state);
  const trust = trustBundle(state);
  const secret = findObject(consumer, 'Secret', homeNamespaceOf(consumer), names.binding(input.endpoint.providerClusterId, input.endpoint.namespace, input.endpoint.exportName));
  const stored = readSecret(secret);
  const certificatePem = stored?.['tls.crt'];
  const privateKeyPem = stored?.['tls.key'];
  let reason: string | undefined;
  if (certificatePem && privateKeyPem && !options.renew) {
    reason = 'the stored certificate cannot be read';
    try {
      const info = inspectCertificate(certificatePem, options.now);
      const chain = verifyCertificateChain(certificatePem, [trust], options.now);
      if (!info.uris.includes(input.spiffeId)) reason = `the stored certificate is for ${info.uris.join(', ') || 'no SPIFFE id'}, not ${input.spiffeId}`;
      else if (!chain.ok) reason = `the stored certificate is not valid under the provider's federation CA (${chain.reason})`;
      else if (!keyMatchesCertificate(privateKeyPem, certificatePem)) reason = 'the stored key does not match the stored certificate';
      else return { certificatePem, privateKeyPem, caCertificatePem: trust, renewed: false };
    } catch {
      // An unreadable stored certificate is replaced below.
    }
  }
  const keys = generateKeyPair();
  const csrPem = createCertificateRequest({ privateKeyPem: keys.privateKeyPem, commonName: `${input.consumerClusterId} federation egress`, spiffeId: input.spiffeId });
  return {
    certificatePem: signClientCertificate({
      ca, csrPem, expectSpiffeId: input.spiffeId, ...(options.now ? { now: options.now } : {}), ...(options.validityDays ? { validityDays: options.validityDays } : {}),
    }),
    privateKeyPem: keys.privateKeyPem,
    caCertificatePem: trust,
    renewed: true,
    ...(reason ? { reason } : {}),
  };
}

/** The credentials planImport needs from a verified boundary-mode bundle and the pending key. */
export function bundleCredentials(bundle: ExportBundle, privateKeyPem: string): ImportCredentials {
  if (!bundle.spec.clientCertificatePem) throw new FederationInputError('this export bundle carries no client certificate (shared-root exports need none)');
  return { certificatePem: bundle.spec.clientCertificatePem, privateKeyPem, caCertificatePem: bundle.spec.federationCaPem };
}

/** What an export bundle says about itself before it is verified: enough to find what to verify it against. */
export interface BundleClaim {
  /** The export it is for; an empty string for each part the file does not give. */
  export: ExportRef;
  /** The endpoint's trust mode, when the file gives one. */
  mode?: string;
  /** The nonce of the request it answers, when the file gives one. */
  nonce?: string;
  /** Boundary: the client certificate it carries, when the file gives one. */
  clientCertificatePem?: string;
}

/**
 * Reads which export a bundle claims to be for, without verifying anything: the claim decides which pending key
 * (or stored certificate) the bundle is then checked against with {@link parseExportBundle}, which verifies all of it.
 * Never throws: a file that is not YAML or lacks fields claims empty values, and parseExportBundle says precisely
 * what is wrong with it.
 *
 * ```ts
 * const claim = claimedExport(text); // { export: { providerClusterId: 'cluster2', namespace: 'bookinfo', exportName: 'myreviews' }, … }
 * ```
 */
export function claimedExport(text: string): BundleClaim {
  let spec: { endpoint?: { providerClusterId?: unknown; namespace?: unknown; exportName?: unknown; mode?: unknown }; nonce?: unknown; clientCertificatePem?: unknown } = {};
  try {
    const doc: unknown = YAML.parse(text);
    const candidate = doc && typeof doc === 'object' ? (doc as { spec?: unknown }).spec : undefined;
    if (candidate && typeof candidate === 'object') spec = candidate as typeof spec;
  } catch {
    // An unreadable file claims nothing.
  }
  const endpoint = spec.endpoint && typeof spec.endpoint === 'object' ? spec.endpoint : {};
  return {
    export: {
      providerClusterId: String(endpoint.providerClusterId ?? ''), namespace: String(endpoint.namespace ?? ''), exportName: String(endpoint.exportName ?? ''),
    },
    ...(typeof endpoint.mode === 'string' ? { mode: endpoint.mode } : {}),
    ...(typeof spec.nonce === 'string' ? { nonce: spec.nonce } : {}),
    ...(typeof spec.clientCertificatePem === 'string' ? { clientCertificatePem: spec.clientCertificatePem } : {}),
  };
}

/**
 * The federation CA of a provider that this consumer cluster already holds (in any meshfed Secret labelled with the
 * provider's cluster id), for trust on first use: once a cluster has imported from a provider, later bundles of that
 * provider must be signed by the same CA.
 * @returns the CA certificate PEM, or undefined when this cluster has not trusted the provider yet
 */
export function trustedFederationCa(snapshot: ConsumerSnapshot, providerClusterId: string): string | undefined {
  const home = homeNamespaceOf(snapshot);
  for (const o of snapshot.existing) {
    if (o.kind !== 'Secret' || o.metadata.namespace !== home || o.metadata.labels?.[LABELS.provider] !== providerClusterId) continue;
    const ca = readSecret(o)?.['ca.crt'];
    if (ca) return ca;
  }
  return undefined;
}

/** A bundle verified against what the consumer cluster holds for its export. */
export interface VerifiedBundle {
  bundle: ExportBundle;
  /** Boundary: the key the bundle's client certificate is for (the pending request's, or the one already in use). */
  privateKeyPem?: string;
}

/**
 * The import a bundle completes a re-keying of: the consumer's import of the same export in `namespace`, whose
 * binding (one per export: {@link names.binding}) the `--force` request replaced the key of. Completing the re-key
 * keeps that import's local name, admitted accounts and attach split unless the command says otherwise, instead of
 * planning a second import under the default name next to it. With `localName` (the one the command names), only the
 * import of that name is the one re-keyed.
 * @returns undefined when the export is not imported in that namespace (under `localName`, when given): a first import
 * @throws FederationInputError (flag `--local-name`) when it is imported there under several local names and none is named
 */
export function importBeingRekeyed(snapshot: ConsumerSnapshot, target: ExportRef, namespace: string, localName?: string): ImportRecord | undefined {
  const wanted = exportRefText(target);
  const imports = readImportRecords(snapshot).filter((r) => r.namespace === namespace && exportRefText(r.endpoint) === wanted
    && (localName === undefined || r.localName === localName));
  if (imports.length > 1) {
    throw new FederationInputError(`${wanted} is imported in namespace ${namespace} under several local names (${imports.map((r) => r.localName).join(', ')}): say which one the bundle re-keys with --local-name`, '--local-name');
  }
  return imports[0];
}

/**
 * Verifies an export bundle against what the consumer cluster holds for the export it claims: the pending import
 * request (its nonce and key); or, when the same bundle is imported again, the certificate and key already stored
 * (boundary) or the import record (shared-root, which keeps no key). A provider this cluster already trusts must
 * have signed it with the same federation CA ({@link trustedFederationCa}).
 *
 * ```ts
 * const verified = verifyBundleForImport(consumer, text, { consumerClusterId: 'cluster1' });
 * if (!verified) // no pending request for that export: run import --request-out first
 * ```
 * @param options.now default: the current time
 * @returns undefined when the cluster holds nothing to check the bundle against (no pending request for its export,
 *   and not already imported with it)
 * @throws BundleError as {@link parseExportBundle} does
 */
export function verifyBundleForImport(
  snapshot: ConsumerSnapshot, text: string, options: { consumerClusterId: string; now?: Date },
): VerifiedBundle | undefined {
  const claim = claimedExport(text);
  const target = claim.export;
  const trustedCaPem = trustedFederationCa(snapshot, target.providerClusterId);
  const parse = (nonce: string, privateKeyPem?: string): ExportBundle => parseExportBundle(text, {
    expect: { nonce, consumerClusterId: options.consumerClusterId, ...(privateKeyPem ? { privateKeyPem } : {}) },
    ...(trustedCaPem ? { trustedCaPem } : {}),
    ...(options.now ? { now: options.now } : {}),
  });
  const pending = target.providerClusterId ? pendingRequestOf(snapshot, target) : undefined;
  if (pending) return { bundle: parse(pending.nonce, pending.privateKeyPem), privateKeyPem: pending.privateKeyPem };
  const nonce = claim.nonce;
  if (!nonce) return undefined;
  // Run again with the bundle already imported: its certificate is the stored one and fits the stored key.
  const stored = readSecret(findObject(snapshot, 'Secret', homeNamespaceOf(snapshot), names.binding(target.providerClusterId, target.namespace, target.exportName)));
  if (stored?.['tls.key'] && claim.clientCertificatePem !== undefined && stored['tls.crt'] !== undefined && samePem(stored['tls.crt'], claim.clientCertificatePem)) {
    return { bundle: parse(nonce, stored['tls.key']), privateKeyPem: stored['tls.key'] };
  }
  // Shared-root keeps no key: a bundle already imported is checked for its signature, consumer and expiry.
  const imported = readImportRecords(snapshot).some((r) => r.endpoint.providerClusterId === target.providerClusterId
    && r.endpoint.namespace === target.namespace && r.endpoint.exportName === target.exportName);
  if (imported && claim.mode === 'shared-root') return { bundle: parse(nonce) };
  return undefined;
}
