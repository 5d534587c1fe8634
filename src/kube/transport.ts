/**
 * How a client reaches and authenticates to a cluster as the kubeconfig says, as kubectl (client-go) does:
 * impersonation (`as`, `as-groups`, `as-uid`, `as-user-extra`, and the `--as*` flags), an exec credential plugin
 * (`command` relative to the kubeconfig file's directory when it has a path separator, its stderr passed through so
 * that device-code logins can talk to the user), and proxies (`proxy-url`, else `HTTPS_PROXY`/`NO_PROXY`) reached with
 * HTTP CONNECT.
 *
 * client-go references (kubernetes/client-go, release-1.31): `transport/round_trippers.go` (`NewImpersonatingRoundTripper`:
 * one `Impersonate-Group` header per group, `Impersonate-Extra-<key>` with the key percent-encoded), `plugin/pkg/client/
 * auth/exec/exec.go` (`KUBERNETES_EXEC_INFO`, stdin and stderr of an interactive plugin), `tools/clientcmd/loader.go`
 * (`GetAuthInfoFileReferences`: an exec command containing a path separator is resolved against the kubeconfig's
 * directory), `net/http.ProxyFromEnvironment` (HTTPS_PROXY, NO_PROXY).
 */
import { spawn } from 'node:child_process';
import { Agent, type AgentOptions, type RequestOptions } from 'node:https';
import type { Duplex } from 'node:stream';
import { connect as netConnect } from 'node:net';
import { connect as tlsConnect, type ConnectionOptions } from 'node:tls';
import { ClusterError, InputError, UsageError } from '../errors.js';
import type { KubeUser } from './kubeconfig.js';

/** Who to act as (`--as`, `--as-group`, `--as-uid`); each set field overrides the kubeconfig's. */
export interface Impersonation {
  user?: string;
  groups?: string[];
  uid?: string;
}

