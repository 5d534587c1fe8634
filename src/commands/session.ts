import { UsageError } from '../errors.js';
import { KubeClient } from '../kube/client.js';
import { loadKubeconfig, type Kubeconfig, type ResolvedContext } from '../kube/kubeconfig.js';
import { parseDuration } from '../options.js';
import { Prompter } from '../ui/prompt.js';
import { Ui, type TerminalIO } from '../ui/terminal.js';

/** Global flags, shared by every command (see src/cli.ts). */
export interface GlobalArgs {
  /** `--kubeconfig`: one kubeconfig file instead of KUBECONFIG / ~/.kube/config. */
  kubeconfig?: string;
  /** `--context`: the context the command acts on; default: the kubeconfig's current context. */
  context?: string;
  /** `-n/--namespace`: default: the context's namespace, else `default`. */
  namespace?: string;
  /** `--request-timeout`: per request, kubectl syntax (`0` = none). Default `0`. */
  'request-timeout': string;
  /** `-o/--output`. */
  output?: string;
  /** `-y/--yes`: never prompt. */
  yes: boolean;
  /** false with `--no-color`. */
  color: boolean;
  /** `-v/--verbose`. */
  verbose: boolean;
}

/**
 * What a command handler works with: the terminal, prompts, the kubeconfig and one client per context. Built once per
 * invocation from the global flags; nothing is read before a command needs it.
 */
export class Session {
  readonly ui: Ui;
  readonly prompter: Prompter;
  private loaded: Kubeconfig | undefined;
  private readonly clients = new Map<string, KubeClient>();
  readonly requestTimeoutMs: number;
  private readonly interruption = new AbortController();
  private interruptibleSections = 0;

  constructor(readonly args: GlobalArgs, readonly io: TerminalIO) {
    this.ui = new Ui(io, { noColor: args.color === false, yes: args.yes, verbose: args.verbose });
    this.prompter = new Prompter(this.ui);
    this.requestTimeoutMs = parseDuration(args['request-timeout'], '--request-timeout');
  }

  /** The merged kubeconfig (loaded on first use). */
  kubeconfig(): Kubeconfig {
    this.loaded ??= loadKubeconfig({ explicitPath: this.args.kubeconfig, env: this.io.env });
    return this.loaded;
  }

  /** A resolved context: `name`, else `--context`, else the current context. */
  context(name?: string, flag = '--context'): ResolvedContext {
    return this.kubeconfig().context(name ?? this.args.context, flag);
  }

  /** The client of one context (created once; each context has its own credentials). */
  client(contextName?: string, flag = '--context', timeoutMs = this.requestTimeoutMs): KubeClient {
    const context = this.context(contextName, flag);
    const key = `${context.name}\u0000${timeoutMs}`;
    let client = this.clients.get(key);
    if (!client) {
      client = new KubeClient(context, { timeoutMs, userAgent: 'kubectl-meshfed' });
      this.clients.set(key, client);
    }
    return client;
  }

  /** The namespace a command acts in: `-n`, else the context's default namespace, else `default`. */
  namespace(contextName?: string): string {
    return this.args.namespace ?? this.context(contextName).namespace ?? 'default';
  }

  /** The `-o` value, checked against what the command supports. */
  outputFormat<T extends string>(allowed: readonly T[]): T | undefined {
    const value = this.args.output;
    if (value === undefined || value === '') return undefined;
    if (!(allowed as readonly string[]).includes(value)) {
      throw new UsageError(`unsupported output format "${value}" for -o/--output`, { hint: `allowed: ${allowed.join(', ')}` });
    }
    return value as T;
  }

  /**
   * Runs `section` so that the first Ctrl-C aborts the signal it is given (the section cleans up, e.g. deletes its
   * probe pod, then throws InterruptedError) instead of ending the process at once. A second Ctrl-C still exits
   * immediately. The CLI root owns SIGINT and asks {@link interrupt} first.
   */
  async interruptible<T>(section: (signal: AbortSignal) => Promise<T>): Promise<T> {
    this.interruptibleSections += 1;
    try {
      return await section(this.interruption.signal);
    } finally {
      this.interruptibleSections -= 1;
    }
  }

  /** Called by the CLI root on SIGINT: true when an interruptible section takes care of it. */
  interrupt(): boolean {
    if (this.interruptibleSections === 0 || this.interruption.signal.aborted) return false;
    this.interruption.abort();
    return true;
  }

  /** Total requests sent to all clusters (shown with --verbose). */
  requestCount(): number {
    let total = 0;
    for (const client of this.clients.values()) total += client.requestCount;
    return total;
  }

  close(): void {
    for (const client of this.clients.values()) client.close();
  }
}

