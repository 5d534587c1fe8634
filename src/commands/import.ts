import { accessSync, constants, readFileSync, statSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { InputError, UsageError } from '../errors.js';
import {
  bundleCredentials, certificateFingerprint, checkLocalName, isDnsLabel, isManaged, checkExchangeDocument, claimedExport, importBeingRekeyed, consumerGatewaySpiffeId, createImportRequest, directCredentials, GATEWAY_NAMES,
  homeNamespaceOf, names, noteClientRenewal, pendingLocalName, requestLocalName, pendingServiceAccounts, providerCaTrust, sameFingerprint, type ProviderCaTrust, planAdmission, planImport, readExportRecords, readSecret, serializeDocument, sharedRootWarnings, verifyBundleForImport,
  type AttachSpec, type ConsumerIdentity, type ExportRef, type ImportCredentials,
} from '../federation/index.js';
import { exportScope, gatherCluster, importScope, readGatewayAddress, requireNamespaces, type GatheredCluster, type GatherOptions } from '../kube/gather.js';
import {
  applyWithReplan, clusterWork, dryRunMode, mutationOptions, parseKeyValues, parseNamespacedName, requireFlags, translateCoreError,
  waitTimeoutMs, withCoreErrors, writerFor, type ClusterWork, type MutationArgs, printOptions,
} from './federate.js';
import { chooseContext, chooseNamespace, contextOfCluster, gatewayFlags, gatewayOptions, type GatewayArgs, waitForGatewayReady } from './shared.js';
import type { Session } from './session.js';
import { withSession } from './run.js';
import type { CommandBody } from './index.js';
import { hintingLocalName } from '../options.js';

/** An export bundle already read by the caller (`rotate --bundle -`: standard input can be read only once). */
export const BUNDLE_TEXT = Symbol('bundle text');

export interface ImportArgs extends MutationArgs, GatewayArgs {
  [BUNDLE_TEXT]?: string;
  from?: string;
  /** `--ca-fingerprint SHA256:…`: the provider federation CA a bundle must carry (trust on first use). */
  'ca-fingerprint'?: string;
  export?: string;
  /** `--name`: the local Service apps call (default: the export name). */
  name?: string;
  attach?: string;
  weight?: number;
  'match-header'?: string;
  'attach-port'?: number;
  'merge-into'?: string;
  'service-account'?: string[];
  'request-out'?: string;
  bundle?: string;
  force: boolean;
  timeout: string;
}

/**
 * How core messages name flags → how `import` spells them (one pass: the core's `--name`, an export's name, is
 * `--export` here, and its `--local-name` is `--name`).
 */
const FLAGS = { '--local-name': '--name', '--header': '--match-header', '--to': '--cluster-id', '--consumer': '--cluster-id', '--export-namespace': '--export', '--name': '--export' };

function attachSpec(args: ImportArgs, exportName: string): AttachSpec | undefined {
  if (args.attach === undefined) {
    if (args.weight !== undefined || args['match-header'] !== undefined || args['merge-into'] !== undefined) {
      throw new UsageError('--weight, --match-header and --merge-into need --attach <local Service>');
    }
    return undefined;
  }
  const service = args.attach || exportName;
  const port = {
    ...(args['attach-port'] !== undefined ? { port: args['attach-port'] } : {}),
    ...(args['merge-into'] !== undefined ? { mergeInto: args['merge-into'] } : {}),
  };
  if (args['match-header'] !== undefined) {
    if (args.weight !== undefined) throw new UsageError('--weight and --match-header exclude each other: split by share or by header');
    const header = parseKeyValues(args['match-header'], '--match-header')!;
    const [name, value] = Object.entries(header)[0]!;
    return { service, header: { name, value }, ...port };
  }
  const weight = args.weight ?? 50;
  if (!Number.isInteger(weight) || weight < 1 || weight > 100) throw new UsageError(`invalid --weight ${args.weight}: a whole percentage from 1 to 100`);
  return { service, weight, ...port };
}

/** `--export` as `<ns>/<name>` (with `--from`) or `<provider cluster id>/<ns>/<name>` (three-step flow). */
function exportRef(args: ImportArgs): { providerClusterId?: string; namespace: string; exportName: string } | undefined {
  if (!args.export) return undefined;
  const parts = args.export.split('/');
  if (parts.length === 3 && parts.every(Boolean)) return { providerClusterId: parts[0]!, namespace: parts[1]!, exportName: parts[2]! };
  const { namespace, name } = parseNamespacedName(args.export, '--export', 'bookinfo/reviews');
  return { namespace, exportName: name };
}

/**
 * Reads an exchange document; `-` is stdin. Standard input is read as a stream: once Node has opened it (the
 * terminal check does), a pipe is non-blocking and a synchronous read of fd 0 fails with EAGAIN before the other
 * side of `admit … --bundle-out - | import … --bundle -` has written.
 */
export async function readDocument(session: Session, path: string, flag: string): Promise<string> {
  if (path === '-') {
    const chunks: Buffer[] = [];
    for await (const chunk of session.ui.io.stdin) chunks.push(typeof chunk === 'string' ? Buffer.from(chunk) : chunk);
    const text = Buffer.concat(chunks).toString('utf8');
    if (!text.trim()) throw new InputError(`${flag} -: standard input is empty`, { hint: `pipe the file in, or pass its path to ${flag}` });
    return text;
  }
  try {
    return readFileSync(path, 'utf8');
  } catch (error) {
    throw new InputError(`cannot read ${flag} ${path}: ${(error as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (error as Error).message}`);
  }
}

/**
 * Checks, before anything is written to a cluster, that an exchange document can be written to `path` later: its
 * directory exists and is writable, and the path is not a directory or a read-only file. (`-` is stdout.)
 * @throws InputError naming the flag and the path
 */
export function checkWritablePath(path: string, flag: string): void {
  if (path === '-') return;
  const fail = (reason: string, hint?: string): never => {
    throw new InputError(`cannot write ${flag} ${path}: ${reason}; nothing was changed`, { hint: hint ?? `choose another path for ${flag}` });
  };
  const directory = dirname(resolve(path));
  let info;
  try {
    info = statSync(directory);
  } catch {
    fail(`directory ${dirname(path) === '.' ? directory : dirname(path)} does not exist`, `create it first (mkdir -p ${dirname(path)}) or choose another path for ${flag}`);
  }
  if (!info!.isDirectory()) fail(`${dirname(path)} is not a directory`);
  try {
    accessSync(directory, constants.W_OK);
  } catch {
    fail(`directory ${dirname(path)} is not writable`);
  }
  let existing;
  try {
    existing = statSync(path);
  } catch {
    return;
  }
  if (existing.isDirectory()) fail('it is a directory');
  try {
    accessSync(path, constants.W_OK);
  } catch {
    fail('the file is not writable');
  }
}

/**
 * stdout carries one kind of document: an exchange document written to `-` and `-o` objects would share it (and
 * `kubectl apply -f -` or the next command of a pipeline would read both).
 */
export function refuseTwoDocuments(output: string | undefined, path: string | undefined, flag: string, document: string, file: string): void {
  if (output === undefined || path !== '-') return;
  throw new UsageError(`${flag} - writes the ${document} to stdout, so -o ${output} cannot print the objects there too`, {
    hint: `write the ${document} to a file (${flag} ${file}) to print the objects with -o ${output}, or leave out -o`,
  });
}

/** Writes an exchange document; `-` is stdout. */
export function writeDocument(session: Session, path: string, text: string, flag: string): void {
  if (path === '-') return session.ui.data(text);
  try {
    writeFileSync(path, text, { mode: 0o644 });
  } catch (error) {
    throw new InputError(`cannot write ${flag} ${path}: ${(error as Error).message}`);
  }
}

/** The import command's handler (rotate runs its exchange-file steps through it). */
export async function importExport(session: Session, args: ImportArgs): Promise<void> {
  const ui = session.ui;
  const output = session.outputFormat(['json', 'yaml', 'name'] as const);
  const dryRun = dryRunMode(args['dry-run']);
  // Only used after the apply, but a malformed value must stop the command before anything is written.
  waitTimeoutMs(args.timeout);
  if (args['request-out'] && args.bundle) throw new UsageError('--request-out and --bundle are two different steps: run them one after the other');
  // Local steps that can fail come before the first cluster write: the request file is written after the key Secret.
  if (args['request-out']) checkWritablePath(args['request-out'], '--request-out');
  refuseTwoDocuments(output, args['request-out'], '--request-out', 'import request', 'request.yaml');
  let ref = exportRef(args);
  if (!ui.interactive) {
    if (args['request-out']) {
      requireFlags([['--from', !ref?.providerClusterId && !args.from], ['--export', !ref]], 'kubectl meshfed import -n default --from cluster2 --export bookinfo/reviews --request-out request.yaml');
    } else if (!args.bundle) {
      requireFlags([['--from', !args.from], ['--export', !ref]], 'kubectl meshfed import --context cluster1 -n default --from cluster2 --export bookinfo/reviews');
    }
  }
  const context = await chooseContext(session, args.context, '--context', 'Consumer context (the cluster that imports)');
  if (ui.interactive && !args['request-out'] && !args.bundle && args.from === undefined) {
    await askRoute(session, args, context);
    ref = exportRef(args);
  }
  const writer = writerFor(session, context, '--context');
  const namespace = await chooseNamespace(session, writer, args.namespace, context, 'Namespace to import into (where apps call it)');
  // The bundle is read before the cluster: in `import --request-out - | admit … | import --bundle -` the pending
  // request this step checks the bundle against exists only once the bundle has come through the pipe.
  const bundleText = args.bundle ? args[BUNDLE_TEXT] ?? await readDocument(session, args.bundle, '--bundle') : undefined;
  // A file that is not a bundle is named as such, before the clusters are read.
  if (bundleText !== undefined) await withCoreErrors(FLAGS, () => checkExchangeDocument(bundleText, 'ExportBundle'));
  const consumerGather: GatherOptions = { namespaces: [namespace], requireNamespaces: true, ...gatewayOptions(args) };
  // A direct import named by its flags reads the consumer once the import is known, for that import alone.
  if (!args['request-out'] && bundleText === undefined && !ui.interactive) {
    await requireNamespaces(writer, [namespace]);
    return importDirect(session, args, undefined, writer, namespace, ref, output, dryRun, consumerGather);
  }
  const consumer = await gatherCluster(writer, consumerGather);

  if (args['request-out']) return requestImport(session, args, consumer, writer, namespace, ref, output, dryRun);
  if (bundleText !== undefined) return completeImport(session, args, bundleText, consumer, writer, namespace, ref, output, dryRun);
  return importDirect(session, args, consumer, writer, namespace, ref, output, dryRun, consumerGather);
}

/**
 * On a terminal without --from, --request-out or --bundle: how the provider is reached. With its context in the
 * kubeconfig, one command does both sides; without (the usual case between teams), the three-step flow: write an
 * import request for the provider to admit, or complete an import with the bundle the provider sent back. The
 * answers fill in the flags they stand for, each checked as it is given.
 */
async function askRoute(session: Session, args: ImportArgs, consumerContext: string): Promise<void> {
  const others = session.kubeconfig().contextNames().filter((name) => name !== consumerContext);
  const route = await session.prompter.select('--from', 'How is the provider reached?', [
    ...(others.length > 0 ? [{ value: 'direct', name: 'its context is in this kubeconfig: admit there and import here in one command' }] : []),
    { value: 'request', name: 'no access to its cluster: write an import request for the provider to admit (step 1 of 3)' },
    { value: 'bundle', name: 'complete an import with the bundle the provider sent (step 3 of 3)' },
  ]);
  const prompter = session.prompter;
  if (route === 'request') {
    if (!exportRef(args)?.providerClusterId && args.from === undefined) {
      args.from = await prompter.input('--from', 'Provider cluster id (as its kubectl meshfed status shows)', {
        validate: (value) => isDnsLabel(value) || 'a cluster id is a DNS label: lower-case letters, digits and "-"',
      });
    }
    if (args.export === undefined) {
      args.export = await prompter.input('--export', 'Export to import (<namespace>/<name>)', { validate: (value) => usageProblem(() => parseNamespacedName(value, '--export', 'bookinfo/reviews')) });
    }
    args['request-out'] = await prompter.input('--request-out', 'Write the import request to', {
      default: 'request.yaml', validate: (value) => usageProblem(() => checkWritablePath(value, '--request-out')),
    });
  } else if (route === 'bundle') {
    args.bundle = await prompter.input('--bundle', 'Export bundle from the provider (file)', { validate: (value) => fileProblem(value) });
  }
}

/** true, or the message of the error `check` throws (for a prompt's validation). */
export function usageProblem(check: () => unknown): true | string {
  try {
    check();
    return true;
  } catch (error) {
    if (error instanceof UsageError || error instanceof InputError) return error.message;
    throw error;
  }
}

/** true when `path` is a readable file, else why not. */
export function fileProblem(path: string): true | string {
  if (!path.trim()) return 'give the path of a file';
  try {
    accessSync(path, constants.R_OK);
    return statSync(path).isFile() ? true : `${path} is not a file`;
  } catch {
    return `cannot read ${path}: no such file, or not readable`;
  }
}

/** A prompt validation of an import's local name: true, or why the name cannot be used (see checkLocalName). */
export function localNameProblem(snapshot: GatheredCluster['snapshot'], namespace: string, source: { providerClusterId: string; namespace: string; exportName: string }) {
  return (value: string): true | string => {
    try {
      checkLocalName(snapshot, namespace, value, source);
      return true;
    } catch (error) {
      const translated = translateCoreError(error, FLAGS);
      if (translated instanceof InputError) return translated.message;
      throw error;
    }
  };
}

type Output = 'json' | 'yaml' | 'name' | undefined;
type DryRunValue = ReturnType<typeof dryRunMode>;

/** Step 1 of 3: a key pair for the egress gateway, stored in this cluster only, and a request file with its CSR. */
async function requestImport(
  session: Session, args: ImportArgs, consumer: GatheredCluster, writer: ReturnType<typeof writerFor>, namespace: string,
  ref: ReturnType<typeof exportRef>, output: Output, dryRun: DryRunValue,
): Promise<void> {
  const providerClusterId = ref?.providerClusterId ?? args.from;
  if (!providerClusterId || !ref) throw new UsageError('missing value for --from or --export', { hint: 'e.g. --from cluster2 --export bookinfo/reviews (the provider\'s cluster id, as its `kubectl meshfed status` shows)' });
  if (ref.providerClusterId && args.from && args.from !== ref.providerClusterId) {
    throw new UsageError(`--from ${args.from} and --export ${args.export} name different providers`);
  }
  const target: ExportRef = { providerClusterId, namespace: ref.namespace, exportName: ref.exportName };
  const snapshot = consumer.snapshot;
  const bindingSecret = snapshot.existing.find((o) => o.kind === 'Secret' && o.metadata.namespace === homeNamespaceOf(snapshot)
    && o.metadata.name === names.binding(target.providerClusterId, target.namespace, target.exportName));
  if (readSecret(bindingSecret)?.['tls.crt'] && !args.force) {
    throw new InputError(`context "${consumer.context}" already imports ${target.providerClusterId}/${target.namespace}/${target.exportName} with an admitted certificate; a new request would replace its key and break it until the new bundle is imported`, {
      hint: 'to renew the certificate anyway, pass --force; to import under another local name, run import --bundle with the bundle you have',
    });
  }
  // The Service the bundle will create must not be someone else's: found now, not after the provider's admin has
  // admitted the request (the read of the cluster holds meshfed's objects only).
  const localName = requestLocalName(snapshot, { namespace, export: target, ...(args.name !== undefined ? { localName: args.name } : {}) });
  const taken = localName && isDnsLabel(localName) ? await writer.get('v1', 'Service', namespace, localName) : undefined;
  if (taken && !isManaged(taken)) {
    throw new InputError(`Service ${namespace}/${localName} already exists in context "${consumer.context}" and is not managed by kubectl-meshfed, so the import cannot take that name; nothing was written`, {
      hint: `pass --name <another local name> (the name apps will call): the bundle will then import under it`,
    });
  }
  const planFor = async (attempt: number) => {
    // After a write conflict: the cluster is read again and the request planned again (with a key of its own).
    if (attempt > 1) consumer = await gatherCluster(writer, { namespaces: [namespace], requireNamespaces: true, ...gatewayOptions(args) });
    const { request, plan } = await withCoreErrors(FLAGS, () => createImportRequest(consumer.snapshot, {
      consumerClusterId: consumer.identity.clusterId,
      namespace,
      ...(args['service-account']?.length ? { serviceAccounts: args['service-account'] } : {}),
      export: target,
      ...(args.name !== undefined ? { localName: args.name } : {}),
    }));
    const work = clusterWork(consumer, writer, plan, `consumer: import request for ${target.providerClusterId}/${target.namespace}/${target.exportName}${localName ? ` as ${namespace}/${localName}` : ''}`);
    return { works: [work], value: request };
  };
  const { result, value: request } = await applyWithReplan(session, planFor, { dryRun, output, ...printOptions(args), stdoutTaken: args['request-out'] === '-', title: 'import request' });
  if (!result.applied) {
    session.ui.info(`No request file was written (${dryRun === 'none' ? 'not applied' : 'dry run'}): its key must be stored in the cluster first.`);
    return;
  }
  const text = await withCoreErrors(FLAGS, () => serializeDocument(request));
  writeDocument(session, args['request-out']!, text, '--request-out');
  if (args['request-out'] !== '-') {
    session.ui.info(`Wrote the import request to ${args['request-out']} (no private key: it stays in Secret ${homeNamespaceOf(snapshot)}/${names.binding(target.providerClusterId, target.namespace, target.exportName)}).`);
    session.ui.info(`Next: give it to the provider, who runs kubectl meshfed admit --context ${contextOfCluster(session, target.providerClusterId)} --request ${args['request-out']} --bundle-out bundle.yaml; then run import --bundle bundle.yaml here.`);
  }
}

/** Step 3 of 3: verify the bundle against the pending request and apply the consumer side. */
/**
 * Trust on first use: a bundle is signed by the CA it carries, so the first bundle of a provider (or one carrying
 * another CA than the one this cluster uses for it) is taken only when the user confirms its fingerprint — on a
 * terminal by answering, else with `--ca-fingerprint` — before anything is written.
 */
async function confirmProviderCa(session: Session, args: ImportArgs, trust: ProviderCaTrust, provider: string): Promise<void> {
  const given = args['ca-fingerprint'];
  const compare = `compare it with the fingerprint kubectl meshfed status --context ${contextOfCluster(session, provider)} (or export) prints on the provider`;
  if (given !== undefined) {
    if (sameFingerprint(given, trust.fingerprint)) return;
    throw new InputError(`the bundle ${args.bundle} carries the federation CA ${trust.fingerprint} for provider ${provider}, not the one --ca-fingerprint names (${given}); nothing was written`, {
      hint: 'the bundle may not come from the provider: ask for it again over a channel you trust, and check the fingerprint with the provider',
    });
  }
  if (trust.status === 'known') return;
  const what = trust.status === 'new'
    ? `this cluster imports from provider ${provider} for the first time: the bundle's federation CA is ${trust.fingerprint}`
    : `the bundle carries another federation CA for provider ${provider} (${trust.fingerprint}) than the one this cluster uses for it (${trust.knownFingerprints.join(', ')})`;
  if (session.ui.interactive) {
    session.ui.info(`${what}; ${compare}.`);
    if (await session.prompter.confirm(`Trust federation CA ${trust.fingerprint} for provider ${provider}?`, false)) return;
    throw new InputError(`federation CA ${trust.fingerprint} of provider ${provider} not confirmed; nothing was written`);
  }
  throw new InputError(`${what}; nothing was written`, {
    hint: `${compare}, then pass --ca-fingerprint ${trust.fingerprint}`,
  });
}

async function completeImport(
  session: Session, args: ImportArgs, text: string, consumer: GatheredCluster, writer: ReturnType<typeof writerFor>, namespace: string,
  ref: ReturnType<typeof exportRef>, output: Output, dryRun: DryRunValue,
): Promise<void> {
  // A request (or any other file) handed to this step is named as such, not looked up as an unknown export.
  await withCoreErrors(FLAGS, () => checkExchangeDocument(text, 'ExportBundle'));
  const snapshot = consumer.snapshot;
  const target = claimedExport(text).export;
  if (ref && (ref.namespace !== target.namespace || ref.exportName !== target.exportName || (ref.providerClusterId && ref.providerClusterId !== target.providerClusterId))) {
    throw new InputError(`the bundle ${args.bundle} is for export ${target.providerClusterId}/${target.namespace}/${target.exportName}, not ${args.export}`);
  }
  if (args.from && args.from !== target.providerClusterId) throw new InputError(`the bundle ${args.bundle} comes from provider ${target.providerClusterId}, not ${args.from} (--from)`);
  const verified = await withCoreErrors(FLAGS, () => verifyBundleForImport(snapshot, text, { consumerClusterId: consumer.identity.clusterId }));
  if (!verified) {
    throw new InputError(`context "${consumer.context}" has no pending import request for ${target.providerClusterId || '?'}/${target.namespace || '?'}/${target.exportName || '?'}, so the bundle ${args.bundle} cannot be checked against it`, {
      hint: 'run kubectl meshfed import … --request-out request.yaml in this cluster first, and have the provider admit that request',
    });
  }
  const { bundle, privateKeyPem } = verified;
  await confirmProviderCa(session, args, providerCaTrust(snapshot, bundle.spec.endpoint.providerClusterId, bundle.spec.federationCaPem), bundle.spec.endpoint.providerClusterId);

  const endpoint = bundle.spec.endpoint;
  const credentials: ImportCredentials | undefined = endpoint.mode === 'boundary' && privateKeyPem ? bundleCredentials(bundle, privateKeyPem) : undefined;
  // A bundle answering a re-keying request (--request-out --force) completes the import it re-keys: same local name,
  // accounts and attach split, unless flags say otherwise.
  const rekeyed = await withCoreErrors(FLAGS, () => importBeingRekeyed(snapshot, target, namespace, args.name));
  // The name the request was made for (import --name … --request-out) holds unless --name says otherwise.
  const requested = pendingLocalName(snapshot, target);
  const localName = args.name ?? rekeyed?.localName ?? requested
    ?? (session.ui.interactive ? await session.prompter.input('--name', 'Local name apps will call', { default: endpoint.exportName, validate: localNameProblem(snapshot, namespace, endpoint) }) : undefined);
  const attach = attachSpec(args, endpoint.exportName) ?? rekeyed?.attach;
  const planFor = async (attempt: number) => {
    // After a write conflict: the cluster is read again and the import planned again from the fresh read.
    const read = attempt === 1 ? snapshot : (consumer = await gatherCluster(writer, { namespaces: [namespace], requireNamespaces: true, ...gatewayOptions(args) })).snapshot;
    // The accounts that may call the import: --service-account, else those of the import being re-keyed, else
    // (shared-root) the accounts the request asked the provider to admit, recorded with the import so that verify
    // probes as one of them. Boundary mode without any admits every workload of the namespace at the egress gateway.
    const admittedAccounts = args['service-account']?.length ? args['service-account'] : rekeyed ? rekeyed.serviceAccounts
      : endpoint.mode === 'shared-root' ? pendingServiceAccounts(read, target) : undefined;
    const plan = await withCoreErrors(FLAGS, () => planImport(read, { endpoint, ...(credentials ? { credentials } : {}) }, {
      consumerClusterId: consumer.identity.clusterId,
      namespace,
      ...(admittedAccounts?.length ? { serviceAccounts: admittedAccounts } : {}),
      ...(localName ? { localName } : {}),
      ...(attach ? { attach } : {}),
    }));
    const work = clusterWork(consumer, writer, plan, `consumer: import ${endpoint.providerClusterId}/${endpoint.namespace}/${endpoint.exportName} as ${plan.record.namespace}/${plan.record.localName}`);
    if (endpoint.mode === 'shared-root') {
      work.warnings.push(...sharedRootWarnings(read, {
        providerClusterId: endpoint.providerClusterId, providerRootCaFingerprint: bundle.spec.providerRootCaFingerprint, namespace,
        ...(admittedAccounts?.length ? { serviceAccounts: admittedAccounts } : {}),
      }));
    }
    const injection = await injectionWarning(writer, namespace);
    if (injection) work.warnings.push(injection);
    return { works: [work], value: plan };
  };
  const first = await planFor(1);
  const { result, works: [work], value: plan } = await applyWithReplan(session, async (attempt) => attempt === 1 ? first : planFor(attempt), {
    dryRun, output, ...printOptions(args), title: `import ${first.value.record.namespace}/${first.value.record.localName}`,
  });
  if (result.applied) await waitForEgress(session, work!, args);
  if (result.applied) await requireEgressGateway(work!, plan.record.endpoint.mode);
  if (result.applied && !output) announce(session, plan.localHost, plan.record.endpoint.port.number, plan.record.endpoint.protocol);
}

/** Waits for the egress gateway meshfed deploys for boundary imports, when it is part of the plan. */
async function waitForEgress(session: Session, work: ClusterWork, args: ImportArgs): Promise<void> {
  const timeoutMs = waitTimeoutMs(args.timeout);
  const deployed = work.objects.some((o) => o.kind === 'Deployment' && o.metadata.name === GATEWAY_NAMES.egress);
  if (deployed && timeoutMs > 0) await waitForGatewayReady(session, work.writer, GATEWAY_NAMES.egress, timeoutMs);
}

/**
 * A boundary import works only once an egress gateway runs where its Gateway objects select one. When meshfed could
 * not deploy it (Istio < 1.12: the IstioOperator overlay is for the operator to install) and no such gateway pod
 * exists, the import is applied but cannot carry traffic yet: said, with a non-zero exit, instead of "Imported".
 */
async function requireEgressGateway(work: ClusterWork, mode: string): Promise<void> {
  if (mode !== 'boundary') return;
  const snapshot = work.gathered.snapshot;
  const gateway = work.objects.find((o) => o.kind === 'Gateway' && o.metadata.labels?.['meshfed.io/role'] === 'binding');
  const selector = (gateway?.spec as { selector?: Record<string, string> } | undefined)?.selector;
  if (!gateway || !selector) return;
  const namespace = gateway.metadata.namespace!;
  const pods = await work.writer.list('v1', 'Pod', namespace, Object.entries(selector).map(([k, v]) => `${k}=${v}`).join(','));
  if (pods.length > 0) return;
  const how = work.overlay
    ? `install it with the IstioOperator overlay (kubectl meshfed import … --dry-run -o yaml prints it; istioctl install -f <file>), Istio ${snapshot.istioVersion} cannot deploy it by injection`
    : 'deploy a gateway with those labels there, or choose an existing one with --gateway-selector';
  throw new InputError(`the import is applied but cannot work yet: no egress gateway pod labelled ${Object.entries(selector).map(([k, v]) => `${k}=${v}`).join(',')} runs in namespace ${namespace}`, {
    hint: `${how}; then kubectl meshfed verify checks the path`,
  });
}

/**
 * Apps reach an import through their sidecars (the local Service has no endpoints of its own): said at import time
 * when the namespace does not inject them, since nothing else fails until the first call (verify: MF0105).
 */
async function injectionWarning(writer: ReturnType<typeof writerFor>, namespace: string): Promise<string | undefined> {
  const labels = (await writer.get('v1', 'Namespace', undefined, namespace))?.metadata.labels ?? {};
  if (labels['istio-injection'] === 'enabled' || (labels['istio.io/rev'] && labels['istio-injection'] !== 'disabled')) return undefined;
  return `namespace ${namespace} does not inject Istio sidecars (label istio-injection=enabled or istio.io/rev): its apps reach the import only ` +
    'from pods with a sidecar (label the namespace and restart them, or give the pods sidecar.istio.io/inject: "true")';
}

function announce(session: Session, host: string, port: number, protocol: string): void {
  const short = host.replace(/\.svc\.cluster\.local$/, '');
  session.ui.info(protocol === 'HTTP'
    ? `Imported: apps in the mesh call http://${short}:${port}/`
    : `Imported: apps in the mesh connect to ${short}:${port}`);
}

/** With both contexts: admit on the provider and apply the consumer side, in one command. */
async function importDirect(
  session: Session, args: ImportArgs, early: GatheredCluster | undefined, writer: ReturnType<typeof writerFor>, namespace: string,
  ref: ReturnType<typeof exportRef>, output: Output, dryRun: DryRunValue, consumerOptions: GatherOptions,
): Promise<void> {
  const providerContext = await chooseContext(session, args.from, '--from', 'Provider context (the cluster that exports)', writer.contextName);
  if (providerContext === writer.contextName) throw new UsageError(`--from "${providerContext}" is the consumer context itself: import from another cluster`);
  const providerWriter = writerFor(session, providerContext, '--from');
  const exportScoped = (target: { namespace: string; exportName: string }) => isDnsLabel(target.namespace) && isDnsLabel(target.exportName) ? { scope: exportScope(target.namespace, target.exportName) } : {};
  let provider = await gatherCluster(providerWriter, { namespaces: ref ? [ref.namespace] : [], istioNamespace: args['istio-namespace'], ...(ref ? exportScoped(ref) : {}) });
  const records = readExportRecords(provider.snapshot);
  let target = ref;
  if (!target) {
    if (records.length === 0) throw new InputError(`context "${providerContext}" exports nothing yet`, { hint: `run kubectl meshfed export --context ${providerContext} first` });
    const chosen = await session.prompter.select('--export', `Export of ${providerContext} to import`, records.map((r) => ({
      value: `${r.namespace}/${r.exportName}`, name: `${r.namespace}/${r.exportName}  (Service ${r.service}:${r.port.number}, ${r.protocol}, ${r.mode})`,
    })));
    target = { namespace: chosen.split('/')[0]!, exportName: chosen.split('/')[1]! };
    provider = await gatherCluster(providerWriter, { namespaces: [target.namespace], istioNamespace: args['istio-namespace'], ...exportScoped(target) });
  }
  if (target.providerClusterId && target.providerClusterId !== provider.identity.clusterId) {
    throw new UsageError(`--export names provider ${target.providerClusterId}, but context "${providerContext}" is cluster ${provider.identity.clusterId}`);
  }
  const record = records.find((r) => r.namespace === target!.namespace && r.exportName === target!.exportName);
  if (!record) {
    // A read scoped to the export has the records of some exports only: the message names them all.
    const all = readExportRecords((await gatherCluster(providerWriter, { namespaces: [], istioNamespace: args['istio-namespace'] })).snapshot);
    const known = all.map((r) => `${r.namespace}/${r.exportName}`).join(', ') || 'none';
    throw new InputError(`export ${target.namespace}/${target.exportName} does not exist in context "${providerContext}" (exports: ${known})`, {
      hint: `export it first: kubectl meshfed export --context ${providerContext} -n ${target.namespace} --service <service> --port <port> --name ${target.exportName}`,
    });
  }
  const binding = { providerClusterId: provider.identity.clusterId, namespace: record.namespace, exportName: record.exportName };
  const localName = args.name ?? (session.ui.interactive && early ? await session.prompter.input('--name', 'Local name apps will call', {
    default: record.exportName, validate: localNameProblem(early.snapshot, namespace, binding),
  }) : undefined);
  // The import's own objects, its binding's (shared with other imports of the export) and the shared ones.
  const imported = localName ?? record.exportName;
  const consumerGather: GatherOptions = { ...consumerOptions, ...(isDnsLabel(imported) ? { scope: importScope(namespace, imported, binding) } : {}) };
  let consumer = early ?? await gatherCluster(writer, { ...consumerGather, requireNamespaces: false });
  const providerGather = { namespaces: [target.namespace], istioNamespace: args['istio-namespace'], ...exportScoped(target) };
  const planFor = async (attempt: number) => {
    if (attempt > 1) {
      // After a write conflict: both clusters are read again and both sides planned again from the fresh reads.
      [consumer, provider] = await Promise.all([gatherCluster(writer, consumerGather), gatherCluster(providerWriter, providerGather)]);
    }
    return planDirect(session, args, consumer, writer, provider, providerWriter, target!, namespace, localName);
  };
  const first = await planFor(1);
  const { result, works, value: { consumerPlan, endpoint } } = await applyWithReplan(session, async (attempt) => attempt === 1 ? first : planFor(attempt), {
    dryRun, output, ...printOptions(args), title: `import ${first.value.consumerPlan.record.namespace}/${first.value.consumerPlan.record.localName}`,
  });
  if (result.applied) await waitForEgress(session, works[1]!, args);
  if (result.applied) await requireEgressGateway(works[1]!, endpoint.mode);
  if (result.applied && !output) announce(session, consumerPlan.localHost, endpoint.port.number, endpoint.protocol);
}

/**
 * The provider's admission and the consumer's import, planned from one read of each cluster (pure planners; the
 * only reads here are the gateway's address and the namespace's injection label).
 */
async function planDirect(
  session: Session, args: ImportArgs, consumer: GatheredCluster, writer: ReturnType<typeof writerFor>, providerRead: GatheredCluster,
  providerWriter: ReturnType<typeof writerFor>, target: { namespace: string; exportName: string }, namespace: string, localName: string | undefined,
) {
  let provider = providerRead;
  const providerContext = provider.context;
  const record = readExportRecords(provider.snapshot).find((r) => r.namespace === target.namespace && r.exportName === target.exportName);
  if (!record) {
    throw new InputError(`export ${target.namespace}/${target.exportName} no longer exists in context "${providerContext}"`, {
      hint: 'it was removed while this import ran: ask the provider, then import again',
    });
  }
  const address = await readGatewayAddress(providerWriter, provider.snapshot, record.mode === 'boundary' ? 'ingress' : 'eastwest');
  if (!address) {
    throw new InputError(`the federation gateway of context "${providerContext}" has no external address yet, so this cluster cannot reach it`, {
      hint: `wait for its LoadBalancer address (kubectl meshfed status --context ${providerContext}) and run import again`,
    });
  }
  provider = { ...provider, snapshot: { ...provider.snapshot, gatewayAddress: address } };

  const consumerSnapshot = consumer.snapshot;
  const home = homeNamespaceOf(consumerSnapshot);
  const spiffeId = consumerGatewaySpiffeId(consumer.identity.clusterId, home, GATEWAY_NAMES.egress);
  const identity: ConsumerIdentity = {
    clusterId: consumer.identity.clusterId,
    gatewaySpiffeId: spiffeId,
    trustDomain: consumerSnapshot.trustDomain ?? 'cluster.local',
    namespace,
    serviceAccounts: args['service-account']?.length ? [...args['service-account']] : ['default'],
  };
  const providerPlan = await withCoreErrors(FLAGS, () => planAdmission(provider.snapshot, { namespace: record.namespace, exportName: record.exportName, consumer: identity }));
  if (!providerPlan.endpoint) throw new InputError(`the federation gateway of context "${providerContext}" has no external address yet`);
  const endpoint = providerPlan.endpoint;

  const issued = endpoint.mode === 'boundary'
    ? await withCoreErrors(FLAGS, () => directCredentials(consumerSnapshot, providerPlan, { consumerClusterId: consumer.identity.clusterId, spiffeId, endpoint }))
    : undefined;
  const credentials = issued ? { certificatePem: issued.certificatePem, privateKeyPem: issued.privateKeyPem, caCertificatePem: issued.caCertificatePem } : undefined;
  // During a CA rotation a new certificate comes from the next CA: the provider notes it (rotate --ca --finish checks).
  if (issued?.renewed) noteClientRenewal(providerPlan, consumer.identity.clusterId);
  const attach = attachSpec(args, record.exportName);
  const consumerPlan = await withCoreErrors(FLAGS, () => planImport(consumerSnapshot, { endpoint, ...(credentials ? { credentials } : {}) }, {
    consumerClusterId: consumer.identity.clusterId,
    namespace,
    // Shared-root: the admitted accounts (verify probes as one of them); boundary: only the ones named, else every
    // workload of the namespace may call the import.
    ...(endpoint.mode === 'shared-root' || args['service-account']?.length ? { serviceAccounts: identity.serviceAccounts ?? ['default'] } : {}),
    ...(localName ? { localName } : {}),
    ...(attach ? { attach } : {}),
  }));
  const exportName = `${record.namespace}/${record.exportName}`;
  const works: ClusterWork[] = [
    clusterWork(provider, providerWriter, providerPlan, `provider: admit ${consumer.identity.clusterId} to export ${exportName}`),
    clusterWork(consumer, writer, consumerPlan, `consumer: import ${exportName} as ${consumerPlan.record.namespace}/${consumerPlan.record.localName}`),
  ];
  works[0]!.warnings = works[0]!.warnings.filter((w) => !w.includes('has no external address yet'));
  const injection = await injectionWarning(writer, namespace);
  if (injection) works[1]!.warnings.push(injection);
  if (record.mode === 'shared-root') {
    works[1]!.warnings.push(...sharedRootWarnings(consumerSnapshot, {
      providerClusterId: provider.identity.clusterId,
      providerRootCaFingerprint: provider.snapshot.rootCaPem && certificateFingerprint(provider.snapshot.rootCaPem),
      namespace,
      serviceAccounts: identity.serviceAccounts,
    }));
  }
  if (providerPlan.admittedPrincipals) session.ui.info(`Shared-root export ${exportName} admits the workloads with these identities: ${providerPlan.admittedPrincipals.join(', ')}`);
  return { works, value: { consumerPlan, endpoint } };
}

/** `kubectl meshfed import`: the consumer side, with both contexts or in three steps with files (see docs/commands.md). */
export const importCommand: CommandBody<ImportArgs> = {
  builder: (yargs) =>
    gatewayFlags(mutationOptions(yargs))
      .option('from', { type: 'string', describe: 'The provider: its kubeconfig context (or, with --request-out, its cluster id)' })
      .option('export', { type: 'string', describe: 'The export: <namespace>/<name> (or <provider cluster id>/<namespace>/<name>)' })
      // --name, as kubectl expose names the Service it creates (--as impersonates, as in kubectl).
      .option('name', { type: 'string', describe: 'Local Service name apps call (default: the export name)' })
      .option('attach', { type: 'string', describe: 'Send part of an existing local Service\'s traffic to the import (default Service: the export name)' })
      .option('weight', { type: 'number', describe: 'With --attach: percentage of the traffic for the import (default 50)' })
      .option('match-header', { type: 'string', describe: 'With --attach: only requests with this header, e.g. x-federate=yes (HTTP)' })
      .option('attach-port', { type: 'number', describe: 'With --attach: the local Service port, when it has several' })
      .option('merge-into', { type: 'string', describe: 'With --attach: fold the split into your VirtualService <namespace>/<name> that already routes the Service (it wins over meshfed\'s)' })
      .option('service-account', { type: 'string', array: true, describe: 'Service accounts of the calling workloads: only they may use the import (default: every workload of the namespace; shared-root: default)' })
      // nargs: 1 makes yargs take "-" (stdin/stdout) as the value instead of a stray argument.
      .option('request-out', { type: 'string', nargs: 1, describe: 'Three-step flow, step 1: write an import request file for the provider (- for stdout)' })
      .option('ca-fingerprint', { type: 'string', nargs: 1, describe: 'With --bundle: the SHA-256 fingerprint of the provider\'s federation CA, as the provider\'s export or status prints it (SHA256:AB:CD:…); required without a terminal when the provider is new to this cluster or its CA changed' })
      .option('bundle', { type: 'string', nargs: 1, describe: 'Three-step flow, step 3: complete the import with the provider\'s export bundle (- for stdin)' })
      .option('cluster-id', { type: 'string', describe: 'This cluster\'s federation id, the first time meshfed acts here (default: from the context name)' })
      .option('timeout', { type: 'string', default: '2m', describe: 'How long to wait for the egress gateway to be ready (0: do not wait)' })
      .option('force', { type: 'boolean', default: false, describe: 'With --request-out: make a new request even though the export is already imported (re-keys it)' })
      .example('kubectl meshfed import --context cluster1 -n default --from cluster2 --export bookinfo/reviews --name myreviews', 'Import with access to both clusters')
      .example('kubectl meshfed import --context cluster1 -n default --from cluster2 --export bookinfo/reviews --name myreviews --attach reviews --weight 50', 'Send half of reviews\' traffic to the import')
      .example('kubectl meshfed import --context cluster1 -n default --from cluster2 --export bookinfo/reviews --attach reviews --weight 20 --merge-into default/reviews', 'Fold the split into your own VirtualService of reviews')
      .example('kubectl meshfed import --context cluster1 -n default --from cluster2 --export bookinfo/reviews --service-account productpage', 'Only productpage\'s workloads may call the import')
      .example('kubectl meshfed import --context operations -n vault --from production --export db/postgres --request-out request.yaml', 'Three-step flow, step 1 (no access to the provider)')
      .example('kubectl meshfed import --context operations -n vault --bundle bundle.yaml', 'Three-step flow, step 3'),
  handler: withSession(hintingLocalName(importExport)),
};
