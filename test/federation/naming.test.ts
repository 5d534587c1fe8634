import test from 'ava';
import {
  bindingLabel, checkDnsLabel, consumerGatewaySpiffeId, exportHost, exportLabel, FederationInputError, importHost,
  isDnsLabel, isLabelValue, labelValue, names, objectName, passthroughSni, principalOf, subsetName,
} from '../../src/federation/index.js';
import { checkSpiffeId } from '../../src/pki/index.js';

const long = (c: string, n = 63): string => c.repeat(n);

test('readable names when the parts are plain', (t) => {
  t.is(names.export('bookinfo', 'myreviews'), 'mf-export-bookinfo-myreviews');
  t.is(names.binding('cluster2', 'bookinfo', 'myreviews'), 'mf-bind-cluster2-bookinfo-myreviews');
  t.is(names.import('myreviews'), 'mf-import-myreviews');
  t.is(names.importRecord('default', 'myreviews'), 'mf-import-default-myreviews');
});

test('names are DNS-1123 labels of at most 63 characters, even from the longest inputs', (t) => {
  const inputs = [long('a'), long('b'), long('c')];
  for (const name of [
    names.export(inputs[0]!, inputs[1]!), names.binding(inputs[0]!, inputs[1]!, inputs[2]!), names.import(inputs[0]!),
    names.importRecord(inputs[0]!, inputs[1]!), names.subsets(inputs[0]!, inputs[1]!), names.guard(inputs[0]!), names.attach(inputs[0]!),
    objectName('export', ['a-b', 'c'], 'server'), objectName('export', [long('x', 60)], 'server'),
  ]) {
    t.true(isDnsLabel(name), name);
    t.true(name.length <= 63, name);
  }
});

test('names are deterministic', (t) => {
  t.is(names.binding(long('p'), 'db', 'postgres'), names.binding(long('p'), 'db', 'postgres'));
  t.is(objectName('export', ['my-app', 'x']), objectName('export', ['my-app', 'x']));
});

test('names are collision-free where joining with "-" would be ambiguous', (t) => {
  // Without care, ("a-b","c") and ("a","b-c") would both be mf-export-a-b-c.
  t.not(objectName('export', ['a-b', 'c']), objectName('export', ['a', 'b-c']));
  t.not(objectName('export', ['a-b', 'c']), objectName('export', ['a', 'b', 'c']));
  // Two long names that share a 50-character prefix.
  t.not(names.export(long('a', 40), `${long('b', 40)}1`), names.export(long('a', 40), `${long('b', 40)}2`));
  // Hashed names carry "--", which plain names never contain.
  t.regex(objectName('export', ['a-b', 'c']), /--[0-9a-f]{10}$/);
  const many = new Set<string>();
  for (let i = 0; i < 300; i++) many.add(names.binding(`cluster-${i % 7}`, `ns-${i % 11}`, `svc-${i}`));
  t.is(many.size, 300);
});

test('label values: readable when valid, hashed and still valid when too long', (t) => {
  t.is(exportLabel('bookinfo', 'myreviews'), 'bookinfo.myreviews');
  t.is(bindingLabel('cluster2', 'bookinfo', 'myreviews'), 'cluster2.bookinfo.myreviews');
  const a = exportLabel(long('a'), long('b'));
  const b = exportLabel(long('a'), `${long('b', 62)}c`);
  t.true(isLabelValue(a) && isLabelValue(b));
  t.not(a, b);
  t.is(labelValue(''), '');
  t.true(isLabelValue(labelValue('-weird value-')));
});

test('export hosts: DNS names, each label at most 63, unique per provider, namespace and export', (t) => {
  const host = exportHost(long('p'), long('n'), long('e'));
  t.true(host.length <= 253);
  t.true(host.split('.').every(isDnsLabel));
  t.is(exportHost('cluster2', 'bookinfo', 'myreviews'), 'myreviews.bookinfo.cluster2.export.meshfed.internal');
  t.not(exportHost('c', 'a', 'b'), exportHost('c', 'b', 'a'));
  t.not(exportHost('export', 'x', 'y'), importHost('x', 'y'));
});

test('consumer gateway SPIFFE ids are valid, per cluster, and map to Istio principals', (t) => {
  const id = consumerGatewaySpiffeId('cluster1');
  t.is(id, 'spiffe://cluster1.meshfed.internal/ns/istio-meshfed/sa/meshfed-egress');
  t.is(checkSpiffeId(id), id);
  t.not(consumerGatewaySpiffeId('cluster1'), consumerGatewaySpiffeId('cluster3'));
  t.is(principalOf(id), 'cluster1.meshfed.internal/ns/istio-meshfed/sa/meshfed-egress');
});

test('passthrough SNI and subset names', (t) => {
  t.is(passthroughSni(5432, undefined, 'postgres.db.svc.cluster.local'), 'outbound_.5432_._.postgres.db.svc.cluster.local');
  t.is(passthroughSni(9080, 'version-v2', 'myreviews.bookinfo.svc.cluster.local'), 'outbound_.9080_.version-v2_.myreviews.bookinfo.svc.cluster.local');
  t.is(subsetName({ version: 'v2' }), 'version-v2');
  t.is(subsetName({ b: '2', a: '1' }), subsetName({ a: '1', b: '2' }));
  t.not(subsetName({ 'app.kubernetes.io/version': 'v2' }), subsetName({ 'app.kubernetes.io/version': 'v3' }));
  t.true(isDnsLabel(subsetName({ 'app.kubernetes.io/version': 'v2' })));
});

test('user names that are not DNS labels are refused with the flag to fix', (t) => {
  const error = t.throws(() => checkDnsLabel('My_Service', 'Service name', '--service'), { instanceOf: FederationInputError });
  t.is(error?.flag, '--service');
  t.regex(error!.message, /My_Service.*--service/);
  t.throws(() => checkDnsLabel(long('a', 64), 'export name'));
});

test('a single-part name keeps its dashes', (t) => {
  t.is(names.import('remote-ledger'), 'mf-import-remote-ledger');
  t.is(names.guard('my-db'), 'mf-guard-my-db');
  t.regex(names.import('a--b'), /^mf-import-a--b--[0-9a-f]{10}$/);
  t.not(names.import('a--b'), names.import('a-b'));
});
