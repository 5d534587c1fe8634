import type { Argv } from 'yargs';
import { UsageError } from './errors.js';

/**
 * Parses a kubectl-style duration (`--request-timeout`, `--timeout`): `0` (no limit), a bare number of seconds, or
 * Go duration units (`500ms`, `5s`, `2m`, `1h`, `1m30s`). Returns milliseconds.
 */
export function parseDuration(value: string | number, flag: string): number {
  if (typeof value === 'number') {
    if (!Number.isFinite(value) || value < 0) throw new UsageError(`invalid ${flag} ${value}: expected a non-negative duration`);
    return value * 1000;
  }
  const text = value.trim();
  if (/^\d+(\.\d+)?$/.test(text)) return Math.round(Number(text) * 1000);
  const units: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
  let total = 0;
  let rest = text;
  const part = /^(\d+(?:\.\d+)?)(ms|s|m|h)/;
  if (!rest) throw new UsageError(`invalid ${flag} "": expected a duration such as 5s, 1m or 0`);
  while (rest) {
    const match = part.exec(rest);
    if (!match) throw new UsageError(`invalid ${flag} "${value}": expected a duration such as 5s, 1m or 0`);
    total += Number(match[1]) * units[match[2]!]!;
    rest = rest.slice(match[0].length);
  }
  return Math.round(total);
}

/**
 * Global flags that say whom to act as, as kubectl's (`--as`, `--as-group`, `--as-uid`): they override the kubeconfig
 * user's `as`, `as-groups` and `as-uid`. `import --as` and `unimport --as` name the import's local Service instead;
 * `--as-user` is the same as `--as` for every command, those included.
 */
export function impersonationOptions<T>(parser: Argv<T>) {
  return parser
    .option('as', { type: 'string', global: true, describe: 'Username to impersonate for the operation (import, unimport: the local Service name; use --as-user there)' })
    .option('as-user', { type: 'string', global: true, describe: 'Username to impersonate for the operation (same as --as, for every command)' })
    .option('as-group', { type: 'string', array: true, global: true, describe: 'Group to impersonate for the operation (repeat for several)' })
    .option('as-uid', { type: 'string', global: true, describe: 'UID to impersonate for the operation' });
}

/** Commands whose own `--as` names an import's local Service (not whom to act as). */
export const COMMANDS_WITH_OWN_AS: readonly string[] = ['import', 'unimport'];

/** What the impersonation flags ask for; `command` is the command run (its own `--as` may mean something else). */
export function impersonationFromArgs(args: { as?: unknown; 'as-user'?: unknown; 'as-group'?: unknown; 'as-uid'?: unknown }, command: string | undefined): { user?: string; groups?: string[]; uid?: string } {
  const asFlag = command !== undefined && COMMANDS_WITH_OWN_AS.includes(command) ? undefined : args.as;
  const user = typeof args['as-user'] === 'string' ? args['as-user'] : typeof asFlag === 'string' ? asFlag : undefined;
  const groups = Array.isArray(args['as-group']) ? args['as-group'].map(String).filter((g) => g !== '') : [];
  const uid = typeof args['as-uid'] === 'string' ? args['as-uid'] : undefined;
  return { ...(user ? { user } : {}), ...(groups.length ? { groups } : {}), ...(uid ? { uid } : {}) };
}
