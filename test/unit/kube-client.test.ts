/**
 * The REST client keeps connections alive; a server may close an idle one just as the client reuses it. That race
 * resets a request the server never read: it is sent once more on a fresh connection, whatever its method. Any other
 * reset is retried only for requests that are safe to repeat.
 */
import test from 'ava';
import { createServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { KubeClient } from '../../src/kube/client.js';
import type { ResolvedContext } from '../../src/kube/kubeconfig.js';
import { createRootCA } from '../support/mesh/pki.js';

const tls = createRootCA('127.0.0.1');

/** An HTTPS server that resets a connection at its `resetAt`-th request (1-based) without answering. */
async function serverResettingAt(resetAt: number) {
  const seen = { requests: 0, connections: 0 };
  const perSocket = new WeakMap<object, number>();
  const server = createServer({ cert: tls.certChain, key: tls.key }, (req, res) => {
    seen.requests += 1;
    const n = (perSocket.get(req.socket) ?? 0) + 1;
    perSocket.set(req.socket, n);
    if (n === resetAt) {
      req.socket.destroy();
      return;
    }
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ kind: 'Namespace', metadata: { name: 'default' } }));
  });
  server.on('secureConnection', () => { seen.connections += 1; });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const context: ResolvedContext = {
    name: 'test', clusterName: 'test', userName: 'test', namespace: undefined,
    cluster: { server: `https://127.0.0.1:${(server.address() as AddressInfo).port}`, 'insecure-skip-tls-verify': true },
    user: { token: 't' },
  };
  // Short waits between retries: the policy's shape, not its pace, is under test.
  const client = new KubeClient(context, { retry: { initialBackoffMs: 1, maxBackoffMs: 5 } });
  return { seen, client, close: () => new Promise<void>((resolve) => server.close(() => resolve())) };
}

test('a request reset on a reused kept-alive connection is sent again on a fresh connection', async (t) => {
  const s = await serverResettingAt(2);
  try {
    t.is((await s.client.request({ method: 'GET', path: '/api/v1/namespaces/default' })).status, 200);
    const again = await s.client.request<{ metadata: { name: string } }>({ method: 'GET', path: '/api/v1/namespaces/default' });
    t.is(again.body.metadata.name, 'default');
    t.deepEqual(s.seen, { requests: 3, connections: 2 }, 'the reset request went out once more, on a new connection');
  } finally {
    s.client.close();
    await s.close();
  }
});

test('a POST reset on a fresh connection is not sent again (the server may have read it): an error that names the server', async (t) => {
  const s = await serverResettingAt(1);
  try {
    const error = await t.throwsAsync(s.client.request({ method: 'POST', path: '/api/v1/namespaces/default/configmaps', body: { metadata: { name: 'x' } } }));
    t.regex(error!.message, /cannot reach https:\/\/127\.0\.0\.1:\d+ \(context "test"\): the connection was reset, trying to create configmaps in namespace "default"/);
    t.is(s.seen.requests, 1);
  } finally {
    s.client.close();
    await s.close();
  }
});

test('a GET reset on a fresh connection is retried (it is safe to repeat), up to the attempt limit', async (t) => {
  const s = await serverResettingAt(1);
  try {
    const error = await t.throwsAsync(s.client.request({ method: 'GET', path: '/api/v1/namespaces/default' }));
    t.regex(error!.message, /the connection was reset, 5 attempts to get namespaces "default"/);
    t.is(s.seen.requests, 5);
  } finally {
    s.client.close();
    await s.close();
  }
});
