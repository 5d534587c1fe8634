import test from 'ava';
import { ISTIO_VERSIONS, crdSchema, loadIstioCrds, pruneUnknownFields, validateAgainstSchema } from '../support/crd-schema.js';
import type { KubeObject } from '../support/emulator/runtime.js';

const valid: KubeObject[] = [
  {
    apiVersion: 'networking.istio.io/v1beta1', kind: 'Gateway', metadata: { name: 'cross-network', namespace: 'istio-system' },
    spec: {
      selector: { istio: 'ingressgateway' },
      servers: [{ port: { number: 15443, name: 'tls', protocol: 'TLS' }, tls: { mode: 'AUTO_PASSTHROUGH' }, hosts: ['*.local'] }],
    },
  },
  {
    apiVersion: 'networking.istio.io/v1beta1', kind: 'VirtualService', metadata: { name: 'reviews', namespace: 'default' },
    spec: {
      hosts: ['reviews.default.svc.cluster.local'],
      http: [{ match: [{ uri: { prefix: '/' } }], route: [{ destination: { host: 'reviews', subset: 'v2', port: { number: 9080 } }, weight: 100 }], timeout: '5s' }],
    },
  },
  {
    apiVersion: 'networking.istio.io/v1beta1', kind: 'DestinationRule', metadata: { name: 'reviews', namespace: 'default' },
    spec: {
      host: 'reviews.bookinfo.global',
      trafficPolicy: { tls: { mode: 'ISTIO_MUTUAL', sni: 'reviews.bookinfo.svc.cluster.local' } },
      subsets: [{ name: 'v2', labels: { version: 'v2' } }],
    },
  },
  {
    apiVersion: 'networking.istio.io/v1beta1', kind: 'ServiceEntry', metadata: { name: 'reviews-remote', namespace: 'default' },
    spec: {
      hosts: ['reviews.bookinfo.global'], location: 'MESH_INTERNAL', resolution: 'STATIC',
      ports: [{ number: 9080, name: 'http', protocol: 'HTTP' }],
      endpoints: [{ address: '198.51.100.1', ports: { http: 15443 }, labels: { cluster: 'cluster2' } }],
    },
  },
  {
    apiVersion: 'security.istio.io/v1beta1', kind: 'AuthorizationPolicy', metadata: { name: 'reviews', namespace: 'bookinfo' },
    spec: {
      selector: { matchLabels: { app: 'reviews' } },
      action: 'ALLOW',
      rules: [{ from: [{ source: { principals: ['cluster1.local/ns/default/sa/bookinfo-productpage'] } }], to: [{ operation: { methods: ['GET'] } }] }],
    },
  },
];

for (const version of ISTIO_VERSIONS) {
  test(`Istio ${version}: valid v1beta1 objects pass`, (t) => {
    for (const obj of valid) {
      const schema = crdSchema(version, obj.apiVersion, obj.kind);
      if (!schema) return t.fail(`${obj.kind} not served in ${version}`);
      t.deepEqual(validateAgainstSchema(obj, schema), { causes: [], unknownFields: [] }, obj.kind);
      t.deepEqual(pruneUnknownFields(obj, schema), obj, obj.kind);
    }
  });

  test(`Istio ${version}: mistyped field, bad enum, missing required field and unknown fields are reported`, (t) => {
    const gw = structuredClone(valid[0]) as KubeObject & { spec: { servers: Array<Record<string, unknown>> } };
    (gw.spec.servers[0]!.port as Record<string, unknown>).number = 'https';
    (gw.spec.servers[0]!.tls as Record<string, unknown>).mode = 'PASSTHRU';
    gw.spec.servers[0]!.tlss = { mode: 'SIMPLE' };
    (gw.spec as Record<string, unknown>).foo = 1;
    const schema = crdSchema(version, gw.apiVersion, gw.kind)!;
    const result = validateAgainstSchema(gw, schema);
    t.deepEqual(result.unknownFields, ['.spec.servers[0].tlss', '.spec.foo']);
    t.deepEqual(result.causes.map((c) => `${c.field}: ${c.message}`), [
      'spec.servers[0].port.number: Invalid value: "string": spec.servers[0].port.number in body must be of type integer: "string"',
      `spec.servers[0].tls.mode: Unsupported value: "PASSTHRU": supported values: "PASSTHROUGH", "SIMPLE", "MUTUAL", "AUTO_PASSTHROUGH", "ISTIO_MUTUAL"${version === '1.30.3' ? ', "OPTIONAL_MUTUAL"' : ''}`,
    ]);
    t.deepEqual(result.causes.map((c) => c.reason), ['FieldValueTypeInvalid', 'FieldValueNotSupported']);
    const pruned = pruneUnknownFields(gw, schema);
    t.false('foo' in pruned.spec);
    t.false('tlss' in pruned.spec.servers[0]!);
    t.deepEqual(pruned.metadata, gw.metadata);

    const se = structuredClone(valid[3]!) as KubeObject & { spec: Record<string, unknown> };
    delete se.spec.hosts;
    const seResult = validateAgainstSchema(se, crdSchema(version, se.apiVersion, se.kind)!);
    // Only 1.30.3 marks ServiceEntry hosts as required; older releases accept the object.
    t.deepEqual(seResult.causes, version === '1.30.3' ? [{ reason: 'FieldValueRequired', field: 'spec.hosts', message: 'Required value' }] : []);
  });

  test(`Istio ${version}: oneOf of string matches rejects two match kinds at once`, (t) => {
    const vs = structuredClone(valid[1]!) as KubeObject & { spec: { http: Array<{ match: Array<{ uri: Record<string, string> }> }> } };
    vs.spec.http[0]!.match[0]!.uri = { prefix: '/', exact: '/reviews' };
    const causes = validateAgainstSchema(vs, crdSchema(version, vs.apiVersion, vs.kind)!).causes;
    t.deepEqual(causes.map((c) => c.field), ['spec.http[0].match[0].uri']);
    t.regex(causes[0]!.message, /must validate one and only one schema \(oneOf\)/);
  });
}

