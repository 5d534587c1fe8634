/**
 * Lookups the checks share: objects by kind and name, the export record, gateway pods and Services, certificates
 * from Secrets. Everything is computed from a {@link VerifySnapshot} (no I/O) and memoised per snapshot.
 */
import { inspectCertificate, type CertificateInfo } from '../../pki/index.js';
import type { KubeObject } from '../model.js';
import {
  bindingLabel, exportLabel, FEDERATION_CA_CERTIFICATES, FEDERATION_CA_NAMESPACE, FEDERATION_CA_SECRET, FEDERATION_PORT, GATEWAY_NAMES, LABELS, names,
} from '../naming.js';
import { credentialCertificates, publishedCertificatesName, type PublishedCertificates } from '../certificates.js';
import { federationCaCertificates } from '../first-use.js';
import { isManaged, readSecret } from '../objects.js';
import type { ExportRecord } from '../records.js';
import type { SideSnapshot, VerifySnapshot } from './types.js';

/** A loose view of an object's spec: objects read from a cluster are plain JSON. */
export type Spec = Record<string, unknown>;

/** `Kind namespace/name`, how results name objects. */
export function describe(kind: string, namespace: string | undefined, name: string): string {
  return `${kind} ${namespace ? `${namespace}/` : ''}${name}`;
}

/** `Kind namespace/name` of an object. */
export function describeObject(object: KubeObject): string {
  return describe(object.kind, object.metadata.namespace, object.metadata.name);
}

/** An object's `spec`, or an empty one. */
export function specOf(object: KubeObject | undefined): Spec {
  return ((object?.spec as Spec | undefined) ?? {});
}

/** An object of a snapshot by kind and name; `namespace` undefined matches any namespace (and cluster-scoped kinds). */
export function find(side: SideSnapshot, kind: string, namespace: string | undefined, name: string): KubeObject | undefined {
  return side.objects.find((o) => o.kind === kind && o.metadata.name === name && (namespace === undefined || o.metadata.namespace === namespace));
}

export { isManaged };

/** Whether `labels` carry every key and value of `selector`; an absent selector matches nothing. */
export function labelsMatch(selector: Record<string, string> | undefined, labels: Record<string, string> | undefined): boolean {
  if (!selector) return false;
  return Object.entries(selector).every(([k, v]) => labels?.[k] === v);
}

/** A pod is ready when its Ready condition is true (and it is not being deleted). */
export function isPodReady(pod: KubeObject): boolean {
  if (pod.metadata.deletionTimestamp) return false;
  const status = (pod.status as Spec | undefined) ?? {};
  const ready = (status.conditions as Array<{ type: string; status: string }> | undefined)?.find((c) => c.type === 'Ready');
  return ready?.status === 'True';
}

/** The first LoadBalancer ingress address (IP or host name) of a Service, if it has one. */
export function loadBalancerAddress(service: KubeObject | undefined): string | undefined {
  const ingress = ((service?.status as Spec | undefined)?.loadBalancer as Spec | undefined)?.ingress as Array<{ ip?: string; hostname?: string }> | undefined;
  const first = ingress?.find((i) => i.ip || i.hostname);
  return first?.ip ?? first?.hostname;
}

/** A certificate read from a Secret key: its PEM, or why it could not be read. */
export type CertificateRead =
  | { ok: true; pem: string; info: CertificateInfo }
  | { ok: false; reason: string };

/** The certificate stored under `key` of a Secret, inspected at `now`. */
export function certificateIn(secret: KubeObject | undefined, key: string, now: Date): CertificateRead {
  if (!secret) return { ok: false, reason: 'the Secret does not exist' };
  const pem = readSecret(secret)?.[key];
  if (!pem) return { ok: false, reason: `Secret ${secret.metadata.namespace}/${secret.metadata.name} has no ${key}` };
  return certificateOf(pem, `${key} of Secret ${secret.metadata.namespace}/${secret.metadata.name}`, now);
}

/** A certificate's PEM, inspected at `now`; `where` names it in the reason it cannot be read. */
function certificateOf(pem: string, where: string, now: Date): CertificateRead {
  try {
    return { ok: true, pem, info: inspectCertificate(pem, now) };
  } catch (error) {
    return { ok: false, reason: `${where} is not a readable certificate: ${(error as Error).message}` };
  }
}

