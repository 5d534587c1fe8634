// The one build of the plugin, shared by the development build (scripts/build.mjs → dist/, which bin/kubectl-meshfed
// runs) and the release (scripts/package.mjs → the main script of every executable): `buildPlugin` writes
// kubectl-meshfed.cjs, one CommonJS script with every dependency bundled (Node's single-executable support runs one
// CommonJS script), and each SEA asset beside it. The tests and the benchmark therefore run the very bytes users run.
import { build } from 'esbuild';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';

export const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'));

/**
 * Where the docs of this version are read: the repository (package.json's homepage, the one place the project's
 * address is written) at the release's tag. The plugin's `see …` links point there.
 */
export const docsBase = `${pkg.homepage}/blob/v${pkg.version}/`;
const define = { __MESHFED_VERSION__: JSON.stringify(pkg.version), __MESHFED_DOCS__: JSON.stringify(docsBase) };

/** The plugin's script, in dist/ and in each executable. */
export const MAIN_SCRIPT = 'kubectl-meshfed.cjs';

/**
 * The modules the plugin keeps out of its main script, because Node reads the whole main script at every start and
 * few runs need them: @kubernetes/client-node (14 MB: only for kubeconfig users whose credentials come from an
 * `auth-provider`) and @inquirer/prompts (0.8 MB with the character set tables of its editor prompt: only when a
 * command asks a question on a terminal). Each is a CommonJS file of its own — a SEA asset in the executable, a file
 * beside the main script in dist/ — compiled the first time a command imports it. Only modules imported by name fit:
 * the plugin's ES modules see a CommonJS module's `module.exports` as its default export (Node's rule, which esbuild
 * follows in a `"type": "module"` package), so a module used through its default export (ora) stays in the script.
 */
export const SEA_ASSETS = { '@kubernetes/client-node': 'client-node.cjs', '@inquirer/prompts': 'prompts.cjs' };

const seaAssets = {
  name: 'sea-assets',
  setup(build) {
    const filter = new RegExp(`^(${Object.keys(SEA_ASSETS).map((m) => m.replace(/[/.]/g, '\\$&')).join('|')})$`);
    build.onResolve({ filter }, (args) => ({ path: args.path, namespace: 'sea-asset' }));
    build.onLoad({ filter: /.*/, namespace: 'sea-asset' }, (args) => ({ contents: `module.exports = __meshfedAsset(${JSON.stringify(SEA_ASSETS[args.path])});`, loader: 'js' }));
  },
};

/**
 * yargs' platform shim (yargs/lib/platform-shims/esm.mjs) imports cliui and string-width, which only the help text
 * uses (build/lib/usage.js, `help()`), and each of them builds an `Intl.Segmenter` and Unicode property regular
 * expressions (RGI_Emoji) as it loads: about as much CPU as all the rest of a `--version`. In the bundle they are
 * loaded when the help is first rendered. (The shim's own `require`, kept for yargs' `extends` of config files, is
 * renamed so that the bundler sees these two `require` calls.)
 *
 * And yargs' factory guesses a version from the nearest package.json (build/lib/yargs-factory.js, `YargsFactory` calls
 * `version()`, which reads `pkgUp`): outside node_modules it starts from the working directory and lists every
 * directory up to the root until one has a package.json (55 ms in a /tmp of 10,000 entries), for a version the plugin
 * replaces with its own at once. Its `findUp` finds nothing instead (the plugin reads no package.json configuration).
 *
 * Each text replaced must be found, so that a yargs update that moves it fails the build rather than silently
 * bringing the cost back.
 */
const yargsOnDemand = {
  name: 'yargs-on-demand',
  setup(build) {
    build.onLoad({ filter: /[\\/]yargs[\\/]lib[\\/]platform-shims[\\/]esm\.mjs$/ }, async (args) => {
      let text = await readFile(args.path, 'utf8');
      const swaps = [
        ["import cliui from 'cliui'", "const cliui = (options) => require('cliui').default(options)"],
        ["import stringWidth from 'string-width';", "const stringWidth = (text) => require('string-width').default(text);"],
        ['const require = createRequire(import.meta.url);', 'const requireFromShim = createRequire(import.meta.url);'],
        ["import escalade from 'escalade/sync'\n", ''],
        ['  findUp: escalade,\n', '  findUp: () => undefined,\n'],
        ['  require,\n', '  require: requireFromShim,\n'],
      ];
      for (const [from, to] of swaps) {
        if (!text.includes(from)) throw new Error(`yargs-on-demand: "${from}" is no longer in ${args.path}`);
        text = text.replace(from, to);
      }
      return { contents: text, loader: 'js' };
    });
  },
};

