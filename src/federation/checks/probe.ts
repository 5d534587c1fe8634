/**
 * The probe, as data: the pod `verify` runs in the consumer namespace (a curl image with an Istio sidecar), the
 * script it runs, and how its output maps to catalogue codes. The pod is created, watched and deleted by
 * src/kube/probe-pod.ts.
 *
 * HTTP: `curl` calls `http://<local-name>.<namespace>:<port><path>` and prints a marker line with the status, curl's
 * exit code and timing. TCP: the sidecar accepts every connection itself (and closes it when an upstream hop
 * fails), so a successful connect proves nothing; the probe sends a few bytes with `nc` and passes only when the
 * far end answers. Either way the script then stops its sidecar (`POST localhost:15020/quitquitquit`) so that the
 * pod completes.
 */
import type { ExportEndpoint, KubeObject, Protocol } from '../model.js';
import { importLabel, LABELS, MANAGED_BY, MANAGED_BY_LABEL } from '../naming.js';
import { VerifyFacts } from './facts.js';
import type { CheckResult, VerifySnapshot } from './types.js';
import { failure, resultOf } from './runner.js';

/** The default probe image: curl at a pinned tag (its busybox provides sh and nc). */
export const DEFAULT_PROBE_IMAGE = 'curlimages/curl:8.11.1';

/** The `meshfed.io/role` of probe pods. */
export const PROBE_ROLE = 'probe';

/** The prefix of the line the probe script prints its result on. */
export const PROBE_MARKER = 'meshfed-probe';

/** Bytes a TCP probe sends to well-known protocols so that the server answers something. */
const TCP_GREETINGS: ReadonlyArray<{ name: string; ports: number[]; send: string }> = [
  // PostgreSQL SSLRequest: a server answers a single byte, N or S.
  { name: 'postgres', ports: [5432], send: '\u0000\u0000\u0000\u0008\u0004\u00d2\u0016\u002f' },
  { name: 'redis', ports: [6379], send: 'PING\r\n' },
  // MySQL and other server-speaks-first protocols answer without being spoken to.
  { name: 'mysql', ports: [3306], send: '' },
];

/** What the probe calls and how. */
export interface ProbeTarget {
  /** `<local-name>.<namespace>` */
  host: string;
  port: number;
  protocol: Protocol;
  /** HTTP path (with query), default `/`. */
  path: string;
  /** TCP: bytes to send; default chosen by {@link tcpGreeting}. */
  send?: string;
  /** The gateways on the way, for hints, e.g. `the egress gateway in namespace istio-meshfed of context cluster1 …`. */
  gateways?: string;
}

/** The bytes a TCP probe sends to an endpoint: a protocol's greeting for well-known ports or names, else a newline. */
export function tcpGreeting(endpoint: Pick<ExportEndpoint, 'port'>): string {
  const name = `${endpoint.port.name} ${endpoint.port.appProtocol ?? ''}`.toLowerCase();
  const known = TCP_GREETINGS.find((g) => name.includes(g.name)) ?? TCP_GREETINGS.find((g) => g.ports.includes(endpoint.port.number));
  return known ? known.send : '\n';
}

/** Text as a printf format that reproduces it byte for byte, safe inside single quotes. */
export function printfFormat(text: string): string {
  return [...Buffer.from(text, 'latin1')].map((byte) => {
    const c = String.fromCharCode(byte);
    return /[A-Za-z0-9 .,:/_=+-]/.test(c) ? c : `\\${byte.toString(8).padStart(3, '0')}`;
  }).join('');
}

