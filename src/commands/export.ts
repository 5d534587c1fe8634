import { InputError, UsageError } from '../errors.js';
import { federationCaFingerprint, FEDERATION_PORT, FederationInputError, GATEWAY_NAMES, isDnsLabel, planExport, subsetChoices, TRUST_MODES, type ExportPlan, type KubeObject, type TrustMode } from '../federation/index.js';
import { exportScope, gatherCluster, type GatherOptions } from '../kube/gather.js';
import type { PodSnapshot, ServiceSnapshot } from '../federation/index.js';
import {
  applyWithReplan, clusterWork, dryRunMode, mutationOptions, parseKeyValues, requireFlags, translateCoreError, waitTimeoutMs, withCoreErrors,
  writerFor, type MutationArgs, printOptions,
} from './federate.js';
import { chooseContext, chooseNamespace, gatewayFlags, gatewayOptions, type GatewayArgs, waitForGateway, waitForGatewayReady } from './shared.js';
import type { Session } from './session.js';
import { withSession } from './run.js';
import type { CommandBody } from './index.js';

interface ExportArgs extends MutationArgs, GatewayArgs {
  service?: string;
  port?: string;
  subset?: string[];
  name?: string;
  mode?: string;
  timeout: string;
  force: boolean;
}

/** How core messages name flags → how `export` spells them. */
const FLAGS = { '--from': '--cluster-id', '--consumer': '--cluster-id' };

function describeService(service: ServiceSnapshot): string {
  return service.ports.map((p) => `${p.port}${p.name ? `/${p.name}` : ''}`).join(', ') || 'no ports';
}