const common = {
  bundle: true,
  format: 'cjs',
  platform: 'node',
  // Node 20.19 runs dist/ (package.json engines); the executables embed Node 22.
  target: 'node20',
  legalComments: 'eof',
  logLevel: 'warning',
  // tr46 and whatwg-url (under @kubernetes/client-node) require Node's built-in `punycode`, which Node 22 (the
  // executables') deprecates with a warning printed at every run that loads them (DEP0040). The userland package of
  // the same code (the `punycode` devDependency) is bundled instead: the trailing slash names the package, not the
  // built-in.
  alias: { punycode: 'punycode/' },
};

/**
 * The main script. A command's modules are still evaluated only when that command runs: esbuild turns each `import()`
 * of a bundled module into a call of its initialiser. `import.meta.url` (yargs reads it) becomes the URL of the
 * executable, or of the script when Node runs it from dist/.
 */
export function mainBuildOptions(outfile) {
  return {
    ...common,
    stdin: { contents: "import { run } from './src/cli.ts';\nvoid run();\n", resolveDir: new URL('..', import.meta.url).pathname, loader: 'ts', sourcefile: 'main.ts' },
    outfile,
    define: { ...define, 'import.meta.url': '__meshfedImportMetaUrl' },
    plugins: [seaAssets, yargsOnDemand],
    banner: {
      js: [
        "const __meshfedSea = require('node:sea').isSea();",
        // Taken now: bundled modules may declare a top-level `__dirname` of their own (yargs' shim does), hoisted here.
        'const __meshfedDir = __dirname;',
        "const __meshfedImportMetaUrl = require('node:url').pathToFileURL(__meshfedSea ? process.execPath : __filename).href;",
        '/** Evaluates a CommonJS asset (scripts/esbuild-options.mjs SEA_ASSETS), from the executable or from beside this script. */',
        'function __meshfedAsset(name) {',
        "  const code = __meshfedSea ? require('node:sea').getAsset(name, 'utf8') : require('node:fs').readFileSync(require('node:path').join(__meshfedDir, name), 'utf8');",
        '  const module = { exports: {} };',
        "  require('node:vm').compileFunction(code, ['module', 'exports', 'require'], { filename: name })(module, module.exports, require);",
        '  return module.exports;',
        '}',
      ].join('\n'),
    },
  };
}

/** One SEA asset: `module` and what it needs, as one CommonJS file. */
export function assetBuildOptions(module, outfile) {
  return { ...common, stdin: { contents: `module.exports = require(${JSON.stringify(module)});`, resolveDir: new URL('..', import.meta.url).pathname, loader: 'js' }, outfile };
}

/**
 * What runs the main script with its code cache (src/launch/code-cache.ts), for the launcher from source
 * (bin/kubectl-meshfed) and for the build of the executable's start-up cache (scripts/package.mjs).
 */
export const LAUNCH_SCRIPT = 'launch.cjs';

/** Builds the plugin into `outdir`: {@link MAIN_SCRIPT}, the SEA assets and {@link LAUNCH_SCRIPT}. */
export async function buildPlugin(outdir) {
  await build(mainBuildOptions(join(outdir, MAIN_SCRIPT)));
  for (const [module, asset] of Object.entries(SEA_ASSETS)) await build(assetBuildOptions(module, join(outdir, asset)));
  await build({ ...common, entryPoints: [new URL('../src/launch/code-cache.ts', import.meta.url).pathname], outfile: join(outdir, LAUNCH_SCRIPT) });
}

/** The executable's SEA main script. */
export const SEA_MAIN = 'sea-main.cjs';

/**
 * The executable's SEA main script (src/launch/sea-main.ts), which runs the main script (a SEA asset) with a code
 * cache per command in the user's cache directory. `script` is the main script's text: its hash names the build in
 * the cache directory's path, so that no other build reads its caches.
 */
export function seaMainBuildOptions(outfile, script) {
  const hash = createHash('sha256').update(script).digest('hex').slice(0, 12);
  return { ...common, entryPoints: [new URL('../src/launch/sea-main.ts', import.meta.url).pathname], outfile, define: { __MESHFED_BUILD__: JSON.stringify(`${pkg.version}-${hash}`) } };
}
