/**
 * Subsets an export can be limited to, as offered to someone choosing one: the pod labels that tell a Service's pods
 * apart.
 */
import type { PodSnapshot, ServiceSnapshot } from './model.js';

/** A pod label value that selects part of a Service's pods: a subset an export can be limited to. */
export interface SubsetChoice {
  /** Label key, e.g. `version`. */
  label: string;
  /** Label value, e.g. `v2`. */
  value: string;
  /** How many of the Service's pods carry it. */
  pods: number;
}

/**
 * The subsets a Service's pods offer (e.g. version=v1|v2|v3): every value of every pod label beside the Service's own
 * selector and the labels Kubernetes and Istio add themselves. Labels in the order the pods carry them, values sorted.
 *
 * ```ts
 * subsetChoices(snapshot.pods ?? [], service); // [{ label: 'version', value: 'v1', pods: 2 }, { label: 'version', value: 'v2', pods: 1 }]
 * ```
 * @returns no choices for a Service without a selector or without pods
 */
export function subsetChoices(pods: readonly PodSnapshot[], service: ServiceSnapshot): SubsetChoice[] {
  const selector = service.selector;
  if (!selector) return [];
  const selected = pods.filter((p) => p.namespace === service.namespace && Object.entries(selector).every(([k, v]) => p.labels[k] === v));
  const values = new Map<string, Map<string, number>>();
  for (const pod of selected) {
    for (const [k, v] of Object.entries(pod.labels)) {
      if (k in selector || k === 'pod-template-hash' || k.includes('istio.io') || k.startsWith('security.istio')) continue;
      const counts = values.get(k) ?? values.set(k, new Map()).get(k)!;
      counts.set(v, (counts.get(v) ?? 0) + 1);
    }
  }
  return [...values.entries()].flatMap(([label, counts]) => [...counts.keys()].sort().map((value) => ({ label, value, pods: counts.get(value)! })));
}
