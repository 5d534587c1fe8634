/**
 * The federation domain model: what a user exports and imports, who may consume an export, what the planners
 * need to know about a cluster (snapshots) and what they return (plans). Plain data only.
 */
import { FederationInputError } from './errors.js';

/**
 * How traffic of an export is carried across the federation. `HTTP` is routed with HTTP routes (HTTP/1.1,
 * HTTP/2, gRPC), `TCP` is proxied as opaque bytes (TCP, TLS originated by the application, databases).
 */
export type Protocol = 'HTTP' | 'TCP';

/**
 * `boundary` (default): the meshes do not trust each other; a federation CA per provider, gateway-to-gateway
 * MUTUAL TLS. `shared-root`: the meshes share a root CA; end-to-end Istio mTLS through an AUTO_PASSTHROUGH
 * gateway, the caller's identity reaches the provider's workload.
 */
export type TrustMode = 'boundary' | 'shared-root';

/** Every trust mode, default first. */
export const TRUST_MODES: readonly TrustMode[] = ['boundary', 'shared-root'];

/** A minimal Kubernetes object as planners emit it and as snapshots carry existing objects. */
export interface KubeObject {
  apiVersion: string;
  kind: string;
  metadata: {
    name: string;
    namespace?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
    [key: string]: unknown;
  };
  [key: string]: unknown;
}

/** One port of a Kubernetes Service, as in `spec.ports[]`. */
export interface ServicePort {
  /** Port name; Istio reads the protocol from its prefix when there is no appProtocol. */
  name?: string;
  port: number;
  targetPort?: number | string;
  /** Transport protocol, `TCP` by default; Istio cannot carry UDP or SCTP. */
  protocol?: string;
  appProtocol?: string;
}

/** What the planners need to know about a Kubernetes Service. */
export interface ServiceSnapshot {
  name: string;
  namespace: string;
  ports: ServicePort[];
  /** Pod selector; a Service without one cannot be exported (there are no workloads to route to). */
  selector?: Record<string, string>;
  labels?: Record<string, string>;
  /** Its `networking.istio.io/exportTo` annotation, split on commas; undefined when it has none. */
  exportTo?: string[];
}

/** A pod, reduced to what tells whether an export or a subset has somewhere to go. */
export interface PodSnapshot {
  name: string;
  namespace: string;
  labels: Record<string, string>;
  ready: boolean;
  /** The pod's service account (its Istio identity), when known. */
  serviceAccount?: string;
  /** Whether the pod runs an Istio sidecar. */
  sidecar?: boolean;
}

/** Where Istio reads a port's protocol from (see {@link detectProtocol}). */
export type ProtocolSource = 'appProtocol' | 'name' | 'default';

/** The result of Istio's protocol selection for a Service port, reduced to what federation needs. */
export interface ProtocolDetection {
  protocol: Protocol;
  source: ProtocolSource;
  /** The Istio protocol as declared (`http2`, `grpc`, `mysql`...), lower-cased; undefined when nothing was declared. */
  declared?: string;
}

// Istio's protocol names (pkg/config/protocol) that carry HTTP requests an Istio HTTP route can handle.
const HTTP_PROTOCOLS = new Set(['http', 'http2', 'http_proxy', 'grpc', 'grpc-web', 'h2c', 'kubernetes.io/h2c', 'kubernetes.io/ws', 'ws']);
// Protocols Istio treats as opaque TCP (TLS originated by the application included).
const TCP_PROTOCOLS = new Set(['tcp', 'tls', 'https', 'mongo', 'mysql', 'redis', 'kubernetes.io/wss', 'wss']);

/**
 * Istio's protocol selection for a Service port (https://istio.io/latest/docs/ops/configuration/traffic-management/protocol-selection/):
 * `appProtocol` first, else the port name's prefix before the first `-` (`http`, `http-web`, `grpc-api`,
 * `tcp-postgres`; case-insensitive). HTTP, HTTP/2 and gRPC become `HTTP`; TCP, TLS, HTTPS (TLS originated by
 * the application), Mongo, MySQL and Redis become `TCP`. A port with no recognised protocol is `TCP` here: Istio
 * would sniff it, but a federation gateway has to choose one route type up front and opaque TCP carries any
 * protocol (HTTP too, without HTTP routing features).
 * @throws FederationInputError for UDP or SCTP ports, which Istio cannot carry
 */
export function detectProtocol(port: ServicePort): ProtocolDetection {
  const transport = (port.protocol ?? 'TCP').toUpperCase();
  if (transport !== 'TCP') {
    throw new FederationInputError(
      `Service port ${port.name ?? port.port} uses ${transport}; Istio carries only TCP-based traffic, so it cannot be federated`,
      '--port',
    );
  }
  const classify = (declared: string): Protocol | undefined =>
    HTTP_PROTOCOLS.has(declared) ? 'HTTP' : TCP_PROTOCOLS.has(declared) ? 'TCP' : undefined;
  if (port.appProtocol) {
    const declared = port.appProtocol.toLowerCase();
    const protocol = classify(declared);
    if (protocol) return { protocol, source: 'appProtocol', declared };
  }
  if (port.name) {
    const declared = port.name.toLowerCase().split('-')[0]!;
    const protocol = classify(declared);
    if (protocol) return { protocol, source: 'name', declared };
  }
  return { protocol: 'TCP', source: 'default' };
}

