import type { Ui } from './terminal.js';

/** What happens to one object when a plan is applied. */
export type PlanAction = 'create' | 'update' | 'unchanged' | 'delete';

/** One object of a cluster's plan, as shown to the user. */
export interface PlanLine {
  action: PlanAction;
  kind: string;
  namespace?: string;
  name: string;
}

/** A cluster's part of a plan, as shown to the user. */
export interface ClusterPlanView {
  /** kubeconfig context name. */
  context: string;
  /** Federation cluster id. */
  clusterId: string;
  /** What meshfed does there, e.g. "provider: export bookinfo/reviews". */
  role: string;
  lines: PlanLine[];
}

const SYMBOLS: Record<PlanAction, string> = { create: '+', update: '~', unchanged: '=', delete: '-' };
const WORDS: Record<PlanAction, string> = { create: 'create', update: 'change', unchanged: 'unchanged', delete: 'delete' };

/** Counts per action, e.g. `3 to create, 1 to change, 8 unchanged`. */
export function summarise(lines: readonly PlanLine[]): string {
  const count = (action: PlanAction) => lines.filter((l) => l.action === action).length;
  const parts = [
    count('create') ? `${count('create')} to create` : '',
    count('update') ? `${count('update')} to change` : '',
    count('delete') ? `${count('delete')} to delete` : '',
    count('unchanged') ? `${count('unchanged')} unchanged` : '',
  ].filter(Boolean);
  return parts.length ? parts.join(', ') : 'nothing to do';
}

/** Whether a plan writes anything. */
export function hasChanges(views: readonly ClusterPlanView[]): boolean {
  return views.some((v) => v.lines.some((l) => l.action !== 'unchanged'));
}

/**
 * The plan, per cluster: a heading with the context and cluster id, then one line per object (`+` create, `~`
 * change, `-` delete, `=` unchanged), then the counts. Unchanged objects are listed only with `verbose`, so a
 * re-run shows at a glance that nothing changes.
 */
export function renderPlan(ui: Ui, views: readonly ClusterPlanView[], options: { verbose?: boolean } = {}): string {
  const c = ui.err;
  const colour: Record<PlanAction, (text: string) => string> = { create: c.green, update: c.yellow, unchanged: c.dim, delete: c.red };
  const out: string[] = [];
  for (const view of views) {
    out.push(`${c.bold(`context "${view.context}"`)} (cluster ${view.clusterId}) — ${view.role}`);
    for (const line of view.lines) {
      if (line.action === 'unchanged' && !options.verbose) continue;
      const where = line.namespace ? `${line.namespace}/` : '';
      out.push(colour[line.action](`  ${SYMBOLS[line.action]} ${line.kind} ${where}${line.name}`) + (line.action === 'unchanged' ? '' : c.dim(` (${WORDS[line.action]})`)));
    }
    out.push(`  ${summarise(view.lines)}`);
  }
  return out.join('\n') + '\n';
}
