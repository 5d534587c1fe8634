import { setMaxListeners } from 'node:events';
import { InterruptedError, UsageError, type HandledSignal } from '../errors.js';
import { DEFAULT_REQUEST_TIMEOUT_MS, KubeClient, userAgent, type KubeClientOptions, type KubeRequest, type KubeResponse } from '../kube/client.js';
import { preflightPermissions, type PreflightTarget } from '../kube/preflight.js';
import { describeRequest } from '../kube/request.js';
import { loadKubeconfig, type Kubeconfig, type ResolvedContext } from '../kube/kubeconfig.js';
import { impersonationFromArgs, parseDuration } from '../options.js';
import { Prompter } from '../ui/prompt.js';
import { Ui, type TerminalIO } from '../ui/terminal.js';

/**
 * A command retries failed requests (see src/kube/client.ts) only during its first ten minutes: a control plane that
 * keeps failing for longer ends the command with the last error rather than stretching it without bound.
 */
const RETRY_DEADLINE_MS = 10 * 60_000;

/** Global flags, shared by every command (see src/cli.ts). */
export interface GlobalArgs {
  /** `--kubeconfig`: one kubeconfig file instead of KUBECONFIG / ~/.kube/config. */
  kubeconfig?: string;
  /** `--context`: the context the command acts on; default: the kubeconfig's current context. */
  context?: string;
  /** `-n/--namespace`: default: the context's namespace, else `default`. */
  namespace?: string;
  /** `--request-timeout`: per request, kubectl syntax (`0` = none, as kubectl's). Default 30s ({@link DEFAULT_REQUEST_TIMEOUT_MS}). */
  'request-timeout'?: string;
  /** `-o/--output`. */
  output?: string;
  /** `-y/--yes`: never prompt. */
  yes: boolean;
  /** false with `--no-color`. */
  color: boolean;
  /** `-v/--verbose`: the log level, kubectl's `-v=N` (0 when not given, 1 for `-v` alone). */
  verbose: number;
}

/** How a command pauses (`verify --wait` between two probes): `ms`, ended early when `signal` aborts (an interrupt). */
export type Pause = (ms: number, signal: AbortSignal) => Promise<void>;

/**
 * What a caller of `main` other than the program itself may change (tests): how the session's clients wait before a
 * retry and time the bounds of an attempt, and how commands pause. The program passes none: real timers.
 */
export interface SessionOptions extends Pick<KubeClientOptions, 'retryWait' | 'boundTimer'> {
  /** Default: a real timer ({@link pauseTimer}). */
  pause?: Pause;
}

/** The real pause: resolves after `ms`, or at once when `signal` aborts. */
export const pauseTimer: Pause = (ms, signal) => new Promise<void>((resolve) => {
  const done = () => {
    clearTimeout(timer);
    signal.removeEventListener('abort', done);
    resolve();
  };
  const timer = setTimeout(done, ms);
  signal.addEventListener('abort', done, { once: true });
});

/** Writes sent once a command started applying, for the message an interrupt ends with. */
export interface WriteJournal {
  recording: boolean;
  /** Writes the server answered, in order: `created Secret istio-meshfed/x (context "c")`. */
  done: string[];
  /** Writes sent but aborted by the interrupt before an answer: the server may or may not have applied them. */
  unanswered: string[];
}

/** `-v` level from which every API request is logged, and from which their bodies are too (as kubectl's). */
export const LOG_REQUESTS_LEVEL = 6;
export const LOG_BODIES_LEVEL = 8;

/** A body for the log: Secret data (any Secret, also inside lists) replaced by its size, never its value. */
export function redactSecrets(body: unknown): unknown {
  if (Array.isArray(body)) return body.map(redactSecrets);
  if (!body || typeof body !== 'object') return body;
  const object = body as Record<string, unknown>;
  const redactValues = (values: unknown) => values && typeof values === 'object'
    ? Object.fromEntries(Object.entries(values).map(([key, value]) => [key, `<redacted: ${String(value).length} characters>`]))
    : values;
  const copy: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(object)) {
    copy[key] = object.kind === 'Secret' && (key === 'data' || key === 'stringData') ? redactValues(value)
      : key === 'metadata' ? value : redactSecrets(value);
  }
  return copy;
}

const PAST: Record<KubeRequest['method'], string> = { GET: 'read', POST: 'created', PUT: 'replaced', PATCH: 'applied', DELETE: 'deleted' };

