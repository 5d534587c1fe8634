/**
 * Where an export is served now, and what moving it to another gateway means: the objects it leaves behind, the
 * consumers whose path it breaks, and the federation CA, of which a provider cluster has one wherever its gateways
 * live. Pure: reads snapshots only.
 */
import { inspectCertificate, keyMatchesCertificate, type CertificateAndKey } from '../pki/index.js';
import { FederationInputError } from './errors.js';
import type { ClusterSnapshot, GatewayPlacement, KubeObject } from './model.js';
import { FEDERATION_CA_NAMESPACE, FEDERATION_CA_SECRET, GATEWAY_NAMES, LABELS, names } from './naming.js';
import { gatewayNamespaceOf, isManaged, readSecret } from './objects.js';
import type { ExportRecord, PassthroughCover } from './records.js';

/** Where an export is served now, read from its record and its Gateway object. */
export interface ExportLocation {
  /** Namespace of the export's record and of its gateway objects. */
  namespace: string;
  /** Pod labels of the gateway workload its Gateway object selects; absent when that object is missing. */
  selector?: Record<string, string>;
  /** Gateway port its Gateway object listens on; absent when that object is missing. */
  port?: number;
}

/**
 * Where an export is served now: the namespace of its record ConfigMap, and the selector and port of its Gateway
 * object there (boundary: the export's own Gateway; shared-root: the shared `meshfed-eastwest` Gateway).
 * @returns undefined when the export has no record yet
 */
export function exportLocation(snapshot: ClusterSnapshot, record: Pick<ExportRecord, 'namespace' | 'exportName' | 'mode'>): ExportLocation | undefined {
  const name = names.export(record.namespace, record.exportName);
  const stored = snapshot.existing.find((o) => o.kind === 'ConfigMap' && o.metadata.name === name && isManaged(o)
    && o.metadata.labels?.[LABELS.role] === 'export-record');
  const namespace = stored?.metadata.namespace;
  if (!namespace) return undefined;
  const gatewayName = record.mode === 'boundary' ? name : GATEWAY_NAMES.eastwest;
  const gateway = snapshot.existing.find((o) => o.kind === 'Gateway' && o.metadata.name === gatewayName && o.metadata.namespace === namespace);
  let spec = gateway?.spec as { selector?: Record<string, string>; servers?: Array<{ port?: { number?: number } }> } | undefined;
  if (!gateway && record.mode === 'shared-root') {
    // Served through a passthrough server meshfed does not manage: where is in the record.
    const cover = coverOf(stored);
    if (cover) spec = { selector: cover.selector, servers: [{ port: { number: cover.port } }] };
  }
  const port = spec?.servers?.[0]?.port?.number;
  return {
    namespace,
    ...(spec?.selector && Object.keys(spec.selector).length ? { selector: { ...spec.selector } } : {}),
    ...(port !== undefined ? { port } : {}),
  };
}

/** The `coveredBy` of an export record ConfigMap, when it has one. */
export function coverOf(recordObject: KubeObject | undefined): PassthroughCover | undefined {
  try {
    const record = JSON.parse((recordObject?.data as Record<string, string> | undefined)?.['export.json'] ?? '') as ExportRecord;
    return record.coveredBy?.selector && typeof record.coveredBy.port === 'number' ? record.coveredBy : undefined;
  } catch {
    return undefined;
  }
}

function sameLabels(a: Record<string, string>, b: Record<string, string>): boolean {
  const keys = Object.keys(a);
  return keys.length === Object.keys(b).length && keys.every((k) => a[k] === b[k]);
}

/**
 * Whether serving an export at `placement` moves it away from where it is served now: another namespace, another
 * gateway workload or another port. Consumers connect to the gateway's address and port, so a move changes their path.
 */
export function movesExport(from: ExportLocation, placement: GatewayPlacement): boolean {
  return from.namespace !== placement.namespace
    || (from.selector !== undefined && !sameLabels(from.selector, placement.selector))
    || (from.port !== undefined && from.port !== placement.port);
}

/** A gateway as messages name it: `istio-system (istio=ingressgateway, port 15443)`. */
export function describeGatewayAt(at: { namespace: string; selector?: Record<string, string>; port?: number }): string {
  const labels = at.selector ? Object.entries(at.selector).map(([k, v]) => `${k}=${v}`).join(',') : undefined;
  const details = [labels, at.port !== undefined ? `port ${at.port}` : undefined].filter(Boolean).join(', ');
  return `namespace ${at.namespace}${details ? ` (${details})` : ''}`;
}

/**
 * The gateway flags that keep a command on the gateway an export is served by: none for meshfed's own gateway of
 * the role, `--gateway-selector` and `--gateway-namespace` for an existing one.
 */
export function gatewayFlagsFor(snapshot: ClusterSnapshot, from: ExportLocation, role: 'ingress' | 'eastwest'): string {
  const own = from.namespace === gatewayNamespaceOf(snapshot) && (!from.selector || sameLabels(from.selector, { istio: GATEWAY_NAMES[role] }));
  if (own || !from.selector) return 'no --gateway-selector';
  return `--gateway-selector ${Object.entries(from.selector).map(([k, v]) => `${k}=${v}`).join(',')} --gateway-namespace ${from.namespace}`;
}

/**
 * The records served from `namespace`: those whose record lives there, and `focus` (the export being planned) when
 * it is planned there.
 */
