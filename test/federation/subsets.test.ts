// The subsets `export` offers to choose from: the labels that tell a Service's pods apart.
import test from 'ava';
import { subsetChoices, type PodSnapshot, type ServiceSnapshot } from '../../src/federation/index.js';

const service: ServiceSnapshot = { name: 'reviews', namespace: 'bookinfo', selector: { app: 'reviews' }, ports: [{ name: 'http', port: 9080 }] };
const pod = (name: string, labels: Record<string, string>, namespace = 'bookinfo'): PodSnapshot => ({ name, namespace, labels, ready: true });
const mesh = { 'pod-template-hash': '5c4f', 'security.istio.io/tlsMode': 'istio', 'service.istio.io/canonical-name': 'reviews' };

test('each label value beside the selector is a choice, with how many of the Service\'s pods carry it', (t) => {
  const pods = [
    pod('reviews-v1-a', { app: 'reviews', version: 'v1', ...mesh }),
    pod('reviews-v3-a', { app: 'reviews', version: 'v3', tier: 'gold', ...mesh }),
    pod('reviews-v2-a', { app: 'reviews', version: 'v2', ...mesh }),
    pod('reviews-v2-b', { app: 'reviews', version: 'v2', ...mesh }),
    // Not the Service's pods: another app, another namespace.
    pod('ratings-v1', { app: 'ratings', version: 'v9' }),
    pod('reviews-v7', { app: 'reviews', version: 'v7' }, 'staging'),
  ];
  t.deepEqual(subsetChoices(pods, service), [
    { label: 'version', value: 'v1', pods: 1 },
    { label: 'version', value: 'v2', pods: 2 },
    { label: 'version', value: 'v3', pods: 1 },
    { label: 'tier', value: 'gold', pods: 1 },
  ]);
});

test('no choices without a selector, without pods, or when pods carry only the selector and mesh labels', (t) => {
  const pods = [pod('reviews-1', { app: 'reviews', ...mesh })];
  t.deepEqual(subsetChoices(pods, service), []);
  t.deepEqual(subsetChoices([], service), []);
  const { selector: _selector, ...noSelector } = service;
  t.deepEqual(subsetChoices([pod('x', { version: 'v1' })], noSelector), []);
});
