/**
 * The runner: it owns the policy of `verify` — category order, skipping checks whose prerequisites failed or whose
 * cluster is not available, stopping a category after a fatal failure — so that check functions only say what they
 * found. A check function never throws for a finding: it returns outcomes.
 */
import type { TrustMode } from '../model.js';
import { CATEGORIES, checkInfo, docsAnchor, fillTemplate, type CheckCategory } from './catalogue.js';
import { VerifyFacts } from './facts.js';
import type { CheckResult, Outcome, VerifySnapshot } from './types.js';

/** Template parameters of a failure. */
export type Params = Readonly<Record<string, string | number | undefined>>;

/** What a check function reports for one object. */
export type Finding = { object?: string } & (
  | { status: 'ok'; note?: string }
  | { status: 'skip'; reason: string }
  | { status: 'fail'; params: Params }
);

/** One entry of the declarative check list. */
export interface CheckDefinition {
  /** The catalogue code; level, category and texts come from the catalogue. */
  code: string;
  /** Needs the provider cluster's snapshot; without it the check is skipped with the reason. */
  needsProvider?: boolean;
  /** Only meaningful in this trust mode; not listed at all in the other. */
  mode?: TrustMode;
  /** Codes that must have passed (no failure at error level) for this check to run. */
  requires?: string[];
  /** A failure stops the remaining checks of the category (they are skipped, naming this code). */
  fatal?: boolean;
  /** Findings, at least one; an empty list counts as passed. */
  run(facts: VerifyFacts): Finding[];
}

/** Shorthands for check functions. */
export const ok = (object?: string, note?: string): Finding => ({ object, status: 'ok', ...(note ? { note } : {}) });
export const fail = (params: Params, object?: string): Finding => ({ object, status: 'fail', params });
export const skip = (reason: string, object?: string): Finding => ({ object, status: 'skip', reason });

/** A result for `code` from an outcome, with the catalogue's level, category, description and docs anchor. */
export function resultOf(code: string, outcome: Outcome, object?: string): CheckResult {
  const info = checkInfo(code);
  return {
    code, level: info.level, category: info.category, description: info.description,
    ...(object ? { object } : {}), outcome, docs: docsAnchor(code),
  };
}

/** A failure result for `code`, its message and hint filled from `params`. */
export function failure(code: string, params: Params, object?: string): CheckResult {
  const info = checkInfo(code);
  return resultOf(code, { status: 'fail', message: fillTemplate(info.message, params), hint: fillTemplate(info.hint, params) }, object);
}

function baseParams(facts: VerifyFacts): Record<string, string> {
  const snapshot = facts.snapshot;
  const provider = snapshot.provider;
  return {
    import: facts.importName,
    export: facts.exportName,
    cluster: facts.endpoint.providerClusterId,
    context: provider.status === 'present' ? provider.snapshot.context : provider.status === 'unreachable' ? provider.context : snapshot.consumer.context,
    namespace: facts.record.namespace,
  };
}

/**
 * Why the provider side was not read: no context of the kubeconfig is the import's provider cluster (as its stored
 * federation id says), so `--from` must name one.
 */
export function providerAbsentReason(snapshot: VerifySnapshot): string {
  const provider = snapshot.provider;
  const cluster = snapshot.record.endpoint.providerClusterId;
  const searched = provider.status === 'absent' ? provider.searched ?? [] : [];
  return `no context of the kubeconfig is the provider cluster ${cluster}${searched.length ? ` (read: ${searched.join(', ')})` : ''}: pass --from <the context of ${cluster}> to check the provider side`;
}

function providerSkipReason(snapshot: VerifySnapshot): string | undefined {
  const provider = snapshot.provider;
  if (provider.status === 'absent') return providerAbsentReason(snapshot);
  if (provider.status === 'unreachable') return `the provider context "${provider.context}" is not reachable (MF0102)`;
  return undefined;
}

/**
 * Runs the static checks over a snapshot, category by category, and returns one result per finding (skipped
 * checks included, with their reason). Checks of the other trust mode are left out.
 */
export function runChecks(snapshot: VerifySnapshot, definitions: readonly CheckDefinition[]): CheckResult[] {
  const facts = new VerifyFacts(snapshot);
  const base = baseParams(facts);
  const results: CheckResult[] = [];
  const failed = new Set<string>();
  const ran = new Set<string>();
  const mode = snapshot.record.endpoint.mode;
  const order = new Map<CheckCategory, number>(CATEGORIES.map((c, i) => [c.id, i]));
  const sorted = [...definitions]
    .filter((d) => !d.mode || d.mode === mode)
    .sort((a, b) => order.get(checkInfo(a.code).category)! - order.get(checkInfo(b.code).category)!);
  const stopped = new Map<CheckCategory, string>();

  for (const definition of sorted) {
    const info = checkInfo(definition.code);
    const skipWith = (reason: string) => results.push(resultOf(definition.code, { status: 'skip', reason }));
    const stoppedBy = stopped.get(info.category);
    if (stoppedBy) { skipWith(`not run: ${stoppedBy} failed`); continue; }
    const providerReason = definition.needsProvider ? providerSkipReason(snapshot) : undefined;
    if (providerReason) { skipWith(providerReason); continue; }
    const missing = (definition.requires ?? []).filter((code) => failed.has(code) || !ran.has(code));
    if (missing.length) {
      skipWith(`not run: needs ${missing.map((code) => `${code} (${checkInfo(code).description})`).join(', ')}`);
      continue;
    }
    let findings: Finding[];
    try {
      findings = definition.run(facts);
    } catch (error) {
      // A bug or an object shaped beyond what the check expects: report it on this check, keep verifying.
      findings = [fail({ detail: `the check could not be evaluated: ${(error as Error).message}` })];
    }
    if (findings.length === 0) findings = [ok()];
    let anyFailure = false;
    for (const finding of findings) {
      if (finding.status === 'fail') {
        const params = { ...base, ...finding.params, object: finding.object ?? finding.params.object };
        results.push(resultOf(definition.code, { status: 'fail', message: fillTemplate(info.message, params), hint: fillTemplate(info.hint, params) }, finding.object));
        anyFailure = true;
      } else if (finding.status === 'skip') {
        results.push(resultOf(definition.code, { status: 'skip', reason: finding.reason }, finding.object));
      } else {
        results.push(resultOf(definition.code, { status: 'ok', ...(finding.note ? { note: finding.note } : {}) }, finding.object));
      }
    }
    const allSkipped = findings.every((f) => f.status === 'skip');
    if (!allSkipped) ran.add(definition.code);
    if (anyFailure && info.level === 'error') {
      failed.add(definition.code);
      if (definition.fatal) stopped.set(info.category, definition.code);
    }
  }
  return results;
}
