import { InputError, UsageError } from '../errors.js';
import {
  bindingLabel, exportRefText, homeNamespaceOf, LABELS, pendingRequests, planCancelRequest, planRevoke, planUnimport, readExportRecords, readImportRecords, recordToMark, type ExportRef, type PendingRequest,
} from '../federation/index.js';
import { gatherCluster, type GatheredCluster } from '../kube/gather.js';
import type { KubeObject } from '../kube/resources.js';
import type { OutputFormat } from '../ui/format.js';
import { applyWithReplan, clusterWork, dryRunMode, markRemoving, mutationOptions, requireFlags, withCoreErrors, writerFor, type MutationArgs, printOptions } from './federate.js';
import { chooseContext, chooseNamespace, contextOfCluster, gatewayOptions, givenName, istioNamespaceFlag, namePositional, type GatewayArgs, type NameArgs } from './shared.js';
import type { Session } from './session.js';
import { withSession } from './run.js';
import type { CommandBody } from './index.js';
import { hintingLocalName } from '../options.js';

interface UnimportArgs extends MutationArgs, GatewayArgs, NameArgs {
  /** `--name`: the local name, as NAME. */
  name?: string;
  /** The global `--as` (impersonation), read here only for the hints of an old `unimport --as NAME`. */
  as?: string;
  export?: string;
  from?: string;
}

/** Prefix of prompt choices that stand for a pending request rather than an import's local name. */
const PENDING_CHOICE = 'pending:';

/** `--export <provider cluster id>/<namespace>/<name>`, as status shows the source of a pending request. */
function parseExportRef(value: string): ExportRef {
  const [providerClusterId, namespace, exportName, ...rest] = value.split('/');
  if (!providerClusterId || !namespace || !exportName || rest.length > 0) {
    throw new UsageError(`invalid --export "${value}": expected <provider cluster id>/<namespace>/<name>, as status shows it, e.g. --export production/db/postgres`);
  }
  return { providerClusterId, namespace, exportName };
}

