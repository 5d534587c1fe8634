import yargs, { type Argv } from 'yargs';
import { commandModules, commandName, commands, namedCommands } from './commands/index.js';
import { SESSION } from './commands/run.js';
import type { GlobalArgs, Session, SessionOptions } from './commands/session.js';
import { ExitCode, InterruptedError, MeshfedError, SIGNAL_EXIT_CODES, UsageError, exitCodeFor, type HandledSignal } from './errors.js';
import { Ui, type TerminalIO } from './ui/terminal.js';
import { impersonationOptions } from './options.js';

declare const __MESHFED_VERSION__: string;
/** Set by the bundler from package.json; "dev" when run from source. */
export const VERSION = typeof __MESHFED_VERSION__ === 'string' ? __MESHFED_VERSION__ : 'dev';

/** The flags every command has (also read by shell completion). */
export function globalOptions(parser: Argv) {
  return impersonationOptions(parser)
    .option('kubeconfig', { type: 'string', global: true, describe: 'Path to the kubeconfig file (default: $KUBECONFIG, else ~/.kube/config)' })
    .option('context', { type: 'string', global: true, describe: 'The kubeconfig context to act on (default: the current context)' })
    .option('namespace', { alias: 'n', type: 'string', global: true, describe: 'Namespace (default: the context\'s namespace, else "default")' })
    .option('request-timeout', { type: 'string', global: true, describe: 'How long to wait for each API request (e.g. 5s, 1m; default 30s; 0 = no limit, connecting still bounded)' })
    .option('output', { alias: 'o', type: 'string', global: true, describe: 'Output format: json|yaml (and others where a command says so)' })
    .option('yes', { alias: 'y', type: 'boolean', global: true, default: false, describe: 'Never ask: fail on missing values, skip confirmations' })
    .option('color', { type: 'boolean', global: true, default: true, describe: 'Colour output on a terminal (--no-color to disable; NO_COLOR is honoured)' })
    .option('verbose', {
      alias: 'v', type: 'number', global: true, default: 0,
      describe: 'Log level, as kubectl\'s -v=N (-v alone: 1). 1: details, request counts and stack traces; 6: every API request; 8: also request and response bodies (Secret data redacted)',
    });
}

/** Highest `-v` level that shows more than the one below it (see {@link normalizeVerbosity}). */
const MAX_VERBOSITY = 10;

/**
 * kubectl's spellings of the log level (`-v=6`, `-v 6`, `-v6`, `--v=6`, `--v 6`) and meshfed's own (`-v`,
 * `--verbose`, alone meaning 1) → `--verbose=N`, which yargs parses as a number. Anything else given as a level is a
 * usage error naming it. Words after `--` are left alone.
 */
export function normalizeVerbosity(argv: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const word = argv[i]!;
    if (word === '--') {
      out.push(...argv.slice(i));
      break;
    }
    const match = /^(?:-v|--v|--verbose)(?:(=)(.*)|(\d+))?$/.exec(word);
    if (!match) {
      out.push(word);
      continue;
    }
    let value = match[1] ? match[2]! : match[3];
    if (value === undefined && /^\d+$/.test(argv[i + 1] ?? '')) value = argv[++i]!;
    if (value === undefined || value === 'true') value = '1';
    if (value === 'false') value = '0';
    if (!/^\d+$/.test(value) || Number(value) > MAX_VERBOSITY) {
      throw new UsageError(`invalid log level "${value}" for ${word.replace(/[=\d].*$/, '')}`, { hint: `give a level from 0 to ${MAX_VERBOSITY}, e.g. -v=6 (every API request) or -v alone` });
    }
    out.push(`--verbose=${Number(value)}`);
  }
  return out;
}

/** kubectl's wording for a mistyped command, with a suggestion when one is close. */
function unknownCommand(argv: string[]): UsageError | undefined {
  const word = argv.find((arg) => !arg.startsWith('-'));
  const names = commands.map(commandName);
  if (!word || names.includes(word) || word === '__complete') return undefined;
  const close = names.filter((name) => editDistance(name, word) <= 2 || name.startsWith(word));
  return new UsageError(`unknown command "${word}" for "kubectl meshfed"`, {
    hint: close.length ? `did you mean ${close.map((name) => `"${name}"`).join(' or ')}?` : `commands: ${names.join(', ')}`,
  });
}

/** A flag as the user types it: `-n`, `--bundle-out`. */
function flagName(name: string): string {
  return name.length === 1 ? `-${name}` : `--${name}`;
}

function editDistance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let previous = row[0]!;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const saved = row[j]!;
      row[j] = Math.min(row[j]! + 1, row[j - 1]! + 1, previous + (a[i - 1] === b[j - 1] ? 0 : 1));
      previous = saved;
    }
  }
  return row[b.length]!;
}

