/**
 * How `verify` results look: `√ ‼ ×` lines grouped by category, the message, hint and docs anchor indented under a
 * failure, skipped checks with their reason, and a one-line summary; or one JSON/YAML document with a stable schema
 * (`VerifyReport`) for scripts. Only this module formats check results.
 */
import type { ChalkInstance } from 'chalk';
import { CATEGORIES, docsUrl, type CheckResult } from '../federation/checks/index.js';

/** Counts of checks (by code: a code with several objects counts once, by its worst outcome). */
export interface CheckSummary {
  passed: number;
  /** Warning-level checks that failed. */
  warnings: number;
  /** Error-level checks that failed: any makes `verify` exit with code 3. */
  errors: number;
  skipped: number;
}

type Verdict = 'error' | 'warning' | 'ok' | 'skip';

function verdictOf(results: CheckResult[]): Verdict {
  if (results.some((r) => r.outcome.status === 'fail' && r.level === 'error')) return 'error';
  if (results.some((r) => r.outcome.status === 'fail')) return 'warning';
  if (results.some((r) => r.outcome.status === 'ok')) return 'ok';
  return 'skip';
}

function byCode(results: readonly CheckResult[]): Map<string, CheckResult[]> {
  const map = new Map<string, CheckResult[]>();
  for (const r of results) map.set(r.code, [...(map.get(r.code) ?? []), r]);
  return map;
}

/** Counts the checks of a report by their worst outcome. */
export function summarize(results: readonly CheckResult[]): CheckSummary {
  const summary: CheckSummary = { passed: 0, warnings: 0, errors: 0, skipped: 0 };
  for (const group of byCode(results).values()) {
    const verdict = verdictOf(group);
    if (verdict === 'error') summary.errors += 1;
    else if (verdict === 'warning') summary.warnings += 1;
    else if (verdict === 'ok') summary.passed += 1;
    else summary.skipped += 1;
  }
  return summary;
}

const plural = (n: number, word: string): string => `${n} ${word}${n === 1 ? '' : 's'}`;

/** `× 2 errors, 1 warning (24 passed, 3 skipped)` or `√ all 27 checks passed`. */
export function summaryLine(summary: CheckSummary, c: ChalkInstance): string {
  const rest = [`${summary.passed} passed`, ...(summary.skipped ? [`${summary.skipped} skipped`] : [])].join(', ');
  if (summary.errors > 0) {
    const warnings = summary.warnings ? `, ${plural(summary.warnings, 'warning')}` : '';
    return `${c.red('×')} verify failed: ${plural(summary.errors, 'error')}${warnings} (${rest})`;
  }
  if (summary.warnings > 0) return `${c.yellow('‼')} verify passed with ${plural(summary.warnings, 'warning')} (${rest})`;
  return `${c.green('√')} verify passed: ${summary.passed === 1 ? 'the check' : `all ${summary.passed} checks`} passed${summary.skipped ? ` (${summary.skipped} skipped)` : ''}`;
}

/** Options of {@link renderChecks}. */
export interface RenderOptions {
  /** List every object of a passing check (`-v`), not just how many. */
  verbose?: boolean;
  /** Category headings; default the catalogue's, e.g. `provider` → `provider (context cluster2)`. */
  headings?: Partial<Record<string, string>>;
}

/**
 * Text for a person: per category a heading, then one line per check (`√` passed, `‼` warning, `×` error, `-`
 * skipped); failures are shown per object with the message, the hint and `see <docs>/checks.md#mfNNNN` (the docs of this
 * version, {@link docsUrl}).
 */
export function renderChecks(results: readonly CheckResult[], c: ChalkInstance, options: RenderOptions = {}): string {
  const out: string[] = [];
  for (const category of CATEGORIES) {
    const inCategory = results.filter((r) => r.category === category.id);
    if (inCategory.length === 0) continue;
    const heading = options.headings?.[category.id] ?? category.title;
    if (out.length) out.push('');
    out.push(c.bold(heading), '-'.repeat(heading.length));
    let lastSkipReason: string | undefined;
    for (const [code, group] of byCode(inCategory)) {
      const first = group[0]!;
      const tag = c.dim(`[${code}]`);
      const failures = group.filter((r) => r.outcome.status === 'fail');
      const skips = group.filter((r) => r.outcome.status === 'skip');
      const oks = group.filter((r) => r.outcome.status === 'ok');
      if (failures.length === 0 && oks.length === 0) {
        const reason = (skips[0]!.outcome as { reason: string }).reason;
        out.push(`${c.dim('-')} ${c.dim(first.description)} ${tag}`);
        if (reason !== lastSkipReason || skips.length > 1) out.push(c.dim(`    skipped: ${reason}`));
        lastSkipReason = reason;
        continue;
      }
      lastSkipReason = undefined;
      if (failures.length === 0) {
        const notes = oks.map((r) => [r.object, r.outcome.status === 'ok' ? r.outcome.note : undefined].filter(Boolean).join(': ')).filter(Boolean);
        // Two short findings fit on the line (both contexts' Istio versions); more are counted, listed with -v.
        const detail = notes.length === 1 ? ` (${notes[0]})`
          : notes.length === 2 && notes.join('; ').length <= 80 ? ` (${notes.join('; ')})`
            : oks.length > 1 && !options.verbose ? ` (${oks.length} objects)` : '';
        out.push(`${c.green('√')} ${first.description}${detail} ${tag}`);
        if (options.verbose && notes.length > 2) for (const note of notes) out.push(c.dim(`    ${note}`));
        continue;
      }
      const symbol = first.level === 'error' ? c.red('×') : c.yellow('‼');
      out.push(`${symbol} ${first.description} ${tag}`);
      let lastHint: string | undefined;
      for (const r of failures) {
        if (r.outcome.status !== 'fail') continue;
        out.push(`    ${r.outcome.message}`);
        if (r.outcome.hint !== lastHint) out.push(`    ${c.cyan('hint:')} ${r.outcome.hint}`);
        lastHint = r.outcome.hint;
      }
      out.push(`    see ${docsUrl(first.docs)}`);
    }
  }
  return out.join('\n') + '\n';
}

/** apiVersion and kind of the machine-readable report. */
export const REPORT_API_VERSION = 'meshfed.io/v1alpha1';
export const REPORT_KIND = 'VerifyReport';

/** One check in the JSON/YAML report. Every field is always present (null when it does not apply). */
export interface ReportCheck {
  code: string;
  category: string;
  level: 'error' | 'warning';
  description: string;
  /** `ok`, `fail` or `skip`. */
  status: 'ok' | 'fail' | 'skip';
  object: string | null;
  message: string | null;
  hint: string | null;
  /** Why a skipped check did not run. */
  reason: string | null;
  /** What a passing check found (a version, an address…). */
  note: string | null;
  docs: string;
}

/** The checks of a report in the stable JSON form. */
export function reportChecks(results: readonly CheckResult[]): ReportCheck[] {
  return results.map((r) => ({
    code: r.code,
    category: r.category,
    level: r.level,
    description: r.description,
    status: r.outcome.status,
    object: r.object ?? null,
    message: r.outcome.status === 'fail' ? r.outcome.message : null,
    hint: r.outcome.status === 'fail' ? r.outcome.hint : null,
    reason: r.outcome.status === 'skip' ? r.outcome.reason : null,
    note: r.outcome.status === 'ok' ? r.outcome.note ?? null : null,
    docs: docsUrl(r.docs),
  }));
}