test('only releases whose CRDs constrain a field reject it (CEL rules of 1.30.3, none in 1.9.0)', (t) => {
  const vs = structuredClone(valid[1]!) as KubeObject & { spec: { http: Array<Record<string, unknown>> } };
  vs.spec.http[0]!.timeout = '500us';
  t.deepEqual(validateAgainstSchema(vs, crdSchema('1.9.0', vs.apiVersion, vs.kind)!).causes, []);
  t.deepEqual(validateAgainstSchema(vs, crdSchema('1.18.0', vs.apiVersion, vs.kind)!).causes, []);
  t.deepEqual(validateAgainstSchema(vs, crdSchema('1.30.3', vs.apiVersion, vs.kind)!).causes.map((c) => `${c.field}: ${c.message}`), [
    'spec.http[0].timeout: Invalid value: "string": must be a valid duration greater than 1ms',
  ]);
});

test('status is preserved as the CRDs declare it (x-kubernetes-preserve-unknown-fields)', (t) => {
  for (const version of ISTIO_VERSIONS) {
    const obj = { ...valid[0]!, status: { conditions: [{ type: 'Reconciled' }], anything: { nested: true } } };
    const schema = crdSchema(version, obj.apiVersion, obj.kind)!;
    t.deepEqual(validateAgainstSchema(obj, schema).unknownFields, [], version);
    t.deepEqual(pruneUnknownFields(obj, schema).status, obj.status, version);
  }
});

test('nullable and null handling: null of a non-nullable field is dropped, not an error', (t) => {
  const schema = crdSchema('1.18.0', 'networking.istio.io/v1beta1', 'DestinationRule')!;
  const dr = { ...valid[2]!, spec: { ...(valid[2]!.spec as object), exportTo: null } };
  t.deepEqual(validateAgainstSchema(dr, schema).causes, []);
  t.false('exportTo' in (pruneUnknownFields(dr, schema).spec as object));
});

test('loadIstioCrds serves apiextensions.k8s.io/v1 CRDs with per-version schemas, also for 1.9.0', (t) => {
  for (const version of ISTIO_VERSIONS) {
    const crds = loadIstioCrds(version);
    const groups = new Set(crds.map((c) => (c.spec as { group: string }).group));
    t.true(groups.has('networking.istio.io') && groups.has('security.istio.io'), version);
    for (const crd of crds) {
      t.is(crd.apiVersion, 'apiextensions.k8s.io/v1');
      for (const v of (crd.spec as { versions: Array<{ schema?: unknown }> }).versions) t.truthy(v.schema, `${crd.metadata.name} ${version}`);
    }
  }
  t.is(crdSchema('1.9.0', 'networking.istio.io/v1', 'Gateway'), undefined);
  t.truthy(crdSchema('1.30.3', 'networking.istio.io/v1', 'Gateway'));
  const cols = (loadIstioCrds('1.9.0').find((c) => c.metadata.name === 'destinationrules.networking.istio.io')!.spec as { versions: Array<{ additionalPrinterColumns: Array<{ jsonPath: string }> }> }).versions[0]!.additionalPrinterColumns;
  t.is(cols[0]!.jsonPath, '.spec.host');
});