/**
 * Stops yargs from rendering a command's whole help each time it runs that command. yargs 18 renders it as soon as
 * it has started the handler (build/lib/command.js, `CommandInstance.handleValidationAndGetResult` calls
 * `usage.cacheHelpMessage()`), only so that a `showHelp()` from the handler after parsing would still print that
 * command's help. No handler here shows help (`--help` and usage errors are handled while parsing, before any handler),
 * and the rendering — every flag of the command, measured and wrapped — took more time than the parse itself. The
 * usage instance is the parser's for its whole life (`reset` empties it, never replaces it), so one override lasts.
 * `getInternalMethods` exists at run time but is missing from @types/yargs.
 */
function skipHelpCache(parser: Argv): void {
  const usage = (parser as unknown as { getInternalMethods(): { getUsageInstance(): { cacheHelpMessage(): void } } }).getInternalMethods().getUsageInstance();
  usage.cacheHelpMessage = () => undefined;
}

/**
 * Runs the plugin with `argv` (without node and script) and returns the exit code. This is the only place that
 * turns errors into messages and exit codes. `options` go to the session: its clients' timers and its pause (tests;
 * the program passes none).
 */
export async function main(rawArgv: readonly string[], io: TerminalIO, options: SessionOptions = {}): Promise<number> {
  // Shell completion (`--get-yargs-completions <program> <words…>`, as the completion scripts call it) is meshfed's
  // own: it filters by prefix and reads names from the cluster (bounded, silent on errors).
  if (rawArgv[0] === '--get-yargs-completions') {
    const { completeWords } = await import('./commands/completion.js');
    const candidates = await completeWords(rawArgv.slice(2), io.env);
    if (candidates.length) io.stdout.write(candidates.join('\n') + '\n');
    return ExitCode.ok;
  }
  let argv: string[];
  try {
    argv = normalizeVerbosity(rawArgv);
  } catch (error) {
    new Ui(io, { noColor: rawArgv.includes('--no-color'), yes: true, verbose: false }).error((error as UsageError).message, (error as UsageError).hint);
    io.stderr.write("See 'kubectl meshfed --help' for usage.\n");
    return ExitCode.usage;
  }
  // A UI for errors that happen before the session exists (flag parsing), honouring --no-color and -v already.
  const fallbackUi = new Ui(io, { noColor: argv.includes('--no-color'), yes: true, verbose: argv.some((arg) => /^--verbose=[1-9]/.test(arg)) });
  let session: Session | undefined;
  // Only the commands the command line names are loaded (see commands); a session exists only to run one of them.
  const [modules, sessionModule] = await Promise.all([
    commandModules(argv),
    namedCommands(argv).length > 0 ? import('./commands/session.js') : undefined,
  ]);
  const parser = globalOptions(yargs(argv))
    .scriptName('kubectl meshfed')
    .usage('Federate independent Istio meshes one service at a time, with mutual TLS and least privilege.\n\nUsage: $0 <command> [flags]')
    .middleware((args) => {
      // No command named: yargs prints help, the version or a usage error, and runs no handler.
      if (!sessionModule) return;
      // A flag given twice with different values (two --context) must not be guessed: it picks a cluster to write to.
      const arrays = new Set((parser as unknown as { getOptions(): { array: string[] } }).getOptions().array);
      // Longest names first: an error names --namespace rather than its alias -n or its camel-case twin.
      for (const [key, value] of Object.entries(args).sort(([a], [b]) => b.length - a.length)) {
        // yargs also sets each flag's camel-case twin (asGroup for --as-group): an array flag's twin is an array too.
        const kebab = key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
        if (key === '_' || arrays.has(key) || arrays.has(kebab) || !Array.isArray(value)) continue;
        const values = [...new Set(value.map(String))];
        if (values.length > 1) throw new UsageError(`${flagName(key)} was given more than once (${values.join(', ')})`, { hint: `give ${flagName(key)} once` });
        args[key] = value[0];
      }
      session = new sessionModule.Session(args as unknown as GlobalArgs, io, options);
      activeSession = session;
      (args as Record<symbol, unknown>)[SESSION] = session;
    })
    .command(modules)
    .demandCommand(1, 'a command is required')
    .strict()
    // Messages in English whatever LANG/LC_ALL say: they are the plugin's (kubectl's are English too), and the usage
    // errors below are recognised by their English text.
    .locale('en')
    .help('help')
    .alias('help', 'h')
    .version('version', 'Show the plugin version', VERSION)
    .example('kubectl meshfed contexts --probe', 'See which clusters are reachable and run Istio')
    .epilogue("Exit codes: 0 success, 1 error, 2 usage, 3 checks failed (verify), 129 SIGHUP, 130 interrupted (Ctrl-C), 143 SIGTERM.\nRun 'kubectl meshfed <command> --help' for a command's flags and examples.")
    .wrap(Math.min(110, (io.stdout as { columns?: number }).columns ?? 100))
    .exitProcess(false)
    .fail((message, error) => {
      // yargs reports its own parse errors (a flag without its value) as YError: usage errors like the others.
      if (error && error.name !== 'YError') throw error;
      message = error?.message ?? message;
      const missingValue = /^Not enough arguments following: (.*)$/.exec(message ?? '');
      if (missingValue) throw new UsageError(`flag ${flagName(missingValue[1]!)} needs a value`);
      const invalid = /^Invalid values:\s*Argument: (.*), Given: (.*), Choices: (.*)$/s.exec(message ?? '');
      if (invalid) {
        const choices = invalid[3]!.split(', ').map((choice) => choice.replace(/^"(.*)"$/, '$1'));
        throw new UsageError(`invalid ${flagName(invalid[1]!)} ${invalid[2]!.trim()}: choose ${choices.join(' or ')}`);
      }
      const unknown = /^Unknown arguments?: (.*)$/.exec(message ?? '');
      if (unknown) {
        // yargs names an unknown --gateway-selector twice, also as its camel-case twin: keep the form typed.
        const names = unknown[1]!.split(', ');
        // A word the command takes no positional argument for (`export postgres`): yargs reports it with the flags.
        const typedAsFlag = (name: string) => argv.some((arg) => arg === flagName(name) || arg.startsWith(`${flagName(name)}=`));
        const words = names.filter((name) => argv.includes(name) && !typedAsFlag(name));
        if (words.length) {
          const command = argv.find((arg) => !arg.startsWith('-'));
          throw unknownCommand(argv) ?? new UsageError(`unexpected argument${words.length > 1 ? 's' : ''} ${words.map((word) => `"${word}"`).join(', ')}: ${command} takes its values as flags`, {
            hint: `see the flags with kubectl meshfed ${command} --help`,
          });
        }
        const kebab = (name: string) => name.replace(/[A-Z]/g, (letter) => `-${letter.toLowerCase()}`);
        const flags = names.filter((name) => !(/[A-Z]/.test(name) && names.includes(kebab(name)))).map(flagName);
        // While a command is parsed the parser holds that command's flags: the ones a typo can be close to.
        // getOptions exists at run time but is missing from @types/yargs.
        const known = Object.keys((parser as unknown as { getOptions(): { key: Record<string, unknown> } }).getOptions().key);
        const close = flags.length === 1 ? known.filter((name) => name.length > 1 && editDistance(name, flags[0]!.replace(/^-+/, '')) <= 2) : [];
        throw unknownCommand(argv) ?? new UsageError(`unknown flag${flags.length > 1 ? 's' : ''}: ${flags.join(', ')}`, {
          ...(close.length ? { hint: `did you mean ${close.map((name) => flagName(name)).join(' or ')}?` } : {}),
        });
      }
      throw unknownCommand(argv) ?? new UsageError(message);
    });
  parser.showHelpOnFail(false);
  skipHelpCache(parser);

  try {
    await parser.parseAsync(argv, {}, (error, _parsed, output) => {
      // yargs hands --help/--version text here instead of printing it (because of the callback): data to stdout.
      if (!error && output) {
        io.stdout.write(output.endsWith('\n') ? output : output + '\n');
      }
    });
    // A signal the command outlived (it came after the last request) still ends it as interrupted: never swallowed.
    if (session?.interruptedBy) {
      reportInterruption(session);
      return SIGNAL_EXIT_CODES[session.interruptedBy];
    }
    return ExitCode.ok;
  } catch (error) {
    const ui = session?.ui ?? fallbackUi;
    // Once a signal came, whatever the command failed with on the way out (an aborted request, a cleanup) is the
    // signal's doing: the exit code is the signal's.
    if (session?.interruptedBy) {
      if (!(error instanceof InterruptedError)) ui.debug(`while stopping: ${(error as Error)?.message ?? String(error)}`);
      reportInterruption(session);
      if (ui.verbose && error instanceof Error && error.stack) io.stderr.write(error.stack + '\n');
      return SIGNAL_EXIT_CODES[session.interruptedBy];
    }
    const code = exitCodeFor(error);
    if (error instanceof UsageError) {
      ui.error(error.message, error.hint);
      // Point at the help of the command the user ran, whose flags are the ones they got wrong.
      const named = namedCommands(argv);
      io.stderr.write(`See 'kubectl meshfed ${named.length === 1 ? `${commandName(named[0]!)} ` : ''}--help' for usage.\n`);
    } else if (error instanceof MeshfedError || (error && typeof error === 'object' && 'exitCode' in error)) {
      if (!(error instanceof InterruptedError)) ui.error((error as Error).message, (error as MeshfedError).hint);
      else ui.info('interrupted');
    } else if (code === ExitCode.interrupted) {
      ui.info('interrupted');
    } else {
      ui.error(`unexpected error: ${(error as Error)?.message ?? String(error)}`, ui.verbose ? undefined : 'run again with -v for details');
    }
    if (ui.verbose && error instanceof Error && error.stack) io.stderr.write(error.stack + '\n');
    return code;
  } finally {
    if (session) {
      const retries = session.retryCount();
      session.ui.debug(`${session.requestCount()} API request(s)${retries ? `, ${retries} of them retries` : ''}`);
      session.close();
    }
  }
}

