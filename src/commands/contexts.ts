import type { ClusterProbe } from '../kube/probe.js';
import { REPORT_API_VERSION } from '../ui/checks.js';
import { formatData } from '../ui/format.js';
import { renderTable } from '../ui/table.js';
import type { GlobalArgs, Session } from './session.js';
import { withSession } from './run.js';
import type { CommandBody } from './index.js';

interface ContextsArgs extends GlobalArgs {
  probe: boolean;
  'istio-namespace': string;
}

/** One row of `contexts`, also its JSON/YAML shape (stable for scripts). */
export interface ContextRow {
  name: string;
  current: boolean;
  cluster: string;
  user: string;
  server: string;
  namespace: string;
  probe?: ClusterProbe;
}

/** Probe timeout unless --request-timeout gives one (not 0): a probe must never wait long on a dead cluster. */
const DEFAULT_PROBE_TIMEOUT_MS = 5000;

async function listContexts(session: Session, args: ContextsArgs): Promise<void> {
  const format = session.outputFormat(['json', 'yaml', 'wide', 'name'] as const);
  const kubeconfig = session.kubeconfig();
  // With --context, show just that one (and fail clearly if it does not exist).
  const names = args.context ? [session.context(args.context).name] : kubeconfig.contextNames();
  const rows: ContextRow[] = names.map((name) => {
    const context = kubeconfig.contexts.get(name)!;
    return {
      name,
      current: name === kubeconfig.currentContext,
      cluster: context.clusterName,
      user: context.userName,
      server: context.cluster?.server ?? '',
      namespace: context.namespace ?? 'default',
    };
  });

  if (args.probe) {
    // Loaded here: the probe reads the clusters and inspects their root CAs, which listing contexts does not need.
    const { probeCluster } = await import('../kube/probe.js');
    const timeout = session.boundedRequestTimeout(DEFAULT_PROBE_TIMEOUT_MS);
    await Promise.all(rows.map(async (row) => {
      if (!row.server) {
        row.probe = { reachable: false, reason: `cluster "${row.cluster}" is not in the kubeconfig` };
        return;
      }
      row.probe = await probeCluster(session.client(row.name, '--context', timeout), args['istio-namespace']);
    }));
  }

  if (format === 'json' || format === 'yaml') {
    session.ui.data(formatData({ apiVersion: REPORT_API_VERSION, kind: 'ContextList', currentContext: kubeconfig.currentContext ?? null, contexts: rows }, format));
    return;
  }
  if (format === 'name') {
    // As `kubectl config get-contexts -o name`: the names alone.
    session.ui.data(rows.map((row) => `${row.name}\n`).join(''));
    return;
  }
  if (rows.length === 0) {
    session.ui.info(`No contexts in kubeconfig (${kubeconfig.describeFiles()}).`);
    return;
  }
  const c = session.ui.out;
  const headers = ['current', 'name', 'cluster', 'server', 'namespace'];
  if (format === 'wide') headers.splice(4, 0, 'authinfo');
  if (args.probe) headers.push('status', 'kubernetes', 'istio', 'trust domain', 'root ca');
  const table = rows.map((row) => {
    const cells = [row.current ? '*' : '', row.name, row.cluster, row.server, row.namespace];
    if (format === 'wide') cells.splice(4, 0, row.user);
    if (row.probe) {
      const p = row.probe;
      cells.push(
        p.reachable ? c.green('Reachable') : c.red('Unreachable'),
        p.kubernetesVersion ?? '-',
        p.istioVersion ?? '-',
        p.trustDomain ?? '-',
        p.rootCaFingerprint ? format === 'wide' ? p.rootCaFingerprint : p.rootCaFingerprint.slice(0, 23) + '…' : '-',
      );
    }
    return cells;
  });
  session.ui.data(renderTable(headers, table));
  for (const row of rows) {
    if (row.probe?.reason) session.ui.warn(`context "${row.name}": ${row.probe.reason}`);
  }
}

/** `kubectl meshfed contexts`: the kubeconfig's contexts; with `--probe`, whether each cluster is reachable and runs Istio. */
export const contextsCommand: CommandBody<ContextsArgs> = {
  builder: (yargs) =>
    yargs
      // It lists contexts (or probes them): no namespace, nothing to confirm.
      .hide('namespace').hide('yes')
      .option('probe', { type: 'boolean', default: false, describe: 'Contact each cluster in parallel: reachability, Kubernetes and Istio versions, trust domain, root CA' })
      .option('istio-namespace', { type: 'string', default: 'istio-system', describe: 'Namespace of istiod and the mesh config' })
      .example('kubectl meshfed contexts', 'List contexts, the current one marked with *')
      .example('kubectl meshfed contexts --probe --request-timeout 3s', 'Which clusters are reachable, with which Istio')
      .example('kubectl meshfed contexts --probe -o json', 'The same, for scripts')
      .example('kubectl meshfed contexts --probe --context production', 'Probe one context'),
  handler: withSession(listContexts),
};
