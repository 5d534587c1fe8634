/**
 * Signals, end to end, as a user (or a CI runner) sends them to the built CLI: SIGINT, SIGTERM and SIGHUP at
 * several points of export, import and verify — before the first write, during the apply, while the probe pod is
 * created or runs, during a slow API call. Every run ends with the documented exit code (129 / 130 / 143), leaves
 * no probe pod, says what it applied, and a re-run converges.
 *
 * Points are reached without timing: the emulator holds a chosen request (a fault with `hold`) until the test lets
 * it go, and the test acts while that request is pending in the request log.
 */
import test, { type ExecutionContext } from 'ava';
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { binDir } from '../support/cli.js';
import type { EmulatedCluster, RequestRecord } from '../support/emulator/index.js';
import { startFederationWorld, type FederationWorld } from '../support/federation.js';

let fed: FederationWorld;
/** An image whose container neither calls out nor ends: the probe runs until it is stopped. */
const IDLE_IMAGE = 'nginx:1.27';
const VERIFY = ['verify', '--context', 'operations', '-n', 'vault', '--name', 'postgres', '--from', 'production'];
const EXIT: Record<string, number> = { SIGHUP: 129, SIGINT: 130, SIGTERM: 143 };
const SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;

async function must(args: string[]): Promise<void> {
  const result = await fed.run(args);
  if (result.code !== 0) throw new Error(`${args.join(' ')}: exit ${result.code}\n${result.stderr}`);
}

test.before(async () => {
  fed = await startFederationWorld({ seed: 'federation', clusters: [{ name: 'operations' }, { name: 'staging' }, { name: 'production' }] });
  await must(['export', '--context', 'production', '-n', 'db', '--service', 'postgres', '--port', '5432']);
  await must(['import', '--context', 'operations', '-n', 'vault', '--from', 'production', '--export', 'db/postgres']);
});

test.after.always(async () => {
  await fed?.stop();
});

/** A running `kubectl meshfed` process and what it printed so far. */
interface Running {
  child: ChildProcess;
  stderr: () => string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }>;
  /** Resolves once stderr matches. */
  said(pattern: RegExp): Promise<void>;
}

