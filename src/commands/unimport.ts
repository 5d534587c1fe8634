import { bindingLabel, homeNamespaceOf, LABELS, planUnimport, readImportRecords } from '../federation/index.js';
import { gatherCluster } from '../kube/gather.js';
import type { KubeObject } from '../kube/resources.js';
import { clusterWork, diffAll, dryRunMode, mutationOptions, requireFlags, runPlan, withCoreErrors, writerFor, type MutationArgs } from './federate.js';
import { chooseContext, chooseNamespace, gatewayFlags, gatewayOptions, type GatewayArgs } from './shared.js';
import type { Session } from './session.js';
import { withSession } from './run.js';
import type { CommandBody } from './index.js';

interface UnimportArgs extends MutationArgs, GatewayArgs {
  name?: string;
}

async function unimport(session: Session, args: UnimportArgs): Promise<void> {
  const output = session.outputFormat(['json', 'yaml'] as const);
  const dryRun = dryRunMode(args['dry-run']);
  if (!session.ui.interactive) requireFlags([['--name', !args.name]], 'kubectl meshfed unimport -n default --name myreviews');
  const context = await chooseContext(session, args.context, '--context', 'Consumer context');
  const writer = writerFor(session, context, '--context');
  const namespace = await chooseNamespace(session, writer, args.namespace, context, 'Namespace of the import');
  const gathered = await gatherCluster(writer, { namespaces: [namespace], ...gatewayOptions(args) });
  const records = readImportRecords(gathered.snapshot);
  const localName = args.name ?? await session.prompter.select('--name', 'Import to remove',
    records.filter((r) => r.namespace === namespace).map((r) => ({ value: r.localName, name: `${r.localName} (from ${r.endpoint.providerClusterId}/${r.endpoint.namespace}/${r.endpoint.exportName})` })));
  const plan = await withCoreErrors({ '--local-name': '--name' }, () => planUnimport(gathered.snapshot, { namespace, localName }));
  // A key left pending by an import request of the same export (never completed) goes with the last import of it.
  const record = records.find((r) => r.namespace === namespace && r.localName === localName)!;
  const binding = bindingLabel(record.endpoint.providerClusterId, record.endpoint.namespace, record.endpoint.exportName);
  const others = records.filter((r) => r !== record && bindingLabel(r.endpoint.providerClusterId, r.endpoint.namespace, r.endpoint.exportName) === binding);
  const leftovers = others.length > 0 ? [] : gathered.snapshot.existing.filter((o) => o.kind === 'Secret'
    && o.metadata.namespace === homeNamespaceOf(gathered.snapshot) && o.metadata.labels?.[LABELS.binding] === binding) as KubeObject[];
  const work = clusterWork({ ...gathered, identity: { ...gathered.identity, objects: [] } }, writer, plan, `consumer: remove import ${namespace}/${localName}`, { deletions: leftovers });
  await diffAll([work]);
  const result = await runPlan(session, [work], { dryRun, output, showSecrets: args['show-secrets'], title: `unimport ${namespace}/${localName}` });
  if (output || !result.applied) return;
  const source = `${record.endpoint.providerClusterId}/${record.endpoint.namespace}/${record.endpoint.exportName}`;
  // Revoking is only right once no import of this cluster uses the admission any more.
  if (others.length > 0) {
    session.ui.info(`${others.map((r) => `${r.namespace}/${r.localName}`).join(', ')} still import${others.length === 1 ? 's' : ''} ${source}: keep the provider's admission of this cluster.`);
  } else {
    session.ui.info(`The provider still admits this cluster until it runs: kubectl meshfed revoke --context <provider> -n ${record.endpoint.namespace} --name ${record.endpoint.exportName} --consumer ${gathered.identity.clusterId}`);
  }
}

/** `kubectl meshfed unimport`: remove an import's own objects. */
export const unimportCommand: CommandBody<UnimportArgs> = {
  builder: (yargs) =>
    gatewayFlags(mutationOptions(yargs))
      .option('name', { alias: 'as', type: 'string', describe: 'The local name of the import (in -n)' })
      .example('kubectl meshfed unimport --context cluster1 -n default --name myreviews', 'Remove an import'),
  handler: withSession(unimport),
};
