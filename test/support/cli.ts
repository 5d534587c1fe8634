/**
 * Runs the plugin: {@link runMeshfed} the way a user does (`kubectl meshfed …` with the repo's bin/ first on PATH,
 * as a subprocess of the build; build first: `npm test` does), {@link runCli} in this process (the CLI's `main` from
 * the sources, with its own streams and environment: no process to start, so most CLI tests use it).
 */
import { spawn } from 'node:child_process';
import { PassThrough, Readable } from 'node:stream';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import YAML from 'yaml';
import type { RetryWait } from '../../src/kube/client.js';
import type { SessionOptions } from '../../src/commands/session.js';

export const repoRoot = fileURLToPath(new URL('../..', import.meta.url));
export const binDir = join(repoRoot, 'bin');

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  durationMs: number;
}

export interface CliOptions {
  /** Extra environment; the variables below are always cleared unless given here. */
  env?: Record<string, string | undefined>;
  /** Text for stdin; default: stdin is closed (no terminal, as in CI). */
  input?: string;
  /** Run `kubectl-meshfed` directly instead of through `kubectl`. */
  direct?: boolean;
  /** Kill the process after this long (default 60 s). */
  timeoutMs?: number;
  /** Where a runner could do either: run a subprocess of the build rather than in this process. */
  subprocess?: boolean;
  /**
   * In this process ({@link runCli}): wait out each retry's backoff and `Retry-After` as the program does. Default:
   * retries go at once — the client still decides each retry and its wait, and `-v` says so, but does not wait it.
   */
  realRetryWaits?: boolean;
  /**
   * In this process ({@link runCli}): the session's timers, e.g. a `BoundClock`'s `timer` (test/support/clock.ts) as
   * `boundTimer` (bounds that also run out on the test's events), or a `pause` during which the test makes happen what
   * the paused command waits for.
   */
  session?: Omit<SessionOptions, 'retryWait'>;
}

/**
 * The environment of a CLI run: this process's, without the variables that change what the CLI prints (colour, the
 * user's kubeconfig), with a home of its own and the locale pinned (messages must not depend on the machine's), then
 * `extra`. Variables set to undefined are removed.
 */
function cliEnv(extra: Record<string, string | undefined> = {}): Record<string, string> {
  const env: Record<string, string | undefined> = {
    ...process.env,
    NO_COLOR: undefined,
    FORCE_COLOR: undefined,
    KUBECONFIG: undefined,
    LANG: 'C.UTF-8',
    LC_ALL: 'C.UTF-8',
    LC_MESSAGES: undefined,
    LANGUAGE: undefined,
    HOME: mkdtempSync(join(tmpdir(), 'meshfed-home-')),
    ...extra,
    PATH: `${binDir}${delimiter}${process.env.PATH ?? ''}`,
  };
  for (const key of Object.keys(env)) if (env[key] === undefined) delete env[key];
  return env as Record<string, string>;
}

/**
 * Runs `kubectl meshfed <args>` in this process: the CLI's `main` with streams of its own (no terminal) and the
 * environment of {@link cliEnv}; resolves with what the user would see, as {@link runMeshfed} does. For what a
 * subprocess adds nothing to: not for the launcher, signals, or the process's locale (see runMeshfed). Failed requests
 * are retried as the program retries them, without waiting out the backoff (see {@link CliOptions.realRetryWaits}).
 */
export async function runCli(args: string[], options: Omit<CliOptions, 'direct' | 'timeoutMs'> = {}): Promise<CliResult> {
  const { main } = await import('../../src/cli.js');
  const collect = () => {
    const stream = new PassThrough();
    let text = '';
    stream.setEncoding('utf8').on('data', (chunk: string) => (text += chunk));
    return { stream, text: () => text };
  };
  const stdout = collect();
  const stderr = collect();
  const started = Date.now();
  const code = await main(args, {
    stdin: Readable.from(options.input ? [options.input] : []),
    stdout: stdout.stream,
    stderr: stderr.stream,
    env: cliEnv(options.env),
  }, { ...options.session, ...(options.realRetryWaits ? {} : { retryWait: retryAtOnce }) });
  // Let the collectors take the last chunks written.
  await new Promise((resolve) => setImmediate(resolve));
  return { code, signal: null, stdout: stdout.text(), stderr: stderr.text(), durationMs: Date.now() - started };
}