/**
 * The last words of an interrupted command: which signal, and, when it was applying, what it wrote before it
 * stopped (nothing is written after the signal) and that running it again finishes the job.
 */
function reportInterruption(session: Session): void {
  const ui = session.ui;
  const { done, unanswered, recording } = session.journal;
  ui.info(`interrupted (${session.interruptedBy})`);
  if (!recording) return;
  if (done.length === 0 && unanswered.length === 0) {
    ui.info('Nothing was written: the command stopped before its first write.');
    return;
  }
  ui.info(`Stopped before the next write. Applied before the signal (${done.length}):`);
  for (const entry of done) ui.info(`  ${entry}`);
  if (unanswered.length) {
    ui.info(`In flight when the signal came, so possibly applied (${unanswered.length}):`);
    for (const entry of unanswered) ui.info(`  ${entry}`);
  }
  ui.info('Run the same command again to finish: it applies only what is missing.');
}

/** The session of the invocation in progress, so that signals can reach it. */
let activeSession: Session | undefined;

/** How long a stopping command may take to clean up before the process ends anyway (a backstop, never reached by the
 * commands' own cleanups, whose deadlines are shorter). */
const STOP_BACKSTOP_MS = 20_000;

const SIGNAL_WORDS: Record<HandledSignal, string> = { SIGINT: 'interrupted', SIGTERM: 'terminated', SIGHUP: 'hung up' };

