// Bundles the CLI into one ES module (dist/cli.mjs) so that the plugin starts fast:
// a single file to read, and heavy dependencies loaded only by the commands that need them.
// Type checking is separate (npm run lint).
import { build } from 'esbuild';
import { readFileSync } from 'node:fs';

const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'));

await build({
  entryPoints: { cli: 'src/cli.ts' },
  outdir: 'dist',
  outExtension: { '.js': '.mjs' },
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  sourcemap: 'linked',
  packages: 'external',
  define: { __MESHFED_VERSION__: JSON.stringify(pkg.version) },
  logLevel: 'warning',
});