/** A federation gateway as found in a cluster: its Gateway object, pods and Service. */
export interface GatewayFacts {
  /** The meshfed Gateway object whose selector picks the gateway pods. */
  gateway: KubeObject | undefined;
  namespace: string;
  selector: Record<string, string> | undefined;
  pods: KubeObject[];
  /** The gateway's Service: the one selecting its pods that exposes the federation port (or is a LoadBalancer). */
  service: KubeObject | undefined;
}

/** The ports of a Service's spec. */
export function servicePorts(service: KubeObject): Array<{ name?: string; port: number; targetPort?: number | string; nodePort?: number }> {
  return (specOf(service).ports as Array<{ name?: string; port: number; targetPort?: number | string }> | undefined) ?? [];
}

function gatewayFacts(side: SideSnapshot, gateway: KubeObject | undefined, namespace: string, fallbackName: string, wantLoadBalancer: boolean): GatewayFacts {
  const selector = (specOf(gateway).selector as Record<string, string> | undefined) ?? { istio: fallbackName };
  const pods = side.objects.filter((o) => o.kind === 'Pod' && o.metadata.namespace === namespace && labelsMatch(selector, o.metadata.labels));
  const candidates = side.objects.filter((o) => {
    if (o.kind !== 'Service' || o.metadata.namespace !== namespace) return false;
    const serviceSelector = specOf(o).selector as Record<string, string> | undefined;
    if (!serviceSelector || Object.keys(serviceSelector).length === 0) return false;
    // The Service selects the gateway pods, or (before any pod exists) selects by the Gateway's own labels.
    return pods.some((p) => labelsMatch(serviceSelector, p.metadata.labels)) || labelsMatch(serviceSelector, selector);
  });
  const service = candidates.find((s) => s.metadata.name === fallbackName)
    ?? candidates.find((s) => (wantLoadBalancer ? specOf(s).type === 'LoadBalancer' : true) && servicePorts(s).some((p) => p.port === FEDERATION_PORT || p.targetPort === FEDERATION_PORT))
    ?? candidates[0];
  return { gateway, namespace, selector, pods, service };
}

/** What the checks derive from a snapshot, computed once. */
export class VerifyFacts {
  private cache = new Map<string, unknown>();

  constructor(readonly snapshot: VerifySnapshot) {}

  private memo<T>(key: string, compute: () => T): T {
    if (!this.cache.has(key)) this.cache.set(key, compute());
    return this.cache.get(key) as T;
  }

  get record() {
    return this.snapshot.record;
  }

  get endpoint() {
    return this.snapshot.record.endpoint;
  }

  get consumer(): SideSnapshot {
    return this.snapshot.consumer;
  }

  /** The provider snapshot, when it was read. */
  get provider(): SideSnapshot | undefined {
    return this.snapshot.provider.status === 'present' ? this.snapshot.provider.snapshot : undefined;
  }

  /** `<namespace>/<local name>`, how messages name the import. */
  get importName(): string {
    return `${this.record.namespace}/${this.record.localName}`;
  }

  /** `<namespace>/<export>`, how messages name the export. */
  get exportName(): string {
    return `${this.endpoint.namespace}/${this.endpoint.exportName}`;
  }

  /** The consumer-side name of the binding objects (boundary mode). */
  get bindingName(): string {
    const e = this.endpoint;
    return names.binding(e.providerClusterId, e.namespace, e.exportName);
  }

  get bindingLabel(): string {
    const e = this.endpoint;
    return bindingLabel(e.providerClusterId, e.namespace, e.exportName);
  }

  /** The consumer's binding objects (boundary mode), found by label wherever the egress gateway lives. */
  bindingObject(kind: string): KubeObject | undefined {
    return this.consumer.objects.find((o) => o.kind === kind && o.metadata.name === this.bindingName && o.metadata.labels?.[LABELS.binding] === this.bindingLabel)
      ?? find(this.consumer, kind, this.snapshot.consumerHome, this.bindingName);
  }

  /** Namespace of the consumer's egress gateway: where the binding Gateway is, else meshfed's home namespace. */
  get egressNamespace(): string {
    return this.bindingObject('Gateway')?.metadata.namespace ?? this.snapshot.consumerHome;
  }

