/**
 * Uninstall: everything meshfed created in one cluster, found by its managed-by label, once nothing depends on it
 * (or, forced, with what still does). Pure: the command layer says which of meshfed's namespaces hold objects of
 * others, which are never deleted.
 */
import { pendingRequests, type ExportRef } from './bundle.js';
import type { ClusterPlan, ClusterSnapshot } from './model.js';
import { API, emptyPlan, isManaged, objectKey } from './objects.js';
import { readExportRecords, readImportRecords } from './records.js';

/** What still uses meshfed in a cluster. */
export interface UninstallDependents {
  /** Exports. */
  exports: Array<{ namespace: string; exportName: string }>;
  /** Imports, with the export each imports. */
  imports: Array<{ namespace: string; localName: string; from: ExportRef }>;
  /** Import requests never completed. */
  pending: ExportRef[];
}

/** An uninstall plan. */
export interface UninstallPlan extends ClusterPlan {
  dependents: UninstallDependents;
  /** Namespaces meshfed created that the plan deletes. */
  namespaces: string[];
  /** Namespaces meshfed created that stay, because objects of others live in them (name → those objects). */
  keptNamespaces: Record<string, string[]>;
}

/** Whether anything still depends on meshfed in the cluster. */
export function hasDependents(d: UninstallDependents): boolean {
  return d.exports.length + d.imports.length + d.pending.length > 0;
}

/**
 * Plans the removal of every object meshfed manages in a cluster, and of the namespaces it created (labelled as
 * managed by it) unless `foreign` names objects of others in them. A user's VirtualService that an import was folded
 * into (`--merge-into`) gets back the spec it had before.
 * @param input.foreign for each of meshfed's namespaces, the objects in it that meshfed does not manage (`Kind/name`)
 */
export function planUninstall(snapshot: ClusterSnapshot, input: { foreign: Record<string, string[]> }): UninstallPlan {
  // Removals stopped half-way still have objects here: they count.
  const exports = readExportRecords(snapshot, { removing: true });
  const imports = readImportRecords(snapshot, { removing: true });
  const dependents: UninstallDependents = {
    exports: exports.map((r) => ({ namespace: r.namespace, exportName: r.exportName })),
    imports: imports.map((r) => ({ namespace: r.namespace, localName: r.localName, from: { providerClusterId: r.endpoint.providerClusterId, namespace: r.endpoint.namespace, exportName: r.endpoint.exportName } })),
    pending: pendingRequests(snapshot).map((p) => ({ providerClusterId: p.providerClusterId, namespace: p.namespace, exportName: p.exportName })),
  };
  const plan = emptyPlan(snapshot.clusterId);
  for (const record of imports) {
    const m = record.mergedInto;
    if (!m || !snapshot.existing.some((o) => o.kind === 'VirtualService' && o.metadata.namespace === m.namespace && o.metadata.name === m.name)) continue;
    plan.objects.push({ apiVersion: API.networking, kind: 'VirtualService', metadata: { name: m.name, namespace: m.namespace }, spec: structuredClone(m.originalSpec) });
    plan.consented = [...(plan.consented ?? []), `VirtualService/${m.namespace}/${m.name}`];
    plan.warnings.push(`VirtualService ${m.namespace}/${m.name} gets back the routes it had before import ${record.namespace}/${record.localName} was folded into it`);
  }
  const managed = snapshot.existing.filter((o) => isManaged(o)).sort((a, b) => objectKey(a).localeCompare(objectKey(b)));
  const namespaces: string[] = [];
  const keptNamespaces: Record<string, string[]> = {};
  for (const o of managed) {
    if (o.kind === 'Namespace') continue;
    plan.remove.push({ apiVersion: o.apiVersion, kind: o.kind, ...(o.metadata.namespace ? { namespace: o.metadata.namespace } : {}), name: o.metadata.name });
  }
  for (const o of managed.filter((m) => m.kind === 'Namespace')) {
    const others = input.foreign[o.metadata.name] ?? [];
    if (others.length > 0) {
      keptNamespaces[o.metadata.name] = others;
      // Handed over: applied without meshfed's label, which server-side apply then removes (meshfed's field manager owns it).
      plan.objects.push({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: o.metadata.name } });
      plan.warnings.push(`namespace ${o.metadata.name} stays, no longer labelled as meshfed's: meshfed created it, but it also holds ${others.join(', ')}, which meshfed does not manage`);
      continue;
    }
    namespaces.push(o.metadata.name);
    plan.remove.push({ apiVersion: 'v1', kind: 'Namespace', name: o.metadata.name });
  }
  return { ...plan, dependents, namespaces, keptNamespaces };
}
