import { request as httpsRequest, Agent, type AgentOptions, type RequestOptions } from 'node:https';
import { request as httpRequest, type ClientRequest, type IncomingMessage } from 'node:http';
import { readFileSync } from 'node:fs';
import { ClusterError, InputError, InterruptedError } from '../errors.js';
import type { ResolvedContext } from './kubeconfig.js';
import { describeRequest } from './request.js';

/** Requests resent after a reset on a reused kept-alive socket (at most one per socket of the agent's pool). */
const MAX_STALE_SOCKET_RETRIES = 16;

/** One request to the API server. */
export interface KubeRequest {
  method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  /** Absolute API path, e.g. `/api/v1/namespaces/default/services`. */
  path: string;
  query?: Record<string, string | undefined>;
  body?: unknown;
  /** Defaults to application/json when there is a body. */
  contentType?: string;
  /** Overrides the client's timeout for this request (ms; 0 = none). */
  timeoutMs?: number;
  /**
   * Aborts this request (before it is sent, or while it is in flight); it then fails with the signal's reason.
   * Default: the client's {@link KubeClientOptions.signal}. A cleanup that must still run after an interrupt passes
   * a signal of its own (its own deadline).
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
  /** Per-request timeout in ms (`--request-timeout`); 0 means none. Default 0, as kubectl. */
  timeoutMs?: number;
  /** User agent sent with every request. */
  userAgent?: string;
  /** Aborts every request and stream of this client that does not bring its own signal (the CLI's interrupt). */
  signal?: AbortSignal;
}

interface Transport {
  agentOptions: AgentOptions;
  headers: Record<string, string>;
}

/**
 * A client for one kubeconfig context (one per context: credentials are never shared or switched). It speaks the
 * REST API directly with Node's https, so the plugin starts fast; `@kubernetes/client-node` is loaded only for users
 * whose credentials come from an `exec` plugin or an `auth-provider`, which it knows how to run.
 */
export class KubeClient {
  readonly server: string;
  private transport: Promise<Transport> | undefined;
  private agent: Agent | undefined;
  /** Requests sent by this client, for `--verbose` and tests. */
  requestCount = 0;

  constructor(readonly context: ResolvedContext, private readonly options: KubeClientOptions = {}) {
    this.server = (context.cluster?.server ?? '').replace(/\/+$/, '');
    if (!this.server) {
      throw new InputError(`context "${context.name}" has no cluster server address`, {
        hint: `set it with kubectl config set-cluster ${context.clusterName} --server=https://<address>`,
      });
    }
  }

