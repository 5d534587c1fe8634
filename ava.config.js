// The tests of `npm test` (the Istio oracle's are in ava.istio.config.js).
//
// ava runs `concurrency` test files at a time, in the order below. Files that take long (in wall time: they wait on
// timers, subprocesses or real processes, or build the release) start first, so that none of them starts last and
// keeps the run going alone while the short files have long finished (longest first is the usual rule for packing
// jobs onto a few workers). Measured per file, one file at a time on an idle 2-core machine (`/usr/bin/time npx ava
// <file>`); a file missing here just sorts by name after these.
const LONGEST_FIRST = [
  'test/commands/concurrency.test.ts',
  'test/commands/faults.test.ts',
  'test/release/release.test.ts',
  'test/release/code-cache.test.ts',
  'test/cli/bench.test.ts',
  'test/verify/tcp.test.ts',
  'test/commands/reads.test.ts',
  'test/commands/interactive.test.ts',
  'test/commands/signals.test.ts',
  'test/commands/rbac.test.ts',
  'test/commands/rbac-lifecycle.test.ts',
];

/** The rank of a file (an absolute path) in LONGEST_FIRST; the others after them. */
const rank = (file) => {
  const index = LONGEST_FIRST.findIndex((name) => file.endsWith(`/${name}`));
  return index === -1 ? LONGEST_FIRST.length : index;
};

export default {
  files: ['test/**/*.test.ts', '!test/istio/**'],
  extensions: { ts: 'module' },
  // TypeScript: compiled by our module hooks, registered once ava's own modules are loaded
  // (test/support/typescript/register.mjs). One child process per test file, as measured there.
  require: ['./test/support/typescript/register.mjs'],
  workerThreads: false,
  timeout: '2m',
  concurrency: 4,
  sortTestFiles: (a, b) => rank(a) - rank(b) || a.localeCompare(b, [], { numeric: true }),
  // Messages must not depend on the machine's locale.
  environmentVariables: { LANG: 'C.UTF-8', LC_ALL: 'C.UTF-8' },
};
