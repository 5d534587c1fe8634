import { readFileSync } from 'node:fs';
import { InputError, MeshfedError } from '../errors.js';
import { admitImportRequest, parseImportRequest, readExportRecords, serializeDocument } from '../federation/index.js';
import { gatherCluster, readGatewayAddress } from '../kube/gather.js';
import { applyWithReplan, clusterWork, dryRunMode, mutationOptions, requireFlags, translateCoreError, withCoreErrors, writerFor, type MutationArgs, printOptions } from './federate.js';
import { checkWritablePath, fileProblem, readDocument, refuseTwoDocuments, usageProblem, writeDocument } from './import.js';
import { chooseContext, contextOfCluster, gatewayOptions, istioNamespaceFlag, type GatewayArgs } from './shared.js';
import type { Session } from './session.js';
import { withSession } from './run.js';
import type { CommandBody } from './index.js';

interface AdmitArgs extends MutationArgs, GatewayArgs {
  request?: string;
  'bundle-out'?: string;
}

const FLAGS = { '--from': '--context', '--consumer': '--request', '--consumer-namespace': '--request' };

async function admit(session: Session, args: AdmitArgs): Promise<void> {
  const output = session.outputFormat(['json', 'yaml', 'name'] as const);
  const dryRun = dryRunMode(args['dry-run']);
  if (session.ui.interactive) {
    // Each answer is checked as it is given: the request must be a readable import request, the bundle's path writable.
    args.request ??= await session.prompter.input('--request', 'Import request file from the consumer', {
      validate: async (value) => {
        const problem = fileProblem(value);
        if (problem !== true) return problem;
        try {
          parseImportRequest(readFileSync(value, 'utf8'));
          return true;
        } catch (error) {
          const translated = translateCoreError(error, FLAGS);
          if (translated instanceof MeshfedError) return translated.message;
          throw error;
        }
      },
    });
    if (!args['bundle-out'] && dryRun === 'none') {
      args['bundle-out'] = await session.prompter.input('--bundle-out', 'Write the export bundle for the consumer to', {
        default: 'bundle.yaml', validate: (value) => usageProblem(() => checkWritablePath(value, '--bundle-out')),
      });
    }
  }
  refuseTwoDocuments(output, args['bundle-out'], '--bundle-out', 'bundle', 'bundle.yaml');
  requireFlags([['--request', !args.request], ['--bundle-out', !args['bundle-out'] && dryRun === 'none']], 'kubectl meshfed admit --context cluster2 --request request.yaml --bundle-out bundle.yaml');
  // The bundle is written after the admission is applied: a path that cannot be written stops the command first.
  if (args['bundle-out']) checkWritablePath(args['bundle-out'], '--bundle-out');
  const text = await readDocument(session, args.request!, '--request');
  const request = await withCoreErrors(FLAGS, () => parseImportRequest(text));
  const ref = request.spec.export;
  const context = await chooseContext(session, args.context, '--context', 'Provider context (the cluster that exports)');
  const writer = writerFor(session, context, '--context');
  let provider = await gatherCluster(writer, { namespaces: [ref.namespace], ...gatewayOptions(args) });
  if (!provider.identity.stored) {
    throw new InputError(`context "${context}" has exported nothing yet (it has no federation cluster id), so it cannot admit the request for ${ref.providerClusterId}/${ref.namespace}/${ref.exportName}`, {
      hint: 'check --context: the request must be admitted by the provider cluster it names',
    });
  }
  const planFor = async (attempt: number) => {
    // After a write conflict: the cluster is read again and the admission planned again from the fresh read (the
    // bundle then carries a certificate signed by the CA that is in the cluster now).
    if (attempt > 1) provider = await gatherCluster(writer, { namespaces: [ref.namespace], ...gatewayOptions(args) });
    const record = readExportRecords(provider.snapshot).find((r) => r.namespace === ref.namespace && r.exportName === ref.exportName);
    const address = record ? await readGatewayAddress(writer, provider.snapshot, record.mode === 'boundary' ? 'ingress' : 'eastwest') : undefined;
    if (address) provider = { ...provider, snapshot: { ...provider.snapshot, gatewayAddress: address } };
    const { plan, bundle } = await withCoreErrors(FLAGS, () => admitImportRequest(provider.snapshot, request));
    const work = clusterWork(provider, writer, plan, `provider: admit ${request.spec.consumerClusterId} to export ${ref.namespace}/${ref.exportName}`);
    if (plan.admittedPrincipals && attempt === 1) session.ui.info(`Shared-root export ${ref.namespace}/${ref.exportName} admits the workloads with these identities: ${plan.admittedPrincipals.join(', ')}`);
    return { works: [work], value: bundle };
  };
  const { result, value: bundle } = await applyWithReplan(session, planFor, { dryRun, output, ...printOptions(args), stdoutTaken: args['bundle-out'] === '-', title: `admission of ${request.spec.consumerClusterId}` });
  if (!result.applied) {
    session.ui.info('No bundle was written: the admission is not applied.');
    return;
  }
  const bundleText = await withCoreErrors(FLAGS, () => serializeDocument(bundle));
  writeDocument(session, args['bundle-out']!, bundleText, '--bundle-out');
  if (args['bundle-out'] !== '-') {
    session.ui.info(`Admitted ${request.spec.consumerClusterId} to ${ref.namespace}/${ref.exportName}; wrote the export bundle to ${args['bundle-out']} (no private key).`);
    session.ui.info(`Next: the consumer runs kubectl meshfed import --context ${contextOfCluster(session, request.spec.consumerClusterId)} -n ${request.spec.namespace} --bundle ${args['bundle-out']}`);
  }
}

/** `kubectl meshfed admit`: the provider's step of the three-step flow. */
export const admitCommand: CommandBody<AdmitArgs> = {
  builder: (yargs) =>
    istioNamespaceFlag(mutationOptions(yargs))
      // nargs: 1 makes yargs take "-" (stdin/stdout) as the value instead of a stray argument.
      .option('request', { type: 'string', nargs: 1, describe: 'The import request file from the consumer (- for stdin)' })
      .option('bundle-out', { type: 'string', nargs: 1, describe: 'Where to write the export bundle for the consumer (- for stdout)' })
      .example('kubectl meshfed admit --context production --request request.yaml --bundle-out bundle.yaml', 'Admit a consumer that has no access to this cluster'),
  handler: withSession(admit),
};