/** The protocol of a Service port, see {@link detectProtocol}. */
export function protocolOf(port: ServicePort): Protocol {
  return detectProtocol(port).protocol;
}

/**
 * Who may consume an export. `clusterId` names the consumer cluster (unique among a provider's consumers).
 * Boundary mode admits the consumer's federation egress gateway by the SPIFFE id in its client certificate
 * (default: {@link consumerGatewaySpiffeId} of the cluster id). Shared-root mode admits workloads by their Istio
 * identity: trust domain, namespace and service accounts.
 */
export interface ConsumerIdentity {
  clusterId: string;
  /** Boundary mode: the SPIFFE id of the consumer's egress gateway client certificate. */
  gatewaySpiffeId?: string;
  /** Shared-root mode: the consumer mesh's trust domain (default `cluster.local`). */
  trustDomain?: string;
  /** Shared-root mode: the consumer workloads' namespace. */
  namespace?: string;
  /** Shared-root mode: the consumer workloads' service accounts (default `["default"]`). */
  serviceAccounts?: string[];
}

/** Selects an existing Istio gateway instead of deploying one (Istio < 1.12, or by choice). */
export interface ExistingGateway {
  /** Namespace of the gateway workload; credential Secrets must live there. */
  namespace: string;
  /** Pod labels of the gateway workload, as a Gateway `selector`. */
  selector: Record<string, string>;
  /** The gateway's Service name (in `namespace`); consumer sidecars route to it. */
  serviceName: string;
  /** The gateway Service port that reaches container port 15443 (default 15443). */
  port?: number;
}

/** What a user exports: one port of one Service in the provider cluster. */
export interface ExportSpec {
  /** kubeconfig context of the provider (informational: recorded, never used for I/O here). */
  providerContext?: string;
  /** Provider cluster id, a DNS label unique in the federation (it appears in SNI hosts and SPIFFE ids). */
  providerClusterId: string;
  namespace: string;
  service: string;
  /** The exported Service port, by number; the name is filled in from the Service when omitted. */
  port: { number: number; name?: string };
  /** Optional subset of the Service's pods, by labels (e.g. `{ version: 'v2' }`). */
  subset?: Record<string, string>;
  /** The export's name (DNS label); default: the Service name. */
  exportName?: string;
  /** Default: derived from the Service port as Istio does ({@link detectProtocol}). */
  protocol?: Protocol;
  /** Default `boundary`. */
  mode?: TrustMode;
  /** Consumers admitted from the start; more can be admitted later (planAdmission). Default none. */
  consumers?: ConsumerIdentity[];
}

/**
 * How an import is attached to an existing local Service: a share of its traffic goes to the import.
 * `mergeInto` names the user's own VirtualService (`<namespace>/<name>` or `<name>`) that already routes the
 * Service for sidecars: the split is folded into it instead of a VirtualService of meshfed's, which Istio would
 * ignore (the oldest VirtualService of a host wins on sidecars). Default: none, and such a VirtualService is refused.
 */
export type AttachSpec =
  | { service: string; weight: number; port?: number; mergeInto?: string }
  | { service: string; header: { name: string; value: string }; port?: number; mergeInto?: string };

/** What a user imports: an export bound into a namespace of the consumer cluster under a local name. */
export interface ImportSpec {
  consumerContext?: string;
  /** Consumer cluster id, as the provider admitted it. */
  consumerClusterId: string;
  namespace: string;
  /** The Service name apps call (`<localName>.<namespace>`); default: the export name. */
  localName?: string;
  /** Route part of an existing local Service's traffic to the import (HTTP: weight or header; TCP: weight). */
  attach?: AttachSpec;
  /**
   * The service accounts of the import namespace allowed to call the import; default: every workload of the
   * namespace. Boundary mode enforces it at the egress gateway, shared-root at the provider's workloads (the
   * accounts the import request or the admission named). `verify` probes as one of them.
   */
  serviceAccounts?: string[];
}

/**
 * The provider-side facts a consumer needs to reach an export: what an export bundle carries, and what an
 * import record keeps in the consumer cluster.
 */
export interface ExportEndpoint {
  providerClusterId: string;
  namespace: string;
  exportName: string;
  /** The provider Service (shared-root needs it for the SNI; informational in boundary mode). */
  service: string;
  port: { number: number; name: string; appProtocol?: string };
  protocol: Protocol;
  mode: TrustMode;
  /** Provider federation gateway address (IP or DNS name) and port (15443). */
  gateway: { address: string; port: number };
  /** The SNI the consumer sends: the export host in boundary mode, `outbound_.<port>_.<subset>_.<fqdn>` in shared-root. */
  sni: string;
  /** Shared-root: the provider's trust domain and the service accounts its workloads run as. */
  trustDomain?: string;
  serviceAccounts?: string[];
  /** Shared-root: the DestinationRule subset of the export, when it has one. */
  subsetName?: string;
}

