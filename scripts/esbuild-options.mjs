// esbuild settings shared by the development build (scripts/build.mjs) and the release executables
// (scripts/package.mjs): the development build is one ES module entry, code-split so each command loads only what
// it needs; the release bundles everything into one CommonJS script for Node's single-executable support.
import { readFileSync } from 'node:fs';

export const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'));

const cliEntry = new URL('../src/cli.ts', import.meta.url).pathname;
/**
 * Where the docs of this version are read: the repository (package.json's homepage, the one place the project's
 * address is written) at the release's tag. The plugin's `see …` links point there.
 */
export const docsBase = `${pkg.homepage}/blob/v${pkg.version}/`;
const define = { __MESHFED_VERSION__: JSON.stringify(pkg.version), __MESHFED_DOCS__: JSON.stringify(docsBase) };

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
 * The modules the executable keeps out of its main script: @kubernetes/client-node is 14 of its 18 MB, and V8 reads
 * the whole main script at every start. It is a SEA asset (`seaAssetBuildOptions`), compiled the first time a command
 * that talks to a cluster imports it, as the development build loads it from node_modules only then.
 */
export const SEA_ASSETS = { '@kubernetes/client-node': 'client-node.cjs' };

const seaAssets = {
  name: 'sea-assets',
  setup(build) {
    const filter = new RegExp(`^(${Object.keys(SEA_ASSETS).map((m) => m.replace(/[/.]/g, '\\$&')).join('|')})$`);
    build.onResolve({ filter }, (args) => ({ path: args.path, namespace: 'sea-asset' }));
    build.onLoad({ filter: /.*/, namespace: 'sea-asset' }, (args) => ({ contents: `module.exports = __meshfedAsset(${JSON.stringify(SEA_ASSETS[args.path])});`, loader: 'js' }));
  },
};

const seaCommon = {
  bundle: true,
  format: 'cjs',
  platform: 'node',
  target: 'node22',
  legalComments: 'eof',
  logLevel: 'warning',
};

/**
 * The executable's main script: one CommonJS file for Node's single-executable support, everything bundled but the
 * SEA assets. A command's modules are still evaluated only when that command runs: esbuild turns each `import()` of a
 * bundled module into a call of its initialiser. `import.meta.url` (yargs reads it) becomes the executable's URL.
 */
export function seaBuildOptions(outfile) {
  return {
    ...seaCommon,
    stdin: { contents: "import { run } from './src/cli.ts';\nvoid run();\n", resolveDir: new URL('..', import.meta.url).pathname, loader: 'ts', sourcefile: 'sea-main.ts' },
    outfile,
    define: { ...define, 'import.meta.url': '__meshfedImportMetaUrl' },
    plugins: [seaAssets],
    banner: {
      js: [
        "const __meshfedImportMetaUrl = require('node:url').pathToFileURL(process.execPath).href;",
        '/** Evaluates a CommonJS SEA asset (scripts/esbuild-options.mjs SEA_ASSETS) and returns its exports. */',
        'function __meshfedAsset(name) {',
        "  const module = { exports: {} };",
        "  require('node:vm').compileFunction(require('node:sea').getAsset(name, 'utf8'), ['module', 'exports', 'require'], { filename: name })(module, module.exports, require);",
        '  return module.exports;',
        '}',
      ].join('\n'),
    },
  };
}

/** One SEA asset: `module` and what it needs, as one CommonJS file. */
export function seaAssetBuildOptions(module, outfile) {
  return { ...seaCommon, stdin: { contents: `module.exports = require(${JSON.stringify(module)});`, resolveDir: new URL('..', import.meta.url).pathname, loader: 'js' }, outfile };
}
