/**
 * What the mutating commands (export, import, admit, unexport, unimport, revoke) share: flag parsing, turning the
 * core's errors into the CLI's, and the apply pipeline — diff every cluster before the first write, show the plan,
 * print or dry-run it, confirm, then apply cluster by cluster and prune what is no longer planned.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Argv } from 'yargs';
import { ClusterError, InputError, MeshfedError, UsageError } from '../errors.js';
import { BundleError, FederationInputError, objectKey as coreKey, REMOVING_ANNOTATION, type ClusterPlan, type KubeObject as CoreObject } from '../federation/index.js';
import { ClusterWriter, WriteConflictError, type Change } from '../kube/apply.js';
import type { GatheredCluster } from '../kube/gather.js';
import { describeObject, objectKey, type KubeObject } from '../kube/resources.js';
import { formatNames, formatObjects, type OutputFormat } from '../ui/format.js';
import { hasChanges, renderPlan, summarise, type ClusterPlanView, type PlanLine } from '../ui/plan.js';
import { startProgress } from '../ui/progress.js';
import type { GlobalArgs, Session } from './session.js';
import { PkiError } from '../pki/index.js';
import { parseDuration } from '../options.js';

/** Flags of every command that changes a cluster. */
export interface MutationArgs extends GlobalArgs {
  /** `--dry-run[=client|server]`: '' when given without a value. */
  'dry-run'?: string;
  /** `--show-secrets`: include Secrets holding private keys in `-o` output. */
  'show-secrets': boolean;
  /** `--only provider|consumer|CONTEXT`: the one cluster whose objects `-o` prints. */
  only?: string;
  /** `--output-dir DIR`: `-o` writes each cluster's objects to `DIR/<context>.<yaml|json|txt>` instead of stdout. */
  'output-dir'?: string;
}

/** Adds `--dry-run` and `--show-secrets` to a command. */
export function mutationOptions<T>(yargs: Argv<T>) {
  return yargs
    .option('dry-run', {
      type: 'string',
      describe: 'Change nothing: "client" (default when given without a value) computes the plan locally, "server" also has the API servers validate every object',
    })
    .option('show-secrets', { type: 'boolean', default: false, describe: 'Include Secrets holding private keys in -o output (they are left out by default)' })
    .option('only', { type: 'string', nargs: 1, describe: 'With -o: print the objects of one cluster only: provider, consumer or its context name (required with -o when the command acts on two clusters, unless --output-dir)' })
    .option('output-dir', { type: 'string', nargs: 1, describe: 'With -o: write each cluster\'s objects to DIR/<context>.yaml (or .json, .txt for -o name) instead of stdout' });
}

/** What of {@link RunOptions} comes from the flags of {@link mutationOptions}. */
export function printOptions(args: MutationArgs): Pick<RunOptions, 'showSecrets' | 'only' | 'outputDir'> {
  return {
    showSecrets: args['show-secrets'],
    ...(args.only !== undefined ? { only: args.only } : {}),
    ...(args['output-dir'] !== undefined ? { outputDir: args['output-dir'] } : {}),
  };
}

/** How a command should treat `--dry-run`. */
export type DryRun = 'none' | 'client' | 'server';

/** `--dry-run` → mode; kubectl's spellings (`--dry-run`, `--dry-run=client|server|none`). */
export function dryRunMode(value: string | undefined): DryRun {
  if (value === undefined || value === 'none' || value === 'false') return 'none';
  if (value === '' || value === 'client' || value === 'true') return 'client';
  if (value === 'server') return 'server';
  throw new UsageError(`invalid --dry-run value "${value}"`, { hint: 'use --dry-run, --dry-run=client or --dry-run=server' });
}

/** `k=v` values (repeatable flag, each may also be comma-separated) → a map. */
export function parseKeyValues(values: readonly string[] | string | undefined, flag: string): Record<string, string> | undefined {
  if (values === undefined) return undefined;
  const list = (Array.isArray(values) ? values : [values]).flatMap((v) => String(v).split(',')).map((v) => v.trim()).filter(Boolean);
  if (list.length === 0) return undefined;
  const out: Record<string, string> = {};
  for (const item of list) {
    const eq = item.indexOf('=');
    if (eq <= 0) throw new UsageError(`invalid ${flag} "${item}": expected key=value, e.g. ${flag} version=v2`);
    out[item.slice(0, eq)] = item.slice(eq + 1);
  }
  return out;
}