/** Where meshfed's gateways live and how they are selected, as the planners resolved it. */
export interface GatewayPlacement {
  namespace: string;
  selector: Record<string, string>;
  /** Service name of the gateway. */
  serviceName: string;
  /** Service port that reaches the gateway's 15443 listener. */
  port: number;
  /** Whether meshfed deploys it (Istio >= 1.12 injection) or it must already exist. */
  deployed: boolean;
}

/** Facts about one cluster that every snapshot carries. */
export interface ClusterSnapshot {
  /** Cluster id (DNS label). */
  clusterId: string;
  /** Istio control-plane version, e.g. `1.18.2`. */
  istioVersion: string;
  /** Mesh trust domain; default `cluster.local`. */
  trustDomain?: string;
  /** The mesh's `trustDomainAliases`, when known. */
  trustDomainAliases?: string[];
  /** The mesh config's `rootNamespace`; default `istio-system`. */
  rootNamespace?: string;
  /** istiod runs with `PILOT_SKIP_VALIDATE_TRUST_DOMAIN=true`: its sidecars accept peers of any trust domain of the root. */
  skipValidateTrustDomain?: boolean;
  /** The mesh's `defaultServiceExportTo` (visibility of Services without an exportTo annotation), when set. */
  defaultServiceExportTo?: string[];
  /** PEM of the mesh root CA (shared-root mode compares them across clusters). */
  rootCaPem?: string;
  /** Namespace for meshfed's gateways and federation objects; default `istio-meshfed`. */
  gatewayNamespace?: string;
  /** Use this existing gateway instead of deploying (or, on Istio < 1.12, instead of the overlay's gateway). */
  existingGateway?: ExistingGateway;
  /** Services the plan refers to (the exported Service; an attach target). */
  services: ServiceSnapshot[];
  /** Pods of those Services' namespaces; used for warnings only. */
  pods?: PodSnapshot[];
  /**
   * Objects already in the cluster that matter: everything meshfed manages (records, Secrets, Istio config),
   * and Istio config that may conflict (VirtualServices of an attach target, the user's DestinationRules,
   * PeerAuthentications).
   */
  existing: KubeObject[];
  /**
   * `existing` holds the import records of one import and of its binding only (a read scoped to that import): what
   * is recomputed from every import (the egress routes) keeps what the cluster holds for the others. Default false.
   */
  partialImportRecords?: boolean;
  /**
   * Namespaces where meshfed keeps Secrets that the user may not list (the viewer role, which reads no Secret): what
   * is known of the gateways' certificates there comes from the ConfigMaps that publish them. Default none.
   */
  unreadableSecrets?: string[];
}

/** A provider cluster as the export and admission planners see it. */
export interface ProviderSnapshot extends ClusterSnapshot {
  /** External address of the provider gateway Service (LoadBalancer ingress IP or host name), once it has one. */
  gatewayAddress?: string;
}

/** A consumer cluster as the import planner sees it. */
export type ConsumerSnapshot = ClusterSnapshot;

/** Objects to delete: everything of these kinds, in these namespaces, carrying all these labels. */
export interface PruneSpec {
  /** Label selector (all must match). */
  selector: Record<string, string>;
  /** `apiVersion/kind` pairs to consider, e.g. `networking.istio.io/v1beta1/Gateway`. */
  kinds: Array<{ apiVersion: string; kind: string }>;
  /** Objects that match but are still wanted (they are in `objects`), by `kind/namespace/name`. */
  keep?: string[];
}

/** What one cluster needs. */
export interface ClusterPlan {
  /** The cluster id the plan is for. */
  clusterId: string;
  /** Desired objects, fully specified, in dependency order (apply front to back). */
  objects: KubeObject[];
  /** Objects to delete (explicit), in reverse dependency order. */
  remove: Array<{ apiVersion: string; kind: string; namespace?: string; name: string }>;
  /** Label-selected pruning after apply (stale objects of earlier versions of the same export/import). */
  prune: PruneSpec[];
  /** Things the user should know; the plan is still valid. */
  warnings: string[];
  /** Names (`namespace/name`) of Secrets in `objects` that hold private keys: never print their data. */
  secretsWithPrivateKeys: string[];
  /** Istio < 1.12 without an existing gateway: an IstioOperator overlay the operator must install. */
  overlay?: KubeObject;
  /**
   * Objects in `objects` (by `Kind/namespace/name`) that meshfed does not manage and changes with the user's explicit
   * consent (`--merge-into`); every other object of that name not managed by meshfed is refused.
   */
  consented?: string[];
}
