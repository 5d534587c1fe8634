/**
 * `pods/exec` over WebSockets (the `v5.channel.k8s.io` / `v4.channel.k8s.io` subprotocols kubectl 1.30+ uses).
 * What the command does comes from {@link ExecHandler}s; SPDY upgrades (older kubectl) are refused with a
 * Status naming the reason.
 */
import { createHash } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { ApiError, badRequest, forbidden, notFound } from './errors.js';
import type { ExecHandler, ExecResult, KubeObject } from './runtime.js';
import type { RequestRecord, ServerContext } from './server.js';
import { authenticate } from './server.js';
import { authorize } from './rbac.js';

const GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';

function frame(opcode: number, payload: Buffer): Buffer {
  const len = payload.length;
  let header: Buffer;
  if (len < 126) {
    header = Buffer.from([0x80 | opcode, len]);
  } else if (len < 65536) {
    header = Buffer.alloc(4);
    header[0] = 0x80 | opcode;
    header[1] = 126;
    header.writeUInt16BE(len, 2);
  } else {
    header = Buffer.alloc(10);
    header[0] = 0x80 | opcode;
    header[1] = 127;
    header.writeBigUInt64BE(BigInt(len), 2);
  }
  return Buffer.concat([header, payload]);
}

/** Reads client frames (always masked) from a buffer; returns the frames and what is left over. */
function parseFrames(buffer: Buffer): { frames: Array<{ opcode: number; payload: Buffer }>; rest: Buffer } {
  const frames: Array<{ opcode: number; payload: Buffer }> = [];
  let offset = 0;
  while (buffer.length - offset >= 2) {
    const b0 = buffer[offset] as number;
    const b1 = buffer[offset + 1] as number;
    let len = b1 & 0x7f;
    let pos = offset + 2;
    if (len === 126) {
      if (buffer.length < pos + 2) break;
      len = buffer.readUInt16BE(pos);
      pos += 2;
    } else if (len === 127) {
      if (buffer.length < pos + 8) break;
      len = Number(buffer.readBigUInt64BE(pos));
      pos += 8;
    }
    const masked = (b1 & 0x80) !== 0;
    const maskEnd = pos + (masked ? 4 : 0);
    if (buffer.length < maskEnd + len) break;
    const payload = Buffer.from(buffer.subarray(maskEnd, maskEnd + len));
    if (masked) for (let i = 0; i < payload.length; i++) payload[i] = (payload[i] as number) ^ (buffer[pos + (i % 4)] as number);
    frames.push({ opcode: b0 & 0x0f, payload });
    offset = maskEnd + len;
  }
  return { frames, rest: buffer.subarray(offset) };
}

function rejectUpgrade(socket: Duplex, error: ApiError): void {
  const body = JSON.stringify(error.toStatus());
  socket.end(`HTTP/1.1 ${error.code} ${error.reason}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
}

/** What a container without the executable answers. */
function notFoundResult(command: string[]): ExecResult {
  return {
    stdout: '',
    stderr: `OCI runtime exec failed: exec failed: unable to start container process: exec: "${command[0] ?? ''}": executable file not found in $PATH: unknown\r\n`,
    exitCode: 126,
  };
}

/** Handles an HTTP upgrade on the API server: exec over WebSockets, everything else refused. */
export function handleUpgrade(ctx: ServerContext, req: IncomingMessage, socket: Duplex, record: RequestRecord): void {
  const url = new URL(req.url ?? '/', 'https://127.0.0.1');
  try {
    const who = authenticate(ctx, req);
    record.user = who.user;
    const m = /^\/api\/v1\/namespaces\/([^/]+)\/pods\/([^/]+)\/exec$/.exec(url.pathname);
    if (!m) throw new ApiError(404, 'NotFound', 'the server could not find the requested resource');
    const namespace = decodeURIComponent(m[1] as string);
    const name = decodeURIComponent(m[2] as string);
    const may = (verb: string): boolean => authorize(ctx.api, who, { verb, group: '', resource: 'pods', subresource: 'exec', namespace, name });
    if (!may('create') && !may('get')) {
      throw forbidden(who.user, 'create', 'pods/exec', '', namespace, name);
    }
    if ((req.headers.upgrade ?? '').toLowerCase() !== 'websocket') {
      throw badRequest('the emulator supports exec over WebSockets only (kubectl 1.30 or later); SPDY upgrades are not emulated');
    }
    const pod = ctx.api.find(ctx.api.typeOf('', 'Pod'), namespace, name);
    if (!pod) throw notFound('pods', '', name);
    const containers = ((pod.spec as { containers: Array<{ name: string }> }).containers).map((c) => c.name);
    const container = url.searchParams.get('container') ?? (containers.length === 1 ? containers[0] : undefined);
    if (!container) throw badRequest(`a container name must be specified for pod ${name}, choose one of: [${containers.join(' ')}]`);
    if (!containers.includes(container)) throw badRequest(`container ${container} is not valid for pod ${name}`);
    const statuses = ((pod.status as { containerStatuses?: Array<{ name: string; state?: { running?: object } }> } | undefined)?.containerStatuses ?? []);
    if (!statuses.find((s) => s.name === container)?.state?.running) {
      throw badRequest(`unable to upgrade connection: container not found ("${container}")`);
    }
    const command = url.searchParams.getAll('command');
    const offered = (req.headers['sec-websocket-protocol'] ?? '').split(',').map((p) => p.trim());
    const protocol = offered.includes('v5.channel.k8s.io') ? 'v5.channel.k8s.io' : 'v4.channel.k8s.io';
    const accept = createHash('sha1').update(`${req.headers['sec-websocket-key'] ?? ''}${GUID}`).digest('base64');
    socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\nSec-WebSocket-Protocol: ${protocol}\r\n\r\n`);
    record.status = 101;
    run(ctx, socket, pod, container, command, url.searchParams.get('stdin') === 'true');
  } catch (err) {
    const error = err instanceof ApiError ? err : new ApiError(500, 'InternalError', `Internal error occurred: ${err instanceof Error ? err.message : String(err)}`);
    record.status = error.code;
    rejectUpgrade(socket, error);
  }
}

