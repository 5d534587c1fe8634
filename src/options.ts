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
