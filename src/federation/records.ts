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

const EXPORT_KEY = 'export.json';
const IMPORT_KEY = 'import.json';

/** The ConfigMap that stores an export record. */
export function exportRecordObject(record: ExportRecord, namespace: string): KubeObject {
  return kubeObject('v1', 'ConfigMap', names.export(record.namespace, record.exportName), namespace,
    meshfedLabels('export-record', { [LABELS.export]: exportLabel(record.namespace, record.exportName), [LABELS.shares]: String(sharesObjects(record)) }),
    { data: { [EXPORT_KEY]: `${JSON.stringify(record, null, 2)}\n` } });
}

/** Whether an export has a part in objects recomputed from several exports' records (see {@link LABELS.shares}). */
export function sharesObjects(record: Pick<ExportRecord, 'mode' | 'subset'>): boolean {
  return record.mode === 'shared-root' || record.subset !== undefined;
}

/** The ConfigMap that stores an import record. */
export function importRecordObject(record: ImportRecord, namespace: string): KubeObject {
  const e = record.endpoint;
  return kubeObject('v1', 'ConfigMap', names.importRecord(record.namespace, record.localName), namespace,
    meshfedLabels('import-record', {
      [LABELS.import]: importLabel(record.namespace, record.localName),
      [LABELS.binding]: bindingLabel(e.providerClusterId, e.namespace, e.exportName),
      [LABELS.provider]: e.providerClusterId,
    }),
    { data: { [IMPORT_KEY]: `${JSON.stringify(record, null, 2)}\n` } });
}

function recordsOf<T>(snapshot: ClusterSnapshot, role: string, key: string): T[] {
  const out: T[] = [];
  for (const o of snapshot.existing) {
    if (o.kind !== 'ConfigMap' || !isManaged(o) || o.metadata.labels?.[LABELS.role] !== role) continue;
    const text = (o.data as Record<string, string> | undefined)?.[key];
    try {
      if (text === undefined) throw new Error('missing');
      out.push(JSON.parse(text) as T);
    } catch {
      throw new FederationInputError(
        `ConfigMap ${o.metadata.namespace}/${o.metadata.name} is a meshfed ${role} but its ${key} is missing or not JSON; ` +
        'delete it and run the command again to recreate it',
      );
    }
  }
  return out;
}

/** Every export record in a provider snapshot, sorted by namespace and name. */
export function readExportRecords(snapshot: ClusterSnapshot): ExportRecord[] {
  return recordsOf<ExportRecord>(snapshot, 'export-record', EXPORT_KEY)
    .sort((a, b) => `${a.namespace}/${a.exportName}`.localeCompare(`${b.namespace}/${b.exportName}`));
}

/** Every import record in a consumer snapshot, sorted by namespace and local name. */
export function readImportRecords(snapshot: ClusterSnapshot): ImportRecord[] {
  return recordsOf<ImportRecord>(snapshot, 'import-record', IMPORT_KEY)
    .sort((a, b) => `${a.namespace}/${a.localName}`.localeCompare(`${b.namespace}/${b.localName}`));
}
