import { InputError } from '../errors.js';
import { planUnexport, readExportRecords, recordToMark } from '../federation/index.js';
import { gatherCluster } from '../kube/gather.js';
import { applyWithReplan, clusterWork, dryRunMode, markRemoving, mutationOptions, requireFlags, withCoreErrors, writerFor, type MutationArgs, printOptions } from './federate.js';
import { chooseContext, chooseNamespace, gatewayOptions, givenName, istioNamespaceFlag, namePositional, type GatewayArgs, type NameArgs } from './shared.js';
import type { Session } from './session.js';
import { withSession } from './run.js';
import type { CommandBody } from './index.js';

interface UnexportArgs extends MutationArgs, GatewayArgs, NameArgs {
  name?: string;
  force: boolean;
}

async function unexport(session: Session, args: UnexportArgs): Promise<void> {
  const output = session.outputFormat(['json', 'yaml', 'name'] as const);
  const dryRun = dryRunMode(args['dry-run']);
  const name = givenName(args.NAME, args.name, '--name');
  if (!session.ui.interactive) requireFlags([['NAME', !name]], 'kubectl meshfed unexport -n bookinfo reviews');
  const context = await chooseContext(session, args.context, '--context', 'Provider context');
  const writer = writerFor(session, context, '--context');
  const namespace = await chooseNamespace(session, writer, args.namespace, context, 'Namespace of the export');
  const gathered = await gatherCluster(writer, { namespaces: [namespace], ...gatewayOptions(args) });
  // An export whose removal stopped half-way is still there to remove (its record marked).
  const records = readExportRecords(gathered.snapshot, { removing: true });
  const exportName = name ?? await session.prompter.select('NAME', 'Export to remove',
    records.filter((r) => r.namespace === namespace).map((r) => ({ value: r.exportName, name: `${r.exportName} (Service ${r.service}:${r.port.number})` })),
    undefined, { none: `namespace "${namespace}" of context "${context}" has no export` });
  const record = records.find((r) => r.namespace === namespace && r.exportName === exportName);
  if (record && record.consumers.length > 0 && !args.force) {
    throw new InputError(`export ${namespace}/${exportName} still admits ${record.consumers.map((c) => c.clusterId).join(', ')}; removing it breaks their imports`, {
      hint: `revoke them first (${record.consumers.map((c) => `kubectl meshfed revoke ${exportName} --context ${context} -n ${namespace} --consumer ${c.clusterId}`).join('; ')}), or pass --force`,
    });
  }
  const planFor = async (attempt: number) => {
    // After a write conflict: the cluster is read again and the removal planned again from the fresh read.
    const fresh = attempt === 1 ? gathered : await gatherCluster(writer, { namespaces: [namespace], ...gatewayOptions(args) });
    // Planned once before the mark, so that a removal that cannot be planned marks nothing.
    await withCoreErrors({ '--name': '--name' }, () => planUnexport(fresh.snapshot, { namespace, exportName }));
    const read = await markRemoving(fresh, writer, recordToMark(fresh.snapshot, { export: { namespace, exportName } }), dryRun);
    const plan = await withCoreErrors({ '--name': '--name' }, () => planUnexport(read.snapshot, { namespace, exportName }));
    return { works: [clusterWork({ ...read, identity: { ...read.identity, objects: [] } }, writer, plan, `provider: remove export ${namespace}/${exportName}`)], value: plan };
  };
  await applyWithReplan(session, planFor, { dryRun, output, ...printOptions(args), title: `unexport ${namespace}/${exportName}` });
}

/** `kubectl meshfed unexport`: remove an export's own objects. */
export const unexportCommand: CommandBody<UnexportArgs> = {
  builder: (yargs) =>
    istioNamespaceFlag(namePositional(mutationOptions(yargs), 'The export name (in -n)'))
      .option('name', { type: 'string', describe: 'The export name, as NAME' })
      .option('force', { type: 'boolean', default: false, describe: 'Remove it even though consumers are still admitted' })
      .example('kubectl meshfed unexport myreviews --context cluster2 -n bookinfo', 'Remove an export without consumers'),
  handler: withSession(unexport),
};
