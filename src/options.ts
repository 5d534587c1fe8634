import type { Argv } from 'yargs';
import { ClusterError, UsageError } from './errors.js';
import { isDnsLabel } from './federation/naming.js';

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
 * user's `as`, `as-groups` and `as-uid`, for every command (an import's local Service is named with `--name`).
 */
export function impersonationOptions<T>(parser: Argv<T>) {
  return parser
    .option('as', { type: 'string', global: true, describe: 'Username to impersonate for the operation' })
    .option('as-group', { type: 'string', array: true, global: true, describe: 'Group to impersonate for the operation (repeat for several)' })
    .option('as-uid', { type: 'string', global: true, describe: 'UID to impersonate for the operation' });
}

/** What the impersonation flags ask for. */
export function impersonationFromArgs(args: { as?: unknown; 'as-group'?: unknown; 'as-uid'?: unknown }): { user?: string; groups?: string[]; uid?: string } {
  const user = typeof args.as === 'string' ? args.as : undefined;
  const groups = Array.isArray(args['as-group']) ? args['as-group'].map(String).filter((g) => g !== '') : [];
  const uid = typeof args['as-uid'] === 'string' ? args['as-uid'] : undefined;
  return { ...(user ? { user } : {}), ...(groups.length ? { groups } : {}), ...(uid ? { uid } : {}) };
}

/**
 * `import` and `unimport` once took the local Service name as `--as`; it impersonates now, as in kubectl. A run of
 * either that the API server refused while `--as` named a valid Service name and no local name was given may be the
 * old habit: the error's hint then says how to name the local Service. (Only a hint: the refusal stands.)
 */
export function withLocalNameHint(error: unknown, args: { as?: unknown; name?: unknown; NAME?: unknown }): unknown {
  const user = args.as;
  if (!(error instanceof ClusterError) || error.status !== 403 || typeof user !== 'string' || !isDnsLabel(user)) return error;
  if (args.name !== undefined || args.NAME !== undefined) return error;
  return new ClusterError(error.message, {
    status: error.status, ...(error.reason ? { reason: error.reason } : {}), cause: error,
    hint: `--as impersonates the user "${user}", as kubectl's does: if you meant ${user} as the local Service's name, use --name ${user}${error.hint ? `; otherwise ${error.hint}` : ''}`,
  });
}

/** Wraps the handler of `import` or `unimport` so that its errors go through {@link withLocalNameHint}. */
export function hintingLocalName<S, A extends { as?: unknown; name?: unknown; NAME?: unknown }>(handler: (session: S, args: A) => Promise<void>) {
  return async (session: S, args: A): Promise<void> => {
    try {
      await handler(session, args);
    } catch (error) {
      throw withLocalNameHint(error, args);
    }
  };
}
