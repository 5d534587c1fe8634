/**
 * Every name meshfed gives: Kubernetes object names, label keys and values, federation hosts (SNI), SPIFFE
 * ids and principals. All are deterministic functions of the user's names, valid DNS-1123 labels or label
 * values (at most 63 characters), and collision-free: a readable form is used when it is unambiguous, a
 * hashed form otherwise.
 */
import { createHash } from 'node:crypto';
import { FederationInputError } from './errors.js';

/** Label every object meshfed creates carries, with {@link MANAGED_BY}. */
export const MANAGED_BY_LABEL = 'app.kubernetes.io/managed-by';
/** Value of {@link MANAGED_BY_LABEL}. */
export const MANAGED_BY = 'kubectl-meshfed';
/** Server-side apply field manager. */
export const FIELD_MANAGER = 'kubectl-meshfed';
/** Istio's annotation limiting the namespaces whose proxies see a Kubernetes Service (`.`: its own). */
export const EXPORT_TO_ANNOTATION = 'networking.istio.io/exportTo';
/** Default namespace of meshfed's gateways, federation CA and records. */
export const DEFAULT_GATEWAY_NAMESPACE = 'istio-meshfed';
/** The port federation gateways listen on (container port and default Service port). */
export const FEDERATION_PORT = 15443;
/** Default DNS suffix of the cluster's Services. */
export const CLUSTER_DOMAIN = 'cluster.local';
/** Suffix of the names meshfed invents (SNI hosts, hidden hosts, gateway trust domains). */
export const FEDERATION_DOMAIN = 'meshfed.internal';

/** Label keys meshfed sets. */
export const LABELS = {
  /** What an object is for: see {@link Role}. */
  role: 'meshfed.io/role',
  /** The export an object belongs to: `<namespace>.<export>` (provider side). */
  export: 'meshfed.io/export',
  /** The import an object belongs to: `<namespace>.<local name>` (consumer side). */
  import: 'meshfed.io/import',
  /** The consumer cluster id (provider side, admission objects). */
  consumer: 'meshfed.io/consumer',
  /** The provider cluster id (consumer side). */
  provider: 'meshfed.io/provider',
  /** The export an imported object is bound to: `<provider>.<namespace>.<export>` (consumer side). */
  binding: 'meshfed.io/binding',
  /** The Service a shared object is computed for: `<namespace>.<service>`. */
  service: 'meshfed.io/service',
  /**
   * On an export record: `true` when the export has a part in objects it shares with other exports (a subset in the
   * Service's DestinationRule, a host of the passthrough Gateway, the workload guard), else `false`. Planning one
   * export reads the records that say `true` (or that predate the label), not every record.
   */
  shares: 'meshfed.io/shares',
} as const;

/**
 * Annotation of the Secret that keeps an import request's key until its bundle is imported (a nonce of the request):
 * it marks a request still pending.
 */
export const REQUEST_NONCE_ANNOTATION = 'meshfed.io/request-nonce';

/** Values of the {@link LABELS.role} label. */
export type Role =
  | 'gateway'
  | 'federation-ca'
  | 'export'
  | 'export-record'
  | 'subsets'
  | 'workload-guard'
  | 'binding'
  | 'import'
  | 'import-record'
  | 'egress-routes'
  | 'attach';

/** The gateways meshfed deploys, by role. */
export const GATEWAY_NAMES = {
  /** Boundary mode, provider: terminates MUTUAL TLS from consumer gateways. */
  ingress: 'meshfed-ingress',
  /** Boundary mode, consumer: originates MUTUAL TLS to provider gateways. */
  egress: 'meshfed-egress',
  /** Shared-root mode, provider: AUTO_PASSTHROUGH of end-to-end Istio mTLS. */
  eastwest: 'meshfed-eastwest',
} as const;

/** Gateway kinds meshfed deploys. */
export type GatewayRole = keyof typeof GATEWAY_NAMES;

/** Secret holding the provider's federation CA certificate and key (`ca.crt`, `ca.key`). */
export const FEDERATION_CA_SECRET = 'meshfed-federation-ca';

/**
 * ConfigMap (in meshfed's own namespace, like Kubernetes' `kube-root-ca.crt`) with the federation CA's certificates
 * only: what `status` and `verify` show of the CA (expiry, fingerprint, a rotation under way) without reading its key.
 */
export const FEDERATION_CA_CERTIFICATES = 'meshfed-federation-ca.crt';

/**
 * Namespace of the federation CA Secret, where no gateway runs: a gateway's Role (which istiod's SDS check requires
 * for `credentialName`) lets it read every Secret of its own namespace, and only export and admit need the CA key.
 */
