/** Unit tests of what the federation commands share: flag parsing, error translation, pruning, diffing, plan display. */
import test from 'ava';
import { InputError, UsageError } from '../../src/errors.js';
import { BundleError, FederationInputError, type ClusterPlan } from '../../src/federation/index.js';
import { conditionalPatch, dropsOwnedFields } from '../../src/kube/apply.js';
import type { ClusterWriter } from '../../src/kube/apply.js';
import { clusterIdFromContext, existingGatewayInUse, type GatheredCluster } from '../../src/kube/gather.js';
import { clusterWork, dryRunMode, parseKeyValues, parseNamespacedName, requireFlags, translateCoreError } from '../../src/commands/federate.js';
import { renderPlan, summarise } from '../../src/ui/plan.js';
import { Ui } from '../../src/ui/terminal.js';
import { PassThrough } from 'node:stream';

test('cluster ids from context names are DNS labels', (t) => {
  t.is(clusterIdFromContext('cluster1'), 'cluster1');
  t.is(clusterIdFromContext('kind-Prod_EU'), 'kind-prod-eu');
  t.is(clusterIdFromContext('arn:aws:eks:eu-west-1:123456789012:cluster/production'), 'arn-aws-eks-eu-west-1-123456789012-cluster-production');
  const long = clusterIdFromContext(`gke_${'a'.repeat(80)}_europe-west1_prod`);
  t.true(long.length <= 63);
  t.regex(long, /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/);
  t.true(long.endsWith('europe-west1-prod'), 'the distinctive end of long names is kept');
  t.is(clusterIdFromContext('___'), 'cluster');
});

test('--subset, --match-header and --gateway-selector take key=value, repeated or comma-separated', (t) => {
  t.deepEqual(parseKeyValues(['version=v2', 'track=stable,zone=a'], '--subset'), { version: 'v2', track: 'stable', zone: 'a' });
  t.is(parseKeyValues(undefined, '--subset'), undefined);
  t.is(parseKeyValues([], '--subset'), undefined);
  const error = t.throws(() => parseKeyValues(['v2'], '--subset'), { instanceOf: UsageError });
  t.regex(error!.message, /invalid --subset "v2": expected key=value, e.g. --subset version=v2/);
});

test('--export is <namespace>/<name>', (t) => {
  t.deepEqual(parseNamespacedName('bookinfo/reviews', '--export', 'a/b'), { namespace: 'bookinfo', name: 'reviews' });
  t.throws(() => parseNamespacedName('reviews', '--export', 'bookinfo/reviews'), { instanceOf: UsageError, message: /expected <namespace>\/<name>, e.g. --export bookinfo\/reviews/ });
});

test('--dry-run accepts kubectl\'s spellings', (t) => {
  t.is(dryRunMode(undefined), 'none');
  t.is(dryRunMode(''), 'client');
  t.is(dryRunMode('client'), 'client');
  t.is(dryRunMode('server'), 'server');
  t.is(dryRunMode('none'), 'none');
  t.throws(() => dryRunMode('yes-please'), { instanceOf: UsageError, message: /invalid --dry-run value "yes-please"/ });
});

test('missing flags are named all at once', (t) => {
  t.notThrows(() => requireFlags([['--service', false]], 'x'));
  t.throws(() => requireFlags([['--service', true], ['--port', true], ['--name', false]], 'kubectl meshfed export …'), {
    instanceOf: UsageError, message: 'missing values for --service, --port',
  });
});

test('core errors become input errors naming the flags as the command spells them', (t) => {
  const renamed = translateCoreError(new FederationInputError('local name "A" is not a DNS-1123 label (--local-name)', '--local-name'), { '--local-name': '--name' });
  t.true(renamed instanceof InputError);
  t.is((renamed as Error).message, 'local name "A" is not a DNS-1123 label (--name)');
  const bundle = translateCoreError(new BundleError('expired', 'the ExportBundle expired at 2020-01-01T00:00:00Z; ask for a new one'));
  t.true(bundle instanceof InputError);
  t.is((bundle as InputError).hint, 'ask the other side for a new file');
  const other = new Error('boom');
  t.is(translateCoreError(other), other);
});

