/**
 * Golden files of the CLI's human output: one file per invocation under test/golden/cli/, named after it, holding
 * the command line, the exit code, stdout and stderr, so that a reader sees what a user sees. Values that change
 * from run to run (temporary paths, times, random names) are replaced by placeholders. MESHFED_UPDATE_GOLDEN=1
 * rewrites the files (review the diff before committing it).
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ExecutionContext } from 'ava';
import { repoRoot, type CliResult } from './cli.js';

export const GOLDEN_DIR = join(repoRoot, 'test', 'golden', 'cli');
const update = process.env.MESHFED_UPDATE_GOLDEN === '1';

/** The file name of an invocation: its words joined by `_`, other characters than letters, digits, `.`, `=` and `-` as `+`. */
export function goldenName(args: readonly string[]): string {
  const name = args.join('_').replace(/[^A-Za-z0-9.=_-]/g, '+').slice(0, 150);
  return `${name || 'no-arguments'}.txt`;
}

/** Run-to-run values → placeholders. */
export function scrub(text: string): string {
  return text
    .replace(/\/tmp\/[A-Za-z0-9._/-]+/g, '<tmp-path>')
    .replace(/\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z/g, '<time>')
    .replace(/\b20\d\d-\d\d-\d\d\b/g, '<date>')
    .replace(/\b\d+ days left\b/g, '<n> days left')
    .replace(/SHA256:[0-9A-F]{2}(:[0-9A-F]{2}){31}/g, 'SHA256:<fingerprint>')
    .replace(/meshfed-probe-[0-9a-f]{5}/g, 'meshfed-probe-<id>')
    .replace(/https:\/\/127\.0\.0\.1:\d+/g, 'https://127.0.0.1:<port>')
    .replace(/\b\d+(\.\d+)?\s?(ms|milliseconds)\b/g, '<n> ms')
    .replace(/\(\d+(\.\d+)?s\)/g, '(<n>s)')
    .replace(/ {2,}$/gm, '');
}

/** The golden text of one run. `shown` is the command line as the file shows it (without the test's --kubeconfig). */
export function renderGolden(shown: readonly string[], result: CliResult): string {
  const quote = (word: string) => /^[A-Za-z0-9._=/:,@-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
  return [
    scrub(`$ kubectl meshfed ${shown.map(quote).join(' ')}`).trimEnd(),
    `exit: ${result.code}`,
    '--- stdout',
    scrub(result.stdout).trimEnd(),
    '--- stderr',
    scrub(result.stderr).trimEnd(),
    '',
  ].join('\n');
}

/** Compares a run with its golden file (writes it with MESHFED_UPDATE_GOLDEN=1). */
export function assertGolden(t: ExecutionContext, shown: readonly string[], result: CliResult, name = goldenName(shown)): void {
  const path = join(GOLDEN_DIR, name);
  const actual = renderGolden(shown, result);
  if (update) {
    mkdirSync(GOLDEN_DIR, { recursive: true });
    writeFileSync(path, actual);
  }
  if (!existsSync(path)) {
    t.fail(`${path} is missing: run with MESHFED_UPDATE_GOLDEN=1 and review it`);
    return;
  }
  t.is(actual, readFileSync(path, 'utf8'), `${name} differs from its golden file (MESHFED_UPDATE_GOLDEN=1 rewrites it)`);
}
