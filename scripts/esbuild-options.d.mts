// Types of esbuild-options.mjs for the tests and scripts that import it.
import type { BuildOptions } from 'esbuild';

export const pkg: { name: string; version: string; homepage: string; [key: string]: unknown };
export const docsBase: string;
export const MAIN_SCRIPT: string;
export const SEA_ASSETS: Record<string, string>;
export function mainBuildOptions(outfile: string): BuildOptions;
export function assetBuildOptions(module: string, outfile: string): BuildOptions;
export function buildPlugin(outdir: string): Promise<void>;
