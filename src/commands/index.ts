import type { CommandModule } from 'yargs';
import { completionCommand } from './completion.js';
import { admitCommand } from './admit.js';
import { contextsCommand } from './contexts.js';
import { exportCommand } from './export.js';
import { importCommand } from './import.js';
import { revokeCommand } from './revoke.js';
import { statusCommand } from './status.js';
import { unexportCommand } from './unexport.js';
import { unimportCommand } from './unimport.js';
import { verifyCommand } from './verify.js';
import type { GlobalArgs } from './session.js';

/**
 * Every command of the plugin, in the order `--help` lists them. (yargs' commandDir does not work with ES modules,
 * so the list is explicit; a test checks that each is documented in the README.)
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export const commands: Array<CommandModule<GlobalArgs, any>> = [
  contextsCommand, exportCommand, importCommand, admitCommand, statusCommand, revokeCommand, unexportCommand, unimportCommand,
  verifyCommand, completionCommand,
];
