import { MeshfedError } from '../errors.js';
import { planRevoke, readExportRecords } from '../federation/index.js';
import { gatherCluster } from '../kube/gather.js';
import { applyWithReplan, clusterWork, dryRunMode, mutationOptions, requireFlags, withCoreErrors, writerFor, type MutationArgs, printOptions } from './federate.js';
import { chooseContext, chooseNamespace, gatewayOptions, givenName, istioNamespaceFlag, namePositional, type GatewayArgs, type NameArgs } from './shared.js';
import type { Session } from './session.js';
import { withSession } from './run.js';
import type { CommandBody } from './index.js';

interface RevokeArgs extends MutationArgs, GatewayArgs, NameArgs {
  name?: string;
  consumer?: string;
}

async function revoke(session: Session, args: RevokeArgs): Promise<void> {
  const output = session.outputFormat(['json', 'yaml', 'name'] as const);
  const dryRun = dryRunMode(args['dry-run']);
  const name = givenName(args.NAME, args.name, '--name');
  if (!session.ui.interactive) requireFlags([['NAME', !name], ['--consumer', !args.consumer]], 'kubectl meshfed revoke postgres -n db --consumer operations');
  const context = await chooseContext(session, args.context, '--context', 'Provider context');
  const writer = writerFor(session, context, '--context');
  const namespace = await chooseNamespace(session, writer, args.namespace, context, 'Namespace of the export');
  const gathered = await gatherCluster(writer, { namespaces: [namespace], ...gatewayOptions(args) });
  const records = readExportRecords(gathered.snapshot).filter((r) => r.namespace === namespace);
  const exportName = name ?? await session.prompter.select('NAME', 'Export', records.map((r) => ({ value: r.exportName, name: `${r.exportName} (consumers: ${r.consumers.map((c) => c.clusterId).join(', ') || 'none'})` })),
    undefined, { none: `namespace "${namespace}" of context "${context}" has no export` });
  const record = records.find((r) => r.exportName === exportName);
  const consumer = args.consumer ?? await session.prompter.select('--consumer', 'Consumer to revoke', [...new Set((record?.consumers ?? []).map((c) => c.clusterId))].map((id) => ({ value: id, name: id })),
    undefined, { none: `export ${namespace}/${exportName} admits no consumer` });
  // Revoking what is not admitted succeeds, so that a revoke run twice (or by a script) is not an error; the admitted
  // list still shows a mistyped --consumer. A missing export stays an error (planRevoke below).
  if (record && !record.consumers.some((c) => c.clusterId === consumer)) {
    const admitted = [...new Set(record.consumers.map((c) => c.clusterId))].join(', ') || 'none';
    session.ui.info(`${consumer} is not admitted to ${namespace}/${exportName}; nothing to do (admitted: ${admitted}).`);
    return;
  }
  const planFor = async (attempt: number) => {
    // After a write conflict: the cluster is read again and the revocation planned again from the fresh read.
    const read = attempt === 1 ? gathered : await gatherCluster(writer, { namespaces: [namespace], ...gatewayOptions(args) });
    const plan = await withCoreErrors({}, () => planRevoke(read.snapshot, { namespace, exportName, consumerClusterId: consumer }));
    const work = clusterWork({ ...read, identity: { ...read.identity, objects: [] } }, writer, plan, `provider: revoke ${consumer} from export ${namespace}/${exportName}`);
    work.warnings = work.warnings.filter((w) => !w.includes('has no external address yet'));
    return { works: [work], value: plan };
  };
  const { result, value: plan } = await applyWithReplan(session, planFor, { dryRun, output, ...printOptions(args), title: `revoke ${consumer}` });
  if (!result.applied || output) return;
  const effect = plan.revocation;
  if (effect && !effect.effective) {
    // The record no longer lists it, but the provider still lets its workloads through: say so, never the opposite.
    throw new MeshfedError(`${consumer} is no longer listed as a consumer of ${namespace}/${exportName}, but the workload guard still lets its identities through: ${effect.reason}`, {
      hint: `to cut it off, unexport ${namespace}/${exportName} (kubectl meshfed unexport), or give the meshes distinct trust domains, or export in boundary mode`,
    });
  }
  session.ui.info(plan.record.mode === 'shared-root'
    ? `${consumer} can no longer reach ${namespace}/${exportName}: the workload guard on Service ${namespace}/${plan.record.service} denies its identities.`
    : `${consumer} can no longer reach ${namespace}/${exportName}: the provider refuses its certificate and identity.`);
}

/** `kubectl meshfed revoke`: withdraw a consumer's admission. */
export const revokeCommand: CommandBody<RevokeArgs> = {
  builder: (yargs) =>
    istioNamespaceFlag(namePositional(mutationOptions(yargs), 'The export name (in -n)'))
      .option('name', { type: 'string', describe: 'The export name, as NAME' })
      .option('consumer', { type: 'string', describe: 'The consumer\'s cluster id' })
      .example('kubectl meshfed revoke postgres --context production -n db --consumer operations', 'operations loses access to postgres'),
  handler: withSession(revoke),
};
