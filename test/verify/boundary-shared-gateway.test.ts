/**
 * `verify` on a boundary HTTP export that an Istio 1.9.0 provider serves from its existing ingress gateway, which
 * also carries the owner's public route: what meshfed cannot prevent there is detected with its own code — the
 * gateway shared with other traffic (MF0215), another ALLOW policy on it (MF0214), a policy the release cannot
 * evaluate (MF0213), a handshake that refuses the consumer (MF0410), the federation CA beside a gateway (MF0216).
 */
import test from 'ava';
import { bookinfoCluster2 } from '../support/emulator/seeds.js';
import { startFederationWorld, type FederationWorld } from '../support/federation.js';
import { assertFails, breakObject, failing, failingCodes, verifyJson } from './helpers.js';

let fed: FederationWorld;
const VERIFY = ['--context', 'cluster1', '-n', 'default', '--name', 'myreviews', '--from', 'legacy', '--path', '/reviews/0'];
const NAME = 'mf-export-bookinfo-myreviews';
const HOST = 'myreviews.bookinfo.legacy.export.meshfed.internal';
const CONSUMER = 'spiffe://cluster1.meshfed.internal/ns/istio-meshfed/sa/meshfed-egress';

test.before(async () => {
  fed = await startFederationWorld({ seed: 'bookinfo', clusters: [{ name: 'cluster1' }, { name: 'cluster2' }, { name: 'legacy', istio: '1.9.0' }] });
  const legacy = fed.world.cluster('legacy');
  for (const o of bookinfoCluster2()) {
    legacy.create(o.kind === 'Namespace' ? { ...o, metadata: { ...o.metadata, labels: { 'istio-injection': 'enabled' } } } : o);
  }
  legacy.create({
    apiVersion: 'networking.istio.io/v1beta1', kind: 'Gateway', metadata: { name: 'public', namespace: 'istio-system' },
    spec: { selector: { istio: 'ingressgateway' }, servers: [{ port: { number: 80, name: 'http', protocol: 'HTTP' }, hosts: ['*'] }] },
  });
  const exported = await fed.run(['export', '--context', 'legacy', '-n', 'bookinfo', '--service', 'myreviews', '--port', '9080', '--gateway-selector', 'istio=ingressgateway']);
  if (exported.code !== 0) throw new Error(exported.stderr);
  const imported = await fed.run(['import', '--context', 'cluster1', '-n', 'default', '--from', 'legacy', '--export', 'bookinfo/myreviews']);
  if (imported.code !== 0) throw new Error(imported.stderr);
});

test.after.always(async () => {
  await fed?.stop();
});

test.serial('healthy on Istio 1.9.0: every error check passes, the probe gets 200; the shared gateway is a warning', async (t) => {
  const run = await verifyJson(fed, VERIFY);
  t.is(run.code, 0, run.stdout);
  t.deepEqual(failingCodes(run), ['MF0215']);
  t.deepEqual(failing(run), [['MF0215', 'provider gateway in istio-system']]);
  t.regex(run.report.checks.find((c) => c.code === 'MF0215')!.message!, /also serve Gateway istio-system\/public/);
  for (const code of ['MF0213', 'MF0214', 'MF0216', 'MF0410']) t.true(run.report.checks.some((c) => c.code === code && c.status === 'ok'), code);
  t.like(run.report.probe, { ending: 'completed', httpStatus: 200 });
});

