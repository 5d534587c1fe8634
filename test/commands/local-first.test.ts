/**
 * Local steps before cluster writes, and the permissions preflight, as a user meets them: an output file that cannot
 * be written or an input file that cannot be read stops the command before its first write; re-keying an import
 * (a new request with --force, then its bundle) completes onto that import; a user whose RBAC lacks a permission the
 * plan needs gets every missing permission listed, with the rules to add, and nothing is written.
 */
import test from 'ava';
import { mkdtempSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli, writeKubeconfig } from '../support/cli.js';
import type { EmulatedCluster, RequestRecord } from '../support/emulator/index.js';
import { startFederationWorld, untilAnswered, type FederationWorld } from '../support/federation.js';
import { grant } from '../support/rbac.js';

let fed: FederationWorld;
const dir = mkdtempSync(join(tmpdir(), 'meshfed-local-first-'));
const file = (name: string) => join(dir, name);

test.before(async () => {
  fed = await startFederationWorld({ seed: 'federation', clusters: [{ name: 'operations' }, { name: 'staging' }, { name: 'production' }] });
  const exported = await fed.run(['export', '--context', 'production', '-n', 'db', '--service', 'postgres', '--port', '5432']);
  if (exported.code !== 0) throw new Error(exported.stderr);
});

test.after.always(async () => {
  await fed?.stop();
});

/** Requests that change something (SelfSubjectAccessReviews only ask). */
function changes(records: RequestRecord[] | undefined): string[] {
  return (records ?? []).filter((r) => !r.path.endsWith('/selfsubjectaccessreviews')).map((r) => `${r.method} ${r.path}`);
}

test.serial('import --request-out into a directory that does not exist writes nothing, and says which path', async (t) => {
  const run = await fed.runCounting(['import', '--context', 'operations', '-n', 'vault', '--from', 'production', '--export', 'db/postgres', '--request-out', '/nonexistent/dir/r.yaml']);
  t.is(run.code, 1, run.stderr);
  t.regex(run.stderr, /--request-out \/nonexistent\/dir\/r\.yaml/);
  t.regex(run.stderr, /directory \/nonexistent\/dir does not exist/);
  t.deepEqual(changes(run.writes.operations), [], 'no pending key Secret is left behind');
  t.is(fed.world.cluster('operations').get('v1', 'Secret', 'istio-meshfed', 'mf-bind-production-db-postgres'), undefined);
});

test.serial('admit --bundle-out into a directory that does not exist, or an unreadable request, writes nothing', async (t) => {
  const request = await fed.run(['import', '--context', 'staging', '-n', 'apps', '--from', 'production', '--export', 'db/postgres', '--request-out', file('staging-request.yaml')]);
  t.is(request.code, 0, request.stderr);
  const admit = await fed.runCounting(['admit', '--context', 'production', '--request', file('staging-request.yaml'), '--bundle-out', '/nonexistent/dir/b.yaml']);
  t.is(admit.code, 1, admit.stderr);
  t.regex(admit.stderr, /--bundle-out \/nonexistent\/dir\/b\.yaml/);
  t.deepEqual(changes(admit.writes.production), []);

  const missing = await fed.runCounting(['admit', '--context', 'production', '--request', file('absent.yaml'), '--bundle-out', file('b.yaml')]);
  t.is(missing.code, 1);
  t.regex(missing.stderr, /cannot read --request .*absent\.yaml: no such file/);
  t.deepEqual(changes(missing.writes.production), []);

  writeFileSync(file('garbage.yaml'), 'kind: [not a request');
  const bundle = await fed.runCounting(['import', '--context', 'staging', '-n', 'apps', '--bundle', file('garbage.yaml')]);
  t.is(bundle.code, 1);
  t.deepEqual(changes(bundle.writes.staging), []);
  t.false(existsSync(file('b.yaml')));
});

