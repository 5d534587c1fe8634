import YAML from 'yaml';
import { inspectCertificate } from '../pki/index.js';
import type { KubeClient } from './client.js';

/** What `contexts --probe` learns about one cluster. */
export interface ClusterProbe {
  reachable: boolean;
  /** Why the cluster or a part of it could not be read. */
  reason?: string;
  kubernetesVersion?: string;
  /** Istio version from the istiod Deployment's image tag. */
  istioVersion?: string;
  /** The mesh's trust domain (mesh config `trustDomain`, `cluster.local` when unset). */
  trustDomain?: string;
  /** SHA-256 fingerprint of the mesh root CA (`istio-ca-root-cert`), upper-case hex with colons. */
  rootCaFingerprint?: string;
}

interface Deployment {
  metadata: { name: string; labels?: Record<string, string> };
  spec?: { template?: { spec?: { containers?: Array<{ name: string; image?: string }> } } };
}

/** `docker.io/istio/pilot:1.18.0-distroless` → `1.18.0`. */
export function istioVersionFromImage(image: string | undefined): string | undefined {
  const tag = image?.split('@')[0]?.split('/').pop()?.split(':')[1];
  const match = tag ? /^(\d+\.\d+(?:\.\d+)?)/.exec(tag) : null;
  return match?.[1];
}

function message(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/**
 * Probes one cluster: reachability and Kubernetes version, then (in parallel) Istio's version, trust domain and root
 * CA from the Istio namespace. Parts that cannot be read are reported in `reason` instead of failing the probe.
 */
export async function probeCluster(client: KubeClient, istioNamespace: string): Promise<ClusterProbe> {
  let version: { gitVersion?: string };
  try {
    version = (await client.request<{ gitVersion?: string }>({ method: 'GET', path: '/version' })).body;
  } catch (error) {
    return { reachable: false, reason: message(error) };
  }
  const result: ClusterProbe = { reachable: true, kubernetesVersion: version.gitVersion };
  const problems: string[] = [];
  const ns = encodeURIComponent(istioNamespace);

  const istio = (async () => {
    const list = await client.request<{ items: Deployment[] }>({
      method: 'GET', path: `/apis/apps/v1/namespaces/${ns}/deployments`, query: { labelSelector: 'app=istiod' },
    });
    const istiod = list.body.items.find((d) => d.metadata.name === 'istiod') ?? list.body.items[0];
    if (!istiod) return void problems.push(`no istiod Deployment in namespace "${istioNamespace}" (use --istio-namespace if Istio is elsewhere)`);
    const containers = istiod.spec?.template?.spec?.containers ?? [];
    const image = (containers.find((c) => c.name === 'discovery') ?? containers[0])?.image;
    result.istioVersion = istioVersionFromImage(image) ?? istiod.metadata.labels?.['operator.istio.io/version'];
    if (!result.istioVersion) problems.push(`cannot tell the Istio version from istiod's image "${image ?? ''}"`);
  })();

  const mesh = (async () => {
    const cm = await client.request<{ data?: Record<string, string> }>({ method: 'GET', path: `/api/v1/namespaces/${ns}/configmaps/istio` });
    const config = YAML.parse(cm.body.data?.mesh ?? '') as { trustDomain?: string } | null;
    result.trustDomain = config?.trustDomain || 'cluster.local';
  })();

  const root = (async () => {
    const cm = await client.request<{ data?: Record<string, string> }>({ method: 'GET', path: `/api/v1/namespaces/${ns}/configmaps/istio-ca-root-cert` });
    const pem = cm.body.data?.['root-cert.pem'];
    if (!pem) return void problems.push('ConfigMap istio-ca-root-cert has no root-cert.pem');
    result.rootCaFingerprint = inspectCertificate(pem).fingerprintSha256;
  })();

  const outcomes = await Promise.allSettled([istio, mesh, root]);
  // Without istiod, Istio's ConfigMaps are missing too: "not found" for each of them would only repeat that.
  const noIstio = !result.istioVersion && outcomes[0].status === 'fulfilled' && problems.length > 0;
  for (const outcome of outcomes) {
    if (outcome.status !== 'rejected') continue;
    if (noIstio && (outcome.reason as { status?: number } | undefined)?.status === 404) continue;
    problems.push(message(outcome.reason));
  }
  // Without Istio several reads fail the same way (e.g. the namespace is not found): say it once.
  if (problems.length) result.reason = [...new Set(problems)].join('; ');
  return result;
}