const shellQuote = (text: string): string => `'${text.replace(/'/g, `'\\''`)}'`;

/**
 * The probe's shell script. `maxTimeSeconds` bounds the call (curl `-m`, nc `-w`); the sidecar is stopped in every
 * case so that the pod completes.
 */
export function probeScript(target: ProbeTarget, maxTimeSeconds: number): string {
  const max = Math.max(1, Math.floor(maxTimeSeconds));
  const quit = 'curl -sS -m 5 -o /dev/null -X POST http://localhost:15020/quitquitquit';
  if (target.protocol === 'HTTP') {
    const url = `http://${target.host}:${target.port}${target.path.startsWith('/') ? target.path : `/${target.path}`}`;
    const format = `\\n${PROBE_MARKER} http_code=%{http_code} exitcode=%{exitcode} time_total=%{time_total} errormsg=%{errormsg}\\n`;
    return [`curl -sS -m ${max} -w ${shellQuote(format)} ${shellQuote(url)}`, quit].join('\n');
  }
  const send = printfFormat(target.send ?? '\n');
  // nc waits this long for the final reads after sending: an answer comes at once, a silent peer costs the wait.
  const wait = Math.min(max, 5);
  return [
    `reply=$(printf '${send}' | nc -w ${wait} ${target.host} ${target.port}); code=$?`,
    `if [ -n "$reply" ]; then echo "${PROBE_MARKER} answered=yes exitcode=$code"; else echo "${PROBE_MARKER} answered=no exitcode=$code"; fi`,
    quit,
  ].join('\n');
}

/** Options of {@link probePod}. */
export interface ProbePodOptions {
  name: string;
  namespace: string;
  /** The import's local name (labels the pod). */
  localName: string;
  image: string;
  target: ProbeTarget;
  /** Bound of the call itself, seconds. */
  maxTimeSeconds: number;
  /** The pod is killed by the kubelet after this many seconds even if verify could not delete it. */
  activeDeadlineSeconds: number;
  /** The service account the probe runs as (its Istio identity); default: the namespace's `default`. */
  serviceAccount?: string;
}

/** Who the probe runs as, and what verify says about it before the pod is created. */
export interface ProbeIdentity {
  /** The service account for the probe pod; undefined: the namespace's `default` (boundary mode). */
  account?: string;
  /** MF0515/MF0516 results. */
  results: CheckResult[];
  /** False when the pod cannot be created as this account (it does not exist): the probe is not run. */
  runnable: boolean;
}

/**
 * The service account the probe runs as. Shared-root mode admits callers by service account, so a probe running as
 * the namespace's `default` proves nothing about the workloads that were admitted (and fails when `default` is not
 * one of them): it runs as `requested` (`--service-account`) or else as an admitted account — the one most pods of the
 * namespace run as, else the first that exists. Boundary mode admits the consumer's egress gateway, so any account
 * will do and the pod keeps the namespace's default.
 * @param input.admitted the admitted accounts, when known (see VerifyFacts.admittedAccounts)
 * @param input.existing service accounts that exist in the import namespace; undefined when they could not be read
 * @param input.running the service accounts of the namespace's pods, one entry per pod
 */
export function probeIdentity(input: {
  mode: ExportEndpoint['mode']; namespace: string; requested?: string | undefined; admitted?: string[] | undefined;
  existing?: string[] | undefined; running?: string[];
}): ProbeIdentity {
  const { namespace, admitted, existing } = input;
  if (input.mode === 'boundary' && input.requested === undefined) return { results: [], runnable: true };
  const count = (sa: string): number => (input.running ?? []).filter((r) => r === sa).length;
  const candidates = [...(admitted ?? [])].sort((a, b) => count(b) - count(a) || a.localeCompare(b));
  const account = input.requested ?? candidates.find((sa) => existing?.includes(sa) ?? true) ?? candidates[0] ?? 'default';
  const object = `service account ${namespace}/${account}`;
  const results: CheckResult[] = [];
  if (input.mode === 'shared-root') {
    if (!admitted) results.push(resultOf('MF0515', { status: 'skip', reason: 'the admitted service accounts are unknown (pass --from to read them from the export)' }, object));
    else if (admitted.includes(account)) results.push(resultOf('MF0515', { status: 'ok', note: `admitted: ${admitted.join(', ')}` }, object));
    else results.push(failure('MF0515', { account, admitted: admitted.join(', '), namespace, first: candidates[0] ?? 'default' }, object));
  }
  const exists = existing === undefined || account === 'default' || existing.includes(account);
  results.push(exists ? resultOf('MF0516', { status: 'ok' }, object) : failure('MF0516', { account, namespace }, object));
  return { account, results, runnable: exists };
}

/**
 * {@link probeIdentity} for an import as verify read it: the admitted accounts (the export's record, else the import's),
 * the import namespace's service accounts and the accounts its pods run as.
 */
