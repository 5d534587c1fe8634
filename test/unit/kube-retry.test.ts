/**
 * The REST client's retry policy and its bounded waits: which answers and connection failures are retried for which
 * requests, how long it waits (backoff, Retry-After, capped), when it stops (attempts, timeouts, the command's
 * deadline), and that a server which never answers, or never completes TLS, ends in a clear error.
 */
import test from 'ava';
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer as createTcpServer, type AddressInfo, type Server, type Socket } from 'node:net';
import {
  DEFAULT_RETRY_POLICY, KubeClient, backoffMs, isIdempotent, parseRetryAfter, retryVerdict,
  type AttemptFailure, type KubeClientOptions, type KubeRequest,
} from '../../src/kube/client.js';
import type { ResolvedContext } from '../../src/kube/kubeconfig.js';
import { ClusterError, InterruptedError } from '../../src/errors.js';
import { createRootCA } from '../support/mesh/pki.js';
import { BoundClock, toServer } from '../support/clock.js';

const tls = createRootCA('127.0.0.1');

// ---------------------------------------------------------------------------------------------------------------
// The policy as a pure function.

const SSA: KubeRequest = {
  method: 'PATCH', path: '/apis/networking.istio.io/v1beta1/namespaces/istio-meshfed/gateways/meshfed-ingress',
  query: { fieldManager: 'kubectl-meshfed', force: 'true' }, contentType: 'application/apply-patch+yaml', body: {},
};
const CREATE: KubeRequest = { method: 'POST', path: '/api/v1/namespaces/default/pods', body: {} };

function verdict(request: KubeRequest, failure: AttemptFailure, more: { attempt?: number; timeoutsBefore?: number; deadline?: number; attemptTimeoutMs?: number } = {}) {
  return retryVerdict({
    method: request.method, idempotent: isIdempotent(request), failure, attempt: more.attempt ?? 1, timeoutsBefore: more.timeoutsBefore ?? 0,
    policy: DEFAULT_RETRY_POLICY, now: 1_000_000, deadline: more.deadline, attemptTimeoutMs: more.attemptTimeoutMs ?? 0, random: () => 0,
  });
}

const errorOf = (code: string, phase: 'connect' | 'tls' | 'sent' | 'response' = 'sent') => ({ error: Object.assign(new Error(code), { code, phase }) });

test('idempotent requests: reads, server-side apply, writes with preconditions, dry runs and access reviews', (t) => {
  t.true(isIdempotent({ method: 'GET', path: '/api/v1/pods' }));
  t.true(isIdempotent(SSA));
  t.false(isIdempotent({ ...SSA, contentType: 'application/merge-patch+json' }), 'a merge patch is not declarative');
  t.false(isIdempotent({ ...SSA, query: {} }), 'an apply without a field manager is not what meshfed sends');
  t.false(isIdempotent(CREATE));
  t.true(isIdempotent({ ...CREATE, query: { dryRun: 'All' } }));
  t.true(isIdempotent({ method: 'POST', path: '/apis/authorization.k8s.io/v1/selfsubjectaccessreviews', body: {} }));
  t.false(isIdempotent({ method: 'DELETE', path: '/api/v1/namespaces/a/secrets/b' }));
  t.true(isIdempotent({ method: 'DELETE', path: '/api/v1/namespaces/a/secrets/b', body: { preconditions: { uid: 'u' } } }));
  t.true(isIdempotent({ method: 'PUT', path: '/api/v1/namespaces/a/secrets/b', body: { metadata: { resourceVersion: '7' } } }));
  t.false(isIdempotent({ method: 'PUT', path: '/api/v1/namespaces/a/secrets/b', body: { metadata: {} } }));
  t.true(isIdempotent({ method: 'PATCH', path: '/x', contentType: 'application/json-patch+json', body: [{ op: 'replace', path: '/metadata/resourceVersion', value: '7' }, { op: 'replace', path: '/metadata/managedFields', value: [] }] }));
  t.false(isIdempotent({ method: 'PATCH', path: '/x', contentType: 'application/json-patch+json', body: [{ op: 'add', path: '/spec/hosts/-', value: 'a' }] }));
  t.true(isIdempotent({ ...CREATE, idempotent: true }), 'a create whose caller handles the 409 of a repeat');
  t.false(isIdempotent({ method: 'GET', path: '/x', idempotent: false }), 'the caller may say otherwise');
});