/** A client that notes, in the session's journal, every write it sends while the journal records. */
class JournalingClient extends KubeClient {
  private readonly interruptSignal: AbortSignal | undefined;

  constructor(context: ResolvedContext, options: KubeClientOptions, private readonly journal: WriteJournal, private readonly level = 0, private readonly logLine?: (line: string) => void) {
    super(context, options);
    this.interruptSignal = options.signal;
  }

  override async request<T = unknown>(req: KubeRequest): Promise<KubeResponse<T>> {
    if (this.level < LOG_REQUESTS_LEVEL || !this.logLine) return this.journaled(req);
    const log = this.logLine;
    const query = new URLSearchParams(Object.entries(req.query ?? {}).filter((entry): entry is [string, string] => entry[1] !== undefined)).toString();
    const line = `${req.method} ${req.path}${query ? `?${query}` : ''} (context "${this.context.name}")`;
    if (this.level >= LOG_BODIES_LEVEL && req.body !== undefined) log(`Request body: ${JSON.stringify(redactSecrets(req.body))}`);
    const started = Date.now();
    try {
      const response = await this.journaled<T>(req);
      log(`${line} ${response.status} in ${Date.now() - started} milliseconds`);
      if (this.level >= LOG_BODIES_LEVEL) log(`Response body: ${JSON.stringify(redactSecrets(response.body))}`);
      return response;
    } catch (error) {
      log(`${line} failed in ${Date.now() - started} milliseconds: ${(error as Error).message}`);
      throw error;
    }
  }

  private async journaled<T>(req: KubeRequest): Promise<KubeResponse<T>> {
    const signal = req.signal ?? this.interruptSignal;
    // Questions (SelfSubjectAccessReviews) and dry runs write nothing.
    const question = req.path.endsWith('/selfsubjectaccessreviews');
    if (!this.journal.recording || req.method === 'GET' || question || req.query?.dryRun !== undefined || signal?.aborted) return super.request<T>(req);
    const what = describeRequest(req.method, req.path);
    const entry = `${PAST[req.method]} ${what.resource} ${what.namespace ? `${what.namespace}/` : ''}${what.name ?? ''} (context "${this.context.name}")`;
    try {
      const response = await super.request<T>(req);
      this.journal.done.push(entry);
      return response;
    } catch (error) {
      if (error instanceof InterruptedError) this.journal.unanswered.push(entry);
      throw error;
    }
  }
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
  /** The per-request timeout (ms): `--request-timeout`, else {@link DEFAULT_REQUEST_TIMEOUT_MS}; 0 = none. */
  readonly requestTimeoutMs: number;
  /** No request is retried after this time (epoch ms): the command's overall deadline for retries. */
  readonly retryDeadline: number;
  private readonly interruption = new AbortController();
  /** The first signal received, if any. */
  private received: HandledSignal | undefined;
  /** Sections that clean up what they created (the probe pod), running now. */
  private cleanupSections = 0;
  private waitedForCleanup = false;
  readonly journal: WriteJournal = { recording: false, done: [], unanswered: [] };

  /**
   * @param options `main`'s {@link SessionOptions}, the client options given to every client of the session: none when
   * run as a program.
   */
  constructor(readonly args: GlobalArgs, readonly io: TerminalIO, private readonly options: SessionOptions = {}) {
    // Every request in flight listens to the interrupt: a plan applies many objects at once.
    setMaxListeners(0, this.interruption.signal);
    this.ui = new Ui(io, { noColor: args.color === false, yes: args.yes, verbose: (args.verbose ?? 0) >= 1 });
    this.prompter = new Prompter(this.ui);
    const flag = args['request-timeout'];
    this.requestTimeoutMs = flag === undefined ? DEFAULT_REQUEST_TIMEOUT_MS : parseDuration(flag, '--request-timeout');
    this.requestTimeoutGiven = flag !== undefined;
    this.retryDeadline = Date.now() + RETRY_DEADLINE_MS;
  }

  private readonly requestTimeoutGiven: boolean;

