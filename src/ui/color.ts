import { Chalk, type ChalkInstance } from 'chalk';

/** What decides whether a stream gets colour. */
export interface ColorInputs {
  /** The stream is a terminal. */
  isTTY: boolean;
  /** `--no-color` was given. */
  noColorFlag: boolean;
  /** The process environment (NO_COLOR, FORCE_COLOR, TERM). */
  env: Record<string, string | undefined>;
}

/**
 * Whether to colour a stream. chalk alone ignores NO_COLOR, so the decision is made here, once:
 * `--no-color`, a non-empty NO_COLOR (no-color.org), FORCE_COLOR=0 and TERM=dumb turn colour off;
 * FORCE_COLOR=1..3 turns it on even when piped; otherwise colour only on a terminal.
 */
export function shouldUseColor({ isTTY, noColorFlag, env }: ColorInputs): boolean {
  if (noColorFlag) return false;
  if (env.NO_COLOR !== undefined && env.NO_COLOR !== '') return false;
  const force = env.FORCE_COLOR;
  if (force === '0' || force === 'false') return false;
  if (env.TERM === 'dumb') return false;
  if (force !== undefined && force !== '') return true;
  return isTTY;
}

/** A chalk instance that colours, or one that returns text unchanged. */
export function palette(enabled: boolean): ChalkInstance {
  return new Chalk({ level: enabled ? 1 : 0 });
}
