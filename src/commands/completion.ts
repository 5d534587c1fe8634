import yargs from 'yargs';
import { UsageError } from '../errors.js';
import type { ClusterWriter } from '../kube/apply.js';
import type { GlobalArgs, Session } from './session.js';
import { withSession } from './run.js';
import { commandName, commands, type CommandBody } from './index.js';

interface CompletionArgs extends GlobalArgs {
  shell?: string;
}

const bash = `# kubectl meshfed completion for bash.
# Install: kubectl meshfed completion bash > ~/.local/share/bash-completion/completions/kubectl-meshfed
# For \`kubectl meshfed <TAB>\` (kubectl >= 1.26) also put bin/kubectl_complete-meshfed on your PATH.
_kubectl_meshfed_completions() {
  local cur_word="\${COMP_WORDS[COMP_CWORD]}"
  local -a candidates
  mapfile -t candidates < <(kubectl-meshfed --get-yargs-completions "\${COMP_WORDS[@]}" 2>/dev/null)
  mapfile -t COMPREPLY < <(compgen -W "\${candidates[*]}" -- "\${cur_word}")
  return 0
}
complete -o bashdefault -o default -F _kubectl_meshfed_completions kubectl-meshfed
`;

const zsh = `#compdef kubectl-meshfed
# kubectl meshfed completion for zsh.
# Install: kubectl meshfed completion zsh > "\${fpath[1]}/_kubectl-meshfed"
# For \`kubectl meshfed <TAB>\` (kubectl >= 1.26) also put bin/kubectl_complete-meshfed on your PATH.
_kubectl_meshfed() {
  local -a reply
  local si=$IFS
  IFS=$'\\n' reply=($(kubectl-meshfed --get-yargs-completions "\${words[@]}" 2>/dev/null))
  IFS=$si
  if [[ \${#reply} -gt 0 ]]; then _describe 'values' reply; else _default; fi
}
if [[ "\${zsh_eval_context[-1]}" == "loadautofunc" ]]; then
  _kubectl_meshfed "$@"
else
  compdef _kubectl_meshfed kubectl-meshfed
fi
`;

async function printCompletion(session: Session, args: CompletionArgs): Promise<void> {
  const shell = args.shell ?? (session.io.env.SHELL?.endsWith('zsh') ? 'zsh' : 'bash');
  if (shell === 'bash') session.ui.data(bash);
  else if (shell === 'zsh') session.ui.data(zsh);
  else throw new UsageError(`unsupported shell "${shell}"`, { hint: 'choose bash or zsh' });
}

/** How long completion may wait for a cluster before it offers nothing: a shell's TAB must not hang. */
const CLUSTER_TIMEOUT_MS = 2000;

/** `-o` values a command accepts (the others accept json and yaml). */
const OUTPUT_FORMATS: Record<string, string[]> = { contexts: ['json', 'yaml', 'wide'], completion: [] };

/** Flag values that are one of a fixed list. */
const FIXED_VALUES: Record<string, string[]> = { mode: ['boundary', 'shared-root'], 'dry-run': ['client', 'server', 'none'] };

/** What a command's NAME is: an export (on the provider) or an import (on the consumer). */
const NAME_KIND: Record<string, 'export' | 'import'> = { unexport: 'export', revoke: 'export', unimport: 'import', verify: 'import' };

interface FlagInfo {
  /** Long names (`kubeconfig`), without aliases' one-letter forms or yargs' camel-case twins. */
  names: string[];
  /** Long and short names of flags that take a value (`context`, `n`). */
  takesValue: Set<string>;
  /** Alias → the flag's long name (`n` → `namespace`). */
  canonical: Map<string, string>;
}

