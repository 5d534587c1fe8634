import { randomBytes } from 'node:crypto';
import { ChecksFailedError, ClusterError, InputError, InterruptedError, UsageError } from '../errors.js';
import {
  DEFAULT_PROBE_IMAGE, docsUrl, parseProbeLog, probeIdentityFor, probePod, probeRunResults, resultOf, runChecks, STATIC_CHECKS, tcpGreeting,
  type CheckResult, type ProbeIdentity, type ProbeTarget, type VerifySnapshot,
} from '../federation/checks/index.js';
import type { ImportRecord } from '../federation/index.js';
import { ClusterWriter } from '../kube/apply.js';
import { runProbePod, type ProbePodRun } from '../kube/probe-pod.js';
import { checkPermissions } from '../kube/preflight.js';
import { findClusterContext, findImport, listImports, startGatherVerify } from '../kube/verify-gather.js';
import { parseDuration } from '../options.js';
import { renderChecks, reportChecks, REPORT_API_VERSION, REPORT_KIND, summarize, summaryLine } from '../ui/checks.js';
import { formatData } from '../ui/format.js';
import { startProgress } from '../ui/progress.js';
import type { GlobalArgs, Session } from './session.js';
import { withSession } from './run.js';
import type { CommandBody } from './index.js';
import { givenName, namePositional, type NameArgs } from './shared.js';

interface VerifyArgs extends GlobalArgs, NameArgs {
  /** `--name` (alias `--import`): the local name, as NAME. */
  name?: string;
  from?: string;
  path: string;
  send?: string;
  'probe-image': string;
  probe: boolean;
  'keep-probe': boolean;
  timeout: string;
  /** `--wait D`: retry a failing probe until it passes or D has passed. */
  wait?: string;
  'istio-namespace': string;
  'service-account'?: string;
}

/** Default of `--timeout`: the whole run, reads and probe included. */
const DEFAULT_TIMEOUT = '60s';
/** Per-request timeout unless `--request-timeout` gives one (not 0): a dead cluster must not eat the whole `--timeout`. */
const DEFAULT_REQUEST_TIMEOUT_MS = 10_000;

/** The probe part of `verify -o json|yaml`. */
export interface ProbeReport {
  /** `namespace/name` of the pod. */
  pod: string;
  image: string;
  /** `http://host:port/path` or `tcp://host:port`. */
  target: string;
  /** How the pod run ended: completed, stuck (did not start), timeout, aborted. */
  ending: ProbePodRun['ending'];
  kept: boolean;
  httpStatus: number | null;
  exitCode: number | null;
  timeMs: number | null;
  /** TCP: whether the far end answered. */
  answered: boolean | null;
  responseFlags: string | null;
}

/** `verify -o json|yaml`: stable for scripts (fields are added, never renamed or removed within v1alpha1). */
export interface VerifyReport {
  apiVersion: typeof REPORT_API_VERSION;
  kind: typeof REPORT_KIND;
  import: {
    context: string;
    namespace: string;
    localName: string;
    mode: string;
    protocol: string;
    port: number;
    provider: { clusterId: string; context: string | null; namespace: string; exportName: string; address: string };
  };
  /** No error-level check failed (the exit code is 0). */
  ok: boolean;
  summary: ReturnType<typeof summarize>;
  checks: ReturnType<typeof reportChecks>;
  probe: ProbeReport | null;
}

/** Runs `work`, failing once `deadline` (ms since epoch) passes: `--timeout` bounds every phase of the run. */
async function beforeDeadline<T>(work: Promise<T>, deadline: number, what: string, timeout: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new ClusterError(`${what} did not finish within ${timeout} (--timeout)`, {
      hint: 'a cluster answers slowly or not at all: check it with kubectl meshfed contexts --probe, or raise --timeout',
    })), Math.max(0, deadline - Date.now()));
  });
  try {
    return await Promise.race([work, expired]);
  } finally {
    clearTimeout(timer);
  }
}

