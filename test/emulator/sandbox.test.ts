/**
 * The sandbox as a user meets it: started as a separate process, used from "a second terminal" with kubectl and
 * with `kubectl meshfed contexts --probe`, stopped with SIGTERM.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath, pathToFileURL } from 'node:url';
import test from 'ava';
import { runKubectl } from '../support/emulator/kubectl.js';

const repo = fileURLToPath(new URL('../..', import.meta.url));

interface Sandbox {
  child: ChildProcess;
  kubeconfig: string;
  stderr: () => string;
  exited: Promise<number | null>;
}

async function startSandbox(args: string[]): Promise<Sandbox> {
  // node --import tsx, not npx: signals must reach the sandbox itself.
  const child = spawn(process.execPath, ['--import', 'tsx', join(repo, 'scripts', 'sandbox.ts'), ...args], { cwd: repo, stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr?.on('data', (c: Buffer) => {
    stderr += c.toString();
  });
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const firstLine = await new Promise<string>((resolve, reject) => {
    const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream });
    lines.once('line', (line) => resolve(line));
    void exited.then((code) => reject(new Error(`sandbox exited with ${code}: ${stderr}`)));
  });
  const m = /^export KUBECONFIG=(.+)$/.exec(firstLine);
  if (!m) throw new Error(`unexpected first line: ${firstLine}`);
  return { child, kubeconfig: m[1] as string, stderr: () => stderr, exited };
}

async function stop(sandbox: Sandbox): Promise<number | null> {
  sandbox.child.kill('SIGTERM');
  return sandbox.exited;
}

/** Runs `kubectl meshfed …` from the sources, as the built plugin would run. */
async function meshfed(args: string[], kubeconfig: string): Promise<{ stdout: string; stderr: string; code: number | null }> {
  const dir = mkdtempSync(join(tmpdir(), 'meshfed-cli-'));
  const launcher = join(dir, 'run.mjs');
  writeFileSync(launcher, `import { run } from ${JSON.stringify(pathToFileURL(join(repo, 'src', 'cli.ts')).href)};\nawait run();\n`);
  try {
    return await new Promise((resolve) => {
      const child = spawn(process.execPath, ['--import', 'tsx', launcher, ...args], { cwd: repo, env: { ...process.env, KUBECONFIG: kubeconfig, NO_COLOR: '1' }, stdio: ['ignore', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
      child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
      child.on('exit', (code) => resolve({ stdout, stderr, code }));
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

interface ProbeRow {
  name: string;
  probe?: { reachable: boolean; istioVersion?: string; trustDomain?: string; rootCaFingerprint?: string };
}

function probes(stdout: string): Map<string, ProbeRow['probe']> {
  const parsed = JSON.parse(stdout) as ProbeRow[] | { contexts: ProbeRow[] };
  const rows = Array.isArray(parsed) ? parsed : parsed.contexts;
  return new Map(rows.map((r) => [r.name, r.probe]));
}

test.serial('sandbox with bookinfo and a shared root: kubectl from a second terminal, contexts --probe, clean stop', async (t) => {
  const sandbox = await startSandbox(['--clusters', 'cluster1,cluster2', '--seed', 'bookinfo', '--istio', '1.18.0', '--root', 'shared']);
  try {
    t.true(existsSync(sandbox.kubeconfig));
    const svc = await runKubectl(['-n', 'bookinfo', 'get', 'svc', 'myreviews'], { kubeconfig: sandbox.kubeconfig, context: 'cluster2' });
    t.regex(svc.stdout, /^NAME\s+TYPE\s+CLUSTER-IP\s+EXTERNAL-IP\s+PORT\(S\)\s+AGE\nmyreviews\s+ClusterIP\s+10\.96\.\d+\.\d+\s+<none>\s+9080\/TCP\s+\d+s\n$/, svc.stderr);
    const pods = await runKubectl(['get', 'pods'], { kubeconfig: sandbox.kubeconfig, context: 'cluster1' });
    const rows = pods.stdout.trimEnd().split('\n').slice(1);
    t.deepEqual(rows.map((r) => r.split(/\s+/)[0]?.replace(/-\w+-\w+$/, '')), ['details-v1', 'productpage-v1', 'reviews-v1', 'sleep']);
    for (const r of rows) t.regex(r, /\s2\/2\s+Running\s+0\s/);
    // kubectl exec runs through the mesh data-path model: the blog post's starting point, before federation.
    const local = await runKubectl(['exec', 'deploy/sleep', '--', 'curl', '-sS', '-o', '/dev/null', '-w', '%{http_code}\n', 'http://productpage:9080/productpage'], { kubeconfig: sandbox.kubeconfig, context: 'cluster1' });
    t.is(local.stdout, '200\n', local.stderr);
    const remote = await runKubectl(['exec', 'deploy/sleep', '--', 'curl', '-sS', 'http://myreviews.bookinfo:9080/reviews/0'], { kubeconfig: sandbox.kubeconfig, context: 'cluster1' });
    t.is(remote.code, 6);
    t.regex(remote.stderr, /Could not resolve host: myreviews\.bookinfo/);

    const probe = await meshfed(['contexts', '--probe', '-o', 'json'], sandbox.kubeconfig);
    t.is(probe.code, 0, probe.stderr);
    const byName = probes(probe.stdout);
    t.like(byName.get('cluster1'), { reachable: true, istioVersion: '1.18.0', trustDomain: 'cluster1.local' });
    t.like(byName.get('cluster2'), { reachable: true, istioVersion: '1.18.0', trustDomain: 'cluster2.local' });
    t.regex(byName.get('cluster1')?.rootCaFingerprint ?? '', /^([0-9A-F]{2}:){31}[0-9A-F]{2}$/);
    t.is(byName.get('cluster1')?.rootCaFingerprint, byName.get('cluster2')?.rootCaFingerprint);
  } finally {
    t.is(await stop(sandbox), 0);
  }
  t.false(existsSync(sandbox.kubeconfig));
  t.false(existsSync(dirname(sandbox.kubeconfig)));
  t.regex(sandbox.stderr(), /stopped/);
});

test.serial('sandbox with distinct roots: contexts --probe shows a different root per cluster', async (t) => {
  const sandbox = await startSandbox(['--clusters', 'east,west', '--seed', 'none', '--istio', '1.9.0', '--root', 'distinct']);
  try {
    const probe = await meshfed(['contexts', '--probe', '-o', 'json'], sandbox.kubeconfig);
    t.is(probe.code, 0, probe.stderr);
    const byName = probes(probe.stdout);
    t.like(byName.get('east'), { reachable: true, istioVersion: '1.9.0', trustDomain: 'east.local' });
    t.truthy(byName.get('west')?.rootCaFingerprint);
    t.not(byName.get('east')?.rootCaFingerprint, byName.get('west')?.rootCaFingerprint);
  } finally {
    t.is(await stop(sandbox), 0);
  }
});

test('sandbox rejects bad options with a usage message and exit code 2', async (t) => {
  const child = spawn(process.execPath, ['--import', 'tsx', join(repo, 'scripts', 'sandbox.ts'), '--seed', 'nope'], { cwd: repo, stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  let stdout = '';
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
  const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
  t.is(code, 2);
  t.is(stdout, '');
  t.regex(stderr, /--seed must be bookinfo, federation or none, not "nope"/);
});