async function exportService(session: Session, args: ExportArgs): Promise<void> {
  const ui = session.ui;
  const output = session.outputFormat(['json', 'yaml', 'name'] as const);
  const dryRun = dryRunMode(args['dry-run']);
  if (args.mode !== undefined && !TRUST_MODES.includes(args.mode as TrustMode)) {
    throw new UsageError(`invalid --mode "${args.mode}"`, { hint: `choose ${TRUST_MODES.join(' or ')}` });
  }
  const subset = parseKeyValues(args.subset, '--subset');
  // Checked before anything is written, though only used after the apply.
  const timeoutMs = waitTimeoutMs(args.timeout);
  if (!ui.interactive) {
    requireFlags([['--service', !args.service], ['--port', !args.port]], 'kubectl meshfed export -n bookinfo --service reviews --port 9080');
  }

  const context = await chooseContext(session, args.context, '--context', 'Provider context (the cluster that exports)');
  const writer = writerFor(session, context, '--context');
  const namespace = await chooseNamespace(session, writer, args.namespace, context, 'Namespace of the Service to export');

  // Named by its flags, the export is read alone (its objects, the shared ones, the records): what it reads does not
  // grow with the cluster's other exports. Chosen at prompts, it is read with everything the prompts offer.
  const named = args.name ?? (ui.interactive ? undefined : args.service);
  const scope = named && isDnsLabel(named) && isDnsLabel(namespace) ? { scope: exportScope(namespace, named) } : {};
  let gatherOptions: GatherOptions = { namespaces: [namespace], ...gatewayOptions(args), addressOf: args.mode === 'shared-root' ? 'eastwest' : 'ingress', ...scope };
  let gathered = await gatherCluster(writer, gatherOptions);
  const services = gathered.snapshot.services.filter((s) => s.namespace === namespace);
  let serviceName = args.service;
  if (!serviceName) {
    const exportable = services.filter((s) => s.selector && Object.keys(s.selector).length > 0 && s.ports.length > 0);
    if (exportable.length === 0) throw new UsageError(`namespace "${namespace}" of context "${context}" has no Service with pods to export (--service)`, { hint: 'choose another namespace with -n' });
    serviceName = await session.prompter.select('--service', 'Service to export', exportable.map((s) => ({ value: s.name, name: `${s.name}  (${describeService(s)})` })));
  }
  const service = services.find((s) => s.name === serviceName);
  let portNumber: number | undefined;
  if (args.port) {
    portNumber = /^\d+$/.test(args.port) ? Number(args.port) : service?.ports.find((p) => p.name === args.port)?.port;
    // Without the Service the core says it was not found (below); a port name it lacks is an input error like a
    // port number it lacks.
    if (portNumber === undefined && service) {
      throw new InputError(`Service ${namespace}/${serviceName} has no port named "${args.port}"; its ports are ${describeService(service)} (--port)`);
    }
  } else if (service) {
    portNumber = await session.prompter.select('--port', `Port of ${serviceName}`, service.ports.map((p) => ({ value: p.port, name: `${p.port}${p.name ? ` (${p.name})` : ''}` })));
  }
  let chosenSubset = subset;
  if (!chosenSubset && !args.subset && ui.interactive && service?.selector) {
    chosenSubset = await askSubset(session, gathered.snapshot.pods ?? [], service);
  }
  const planWith = (name: string | undefined, mode: string | undefined): ExportPlan => planExport(gathered.snapshot, {
    providerContext: context,
    providerClusterId: gathered.identity.clusterId,
    namespace,
    service: serviceName!,
    port: { number: portNumber ?? Number.NaN },
    ...(chosenSubset ? { subset: chosenSubset } : {}),
    ...(name ? { exportName: name } : {}),
    ...(mode ? { mode: mode as TrustMode } : {}),
  }, { allowGatewayMove: args.force });
  // Asked only when a port is known (else the core says what is wrong with the Service first); each answer is checked
  // by the planner as it is given, so a name another Service's export has is refused at the name prompt.
  const asking = ui.interactive && portNumber !== undefined && service !== undefined;
  const exportName = args.name ?? (asking
    ? await session.prompter.input('--name', 'Export name (consumers refer to it)', { default: serviceName, validate: (value) => plannerProblem(() => planWith(value, args.mode), '--name') })
    : undefined);
  let mode = args.mode;
  if (mode === undefined && asking) {
    mode = await askMode(session, TRUST_MODES.filter((candidate) => plannerProblem(() => planWith(exportName, candidate)) === true));
    // The shared-root gateway is the east-west one: its address is read again.
    if (mode === 'shared-root') {
      gatherOptions = { ...gatherOptions, addressOf: 'eastwest' };
      gathered = await gatherCluster(writer, gatherOptions);
    }
  }
  const planFor = async (attempt: number) => {
    // After a write conflict: read the cluster again (the planner is pure: the same inputs on a fresh snapshot).
    if (attempt > 1) gathered = await gatherCluster(writer, gatherOptions);
    const plan = await withCoreErrors(FLAGS, () => {
      const built = planWith(exportName, mode);
      // Planned first, so that the core says what is wrong with the Service (not found, no selector) before --port is asked for.
      if (portNumber === undefined) throw new UsageError('missing value for --port', { hint: 'pass --port' });
      return built;
    });
    const name = `${plan.record.namespace}/${plan.record.exportName}`;
    const work = clusterWork(gathered, writer, plan, `provider: export ${name} (Service ${plan.record.service}:${plan.record.port.number}, ${plan.record.protocol}, ${plan.record.mode})`);
    work.warnings = work.warnings.filter((w) => !w.includes('has no external address yet'));
    return { works: [work], value: plan };
  };
  const first = await planFor(1);
  const title = `export ${first.value.record.namespace}/${first.value.record.exportName}`;
  const { result, works: [work], value: plan } = await applyWithReplan(session, async (attempt) => attempt === 1 ? first : planFor(attempt), {
    dryRun, output, ...printOptions(args), title,
  });
  const name = `${plan.record.namespace}/${plan.record.exportName}`;
  if (!result.applied || !work) return;

  // The gateway gets its address after the apply: wait for it (bounded) so that consumers can import right away.
  let address = gathered.snapshot.gatewayAddress;
  const role = plan.record.mode === 'shared-root' ? 'eastwest' : 'ingress';
  const deployed = work.objects.some((o) => o.kind === 'Deployment' && o.metadata.name === GATEWAY_NAMES[role]);
  if (deployed && timeoutMs > 0 && dryRun === 'none') await waitForGatewayReady(session, writer, GATEWAY_NAMES[role], timeoutMs);
  if (!address && !plan.overlay && timeoutMs > 0) {
    address = await waitForGateway(session, writer, gathered.snapshot.existingGateway ?? GATEWAY_NAMES[role], timeoutMs);
  }
  if (!address) {
    ui.warn(`the federation gateway has no external address yet: consumers can import once its LoadBalancer Service has one (kubectl meshfed status --context ${context})`);
  } else if (!output) {
    ui.info(`Exported ${name}: gateway ${address}:${gathered.snapshot.existingGateway?.port ?? FEDERATION_PORT}, host ${plan.record.host}.`);
    const ca = federationCaFingerprint([...work.objects, ...(gathered.snapshot.existing as KubeObject[])]);
    if (ca) ui.info(`Federation CA of this provider: ${ca} (a consumer importing a bundle compares it: --ca-fingerprint ${ca}).`);
    if (plan.record.consumers.length === 0) {
      ui.info(`Next: in the consumer cluster, kubectl meshfed import --context <consumer> -n <namespace> --from ${context} --export ${name}`);
    }
  }
}