/** `<namespace>/<name>` (the `--export` form) → parts. */
export function parseNamespacedName(value: string, flag: string, example: string): { namespace: string; name: string } {
  const parts = value.split('/');
  if (parts.length !== 2 || !parts[0] || !parts[1]) {
    throw new UsageError(`invalid ${flag} "${value}": expected <namespace>/<name>, e.g. ${flag} ${example}`);
  }
  return { namespace: parts[0], name: parts[1] };
}

/** Throws one usage error naming every missing flag (without a terminal nothing is asked). */
export function requireFlags(missing: Array<[string, boolean]>, example: string): void {
  const names = missing.filter(([, absent]) => absent).map(([flag]) => flag);
  if (names.length === 0) return;
  throw new UsageError(`missing value${names.length > 1 ? 's' : ''} for ${names.join(', ')}`, {
    hint: `pass ${names.length > 1 ? 'them' : 'it'} (e.g. ${example}), or run in a terminal to be asked`,
  });
}

const BUNDLE_HINTS: Partial<Record<BundleError['code'], string>> = {
  expired: 'ask the other side for a new file',
  'bad-signature': 'the file was changed after it was made: ask the other side for a new one',
  foreign: 'check that the file is meant for this cluster and export',
  'key-mismatch': 'ask the provider to admit the latest import request of this cluster',
  'contains-private-key': 'discard the file: kubectl-meshfed never puts private keys in exchange files',
};

/**
 * Runs `work`, turning errors of the pure core (which does not know the CLI's error classes) into the CLI's:
 * input errors (exit 1) that name the flag as this command spells it.
 */
export async function withCoreErrors<T>(flagNames: Record<string, string>, work: () => Promise<T> | T): Promise<T> {
  try {
    return await work();
  } catch (error) {
    throw translateCoreError(error, flagNames);
  }
}

/** See {@link withCoreErrors}. */
export function translateCoreError(error: unknown, flagNames: Record<string, string> = {}): unknown {
  if (error instanceof MeshfedError) return error;
  const rename = (text: string) => text.replace(/--[a-z-]+/g, (flag) => flagNames[flag] ?? flag);
  if (error instanceof FederationInputError) return new InputError(rename(error.message), { cause: error });
  if (error instanceof BundleError) return new InputError(rename(error.message), { cause: error, hint: BUNDLE_HINTS[error.code] });
  if (error instanceof PkiError) return new InputError(error.message, { cause: error });
  return error;
}

/** What one command does in one cluster: desired objects, deletions, and what to tell the user. */
export interface ClusterWork {
  gathered: GatheredCluster;
  writer: ClusterWriter;
  /** e.g. "provider: export bookinfo/reviews". */
  role: string;
  /** Desired objects, in dependency order. */
  objects: KubeObject[];
  /** Live meshfed objects to delete (explicit removals and stale objects of this export/import). */
  deletions: KubeObject[];
  warnings: string[];
  /** `namespace/name` of Secrets holding private keys. */
  secretsWithPrivateKeys: string[];
  overlay?: KubeObject;
  /** Objects meshfed does not manage that the user allowed it to change (`--merge-into`), by `Kind/namespace/name`. */
  consented: string[];
  /** Filled in by {@link diffAll}. */
  changes?: Change[];
}

function matchesSelector(object: CoreObject, selector: Record<string, string>): boolean {
  return Object.entries(selector).every(([k, v]) => object.metadata.labels?.[k] === v);
}

/**
 * The work of a core plan in a gathered cluster: the plan's objects (after the objects that store the cluster id,
 * the first time), and as deletions the live objects it removes plus those its prune specs select that are no
 * longer planned — found in the snapshot, which already holds every meshfed object, so pruning costs no request.
 */
