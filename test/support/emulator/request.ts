/** Raw HTTPS requests to an emulated cluster, for tests that need what client libraries hide (headers, query). */
import https from 'node:https';

/** The answer to {@link apiRequest}. */
export interface ApiResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  /** The parsed body when the server says it is JSON, the text otherwise (logs, health checks). */
  body: unknown;
}

/** Sends one request with the cluster's admin token (or `token`) and CA. */
export function apiRequest(
  cluster: { server: string; caPem: string; token: string },
  options: {
    method?: string; path: string; body?: unknown; contentType?: string; token?: string; accept?: string;
    /** Authenticate with this client certificate instead of a token. */
    clientCert?: { certPem: string; keyPem: string };
    headers?: Record<string, string | string[]>;
  },
): Promise<ApiResponse> {
  const url = new URL(options.path, cluster.server);
  const payload = options.body === undefined ? undefined : typeof options.body === 'string' ? options.body : JSON.stringify(options.body);
  return new Promise((resolve, reject) => {
    const req = https.request(
      url,
      {
        method: options.method ?? 'GET',
        ca: cluster.caPem,
        ...(options.clientCert ? { cert: options.clientCert.certPem, key: options.clientCert.keyPem } : {}),
        headers: {
          ...options.headers,
          ...(options.clientCert ? {} : { Authorization: `Bearer ${options.token ?? cluster.token}` }),
          Accept: options.accept ?? 'application/json',
          ...(payload !== undefined ? { 'Content-Type': options.contentType ?? 'application/json', 'Content-Length': Buffer.byteLength(payload) } : {}),
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let body: unknown = text;
          if ((res.headers['content-type'] ?? '').includes('json')) {
            try {
              body = JSON.parse(text) as unknown;
            } catch {
              // a truncated or streaming body stays text
            }
          }
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body });
        });
      },
    );
    req.on('error', reject);
    req.end(payload);
  });
}
