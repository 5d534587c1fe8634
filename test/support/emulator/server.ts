/**
 * The HTTPS front of an emulated cluster: authentication (bearer tokens mapped to users and groups, client
 * certificates signed by the cluster's CA: CN the user, O the groups), impersonation, RBAC authorization from the
 * cluster's Role/ClusterRole/RoleBinding/ClusterRoleBinding objects (rbac.ts), fault injection, the request log
 * (with the bytes sent), discovery, OpenAPI v3, CRUD/PATCH/watch of every served kind, tables, and pod logs.
 */
import { createHash } from 'node:crypto';
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import https from 'node:https';
import type { PeerCertificate, TLSSocket } from 'node:tls';
import type { AddressInfo } from 'node:net';
import YAML from 'yaml';
import type { ClusterApi, WriteOptions } from './api.js';
import { ApiError, badRequest, forbidden, invalid, methodNotAllowed } from './errors.js';
import type { Duplex } from 'node:stream';
import { handleUpgrade } from './exec.js';
import type { ExecContext } from './exec.js';
import type { Holds } from './holds.js';
import type { LogOptions } from './kubelet.js';
import { jsonPatch, mergePatch } from './patch.js';
import type { ResourceType } from './registry.js';
import type { ExecHandler, KubeObject } from './runtime.js';
import { parseFieldSelector, parseLabelSelector } from './selectors.js';
import type { Matcher } from './selectors.js';
import { authorize, withImpliedGroups, type Attributes, type Subject } from './rbac.js';
import { typeKey } from './store.js';
import type { StoreEvent } from './store.js';
import { toTable } from './tables.js';

/** A bearer token the cluster accepts, and who it authenticates as (what it may do is up to RBAC objects). */
export interface TokenGrant {
  user: string;
  groups?: string[];
  uid?: string;
}

/** An injected fault: the next `times` requests matching method and path get it. */
export interface Fault {
  /** HTTP method; default any. */
  method?: string;
  /** Exact path, or a pattern tested against the path (without query). */
  path: RegExp | string;
  /** Answer with this status code and a `Status` body instead of handling the request. */
  status?: number;
  /** Wait this long before answering (then answer normally unless `status` or `drop` is set). */
  delayMs?: number;
  /** Destroy the connection without an answer. */
  drop?: boolean;
  /**
   * Hold the request until this promise settles (after `delayMs`), then go on as the other fields say: a test
   * reaches a point of a client's run deterministically (the request is in the log with status 0 while held) and
   * lets it go when it wants to. A client that gives up meanwhile finds its connection closed when it is let go.
   */
  hold?: Promise<unknown>;
  /**
   * Called when a request that got this fault starts waiting (`delayMs` or `hold`): a test tells the client's clock
   * that this attempt will not be answered in time (test/support/clock.ts).
   */
  held?: (record: RequestRecord) => void;
  /**
   * With `status`: a `Retry-After` header, in seconds (also `details.retryAfterSeconds`, as the apiserver's 429s carry
   * it) or as given (an HTTP date).
   */
  retryAfter?: number | string;
  /** How many matching requests get the fault; default 1. */
  times?: number;
}

/** One entry of the request log. */
export interface RequestRecord {
  method: string;
  path: string;
  query: Record<string, string>;
  contentType: string | undefined;
  /** The status code sent, 0 while the response has not started, -1 for a dropped connection. */
  status: number;
  userAgent: string | undefined;
  /** The authenticated user, if any (the impersonated one when the request impersonates). */
  user: string | undefined;
  /** The request's headers, as received. */
  headers: IncomingHttpHeaders;
  /** Bytes of the response body sent (for streams: so far). */
  bytes: number;
  time: Date;
}

/** The `/version` answer. */
export interface VersionInfo {
  major: string;
  minor: string;
  gitVersion: string;
}

/** What the HTTP layer needs from its cluster. */
export interface ServerContext {
  api: ClusterApi;
  version: VersionInfo;
  tokens: Map<string, TokenGrant>;
  faults: Array<Fault & { remaining: number }>;
  /** Requests held until others arrive (see holds.ts). */
  holds: Holds;
  requests: RequestRecord[];
  logs: {
    read(namespace: string, pod: string, opts: LogOptions): string;
    follow(namespace: string, pod: string, opts: LogOptions, write: (text: string) => void, end: () => void): () => void;
  };
  /** Watches in flight, so a stopping server can end them. */
  openStreams: Set<ServerResponse>;
  /** Faults' delays running, so a stopping server can drop them (a long delay must not keep the process alive). */
  delays: Set<NodeJS.Timeout>;
  /** Called with every request whose answer starts (its status sent). */
  answered: Set<(record: RequestRecord) => void>;
  /** Handlers of `kubectl exec`, tried in order. */
  execHandlers: () => ExecHandler[];
  exec: ExecContext;
}

const REASONS: Record<number, string> = {
  400: 'BadRequest', 401: 'Unauthorized', 403: 'Forbidden', 404: 'NotFound', 405: 'MethodNotAllowed', 409: 'Conflict',
  410: 'Expired', 415: 'UnsupportedMediaType', 422: 'Invalid', 429: 'TooManyRequests', 500: 'InternalError', 503: 'ServiceUnavailable', 504: 'Timeout',
};

const MESSAGES: Record<number, string> = {
  429: 'Too many requests, please try again later.',
  500: 'Internal error occurred: injected fault',
  503: 'The server is currently unable to handle the request',
  504: 'The server was unable to return a response in the time allotted, but may still be processing the request',
};

