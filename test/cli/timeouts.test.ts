/**
 * Bounded waits as the user meets them: a server that accepts connections and never answers, and one that never
 * completes TLS, end `status` with a clear error naming the context, the server and `--request-timeout` — by default
 * too, and with `--request-timeout 0` (kubectl's "no per-request limit") the TLS handshake bound still applies.
 * The bounds are set with the flag users have, or are the program's defaults; the asserts are on the messages. The
 * bounds run out when the server has the request (or the handshake) and stays silent, on a {@link BoundClock}, rather
 * than after seconds of waiting: the client cuts, retries and reports each attempt as after the real delay.
 */
import test, { type ExecutionContext } from 'ava';
import { createServer as createHttpsServer } from 'node:https';
import { PassThrough } from 'node:stream';
import { createServer as createTcpServer, type AddressInfo, type Socket } from 'node:net';
import { DEFAULT_DIAL_TIMEOUT_MS, DEFAULT_REQUEST_TIMEOUT_MS, DEFAULT_TLS_HANDSHAKE_TIMEOUT_MS } from '../../src/kube/client.js';
import { Session } from '../../src/commands/session.js';
import { createFederationCA, issueServerCertificate } from '../../src/pki/index.js';
import { runCli, writeKubeconfig } from '../support/cli.js';
import { BoundClock, toServer } from '../support/clock.js';

/**
 * An HTTPS server that completes the handshake, reads requests and never answers them: once it has a request, the
 * client's bound of that attempt runs out on `clock`.
 */
async function hangingApi(t: ExecutionContext, clock: BoundClock) {
  const ca = createFederationCA({ provider: 'apiserver-test' });
  const cert = issueServerCertificate({ ca, hosts: ['kubernetes.test'] });
  const requests = new Map<string, number>();
  const server = createHttpsServer({ cert: cert.certificatePem, key: cert.privateKeyPem }, (req) => {
    requests.set(req.url!, (requests.get(req.url!) ?? 0) + 1);
    clock.elapse((bound) => bound.method === req.method && bound.url === url + req.url);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => { server.closeAllConnections(); server.close(); });
  const url = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
  /** The most often any one request was sent. */
  return { url, caPem: ca.certificatePem, mostSent: () => Math.max(...requests.values()) };
}

/**
 * A TCP server that accepts connections and never says a word: a TLS handshake never completes. Once a connection
 * has brought the client's hello, the bound the client waits on runs out on `clock`.
 */
async function silentTcp(t: ExecutionContext, clock: BoundClock) {
  const sockets = new Set<Socket>();
  const server = createTcpServer((socket) => {
    sockets.add(socket);
    socket.on('error', () => {});
    socket.once('data', () => clock.elapse(toServer(url)));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => { for (const socket of sockets) socket.destroy(); server.close(); });
  const url = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return { url };
}

test('status against a server that never answers: a clear timeout error naming the context and --request-timeout', async (t) => {
  const clock = new BoundClock();
  const api = await hangingApi(t, clock);
  const kubeconfig = writeKubeconfig([{ name: 'hanging', server: api.url, caPem: api.caPem, tlsServerName: 'kubernetes.test' }], 'hanging');
  const result = await runCli(['status', '--request-timeout', '3s'], { env: { KUBECONFIG: kubeconfig }, session: { boundTimer: clock.timer } });
  t.is(result.signal, null, 'it ended by itself');
  t.is(result.code, 1);
  const [message, hint] = result.stderr.trim().split('\n');
  t.regex(message!, new RegExp(`^error: cannot reach ${api.url.replace(/\./g, '\\.')} \\(context "hanging"\\): no answer within 3s \\(--request-timeout\\), 2 attempts to \\w+ `));
  t.regex(hint!, /allow more with --request-timeout/);
  t.is(api.mostSent(), 2, 'sent once more (a read is safe to repeat), then given up; nothing is retried after the command ended');
});

test('--request-timeout 0 lifts the per-request limit, as kubectl\'s does, but the TLS handshake stays bounded (10s)', async (t) => {
  const clock = new BoundClock();
  const silent = await silentTcp(t, clock);
  const kubeconfig = writeKubeconfig([{ name: 'silent', server: silent.url }], 'silent');
  const result = await runCli(['status', '--request-timeout', '0'], { env: { KUBECONFIG: kubeconfig }, session: { boundTimer: clock.timer } });
  t.is(result.signal, null, 'it ended by itself');
  t.is(result.code, 1);
  t.regex(result.stderr, /^error: cannot reach https:\/\/127\.0\.0\.1:\d+ \(context "silent"\): the TLS handshake did not complete within 10s, 2 attempts to \w+ /);
  t.true(clock.elapsed.length > 0 && clock.elapsed.every((bound) => bound.kind === 'tls' && bound.ms === 10_000), 'only the handshake bound, the default, ran out');
});

test('-v shows each retry and how many requests were retries', async (t) => {
  const clock = new BoundClock();
  const api = await hangingApi(t, clock);
  const kubeconfig = writeKubeconfig([{ name: 'hanging', server: api.url, caPem: api.caPem, tlsServerName: 'kubernetes.test' }], 'hanging');
  const result = await runCli(['status', '--request-timeout', '2s', '-v'], { env: { KUBECONFIG: kubeconfig }, session: { boundTimer: clock.timer } });
  t.is(result.code, 1);
  t.regex(result.stderr, /retrying GET \/\S+ \(context "hanging"\) after no answer within 2s \(--request-timeout\) \(attempt 2\/5, waiting \d+ms\)/);
  const [, sent, retried] = /(\d+) API request\(s\), (\d+) of them retries/.exec(result.stderr) ?? [];
  t.true(Number(retried) > 0 && Number(sent) > Number(retried), `the count of requests and retries is printed (${sent}, ${retried})`);
  t.notRegex(result.stderr.slice(result.stderr.indexOf('API request(s)')), /retrying/, 'nothing is retried once the command has ended');
  t.false(result.stderr.includes('token'), 'no credentials in the log');
});

test('without the flag, every request is bounded by the 30s default; the help says so', async (t) => {
  const io = { stdin: new PassThrough(), stdout: new PassThrough(), stderr: new PassThrough(), env: {} };
  t.is(new Session({ yes: true, color: false, verbose: 0 }, io).requestTimeoutMs, 30_000);
  t.is(DEFAULT_REQUEST_TIMEOUT_MS, 30_000);
  // client-go's bounds (transport/cache.go: net.Dialer{Timeout: 30s}, TLSHandshakeTimeout: 10s), whatever the flag says.
  t.is(DEFAULT_DIAL_TIMEOUT_MS, 30_000);
  t.is(DEFAULT_TLS_HANDSHAKE_TIMEOUT_MS, 10_000);
  t.is(new Session({ 'request-timeout': '0', yes: true, color: false, verbose: 0 }, io).requestTimeoutMs, 0);
  const help = await runCli(['status', '--help']);
  t.regex(help.stdout, /--request-timeout\s+How long to wait for each API request \(e\.g\. 5s, 1m; default 30s; 0 = no\s+limit/);
});
