/**
 * `npm run bench`: how kubectl meshfed compares, in one run on one machine, with what a user already runs.
 *
 *   npm run bench -- [--quick] [--rounds <n>] [--sizes <n,n,…>] [--json <file>] [--requests]
 *
 * Every figure is a ratio between runs made side by side (paired: round i of meshfed against round i of its
 * baseline), reported as min/median/max, so that the machine's speed and load cancel out:
 *
 * - start-up: `kubectl meshfed --version`, `--help`, `contexts` against `kubectl version --client` and `node -e 0`;
 * - first and repeated runs of export and import against `kubectl apply --server-side` of the very same objects
 *   (meshfed's own `--dry-run -o yaml --show-secrets` output) on emulated clusters of the same kind, the kubectl
 *   discovery cache warm as a user's is (KUBECACHEDIR in a temporary directory, filled before timing);
 * - API requests and response bytes per command — export and import (first run and again), status on each side,
 *   verify — with N = 1, 10, 50, 200 exports and imports already in place; `--requests` also prints the distinct
 *   requests (method, path, label selector) each of them sent at the smallest N;
 * - the JavaScript files each start-up command loads (one bundle: the launcher and dist/kubectl-meshfed.cjs).
 *
 * The clusters are the API emulator of the tests (test/support/emulator), two clusters with Istio 1.18 and the
 * bookinfo seed; meshfed runs as built (bin/kubectl-meshfed, run `npm run build` first: `npm run bench` does).
 * `--quick` makes fewer rounds (for a smoke test); `--sizes` replaces the N of the requests and bytes (default 1, 10,
 * 50, 200); `--json <file>` also writes the report as JSON.
 * Start-up alone, or other launchers side by side (the release executable): scripts/startup.mjs.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import YAML from 'yaml';
import { startWorld, type EmulatedCluster, type RequestRecord, type World } from '../test/support/emulator/index.js';
import { kubectlBinary } from '../test/support/emulator/kubectl.js';
import { meshRuntimes } from '../test/support/mesh/index.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const meshfedBin = join(root, 'bin', 'kubectl-meshfed');
const moduleCounter = join(root, 'scripts', 'count-modules.mjs');

interface Options {
  rounds: number;
  startupRounds: number;
  sizes: number[];
  json?: string;
  requests: boolean;
}

/** The N of existing exports and imports at which requests and bytes are counted, unless `--sizes` says otherwise. */
export const DEFAULT_SIZES = [1, 10, 50, 200];

export function options(args: string[] = process.argv.slice(2)): Options {
  const { values } = parseArgs({
    args,
    options: {
      quick: { type: 'boolean', default: false }, rounds: { type: 'string' }, sizes: { type: 'string' }, json: { type: 'string' },
      requests: { type: 'boolean', default: false },
    },
    strict: true,
  });
  const sizes = values.sizes === undefined ? DEFAULT_SIZES : values.sizes.split(',').map(Number);
  if (!sizes.length || sizes.some((n, i) => !Number.isInteger(n) || n < 1 || (i > 0 && n <= sizes[i - 1]!))) {
    throw new Error(`--sizes must list increasing positive integers, e.g. 1,10,50,200, not "${values.sizes}"`);
  }
  const rounds = values.rounds === undefined ? (values.quick ? 1 : 5) : Number(values.rounds);
  if (!Number.isInteger(rounds) || rounds < 1) throw new Error(`--rounds must be a positive integer, not "${values.rounds}"`);
  return {
    rounds,
    startupRounds: values.quick ? 3 : Math.max(10, 2 * rounds),
    sizes,
    ...(values.json ? { json: values.json } : {}),
    requests: values.requests,
  };
}

interface Run { ms: number; code: number | null; stdout: string; stderr: string }

/** Runs a program to completion, asynchronously (the emulated API servers live in this process). */
function run(command: string, args: string[], env: Record<string, string>, stdin?: string): Promise<Run> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const child = spawn(command, args, { env: { PATH: process.env.PATH ?? '', ...env }, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => { stdout += chunk; });
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => { stderr += chunk; });
    child.on('error', reject);
    child.on('close', (code) => resolve({ ms: performance.now() - started, code, stdout, stderr }));
    child.stdin.end(stdin ?? '');
  });
}