/** A retry's wait that is not waited: the next attempt goes at once (an interrupt is still seen before it). */
const retryAtOnce: RetryWait = async () => undefined;

/** Runs `kubectl meshfed <args>` as a subprocess and resolves with what the user would see. */
export function runMeshfed(args: string[], options: CliOptions = {}): Promise<CliResult> {
  const env = cliEnv(options.env);
  const [command, argv] = options.direct ? [join(binDir, 'kubectl-meshfed'), args] : ['kubectl', ['meshfed', ...args]];
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const child = spawn(command, argv, { env: env as NodeJS.ProcessEnv, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 60_000);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr, durationMs: Date.now() - started });
    });
    child.stdin.end(options.input ?? '');
  });
}

/** A kubeconfig context for {@link writeKubeconfig}. */
export interface ContextSpec {
  name: string;
  server: string;
  cluster?: string;
  user?: string;
  namespace?: string;
  token?: string;
  caPem?: string;
  tlsServerName?: string;
}

/** Writes a kubeconfig file with the given contexts (each with its own cluster and user) and returns its path. */
export function writeKubeconfig(contexts: ContextSpec[], currentContext?: string, dir = mkdtempSync(join(tmpdir(), 'meshfed-kc-'))): string {
  const config = {
    apiVersion: 'v1',
    kind: 'Config',
    'current-context': currentContext ?? '',
    clusters: contexts.map((c) => ({
      name: c.cluster ?? c.name,
      cluster: {
        server: c.server,
        ...(c.caPem ? { 'certificate-authority-data': Buffer.from(c.caPem).toString('base64') } : {}),
        ...(c.tlsServerName ? { 'tls-server-name': c.tlsServerName } : {}),
      },
    })),
    users: contexts.map((c) => ({ name: c.user ?? `${c.name}-user`, user: { token: c.token ?? 'token' } })),
    contexts: contexts.map((c) => ({
      name: c.name,
      context: { cluster: c.cluster ?? c.name, user: c.user ?? `${c.name}-user`, ...(c.namespace ? { namespace: c.namespace } : {}) },
    })),
  };
  const path = join(dir, `kubeconfig-${Math.random().toString(36).slice(2, 8)}.yaml`);
  writeFileSync(path, YAML.stringify(config));
  return path;
}

/** ANSI colour escape sequences present? */
export function hasAnsi(text: string): boolean {
  // eslint-disable-next-line no-control-regex
  return /\u001b\[\d+(;\d+)*m/.test(text);
}

/** One step of a conversation: wait until the screen shows `expect`, then type `keys`. */
export interface ConversationStep {
  expect: RegExp;
  keys: string;
}

// eslint-disable-next-line no-control-regex
const plain = (text: string) => text.replace(/\u001b\[[0-9;?]*[A-Za-z]/g, '').replace(/\r/g, '');

/**
 * Runs `kubectl meshfed <args>` on a pseudo-terminal (util-linux `script`) against `kubeconfig` and answers the
 * prompts as a person would; resolves with the exit code and the screen without escape sequences. Killed after
 * `timeoutMs` (default 60 s).
 */
export function converse(kubeconfig: string, args: string[], steps: ConversationStep[], timeoutMs = 60_000): Promise<{ code: number | null; screen: string }> {
  const command = ['kubectl', 'meshfed', ...args].map((a) => `'${a.replace(/'/g, "'\\''")}'`).join(' ');
  // A pseudo-terminal made by script has no size unless told; real terminals have one.
  const child = spawn('script', ['-qfec', `stty cols 160 rows 50; ${command}`, '/dev/null'], {
    env: { ...process.env, KUBECONFIG: kubeconfig, PATH: `${binDir}${delimiter}${process.env.PATH ?? ''}`, TERM: 'xterm', NO_COLOR: '1', COLUMNS: '160' },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let screen = '';
  let consumed = 0;
  let step = 0;
  const advance = () => {
    while (step < steps.length) {
      const match = steps[step]!.expect.exec(plain(screen).slice(consumed));
      if (!match) return;
      consumed += match.index + match[0].length;
      child.stdin.write(steps[step]!.keys);
      step += 1;
    }
  };
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
    screen += chunk;
    // Let the prompt finish drawing before answering.
    setTimeout(advance, 150);
  });
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (screen += chunk));
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, screen: plain(screen) });
    });
  });
}
