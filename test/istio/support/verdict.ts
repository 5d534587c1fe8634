/**
 * One call, two judges: the data-path model (test/support/mesh) and the Istio oracle (test/istio, Istio's own
 * translator and Envoy). Both verdicts are reduced to the same shape — reached, or refused at a named hop — so a
 * test can compare them and print both when they differ.
 */
import { spawn } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { KubeObject, WorldView } from '../../support/emulator/index.js';
import { simulateCurl, staticWorld } from '../../support/mesh/index.js';
import type { Hop } from '../../support/mesh/faults.js';
import { isGatewayPod } from '../../support/mesh/world.js';
// The .mjs entry is plain JavaScript shared with `npm run istio-trace`.
// eslint-disable-next-line @typescript-eslint/ban-ts-comment
// @ts-ignore -- no declaration file for the .mjs script
import { ensureOracleBuilt } from '../../../scripts/istio-trace.mjs';

export type { Hop };

/** A call from a pod, as the application would make it. */
export interface Call {
  cluster: string;
  namespace: string;
  pod: string;
  /** `http://host[:port]/path` or `tcp://host:port`. */
  url: string;
  /** HTTP request headers, e.g. `{ 'x-ledger': 'remote' }`. */
  headers?: Record<string, string>;
}

export interface Verdict {
  verdict: 'reached' | 'refused' | 'cannot-judge';
  refusedAt: Hop | null;
}

export const callName = (c: Call): string => `${c.cluster}/${c.namespace}/${c.pod} -> ${c.url}${Object.entries(c.headers ?? {}).map(([k, v]) => ` -H '${k}: ${v}'`).join('')}`;

// ---------------------------------------------------------------------------------------------------------------
// The model

/** What the model says about a call. */
export interface ModelVerdict extends Verdict {
  exitCode: number;
  /** HTTP status for HTTP calls ('000' when none). */
  status?: string;
  output: string;
  trace: string[];
  /** The cluster of the workload that answered, when reached. */
  workloadCluster?: string;
}

/** What an application protocol answers to the model's TCP probe: the bytes to send and the answer to expect. */
const TCP_PROBES: Array<{ port: number; send: string; expect: string }> = [
  // postgres answers an SSLRequest with `N` (test/support/mesh/apps.ts).
  { port: 5432, send: "printf '\\000\\000\\000\\010\\004\\322\\026\\057'", expect: 'N' },
];

function tcpProbe(host: string, port: number): { argv: string[]; answered: (stdout: string) => boolean } {
  const known = TCP_PROBES.find((p) => p.port === port);
  // istio/tcp-echo-server answers `<prefix> <data>`: a reply that carries the probe back proves the echo server saw it.
  const send = known?.send ?? "echo oracle-probe";
  const expect = known?.expect ?? 'oracle-probe';
  return { argv: ['sh', '-c', `${send} | nc -w 3 ${host} ${port}`], answered: (stdout) => stdout.includes(expect) };
}

/** `cluster pod ns/name:port` lines: the pods a request arrived at, in order. */
const ARRIVAL = /^(\S+) pod ([^/\s]+)\/(\S+):(\d+)$/;

interface Arrival { cluster: string; namespace: string; pod: string; hop: Hop; line: number }

/**
 * Runs the call through the model and names the hop that refused it. The hop is read from the model's trace:
 * the last pod the request arrived at refused it (a gateway in the caller's cluster is the egress gateway, one in
 * another cluster the provider gateway, any other pod the workload), or the caller's sidecar when it arrived
 * nowhere. A failed TLS handshake is refused at the hop connected to, whichever side rejected the other's
 * certificate (as the oracle reports it: the hop the request could not pass).
 */
