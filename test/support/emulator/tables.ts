/**
 * Server-side printing: the `meta.k8s.io/v1` Table that `kubectl get` asks for, with the columns a real
 * apiserver prints for the emulated kinds and a CRD's `additionalPrinterColumns` for custom resources.
 */
import type { PrinterColumn, ResourceType } from './registry.js';
import type { KubeObject } from './runtime.js';

interface Column {
  name: string;
  type: string;
  format: string;
  description: string;
  priority: number;
}

function col(name: string, type = 'string', priority = 0, format = ''): Column {
  return { name, type, format, description: name, priority };
}

/** Kubernetes' `duration.HumanDuration`, as in the AGE column. */
export function humanDuration(ms: number): string {
  const seconds = Math.floor(ms / 1000);
  if (seconds < -1) return '<invalid>';
  if (seconds < 0) return '0s';
  if (seconds < 60 * 2) return `${seconds}s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 10) return seconds % 60 === 0 ? `${minutes}m` : `${minutes}m${seconds % 60}s`;
  if (minutes < 60 * 3) return `${minutes}m`;
  const hours = Math.floor(minutes / 60);
  if (hours < 8) return minutes % 60 === 0 ? `${hours}h` : `${hours}h${minutes % 60}m`;
  if (hours < 48) return `${hours}h`;
  if (hours < 24 * 8) return hours % 24 === 0 ? `${Math.floor(hours / 24)}d` : `${Math.floor(hours / 24)}d${hours % 24}h`;
  if (hours < 24 * 365 * 2) return `${Math.floor(hours / 24)}d`;
  return `${Math.floor(hours / 24 / 365)}y`;
}

function age(obj: KubeObject): string {
  const created = obj.metadata.creationTimestamp;
  return created ? humanDuration(Date.now() - Date.parse(created)) : '<unknown>';
}

type Row = Array<string | number>;

interface ContainerStatus {
  name: string;
  ready: boolean;
  restartCount: number;
  state?: { waiting?: { reason?: string }; terminated?: { reason?: string; exitCode?: number }; running?: object };
}

/** The STATUS column of a pod, as kubectl's printer derives it. */
export function podStatusReason(pod: KubeObject): string {
  const status = (pod.status ?? {}) as { phase?: string; reason?: string; containerStatuses?: ContainerStatus[]; initContainerStatuses?: ContainerStatus[] };
  let reason = status.reason ?? status.phase ?? 'Pending';
  const inits = status.initContainerStatuses ?? [];
  const initCount = ((pod.spec as { initContainers?: unknown[] } | undefined)?.initContainers ?? []).length;
  let initializing = false;
  for (const [i, c] of inits.entries()) {
    if (c.state?.terminated && c.state.terminated.exitCode === 0) continue;
    initializing = true;
    if (c.state?.terminated) reason = `Init:${c.state.terminated.reason ?? `ExitCode:${c.state.terminated.exitCode}`}`;
    else if (c.state?.waiting?.reason && c.state.waiting.reason !== 'PodInitializing') reason = `Init:${c.state.waiting.reason}`;
    else reason = `Init:${i}/${initCount}`;
    break;
  }
  if (!initializing) {
    let hasRunning = false;
    for (const c of [...(status.containerStatuses ?? [])].reverse()) {
      if (c.state?.waiting?.reason) reason = c.state.waiting.reason;
      else if (c.state?.terminated?.reason) reason = c.state.terminated.reason;
      else if (c.state?.running && c.ready) hasRunning = true;
    }
    if (reason === 'Completed' && hasRunning) reason = 'Running';
  }
  if (pod.metadata.deletionTimestamp) reason = 'Terminating';
  return reason;
}

function jsonPathValue(obj: unknown, path: string): unknown {
  let cur: unknown = obj;
  for (const part of path.replace(/^\./, '').split(/\.|(?=\[)/)) {
    if (part === '') continue;
    const index = /^\[(\d+)\]$/.exec(part);
    if (index) cur = Array.isArray(cur) ? cur[Number(index[1])] : undefined;
    else cur = typeof cur === 'object' && cur !== null ? (cur as Record<string, unknown>)[part] : undefined;
    if (cur === undefined) return undefined;
  }
  return cur;
}

function printerCell(obj: KubeObject, column: PrinterColumn): string | number {
  const v = jsonPathValue(obj, column.jsonPath);
  if (v === undefined || v === null) return '';
  if (column.type === 'date' && typeof v === 'string') return humanDuration(Date.now() - Date.parse(v));
  if (typeof v === 'object') return JSON.stringify(v);
  return v as string | number;
}

function servicePorts(spec: { ports?: Array<{ port: number; nodePort?: number; protocol?: string }> }): string {
  const ports = spec.ports ?? [];
  if (ports.length === 0) return '<none>';
  return ports.map((p) => `${p.port}${p.nodePort ? `:${p.nodePort}` : ''}/${p.protocol ?? 'TCP'}`).join(',');
}

function externalIp(svc: KubeObject): string {
  const spec = svc.spec as { type?: string; externalIPs?: string[]; externalName?: string };
  const ingress = ((svc.status as { loadBalancer?: { ingress?: Array<{ ip?: string; hostname?: string }> } } | undefined)?.loadBalancer?.ingress ?? [])
    .map((i) => i.ip ?? i.hostname ?? '');
  switch (spec.type) {
    case 'LoadBalancer': {
      const all = [...ingress, ...(spec.externalIPs ?? [])];
      return all.length > 0 ? all.join(',') : '<pending>';
    }
    case 'ExternalName': return spec.externalName ?? '<none>';
    default: return spec.externalIPs?.length ? spec.externalIPs.join(',') : '<none>';
  }
}

function selectorText(selector: Record<string, string> | undefined): string {
  const entries = Object.entries(selector ?? {});
  return entries.length === 0 ? '<none>' : entries.map(([k, v]) => `${k}=${v}`).join(',');
}

function columnsAndCells(type: ResourceType, version: string): { columns: Column[]; cells: (o: KubeObject) => Row } {
  const name: Column = { ...col('Name'), format: 'name' };
  const ageCol = col('Age');
  switch (type.kind) {
    case 'Pod':
      return {
        columns: [name, col('Ready'), col('Status'), col('Restarts', 'string'), ageCol, col('IP', 'string', 1), col('Node', 'string', 1), col('Nominated Node', 'string', 1), col('Readiness Gates', 'string', 1)],
        cells: (o) => {
          const statuses = ((o.status as { containerStatuses?: ContainerStatus[] } | undefined)?.containerStatuses ?? []);
          const total = ((o.spec as { containers?: unknown[] }).containers ?? []).length;
          const restarts = statuses.reduce((n, c) => n + (c.restartCount ?? 0), 0);
          return [o.metadata.name, `${statuses.filter((c) => c.ready).length}/${total}`, podStatusReason(o), String(restarts), age(o),
            (o.status as { podIP?: string } | undefined)?.podIP ?? '<none>', (o.spec as { nodeName?: string }).nodeName ?? '<none>', '<none>', '<none>'];
        },
      };
    case 'Service':
      return {
        columns: [name, col('Type'), col('Cluster-IP'), col('External-IP'), col('Port(s)'), ageCol, col('Selector', 'string', 1)],
        cells: (o) => {
          const spec = o.spec as { type?: string; clusterIP?: string; selector?: Record<string, string> };
          return [o.metadata.name, spec.type ?? 'ClusterIP', spec.clusterIP ?? '<none>', externalIp(o), servicePorts(o.spec as object), age(o), selectorText(spec.selector)];
        },
      };
    case 'Deployment':
      return {
        columns: [name, col('Ready'), col('Up-to-date', 'integer'), col('Available', 'integer'), ageCol, col('Containers', 'string', 1), col('Images', 'string', 1), col('Selector', 'string', 1)],
        cells: (o) => {
          const spec = o.spec as { replicas?: number; template?: { spec?: { containers?: Array<{ name: string; image: string }> } }; selector?: { matchLabels?: Record<string, string> } };
          const status = (o.status ?? {}) as { readyReplicas?: number; updatedReplicas?: number; availableReplicas?: number };
          const containers = spec.template?.spec?.containers ?? [];
          return [o.metadata.name, `${status.readyReplicas ?? 0}/${spec.replicas ?? 1}`, status.updatedReplicas ?? 0, status.availableReplicas ?? 0, age(o),
            containers.map((c) => c.name).join(','), containers.map((c) => c.image).join(','), selectorText(spec.selector?.matchLabels)];
        },
      };
    case 'Namespace':
      return { columns: [name, col('Status'), ageCol], cells: (o) => [o.metadata.name, (o.status as { phase?: string } | undefined)?.phase ?? 'Active', age(o)] };
    case 'ConfigMap':
      return { columns: [name, col('Data', 'integer'), ageCol], cells: (o) => [o.metadata.name, Object.keys((o.data as object | undefined) ?? {}).length + Object.keys((o.binaryData as object | undefined) ?? {}).length, age(o)] };
    case 'Secret':
      return { columns: [name, col('Type'), col('Data', 'integer'), ageCol], cells: (o) => [o.metadata.name, String(o.type ?? 'Opaque'), Object.keys((o.data as object | undefined) ?? {}).length, age(o)] };
    case 'ServiceAccount':
      return { columns: [name, col('Secrets', 'integer'), ageCol], cells: (o) => [o.metadata.name, ((o.secrets as unknown[] | undefined) ?? []).length, age(o)] };
    case 'Endpoints':
      return {
        columns: [name, col('Endpoints'), ageCol],
        cells: (o) => {
          const subsets = (o.subsets as Array<{ addresses?: Array<{ ip: string }>; ports?: Array<{ port: number }> }> | undefined) ?? [];
          const eps = subsets.flatMap((s) => (s.addresses ?? []).flatMap((a) => (s.ports ?? []).map((p) => `${a.ip}:${p.port}`)));
          return [o.metadata.name, eps.length === 0 ? '<none>' : eps.slice(0, 3).join(',') + (eps.length > 3 ? ` + ${eps.length - 3} more...` : ''), age(o)];
        },
      };
    case 'Event':
      return {
        columns: [col('Last Seen'), col('Type'), col('Reason'), col('Object'), col('Message'), col('Subobject', 'string', 1), col('Source', 'string', 1), col('First Seen', 'string', 1), col('Count', 'string', 1), { ...name, priority: 1 }],
        cells: (o) => {
          const e = o as KubeObject & { lastTimestamp?: string; firstTimestamp?: string; type?: string; reason?: string; message?: string; count?: number; involvedObject?: { kind?: string; name?: string; fieldPath?: string }; source?: { component?: string; host?: string } };
          const since = (ts?: string): string => (ts ? humanDuration(Date.now() - Date.parse(ts)) : '<unknown>');
          return [since(e.lastTimestamp), e.type ?? '', e.reason ?? '', `${(e.involvedObject?.kind ?? '').toLowerCase()}/${e.involvedObject?.name ?? ''}`, e.message ?? '',
            e.involvedObject?.fieldPath ?? '', [e.source?.component, e.source?.host].filter(Boolean).join(', '), since(e.firstTimestamp), String(e.count ?? 1), o.metadata.name];
        },
      };
    case 'CustomResourceDefinition':
      return { columns: [name, col('Created At', 'date')], cells: (o) => [o.metadata.name, o.metadata.creationTimestamp ?? ''] };
    default: {
      const printer = type.custom?.columns[version] ?? [];
      if (type.custom && printer.length > 0) {
        const columns = printer.map((c) => ({ name: c.name, type: c.type, format: c.format ?? '', description: c.description ?? '', priority: c.priority ?? 0 }));
        return { columns: [name, ...columns], cells: (o) => [o.metadata.name, ...printer.map((c) => printerCell(o, c))] };
      }
      return { columns: [name, ageCol], cells: (o) => [o.metadata.name, age(o)] };
    }
  }
}

/** A Table of objects. `includeObject` is the request's (`None`, `Metadata` — the default — or `Object`). */
export function toTable(type: ResourceType, version: string, objects: KubeObject[], resourceVersion: string, includeObject = 'Metadata', extraMeta: Record<string, unknown> = {}): Record<string, unknown> {
  const { columns, cells } = columnsAndCells(type, version);
  return {
    kind: 'Table',
    apiVersion: 'meta.k8s.io/v1',
    metadata: { resourceVersion, ...extraMeta },
    columnDefinitions: columns,
    rows: objects.map((o) => ({
      cells: cells(o),
      object: includeObject === 'None' ? undefined : includeObject === 'Object' ? o : { kind: 'PartialObjectMetadata', apiVersion: 'meta.k8s.io/v1', metadata: o.metadata },
    })),
  };
}