async function unimport(session: Session, args: UnimportArgs): Promise<void> {
  const output = session.outputFormat(['json', 'yaml', 'name'] as const);
  const dryRun = dryRunMode(args['dry-run']);
  const name = givenName(args.NAME, args.name, '--name');
  if (name && args.export) throw new UsageError('NAME and --export exclude each other: NAME removes an import, --export cancels a pending import request');
  const requested = args.export !== undefined ? parseExportRef(args.export) : undefined;
  if (!session.ui.interactive && !requested && !name && args.as !== undefined) {
    // unimport --as NAME once named the import: --as impersonates now, as in kubectl.
    throw new UsageError('missing value for NAME: --as impersonates a user (as in kubectl), it does not name the import', {
      hint: `name the import to remove as NAME or with --name (e.g. kubectl meshfed unimport ${args.as}${args.context ? ` --context ${args.context}` : ''}${args.namespace ? ` -n ${args.namespace}` : ''})`,
    });
  }
  if (!session.ui.interactive && !requested) requireFlags([['NAME', !name]], 'kubectl meshfed unimport myreviews -n default');
  const context = await chooseContext(session, args.context, '--context', 'Consumer context');
  const writer = writerFor(session, context, '--context');
  // A pending request lives in meshfed's own namespace: cancelling one by --export needs no import namespace.
  if (requested) return cancelRequest(session, args, await gatherCluster(writer, { namespaces: [], ...gatewayOptions(args) }), writer, requested, output, dryRun);
  const namespace = await chooseNamespace(session, writer, args.namespace, context, 'Namespace of the import');
  const gathered = await gatherCluster(writer, { namespaces: [namespace], ...gatewayOptions(args) });
  // An import whose removal stopped half-way is still there to remove (its record marked).
  const records = readImportRecords(gathered.snapshot, { removing: true });
  const pending = pendingRequests(gathered.snapshot);
  // A request is offered under -n when it imports there (requests of earlier versions did not record where).
  const pendingHere = pending.filter((p) => (p.importNamespace ?? namespace) === namespace);
  const localName = name ?? await session.prompter.select('NAME', 'Import to remove', [
    ...records.filter((r) => r.namespace === namespace).map((r) => ({ value: r.localName, name: `${r.localName} (from ${r.endpoint.providerClusterId}/${r.endpoint.namespace}/${r.endpoint.exportName})` })),
    ...pendingHere.map((p) => ({ value: `${PENDING_CHOICE}${exportRefText(p)}`, name: `${p.localName ?? p.exportName} (import request for ${exportRefText(p)}, pending)` })),
  ], undefined, { none: `namespace "${namespace}" of context "${context}" has no import and no pending import request` });
  if (localName.startsWith(PENDING_CHOICE)) return cancelRequest(session, args, gathered, writer, parseExportRef(localName.slice(PENDING_CHOICE.length)), output, dryRun);
  const record = records.find((r) => r.namespace === namespace && r.localName === localName);
  if (!record) {
    // An import that never got past its request: NAME is the local name it was made for (the export's name if none).
    const named = pendingHere.filter((p) => (p.localName ?? p.exportName) === localName);
    if (named.length === 1) return cancelRequest(session, args, gathered, writer, named[0]!, output, dryRun);
    if (named.length > 1) {
      throw new InputError(`NAME ${localName} matches ${named.length} pending import requests (${named.map(exportRefText).join(', ')})`, { hint: 'name the one to cancel with --export <provider cluster id>/<namespace>/<name>' });
    }
    throw notFound(namespace, localName, records.map((r) => `${r.namespace}/${r.localName}`), pending);
  }
  let provider: (GatheredCluster & { writer: ReturnType<typeof writerFor> }) | undefined;
  if (args.from) {
    if (args.from === context) throw new UsageError(`--from "${args.from}" is the consumer context itself: name the provider's context`);
    const providerWriter = writerFor(session, args.from, '--from');
    const read = await gatherCluster(providerWriter, { namespaces: [record!.endpoint.namespace], istioNamespace: args['istio-namespace'] });
    if (read.identity.clusterId !== record!.endpoint.providerClusterId) {
      throw new UsageError(`--from "${args.from}" is cluster ${read.identity.clusterId}, but import ${namespace}/${localName} comes from ${record!.endpoint.providerClusterId}`);
    }
    provider = { ...read, writer: providerWriter };
  }
  // A key left pending by an import request of the same export (never completed) goes with the last import of it.
  const binding = bindingLabel(record.endpoint.providerClusterId, record.endpoint.namespace, record.endpoint.exportName);
  const planFor = async (attempt: number) => {
    // After a write conflict: the cluster is read again and the removal planned again from the fresh read.
    const fresh = attempt === 1 ? gathered : await gatherCluster(writer, { namespaces: [namespace], ...gatewayOptions(args) });
    // Planned once before the mark, so that a removal that cannot be planned marks nothing.
    await withCoreErrors({ '--local-name': '--name' }, () => planUnimport(fresh.snapshot, { namespace, localName }));
    const read = await markRemoving(fresh, writer, recordToMark(fresh.snapshot, { import: { namespace, localName } }), dryRun);
    const plan = await withCoreErrors({ '--local-name': '--name' }, () => planUnimport(read.snapshot, { namespace, localName }));
    const others = readImportRecords(read.snapshot).filter((r) => !(r.namespace === namespace && r.localName === localName)
      && bindingLabel(r.endpoint.providerClusterId, r.endpoint.namespace, r.endpoint.exportName) === binding);
    // With the request's published copy (a ConfigMap with the Secret's labels).
    const leftovers = others.length > 0 ? [] : read.snapshot.existing.filter((o) => (o.kind === 'Secret' || (o.kind === 'ConfigMap' && o.metadata.name.endsWith('.request')))
      && o.metadata.namespace === homeNamespaceOf(read.snapshot) && o.metadata.labels?.[LABELS.binding] === binding) as KubeObject[];
    const work = clusterWork({ ...read, identity: { ...read.identity, objects: [] } }, writer, plan, `consumer: remove import ${namespace}/${localName}`, { deletions: leftovers });
    const works = [work];
    // With the provider at hand, its admission of this cluster goes too once no import of this cluster uses it (as
    // import --from granted it). The consumer stops calling first, then the provider stops admitting.
    if (provider && others.length === 0) {
      const providerRead = attempt === 1 ? provider : await gatherCluster(provider.writer, { namespaces: [record!.endpoint.namespace], istioNamespace: args['istio-namespace'] });
      if (attempt > 1) provider = { ...providerRead, writer: provider.writer };
      const exportRecord = readExportRecords(providerRead.snapshot).find((r) => r.namespace === record!.endpoint.namespace && r.exportName === record!.endpoint.exportName);
      if (exportRecord?.consumers.some((c) => c.clusterId === read.identity.clusterId)) {
        const revocation = await withCoreErrors({}, () => planRevoke(providerRead.snapshot, { namespace: exportRecord.namespace, exportName: exportRecord.exportName, consumerClusterId: read.identity.clusterId }));
        const revokeWork = clusterWork({ ...providerRead, identity: { ...providerRead.identity, objects: [] } }, provider.writer, revocation, `provider: withdraw ${read.identity.clusterId}'s admission to export ${exportRecord.namespace}/${exportRecord.exportName}`);
        revokeWork.warnings = revokeWork.warnings.filter((w) => !w.includes('has no external address yet') && !w.includes('admits no consumer'));
        works.push(revokeWork);
      }
    }
    return { works, value: others };
  };
  const { result, value: others } = await applyWithReplan(session, planFor, { dryRun, output, ...printOptions(args), title: `unimport ${namespace}/${localName}` });
  if (output || !result.applied) return;
  const source = exportRefText(record.endpoint);
  // Revoking is only right once no import of this cluster uses the admission any more.
  if (others.length > 0) {
    session.ui.info(`${others.map((r) => `${r.namespace}/${r.localName}`).join(', ')} still import${others.length === 1 ? 's' : ''} ${source}: keep the provider's admission of this cluster.`);
  } else if (provider) {
    session.ui.info(`${source} no longer admits this cluster (${gathered.identity.clusterId}).`);
  } else {
    session.ui.info(`${source} still admits this cluster until its operator runs: ${revokeCommand(session, record.endpoint, gathered.identity.clusterId)}`);
  }
}