function must(result: Run, what: string): Run {
  if (result.code !== 0) throw new Error(`${what} exited ${result.code}:\n${result.stderr.slice(-2000)}`);
  return result;
}

/** The environment of one emulated world: its kubeconfig, a home of its own, a kubectl cache of its own. */
function environment(world: World): Record<string, string> {
  return { KUBECONFIG: world.kubeconfigPath, HOME: mkdtempSync(join(tmpdir(), 'meshfed-bench-home-')), KUBECACHEDIR: mkdtempSync(join(tmpdir(), 'meshfed-bench-kubecache-')), NO_COLOR: '1' };
}

const meshfed = (args: string[], env: Record<string, string>) => run(process.execPath, [meshfedBin, ...args], env);
const kubectl = (args: string[], env: Record<string, string>, stdin?: string) => run(kubectlBinary(), args, env, stdin);

/**
 * Two clusters with Istio 1.18 and bookinfo. The data-path model runs the gateways' and the probe pod's traffic, so
 * that verify's probe completes as on a real mesh (without it the probe pod would run until verify's --timeout).
 */
async function newWorld(): Promise<World> {
  return startWorld({ clusters: [{ name: 'cluster1' }, { name: 'cluster2' }], istio: '1.18.0', seed: 'bookinfo', runtimes: meshRuntimes() });
}

const exportArgs = (name: string) => ['export', '--context', 'cluster2', '-n', 'bookinfo', '--service', 'myreviews', '--port', '9080', '--name', name, '--timeout', '0', '-y'];
const importArgs = (name: string) => ['import', '--context', 'cluster1', '-n', 'default', '--from', 'cluster2', '--export', `bookinfo/${name}`, '--timeout', '0', '-y'];
const dryRun = ['--dry-run', '-o', 'yaml', '--show-secrets'];