test('which answers are retried: 429 for any request, 500/502/503/504 for idempotent ones, never 409 or other 4xx', (t) => {
  for (const status of [500, 502, 503, 504]) {
    t.true(verdict(SSA, { status }).retry, `${status} on an apply`);
    t.false(verdict(CREATE, { status }).retry, `${status} on a create`);
  }
  t.true(verdict(SSA, { status: 429 }).retry);
  t.true(verdict(CREATE, { status: 429 }).retry, 'the apiserver answers 429 before running the request');
  for (const status of [400, 401, 403, 404, 409, 410, 422, 501]) t.false(verdict(SSA, { status }).retry, String(status));
});

test('which connection failures are retried: refused and not-yet-sent for any request, resets and timeouts for idempotent ones', (t) => {
  t.true(verdict(CREATE, errorOf('ECONNREFUSED', 'connect')).retry, 'refused: the server never saw it');
  t.true(verdict(CREATE, errorOf('ECONNRESET', 'tls')).retry, 'reset during the TLS handshake: not sent yet');
  t.true(verdict(CREATE, errorOf('MESHFED_DIAL_TIMEOUT', 'connect')).retry, 'no connection: not sent');
  t.false(verdict(CREATE, errorOf('ECONNRESET', 'sent')).retry, 'reset after sending: the server may have it');
  t.false(verdict(CREATE, errorOf('EPIPE', 'sent')).retry);
  t.false(verdict(CREATE, errorOf('MESHFED_TIMEOUT', 'sent')).retry, 'no answer: the server may be doing it');
  t.true(verdict(SSA, errorOf('ECONNRESET', 'sent')).retry);
  t.true(verdict(SSA, errorOf('ECONNRESET', 'response')).retry);
  t.true(verdict(SSA, errorOf('MESHFED_TIMEOUT', 'sent')).retry);
  t.false(verdict(SSA, errorOf('ENOTFOUND', 'connect')).retry, 'a wrong host name stays wrong');
  t.false(verdict(SSA, errorOf('CERT_HAS_EXPIRED', 'tls')).retry);
});

test('retries stop at the attempt limit, after one retried timeout, and at the command deadline', (t) => {
  t.true(verdict(SSA, { status: 503 }, { attempt: DEFAULT_RETRY_POLICY.maxAttempts - 1 }).retry);
  t.false(verdict(SSA, { status: 503 }, { attempt: DEFAULT_RETRY_POLICY.maxAttempts }).retry);
  t.false(verdict(SSA, errorOf('MESHFED_TIMEOUT'), { timeoutsBefore: 1 }).retry, 'a server that never answers is given up after two attempts');
  t.true(verdict(SSA, { status: 503 }, { timeoutsBefore: 1 }).retry, 'other failures keep their own limit');
  const late = verdict(SSA, { status: 429, retryAfter: '5' }, { deadline: 1_000_000 + 1000 });
  t.deepEqual(late, { retry: false, why: 'the command\'s deadline for retries has passed' });
  t.true(verdict(SSA, errorOf('MESHFED_TIMEOUT'), { deadline: 1_000_000 + 3300 }).retry);
  t.false(verdict(SSA, errorOf('MESHFED_TIMEOUT'), { deadline: 1_000_000 + 3100, attemptTimeoutMs: 3000 }).retry, 'an attempt that could outlast the deadline is not made');
});

