// esbuild settings shared by the development build (scripts/build.mjs) and the release executables
// (scripts/package.mjs): the development build is one ES module entry, code-split so each command loads only what
// it needs; the release bundles everything into one CommonJS script for Node's single-executable support.
import { readFileSync } from 'node:fs';

export const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'));

const cliEntry = new URL('../src/cli.ts', import.meta.url).pathname;
// The version and the project's address (package.json's homepage), for --version and the versioned links to the docs.
const define = { __MESHFED_VERSION__: JSON.stringify(pkg.version), __MESHFED_HOMEPAGE__: JSON.stringify(pkg.homepage) };

export function cliBuildOptions(outdir) {
  return {
    entryPoints: { cli: cliEntry },
    outdir,
    outExtension: { '.js': '.mjs' },
    bundle: true,
    splitting: true,
    format: 'esm',
    platform: 'node',
    target: 'node20',
    define,
    logLevel: 'warning',
  };
}

/**
 * One CommonJS file with every dependency, run by the executable's embedded Node. A command's modules are still
 * evaluated only when that command runs: esbuild turns each `import()` of a bundled module into a call of its
 * initialiser. `import.meta.url` (yargs reads it) becomes the executable's own file URL.
 */
export function seaBuildOptions(outfile) {
  return {
    stdin: { contents: "import { run } from './src/cli.ts';\nvoid run();\n", resolveDir: new URL('..', import.meta.url).pathname, loader: 'ts', sourcefile: 'sea-main.ts' },
    outfile,
    bundle: true,
    format: 'cjs',
    platform: 'node',
    target: 'node22',
    define: { ...define, 'import.meta.url': '__meshfedImportMetaUrl' },
    banner: { js: "const __meshfedImportMetaUrl = require('node:url').pathToFileURL(process.execPath).href;" },
    legalComments: 'eof',
    logLevel: 'warning',
  };
}