export function exportsServedFrom(snapshot: ClusterSnapshot, records: readonly ExportRecord[], namespace: string): ExportRecord[] {
  return records.filter((r) => exportLocation(snapshot, r)?.namespace === namespace);
}

/** The federation CA a provider plan uses, and what to do with other copies of it. */
export interface FederationCaChoice {
  /** The CA found in the cluster; undefined when there is none yet (the planner creates one). */
  ca?: CertificateAndKey;
  /** Namespace of the Secret it was found in. */
  foundIn?: string;
  /**
   * Secrets holding the same CA outside {@link FEDERATION_CA_NAMESPACE} (where earlier versions kept it, beside the
   * gateways): the plan removes them, since a gateway's namespace is readable by the gateway.
   */
  copies: KubeObject[];
  /** Secrets holding a different CA (a cluster damaged by an earlier version that created a second CA). */
  others: KubeObject[];
  /**
   * A CA rotation under way (`rotate --ca`): the next federation CA, trusted beside the current one until the
   * rotation finishes, and the consumers whose client certificates it has signed since.
   */
  next?: CertificateAndKey;
  /** Consumer cluster ids whose client certificates the next CA signed (empty when no rotation is under way). */
  renewed: string[];
}

/** Data keys of the CA Secret during a CA rotation: the next CA and the consumers it has signed for. */
export const NEXT_CA_KEYS = { certificate: 'next.crt', key: 'next.key', renewed: 'next-consumers.json' } as const;

function nextCaOf(secret: KubeObject): { next?: CertificateAndKey; renewed: string[] } {
  const data = readSecret(secret) ?? {};
  const certificatePem = data[NEXT_CA_KEYS.certificate];
  const privateKeyPem = data[NEXT_CA_KEYS.key];
  if (!certificatePem || !privateKeyPem) return { renewed: [] };
  if (!keyMatchesCertificate(privateKeyPem, certificatePem)) {
    throw new FederationInputError(`Secret ${secret.metadata.namespace}/${secret.metadata.name} holds a next federation CA whose ${NEXT_CA_KEYS.key} does not match ${NEXT_CA_KEYS.certificate}; restore it from a backup, or remove both keys and start the CA rotation again (kubectl meshfed rotate --ca)`);
  }
  let renewed: string[] = [];
  try {
    const parsed: unknown = JSON.parse(data[NEXT_CA_KEYS.renewed] ?? '[]');
    if (Array.isArray(parsed)) renewed = parsed.filter((v): v is string => typeof v === 'string');
  } catch {
    renewed = [];
  }
  return { next: { certificatePem, privateKeyPem }, renewed };
}

function caOf(secret: KubeObject, now: Date | undefined): CertificateAndKey {
  const where = `${secret.metadata.namespace}/${secret.metadata.name}`;
  const data = readSecret(secret) ?? {};
  const certificatePem = data['ca.crt'];
  const privateKeyPem = data['ca.key'];
  if (!certificatePem || !privateKeyPem || !keyMatchesCertificate(privateKeyPem, certificatePem)) {
    throw new FederationInputError(`Secret ${where} does not hold a matching ca.crt and ca.key; restore it from a backup (deleting it re-creates the CA and invalidates every consumer certificate)`);
  }
  const info = inspectCertificate(certificatePem, now);
  if (info.daysLeft < 0) {
    throw new FederationInputError(`the federation CA in Secret ${where} expired on ${info.notAfter.toISOString()}; delete the Secret to create a new CA, then re-admit every consumer`);
  }
  return { certificatePem, privateKeyPem };
}

const samePem = (a: string | undefined, b: string | undefined): boolean =>
  a !== undefined && b !== undefined && a.replace(/\r\n/g, '\n').trim() === b.replace(/\r\n/g, '\n').trim();

/**
 * The provider's federation CA, wherever meshfed keeps it: in {@link FEDERATION_CA_NAMESPACE} first, else beside
 * the gateway (`home`, where versions before it kept it), else in meshfed's gateway namespace, else any other. One CA
 * per provider cluster: a CA found beside a gateway moves to its own namespace rather than a second one being
 * created, which would leave the consumers admitted before with certificates the gateway does not accept.
 * @throws FederationInputError when the chosen Secret does not hold a usable CA
 */
export function chooseFederationCa(snapshot: ClusterSnapshot, home: string, now?: Date): FederationCaChoice {
  const secrets = snapshot.existing
    .filter((o) => o.kind === 'Secret' && o.metadata.name === FEDERATION_CA_SECRET && o.metadata.namespace && isManaged(o))
    .sort((a, b) => rank(a) - rank(b) || a.metadata.namespace!.localeCompare(b.metadata.namespace!));
  function rank(o: KubeObject): number {
    const ns = o.metadata.namespace;
    return ns === FEDERATION_CA_NAMESPACE ? 0 : ns === home ? 1 : ns === gatewayNamespaceOf(snapshot) ? 2 : 3;
  }
  const chosen = secrets[0];
  if (!chosen) return { copies: [], others: [], renewed: [] };
  const ca = caOf(chosen, now);
  const rest = secrets.slice(1);
  const isCopy = (o: KubeObject): boolean => samePem(readSecret(o)?.['ca.crt'], ca.certificatePem);
  return {
    ca,
    foundIn: chosen.metadata.namespace!,
    copies: [...(chosen.metadata.namespace !== FEDERATION_CA_NAMESPACE ? [chosen] : []), ...rest.filter(isCopy)],
    others: rest.filter((o) => !isCopy(o)),
    ...nextCaOf(chosen),
  };
}
