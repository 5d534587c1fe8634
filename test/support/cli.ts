/**
 * Runs the built plugin the way a user does: `kubectl meshfed …` with the repo's bin/ first on PATH, as a
 * subprocess, capturing stdout, stderr and the exit code. (Build first: `npm test` does.)
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import YAML from 'yaml';

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
}

/** Runs `kubectl meshfed <args>` and resolves with what the user would see. */
export function runMeshfed(args: string[], options: CliOptions = {}): Promise<CliResult> {
  const env: Record<string, string | undefined> = {
    ...process.env,
    NO_COLOR: undefined,
    FORCE_COLOR: undefined,
    KUBECONFIG: undefined,
    HOME: mkdtempSync(join(tmpdir(), 'meshfed-home-')),
    ...options.env,
    PATH: `${binDir}${delimiter}${process.env.PATH ?? ''}`,
  };
  // Remove variables set to undefined: spawn would pass the string "undefined".
  for (const key of Object.keys(env)) if (env[key] === undefined) delete env[key];
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
