/**
 * Records: what meshfed remembers in each cluster about its exports and imports, as ConfigMaps next to its
 * gateways. Shared objects (the shared-root gateway host list, subsets, workload guards, the consumer egress
 * routes) are recomputed from all records, so adding or removing one export never loses another's settings;
 * `status`/`list` read them too.
 */
import { FederationInputError } from './errors.js';
import type { AttachSpec, ClusterSnapshot, ConsumerIdentity, ExportEndpoint, KubeObject, Protocol, TrustMode } from './model.js';
import { exportLabel, importLabel, LABELS, bindingLabel, names } from './naming.js';
import { isManaged, kubeObject, meshfedLabels } from './objects.js';

/** What a provider remembers about one export. */
export interface ExportRecord {
  providerClusterId: string;
  providerContext?: string;
  exportName: string;
  namespace: string;
  service: string;
  port: { number: number; name: string; appProtocol?: string; targetPort?: number | string };
  protocol: Protocol;
  mode: TrustMode;
  subset?: Record<string, string>;
  /** DestinationRule subset name, when the export has a subset. */
  subsetName?: string;
  /** Boundary: the export host (SNI). Shared-root: the Service's FQDN (the AUTO_PASSTHROUGH host). */
  host: string;
  /** Admitted consumers. */
  consumers: ConsumerIdentity[];
  /**
   * Shared-root: an AUTO_PASSTHROUGH server that meshfed does not manage, on the gateway workload and port the export
   * is served from, already covers its host (Istio's `*.local` east-west Gateway), so meshfed adds no server for it.
   */
  coveredBy?: PassthroughCover;
}

/** A Gateway server meshfed does not manage that already passes an export's host through, and where it listens. */
export interface PassthroughCover {
  /** `namespace/name` of the Gateway. */
  gateway: string;
  /** The server's hosts, as written (e.g. `*.local`). */
  hosts: string[];
  /** The gateway workload's pod labels, as meshfed selects it. */
  selector: Record<string, string>;
  /** The server port. */
  port: number;
}

/** What a consumer remembers about one import. */
export interface ImportRecord {
  consumerClusterId: string;
  namespace: string;
  localName: string;
  endpoint: ExportEndpoint;
  attach?: AttachSpec;
  /** The service accounts of the namespace allowed to call the import; absent: every workload of the namespace.
   * In shared-root mode, the accounts the provider admits; `verify` probes as one of them. */
  serviceAccounts?: string[];
  /**
   * `--merge-into`: the user's VirtualService the attach split was folded into, and its spec before meshfed changed
   * it (restored by unimport; the base of every re-plan, so the split is never applied twice).
   */
  mergedInto?: { namespace: string; name: string; originalSpec: Record<string, unknown> };
}

/**
 * Set on a record before a removal (unexport, unimport) changes anything else: the export or import is going away.
 * Commands that plan the shared objects from every record (the consumer's egress routes, the provider's host list and
 * subsets) leave a marked record out, so a command that reads while the removal is half-way never writes the removed
 * export or import back into a shared object the removal has just rewritten or deleted. The record itself is still
 * deleted last: a removal stopped half-way finds it, marked, and finishes when run again.
 */
export const REMOVING_ANNOTATION = 'meshfed.io/removing';

/** Which records to read: by default those of exports and imports that are not being removed. */
export interface RecordQuery {
  /** Also the records marked with {@link REMOVING_ANNOTATION}, with `removing: true`. */
  removing?: boolean;
}

/** A record as read from the cluster: `removing` when a removal has marked it (never stored in the record). */
export type Read<T> = T & { removing?: true };

const EXPORT_KEY = 'export.json';
const IMPORT_KEY = 'import.json';

