/**
 * curl, as run by the `curlimages/curl` image: the options a probe needs, each transfer sent through the data
 * path, and exactly what curl would print (body and `-w` output on stdout, progress meter and `curl: (N) …`
 * errors on stderr) with curl's exit code. Options curl has but the model does not implement fail loudly.
 */
import { performance } from 'node:perf_hooks';
import type { HttpRequest, Reply } from './apps.js';
import { clientConnect } from './datapath.js';
import type { ClientOutcome, Conn, Failure, PathContext } from './datapath.js';
import { createRootCA } from './pki.js';
import type { ClusterView, KubeObject } from '../emulator/runtime.js';
import { unmodelled } from './world.js';

/** The curl version the model reports (User-Agent, `%{curl_version}`). */
export const CURL_VERSION = '8.11.1';

/** What a client program printed and how it exited. */
export interface ProgramResult {
  stdout: string;
  stderr: string;
  exitCode: number;
}

/** Where a client program runs. */
export interface ClientEnv {
  ctx: PathContext;
  cluster: ClusterView;
  pod: KubeObject;
  /** Stops the pod's istio-proxy (pilot-agent's /quitquitquit). */
  stopSidecar?: () => void;
  /** Files the program can write (`-o`) and the shell can read (`cat`). */
  files?: Map<string, string>;
  /** Standard input (for `telnet://`). */
  stdin?: string;
}

interface Transfer {
  url?: string;
  method?: string;
  headers: string[];
  data?: string;
  output?: string;
  writeOut?: string;
  maxTime?: number;
  connectTimeout?: number;
  fail: boolean;
  include: boolean;
  insecure: boolean;
  resolve: string[];
}

interface Globals { silent: boolean; showError: boolean }

const ARG_OPTIONS: Record<string, string> = {
  '-o': 'output', '--output': 'output', '-w': 'writeOut', '--write-out': 'writeOut', '-H': 'header', '--header': 'header',
  '-X': 'method', '--request': 'method', '-m': 'maxTime', '--max-time': 'maxTime', '--connect-timeout': 'connectTimeout',
  '-d': 'data', '--data': 'data', '--data-raw': 'data', '--data-binary': 'data', '-A': 'userAgent', '--user-agent': 'userAgent',
  '--resolve': 'resolve', '--url': 'url', '--retry': 'unmodelled', '--retry-delay': 'unmodelled', '--retry-max-time': 'unmodelled',
  '--cacert': 'unmodelled', '-E': 'unmodelled', '--cert': 'unmodelled', '--key': 'unmodelled', '-x': 'unmodelled', '--proxy': 'unmodelled',
  '-u': 'unmodelled', '--user': 'unmodelled', '-F': 'unmodelled', '--form': 'unmodelled', '-T': 'unmodelled', '--upload-file': 'unmodelled',
  '-e': 'unmodelled', '--referer': 'unmodelled', '-b': 'unmodelled', '--cookie': 'unmodelled', '--connect-to': 'unmodelled',
};
const FLAG_OPTIONS: Record<string, string> = {
  '-s': 'silent', '--silent': 'silent', '-S': 'showError', '--show-error': 'showError', '-f': 'fail', '--fail': 'fail',
  '-i': 'include', '--include': 'include', '-k': 'insecure', '--insecure': 'insecure', '-L': 'ignore', '--location': 'ignore',
  '--http1.1': 'ignore', '-4': 'ignore', '--ipv4': 'ignore', '--no-progress-meter': 'noProgress', '-N': 'ignore', '--no-buffer': 'ignore',
  '-v': 'unmodelled', '--verbose': 'unmodelled', '-I': 'unmodelled', '--head': 'unmodelled', '--http2': 'unmodelled',
  '--http2-prior-knowledge': 'unmodelled', '-6': 'unmodelled', '--compressed': 'unmodelled', '--fail-with-body': 'unmodelled', '-Z': 'unmodelled', '--parallel': 'unmodelled',
};