export function clusterWork(gathered: GatheredCluster, writer: ClusterWriter, plan: ClusterPlan, role: string, extra: { objects?: KubeObject[]; deletions?: KubeObject[] } = {}): ClusterWork {
  const objects: KubeObject[] = [];
  const seen = new Set<string>();
  for (const object of [...gathered.identity.objects, ...(plan.objects as KubeObject[]), ...(extra.objects ?? [])]) {
    const key = objectKey(object);
    if (seen.has(key)) continue;
    seen.add(key);
    objects.push(object);
  }
  const existing = gathered.snapshot.existing;
  const deletions = new Map<string, KubeObject>();
  for (const ref of plan.remove) {
    const live = existing.find((o) => o.kind === ref.kind && o.metadata.name === ref.name && (o.metadata.namespace ?? undefined) === (ref.namespace ?? undefined));
    if (live) deletions.set(coreKey(live), live as KubeObject);
  }
  for (const spec of plan.prune) {
    const keep = new Set(spec.keep ?? []);
    const kinds = new Set(spec.kinds.map((k) => k.kind));
    for (const live of existing) {
      if (!kinds.has(live.kind) || !matchesSelector(live, spec.selector) || keep.has(coreKey(live))) continue;
      deletions.set(coreKey(live), live as KubeObject);
    }
  }
  for (const object of extra.deletions ?? []) deletions.set(coreKey(object), object);
  for (const key of seen) {
    // Never delete what is planned (prune specs list only their own label's objects as kept).
    for (const [deleteKey, object] of deletions) if (objectKey(object) === key) deletions.delete(deleteKey);
  }
  return {
    gathered, writer, role, objects,
    deletions: [...deletions.values()],
    warnings: [...plan.warnings],
    secretsWithPrivateKeys: [...plan.secretsWithPrivateKeys],
    consented: [...(plan.consented ?? [])],
    ...(plan.overlay ? { overlay: plan.overlay as KubeObject } : {}),
  };
}

/** Diffs every cluster's objects against the live ones (reads only); refuses foreign objects before any write. */
export async function diffAll(works: readonly ClusterWork[]): Promise<void> {
  await Promise.all(works.map(async (work) => {
    work.changes = await work.writer.diff(work.objects, { known: work.gathered.snapshot.existing as KubeObject[], consented: work.consented });
  }));
}

/** The plan as shown to the user. */
export function planViews(works: readonly ClusterWork[]): ClusterPlanView[] {
  return works.map((work) => {
    const lines: PlanLine[] = (work.changes ?? []).map((change) => ({
      action: change.action, kind: change.object.kind, name: change.object.metadata.name,
      ...(change.object.metadata.namespace ? { namespace: change.object.metadata.namespace } : {}),
    }));
    for (const object of work.deletions) {
      lines.push({ action: 'delete', kind: object.kind, name: object.metadata.name, ...(object.metadata.namespace ? { namespace: object.metadata.namespace } : {}) });
    }
    return { context: work.gathered.context, clusterId: work.gathered.identity.clusterId, role: work.role, lines };
  });
}

function isPrivateKeySecret(work: ClusterWork, object: KubeObject): boolean {
  return object.kind === 'Secret' && work.secretsWithPrivateKeys.includes(`${object.metadata.namespace ?? ''}/${object.metadata.name}`);
}

/** `provider` or `consumer`: the side a cluster plays in a command (from {@link ClusterWork.role}). */
function sideOf(work: ClusterWork): string {
  return work.role.slice(0, work.role.indexOf(':'));
}

/**
 * The clusters whose objects `-o` prints: every one with `--output-dir` (a file each), the one `--only` names, or
 * the only one. Objects of two clusters are never written to one stream: piped into `kubectl apply`, the provider's
 * Gateway and policy would land in the consumer's cluster.
 */
export function selectPrinted(works: readonly ClusterWork[], options: Pick<RunOptions, 'output' | 'only' | 'outputDir'>): ClusterWork[] {
  const flag = options.output ? `-o ${options.output}` : '-o';
  const choices = works.flatMap((w) => [sideOf(w), w.gathered.context]);
  if (options.only !== undefined) {
    const chosen = works.filter((w) => sideOf(w) === options.only || w.gathered.context === options.only);
    if (chosen.length !== 1) {
      throw new UsageError(`--only "${options.only}" names none of the clusters this command acts on`, { hint: `use --only ${[...new Set(choices)].join('|')}` });
    }
    if (options.outputDir !== undefined) throw new UsageError('--only and --output-dir cannot be combined', { hint: '--output-dir writes a file per cluster; --only prints one cluster to stdout' });
    return chosen;
  }
  if (options.outputDir !== undefined || works.length <= 1) return [...works];
  throw new UsageError(`${flag} would write the objects of ${works.length} clusters (${works.map((w) => `${sideOf(w)} ${w.gathered.context}`).join(', ')}) into one stream, which cannot be applied with one --context`, {
    hint: `choose one with --only ${works.map(sideOf).join('|')} (e.g. --only ${sideOf(works[works.length - 1]!)} | kubectl --context ${works[works.length - 1]!.gathered.context} apply -f -), or write one file per context with --output-dir DIR`,
  });
}

