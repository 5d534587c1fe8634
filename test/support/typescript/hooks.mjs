// Module hooks (Node's `module.register`, run in the loader's own thread) that run TypeScript the way tsc checks it
// (tsconfig.json: NodeNext, verbatimModuleSyntax): a relative `./x.js` imported by a .ts module is `./x.ts` when only
// that exists, and a .ts module is compiled by esbuild (types stripped, nothing down-levelled, an inline source map
// naming the .ts file, so stack traces and ava's code excerpts point at the source). The output is cached in the
// system's temporary directory, keyed by everything it depends on, so esbuild runs (and is loaded) only for a file
// that changed; a cache that cannot be written is skipped. See ./register.mjs.
import { createHash } from 'node:crypto';
import { existsSync, lstatSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const require = createRequire(import.meta.url);
const tsconfig = readFileSync(fileURLToPath(new URL('../../../tsconfig.json', import.meta.url)), 'utf8');
const options = (file) => ({
  loader: 'ts',
  format: 'esm',
  target: `node${process.versions.node}`,
  sourcemap: 'inline',
  sourcefile: file,
  tsconfigRaw: tsconfig,
});
// What the output depends on besides the file's path and text: esbuild's version, the options, this file.
const salt = createHash('sha256')
  .update(require('esbuild/package.json').version)
  .update(JSON.stringify(options('')))
  .update(readFileSync(fileURLToPath(import.meta.url)))
  .digest('hex');
const cacheDir = join(tmpdir(), `meshfed-ts-${process.getuid?.() ?? 'user'}`);
/**
 * The cache is code this process runs: it is used only in a directory of this user's that no one else may write to
 * (not a symlink), made so if missing; otherwise every file is compiled again.
 */
const cacheUsable = (() => {
  try {
    mkdirSync(cacheDir, { recursive: true, mode: 0o700 });
    const stat = lstatSync(cacheDir);
    return stat.isDirectory() && (process.getuid === undefined || stat.uid === process.getuid()) && (stat.mode & 0o022) === 0;
  } catch {
    return false;
  }
})();
let esbuild;

/** `./x.js` from a .ts module is `./x.ts` when there is no x.js (tsc's NodeNext resolution of TypeScript sources). */
export async function resolve(specifier, context, next) {
  if (context.parentURL?.endsWith('.ts') && /^\.\.?\//.test(specifier) && specifier.endsWith('.js')) {
    const url = new URL(specifier, context.parentURL);
    if (!existsSync(url)) {
      const source = new URL(`${url.href.slice(0, -'.js'.length)}.ts`);
      if (existsSync(source)) return { url: source.href, format: 'module', shortCircuit: true };
    }
  }
  return next(specifier, context);
}

/** A file: URL ending in .ts is an ES module compiled from TypeScript; anything else is Node's. */
export async function load(url, context, next) {
  if (!url.startsWith('file:') || !url.endsWith('.ts')) return next(url, context);
  const file = fileURLToPath(url);
  const text = readFileSync(file, 'utf8');
  const cached = join(cacheDir, `${createHash('sha256').update(salt).update(file).update('\0').update(text).digest('hex')}.js`);
  let source;
  try {
    if (!cacheUsable) throw new Error('no cache');
    source = readFileSync(cached, 'utf8');
  } catch {
    esbuild ??= await import('esbuild');
    source = esbuild.transformSync(text, options(file)).code;
    // Atomically: other test processes read the cache meanwhile.
    const partial = `${cached}.${process.pid}`;
    try {
      if (!cacheUsable) throw new Error('no cache');
      writeFileSync(partial, source, { mode: 0o600 });
      renameSync(partial, cached);
    } catch {
      rmSync(partial, { force: true });
    }
  }
  return { format: 'module', source, shortCircuit: true };
}