const STATUS_TEXT: Record<number, string> = { 200: 'OK', 201: 'Created', 204: 'No Content', 400: 'Bad Request', 403: 'Forbidden', 404: 'Not Found', 500: 'Internal Server Error', 502: 'Bad Gateway', 503: 'Service Unavailable', 504: 'Gateway Timeout' };

class UsageError extends Error {}

function newTransfer(): Transfer {
  return { headers: [], fail: false, include: false, insecure: false, resolve: [] };
}

function parseArgs(argv: string[]): { globals: Globals & { noProgress: boolean }; transfers: Transfer[]; userAgent?: string } {
  const globals = { silent: false, showError: false, noProgress: false };
  const transfers: Transfer[] = [newTransfer()];
  let userAgent: string | undefined;
  const cur = (): Transfer => transfers[transfers.length - 1]!;
  const apply = (opt: string, name: string, value?: string): void => {
    switch (name) {
      case 'unmodelled': unmodelled(`curl option ${opt}`); break;
      case 'silent': globals.silent = true; break;
      case 'showError': globals.showError = true; break;
      case 'noProgress': globals.noProgress = true; break;
      case 'fail': cur().fail = true; break;
      case 'include': cur().include = true; break;
      case 'insecure': cur().insecure = true; break;
      case 'ignore': break;
      case 'output': cur().output = value; break;
      case 'writeOut':
        if (value!.startsWith('@')) unmodelled('curl -w @file');
        cur().writeOut = value; break;
      case 'header': cur().headers.push(value!); break;
      case 'method': cur().method = value; break;
      case 'maxTime': case 'connectTimeout': {
        const n = Number(value);
        if (!Number.isFinite(n)) throw new UsageError(`option ${opt}: expected a proper numerical parameter`);
        cur()[name] = n; break;
      }
      case 'data': cur().data = cur().data === undefined ? value : `${cur().data}&${value}`; break;
      case 'userAgent': userAgent = value; break;
      case 'resolve': cur().resolve.push(value!); break;
      case 'url': cur().url = value; break;
    }
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--next' || a === '-:') { transfers.push(newTransfer()); continue; }
    if (a.startsWith('--')) {
      const [opt, inline] = a.includes('=') && ARG_OPTIONS[a.slice(0, a.indexOf('='))] ? [a.slice(0, a.indexOf('=')), a.slice(a.indexOf('=') + 1)] : [a, undefined];
      if (ARG_OPTIONS[opt]) {
        const v = inline ?? argv[++i];
        if (v === undefined) throw new UsageError(`option ${opt}: requires parameter`);
        apply(opt, ARG_OPTIONS[opt], v);
      } else if (FLAG_OPTIONS[opt]) apply(opt, FLAG_OPTIONS[opt]);
      else throw new UsageError(`option ${opt}: is unknown`);
      continue;
    }
    if (a.startsWith('-') && a.length > 1) {
      for (let j = 1; j < a.length; j++) {
        const opt = `-${a[j]}`;
        if (ARG_OPTIONS[opt]) {
          const rest = a.slice(j + 1);
          const v = rest !== '' ? rest : argv[++i];
          if (v === undefined) throw new UsageError(`option ${opt}: requires parameter`);
          apply(opt, ARG_OPTIONS[opt], v);
          break;
        }
        if (FLAG_OPTIONS[opt]) apply(opt, FLAG_OPTIONS[opt]);
        else throw new UsageError(`option ${opt}: is unknown`);
      }
      continue;
    }
    if (cur().url !== undefined) {
      // A second URL without --next shares the options: model it as a further transfer with the same settings.
      transfers.push({ ...cur(), headers: [...cur().headers], resolve: [...cur().resolve], url: a });
    } else cur().url = a;
  }
  return { globals, transfers, userAgent };
}

let publicTrustStore: string | undefined;
/** The image's public CA bundle: no certificate issued in the emulated clusters chains to it. */
function publicCAs(): string {
  publicTrustStore ??= createRootCA('Public Root CA (model of the image CA bundle)').cert;
  return publicTrustStore;
}