test('backoff doubles from 200ms with up to 20% jitter, capped at 5s; Retry-After wins when longer, capped at 10s', (t) => {
  t.deepEqual([1, 2, 3, 4, 5, 6].map((n) => backoffMs(DEFAULT_RETRY_POLICY, n, () => 0)), [200, 400, 800, 1600, 3200, 5000]);
  t.deepEqual([1, 2, 3].map((n) => backoffMs(DEFAULT_RETRY_POLICY, n, () => 1)), [240, 480, 960]);
  t.is(backoffMs(DEFAULT_RETRY_POLICY, 20, () => 1), 5000);
  const honoured = verdict(SSA, { status: 429, retryAfter: '3' });
  t.like(honoured, { retry: true, waitMs: 3000, reason: '429 Too Many Requests, Retry-After 3s' });
  t.like(verdict(SSA, { status: 503, retryAfter: '3600' }), { retry: true, waitMs: 10_000 }, 'capped');
  t.like(verdict(SSA, { status: 503, retryAfter: '0' }), { retry: true, waitMs: 200 }, 'never sooner than the backoff');
});

test('Retry-After: delay-seconds or an HTTP date; anything else is ignored', (t) => {
  const now = Date.parse('2026-01-01T00:00:00Z');
  t.is(parseRetryAfter('2', now), 2000);
  t.is(parseRetryAfter(' 0 ', now), 0);
  t.is(parseRetryAfter('Thu, 01 Jan 2026 00:00:07 GMT', now), 7000);
  t.is(parseRetryAfter('Wed, 31 Dec 2025 23:59:00 GMT', now), 0, 'a date in the past: now');
  t.is(parseRetryAfter(undefined, now), undefined);
  t.is(parseRetryAfter('soon', now), undefined);
  t.is(parseRetryAfter('1.5', now), undefined);
  t.is(parseRetryAfter('-3', now), undefined);
});

// ---------------------------------------------------------------------------------------------------------------
// The client against scripted servers.

/** What the scripted server does with one request. */
type Step = { status: number; headers?: Record<string, string> } | 'hang' | 'reset' | ((req: IncomingMessage, res: ServerResponse) => void);

interface Scripted {
  server: HttpsServer;
  url: string;
  /** Requests received (method and path). */
  seen: string[];
  client(options?: KubeClientOptions): KubeClient;
  close(): Promise<void>;
}

function contextFor(url: string): ResolvedContext {
  return {
    name: 'test', clusterName: 'test', userName: 'test', namespace: undefined,
    cluster: { server: url, 'insecure-skip-tls-verify': true }, user: { token: 'secret-token' },
  };
}

/**
 * An HTTPS server that handles request i with steps[i] (then answers 200 with a Namespace). With `clock`, the client's
 * bound of a request the server hangs runs out on it as soon as the server has the request.
 */
