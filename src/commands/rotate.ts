import { InputError, UsageError } from '../errors.js';
import {
  claimedExport, consumerGatewaySpiffeId, DEFAULT_GATEWAY_NAMESPACE, GATEWAY_NAMES, homeNamespaceOf, planClientRotation, planProviderRotation, readExportRecords, readImportRecords,
  type ExportRecord,
} from '../federation/index.js';
import { gatherCluster, type GatheredCluster } from '../kube/gather.js';
import { applyWithReplan, clusterWork, dryRunMode, mutationOptions, withCoreErrors, writerFor, type MutationArgs, printOptions } from './federate.js';
import { chooseContext, gatewayFlags, gatewayOptions, type GatewayArgs } from './shared.js';
import type { Session } from './session.js';
import { withSession } from './run.js';
import type { CommandBody } from './index.js';
import { BUNDLE_TEXT, importExport, readDocument, type ImportArgs } from './import.js';

interface RotateArgs extends MutationArgs, GatewayArgs {
  from?: string;
  'request-out'?: string;
  bundle?: string;
  name?: string;
  ca: boolean;
  finish: boolean;
  validity?: string;
  force: boolean;
}

/** How core messages name flags → how `rotate` spells them. */
const FLAGS = { '--local-name': '--name' };

/**
 * `--validity`: days (`90d`), hours (`2160h`) or a plain number of days, as a whole number of days (at least 1).
 * @returns undefined when not given (each kind of certificate keeps its default)
 */
export function validityDays(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const match = /^(\d+)(d|h)?$/.exec(value.trim());
  const days = match ? (match[2] === 'h' ? Number(match[1]) / 24 : Number(match[1])) : NaN;
  if (!Number.isFinite(days) || days < 1 || !Number.isInteger(days)) {
    throw new UsageError(`invalid --validity "${value}": expected whole days such as 90d or 365 (or hours that make whole days, such as 2160h)`);
  }
  return days;
}