interface TransferOutcome {
  exitCode: number;
  error?: string;
  status?: number;
  body: string;
  headers?: Record<string, string>;
  elapsedMs: number;
  remoteIp?: string;
  remotePort?: number;
}

function curlTlsError(f: Extract<Failure, { kind: 'tls' }>, host: string, port: number): { code: number; msg: string } {
  if (f.side === 'client') {
    if (f.code === 'WRONG_VERSION_NUMBER') return { code: 35, msg: 'OpenSSL/3.3.2: error:0A00010B:SSL routines::wrong version number' };
    if (f.code === 'ERR_TLS_CERT_ALTNAME_INVALID') return { code: 60, msg: `SSL: no alternative certificate subject name matches target host name '${host}'` };
    if (f.code === 'CERT_HAS_EXPIRED') return { code: 60, msg: 'SSL certificate problem: certificate has expired' };
    if (f.code === 'PEER_ALERT' || f.code === 'ECONNRESET') return { code: 35, msg: `OpenSSL SSL_connect: Connection reset by peer in connection to ${host}:${port} ` };
    return { code: 60, msg: 'SSL certificate problem: unable to get local issuer certificate' };
  }
  const text = f.code + f.message;
  // OpenSSL reports a received alert as reason 1000 + the alert number.
  const [alert, number] = /expired/i.test(text) ? ['sslv3 alert certificate expired', 45]
    : /did not return a certificate|CERTIFICATE_REQUIRED/i.test(text) ? ['tlsv13 alert certificate required', 116] : ['tlsv1 alert unknown ca', 48];
  const reason = (1000 + number).toString(16).toUpperCase().padStart(6, '0');
  return { code: 56, msg: `OpenSSL SSL_read: OpenSSL/3.3.2: error:0A${reason}:SSL routines::${alert}, errno 0` };
}

