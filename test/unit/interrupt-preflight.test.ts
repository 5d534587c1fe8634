/**
 * The client's abort signal (an interrupt aborts the call in flight; nothing is sent once it is aborted; a request
 * with a signal of its own outlives it) and the permissions preflight's wording (every missing permission, then the
 * Role/ClusterRole rules to add), against a server that never answers and in isolation.
 */
import test from 'ava';
import { createServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { ClusterError, InterruptedError } from '../../src/errors.js';
import { KubeClient } from '../../src/kube/client.js';
import type { ResolvedContext } from '../../src/kube/kubeconfig.js';
import { missingPermissionsError } from '../../src/kube/preflight.js';
import { Session, type Pause } from '../../src/commands/session.js';
import { PassThrough } from 'node:stream';
import { createRootCA } from '../support/mesh/pki.js';

const tls = createRootCA('127.0.0.1');

/** A server that answers `/fast` at once and holds every other request until closed. */
async function holdingServer() {
  const received: string[] = [];
  const server = createServer({ cert: tls.certChain, key: tls.key }, (req, res) => {
    received.push(`${req.method} ${req.url}`);
    if (req.url?.startsWith('/fast')) {
      res.setHeader('content-type', 'application/json');
      res.end('{"kind":"Status","status":"Success"}');
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const context: ResolvedContext = {
    name: 'test', clusterName: 'test', userName: 'test', namespace: undefined,
    cluster: { server: `https://127.0.0.1:${(server.address() as AddressInfo).port}`, 'insecure-skip-tls-verify': true },
    user: { token: 't' },
  };
  return {
    received, context,
    close: () => new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}

test('an interrupt aborts the call in flight with the interrupt\'s error, and nothing is sent after it', async (t) => {
  const server = await holdingServer();
  const interrupt = new AbortController();
  const client = new KubeClient(server.context, { signal: interrupt.signal });
  try {
    const pending = client.request({ method: 'GET', path: '/slow' });
    while (server.received.length === 0) await new Promise((resolve) => setImmediate(resolve));
    interrupt.abort(new InterruptedError('interrupted', 'SIGTERM'));
    const error = await t.throwsAsync(pending, { instanceOf: InterruptedError });
    t.is(error?.exitCode, 143);
    await t.throwsAsync(client.request({ method: 'PATCH', path: '/fast/next', body: {} }), { instanceOf: InterruptedError });
    t.deepEqual(server.received, ['GET /slow'], 'the write after the interrupt was never sent');
  } finally {
    client.close();
    await server.close();
  }
});

test('a request with a signal of its own (a cleanup) is sent after the interrupt, and ends at its own deadline', async (t) => {
  const server = await holdingServer();
  const interrupt = new AbortController();
  const client = new KubeClient(server.context, { signal: interrupt.signal });
  try {
    interrupt.abort(new InterruptedError());
    const cleanup = new AbortController();
    const done = await client.request({ method: 'DELETE', path: '/fast/pod', signal: cleanup.signal });
    t.is(done.status, 200);
    const deadline = new AbortController();
    const held = client.request({ method: 'DELETE', path: '/slow/pod', signal: deadline.signal });
    while (server.received.length < 2) await new Promise((resolve) => setImmediate(resolve));
    deadline.abort(new ClusterError('deleting the probe pod: no answer within 5s'));
    await t.throwsAsync(held, { instanceOf: ClusterError, message: /no answer within 5s/ });
  } finally {
    client.close();
    await server.close();
  }
});

const sessionIo = () => ({ stdin: new PassThrough(), stdout: new PassThrough(), stderr: new PassThrough(), env: {} });

test('a command\'s pause (verify --wait between probes) is a real timer in the program, and an interrupt ends it', async (t) => {
  // The program passes no pause: a pause of a minute must end at the interrupt, not after the minute.
  t.timeout(20_000);
  const session = new Session({ yes: true, color: false, verbose: 0 }, sessionIo());
  const paused = session.pause(60_000);
  session.interrupt('SIGINT');
  const error = await t.throwsAsync(paused, { instanceOf: InterruptedError });
  t.is(error?.signal, 'SIGINT');
  await t.notThrowsAsync(new Session({ yes: true, color: false, verbose: 0 }, sessionIo()).pause(1), 'it ends by itself');
});

test('a pause given to the session (tests) is waited with the session\'s interrupt signal', async (t) => {
  const calls: Array<{ ms: number; aborted: boolean }> = [];
  let signalSeen: AbortSignal | undefined;
  const pause: Pause = async (ms, signal) => {
    calls.push({ ms, aborted: signal.aborted });
    signalSeen = signal;
  };
  const session = new Session({ yes: true, color: false, verbose: 0 }, sessionIo(), { pause });
  await session.pause(4000);
  t.deepEqual(calls, [{ ms: 4000, aborted: false }]);
  session.interrupt('SIGTERM');
  t.true(signalSeen?.aborted, 'the signal it was given is the interrupt');
  await t.throwsAsync(session.pause(4000), { instanceOf: InterruptedError }, 'an interrupted command does not go on after its pause');
});

test('missing permissions are listed together, with one Role per namespace and a ClusterRole for cluster-wide ones', (t) => {
  const error = missingPermissionsError([
    { verb: 'patch', group: 'networking.istio.io', resource: 'destinationrules', namespace: 'istio-meshfed', context: 'c1', user: 'u' },
    { verb: 'create', group: 'networking.istio.io', resource: 'destinationrules', namespace: 'istio-meshfed', context: 'c1', user: 'u' },
    { verb: 'create', group: '', resource: 'namespaces', namespace: undefined, context: 'c1', user: 'u' },
    { verb: 'delete', group: '', resource: 'secrets', namespace: 'istio-meshfed', context: 'c2', user: 'v' },
  ]);
  t.is(error.exitCode, 1);
  t.is(error.message, [
    'missing permissions in context "c1" and context "c2"; nothing was written:',
    '  - create namespaces (cluster-wide) (context "c1", user "u")',
    '  - create destinationrules.networking.istio.io in namespace "istio-meshfed" (context "c1", user "u")',
    '  - patch destinationrules.networking.istio.io in namespace "istio-meshfed" (context "c1", user "u")',
    '  - delete secrets in namespace "istio-meshfed" (context "c2", user "v")',
  ].join('\n'));
  t.is(error.hint, [
    'ask a cluster admin to add these RBAC rules, then run the command again:',
    '  context "c1": a ClusterRole, bound to user "u", with',
    '    - apiGroups: [""]',
    '      resources: ["namespaces"]',
    '      verbs: ["create"]',
    '  context "c1": a Role in namespace istio-meshfed, bound to user "u", with',
    '    - apiGroups: ["networking.istio.io"]',
    '      resources: ["destinationrules"]',
    '      verbs: ["create", "patch"]',
    '  context "c2": a Role in namespace istio-meshfed, bound to user "v", with',
    '    - apiGroups: [""]',
    '      resources: ["secrets"]',
    '      verbs: ["delete"]',
  ].join('\n'));
});