/** `Impersonate-Extra-` keys as client-go escapes them: characters that are not legal in a header name, percent-encoded. */
function headerKeyEscape(key: string): string {
  return [...Buffer.from(key, 'utf8')].map((byte) => {
    const c = String.fromCharCode(byte);
    return /[A-Za-z0-9!#$&'*+\-.^_`|~]/.test(c) && byte < 0x80 ? c : `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }).join('');
}

/**
 * The impersonation headers for a user entry and the flags (flags win, as in kubectl).
 * @throws UsageError when groups, a uid or extras are given without a user to impersonate (as kubectl refuses)
 */
export function impersonationHeaders(user: KubeUser, flags: Impersonation = {}, contextName = ''): Record<string, string | string[]> {
  const as = flags.user ?? (typeof user.as === 'string' && user.as ? user.as : undefined);
  const groups = flags.groups?.length ? flags.groups : Array.isArray(user['as-groups']) ? (user['as-groups'] as unknown[]).map(String) : [];
  const uid = flags.uid ?? (typeof user['as-uid'] === 'string' && user['as-uid'] ? user['as-uid'] : undefined);
  const extra = (user['as-user-extra'] && typeof user['as-user-extra'] === 'object' ? user['as-user-extra'] : {}) as Record<string, unknown>;
  const headers: Record<string, string | string[]> = {};
  if (as === undefined) {
    if (groups.length || uid !== undefined || Object.keys(extra).length) {
      throw new UsageError(`context "${contextName}": requesting uid, groups or user-extra without impersonating a user`, {
        hint: 'give --as (or `as` in the kubeconfig user) too',
      });
    }
    return headers;
  }
  headers['impersonate-user'] = as;
  if (groups.length) headers['impersonate-group'] = groups;
  if (uid !== undefined) headers['impersonate-uid'] = uid;
  for (const [key, values] of Object.entries(extra)) {
    const list = (Array.isArray(values) ? values : [values]).map(String);
    if (list.length) headers[`impersonate-extra-${headerKeyEscape(key)}`] = list;
  }
  return headers;
}

/** A kubeconfig `exec` entry (client.authentication.k8s.io). */
interface ExecConfig {
  command?: string;
  args?: string[];
  env?: Array<{ name: string; value: string }> | null;
  apiVersion?: string;
  interactiveMode?: 'Never' | 'IfAvailable' | 'Always';
  provideClusterInfo?: boolean;
  installHint?: string;
}

/** What an exec plugin gave: a bearer token, or a client certificate and key. */
export interface ExecCredential {
  token?: string;
  cert?: string;
  key?: string;
}

/** Options of {@link runExecPlugin}. */
export interface ExecOptions {
  contextName: string;
  /** The cluster, for plugins that ask for it (`provideClusterInfo`). */
  cluster: { server: string; 'certificate-authority-data'?: string; 'insecure-skip-tls-verify'?: boolean; 'tls-server-name'?: string; 'proxy-url'?: string };
  /** Where the plugin's stderr goes (the user's terminal): prompts and device codes. Default process.stderr. */
  stderr?: NodeJS.WritableStream;
  /** Whether stdin is a terminal the plugin may read (interactive mode). Default process.stdin.isTTY. */
  interactive?: boolean;
  env?: NodeJS.ProcessEnv;
}

/**
 * Runs a kubeconfig exec plugin once and reads the ExecCredential it prints. Its stderr is the user's: a device-code
 * login prints its code and URL there. Its stdin is the user's when the plugin may be interactive and there is a
 * terminal.
 * @throws InputError when the plugin cannot be run, fails or prints no credential
 */
export function runExecPlugin(exec: ExecConfig, options: ExecOptions): Promise<ExecCredential> {
  const command = exec.command;
  if (!command) return Promise.reject(new InputError(`context "${options.contextName}": the exec credential plugin has no command`));
  const apiVersion = exec.apiVersion ?? 'client.authentication.k8s.io/v1beta1';
  const interactive = exec.interactiveMode !== 'Never' && (options.interactive ?? process.stdin.isTTY === true);
  if (exec.interactiveMode === 'Always' && !interactive) {
    return Promise.reject(new InputError(`context "${options.contextName}": the exec credential plugin ${command} needs a terminal (interactiveMode: Always)`));
  }
  const info = {
    apiVersion, kind: 'ExecCredential',
    spec: {
      interactive,
      ...(exec.provideClusterInfo ? {
        cluster: {
          server: options.cluster.server,
          ...(options.cluster['tls-server-name'] ? { 'tls-server-name': options.cluster['tls-server-name'] } : {}),
          ...(options.cluster['insecure-skip-tls-verify'] ? { 'insecure-skip-tls-verify': true } : {}),
          ...(options.cluster['certificate-authority-data'] ? { 'certificate-authority-data': options.cluster['certificate-authority-data'] } : {}),
          ...(options.cluster['proxy-url'] ? { 'proxy-url': options.cluster['proxy-url'] } : {}),
        },
      } : {}),
    },
  };
  const env: NodeJS.ProcessEnv = { ...(options.env ?? process.env), KUBERNETES_EXEC_INFO: JSON.stringify(info) };
  for (const { name, value } of exec.env ?? []) env[name] = value;
  return new Promise((resolve, reject) => {
    const child = spawn(command, exec.args ?? [], { env, stdio: [interactive ? 'inherit' : 'ignore', 'pipe', 'pipe'] });
    let stdout = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    // Passed through as it comes: a device-code login shows its code while it waits.
    child.stderr.on('data', (chunk: Buffer) => (options.stderr ?? process.stderr).write(chunk));
    child.on('error', (error: NodeJS.ErrnoException) => {
      reject(new InputError(`context "${options.contextName}": cannot run the exec credential plugin ${command}: ${error.code === 'ENOENT' ? 'not found' : error.message}`, {
        ...(exec.installHint ? { hint: exec.installHint } : { hint: 'install it, or fix `command` in the kubeconfig user (a relative path is relative to the kubeconfig file)' }),
      }));
    });
    child.on('close', (code) => {
      if (code !== 0) {
        reject(new InputError(`context "${options.contextName}": the exec credential plugin ${command} failed (exit ${code})`));
        return;
      }
      let parsed: { status?: { token?: string; clientCertificateData?: string; clientKeyData?: string } };
      try {
        parsed = JSON.parse(stdout) as typeof parsed;
      } catch {
        reject(new InputError(`context "${options.contextName}": the exec credential plugin ${command} printed no ExecCredential JSON`));
        return;
      }
      const status = parsed.status ?? {};
      if (!status.token && !(status.clientCertificateData && status.clientKeyData)) {
        reject(new InputError(`context "${options.contextName}": the exec credential plugin ${command} gave neither a token nor a client certificate and key`));
        return;
      }
      resolve({
        ...(status.token ? { token: status.token } : {}),
        ...(status.clientCertificateData ? { cert: status.clientCertificateData, key: status.clientKeyData! } : {}),
      });
    });
  });
}

/** Whether `host:port` is excluded from proxying by a NO_PROXY list (Go's `httpproxy` rules: `*`, domains, IPs, CIDRs). */
export function noProxyMatches(noProxy: string, host: string, port: string): boolean {
  const name = host.replace(/^\[|\]$/g, '').toLowerCase();
  return noProxy.split(/[\s,]+/).filter(Boolean).some((rawEntry) => {
    const entry = rawEntry.toLowerCase();
    if (entry === '*') return true;
    const [entryHost, entryPort] = /^\[?([^\]]+?)\]?(?::(\d+))?$/.exec(entry)?.slice(1) ?? [entry, undefined];
    if (entryPort && entryPort !== port) return false;
    const cidr = /^(\d+\.\d+\.\d+\.\d+)\/(\d+)$/.exec(entryHost!);
    if (cidr) {
      const toInt = (ip: string) => ip.split('.').reduce((n, part) => (n << 8) + Number(part), 0) >>> 0;
      if (!/^\d+\.\d+\.\d+\.\d+$/.test(name)) return false;
      const bits = Number(cidr[2]);
      const mask = bits === 0 ? 0 : (~0 << (32 - bits)) >>> 0;
      return (toInt(name) & mask) === (toInt(cidr[1]!) & mask);
    }
    const domain = entryHost!.replace(/^\*?\./, '');
    return name === domain || (entryHost!.startsWith('.') || entryHost!.startsWith('*.') ? name.endsWith(`.${domain}`) : name.endsWith(`.${domain}`));
  });
}

/**
 * The proxy for a server, as client-go picks it: the cluster's `proxy-url` when set, else `HTTPS_PROXY` (or
 * `https_proxy`; `HTTP_PROXY` for an http:// server) unless NO_PROXY excludes the host. Undefined: connect directly.
 */
export function proxyFor(server: URL, proxyUrl: string | undefined, env: Record<string, string | undefined>): URL | undefined {
  const parse = (text: string, what: string): URL => {
    try {
      return new URL(/^[a-z][a-z0-9+.-]*:\/\//i.test(text) ? text : `http://${text}`);
    } catch {
      throw new InputError(`invalid proxy URL "${text}" (${what})`);
    }
  };
  if (proxyUrl) return parse(proxyUrl, 'proxy-url of the kubeconfig cluster');
  const https = server.protocol === 'https:';
  const value = https ? env.HTTPS_PROXY ?? env.https_proxy : env.HTTP_PROXY ?? env.http_proxy;
  if (!value) return undefined;
  const port = server.port || (https ? '443' : '80');
  // Go's ProxyFromEnvironment never proxies localhost or a loopback address (golang.org/x/net/http/httpproxy, useProxy).
  const host = server.hostname.replace(/^\[|\]$/g, '');
  if (host === 'localhost' || /^127\./.test(host) || host === '::1') return undefined;
  if (noProxyMatches(env.NO_PROXY ?? env.no_proxy ?? '', server.hostname, port)) return undefined;
  return parse(value, https ? 'HTTPS_PROXY' : 'HTTP_PROXY');
}

/**
 * An https Agent that reaches servers through an HTTP proxy with CONNECT, then speaks TLS to the server inside the
 * tunnel (the proxy sees only the host and port). Proxy credentials in the URL are sent as Proxy-Authorization.
 */
export class TunnelAgent extends Agent {
  constructor(private readonly proxy: URL, options: AgentOptions, private readonly dialTimeoutMs: number) {
    super(options);
    if (proxy.protocol !== 'http:') throw new InputError(`proxy ${proxy.origin}: only http:// proxies are supported (CONNECT)`);
  }

  override createConnection(requestOptions: RequestOptions, callback?: (error: Error | null, stream: Duplex) => void): Duplex | null | undefined {
    const options = requestOptions as ConnectionOptions & { host?: string; port?: number };
    const host = options.host ?? 'localhost';
    const port = options.port ?? 443;
    const target = `${host.includes(':') ? `[${host}]` : host}:${port}`;
    const proxySocket = netConnect({ host: this.proxy.hostname.replace(/^\[|\]$/g, ''), port: Number(this.proxy.port || 80) });
    let done = false;
    const fail = (error: Error) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      proxySocket.destroy();
      callback?.(error, proxySocket);
    };
    const timer = setTimeout(() => fail(new ClusterError(`cannot reach the proxy ${this.proxy.host}: no answer within ${this.dialTimeoutMs / 1000}s`)), this.dialTimeoutMs);
    proxySocket.once('error', (error) => fail(new ClusterError(`cannot reach the proxy ${this.proxy.host}: ${error.message}`)));
    proxySocket.once('connect', () => {
      const auth = this.proxy.username
        ? `Proxy-Authorization: Basic ${Buffer.from(`${decodeURIComponent(this.proxy.username)}:${decodeURIComponent(this.proxy.password)}`).toString('base64')}\r\n`
        : '';
      proxySocket.write(`CONNECT ${target} HTTP/1.1\r\nHost: ${target}\r\n${auth}\r\n`);
    });
    let head = Buffer.alloc(0);
    const onData = (chunk: Buffer) => {
      head = Buffer.concat([head, chunk]);
      const end = head.indexOf('\r\n\r\n');
      if (end < 0) return;
      proxySocket.off('data', onData);
      const status = /^HTTP\/1\.[01] (\d{3})/.exec(head.subarray(0, end).toString('latin1'))?.[1];
      if (status !== '200') {
        fail(new ClusterError(`the proxy ${this.proxy.host} refused to connect to ${target}: ${head.subarray(0, head.indexOf('\r\n')).toString('latin1')}`));
        return;
      }
      if (head.length > end + 4) proxySocket.unshift(head.subarray(end + 4));
      done = true;
      clearTimeout(timer);
      const tls = tlsConnect({ ...options, socket: proxySocket, servername: options.servername ?? (host.match(/^[\d.:[\]]+$/) ? undefined : host) } as ConnectionOptions);
      callback?.(null, tls);
    };
    proxySocket.on('data', onData);
    return undefined;
  }
}