/** Where exec handlers find their cluster and world. */
export interface ExecContext {
  cluster: ExecHandlerArgs['cluster'];
  world: () => ExecHandlerArgs['world'];
}

type ExecHandlerArgs = Parameters<ExecHandler>[0];

function run(ctx: ServerContext, socket: Duplex, pod: KubeObject, container: string, command: string[], wantsStdin: boolean): void {
  let buffer: Buffer = Buffer.alloc(0);
  let stdin = '';
  let started = false;
  let closed = false;
  const send = (channel: number, data: string | Buffer): void => {
    if (closed) return;
    socket.write(frame(2, Buffer.concat([Buffer.from([channel]), Buffer.isBuffer(data) ? data : Buffer.from(data)])));
  };
  const close = (): void => {
    if (closed) return;
    socket.write(frame(8, Buffer.from([0x03, 0xe8])));
    closed = true;
    socket.end();
  };
  const start = (): void => {
    if (started) return;
    started = true;
    const exec: ExecHandlerArgs = { cluster: ctx.exec.cluster, world: ctx.exec.world(), pod: structuredClone(pod), container, command, ...(wantsStdin ? { stdin } : {}) };
    let result: Promise<ExecResult> | undefined;
    for (const handler of ctx.execHandlers()) {
      result = handler(exec);
      if (result) break;
    }
    (result ?? Promise.resolve(notFoundResult(command))).then(
      (r) => {
        if (r.stdout) send(1, r.stdout);
        if (r.stderr) send(2, r.stderr);
        const status = r.exitCode === 0
          ? { metadata: {}, status: 'Success' }
          : {
            metadata: {},
            status: 'Failure',
            message: `command terminated with non-zero exit code: error executing command [${command.join(' ')}], exit code ${r.exitCode}`,
            reason: 'NonZeroExitCode',
            details: { causes: [{ reason: 'ExitCode', message: String(r.exitCode) }] },
          };
        send(3, JSON.stringify(status));
        close();
      },
      (err: unknown) => {
        send(3, JSON.stringify(new ApiError(500, 'InternalError', `Internal error occurred: ${err instanceof Error ? err.message : String(err)}`).toStatus()));
        close();
      },
    );
  };
  socket.on('data', (chunk: Buffer) => {
    buffer = Buffer.concat([buffer, chunk]);
    const parsed = parseFrames(buffer);
    buffer = parsed.rest;
    for (const f of parsed.frames) {
      if (f.opcode === 8) {
        if (!started) start();
        return;
      }
      if (f.opcode === 9) socket.write(frame(10, f.payload));
      if ((f.opcode === 1 || f.opcode === 2) && f.payload.length > 0) {
        const channel = f.payload[0];
        // v5: channel 255 carries "close this stream"; closing stdin (0) means the input is complete.
        if (channel === 255 && f.payload[1] === 0) start();
        if (channel === 0) stdin += f.payload.subarray(1).toString('utf8');
      }
    }
  });
  socket.on('error', () => {
    closed = true;
  });
  socket.on('close', () => {
    closed = true;
  });
  if (!wantsStdin) start();
}
