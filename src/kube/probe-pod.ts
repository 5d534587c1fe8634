/**
 * Runs `verify`'s probe pod: creates it, watches it (a watch, never polling) until it completes, fails to start,
 * the time runs out or the caller aborts, reads the logs of the probe and of its sidecar, and deletes it in every
 * case — unless the user asked to keep it for debugging.
 */
import { randomUUID } from 'node:crypto';
import { ClusterError } from '../errors.js';
import type { ProbeRun } from '../federation/checks/index.js';
import type { ClusterWriter } from './apply.js';
import type { KubeObject } from './resources.js';

/** Container waiting reasons after which a pod will not start by itself. */
const STUCK_REASONS = new Set(['ErrImagePull', 'ImagePullBackOff', 'InvalidImageName', 'CreateContainerConfigError', 'CreateContainerError', 'ErrImageNeverPull']);

/** How the probe pod ended, as read from the cluster. */
export interface ProbePodRun extends ProbeRun {
  /** The probe container's log (empty when it never ran). */
  log: string;
  /** The sidecar's log (its access log lines included). */
  proxyLog: string;
  /** Why the delete failed (then `deleted` is false). */
  deleteError?: string;
  /** How long the run took, ms. */
  durationMs: number;
}

/** Options of {@link runProbePod}. */
export interface ProbePodOptions {
  /** The pod to create (see probePod in src/federation/checks). */
  pod: KubeObject;
  /** How long to wait for the pod to complete. */
  timeoutMs: number;
  /** Keep the pod afterwards (`--keep-probe`). Default false. */
  keep?: boolean;
  /**
   * Aborting (a signal to the CLI) stops the run; the pod is still deleted. A creation in flight is let finish first
   * (an API server that received it creates the pod even if the client goes away), within `cleanupMs`.
   */
  signal?: AbortSignal;
  /** Called when the pod could not be deleted (also when the run then fails), with the reason. */
  onLeftBehind?: (reason: string) => void;
  /** Deadline of the cleanup: for a creation in flight to finish after an abort, then for the delete. Default 5 s. */
  cleanupMs?: number;
}

/**
 * Annotation with a token of one run: a create that is sent again (its first answer was lost) and meets 409
 * AlreadyExists tells its own pod, which the lost answer would have returned, from someone else's of that name.
 */
export const PROBE_RUN_ANNOTATION = 'meshfed.io/probe-run';

/** Default of {@link ProbePodOptions.cleanupMs}. */
export const PROBE_CLEANUP_MS = 5_000;

/** Starts a deadline at once when given to {@link graceAfter}. */
const ALREADY_ABORTED = AbortSignal.abort();

/** A signal that aborts `ms` after `signal` does (or never, without one), with a timeout error saying `what`. */
function graceAfter(signal: AbortSignal | undefined, ms: number, what: string): { signal: AbortSignal; dispose: () => void } {
  const controller = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  const start = () => {
    timer = setTimeout(() => controller.abort(new ClusterError(`${what}: no answer within ${ms / 1000}s`)), ms);
  };
  if (signal?.aborted) start();
  else signal?.addEventListener('abort', start, { once: true });
  return {
    signal: controller.signal,
    dispose: () => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', start);
    },
  };
}

interface ContainerStatus {
  name: string;
  state?: { waiting?: { reason?: string; message?: string }; terminated?: { exitCode?: number; reason?: string } };
}

function statuses(pod: KubeObject | undefined): ContainerStatus[] {
  const status = (pod?.status ?? {}) as { containerStatuses?: ContainerStatus[]; initContainerStatuses?: ContainerStatus[] };
  return [...(status.initContainerStatuses ?? []), ...(status.containerStatuses ?? [])];
}

function phaseOf(pod: KubeObject | undefined): string {
  return ((pod?.status as { phase?: string } | undefined)?.phase) ?? 'Pending';
}

function stuckReason(pod: KubeObject | undefined): string | undefined {
  for (const s of statuses(pod)) {
    const waiting = s.state?.waiting;
    if (waiting?.reason && STUCK_REASONS.has(waiting.reason)) return `${s.name} waiting: ${waiting.reason}${waiting.message ? ` (${waiting.message})` : ''}`;
  }
  return undefined;
}