async function rotate(session: Session, args: RotateArgs): Promise<void> {
  const output = session.outputFormat(['json', 'yaml'] as const);
  const dryRun = dryRunMode(args['dry-run']);
  const days = validityDays(args.validity);
  if (args.finish && !args.ca) throw new UsageError('--finish ends a CA rotation: pass it with --ca (kubectl meshfed rotate --ca --finish)');
  if (args.from && args.ca) throw new UsageError('--ca rotates the provider\'s federation CA, in the provider context: run it without --from (then renew each consumer with --from)');
  const files = args['request-out'] !== undefined || args.bundle !== undefined;
  if (files && (args.ca || args.validity)) throw new UsageError('--request-out and --bundle renew a consumer\'s client certificate through the exchange files: --ca and --validity are the provider\'s (admit signs for the CA\'s default validity)');
  const context = await chooseContext(session, args.context, '--context', args.from || files ? 'Consumer context' : 'Provider context');
  const writer = writerFor(session, context, '--context');
  if (files) return rotateThroughFiles(session, args, context, writer);
  if (args.from) return rotateClients(session, args, context, writer, { output, dryRun, days });
  // The exports' namespaces are known from their records: re-planning an export reads its Service.
  const first = await gatherCluster(writer, { namespaces: [], ...gatewayOptions(args) });
  const exportNamespaces = () => [...new Set(readExportRecords(first.snapshot).map((r) => r.namespace))];
  const gathered = exportNamespaces().length ? await gatherCluster(writer, { namespaces: exportNamespaces(), ...gatewayOptions(args) }) : first;
  const records = readExportRecords(gathered.snapshot);
  if (records.length === 0 && readImportRecords(gathered.snapshot).length > 0 && !args.ca) {
    throw new UsageError(`context "${context}" exports nothing; to renew the client certificates of its imports, name their provider with --from`, {
      hint: `e.g. kubectl meshfed rotate --context ${context} --from ${readImportRecords(gathered.snapshot)[0]!.endpoint.providerClusterId}`,
    });
  }
  let only: { namespace: string; exportName: string } | undefined;
  if (args.name) {
    if (!args.namespace) throw new UsageError('--name needs -n (the namespace of the export)');
    only = { namespace: args.namespace, exportName: args.name };
  }
  const phase = args.ca ? (args.finish ? 'finish' as const : 'start' as const) : undefined;
  const planFor = async (attempt: number) => {
    // After a write conflict: the cluster is read again and the rotation planned again from the fresh read.
    const read = attempt === 1 ? gathered : await gatherCluster(writer, { namespaces: exportNamespaces(), ...gatewayOptions(args) });
    const plan = await withCoreErrors({ '--name': '--name' }, () => planProviderRotation(read.snapshot, {
      servers: !phase, ...(only ? { only } : {}), ...(phase ? { ca: phase } : {}), ...(days ? (phase === 'start' ? { caValidityDays: days } : { validityDays: days }) : {}),
    }));
    if (phase === 'finish' && plan.notRenewed.length > 0 && !args.force) {
      throw new InputError(`the next federation CA has not signed a client certificate for ${plan.notRenewed.join(', ')} yet: finishing now stops trusting their certificates and cuts them off`, {
        hint: `renew them first (${plan.notRenewed.map((c) => renewCommand(read, c, records)).join('; ')}), or pass --force to cut them off`,
      });
    }
    const role = phase === 'start' ? 'provider: start the federation CA rotation' : phase === 'finish' ? 'provider: finish the federation CA rotation'
      : `provider: renew the server certificates of ${plan.exports.join(', ') || 'no boundary export'}`;
    return { works: [clusterWork({ ...read, identity: { ...read.identity, objects: [] } }, writer, plan, role)], value: plan };
  };
  const { result, value: plan } = await applyWithReplan(session, planFor, { dryRun, output, ...printOptions(args), title: phase ? `rotate --ca${phase === 'finish' ? ' --finish' : ''}` : 'rotate' });
  if (!result.applied || output) return;
  if (phase === 'start') {
    session.ui.info(`Started the federation CA rotation of cluster ${gathered.identity.clusterId}: its gateway trusts client certificates of the current and the next CA, and new client certificates come from the next CA.`);
    if (plan.consumers.length > 0) {
      session.ui.info(`Next, renew each consumer (traffic keeps flowing meanwhile): ${plan.consumers.map((c) => renewCommand(gathered, c, records)).join('; ')}.`);
    }
    session.ui.info(`Then finish: kubectl meshfed rotate --context ${context} --ca --finish`);
  } else if (phase === 'finish') {
    session.ui.info(`Finished the federation CA rotation of cluster ${gathered.identity.clusterId}: the server certificates come from the new CA, and the old CA is no longer trusted.`);
    if (plan.consumers.length > 0) {
      session.ui.info(`The consumers still trust the old CA beside the new one until they renew again, which drops it: ${plan.consumers.map((c) => renewCommand(gathered, c, records)).join('; ')}.`);
    }
  } else {
    session.ui.info(`Renewed the server certificates of ${plan.exports.join(', ') || 'no boundary export (shared-root exports hold none)'}; consumers keep working (same federation CA).`);
  }
}

/**
 * The exact command that renews one consumer's client certificate, with both contexts at hand (the consumer's kube
 * context is assumed to carry its cluster id, meshfed's default) or, without, through the exchange files.
 */
function renewCommand(provider: GatheredCluster, consumer: string, records: ExportRecord[]): string {
  const direct = `kubectl meshfed rotate --context ${consumer} --from ${provider.context}`;
  const exported = records.filter((r) => r.mode === 'boundary' && r.consumers.some((c) => c.clusterId === consumer));
  // A request renews one export's binding: with several exports of this provider, one round each.
  const rounds = exported.length > 1 ? ` (once per export: ${exported.map((r) => `${r.namespace}/${r.exportName}`).join(', ')}; choose it with -n and --name)` : '';
  return `${direct} (without access to both: kubectl meshfed rotate --context ${consumer} --from ${provider.identity.clusterId} --request-out request.yaml${rounds}, ` +
    `then kubectl meshfed admit --context ${provider.context} --request request.yaml --bundle-out bundle.yaml, then kubectl meshfed rotate --context ${consumer} --bundle bundle.yaml)`;
}

/**
 * The consumer side without access to the provider, through the same files as the three-step import: `--request-out`
 * makes a re-keying request for the import of `--from` (the provider's cluster id), `admit` answers it, `--bundle`
 * completes it onto that import (the old key and certificate serve until then).
 */
