import test from 'ava';
import { createServer as createHttpsServer, type Server } from 'node:https';
import { createServer as createTcpServer, type AddressInfo } from 'node:net';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createFederationCA, issueServerCertificate, inspectCertificate } from '../../src/pki/index.js';
import { runCli, writeKubeconfig } from '../support/cli.js';
import { BoundClock, toServer } from '../support/clock.js';

test('contexts merges a multi-file KUBECONFIG first-wins, marks the current context, and -o json parses', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'meshfed-merge-'));
  const first = join(dir, 'first.yaml');
  const second = join(dir, 'second.yaml');
  writeFileSync(first, `apiVersion: v1
kind: Config
current-context: staging
clusters:
- name: shared
  cluster: {server: "https://first.example:6443"}
users:
- name: u
  user: {token: a}
contexts:
- name: staging
  context: {cluster: shared, user: u, namespace: apps}
`);
  writeFileSync(second, `apiVersion: v1
kind: Config
current-context: production
clusters:
- name: shared
  cluster: {server: "https://second.example:6443"}
- name: prod
  cluster: {server: "https://prod.example:6443"}
users:
- name: u
  user: {token: b}
contexts:
- name: staging
  context: {cluster: prod, user: u}
- name: production
  context: {cluster: prod, user: u}
`);
  const env = { KUBECONFIG: `${first}:${join(dir, 'missing.yaml')}:${second}` };
  const table = await runCli(['contexts'], { env });
  t.is(table.code, 0, table.stderr);
  const lines = table.stdout.trimEnd().split('\n');
  t.regex(lines[0]!, /^CURRENT\s+NAME\s+CLUSTER\s+SERVER\s+NAMESPACE$/);
  t.regex(lines[1]!, /^\*\s+staging\s+shared\s+https:\/\/first\.example:6443\s+apps$/);
  t.regex(lines[2]!, /^\s+production\s+prod\s+https:\/\/prod\.example:6443\s+default$/);
  // Columns line up as kubectl's do: every row's NAME starts where the header's does.
  const nameColumn = lines[0]!.indexOf('NAME');
  for (const line of lines.slice(1)) t.is(line.slice(nameColumn).search(/\S/), 0, line);

  const json = await runCli(['contexts', '-o', 'json'], { env });
  t.is(json.code, 0);
  const parsed = JSON.parse(json.stdout);
  t.is(parsed.currentContext, 'staging');
  t.deepEqual(parsed.contexts.map((c: { name: string }) => c.name), ['staging', 'production']);
  t.is(parsed.contexts[0].server, 'https://first.example:6443', 'the first file to define cluster "shared" wins');
  t.false('probe' in parsed.contexts[0]);

  const yaml = await runCli(['contexts', '-o', 'yaml', '--kubeconfig', second]);
  t.regex(yaml.stdout, /currentContext: production/);
  const bad = await runCli(['contexts', '-o', 'xml'], { env });
  t.is(bad.code, 2);
  t.regex(bad.stderr, /unsupported output format "xml" for -o\/--output/);
});

interface FakeApi {
  server: Server;
  url: string;
  caPem: string;
}

const ROOT = createFederationCA({ provider: 'mesh-root-test' });

/**
 * A tiny HTTPS API server: /version, istiod, mesh config, root CA; token "good" sees all, "limited" gets 403 in
 * istio-system, "bare" sees a cluster without Istio. Token "good" gets its /version only once `gate` has settled.
 */