/** One line on what each mode means, for the question. */
const MODE_CHOICES: Record<TrustMode, string> = {
  boundary: 'boundary: gateway-to-gateway mutual TLS with a federation CA; the meshes keep their own roots (works between any meshes)',
  'shared-root': 'shared-root: workloads call each other through the east-west gateway; only for meshes that share a root CA',
};

/** Asks the mode among those the planner accepts (none: boundary, whose error the planner then reports). */
async function askMode(session: Session, possible: TrustMode[]): Promise<TrustMode> {
  if (possible.length === 0) return 'boundary';
  return session.prompter.select('--mode', 'Trust mode', possible.map((value) => ({ value, name: MODE_CHOICES[value] })), 'boundary');
}

/** true when `work` plans, else the planner's message — only for errors about `flag` when one is given. */
function plannerProblem(work: () => unknown, flag?: string): true | string {
  try {
    work();
    return true;
  } catch (error) {
    // An error about another value is reported where it belongs, after the questions.
    if (flag !== undefined && !(error instanceof FederationInputError && error.flag === flag)) return true;
    return (translateCoreError(error, FLAGS) as Error).message;
  }
}

/** Offers the label values that tell the Service's pods apart (e.g. version=v1|v2|v3) as subsets. */
async function askSubset(session: Session, pods: PodSnapshot[], service: ServiceSnapshot): Promise<Record<string, string> | undefined> {
  const choices = subsetChoices(pods, service).map((c) => ({ value: `${c.label}=${c.value}`, name: `${c.label}=${c.value}  (${c.pods} pod(s))` }));
  if (choices.length === 0) return undefined;
  const picked = await session.prompter.select<string>('--subset', 'Subset of the pods to export', [{ value: '', name: 'all pods of the Service' }, ...choices], '');
  return picked ? parseKeyValues(picked, '--subset') : undefined;
}

/** `kubectl meshfed export`: the provider side of an export (see docs/commands.md). */
export const exportCommand: CommandBody<ExportArgs> = {
  builder: (yargs) =>
    gatewayFlags(mutationOptions(yargs))
      .option('service', { type: 'string', describe: 'The Service to export (in -n)' })
      .option('port', { type: 'string', describe: 'Its port, by number or name' })
      .option('subset', { type: 'string', array: true, describe: 'Only pods with this label, e.g. version=v2 (repeatable)' })
      .option('name', { type: 'string', describe: 'Export name consumers refer to (default: the Service name)' })
      .option('mode', { type: 'string', choices: TRUST_MODES as unknown as string[], describe: 'boundary (default: gateway-to-gateway mTLS with a federation CA) or shared-root (meshes share a root CA)' })
      .option('cluster-id', { type: 'string', describe: 'This cluster\'s federation id, the first time meshfed acts here (default: from the context name)' })
      .option('force', { type: 'boolean', default: false, describe: 'Move the export to another gateway even though consumers are admitted (each must import it again)' })
      .option('timeout', { type: 'string', default: '2m', describe: 'How long to wait for the gateway to be ready and get an address (0: do not wait)' })
      .example('kubectl meshfed export --context cluster2 -n bookinfo --service reviews --port 9080 --subset version=v2', 'Export reviews v2 (HTTP)')
      .example('kubectl meshfed export --context production -n db --service postgres --port 5432', 'Export a TCP database')
      .example('kubectl meshfed export --context cluster2 -n bookinfo --service reviews --port 9080 --dry-run -o yaml', 'Print the objects instead of applying them'),
  handler: withSession(exportService),
};
