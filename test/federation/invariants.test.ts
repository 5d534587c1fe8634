// Cross-side invariants, checked on the state of both clusters after every golden scenario: what must agree
// between provider and consumer for traffic to flow, and for nothing else to be exposed.
import { once } from 'node:events';
import { connect, createServer, type TLSSocket } from 'node:tls';
import type { AddressInfo } from 'node:net';
import test from 'ava';
import { inspectCertificate, keyMatchesCertificate, verifyCertificateChain } from '../../src/pki/index.js';
import { autoPassthroughMatchesLiteralHosts, principalOf, readSecret, type KubeObject } from '../../src/federation/index.js';
import { runScenario, scenarioNames, type ScenarioResult } from './scenario.js';

type Spec = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

const specOf = (o: KubeObject): Spec => o.spec as Spec;
const ofKind = (objects: KubeObject[], kind: string): KubeObject[] => objects.filter((o) => o.kind === kind);
const one = (objects: KubeObject[], kind: string, pred: (o: KubeObject) => boolean = () => true): KubeObject => {
  const found = objects.filter((o) => o.kind === kind && pred(o));
  if (found.length !== 1) throw new Error(`expected one ${kind}, found ${found.length}`);
  return found[0]!;
};
const secret = (objects: KubeObject[], namespace: string, name: string): Record<string, string> | undefined =>
  readSecret(objects.find((o) => o.kind === 'Secret' && o.metadata.namespace === namespace && o.metadata.name === name));

/** Every value under a `hosts` or `host` key anywhere in the objects. */
function allHosts(objects: KubeObject[]): string[] {
  const out: string[] = [];
  const walk = (v: unknown, key?: string): void => {
    if (typeof v === 'string' && (key === 'host' || key === 'hosts')) out.push(v);
    else if (Array.isArray(v)) v.forEach((x) => walk(x, key === 'hosts' ? 'hosts' : undefined));
    else if (v && typeof v === 'object') for (const [k, x] of Object.entries(v)) walk(x, k);
  };
  objects.filter((o) => o.apiVersion.includes('istio.io')).forEach((o) => walk(o.spec));
  return out;
}

const scenarios = new Map<string, ScenarioResult>();
const scenario = (name: string): ScenarioResult => {
  if (!scenarios.has(name)) scenarios.set(name, runScenario(name));
  return scenarios.get(name)!;
};

