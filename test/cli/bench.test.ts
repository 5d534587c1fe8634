// Smoke test of `npm run bench -- --quick`: the benchmark runs to the end against the emulated clusters and reports
// every row with finite ratios and counts. Requests and bytes are counted at N = 1 and 3 here (the default N up to 200
// takes minutes of setup and is checked as the default below). Speed itself is not asserted (the machine running the tests may be busy).
import test from 'ava';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { repoRoot } from '../support/cli.js';
import { DEFAULT_SIZES, options } from '../../scripts/bench.js';

interface Stats { min: number; median: number; max: number }

test('npm run bench -- --quick --sizes 1,3 reports every row with finite ratios, and requests and bytes for each N', async (t) => {
  t.timeout(15 * 60_000);
  const dir = mkdtempSync(join(tmpdir(), 'meshfed-bench-test-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const json = join(dir, 'report.json');
  const { code, stdout, stderr } = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', join(repoRoot, 'scripts', 'bench.ts'), '--quick', '--sizes', '1,3', '--json', json], { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => { out += chunk; });
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => { err += chunk; });
    child.on('error', reject);
    child.on('close', (exit) => resolve({ code: exit, stdout: out, stderr: err }));
  });
  t.is(code, 0, stderr);

  const report = JSON.parse(readFileSync(json, 'utf8')) as {
    ratios: Array<{ command: string; baseline: string; ratio: Stats; meshfedMs: Stats; baselineMs: Stats }>;
    traffic: Array<{ command: string; n: number; requests: number; bytes: number }>;
    modules: Record<string, number>;
    sizes: number[];
  };
  const expected = [
    ['--version', 'kubectl version --client'], ['--help', 'kubectl version --client'], ['contexts', 'kubectl version --client'],
    ['--version', 'node -e 0'], ['--help', 'node -e 0'], ['contexts', 'node -e 0'],
    ['export (first)', 'kubectl apply export objects --server-side'], ['export (again)', 'kubectl apply export objects --server-side'],
    ['import (first)', 'kubectl apply import objects --server-side'], ['import (again)', 'kubectl apply import objects --server-side'],
  ];
  t.deepEqual(report.ratios.map((r) => [r.command, r.baseline]), expected);
  for (const row of report.ratios) {
    for (const stats of [row.ratio, row.meshfedMs, row.baselineMs]) {
      for (const value of [stats.min, stats.median, stats.max]) t.true(Number.isFinite(value) && value > 0, `${row.command} vs ${row.baseline}: ${JSON.stringify(stats)}`);
      t.true(stats.min <= stats.median && stats.median <= stats.max);
    }
    t.true(stdout.includes(`${row.command.padEnd(16)}${row.baseline}`), `the printed table has ${row.command} vs ${row.baseline}`);
  }
  t.deepEqual(report.sizes, [1, 3]);
  for (const command of ['export (first)', 'export (again)', 'import (first)', 'import (again)', 'status (provider)', 'status (consumer)', 'verify']) {
    t.true(stdout.includes(command));
    for (const n of report.sizes) {
      const row = report.traffic.find((r) => r.command === command && r.n === n);
      t.truthy(row, `${command} at N=${n}`);
      t.true(row!.requests > 0 && Number.isFinite(row!.bytes) && row!.bytes > 0, `${command} at N=${n}: ${JSON.stringify(row)}`);
    }
  }
  t.deepEqual(Object.keys(report.modules), ['meshfed --version', 'meshfed --help', 'meshfed contexts']);
  for (const count of Object.values(report.modules)) t.true(Number.isInteger(count) && count > 0);
});

test('npm run bench counts requests and bytes at N = 1, 10, 50 and 200 unless --sizes says otherwise', (t) => {
  t.deepEqual(DEFAULT_SIZES, [1, 10, 50, 200]);
  t.deepEqual(options([]).sizes, [1, 10, 50, 200]);
  t.deepEqual(options(['--sizes', '2,5']).sizes, [2, 5]);
  for (const bad of ['0,1', '5,3', '1,x', '']) t.throws(() => options(['--sizes', bad]), { message: /--sizes must list increasing positive integers/ });
});
