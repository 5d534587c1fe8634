/**
 * The bounds of the API client's attempts (connect, TLS handshake, `--request-timeout`), run out on a test's events
 * instead of on the wall clock. A test whose server holds a request, or accepts a connection and says nothing, knows
 * when the client is waiting for what will not come: it says so with {@link BoundClock.elapse}, and the client cuts the
 * attempt, retries it and reports it exactly as after the real delay (same bound, same phase, same message). Every
 * bound also keeps its real timer: a test whose event never comes is slow, not wrong.
 */
import { realBoundTimer, type AttemptBound, type BoundTimer } from '../../src/kube/client.js';
import type { RequestRecord } from './emulator/index.js';

interface Running {
  bound: AttemptBound;
  /** When the real timer would run out (ms since epoch). */
  due: number;
  /** Cuts the attempt, unless its bound was stopped meanwhile. */
  elapse: () => void;
}

/** A {@link BoundTimer} for `runCli`'s `session.boundTimer` (or a client's `boundTimer`) that the test can advance. */
export class BoundClock {
  private readonly running = new Set<Running>();
  /** Events that came before the bound they end had started: each ends the first such bound to start. */
  private readonly early: Array<(bound: AttemptBound) => boolean> = [];
  /** Bounds run out by an event, for the test's asserts. */
  readonly elapsed: AttemptBound[] = [];

  readonly timer: BoundTimer = (bound, elapse) => {
    let stopped = false;
    const entry: Running = {
      bound, due: Date.now() + bound.ms,
      elapse: () => {
        if (stopped) return;
        stopped = true;
        stopReal();
        elapse();
      },
    };
    const stopReal = realBoundTimer(bound, () => {
      this.running.delete(entry);
      entry.elapse();
    });
    this.running.add(entry);
    const waiting = this.early.findIndex((matches) => matches(bound));
    if (waiting >= 0) {
      this.early.splice(waiting, 1);
      this.fire(entry);
    }
    return () => {
      stopped = true;
      this.running.delete(entry);
      stopReal();
    };
  };

  /**
   * The client waits for something that will not come (the server holds the request, or says nothing in the
   * handshake): of the running bounds that `matches`, the one that would run out first does now, as when the clock
   * reaches it. When none runs yet, the next one to start that matches runs out at once.
   */
  elapse(matches: (bound: AttemptBound) => boolean): void {
    const next = [...this.running].filter((entry) => matches(entry.bound)).sort((a, b) => a.due - b.due)[0];
    if (next) this.fire(next);
    else this.early.push(matches);
  }

  private fire(entry: Running): void {
    this.running.delete(entry);
    this.elapsed.push(entry.bound);
    // Not inside the caller: a bound runs out from a timer, never while its attempt is being set up.
    setImmediate(entry.elapse);
  }
}

/** The bounds of attempts sent to `server` (`https://host:port`). */
export const toServer = (server: string) => (bound: AttemptBound): boolean => new URL(bound.url).origin === new URL(server).origin;

/** The bounds of attempts of the request an emulated cluster at `server` logged as `record` (method, path and query). */
export const ofRecord = (server: string, record: Pick<RequestRecord, 'method' | 'path' | 'query'>) => (bound: AttemptBound): boolean => {
  const url = new URL(bound.url);
  const query = [...url.searchParams.entries()].sort();
  return url.origin === new URL(server).origin && bound.method === record.method && url.pathname === record.path
    && JSON.stringify(query) === JSON.stringify(Object.entries(record.query).sort());
};