/** `-o yaml` output of several contexts (`# context: <name>` before each part) → the YAML of each context. */
function byContext(text: string, only?: string): Map<string, string> {
  const parts = new Map<string, string>();
  const marks = [...text.matchAll(/^# context: (\S+)$/gm)];
  if (marks.length === 0) return new Map([[only ?? '', text]]);
  marks.forEach((mark, i) => {
    const body = text.slice(mark.index! + mark[0].length, marks[i + 1]?.index ?? text.length).replace(/\n---\n?$/, '\n');
    parts.set(mark[1]!, body);
  });
  return parts;
}

/** What a two-cluster command would apply, per context: `--output-dir` writes one file per context. */
async function plannedByContext(args: string[], env: Record<string, string>, what: string): Promise<Map<string, string>> {
  const dir = mkdtempSync(join(tmpdir(), 'meshfed-bench-'));
  try {
    must(await meshfed([...args, ...dryRun, '--output-dir', dir], env), what);
    return new Map(readdirSync(dir).filter((f) => f.endsWith('.yaml')).map((f) => [f.slice(0, -'.yaml'.length), readFileSync(join(dir, f), 'utf8')]));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Applies each context's objects with `kubectl apply --server-side`, one after the other, as a user would. */
async function kubectlApply(parts: Map<string, string>, env: Record<string, string>): Promise<number> {
  let ms = 0;
  for (const [context, yaml] of parts) ms += must(await kubectl(['--context', context, 'apply', '--server-side', '-f', '-'], env, yaml), `kubectl apply (${context})`).ms;
  return ms;
}

type Samples = Record<string, number[]>;
const record = (samples: Samples, name: string, ms: number) => { (samples[name] ??= []).push(ms); };

/** Start-up: the commands alternate within each round, so each ratio compares runs made moments apart. */
async function startup(samples: Samples, rounds: number): Promise<void> {
  const world = await newWorld();
  const env = environment(world);
  try {
    const commands: Array<[string, () => Promise<Run>]> = [
      ['node -e 0', () => run(process.execPath, ['-e', '0'], env)],
      ['kubectl version --client', () => kubectl(['version', '--client'], env)],
      ['meshfed --version', () => meshfed(['--version'], env)],
      ['meshfed --help', () => meshfed(['--help'], env)],
      ['meshfed contexts', () => meshfed(['contexts'], env)],
    ];
    for (const [, command] of commands) must(await command(), 'warm-up');
    for (let round = 0; round < rounds; round++) {
      for (const [name, command] of commands) record(samples, name, must(await command(), name).ms);
    }
  } finally {
    await world.stop();
  }
}

/** Export then import, first run and again, by meshfed in one world and by kubectl in another. */
async function flows(samples: Samples, rounds: number): Promise<void> {
  for (let round = 0; round < rounds; round++) {
    const [mine, theirs] = await Promise.all([newWorld(), newWorld()]);
    try {
      const env = environment(mine);
      const kubectlEnv = environment(theirs);
      for (const context of ['cluster1', 'cluster2']) must(await kubectl(['--context', context, 'api-resources'], kubectlEnv), 'kubectl api-resources');

      const exportObjects = byContext(must(await meshfed([...exportArgs('myreviews'), ...dryRun], env), 'export --dry-run').stdout, 'cluster2');
      record(samples, 'meshfed export (first)', must(await meshfed(exportArgs('myreviews'), env), 'export').ms);
      record(samples, 'kubectl apply export objects (first)', await kubectlApply(exportObjects, kubectlEnv));
      record(samples, 'meshfed export (again)', must(await meshfed(exportArgs('myreviews'), env), 'export again').ms);
      record(samples, 'kubectl apply export objects (again)', await kubectlApply(exportObjects, kubectlEnv));

      // The gateway's LoadBalancer address, which an import needs, comes from the emulator's controllers.
      await Promise.all([mine.waitIdle(), theirs.waitIdle()]);
      const importObjects = await plannedByContext(importArgs('myreviews'), env, 'import --dry-run');
      record(samples, 'meshfed import (first)', must(await meshfed(importArgs('myreviews'), env), 'import').ms);
      record(samples, 'kubectl apply import objects (first)', await kubectlApply(importObjects, kubectlEnv));
      record(samples, 'meshfed import (again)', must(await meshfed(importArgs('myreviews'), env), 'import again').ms);
      record(samples, 'kubectl apply import objects (again)', await kubectlApply(importObjects, kubectlEnv));
    } finally {
      await Promise.all([mine.stop(), theirs.stop()]);
    }
  }
}

interface Traffic { command: string; n: number; requests: number; bytes: number }

/** One request as `--requests` lists it: the cluster, method, path and label selector. */
const requestLine = (cluster: string, r: RequestRecord) => `${cluster} ${r.method} ${r.path}${r.query.labelSelector ? ` ?labelSelector=${r.query.labelSelector}` : ''}`;

/** Requests and response bytes of one meshfed run (which must succeed), over every cluster, and the distinct requests it sent. */
async function traffic(world: World, env: Record<string, string>, args: string[]): Promise<{ requests: number; bytes: number; lines: string[] }> {
  const marks = world.clusters.map((cluster) => cluster.requests.length);
  const result = await meshfed(args, env);
  must(result, args.slice(0, 2).join(' '));
  const records = world.clusters.flatMap((cluster, i) => cluster.requests.slice(marks[i]).map((r) => ({ cluster: cluster.name, r })));
  return {
    requests: records.length,
    bytes: records.reduce((sum, { r }) => sum + r.bytes, 0),
    lines: [...new Set(records.map(({ cluster, r }) => requestLine(cluster, r)))].sort(),
  };
}

interface Stored { cluster: EmulatedCluster; object: Record<string, unknown> & { apiVersion: string; kind: string; metadata: { name: string; namespace?: string } } }

/** The live objects of export/import `name` in both clusters (named or labelled after it), as templates. */
function objectsOf(world: World, name: string, planned: Map<string, string>[]): Stored[] {
  const out: Stored[] = [];
  for (const parts of planned) {
    for (const [context, yaml] of parts) {
      const cluster = world.cluster(context);
      for (const doc of YAML.parseAllDocuments(yaml)) {
        const object = doc.toJS() as Stored['object'] | null;
        if (!object || !JSON.stringify(object.metadata).includes(name)) continue;
        const live = cluster.get(object.apiVersion, object.kind, object.metadata.namespace, object.metadata.name);
        if (live && !out.some((s) => s.cluster === cluster && JSON.stringify(s.object.metadata) === JSON.stringify(live.metadata))) {
          out.push({ cluster, object: live as unknown as Stored['object'] });
        }
      }
    }
  }
  return out;
}

/** Copies of the templates with every occurrence of `name` renamed: one more export and import in place. */
function addCopy(templates: Stored[], name: string, copy: string): void {
  for (const { cluster, object } of templates) {
    const text = JSON.stringify(object).replaceAll(name, copy);
    const clone = JSON.parse(text) as Stored['object'] & { metadata: Record<string, unknown>; status?: unknown };
    for (const field of ['resourceVersion', 'uid', 'managedFields', 'creationTimestamp', 'generation']) delete clone.metadata[field];
    delete clone.status;
    cluster.apply(clone as never, 'kubectl-meshfed');
  }
}

/**
 * Requests and bytes per command with N exports and imports in place (copies of a real pair). With `listRequests`,
 * the distinct requests of each command at the first N go to stderr.
 */
async function scaling(sizes: number[], listRequests: boolean): Promise<Traffic[]> {
  const world = await newWorld();
  const env = environment(world);
  const out: Traffic[] = [];
  try {
    const planned = [byContext(must(await meshfed([...exportArgs('benchx'), ...dryRun], env), 'export --dry-run').stdout, 'cluster2')];
    must(await meshfed(exportArgs('benchx'), env), 'export');
    await world.waitIdle();
    planned.push(await plannedByContext(importArgs('benchx'), env, 'import --dry-run'));
    must(await meshfed(importArgs('benchx'), env), 'import');
    await world.waitIdle();
    const templates = objectsOf(world, 'benchx', planned);
    let count = 1;
    for (const n of sizes) {
      for (; count < n; count++) addCopy(templates, 'benchx', `benchx${count}`);
      await world.waitIdle();
      const measure = async (command: string, args: string[]) => {
        const { lines, ...counts } = await traffic(world, env, args);
        out.push({ command, n, ...counts });
        if (listRequests && n === sizes[0]) process.stderr.write(`\n## ${command} (N=${n})\n${lines.join('\n')}\n`);
      };
      await measure('export (first)', exportArgs('benchnew'));
      await measure('export (again)', exportArgs('benchx'));
      await world.waitIdle();
      await measure('import (first)', importArgs('benchnew'));
      await measure('import (again)', importArgs('benchx'));
      await measure('status (provider)', ['status', '--context', 'cluster2']);
      await measure('status (consumer)', ['status', '--context', 'cluster1']);
      await measure('verify', ['verify', 'benchx', '--context', 'cluster1', '-n', 'default', '--from', 'cluster2', '--path', '/reviews/0']);
      // The next size starts from the benchx family only: benchnew made the same objects as benchx, renamed.
      for (const { cluster, object } of templates.filter((t) => t.object.metadata.name.includes('benchx'))) {
        cluster.delete(object.apiVersion, object.kind, object.metadata.namespace, object.metadata.name.replaceAll('benchx', 'benchnew'));
      }
    }
  } finally {
    await world.stop();
  }
  return out;
}

/**
 * How many JavaScript files each start-up command loads (scripts/count-modules.mjs): the launcher and the bundle, and
 * more only if a dependency were left out of the bundle again.
 */
async function moduleCounts(): Promise<Record<string, number>> {
  const world = await newWorld();
  const env = environment(world);
  const counts: Record<string, number> = {};
  try {
    for (const args of [['--version'], ['--help'], ['contexts']]) {
      const log = join(mkdtempSync(join(tmpdir(), 'meshfed-bench-modules-')), 'modules.log');
      writeFileSync(log, '');
      must(await run(process.execPath, ['--import', moduleCounter, meshfedBin, ...args], { ...env, MODULE_LOG: log }), `modules ${args.join(' ')}`);
      counts[`meshfed ${args.join(' ')}`] = new Set(readFileSync(log, 'utf8').split('\n').filter(Boolean)).size;
      rmSync(log, { force: true });
    }
  } finally {
    await world.stop();
  }
  return counts;
}

interface Stats { min: number; median: number; max: number }

function stats(values: number[]): Stats {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = sorted.length / 2;
  const median = sorted.length % 2 ? sorted[Math.floor(middle)]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
  return { min: sorted[0]!, median, max: sorted.at(-1)! };
}

/** One row of the report: meshfed's runs against its baseline's, paired round by round. */
interface RatioRow { command: string; baseline: string; meshfedMs: Stats; baselineMs: Stats; ratio: Stats }

/** The rows `npm run bench` reports, in order. */
const RATIO_ROWS: Array<[command: string, meshfed: string, baseline: string]> = [
  ['--version', 'meshfed --version', 'kubectl version --client'],
  ['--help', 'meshfed --help', 'kubectl version --client'],
  ['contexts', 'meshfed contexts', 'kubectl version --client'],
  ['--version', 'meshfed --version', 'node -e 0'],
  ['--help', 'meshfed --help', 'node -e 0'],
  ['contexts', 'meshfed contexts', 'node -e 0'],
  ['export (first)', 'meshfed export (first)', 'kubectl apply export objects (first)'],
  ['export (again)', 'meshfed export (again)', 'kubectl apply export objects (again)'],
  ['import (first)', 'meshfed import (first)', 'kubectl apply import objects (first)'],
  ['import (again)', 'meshfed import (again)', 'kubectl apply import objects (again)'],
];

function ratioRows(samples: Samples): RatioRow[] {
  return RATIO_ROWS.map(([command, mine, theirs]) => {
    const a = samples[mine] ?? [];
    const b = samples[theirs] ?? [];
    return {
      command, baseline: theirs.replace(/ \((first|again)\)$/, ' --server-side'), meshfedMs: stats(a), baselineMs: stats(b),
      ratio: stats(a.map((ms, i) => ms / b[i]!)),
    };
  });
}

const fmt = (s: Stats, digits: number) => `${s.min.toFixed(digits)} / ${s.median.toFixed(digits)} / ${s.max.toFixed(digits)}`;

function render(report: Report): string {
  const lines = [
    `kubectl meshfed bench: node ${process.version}, ${report.kubectl}, ${report.cpus} cores, load average ${report.load.map((l) => l.toFixed(1)).join(' ')}`,
    `${report.rounds} paired round(s) for export/import, ${report.startupRounds} for start-up; min / median / max`,
    '',
    `${'meshfed command'.padEnd(16)}${'baseline'.padEnd(44)}${'ratio'.padEnd(22)}${'meshfed ms'.padEnd(22)}baseline ms`,
    ...report.ratios.map((r) => `${r.command.padEnd(16)}${r.baseline.padEnd(44)}${fmt(r.ratio, 2).padEnd(22)}${fmt(r.meshfedMs, 0).padEnd(22)}${fmt(r.baselineMs, 0)}`),
    '',
    `JavaScript files loaded: ${Object.entries(report.modules).map(([k, v]) => `${k.replace('meshfed ', '')} ${v}`).join(', ')}`,
    '',
    `${'requests / KiB read'.padEnd(20)}${report.sizes.map((n) => `N=${n}`.padEnd(16)).join('')}`,
    ...[...new Set(report.traffic.map((t) => t.command))].map((command) => `${command.padEnd(20)}${report.sizes.map((n) => {
      const t = report.traffic.find((x) => x.command === command && x.n === n)!;
      return `${t.requests} / ${(t.bytes / 1024).toFixed(1)}`.padEnd(16);
    }).join('')}`),
  ];
  return `${lines.join('\n')}\n`;
}

/** What `--json` writes. */
interface Report {
  kubectl: string;
  cpus: number;
  load: number[];
  rounds: number;
  startupRounds: number;
  sizes: number[];
  ratios: RatioRow[];
  modules: Record<string, number>;
  traffic: Traffic[];
}

async function main(): Promise<void> {
  const opts = options();
  const samples: Samples = {};
  const load = loadavg();
  const version = (await kubectl(['version', '--client'], {})).stdout.split('\n')[0]?.replace('Client Version: ', 'kubectl ') ?? 'kubectl';
  process.stderr.write('bench: start-up…\n');
  await startup(samples, opts.startupRounds);
  process.stderr.write('bench: export and import against kubectl apply…\n');
  await flows(samples, opts.rounds);
  process.stderr.write('bench: requests and bytes with N exports and imports…\n');
  const traffic = await scaling(opts.sizes, opts.requests);
  const modules = await moduleCounts();
  const report: Report = {
    kubectl: version, cpus: cpus().length, load, rounds: opts.rounds, startupRounds: opts.startupRounds, sizes: opts.sizes,
    ratios: ratioRows(samples), modules, traffic,
  };
  process.stdout.write(render(report));
  if (opts.json) writeFileSync(opts.json, `${JSON.stringify(report, null, 2)}\n`);
}

// Run as a script (`npm run bench`); imported (by its test), it only exports its options.
if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((error: unknown) => {
    process.stderr.write(`bench: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exit(1);
  });
}
