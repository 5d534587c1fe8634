import { InputError, UsageError } from '../errors.js';
import { exportRefText, hasDependents, isManaged, MANAGED_KINDS, planUninstall, type UninstallDependents } from '../federation/index.js';
import { gatherCluster } from '../kube/gather.js';
import type { KubeObject } from '../kube/resources.js';
import { applyWithReplan, clusterWork, dryRunMode, mutationOptions, writerFor, type MutationArgs, printOptions } from './federate.js';
import { chooseContext, gatewayFlags, gatewayOptions, type GatewayArgs } from './shared.js';
import type { Session } from './session.js';
import { withSession } from './run.js';
import type { CommandBody } from './index.js';

interface UninstallArgs extends MutationArgs, GatewayArgs {
  force: boolean;
}

/** Objects every namespace gets from Kubernetes and Istio themselves: not the user's, and gone with the namespace. */
const NAMESPACE_DEFAULTS = new Set(['ConfigMap/kube-root-ca.crt', 'ConfigMap/istio-ca-root-cert', 'ServiceAccount/default']);

/** The objects of kinds meshfed manages, in one of its namespaces, that it does not manage (never deleted). */
async function foreignObjects(writer: ReturnType<typeof writerFor>, namespace: string): Promise<string[]> {
  const lists = await Promise.all(MANAGED_KINDS.filter((k) => k.kind !== 'Namespace').map(async ({ apiVersion, kind }) => {
    try {
      return await writer.list(apiVersion, kind, namespace);
    } catch {
      return [] as KubeObject[];
    }
  }));
  return lists.flat().filter((o) => !isManaged(o)).map((o) => `${o.kind}/${o.metadata.name}`).filter((k) => !NAMESPACE_DEFAULTS.has(k)).sort();
}

function describeDependents(d: UninstallDependents): string {
  return [
    d.exports.length ? `exports ${d.exports.map((e) => `${e.namespace}/${e.exportName}`).join(', ')}` : '',
    d.imports.length ? `imports ${d.imports.map((i) => `${i.namespace}/${i.localName} (from ${exportRefText(i.from)})`).join(', ')}` : '',
    d.pending.length ? `pending import requests ${d.pending.map(exportRefText).join(', ')}` : '',
  ].filter(Boolean).join('; ');
}

/** The commands that remove what still uses meshfed, one per dependent (an export with consumers asks for revoke first). */
function removalCommands(d: UninstallDependents, context: string): string[] {
  return [
    ...d.imports.map((i) => `kubectl meshfed unimport ${i.localName} --context ${context} -n ${i.namespace}`),
    ...d.pending.map((p) => `kubectl meshfed unimport --context ${context} --export ${exportRefText(p)}`),
    ...d.exports.map((e) => `kubectl meshfed unexport ${e.exportName} --context ${context} -n ${e.namespace}`),
  ];
}

async function uninstall(session: Session, args: UninstallArgs): Promise<void> {
  const output = session.outputFormat(['json', 'yaml'] as const);
  const dryRun = dryRunMode(args['dry-run']);
  const context = await chooseContext(session, args.context, '--context', 'Context to uninstall meshfed from');
  const writer = writerFor(session, context, '--context');
  const gathered = await gatherCluster(writer, { namespaces: [], istioOptional: true, ...gatewayOptions(args) });
  const planFor = async (attempt: number) => {
    // After a write conflict: the cluster is read again and the removal planned again from the fresh read.
    const read = attempt === 1 ? gathered : await gatherCluster(writer, { namespaces: [], istioOptional: true, ...gatewayOptions(args) });
    const own = read.snapshot.existing.filter((o) => o.kind === 'Namespace' && isManaged(o)).map((o) => o.metadata.name);
    const foreign = Object.fromEntries(await Promise.all(own.map(async (ns) => [ns, await foreignObjects(writer, ns)] as const)));
    const plan = planUninstall(read.snapshot, { foreign });
    if (hasDependents(plan.dependents) && !args.force) {
      throw new InputError(`context "${context}" still uses meshfed: ${describeDependents(plan.dependents)}; uninstalling now breaks them`, {
        hint: `remove them first (${removalCommands(plan.dependents, context).join('; ')}), or pass --force to remove them too`,
      });
    }
    return { works: [clusterWork({ ...read, identity: { ...read.identity, objects: [] } }, writer, plan, `uninstall meshfed from cluster ${read.identity.clusterId}`)], value: plan };
  };
  if (args.force && !session.ui.interactive && !args.yes && dryRun === 'none') {
    // Forced removal of working exports and imports is confirmed: on a terminal by a question, otherwise by --yes.
    const { value: plan } = await applyWithReplan(session, planFor, { dryRun: 'client', output, showSecrets: false, title: 'uninstall --force' });
    if (hasDependents(plan.dependents)) {
      throw new UsageError(`--force removes ${describeDependents(plan.dependents)}: without a terminal to confirm on, pass --yes as well`);
    }
  }
  const { result, value: plan } = await applyWithReplan(session, planFor, { dryRun, output, ...printOptions(args), title: 'uninstall' });
  if (!result.applied || output) return;
  const kept = Object.keys(plan.keptNamespaces);
  session.ui.info(`meshfed is uninstalled from context "${context}": ${plan.remove.length} object${plan.remove.length === 1 ? '' : 's'} removed${plan.namespaces.length ? ` (namespaces ${plan.namespaces.join(', ')} included)` : ''}${kept.length ? `; namespaces ${kept.join(', ')} stay (they hold objects of others)` : ''}.`);
}

/** `kubectl meshfed uninstall`: remove everything meshfed created in a cluster. */
export const uninstallCommand: CommandBody<UninstallArgs> = {
  builder: (yargs) =>
    gatewayFlags(mutationOptions(yargs))
      .option('force', { type: 'boolean', default: false, describe: 'Also remove the exports and imports that still use meshfed (after showing the plan; confirm on a terminal, else --yes)' })
      .example('kubectl meshfed uninstall --context cluster1', 'Remove meshfed from a cluster that exports and imports nothing any more'),
  handler: withSession(uninstall),
};
