/**
 * Questions and flags several federation commands share: which context, which namespace, which existing gateway,
 * and waiting for a gateway to get its address.
 */
import type { Argv } from 'yargs';
import { ClusterError, UsageError } from '../errors.js';
import { DEFAULT_GATEWAY_NAMESPACE, type ExistingGateway } from '../federation/index.js';
import type { ClusterWriter } from '../kube/apply.js';
import { serviceAddress, type GatherOptions } from '../kube/gather.js';
import type { KubeObject } from '../kube/resources.js';
import { startProgress } from '../ui/progress.js';
import { parseKeyValues } from './federate.js';
import type { GlobalArgs, Session } from './session.js';

/** Commands that act on one export or import take its name as kubectl does: `unexport NAME` (and `--name NAME`). */
export interface NameArgs {
  /** The positional NAME. */
  NAME?: string;
}

/** Declares the positional NAME of a command (`unexport [NAME]`); `what` says what it names. */
export function namePositional<T>(yargs: Argv<T>, what: string) {
  return yargs.positional('NAME', { type: 'string', describe: what });
}

/**
 * The name a command acts on: the positional NAME or the flag that also gives it (`--name`); both given with
 * different values is a usage error rather than a guess.
 */
export function givenName(positional: string | undefined, flagValue: string | undefined, flag: string): string | undefined {
  if (positional !== undefined && flagValue !== undefined && positional !== flagValue) {
    throw new UsageError(`NAME "${positional}" and ${flag} ${flagValue} name different objects`, { hint: `give the name once: as NAME or with ${flag}` });
  }
  return positional ?? flagValue;
}

/** Adds `--istio-namespace` alone, for commands that find the gateway from what meshfed recorded. */
export function istioNamespaceFlag<T>(yargs: Argv<T>) {
  return yargs.option('istio-namespace', { type: 'string', default: 'istio-system', describe: 'Namespace of istiod and the mesh config' });
}

/** Flags that choose where Istio and an existing gateway are. */
export interface GatewayArgs extends GlobalArgs {
  'gateway-selector'?: string[];
  'gateway-namespace'?: string;
  'istio-namespace': string;
  'cluster-id'?: string;
}

/** Adds `--gateway-selector`, `--gateway-namespace` and `--istio-namespace`. */
export function gatewayFlags<T>(yargs: Argv<T>) {
  return yargs
    .option('gateway-selector', { type: 'string', array: true, describe: 'Use the existing gateway whose pods have these labels (e.g. istio=eastwestgateway) instead of deploying one; needed on Istio < 1.12 unless you install the printed overlay' })
    .option('gateway-namespace', { type: 'string', describe: 'Namespace of the --gateway-selector gateway (default: the Istio namespace)' })
    .option('istio-namespace', { type: 'string', default: 'istio-system', describe: 'Namespace of istiod and the mesh config' });
}

/** The gather options that follow from {@link GatewayArgs}. */
export function gatewayOptions(args: GatewayArgs): Pick<GatherOptions, 'gatewaySelector' | 'gatewayNamespace' | 'istioNamespace' | 'clusterIdOverride'> {
  const selector = parseKeyValues(args['gateway-selector'], '--gateway-selector');
  return {
    istioNamespace: args['istio-namespace'],
    ...(selector ? { gatewaySelector: selector } : {}),
    ...(args['gateway-namespace'] ? { gatewayNamespace: args['gateway-namespace'] } : {}),
    ...(args['cluster-id'] !== undefined ? { clusterIdOverride: args['cluster-id'] } : {}),
  };
}

/**
 * The context to act on: the flag's value; else, on a terminal, the user's choice (the current context first and
 * marked); else the current context.
 */
export async function chooseContext(session: Session, given: string | undefined, flag: string, question: string, exclude?: string): Promise<string> {
  const kubeconfig = session.kubeconfig();
  if (given !== undefined) return session.context(given, flag).name;
  if (!session.ui.interactive) return session.context(undefined, flag).name;
  const names = kubeconfig.contextNames().filter((name) => name !== exclude);
  const current = kubeconfig.currentContext;
  const ordered = [...names.filter((n) => n === current), ...names.filter((n) => n !== current)];
  return session.prompter.select(flag, question, ordered.map((name) => ({ value: name, name: name === current ? `${name} (current)` : name })), ordered[0]);
}

/**
 * The namespace: `-n`; else, on a terminal, the user's choice among the cluster's namespaces (the context's
 * default first); else the context's default namespace.
 */