async function chooseImport(session: Session, writer: ClusterWriter, namespace: string): Promise<string> {
  const imports = (await listImports(writer)).filter(({ record }) => record.namespace === namespace).map(({ record }) => record);
  if (imports.length === 0) {
    throw new InputError(`there is no import in namespace "${namespace}" of context "${writer.contextName}"`, {
      hint: 'choose the namespace with -n, or import a service first: kubectl meshfed import',
    });
  }
  if (!session.ui.interactive) {
    throw new UsageError('missing value for --name', { hint: `imports in namespace "${namespace}": ${imports.map((r) => r.localName).join(', ')}` });
  }
  return session.prompter.select('--name', 'Which import do you want to verify?', imports.map((r) => ({
    value: r.localName,
    name: r.localName,
    description: `${r.endpoint.providerClusterId}/${r.endpoint.namespace}/${r.endpoint.exportName} (${r.endpoint.mode}, ${r.endpoint.protocol})`,
  })));
}

function probeTarget(found: { record: ImportRecord; home: string }, consumerContext: string, args: VerifyArgs): ProbeTarget {
  const r = found.record;
  const e = r.endpoint;
  return {
    host: `${r.localName}.${r.namespace}`,
    port: e.port.number,
    protocol: e.protocol,
    path: args.path.startsWith('/') ? args.path : `/${args.path}`,
    ...(e.protocol === 'TCP' ? { send: args.send !== undefined ? unescapeSend(args.send) : tcpGreeting(e) } : {}),
    gateways: e.mode === 'boundary'
      ? `the egress gateway in namespace ${found.home} of context ${consumerContext} and the federation gateway of cluster ${e.providerClusterId} (kubectl meshfed status shows both)`
      : `the east-west gateway of cluster ${e.providerClusterId} (shared-root: it passes TLS through, so the provider workload's sidecar logs the refusal) and the probe's sidecar (verify --keep-probe keeps the pod and prints how to read it)`,
  };
}

/** A probe pod being run: its name, and the run, which ends with the pod deleted (unless kept). */
interface Launched {
  name: string;
  run: Promise<ProbePodRun>;
}

/** Longest pause between two probes of `--wait`. */
const MAX_WAIT_PAUSE_MS = 10_000;

function targetUrl(target: ProbeTarget): string {
  return target.protocol === 'HTTP' ? `http://${target.host}:${target.port}${target.path}` : `tcp://${target.host}:${target.port}`;
}

/** The probe did not pass: an error-level probe result failed. */
function failed(results: readonly CheckResult[]): boolean {
  return results.some((r) => r.level === 'error' && r.outcome.status === 'fail');
}

function firstFailure(results: readonly CheckResult[]): string {
  const failure = results.find((r) => r.level === 'error' && r.outcome.status === 'fail');
  return failure && failure.outcome.status === 'fail' ? `${failure.code}: ${failure.outcome.message}` : 'no result';
}

/** `--send` takes C-style escapes (`\r\n`, `\x00`, `\0`) so that binary greetings fit on a command line. */
function unescapeSend(text: string): string {
  return text.replace(/\\(x[0-9a-fA-F]{2}|[0-7]{1,3}|[rnt\\])/g, (_m, e: string) => {
    if (e.startsWith('x')) return String.fromCharCode(parseInt(e.slice(1), 16));
    if (/^[0-7]/.test(e)) return String.fromCharCode(parseInt(e, 8));
    return ({ r: '\r', n: '\n', t: '\t', '\\': '\\' } as Record<string, string>)[e]!;
  });
}