/** The flags of the root and, when named, of one command, read from their yargs definitions. */
async function flagsOf(command: string | undefined): Promise<FlagInfo> {
  const { globalOptions } = await import('../cli.js');
  const parser = globalOptions(yargs([]));
  const entry = commands.find((e) => commandName(e) === command);
  if (entry) {
    const body = await entry.load();
    if (typeof body.builder === 'function') body.builder(parser as never);
  }
  const options = (parser as unknown as { getOptions(): { key: Record<string, unknown>; alias: Record<string, string[]>; boolean: string[]; hiddenOptions: string[] } }).getOptions();
  const canonical = new Map<string, string>();
  for (const [name, aliases] of Object.entries(options.alias)) for (const alias of aliases) if (alias.length === 1) canonical.set(alias, name);
  // Positional arguments (`completion [shell]`) are words, not flags.
  const positionals = new Set([...(entry?.command ?? '').matchAll(/[[<]([^\]>]+)[\]>]/g)].map((m) => m[1]!));
  const longNames = Object.keys(options.key).filter((name) => name.length > 1 && !/[A-Z]/.test(name) && !canonical.has(name)
    && !options.hiddenOptions.includes(name) && !positionals.has(name));
  const booleans = new Set(options.boolean);
  const takesValue = new Set([...longNames, ...canonical.keys()].filter((name) => !booleans.has(canonical.get(name) ?? name)));
  return { names: [...longNames, 'help'], takesValue, canonical };
}

/** Names read from a cluster, or nothing when it is slow or refuses (completion never reports errors). */
async function fromCluster(env: Record<string, string | undefined>, kubeconfigPath: string | undefined, contextName: string | undefined, read: (writer: ClusterWriter, namespace: string) => Promise<string[]>, namespace?: string): Promise<string[]> {
  let timer: NodeJS.Timeout | undefined;
  try {
    const [{ loadKubeconfig }, { KubeClient }, { ClusterWriter }] = await Promise.all([import('../kube/kubeconfig.js'), import('../kube/client.js'), import('../kube/apply.js')]);
    const context = loadKubeconfig({ explicitPath: kubeconfigPath, env }).context(contextName);
    const client = new KubeClient(context, { timeoutMs: CLUSTER_TIMEOUT_MS, dialTimeoutMs: CLUSTER_TIMEOUT_MS, tlsHandshakeTimeoutMs: CLUSTER_TIMEOUT_MS, deadline: Date.now() + CLUSTER_TIMEOUT_MS, retry: { maxAttempts: 1 }, userAgent: 'kubectl-meshfed' });
    try {
      const expired = new Promise<string[]>((resolve) => (timer = setTimeout(() => resolve([]), CLUSTER_TIMEOUT_MS + 500)));
      return await Promise.race([read(new ClusterWriter(client), namespace ?? context.namespace ?? 'default'), expired]);
    } finally {
      client.close();
    }
  } catch {
    return [];
  } finally {
    clearTimeout(timer);
  }
}

/** Export (`exportName`) or import (`localName`) names of the records meshfed keeps in a cluster, in `namespace` or, without one, as `namespace/name`. */
async function recordNames(writer: ClusterWriter, kind: 'export' | 'import', namespace: string | undefined): Promise<string[]> {
  const { LABELS, MANAGED_BY, MANAGED_BY_LABEL, readExportRecords, readImportRecords } = await import('../federation/index.js');
  const existing = await writer.list('v1', 'ConfigMap', undefined, `${MANAGED_BY_LABEL}=${MANAGED_BY},${LABELS.role}=${kind}-record`);
  // The readers of the core take a snapshot; only its objects matter to them.
  const snapshot = { existing } as unknown as Parameters<typeof readExportRecords>[0];
  const records = kind === 'export'
    ? readExportRecords(snapshot).map((r) => ({ namespace: r.namespace, name: r.exportName }))
    : readImportRecords(snapshot).map((r) => ({ namespace: r.namespace, name: r.localName }));
  return records.filter((r) => namespace === undefined || r.namespace === namespace).map((r) => namespace === undefined ? `${r.namespace}/${r.name}` : r.name);
}

/**
 * Candidates for the word being typed (the last of `words`, the words after the program name), one per line, for
 * the completion scripts: command names; a command's flags (long forms); context names after --context, --from and
 * --to; namespaces after -n; Services after --service; export names after --export (of the --from context) and as
 * the NAME of unexport and revoke; import names as the NAME of unimport and verify; -o values. Cluster reads are
 * bounded by a short timeout and give nothing on an error.
 */
