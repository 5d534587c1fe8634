/**
 * Starting points for tests and the sandbox.
 *
 * - `bookinfo`: the two-cluster starting point of the federation blog post. First cluster (cluster1),
 *   namespace `default` with injection: productpage-v1, details-v1, reviews-v1, sleep and their Services.
 *   Second cluster (cluster2), namespace `bookinfo` with injection: reviews-v2, reviews-v3, ratings-v1,
 *   Service `myreviews` (9080 `http`, selector `app: reviews`) and Service `ratings`.
 * - `federation`: operations / staging / production. production: namespace `db` (injection) with a
 *   `postgres` Deployment and Service (TCP 5432 `tcp-postgres`); operations: namespace `vault` (injection)
 *   with ServiceAccount `vault` and a `vault` Deployment and Service; staging: namespace `apps` (injection)
 *   with a `sleep` client. Clusters are matched by name, or by position when the names differ.
 */
import type { KubeObject } from './runtime.js';

/** The seeds a world can start with. */
export type SeedName = 'bookinfo' | 'federation' | 'none';

/** Bookinfo's image tag. */
export const BOOKINFO_VERSION = '1.20.1';

function namespace(name: string, injection = true): KubeObject {
  return { apiVersion: 'v1', kind: 'Namespace', metadata: { name, ...(injection ? { labels: { 'istio-injection': 'enabled' } } : {}) } };
}

function serviceAccount(ns: string, name: string, labels: Record<string, string> = {}): KubeObject {
  return { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name, namespace: ns, labels: { account: name.replace(/^bookinfo-/, ''), ...labels } } };
}

function service(ns: string, name: string, selector: Record<string, string>, ports: Array<{ name: string; port: number; targetPort?: number }>): KubeObject {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name, namespace: ns, labels: { app: selector.app as string, service: name } },
    spec: { selector, ports: ports.map((p) => ({ ...p, protocol: 'TCP' })) },
  };
}

interface WorkloadOptions {
  ns: string;
  name: string;
  labels: Record<string, string>;
  serviceAccount: string;
  image: string;
  port?: number;
  command?: string[];
  args?: string[];
  env?: Array<{ name: string; value: string }>;
}

function deployment(o: WorkloadOptions): KubeObject {
  const container: Record<string, unknown> = { name: o.labels.app, image: o.image, imagePullPolicy: 'IfNotPresent' };
  if (o.port) container.ports = [{ containerPort: o.port }];
  if (o.command) container.command = o.command;
  if (o.args) container.args = o.args;
  if (o.env) container.env = o.env;
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: o.name, namespace: o.ns, labels: { ...o.labels } },
    spec: {
      replicas: 1,
      selector: { matchLabels: { ...o.labels } },
      template: { metadata: { labels: { ...o.labels } }, spec: { serviceAccountName: o.serviceAccount, containers: [container] } },
    },
  };
}

function bookinfo(ns: string, app: string, version: string): KubeObject {
  return deployment({
    ns,
    name: `${app}-${version}`,
    labels: { app, version },
    serviceAccount: `bookinfo-${app}`,
    image: `docker.io/istio/examples-bookinfo-${app}-${version}:${BOOKINFO_VERSION}`,
    port: 9080,
    ...(app === 'reviews' ? { env: [{ name: 'LOG_DIR', value: '/tmp/logs' }] } : {}),
  });
}

/** The `sleep` client of Istio's samples: curl, idling until exec'd into. */
export function sleepClient(ns: string): KubeObject[] {
  return [
    serviceAccount(ns, 'sleep'),
    service(ns, 'sleep', { app: 'sleep' }, [{ name: 'http', port: 80 }]),
    deployment({ ns, name: 'sleep', labels: { app: 'sleep' }, serviceAccount: 'sleep', image: 'curlimages/curl', command: ['/bin/sleep', 'infinity'] }),
  ];
}

/** cluster1's half of bookinfo: namespace `default`. */
export function bookinfoCluster1(): KubeObject[] {
  const ns = 'default';
  return [
    namespace(ns),
    ...['details', 'productpage', 'reviews'].map((app) => serviceAccount(ns, `bookinfo-${app}`)),
    service(ns, 'details', { app: 'details' }, [{ name: 'http', port: 9080 }]),
    bookinfo(ns, 'details', 'v1'),
    service(ns, 'reviews', { app: 'reviews' }, [{ name: 'http', port: 9080 }]),
    bookinfo(ns, 'reviews', 'v1'),
    service(ns, 'productpage', { app: 'productpage' }, [{ name: 'http', port: 9080 }]),
    bookinfo(ns, 'productpage', 'v1'),
    ...sleepClient(ns),
  ];
}

/** cluster2's half of bookinfo: namespace `bookinfo`. */
export function bookinfoCluster2(): KubeObject[] {
  const ns = 'bookinfo';
  return [
    namespace(ns),
    serviceAccount(ns, 'bookinfo-reviews'),
    serviceAccount(ns, 'bookinfo-ratings'),
    service(ns, 'myreviews', { app: 'reviews' }, [{ name: 'http', port: 9080 }]),
    bookinfo(ns, 'reviews', 'v2'),
    bookinfo(ns, 'reviews', 'v3'),
    service(ns, 'ratings', { app: 'ratings' }, [{ name: 'http', port: 9080 }]),
    bookinfo(ns, 'ratings', 'v1'),
  ];
}

/** production: the `postgres` database in namespace `db`. */
export function federationProduction(): KubeObject[] {
  return [
    namespace('db'),
    serviceAccount('db', 'postgres'),
    service('db', 'postgres', { app: 'postgres' }, [{ name: 'tcp-postgres', port: 5432 }]),
    deployment({ ns: 'db', name: 'postgres', labels: { app: 'postgres' }, serviceAccount: 'postgres', image: 'postgres:16', port: 5432, env: [{ name: 'POSTGRES_PASSWORD', value: 'emulated' }] }),
  ];
}

/** operations: Vault in namespace `vault`, running as ServiceAccount `vault`. */
export function federationOperations(): KubeObject[] {
  return [
    namespace('vault'),
    serviceAccount('vault', 'vault'),
    service('vault', 'vault', { app: 'vault' }, [{ name: 'http', port: 8200 }]),
    deployment({ ns: 'vault', name: 'vault', labels: { app: 'vault' }, serviceAccount: 'vault', image: 'hashicorp/vault:1.15', port: 8200, args: ['server', '-dev'] }),
  ];
}

/** staging: a curl client in namespace `apps`. */
export function federationStaging(): KubeObject[] {
  return [namespace('apps'), ...sleepClient('apps')];
}

/** The objects a seed puts into each cluster, by cluster name. */
export function seedObjects(seed: SeedName, clusterNames: string[]): Map<string, KubeObject[]> {
  const out = new Map<string, KubeObject[]>();
  const pick = (wanted: string[], make: Array<() => KubeObject[]>): void => {
    const byName = wanted.every((w) => clusterNames.includes(w));
    wanted.forEach((w, i) => {
      const target = byName ? w : clusterNames[i];
      if (target) out.set(target, make[i]?.() ?? []);
    });
  };
  if (seed === 'bookinfo') pick(['cluster1', 'cluster2'], [bookinfoCluster1, bookinfoCluster2]);
  if (seed === 'federation') pick(['operations', 'staging', 'production'], [federationOperations, federationStaging, federationProduction]);
  return out;
}
