import type { ChalkInstance } from 'chalk';
import { palette, shouldUseColor } from './color.js';

/** The streams and environment the UI works with; tests and the CLI pass the process's. */
export interface TerminalIO {
  stdin: NodeJS.ReadableStream & { isTTY?: boolean };
  stdout: NodeJS.WritableStream & { isTTY?: boolean };
  stderr: NodeJS.WritableStream & { isTTY?: boolean };
  env: Record<string, string | undefined>;
}

/** UI settings that come from global flags. */
export interface UiOptions {
  /** `--no-color`. */
  noColor: boolean;
  /** `-y/--yes`: never ask anything. */
  yes: boolean;
  /** `-v/--verbose`: print details and stack traces. */
  verbose: boolean;
}

/**
 * All terminal I/O of a command goes through this object. Data goes to stdout; progress, warnings, prompts and
 * errors go to stderr, so that `-o json` output can be piped while a person still sees what happens.
 */
export class Ui {
  /** Colours for text written to stdout (off when stdout is piped). */
  readonly out: ChalkInstance;
  /** Colours for text written to stderr. */
  readonly err: ChalkInstance;
  /** A prompt may be shown: stdin and stderr are terminals and `--yes` was not given. */
  readonly interactive: boolean;
  /** Spinners may animate: stderr is a terminal. */
  readonly animated: boolean;
  readonly verbose: boolean;

  constructor(readonly io: TerminalIO, options: UiOptions) {
    this.out = palette(shouldUseColor({ isTTY: Boolean(io.stdout.isTTY), noColorFlag: options.noColor, env: io.env }));
    this.err = palette(shouldUseColor({ isTTY: Boolean(io.stderr.isTTY), noColorFlag: options.noColor, env: io.env }));
    this.interactive = Boolean(io.stdin.isTTY && io.stderr.isTTY) && !options.yes;
    // A terminal that reports 0 columns (some `script`, CI and `docker exec -t` terminals) makes a spinner loop
    // forever re-wrapping its line: treat it as no terminal for animation.
    const columns = (io.stderr as { columns?: number }).columns;
    this.animated = Boolean(io.stderr.isTTY) && io.env.TERM !== 'dumb' && columns !== 0;
    this.verbose = options.verbose;
  }

  /** Writes data (tables, YAML, JSON) to stdout. */
  data(text: string): void {
    this.io.stdout.write(text);
  }

  /** A line of information for the person at the terminal (stderr). */
  info(message: string): void {
    this.io.stderr.write(message + '\n');
  }

  /** A warning (stderr), prefixed like kubectl's. */
  warn(message: string): void {
    this.io.stderr.write(`${this.err.yellow('Warning:')} ${message}\n`);
  }

  /** Details shown only with `--verbose` (stderr). */
  debug(message: string): void {
    if (this.verbose) this.io.stderr.write(this.err.dim(message) + '\n');
  }

  /** An error message with an optional hint line (stderr). */
  error(message: string, hint?: string): void {
    this.io.stderr.write(`${this.err.red('error:')} ${message}\n`);
    if (hint) this.io.stderr.write(`  ${hint}\n`);
  }
}
