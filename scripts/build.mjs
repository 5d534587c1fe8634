// Builds the plugin into dist/: dist/kubectl-meshfed.cjs, the same script every release executable carries
// (scripts/esbuild-options.mjs, buildPlugin), and its SEA assets beside it. bin/kubectl-meshfed runs it. Type
// checking is separate (npm run lint). dist/ is emptied first, so that nothing of an older build stays (and is packed).
// Last, one `--version` run writes V8's start-up code cache of the script (bin/kubectl-meshfed), as the executable has
// its own; each command's own cache is written by its first successful run.
import { execFileSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { buildPlugin } from './esbuild-options.mjs';

rmSync(new URL('../dist', import.meta.url), { recursive: true, force: true });
await buildPlugin(fileURLToPath(new URL('../dist', import.meta.url)));
execFileSync(process.execPath, [fileURLToPath(new URL('../bin/kubectl-meshfed', import.meta.url)), '--version'], { stdio: 'ignore' });