/**
 * The provider operator's command that withdraws this cluster's admission, with real names: the provider's cluster id
 * is the context name meshfed derives it from by default.
 */
function revokeCommand(session: Session, ref: ExportRef, consumerClusterId: string): string {
  return `kubectl meshfed revoke ${ref.exportName} --context ${contextOfCluster(session, ref.providerClusterId)} -n ${ref.namespace} --consumer ${consumerClusterId}`;
}

function notFound(namespace: string, localName: string, imports: string[], pending: PendingRequest[]): InputError {
  return new InputError(`import ${namespace}/${localName} does not exist (imports: ${imports.join(', ') || 'none'}; pending import requests: ${pending.map((p) => `${exportRefText(p)}${p.importNamespace ? ` into ${p.importNamespace}` : ''}`).join(', ') || 'none'})`, {
    hint: pending.length > 0 ? 'to cancel a pending import request, pass --export <provider cluster id>/<namespace>/<name>' : 'check -n and --name (kubectl meshfed status lists the imports)',
  });
}

/** Cancels an import request that was never completed: its key goes, so no bundle made for it can be imported. */
async function cancelRequest(
  session: Session, args: UnimportArgs, gathered: GatheredCluster, writer: ReturnType<typeof writerFor>, ref: ExportRef,
  output: OutputFormat | undefined, dryRun: ReturnType<typeof dryRunMode>,
): Promise<void> {
  const planFor = async (attempt: number) => {
    // After a write conflict: the cluster is read again and the cancellation planned again from the fresh read.
    const read = attempt === 1 ? gathered : await gatherCluster(writer, { namespaces: [], ...gatewayOptions(args) });
    const plan = await withCoreErrors({}, () => planCancelRequest(read.snapshot, ref));
    return { works: [clusterWork({ ...read, identity: { ...read.identity, objects: [] } }, writer, plan, `consumer: cancel the import request for ${exportRefText(ref)}`)], value: plan };
  };
  const { result } = await applyWithReplan(session, planFor, { dryRun, output, ...printOptions(args), title: `cancel import request ${exportRefText(ref)}` });
  if (output || !result.applied) return;
  session.ui.info(`Cancelled the import request for ${exportRefText(ref)}: its key is deleted, so a bundle made for it can no longer be imported.`);
  session.ui.info(`If the provider admitted it already, it admits this cluster until its operator runs: ${revokeCommand(session, ref, gathered.identity.clusterId)}`);
}

/** `kubectl meshfed unimport`: remove an import's own objects, or cancel an import request that was never completed. */
export const unimportCommand: CommandBody<UnimportArgs> = {
  builder: (yargs) =>
    istioNamespaceFlag(namePositional(mutationOptions(yargs), 'The local name of the import (in -n); for an import request never completed, the export name'))
      .option('name', { type: 'string', describe: 'The local name, as NAME' })
      .option('export', { type: 'string', describe: 'Cancel the pending import request for <provider cluster id>/<namespace>/<name> (as status shows it)' })
      .option('from', { type: 'string', describe: 'The provider\'s context: also withdraw this cluster\'s admission there (as import --from granted it)' })
      .example('kubectl meshfed unimport myreviews --context cluster1 -n default', 'Remove an import')
      .example('kubectl meshfed unimport myreviews --context cluster1 -n default --from cluster2', 'Remove an import and its admission on the provider')
      .example('kubectl meshfed unimport --context operations --export production/db/postgres', 'Cancel an import request that was never completed'),
  handler: withSession(hintingLocalName(unimport)),
};
