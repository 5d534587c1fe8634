/**
 * Dumps clusters into the Istio oracle's input: one multi-document YAML per cluster, `<dir>/<cluster>.yaml`, holding
 * every object of that cluster as its API server returns it. Three sources: live API servers reached through a
 * kubeconfig (the sandbox, an emulated world, a real cluster), a started emulator {@link World}, and an in-memory
 * world of the data-path model (`staticWorld`).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import YAML from 'yaml';
import { KubeClient } from '../../../src/kube/client.js';
import { loadKubeconfig } from '../../../src/kube/kubeconfig.js';
import type { KubeObject, World, WorldView } from '../../support/emulator/index.js';

/**
 * Resources left out of a dump: events are noise, the CRDs are Istio's schemas (megabytes the oracle does not
 * read), and the access reviews are not objects.
 */
const SKIPPED_RESOURCES = new Set(['events', 'customresourcedefinitions', 'selfsubjectaccessreviews', 'subjectaccessreviews', 'localsubjectaccessreviews', 'selfsubjectreviews', 'tokenreviews', 'componentstatuses', 'bindings']);

interface ApiResource {
  name: string;
  kind: string;
  verbs?: string[];
}

interface ApiGroup {
  name: string;
  preferredVersion?: { groupVersion: string };
  versions?: Array<{ groupVersion: string }>;
}

/** One cluster's objects, in a stable order: by API version and kind, then namespace and name. */
function sortObjects(objects: KubeObject[]): KubeObject[] {
  const key = (o: KubeObject) => `${o.apiVersion}\u0000${o.kind}\u0000${o.metadata.namespace ?? ''}\u0000${o.metadata.name}`;
  return [...objects].sort((a, b) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0));
}

/** Writes `<dir>/<cluster>.yaml` (a multi-document YAML) and returns its path. */
export function writeClusterYaml(dir: string, cluster: string, objects: KubeObject[]): string {
  mkdirSync(dir, { recursive: true });
  const path = join(dir, `${cluster}.yaml`);
  const docs = sortObjects(objects).map((o) => {
    // managedFields say who wrote what, which no proxy reads; dropping them halves the file.
    const { managedFields: _managed, ...metadata } = o.metadata as KubeObject['metadata'] & { managedFields?: unknown };
    // YAML 1.1 quoting: Go readers (sigs.k8s.io/yaml) take an unquoted `yes`, `on` or `0755` for a bool or a number.
    return YAML.stringify({ ...o, metadata }, { lineWidth: 0, version: '1.1' });
  });
  writeFileSync(path, docs.map((d) => `---\n${d}`).join(''));
  return path;
}

/**
 * Every object of one cluster, through its API: discovery lists the served resources (each group at its
 * preferred version), then each listable resource is listed across all namespaces. Items get back the
 * `apiVersion` and `kind` a list leaves out.
 */
export async function listEverything(client: KubeClient): Promise<KubeObject[]> {
  const versions: string[] = ['v1'];
  const groups = (await client.request<{ groups: ApiGroup[] }>({ method: 'GET', path: '/apis' })).body.groups ?? [];
  for (const g of groups) {
    const preferred = g.preferredVersion?.groupVersion ?? g.versions?.[0]?.groupVersion;
    if (preferred) versions.push(preferred);
  }
  const out: KubeObject[] = [];
  for (const groupVersion of versions) {
    const base = groupVersion === 'v1' ? '/api/v1' : `/apis/${groupVersion}`;
    const resources = (await client.request<{ resources: ApiResource[] }>({ method: 'GET', path: base })).body.resources ?? [];
    for (const r of resources) {
      if (r.name.includes('/') || SKIPPED_RESOURCES.has(r.name) || !r.verbs?.includes('list')) continue;
      const list = (await client.request<{ items?: KubeObject[] }>({ method: 'GET', path: `${base}/${r.name}` })).body;
      for (const item of list.items ?? []) out.push({ ...item, apiVersion: groupVersion, kind: r.kind });
    }
  }
  return out;
}