/** The ConfigMap that stores an export record. */
export function exportRecordObject(read: Read<ExportRecord>, namespace: string): KubeObject {
  const { removing: _, ...record } = read;
  return kubeObject('v1', 'ConfigMap', names.export(record.namespace, record.exportName), namespace,
    meshfedLabels('export-record', { [LABELS.export]: exportLabel(record.namespace, record.exportName) }),
    { data: { [EXPORT_KEY]: `${JSON.stringify(record, null, 2)}\n` } });
}

/** The ConfigMap that stores an import record. */
export function importRecordObject(read: Read<ImportRecord>, namespace: string): KubeObject {
  const { removing: _, ...record } = read;
  const e = record.endpoint;
  return kubeObject('v1', 'ConfigMap', names.importRecord(record.namespace, record.localName), namespace,
    meshfedLabels('import-record', {
      [LABELS.import]: importLabel(record.namespace, record.localName),
      [LABELS.binding]: bindingLabel(e.providerClusterId, e.namespace, e.exportName),
      [LABELS.provider]: e.providerClusterId,
    }),
    { data: { [IMPORT_KEY]: `${JSON.stringify(record, null, 2)}\n` } });
}

/** Whether a removal has marked this record (see {@link REMOVING_ANNOTATION}). */
export function isMarkedRemoving(object: KubeObject): boolean {
  return object.metadata.annotations?.[REMOVING_ANNOTATION] !== undefined;
}

/**
 * The ConfigMap of the record a removal is about, when it still has to be marked (see {@link REMOVING_ANNOTATION}):
 * undefined when it is marked already, or gone.
 */
export function recordToMark(snapshot: ClusterSnapshot, of: { export: { namespace: string; exportName: string } } | { import: { namespace: string; localName: string } }): KubeObject | undefined {
  const [role, label, value] = 'export' in of
    ? ['export-record', LABELS.export, exportLabel(of.export.namespace, of.export.exportName)]
    : ['import-record', LABELS.import, importLabel(of.import.namespace, of.import.localName)];
  return snapshot.existing.find((o) => o.kind === 'ConfigMap' && isManaged(o) && o.metadata.labels?.[LABELS.role] === role
    && o.metadata.labels?.[label] === value && !isMarkedRemoving(o));
}

function recordsOf<T>(snapshot: ClusterSnapshot, role: string, key: string, query: RecordQuery): Array<Read<T>> {
  const out: Array<Read<T>> = [];
  for (const o of snapshot.existing) {
    if (o.kind !== 'ConfigMap' || !isManaged(o) || o.metadata.labels?.[LABELS.role] !== role) continue;
    const removing = isMarkedRemoving(o);
    if (removing && !query.removing) continue;
    const text = (o.data as Record<string, string> | undefined)?.[key];
    try {
      if (text === undefined) throw new Error('missing');
      const record = JSON.parse(text) as T;
      out.push(removing ? { ...record, removing: true as const } : record as Read<T>);
    } catch {
      throw new FederationInputError(
        `ConfigMap ${o.metadata.namespace}/${o.metadata.name} is a meshfed ${role} but its ${key} is missing or not JSON; ` +
        'delete it and run the command again to recreate it',
      );
    }
  }
  return out;
}

/** Every export record in a provider snapshot (see {@link RecordQuery}), sorted by namespace and name. */
export function readExportRecords(snapshot: ClusterSnapshot, query: RecordQuery = {}): Array<Read<ExportRecord>> {
  return recordsOf<ExportRecord>(snapshot, 'export-record', EXPORT_KEY, query)
    .sort((a, b) => `${a.namespace}/${a.exportName}`.localeCompare(`${b.namespace}/${b.exportName}`));
}

/** Every import record in a consumer snapshot (see {@link RecordQuery}), sorted by namespace and local name. */
export function readImportRecords(snapshot: ClusterSnapshot, query: RecordQuery = {}): Array<Read<ImportRecord>> {
  return recordsOf<ImportRecord>(snapshot, 'import-record', IMPORT_KEY, query)
    .sort((a, b) => `${a.namespace}/${a.localName}`.localeCompare(`${b.namespace}/${b.localName}`));
}
