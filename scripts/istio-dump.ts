/**
 * Dumps clusters for the Istio oracle: every object of each cluster, as its API server returns it, into
 * `<dir>/<context>.yaml` (events, CRDs and managedFields left out).
 *
 *   npm run -s istio-dump -- --dir <dir> [--kubeconfig <file>] [--context a,b]
 *
 * Contexts default to all of the kubeconfig (`--kubeconfig`, else `$KUBECONFIG`, else `~/.kube/config`), so with
 * the sandbox's `export KUBECONFIG=…` line pasted, `npm run -s istio-dump -- --dir state` dumps every sandbox
 * cluster. Then: `npm run -s istio-trace -- --dir state --from cluster1/default/<pod> --url http://…`.
 */
import { parseArgs } from 'node:util';
import { dumpKubeconfig } from '../test/istio/support/dump.js';

const USAGE = 'usage: npm run -s istio-dump -- --dir <dir> [--kubeconfig <file>] [--context <name>[,<name>…]]';

function usage(message: string): never {
  process.stderr.write(`istio-dump: ${message}\n${USAGE}\n`);
  process.exit(2);
}

async function main(): Promise<void> {
  let parsed;
  try {
    parsed = parseArgs({
      options: {
        dir: { type: 'string' },
        kubeconfig: { type: 'string' },
        context: { type: 'string', multiple: true },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
    });
  } catch (err) {
    usage(err instanceof Error ? err.message : String(err));
  }
  const v = parsed.values;
  if (v.help) {
    process.stdout.write(`${USAGE}\n`);
    return;
  }
  if (!v.dir) usage('--dir is required: the directory to write <context>.yaml files into');
  const contexts = v.context?.flatMap((c) => c.split(',')).map((c) => c.trim()).filter((c) => c !== '');
  const files = await dumpKubeconfig({ dir: v.dir, kubeconfig: v.kubeconfig, contexts });
  for (const file of files) process.stderr.write(`istio-dump: wrote ${file}\n`);
}

main().catch((err: unknown) => {
  process.stderr.write(`istio-dump: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
