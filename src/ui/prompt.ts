import { InputError, UsageError } from '../errors.js';
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

  /**
   * Asks to pick one of `choices`; `flag` names the flag that gives the value without a prompt. A question with one
   * possible answer is not asked: the answer is shown as if picked. No answer at all is an error saying why
   * (`options.none`), never an empty list to pick from.
   */
  async select<T>(flag: string, message: string, choices: Choice<T>[], defaultValue?: T, options: { none?: string } = {}): Promise<T> {
    if (choices.length === 0) {
      throw new InputError(`nothing to choose for ${flag}: ${options.none ?? 'there is no choice'}`, { hint: `pass ${flag}, or create what it names first` });
    }
    this.ensureInteractive(flag);
    if (choices.length === 1) {
      this.ui.info(`${this.ui.err.green('✔')} ${this.ui.err.bold(message)} ${this.ui.err.cyan(choices[0]!.name)} (the only choice)`);
      return choices[0]!.value;
    }
    const { select } = await import('@inquirer/prompts');
    return select<T>({ message, choices, default: defaultValue, pageSize: 12 }, this.context());
  }

  /**
   * Asks for text; `validate` returns true or an error message, shown at once under the prompt, which asks again
   * (validation happens per answer, not after every question).
   */
  async input(flag: string, message: string, options: { default?: string; validate?: (value: string) => true | string | Promise<true | string> } = {}): Promise<string> {
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