async function rotateThroughFiles(session: Session, args: RotateArgs, context: string, writer: ReturnType<typeof writerFor>): Promise<void> {
  if (args['request-out'] !== undefined && args.bundle !== undefined) throw new UsageError('--request-out and --bundle are two different steps: run them one after the other');
  const gathered = await gatherCluster(writer, { namespaces: [], ...gatewayOptions(args) });
  const imports = readImportRecords(gathered.snapshot);
  const base = { ...args, ca: undefined, finish: undefined, validity: undefined, force: true, timeout: '2m' } as unknown as ImportArgs;
  if (args.bundle !== undefined) {
    // The import the bundle completes: the one of its export (in -n when it is imported in several namespaces).
    const text = await readDocument(session, args.bundle, '--bundle');
    const claim = claimedExport(text).export;
    const matching = imports.filter((r) => r.endpoint.providerClusterId === claim.providerClusterId && r.endpoint.namespace === claim.namespace
      && r.endpoint.exportName === claim.exportName && (args.namespace === undefined || r.namespace === args.namespace));
    if (matching.length === 0) {
      throw new InputError(`context "${context}" imports nothing from ${claim.providerClusterId}/${claim.namespace}/${claim.exportName}${args.namespace ? ` in namespace ${args.namespace}` : ''}, so the bundle ${args.bundle} renews nothing here`, {
        hint: 'a first import completes with kubectl meshfed import --bundle',
      });
    }
    const namespaces = [...new Set(matching.map((r) => r.namespace))];
    if (namespaces.length > 1) throw new UsageError(`${claim.providerClusterId}/${claim.namespace}/${claim.exportName} is imported in namespaces ${namespaces.join(', ')}: say which with -n`);
    return importExport(session, { ...base, namespace: namespaces[0]!, bundle: args.bundle, [BUNDLE_TEXT]: text } as ImportArgs);
  }
  if (!args.from) throw new UsageError('--request-out needs --from <provider cluster id> (as status shows the source of the import)', { hint: `e.g. kubectl meshfed rotate --context ${context} --from ${imports[0]?.endpoint.providerClusterId ?? 'cluster2'} --request-out request.yaml` });
  const candidates = imports.filter((r) => r.endpoint.providerClusterId === args.from && r.endpoint.mode === 'boundary'
    && (args.namespace === undefined || r.namespace === args.namespace) && (args.name === undefined || r.localName === args.name));
  const exports = [...new Set(candidates.map((r) => `${r.endpoint.namespace}/${r.endpoint.exportName}`))];
  if (exports.length === 0) throw new InputError(`context "${context}" has no boundary import from ${args.from}${args.name ? ` named ${args.name}` : ''} (a request renews the client certificate of one)`);
  if (exports.length > 1) {
    throw new UsageError(`context "${context}" imports several exports of ${args.from} (${exports.join(', ')}): a request renews one; choose it with -n and --name (its local name)`);
  }
  const record = candidates[0]!;
  return importExport(session, {
    ...base, namespace: record.namespace, from: args.from, export: `${args.from}/${record.endpoint.namespace}/${record.endpoint.exportName}`, 'request-out': args['request-out'],
  } as ImportArgs);
}