test.serial('fault: an ALLOW policy with principals, as earlier versions wrote it: on Istio 1.9 nobody is admitted (MF0213, MF0402)', async (t) => {
  const undo = await breakObject(fed, 'legacy', ['security.istio.io/v1beta1', 'AuthorizationPolicy', 'istio-system', NAME], (o) => {
    o.spec = {
      selector: { matchLabels: { istio: 'ingressgateway' } }, action: 'ALLOW',
      rules: [{ from: [{ source: { principals: [CONSUMER.slice('spiffe://'.length)] } }], to: [{ operation: { hosts: [HOST] } }], when: [{ key: 'connection.sni', values: [HOST] }] }],
    };
  });
  try {
    const run = await verifyJson(fed, VERIFY);
    t.is(run.code, 3, run.stdout);
    assertFails(t, run, [['MF0213', `AuthorizationPolicy istio-system/${NAME}`], ['MF0402', 'consumer cluster1'], ['MF0208', null]]);
    t.regex(run.report.checks.find((c) => c.code === 'MF0213' && c.status === 'fail')!.message!, /Istio 1\.9\.0 a gateway's HTTP rules see no principal/);
    t.is(run.report.probe?.httpStatus, 403, 'the model, as Istio 1.9.0, denies the request');
  } finally {
    await undo();
  }
});

test.serial('fault: the Gateway server\'s subjectAltNames does not list the consumer: the handshake refuses it (MF0410)', async (t) => {
  const undo = await breakObject(fed, 'legacy', ['networking.istio.io/v1beta1', 'Gateway', 'istio-system', NAME], (o) => {
    (o.spec as { servers: Array<{ tls: Record<string, unknown> }> }).servers[0]!.tls.subjectAltNames = ['spiffe://other.meshfed.internal/ns/istio-meshfed/sa/meshfed-egress'];
  });
  try {
    const run = await verifyJson(fed, VERIFY);
    t.is(run.code, 3, run.stdout);
    assertFails(t, run, [['MF0410', 'consumer cluster1']]);
    t.regex(run.report.checks.find((c) => c.code === 'MF0410' && c.status === 'fail')!.message!, new RegExp(`not ${CONSUMER}`));
    t.not(run.report.probe?.httpStatus, 200);
  } finally {
    await undo();
  }
});

test.serial('fault: the gateway owner adds an ALLOW policy for its own traffic: the export is shut out (MF0214)', async (t) => {
  const legacy = fed.world.cluster('legacy');
  legacy.create({
    apiVersion: 'security.istio.io/v1beta1', kind: 'AuthorizationPolicy', metadata: { name: 'public-only', namespace: 'istio-system' },
    spec: { selector: { matchLabels: { istio: 'ingressgateway' } }, action: 'ALLOW', rules: [{ to: [{ operation: { ports: ['8080'] } }] }] },
  });
  await fed.world.waitIdle();
  try {
    const run = await verifyJson(fed, VERIFY);
    t.is(run.code, 3, run.stdout);
    assertFails(t, run, [['MF0214', 'provider gateway in istio-system']]);
    const check = run.report.checks.find((c) => c.code === 'MF0214' && c.status === 'fail')!;
    t.regex(check.message!, /AuthorizationPolicy istio-system\/public-only/);
    t.regex(check.hint!, new RegExp(`connection\\.sni = ${HOST.replace(/\./g, '\\.')}`));
    t.is(run.report.probe?.httpStatus, 403);
  } finally {
    legacy.delete('security.istio.io/v1beta1', 'AuthorizationPolicy', 'istio-system', 'public-only');
    await fed.world.waitIdle();
  }
});

test.serial('fault: the federation CA key left beside the gateway, as earlier versions kept it (MF0216)', async (t) => {
  const legacy = fed.world.cluster('legacy');
  const ca = legacy.get('v1', 'Secret', 'meshfed-ca', 'meshfed-federation-ca')!;
  legacy.create({ apiVersion: 'v1', kind: 'Secret', metadata: { name: ca.metadata.name, namespace: 'istio-system', labels: ca.metadata.labels }, type: ca.type, data: ca.data });
  await fed.world.waitIdle();
  try {
    const run = await verifyJson(fed, VERIFY);
    t.is(run.code, 3, run.stdout);
    assertFails(t, run, [['MF0216', 'Secret istio-system/meshfed-federation-ca']]);
    t.regex(run.report.checks.find((c) => c.code === 'MF0216' && c.status === 'fail')!.message!, /namespace istio-system, not in meshfed-ca, where gateway pod\(s\) istio-ingressgateway-/);
    t.true(run.report.checks.some((c) => c.code === 'MF0216' && c.object === 'Secret meshfed-ca/meshfed-federation-ca' && c.status === 'ok'));
  } finally {
    legacy.delete('v1', 'Secret', 'istio-system', 'meshfed-federation-ca');
    await fed.world.waitIdle();
  }
});
