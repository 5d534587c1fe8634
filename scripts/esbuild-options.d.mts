// Types of esbuild-options.mjs for the tests that import it.
import type { BuildOptions } from 'esbuild';

export const pkg: { name: string; version: string; homepage: string; [key: string]: unknown };
export const docsBase: string;
export const SEA_ASSETS: Record<string, string>;
export function cliBuildOptions(outdir: string): BuildOptions;
export function seaBuildOptions(outfile: string): BuildOptions;
export function seaAssetBuildOptions(module: string, outfile: string): BuildOptions;
