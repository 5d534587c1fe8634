// Every Istio object the planners emit is valid, strictly (an unknown field is a failure), against the CRDs of
// Istio 1.9.0, 1.18.0 and 1.30.3: a real API server would reject it with fieldValidation=Strict or prune it.
import test from 'ava';
import { crdSchema, ISTIO_VERSIONS, validateAgainstSchema } from '../support/crd-schema.js';
import { planUnexport, planUnimport, type KubeObject } from '../../src/federation/index.js';
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
