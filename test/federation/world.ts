/**
 * What a real cluster adds to the planned objects, for the data-path tests: workload and gateway pods, ClusterIPs,
 * a LoadBalancer address, the mesh config.
 */
import type { KubeObject } from '../../src/federation/index.js';

type Loose = KubeObject & Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

let ipCounter = 0;
// The last octet stays a valid one however many worlds a test file builds (a world uses far fewer than 240).
const nextIp = (prefix: string): string => `${prefix}.${10 + (ipCounter++ % 240)}`;

export function pod(name: string, namespace: string, labels: Record<string, string>, sa: string, containers: unknown[], proxyVersion: string, ip: string, sidecar = true): KubeObject {
  return {
    apiVersion: 'v1', kind: 'Pod', metadata: { name, namespace, labels: { ...labels, ...(sidecar ? { 'security.istio.io/tlsMode': 'istio' } : {}) } },
    spec: { serviceAccountName: sa, containers: [...containers, ...(sidecar ? [{ name: 'istio-proxy', image: `docker.io/istio/proxyv2:${proxyVersion}` }] : [])] },
    status: { phase: 'Running', podIP: ip, conditions: [{ type: 'Ready', status: 'True' }] },
  };
}

export function meshConfig(trustDomain: string, aliases: string[] = []): KubeObject {
  const mesh = `trustDomain: ${trustDomain}\n${aliases.length ? `trustDomainAliases: [${aliases.join(', ')}]\n` : ''}`;
  return { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'istio', namespace: 'istio-system' }, data: { mesh } };
}

/** What the cluster does with the planned objects: ClusterIPs, gateway pods for Deployments or overlays, the LB address. */
export function realise(objects: KubeObject[], version: string, subnet: string, overlay: KubeObject | undefined, lbAddress?: string): KubeObject[] {
  const out = objects.map((o) => structuredClone(o) as Loose);
  for (const o of out) {
    if (o.kind === 'Service' && o.apiVersion === 'v1') {
      o.spec.clusterIP = nextIp(subnet.replace(/^10\.24/, '10.9'));
      if (o.spec.type === 'LoadBalancer' && lbAddress) o.status = { loadBalancer: { ingress: [{ ip: lbAddress }] } };
    }
    if (o.kind === 'Deployment') {
      const tpl = o.spec.template;
      out.push(pod(`${o.metadata.name}-5d8c7`, o.metadata.namespace!, tpl.metadata.labels, tpl.spec.serviceAccountName,
        [{ name: 'istio-proxy', image: `docker.io/istio/proxyv2:${version}`, ports: [{ containerPort: 15443 }] }], version, nextIp(subnet), false));
    }
  }
  if (overlay) {
    const components = (overlay as Loose).spec.components;
    for (const c of [...(components.ingressGateways ?? []), ...(components.egressGateways ?? [])]) {
      out.push({
        apiVersion: 'v1', kind: 'Service', metadata: { name: c.name, namespace: c.namespace },
        spec: { type: c.k8s.service.type, clusterIP: nextIp('10.96.90'), selector: c.label, ports: c.k8s.service.ports },
        ...(c.k8s.service.type === 'LoadBalancer' && lbAddress ? { status: { loadBalancer: { ingress: [{ ip: lbAddress }] } } } : {}),
      } as KubeObject);
      out.push(pod(`${c.name}-7c9f2`, c.namespace, c.label, `${c.name}-service-account`,
        [{ name: 'istio-proxy', image: `docker.io/istio/proxyv2:${version}`, env: c.k8s.env ?? [], ports: [{ containerPort: 15443 }] }], version, nextIp(subnet), false));
    }
  }
  return out;
}