function start(args: string[]): Running {
  const child = spawn(join(binDir, 'kubectl-meshfed'), [...args, '--kubeconfig', fed.kubeconfig], {
    env: { ...process.env, NO_COLOR: '1', KUBECONFIG: undefined }, stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  const waiters: Array<{ pattern: RegExp; resolve: () => void }> = [];
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => {
    stderr += chunk;
    for (const waiter of [...waiters]) {
      if (!waiter.pattern.test(stderr)) continue;
      waiters.splice(waiters.indexOf(waiter), 1);
      waiter.resolve();
    }
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }>((resolve) => {
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
  return {
    child,
    stderr: () => stderr,
    exited,
    said: (pattern) => (pattern.test(stderr) ? Promise.resolve() : Promise.race([
      new Promise<void>((resolve) => waiters.push({ pattern, resolve })),
      exited.then(({ code }) => { throw new Error(`exited (${code}) without saying ${pattern}:\n${stderr}`); }),
    ])),
  };
}

/** Holds the next request matching method and path until `release` is called. */
function hold(cluster: EmulatedCluster, method: string, path: RegExp): { release: () => void; pending: () => boolean } {
  let release!: () => void;
  const held = new Promise<void>((resolve) => (release = resolve));
  const mark = cluster.requests.length;
  cluster.faults.add({ method, path, hold: held });
  return {
    release,
    pending: () => cluster.requests.slice(mark).some((r) => r.method === method && path.test(r.path) && r.status === 0),
  };
}

/**
 * Waits for a state of the emulated cluster (a request pending, a pod present): the test watches the cluster as a
 * user would with kubectl; nothing is asserted about time.
 */
async function until(condition: () => boolean, what: string, running?: Running): Promise<void> {
  const deadline = Date.now() + 30_000;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`never saw ${what}${running ? `; stderr so far:\n${running.stderr()}` : ''}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

function probePods(): string[] {
  return fed.world.cluster('operations').list('v1', 'Pod')
    .filter((p) => p.metadata.labels?.['meshfed.io/role'] === 'probe')
    .map((p) => `${p.metadata.namespace}/${p.metadata.name}`);
}

/** Writes meshfed sent to a cluster since `mark` (SelfSubjectAccessReviews are questions, not writes). */
function writesSince(cluster: EmulatedCluster, mark: number): RequestRecord[] {
  return cluster.requests.slice(mark).filter((r) => r.userAgent?.startsWith('kubectl-meshfed') && r.method !== 'GET'
    && !r.path.endsWith('/selfsubjectaccessreviews') && r.query.dryRun === undefined);
}

/** The command again: exit 0; once more: nothing left to write. */
async function converges(t: ExecutionContext, args: string[]): Promise<void> {
  const again = await fed.run(args);
  t.is(again.code, 0, again.stderr);
  const once = await fed.runCounting(args);
  t.is(once.code, 0, once.stderr);
  t.deepEqual(Object.values(once.writes).flat().filter((r) => !r.path.includes('/pods')).map((r) => `${r.method} ${r.path}`), [], 'a third run has nothing to write');
}

for (const signal of SIGNALS) {
  test.serial(`export, ${signal} before the first write (a slow permission check): exit ${EXIT[signal]}, nothing written, a re-run converges`, async (t) => {
    const production = fed.world.cluster('production');
    const args = ['export', '--context', 'production', '-n', 'db', '--service', 'postgres', '--port', '5432', '--name', `pre-${signal.toLowerCase()}`];
    const held = hold(production, 'POST', /\/selfsubjectaccessreviews$/);
    const mark = production.requests.length;
    const running = start(args);
    try {
      await until(held.pending, 'the permission check in flight', running);
      running.child.kill(signal);
      // The process ends while the slow call is still held: the call was aborted, not waited for.
      const result = await running.exited;
      t.is(result.code, EXIT[signal], result.stderr);
      t.regex(result.stderr, new RegExp(`interrupted \\(${signal}\\)`));
      t.regex(result.stderr, /Nothing was written/);
      t.deepEqual(writesSince(production, mark), []);
    } finally {
      held.release();
    }
    await converges(t, args);
  });

  test.serial(`export, ${signal} during the apply: exit ${EXIT[signal]}, says what was applied, a re-run converges`, async (t) => {
    const production = fed.world.cluster('production');
    const args = ['export', '--context', 'production', '-n', 'db', '--service', 'postgres', '--port', '5432', '--name', `apply-${signal.toLowerCase()}`];
    const held = hold(production, 'PATCH', /\/virtualservices\//);
    const mark = production.requests.length;
    const running = start(args);
    try {
      await until(held.pending, 'a VirtualService write in flight', running);
      running.child.kill(signal);
      const result = await running.exited;
      t.is(result.code, EXIT[signal], result.stderr);
      t.regex(result.stderr, /Stopped before the next write\. Applied before the signal \(\d+\):/);
      t.regex(result.stderr, /applied namespaces istio-meshfed|applied [a-z.]+ istio-meshfed\//);
      t.regex(result.stderr, /In flight when the signal came, so possibly applied \(1\):\n\s+applied virtualservices\.networking\.istio\.io/);
      t.regex(result.stderr, /Run the same command again to finish/);
      // The account is complete: every write the cluster received is one the command lists as applied (answered
      // before the signal) or in flight (sent, never answered); nothing was sent after it.
      const applied = Number(/Applied before the signal \((\d+)\)/.exec(result.stderr)![1]);
      const inFlight = Number(/possibly applied \((\d+)\)/.exec(result.stderr)![1]);
      const received = writesSince(production, mark).length;
      t.true(received >= applied && received <= applied + inFlight, `the cluster received ${received} writes; the command lists ${applied} applied and ${inFlight} in flight\n${result.stderr}`);
    } finally {
      held.release();
    }
    await converges(t, args);
  });

  test.serial(`import, ${signal} during the apply (provider done, consumer half-way): exit ${EXIT[signal]}, a re-run converges and verify passes`, async (t) => {
    const operations = fed.world.cluster('operations');
    const name = `imp-${signal.toLowerCase()}`;
    await must(['export', '--context', 'production', '-n', 'db', '--service', 'postgres', '--port', '5432', '--name', name]);
    const args = ['import', '--context', 'operations', '-n', 'vault', '--from', 'production', '--export', `db/${name}`, '--name', name];
    const held = hold(operations, 'PATCH', /\/virtualservices\//);
    const running = start(args);
    try {
      await until(held.pending, 'a consumer VirtualService write in flight', running);
      running.child.kill(signal);
      const result = await running.exited;
      t.is(result.code, EXIT[signal], result.stderr);
      t.regex(result.stderr, /Applied before the signal/);
      t.regex(result.stderr, /\(context "production"\)/, 'the provider side was applied first');
    } finally {
      held.release();
    }
    await converges(t, args);
    const verify = await fed.run(['verify', '--context', 'operations', '-n', 'vault', '--name', name, '--from', 'production']);
    t.is(verify.code, 0, verify.stdout + verify.stderr);
  });

  test.serial(`verify, ${signal} while the probe runs: exit ${EXIT[signal]}, the probe pod is deleted`, async (t) => {
    const running = start([...VERIFY, '--probe-image', IDLE_IMAGE, '--timeout', '60s']);
    await until(() => probePods().length === 1, 'the probe pod', running);
    running.child.kill(signal);
    const result = await running.exited;
    t.is(result.code, EXIT[signal], result.stderr);
    await fed.world.waitIdle();
    t.deepEqual(probePods(), []);
  });

  test.serial(`verify, ${signal} while the probe pod is being created: the creation is let finish, then the pod is deleted`, async (t) => {
    const operations = fed.world.cluster('operations');
    const held = hold(operations, 'POST', /\/namespaces\/vault\/pods$/);
    const running = start([...VERIFY, '--probe-image', IDLE_IMAGE, '--timeout', '60s']);
    try {
      await until(held.pending, 'the probe pod creation in flight', running);
      running.child.kill(signal);
      await running.said(/stopping/);
    } finally {
      // The API server goes on with the creation it received.
      held.release();
    }
    const result = await running.exited;
    t.is(result.code, EXIT[signal], result.stderr);
    await fed.world.waitIdle();
    t.deepEqual(probePods(), [], 'the pod created after the signal was deleted');
  });
}

test.serial('verify, a single Ctrl-C during a slow API call is not swallowed: the call is aborted, exit 130', async (t) => {
  const operations = fed.world.cluster('operations');
  const held = hold(operations, 'GET', /\/namespaces\/vault\/services/);
  const running = start(VERIFY);
  try {
    await until(held.pending, 'a slow read', running);
    running.child.kill('SIGINT');
    // Ends while the read is still held: aborted, not awaited.
    const result = await running.exited;
    t.is(result.code, 130, result.stderr);
    t.regex(result.stderr, /interrupted \(SIGINT\)/);
  } finally {
    held.release();
  }
  t.deepEqual(probePods(), []);
});

test.serial('verify, a second Ctrl-C while the probe pod is being deleted lets the delete finish: exit 130, no pod left', async (t) => {
  const operations = fed.world.cluster('operations');
  const running = start([...VERIFY, '--probe-image', IDLE_IMAGE, '--timeout', '60s']);
  await until(() => probePods().length === 1, 'the probe pod', running);
  const held = hold(operations, 'DELETE', /\/namespaces\/vault\/pods\/meshfed-probe-/);
  try {
    running.child.kill('SIGINT');
    await until(held.pending, 'the probe pod delete in flight', running);
    running.child.kill('SIGINT');
    await running.said(/still cleaning up/);
  } finally {
    held.release();
  }
  const result = await running.exited;
  t.is(result.code, 130, result.stderr);
  await fed.world.waitIdle();
  t.deepEqual(probePods(), []);
  const after = await fed.run(VERIFY);
  t.is(after.code, 0, after.stdout + after.stderr);
});