/**
 * The objects `-o` prints for one cluster: every planned object (unchanged ones too, so the output is the complete
 * desired state), Secrets holding private keys only with `--show-secrets` (`-o name` lists them all: names hold no
 * key).
 */
function printedObjects(work: ClusterWork, format: OutputFormat, showSecrets: boolean, omitted: string[]): string {
  if (format === 'name') return formatNames(work.objects);
  const objects = work.objects.filter((object) => {
    if (showSecrets || !isPrivateKeySecret(work, object)) return true;
    omitted.push(describeObject(object));
    return false;
  });
  return formatObjects(objects, format);
}

/**
 * Prints what `-o` asks for: to stdout for one cluster ({@link selectPrinted}), or with `--output-dir` to one file
 * per cluster, `DIR/<context>.<yaml|json|txt>`, each to be applied with its own `--context`.
 */
export function printObjects(session: Session, works: readonly ClusterWork[], options: Pick<RunOptions, 'output' | 'only' | 'outputDir' | 'showSecrets'>): void {
  const format = options.output!;
  const chosen = selectPrinted(works, options);
  const omitted: string[] = [];
  const texts = chosen.map((work) => ({ work, text: printedObjects(work, format, options.showSecrets, omitted) }));
  if (omitted.length) {
    session.ui.warn(`left out ${omitted.length} Secret${omitted.length > 1 ? 's' : ''} holding private keys (${omitted.join(', ')}); --show-secrets includes them`);
  } else if (options.showSecrets && format !== 'name' && chosen.some((work) => work.objects.some((object) => isPrivateKeySecret(work, object)))) {
    session.ui.warn('the output contains private keys (--show-secrets): do not store or share it');
  }
  if (options.outputDir === undefined) {
    for (const { text } of texts) session.ui.data(text);
    return;
  }
  const files = texts.map(({ work, text }) => ({ work, text, path: join(options.outputDir!, `${work.gathered.context}.${format === 'name' ? 'txt' : format}`) }));
  try {
    mkdirSync(options.outputDir, { recursive: true });
    for (const file of files) writeFileSync(file.path, file.text, { mode: options.showSecrets ? 0o600 : 0o644 });
  } catch (error) {
    throw new InputError(`cannot write to --output-dir ${options.outputDir}: ${(error as Error).message}`, { cause: error, hint: 'choose a directory you can write to' });
  }
  for (const file of files) session.ui.info(`Wrote the ${sideOf(file.work)}'s objects to ${file.path}: kubectl --context ${file.work.gathered.context} apply -f ${file.path}`);
}

/** How {@link runPlan} presents and applies. */
export interface RunOptions {
  dryRun: DryRun;
  output: OutputFormat | undefined;
  showSecrets: boolean;
  /** `--only`: see {@link selectPrinted}. */
  only?: string;
  /** `--output-dir`: see {@link printObjects}. */
  outputDir?: string;
  /** stdout carries an exchange document (`--request-out -`, `--bundle-out -`): nothing else is written there. */
  stdoutTaken?: boolean;
  /** e.g. "Export bookinfo/reviews". */
  title: string;
  /**
   * A plan computed again after a write conflict ({@link applyWithReplan}): the user already saw and accepted the
   * command's plan, so it is neither shown again (only with -v) nor confirmed again; with -o, the objects printed
   * once applied are this plan's.
   */
  replanned?: boolean;
}

/** Result of {@link runPlan}. */
export interface RunResult {
  /** False for a dry run or when the user declined. */
  applied: boolean;
  /** Objects as the servers returned them, per cluster, when applied. */
  live: Map<ClusterWork, KubeObject[]>;
  /** Number of write requests sent. */
  writes: number;
}

/**
 * The apply pipeline for clusters whose changes were diffed ({@link diffAll}): shows the plan (stderr; unchanged
 * objects only with -v), prints the objects with `-o`, stops for a client dry run, has the servers validate
 * everything for a server dry run, asks for confirmation on a terminal (not with -y), then applies cluster by
 * cluster, in the given order (providers first), and deletes what the plans remove.
 */