export function probeIdentityFor(snapshot: VerifySnapshot, requested: string | undefined): ProbeIdentity {
  const facts = new VerifyFacts(snapshot);
  const r = snapshot.record;
  const inNamespace = snapshot.consumer.objects.filter((o) => o.metadata.namespace === r.namespace);
  const existing = inNamespace.filter((o) => o.kind === 'ServiceAccount').map((o) => o.metadata.name);
  return probeIdentity({
    mode: r.endpoint.mode, namespace: r.namespace, requested, admitted: facts.admittedAccounts?.accounts,
    // Every namespace has `default`: an empty list means the accounts could not be read.
    existing: existing.length ? existing : undefined,
    running: facts.callerPods.map((p) => ((p.spec as { serviceAccountName?: string } | undefined)?.serviceAccountName) ?? 'default'),
  });
}

/** The probe pod: restartPolicy Never, the sidecar started before curl, a deadline as a safety net. */
export function probePod(options: ProbePodOptions): KubeObject {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name: options.name,
      namespace: options.namespace,
      labels: {
        [MANAGED_BY_LABEL]: MANAGED_BY,
        [LABELS.role]: PROBE_ROLE,
        [LABELS.import]: importLabel(options.namespace, options.localName),
        app: 'meshfed-probe',
      },
      annotations: {
        // curl must not start before Envoy is ready, or its first connection bypasses or hits a proxy not yet configured.
        'proxy.istio.io/config': 'holdApplicationUntilProxyStarts: true\n',
      },
    },
    spec: {
      ...(options.serviceAccount ? { serviceAccountName: options.serviceAccount } : {}),
      restartPolicy: 'Never',
      activeDeadlineSeconds: Math.max(1, Math.ceil(options.activeDeadlineSeconds)),
      terminationGracePeriodSeconds: 1,
      containers: [{
        name: 'probe',
        image: options.image,
        command: ['sh', '-c', probeScript(options.target, options.maxTimeSeconds)],
        // Admissible in namespaces that enforce the "restricted" Pod Security Standard; 100 is curl_user of the image.
        securityContext: {
          runAsNonRoot: true, runAsUser: 100, allowPrivilegeEscalation: false,
          capabilities: { drop: ['ALL'] }, seccompProfile: { type: 'RuntimeDefault' },
        },
        resources: { requests: { cpu: '10m', memory: '16Mi' }, limits: { memory: '64Mi' } },
      }],
    },
  };
}

/** What the probe printed, parsed. */
export interface ProbeOutput {
  /** The marker line was found. */
  complete: boolean;
  /** HTTP: the status (0 when there was no response). */
  httpStatus?: number;
  /** curl's (HTTP) or nc's (TCP) exit code. */
  exitCode?: number;
  /** HTTP: curl's total time in ms. */
  timeMs?: number;
  /** TCP: whether the far end sent anything back. */
  answered?: boolean;
  /** curl's error message, or nc's error line. */
  error?: string;
  /** The start of the response body (HTTP), for messages. */
  body: string;
  /** Envoy response flags from the sidecar's access log, when it has one for the call. */
  responseFlags?: string;
}

/** Parses the probe container's log (and, optionally, its sidecar's access log). */
export function parseProbeLog(log: string, proxyLog = ''): ProbeOutput {
  const lines = log.split('\n');
  const index = lines.map((l) => l.startsWith(`${PROBE_MARKER} `)).lastIndexOf(true);
  const flags = responseFlagsOf(proxyLog);
  if (index < 0) return { complete: false, body: log.slice(-400).trim(), ...(flags ? { responseFlags: flags } : {}) };
  const marker = lines[index]!;
  const field = (name: string): string | undefined => new RegExp(`(?:^| )${name}=(\\S*)`).exec(marker)?.[1];
  const errorText = /errormsg=(.*)$/.exec(marker)?.[1]?.trim();
  const before = lines.slice(0, index).join('\n');
  const ncError = /^nc: .*$/m.exec(before)?.[0];
  const curlError = /^curl: \(\d+\) .*$/m.exec(before)?.[0];
  const body = before.replace(/^curl: \(\d+\) .*$/gm, '').trim().slice(0, 400);
  const out: ProbeOutput = { complete: true, body };
  const status = field('http_code');
  if (status !== undefined) out.httpStatus = Number(status);
  const exit = field('exitcode');
  if (exit !== undefined && exit !== '') out.exitCode = Number(exit);
  const time = field('time_total');
  if (time !== undefined) out.timeMs = Math.round(Number(time) * 1000);
  const answered = field('answered');
  if (answered !== undefined) out.answered = answered === 'yes';
  const error = errorText || ncError || curlError?.replace(/^curl: \(\d+\) /, '');
  if (error) out.error = error;
  if (flags) out.responseFlags = flags;
  return out;
}

