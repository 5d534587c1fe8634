import type { Ui } from './terminal.js';

/** A unit of work shown to the user: animated on a terminal, plain lines otherwise. */
export interface Progress {
  /** Changes the text while the work goes on. */
  update(text: string): void;
  succeed(text?: string): void;
  fail(text?: string): void;
  /** Removes the spinner without a final line (for example before a prompt). */
  stop(): void;
}

/**
 * Starts a progress indicator on stderr. On a terminal it is an ora spinner; without one there is no animation, only
 * the final `√`/`×` line, so logs stay readable.
 */
export async function startProgress(ui: Ui, text: string): Promise<Progress> {
  const stderr = ui.io.stderr;
  if (!ui.animated) {
    let current = text;
    return {
      update: (next) => { current = next; },
      succeed: (final) => { stderr.write(`${ui.err.green('√')} ${final ?? current}\n`); },
      fail: (final) => { stderr.write(`${ui.err.red('×')} ${final ?? current}\n`); },
      stop: () => {},
    };
  }
  const { default: ora } = await import('ora');
  const spinner = ora({ text, stream: stderr, color: 'cyan' }).start();
  return {
    update: (next) => { spinner.text = next; },
    succeed: (final) => { spinner.stopAndPersist({ symbol: ui.err.green('√'), text: final ?? spinner.text }); },
    fail: (final) => { spinner.stopAndPersist({ symbol: ui.err.red('×'), text: final ?? spinner.text }); },
    stop: () => { spinner.stop(); },
  };
}