function describeWaiting(pod: KubeObject | undefined): string | undefined {
  for (const s of statuses(pod)) {
    const waiting = s.state?.waiting;
    if (waiting?.reason) return `${s.name} waiting: ${waiting.reason}${waiting.message ? ` (${waiting.message})` : ''}`;
  }
  return pod ? undefined : 'the pod does not exist';
}

function hasSidecar(pod: KubeObject | undefined): boolean {
  const spec = (pod?.spec ?? {}) as { containers?: Array<{ name: string }>; initContainers?: Array<{ name: string }> };
  return [...(spec.containers ?? []), ...(spec.initContainers ?? [])].some((c) => c.name === 'istio-proxy');
}

async function readLog(writer: ClusterWriter, namespace: string, name: string, container: string): Promise<string> {
  try {
    const { body } = await writer.client.request<unknown>({
      method: 'GET', path: `/api/v1/namespaces/${encodeURIComponent(namespace)}/pods/${encodeURIComponent(name)}/log`, query: { container },
    });
    return typeof body === 'string' ? body : JSON.stringify(body);
  } catch (error) {
    // A container that never started has no log: that is what the rest of the run reports.
    if (error instanceof ClusterError && (error.status === 400 || error.status === 404)) return '';
    throw error;
  }
}

/**
 * Creates the probe pod and runs it to its end. The pod is deleted in a `finally`, so also when reading fails, the
 * time runs out or `signal` aborts — unless `keep` is set. A pod the cluster refuses to create is an ending
 * (`refused`), not an error.
 * @throws ClusterError when the cluster cannot be reached
 */