/** Envoy response flags of the last outbound call in an Istio access log (`"GET / HTTP/1.1" 503 UH …`, `"- - -" 0 UF …`). */
export function responseFlagsOf(proxyLog: string): string | undefined {
  let flags: string | undefined;
  for (const line of proxyLog.split('\n')) {
    if (line.includes('inbound|')) continue;
    const m = /"(?:[A-Z]+ \S+ HTTP\/[\d.]+|- - -)" (\d{1,3}) ([A-Z,]+|-) /.exec(line);
    if (m) flags = m[2];
  }
  return flags && flags !== '-' ? flags : undefined;
}

/** Facts for the probe's messages. */
export interface ProbeContext {
  pod: string;
  namespace: string;
  target: ProbeTarget;
  /** `Service <ns>/<local-name>`. */
  service: string;
}

/**
 * Maps the probe's output to results: one passing MF0503 line, or the failure code that names what went wrong
 * (curl exit codes 6, 7, 28, 35/60, 52/56; Envoy 503 NR/UF/URX/UH; 403 RBAC; another status).
 */
export function interpretProbe(output: ProbeOutput, context: ProbeContext): CheckResult[] {
  const t = context.target;
  const object = `${t.protocol === 'HTTP' ? 'http' : 'tcp'}://${t.host}:${t.port}${t.protocol === 'HTTP' ? t.path : ''}`;
  const base = { pod: context.pod, namespace: context.namespace, host: t.host, target: `${t.host}:${t.port}`, service: context.service, gateways: t.gateways ?? 'the federation gateways' };
  const flagsNote = output.responseFlags ? ` (sidecar access log: response flags ${output.responseFlags})` : '';
  if (!output.complete) {
    return [failure('MF0503', { ...base, detail: `the probe printed no result${output.body ? `; its log ends with: ${output.body}` : ''}` }, object)];
  }
  const exit = output.exitCode ?? 0;
  const error = output.error ?? '';
  const byExit = (code: number): CheckResult | undefined => {
    switch (code) {
      case 6: return failure('MF0504', base, object);
      case 7: return failure('MF0505', base, object);
      case 28: return failure('MF0506', { ...base, detail: error || 'no answer' }, object);
      case 35: case 60: return failure('MF0507', { ...base, exitCode: code, detail: error }, object);
      case 52: case 56: return failure('MF0508', { ...base, detail: `the connection was reset or closed without an answer (curl exit code ${code}: ${error})${flagsNote}` }, object);
      default: return undefined;
    }
  };

  if (t.protocol === 'TCP') {
    if (output.answered) return [resultOf('MF0503', { status: 'ok', note: `the far end answered on port ${t.port}` }, object)];
    if (/bad address/.test(error)) return [failure('MF0504', base, object)];
    if (/refused/i.test(error)) return [failure('MF0505', base, object)];
    if (/timed out/i.test(error)) return [failure('MF0506', { ...base, detail: error }, object)];
    return [failure('MF0508', {
      ...base,
      detail: `the sidecar accepted the connection, but it was closed without an answer: an upstream hop failed (no route, no reachable endpoint, or a refused certificate)${flagsNote}`,
    }, object)];
  }

  if (exit !== 0) return [byExit(exit) ?? failure('MF0503', { ...base, detail: `curl failed with exit code ${exit}: ${error}` }, object)];
  const status = output.httpStatus ?? 0;
  const timing = output.timeMs !== undefined ? ` in ${output.timeMs} ms` : '';
  if (status >= 200 && status < 400) return [resultOf('MF0503', { status: 'ok', note: `HTTP ${status}${timing}` }, object)];
  const body = output.body;
  const flags = output.responseFlags ?? '';
  if (status === 403 && /RBAC: access denied/.test(body)) return [failure('MF0512', base, object)];
  if (status === 503 && (/no healthy upstream/.test(body) || /\bUH\b/.test(flags))) return [failure('MF0511', { ...base, detail: body || 'no healthy upstream' }, object)];
  if (status === 503 && (/upstream connect error/.test(body) || /\bU(F|RX)\b/.test(flags))) {
    const shown = flags || (/retried/.test(body) ? 'URX' : 'UF');
    return [failure('MF0510', { ...base, flags: shown, detail: body.replace(/^upstream connect error or disconnect\/reset before headers\. /, '') }, object)];
  }
  if ((status === 404 || status === 503 || status === 502) && (/\bN[RC]\b/.test(flags) || body === '')) {
    return [failure('MF0509', { ...base, status, detail: flags ? `response flags ${flags}` : `an empty ${status} from a proxy` }, object)];
  }
  if (status >= 400 && status < 500) return [failure('MF0513', { ...base, status, method: 'GET', path: t.path }, object)];
  return [failure('MF0503', { ...base, detail: `HTTP ${status}${timing}${body ? `: ${body.slice(0, 200)}` : ''}${flagsNote}` }, object)];
}

