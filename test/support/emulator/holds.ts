/**
 * Holds: a deterministic way to make requests interleave. A hold keeps the requests that match it waiting until
 * `parties` different users (bearer tokens) each have one waiting, then lets them all go on at once. Give every
 * concurrent client its own token and hold their first writes with `parties` = the number of clients: every client
 * has then read the cluster before any of them writes, the interleaving that loses updates when writes are not
 * guarded. No sleeps: the hold opens when the last party arrives.
 */

/** What a hold waits for. */
export interface Hold {
  /** HTTP method; default: any method but GET (writes). */
  method?: string;
  /** Exact path, or a pattern tested against the path (without query); default: any path. */
  path?: RegExp | string;
  /** How many distinct users must have a matching request waiting before all are let through; default 1. */
  parties?: number;
  /**
   * A safety net, not a synchronisation: release anyway after this long (default 60 s), so that a test whose
   * parties never all arrive fails on its assertions (see {@link HoldHandle.reached}) instead of hanging.
   */
  timeoutMs?: number;
}

/** A hold once added. */
export interface HoldHandle {
  /** Resolves when the hold opens: true when every party arrived, false when it opened on its timeout or by {@link release}. */
  readonly opened: Promise<boolean>;
  /** Requests held so far (those let through included). */
  readonly held: number;
  /** Opens the hold now. */
  release(): void;
}

interface ActiveHold extends HoldHandle {
  matches(method: string, path: string): boolean;
  wait(user: string): Promise<void>;
  readonly done: boolean;
}

/** The holds of one cluster, tried in the order they were added; each opens once. */
export class Holds {
  private readonly active: ActiveHold[] = [];

  add(spec: Hold): HoldHandle {
    const parties = spec.parties ?? 1;
    const waiting: Array<() => void> = [];
    const users = new Set<string>();
    let done = false;
    let held = 0;
    let settle!: (reached: boolean) => void;
    const opened = new Promise<boolean>((resolve) => (settle = resolve));
    const open = (reached: boolean) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      this.active.splice(this.active.indexOf(hold), 1);
      for (const go of waiting.splice(0)) go();
      settle(reached);
    };
    const timer = setTimeout(() => open(false), spec.timeoutMs ?? 60_000);
    timer.unref();
    const hold: ActiveHold = {
      opened,
      get held() { return held; },
      get done() { return done; },
      release: () => open(false),
      matches: (method, path) => {
        const methodOk = spec.method ? spec.method.toUpperCase() === method : method !== 'GET';
        const pathOk = spec.path === undefined || (typeof spec.path === 'string' ? spec.path === path : spec.path.test(path));
        return methodOk && pathOk;
      },
      wait: (user) => new Promise<void>((resolve) => {
        held += 1;
        waiting.push(resolve);
        users.add(user);
        if (users.size >= parties) open(true);
      }),
    };
    this.active.push(hold);
    return hold;
  }

  /** Waits while a hold matching the request is closed (no-op when none matches). */
  async pass(method: string, path: string, user: string): Promise<void> {
    const hold = this.active.find((h) => !h.done && h.matches(method, path));
    if (hold) await hold.wait(user);
  }

  /** Opens every hold (when the cluster stops). */
  releaseAll(): void {
    for (const hold of [...this.active]) hold.release();
  }
}
