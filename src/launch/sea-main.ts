/**
 * The release executable's main script (scripts/package.mjs): it runs the plugin's script, carried as the SEA asset
 * kubectl-meshfed.cjs, with a code cache per command kept in the user's cache directory (src/launch/code-cache.ts),
 * as the launcher from source keeps one beside the script. The executable's own start-up cache, made at the build
 * (linux/amd64 only: Node accepts a cache only in the binary that made it), is the SEA asset kubectl-meshfed.cjs.cache.
 */
import { getRawAsset } from 'node:sea';
import { dirname } from 'node:path';
import { launch, userCacheDir, userCacheStore } from './code-cache.js';

/** The plugin's version and its script's hash (scripts/esbuild-options.mjs, seaMainBuildOptions). */
declare const __MESHFED_BUILD__: string;

function asset(name: string): Buffer | undefined {
  try {
    // Not copied: V8 only reads a cache, and the script is decoded into a string at once.
    return Buffer.from(getRawAsset(name) as ArrayBuffer);
  } catch {
    return undefined;
  }
}

const build = `${__MESHFED_BUILD__}-node${process.versions.node}-${process.platform}-${process.arch}`;
launch({
  filename: process.execPath,
  source: asset('kubectl-meshfed.cjs')!.toString('utf8'),
  require,
  dirname: dirname(process.execPath),
  args: process.argv.slice(2),
  store: userCacheStore(userCacheDir(process.env, process.platform), build),
  builtIn: asset('kubectl-meshfed.cjs.cache'),
});