async function verify(session: Session, args: VerifyArgs): Promise<void> {
  const format = session.outputFormat(['json', 'yaml'] as const);
  const ui = session.ui;
  const timeoutMs = parseDuration(args.timeout, '--timeout');
  if (timeoutMs <= 0) throw new UsageError('--timeout must be longer than 0', { hint: `e.g. --timeout ${DEFAULT_TIMEOUT}` });
  const waitMs = args.wait !== undefined ? parseDuration(args.wait, '--wait') : 0;
  // --timeout bounds a run that probes once; --wait adds the time it may spend probing again.
  const deadline = Date.now() + timeoutMs + waitMs;
  // Half the run at most: a provider that does not answer becomes a finding (MF0102) before --timeout ends the run.
  const requestTimeoutMs = session.boundedRequestTimeout(Math.min(DEFAULT_REQUEST_TIMEOUT_MS, Math.max(1000, Math.floor(timeoutMs / 2))));
  const consumerContext = session.context(args.context).name;
  const namespace = session.namespace(consumerContext);
  const consumer = new ClusterWriter(session.client(consumerContext, '--context', requestTimeoutMs, deadline));
  let providerContext = args.from !== undefined ? session.context(args.from, '--from').name : undefined;
  if (providerContext !== undefined && providerContext === consumerContext) {
    throw new UsageError(`--from "${providerContext}" is the consumer context itself`, { hint: 'pass the provider cluster\'s context with --from, or omit it to find it from the import\'s record' });
  }
  const fromRecord = providerContext === undefined;
  // Without --from: the context of the provider cluster the import's record names (its stored federation id).
  const provider = providerContext !== undefined
    ? new ClusterWriter(session.client(providerContext, '--from', requestTimeoutMs, deadline))
    : async (record: ImportRecord) => {
      const candidates = session.kubeconfig().contextNames().filter((name) => name !== consumerContext)
        .map((name) => new ClusterWriter(session.client(name, '--from', requestTimeoutMs, deadline)));
      const found = await findClusterContext(candidates, record.endpoint.providerClusterId);
      providerContext = found.writer?.contextName;
      return found;
    };
  const localName = givenName(args.NAME, args.name, '--name') ?? await chooseImport(session, consumer, namespace);

  /** Starts a probe pod: its run ends when the pod completes, times out, or `stop` (or a signal) stops it. */
  const launchProbe = (to: ProbeTarget, account: string | undefined, stop?: AbortSignal): Launched => {
    const name = `meshfed-probe-${randomBytes(4).toString('hex').slice(0, 5)}`;
    const remainingMs = Math.max(1000, deadline - Date.now());
    const pod = probePod({
      name, namespace, localName, image: args['probe-image'], target: to, ...(account ? { serviceAccount: account } : {}),
      maxTimeSeconds: Math.max(1, Math.min(15, Math.floor(remainingMs / 3000))),
      activeDeadlineSeconds: Math.ceil(remainingMs / 1000) + 30,
    });
    // A signal while the probe pod may exist (from its creation on) stops the probe, which deletes the pod, with a
    // deadline of its own, before verify exits with the signal's code.
    const run = session.withCleanup((signal) => runProbePod(consumer, {
      pod, timeoutMs: remainingMs, keep: args['keep-probe'], signal: stop ? AbortSignal.any([signal, stop]) : signal,
      onLeftBehind: (reason) => ui.warn(`the probe pod ${namespace}/${name} could not be deleted (${reason}): kubectl delete pod ${name} -n ${namespace} --context ${consumerContext}`),
    }));
    // Awaited by whoever reports the run; not left unhandled meanwhile.
    run.catch(() => undefined);
    return { name, run };
  };
  // The probe pod is verify's one write: its permissions are checked before it is created, so a missing one is said
  // in full and no pod is left behind (a pod created but not deletable, or not watchable).
  const podPermission = (verb: string, resource = 'pods') => ({ verb, group: '', resource, namespace });
  const checkProbePermissions = () => checkPermissions([{
    client: consumer.client, contextName: consumerContext,
    permissions: [podPermission('create'), podPermission('watch'), podPermission('get', 'pods/log'), ...(args['keep-probe'] ? [] : [podPermission('delete')])],
  }]);

  const reading = await startProgress(ui, `Reading import ${namespace}/${localName} from context ${consumerContext}${providerContext ? ` and its export from ${providerContext}` : ' and its export from the provider it names'}`);
  let snapshot: VerifySnapshot;
  let target: ProbeTarget;
  // A probe started while the static checks read the clusters (its pod takes seconds to start), and how to stop it
  // when the reads fail.
  let early: { launched: Launched; stop: AbortController } | undefined;
  try {
    const found = await beforeDeadline(findImport(consumer, namespace, localName), deadline, 'reading the clusters', args.timeout);
    target = probeTarget(found, consumerContext, args);
    const reads = startGatherVerify({ consumer, provider, namespace, localName, found, istioNamespace: args['istio-namespace'], now: new Date() });
    const both = beforeDeadline(reads.snapshot, deadline, 'reading the clusters', args.timeout);
    // Not left unhandled while the probe starts: awaited below.
    both.catch(() => undefined);
    try {
      // In boundary mode the probe runs as the namespace's default account unless one is asked for: it needs nothing
      // the checks read, so its pod starts once the consumer is read (a read the user may not make stops verify
      // before it writes), while the provider is read.
      if (args.probe && found.record.endpoint.mode === 'boundary' && args['service-account'] === undefined) {
        await beforeDeadline(reads.consumer, deadline, 'reading the clusters', args.timeout);
        await checkProbePermissions();
        const stop = new AbortController();
        early = { launched: launchProbe(target, undefined, stop.signal), stop };
      }
      snapshot = await both;
    } catch (error) {
      if (early) {
        // The pod goes before the error is reported (or the signal's exit code given).
        early.stop.abort();
        await early.launched.run.catch(() => undefined);
      }
      throw error;
    }
    reading.stop();
    if (fromRecord && providerContext) ui.info(`Provider: context ${providerContext} (federation cluster ${snapshot.record.endpoint.providerClusterId}, named by the import's record)`);
  } catch (error) {
    reading.fail();
    throw error;
  }
  const results = runChecks(snapshot, STATIC_CHECKS);

  let probeReport: ProbeReport | null = null;
  const identity: ProbeIdentity = early ? { results: [], runnable: true } : probeIdentityFor(snapshot, args['service-account']);
  if (!args.probe) {
    results.push(resultOf('MF0503', { status: 'skip', reason: 'not run: --no-probe' }));
  } else if (!identity.runnable) {
    results.push(...identity.results, resultOf('MF0503', { status: 'skip', reason: 'the probe\'s service account does not exist (MF0516)' }));
  } else {
    results.push(...identity.results);
    if (!early) await checkProbePermissions();
    const probeOnce = async (launched: Launched): Promise<{ results: CheckResult[]; report: ProbeReport }> => {
      const { name } = launched;
      const progress = await startProgress(ui, `Probing ${targetUrl(target)} from pod ${namespace}/${name}`);
      let run: ProbePodRun;
      try {
        run = await launched.run;
      } catch (error) {
        progress.fail();
        throw error;
      }
      if (run.ending === 'aborted') {
        progress.fail(`probe interrupted${run.deleted ? `; pod ${namespace}/${name} deleted` : ''}`);
        throw new InterruptedError('interrupted', session.interruptedBy);
      }
      progress.stop();
      if (args['keep-probe']) ui.info(`Kept the probe pod: kubectl logs ${name} -n ${namespace} --context ${consumerContext} (-c istio-proxy for its sidecar); kubectl delete pod ${name} -n ${namespace} --context ${consumerContext}`);
      const output = run.ending === 'completed' ? parseProbeLog(run.log, run.proxyLog) : undefined;
      if (ui.verbose && run.log) ui.debug(`probe log:\n${run.log.trimEnd()}`);
      return {
        results: probeRunResults(run, output, target, namespace, args.timeout),
        report: {
          pod: `${namespace}/${name}`,
          image: args['probe-image'],
          target: targetUrl(target),
          ending: run.ending,
          kept: Boolean(args['keep-probe']),
          httpStatus: output?.httpStatus ?? null,
          exitCode: output?.exitCode ?? null,
          timeMs: output?.timeMs ?? null,
          answered: output?.answered ?? null,
          responseFlags: output?.responseFlags ?? null,
        },
      };
    };
    const waitUntil = Date.now() + waitMs;
    let probe = await probeOnce(early?.launched ?? launchProbe(target, identity.account));
    // --wait: Istio pushes a new configuration to the proxies some time after it is written (istiod debounces
    // changes, up to PILOT_DEBOUNCE_MAX, 10 s by default), so a probe right after an import may fail and pass later.
    for (let pauseMs = 1000, tries = 1; failed(probe.results) && Date.now() + pauseMs < waitUntil; pauseMs = Math.min(pauseMs * 2, MAX_WAIT_PAUSE_MS)) {
      ui.info(`probe ${tries} failed (${firstFailure(probe.results)}); probing again in ${pauseMs / 1000}s (--wait ${args.wait})`);
      await session.pause(pauseMs);
      probe = await probeOnce(launchProbe(target, identity.account));
      tries += 1;
    }
    if (failed(probe.results) && waitMs === 0) {
      ui.info(`The probe failed. Right after an import, Istio may not have pushed the configuration yet: kubectl meshfed verify ${localName} --context ${consumerContext} -n ${namespace} --wait 60s probes again until it passes.`);
    } else if (failed(probe.results)) {
      ui.info(`The probe still failed after --wait ${args.wait}.`);
    }
    results.push(...probe.results);
    probeReport = probe.report;
  }

  const summary = summarize(results);
  const e = snapshot.record.endpoint;
  if (format) {
    const report: VerifyReport = {
      apiVersion: REPORT_API_VERSION,
      kind: REPORT_KIND,
      import: {
        context: consumerContext, namespace, localName, mode: e.mode, protocol: e.protocol, port: e.port.number,
        provider: { clusterId: e.providerClusterId, context: providerContext ?? null, namespace: e.namespace, exportName: e.exportName, address: `${e.gateway.address}:${e.gateway.port}` },
      },
      ok: summary.errors === 0,
      summary,
      checks: reportChecks(results),
      probe: probeReport,
    };
    ui.data(formatData(report, format));
  } else {
    const c = ui.out;
    const header = `Import ${c.bold(`${namespace}/${localName}`)} in context ${consumerContext} ← export ${e.namespace}/${e.exportName} of cluster ${e.providerClusterId}`
      + `${providerContext ? ` (context ${providerContext})` : ''}: ${e.mode}, ${e.protocol} port ${e.port.number}, via ${e.gateway.address}:${e.gateway.port}`;
    const headings = {
      provider: `provider (${providerContext ? `context ${providerContext}` : 'no context of the provider cluster'})`,
      consumer: `consumer (context ${consumerContext})`,
      probe: `probe (${target.protocol === 'HTTP' ? 'http' : 'tcp'}://${target.host}:${target.port}${target.protocol === 'HTTP' ? target.path : ''})`,
    };
    ui.data(`${header}\n\n${renderChecks(results, c, { verbose: ui.verbose, headings })}\n${summaryLine(summary, c)}\n`);
  }
  if (summary.errors > 0) {
    throw new ChecksFailedError(`${summary.errors} check${summary.errors === 1 ? '' : 's'} failed for import ${namespace}/${localName}`);
  }
}

