// Every Istio object the planners emit is valid, strictly (an unknown field is a failure), against the CRDs of
// Istio 1.9.0, 1.18.0 and 1.30.3: a real API server would reject it with fieldValidation=Strict or prune it.
import test from 'ava';
import { crdSchema, ISTIO_VERSIONS, validateAgainstSchema } from '../support/crd-schema.js';
import { planExport, planUnexport, planUnimport, type KubeObject, type ProviderSnapshot } from '../../src/federation/index.js';
import { runScenario, scenarioNames } from './scenario.js';

function istioObjects(objects: KubeObject[]): KubeObject[] {
  return objects.filter((o) => /\.istio\.io\//.test(o.apiVersion) && o.kind !== 'IstioOperator');
}

for (const name of scenarioNames()) {
  test(`${name}: planned Istio objects validate strictly against Istio ${ISTIO_VERSIONS.join(', ')}`, (t) => {
    const r = runScenario(name);
    const provider = { ...r.input.provider, existing: r.providerObjects };
    const consumer = { ...r.input.consumer, existing: r.consumerObjects };
    const objects = istioObjects([
      ...r.exportPlan.objects, ...r.admission.objects, ...r.importPlan.objects,
      ...planUnexport(provider, { namespace: r.admission.record.namespace, exportName: r.admission.record.exportName }).objects,
      ...planUnimport(consumer, { namespace: r.importPlan.record.namespace, localName: r.importPlan.record.localName }).objects,
    ]);
    t.true(objects.length >= 3);
    for (const version of ISTIO_VERSIONS) {
      for (const o of objects) {
        const schema = crdSchema(version, o.apiVersion, o.kind);
        t.truthy(schema, `Istio ${version} serves ${o.apiVersion} ${o.kind}`);
        if (!schema) continue;
        const { causes, unknownFields } = validateAgainstSchema(o, schema);
        t.deepEqual(causes, [], `Istio ${version}: ${o.kind} ${o.metadata.namespace}/${o.metadata.name} is invalid`);
        t.deepEqual(unknownFields, [], `Istio ${version}: ${o.kind} ${o.metadata.namespace}/${o.metadata.name} has unknown fields`);
      }
    }
  });
}

test('admission objects of every release and gateway owner validate strictly against every CRD release', (t) => {
  const now = new Date('2026-06-01T12:00:00Z');
  const base: ProviderSnapshot = {
    clusterId: 'prod', istioVersion: '1.9.0', gatewayAddress: '192.0.2.10', existing: [],
    services: [
      { name: 'api', namespace: 'shop', selector: { app: 'api' }, ports: [{ name: 'http', port: 8080 }] },
      { name: 'db', namespace: 'shop', selector: { app: 'db' }, ports: [{ name: 'tcp-db', port: 5432 }] },
    ],
  };
  const ca = planExport(base, { providerClusterId: 'prod', namespace: 'shop', service: 'api', port: { number: 8080 } }, { now })
    .objects.find((o) => o.metadata.name === 'meshfed-federation-ca')!;
  const existingGateway = { namespace: 'istio-system', selector: { istio: 'ingressgateway' }, serviceName: 'istio-ingressgateway' };
  const objects: KubeObject[] = [];
  for (const istioVersion of ['1.9.0', '1.18.0']) {
    for (const shared of [false, true]) {
      for (const service of ['api', 'db']) {
        for (const consumers of [[], [{ clusterId: 'ops' }]]) {
          const snapshot: ProviderSnapshot = { ...base, istioVersion, existing: [ca], ...(shared ? { existingGateway } : {}) };
          const port = service === 'api' ? 8080 : 5432;
          objects.push(...istioObjects(planExport(snapshot, { providerClusterId: 'prod', namespace: 'shop', service, port: { number: port }, consumers }, { now }).objects));
        }
      }
    }
  }
  t.true(objects.some((o) => JSON.stringify(o).includes('subjectAltNames')));
  t.true(objects.some((o) => JSON.stringify(o).includes('notPrincipals')));
  t.true(objects.some((o) => JSON.stringify(o).includes('notHosts')));
  for (const version of ISTIO_VERSIONS) {
    for (const o of objects) {
      const { causes, unknownFields } = validateAgainstSchema(o, crdSchema(version, o.apiVersion, o.kind)!);
      t.deepEqual([...causes, ...unknownFields], [], `Istio ${version}: ${o.kind} ${o.metadata.namespace}/${o.metadata.name}`);
    }
  }
});