export async function modelVerdict(world: WorldView, call: Call, random: () => number = () => 0): Promise<ModelVerdict> {
  const url = new URL(call.url);
  const isTcp = url.protocol === 'tcp:';
  let argv: string[];
  let answered: (stdout: string) => boolean;
  if (isTcp) {
    ({ argv, answered } = tcpProbe(url.hostname, Number(url.port)));
  } else {
    argv = ['curl', '-sS', '-w', '\\n%{http_code}', ...Object.entries(call.headers ?? {}).flatMap(([k, v]) => ['-H', `${k}: ${v}`]), call.url];
    answered = () => true;
  }
  const r = await simulateCurl(world, { cluster: call.cluster, namespace: call.namespace, pod: call.pod }, argv, { random });
  const lines = r.stdout.split('\n');
  const status = isTcp ? undefined : lines[lines.length - 1];
  const output = (isTcp ? r.stdout : lines.slice(0, -1).join('\n')) + r.stderr;
  const base = { exitCode: r.exitCode, status, output, trace: r.trace };
  if (r.exitCode === 125) return { ...base, verdict: 'cannot-judge', refusedAt: null };

  // A gateway the caller addressed by its own Service (a public route through an ingress gateway) is the
  // destination side's gateway even in the caller's cluster; any other gateway there is the egress gateway.
  const resolved = /resolves \S+ to (\S+)$/.exec(r.trace[0] ?? '')?.[1];
  const addressedGateway = (clusterName: string, pod: KubeObject): boolean => clusterName === call.cluster && !!resolved
    && (world.cluster(clusterName)?.list('', 'Service') ?? []).some((svc) => {
      const spec = (svc.spec ?? {}) as { clusterIP?: string; selector?: Record<string, string> };
      return spec.clusterIP === resolved && !!spec.selector && Object.entries(spec.selector).every(([k, v]) => pod.metadata.labels?.[k] === v);
    });
  const arrivals: Arrival[] = [];
  r.trace.forEach((line, i) => {
    const m = ARRIVAL.exec(line);
    if (!m) return;
    const pod = world.cluster(m[1]!)?.get('', 'Pod', m[2]!, m[3]!);
    const hop: Hop = pod && isGatewayPod(pod)
      ? (m[1] === call.cluster && !addressedGateway(m[1]!, pod) ? 'egress-gateway' : 'provider-gateway')
      : 'workload';
    arrivals.push({ cluster: m[1]!, namespace: m[2]!, pod: m[3]!, hop, line: i });
  });
  const last = arrivals[arrivals.length - 1];
  const endsAtWorkload = last?.hop === 'workload' && last.line === r.trace.length - 1;
  const reached = endsAtWorkload && (isTcp ? answered(r.stdout) : /^[1-4]\d\d$/.test(status ?? '') && status !== '403');
  if (reached) return { ...base, verdict: 'reached', refusedAt: null, workloadCluster: last.cluster };

  return { ...base, verdict: 'refused', refusedAt: last?.hop ?? 'client-sidecar' };
}

// ---------------------------------------------------------------------------------------------------------------
// The oracle

/** One hop of the oracle's trace (the fields the tests read; the JSON carries more). */
export interface OracleHop {
  hop: Hop;
  cluster: string;
  proxy: string;
  outcome: 'passed' | 'refused';
  detail?: string;
  [key: string]: unknown;
}

/** What the oracle says about a call: its JSON, exit code and stderr. */
export interface OracleVerdict extends Verdict {
  exitCode: number | null;
  reason: string | null;
  istio?: string;
  hops: OracleHop[];
  /** With `--envoy live`: what the request sent through real Envoy gateways on loopback did. */
  live?: { reached: boolean; detail: string };
  stderr: string;
  /** The JSON as printed, for messages. */
  raw: string;
}