export async function chooseNamespace(session: Session, writer: ClusterWriter, given: string | undefined, context: string, question: string): Promise<string> {
  if (given !== undefined) return given;
  const fallback = session.context(context).namespace ?? 'default';
  if (!session.ui.interactive) return fallback;
  const namespaces = (await writer.list('v1', 'Namespace', undefined)).map((n) => n.metadata.name)
    .filter((name) => !name.startsWith('kube-') && name !== 'istio-system' && name !== DEFAULT_GATEWAY_NAMESPACE).sort();
  const ordered = [...namespaces.filter((n) => n === fallback), ...namespaces.filter((n) => n !== fallback)];
  if (ordered.length === 0) return fallback;
  return session.prompter.select('-n', question, ordered.map((name) => ({ value: name, name })), ordered[0]);
}

/**
 * Waits (bounded, with a spinner) until the gateway Deployment meshfed deployed has its pods ready.
 * @throws ClusterError when they are not ready in time (the objects are applied; a re-run continues from there)
 */
export async function waitForGatewayReady(session: Session, writer: ClusterWriter, name: string, timeoutMs: number): Promise<void> {
  const ready = (d: KubeObject) => {
    const spec = d.spec as { replicas?: number } | undefined;
    const status = d.status as { readyReplicas?: number } | undefined;
    return (status?.readyReplicas ?? 0) >= Math.max(1, spec?.replicas ?? 1);
  };
  // Already ready (a re-run): nothing to wait for, nothing to say.
  const current = await writer.get('apps/v1', 'Deployment', DEFAULT_GATEWAY_NAMESPACE, name);
  if (current && ready(current)) return;
  const progress = await startProgress(session.ui, `Waiting for the gateway ${DEFAULT_GATEWAY_NAMESPACE}/${name} to be ready`);
  try {
    await writer.waitFor({ apiVersion: 'apps/v1', kind: 'Deployment', namespace: DEFAULT_GATEWAY_NAMESPACE, name }, ready, {
      timeoutMs, what: `Deployment ${DEFAULT_GATEWAY_NAMESPACE}/${name} to have its pods ready`,
    });
    progress.succeed(`gateway ${DEFAULT_GATEWAY_NAMESPACE}/${name} is ready`);
  } catch (error) {
    progress.fail(`gateway ${DEFAULT_GATEWAY_NAMESPACE}/${name} is not ready`);
    if (error instanceof ClusterError && /timed out/.test(error.message)) {
      throw new ClusterError(error.message, {
        hint: `everything is applied; see why its pods do not start (kubectl --context ${writer.contextName} -n ${DEFAULT_GATEWAY_NAMESPACE} describe pods -l istio=${name}), then run the command again`,
      });
    }
    throw error;
  }
}

/**
 * Waits (bounded, with a spinner) until a gateway Service has an external address, and returns it; undefined when
 * the time runs out (the caller says what that means).
 */
export async function waitForGateway(session: Session, writer: ClusterWriter, gateway: string | ExistingGateway, timeoutMs: number): Promise<string | undefined> {
  const namespace = typeof gateway === 'string' ? DEFAULT_GATEWAY_NAMESPACE : gateway.namespace;
  const name = typeof gateway === 'string' ? gateway : gateway.serviceName;
  const progress = await startProgress(session.ui, `Waiting for the gateway ${namespace}/${name} to get an external address`);
  try {
    const service = await writer.waitFor({ apiVersion: 'v1', kind: 'Service', namespace, name }, (s) => serviceAddress(s) !== undefined, {
      timeoutMs, what: `Service ${namespace}/${name} to get an external address`,
    });
    const address = serviceAddress(service)!;
    progress.succeed(`gateway ${namespace}/${name} has the address ${address}`);
    return address;
  } catch (error) {
    if (!(error instanceof ClusterError) || !/timed out/.test(error.message)) {
      progress.fail();
      throw error;
    }
    progress.fail(`gateway ${namespace}/${name} has no external address after ${Math.round(timeoutMs / 1000)}s`);
    return undefined;
  }
}

/**
 * How a hint names the context of federation cluster `clusterId`: the context of that name when the kubeconfig has
 * one (a cluster's id is its context name unless `--cluster-id` chose another), else a description to fill in.
 */
export function contextOfCluster(session: Session, clusterId: string): string {
  return session.kubeconfig().contextNames().includes(clusterId) ? clusterId : `<the context of cluster ${clusterId}>`;
}