export async function runPlan(session: Session, works: ClusterWork[], options: RunOptions): Promise<RunResult> {
  const ui = session.ui;
  if (!options.output && (options.only !== undefined || options.outputDir !== undefined)) {
    throw new UsageError(`${options.only !== undefined ? '--only' : '--output-dir'} chooses where -o prints the objects, and -o was not given`, { hint: 'add -o yaml, -o json or -o name' });
  }
  // Before anything is shown or applied: a selection that cannot be printed stops the command.
  if (options.output && !options.replanned) selectPrinted(works, options);
  const views = planViews(works);
  const changes = hasChanges(views);
  if (options.replanned) {
    if (ui.verbose) ui.info(renderPlan(ui, views, { verbose: true }).trimEnd());
  } else {
    for (const work of works) for (const warning of work.warnings) ui.warn(warning);
    ui.info(renderPlan(ui, views, { verbose: ui.verbose || (!options.output && options.dryRun !== 'none') }).trimEnd());
    // A dry run prints what it would apply now; a real run prints what it applied, once it did (see below): after a
    // write conflict that is the objects of the plan computed again, not of this one.
    if (options.output && options.dryRun !== 'none') printObjects(session, works, options);
  }
  const printApplied = () => {
    if (options.output && options.dryRun === 'none') printObjects(session, works, options);
  };
  for (const work of works) {
    if (options.replanned) break;
    if (!work.overlay) continue;
    const text = formatObjects([work.overlay], 'yaml');
    ui.warn(`context "${work.gathered.context}": install the federation gateway with this IstioOperator overlay (save it and run istioctl install -f <file>):`);
    // With -o, stdout holds exactly the objects to apply (pipeable into kubectl apply), and with --request-out - or
    // --bundle-out - the exchange document: the overlay goes to stderr.
    if (options.output || options.stdoutTaken) ui.info(text.trimEnd());
    else ui.data(text);
  }
  const result: RunResult = { applied: false, live: new Map(), writes: 0 };
  if (options.dryRun === 'client') {
    ui.info(`${options.title}: dry run (client), nothing was changed.`);
    return result;
  }
  // Every permission the writes need, checked in every cluster before the first one (src/kube/preflight.ts).
  await session.beforeWrites(works);
  if (options.dryRun === 'server') {
    for (const work of works) {
      await work.writer.apply(work.changes ?? [], { dryRun: true });
      await work.writer.delete(work.deletions, { dryRun: true });
    }
    ui.info(`${options.title}: dry run (server): the API servers accepted every object; nothing was changed.`);
    return result;
  }
  if (!changes) {
    ui.info(`${options.title}: everything is already in place; nothing to change.`);
    for (const work of works) result.live.set(work, (work.changes ?? []).map((c) => c.live ?? c.object));
    result.applied = true;
    printApplied();
    return result;
  }
  if (ui.interactive && !options.replanned) {
    const ok = await session.prompter.confirm(`Apply these changes to ${works.length === 1 ? `context "${works[0]!.gathered.context}"` : `${works.length} clusters`}?`, true);
    if (!ok) {
      ui.info('Nothing was changed.');
      return result;
    }
  }
  for (const work of works) {
    const pending = (work.changes ?? []).filter((c) => c.action !== 'unchanged').length + work.deletions.length;
    const view = views[works.indexOf(work)]!;
    if (pending === 0) {
      result.live.set(work, (work.changes ?? []).map((c) => c.live ?? c.object));
      continue;
    }
    const progress = await startProgress(ui, `Applying to context "${work.gathered.context}"`);
    try {
      const outcomes = await work.writer.apply(work.changes ?? []);
      const deleted = await work.writer.delete(work.deletions);
      result.writes += outcomes.filter((o) => o.action !== 'unchanged').length + deleted.length;
      result.live.set(work, outcomes.map((o) => o.object));
      for (const outcome of outcomes) for (const warning of outcome.warnings) ui.warn(`${describeObject(outcome.object)}: ${warning}`);
      progress.succeed(`context "${work.gathered.context}": ${summarise(view.lines).replace(/to create/, 'created').replace(/to change/, 'changed').replace(/to delete/, 'deleted')}`);
    } catch (error) {
      progress.fail(error instanceof WriteConflictError
        ? `context "${work.gathered.context}": changed by someone else while applying`
        : `context "${work.gathered.context}": applying failed`);
      throw error;
    }
  }
  result.applied = true;
  printApplied();
  return result;
}

/** How many times a command plans and applies before a conflict that keeps coming back is reported. */
export const MAX_PLAN_ATTEMPTS = 8;

/** One attempt's plan: the works to apply, and whatever the command needs afterwards (records, endpoints). */
export interface PlannedWork<T> {
  works: ClusterWork[];
  value: T;
}