async function startFakeApi(gate: Promise<unknown> = Promise.resolve()): Promise<FakeApi> {
  const ca = createFederationCA({ provider: 'apiserver-test' });
  const cert = issueServerCertificate({ ca, hosts: ['kubernetes.test'] });
  const server = createHttpsServer({ cert: cert.certificatePem, key: cert.privateKeyPem }, (req, res) => {
    const send = (status: number, body: unknown) => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    const token = req.headers.authorization;
    if (token !== 'Bearer good' && token !== 'Bearer limited' && token !== 'Bearer bare') {
      return send(401, { kind: 'Status', apiVersion: 'v1', status: 'Failure', message: 'Unauthorized', reason: 'Unauthorized', code: 401 });
    }
    const url = new URL(req.url!, 'https://x');
    if (url.pathname === '/version' && token === 'Bearer good') return void gate.then(() => send(200, { major: '1', minor: '30', gitVersion: 'v1.30.2' }));
    if (url.pathname === '/version') return send(200, { major: '1', minor: '30', gitVersion: 'v1.30.2' });
    if (token === 'Bearer bare' && url.pathname.includes('/namespaces/istio-system/')) {
      if (url.pathname.endsWith('/deployments')) return send(200, { kind: 'DeploymentList', items: [] });
      return send(404, { kind: 'Status', status: 'Failure', reason: 'NotFound', code: 404, message: 'namespaces "istio-system" not found' });
    }
    if (token === 'Bearer limited' && url.pathname.includes('/namespaces/istio-system/')) {
      return send(403, { kind: 'Status', status: 'Failure', reason: 'Forbidden', code: 403, message: 'forbidden' });
    }
    if (url.pathname === '/apis/apps/v1/namespaces/istio-system/deployments' && url.searchParams.get('labelSelector') === 'app=istiod') {
      return send(200, { kind: 'DeploymentList', items: [{ metadata: { name: 'istiod', labels: { app: 'istiod' } }, spec: { template: { spec: { containers: [{ name: 'discovery', image: 'docker.io/istio/pilot:1.18.0' }] } } } }] });
    }
    if (url.pathname === '/api/v1/namespaces/istio-system/configmaps/istio') return send(200, { data: { mesh: 'trustDomain: production.local\n' } });
    if (url.pathname === '/api/v1/namespaces/istio-system/configmaps/istio-ca-root-cert') return send(200, { data: { 'root-cert.pem': ROOT.certificatePem } });
    send(404, { kind: 'Status', status: 'Failure', reason: 'NotFound', code: 404, message: 'not found' });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, url: `https://127.0.0.1:${(server.address() as AddressInfo).port}`, caPem: ca.certificatePem };
}

test('contexts --probe reports reachable clusters, unreachable ones fast, and 401/403 with their meaning', async (t) => {
  // A port that accepts TCP but never answers (so never completes TLS): --request-timeout ends the wait. The first
  // context's cluster answers only once the last one's probe has connected: the probes must run at the same time.
  // Once the hanging context's hello has arrived, the bound it waits on runs out on the clock (not after 1.5 s).
  let connected: () => void = () => undefined;
  const api = await startFakeApi(new Promise<void>((resolve) => (connected = resolve)));
  const clock = new BoundClock();
  const silent = createTcpServer((socket) => {
    connected();
    socket.once('data', () => clock.elapse(toServer(hanging)));
  });
  await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
  // A port with nothing listening: connection refused.
  const closed = createTcpServer();
  await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
  const closedPort = (closed.address() as AddressInfo).port;
  await new Promise((resolve) => closed.close(resolve));
  t.teardown(() => { api.server.close(); silent.close(); });

  const hanging = `https://127.0.0.1:${(silent.address() as AddressInfo).port}`;
  const common = { caPem: api.caPem, tlsServerName: 'kubernetes.test' };
  const kubeconfig = writeKubeconfig([
    { name: 'production', server: api.url, token: 'good', ...common },
    { name: 'expired', server: api.url, token: 'stale', ...common },
    { name: 'limited', server: api.url, token: 'limited', ...common },
    { name: 'bare', server: api.url, token: 'bare', ...common },
    { name: 'down', server: `https://127.0.0.1:${closedPort}` },
    { name: 'hanging', server: hanging },
  ], 'production');

  const result = await runCli(['contexts', '--probe', '--request-timeout', '1500ms', '-o', 'json'], { env: { KUBECONFIG: kubeconfig }, session: { boundTimer: clock.timer } });
  t.is(result.code, 0, result.stderr);
  const probes = Object.fromEntries(JSON.parse(result.stdout).contexts.map((c: { name: string; probe: unknown }) => [c.name, c.probe]));

  t.like(probes.production, { reachable: true, kubernetesVersion: 'v1.30.2', istioVersion: '1.18.0', trustDomain: 'production.local' });
  t.is(probes.production.rootCaFingerprint, inspectCertificate(ROOT.certificatePem).fingerprintSha256);
  t.is(probes.production.reason, undefined);

  t.false(probes.expired.reachable);
  t.regex(probes.expired.reason, /rejected the credentials of user "expired-user" \(context "expired"\): 401 Unauthorized/);

  t.true(probes.limited.reachable);
  t.regex(probes.limited.reason, /forbidden to list deployments\.apps in namespace "istio-system"/);
  t.regex(probes.limited.reason, /forbidden to get configmaps "istio" in namespace "istio-system"/);

  t.true(probes.bare.reachable);
  t.is(probes.bare.reason, 'no istiod Deployment in namespace "istio-system" (use --istio-namespace if Istio is elsewhere)', 'no Istio is said once, not once per missing ConfigMap');

  t.false(probes.down.reachable);
  t.regex(probes.down.reason, new RegExp(`cannot reach https://127\\.0\\.0\\.1:${closedPort} \\(context "down"\\): connection refused`));

  t.false(probes.hanging.reachable);
  t.regex(probes.hanging.reason, /the TLS handshake did not complete within 1500ms \(--request-timeout\)/);

  const table = await runCli(['contexts', '--probe', '--request-timeout', '1s'], { env: { KUBECONFIG: kubeconfig }, session: { boundTimer: clock.timer } });
  t.regex(table.stdout, /^\*\s+production\s.*Reachable\s+v1\.30\.2\s+1\.18\.0\s+production\.local\s+[0-9A-F:]+…$/m);
  t.regex(table.stdout, /^\s+down\s.*Unreachable/m);
  t.regex(table.stderr, /Warning: context "hanging": cannot reach .* the TLS handshake did not complete within 1s/);
});

test('contexts --probe without a timeout flag still gives up on a silent server', async (t) => {
  // Once the client's hello has arrived, the bound the probe waits on runs out on the clock, not after 5 s: the
  // probe's own default (5s) before the handshake's (10s), as the wall clock would have it.
  const clock = new BoundClock();
  const silent = createTcpServer((socket) => socket.once('data', () => clock.elapse(toServer(server))));
  await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
  t.teardown(() => silent.close());
  const server = `https://127.0.0.1:${(silent.address() as AddressInfo).port}`;
  const kubeconfig = writeKubeconfig([{ name: 'hanging', server }], 'hanging');
  const result = await runCli(['contexts', '--probe', '-o', 'json'], { env: { KUBECONFIG: kubeconfig }, session: { boundTimer: clock.timer } });
  t.is(result.code, 0);
  t.regex(JSON.parse(result.stdout).contexts[0].probe.reason, /the TLS handshake did not complete within 5s/);
  t.true(clock.elapsed.length > 0 && clock.elapsed.every((bound) => bound.kind === 'request' && bound.ms === 5000), 'the probe\'s bound ran out');
});
