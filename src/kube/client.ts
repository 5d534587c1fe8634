import { request as httpsRequest, Agent, type AgentOptions, type RequestOptions } from 'node:https';
import { request as httpRequest, type ClientRequest, type IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import { createSecureContext } from 'node:tls';
import { setMaxListeners } from 'node:events';
import { readFileSync } from 'node:fs';
import { ClusterError, InputError, InterruptedError } from '../errors.js';
import type { ResolvedContext } from './kubeconfig.js';
import { describeRequest } from './request.js';
import { impersonationHeaders, proxyFor, runExecPlugin, TunnelAgent, type Impersonation } from './transport.js';

declare const __MESHFED_VERSION__: string;

/**
 * The User-Agent, in client-go's shape (`rest.DefaultKubernetesUserAgent`: `<command>/<version> (<os>/<arch>)
 * kubernetes/<commit>`), with the plugin's name and version: `kubectl-meshfed/v0.1.0 (linux/amd64) kubectl-meshfed/0.1.0`.
 * The API server derives a default field manager from its first word.
 */
export function userAgent(): string {
  const version = typeof __MESHFED_VERSION__ === 'string' ? __MESHFED_VERSION__ : 'dev';
  const arch = ({ x64: 'amd64', ia32: '386', arm: 'arm', arm64: 'arm64', ppc64: 'ppc64le', s390x: 's390x' } as Record<string, string>)[process.arch] ?? process.arch;
  return `kubectl-meshfed/${version === 'dev' ? version : `v${version}`} (${process.platform}/${arch}) kubectl-meshfed/${version}`;
}

/** Requests resent after a reset on a reused kept-alive socket (at most one per socket of the agent's pool). */
const MAX_STALE_SOCKET_RETRIES = 16;

/**
 * Default `--request-timeout`: how long one attempt of a request may wait for its answer. kubectl's default is 0 (no
 * limit, k8s.io/cli-runtime `genericclioptions.ConfigFlags`), which lets a server that accepts connections and never
 * answers hang a command forever; meshfed bounds every request by default. The API server ends its own
 * non-long-running requests after 60 s (kube-apiserver `--request-timeout`), so a healthy server answers well within.
 */
export const DEFAULT_REQUEST_TIMEOUT_MS = 30_000;
/** Bound on opening a TCP connection, whatever `--request-timeout` says (client-go `transport/cache.go`: `net.Dialer{Timeout: 30s}`). */
export const DEFAULT_DIAL_TIMEOUT_MS = 30_000;
/** Bound on the TLS handshake, whatever `--request-timeout` says (client-go `transport/cache.go`: `TLSHandshakeTimeout: 10s`). */
export const DEFAULT_TLS_HANDSHAKE_TIMEOUT_MS = 10_000;
/**
 * Connections kept to one cluster (HTTP/1.1 with keep-alive: one request at a time on each). A command sends its reads
 * together — twenty and more — and without a bound each would open a connection of its own, every one a TLS handshake
 * for both sides and much of a re-run's CPU; six (a browser's bound per host) still send them in parallel, reused by every
 * later request. kubectl speaks HTTP/2, one connection for everything, where the server offers it.
 */
export const MAX_CONNECTIONS = 6;

/**
 * When and how a failed request is sent again. Modelled on client-go (kubernetes/client-go at 32ce75a, July 2026):
 * `rest/request.go` `Request.request` loops while `rest/with_retry.go` `withRetry.IsNextRetry` allows it — its
 * `checkWait` retries 429 and 5xx answers that carry `Retry-After`, `isErrRetryableFunc` GETs that met a connection
 * reset — and `withRetry.Before` sleeps the larger of the backoff and `Retry-After`; `util/flowcontrol/backoff.go`
 * `Backoff.Next` doubles the delay per retry, adds up to `maxJitterFactor` of it at random and caps it. client-go
 * allows 10 retries (`NewRequest`); meshfed makes 5 attempts, since a person waits. Unlike client-go, meshfed also
 * retries 500/502/503/504 without `Retry-After` and connection failures of every idempotent request (not only GETs),
 * because its server-side applies are as safe to repeat as reads; and it never repeats a non-idempotent write the
 * server may have received.
 */
export interface RetryPolicy {
  /** Attempts per request, the first one included. Default 5. */
  maxAttempts: number;
  /** Wait before the first retry; it doubles with each further retry. Default 200 ms. */
  initialBackoffMs: number;
  /** Cap of the backoff. Default 5 s. */
  maxBackoffMs: number;
  /** Up to this fraction of the backoff is added at random, so that clients do not retry in step. Default 0.2. */
  jitterFactor: number;
  /** Cap of a server's `Retry-After`. Default 10 s. */
  maxRetryAfterMs: number;
  /**
   * Timeouts (connect, TLS handshake, no answer) retried per request. Default 1: a server that never answers is
   * given up after two attempts, not five.
   */
  maxTimeoutRetries: number;
}

export const DEFAULT_RETRY_POLICY: Readonly<RetryPolicy> = Object.freeze({
  maxAttempts: 5,
  initialBackoffMs: 200,
  maxBackoffMs: 5000,
  jitterFactor: 0.2,
  maxRetryAfterMs: 10_000,
  maxTimeoutRetries: 1,
});

/** One request to the API server. */
export interface KubeRequest {
  method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  /** Absolute API path, e.g. `/api/v1/namespaces/default/services`. */
  path: string;
  query?: Record<string, string | undefined>;
  body?: unknown;
  /** Defaults to application/json when there is a body. */
  contentType?: string;
  /** The `Accept` header; default `application/json`. */
  accept?: string;
  /** Overrides the client's timeout for this request (ms; 0 = none). */
  timeoutMs?: number;
  /**
   * Whether sending the request twice has the effect of sending it once. Default: derived from the request (see
   * {@link isIdempotent}); only idempotent requests are retried after the server may have received them.
   */
  idempotent?: boolean;
  /** The object a create (POST to its collection) writes: errors name it, as they name the object of any other write. */
  objectName?: string;
  /**
   * Aborts this request (before it is sent, while it is in flight, or while it waits to be retried); it then fails
   * with the signal's reason. Default: the client's {@link KubeClientOptions.signal}. A cleanup that must still run
   * after an interrupt passes a signal of its own (its own deadline).
   */
  signal?: AbortSignal;
}

/** A successful answer. */
export interface KubeResponse<T> {
  status: number;
  body: T;
  /** `Warning` headers (e.g. unknown fields pruned). */
  warnings: string[];
}

/** Options of a {@link KubeClient}. */
export interface KubeClientOptions {
  /**
   * Per-request timeout in ms (`--request-timeout`): how long each attempt may take, from sending it to the end of
   * the answer (for streams: to the start of the answer). 0 means none, as kubectl's `--request-timeout 0`; the
   * connect and TLS handshake bounds still apply. Default {@link DEFAULT_REQUEST_TIMEOUT_MS}.
   */
  timeoutMs?: number;
  /** Bound on opening a connection (ms). Default {@link DEFAULT_DIAL_TIMEOUT_MS}. */
  dialTimeoutMs?: number;
  /** Bound on the TLS handshake (ms). Default {@link DEFAULT_TLS_HANDSHAKE_TIMEOUT_MS}. */
  tlsHandshakeTimeoutMs?: number;
  /** Retry policy; unset fields take {@link DEFAULT_RETRY_POLICY}'s. */
  retry?: Partial<RetryPolicy>;
  /**
   * The command's overall deadline (epoch ms): no retry is made that could still be under way then (its wait plus
   * the per-request timeout). Default: none.
   */
  deadline?: number;
  /** Receives one line per retry (`--verbose`). Never given bodies, headers or credentials. */
  log?: (message: string) => void;
  /** Aborts every request and stream of this client that does not bring its own signal (the CLI's interrupt). */
  signal?: AbortSignal;
  /** Source of randomness for the jitter (tests). Default Math.random. */
  random?: () => number;
  /**
   * Waits out a retry's backoff (or `Retry-After`) before the next attempt: `ms` as {@link retryVerdict} decided it,
   * and `signal` to abort the wait. Default {@link waitTimer}, the real delay. Tests pass one that returns at once:
   * every decision, attempt and `-v` line is the same, without the seconds of waiting.
   */
  retryWait?: RetryWait;
  /**
   * Runs the timer of each bound of an attempt (connect, TLS handshake, `--request-timeout`). Default
   * {@link realBoundTimer}, the real delay. Tests pass one that also lets a bound run out on an event (the server holds
   * the request, or got the handshake and stays silent): the attempt is cut, retried and reported as after the real
   * delay, without waiting it.
   */
  boundTimer?: BoundTimer;
  /** User agent sent with every request. */
  userAgent?: string;
  /** `--as`, `--as-group`, `--as-uid`: override the kubeconfig user's impersonation. */
  impersonate?: Impersonation;
  /** Environment for proxies (HTTPS_PROXY, NO_PROXY) and exec plugins. Default process.env. */
  env?: Record<string, string | undefined>;
}

interface Transport {
  agentOptions: AgentOptions;
  headers: Record<string, string | string[]>;
}

interface Prepared {
  url: URL;
  headers: Record<string, string | string[]>;
  payload: string | undefined;
  isHttps: boolean;
}

/** Where a request was when it failed: the phase decides whether the server can have received it. */
type Phase = 'connect' | 'tls' | 'sent' | 'response';

/** A connection-level failure of one attempt, with what is known about how far the request got. */
type AttemptError = NodeJS.ErrnoException & {
  /** The socket was a kept-alive one used before (Node's `ClientRequest.reusedSocket`). */
  reusedSocket?: boolean;
  phase?: Phase;
  /** For timeouts: the bound that elapsed (ms) and the flag or default it comes from. */
  limitMs?: number;
  limitName?: string;
};

/** The outcome of one attempt that did not succeed. */
export type AttemptFailure =
  | { status: number; retryAfter?: string | undefined; body?: unknown }
  | { error: AttemptError };

/** What to do after a failed attempt. */
export type RetryVerdict = { retry: true; waitMs: number; reason: string; timeout: boolean } | { retry: false; why?: string };

const TIMEOUT_CODES = new Set(['MESHFED_TIMEOUT', 'MESHFED_DIAL_TIMEOUT', 'MESHFED_TLS_TIMEOUT']);
const RETRIED_STATUSES = new Set([500, 502, 503, 504]);
const STATUS_TEXT: Record<number, string> = {
  429: 'Too Many Requests', 500: 'Internal Server Error', 502: 'Bad Gateway', 503: 'Service Unavailable', 504: 'Gateway Timeout',
};
/** Virtual resources whose POST stores nothing: asking them twice is asking once. */
const REVIEW_RESOURCES = /^\/apis\/authorization\.k8s\.io\/[^/]+\/(?:namespaces\/[^/]+\/)?(?:selfsubjectaccessreviews|selfsubjectrulesreviews|subjectaccessreviews|localsubjectaccessreviews)$|^\/apis\/authentication\.k8s\.io\/[^/]+\/(?:selfsubjectreviews|tokenreviews)$/;

/**
 * Whether a request may be sent again after the server may have received it, because repeating it cannot do more
 * than doing it once: reads; server-side apply (declarative: applying the same configuration twice yields the same
 * object); writes with a precondition (a DELETE with `preconditions`, a PUT or a JSON patch carrying the
 * `resourceVersion` it expects: a second copy fails with 409 instead of acting twice); dry runs and access reviews
 * (they store nothing). A POST (create), other PATCHes and a DELETE without preconditions are not, unless the caller
 * says so (`idempotent`), e.g. because it handles the 409 a repeated create would meet.
 */
export function isIdempotent(req: Pick<KubeRequest, 'method' | 'path' | 'query' | 'body' | 'contentType' | 'idempotent'>): boolean {
  if (req.idempotent !== undefined) return req.idempotent;
  if (req.query?.dryRun === 'All') return true;
  const body = req.body && typeof req.body === 'object' ? req.body as { preconditions?: { uid?: string; resourceVersion?: string }; metadata?: { resourceVersion?: string } } : undefined;
  switch (req.method) {
    case 'GET':
      return true;
    case 'PATCH':
      if (req.contentType === 'application/json-patch+json' && Array.isArray(req.body)) {
        // A JSON patch that sets or tests metadata.resourceVersion has the version it expects as a precondition.
        return (req.body as Array<{ op?: string; path?: string }>).some((op) => (op.op === 'replace' || op.op === 'test') && op.path === '/metadata/resourceVersion');
      }
      return req.contentType === 'application/apply-patch+yaml' && Boolean(req.query?.fieldManager);
    case 'DELETE':
      return Boolean(body?.preconditions?.uid || body?.preconditions?.resourceVersion);
    case 'PUT':
      return Boolean(body?.metadata?.resourceVersion);
    case 'POST':
      return REVIEW_RESOURCES.test(req.path);
    default:
      return false;
  }
}

/**
 * `Retry-After` in ms: delay-seconds or an HTTP date (RFC 9110 section 10.2.3; client-go `retryAfterSeconds` reads
 * only the seconds form). Undefined when absent or malformed; a date in the past is 0.
 */
export function parseRetryAfter(header: string | undefined, now = Date.now()): number | undefined {
  const text = header?.trim();
  if (!text) return undefined;
  if (/^\d+$/.test(text)) return Number(text) * 1000;
  const date = Date.parse(text);
  if (Number.isNaN(date) || !/[a-z]/i.test(text)) return undefined;
  return Math.max(0, date - now);
}

/** The backoff before retry number `retry` (1 = the first retry): doubling from the initial delay, jittered, capped. */
export function backoffMs(policy: RetryPolicy, retry: number, random: () => number = Math.random): number {
  const base = policy.initialBackoffMs * 2 ** Math.max(0, retry - 1);
  return Math.round(Math.min(policy.maxBackoffMs, base + random() * policy.jitterFactor * base));
}

/**
 * Decides whether attempt number `attempt` of a request, which failed with `failure`, is followed by another one, and
 * after how long. Pure: the client's retry loop and the unit tests share it.
 */
export function retryVerdict(input: {
  method: string;
  idempotent: boolean;
  failure: AttemptFailure;
  attempt: number;
  /** Timeouts among the attempts before this one. */
  timeoutsBefore: number;
  policy: RetryPolicy;
  now: number;
  /** No retry that could still be under way at this time (epoch ms). */
  deadline?: number | undefined;
  /** How long the next attempt may take (the per-request timeout; 0 = unbounded, counted as nothing). */
  attemptTimeoutMs?: number;
  random?: () => number;
}): RetryVerdict {
  const { idempotent, failure, attempt, policy } = input;
  let reason: string;
  let retryAfterMs: number | undefined;
  let timeout = false;
  if ('status' in failure) {
    const status = failure.status;
    reason = `${status} ${STATUS_TEXT[status] ?? ''}`.trim();
    // The API server answers 429 from its max-in-flight and priority-and-fairness filters, before any handler ran:
    // the request was not executed, whatever its verb (client-go retries it for every verb too).
    if (status === 429) retryAfterMs = parseRetryAfter(failure.retryAfter, input.now);
    else if (RETRIED_STATUSES.has(status)) {
      // A 5xx may come after the write was done (e.g. a storage timeout): only idempotent requests are repeated.
      if (!idempotent) return { retry: false, why: `a ${input.method} is not repeated once the server has received it` };
      retryAfterMs = parseRetryAfter(failure.retryAfter, input.now);
    } else {
      return { retry: false };
    }
    if (retryAfterMs !== undefined) reason += `, Retry-After ${formatMs(Math.min(retryAfterMs, policy.maxRetryAfterMs))}`;
  } else {
    const error = failure.error;
    const code = error.code ?? '';
    const neverSent = error.phase === 'connect' || error.phase === 'tls';
    timeout = TIMEOUT_CODES.has(code) || code === 'ETIMEDOUT';
    if (code === 'ECONNREFUSED') reason = 'connection refused';
    else if (timeout) reason = describeTimeout(error);
    else if (code === 'ECONNRESET' || code === 'EPIPE') reason = 'connection reset';
    else return { retry: false };
    // Refused, or not yet through the TLS handshake: the server never saw the request, any method may go again.
    if (!idempotent && !(code === 'ECONNREFUSED' || neverSent)) {
      return { retry: false, why: `a ${input.method} is not repeated once the server may have received it` };
    }
    if (timeout && input.timeoutsBefore >= policy.maxTimeoutRetries) return { retry: false };
  }
  if (attempt >= policy.maxAttempts) return { retry: false };
  const waitMs = Math.max(backoffMs(policy, attempt, input.random), Math.min(retryAfterMs ?? 0, policy.maxRetryAfterMs));
  if (input.deadline !== undefined && input.now + waitMs + (input.attemptTimeoutMs ?? 0) > input.deadline) {
    return { retry: false, why: 'the command\'s deadline for retries has passed' };
  }
  return { retry: true, waitMs, reason, timeout };
}

function describeTimeout(error: AttemptError): string {
  const within = error.limitMs !== undefined ? ` within ${formatMs(error.limitMs)}` : '';
  const flag = error.limitName ? ` (${error.limitName})` : '';
  switch (error.code) {
    case 'MESHFED_DIAL_TIMEOUT':
    case 'ETIMEDOUT':
      return `no connection${within}${flag}`;
    case 'MESHFED_TLS_TIMEOUT':
      return `no TLS handshake${within}${flag}`;
    default:
      return `no answer${within}${flag}`;
  }
}

/** The error an aborted request fails with: the signal's reason when it is an error, else an interrupt. */
function abortError(signal: AbortSignal): Error {
  return signal.reason instanceof Error && signal.reason.name !== 'AbortError' ? signal.reason : new InterruptedError();
}

/** How a client waits before a retry (see {@link KubeClientOptions.retryWait}); rejects when `signal` aborts. */
export type RetryWait = (ms: number, signal: AbortSignal | undefined) => Promise<void>;

/** Waits `ms`, or rejects as soon as `signal` aborts: the real delay before a retry. */
function waitTimer(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolvePromise, reject) => {
    if (signal?.aborted) return reject(abortError(signal));
    const onAbort = () => {
      clearTimeout(timer);
      reject(abortError(signal!));
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolvePromise();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** One bound of an attempt whose timer runs. */
export interface AttemptBound {
  /** `dial`: opening the connection; `tls`: the TLS handshake; `request`: the whole attempt (`--request-timeout`). */
  kind: 'dial' | 'tls' | 'request';
  /** How long the bound allows (ms). */
  ms: number;
  method: string;
  /** The request's URL (server, path and query; never credentials). */
  url: string;
}

/** Starts the timer of one bound: `elapse` cuts the attempt once the bound has run out. Returns what stops the timer. */
export type BoundTimer = (bound: AttemptBound, elapse: () => void) => () => void;

/** The real timer of a bound (see {@link KubeClientOptions.boundTimer}). */
export const realBoundTimer: BoundTimer = (bound, elapse) => {
  const timer = setTimeout(elapse, bound.ms);
  return () => clearTimeout(timer);
};

/** The first of several optional signals to abort. */
function anySignal(signals: Array<AbortSignal | undefined>): AbortSignal | undefined {
  const present = signals.filter((s): s is AbortSignal => s !== undefined);
  if (present.length <= 1) return present[0];
  return AbortSignal.any(present);
}

/** What one attempt received: the status and, for an error status, what is needed to retry or report it. */
interface Answer {
  status: number;
  retryAfter: string | undefined;
  text: string;
  warnings: string[];
}

/** An attempt whose response has started. */
interface Opened {
  request: ClientRequest;
  response: IncomingMessage;
  /** Stops the per-request timer (a stream whose answer has started runs as long as it needs). */
  stopTimer(): void;
  /** Clears every timer and listener of the attempt. */
  finish(): void;
  /** Why the attempt was cut (a timeout), if it was. */
  cutBy(): AttemptError | undefined;
}

/**
 * A client for one kubeconfig context (one per context: credentials are never shared or switched). It speaks the
 * REST API directly with Node's https, so the plugin starts fast; `@kubernetes/client-node` is loaded only for users
 * whose credentials come from an `exec` plugin or an `auth-provider`, which it knows how to run.
 *
 * Every wait is bounded: connecting ({@link DEFAULT_DIAL_TIMEOUT_MS}), the TLS handshake
 * ({@link DEFAULT_TLS_HANDSHAKE_TIMEOUT_MS}) and, unless `timeoutMs` is 0, each attempt. Failed attempts are retried
 * by {@link retryVerdict}'s rules.
 */
export class KubeClient {
  readonly server: string;
  private transport: Promise<Transport> | undefined;
  private agent: Agent | undefined;
  /** Requests sent by this client, retries included, for `--verbose` and tests. */
  requestCount = 0;
  /** Retries among them. */
  retryCount = 0;
  /** Aborted by {@link close}: requests still under way (a failed command's other reads) stop, none is retried. */
  private readonly closing = new AbortController();

  constructor(readonly context: ResolvedContext, private readonly options: KubeClientOptions = {}) {
    this.server = (context.cluster?.server ?? '').replace(/\/+$/, '');
    if (!this.server) {
      throw new InputError(`context "${context.name}" has no cluster server address`, {
        hint: `set it with kubectl config set-cluster ${context.clusterName} --server=https://<address>`,
      });
    }
    // Every request under way listens to these signals: a command may well have more than ten at once.
    setMaxListeners(0, this.closing.signal);
    if (options.signal) setMaxListeners(0, options.signal);
  }

  /** The per-request timeout in ms (0 = none). */
  get timeoutMs(): number {
    return this.options.timeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
  }

  private get policy(): RetryPolicy {
    return { ...DEFAULT_RETRY_POLICY, ...this.options.retry };
  }

  private async loadTransport(): Promise<Transport> {
    const cluster = this.context.cluster!;
    const user = this.context.user ?? {};
    const headers: Record<string, string> = {};
    const agentOptions: AgentOptions = {};
    const read = (path: string, what: string) => {
      try {
        return readFileSync(path);
      } catch (error) {
        throw new InputError(`cannot read ${what} ${path} of context "${this.context.name}": ${(error as Error).message}`);
      }
    };
    if (cluster['certificate-authority-data']) agentOptions.ca = Buffer.from(cluster['certificate-authority-data'], 'base64');
    else if (cluster['certificate-authority']) agentOptions.ca = read(cluster['certificate-authority'], 'certificate authority');
    if (cluster['insecure-skip-tls-verify']) agentOptions.rejectUnauthorized = false;
    if (cluster['tls-server-name']) agentOptions.servername = cluster['tls-server-name'];

    if (user.exec) {
      // Run as kubectl runs it: its stderr is the user's (device-code logins), a relative command is the kubeconfig's.
      const credential = await runExecPlugin(user.exec, {
        contextName: this.context.name, cluster: { ...cluster, server: this.server },
        ...(this.options.env ? { env: this.options.env as NodeJS.ProcessEnv } : {}),
      });
      if (credential.token) headers.authorization = `Bearer ${credential.token}`;
      if (credential.cert) agentOptions.cert = credential.cert;
      if (credential.key) agentOptions.key = credential.key;
    } else if (user['auth-provider']) {
      const { KubeConfig } = await import('@kubernetes/client-node');
      const kc = new KubeConfig();
      kc.loadFromOptions({
        clusters: [{ name: this.context.clusterName, server: this.server, skipTLSVerify: Boolean(cluster['insecure-skip-tls-verify']) }],
        users: [{ name: this.context.userName, authProvider: user['auth-provider'] }],
        contexts: [{ name: this.context.name, cluster: this.context.clusterName, user: this.context.userName }],
        currentContext: this.context.name,
      });
      const options: RequestOptions = { headers: {} };
      await kc.applyToHTTPSOptions(options);
      Object.assign(headers, options.headers as Record<string, string>);
      if (options.cert) agentOptions.cert = options.cert;
      if (options.key) agentOptions.key = options.key;
    }
    if (user['client-certificate-data']) agentOptions.cert = Buffer.from(user['client-certificate-data'], 'base64');
    else if (user['client-certificate']) agentOptions.cert = read(user['client-certificate'], 'client certificate');
    if (user['client-key-data']) agentOptions.key = Buffer.from(user['client-key-data'], 'base64');
    else if (user['client-key']) agentOptions.key = read(user['client-key'], 'client key');
    // One TLS context for all the connections of this client: without it, each new connection parses the CA, the
    // certificate and the key again (Node's tls.connect makes a context per connection unless given one), a
    // noticeable share of a command's CPU for the six connections it may open per cluster. Credentials that
    // OpenSSL refuses are left to the connection, which reports them as before.
    if (agentOptions.ca !== undefined || agentOptions.cert !== undefined || agentOptions.key !== undefined) {
      try {
        agentOptions.secureContext = createSecureContext({ ca: agentOptions.ca, cert: agentOptions.cert, key: agentOptions.key });
      } catch {
        // reported by the connection
      }
    }
    Object.assign(headers, impersonationHeaders(user, this.options.impersonate, this.context.name));
    if (user.token) headers.authorization = `Bearer ${user.token}`;
    else if (user.tokenFile) headers.authorization = `Bearer ${read(user.tokenFile, 'token file').toString('utf8').trim()}`;
    else if (user.username !== undefined && user.password !== undefined) {
      headers.authorization = `Basic ${Buffer.from(`${user.username}:${user.password}`).toString('base64')}`;
    }
    return { agentOptions, headers };
  }

  private async prepare(req: KubeRequest): Promise<Prepared> {
    this.transport ??= this.loadTransport();
    const transport = await this.transport;
    const url = new URL(this.server + req.path);
    for (const [key, value] of Object.entries(req.query ?? {})) if (value !== undefined) url.searchParams.set(key, value);
    const payload = req.body === undefined ? undefined : typeof req.body === 'string' ? req.body : JSON.stringify(req.body);
    const headers: Record<string, string | string[]> = {
      accept: req.accept ?? 'application/json',
      'user-agent': this.options.userAgent ?? userAgent(),
      ...transport.headers,
    };
    if (payload !== undefined) {
      headers['content-type'] = req.contentType ?? 'application/json';
      headers['content-length'] = String(Buffer.byteLength(payload));
    }
    const isHttps = url.protocol === 'https:';
    if (isHttps && !this.agent) {
      const proxy = proxyFor(url, this.context.cluster?.['proxy-url'], this.options.env ?? process.env);
      this.agent = proxy
        ? new TunnelAgent(proxy, { keepAlive: true, maxSockets: MAX_CONNECTIONS, ...transport.agentOptions }, this.options.dialTimeoutMs ?? DEFAULT_DIAL_TIMEOUT_MS)
        : new Agent({ keepAlive: true, maxSockets: MAX_CONNECTIONS, ...transport.agentOptions });
    }
    return { url, headers, payload, isHttps };
  }

  private send(url: URL, method: string, headers: Record<string, string | string[]>, isHttps: boolean, onResponse: (response: IncomingMessage) => void): ClientRequest {
    return isHttps
      ? httpsRequest(url, { method, headers, agent: this.agent }, onResponse)
      : httpRequest(url, { method, headers }, onResponse);
  }

  /** Sends one request and returns the parsed JSON body; errors become {@link ClusterError}s that say what failed. */
  async request<T = unknown>(req: KubeRequest): Promise<KubeResponse<T>> {
    const interrupt = req.signal ?? this.options.signal;
    // Interrupted: nothing more is sent (checked again before each attempt).
    if (interrupt?.aborted) throw abortError(interrupt);
    const prepared = await this.prepare(req);
    const timeoutMs = req.timeoutMs ?? this.timeoutMs;
    const signal = anySignal([this.closing.signal, interrupt]);
    const answer = await this.withRetries(req, timeoutMs, signal, async () => {
      const opened = await this.open(prepared, req.method, timeoutMs, signal);
      const text = await readBody(opened, signal);
      return { status: opened.response.statusCode ?? 0, retryAfter: header(opened.response, 'retry-after'), text, warnings: warningsOf(opened.response) };
    }, (result) => (result.status >= 400 ? result : undefined));
    return { status: answer.status, body: parseBody(answer.text) as T, warnings: answer.warnings };
  }

  /**
   * Opens a streaming GET (a watch or a followed log) and calls `onLine` for every line received, until the server
   * ends the response or `signal` aborts (then it resolves quietly). `--request-timeout` applies to the connection
   * and the response headers only, not to the stream; failures before the stream starts are retried.
   */
  async stream(req: Omit<KubeRequest, 'method' | 'body'>, onLine: (line: string) => void, signal?: AbortSignal): Promise<void> {
    // The client's signal (an interrupt) fails the stream; the caller's `signal` ends it quietly.
    const interrupt = req.signal ?? this.options.signal;
    if (interrupt?.aborted) throw abortError(interrupt);
    const getRequest: KubeRequest = { ...req, method: 'GET' };
    const prepared = await this.prepare(getRequest);
    const timeoutMs = req.timeoutMs ?? this.timeoutMs;
    const abort = anySignal([this.closing.signal, interrupt, signal]);
    if (signal?.aborted) return;
    let opened: Opened;
    try {
      ({ opened } = await this.withRetries(getRequest, timeoutMs, abort, async () => {
        const started = await this.open(prepared, 'GET', timeoutMs, abort);
        const status = started.response.statusCode ?? 0;
        if (status < 400) {
          started.stopTimer();
          return { opened: started, answer: undefined };
        }
        const text = await readBody(started, abort);
        return { opened: started, answer: { status, retryAfter: header(started.response, 'retry-after'), text, warnings: [] } };
      }, (result) => result.answer));
    } catch (error) {
      if (signal?.aborted) return;
      throw error;
    }
    const { request, response } = opened;
    await new Promise<void>((resolvePromise, reject) => {
      let settled = false;
      const finish = (error?: unknown) => {
        if (settled) return;
        settled = true;
        opened.finish();
        abort?.removeEventListener('abort', onAbort);
        if (error) reject(error);
        else resolvePromise();
      };
      const onAbort = () => {
        request.destroy();
        // The caller's own signal ends the stream quietly; the client's (an interrupt) is an error.
        finish(signal?.aborted ? undefined : abortError(abort!));
      };
      if (abort?.aborted) return onAbort();
      abort?.addEventListener('abort', onAbort, { once: true });
      let buffered = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => {
        buffered += chunk;
        let newline: number;
        while ((newline = buffered.indexOf('\n')) >= 0) {
          const line = buffered.slice(0, newline);
          buffered = buffered.slice(newline + 1);
          if (line.trim()) onLine(line);
        }
      });
      response.on('end', () => {
        if (buffered.trim()) onLine(buffered);
        finish();
      });
      response.on('error', (error) => finish(abort?.aborted ? undefined : error));
      response.on('aborted', () => finish());
    });
  }

  /**
   * Runs `attempt` until it succeeds or {@link retryVerdict} says to stop; `failureOf` tells an error answer from a
   * success. Each retry is logged (`--verbose`) with the method, path and reason, never a body or a header.
   */
  private async withRetries<R>(req: KubeRequest, timeoutMs: number, signal: AbortSignal | undefined, attempt: () => Promise<R>, failureOf: (result: R) => Answer | undefined): Promise<R> {
    const policy = this.policy;
    const idempotent = isIdempotent(req);
    let staleResets = 0;
    let timeouts = 0;
    for (let n = 1; ;) {
      if (signal?.aborted) throw abortError(signal);
      this.requestCount += 1;
      let result: R | undefined;
      let error: AttemptError | undefined;
      try {
        result = await attempt();
      } catch (caught) {
        if (signal?.aborted) throw abortError(signal);
        error = caught as AttemptError;
      }
      // A kept-alive socket the server closed while it sat idle is reset as soon as it is reused, before the server
      // read the request: it is sent again at once, whatever the method (Node's documented keep-alive race,
      // http.ClientRequest `reusedSocket`). After a long pause (a CA key being generated) every idle socket of the
      // pool may be dead: each reset one leaves the pool, so these resends end.
      if (error?.code === 'ECONNRESET' && error.reusedSocket && error.phase !== 'response' && staleResets < MAX_STALE_SOCKET_RETRIES) {
        staleResets += 1;
        this.options.log?.(`retrying ${req.method} ${req.path} (context "${this.context.name}") at once: the server had closed the kept-alive connection it went out on`);
        this.retryCount += 1;
        continue;
      }
      const answer = result === undefined ? undefined : failureOf(result);
      if (result !== undefined && answer === undefined) return result;
      const failure: AttemptFailure = error ? { error } : { status: answer!.status, retryAfter: answer!.retryAfter };
      const verdict = retryVerdict({
        method: req.method, idempotent, failure, attempt: n, timeoutsBefore: timeouts, policy, now: Date.now(),
        deadline: this.options.deadline, attemptTimeoutMs: timeoutMs, random: this.options.random ?? Math.random,
      });
      if (!verdict.retry) {
        throw error ? this.connectionError(error, req, n, verdict.why) : this.statusError(req, answer!.status, parseBody(answer!.text), n, verdict.why);
      }
      this.options.log?.(`retrying ${req.method} ${req.path} (context "${this.context.name}") after ${verdict.reason} (attempt ${n + 1}/${policy.maxAttempts}, waiting ${formatMs(verdict.waitMs)})`);
      if (verdict.timeout) timeouts += 1;
      this.retryCount += 1;
      await (this.options.retryWait ?? waitTimer)(verdict.waitMs, signal);
      n += 1;
    }
  }

  /**
   * Sends one attempt and resolves when its response starts. Connecting and the TLS handshake are bounded by their
   * own timeouts; `timeoutMs` (if not 0) bounds the whole attempt until {@link Opened.stopTimer} or
   * {@link Opened.finish}. A connection error carries the phase it happened in and whether the socket was reused.
   */
  private open(prepared: Prepared, method: string, timeoutMs: number, signal: AbortSignal | undefined): Promise<Opened> {
    const dialMs = this.options.dialTimeoutMs ?? DEFAULT_DIAL_TIMEOUT_MS;
    const tlsMs = this.options.tlsHandshakeTimeoutMs ?? DEFAULT_TLS_HANDSHAKE_TIMEOUT_MS;
    const startTimer = this.options.boundTimer ?? realBoundTimer;
    const url = prepared.url.href;
    const noTimer = () => undefined;
    return new Promise<Opened>((resolvePromise, reject) => {
      let phase: Phase = 'connect';
      let cutError: AttemptError | undefined;
      let stopDial: () => void = noTimer;
      let stopTls: () => void = noTimer;
      let stopRequest: () => void = noTimer;
      const finish = () => {
        stopDial();
        stopTls();
        stopRequest();
        signal?.removeEventListener('abort', onAbort);
      };
      const cut = (code: string, limitMs: number, limitName?: string) => {
        if (cutError) return;
        cutError = Object.assign(new Error(code), { code, phase, limitMs, ...(limitName ? { limitName } : {}) });
        request.destroy(cutError);
      };
      const request = this.send(prepared.url, method, prepared.headers, prepared.isHttps, (response) => {
        phase = 'response';
        stopDial();
        stopTls();
        resolvePromise({ request, response, stopTimer: () => stopRequest(), finish, cutBy: () => cutError });
      });
      if (timeoutMs > 0) {
        stopRequest = startTimer({ kind: 'request', ms: timeoutMs, method, url }, () => {
          cut(phase === 'connect' ? 'MESHFED_DIAL_TIMEOUT' : phase === 'tls' ? 'MESHFED_TLS_TIMEOUT' : 'MESHFED_TIMEOUT', timeoutMs, '--request-timeout');
        });
      }
      request.on('socket', (socket: Socket) => {
        // A kept-alive socket is connected (and through TLS) already.
        if (!socket.connecting) {
          phase = 'sent';
          return;
        }
        stopDial = startTimer({ kind: 'dial', ms: dialMs, method, url }, () => cut('MESHFED_DIAL_TIMEOUT', dialMs));
        socket.once('connect', () => {
          stopDial();
          if (!prepared.isHttps) {
            phase = 'sent';
            return;
          }
          phase = 'tls';
          stopTls = startTimer({ kind: 'tls', ms: tlsMs, method, url }, () => cut('MESHFED_TLS_TIMEOUT', tlsMs));
          socket.once('secureConnect', () => {
            stopTls();
            phase = 'sent';
          });
        });
      });
      const onAbort = () => request.destroy(abortError(signal!));
      signal?.addEventListener('abort', onAbort, { once: true });
      request.on('error', (error: AttemptError) => {
        finish();
        if (signal?.aborted) return reject(abortError(signal));
        const failure = cutError ?? error;
        reject(Object.assign(failure, { reusedSocket: request.reusedSocket, phase: failure.phase ?? phase }));
      });
      request.end(prepared.payload);
    });
  }

  /**
   * Ends the client: requests still under way are cancelled (never retried) and keep-alive connections closed, so
   * the process can exit promptly.
   */
  close(): void {
    if (!this.closing.signal.aborted) this.closing.abort(new ClusterError(`requests to ${this.server} (context "${this.context.name}") were cancelled: the command ended`));
    this.agent?.destroy();
  }

  private connectionError(error: AttemptError, req: KubeRequest, attempts: number, why: string | undefined): ClusterError {
    const where = `${this.server} (context "${this.context.name}")`;
    const what = describeRequest(req.method, req.path, definedQuery(req));
    const ns = what.namespace ? ` in namespace "${what.namespace}"` : '';
    const name = what.name ?? req.objectName;
    const target = name ? `${what.resource} "${name}"` : what.resource;
    // What was being done, and how often it was tried.
    const during = `, ${attempts > 1 ? `${attempts} attempts` : 'trying'} to ${what.verb} ${target}${ns}`;
    const hint = 'check that the cluster is running and that the server address in the kubeconfig is right';
    const rerun = why ? `it was not sent again (${why}): run the command again once the server is reachable` : hint;
    const options = { cause: error };
    switch (error.code) {
      case 'MESHFED_TIMEOUT':
      case 'MESHFED_DIAL_TIMEOUT':
      case 'MESHFED_TLS_TIMEOUT':
      case 'ETIMEDOUT': {
        const phrase = error.code === 'MESHFED_TIMEOUT' ? 'no answer' : error.code === 'MESHFED_TLS_TIMEOUT' ? 'the TLS handshake did not complete' : 'no connection';
        const within = error.limitMs !== undefined ? ` within ${formatMs(error.limitMs)}` : '';
        const flag = error.limitName ? ` (${error.limitName})` : '';
        return new ClusterError(`cannot reach ${where}: ${phrase}${within}${flag}${during}`, {
          ...options,
          hint: error.limitName
            ? `the server accepted the connection but did not answer in time: check it, or allow more with --request-timeout (e.g. 2m; 0 = no limit)`
            : hint,
        });
      }
      case 'ECONNREFUSED':
        return new ClusterError(`cannot reach ${where}: connection refused${during}`, { ...options, hint });
      case 'ENOTFOUND':
      case 'EAI_AGAIN':
        return new ClusterError(`cannot reach ${where}: host name not found`, { ...options, hint });
      case 'ECONNRESET':
      case 'EPIPE':
        return new ClusterError(`cannot reach ${where}: the connection was reset${during}`, { ...options, hint: rerun });
      case 'EHOSTUNREACH':
      case 'ENETUNREACH':
        return new ClusterError(`cannot reach ${where}: no route to host`, { ...options, hint });
      case 'UNABLE_TO_VERIFY_LEAF_SIGNATURE':
      case 'SELF_SIGNED_CERT_IN_CHAIN':
      case 'DEPTH_ZERO_SELF_SIGNED_CERT':
      case 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY':
        return new ClusterError(`cannot trust ${where}: its TLS certificate is signed by an unknown authority`, {
          hint: 'check certificate-authority(-data) of the cluster in the kubeconfig', ...options,
        });
      case 'ERR_TLS_CERT_ALTNAME_INVALID':
        return new ClusterError(`cannot trust ${where}: its TLS certificate is not valid for this address`, { hint: 'check the server address or tls-server-name in the kubeconfig', ...options });
      case 'CERT_HAS_EXPIRED':
        return new ClusterError(`cannot trust ${where}: its TLS certificate has expired`, options);
      default:
        return new ClusterError(`cannot reach ${where}: ${error.message}${during}`, { ...options, hint });
    }
  }

  private statusError(req: KubeRequest, status: number, body: unknown, attempts = 1, why?: string): ClusterError {
    const statusObject = body && typeof body === 'object' ? (body as { message?: string; reason?: string }) : {};
    const serverMessage = statusObject.message ?? (typeof body === 'string' && body ? body.trim() : `HTTP ${status}`);
    const what = describeRequest(req.method, req.path, definedQuery(req));
    const ns = what.namespace ? ` in namespace "${what.namespace}"` : '';
    const name = what.name ?? req.objectName;
    const target = name ? `${what.resource} "${name}"` : what.resource;
    const options = { status, reason: statusObject.reason };
    if (status === 401) {
      return new ClusterError(`the server ${this.server} rejected the credentials of user "${this.context.userName}" (context "${this.context.name}"): 401 Unauthorized`, {
        ...options, hint: 'your token or certificate may have expired: log in to the cluster again',
      });
    }
    if (status === 403 && /cannot impersonate/.test(serverMessage)) {
      return new ClusterError(`user "${this.context.userName}" (context "${this.context.name}") may not act as the user it impersonates: ${serverMessage}`, {
        ...options, hint: 'check --as, --as-group, --as-uid and the kubeconfig user\'s as, as-groups, as-uid and as-user-extra, or ask a cluster admin for the impersonate permission',
      });
    }
    if (status === 403) {
      // A request without a namespace reads across namespaces (or a cluster-scoped kind): a ClusterRole grants it.
      const scope = ns || ' (cluster-wide)';
      // The API server judged the impersonated user (--as, or the kubeconfig's as): named, as its own message does.
      const actingAs = this.options.impersonate?.user ?? (typeof this.context.user?.as === 'string' && this.context.user.as ? this.context.user.as : undefined);
      const who = `user "${this.context.userName}"${actingAs ? ` acting as "${actingAs}"` : ''}`;
      // A permission is to a verb on a resource: a create's object is not part of it.
      return new ClusterError(`${who} (context "${this.context.name}") is forbidden to ${what.verb} ${what.name ? target : what.resource}${scope}`, {
        ...options, hint: `ask a cluster admin for RBAC permission to ${what.verb} ${what.resource}${scope} (kubectl meshfed rbac prints the roles meshfed needs)`,
      });
    }
    if (status === 404 && what.name) {
      return new ClusterError(`${target} not found${ns} (context "${this.context.name}")`, options);
    }
    const tried = attempts > 1 ? ` (${attempts} attempts)` : '';
    if (status === 429 || RETRIED_STATUSES.has(status)) {
      return new ClusterError(`${what.verb} ${target}${ns} failed (context "${this.context.name}"): ${serverMessage}${tried}`, {
        ...options,
        hint: why
          ? `it was not sent again (${why}): run the command again once the API server is healthy; a re-run applies only what is missing`
          : 'the API server kept failing: run the command again once it is healthy; a re-run applies only what is missing',
      });
    }
    return new ClusterError(`${what.verb} ${target}${ns} failed (context "${this.context.name}"): ${serverMessage}${tried}`, options);
  }
}

function definedQuery(req: KubeRequest): Record<string, string> {
  return Object.fromEntries(Object.entries(req.query ?? {}).filter((e): e is [string, string] => e[1] !== undefined));
}

function header(response: IncomingMessage, name: string): string | undefined {
  const value = response.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

/** Reads a whole response body; a cut attempt or an abort rejects with its reason. */
function readBody(opened: Opened, signal: AbortSignal | undefined): Promise<string> {
  const { response } = opened;
  return new Promise<string>((resolvePromise, reject) => {
    const chunks: Buffer[] = [];
    let settled = false;
    const fail = (error: AttemptError) => {
      if (settled) return;
      settled = true;
      opened.finish();
      if (signal?.aborted) return reject(abortError(signal));
      const cut = opened.cutBy();
      reject(cut ?? Object.assign(error, { phase: 'response' as const }));
    };
    response.on('data', (chunk: Buffer) => chunks.push(chunk));
    response.on('end', () => {
      if (settled) return;
      settled = true;
      opened.finish();
      resolvePromise(Buffer.concat(chunks).toString('utf8'));
    });
    response.on('error', (error: AttemptError) => fail(error));
    response.on('close', () => {
      if (!response.complete) fail(Object.assign(new Error('the connection was closed during the answer'), { code: 'ECONNRESET' }));
    });
  });
}

function warningsOf(response: IncomingMessage): string[] {
  const header = response.headers.warning;
  const list = header === undefined ? [] : Array.isArray(header) ? header : [header];
  return list.map(parseWarning);
}

function parseBody(text: string): unknown {
  if (text && /^\s*[[{]/.test(text)) {
    try {
      return JSON.parse(text);
    } catch {
      return text;
    }
  }
  return text;
}

/** `299 - "unknown field \"spec.foo\""` → `unknown field "spec.foo"`. */
function parseWarning(header: string): string {
  const match = /^\d{3} \S+ "(.*)"/.exec(header);
  return match ? match[1]!.replace(/\\"/g, '"') : header;
}

export function formatMs(ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000}s` : `${ms}ms`;
}