  get egressGateway(): GatewayFacts {
    return this.memo('egress', () => gatewayFacts(this.consumer, this.bindingObject('Gateway'), this.egressNamespace, GATEWAY_NAMES.egress, false));
  }

  /**
   * The binding's credential (boundary mode): where its Secret is (the egress gateway's namespace) and its
   * certificates, from the Secret's data when it was read, else as published beside it.
   */
  get clientCredential(): Credential {
    return this.memo('clientCredential', () => {
      const namespace = this.bindingObject('Secret')?.metadata.namespace ?? this.egressNamespace;
      return credentialOf(this.consumer, namespace, this.bindingName);
    });
  }

  /** The client certificate of the binding (boundary mode): from its Secret, else as published beside it. */
  get clientCertificate(): CertificateRead {
    return this.memo('clientCert', () => credentialCertificate(this.clientCredential, this.snapshot.now));
  }

  /** The provider's export record, found by its export label; undefined without a provider or when it is missing. */
  get exportRecordObject(): KubeObject | undefined {
    const provider = this.provider;
    if (!provider) return undefined;
    const label = exportLabel(this.endpoint.namespace, this.endpoint.exportName);
    return provider.objects.find((o) => o.kind === 'ConfigMap' && isManaged(o)
      && o.metadata.labels?.[LABELS.role] === 'export-record' && o.metadata.labels?.[LABELS.export] === label);
  }

  /** The export record, parsed; undefined when absent or unreadable. */
  get exportRecord(): ExportRecord | undefined {
    return this.memo('exportRecord', () => {
      const text = (this.exportRecordObject?.data as Record<string, string> | undefined)?.['export.json'];
      if (!text) return undefined;
      try {
        return JSON.parse(text) as ExportRecord;
      } catch {
        return undefined;
      }
    });
  }

  /**
   * Shared-root: the service accounts of the import namespace the provider admits — from the provider's export
   * record when it was read (authoritative), else as the import recorded them; undefined when neither says.
   */
  get admittedAccounts(): { accounts: string[]; source: 'export' | 'import' } | undefined {
    const entry = this.exportRecord?.consumers.find((c) => c.clusterId === this.record.consumerClusterId && c.namespace === this.record.namespace);
    if (entry) return { accounts: entry.serviceAccounts?.length ? [...entry.serviceAccounts] : ['default'], source: 'export' };
    if (this.record.serviceAccounts?.length) return { accounts: [...this.record.serviceAccounts], source: 'import' };
    return undefined;
  }

  /** The pods of the import namespace that call through their sidecars (meshfed's probe pods left out). */
  get callerPods(): KubeObject[] {
    return this.consumer.objects.filter((o) => o.kind === 'Pod' && o.metadata.namespace === this.record.namespace
      && o.metadata.labels?.[LABELS.role] !== 'probe' && !o.metadata.deletionTimestamp
      && [...((specOf(o).containers as Array<{ name: string }> | undefined) ?? []), ...((specOf(o).initContainers as Array<{ name: string }> | undefined) ?? [])]
        .some((c) => c.name === 'istio-proxy'));
  }

  /** Every export record of the provider, as `<namespace>/<name>`, for messages. */
  get knownExports(): string[] {
    return (this.provider?.objects ?? [])
      .filter((o) => o.kind === 'ConfigMap' && o.metadata.labels?.[LABELS.role] === 'export-record')
      .map((o) => {
        try {
          const r = JSON.parse((o.data as Record<string, string>)['export.json'] ?? '') as ExportRecord;
          return `${r.namespace}/${r.exportName}`;
        } catch {
          return `${o.metadata.namespace}/${o.metadata.name}`;
        }
      }).sort();
  }

  /** meshfed's home namespace in the provider cluster: where the export record is. */
  get providerHome(): string {
    return this.exportRecordObject?.metadata.namespace ?? 'istio-meshfed';
  }

  /** The provider-side name of the export's own objects. */
  get exportObjectName(): string {
    return names.export(this.endpoint.namespace, this.endpoint.exportName);
  }

  /** SHA-256 fingerprint of a PEM certificate (upper-case hex with colons). */
  fingerprint(pem: string): string {
    return inspectCertificate(pem, this.snapshot.now).fingerprintSha256;
  }

