import { UsageError } from '../errors.js';
import type { GlobalArgs, Session } from './session.js';
import { withSession } from './run.js';
import type { CommandBody } from './index.js';

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

/** `kubectl meshfed completion`: a bash or zsh completion script (contexts are completed after --context, --from and --to). */
export const completionCommand: CommandBody<CompletionArgs> = {
  builder: (yargs) =>
    yargs
      .positional('shell', { type: 'string', describe: 'bash or zsh (default: from $SHELL)' })
      .example('kubectl meshfed completion bash > ~/.local/share/bash-completion/completions/kubectl-meshfed', 'Install bash completion'),
  handler: withSession(printCompletion),
};