async function doTransfer(env: ClientEnv, t: Transfer, userAgent: string | undefined): Promise<TransferOutcome> {
  const start = performance.now();
  const elapsed = (): number => performance.now() - start;
  const raw = t.url ?? '';
  const withScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(raw) ? raw : `http://${raw}`;
  let url: URL;
  try {
    url = new URL(withScheme);
    if (!url.hostname) throw new Error('no host');
  } catch {
    return { exitCode: 3, error: `URL rejected: ${raw === '' ? 'No host part in the URL' : 'Malformed input to a URL function'}`, body: '', elapsedMs: elapsed() };
  }
  const scheme = url.protocol.replace(/:$/, '');
  if (!['http', 'https', 'telnet'].includes(scheme)) {
    return { exitCode: 1, error: `Protocol "${scheme}" not supported`, body: '', elapsedMs: elapsed() };
  }
  const host = url.hostname.replace(/^\[|\]$/g, '');
  const port = url.port ? Number(url.port) : scheme === 'https' ? 443 : scheme === 'telnet' ? 23 : 80;
  let connectHost = host;
  for (const r of t.resolve) {
    const [h, p, addr] = r.split(':');
    if (h === host && Number(p) === port && addr) connectHost = addr;
  }
  let conn: Conn;
  if (scheme === 'telnet') {
    conn = { payload: { kind: 'tcp', data: env.stdin ?? '' } };
  } else {
    const headers: Record<string, string> = {
      host: url.port ? `${host}:${url.port}` : host,
      'user-agent': userAgent ?? `curl/${CURL_VERSION}`,
      accept: '*/*',
    };
    for (const h of t.headers) {
      const i = h.indexOf(':');
      if (i < 0) continue;
      const name = h.slice(0, i).trim().toLowerCase();
      const value = h.slice(i + 1).trim();
      if (value === '' && !h.trimEnd().endsWith(';')) delete headers[name]; else headers[name] = value;
    }
    if (t.data !== undefined) headers['content-type'] ??= 'application/x-www-form-urlencoded';
    const request: HttpRequest = {
      method: t.method ?? (t.data !== undefined ? 'POST' : 'GET'),
      path: `${url.pathname || '/'}${url.search}`,
      authority: headers['host'] ?? host,
      headers,
      body: t.data,
    };
    conn = { payload: { kind: 'http', request } };
    if (scheme === 'https') {
      const isIp = /^\d+\.\d+\.\d+\.\d+$/.test(host);
      conn.tls = { servername: isIp ? undefined : host, ca: t.insecure ? undefined : publicCAs(), verifyHostname: t.insecure ? undefined : host };
    }
  }
  const outcome: ClientOutcome = await clientConnect(env.ctx, env.cluster, env.pod, connectHost, port, conn, { stopSidecar: env.stopSidecar });
  const ms = elapsed();
  if (!outcome.ok) {
    const f = outcome.failure;
    const timeoutS = Math.min(t.connectTimeout ?? Infinity, t.maxTime ?? Infinity);
    switch (f.kind) {
      case 'resolve': return { exitCode: 6, error: `Could not resolve host: ${f.host}`, body: '', elapsedMs: ms };
      case 'refused': return { exitCode: 7, error: `Failed to connect to ${host} port ${port} after ${Math.max(1, Math.round(ms))} ms: Couldn't connect to server`, body: '', elapsedMs: ms };
      case 'timeout':
        if (Number.isFinite(timeoutS)) return { exitCode: 28, error: `Connection timed out after ${Math.round(timeoutS * 1000) + 1} milliseconds`, body: '', elapsedMs: timeoutS * 1000 };
        return { exitCode: 28, error: `Failed to connect to ${host} port ${port} after 130000 ms: Couldn't connect to server`, body: '', elapsedMs: 130000 };
      case 'reset': return { exitCode: 56, error: 'Recv failure: Connection reset by peer', body: '', elapsedMs: ms };
      case 'handshake-reset': return { exitCode: 35, error: `OpenSSL SSL_connect: Connection reset by peer in connection to ${host}:${port} `, body: '', elapsedMs: ms };
      case 'sds': return { exitCode: 56, error: 'Recv failure: Connection reset by peer', body: '', elapsedMs: ms };
      case 'tls': {
        const e = curlTlsError(f, host, port);
        return { exitCode: e.code, error: e.msg, body: '', elapsedMs: ms };
      }
    }
  }
  return fromReply(outcome.reply, scheme, t, ms);
}

function fromReply(reply: Reply, scheme: string, t: Transfer, ms: number): TransferOutcome {
  if (scheme === 'telnet') {
    return { exitCode: 0, body: reply.kind === 'tcp' ? reply.data : '', elapsedMs: ms };
  }
  if (reply.kind === 'closed') return { exitCode: 52, error: 'Empty reply from server', body: '', elapsedMs: ms };
  if (reply.kind === 'tcp') {
    if (reply.data.startsWith('HTTP/1.1 ')) {
      const status = Number(reply.data.slice(9, 12));
      return { exitCode: t.fail && status >= 400 ? 22 : 0, status, body: '', elapsedMs: ms, error: t.fail && status >= 400 ? `The requested URL returned error: ${status}` : undefined };
    }
    return { exitCode: 1, error: 'Received HTTP/0.9 when not allowed', body: '', elapsedMs: ms };
  }
  const { status, headers, body } = reply.response;
  if (t.fail && status >= 400) return { exitCode: 22, error: `The requested URL returned error: ${status}`, status, body: '', headers, elapsedMs: ms };
  return { exitCode: 0, status, body, headers, elapsedMs: ms };
}