test.serial('re-keying (--request-out --force, admit, import --bundle) completes onto the import it re-keys', async (t) => {
  const operations = fed.world.cluster('operations');
  const steps = [
    ['import', '--context', 'operations', '-n', 'vault', '--from', 'production', '--export', 'db/postgres', '--request-out', file('r1.yaml')],
    ['admit', '--context', 'production', '--request', file('r1.yaml'), '--bundle-out', file('b1.yaml')],
    ['import', '--context', 'operations', '-n', 'vault', '--bundle', file('b1.yaml'), '--name', 'pg', '--ca-fingerprint', await fed.caFingerprint('production')],
  ];
  for (const step of steps) {
    const result = await fed.run(step);
    t.is(result.code, 0, `${step.join(' ')}: ${result.stderr}`);
  }
  const before = (await fed.run(['status', '--context', 'operations', '-o', 'json'])).stdout;
  const importsBefore = (JSON.parse(before) as { imports: unknown[] }).imports;

  const rekey = [
    ['import', '--context', 'operations', '-n', 'vault', '--from', 'production', '--export', 'db/postgres', '--request-out', file('r2.yaml'), '--force'],
    ['admit', '--context', 'production', '--request', file('r2.yaml'), '--bundle-out', file('b2.yaml')],
    ['import', '--context', 'operations', '-n', 'vault', '--bundle', file('b2.yaml')],
  ];
  for (const step of rekey) {
    const result = await fed.run(step);
    t.is(result.code, 0, `${step.join(' ')}: ${result.stderr}`);
  }
  const after = JSON.parse((await fed.run(['status', '--context', 'operations', '-o', 'json'])).stdout) as { imports: unknown[] };
  t.is(after.imports.length, importsBefore.length, 'no second import');
  t.truthy(operations.get('v1', 'Service', 'vault', 'pg'), 'the re-keyed import keeps its local name');
  t.is(operations.get('v1', 'Service', 'vault', 'postgres'), undefined, 'no import under the export name appeared');
  const binding = operations.get('v1', 'Secret', 'istio-meshfed', 'mf-bind-production-db-postgres')!;
  const bundle2 = readFileSync(file('b2.yaml'), 'utf8');
  const certificate = Buffer.from((binding.data as Record<string, string>)['tls.crt']!, 'base64').toString('utf8').trim();
  t.true(bundle2.includes(certificate.split('\n')[1]!), 'the binding holds the renewed certificate');
  const verify = await fed.run(['verify', '--context', 'operations', '-n', 'vault', '--name', 'pg', '--from', 'production']);
  t.is(verify.code, 0, verify.stdout + verify.stderr);
});

/** Every verb on every resource of the groups meshfed writes, except `patch destinationrules` in istio-meshfed. */
function allButPatchingDestinationRules(cluster: EmulatedCluster): string {
  cluster.addToken('limited-token', 'limited');
  grant(cluster, 'limited', { user: 'limited' }, [
    { verbs: ['*'], apiGroups: ['', 'apps', 'rbac.authorization.k8s.io', 'security.istio.io', 'apiextensions.k8s.io'], resources: ['*'] },
    { verbs: ['*'], apiGroups: ['networking.istio.io'], resources: ['gateways', 'virtualservices', 'serviceentries', 'sidecars', 'workloadentries'] },
    { verbs: ['get', 'list', 'watch', 'create', 'update', 'delete'], apiGroups: ['networking.istio.io'], resources: ['destinationrules'] },
  ]);
  for (const namespace of ['vault', 'apps'].filter((ns) => cluster.get('v1', 'Namespace', undefined, ns))) {
    grant(cluster, 'limited-patch-destinationrules', { user: 'limited' }, [{ verbs: ['patch'], apiGroups: ['networking.istio.io'], resources: ['destinationrules'] }], namespace);
  }
  return 'limited-token';
}