export async function runProbePod(writer: ClusterWriter, options: ProbePodOptions): Promise<ProbePodRun> {
  const started = Date.now();
  const namespace = options.pod.metadata.namespace!;
  const name = options.pod.metadata.name;
  const path = `/api/v1/namespaces/${encodeURIComponent(namespace)}/pods`;
  const cleanupMs = options.cleanupMs ?? PROBE_CLEANUP_MS;
  let last: KubeObject | undefined;
  let ending: ProbePodRun['ending'] = 'completed';
  const run: ProbePodRun = { name, phase: 'Pending', ending, sidecar: false, log: '', proxyLog: '', deleted: false, durationMs: 0 };
  // From the moment the create is sent until the delete: the pod may exist.
  let mayExist = false;
  /** The pod's uid once known: the delete's precondition (only this very pod, and safe to retry). */
  let uid: string | undefined;
  const token = randomUUID();
  try {
    // Not aborted at once by a signal: a create the server has received ends with a pod whether or not the client
    // waits, so it is let finish (briefly) and the pod then deleted, rather than left to appear after meshfed is gone.
    // A signal that came before the pod was asked for: nothing to create, nothing to clean up.
    if (options.signal?.aborted) return Object.assign(run, { ending: 'aborted' as const, deleted: true });
    mayExist = true;
    const creating = graceAfter(options.signal, cleanupMs, `creating the probe pod ${namespace}/${name}`);
    const pod = { ...options.pod, metadata: { ...options.pod.metadata, annotations: { ...options.pod.metadata.annotations, [PROBE_RUN_ANNOTATION]: token } } };
    try {
      try {
        // Safe to send again after a 5xx, a reset or a timeout: a repeat whose first copy landed meets 409
        // AlreadyExists, and the pod it finds is recognised as this run's by its token.
        uid = (await writer.client.request<KubeObject>({ method: 'POST', path, body: pod, signal: creating.signal, idempotent: true })).body.metadata.uid as string | undefined;
      } catch (error) {
        if (!(error instanceof ClusterError && error.status === 409 && error.reason === 'AlreadyExists')) throw error;
        const existing = await writer.get('v1', 'Pod', namespace, name);
        if (existing?.metadata.annotations?.[PROBE_RUN_ANNOTATION] !== token) {
          mayExist = false;
          throw error;
        }
        uid = existing.metadata.uid as string | undefined;
      }
    } catch (error) {
      // Refused by RBAC, an admission policy or a quota: a result of the probe, not the end of verify.
      if (error instanceof ClusterError && error.status !== undefined) {
        // A server error may come after the pod was stored: the cleanup below looks for it (by its token).
        const serverError = error.status >= 500;
        mayExist = serverError;
        return Object.assign(run, {
          ending: 'refused' as const, deleted: true,
          error: `${serverError ? 'the API server failed to create' : 'the cluster refused to create'} the probe pod in namespace "${namespace}": ${error.message}${error.hint ? ` (${error.hint})` : ''}`,
        });
      }
      throw error;
    } finally {
      creating.dispose();
    }
    try {
      // Ctrl-C during the create: a signal that is already aborted would not wake the watch.
      if (options.signal?.aborted) throw new ClusterError('stopped waiting for the probe pod');
      last = await writer.waitFor({ apiVersion: 'v1', kind: 'Pod', namespace, name }, (pod) => {
        last = pod;
        const phase = phaseOf(pod);
        return phase === 'Succeeded' || phase === 'Failed' || stuckReason(pod) !== undefined;
      }, { timeoutMs: Math.max(1, options.timeoutMs), what: `the probe pod ${namespace}/${name} to complete`, ...(options.signal ? { signal: options.signal } : {}) });
      ending = stuckReason(last) && !['Succeeded', 'Failed'].includes(phaseOf(last)) ? 'stuck' : 'completed';
    } catch (error) {
      if (!(error instanceof ClusterError) || !/^(timed out|stopped waiting)/.test(error.message)) throw error;
      ending = options.signal?.aborted ? 'aborted' : 'timeout';
      last = await writer.get('v1', 'Pod', namespace, name).catch(() => last);
    }
    run.ending = ending;
    run.phase = phaseOf(last);
    run.sidecar = hasSidecar(last);
    const waiting = ending === 'stuck' ? stuckReason(last) : ending === 'completed' ? undefined : describeWaiting(last);
    if (waiting) run.waiting = waiting;
    if (ending !== 'aborted') {
      const [log, proxyLog] = await Promise.all([
        readLog(writer, namespace, name, 'probe'),
        run.sidecar ? readLog(writer, namespace, name, 'istio-proxy') : Promise.resolve(''),
      ]);
      run.log = log;
      run.proxyLog = proxyLog;
    }
  } finally {
    if (!options.keep && mayExist) {
      // Its own deadline, whatever happened to the run (an interrupt aborts every other request).
      const deleting = graceAfter(ALREADY_ABORTED, cleanupMs, `deleting the probe pod ${namespace}/${name}`);
      try {
        // A create whose answer never came: the pod is this run's only if it carries the run's token.
        if (!uid) {
          const found = await writer.client.request<KubeObject>({ method: 'GET', path: `${path}/${encodeURIComponent(name)}`, signal: deleting.signal })
            .then((response) => response.body, (error: unknown) => {
              if (error instanceof ClusterError && error.status === 404) return undefined;
              throw error;
            });
          uid = found?.metadata.annotations?.[PROBE_RUN_ANNOTATION] === token ? found.metadata.uid as string | undefined : undefined;
        }
        // Without a uid now, no pod of this run exists: nothing to delete.
        if (uid) {
          await writer.client.request({
            method: 'DELETE', path: `${path}/${encodeURIComponent(name)}`, query: { gracePeriodSeconds: '0', propagationPolicy: 'Background' }, signal: deleting.signal,
            // With the uid as precondition the delete is retried (a repeat of one that landed meets 404: deleted).
            body: { kind: 'DeleteOptions', apiVersion: 'v1', preconditions: { uid } },
          });
        }
        run.deleted = true;
      } catch (error) {
        // 409: the uid precondition failed, the pod of that name is not this run's any more (this one is gone).
        if (error instanceof ClusterError && (error.status === 404 || error.status === 409)) run.deleted = true;
        else {
          run.deleteError = (error as Error).message;
          options.onLeftBehind?.(run.deleteError);
        }
      } finally {
        deleting.dispose();
      }
    }
    run.durationMs = Date.now() - started;
  }
  return run;
}