/** The consumer side with both contexts: new client keys and certificates for the imports of `--from`. */
async function rotateClients(
  session: Session, args: RotateArgs, context: string, writer: ReturnType<typeof writerFor>,
  how: { output: 'json' | 'yaml' | undefined; dryRun: ReturnType<typeof dryRunMode>; days: number | undefined },
): Promise<void> {
  if (args.from === context) throw new UsageError(`--from "${args.from}" is the consumer context itself: name the provider's context`);
  const providerWriter = writerFor(session, args.from!, '--from');
  const consumerGather = { namespaces: args.namespace ? [args.namespace] : [], ...gatewayOptions(args) };
  const providerGather = { namespaces: [], istioNamespace: args['istio-namespace'] };
  let [consumer, provider] = await Promise.all([gatherCluster(writer, consumerGather), gatherCluster(providerWriter, providerGather)]);
  let only: { namespace: string; localName: string } | undefined;
  if (args.name) {
    only = { namespace: args.namespace ?? session.context(context).namespace ?? 'default', localName: args.name };
  }
  const planFor = async (attempt: number) => {
    if (attempt > 1) [consumer, provider] = await Promise.all([gatherCluster(writer, consumerGather), gatherCluster(providerWriter, providerGather)]);
    const home = homeNamespaceOf(consumer.snapshot);
    const plan = await withCoreErrors(FLAGS, () => planClientRotation(consumer.snapshot, provider.snapshot, {
      consumerClusterId: consumer.identity.clusterId,
      providerClusterId: provider.identity.clusterId,
      spiffeId: consumerGatewaySpiffeId(consumer.identity.clusterId, home === DEFAULT_GATEWAY_NAMESPACE ? DEFAULT_GATEWAY_NAMESPACE : home, GATEWAY_NAMES.egress),
      ...(only ? { only } : {}),
      ...(how.days ? { validityDays: how.days } : {}),
    }));
    const works = [
      clusterWork({ ...provider, identity: { ...provider.identity, objects: [] } }, providerWriter, plan.provider, `provider: note ${consumer.identity.clusterId}'s certificate from the next federation CA`),
      clusterWork({ ...consumer, identity: { ...consumer.identity, objects: [] } }, writer, plan.consumer, `consumer: renew the client certificates of ${plan.imports.join(', ') || 'no boundary import'}`),
    ].filter((w) => w.objects.length > 0);
    return { works, value: plan };
  };
  const { result, value: plan } = await applyWithReplan(session, planFor, { dryRun: how.dryRun, output: how.output, ...printOptions(args), title: 'rotate' });
  if (!result.applied || how.output) return;
  if (plan.skipped.length) session.ui.info(`${plan.skipped.join(', ')}: shared-root, no federation certificate to renew (the meshes' own CA issues the workload certificates).`);
  if (plan.imports.length) session.ui.info(`Renewed the client certificates of ${plan.imports.join(', ')} (new keys, kept in this cluster), signed by the federation CA of ${provider.identity.clusterId}.`);
}

/** `kubectl meshfed rotate`: renew server, client and CA certificates without stopping traffic. */
export const rotateCommand: CommandBody<RotateArgs> = {
  builder: (yargs) =>
    gatewayFlags(mutationOptions(yargs))
      .option('from', { type: 'string', describe: 'Consumer side: the provider\'s context; renews the client certificates of the imports from it' })
      .option('name', { type: 'string', describe: 'Only this export (provider, in -n) or import (consumer, its local name in -n); default: all of them' })
      .option('ca', { type: 'boolean', default: false, describe: 'Rotate the provider\'s federation CA: start an overlap in which the current and the next CA are both trusted' })
      .option('finish', { type: 'boolean', default: false, describe: 'With --ca: end the overlap (server certificates from the new CA; the old CA no longer trusted)' })
      .option('validity', { type: 'string', describe: 'Lifetime of the new certificates, e.g. 90d (default: 365d for server and client certificates, 3650d for a CA)' })
      .option('force', { type: 'boolean', default: false, describe: 'With --ca --finish: finish even though some consumers have no certificate from the new CA yet (they lose access)' })
      // nargs: 1 makes yargs take "-" (stdin/stdout) as the value instead of a stray argument.
      .option('request-out', { type: 'string', nargs: 1, describe: 'Consumer without access to the provider: write a re-keying request for the import of --from (its cluster id) for the provider to admit (- for stdout)' })
      .option('bundle', { type: 'string', nargs: 1, describe: 'Consumer without access to the provider: complete the renewal with the provider\'s bundle (- for stdin)' })
      .example('kubectl meshfed rotate --context cluster2', 'Renew the server certificates of every export')
      .example('kubectl meshfed rotate --context cluster1 --from cluster2', 'Renew the client certificates of the imports from cluster2')
      .example('kubectl meshfed rotate --context cluster1 --from cluster2 --request-out request.yaml', 'Without access to the provider: a re-keying request (then admit, then rotate --bundle)')
      .example('kubectl meshfed rotate --context cluster2 --ca', 'Start a federation CA rotation (both CAs trusted)')
      .example('kubectl meshfed rotate --context cluster2 --ca --finish', 'Finish it once every consumer is renewed'),
  handler: withSession(rotate),
};
