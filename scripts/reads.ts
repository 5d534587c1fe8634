/**
 * What each command reads: requests sent and response bytes received per command (export re-run, import re-run,
 * status on both sides, verify) on emulated clusters holding N = 1, 10, 50 exports (and as many imports), and the
 * distinct requests (method, path, label selector) each command sent.
 *
 *   node scripts/build.mjs && npx tsx scripts/reads.ts [--counts 1,10,50] [--requests]
 */
import { parseArgs } from 'node:util';
import type { RequestRecord } from '../test/support/emulator/index.js';
import { startFederationWorld, type FederationWorld } from '../test/support/federation.js';

const { values } = parseArgs({ options: { counts: { type: 'string', default: '1,10,50' }, requests: { type: 'boolean', default: false } } });
const counts = values.counts.split(',').map(Number);

function exportArgs(i: number): string[] {
  return ['export', '--context', 'cluster2', '-n', 'bookinfo', '--service', 'myreviews', '--port', 'http', '--name', `reviews-${i}`];
}
function importArgs(i: number): string[] {
  return ['import', '--context', 'cluster1', '-n', 'default', '--from', 'cluster2', '--export', `bookinfo/reviews-${i}`, '--as', `myreviews-${i}`];
}

async function measured(fed: FederationWorld, args: string[]): Promise<{ requests: number; bytes: number; lines: string[] }> {
  const marks = new Map(fed.world.clusters.map((c) => [c.name, c.requests.length]));
  const result = await fed.run(args);
  if (result.code !== 0 && !(args[0] === 'verify' && result.code === 1)) throw new Error(`${args.join(' ')} exited ${result.code}:\n${result.stderr}`);
  const sent: Array<RequestRecord & { cluster: string }> = fed.world.clusters.flatMap((c) => c.requests.slice(marks.get(c.name)).map((r) => ({ ...r, cluster: c.name })))
    .filter((r) => r.userAgent?.startsWith('kubectl-meshfed'));
  const lines = [...new Set(sent.map((r) => `${r.cluster} ${r.method} ${r.path}${r.query.labelSelector ? ` ?labelSelector=${r.query.labelSelector}` : ''}`))].sort();
  return { requests: sent.length, bytes: sent.reduce((n, r) => n + r.bytes, 0), lines };
}

const fed = await startFederationWorld({ seed: 'bookinfo', clusters: [{ name: 'cluster1' }, { name: 'cluster2' }] });
try {
  let made = 0;
  const rows: string[] = ['| N | command | requests | KiB read |', '| ---: | --- | ---: | ---: |'];
  for (const n of counts) {
    for (; made < n; made++) {
      for (const args of [exportArgs(made + 1), importArgs(made + 1)]) {
        const r = await fed.run(args);
        if (r.code !== 0) throw new Error(`${args.join(' ')} exited ${r.code}:\n${r.stderr}`);
      }
    }
    const commands: Array<[string, string[]]> = [
      ['export (re-run)', exportArgs(1)],
      ['import (re-run)', importArgs(1)],
      ['status (provider)', ['status', '--context', 'cluster2']],
      ['status (consumer)', ['status', '--context', 'cluster1']],
      ['verify', ['verify', '--context', 'cluster1', '-n', 'default', '--import', 'myreviews-1', '--from', 'cluster2']],
    ];
    for (const [label, args] of commands) {
      const m = await measured(fed, args);
      rows.push(`| ${n} | ${label} | ${m.requests} | ${(m.bytes / 1024).toFixed(1)} |`);
      if (values.requests && n === counts[0]) process.stderr.write(`\n## ${label}\n${m.lines.join('\n')}\n`);
    }
  }
  process.stdout.write(`${rows.join('\n')}\n`);
} finally {
  await fed.stop();
}
