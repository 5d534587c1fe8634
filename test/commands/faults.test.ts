/**
 * The fault suite: a flaky API server during `export` and `import --from`. Each fault kind is injected at the first,
 * a middle and the last write of a clean run (positions counted from the emulator's request log). Transient faults
 * (one 503, one 500, one 429 with Retry-After, one connection reset, one attempt that times out) are survived: exit
 * 0, each retry visible with -v, and the end state is the clean run's (for import, `verify` passes too). A persistent
 * 503 fails with exit 1, a message naming the object and telling to run again; the re-run without faults converges
 * to the clean run's objects. One world per command, reset between cases. The commands run in this process (the
 * retries are the API client's, not the process's): the launcher adds nothing here but its start-up time.
 */
import test, { type ExecutionContext } from 'ava';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { EmulatedCluster, Fault, KubeObject, RequestRecord, World } from '../support/emulator/index.js';
import { BoundClock, ofRecord } from '../support/clock.js';
import { MESHFED_KINDS, startFederationWorld, untilAnswered, type FederationWorld } from '../support/federation.js';
import { FEDERATION_CA_CERTIFICATES } from '../../src/federation/naming.js';

const EXPORT = ['export', '--context', 'production', '-n', 'db', '--service', 'postgres', '--port', '5432'];
const IMPORT = ['import', '--context', 'operations', '-n', 'vault', '--from', 'production', '--export', 'db/postgres'];
const VERIFY = ['verify', '--context', 'operations', '-n', 'vault', '--name', 'postgres', '--from', 'production', '--no-probe'];
const CLUSTERS = [{ name: 'operations' }, { name: 'staging' }, { name: 'production' }];

/** A fault kind: what the server does to the chosen write, and what the user sees. */
interface FaultKind {
  name: string;
  fault: Omit<Fault, 'path' | 'method'>;
  /**
   * The server holds the write unanswered: the client's request timeout runs out (on the test's clock, as soon as
   * the server holds it), the client sends the write again, and the server applies the first copy only once it has
   * answered the retry, as a slow server whose first copy lands last.
   */
  stall?: boolean;
  transient: boolean;
  /** What -v says about the retry. */
  retried: RegExp;
}