  /** The provider Gateway that serves the export: its own (boundary) or the shared passthrough one. */
  get providerGatewayObject(): KubeObject | undefined {
    const provider = this.provider;
    if (!provider) return undefined;
    const name = this.endpoint.mode === 'boundary' ? this.exportObjectName : GATEWAY_NAMES.eastwest;
    const own = find(provider, 'Gateway', this.providerHome, name);
    const cover = this.exportRecord?.coveredBy;
    if (own || !cover) return own;
    // Shared-root through a passthrough server meshfed does not manage: that Gateway serves the export.
    const [namespace, gatewayName] = cover.gateway.split('/');
    return find(provider, 'Gateway', namespace, gatewayName!);
  }

  /**
   * Shared-root: AUTO_PASSTHROUGH servers of Gateways meshfed does not manage, on the workload and port that serve the
   * export, whose hosts cover the export's host.
   */
  get foreignPassthroughCovers(): Array<{ gateway: KubeObject; hosts: string[] }> {
    const provider = this.provider;
    const x = this.exportRecord;
    if (!provider || !x || x.mode !== 'shared-root') return [];
    return this.memo('covers', () => {
      const own = find(provider, 'Gateway', this.providerHome, GATEWAY_NAMES.eastwest);
      const selector = (specOf(own).selector as Record<string, string> | undefined) ?? x.coveredBy?.selector;
      const port = ((specOf(own).servers as Spec[] | undefined)?.[0]?.port as Spec | undefined)?.number as number | undefined ?? x.coveredBy?.port;
      if (!selector || port === undefined) return [];
      const covers = (serverHost: string): boolean => {
        const h = (serverHost.includes('/') ? serverHost.slice(serverHost.indexOf('/') + 1) : serverHost).toLowerCase();
        return h === '*' || h === x.host || (h.startsWith('*.') && x.host.endsWith(h.slice(1)));
      };
      const out: Array<{ gateway: KubeObject; hosts: string[] }> = [];
      for (const gateway of provider.objects.filter((o) => o.kind === 'Gateway' && !isManaged(o))) {
        const gwSelector = (specOf(gateway).selector as Record<string, string> | undefined) ?? {};
        if (Object.keys(gwSelector).length === 0 || !Object.entries(gwSelector).every(([k, v]) => selector[k] === v)) continue;
        for (const server of (specOf(gateway).servers as Spec[] | undefined) ?? []) {
          const hosts = (server.hosts as string[] | undefined) ?? [];
          if ((server.port as Spec | undefined)?.number === port && (server.tls as Spec | undefined)?.mode === 'AUTO_PASSTHROUGH' && hosts.some(covers)) {
            out.push({ gateway, hosts });
          }
        }
      }
      return out;
    });
  }

  get providerGateway(): GatewayFacts | undefined {
    const provider = this.provider;
    if (!provider) return undefined;
    return this.memo('providerGateway', () => gatewayFacts(provider, this.providerGatewayObject, this.providerHome,
      this.endpoint.mode === 'boundary' ? GATEWAY_NAMES.ingress : GATEWAY_NAMES.eastwest, true));
  }

  /** The exported Service in the provider cluster. */
  get exportedService(): KubeObject | undefined {
    const provider = this.provider;
    const record = this.exportRecord;
    if (!provider) return undefined;
    return find(provider, 'Service', this.endpoint.namespace, record?.service ?? this.endpoint.service);
  }

  /** Pods the exported Service selects. */
  get exportedPods(): KubeObject[] {
    const provider = this.provider;
    const service = this.exportedService;
    if (!provider || !service) return [];
    const selector = specOf(service).selector as Record<string, string> | undefined;
    return provider.objects.filter((o) => o.kind === 'Pod' && o.metadata.namespace === service.metadata.namespace && labelsMatch(selector, o.metadata.labels));
  }

