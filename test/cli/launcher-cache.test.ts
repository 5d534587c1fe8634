// bin/kubectl-meshfed keeps V8's code cache per command (the functions a command compiles as it runs are cached only
// once it has run): a command that succeeds writes its own cache as it exits, a later run of it loads that cache (and
// Node accepts it: no "Code cache data rejected"), a failed run or a run that names no command writes none, and a
// corrupt cache is neither run nor kept.
import test from 'ava';
import { execFile } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { repoRoot } from '../support/cli.js';

const exec = promisify(execFile);

test('a command that succeeds writes its code cache once; later runs load it; failures and --version write none', async (t) => {
  // A copy of the launcher and the build, so that the caches other tests' runs write in dist/ do not interfere.
  const dir = mkdtempSync(join(tmpdir(), 'meshfed-launcher-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  cpSync(join(repoRoot, 'bin'), join(dir, 'bin'), { recursive: true });
  cpSync(join(repoRoot, 'dist'), join(dir, 'dist'), { recursive: true, filter: (source) => !/\.cjs\.[a-z-]+\.cache$/.test(source) });
  const launcher = join(dir, 'bin', 'kubectl-meshfed');
  const caches = () => readdirSync(join(dir, 'dist')).filter((name) => name.endsWith('.cache')).sort();
  const run = (args: string[]) => exec(process.execPath, [launcher, ...args], { env: { ...process.env, NODE_OPTIONS: '' } })
    .then((r) => ({ code: 0, ...r }), (error: { code: number; stdout: string; stderr: string }) => error);
  t.deepEqual(caches(), ['kubectl-meshfed.cjs.cache']);

  const version = await run(['--version']);
  t.is(version.code, 0);
  t.deepEqual(caches(), ['kubectl-meshfed.cjs.cache'], '--version names no command: the start-up cache serves it');

  const failed = await run(['export', '--no-such-flag']);
  t.is(failed.code, 2);
  t.false(existsSync(join(dir, 'dist', 'kubectl-meshfed.cjs.export.cache')), 'a failed run writes no cache');

  const first = await run(['completion', 'bash']);
  t.is(first.code, 0);
  t.deepEqual(caches(), ['kubectl-meshfed.cjs.cache', 'kubectl-meshfed.cjs.completion.cache']);
  const second = await run(['completion', 'bash']);
  t.is(second.code, 0);
  t.is(second.stdout, first.stdout);
  t.is(second.stderr, '', 'Node accepts the command\'s cache and says nothing');

  // A corrupt cache (one flipped byte, which V8 would run or crash on) is not used, and is written again.
  const file = join(dir, 'dist', 'kubectl-meshfed.cjs.completion.cache');
  const corrupt = readFileSync(file);
  corrupt[corrupt.length >> 1] ^= 0xff;
  writeFileSync(file, corrupt);
  const third = await run(['completion', 'bash']);
  t.is(third.code, 0);
  t.is(third.stdout, first.stdout);
  t.notDeepEqual(readFileSync(file), corrupt, 'written again');
});