/**
 * Plans, diffs and applies with optimistic concurrency. Guarded writes (see `ClusterWriter.apply`) fail when an
 * object changed after the snapshot the plan was computed from; then every cluster is read again, the (pure)
 * planners run again on the fresh snapshots, and the new plan is applied — what this command already wrote is
 * unchanged in it, what another command wrote meanwhile is kept. At most {@link MAX_PLAN_ATTEMPTS} attempts, with
 * a growing, jittered pause between them so that racing commands fall out of step; a conflict that persists is
 * reported (exit 1) with the objects that kept changing.
 * @param plan computes attempt `n` (1-based); from the second attempt on it must read the clusters again
 */
export async function applyWithReplan<T>(session: Session, plan: (attempt: number) => Promise<PlannedWork<T>>, options: RunOptions): Promise<{ result: RunResult; works: ClusterWork[]; value: T; attempts: number }> {
  let lastConflict: WriteConflictError | undefined;
  for (let attempt = 1; attempt <= MAX_PLAN_ATTEMPTS; attempt += 1) {
    if (attempt > 1) {
      // 50–150 ms, then twice that, …: racing commands that conflicted together retry at different times.
      await new Promise((resolve) => setTimeout(resolve, 50 * 2 ** (attempt - 2) * (1 + Math.random() * 2)));
    }
    let planned: PlannedWork<T>;
    try {
      planned = await plan(attempt);
      await diffAll(planned.works);
    } catch (error) {
      // An object that appeared after the read: read again.
      if (!(error instanceof WriteConflictError) || attempt === MAX_PLAN_ATTEMPTS) throw persistent(error, attempt);
      lastConflict = error;
      announceReplan(session, error, attempt);
      continue;
    }
    try {
      const result = await runPlan(session, planned.works, { ...options, replanned: attempt > 1 });
      return { result, works: planned.works, value: planned.value, attempts: attempt };
    } catch (error) {
      if (!(error instanceof WriteConflictError) || attempt === MAX_PLAN_ATTEMPTS) throw persistent(error, attempt);
      lastConflict = error;
      announceReplan(session, error, attempt);
    }
  }
  throw persistent(lastConflict, MAX_PLAN_ATTEMPTS);
}

function announceReplan(session: Session, conflict: WriteConflictError, attempt: number): void {
  session.ui.info(`${conflict.objects.join(', ')} changed in context "${conflict.context}" after meshfed read it (another command is changing them too): reading again and planning again (attempt ${attempt + 1} of ${MAX_PLAN_ATTEMPTS}).`);
}

function persistent(error: unknown, attempts: number): unknown {
  if (!(error instanceof WriteConflictError) || attempts < MAX_PLAN_ATTEMPTS) return error;
  return new ClusterError(`${error.objects.join(', ')} kept changing in context "${error.context}" while meshfed applied (${attempts} attempts, each after reading the cluster again and planning again): the command stopped before completing, and every write it made was checked against what it had read`, {
    status: 409, reason: 'Conflict', cause: error,
    hint: 'another meshfed command (or a controller) keeps writing the same objects: wait for it to finish, then run this command again (it continues from where it stopped)',
  });
}

/**
 * Marks the record of the export or import a removal is about as being removed (`REMOVING_ANNOTATION`) before the
 * removal writes anything else, so that commands reading meanwhile leave it out of the shared objects they compute;
 * returns the read with the marked record (its new resourceVersion guards the record's own deletion, last). A dry run
 * marks nothing; a record marked already (a removal stopped half-way) stays as it is.
 */
export async function markRemoving<T extends GatheredCluster>(read: T, writer: ClusterWriter, record: CoreObject | undefined, dryRun: DryRun): Promise<T> {
  if (!record || dryRun !== 'none') return read;
  const marked = await writer.annotate(record as KubeObject, { [REMOVING_ANNOTATION]: new Date().toISOString() });
  return { ...read, snapshot: { ...read.snapshot, existing: read.snapshot.existing.map((o) => (o === record ? marked : o)) } };
}

/** `--timeout` → ms (0 = do not wait). */
export function waitTimeoutMs(value: string | undefined): number {
  return parseDuration(value ?? '2m', '--timeout');
}

/** Gives each cluster a writer of its own (one client per context). */
export function writerFor(session: Session, context: string, flag: string): ClusterWriter {
  return new ClusterWriter(session.client(context, flag));
}