  get timeoutMs(): number {
    return this.options.timeoutMs ?? 0;
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

    if (user.exec || user['auth-provider']) {
      const { KubeConfig } = await import('@kubernetes/client-node');
      const kc = new KubeConfig();
      kc.loadFromOptions({
        clusters: [{ name: this.context.clusterName, server: this.server, skipTLSVerify: Boolean(cluster['insecure-skip-tls-verify']) }],
        users: [{ name: this.context.userName, exec: user.exec, authProvider: user['auth-provider'] }],
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
    if (user.token) headers.authorization = `Bearer ${user.token}`;
    else if (user.tokenFile) headers.authorization = `Bearer ${read(user.tokenFile, 'token file').toString('utf8').trim()}`;
    else if (user.username !== undefined && user.password !== undefined) {
      headers.authorization = `Basic ${Buffer.from(`${user.username}:${user.password}`).toString('base64')}`;
    }
    return { agentOptions, headers };
  }

  private async prepare(req: KubeRequest): Promise<{ url: URL; headers: Record<string, string>; payload: string | undefined; isHttps: boolean }> {
    this.transport ??= this.loadTransport();
    const transport = await this.transport;
    const url = new URL(this.server + req.path);
    for (const [key, value] of Object.entries(req.query ?? {})) if (value !== undefined) url.searchParams.set(key, value);
    const payload = req.body === undefined ? undefined : typeof req.body === 'string' ? req.body : JSON.stringify(req.body);
    const headers: Record<string, string> = {
      accept: 'application/json',
      'user-agent': this.options.userAgent ?? 'kubectl-meshfed',
      ...transport.headers,
    };
    if (payload !== undefined) {
      headers['content-type'] = req.contentType ?? 'application/json';
      headers['content-length'] = String(Buffer.byteLength(payload));
    }
    const isHttps = url.protocol === 'https:';
    if (isHttps) this.agent ??= new Agent({ keepAlive: true, ...transport.agentOptions });
    this.requestCount += 1;
    return { url, headers, payload, isHttps };
  }

  private send(url: URL, method: string, headers: Record<string, string>, isHttps: boolean, onResponse: (response: IncomingMessage) => void): ClientRequest {
    return isHttps
      ? httpsRequest(url, { method, headers, agent: this.agent }, onResponse)
      : httpRequest(url, { method, headers }, onResponse);
  }

  /** Sends one request and returns the parsed JSON body; errors become {@link ClusterError}s that say what failed. */
  async request<T = unknown>(req: KubeRequest): Promise<KubeResponse<T>> {
    const signal = req.signal ?? this.options.signal;
    // Interrupted: nothing more is sent.
    if (signal?.aborted) throw abortReason(signal);
    const { url, headers, payload, isHttps } = await this.prepare(req);
    if (signal?.aborted) throw abortReason(signal);
    const timeoutMs = req.timeoutMs ?? this.timeoutMs;
    // A kept-alive socket the server closed while it sat idle is reset as soon as it is reused, before the server read
    // the request: it is sent again (Node's documented keep-alive race, http.ClientRequest `reusedSocket`). After a
    // long pause (a CA key being generated) every idle socket of the pool may be dead: each reset one leaves the
    // pool, so the retries end. Any other reset is the server's answer.
    let exchanged: { status: number; text: string; warnings: string[] } | undefined;
    for (let retries = 0; !exchanged; retries += 1) {
      exchanged = await this.exchange(url, req.method, headers, isHttps, payload, timeoutMs, signal).catch((error: NodeJS.ErrnoException & { reusedSocket?: boolean }) => {
        if (signal?.aborted) throw abortReason(signal);
        if (error.code === 'ECONNRESET' && error.reusedSocket && retries < MAX_STALE_SOCKET_RETRIES) return undefined;
        throw this.connectionError(error, timeoutMs);
      });
    }
    const { status, text, warnings } = exchanged;
    const body = parseBody(text);
    if (status >= 400) throw this.statusError(req, status, body);
    return { status, body: body as T, warnings };
  }

  /** One request and its whole response; a connection error carries whether the socket was a reused one. */
  private exchange(url: URL, method: string, headers: Record<string, string>, isHttps: boolean, payload: string | undefined, timeoutMs: number, signal?: AbortSignal): Promise<{ status: number; text: string; warnings: string[] }> {
    return new Promise<{ status: number; text: string; warnings: string[] }>((resolvePromise, reject) => {
      const done = () => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
      };
      const request = this.send(url, method, headers, isHttps, (response) => {
        const chunks: Buffer[] = [];
        response.on('data', (chunk: Buffer) => chunks.push(chunk));
        response.on('end', () => {
          done();
          resolvePromise({ status: response.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8'), warnings: warningsOf(response) });
        });
        response.on('error', (error) => { done(); reject(error); });
      });
      const timer = timeoutMs > 0
        ? setTimeout(() => request.destroy(Object.assign(new Error('timeout'), { code: 'MESHFED_TIMEOUT' })), timeoutMs)
        : undefined;
      // An interrupt aborts the call in flight (the caller turns the error into the signal's reason).
      const onAbort = () => request.destroy(Object.assign(new Error('aborted'), { code: 'MESHFED_ABORTED' }));
      signal?.addEventListener('abort', onAbort, { once: true });
      request.on('error', (error) => { done(); reject(Object.assign(error, { reusedSocket: request.reusedSocket })); });
      request.end(payload);
    });
  }

  /**
   * Opens a streaming GET (a watch or a followed log) and calls `onLine` for every line received, until the server
   * ends the response or `signal` aborts (then it resolves quietly). `--request-timeout` applies to the connection
   * and the response headers only, not to the stream.
   */
  async stream(req: Omit<KubeRequest, 'method' | 'body'>, onLine: (line: string) => void, signal?: AbortSignal): Promise<void> {
    // The client's signal (an interrupt) fails the stream; the caller's `signal` ends it quietly.
    const interrupt = req.signal ?? this.options.signal;
    if (interrupt?.aborted) throw abortReason(interrupt);
    const { url, headers, isHttps } = await this.prepare({ ...req, method: 'GET' });
    const timeoutMs = req.timeoutMs ?? this.timeoutMs;
    await new Promise<void>((resolvePromise, reject) => {
      if (signal?.aborted) return resolvePromise();
      let settled = false;
      const finish = (error?: unknown) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        interrupt?.removeEventListener('abort', onInterrupt);
        if (error) reject(error);
        else resolvePromise();
      };
      const request = this.send(url, 'GET', headers, isHttps, (response) => {
        clearTimeout(timer);
        const status = response.statusCode ?? 0;
        if (status >= 400) {
          const chunks: Buffer[] = [];
          response.on('data', (chunk: Buffer) => chunks.push(chunk));
          response.on('end', () => finish(this.statusError({ ...req, method: 'GET' }, status, parseBody(Buffer.concat(chunks).toString('utf8')))));
          return;
        }
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
        response.on('error', (error) => finish(signal?.aborted ? undefined : error));
        response.on('aborted', () => finish());
      });
      const onAbort = () => {
        request.destroy();
        finish();
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      const onInterrupt = () => {
        request.destroy();
        finish(abortReason(interrupt!));
      };
      interrupt?.addEventListener('abort', onInterrupt, { once: true });
      const timer = timeoutMs > 0
        ? setTimeout(() => request.destroy(Object.assign(new Error('timeout'), { code: 'MESHFED_TIMEOUT' })), timeoutMs)
        : undefined;
      request.on('error', (error: NodeJS.ErrnoException) => finish(signal?.aborted ? undefined : this.connectionError(error, timeoutMs)));
      request.end();
    });
  }

  /** Closes idle keep-alive connections so the process can exit promptly. */
  close(): void {
    this.agent?.destroy();
  }

  private connectionError(error: NodeJS.ErrnoException, timeoutMs: number): ClusterError {
    const where = `${this.server} (context "${this.context.name}")`;
    const hint = 'check that the cluster is running and that the server address in the kubeconfig is right';
    switch (error.code) {
      case 'MESHFED_TIMEOUT':
        return new ClusterError(`cannot reach ${where}: no answer within ${formatMs(timeoutMs)} (--request-timeout)`, { hint, cause: error });
      case 'ECONNREFUSED':
        return new ClusterError(`cannot reach ${where}: connection refused`, { hint, cause: error });
      case 'ENOTFOUND':
      case 'EAI_AGAIN':
        return new ClusterError(`cannot reach ${where}: host name not found`, { hint, cause: error });
      case 'ECONNRESET':
        return new ClusterError(`cannot reach ${where}: the connection was reset`, { hint, cause: error });
      case 'EHOSTUNREACH':
      case 'ENETUNREACH':
        return new ClusterError(`cannot reach ${where}: no route to host`, { hint, cause: error });
      case 'UNABLE_TO_VERIFY_LEAF_SIGNATURE':
      case 'SELF_SIGNED_CERT_IN_CHAIN':
      case 'DEPTH_ZERO_SELF_SIGNED_CERT':
      case 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY':
        return new ClusterError(`cannot trust ${where}: its TLS certificate is signed by an unknown authority`, {
          hint: 'check certificate-authority(-data) of the cluster in the kubeconfig', cause: error,
        });
      case 'ERR_TLS_CERT_ALTNAME_INVALID':
        return new ClusterError(`cannot trust ${where}: its TLS certificate is not valid for this address`, { hint: 'check the server address or tls-server-name in the kubeconfig', cause: error });
      case 'CERT_HAS_EXPIRED':
        return new ClusterError(`cannot trust ${where}: its TLS certificate has expired`, { cause: error });
      default:
        return new ClusterError(`cannot reach ${where}: ${error.message}`, { hint, cause: error });
    }
  }

  private statusError(req: KubeRequest, status: number, body: unknown): ClusterError {
    const statusObject = body && typeof body === 'object' ? (body as { message?: string; reason?: string }) : {};
    const serverMessage = statusObject.message ?? (typeof body === 'string' && body ? body.trim() : `HTTP ${status}`);
    const what = describeRequest(req.method, req.path, Object.fromEntries(Object.entries(req.query ?? {}).filter((e): e is [string, string] => e[1] !== undefined)));
    const ns = what.namespace ? ` in namespace "${what.namespace}"` : '';
    const target = what.name ? `${what.resource} "${what.name}"` : what.resource;
    const options = { status, reason: statusObject.reason };
    if (status === 401) {
      return new ClusterError(`the server ${this.server} rejected the credentials of user "${this.context.userName}" (context "${this.context.name}"): 401 Unauthorized`, {
        ...options, hint: 'your token or certificate may have expired: log in to the cluster again',
      });
    }
    if (status === 403) {
      return new ClusterError(`user "${this.context.userName}" (context "${this.context.name}") is forbidden to ${what.verb} ${target}${ns}`, {
        ...options, hint: `ask a cluster admin for RBAC permission to ${what.verb} ${what.resource}${ns}`,
      });
    }
    if (status === 404 && what.name) {
      return new ClusterError(`${target} not found${ns} (context "${this.context.name}")`, options);
    }
    return new ClusterError(`${what.verb} ${target}${ns} failed (context "${this.context.name}"): ${serverMessage}`, options);
  }
}

/** The error an aborted request fails with: the signal's reason when it is an error, else an interrupt. */
function abortReason(signal: AbortSignal): Error {
  return signal.reason instanceof Error && signal.reason.name !== 'AbortError' ? signal.reason : new InterruptedError();
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
