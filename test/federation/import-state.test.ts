// What `status` and `import` report about the consumer side: whether an import still has every object its traffic
// goes through (named as planImport names them), and what a shared-root import warns about before any call fails.
import test from 'ava';
import {
  certificateFingerprint, importObjectRefs, importState, objectKey, readImportRecords, samePem, sharedRootWarnings,
  type ConsumerSnapshot, type KubeObject, type PodSnapshot,
} from '../../src/federation/index.js';
import { runScenario, scenarioNames } from './scenario.js';

const scenarios = scenarioNames().map((name) => [name, runScenario(name)] as const);

for (const [name, result] of scenarios) {
  test(`${name}: an import just applied is active, and missing any of its objects makes it incomplete`, (t) => {
    const consumer: ConsumerSnapshot = { ...result.input.consumer, existing: result.consumerObjects };
    const [record] = readImportRecords(consumer);
    const refs = importObjectRefs(consumer, record!);
    const planned = new Set(result.importPlan.objects.map(objectKey));
    for (const ref of refs) t.true(planned.has(`${ref.kind}/${ref.namespace}/${ref.name}`), `planImport writes ${ref.kind} ${ref.namespace}/${ref.name}`);
    t.is(refs.length, record!.endpoint.mode === 'boundary' ? 7 : 4);

    const state = importState(consumer, record!);
    t.is(state.state, 'active');
    t.deepEqual(state.missing, []);
    if (record!.endpoint.mode === 'boundary') t.true(samePem(state.clientCertificatePem!, result.bundle.spec.clientCertificatePem!));
    else t.is(state.clientCertificatePem, undefined);

    for (const ref of refs) {
      const without = { ...consumer, existing: consumer.existing.filter((o) => objectKey(o) !== `${ref.kind}/${ref.namespace}/${ref.name}`) };
      const broken = importState(without, record!);
      t.is(broken.state, 'incomplete', `without ${ref.kind} ${ref.namespace}/${ref.name}`);
      t.deepEqual(broken.missing, [ref]);
    }
  });
}

test('a boundary binding Secret holding only a pending key is no client certificate: the import is incomplete', (t) => {
  const result = scenarios.find(([, r]) => r.importPlan.record.endpoint.mode === 'boundary')![1];
  const consumer: ConsumerSnapshot = { ...result.input.consumer, existing: result.consumerObjects };
  const [record] = readImportRecords(consumer);
  const secretRef = importObjectRefs(consumer, record!).find((r) => r.kind === 'Secret')!;
  const keyOnly = consumer.existing.map((o): KubeObject => (o.kind === 'Secret' && o.metadata.name === secretRef.name && o.metadata.namespace === secretRef.namespace
    ? { ...o, data: { 'tls.key': (o.data as Record<string, string>)['tls.key']! } }
    : o));
  const state = importState({ ...consumer, existing: keyOnly }, record!);
  t.is(state.state, 'incomplete');
  t.deepEqual(state.missing, [secretRef]);
  t.is(state.clientCertificatePem, undefined);
});

const blog = scenarios.find(([name]) => name === 'seed-blog-boundary-http')![1];
const rootA = blog.bundle.spec.federationCaPem;
const rootB = scenarios.find(([name]) => name === 'boundary-tcp')![1].bundle.spec.federationCaPem;
const consumer: ConsumerSnapshot = { clusterId: 'cluster1', istioVersion: '1.18.0', rootCaPem: rootA, services: [], existing: [] };
const pod = (name: string, namespace: string, serviceAccount?: string): PodSnapshot => ({ name, namespace, labels: {}, ready: true, ...(serviceAccount ? { serviceAccount } : {}) });

test('shared-root: two meshes with different root CAs are warned about, naming the provider', (t) => {
  t.deepEqual(sharedRootWarnings(consumer, { providerClusterId: 'cluster2', providerRootCaFingerprint: certificateFingerprint(rootA), namespace: 'default' }), []);
  const [warning, ...rest] = sharedRootWarnings(consumer, { providerClusterId: 'cluster2', providerRootCaFingerprint: certificateFingerprint(rootB), namespace: 'default' });
  t.deepEqual(rest, []);
  t.regex(warning!, /^shared-root needs one root CA, but this mesh's root \([0-9A-F:]{23}…\) is not that of cluster cluster2 \([0-9A-F:]{23}…\)/);
  t.true(warning!.includes(certificateFingerprint(rootA).slice(0, 23)) && warning!.includes(certificateFingerprint(rootB).slice(0, 23)));
  // Either root unknown: nothing to compare.
  t.deepEqual(sharedRootWarnings(consumer, { providerClusterId: 'cluster2', namespace: 'default' }), []);
  t.deepEqual(sharedRootWarnings({ ...consumer, rootCaPem: undefined }, { providerClusterId: 'cluster2', providerRootCaFingerprint: certificateFingerprint(rootB), namespace: 'default' }), []);
});

test('shared-root: pods of the import namespace that run as no admitted service account are warned about', (t) => {
  const pods = [pod('sleep-1', 'default', 'sleep'), pod('web-1', 'default'), pod('other', 'kube-system', 'admin')];
  const withPods = { ...consumer, pods };
  const input = { providerClusterId: 'cluster2', namespace: 'default' };
  t.deepEqual(sharedRootWarnings(withPods, { ...input, serviceAccounts: ['default'] }), [], 'web-1 runs as default');
  t.deepEqual(sharedRootWarnings(withPods, { ...input, serviceAccounts: ['admin'] }), [
    'shared-root admits callers by identity: only service account admin of namespace default, but its pods run as default, sleep; ' +
    'the provider will deny them: pass --service-account <account> (repeatable)',
  ]);
  t.regex(sharedRootWarnings(withPods, { ...input, serviceAccounts: ['api', 'admin'] })[0]!, /only service accounts api, admin of namespace default/);
  // Unknown accounts (a bundle does not say which were admitted) or no pods: nothing to say.
  t.deepEqual(sharedRootWarnings(withPods, input), []);
  t.deepEqual(sharedRootWarnings({ ...consumer, pods: [pod('other', 'kube-system', 'admin')] }, { ...input, serviceAccounts: ['default'] }), []);
});
