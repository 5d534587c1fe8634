// Startup time of launchers side by side: runs each command in turn, round after round (paired, so load on the
// machine hits all of them alike), and prints min / median / max wall time per command and argument list.
//
//   node scripts/startup.mjs [--runs 15] NAME=EXECUTABLE[,ARG…] …
//   e.g. node scripts/startup.mjs node=node,bin/kubectl-meshfed sea=release/linux-amd64/kubectl-meshfed
import { spawnSync } from 'node:child_process';

const argv = process.argv.slice(2);
const runsAt = argv.indexOf('--runs');
const runs = runsAt >= 0 ? Number(argv[runsAt + 1]) : 15;
// The value of --runs is not a launcher (without --runs, every argument is one).
const launchers = argv.filter((a, i) => a.includes('=') && !(runsAt >= 0 && i === runsAt + 1)).map((spec) => {
  const [name, command] = spec.split(/=(.*)/s);
  const [file, ...prefix] = command.split(',');
  return { name, file, prefix };
});
const cases = [['--version'], ['--help'], ['contexts', '--help']];

const rows = [];
for (const args of cases) {
  const times = new Map(launchers.map((l) => [l.name, []]));
  for (let round = 0; round < runs + 1; round++) {
    for (const l of launchers) {
      const started = process.hrtime.bigint();
      const result = spawnSync(l.file, [...l.prefix, ...args], { encoding: 'utf8', env: { ...process.env, NO_COLOR: '1' } });
      const ms = Number(process.hrtime.bigint() - started) / 1e6;
      if (result.status !== 0) throw new Error(`${l.name} ${args.join(' ')}: exit ${result.status}\n${result.stderr}`);
      if (round > 0) times.get(l.name).push(ms); // the first round warms the page cache and writes the code caches
    }
  }
  for (const l of launchers) {
    const sorted = times.get(l.name).sort((a, b) => a - b);
    rows.push([args.join(' '), l.name, sorted[0], sorted[Math.floor(sorted.length / 2)], sorted[sorted.length - 1]]);
  }
}
console.log(`${runs} paired runs each (ms: min / median / max)`);
for (const [args, name, min, median, max] of rows) {
  console.log(`${args.padEnd(16)} ${name.padEnd(12)} ${min.toFixed(0).padStart(5)} ${median.toFixed(0).padStart(5)} ${max.toFixed(0).padStart(5)}`);
}
