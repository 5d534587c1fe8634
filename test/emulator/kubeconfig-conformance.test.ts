/**
 * Acting as the kubeconfig says, compared with the real kubectl: for the same kubeconfig (and flags, `--as` included on
 * every command), meshfed sends the emulator the same impersonation headers (Impersonate-User, -Group, -Uid, -Extra-*), the same Authorization, a
 * User-Agent of the same shape, and the same route and label selector for the same list; it honours
 * `tls-server-name`, `proxy-url` (through a CONNECT proxy), HTTPS_PROXY/NO_PROXY as Go does, and an exec plugin whose
 * `command` is relative to the kubeconfig file, whose stderr (a device-code prompt) reaches the user.
 */
import test from 'ava';
import { chmodSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import YAML from 'yaml';
import { noProxyMatches, proxyFor } from '../../src/kube/transport.js';
import { rbacObjects } from '../../src/federation/rbac.js';
import { runMeshfed } from '../support/cli.js';
import { startWorld, type EmulatedCluster, type RequestRecord, type World } from '../support/emulator/index.js';
import { runKubectl } from '../support/emulator/kubectl.js';
import { startConnectProxy } from '../support/proxy.js';
import { bindRole, grant } from '../support/rbac.js';

let world: World;
let cluster: EmulatedCluster;
let dir: string;

const SELECTOR = 'app.kubernetes.io/managed-by=kubectl-meshfed';

test.before(async () => {
  world = await startWorld({ clusters: [{ name: 'c1', kubernetesVersion: '1.31.4' }], istio: '1.18.0' });
  cluster = world.clusters[0]!;
  dir = mkdtempSync(join(tmpdir(), 'meshfed-kcconf-'));
  // alice may impersonate; bob (and carol) may read what `status` reads: the viewer role.
  cluster.addToken('alice-token', 'alice');
  cluster.addToken('mallory-token', 'mallory');
  grant(cluster, 'impersonator', { user: 'alice' }, [
    { verbs: ['impersonate'], apiGroups: [''], resources: ['users', 'groups'] },
    { verbs: ['impersonate'], apiGroups: ['authentication.k8s.io'], resources: ['uids', 'userextras/scopes', 'userextras/example.com/reason'] },
  ]);
  for (const name of ['bob', 'carol']) {
    for (const object of rbacObjects('viewer', { subject: { kind: 'User', name } })) {
      if (object.kind === 'Namespace' && cluster.get('v1', 'Namespace', undefined, object.metadata.name)) continue;
      cluster.apply(object, 'cluster-admin');
    }
  }
  await world.waitIdle();
});

test.after.always(async () => {
  await world?.stop();
});

interface UserEntry { [key: string]: unknown }

/** A kubeconfig for the cluster with `user` and extra cluster fields, written in its own directory. */
function kubeconfigWith(user: UserEntry, clusterExtra: Record<string, unknown> = {}, where = mkdtempSync(join(dir, 'kc-'))): string {
  const path = join(where, 'config');
  writeFileSync(path, YAML.stringify({
    apiVersion: 'v1', kind: 'Config', 'current-context': 'c1',
    clusters: [{ name: 'c1', cluster: { server: cluster.server, 'certificate-authority-data': Buffer.from(cluster.caPem).toString('base64'), ...clusterExtra } }],
    users: [{ name: 'u', user }],
    contexts: [{ name: 'c1', context: { cluster: 'c1', user: 'u' } }],
  }));
  return path;
}

/** The requests a run sent (those after `mark`, from the client whose user agent starts with `agent`). */
function sentBy(mark: number, agent: string): RequestRecord[] {
  return cluster.requests.slice(mark).filter((r) => r.userAgent?.startsWith(agent));
}

function impersonation(record: RequestRecord): Record<string, string | string[] | undefined> {
  return Object.fromEntries(Object.entries(record.headers).filter(([key]) => key.startsWith('impersonate-')).map(([k, v]) => [k, v]).sort());
}

async function both(kubeconfig: string, kubectlArgs: string[], meshfedArgs: string[] = [], env: Record<string, string> = {}) {
  let mark = cluster.requests.length;
  const kubectl = await runKubectl(['get', 'configmaps', '-A', '-l', SELECTOR, ...kubectlArgs], { kubeconfig, cacheDir: mkdtempSync(join(dir, 'cache-')), env });
  const kubectlRequests = sentBy(mark, 'kubectl/');
  mark = cluster.requests.length;
  const meshfed = await runMeshfed(['status', '--kubeconfig', kubeconfig, ...meshfedArgs], { env: { KUBECACHEDIR: mkdtempSync(join(dir, 'cache-')), ...env } });
  const meshfedRequests = sentBy(mark, 'kubectl-meshfed/');
  return { kubectl, meshfed, kubectlRequests, meshfedRequests };
}

test.serial('impersonation from the kubeconfig (as, as-groups, as-uid, as-user-extra): the same headers as kubectl, acting as the impersonated user', async (t) => {
  const kubeconfig = kubeconfigWith({
    token: 'alice-token', as: 'bob', 'as-groups': ['team-a', 'team-b'], 'as-uid': '1234',
    'as-user-extra': { scopes: ['view', 'edit'], 'example.com/reason': ['debug'] },
  });
  const run = await both(kubeconfig, []);
  t.is(run.kubectl.code, 0, run.kubectl.stderr);
  t.is(run.meshfed.code, 0, run.meshfed.stderr);
  const list = (records: RequestRecord[]) => records.find((r) => r.path === '/api/v1/configmaps' && r.query.labelSelector === SELECTOR);
  const fromKubectl = list(run.kubectlRequests);
  const fromMeshfed = list(run.meshfedRequests);
  t.truthy(fromKubectl, 'kubectl listed ConfigMaps across namespaces by the label');
  t.truthy(fromMeshfed, 'meshfed listed ConfigMaps across namespaces by the same route and label selector');
  t.deepEqual(impersonation(fromMeshfed!), impersonation(fromKubectl!));
  t.like(impersonation(fromMeshfed!), { 'impersonate-extra-scopes': 'view, edit', 'impersonate-group': 'team-a, team-b', 'impersonate-uid': '1234', 'impersonate-user': 'bob' });
  t.is(Object.keys(impersonation(fromMeshfed!)).length, 5, 'the extra with a "/" in its key is sent too, escaped as client-go escapes it');
  t.is(fromMeshfed!.headers.authorization, fromKubectl!.headers.authorization);
  for (const record of [...run.kubectlRequests, ...run.meshfedRequests]) t.is(record.user, 'bob', `${record.method} ${record.path} acted as bob`);
  // client-go's shape: <command>/<version> (<os>/<arch>) <name>/<commit>.
  const shape = /^[\w.-]+\/v?[\w.+-]+ \(\w+\/\w+\) [\w.-]+\/[\w.+-]+$/;
  t.regex(fromKubectl!.userAgent ?? '', shape);
  t.regex(fromMeshfed!.userAgent ?? '', shape);
});

test.serial('--as, --as-group, --as-uid override the kubeconfig as they do for kubectl', async (t) => {
  const kubeconfig = kubeconfigWith({ token: 'alice-token', as: 'bob', 'as-groups': ['team-a'] });
  const flags = ['--as', 'carol', '--as-group', 'g1', '--as-group', 'g2', '--as-uid', '42'];
  const run = await both(kubeconfig, flags, flags);
  t.is(run.kubectl.code, 0, run.kubectl.stderr);
  t.is(run.meshfed.code, 0, run.meshfed.stderr);
  t.deepEqual(impersonation(run.meshfedRequests[0]!), impersonation(run.kubectlRequests.find((r) => r.path === '/api/v1/configmaps')!));
  t.deepEqual(impersonation(run.meshfedRequests[0]!), { 'impersonate-group': 'g1, g2', 'impersonate-uid': '42', 'impersonate-user': 'carol' });
  const groupsAlone = await runMeshfed(['status', '--kubeconfig', kubeconfigWith({ token: 'alice-token' }), '--as-group', 'g1']);
  t.is(groupsAlone.code, 2, 'a group without a user to impersonate is refused, as kubectl refuses it');
  t.regex(groupsAlone.stderr, /requesting uid, groups or user-extra without impersonating a user/);
});

test.serial('--as on import and unimport impersonates, as on every command and as kubectl\'s: the same headers, acting as that user', async (t) => {
  const kubeconfig = kubeconfigWith({ token: 'alice-token' });
  // dave is a consumer operator (the documented role, in namespace default); alice acts as him.
  await bindRole(world, cluster, 'consumer', 'dave', { namespaces: ['default'] });
  const flags = ['--as', 'dave', '--as-group', 'g1', '--as-uid', '42'];
  let mark = cluster.requests.length;
  const kubectl = await runKubectl(['get', 'configmaps', '-A', '-l', SELECTOR, ...flags], { kubeconfig, cacheDir: mkdtempSync(join(dir, 'cache-')) });
  t.is(kubectl.code, 0, kubectl.stderr);
  const expected = impersonation(sentBy(mark, 'kubectl/').find((r) => r.path === '/api/v1/configmaps')!);
  t.deepEqual(expected, { 'impersonate-group': 'g1', 'impersonate-uid': '42', 'impersonate-user': 'dave' });
  const runs: Array<[string, string[]]> = [
    // Step 1 of the three-step flow, planned only: it reads the consumer cluster.
    ['import', ['import', '--context', 'c1', '-n', 'default', '--from', 'production', '--export', 'production/db/postgres', '--request-out', join(dir, 'request.yaml'), '--dry-run']],
    ['unimport', ['unimport', 'myreviews', '--context', 'c1', '-n', 'default']],
  ];
  for (const [command, args] of runs) {
    mark = cluster.requests.length;
    const run = await runMeshfed([...args, '--kubeconfig', kubeconfig, ...flags], { env: { KUBECACHEDIR: mkdtempSync(join(dir, 'cache-')) } });
    const sent = sentBy(mark, 'kubectl-meshfed/');
    t.true(sent.length > 0, `${command} read the cluster: ${run.stderr}`);
    for (const record of sent) {
      t.deepEqual(impersonation(record), expected, `${command}: ${record.method} ${record.path} impersonates as kubectl does`);
      t.is(record.user, 'dave', `${command}: ${record.method} ${record.path} acted as dave`);
    }
    // Acting as dave, the import plans its request; the unimport finds no import of that name (--as is not taken
    // as the import's name).
    if (command === 'import') t.is(run.code, 0, run.stderr);
    else t.regex(run.stderr, /import default\/myreviews does not exist/);
  }
  const removed = await runMeshfed(['status', '--kubeconfig', kubeconfig, '--as-user', 'dave']);
  t.is(removed.code, 2, 'kubectl has no --as-user, nor has meshfed any more');
  t.regex(removed.stderr, /unknown flag: --as-user/);
});

test.serial('a user who may not impersonate is refused by the API server for both, naming the impersonation', async (t) => {
  const kubeconfig = kubeconfigWith({ token: 'mallory-token', as: 'bob' });
  const run = await both(kubeconfig, []);
  t.not(run.kubectl.code, 0);
  t.regex(run.kubectl.stderr, /Forbidden/);
  t.is(run.meshfed.code, 1);
  t.regex(run.meshfed.stderr, /may not act as the user it impersonates: users "bob" is forbidden: User "mallory" cannot impersonate resource "users"/);
  t.deepEqual(impersonation(run.meshfedRequests[0]!), impersonation(run.kubectlRequests[0]!));
});

test.serial('tls-server-name: both verify the serving certificate against that name, not the address', async (t) => {
  const good = await both(kubeconfigWith({ token: 'alice-token', as: 'bob' }, { 'tls-server-name': 'kubernetes.default.svc' }), []);
  t.is(good.kubectl.code, 0, good.kubectl.stderr);
  t.is(good.meshfed.code, 0, good.meshfed.stderr);
  const bad = await both(kubeconfigWith({ token: 'alice-token', as: 'bob' }, { 'tls-server-name': 'not-the-apiserver.example' }), []);
  t.not(bad.kubectl.code, 0);
  t.regex(bad.kubectl.stderr, /certificate/);
  t.is(bad.meshfed.code, 1);
  t.regex(bad.meshfed.stderr, /TLS certificate is not valid/);
});

test.serial('proxy-url: both tunnel through the proxy with CONNECT; HTTPS_PROXY is not used for a loopback server, as Go decides', async (t) => {
  const proxy = await startConnectProxy();
  try {
    const target = new URL(cluster.server).host;
    const run = await both(kubeconfigWith({ token: 'alice-token', as: 'bob' }, { 'proxy-url': proxy.url }), []);
    t.is(run.kubectl.code, 0, run.kubectl.stderr);
    t.is(run.meshfed.code, 0, run.meshfed.stderr);
    t.true(proxy.connects.filter((c) => c === target).length >= 2, `kubectl and meshfed both connected through the proxy: ${proxy.connects.join(', ')}`);
    const before = proxy.connects.length;
    const env = { HTTPS_PROXY: proxy.url, NO_PROXY: '' };
    const direct = await both(kubeconfigWith({ token: 'alice-token', as: 'bob' }), [], [], env);
    t.is(direct.kubectl.code, 0, direct.kubectl.stderr);
    t.is(direct.meshfed.code, 0, direct.meshfed.stderr);
    t.is(proxy.connects.length, before, 'neither proxies a loopback server from the environment');
  } finally {
    await proxy.close();
  }
});

test('HTTPS_PROXY and NO_PROXY choose the proxy as Go does', (t) => {
  const env = { HTTPS_PROXY: 'http://proxy.corp:3128', NO_PROXY: '.internal,10.0.0.0/8,api.example.com:6443' };
  t.is(proxyFor(new URL('https://api.example.org:6443'), undefined, env)?.host, 'proxy.corp:3128');
  t.is(proxyFor(new URL('https://k8s.internal:6443'), undefined, env), undefined);
  t.is(proxyFor(new URL('https://10.1.2.3:6443'), undefined, env), undefined);
  t.is(proxyFor(new URL('https://api.example.com:6443'), undefined, env), undefined);
  t.is(proxyFor(new URL('https://api.example.com:443'), undefined, env)?.host, 'proxy.corp:3128', 'a NO_PROXY entry with a port excludes that port only');
  t.is(proxyFor(new URL('https://127.0.0.1:6443'), undefined, env), undefined);
  t.is(proxyFor(new URL('https://api.example.org'), 'http://other:8080', env)?.host, 'other:8080', 'proxy-url wins over the environment');
  t.true(noProxyMatches('*', 'anything', '443'));
  t.false(noProxyMatches('example.com', 'notexample.com', '443'));
});

test.serial('an exec plugin with a relative command runs from the kubeconfig\'s directory, its stderr reaching the user, for both', async (t) => {
  const where = mkdtempSync(join(dir, 'exec-'));
  mkdirSync(join(where, 'bin'));
  const plugin = join(where, 'bin', 'login.sh');
  writeFileSync(plugin, [
    '#!/bin/sh',
    'echo "To sign in, open https://login.example/device and enter the code WDJB-MJHT" >&2',
    'echo \'{"apiVersion":"client.authentication.k8s.io/v1beta1","kind":"ExecCredential","status":{"token":"alice-token"}}\'',
    '',
  ].join('\n'));
  chmodSync(plugin, 0o755);
  const kubeconfig = kubeconfigWith({
    as: 'bob',
    exec: { apiVersion: 'client.authentication.k8s.io/v1beta1', command: './bin/login.sh', interactiveMode: 'Never' },
  }, {}, where);
  const run = await both(kubeconfig, []);
  t.is(run.kubectl.code, 0, run.kubectl.stderr);
  t.is(run.meshfed.code, 0, run.meshfed.stderr);
  t.regex(run.kubectl.stderr, /enter the code WDJB-MJHT/);
  t.regex(run.meshfed.stderr, /enter the code WDJB-MJHT/);
  t.is(run.meshfedRequests[0]!.headers.authorization, 'Bearer alice-token');
  t.is(run.meshfedRequests[0]!.user, 'bob');
});