function send(res: ServerResponse, code: number, body: unknown, warnings: string[] = []): void {
  if (res.headersSent) {
    res.end();
    return;
  }
  const text = typeof body === 'string' ? body : JSON.stringify(body);
  const headers: Record<string, string | string[]> = {
    'Content-Type': typeof body === 'string' ? 'text/plain' : 'application/json',
    'Cache-Control': 'no-cache, private',
    'Audit-Id': createHash('sha1').update(String(Math.random())).digest('hex').slice(0, 32),
  };
  if (warnings.length > 0) headers.Warning = warnings.map((w) => `299 - ${JSON.stringify(w)}`);
  res.writeHead(code, headers);
  res.end(text);
}

function sendError(res: ServerResponse, err: unknown): void {
  if (err instanceof ApiError) {
    send(res, err.code, err.toStatus());
    return;
  }
  const message = err instanceof Error ? err.message : String(err);
  send(res, 500, new ApiError(500, 'InternalError', `Internal error occurred: ${message}`).toStatus());
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

function parseBody(text: string, contentType: string): unknown {
  if (text.trim() === '') return undefined;
  try {
    if (contentType.includes('yaml')) return YAML.parse(text) as unknown;
    return JSON.parse(text) as unknown;
  } catch (err) {
    throw badRequest(`the server rejected our request due to an error in our request: ${err instanceof Error ? err.message.split('\n')[0] : String(err)}`);
  }
}

/** The client certificate of each kept-alive connection, read once: Node builds a new object at every call. */
const peers = new WeakMap<TLSSocket, PeerCertificate | undefined>();
function peerOf(socket: TLSSocket): PeerCertificate | undefined {
  if (typeof socket.getPeerCertificate !== 'function' || !socket.authorized) return undefined;
  if (!peers.has(socket)) peers.set(socket, socket.getPeerCertificate());
  return peers.get(socket);
}

/**
 * Who sent a request: a bearer token the cluster knows, or a client certificate its CA signed (CN the user, O the
 * groups), then the impersonation headers if any, each checked against RBAC as kube-apiserver's impersonation
 * filter does (`staging/src/k8s.io/apiserver/pkg/endpoints/filters/impersonation.go`, `WithImpersonation`).
 * @throws ApiError 401 when unauthenticated, 403 when an impersonation is not allowed
 */
export function authenticate(ctx: ServerContext, req: IncomingMessage): Subject {
  const auth = req.headers.authorization ?? '';
  const token = auth.startsWith('Bearer ') ? auth.slice(7).trim() : undefined;
  let who: Subject | undefined;
  if (token) {
    const grant = ctx.tokens.get(token);
    if (grant) who = { user: grant.user, groups: withImpliedGroups(grant.user, grant.groups ?? []), ...(grant.uid ? { uid: grant.uid } : {}) };
  } else {
    const peer = peerOf(req.socket as TLSSocket);
    if (peer?.subject?.CN) {
      const orgs = peer.subject.O === undefined ? [] : Array.isArray(peer.subject.O) ? peer.subject.O : [peer.subject.O];
      who = { user: String(peer.subject.CN), groups: withImpliedGroups(String(peer.subject.CN), orgs.map(String)) };
    }
  }
  if (!who) throw new ApiError(401, 'Unauthorized', 'Unauthorized');
  return impersonate(ctx.api, who, req.headers);
}

function headerValues(headers: IncomingHttpHeaders, name: string): string[] {
  const value = headers[name];
  if (value === undefined) return [];
  return (Array.isArray(value) ? value : [value]).flatMap((v) => v.split(',')).map((v) => v.trim()).filter((v) => v !== '');
}

function impersonate(api: ClusterApi, who: Subject, headers: IncomingHttpHeaders): Subject {
  const [user] = headerValues(headers, 'impersonate-user');
  const groups = headerValues(headers, 'impersonate-group');
  const [uid] = headerValues(headers, 'impersonate-uid');
  const extraKeys = Object.keys(headers).filter((h) => h.startsWith('impersonate-extra-'));
  if (user === undefined) {
    if (groups.length || uid !== undefined || extraKeys.length) {
      throw badRequest('requested impersonation of groups, uid or extra without impersonating a user');
    }
    return who;
  }
  const check = (attrs: Attributes): void => {
    if (!authorize(api, who, attrs)) {
      const what = attrs.group ? `${attrs.resource}.${attrs.group}` : attrs.resource;
      const scope = attrs.namespace ? `in the namespace "${attrs.namespace}"` : 'at the cluster scope';
      throw new ApiError(403, 'Forbidden', `${what} "${attrs.name}" is forbidden: User "${who.user}" cannot impersonate resource "${attrs.subresource ? `${attrs.resource}/${attrs.subresource}` : attrs.resource}" in API group "${attrs.group}" ${scope}`);
    }
  };
  const sa = /^system:serviceaccount:([^:]+):([^:]+)$/.exec(user);
  if (sa) check({ verb: 'impersonate', group: '', resource: 'serviceaccounts', namespace: sa[1]!, name: sa[2]! });
  else check({ verb: 'impersonate', group: '', resource: 'users', name: user });
  for (const group of groups) check({ verb: 'impersonate', group: '', resource: 'groups', name: group });
  if (uid !== undefined) check({ verb: 'impersonate', group: 'authentication.k8s.io', resource: 'uids', name: uid });
  const extra: Record<string, string[]> = {};
  for (const header of extraKeys) {
    const key = decodeURIComponent(header.slice('impersonate-extra-'.length));
    for (const value of headerValues(headers, header)) {
      check({ verb: 'impersonate', group: 'authentication.k8s.io', resource: 'userextras', subresource: key, name: value });
      (extra[key] ??= []).push(value);
    }
  }
  return { user, groups: withImpliedGroups(user, groups), ...(uid !== undefined ? { uid } : {}), ...(extraKeys.length ? { extra } : {}) };
}

interface Route {
  group: string;
  version: string;
  type: ResourceType;
  namespace?: string;
  name?: string;
  subresource?: string;
  watchPrefix: boolean;
}

/** Resolves `/api/v1/...` and `/apis/{group}/{version}/...` to a kind, namespace, name and subresource. */
function route(api: ClusterApi, parts: string[]): Route | undefined {
  let group: string;
  let version: string;
  let rest: string[];
  if (parts[0] === 'api' && parts.length >= 3) {
    group = '';
    version = parts[1] as string;
    rest = parts.slice(2);
  } else if (parts[0] === 'apis' && parts.length >= 4) {
    group = parts[1] as string;
    version = parts[2] as string;
    rest = parts.slice(3);
  } else {
    return undefined;
  }
  let watchPrefix = false;
  if (rest[0] === 'watch') {
    watchPrefix = true;
    rest = rest.slice(1);
  }
  let namespace: string | undefined;
  if (rest[0] === 'namespaces' && rest.length >= 3 && api.registry.byResource(group, version, rest[2] as string)?.namespaced) {
    namespace = rest[1];
    rest = rest.slice(2);
  }
  const type = api.registry.byResource(group, version, rest[0] as string);
  if (!type) return undefined;
  return { group, version, type, ...(namespace !== undefined ? { namespace } : {}), ...(rest[1] !== undefined ? { name: rest[1] } : {}), ...(rest[2] !== undefined ? { subresource: rest[2] } : {}), watchPrefix };
}

function servedAs(obj: KubeObject, r: Route): KubeObject {
  return { ...obj, apiVersion: r.group ? `${r.group}/${r.version}` : r.version };
}

/** What a response is converted to: a `meta.k8s.io` Table, PartialObjectMetadata or PartialObjectMetadataList. */
interface Conversion {
  kind: 'Table' | 'PartialObjectMetadata' | 'PartialObjectMetadataList';
  /** `v1` or `v1beta1` of `meta.k8s.io`. */
  version: string;
}

const CONVERSIONS = new Set(['Table', 'PartialObjectMetadata', 'PartialObjectMetadataList']);

/**
 * The conversion an `Accept` header asks for, negotiated as kube-apiserver does: the clauses are tried in order and
 * the first one the endpoint serves wins (`negotiation.NegotiateOutputMediaType`); a clause with `as=` is served only
 * for `g=meta.k8s.io`, `v=v1` or `v1beta1` and one of the three kinds (`AllowsMediaTypeTransform` in
 * `staging/src/k8s.io/apiserver/pkg/endpoints/handlers/rest.go`). Protobuf clauses are passed over (the emulator speaks
 * JSON); when clauses ask for conversions and none can be served, the answer is 406 NotAcceptable.
 */
function conversionOf(req: IncomingMessage): Conversion | undefined {
  const accept = req.headers.accept ?? '';
  let refused = false;
  for (const clause of accept.split(',').map((c) => c.trim()).filter(Boolean)) {
    const [type = '', ...rest] = clause.split(';').map((p) => p.trim());
    if (type.includes('protobuf')) continue;
    const params = Object.fromEntries(rest.map((p) => [p.slice(0, p.indexOf('=')).trim(), p.slice(p.indexOf('=') + 1).trim()]));
    if (params.as === undefined) return undefined;
    if (params.g === 'meta.k8s.io' && (params.v === 'v1' || params.v === 'v1beta1') && CONVERSIONS.has(params.as)) {
      return { kind: params.as as Conversion['kind'], version: params.v };
    }
    refused = true;
  }
  if (refused) throw new ApiError(406, 'NotAcceptable', 'only the following media types are accepted: application/json, application/yaml, application/vnd.kubernetes.protobuf');
  return undefined;
}

/**
 * An object as PartialObjectMetadata (`meta.AsPartialObjectMetadata`: the whole `metadata`, managedFields included).
 * A list asked for as one object, or one object asked for as a list, is 406 (`asPartialObjectMetadata`,
 * `asPartialObjectMetadataList` in `staging/src/k8s.io/apiserver/pkg/endpoints/handlers/response.go`).
 */
function partialMetadata(obj: KubeObject, version: string): Record<string, unknown> {
  return { kind: 'PartialObjectMetadata', apiVersion: `meta.k8s.io/${version}`, metadata: obj.metadata };
}

function notAList(conversion: Conversion, list: boolean): ApiError | undefined {
  if (conversion.kind === 'PartialObjectMetadata' && list) {
    return new ApiError(406, 'NotAcceptable', 'you requested PartialObjectMetadata, but the requested object is a list (*unstructured.UnstructuredList)');
  }
  if (conversion.kind === 'PartialObjectMetadataList' && !list) {
    return new ApiError(406, 'NotAcceptable', 'you requested PartialObjectMetadataList, but the requested object is not a list (*unstructured.Unstructured)');
  }
  return undefined;
}

/** The field manager the apiserver derives from a user agent when none is given (`kubectl`, `node`…). */
function defaultManager(userAgent: string | undefined): string {
  const first = (userAgent ?? 'unknown').split('/')[0] ?? 'unknown';
  return first.slice(0, 128) || 'unknown';
}

/** Starts the HTTPS server of one cluster on 127.0.0.1 and an ephemeral port. */
export async function startServer(ctx: ServerContext, tls: { certPem: string; keyPem: string; clientCaPem: string }): Promise<{ port: number; close: () => Promise<void>; openConnections: () => number }> {
  // Client certificates are asked for, not required: a request without one authenticates with its bearer token.
  const server = https.createServer({ cert: tls.certPem, key: tls.keyPem, ca: tls.clientCaPem, requestCert: true, rejectUnauthorized: false }, (req, res) => {
    void handle(ctx, req, res);
  });
  server.keepAliveTimeout = 5000;
  // Client connections still open: a request a client wrote before it closed its connection is read before the close.
  const connections = new Set<Duplex>();
  server.on('connection', (socket: Duplex) => {
    connections.add(socket);
    socket.once('close', () => connections.delete(socket));
  });
  server.on('upgrade', (req: IncomingMessage, socket: Duplex) => {
    const url = new URL(req.url ?? '/', 'https://127.0.0.1');
    const record: RequestRecord = {
      method: req.method ?? 'GET', path: url.pathname, query: Object.fromEntries(url.searchParams), contentType: req.headers['content-type'],
      status: 0, userAgent: req.headers['user-agent'], user: undefined, headers: req.headers, bytes: 0, time: new Date(),
    };
    ctx.requests.push(record);
    handleUpgrade(ctx, req, socket, record);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  return {
    port,
    openConnections: () => connections.size,
    close: () =>
      new Promise<void>((resolve) => {
        for (const res of ctx.openStreams) res.end();
        ctx.openStreams.clear();
        // A delayed request is never answered now: its connection is closed below.
        for (const timer of ctx.delays) clearTimeout(timer);
        ctx.delays.clear();
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/** Adds the size of every body chunk `res` sends to `record.bytes`. */
function countBodyBytes(res: ServerResponse, record: RequestRecord): void {
  const size = (chunk: unknown, encoding?: unknown) => (typeof chunk === 'string'
    ? Buffer.byteLength(chunk, typeof encoding === 'string' ? encoding as BufferEncoding : 'utf8')
    : chunk instanceof Uint8Array ? chunk.byteLength : 0);
  const write = res.write.bind(res) as (...args: unknown[]) => boolean;
  const end = res.end.bind(res) as (...args: unknown[]) => ServerResponse;
  (res as unknown as { write: (...args: unknown[]) => boolean }).write = (...args: unknown[]) => {
    record.bytes += size(args[0], args[1]);
    return write(...args);
  };
  (res as unknown as { end: (...args: unknown[]) => ServerResponse }).end = (...args: unknown[]) => {
    if (typeof args[0] !== 'function') record.bytes += size(args[0], args[1]);
    return end(...args);
  };
}

async function handle(ctx: ServerContext, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const url = new URL(req.url ?? '/', 'https://127.0.0.1');
  const record: RequestRecord = {
    method: req.method ?? 'GET',
    path: url.pathname,
    query: Object.fromEntries(url.searchParams),
    contentType: req.headers['content-type'],
    status: 0,
    userAgent: req.headers['user-agent'],
    user: undefined,
    headers: req.headers,
    bytes: 0,
    time: new Date(),
  };
  ctx.requests.push(record);
  countBodyBytes(res, record);
  const writeHead = res.writeHead.bind(res) as (...args: unknown[]) => ServerResponse;
  (res as unknown as { writeHead: (...args: unknown[]) => ServerResponse }).writeHead = (...args: unknown[]) => {
    record.status = args[0] as number;
    for (const listener of [...ctx.answered]) listener(record);
    return writeHead(...args);
  };
  try {
    const fault = ctx.faults.find((f) => (!f.method || f.method.toUpperCase() === record.method) && (typeof f.path === 'string' ? f.path === url.pathname : f.path.test(url.pathname)));
    if (fault) {
      fault.remaining -= 1;
      if (fault.remaining <= 0) ctx.faults.splice(ctx.faults.indexOf(fault), 1);
      if (fault.delayMs || fault.hold) fault.held?.(record);
      if (fault.delayMs) {
        await new Promise<void>((resolve) => {
          const timer = setTimeout(() => {
            ctx.delays.delete(timer);
            resolve();
          }, fault.delayMs);
          ctx.delays.add(timer);
        });
      }
      if (fault.hold) await fault.hold.catch(() => undefined);
      if (fault.drop) {
        record.status = -1;
        req.socket.destroy();
        return;
      }
      if (fault.status) {
        const reason = REASONS[fault.status] ?? 'InternalError';
        const details = typeof fault.retryAfter === 'number' ? { retryAfterSeconds: fault.retryAfter } : undefined;
        if (fault.retryAfter !== undefined) res.setHeader('Retry-After', String(fault.retryAfter));
        send(res, fault.status, new ApiError(fault.status, reason, MESSAGES[fault.status] ?? `injected ${fault.status} ${reason}`, details).toStatus());
        return;
      }
    }
    if (['/healthz', '/livez', '/readyz'].includes(url.pathname)) {
      send(res, 200, 'ok');
      return;
    }
    const who = authenticate(ctx, req);
    record.user = who.user;
    await ctx.holds.pass(record.method, url.pathname, who.user);
    await serve(ctx, who, req, res, url);
  } catch (err) {
    sendError(res, err);
  }
}

async function serve(ctx: ServerContext, who: Subject, req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
  const { api } = ctx;
  const parts = url.pathname.split('/').filter((p) => p !== '').map(decodeURIComponent);
  const method = req.method ?? 'GET';
  const q = url.searchParams;

  // Discovery and OpenAPI.
  if (method === 'GET') {
    const discovery = discoveryDocument(ctx, parts, url);
    if (discovery !== undefined) {
      if (!authorize(api, who, { verb: 'get', path: url.pathname })) {
        throw new ApiError(403, 'Forbidden', `forbidden: User "${who.user}" cannot get path "${url.pathname}"`);
      }
      if (discovery === null) throw new ApiError(404, 'NotFound', 'the server could not find the requested resource');
      if (Buffer.isBuffer(discovery)) {
        res.writeHead(200, { 'Content-Type': OPENAPI_V2_PROTOBUF });
        res.end(discovery);
        return;
      }
      send(res, 200, discovery);
      return;
    }
  }

  const r = route(api, parts);
  if (!r) throw new ApiError(404, 'NotFound', 'the server could not find the requested resource');
  const { type } = r;
  const isWatch = r.watchPrefix || q.get('watch') === 'true' || q.get('watch') === '1';
  const verb = (() => {
    switch (method) {
      case 'GET': return isWatch ? 'watch' : r.name ? 'get' : 'list';
      case 'POST': return 'create';
      case 'PUT': return 'update';
      case 'PATCH': return 'patch';
      case 'DELETE': return r.name ? 'delete' : 'deletecollection';
      default: throw methodNotAllowed();
    }
  })();
  const resource = r.subresource ? `${type.plural}/${r.subresource}` : type.plural;
  const allow = (v: string, name = r.name): void => {
    if (!authorize(api, who, { verb: v, group: type.group, resource: type.plural, ...(r.subresource ? { subresource: r.subresource } : {}), ...(r.namespace !== undefined ? { namespace: r.namespace } : {}), ...(name !== undefined ? { name } : {}) })) {
      throw forbidden(who.user, v, resource, type.group, r.namespace, name);
    }
  };
  allow(verb);
  if (r.subresource && !type.subresources.includes(r.subresource)) throw new ApiError(404, 'NotFound', 'the server could not find the requested resource');

  const contentType = (req.headers['content-type'] ?? '').split(';')[0]?.trim() ?? '';
  const warnings: string[] = [];
  const dryRun = q.getAll('dryRun').includes('All');
  if (q.getAll('dryRun').some((d) => d !== 'All')) throw badRequest(`Invalid dry run value: ${q.getAll('dryRun').join(',')}`);
  const fieldValidation = q.get('fieldValidation') ?? undefined;
  if (fieldValidation && !['Strict', 'Warn', 'Ignore'].includes(fieldValidation)) {
    throw badRequest(`fieldValidation: Unsupported value: "${fieldValidation}": supported values: "Ignore", "Strict", "Warn"`);
  }
  const opts: WriteOptions = {
    dryRun,
    fieldManager: q.get('fieldManager') ?? (method === 'PATCH' && contentType.startsWith('application/apply-patch') ? undefined : defaultManager(req.headers['user-agent'])),
    ...(fieldValidation ? { fieldValidation: fieldValidation as WriteOptions['fieldValidation'] } : {}),
    force: q.get('force') === 'true',
    warnings,
  };

  if (r.subresource === 'log') {
    if (method !== 'GET' || !r.name || !r.namespace) throw methodNotAllowed();
    await servePodLog(ctx, r.namespace, r.name, q, res);
    return;
  }

  if (r.subresource === 'scale' && r.name) {
    await serveScale(ctx, r, method, contentType, req, res, opts);
    return;
  }

  if (type.kind === 'SelfSubjectAccessReview' && method === 'POST') {
    const body = parseBody(await readBody(req), contentType) as { spec?: { resourceAttributes?: Record<string, string> } } | undefined;
    const attrs = body?.spec?.resourceAttributes ?? {};
    const nonResource = (body?.spec as { nonResourceAttributes?: { path?: string; verb?: string } } | undefined)?.nonResourceAttributes;
    const ok = nonResource
      ? authorize(api, who, { verb: nonResource.verb ?? '', path: nonResource.path ?? '' })
      : authorize(api, who, {
        verb: attrs.verb ?? '', group: attrs.group ?? '', resource: attrs.resource ?? '',
        ...(attrs.subresource ? { subresource: attrs.subresource } : {}), ...(attrs.namespace ? { namespace: attrs.namespace } : {}), ...(attrs.name ? { name: attrs.name } : {}),
      });
    send(res, 201, { kind: 'SelfSubjectAccessReview', apiVersion: 'authorization.k8s.io/v1', metadata: { creationTimestamp: null }, spec: body?.spec ?? {}, status: { allowed: ok, ...(ok ? { reason: 'RBAC: allowed by the cluster\'s roles and bindings' } : {}) } });
    return;
  }

  switch (method) {
    case 'GET': {
      if (isWatch) {
        serveWatch(ctx, r, q, req, res);
        return;
      }
      if (r.name) {
        const conversion = conversionOf(req);
        const obj = servedAs(api.get(type, r.namespace, r.name), r);
        const refused = conversion && notAList(conversion, false);
        if (refused) throw refused;
        if (conversion?.kind === 'Table') send(res, 200, toTable(type, r.version, [obj], obj.metadata.resourceVersion ?? '', q.get('includeObject') ?? 'Metadata'));
        else if (conversion) send(res, 200, partialMetadata(obj, conversion.version));
        else send(res, 200, obj);
        return;
      }
      serveList(ctx, r, q, req, res);
      return;
    }
    case 'POST': {
      if (r.name) throw methodNotAllowed();
      if (!['application/json', 'application/yaml', ''].includes(contentType)) throw unsupportedMediaType(contentType);
      const body = parseBody(await readBody(req), contentType) as KubeObject;
      if (!body) throw badRequest('the body of the request is empty');
      const created = api.create(type, r.namespace, body, opts, r.version);
      send(res, 201, servedAs(created, r), warnings);
      return;
    }
    case 'PUT': {
      if (!r.name) throw methodNotAllowed();
      if (!['application/json', 'application/yaml', ''].includes(contentType)) throw unsupportedMediaType(contentType);
      const body = parseBody(await readBody(req), contentType) as KubeObject;
      if (!body) throw badRequest('the body of the request is empty');
      const updated = api.update(type, r.namespace, r.name, body, opts, r.version, r.subresource);
      send(res, 200, servedAs(updated, r), warnings);
      return;
    }
    case 'PATCH': {
      if (!r.name) throw methodNotAllowed();
      const patchTypes = ['application/merge-patch+json', 'application/strategic-merge-patch+json', 'application/json-patch+json', 'application/apply-patch+yaml'];
      if (!patchTypes.includes(contentType)) throw unsupportedMediaType(contentType, patchTypes);
      const isApply = contentType === 'application/apply-patch+yaml';
      if (isApply && !api.find(type, r.namespace, r.name)) allow('create');
      const body = parseBody(await readBody(req), isApply ? 'yaml' : 'json');
      const existed = api.find(type, r.namespace, r.name) !== undefined;
      const patched = api.patch(type, r.namespace, r.name, contentType, body, opts, r.version, r.subresource);
      send(res, isApply && !existed ? 201 : 200, servedAs(patched, r), warnings);
      return;
    }
    case 'DELETE': {
      const body = parseBody(await readBody(req), 'json') as { propagationPolicy?: string; dryRun?: string[]; preconditions?: { resourceVersion?: string; uid?: string } } | undefined;
      const delOpts = {
        dryRun: dryRun || (body?.dryRun ?? []).includes('All'),
        propagationPolicy: q.get('propagationPolicy') ?? body?.propagationPolicy ?? 'Background',
        ...(body?.preconditions ? { preconditions: body.preconditions } : {}),
      };
      if (r.name) {
        const removed = api.delete(type, r.namespace, r.name, delOpts);
        send(res, 200, servedAs(removed, r));
        return;
      }
      const labels = parseLabelSelector(q.get('labelSelector') ?? undefined);
      const fields = parseFieldSelector(q.get('fieldSelector') ?? undefined);
      const removed = api.list(type, r.namespace).filter((o) => labels(o) && fields(o)).map((o) => api.delete(type, o.metadata.namespace, o.metadata.name, delOpts));
      send(res, 200, { kind: type.listKind, apiVersion: r.group ? `${r.group}/${r.version}` : r.version, metadata: { resourceVersion: String(api.store.revision) }, items: removed.map((o) => servedAs(o, r)) });
      return;
    }
    default:
      throw methodNotAllowed();
  }
}

/** The `scale` subresource: an autoscaling/v1 Scale view of `spec.replicas`. */
async function serveScale(ctx: ServerContext, r: Route, method: string, contentType: string, req: IncomingMessage, res: ServerResponse, opts: WriteOptions): Promise<void> {
  const { api } = ctx;
  const toScale = (obj: KubeObject): Record<string, unknown> => {
    const spec = obj.spec as { replicas?: number; selector?: { matchLabels?: Record<string, string> } };
    const status = (obj.status ?? {}) as { replicas?: number };
    return {
      kind: 'Scale',
      apiVersion: 'autoscaling/v1',
      metadata: { name: obj.metadata.name, namespace: obj.metadata.namespace, uid: obj.metadata.uid, resourceVersion: obj.metadata.resourceVersion, creationTimestamp: obj.metadata.creationTimestamp },
      spec: { replicas: spec.replicas ?? 1 },
      status: { replicas: status.replicas ?? 0, selector: Object.entries(spec.selector?.matchLabels ?? {}).map(([k, v]) => `${k}=${v}`).join(',') },
    };
  };
  const current = api.get(r.type, r.namespace, r.name as string);
  if (method === 'GET') {
    send(res, 200, toScale(current));
    return;
  }
  const body = parseBody(await readBody(req), contentType.includes('yaml') ? 'yaml' : 'json');
  let scale: { spec?: { replicas?: number }; metadata?: { resourceVersion?: string } };
  if (method === 'PUT') scale = body as typeof scale;
  else if (method === 'PATCH' && contentType === 'application/json-patch+json') scale = jsonPatch(toScale(current), body) as typeof scale;
  else if (method === 'PATCH') scale = mergePatch(toScale(current), body) as typeof scale;
  else throw methodNotAllowed();
  const replicas = scale.spec?.replicas;
  if (typeof replicas !== 'number' || !Number.isInteger(replicas) || replicas < 0) {
    throw invalid('Scale', 'autoscaling', r.name as string, [{ reason: 'FieldValueInvalid', field: 'spec.replicas', message: `Invalid value: ${JSON.stringify(replicas)}: must be greater than or equal to 0` }]);
  }
  const rv = scale.metadata?.resourceVersion;
  const next = { ...structuredClone(current), spec: { ...(current.spec as object), replicas } };
  if (rv) next.metadata.resourceVersion = rv;
  const updated = api.update(r.type, r.namespace, r.name as string, next, opts, r.version);
  send(res, 200, toScale(updated));
}

function unsupportedMediaType(contentType: string, accepted = ['application/json', 'application/yaml']): ApiError {
  return new ApiError(415, 'UnsupportedMediaType', `the body of the request was in an unknown format - accepted media types include: ${accepted.join(', ')}${contentType ? '' : ''}`);
}

function serveList(ctx: ServerContext, r: Route, q: URLSearchParams, req: IncomingMessage, res: ServerResponse): void {
  const { api } = ctx;
  const conversion = conversionOf(req);
  const refused = conversion && notAList(conversion, true);
  if (refused) throw refused;
  const labels = parseLabelSelector(q.get('labelSelector') ?? undefined);
  const fields = parseFieldSelector(q.get('fieldSelector') ?? undefined);
  const all = api.list(r.type, r.namespace).filter((o) => labels(o) && fields(o)).map((o) => servedAs(o, r));
  const limit = Number(q.get('limit') ?? 0);
  const offset = q.get('continue') ? Number(Buffer.from(q.get('continue') as string, 'base64').toString('utf8').split(':')[1] ?? 0) : 0;
  const items = limit > 0 ? all.slice(offset, offset + limit) : all.slice(offset);
  const more = limit > 0 && offset + limit < all.length;
  const meta: Record<string, unknown> = { resourceVersion: String(api.store.revision) };
  if (more) {
    meta.continue = Buffer.from(`${api.store.revision}:${offset + limit}`).toString('base64');
    meta.remainingItemCount = all.length - offset - limit;
  }
  if (conversion?.kind === 'Table') {
    send(res, 200, toTable(r.type, r.version, items, String(api.store.revision), q.get('includeObject') ?? 'Metadata', more ? { continue: meta.continue } : {}));
    return;
  }
  if (conversion) {
    send(res, 200, { kind: 'PartialObjectMetadataList', apiVersion: `meta.k8s.io/${conversion.version}`, metadata: meta, items: items.map((o) => partialMetadata(o, conversion.version)) });
    return;
  }
  send(res, 200, { kind: r.type.listKind, apiVersion: r.group ? `${r.group}/${r.version}` : r.version, metadata: meta, items });
}

function serveWatch(ctx: ServerContext, r: Route, q: URLSearchParams, req: IncomingMessage, res: ServerResponse): void {
  const { api } = ctx;
  const labels = parseLabelSelector(q.get('labelSelector') ?? undefined);
  let fields: Matcher = parseFieldSelector(q.get('fieldSelector') ?? undefined);
  if (r.name) {
    const byName = fields;
    fields = (o) => o.metadata.name === r.name && byName(o);
  }
  const matches = (o: KubeObject | undefined): boolean => o !== undefined && (r.namespace === undefined || o.metadata.namespace === r.namespace) && labels(o) && fields(o);
  // Each event's object is converted as a single object would be (`watchEmbeddedEncoder` in response.go), so a
  // watch asks for PartialObjectMetadata, not the list kind.
  const conversion = conversionOf(req);
  const refused = conversion && notAList(conversion, false);
  if (refused) throw refused;
  const table = conversion?.kind === 'Table';
  const bookmarks = q.get('allowWatchBookmarks') === 'true';
  const key = typeKey(r.type);
  const encode = (type: string, obj: KubeObject): string => {
    const served = servedAs(obj, r);
    const object = table ? toTable(r.type, r.version, [served], served.metadata.resourceVersion ?? '', q.get('includeObject') ?? 'Metadata') : conversion ? partialMetadata(served, conversion.version) : served;
    return `${JSON.stringify({ type, object })}\n`;
  };
  const rvParam = q.get('resourceVersion');
  const sendInitial = q.get('sendInitialEvents') === 'true';
  let backlog: StoreEvent[] | undefined = [];
  const initial: KubeObject[] = [];
  if (!rvParam || rvParam === '0' || sendInitial) {
    initial.push(...api.list(r.type, r.namespace).filter(matches));
  } else {
    const since = Number(rvParam);
    if (!Number.isFinite(since)) throw badRequest(`invalid resource version: ${rvParam}`);
    backlog = api.store.eventsSince(since);
  }
  res.writeHead(200, { 'Content-Type': 'application/json', 'Cache-Control': 'no-cache, private', 'Transfer-Encoding': 'chunked' });
  res.flushHeaders();
  if (backlog === undefined) {
    const status = new ApiError(410, 'Expired', `too old resource version: ${rvParam} (${api.store.compactedRevision})`).toStatus();
    res.end(`${JSON.stringify({ type: 'ERROR', object: status })}\n`);
    return;
  }
  ctx.openStreams.add(res);
  const write = (text: string): void => {
    if (!res.writableEnded && !res.destroyed) res.write(text);
  };
  const onEvent = (e: StoreEvent): void => {
    if (e.typeKey !== key) return;
    const was = matches(e.previous);
    const is = matches(e.object);
    if (e.type === 'DELETED') {
      if (was) write(encode('DELETED', e.object));
    } else if (is && (was || e.type === 'ADDED')) {
      write(encode(e.type === 'ADDED' ? 'ADDED' : 'MODIFIED', e.object));
    } else if (is && !was) {
      write(encode('ADDED', e.object));
    } else if (!is && was) {
      write(encode('DELETED', e.object));
    }
  };
  for (const o of initial) write(encode('ADDED', o));
  const bookmark = (annotations?: Record<string, string>): void => {
    write(`${JSON.stringify({ type: 'BOOKMARK', object: { kind: r.type.kind, apiVersion: r.group ? `${r.group}/${r.version}` : r.version, metadata: { resourceVersion: String(api.store.revision), ...(annotations ? { annotations } : {}) } } })}\n`);
  };
  if (sendInitial && bookmarks) bookmark({ 'k8s.io/initial-events-end': 'true' });
  for (const e of backlog) onEvent(e);
  const unsubscribe = api.store.subscribe(onEvent);
  const timers: NodeJS.Timeout[] = [];
  if (bookmarks) timers.push(setInterval(() => bookmark(), 1000));
  const timeout = Number(q.get('timeoutSeconds') ?? 0);
  if (timeout > 0) timers.push(setTimeout(() => res.end(), timeout * 1000));
  const cleanup = (): void => {
    unsubscribe();
    for (const t of timers) clearTimeout(t);
    ctx.openStreams.delete(res);
  };
  res.on('close', cleanup);
  res.on('finish', cleanup);
}

async function servePodLog(ctx: ServerContext, namespace: string, name: string, q: URLSearchParams, res: ServerResponse): Promise<void> {
  const opts: LogOptions = {
    ...(q.get('container') ? { container: q.get('container') as string } : {}),
    previous: q.get('previous') === 'true',
    timestamps: q.get('timestamps') === 'true',
    ...(q.get('tailLines') ? { tailLines: Number(q.get('tailLines')) } : {}),
    ...(q.get('limitBytes') ? { limitBytes: Number(q.get('limitBytes')) } : {}),
  };
  const text = ctx.logs.read(namespace, name, opts);
  if (q.get('follow') !== 'true') {
    res.writeHead(200, { 'Content-Type': 'text/plain' });
    res.end(text);
    return;
  }
  res.writeHead(200, { 'Content-Type': 'text/plain', 'Transfer-Encoding': 'chunked' });
  res.flushHeaders();
  if (text) res.write(text);
  ctx.openStreams.add(res);
  await new Promise<void>((resolve) => {
    const stop = ctx.logs.follow(namespace, name, opts, (chunk) => res.write(chunk), () => {
      res.end();
      resolve();
    });
    res.on('close', () => {
      stop();
      ctx.openStreams.delete(res);
      resolve();
    });
  });
}

/** Discovery, version and OpenAPI documents; undefined when the path is not one of them, null for 404. */
function discoveryDocument(ctx: ServerContext, parts: string[], url: URL): unknown {
  const { api } = ctx;
  const path = parts.join('/');
  if (path === 'version') {
    return {
      major: ctx.version.major,
      minor: ctx.version.minor,
      gitVersion: ctx.version.gitVersion,
      gitCommit: '0000000000000000000000000000000000000000',
      gitTreeState: 'clean',
      buildDate: '2025-01-01T00:00:00Z',
      goVersion: 'go1.23.4',
      compiler: 'gc',
      platform: 'linux/amd64',
    };
  }
  if (path === 'api') {
    return { kind: 'APIVersions', versions: ['v1'], serverAddressByClientCIDRs: [{ clientCIDR: '0.0.0.0/0', serverAddress: `127.0.0.1:${url.port || 443}` }] };
  }
  if (path === 'apis') {
    return {
      kind: 'APIGroupList',
      apiVersion: 'v1',
      groups: api.registry.groups().map((g) => ({
        name: g.name,
        versions: g.versions.map((v) => ({ groupVersion: `${g.name}/${v}`, version: v })),
        preferredVersion: { groupVersion: `${g.name}/${g.versions[0]}`, version: g.versions[0] },
      })),
    };
  }
  if (parts[0] === 'apis' && parts.length === 2) {
    const g = api.registry.groups().find((x) => x.name === parts[1]);
    if (!g) return null;
    return {
      kind: 'APIGroup',
      apiVersion: 'v1',
      name: g.name,
      versions: g.versions.map((v) => ({ groupVersion: `${g.name}/${v}`, version: v })),
      preferredVersion: { groupVersion: `${g.name}/${g.versions[0]}`, version: g.versions[0] },
    };
  }
  if (parts[0] === 'api' && parts.length === 2) return api.registry.resourceList('', parts[1] as string) ?? null;
  if (parts[0] === 'apis' && parts.length === 3) return api.registry.resourceList(parts[1] as string, parts[2] as string) ?? null;
  if (path === 'openapi/v3') {
    const paths: Record<string, unknown> = { 'api/v1': { serverRelativeURL: `/openapi/v3/api/v1?hash=${openApiHash(ctx, '', 'v1')}` } };
    for (const g of api.registry.groups()) {
      for (const v of g.versions) paths[`apis/${g.name}/${v}`] = { serverRelativeURL: `/openapi/v3/apis/${g.name}/${v}?hash=${openApiHash(ctx, g.name, v)}` };
    }
    return { paths };
  }
  if (parts[0] === 'openapi' && parts[1] === 'v3') {
    const rest = parts.slice(2);
    if (rest[0] === 'api' && rest.length === 2) return api.registry.openApiV3Cached('', rest[1] as string).doc ?? null;
    if (rest[0] === 'apis' && rest.length === 3) return api.registry.openApiV3Cached(rest[1] as string, rest[2] as string).doc ?? null;
    return null;
  }
  // Older kubectl (1.27) asks OpenAPI v2 (protobuf only) whether `fieldValidation` is supported before using v3.
  // A document without paths makes it fall back to sending fieldValidation and skipping client-side schema
  // checks, which leaves validation to this server, as with a real one that advertises the parameter.
  if (path === 'openapi/v2') return OPENAPI_V2_EMPTY;
  return undefined;
}

const OPENAPI_V2_PROTOBUF = 'application/com.github.proto-openapi.spec.v2.v1.0+protobuf';
/** gnostic `openapi_v2.Document{swagger: "2.0"}` in protobuf wire format. */
const OPENAPI_V2_EMPTY = Buffer.from([0x0a, 0x03, 0x32, 0x2e, 0x30]);

function openApiHash(ctx: ServerContext, group: string, version: string): string {
  return ctx.api.registry.openApiV3Cached(group, version).hash;
}