test('a field meshfed applied before and no longer plans counts as a change', (t) => {
  const live = {
    apiVersion: 'security.istio.io/v1beta1', kind: 'AuthorizationPolicy', metadata: {
      name: 'p', namespace: 'n',
      managedFields: [
        { manager: 'kubectl-meshfed', operation: 'Apply', fieldsV1: { 'f:spec': { 'f:action': {}, 'f:rules': {}, 'f:selector': { 'f:matchLabels': { 'f:istio': {} } } } } },
        { manager: 'someone-else', operation: 'Update', fieldsV1: { 'f:spec': { 'f:provider': {} } } },
      ],
    },
    spec: { action: 'ALLOW', rules: [{ from: [] }], selector: { matchLabels: { istio: 'x' } }, provider: { name: 'y' } },
  };
  const withoutRules = { apiVersion: live.apiVersion, kind: live.kind, metadata: { name: 'p', namespace: 'n' }, spec: { action: 'ALLOW', selector: { matchLabels: { istio: 'x' } } } };
  t.true(dropsOwnedFields(withoutRules, live));
  t.false(dropsOwnedFields({ ...withoutRules, spec: { ...withoutRules.spec, rules: [{ from: [] }] } }, live), 'fields of other managers do not count');
  t.false(dropsOwnedFields(withoutRules, { ...live, metadata: { name: 'p' } }), 'no managed fields: nothing known to drop');
});

test('a field dropped inside an item of an atomic list (a Gateway server\'s subjectAltNames) counts as a change', (t) => {
  const server = { port: { number: 15443, name: 'https', protocol: 'HTTPS' }, hosts: ['./h'], tls: { mode: 'MUTUAL', credentialName: 'c', subjectAltNames: ['spiffe://a'] } };
  const live = {
    apiVersion: 'networking.istio.io/v1beta1', kind: 'Gateway',
    metadata: { name: 'g', namespace: 'n', managedFields: [{ manager: 'kubectl-meshfed', operation: 'Apply', fieldsV1: { 'f:spec': { 'f:selector': { 'f:istio': {} }, 'f:servers': {} } } }] },
    spec: { selector: { istio: 'x' }, servers: [server] },
  };
  const { subjectAltNames: _dropped, ...tls } = server.tls;
  const desired = { apiVersion: live.apiVersion, kind: live.kind, metadata: { name: 'g', namespace: 'n' }, spec: { selector: { istio: 'x' }, servers: [{ ...server, tls }] } };
  t.true(dropsOwnedFields(desired, live));
  t.false(dropsOwnedFields({ ...desired, spec: { ...desired.spec, servers: [server] } }, live), 'the same list is no change');
});

test('the update of a guarded object is a JSON patch with the read resourceVersion first; it keeps what others added and drops what meshfed no longer wants', (t) => {
  const live = {
    apiVersion: 'v1', kind: 'ConfigMap',
    metadata: {
      name: 'r', namespace: 'n', resourceVersion: '41', uid: 'u-1',
      labels: { 'app.kubernetes.io/managed-by': 'kubectl-meshfed', 'meshfed.io/old': 'x', team: 'db' },
      annotations: { note: 'by hand' },
      managedFields: [
        { manager: 'kubectl-meshfed', operation: 'Apply', fieldsV1: { 'f:metadata': { 'f:labels': { 'f:app.kubernetes.io/managed-by': {}, 'f:meshfed.io/old': {} } }, 'f:data': { 'f:a': {} }, 'f:binaryData': {} } },
        { manager: 'kubectl', operation: 'Update', fieldsV1: { 'f:metadata': { 'f:labels': { 'f:team': {} }, 'f:annotations': { 'f:note': {} } } } },
      ],
    },
    data: { a: '1' },
    binaryData: { b: 'AA==' },
  };
  const desired = { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'r', namespace: 'n', labels: { 'app.kubernetes.io/managed-by': 'kubectl-meshfed' } }, data: { a: '2', 'c/d~e': '3' } };
  t.deepEqual(conditionalPatch(desired, live), [
    { op: 'replace', path: '/metadata/resourceVersion', value: '41' },
    // meshfed's label it no longer wants goes; the one someone else added stays; annotations are not touched.
    { op: 'add', path: '/metadata/labels', value: { team: 'db', 'app.kubernetes.io/managed-by': 'kubectl-meshfed' } },
    { op: 'add', path: '/data', value: { a: '2', 'c/d~e': '3' } },
    { op: 'remove', path: '/binaryData' },
  ]);
});