  /**
   * The federation CA certificate of the provider (boundary mode): from its Secret when that was read, else from the
   * ConfigMap with its certificates alone (what the viewer role reads).
   */
  get federationCa(): CertificateRead {
    const provider = this.provider;
    if (!provider) return { ok: false, reason: 'no provider' };
    // In its own namespace; beside the gateway where versions before that kept it (MF0216 reports that).
    const secret = find(provider, 'Secret', FEDERATION_CA_NAMESPACE, FEDERATION_CA_SECRET) ?? find(provider, 'Secret', this.providerHome, FEDERATION_CA_SECRET);
    const published = federationCaCertificates(provider.objects)?.current;
    return this.memo('ca', () => readSecret(secret)?.['ca.crt'] || !published
      ? certificateIn(secret, 'ca.crt', this.snapshot.now)
      : certificateOf(published, `ConfigMap ${FEDERATION_CA_CERTIFICATES}`, this.snapshot.now));
  }

  /** During a federation CA rotation (`rotate --ca`): the next CA, trusted beside the current one. */
  get nextFederationCa(): CertificateRead | undefined {
    const provider = this.provider;
    if (!provider) return undefined;
    const pem = federationCaCertificates(provider.objects)?.next;
    if (!pem) return undefined;
    const next = this.memo('nextCa', () => certificateOf(pem, 'next.crt', this.snapshot.now));
    return next.ok ? next : undefined;
  }

  /** The provider gateway's server certificate (boundary mode): from its Secret, else as published beside it. */
  get serverCertificate(): CertificateRead {
    const credential = this.serverCredential;
    if (!credential) return { ok: false, reason: 'no provider' };
    return this.memo('serverCert', () => credentialCertificate(credential, this.snapshot.now));
  }

  /** The credential the provider Gateway's `credentialName` names (boundary mode): its Secret and its certificates. */
  get serverCredential(): Credential | undefined {
    const provider = this.provider;
    if (!provider) return undefined;
    return this.memo('serverCredential', () => {
      const servers = (specOf(this.providerGatewayObject).servers as Spec[] | undefined) ?? [];
      const name = ((servers[0]?.tls as Spec | undefined)?.credentialName as string | undefined) ?? this.exportObjectName;
      return credentialOf(provider, this.providerGatewayObject?.metadata.namespace ?? this.providerHome, name);
    });
  }

  /** The Secret the provider Gateway's `credentialName` names (boundary mode), when the user may see it. */
  get serverCredentialSecret(): KubeObject | undefined {
    return this.serverCredential?.secret;
  }
}

/**
 * A gateway credential as the checks see it: its Secret (when the user may list Secrets there), the certificates
 * (`tls.crt`, `ca.crt`) from the Secret's data when it was read, else from the ConfigMap that publishes them.
 */
export interface Credential {
  namespace: string;
  /** The Secret's name. */
  name: string;
  secret?: KubeObject;
  /** The ConfigMap that publishes its certificates, if any. */
  published?: KubeObject;
  /** The user may not list Secrets in `namespace` (the viewer role): only the published certificates are seen. */
  secretUnreadable: boolean;
  certificates: PublishedCertificates & { from?: 'Secret' | 'ConfigMap' };
}

function credentialOf(side: SideSnapshot, namespace: string, name: string): Credential {
  const secret = find(side, 'Secret', namespace, name);
  const published = find(side, 'ConfigMap', namespace, publishedCertificatesName(name));
  return {
    namespace, name, ...(secret ? { secret } : {}), ...(published ? { published } : {}),
    secretUnreadable: side.unreadableSecrets?.includes(namespace) ?? false,
    certificates: credentialCertificates(side.objects, namespace, name),
  };
}

/** The certificate (`tls.crt`) of a credential, inspected at `now`. */
function credentialCertificate(credential: Credential, now: Date): CertificateRead {
  const pem = credential.certificates['tls.crt'];
  if (pem) {
    const where = credential.certificates.from === 'ConfigMap' ? `ConfigMap ${credential.namespace}/${publishedCertificatesName(credential.name)}` : `Secret ${credential.namespace}/${credential.name}`;
    return certificateOf(pem, `tls.crt of ${where}`, now);
  }
  if (credential.secret) return certificateIn(credential.secret, 'tls.crt', now);
  return {
    ok: false,
    reason: credential.secretUnreadable
      ? `the Secrets of namespace ${credential.namespace} are not readable with these permissions and no ConfigMap ${credential.namespace}/${publishedCertificatesName(credential.name)} publishes the certificate`
      : 'the Secret does not exist',
  };
}