export const FEDERATION_CA_NAMESPACE = 'meshfed-ca';

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const PLAIN_PART = /^[a-z0-9]+$/;
const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;
const HASH_LENGTH = 10;

/** Hex SHA-256 prefix of the parts (NUL-separated so that ("a","bc") and ("ab","c") differ). */
export function shortHash(parts: readonly string[], length = HASH_LENGTH): string {
  return createHash('sha256').update(parts.join('\0')).digest('hex').slice(0, length);
}

/** Whether `value` is a DNS-1123 label (lower-case alphanumerics and `-`, at most 63). */
export function isDnsLabel(value: string): boolean {
  return value.length <= 63 && DNS_LABEL.test(value);
}

/** Whether `value` is a valid Kubernetes label value. */
export function isLabelValue(value: string): boolean {
  return value.length <= 63 && LABEL_VALUE.test(value);
}

/**
 * Checks a user-given name that meshfed embeds in hosts and names (namespace, Service, export, local name,
 * cluster id).
 * @param what how to call it in the message, e.g. `export name "Foo_1"`
 * @param flag the flag that sets it
 * @throws FederationInputError naming the flag when it is not a DNS-1123 label
 */
export function checkDnsLabel(value: string, what: string, flag?: string): string {
  if (!isDnsLabel(value)) {
    throw new FederationInputError(
      `${what} "${value}" is not a DNS-1123 label: use at most 63 lower-case letters, digits and "-", starting and ending with a letter or digit${flag ? ` (${flag})` : ''}`,
      flag,
    );
  }
  return value;
}

/**
 * A Kubernetes object name of a family (`export`, `bind`, `import`...) built from user names:
 * `mf-<family>-<part>-...[-<suffix>]` when it is unambiguous (every part plain, `[a-z0-9]+`, or a single part
 * that is a DNS label without `--`) and fits in 63 characters; otherwise the readable form is truncated and
 * followed by `--<hash>` of all inputs (then `-<suffix>`). Readable names never contain `--`, so the two forms
 * never collide, and within a family (fixed number of parts) readable names map one-to-one to their parts.
 */
export function objectName(family: string, parts: readonly string[], suffix?: string): string {
  const tail = suffix ? `-${suffix}` : '';
  const readable = ['mf', family, ...parts].join('-');
  // One part cannot be split ambiguously, so any DNS label without "--" reads as itself.
  const unambiguous = parts.length === 1 ? isDnsLabel(parts[0]!) && !parts[0]!.includes('--') : parts.every((p) => PLAIN_PART.test(p));
  if (unambiguous && readable.length + tail.length <= 63) return `${readable}${tail}`;
  const hash = shortHash([family, ...parts, suffix ?? '']);
  const room = 63 - tail.length - hash.length - 2;
  const cleaned = readable.toLowerCase().replace(/[^a-z0-9-]/g, '-').slice(0, room).replace(/-+$/, '');
  return `${cleaned}--${hash}${tail}`;
}

/**
 * A label value naming something (e.g. `bookinfo.myreviews`): the value itself when valid, otherwise a
 * truncated prefix and `--<hash>` of the full value.
 */
export function labelValue(value: string): string {
  if (isLabelValue(value)) return value;
  const hash = shortHash([value]);
  const prefix = value.replace(/[^A-Za-z0-9_.-]/g, '-').slice(0, 63 - hash.length - 2).replace(/^[^A-Za-z0-9]+/, '').replace(/[^A-Za-z0-9]+$/, '');
  return prefix ? `${prefix}--${hash}` : hash;
}

/** `meshfed.io/export` value for an export. */
export function exportLabel(namespace: string, exportName: string): string {
  return labelValue(`${namespace}.${exportName}`);
}

/** `meshfed.io/import` value for an import. */
export function importLabel(namespace: string, localName: string): string {
  return labelValue(`${namespace}.${localName}`);
}

/** `meshfed.io/binding` value for the consumer objects bound to one export. */
export function bindingLabel(providerClusterId: string, namespace: string, exportName: string): string {
  return labelValue(`${providerClusterId}.${namespace}.${exportName}`);
}

/** `meshfed.io/service` value for objects computed for one Service. */
export function serviceLabel(namespace: string, service: string): string {
  return labelValue(`${namespace}.${service}`);
}

/** `<name>.<namespace>.svc.<domain>`. */
export function serviceFqdn(name: string, namespace: string, clusterDomain = CLUSTER_DOMAIN): string {
  return `${name}.${namespace}.svc.${clusterDomain}`;
}

/**
 * The boundary-mode federation host of an export: the SNI consumers send and the host the provider gateway
 * serves, `<export>.<namespace>.<provider>.export.meshfed.internal`. Each part is a DNS label (so each label is
 * at most 63 characters and the whole at most 213), and it is unique per provider, namespace and export.
 */
