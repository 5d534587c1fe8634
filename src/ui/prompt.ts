import { UsageError } from '../errors.js';
import type { Ui } from './terminal.js';

/** One choice of a selection prompt. */
export interface Choice<T> {
  value: T;
  name: string;
  description?: string;
}

/**
 * Prompts. They are only ever shown when {@link Ui.interactive} is true (stdin and stderr are terminals and `--yes`
 * was not given); otherwise asking is a usage error naming the flag that would have given the value. Prompts write
 * to stderr so stdout stays clean for data.
 */
export class Prompter {
  constructor(private readonly ui: Ui) {}

  private ensureInteractive(flag: string): void {
    if (!this.ui.interactive) {
      throw new UsageError(`missing value for ${flag}`, { hint: `pass ${flag}, or run in a terminal to be asked` });
    }
  }

  private context() {
    return { input: this.ui.io.stdin, output: this.ui.io.stderr, clearPromptOnDone: false };
  }

  /** Asks to pick one of `choices`; `flag` names the flag that gives the value without a prompt. */
  async select<T>(flag: string, message: string, choices: Choice<T>[], defaultValue?: T): Promise<T> {
    this.ensureInteractive(flag);
    const { select } = await import('@inquirer/prompts');
    return select<T>({ message, choices, default: defaultValue, pageSize: 12 }, this.context());
  }

  /** Asks for text; `validate` returns true or an error message. */
  async input(flag: string, message: string, options: { default?: string; validate?: (value: string) => true | string } = {}): Promise<string> {
    this.ensureInteractive(flag);
    const { input } = await import('@inquirer/prompts');
    return input({ message, default: options.default, validate: options.validate }, this.context());
  }

  /** Asks yes/no. Without a terminal this is never called: callers require `--yes` instead. */
  async confirm(message: string, defaultValue = false): Promise<boolean> {
    this.ensureInteractive('--yes');
    const { confirm } = await import('@inquirer/prompts');
    return confirm({ message, default: defaultValue }, this.context());
  }
}