function run(binary: string, args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(binary, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
    child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/** The oracle binary, built once per process when stale (go build; minutes the first time). */
let binary: string | undefined;
export function oracleBinary(): string {
  binary ??= (ensureOracleBuilt as (o?: { log?: (line: string) => void }) => string)({ log: () => undefined });
  return binary;
}

/** `envoy` on PATH? The oracle's default `--envoy validate` needs it. */
export const envoyMode = (): 'validate' | 'off' => (process.env.MESHFED_ORACLE_ENVOY === 'off' ? 'off' : 'validate');

/** Runs `istio-trace --json` on a dump directory. */
export async function oracleVerdict(dir: string, call: Call, envoy: 'off' | 'validate' | 'live' = envoyMode()): Promise<OracleVerdict> {
  const args = ['--dir', dir, '--from', `${call.cluster}/${call.namespace}/${call.pod}`, '--url', call.url, '--json', '--envoy', envoy];
  for (const [k, v] of Object.entries(call.headers ?? {})) args.push('--header', `${k}: ${v}`);
  const r = await run(oracleBinary(), args);
  let parsed: { verdict?: Verdict['verdict']; refusedAt?: Hop | null; reason?: string | null; istio?: string; hops?: OracleHop[]; live?: { reached: boolean; detail: string } } = {};
  try {
    parsed = JSON.parse(r.stdout) as typeof parsed;
  } catch {
    parsed = {};
  }
  return {
    verdict: parsed.verdict ?? 'cannot-judge',
    refusedAt: parsed.refusedAt ?? null,
    reason: parsed.reason ?? null,
    istio: parsed.istio,
    hops: parsed.hops ?? [],
    ...(parsed.live ? { live: parsed.live } : {}),
    exitCode: r.code,
    stderr: r.stderr,
    raw: r.stdout,
  };
}

/** One line per hop, as the oracle's text output: what a failing test prints. */
export function describeOracle(o: OracleVerdict): string {
  const head = `oracle (Istio ${o.istio ?? '?'}): ${o.verdict}${o.refusedAt ? ` at ${o.refusedAt}: ${o.reason ?? ''}` : ''} (exit ${o.exitCode})`;
  const hops = o.hops.map((h) => {
    const { hop, cluster, proxy, outcome, detail, ...rest } = h;
    const fields = ['listener', 'filterChain', 'route', 'upstreamCluster', 'next', 'rbac', 'validation']
      .filter((k) => rest[k] !== undefined && rest[k] !== null && rest[k] !== '')
      .map((k) => `${k}=${typeof rest[k] === 'string' ? rest[k] : JSON.stringify(rest[k])}`);
    return `  ${outcome === 'passed' ? '✓' : '✗'} ${hop} ${cluster} ${proxy}: ${detail ?? ''}${fields.length ? `\n      ${fields.join('\n      ')}` : ''}`;
  });
  const stderr = o.stderr.trim() ? `\n  stderr: ${o.stderr.trim().split('\n').join('\n          ')}` : '';
  const unparsed = o.hops.length === 0 && o.raw.trim() && !o.raw.trim().startsWith('{') ? `\n  stdout: ${o.raw.trim()}` : '';
  const live = o.live ? `\n  live Envoys: ${o.live.reached ? 'reached the backend' : 'refused'}: ${o.live.detail}` : '';
  return [head, ...hops].join('\n') + live + stderr + unparsed;
}

export function describeModel(m: ModelVerdict): string {
  return [
    `model: ${m.verdict}${m.refusedAt ? ` at ${m.refusedAt}` : ''} (exit ${m.exitCode}${m.status ? `, HTTP ${m.status}` : ''}) ${m.output.trim().slice(0, 200)}`,
    ...m.trace.map((l) => `  | ${l}`),
  ].join('\n');
}

/** Both verdicts, for a failing assertion's message. */
export function describeBoth(call: Call, model: ModelVerdict, oracle: OracleVerdict): string {
  return `call ${callName(call)}\n${describeModel(model)}\n${describeOracle(oracle)}`;
}

export const short = (v: Verdict): Verdict => ({ verdict: v.verdict, refusedAt: v.refusedAt });

/** The cluster of the workload the oracle says answered (its last `workload` hop), when reached. */
export function oracleWorkloadCluster(o: OracleVerdict): string | undefined {
  return o.verdict === 'reached' ? [...o.hops].reverse().find((h) => h.hop === 'workload')?.cluster : undefined;
}

/**
 * With `MESHFED_ORACLE_REPORT=<dir>`, writes each call's two verdicts to `<dir>/<name>.txt`: the per-hop account
 * of failures a test marked failing does not print.
 */
export function report(name: string, text: string): void {
  const dir = process.env.MESHFED_ORACLE_REPORT;
  if (!dir) return;
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, `${name.replace(/[^a-z0-9.-]+/gi, '_')}.txt`), `${text}\n`);
}

/** The model's in-memory world read back from a dump directory: both judges see the same objects. */
export function worldFromDump(dir: string): ReturnType<typeof staticWorld> {
  return staticWorld(Object.fromEntries(readdirSync(dir).filter((f) => f.endsWith('.yaml')).map((f) => [f.slice(0, -'.yaml'.length), readFileSync(join(dir, f), 'utf8')])));
}
