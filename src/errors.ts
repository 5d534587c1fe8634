/**
 * Typed errors and the one place that maps them to exit codes.
 *
 * Every layer throws one of these (or an error of the core that carries an `exitCode`); only `src/cli.ts` turns
 * them into a message on stderr and a process exit code. Messages name the flag or the object and say what to do.
 */

/** Process exit codes, documented in the README. */
export const ExitCode = {
  /** Success. */
  ok: 0,
  /** A cluster, input or file error. */
  error: 1,
  /** Bad usage: unknown command or flag, missing or malformed value. */
  usage: 2,
  /** `verify` ran and at least one error-level check failed. */
  checksFailed: 3,
  /** Hung up: SIGHUP (the terminal closed), after cleaning up. 128 + 1, as shells report it. */
  hangup: 129,
  /** Interrupted by SIGINT (Ctrl-C), after cleaning up. 128 + 2. */
  interrupted: 130,
  /** Terminated by SIGTERM (e.g. a cancelled CI job), after cleaning up. 128 + 15. */
  terminated: 143,
} as const;

/** The signals the CLI handles, and the exit code each one ends the process with. */
export const SIGNAL_EXIT_CODES = { SIGHUP: ExitCode.hangup, SIGINT: ExitCode.interrupted, SIGTERM: ExitCode.terminated } as const;

/** A signal the CLI handles. */
export type HandledSignal = keyof typeof SIGNAL_EXIT_CODES;

export type ExitCodeValue = (typeof ExitCode)[keyof typeof ExitCode];

/** Base class: a message for the user, an optional hint line, and the exit code it maps to. */
export class MeshfedError extends Error {
  readonly exitCode: ExitCodeValue;
  /** A line telling the user what to do next, printed under the message. */
  readonly hint: string | undefined;

  constructor(message: string, options: { exitCode?: ExitCodeValue; hint?: string; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.exitCode = options.exitCode ?? ExitCode.error;
    this.hint = options.hint;
  }
}

/** The command line is wrong: unknown command or flag, missing value without a terminal, malformed flag value. */
export class UsageError extends MeshfedError {
  constructor(message: string, options: { hint?: string; cause?: unknown } = {}) {
    super(message, { ...options, exitCode: ExitCode.usage });
  }
}

/** A file or value the user gave is wrong (kubeconfig, bundle, request, object names). */
export class InputError extends MeshfedError {}

/** A cluster could not be reached, refused the credentials, or answered with an error. */
export class ClusterError extends MeshfedError {
  /** HTTP status when the server answered, undefined when it could not be reached. */
  readonly status: number | undefined;
  /** apimachinery Status reason (NotFound, AlreadyExists, Conflict, Invalid, Forbidden…) when present. */
  readonly reason: string | undefined;

  constructor(message: string, options: { status?: number; reason?: string; hint?: string; cause?: unknown } = {}) {
    super(message, options);
    this.status = options.status;
    this.reason = options.reason;
  }
}

/** `verify` found at least one failing error-level check; the results were already printed. */
export class ChecksFailedError extends MeshfedError {
  constructor(message: string) {
    super(message, { exitCode: ExitCode.checksFailed });
  }
}

/** The user pressed Ctrl-C (or closed a prompt), or the process got SIGTERM or SIGHUP. */
export class InterruptedError extends MeshfedError {
  readonly signal: HandledSignal;

  constructor(message = 'interrupted', signal: HandledSignal = 'SIGINT') {
    super(message, { exitCode: SIGNAL_EXIT_CODES[signal] });
    this.signal = signal;
  }
}

/**
 * The exit code for anything thrown. Errors of the pure core are not subclasses of MeshfedError (the core does not
 * depend on this module) but may carry a numeric `exitCode`; anything else unexpected is exit code 1.
 */
export function exitCodeFor(error: unknown): number {
  if (error instanceof MeshfedError) return error.exitCode;
  if (error && typeof error === 'object') {
    const code = (error as { exitCode?: unknown }).exitCode;
    if (typeof code === 'number' && Number.isInteger(code) && code > 0) return code;
    // @inquirer/prompts throws ExitPromptError when the user presses Ctrl-C at a prompt.
    if ((error as { name?: unknown }).name === 'ExitPromptError') return ExitCode.interrupted;
  }
  return ExitCode.error;
}
