// Bundles the CLI into dist/ (dist/cli.mjs and one chunk per command) so that the plugin starts fast: a small
// entry, and each command's code and heavy dependencies loaded only when that command runs. Dependencies stay in
// node_modules here; the release archive (scripts/package.mjs) bundles them too. Type checking is separate (npm run
// lint). dist/ is emptied first: chunk names carry content hashes, so old ones would pile up (and be packed).
import { build } from 'esbuild';
import { rmSync } from 'node:fs';
import { cliBuildOptions } from './esbuild-options.mjs';

rmSync(new URL('../dist', import.meta.url), { recursive: true, force: true });
await build({ ...cliBuildOptions('dist'), sourcemap: 'linked', packages: 'external' });