for (const name of scenarioNames()) {
  test(`${name}: nothing exposes more than the export (no wildcard hosts)`, (t) => {
    const r = scenario(name);
    const record = r.admission.record;
    // Istio 1.9.0–1.9.4 match the SNI against the passthrough hosts literally: `*.<fqdn>` is the one wildcard allowed
    // there, the narrowest host that matches outbound_.<port>_._.<fqdn> (see MF0420/MF0421).
    const legacy = record.mode === 'shared-root' && autoPassthroughMatchesLiteralHosts(r.input.provider.istioVersion);
    for (const host of [...allHosts(r.providerObjects), ...allHosts(r.consumerObjects)]) {
      if (legacy && host === `*.${record.host}`) continue;
      t.false(host.includes('*'), `wildcard host ${host}`);
    }
    const providerGatewayHosts = ofKind(r.providerObjects, 'Gateway').flatMap((g) => specOf(g).servers.flatMap((s: Spec) => s.hosts as string[]));
    // A Gateway whose server routes through VirtualServices names its hosts "./<host>": only meshfed's own
    // VirtualServices (its namespace) can bind to them. A passthrough server binds none.
    t.deepEqual(providerGatewayHosts, record.mode === 'boundary' ? [`./${record.host}`] : legacy ? [`*.${record.host}`, record.host] : [record.host], 'the provider gateways serve exactly the exported host');
    for (const g of [...ofKind(r.providerObjects, 'Gateway'), ...ofKind(r.consumerObjects, 'Gateway')]) {
      for (const s of specOf(g).servers as Spec[]) {
        if (s.tls?.mode === 'AUTO_PASSTHROUGH') continue;
        for (const h of s.hosts as string[]) t.true(h.startsWith('./'), `Gateway ${g.metadata.namespace}/${g.metadata.name} host ${h} binds VirtualServices of any namespace`);
      }
    }
    for (const vs of ofKind(r.providerObjects, 'VirtualService')) {
      const destinations = JSON.stringify(specOf(vs)).match(/"host":"[^"]+"/g) ?? [];
      t.deepEqual([...new Set(destinations)], [`"host":"${record.service}.${record.namespace}.svc.cluster.local"`]);
    }
  });

  test(`${name}: ports agree end to end`, (t) => {
    const r = scenario(name);
    const e = r.bundle.spec.endpoint;
    const exported = r.input.provider.services.find((s) => s.name === r.input.export.service)!.ports.find((p) => p.port === r.input.export.port.number)!;
    const local = one(r.consumerObjects, 'Service', (o) => o.metadata.name === r.importPlan.record.localName);
    t.deepEqual(specOf(local).ports.map((p: Spec) => [p.name, p.port]), [[exported.name, exported.port]], 'local name keeps the exported port and name');
    const gwService = r.providerObjects.find((o) => o.kind === 'Service' && o.metadata.namespace === 'istio-meshfed');
    const gwPort = gwService ? specOf(gwService).ports[0].port : 15443;
    t.is(e.gateway.port, gwPort, 'the bundle points at the provider gateway Service port');
    for (const g of ofKind(r.providerObjects, 'Gateway')) t.is(specOf(g).servers[0].port.number, gwPort);
    for (const vs of ofKind(r.providerObjects, 'VirtualService')) {
      const routes = [...(specOf(vs).http ?? []), ...(specOf(vs).tcp ?? [])];
      for (const route of routes) for (const d of route.route) t.is(d.destination.port.number, exported.port);
    }
    const se = r.consumerObjects.filter((o) => o.kind === 'ServiceEntry');
    t.true(se.length >= 1);
    for (const entry of se) {
      const s = specOf(entry);
      const endpointPort = s.endpoints[0].ports ? Object.values(s.endpoints[0].ports)[0] : s.ports[0].number;
      t.is(endpointPort, gwPort, 'the consumer dials the provider gateway port');
      t.is(s.endpoints[0].address, r.input.provider.gatewayAddress);
    }
    const importVs = one(r.consumerObjects, 'VirtualService', (o) => o.metadata.labels?.['meshfed.io/role'] === 'import');
    const tcp = specOf(importVs).tcp as Spec[] | undefined;
    if (tcp) t.is(tcp[0]!.match[0].port, exported.port);
  });

  test(`${name}: the SNI the consumer sends is served by the provider gateway`, (t) => {
    const r = scenario(name);
    const e = r.bundle.spec.endpoint;
    const providerGateway = one(r.providerObjects, 'Gateway');
    const served = specOf(providerGateway).servers.flatMap((s: Spec) => s.hosts as string[]);
    if (e.mode === 'boundary') {
      const originate = one(r.consumerObjects, 'DestinationRule', (o) => specOf(o).trafficPolicy?.tls?.mode === 'MUTUAL');
      t.true(served.includes(`./${specOf(originate).trafficPolicy.tls.sni}`));
      t.is(specOf(providerGateway).servers[0].tls.mode, 'MUTUAL');
      // The egress gateway's server matches the SNI the sidecar sends (egress routes subset).
      const routes = one(r.consumerObjects, 'DestinationRule', (o) => o.metadata.name === 'meshfed-egress-routes');
      const egressGateway = one(r.consumerObjects, 'Gateway');
      const sidecarSni = specOf(routes).subsets.map((s: Spec) => s.trafficPolicy.tls.sni);
      // Its first host is the SNI; the others are attached Services' names the split share arrives with.
      t.deepEqual(sidecarSni.map((h: string) => `./${h}`), specOf(egressGateway).servers[0].hosts.slice(0, 1));
    } else {
      const dr = one(r.consumerObjects, 'DestinationRule');
      const m = /^outbound_\.(\d+)_\.([^_]*)_\.(.+)$/.exec(specOf(dr).trafficPolicy.tls.sni);
      t.truthy(m, 'passthrough SNI format');
      t.true(served.includes(m![3]!), 'the service host is in the AUTO_PASSTHROUGH host list');
      t.is(Number(m![1]), r.input.export.port.number);
      if (m![2]) {
        // meshfed's subsets rule, or (when it defines the subset) the Service owner's own one.
        const rules = [...r.providerObjects, ...(r.input.provider.existing ?? [])].filter((o) => o.kind === 'DestinationRule');
        t.true(rules.some((dr) => specOf(dr).subsets?.some((s: Spec) => s.name === m![2])));
      }
      t.is(specOf(providerGateway).servers[0].tls.mode, 'AUTO_PASSTHROUGH');
    }
  });

  test(`${name}: every referenced credential is in the plan with the keys Istio reads`, (t) => {
    const r = scenario(name);
    const references: Array<{ objects: KubeObject[]; namespace: string; name: string }> = [];
    for (const g of ofKind(r.providerObjects, 'Gateway')) {
      for (const s of specOf(g).servers) if (s.tls?.credentialName) references.push({ objects: r.providerObjects, namespace: g.metadata.namespace!, name: s.tls.credentialName });
    }
    for (const dr of ofKind(r.consumerObjects, 'DestinationRule')) {
      const tls = specOf(dr).trafficPolicy?.tls;
      if (tls?.credentialName) references.push({ objects: r.consumerObjects, namespace: dr.metadata.namespace!, name: tls.credentialName });
    }
    t.is(references.length, r.bundle.spec.endpoint.mode === 'boundary' ? 2 : 0);
    for (const ref of references) {
      const data = secret(ref.objects, ref.namespace, ref.name);
      t.truthy(data, `Secret ${ref.namespace}/${ref.name} is planned`);
      t.true(keyMatchesCertificate(data!['tls.key']!, data!['tls.crt']!), `${ref.name}: key matches certificate`);
      t.truthy(data!['ca.crt'], `${ref.name}: has ca.crt`);
    }
  });

  test(`${name}: trust: the consumer's CA signed the provider certificate and vice versa`, async (t) => {
    const r = scenario(name);
    const e = r.bundle.spec.endpoint;
    const now = new Date(r.input.now);
    if (e.mode !== 'boundary') {
      t.is(r.bundle.spec.clientCertificatePem, undefined, 'shared-root bundles carry no client certificate');
      return;
    }
    const server = secret(r.providerObjects, 'istio-meshfed', specOf(one(r.providerObjects, 'Gateway')).servers[0].tls.credentialName)!;
    const client = secret(r.consumerObjects, 'istio-meshfed', specOf(one(r.consumerObjects, 'DestinationRule', (o) => !!specOf(o).trafficPolicy?.tls?.credentialName)).trafficPolicy.tls.credentialName)!;
    t.deepEqual(verifyCertificateChain(server['tls.crt']!, [client['ca.crt']!], now), { ok: true });
    t.deepEqual(verifyCertificateChain(client['tls.crt']!, [server['ca.crt']!], now), { ok: true });
    t.true(inspectCertificate(server['tls.crt']!, now).dnsNames.includes(e.sni));
    t.deepEqual(inspectCertificate(client['tls.crt']!, now).extKeyUsage, ['clientAuth']);

    // And a real handshake with those exact Secrets, on loopback: SNI and client certificate as the gateways use them.
    const tlsServer = createServer({ cert: server['tls.crt'], key: server['tls.key'], ca: server['ca.crt'], requestCert: true, rejectUnauthorized: true }, (s) => s.end('ok'));
    tlsServer.listen(0, '127.0.0.1');
    await once(tlsServer, 'listening');
    try {
      const socket: TLSSocket = connect({
        host: '127.0.0.1', port: (tlsServer.address() as AddressInfo).port, servername: e.sni,
        cert: client['tls.crt'], key: client['tls.key'], ca: client['ca.crt'],
        checkServerIdentity: (host, cert) => (cert.subjectaltname?.includes(`DNS:${host}`) ? undefined : new Error(`no SAN ${host}`)),
      });
      const [data] = await once(socket, 'data');
      t.is(String(data), 'ok');
      t.true(socket.authorized);
      socket.destroy();
    } finally {
      tlsServer.close();
    }
  });

  test(`${name}: authorization admits exactly the consumer's identity`, (t) => {
    const r = scenario(name);
    const e = r.bundle.spec.endpoint;
    const now = new Date(r.input.now);
    if (e.mode === 'boundary') {
      const policy = one(r.providerObjects, 'AuthorizationPolicy');
      const client = secret(r.consumerObjects, 'istio-meshfed', specOf(one(r.consumerObjects, 'DestinationRule', (o) => !!specOf(o).trafficPolicy?.tls?.credentialName)).trafficPolicy.tls.credentialName)!;
      const uris = inspectCertificate(client['tls.crt']!, now).uris;
      t.is(specOf(policy).action, 'ALLOW');
      t.is(specOf(policy).rules.length, 1);
      const rule = specOf(policy).rules[0];
      t.deepEqual(rule.from[0].source.principals, uris.map(principalOf));
      t.deepEqual(rule.when, [{ key: 'connection.sni', values: [e.sni] }]);
      t.deepEqual(specOf(policy).selector.matchLabels, specOf(one(r.providerObjects, 'Gateway')).selector, 'the policy is on the federation gateway');
      // Before admission the same policy admits nobody.
      const before = one(r.exportPlan.objects, 'AuthorizationPolicy');
      t.is(specOf(before).rules, undefined);
      t.is(specOf(before).action, 'ALLOW');
    } else {
      const guard = one(r.providerObjects, 'AuthorizationPolicy');
      const consumer = `${r.input.consumer.trustDomain}/ns/${r.input.import.namespace}/sa/${r.input.import.serviceAccounts![0]}`;
      t.is(specOf(guard).action, 'DENY', 'a DENY guard never locks out the provider\'s own callers');
      // Positive principals are only patterns Istio never rewrites for trust domain aliases (`*`, `<td>/*`).
      const td = r.input.consumer.trustDomain;
      t.deepEqual(specOf(guard).rules[0].from[0].source, { principals: ['*'], notPrincipals: [`${r.input.provider.trustDomain}/*`, `${td}/*`] });
      t.deepEqual(specOf(guard).rules[1].from[0].source, { principals: [`${td}/*`], notPrincipals: [consumer] });
      t.is(specOf(guard).rules[1].to, undefined);
      t.deepEqual(specOf(guard).rules[2].from[0].source, { principals: [`${td}/*`] });
      t.deepEqual(specOf(guard).rules[2].to[0].operation.notPorts, [String(r.input.export.port.number)]);
      t.is(specOf(guard).rules.length, 3);
      t.deepEqual(specOf(guard).selector.matchLabels, r.input.provider.services[0]!.selector);
    }
  });
}