export async function completeWords(words: readonly string[], env: Record<string, string | undefined>): Promise<string[]> {
  const current = words[words.length - 1] ?? '';
  const before = words.slice(0, -1);
  const command = before.find((word) => commands.some((entry) => commandName(entry) === word));
  const flags = await flagsOf(command);
  // The value of each flag given so far (for the context and namespace to read from), and the positional words.
  const given = new Map<string, string>();
  const positionals: string[] = [];
  let pendingFlag: string | undefined;
  for (const word of before) {
    if (pendingFlag) {
      given.set(pendingFlag, word);
      pendingFlag = undefined;
      continue;
    }
    const flag = /^--?([^=]+)(?:=(.*))?$/.exec(word);
    if (flag) {
      const name = flags.canonical.get(flag[1]!) ?? flag[1]!;
      if (flag[2] !== undefined) given.set(name, flag[2]);
      else if (flags.takesValue.has(flag[1]!)) pendingFlag = name;
      continue;
    }
    positionals.push(word);
  }
  const filter = (candidates: string[]) => [...new Set(candidates)].filter((candidate) => candidate.startsWith(current)).sort();
  if (current.startsWith('-')) return filter(flags.names.map((name) => `--${name}`));
  const cluster = (contextName: string | undefined, read: (writer: ClusterWriter, namespace: string) => Promise<string[]>) =>
    fromCluster(env, given.get('kubeconfig'), contextName, read, given.get('namespace'));
  if (pendingFlag) {
    if (['context', 'from', 'to'].includes(pendingFlag)) {
      try {
        const { loadKubeconfig } = await import('../kube/kubeconfig.js');
        return filter(loadKubeconfig({ explicitPath: given.get('kubeconfig'), env }).contextNames());
      } catch {
        return [];
      }
    }
    if (pendingFlag === 'output') return filter(OUTPUT_FORMATS[command ?? ''] ?? ['json', 'yaml']);
    if (FIXED_VALUES[pendingFlag]) return filter(FIXED_VALUES[pendingFlag]);
    if (pendingFlag === 'namespace') return filter(await cluster(given.get('context'), async (writer) => (await writer.list('v1', 'Namespace', undefined)).map((n) => n.metadata.name)));
    if (pendingFlag === 'service' && command === 'export') {
      return filter(await cluster(given.get('context'), async (writer, namespace) => (await writer.list('v1', 'Service', namespace)).map((s) => s.metadata.name)));
    }
    // --name (verify's --import too) names what NAME names: an export or an import of the namespace.
    const named = NAME_KIND[command ?? ''];
    if (named && (pendingFlag === 'name' || (pendingFlag === 'import' && command === 'verify'))) {
      return filter(await cluster(given.get('context'), (writer, namespace) => recordNames(writer, named, namespace)));
    }
    if (pendingFlag === 'export' && command === 'import' && given.has('from')) {
      return filter(await cluster(given.get('from'), (writer) => recordNames(writer, 'export', undefined)));
    }
    return [];
  }
  if (!command) return filter(commands.map(commandName));
  const kind = NAME_KIND[command];
  // positionals[0] is the command itself; NAME is the first word after it.
  if (kind && positionals.length === 1) {
    return filter(await cluster(given.get('context'), (writer, namespace) => recordNames(writer, kind, namespace)));
  }
  if (command === 'completion' && positionals.length === 1) return filter(['bash', 'zsh']);
  return [];
}

/** `kubectl meshfed completion`: a bash or zsh completion script (contexts are completed after --context, --from and --to). */
export const completionCommand: CommandBody<CompletionArgs> = {
  builder: (yargs) =>
    yargs
      .positional('shell', { type: 'string', describe: 'bash or zsh (default: from $SHELL)' })
      // Global flags that mean nothing to a script printed without a cluster.
      .hide('kubeconfig').hide('context').hide('namespace').hide('request-timeout').hide('output').hide('yes')
      .example('kubectl meshfed completion bash > ~/.local/share/bash-completion/completions/kubectl-meshfed', 'Install bash completion'),
  handler: withSession(printCompletion),
};
