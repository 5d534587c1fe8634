// Bundles the CLI into dist/ (dist/cli.mjs and its chunks) so that the plugin starts fast: few files to read, and
// heavy dependencies loaded only by the commands that need them. Dependencies stay in node_modules here; the
// release archive (scripts/package.mjs) bundles them too. Type checking is separate (npm run lint).
import { build } from 'esbuild';
import { cliBuildOptions } from './esbuild-options.mjs';

await build({ ...cliBuildOptions('dist'), sourcemap: 'linked', packages: 'external' });
