/**
 * The applications the emulated pods run, recognised by image: bookinfo (details, ratings, reviews v1–v3,
 * productpage), postgres (answers the protocol's SSLRequest), Istio's tcp-echo-server. An application image the
 * model does not know, asked to serve a port, fails loudly.
 */
import type { KubeObject } from '../emulator/runtime.js';
import { containersOf, isProxyImage, unmodelled } from './world.js';

/** An HTTP request as it travels between hops. Header names are lower case. */
export interface HttpRequest {
  method: string;
  path: string;
  /** The authority (Host header), possibly with a port. */
  authority: string;
  headers: Record<string, string>;
  body?: string;
}

export interface HttpResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
}

/** What a connection carries once any TLS is taken off. */
export type Payload = { kind: 'http'; request: HttpRequest } | { kind: 'tcp'; data: string };

/** What the far end answered. `closed` means the peer closed the connection without answering. */
export type Reply = { kind: 'http'; response: HttpResponse } | { kind: 'tcp'; data: string } | { kind: 'closed' };

/** The bytes of PostgreSQL's SSLRequest message (length 8, code 80877103); a server answers `N` or `S`. */
export const POSTGRES_SSL_REQUEST = '\u0000\u0000\u0000\u0008\u0004\u00d2\u0016\u002f';

type Handler = (payload: Payload) => Reply;

const REVIEW_TEXT = [
  ['Reviewer1', 'An extremely entertaining play by Shakespeare. The slapstick humour is refreshing!', 5],
  ['Reviewer2', 'Absolutely fun and entertaining. The play lacks thematic depth when compared to other plays by Shakespeare.', 4],
] as const;

function json(status: number, body: unknown): Reply {
  return { kind: 'http', response: { status, headers: { 'content-type': 'application/json' }, body: typeof body === 'string' ? body : JSON.stringify(body) } };
}

function text(status: number, body: string, contentType = 'text/plain'): Reply {
  return { kind: 'http', response: { status, headers: { 'content-type': contentType }, body } };
}

function httpOnly(handle: (req: HttpRequest) => Reply): Handler {
  return (payload) => (payload.kind === 'http'
    ? handle(payload.request)
    : { kind: 'tcp', data: 'HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\nconnection: close\r\n\r\n' });
}

function bookinfo(app: string, version: string, podName: string): Handler {
  const name = app[0]!.toUpperCase() + app.slice(1);
  return httpOnly((req) => {
    const path = req.path.split('?')[0]!;
    if (path === '/health') return json(200, { status: `${name} is healthy` });
    let m: RegExpExecArray | null;
    if (app === 'reviews' && (m = /^\/reviews\/(\d+)$/.exec(path))) {
      const color = version === 'v2' ? 'black' : version === 'v3' ? 'red' : undefined;
      const reviews = REVIEW_TEXT.map(([reviewer, t, stars]) => (color ? { reviewer, text: t, rating: { stars, color } } : { reviewer, text: t }));
      return json(200, { id: m[1], podname: podName, clustername: 'null', reviews });
    }
    if (app === 'ratings' && (m = /^\/ratings\/(\d+)$/.exec(path))) {
      return json(200, { id: Number(m[1]), ratings: { Reviewer1: 5, Reviewer2: 4 } });
    }
    if (app === 'details' && (m = /^\/details\/(\d+)$/.exec(path))) {
      return json(200, { id: Number(m[1]), author: 'William Shakespeare', year: 1595, type: 'paperback', pages: 200, publisher: 'PublisherA', language: 'English', 'ISBN-10': '1234567890', 'ISBN-13': '123-1234567890' });
    }
    if (app === 'productpage' && (path === '/productpage' || path === '/')) {
      return text(200, '<!DOCTYPE html>\n<html>\n<head><title>Simple Bookstore App</title></head>\n<body>\n<h3>The Comedy of Errors</h3>\n</body>\n</html>\n', 'text/html; charset=utf-8');
    }
    return text(404, `<!DOCTYPE HTML PUBLIC "-//W3C//DTD HTML 3.2 Final//EN">\n<title>404 Not Found</title>\n<h1>Not Found</h1>\n`, 'text/html');
  });
}

const postgres: Handler = (payload) => {
  if (payload.kind === 'tcp' && payload.data.startsWith(POSTGRES_SSL_REQUEST)) return { kind: 'tcp', data: 'N' };
  // Anything else is not a valid startup packet: postgres logs it and closes the connection.
  return { kind: 'closed' };
};

function tcpEcho(prefix: string): Handler {
  return (payload) => (payload.kind === 'tcp' ? { kind: 'tcp', data: `${prefix} ${payload.data}` } : { kind: 'closed' });
}

/** Ports each known application image listens on, and how it answers. */
function appOf(image: string, args: string[], podName: string): { ports: number[]; handler: Handler } | undefined {
  let m: RegExpExecArray | null;
  if ((m = /examples-bookinfo-(details|ratings|reviews|productpage)-(v\d)/.exec(image))) return { ports: [9080], handler: bookinfo(m[1]!, m[2]!, podName) };
  if (/(^|\/)postgres(ql)?(:|@|$)/.test(image) || /bitnami\/postgresql/.test(image)) return { ports: [5432], handler: postgres };
  if (/tcp-echo-server/.test(image)) {
    const ports = args.filter((a) => /^\d+(,\d+)*$/.test(a)).flatMap((a) => a.split(',').map(Number));
    const prefix = args.find((a) => !/^\d+(,\d+)*$/.test(a)) ?? 'hello';
    return { ports: ports.length > 0 ? ports : [9000], handler: tcpEcho(prefix) };
  }
  return undefined;
}

/** Images that run as clients and listen on nothing. */
function isClientImage(image: string): boolean {
  return /(^|\/)(curl|busybox|alpine|sleep|netshoot)(:|@|$)/.test(image) || /curlimages\/curl/.test(image);
}

/**
 * How the application containers of `pod` answer a connection on `port`: a handler, or undefined when nothing
 * listens there (connection refused). Throws for an unknown image that declares the port.
 */
export function applicationOn(pod: KubeObject, port: number): Handler | undefined {
  for (const c of containersOf(pod)) {
    if (isProxyImage(c.image)) continue;
    const app = appOf(c.image, [...(c.command ?? []), ...(c.args ?? [])], pod.metadata.name);
    if (app?.ports.includes(port)) return app.handler;
    if (!app && !isClientImage(c.image) && (c.ports ?? []).some((p) => p.containerPort === port)) {
      unmodelled(`application image ${c.image} (pod ${pod.metadata.namespace}/${pod.metadata.name}, port ${port})`);
    }
  }
  return undefined;
}
