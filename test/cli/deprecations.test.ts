import test from 'ava';
import { execFile } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { repoRoot } from '../support/cli.js';

const run = promisify(execFile);

// Node 22 (what the release executables embed) prints "DEP0040 The `punycode` module is deprecated" at every run
// that loads a script requiring the built-in; Node 20 reports the same with --pending-deprecation. Every script of the
// build is loaded here as the executables load them, with deprecations turned into errors.
for (const script of readdirSync(join(repoRoot, 'dist')).filter((name) => name.endsWith('.cjs') && name !== 'kubectl-meshfed.cjs')) {
  test(`dist/${script} loads without a deprecation warning`, async (t) => {
    const { stderr } = await run(process.execPath, ['--pending-deprecation', '--throw-deprecation', '-e', `require(${JSON.stringify(join(repoRoot, 'dist', script))})`]);
    t.is(stderr, '');
  });
}