/** `kubectl meshfed verify`: static checks over both sides of an import, then a call through it from a probe pod (see docs/checks.md). */
export const verifyCommand: CommandBody<VerifyArgs> = {
  builder: (yargs) =>
    namePositional(yargs, 'Local name of the import to verify (in -n); asked for on a terminal')
      // --name as in unimport, which takes the same local name; --import, its first spelling, is kept for scripts.
      .option('name', { alias: 'import', type: 'string', describe: 'The local name, as NAME' })
      .option('from', { type: 'string', describe: 'kubeconfig context of the provider cluster; default: the context whose cluster is the provider the import\'s record names (provider checks are skipped when there is none)' })
      .option('path', { type: 'string', default: '/', describe: 'HTTP path the probe requests, e.g. /health' })
      .option('send', { type: 'string', describe: 'TCP: bytes the probe sends (escapes \\r \\n \\xNN); default: a greeting for well-known ports (PostgreSQL, Redis…), else a newline' })
      .option('probe-image', { type: 'string', default: DEFAULT_PROBE_IMAGE, describe: 'Image of the probe pod (curl with a shell and nc), e.g. from a registry an air-gapped cluster can pull' })
      .option('probe', { type: 'boolean', default: true, describe: 'Run the probe pod (--no-probe: static checks only)' })
      .option('keep-probe', { type: 'boolean', default: false, describe: 'Keep the probe pod afterwards, to read its logs' })
      .option('timeout', { type: 'string', default: DEFAULT_TIMEOUT, describe: 'Bound on the whole run, probe included (e.g. 30s, 2m); --wait adds to it' })
      .option('wait', { type: 'string', describe: 'When the probe fails, probe again (1s, 2s, 4s… at most 10s apart) until it passes or this much time has passed, e.g. 60s: Istio applies a new import some seconds after it is written' })
      .option('istio-namespace', { type: 'string', default: 'istio-system', describe: 'Namespace of istiod and the mesh config (both clusters)' })
      .option('service-account', { type: 'string', describe: 'Service account the probe pod runs as; default: in shared-root mode an account the provider admits, else the namespace\'s default' })
      .example('kubectl meshfed verify myreviews --context cluster1 -n default --from cluster2', 'Check both sides and probe the import')
      .example('kubectl meshfed verify myreviews --context cluster1 -n default --path /reviews/0', 'Consumer side only, probing an HTTP path')
      .example('kubectl meshfed verify postgres --context ops -n vault --from prod -o json', 'The report as JSON (exit code 3 when a check fails)')
      .epilogue(`Every check has a code (MF0101…); ${docsUrl('docs/checks.md')} explains each one and how to fix it.\n`
        + 'Exit codes: 0 no error-level check failed, 3 one did, 1 the import or the consumer cannot be read, 130/143/129 interrupted by SIGINT/SIGTERM/SIGHUP (the probe pod is deleted first).'),
  handler: withSession(verify),
};
