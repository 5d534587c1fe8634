// The core (src/federation, src/pki) is pure: it never imports cluster, terminal, file, network or process I/O.
// The lint rule says the same; this test also catches dynamic imports and `process` use that lint may not see.
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import test from 'ava';

const root = fileURLToPath(new URL('../../', import.meta.url));
const forbidden = [
  /^(node:)?(fs|fs\/promises|process|child_process|net|tls|http|https|http2|dgram|dns|readline|worker_threads|cluster)$/,
  /^@kubernetes\/client-node/, /^chalk$/, /^ora$/, /^@inquirer\//, /^yargs/,
  /(^|\/)(kube|ui|commands)(\/|$)/,
];

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? sources(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : []);
}

for (const area of ['src/federation', 'src/pki']) {
  test(`${area} imports no I/O module and does not use process`, (t) => {
    const files = sources(join(root, area));
    t.true(files.length > 0, `${area} has sources`);
    for (const file of files) {
      const text = readFileSync(file, 'utf8');
      const specifiers = [...text.matchAll(/(?:import|export)\s[^'"]*?from\s+['"]([^'"]+)['"]|import\s*\(\s*['"]([^'"]+)['"]\s*\)|require\s*\(\s*['"]([^'"]+)['"]\s*\)|import\s+['"]([^'"]+)['"]/g)]
        .map((m) => m[1] ?? m[2] ?? m[3] ?? m[4]!);
      for (const spec of specifiers) {
        t.false(forbidden.some((re) => re.test(spec)), `${relative(root, file)} imports ${spec}`);
      }
      const code = text.replace(/\/\*[\s\S]*?\*\/|\/\/.*$/gm, '');
      t.false(/\bprocess\s*\./.test(code), `${relative(root, file)} uses process`);
    }
  });
}