test.serial('preflight: a user who may not patch DestinationRules in istio-meshfed gets the missing permission and the rule to add; nothing is written', async (t) => {
  const operations = fed.world.cluster('operations');
  const production = fed.world.cluster('production');
  const token = allButPatchingDestinationRules(operations);
  const kubeconfig = writeKubeconfig([
    { name: 'production', server: production.server, caPem: production.caPem, token: production.token },
    { name: 'operations', server: operations.server, caPem: operations.caPem, token, user: 'limited' },
  ], 'operations');
  const exported = await fed.run(['export', '--context', 'production', '-n', 'db', '--service', 'postgres', '--port', '5432', '--name', 'pf']);
  t.is(exported.code, 0, exported.stderr);
  const marks = new Map([operations, production].map((c) => [c, c.requests.length]));
  const run = await runCli(['import', '--context', 'operations', '-n', 'vault', '--from', 'production', '--export', 'db/pf', '--name', 'pf', '--kubeconfig', kubeconfig]);
  t.is(run.code, 1, run.stderr);
  t.regex(run.stderr, /missing permission in context "operations"; nothing was written/);
  t.regex(run.stderr, /- patch destinationrules\.networking\.istio\.io in namespace "istio-meshfed" \(context "operations", user "limited"\)/);
  t.regex(run.stderr, /a Role in namespace istio-meshfed, bound to user "limited", with\n\s+- apiGroups: \["networking\.istio\.io"\]\n\s+resources: \["destinationrules"\]\n\s+verbs: \["patch"\]/);
  for (const cluster of [operations, production]) {
    const sent = cluster.requests.slice(marks.get(cluster)).filter((r) => r.method !== 'GET' && !r.path.endsWith('/selfsubjectaccessreviews'));
    t.deepEqual(sent.map((r) => `${r.method} ${r.path}`), [], `nothing written in ${cluster.name}`);
  }
});

test.serial('preflight: a cluster whose access reviews keep failing stops the command before any write, naming the context and the error; one failure is retried', async (t) => {
  const production = fed.world.cluster('production');
  const reviews = '/apis/authorization.k8s.io/v1/selfsubjectaccessreviews';
  const args = ['export', '--context', 'production', '-n', 'db', '--service', 'postgres', '--port', '5432', '--name', 'unasked'];
  production.faults.add({ method: 'POST', path: reviews, status: 503, times: 1000 });
  try {
    const run = await fed.runCounting(args);
    t.is(run.code, 1, run.stderr);
    t.regex(run.stderr, /could not check permissions in context "production" before writing \(SelfSubjectAccessReview\): create selfsubjectaccessreviews\.authorization\.k8s\.io failed \(context "production"\): The server is currently unable to handle the request \(5 attempts\); nothing was written/);
    t.deepEqual(changes(run.writes.production), [], 'nothing written');
  } finally {
    await untilAnswered(fed.world);
    production.faults.clear();
  }
  production.faults.add({ method: 'POST', path: reviews, status: 503 });
  const again = await fed.runCounting([...args, '-v']);
  t.is(again.code, 0, again.stderr);
  t.regex(again.stderr, /retrying POST \/apis\/authorization\.k8s\.io\/v1\/selfsubjectaccessreviews \(context "production"\) after 503/);
});

test.serial('preflight cost: one SelfSubjectAccessReview per (verb, resource, namespace) written, none on a re-run', async (t) => {
  const production = fed.world.cluster('production');
  const staging = fed.world.cluster('staging');
  /** Runs a command; its SelfSubjectAccessReviews and writes, per cluster, from the request logs. */
  const measure = async (args: string[]) => {
    const marks = new Map([production, staging].map((c) => [c.name, c.requests.length]));
    const run = await fed.runCounting(args);
    t.is(run.code, 0, run.stderr);
    const reviews = Object.fromEntries([production, staging].map((c) => [c.name, c.requests.slice(marks.get(c.name))
      .filter((r) => r.method === 'POST' && r.path.endsWith('/selfsubjectaccessreviews')).length]));
    const writes = Object.fromEntries(Object.entries(run.writes).map(([name, records]) => [name, records.length]));
    return { reviews, writes };
  };
  const exported = await measure(['export', '--context', 'production', '-n', 'db', '--service', 'postgres', '--port', '5432', '--name', 'costly']);
  const imported = await measure(['import', '--context', 'staging', '-n', 'apps', '--from', 'production', '--export', 'db/costly']);
  t.log(`export: ${JSON.stringify(exported)}`);
  t.log(`import: ${JSON.stringify(imported)}`);
  // A new object needs create and patch (server-side apply that creates), a changed one patch: at most two per write.
  t.true(exported.reviews.production! > 0 && exported.reviews.production! <= 2 * exported.writes.production!);
  t.true(imported.reviews.staging! > 0 && imported.reviews.staging! <= 2 * imported.writes.staging!);
  t.true(imported.reviews.production! > 0 && imported.reviews.production! <= 2 * imported.writes.production!);
  const again = await measure(['import', '--context', 'staging', '-n', 'apps', '--from', 'production', '--export', 'db/costly']);
  t.deepEqual(again.reviews, { production: 0, staging: 0 }, 'nothing to write, nothing to check');
});