test('a plan\'s deletions: explicit removals and stale objects of its label, never what it still plans', (t) => {
  const labels = (extra: Record<string, string>) => ({ 'app.kubernetes.io/managed-by': 'kubectl-meshfed', ...extra });
  const existing = [
    { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'keep', namespace: 'm', labels: labels({ 'meshfed.io/export': 'a.b' }) } },
    { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'stale', namespace: 'm', labels: labels({ 'meshfed.io/export': 'a.b' }) } },
    { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'other-export', namespace: 'm', labels: labels({ 'meshfed.io/export': 'a.c' }) } },
    { apiVersion: 'networking.istio.io/v1beta1', kind: 'Gateway', metadata: { name: 'gone', namespace: 'm', labels: labels({}) } },
  ];
  const gathered = { context: 'c', identity: { clusterId: 'c', stored: true, objects: [] }, snapshot: { clusterId: 'c', istioVersion: '1.18.0', services: [], existing } } as unknown as GatheredCluster;
  const plan: ClusterPlan = {
    clusterId: 'c',
    objects: [existing[0]!],
    remove: [{ apiVersion: 'networking.istio.io/v1beta1', kind: 'Gateway', namespace: 'm', name: 'gone' }, { apiVersion: 'v1', kind: 'Secret', namespace: 'm', name: 'absent' }],
    prune: [{ selector: labels({ 'meshfed.io/export': 'a.b' }), kinds: [{ apiVersion: 'v1', kind: 'ConfigMap' }], keep: [] }],
    warnings: [], secretsWithPrivateKeys: [],
  };
  const work = clusterWork(gathered, {} as ClusterWriter, plan, 'test');
  t.deepEqual(work.deletions.map((o) => o.metadata.name).sort(), ['gone', 'stale']);
});

test('the plan shows each cluster, what changes, and counts; unchanged objects only when asked', (t) => {
  const err = new PassThrough();
  const ui = new Ui({ stdin: new PassThrough(), stdout: new PassThrough(), stderr: err, env: { NO_COLOR: '1' } }, { noColor: true, yes: true, verbose: false });
  const views = [{
    context: 'cluster2', clusterId: 'cluster2', role: 'provider: export bookinfo/reviews',
    lines: [
      { action: 'create' as const, kind: 'Gateway', namespace: 'istio-meshfed', name: 'g' },
      { action: 'update' as const, kind: 'AuthorizationPolicy', namespace: 'istio-meshfed', name: 'p' },
      { action: 'unchanged' as const, kind: 'Namespace', name: 'istio-meshfed' },
      { action: 'delete' as const, kind: 'VirtualService', namespace: 'istio-meshfed', name: 'old' },
    ],
  }];
  t.is(renderPlan(ui, views), [
    'context "cluster2" (cluster cluster2) — provider: export bookinfo/reviews',
    '  + Gateway istio-meshfed/g (create)',
    '  ~ AuthorizationPolicy istio-meshfed/p (change)',
    '  - VirtualService istio-meshfed/old (delete)',
    '  1 to create, 1 to change, 1 to delete, 1 unchanged',
    '',
  ].join('\n'));
  t.true(renderPlan(ui, views, { verbose: true }).includes('  = Namespace istio-meshfed\n'));
  t.is(summarise([]), 'nothing to do');
});

test('the existing gateway in use is read from meshfed\'s Gateway objects only when they agree on one', (t) => {
  const gateway = (namespace: string, selector: Record<string, string>) => ({
    apiVersion: 'networking.istio.io/v1beta1', kind: 'Gateway', metadata: { name: `g-${namespace}-${Object.values(selector).join('')}`, namespace }, spec: { selector },
  });
  const ingress = gateway('istio-system', { istio: 'ingressgateway' });
  t.deepEqual(existingGatewayInUse([ingress, { ...ingress, metadata: { ...ingress.metadata, name: 'other' } }]), { namespace: 'istio-system', selector: { istio: 'ingressgateway' } });
  t.is(existingGatewayInUse([]), undefined, 'nothing exported or imported yet');
  t.is(existingGatewayInUse([gateway('istio-meshfed', { istio: 'meshfed-ingress' })]), undefined, 'meshfed\'s own gateway');
  t.is(existingGatewayInUse([ingress, gateway('istio-meshfed', { istio: 'meshfed-ingress' })]), undefined, 'mixed: the flag must say which');
  t.is(existingGatewayInUse([ingress, gateway('istio-system', { istio: 'eastwestgateway' })]), undefined, 'two existing gateways');
});