/** How a probe pod run ended, as the cluster layer reports it (see runProbePod in src/kube). */
export interface ProbeRun {
  /** The pod's name. */
  name: string;
  /** The last phase seen: Pending, Running, Succeeded, Failed (or Unknown). */
  phase: string;
  /**
   * Why the run ended: the pod completed, a container cannot start, the time ran out, the caller aborted, or the
   * cluster refused to create the pod (see `error`).
   */
  ending: 'completed' | 'stuck' | 'timeout' | 'aborted' | 'refused';
  /** Why the pod could not be created (`refused`), with what to do. */
  error?: string;
  /** The pod got an istio-proxy sidecar. */
  sidecar: boolean;
  /** The first container state that explains a pod that did not run: `probe waiting: ImagePullBackOff (…)`. */
  waiting?: string;
  /** The pod was deleted (false when kept on request, or when the delete failed). */
  deleted: boolean;
}

/**
 * The probe's results (MF0501 pod, MF0502 sidecar, then {@link interpretProbe}) from how its pod run ended and, when
 * it completed, what it printed. `timeout` is the user's `--timeout`, quoted when the pod did not complete in time.
 */
export function probeRunResults(run: ProbeRun, output: ProbeOutput | undefined, target: ProbeTarget, namespace: string, timeout: string): CheckResult[] {
  const pod = `${namespace}/${run.name}`;
  const object = `Pod ${pod}`;
  const params = { pod: run.name, namespace };
  if (run.ending === 'refused') {
    return [
      failure('MF0501', { ...params, detail: run.error ?? 'the cluster refused to create the probe pod' }, object),
      resultOf('MF0503', { status: 'skip', reason: 'the probe pod was not created (MF0501)' }),
    ];
  }
  if (run.ending === 'stuck') {
    return [
      failure('MF0501', { ...params, detail: `the probe pod ${pod} cannot start: ${run.waiting ?? run.phase}` }, object),
      resultOf('MF0503', { status: 'skip', reason: 'the probe pod did not start (MF0501)' }),
    ];
  }
  if (run.ending === 'timeout') {
    const state = run.waiting ? `; ${run.waiting}` : '';
    return [failure('MF0514', { ...params, detail: `the probe pod ${pod} did not complete within ${timeout} (phase ${run.phase}${state})` }, object)];
  }
  const results: CheckResult[] = [resultOf('MF0501', { status: 'ok', note: `${run.phase}${run.deleted ? ', deleted' : ', kept'}` }, object)];
  results.push(run.sidecar ? resultOf('MF0502', { status: 'ok' }, object) : failure('MF0502', params, object));
  if (!output) return results;
  results.push(...interpretProbe(output, { pod: run.name, namespace, target, service: `Service ${namespace}/${target.host.split('.')[0]}` }));
  return results;
}
