// esbuild settings shared by the development build (scripts/build.mjs) and the release archive
// (scripts/package.mjs): one ES module entry, code-split so each command loads only what it needs.
import { readFileSync } from 'node:fs';

export const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'));

export function cliBuildOptions(outdir) {
  return {
    entryPoints: { cli: new URL('../src/cli.ts', import.meta.url).pathname },
    outdir,
    outExtension: { '.js': '.mjs' },
    bundle: true,
    splitting: true,
    format: 'esm',
    platform: 'node',
    target: 'node20',
    define: { __MESHFED_VERSION__: JSON.stringify(pkg.version) },
    logLevel: 'warning',
  };
}
