/**
 * Drives the built plugin on a real terminal, as a person does: each run gets a tmux server of its own (its own
 * socket), a 160×50 window running `kubectl meshfed …`, and a screen that tests read with `capture-pane`. Nothing
 * waits a fixed time: each step waits until the screen shows what it expects (with a generous deadline), then types.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { delimiter } from 'node:path';
import { promisify } from 'node:util';
import { binDir } from './cli.js';

const exec = promisify(execFile);

/** How long a step waits for its text before the test fails with the screen it saw. */
const STEP_DEADLINE_MS = 60_000;

const quote = (word: string) => `'${word.replace(/'/g, `'\\''`)}'`;

/** A plugin run in a tmux window. */
export interface TerminalRun {
  /** The whole screen so far (scrollback included), without trailing blanks. */
  screen(): Promise<string>;
  /**
   * Waits until the screen matches, and returns the match. Prompts redraw in place, so patterns name a state that
   * shows once: an open question starts its line with `? `, an answered one with `✔ `.
   */
  waitFor(pattern: RegExp, deadlineMs?: number): Promise<RegExpExecArray>;
  /** Types text literally. */
  type(text: string): Promise<void>;
  /** Presses keys by tmux name: Enter, Down, Up, BSpace… */
  press(...keys: string[]): Promise<void>;
  /** Waits for the command to end and returns its exit code. */
  exitCode(deadlineMs?: number): Promise<number>;
  /** Ends the tmux server. */
  close(): Promise<void>;
}

/** Starts `kubectl meshfed <args>` in a new tmux server, with `kubeconfig`, in `cwd`. */
export async function startTerminal(args: string[], options: { kubeconfig: string; cwd: string }): Promise<TerminalRun> {
  const socket = `meshfed-test-${randomBytes(6).toString('hex')}`;
  const tmux = (...words: string[]) => exec('tmux', ['-L', socket, ...words], { encoding: 'utf8' });
  const env = {
    PATH: `${binDir}${delimiter}${process.env.PATH ?? ''}`,
    HOME: process.env.HOME ?? '/tmp',
    KUBECONFIG: options.kubeconfig,
    TERM: 'xterm-256color',
    NO_COLOR: '1',
    LANG: 'C.UTF-8',
    LC_ALL: 'C.UTF-8',
  };
  const command = `cd ${quote(options.cwd)} && env ${Object.entries(env).map(([k, v]) => `${k}=${quote(v)}`).join(' ')} kubectl meshfed ${args.map(quote).join(' ')}; echo "[meshfed exited: $?]"; exec sleep 3600`;
  await tmux('-f', '/dev/null', 'new-session', '-d', '-s', 'main', '-x', '160', '-y', '50', 'sh', '-c', command);
  // History for the whole conversation, so that nothing scrolls out of capture-pane.
  await tmux('set-option', '-t', 'main', 'history-limit', '50000');
  const screen = async () => (await tmux('capture-pane', '-p', '-J', '-t', 'main', '-S', '-50000')).stdout.replace(/\s+$/, '');
  const until = async <T>(what: string, probe: (text: string) => T | undefined, deadlineMs: number): Promise<T> => {
    const deadline = Date.now() + deadlineMs;
    for (;;) {
      const text = await screen();
      const found = probe(text);
      if (found !== undefined) return found;
      if (Date.now() > deadline) throw new Error(`the terminal did not show ${what} within ${deadlineMs / 1000}s; it shows:\n${text}`);
      // The command ended: what it did not show, it will not show.
      if (/\[meshfed exited: \d+\]/.test(text) && !what.includes('end of the command')) throw new Error(`the command ended without showing ${what}; the terminal shows:\n${text}`);
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  };
  return {
    screen,
    async waitFor(pattern, deadlineMs = STEP_DEADLINE_MS) {
      return until(String(pattern), (text) => pattern.exec(text) ?? undefined, deadlineMs);
    },
    async type(text) {
      await tmux('send-keys', '-t', 'main', '-l', text);
    },
    async press(...keys) {
      await tmux('send-keys', '-t', 'main', ...keys);
    },
    async exitCode(deadlineMs = STEP_DEADLINE_MS) {
      return until('the end of the command', (text) => {
        const match = /\[meshfed exited: (\d+)\]/.exec(text);
        return match ? Number(match[1]) : undefined;
      }, deadlineMs);
    },
    async close() {
      await tmux('kill-server').catch(() => undefined);
    },
  };
}