/** Options of {@link dumpKubeconfig}. */
export interface DumpOptions {
  /** Directory to write `<context>.yaml` files into (created when missing). */
  dir: string;
  /** A kubeconfig file; default as kubectl: `$KUBECONFIG`, else `~/.kube/config`. */
  kubeconfig?: string;
  /** Contexts to dump; default every context of the kubeconfig. The file is named after the context. */
  contexts?: string[];
  /** Environment to read `KUBECONFIG` from (default `process.env`). */
  env?: NodeJS.ProcessEnv;
}

/** Dumps each context's cluster through its API server; returns the files written. */
export async function dumpKubeconfig(options: DumpOptions): Promise<string[]> {
  const config = loadKubeconfig({ explicitPath: options.kubeconfig, env: options.env ?? process.env });
  const names = options.contexts ?? config.contextNames();
  if (config.files.length === 0) throw new Error('no kubeconfig: pass --kubeconfig <file> or set KUBECONFIG (the sandbox prints the line to paste)');
  if (names.length === 0) throw new Error(`the kubeconfig (${config.describeFiles()}) has no contexts to dump`);
  const files: string[] = [];
  for (const name of names) {
    const client = new KubeClient(config.context(name), { userAgent: 'meshfed-istio-dump' });
    try {
      files.push(writeClusterYaml(options.dir, name, await listEverything(client)));
    } finally {
      client.close();
    }
  }
  return files;
}

/** Dumps every cluster of a started emulator world (through its API servers, as `kubectl get` would see them). */
export function dumpWorld(world: World, dir: string): Promise<string[]> {
  return dumpKubeconfig({ dir, kubeconfig: world.kubeconfigPath, contexts: world.clusters.map((c) => c.name) });
}

/** Kinds a data-path model world can hold, by API group: a static world has no discovery. */
const VIEW_KINDS: Array<[string, string, string]> = [
  ['', 'v1', 'Namespace'], ['', 'v1', 'Service'], ['', 'v1', 'Endpoints'], ['', 'v1', 'Pod'], ['', 'v1', 'Secret'],
  ['', 'v1', 'ConfigMap'], ['', 'v1', 'ServiceAccount'], ['apps', 'apps/v1', 'Deployment'],
  ['discovery.k8s.io', 'discovery.k8s.io/v1', 'EndpointSlice'],
  ...['Gateway', 'VirtualService', 'DestinationRule', 'ServiceEntry', 'Sidecar', 'EnvoyFilter', 'WorkloadEntry', 'WorkloadGroup']
    .map((kind): [string, string, string] => ['networking.istio.io', 'networking.istio.io/v1beta1', kind]),
  ...['AuthorizationPolicy', 'PeerAuthentication', 'RequestAuthentication']
    .map((kind): [string, string, string] => ['security.istio.io', 'security.istio.io/v1beta1', kind]),
];

/**
 * Dumps an in-memory world of the data-path model (`staticWorld`, the hand-written fixtures with their faults).
 * Objects keep the apiVersion they were written with; Endpoints the model derives for selector Services are
 * included, as an endpoints controller would have written them.
 */
export function dumpView(world: WorldView, dir: string): string[] {
  return world.clusters().map((cluster) => {
    const objects: KubeObject[] = [];
    for (const [group, apiVersion, kind] of VIEW_KINDS) {
      for (const o of cluster.list(group, kind)) objects.push({ ...o, apiVersion: o.apiVersion ?? apiVersion, kind });
    }
    const namespaces = new Set(objects.filter((o) => o.kind === 'Namespace').map((o) => o.metadata.name));
    // A hand-written fixture may leave out a Namespace its objects live in; a real cluster always has it.
    for (const ns of new Set(objects.map((o) => o.metadata.namespace).filter((n): n is string => !!n))) {
      if (!namespaces.has(ns)) objects.push({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns } });
    }
    return writeClusterYaml(dir, cluster.name, objects);
  });
}
