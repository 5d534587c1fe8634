import type { CommandModule } from 'yargs';
import type { GlobalArgs } from './session.js';

/**
 * What a command module exports: its flags and help (`builder`) and its `handler`. The name and the one-line
 * description live in {@link commands}, so that the root can list every command without loading any of them.
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type CommandBody<A = any> = Pick<CommandModule<GlobalArgs, A>, 'builder' | 'handler'>;

/** A command as the root knows it before it is needed. */
export interface CommandEntry {
  /** The yargs command string: the name, then positional arguments (e.g. `completion [shell]`). */
  command: string;
  /** The line `--help` shows for it. */
  describe: string;
  /**
   * Loads the module that defines its flags and handler. Loaded only when the command line names the command:
   * most commands pull in the YAML parser, the PKI and the federation core, which `--help`, `--version` and the
   * other commands must not pay for at startup.
   */
  load(): Promise<CommandBody>;
}

/**
 * Every command of the plugin, in the order `--help` lists them. (yargs' commandDir does not work with ES modules,
 * so the list is explicit.)
 */
export const commands: readonly CommandEntry[] = [
  {
    command: 'contexts',
    describe: 'List kubeconfig contexts; with --probe, check which clusters run Istio and can federate',
    load: async () => (await import('./contexts.js')).contextsCommand,
  },
  {
    command: 'export',
    describe: 'Export one port of a Service from the provider cluster (federation gateway, CA, routes, authorization)',
    load: async () => (await import('./export.js')).exportCommand,
  },
  {
    command: 'import',
    describe: 'Import an export into the consumer cluster under a local name (admitting this cluster on the provider)',
    load: async () => (await import('./import.js')).importCommand,
  },
  {
    command: 'admit',
    describe: 'Provider side of the three-step flow: admit the consumer of an import request and write an export bundle',
    load: async () => (await import('./admit.js')).admitCommand,
  },
  {
    command: 'status',
    describe: 'Show the exports and imports of a cluster (service, port, mode, gateway, consumers, certificate expiry, state)',
    load: async () => (await import('./status.js')).statusCommand,
  },
  {
    command: 'revoke [NAME]',
    describe: 'Withdraw a consumer\'s admission to an export (its certificate is no longer accepted)',
    load: async () => (await import('./revoke.js')).revokeCommand,
  },
  {
    command: 'unexport [NAME]',
    describe: 'Remove an export: exactly the objects meshfed created for it (gateway and federation CA stay)',
    load: async () => (await import('./unexport.js')).unexportCommand,
  },
  {
    command: 'unimport [NAME]',
    describe: 'Remove an import: exactly the objects meshfed created for it (the egress gateway stays)',
    load: async () => (await import('./unimport.js')).unimportCommand,
  },
  {
    command: 'rotate',
    describe: 'Renew certificates without stopping traffic: server (provider), client (consumer, --from), federation CA (--ca, then --ca --finish)',
    load: async () => (await import('./rotate.js')).rotateCommand,
  },
  {
    command: 'uninstall',
    describe: 'Remove everything meshfed created in a cluster (gateways, CA, cluster id, records) once it exports and imports nothing',
    load: async () => (await import('./uninstall.js')).uninstallCommand,
  },
  {
    command: 'verify [NAME]',
    describe: 'Check an import across both clusters (a catalogue of checks with hints) and call it from a probe pod',
    load: async () => (await import('./verify.js')).verifyCommand,
  },
  {
    command: 'rbac',
    describe: 'Print the least-privilege RBAC of a role (provider, consumer, viewer) for a user, group or service account',
    load: async () => (await import('./rbac.js')).rbacCommand,
  },
  {
    command: 'completion [shell]',
    describe: 'Print a shell completion script (bash or zsh)',
    load: async () => (await import('./completion.js')).completionCommand,
  },
];

/** The name of a command (its first word), as typed on the command line. */
export function commandName(entry: CommandEntry): string {
  return entry.command.split(' ')[0]!;
}

/**
 * The commands a command line may select: every word that is a command name counts, since a flag's value can come
 * before the command (`--context c1 export`).
 */
export function namedCommands(argv: readonly string[]): CommandEntry[] {
  return commands.filter((entry) => argv.includes(commandName(entry)));
}

/**
 * The yargs modules for a command line: the commands it names ({@link namedCommands}) are loaded in full; the
 * others are listed by name and description only (the command line cannot select them, so their handlers never run).
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function commandModules(argv: readonly string[]): Promise<Array<CommandModule<GlobalArgs, any>>> {
  const named = namedCommands(argv);
  return Promise.all(commands.map(async (entry) => {
    const body: CommandBody = named.includes(entry) ? await entry.load() : { builder: {}, handler: () => undefined };
    return { command: entry.command, describe: entry.describe, ...body };
  }));
}