function writeOut(format: string, t: Transfer, o: TransferOutcome): { stdout: string; stderr: string } {
  let out = '';
  let err = '';
  let toStderr = false;
  const unescaped = format.replace(/\\([nrt\\])/g, (_m, c: string) => ({ n: '\n', r: '\r', t: '\t', '\\': '\\' })[c]!);
  const parts = unescaped.split(/(%\{[^}]*\}|%%)/);
  for (const part of parts) {
    let text = part;
    if (part === '%%') text = '%';
    else if (part.startsWith('%{')) {
      const name = part.slice(2, -1);
      const secs = (o.elapsedMs / 1000).toFixed(6);
      const values: Record<string, string> = {
        http_code: String(o.status ?? 0).padStart(3, '0'), response_code: String(o.status ?? 0).padStart(3, '0'),
        time_total: secs, time_connect: secs, time_starttransfer: secs, time_namelookup: '0.000100', time_appconnect: secs,
        exitcode: String(o.exitCode), errormsg: o.error ?? '', size_download: String(Buffer.byteLength(o.body)),
        url_effective: t.url ?? '', url: t.url ?? '', content_type: o.headers?.['content-type'] ?? '', num_connects: o.status ? '1' : '0',
        method: t.method ?? (t.data !== undefined ? 'POST' : 'GET'), curl_version: `libcurl/${CURL_VERSION}`,
      };
      if (name === 'stderr') { toStderr = true; continue; }
      if (name === 'stdout') { toStderr = false; continue; }
      if (name.startsWith('header{')) { text = o.headers?.[name.slice(7, -1).toLowerCase()] ?? ''; }
      else if (name in values) text = values[name]!;
      else { err += `curl: unknown --write-out variable: '${name}'\n`; continue; }
    }
    if (toStderr) err += text; else out += text;
  }
  return { stdout: out, stderr: err };
}

function progressMeter(o: TransferOutcome): string {
  const size = Buffer.byteLength(o.body);
  const secs = Math.max(0, Math.round(o.elapsedMs / 1000));
  const hms = `0:00:${String(secs % 60).padStart(2, '0')}`;
  return '  % Total    % Received % Xferd  Average Speed   Time    Time     Time  Current\n'
    + '                                 Dload  Upload   Total   Spent    Left  Speed\n'
    + `${size > 0 ? '100' : '  0'} ${String(size).padStart(5)}  ${size > 0 ? '100' : '  0'} ${String(size).padStart(5)}    0     0   ${String(size).padStart(5)}      0 --:--:-- ${hms} --:--:-- ${String(size).padStart(5)}\n`;
}

/** Runs `curl argv…` in a pod and returns what curl prints and its exit code. */
export async function runCurl(env: ClientEnv, argv: string[]): Promise<ProgramResult> {
  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs(argv);
  } catch (e) {
    if (e instanceof UsageError) return { stdout: '', stderr: `curl: ${e.message}\ncurl: try 'curl --help' or 'curl --manual' for more information\n`, exitCode: 2 };
    throw e;
  }
  const { globals, transfers, userAgent } = parsed;
  if (transfers.every((t) => t.url === undefined)) {
    return { stdout: '', stderr: "curl: no URL specified\ncurl: try 'curl --help' or 'curl --manual' for more information\n", exitCode: 2 };
  }
  let stdout = '';
  let stderr = '';
  let exitCode = 0;
  for (const t of transfers) {
    if (t.url === undefined) continue;
    const o = await doTransfer(env, t, userAgent);
    if (o.exitCode === 0 || o.status !== undefined) {
      let out = '';
      if (t.include && o.status !== undefined) {
        out += `HTTP/1.1 ${o.status} ${STATUS_TEXT[o.status] ?? ''}\r\n${Object.entries(o.headers ?? {}).map(([k, v]) => `${k}: ${v}\r\n`).join('')}\r\n`;
      }
      out += o.body;
      if (t.output && t.output !== '-') {
        if (t.output !== '/dev/null') env.files?.set(t.output, out);
      } else stdout += out;
    }
    // curl shows its progress meter whenever stdout is not a terminal, as in a container.
    if (!globals.silent && !globals.noProgress) stderr += progressMeter(o);
    if (o.exitCode !== 0 && o.error && (!globals.silent || globals.showError)) stderr += `curl: (${o.exitCode}) ${o.error}\n`;
    if (t.writeOut) {
      const w = writeOut(t.writeOut, t, o);
      stdout += w.stdout;
      stderr += w.stderr;
    }
    exitCode = o.exitCode;
  }
  return { stdout, stderr, exitCode };
}