export function exportHost(providerClusterId: string, namespace: string, exportName: string): string {
  return `${exportName}.${namespace}.${providerClusterId}.export.${FEDERATION_DOMAIN}`;
}

/**
 * The consumer-side host of a shared-root import (`<local>.<namespace>.import.meshfed.internal`): the
 * ServiceEntry that points at the provider gateway. It is not the local name itself because the local
 * name is a Kubernetes Service (for DNS and a VIP) and Istio does not merge a ServiceEntry into a Service
 * of the same host.
 */
export function importHost(namespace: string, localName: string): string {
  return `${localName}.${namespace}.import.${FEDERATION_DOMAIN}`;
}

/**
 * SPIFFE id of a consumer's federation egress gateway in the client certificates providers issue:
 * `spiffe://<cluster>.meshfed.internal/ns/<namespace>/sa/<service account>`. The trust domain is per
 * consumer cluster on purpose: every mesh's own trust domain is often `cluster.local`, which would make
 * two consumers' gateways indistinguishable.
 */
export function consumerGatewaySpiffeId(
  consumerClusterId: string,
  gatewayNamespace: string = DEFAULT_GATEWAY_NAMESPACE,
  serviceAccount: string = GATEWAY_NAMES.egress,
): string {
  return `spiffe://${consumerClusterId}.${FEDERATION_DOMAIN}/ns/${gatewayNamespace}/sa/${serviceAccount}`;
}

/** An AuthorizationPolicy principal from a SPIFFE id (Istio matches principals without `spiffe://`). */
export function principalOf(spiffeId: string): string {
  return spiffeId.replace(/^spiffe:\/\//, '');
}

/** The Istio principal of a workload: `<trust domain>/ns/<namespace>/sa/<service account>`. */
export function workloadPrincipal(trustDomain: string, namespace: string, serviceAccount: string): string {
  return `${trustDomain}/ns/${namespace}/sa/${serviceAccount}`;
}

/**
 * The SNI Istio's AUTO_PASSTHROUGH gateways route by: `outbound_.<port>_.<subset>_.<fqdn>` (the subset part
 * is empty when there is none).
 */
export function passthroughSni(port: number, subsetName: string | undefined, fqdn: string): string {
  return `outbound_.${port}_.${subsetName ?? ''}_.${fqdn}`;
}

/**
 * DestinationRule subset name for a set of pod labels: `<key>-<value>` when there is one plain label
 * (`version-v2`), otherwise `mf--<hash>` of the sorted labels. The same labels always give the same name,
 * so exports with equal subsets share one subset.
 */
export function subsetName(labels: Record<string, string>): string {
  const entries = Object.entries(labels).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  if (entries.length === 1) {
    const [key, value] = entries[0]!;
    const name = `${key}-${value}`;
    if (PLAIN_PART.test(key) && PLAIN_PART.test(value) && name.length <= 63) return name;
  }
  return `mf--${shortHash(entries.map(([k, v]) => `${k}=${v}`))}`;
}

/** Object names meshfed uses, by what they are for. */
export const names = {
  /** Provider objects of one export (Gateway, VirtualService, AuthorizationPolicy, server Secret, record). */
  export: (namespace: string, exportName: string): string => objectName('export', [namespace, exportName]),
  /** Provider DestinationRule with the subsets of every export of one Service. */
  subsets: (namespace: string, service: string): string => objectName('subsets', [namespace, service]),
  /** Provider AuthorizationPolicy guarding a workload exported in shared-root mode. */
  guard: (service: string): string => objectName('guard', [service]),
  /** Consumer objects bound to one provider export (gateway namespace). */
  binding: (providerClusterId: string, namespace: string, exportName: string): string =>
    objectName('bind', [providerClusterId, namespace, exportName]),
  /** Consumer objects of one import in its namespace (VirtualService, ServiceEntry, DestinationRule). */
  import: (localName: string): string => objectName('import', [localName]),
  /** Consumer import record (gateway namespace). */
  importRecord: (namespace: string, localName: string): string => objectName('import', [namespace, localName]),
  /** Consumer VirtualService attaching an import to an existing local Service. */
  attach: (service: string): string => objectName('attach', [service]),
  /** Consumer DestinationRule for its egress gateway (the per-binding SNI subsets). */
  egressRoutes: (): string => `${GATEWAY_NAMES.egress}-routes`,
  /** DestinationRule subset of the consumer egress gateway for one binding. */
  bindingSubset: (providerClusterId: string, namespace: string, exportName: string): string =>
    objectName('bind', [providerClusterId, namespace, exportName]),
} as const;
