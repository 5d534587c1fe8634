/**
 * A small HTTP CONNECT proxy on 127.0.0.1 for tests of clients that reach API servers through a proxy (`proxy-url`,
 * HTTPS_PROXY): it records every CONNECT target and tunnels bytes both ways. Targets are limited to loopback
 * addresses, so a test can never send traffic elsewhere.
 */
import { createServer, type IncomingMessage } from 'node:http';
import { connect, type AddressInfo, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';

export interface ConnectProxy {
  /** `http://127.0.0.1:<port>`. */
  readonly url: string;
  /** The CONNECT targets (`host:port`) received, in order. */
  readonly connects: string[];
  /** The Proxy-Authorization headers received, in order (undefined when absent). */
  readonly authorizations: Array<string | undefined>;
  close(): Promise<void>;
}

export async function startConnectProxy(): Promise<ConnectProxy> {
  const connects: string[] = [];
  const authorizations: Array<string | undefined> = [];
  const sockets = new Set<Socket | Duplex>();
  const server = createServer((_req, res) => {
    res.writeHead(405).end('CONNECT only\n');
  });
  server.on('connect', (req: IncomingMessage, client: Duplex, head: Buffer) => {
    const target = req.url ?? '';
    connects.push(target);
    authorizations.push(req.headers['proxy-authorization']);
    const match = /^\[?([^\]]+?)\]?:(\d+)$/.exec(target);
    if (!match || !/^(127\.\d+\.\d+\.\d+|::1|localhost)$/.test(match[1]!)) {
      client.end('HTTP/1.1 403 Forbidden\r\n\r\n');
      return;
    }
    const upstream = connect({ host: match[1]!, port: Number(match[2]) }, () => {
      client.write('HTTP/1.1 200 Connection established\r\n\r\n');
      if (head.length) upstream.write(head);
      upstream.pipe(client);
      client.pipe(upstream);
    });
    sockets.add(upstream).add(client);
    const drop = () => {
      upstream.destroy();
      client.destroy();
    };
    upstream.on('error', () => {
      client.end('HTTP/1.1 502 Bad Gateway\r\n\r\n');
      drop();
    });
    client.on('error', drop);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    connects,
    authorizations,
    close: () => new Promise<void>((resolve) => {
      for (const socket of sockets) socket.destroy();
      server.close(() => resolve());
    }),
  };
}