/** Entry point of bin/kubectl-meshfed. */
export async function run(): Promise<void> {
  const io: TerminalIO = { stdin: process.stdin, stdout: process.stdout, stderr: process.stderr, env: process.env };
  // `kubectl meshfed status | head -1`: the reader is gone and wants no more; stop quietly, as a shell tool does
  // (Node would otherwise end with an unhandled EPIPE stack trace).
  for (const stream of [process.stdout, process.stderr]) {
    stream.on('error', (error: NodeJS.ErrnoException) => {
      if (error.code !== 'EPIPE') throw error;
      process.exit(process.exitCode ?? ExitCode.ok);
    });
  }
  // SIGINT (Ctrl-C), SIGTERM (a cancelled CI job), SIGHUP (the terminal closed): the first one aborts the command's
  // requests; the command deletes what it must not leave behind (the probe pod) and ends with 128 + the signal's
  // number. A second one while such a cleanup runs lets it finish (it has its own short deadline); otherwise, or on a
  // third one, the process ends at once.
  for (const signal of Object.keys(SIGNAL_EXIT_CODES) as HandledSignal[]) {
    process.on(signal, () => {
      const action = activeSession?.interrupt(signal) ?? 'exit';
      if (action === 'stop') {
        io.stderr.write(`\n${signal}: stopping (cleaning up first)\n`);
        setTimeout(() => process.exit(SIGNAL_EXIT_CODES[signal]), STOP_BACKSTOP_MS).unref();
        return;
      }
      if (action === 'cleaning-up') {
        io.stderr.write(`\n${signal}: still cleaning up (a few seconds at most); send it again to quit at once\n`);
        return;
      }
      if (activeSession) reportInterruption(activeSession);
      else io.stderr.write(`\n${SIGNAL_WORDS[signal]}\n`);
      process.exit(SIGNAL_EXIT_CODES[activeSession?.interruptedBy ?? signal]);
    });
  }
  process.exitCode = await main(process.argv.slice(2), io);
  // The command that ran, for bin/kubectl-meshfed's code cache of that command (written as the process exits).
  const named = namedCommands(process.argv.slice(2));
  if (named.length === 1) (globalThis as Record<symbol, unknown>)[Symbol.for('kubectl-meshfed.command')] = commandName(named[0]!);
}