const KINDS: FaultKind[] = [
  { name: 'one 503', fault: { status: 503 }, transient: true, retried: /after 503 Service Unavailable \(attempt 2\/5/ },
  { name: 'one 500', fault: { status: 500 }, transient: true, retried: /after 500 Internal Server Error \(attempt 2\/5/ },
  { name: 'one 429 with Retry-After', fault: { status: 429, retryAfter: 1 }, transient: true, retried: /after 429 Too Many Requests, Retry-After 1s \(attempt 2\/5, waiting 1s\)/ },
  // A reset on a kept-alive connection is sent again at once; on a fresh one, after a backoff: either way, visible.
  { name: 'one connection reset', fault: { drop: true }, transient: true, retried: /(after connection reset \(attempt 2\/5|at once: the server had closed the kept-alive connection)/ },
  // No answer within the request timeout (the default, 30s; verify's probe pod requests, 10s): the client sends the write again.
  { name: 'one timeout, then OK', fault: {}, stall: true, transient: true, retried: /after no answer within (30|10)s \(--request-timeout\) \(attempt 2\/5/ },
  { name: 'a persistent 503', fault: { status: 503, times: 1000 }, transient: false, retried: /after 503 Service Unavailable \(attempt 5\/5/ },
];

/** The fault of `kind` for the requests of `method` and `path` to `cluster`; a stall runs the client's bound out on `clock`. */
function faultOf(kind: FaultKind, cluster: EmulatedCluster, method: string, path: string | RegExp, clock: BoundClock): Fault {
  if (!kind.stall) return { method, path, ...kind.fault };
  return {
    method,
    path,
    held: (record) => clock.elapse(ofRecord(cluster.server, record)),
    hold: cluster.nextAnswer(method, path),
  };
}

/**
 * meshfed's objects in a cluster, as they would compare between two clean runs: key material differs per run (only
 * the Secret keys are compared), and so do the addresses and ports the server allocates.
 */
function managedState(world: World, cluster: string): Record<string, unknown> {
  const c = world.cluster(cluster);
  const state: Record<string, unknown> = {};
  for (const [apiVersion, kind] of MESHFED_KINDS) {
    for (const object of c.list(apiVersion, kind)) {
      if (object.metadata.labels?.['app.kubernetes.io/managed-by'] !== 'kubectl-meshfed') continue;
      const { metadata, status: _status, ...rest } = object as KubeObject & { status?: unknown };
      const content = JSON.parse(JSON.stringify(rest)) as Record<string, unknown>;
      // The federation CA's certificates (beside the records, for readers without access to its key) and the gateways'
      // (beside their Secrets) are new each run too; serverCertificateChains and publishedAsStored check what they are.
      if (kind === 'Secret' || metadata.name === FEDERATION_CA_CERTIFICATES || metadata.name.endsWith('.crt')) content.data = Object.keys((content.data ?? {}) as object).sort();
      // An import request's nonce and expiry (and its published copy, which says them) are new each run too:
      // requestsPublishedAsStored checks what they are.
      if (metadata.name.endsWith('.request')) content.data = Object.keys((content.data ?? {}) as object).sort();
      const annotations = metadata.annotations && Object.fromEntries(Object.entries(metadata.annotations)
        .map(([k, v]) => [k, /^meshfed\.io\/request-(nonce|expires)$/.test(k) ? '<per run>' : v]));
      if (kind === 'Service') {
        const spec = content.spec as { clusterIP?: string; clusterIPs?: string[]; ports?: Array<{ nodePort?: number }> };
        delete spec.clusterIP;
        delete spec.clusterIPs;
        for (const port of spec.ports ?? []) delete port.nodePort;
      }
      state[`${kind} ${metadata.namespace ?? ''}/${metadata.name}`] = { labels: metadata.labels, annotations, ...content };
    }
  }
  return state;
}

/** The objects whose state differs from `expected` (per cluster), for a failure's message. */
function differences(world: World, expected: Record<string, Record<string, unknown>>): string[] {
  return world.clusters.flatMap((c) => {
    const now = managedState(world, c.name);
    const was = expected[c.name] ?? {};
    return [...new Set([...Object.keys(now), ...Object.keys(was)])].filter((key) => JSON.stringify(now[key]) !== JSON.stringify(was[key]))
      .map((key) => `${c.name} ${key}: ${JSON.stringify(was[key]) ?? 'absent'} → ${JSON.stringify(now[key]) ?? 'absent'}`.slice(0, 600));
  });
}

/** The provider's server certificate chains to the federation CA stored beside it (key material is per run). */
function serverCertificateChains(world: World): boolean {
  const c = world.cluster('production');
  const pem = (name: string, namespace: string, key: string) => Buffer.from((c.get('v1', 'Secret', namespace, name)?.data as Record<string, string>)[key]!, 'base64').toString('utf8');
  const ca = new X509Certificate(pem('meshfed-federation-ca', 'meshfed-ca', 'ca.crt'));
  const server = new X509Certificate(pem('mf-export-db-postgres', 'istio-meshfed', 'tls.crt'));
  const published = (c.get('v1', 'ConfigMap', 'istio-meshfed', FEDERATION_CA_CERTIFICATES)?.data as Record<string, string> | undefined)?.['ca.crt'];
  return server.verify(ca.publicKey) && published !== undefined && new X509Certificate(published).fingerprint256 === ca.fingerprint256;
}

/**
 * Every gateway certificate ConfigMap of meshfed's (`<secret>.crt`) publishes what its Secret holds, without the key:
 * a fault between the two writes leaves no stale copy once the command has converged.
 */
function publishedAsStored(world: World): boolean {
  for (const c of world.clusters) {
    for (const copy of c.list('v1', 'ConfigMap').filter((o) => o.metadata.name.endsWith('.crt') && o.metadata.name !== FEDERATION_CA_CERTIFICATES)) {
      const secret = c.get('v1', 'Secret', copy.metadata.namespace, copy.metadata.name.slice(0, -'.crt'.length));
      const stored = Object.fromEntries(Object.entries((secret?.data ?? {}) as Record<string, string>).map(([k, v]) => [k, Buffer.from(v, 'base64').toString('utf8')]));
      const data = (copy.data ?? {}) as Record<string, string>;
      if (!secret || JSON.stringify(Object.keys(data).sort()) !== JSON.stringify(['ca.crt', 'tls.crt'])) return false;
      if (data['tls.crt'] !== stored['tls.crt'] || data['ca.crt'] !== stored['ca.crt'] || /PRIVATE KEY/.test(JSON.stringify(data))) return false;
    }
  }
  return true;
}

/**
 * Every published import request of meshfed's (`<secret>.request`) says what its Secret's request is (the same nonce,
 * export, namespace and expiry) with its labels, and holds no key; and every pending request is published.
 */
function requestsPublishedAsStored(world: World): boolean {
  for (const c of world.clusters) {
    const copies = c.list('v1', 'ConfigMap').filter((o) => o.metadata.name.endsWith('.request'));
    const pending = c.list('v1', 'Secret').filter((o) => o.metadata.annotations?.['meshfed.io/request-nonce']);
    if (copies.length !== pending.length) return false;
    for (const copy of copies) {
      const secret = pending.find((o) => o.metadata.namespace === copy.metadata.namespace && `${o.metadata.name}.request` === copy.metadata.name);
      const text = (copy.data as Record<string, string> | undefined)?.['request.json'] ?? '';
      if (!secret || /PRIVATE KEY/.test(text) || JSON.stringify(copy.metadata.labels) !== JSON.stringify(secret.metadata.labels)) return false;
      const published = JSON.parse(text) as { export: { providerClusterId: string; namespace: string; exportName: string }; namespace?: string; expiresAt?: string; nonce: string };
      const a = secret.metadata.annotations!;
      const e = published.export;
      if (published.nonce !== a['meshfed.io/request-nonce'] || published.expiresAt !== a['meshfed.io/request-expires'] || published.namespace !== a['meshfed.io/request-namespace']
        || `${e.providerClusterId}/${e.namespace}/${e.exportName}` !== a['meshfed.io/request-export']) return false;
    }
  }
  return true;
}

/** Writes meshfed sent since `marks`, in the order the servers received them (access reviews ask, they write nothing). */
function writesSince(world: World, marks: Map<string, number>): Write[] {
  return world.clusters.flatMap((c) => c.requests.slice(marks.get(c.name)).map((r) => ({ ...r, cluster: c.name })))
    .filter((r) => r.userAgent?.startsWith('kubectl-meshfed') && ['POST', 'PUT', 'PATCH', 'DELETE'].includes(r.method) && r.query.dryRun === undefined)
    .filter((r) => !r.path.endsWith('/selfsubjectaccessreviews'))
    .sort((a, b) => a.time.getTime() - b.time.getTime());
}

function marks(world: World): Map<string, number> {
  return new Map(world.clusters.map((c) => [c.name, c.requests.length]));
}

/** Waits until no request is pending (a delayed one may still write after its client gave up), then for controllers. */
async function settle(world: World): Promise<void> {
  await untilAnswered(world);
  for (const c of world.clusters) c.faults.clear();
  await world.waitIdle();
}

/** Figures of one group, reported at the end. */
interface Figures {
  injected: number;
  survived: number;
  failedCleanly: number;
  converged: number;
  /** Write positions each fault kind was injected at. */
  positions: number;
}

type Write = RequestRecord & { cluster: string };

/** The first, a middle and the last write of a clean run. */
function firstMiddleLast(writes: Write[]): Array<[string, Write]> {
  return [['first', writes[0]!], ['middle', writes[Math.floor(writes.length / 2)]!], ['last', writes[writes.length - 1]!]];
}

/**
 * Runs every fault kind at every position of `command`'s writes. `reset` puts the world back as it was before the
 * clean run; `check` asserts the end state (returns false when it is not the clean one).
 */
async function faultMatrix(
  t: ExecutionContext, fed: FederationWorld, command: string[], reset: () => Promise<void>, check: () => Promise<boolean>,
  positionsOf: (writes: Write[]) => Array<[string, Write]> = firstMiddleLast, minWrites = 10,
): Promise<Figures> {
  const world = fed.world;
  const before = marks(world);
  const clean = await fed.run(command);
  t.is(clean.code, 0, clean.stderr);
  const writes = writesSince(world, before);
  t.true(writes.length >= minWrites, `a clean run writes enough to pick positions (${writes.length})`);
  const positions = positionsOf(writes);
  await settle(world);
  const cleanState = Object.fromEntries(world.clusters.map((c) => [c.name, managedState(world, c.name)]));
  t.true(await check(), 'the clean run passes the end-state check');
  const converged = () => world.clusters.every((c) => JSON.stringify(managedState(world, c.name)) === JSON.stringify(cleanState[c.name]));

  const figures: Figures = { injected: 0, survived: 0, failedCleanly: 0, converged: 0, positions: positions.length };
  const clock = new BoundClock();
  for (const kind of KINDS) {
    for (const [position, write] of positions) {
      const label = `${kind.name} at the ${position} write (${write.method} ${write.path}, context ${write.cluster})`;
      await reset();
      const cluster = world.cluster(write.cluster);
      cluster.faults.add(faultOf(kind, cluster, write.method, write.path, clock));
      figures.injected += 1;
      const run = await fed.run([...command, '-v'], { session: { boundTimer: clock.timer } });
      await settle(world);
      t.regex(run.stderr, kind.retried, `${label}: the retry is visible with -v`);
      if (kind.transient) {
        t.is(run.code, 0, `${label}: survived\n${run.stderr}`);
        if (run.code === 0) figures.survived += 1;
      } else {
        t.is(run.code, 1, `${label}: fails`);
        const what = /(\w+) "([^"]+)"(?: in namespace "([^"]+)")? failed \(context "(\w+)"\): .* \(5 attempts\)\n\s+the API server kept failing: run the command again once it is healthy; a re-run applies only what is missing/;
        const match = what.exec(run.stderr);
        t.truthy(match, `${label}: the message names the object and tells to run again\n${run.stderr}`);
        // A create (POST) goes to the collection: its path names the namespace and resource, not the object.
        const names = (m: RegExpExecArray): boolean => (write.method === 'POST'
          ? (m[3] === undefined || write.path.includes(`/namespaces/${m[3]}/`)) && write.path.split('/').pop()!.startsWith(m[1]!.toLowerCase().replace(/y$/, ''))
          : write.path.endsWith(`/${m[2]}`));
        t.true(match !== null && names(match) && match[4] === write.cluster, `${label}: the object named is the one that failed\n${run.stderr}`);
        if (match) figures.failedCleanly += 1;
        const again = await fed.run(command);
        await settle(world);
        t.is(again.code, 0, `${label}: the re-run succeeds\n${again.stderr}`);
      }
      const same = converged();
      const checked = same && await check();
      t.true(same, `${label}: the end state is the clean run's${same ? '' : ` (differs: ${differences(world, cleanState).join('; ')})`}`);
      t.true(checked, `${label}: the end state passes the check`);
      if (same && checked) figures.converged += 1;
    }
  }
  t.is(clock.elapsed.length, KINDS.filter((k) => k.stall).length * positions.length, 'each held attempt was cut on its event, none waited out its bound');
  return figures;
}

function report(t: ExecutionContext, command: string, figures: Figures): void {
  t.log(`${command}: ${figures.injected} faults injected; ${figures.survived} transient survived (exit 0), ${figures.failedCleanly} persistent failed cleanly; ${figures.converged}/${figures.injected} converged to the clean state`);
  t.is(figures.survived, KINDS.filter((k) => k.transient).length * figures.positions);
  t.is(figures.failedCleanly, KINDS.filter((k) => !k.transient).length * figures.positions);
  t.is(figures.converged, figures.injected);
}

let exportWorld: FederationWorld | undefined;
let importWorld: FederationWorld | undefined;

test.after.always(async () => {
  await Promise.all([exportWorld?.stop(), importWorld?.stop()]);
});

test('export survives transient API faults at its first, middle and last write; a persistent one fails cleanly and a re-run converges', async (t) => {
  t.timeout(240_000);
  const fed = exportWorld = await startFederationWorld({ seed: 'federation', clusters: CLUSTERS });
  const production = fed.world.cluster('production');
  const reset = async () => {
    // Everything the export created lives in these two namespaces; deleting one deletes its objects.
    production.delete('v1', 'Namespace', undefined, 'istio-meshfed');
    production.delete('v1', 'Namespace', undefined, 'meshfed-ca');
    await fed.world.waitIdle();
  };
  const figures = await faultMatrix(t, fed, EXPORT, reset, async () => serverCertificateChains(fed.world) && publishedAsStored(fed.world));
  report(t, 'export', figures);
});

test('import --from survives transient API faults at its first, middle and last write (both clusters); a persistent one fails cleanly and a re-run converges', async (t) => {
  t.timeout(240_000);
  const fed = importWorld = await startFederationWorld({ seed: 'federation', clusters: CLUSTERS });
  const exported = await fed.run(EXPORT);
  t.is(exported.code, 0, exported.stderr);
  // The provider's objects the import changes (its admission), as the export left them.
  const production = fed.world.cluster('production');
  const admission = [
    ['v1', 'ConfigMap'], ['security.istio.io/v1beta1', 'AuthorizationPolicy'],
  ].map(([apiVersion, kind]) => {
    const live = production.get(apiVersion!, kind!, 'istio-meshfed', 'mf-export-db-postgres')!;
    const { metadata, status: _status, ...content } = live as KubeObject & { status?: unknown };
    return { ...content, metadata: { name: metadata.name, namespace: metadata.namespace, labels: metadata.labels, annotations: metadata.annotations } } as KubeObject;
  });
  const providerAfterExport = JSON.stringify(managedState(fed.world, 'production'));
  const operations = fed.world.cluster('operations');
  const reset = async () => {
    operations.delete('v1', 'Namespace', undefined, 'istio-meshfed');
    operations.delete('v1', 'Service', 'vault', 'postgres');
    operations.delete('networking.istio.io/v1beta1', 'VirtualService', 'vault', 'mf-import-postgres');
    // Re-applied by meshfed's field manager, as revoke would: the admission's fields go.
    for (const object of admission) production.apply(object, 'kubectl-meshfed');
    await fed.world.waitIdle();
    t.is(JSON.stringify(managedState(fed.world, 'production')), providerAfterExport, 'the reset takes the provider back to the export alone');
  };
  const verifies = async () => {
    const verified = await fed.run(VERIFY);
    if (verified.code !== 0) t.log(verified.stdout, verified.stderr);
    return verified.code === 0 && publishedAsStored(fed.world);
  };
  const figures = await faultMatrix(t, fed, IMPORT, reset, verifies);
  report(t, 'import --from', figures);
});

let removalWorld: FederationWorld | undefined;
let probeWorld: FederationWorld | undefined;

test.after.always(async () => {
  await Promise.all([removalWorld?.stop(), probeWorld?.stop()]);
});

/** The clean run's writes at the first, middle and last position, and every delete of a kind written without a resourceVersion precondition. */
function withUnguardedDeletes(writes: Write[]): Array<[string, Write]> {
  const unguarded = /\/(namespaces|services|serviceaccounts|deployments)\/[^/]+$/;
  const deletes = writes.filter((w) => w.method === 'DELETE' && unguarded.test(w.path));
  return [...firstMiddleLast(writes), ...deletes.map((w): [string, Write] => [`unguarded delete (${w.path.split('/').slice(-2, -1)[0]})`, w])];
}

test('unimport and unexport survive transient API faults at their deletes (those of kinds without a resourceVersion precondition too); a persistent one fails cleanly and a re-run converges', async (t) => {
  t.timeout(900_000);
  const fed = removalWorld = await startFederationWorld({ seed: 'federation', clusters: CLUSTERS });
  for (const args of [EXPORT, IMPORT]) {
    const run = await fed.run(args);
    t.is(run.code, 0, run.stderr);
  }
  const UNIMPORT = ['unimport', '--context', 'operations', '-n', 'vault', '--name', 'postgres'];
  // Imported again before each case (the provider still admits the consumer: unimport does not revoke).
  const reimport = async () => {
    const run = await fed.run(IMPORT);
    t.is(run.code, 0, run.stderr);
    await fed.world.waitIdle();
  };
  const noImportLeft = async () => !fed.managedObjects('operations').some((o) => /vault\/|mf-bind-|-routes/.test(o));
  const unimported = await faultMatrix(t, fed, UNIMPORT, reimport, noImportLeft, withUnguardedDeletes);
  report(t, 'unimport', unimported);
  t.true(unimported.positions > 3, 'the delete of the import\'s Service (no resourceVersion precondition) is a position');

  // With the consumer revoked and gone, the export is removed (its gateway stays) and exported again before each case.
  const revoked = await fed.run(['revoke', '--context', 'production', '-n', 'db', '--name', 'postgres', '--consumer', 'operations']);
  t.is(revoked.code, 0, revoked.stderr);
  const UNEXPORT = ['unexport', '--context', 'production', '-n', 'db', '--name', 'postgres'];
  const reexport = async () => {
    const run = await fed.run(EXPORT);
    t.is(run.code, 0, run.stderr);
    await fed.world.waitIdle();
  };
  const noExportLeft = async () => !fed.managedObjects('production').some((o) => /mf-export-db-postgres/.test(o));
  // The export's own objects and its record: fewer writes than an export, all of them deletes.
  const unexported = await faultMatrix(t, fed, UNEXPORT, reexport, noExportLeft, withUnguardedDeletes, 5);
  report(t, 'unexport', unexported);
});

test('verify: the probe pod\'s create and delete survive transient API faults; a persistent one fails cleanly, leaves no pod it does not name, and a re-run converges', async (t) => {
  t.timeout(480_000);
  const fed = probeWorld = await startFederationWorld({ seed: 'federation', clusters: CLUSTERS });
  for (const args of [EXPORT, IMPORT]) {
    const run = await fed.run(args);
    t.is(run.code, 0, run.stderr);
  }
  const PROBE = ['verify', '--context', 'operations', '-n', 'vault', '--name', 'postgres', '--from', 'production'];
  const operations = fed.world.cluster('operations');
  const probePods = () => operations.list('v1', 'Pod', 'vault').filter((p) => p.metadata.labels?.app === 'meshfed-probe').map((p) => p.metadata.name);
  const clean = await fed.run(PROBE);
  t.is(clean.code, 0, clean.stdout + clean.stderr);
  t.deepEqual(probePods(), [], 'a clean run leaves no probe pod');
  const positions: Array<[string, { method: string; path: string | RegExp }]> = [
    ['create', { method: 'POST', path: '/api/v1/namespaces/vault/pods' }],
    ['delete', { method: 'DELETE', path: /^\/api\/v1\/namespaces\/vault\/pods\/meshfed-probe-[0-9a-f]+$/ }],
  ];
  const figures: Figures = { injected: 0, survived: 0, failedCleanly: 0, converged: 0, positions: positions.length };
  const clock = new BoundClock();
  for (const kind of KINDS) {
    for (const [position, write] of positions) {
      const label = `${kind.name} at the probe pod's ${position} (${write.method})`;
      operations.faults.add(faultOf(kind, operations, write.method, write.path, clock));
      figures.injected += 1;
      const run = await fed.run([...PROBE, '-v'], { session: { boundTimer: clock.timer } });
      await settle(fed.world);
      t.regex(run.stderr, kind.retried, `${label}: the retry is visible with -v`);
      if (kind.transient) {
        t.is(run.code, 0, `${label}: survived\n${run.stdout}${run.stderr}`);
        t.deepEqual(probePods(), [], `${label}: no probe pod is left`);
        if (run.code === 0 && probePods().length === 0) figures.survived += 1;
      } else if (position === 'create') {
        // The probe could not run: its check fails with the API server's error; no pod exists.
        t.is(run.code, 3, `${label}: verify fails\n${run.stdout}${run.stderr}`);
        const clear = /MF0501/.test(run.stdout) && /(failed|refused) to create the probe pod/.test(run.stdout) && /5 attempts/.test(run.stdout);
        t.true(clear, `${label}: the probe's check says the pod could not be created and why\n${run.stdout}`);
        t.deepEqual(probePods(), [], `${label}: no probe pod exists`);
        if (run.code === 3 && clear && probePods().length === 0) figures.failedCleanly += 1;
      } else {
        // The pod outlived its delete: verify names it and says how to delete it; that is what the user then runs.
        const named = /the probe pod vault\/(meshfed-probe-[0-9a-f]+) could not be deleted \(.*5 attempts.*\): kubectl delete pod \1 -n vault --context operations/.exec(run.stderr);
        t.truthy(named, `${label}: the pod left behind is named, with the command that deletes it\n${run.stderr}`);
        t.deepEqual(probePods(), named ? [named[1]] : [], `${label}: the only probe pod left is the one named`);
        if (named && probePods().length === 1) figures.failedCleanly += 1;
        if (named) operations.delete('v1', 'Pod', 'vault', named[1]!);
        await fed.world.waitIdle();
      }
      if (!kind.transient) {
        const again = await fed.run(PROBE);
        t.is(again.code, 0, `${label}: the re-run passes\n${again.stdout}${again.stderr}`);
        await settle(fed.world);
      }
      const converged = probePods().length === 0 && (await fed.run([...PROBE, '--no-probe'])).code === 0;
      t.true(converged, `${label}: no probe pod is left and verify passes`);
      if (converged) figures.converged += 1;
    }
  }
  t.is(clock.elapsed.length, KINDS.filter((k) => k.stall).length * positions.length, 'each held attempt was cut on its event, none waited out its bound');
  report(t, 'verify (probe pod)', figures);
});

let requestWorld: FederationWorld | undefined;

test.after.always(async () => {
  await requestWorld?.stop();
});

test('an import request and its cancellation survive transient API faults at their writes; a persistent one fails cleanly and a re-run converges, the request published as stored', async (t) => {
  t.timeout(600_000);
  const fed = requestWorld = await startFederationWorld({ seed: 'federation', clusters: CLUSTERS });
  const dir = mkdtempSync(join(tmpdir(), 'meshfed-faults-request-'));
  const REQUEST = ['import', '--context', 'operations', '-n', 'vault', '--from', 'production', '--export', 'db/postgres', '--request-out', join(dir, 'request.yaml')];
  const operations = fed.world.cluster('operations');
  const reset = async () => {
    operations.delete('v1', 'Namespace', undefined, 'istio-meshfed');
    await fed.world.waitIdle();
  };
  // The request's Secret and its copy (and the cluster's identity and namespace the first time).
  const requested = await faultMatrix(t, fed, REQUEST, reset, async () => requestsPublishedAsStored(fed.world)
    && operations.list('v1', 'ConfigMap').filter((o) => o.metadata.name.endsWith('.request')).length === 1, firstMiddleLast, 3);
  report(t, 'import --request-out', requested);

  // Cancelled: the copy and the Secret go in one tier; a re-run removes the one a persistent fault left.
  const CANCEL = ['unimport', '--context', 'operations', '--export', 'production/db/postgres'];
  const requestAgain = async () => {
    const run = await fed.run(REQUEST);
    t.is(run.code, 0, run.stderr);
    await fed.world.waitIdle();
  };
  const nothingPending = async () => requestsPublishedAsStored(fed.world) && !fed.managedObjects('operations').some((o) => /mf-bind-/.test(o));
  const cancelled = await faultMatrix(t, fed, CANCEL, requestAgain, nothingPending, firstMiddleLast, 2);
  report(t, 'unimport --export', cancelled);
});
