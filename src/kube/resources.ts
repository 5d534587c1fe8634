import { ClusterError } from '../errors.js';
import type { KubeClient } from './client.js';

import type { KubeObject } from '../federation/model.js';

/** A Kubernetes object as sent to and returned by the API (the core's type: one definition). */
export type { KubeObject };

/** Where a kind lives in the REST API. */
export interface ResourceInfo {
  apiVersion: string;
  kind: string;
  /** Plural resource name, e.g. `gateways`. */
  plural: string;
  namespaced: boolean;
}

const KNOWN: Record<string, { plural: string; namespaced: boolean }> = {
  'v1/Namespace': { plural: 'namespaces', namespaced: false },
  'v1/Service': { plural: 'services', namespaced: true },
  'v1/Secret': { plural: 'secrets', namespaced: true },
  'v1/ConfigMap': { plural: 'configmaps', namespaced: true },
  'v1/ServiceAccount': { plural: 'serviceaccounts', namespaced: true },
  'v1/Pod': { plural: 'pods', namespaced: true },
  'v1/Endpoints': { plural: 'endpoints', namespaced: true },
  'apps/v1/Deployment': { plural: 'deployments', namespaced: true },
  'rbac.authorization.k8s.io/v1/Role': { plural: 'roles', namespaced: true },
  'rbac.authorization.k8s.io/v1/RoleBinding': { plural: 'rolebindings', namespaced: true },
};

const KNOWN_GROUP_KINDS: Record<string, { plural: string; namespaced: boolean }> = {
  'networking.istio.io/Gateway': { plural: 'gateways', namespaced: true },
  'networking.istio.io/VirtualService': { plural: 'virtualservices', namespaced: true },
  'networking.istio.io/DestinationRule': { plural: 'destinationrules', namespaced: true },
  'networking.istio.io/ServiceEntry': { plural: 'serviceentries', namespaced: true },
  'networking.istio.io/Sidecar': { plural: 'sidecars', namespaced: true },
  'security.istio.io/AuthorizationPolicy': { plural: 'authorizationpolicies', namespaced: true },
  'security.istio.io/PeerAuthentication': { plural: 'peerauthentications', namespaced: true },
  'install.istio.io/IstioOperator': { plural: 'istiooperators', namespaced: true },
};

export function groupOf(apiVersion: string): string {
  return apiVersion.includes('/') ? apiVersion.split('/')[0]! : '';
}

/** Maps apiVersion + kind to REST paths; kinds outside the built-in table are looked up by discovery, once. */
export class ResourceMapper {
  private readonly discovered = new Map<string, Promise<Map<string, { plural: string; namespaced: boolean }>>>();

  constructor(private readonly client: KubeClient) {}

  async info(apiVersion: string, kind: string): Promise<ResourceInfo> {
    const known = KNOWN[`${apiVersion}/${kind}`] ?? KNOWN_GROUP_KINDS[`${groupOf(apiVersion)}/${kind}`];
    if (known) return { apiVersion, kind, ...known };
    let kinds = this.discovered.get(apiVersion);
    if (!kinds) {
      kinds = this.discover(apiVersion);
      this.discovered.set(apiVersion, kinds);
    }
    const found = (await kinds).get(kind);
    if (!found) {
      throw new ClusterError(`the API ${apiVersion} of context "${this.client.context.name}" has no kind ${kind}`, {
        hint: groupOf(apiVersion).endsWith('istio.io') ? 'is Istio installed in this cluster, at a version that serves this API?' : undefined,
      });
    }
    return { apiVersion, kind, ...found };
  }

  private async discover(apiVersion: string): Promise<Map<string, { plural: string; namespaced: boolean }>> {
    const path = apiVersion.includes('/') ? `/apis/${apiVersion}` : `/api/${apiVersion}`;
    let body: { resources?: Array<{ name: string; kind: string; namespaced: boolean }> };
    try {
      body = (await this.client.request<typeof body>({ method: 'GET', path })).body;
    } catch (error) {
      if (error instanceof ClusterError && error.status === 404) {
        throw new ClusterError(`context "${this.client.context.name}" does not serve the API ${apiVersion}`, {
          status: 404,
          hint: groupOf(apiVersion).endsWith('istio.io') ? 'is Istio installed in this cluster?' : undefined,
        });
      }
      throw error;
    }
    const map = new Map<string, { plural: string; namespaced: boolean }>();
    for (const resource of body.resources ?? []) {
      if (!resource.name.includes('/')) map.set(resource.kind, { plural: resource.name, namespaced: resource.namespaced });
    }
    return map;
  }

  /** Collection path (`/apis/g/v/namespaces/ns/plural`); `namespace` undefined lists across namespaces. */
  async collectionPath(apiVersion: string, kind: string, namespace?: string): Promise<string> {
    const info = await this.info(apiVersion, kind);
    const base = apiVersion.includes('/') ? `/apis/${apiVersion}` : `/api/${apiVersion}`;
    return info.namespaced && namespace ? `${base}/namespaces/${encodeURIComponent(namespace)}/${info.plural}` : `${base}/${info.plural}`;
  }

  async objectPath(apiVersion: string, kind: string, namespace: string | undefined, name: string): Promise<string> {
    const info = await this.info(apiVersion, kind);
    if (info.namespaced && !namespace) throw new ClusterError(`${kind} "${name}" needs a namespace`);
    return `${await this.collectionPath(apiVersion, kind, info.namespaced ? namespace : undefined)}/${encodeURIComponent(name)}`;
  }
}

/** `Gateway istio-meshfed/meshfed-ingress` — how objects are named in messages. */
export function describeObject(object: { kind: string; metadata: { name: string; namespace?: string } }): string {
  return `${object.kind} ${object.metadata.namespace ? `${object.metadata.namespace}/` : ''}${object.metadata.name}`;
}

/** A stable key for an object: group/kind/namespace/name (the version does not matter: one stored object). */
export function objectKey(object: { apiVersion: string; kind: string; metadata: { name: string; namespace?: string } }): string {
  return `${groupOf(object.apiVersion)}/${object.kind}/${object.metadata.namespace ?? ''}/${object.metadata.name}`;
}