  /**
   * The per-request timeout of a step that must never wait long (a probe): `--request-timeout` when given and not 0,
   * else `fallbackMs`.
   */
  boundedRequestTimeout(fallbackMs: number): number {
    return this.requestTimeoutGiven && this.requestTimeoutMs > 0 ? this.requestTimeoutMs : fallbackMs;
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

  /**
   * The client of one context (created once per timeout and deadline; each context has its own credentials).
   * `deadline` (epoch ms): a command's own bound, e.g. verify's `--timeout`; no retry may run past it.
   */
  client(contextName?: string, flag = '--context', timeoutMs = this.requestTimeoutMs, deadline?: number): KubeClient {
    const context = this.context(contextName, flag);
    const retryDeadline = Math.min(this.retryDeadline, deadline ?? Infinity);
    const key = `${context.name}\u0000${timeoutMs}\u0000${retryDeadline}`;
    let client = this.clients.get(key);
    if (!client) {
      client = new JournalingClient(context, {
        timeoutMs, userAgent: userAgent(), signal: this.interruption.signal, deadline: retryDeadline, env: this.io.env,
        impersonate: impersonationFromArgs(this.args as Parameters<typeof impersonationFromArgs>[0]),
        log: (message) => this.ui.debug(message),
        ...(this.options.retryWait ? { retryWait: this.options.retryWait } : {}),
        ...(this.options.boundTimer ? { boundTimer: this.options.boundTimer } : {}),
      }, this.journal, this.args.verbose ?? 0, (line) => this.ui.debug(line));
      this.clients.set(key, client);
    }
    return client;
  }

  /** Waits `ms` ({@link SessionOptions.pause}), or until the command is interrupted: then throws, as a request would. */
  async pause(ms: number): Promise<void> {
    await (this.options.pause ?? pauseTimer)(ms, this.interruption.signal);
    if (this.interruption.signal.aborted) throw new InterruptedError('interrupted', this.received);
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
   * Aborted by the first SIGINT, SIGTERM or SIGHUP (its reason is an {@link InterruptedError}): every request of the
   * session's clients in flight is aborted and no further one is sent, so the command stops where it is.
   */
  get signal(): AbortSignal {
    return this.interruption.signal;
  }

  /** The signal that interrupted the command, if one did. */
  get interruptedBy(): HandledSignal | undefined {
    return this.received;
  }

  /**
   * Runs `section`, which creates something it must remove again (the probe pod) and removes it in a `finally`
   * within a short deadline of its own, also once {@link signal} is aborted. A second signal while such a section
   * runs lets it finish its cleanup instead of ending the process at once.
   */
  async withCleanup<T>(section: (signal: AbortSignal) => Promise<T>): Promise<T> {
    this.cleanupSections += 1;
    try {
      return await section(this.interruption.signal);
    } finally {
      this.cleanupSections -= 1;
    }
  }

  /**
   * Called by the CLI root on SIGINT, SIGTERM and SIGHUP. `stop`: the first signal; the command stops and cleans up.
   * `cleaning-up`: a second signal while a cleanup runs; it is let finish (it has its own short deadline).
   * `exit`: nothing left to wait for (or a third signal): the process may end at once.
   */
  interrupt(signal: HandledSignal): 'stop' | 'cleaning-up' | 'exit' {
    if (!this.received) {
      this.received = signal;
      this.interruption.abort(new InterruptedError('interrupted', signal));
      return 'stop';
    }
    if (this.cleanupSections > 0 && !this.waitedForCleanup) {
      this.waitedForCleanup = true;
      return 'cleaning-up';
    }
    return 'exit';
  }

  /**
   * Called once a command is about to write (the apply step): checks in every cluster that the user may do every
   * write the plan needs (see src/kube/preflight.ts), and from then on notes each write, so that an interrupt can
   * say what was applied.
   * @throws ClusterError listing every missing permission, before anything is written
   */
  async beforeWrites(targets: readonly PreflightTarget[]): Promise<void> {
    this.journal.recording = true;
    const report = await preflightPermissions(targets);
    if (report.reviews > 0) this.ui.debug(`permissions checked: ${report.reviews} SelfSubjectAccessReview request(s)${report.skipped.length ? `; not checked in ${report.skipped.join(', ')}` : ''}`);
  }

  /** Total requests sent to all clusters, retries included (shown with --verbose). */
  requestCount(): number {
    let total = 0;
    for (const client of this.clients.values()) total += client.requestCount;
    return total;
  }

  /** Retries among {@link requestCount}. */
  retryCount(): number {
    let total = 0;
    for (const client of this.clients.values()) total += client.retryCount;
    return total;
  }

  close(): void {
    for (const client of this.clients.values()) client.close();
  }
}