async function scripted(steps: Step[], clock?: BoundClock): Promise<Scripted> {
  const seen: string[] = [];
  const hanging = new Set<ServerResponse>();
  const clients: KubeClient[] = [];
  const server = createHttpsServer({ cert: tls.certChain, key: tls.key }, (req, res) => {
    const step = steps[seen.length];
    seen.push(`${req.method} ${req.url}`);
    req.resume();
    if (step === 'hang') {
      hanging.add(res);
      clock?.elapse((bound) => bound.method === req.method && bound.url === url + req.url);
      return;
    }
    if (step === 'reset') {
      req.socket.destroy();
      return;
    }
    if (typeof step === 'function') {
      step(req, res);
      return;
    }
    res.writeHead(step?.status ?? 200, { 'content-type': 'application/json', ...step?.headers });
    res.end(JSON.stringify(step && step.status >= 400
      ? { kind: 'Status', status: 'Failure', code: step.status, message: `scripted ${step.status}` }
      : { kind: 'Namespace', metadata: { name: 'default' } }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    server, url, seen,
    client(options = {}) {
      const client = new KubeClient(contextFor(url), { retry: { initialBackoffMs: 5, maxBackoffMs: 20, maxRetryAfterMs: 50 }, ...options });
      clients.push(client);
      return client;
    },
    close: () => new Promise<void>((resolve) => {
      for (const client of clients) client.close();
      for (const res of hanging) res.destroy();
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}

const GET: KubeRequest = { method: 'GET', path: '/api/v1/namespaces/default' };

test('a GET answered 503 twice succeeds on the third attempt; each retry is logged without secrets or bodies', async (t) => {
  const s = await scripted([{ status: 503 }, { status: 503 }]);
  t.teardown(() => s.close());
  const log: string[] = [];
  const client = s.client({ log: (line) => log.push(line), random: () => 0 });
  const answer = await client.request<{ metadata: { name: string } }>(GET);
  t.is(answer.body.metadata.name, 'default');
  t.is(s.seen.length, 3);
  t.deepEqual(log, [
    'retrying GET /api/v1/namespaces/default (context "test") after 503 Service Unavailable (attempt 2/5, waiting 5ms)',
    'retrying GET /api/v1/namespaces/default (context "test") after 503 Service Unavailable (attempt 3/5, waiting 10ms)',
  ]);
  t.false(log.join('\n').includes('secret-token'));
  t.is(client.requestCount, 3);
  t.is(client.retryCount, 2);
});

test('a 429 with Retry-After is retried after the server\'s delay, capped by the policy', async (t) => {
  const s = await scripted([{ status: 429, headers: { 'retry-after': '3600' } }]);
  t.teardown(() => s.close());
  const log: string[] = [];
  await s.client({ log: (line) => log.push(line) }).request({ ...SSA, body: { kind: 'Gateway' } });
  t.is(s.seen.length, 2);
  t.regex(log[0]!, /^retrying PATCH \/apis\/networking\.istio\.io\/v1beta1\/namespaces\/istio-meshfed\/gateways\/meshfed-ingress \(context "test"\) after 429 Too Many Requests, Retry-After 50ms \(attempt 2\/5, waiting 50ms\)$/);
});

test('a persistent 503 on an apply fails after the attempt limit with a message naming the object and a hint to re-run', async (t) => {
  const s = await scripted(Array.from({ length: 10 }, () => ({ status: 503 })));
  t.teardown(() => s.close());
  const error = await t.throwsAsync(s.client().request(SSA), { instanceOf: ClusterError });
  t.is(s.seen.length, 5);
  t.is((error as ClusterError).status, 503);
  t.is(error!.message, 'patch gateways.networking.istio.io "meshfed-ingress" in namespace "istio-meshfed" failed (context "test"): scripted 503 (5 attempts)');
  t.regex((error as ClusterError).hint!, /run the command again once it is healthy; a re-run applies only what is missing/);
});

test('a create answered 503 is not sent again: the server has received it', async (t) => {
  const s = await scripted([{ status: 503 }]);
  t.teardown(() => s.close());
  const error = await t.throwsAsync(s.client().request(CREATE), { instanceOf: ClusterError });
  t.is(s.seen.length, 1);
  t.regex((error as ClusterError).hint!, /not sent again \(a POST is not repeated once the server has received it\)/);
});

test('409 Conflict is returned at once, never retried (callers re-read and re-plan)', async (t) => {
  const s = await scripted([{ status: 409 }]);
  t.teardown(() => s.close());
  const error = await t.throwsAsync(s.client().request(SSA), { instanceOf: ClusterError });
  t.is((error as ClusterError).status, 409);
  t.is(s.seen.length, 1);
});

test('no retry past the command deadline', async (t) => {
  const s = await scripted([{ status: 429, headers: { 'retry-after': '1' } }]);
  t.teardown(() => s.close());
  const client = s.client({ retry: { maxRetryAfterMs: 10_000 }, deadline: Date.now() + 200 });
  const error = await t.throwsAsync(client.request(GET), { instanceOf: ClusterError });
  t.is(s.seen.length, 1);
  t.regex((error as ClusterError).hint!, /the command's deadline for retries has passed/);
});

test('a create whose connection is refused is sent again: it never reached the server', async (t) => {
  // Find a free port, then listen on it only once the client has been refused once.
  const probe = createTcpServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const port = (probe.address() as AddressInfo).port;
  await new Promise((resolve) => probe.close(resolve));
  const seen: string[] = [];
  const server = createHttpsServer({ cert: tls.certChain, key: tls.key }, (req, res) => {
    seen.push(`${req.method} ${req.url}`);
    res.writeHead(201, { 'content-type': 'application/json' });
    res.end('{"kind":"Pod"}');
  });
  t.teardown(() => { server.closeAllConnections(); server.close(); });
  const log: string[] = [];
  const client = new KubeClient(contextFor(`https://127.0.0.1:${port}`), {
    retry: { initialBackoffMs: 20, maxBackoffMs: 20 },
    log: (line) => {
      log.push(line);
      if (!server.listening) server.listen(port, '127.0.0.1');
    },
  });
  t.teardown(() => client.close());
  const answer = await client.request(CREATE);
  t.is(answer.status, 201);
  t.deepEqual(seen, ['POST /api/v1/namespaces/default/pods'], 'the server got it exactly once');
  t.regex(log[0]!, /^retrying POST \/api\/v1\/namespaces\/default\/pods \(context "test"\) after connection refused \(attempt 2\/5/);
});

test('an attempt without an answer within the request timeout is retried once for an idempotent request', async (t) => {
  const s = await scripted(['hang']);
  t.teardown(() => s.close());
  const log: string[] = [];
  const answer = await s.client({ timeoutMs: 1000, log: (line) => log.push(line) }).request(SSA);
  t.is(answer.status, 200);
  t.is(s.seen.length, 2);
  t.regex(log[0]!, /after no answer within 1s \(--request-timeout\) \(attempt 2\/5/);
});

// The bounds below run out on a clock when the server holds the request (or the handshake); the tests above and the
// 300ms handshake one run on the real timer.

test('a server that accepts and never answers: a clear error naming the server, the bound and the flag', async (t) => {
  const clock = new BoundClock();
  const s = await scripted(['hang', 'hang', 'hang'], clock);
  t.teardown(() => s.close());
  const error = await t.throwsAsync(s.client({ timeoutMs: 2000, boundTimer: clock.timer }).request(GET), { instanceOf: ClusterError });
  t.is(error!.message, `cannot reach ${s.url} (context "test"): no answer within 2s (--request-timeout), 2 attempts to get namespaces "default"`);
  t.regex((error as ClusterError).hint!, /--request-timeout/);
  t.is(s.seen.length, 2, 'a server that never answers is given up after two attempts');
});

test('a create without an answer is not sent again', async (t) => {
  const clock = new BoundClock();
  const s = await scripted(['hang', 'hang'], clock);
  t.teardown(() => s.close());
  const error = await t.throwsAsync(s.client({ timeoutMs: 2000, boundTimer: clock.timer }).request(CREATE), { instanceOf: ClusterError });
  t.regex(error!.message, /no answer within 2s \(--request-timeout\), trying to create pods in namespace "default"$/);
  t.is(s.seen.length, 1);
});

/**
 * A TCP server that accepts connections and never says a word (so never completes a TLS handshake). With `clock`, the
 * bound the client waits on runs out on it once the client's hello has arrived.
 */
async function silentServer(clock?: BoundClock): Promise<{ server: Server; url: string; connections: number; close(): void }> {
  const sockets = new Set<Socket>();
  const state = { connections: 0 };
  const server = createTcpServer((socket) => {
    state.connections += 1;
    sockets.add(socket);
    socket.on('error', () => {});
    if (clock) socket.once('data', () => clock.elapse(toServer(url)));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    server,
    url,
    get connections() { return state.connections; },
    close() {
      for (const socket of sockets) socket.destroy();
      server.close();
    },
  };
}

test('a server that never completes TLS: the handshake bound applies even with no request timeout (--request-timeout 0)', async (t) => {
  const silent = await silentServer();
  t.teardown(() => silent.close());
  const client = new KubeClient(contextFor(silent.url), { timeoutMs: 0, tlsHandshakeTimeoutMs: 300, retry: { initialBackoffMs: 5 } });
  t.teardown(() => client.close());
  const error = await t.throwsAsync(client.request(CREATE), { instanceOf: ClusterError });
  t.is(error!.message, `cannot reach ${silent.url} (context "test"): the TLS handshake did not complete within 300ms, 2 attempts to create pods in namespace "default"`);
  t.is(silent.connections, 2, 'not sent yet: even a create may be tried again');
});

test('with a request timeout shorter than the handshake bound, the message says which phase it cut', async (t) => {
  const clock = new BoundClock();
  const silent = await silentServer(clock);
  t.teardown(() => silent.close());
  const client = new KubeClient(contextFor(silent.url), { timeoutMs: 1500, retry: { initialBackoffMs: 5 }, boundTimer: clock.timer });
  t.teardown(() => client.close());
  const error = await t.throwsAsync(client.request(GET), { instanceOf: ClusterError });
  t.regex(error!.message, /: the TLS handshake did not complete within 1500ms \(--request-timeout\), 2 attempts to get namespaces "default"$/);
});

test('a stream is not cut by the request timeout once its answer has started; failures before it starts are retried', async (t) => {
  let endStream = () => undefined as unknown;
  const s = await scripted([{ status: 503 }, (_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.write('{"type":"ADDED"}\n');
    endStream = () => res.end('{"type":"MODIFIED"}\n');
  }]);
  t.teardown(() => s.close());
  const clock = new BoundClock();
  const lines: string[] = [];
  await s.client({ timeoutMs: 1000, boundTimer: clock.timer }).stream({ path: '/api/v1/pods', query: { watch: '1' } }, (line) => {
    lines.push(line);
    if (lines.length > 1) return;
    // The stream has started: the client's 1 s request timeout runs out now (if it still ran, it would cut the
    // stream here), and only then does the server send the last line.
    clock.elapse((bound) => bound.kind === 'request' && toServer(s.url)(bound));
    setImmediate(endStream);
  });
  t.deepEqual(lines, ['{"type":"ADDED"}', '{"type":"MODIFIED"}']);
  t.deepEqual(clock.elapsed, [], 'no request timeout ran any more once the answer had started');
  t.is(s.seen.length, 2);
});

test('an abort ends a request that waits for an answer, and the wait before a retry', async (t) => {
  const s = await scripted(['hang', { status: 429, headers: { 'retry-after': '60' } }]);
  t.teardown(() => s.close());
  const client = s.client({ timeoutMs: 0, retry: { maxRetryAfterMs: 60_000 } });
  const received = async (count: number) => {
    while (s.seen.length < count) await new Promise((resolve) => setTimeout(resolve, 10));
  };
  const hanging = new AbortController();
  const first = client.request({ ...GET, signal: hanging.signal });
  await received(1);
  hanging.abort();
  await t.throwsAsync(first, { instanceOf: InterruptedError });
  const waiting = new AbortController();
  const log: string[] = [];
  const second = s.client({ timeoutMs: 0, retry: { maxRetryAfterMs: 60_000 }, log: (line) => log.push(line) }).request({ ...GET, signal: waiting.signal });
  while (log.length === 0) await new Promise((resolve) => setTimeout(resolve, 10));
  t.regex(log[0]!, /waiting 60s/);
  waiting.abort();
  await t.throwsAsync(second, { instanceOf: InterruptedError });
  t.is(s.seen.length, 2, 'the retry after Retry-After: 60 was never sent');
});
