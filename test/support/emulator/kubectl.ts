/**
 * Runs the real `kubectl` against emulated clusters. Always asynchronous: the emulated API servers live in the
 * calling process, so a synchronous child process would block the very server it talks to.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** The outcome of one kubectl run. */
export interface KubectlResult {
  stdout: string;
  stderr: string;
  /** The exit code (0 on success). */
  code: number;
}

/** Options of {@link runKubectl}. */
export interface KubectlOptions {
  kubeconfig: string;
  /** `--context`; default the kubeconfig's current context. */
  context?: string;
  /** Written to kubectl's stdin (for `-f -`). */
  stdin?: string;
  /** The discovery cache directory; default a fresh temporary one, removed afterwards. */
  cacheDir?: string;
  /** Default 30 s. */
  timeoutMs?: number;
  /** Working directory for relative `-f` paths. */
  cwd?: string;
  /** Extra environment (e.g. HTTPS_PROXY). */
  env?: Record<string, string>;
}

/** The kubectl on PATH (a dispatcher choosing 1.27–1.33 from the server's version), overridable with $KUBECTL. */
export function kubectlBinary(): string {
  return process.env.KUBECTL ?? 'kubectl';
}

/** Runs kubectl with `args` and resolves with its output and exit code; never rejects on a non-zero exit. */
export function runKubectl(args: string[], options: KubectlOptions): Promise<KubectlResult> {
  const ownCache = options.cacheDir === undefined;
  const cacheDir = options.cacheDir ?? mkdtempSync(join(tmpdir(), 'meshfed-kubecache-'));
  const fullArgs = [...(options.context ? ['--context', options.context] : []), ...args];
  return new Promise((resolve) => {
    const child = execFile(
      kubectlBinary(),
      fullArgs,
      {
        env: { ...process.env, KUBECONFIG: options.kubeconfig, KUBECACHEDIR: cacheDir, NO_COLOR: '1', ...options.env },
        encoding: 'utf8',
        timeout: options.timeoutMs ?? 30_000,
        ...(options.cwd ? { cwd: options.cwd } : {}),
        maxBuffer: 16 * 1024 * 1024,
      },
      (err, stdout, stderr) => {
        if (ownCache) rmSync(cacheDir, { recursive: true, force: true });
        const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? ((err as { code: number }).code) : 1) : 0;
        resolve({ stdout, stderr, code });
      },
    );
    if (options.stdin !== undefined) child.stdin?.end(options.stdin);
    else child.stdin?.end();
  });
}
