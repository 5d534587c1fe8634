/**
 * The sandbox: emulated clusters to try the plugin by hand, in a second terminal.
 *
 *   npm run sandbox -- [--clusters cluster1,cluster2] [--seed bookinfo|federation|none] [--istio 1.18.0]
 *                      [--root shared|distinct] [--trust-domain per-cluster|cluster.local]
 *
 * The first line of stdout is `export KUBECONFIG=<path>` (paste it into a second terminal; `npm run -s` keeps
 * npm's own banner off stdout); a short summary goes to stderr. Runs until SIGINT or SIGTERM, then removes its
 * files and exits 0.
 */
import { existsSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { crdReleaseFor, ISTIO_VERSIONS, istioCrdSource } from '../test/support/crd-schema.js';
import type { IstioVersion } from '../test/support/crd-schema.js';
import { certificateFingerprint, startWorld } from '../test/support/emulator/index.js';
import type { ContainerRuntime, ExecHandler, ExecResult, SeedName, WorldView } from '../test/support/emulator/index.js';

function usage(message: string): never {
  process.stderr.write(`sandbox: ${message}\n`);
  process.stderr.write('usage: npm run sandbox -- [--clusters a,b] [--seed bookinfo|federation|none] [--istio <x.y.z>|none] [--root shared|distinct] [--trust-domain per-cluster|cluster.local]\n');
  process.exit(2);
}

interface MeshModule {
  meshRuntimes?: () => ContainerRuntime[];
  simulateCurl?: (world: WorldView, from: { cluster: string; namespace: string; pod: string }, argv: string[]) => Promise<ExecResult>;
}

/**
 * The mesh data-path runtimes when that model is present, so curl and TCP probes travel the configuration;
 * `kubectl exec` into client pods (`kubectl exec deploy/sleep -- curl …`) runs through the same model.
 */
async function loadMesh(): Promise<{ runtimes: ContainerRuntime[]; execHandlers: ExecHandler[]; source: string }> {
  const modulePath = fileURLToPath(new URL('../test/support/mesh/index.ts', import.meta.url));
  if (!existsSync(modulePath)) return { runtimes: [], execHandlers: [], source: 'default (containers run forever, print nothing)' };
  const mod = (await import(pathToFileURL(modulePath).href)) as MeshModule;
  if (typeof mod.meshRuntimes !== 'function') return { runtimes: [], execHandlers: [], source: 'default (test/support/mesh has no meshRuntimes)' };
  const simulate = mod.simulateCurl;
  const execHandlers: ExecHandler[] = simulate
    ? [(e) => (e.container === 'istio-proxy' ? undefined : simulate(e.world, { cluster: e.cluster.name, namespace: e.pod.metadata.namespace ?? 'default', pod: e.pod.metadata.name }, e.command))]
    : [];
  return { runtimes: mod.meshRuntimes(), execHandlers, source: 'mesh data-path model (test/support/mesh)' };
}

async function main(): Promise<void> {
  let parsed;
  try {
    parsed = parseArgs({
      options: {
        clusters: { type: 'string' },
        seed: { type: 'string', default: 'bookinfo' },
        istio: { type: 'string', default: '1.18.0' },
        root: { type: 'string', default: 'shared' },
        'trust-domain': { type: 'string', default: 'per-cluster' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
    });
  } catch (err) {
    usage(err instanceof Error ? err.message : String(err));
  }
  const v = parsed.values;
  if (v.help) usage('starts emulated clusters');
  const seed = v.seed as string;
  if (!['bookinfo', 'federation', 'none'].includes(seed)) usage(`--seed must be bookinfo, federation or none, not "${seed}"`);
  const istio = v.istio === 'none' ? null : (v.istio as IstioVersion);
  if (istio !== null && !/^1\.\d+\.\d+$/.test(istio)) usage(`--istio must be an Istio release such as ${ISTIO_VERSIONS.join(', ')} (or none), not "${v.istio}"`);
  if (!['shared', 'distinct'].includes(v.root as string)) usage(`--root must be shared or distinct, not "${v.root}"`);
  if (!['per-cluster', 'cluster.local'].includes(v['trust-domain'] as string)) usage(`--trust-domain must be per-cluster or cluster.local`);
  const defaultClusters = seed === 'federation' ? 'operations,staging,production' : 'cluster1,cluster2';
  const names = (v.clusters ?? defaultClusters).split(',').map((s) => s.trim()).filter((s) => s !== '');
  if (names.length === 0) usage('--clusters needs at least one name');
  for (const n of names) if (!/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(n)) usage(`cluster name "${n}" must be a DNS label`);

  const { runtimes, execHandlers, source } = await loadMesh();
  const world = await startWorld({
    clusters: names.map((name) => ({ name })),
    istio,
    seed: seed as SeedName,
    root: v.root as 'shared' | 'distinct',
    trustDomain: v['trust-domain'] as 'per-cluster' | 'cluster.local',
    runtimes,
    execHandlers,
  });
  process.stdout.write(`export KUBECONFIG=${world.kubeconfigPath}\n`);
  const lines = [`sandbox: ${names.length} emulated cluster(s), seed ${seed}, Istio ${istio ?? 'none'}, ${v.root} root, runtime: ${source}`];
  if (istio !== null) lines.push(`  ${istioCrdSource(crdReleaseFor(istio)).description}`);
  for (const c of world.clusters) {
    const root = c.istioCa ? ` root ${certificateFingerprint(c.istioCa['root-cert.pem']).slice(0, 23)}…` : '';
    lines.push(`  context ${c.name.padEnd(12)} ${c.server}${c.trustDomain ? `  trust domain ${c.trustDomain}` : ''}${root}`);
  }
  lines.push(`  try: kubectl --context ${names[0]} get pods -A`, '  stop with Ctrl-C');
  process.stderr.write(`${lines.join('\n')}\n`);

  await new Promise<void>((resolve) => {
    const stop = (): void => resolve();
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
  await world.stop();
  process.stderr.write('sandbox: stopped, files removed\n');
  process.exit(0);
}

main().catch((err: unknown) => {
  process.stderr.write(`sandbox: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
