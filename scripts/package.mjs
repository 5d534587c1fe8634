// Builds the release archive that krew installs, and writes its sha256 into krew-manifest.yaml.
//
// The archive is self-contained (every dependency bundled into dist/, so no npm install on the user's machine;
// Node >= 20.19 is the only requirement) and reproducible: files sorted, fixed mtimes, owner 0, gzip without a
// timestamp — building the same commit twice gives the same sha256.
//
//   node scripts/package.mjs            → release/kubectl-meshfed-v<version>.tar.gz + updated krew-manifest.yaml
//   node scripts/package.mjs --check    → exit 1 if krew-manifest.yaml does not match a fresh build
//   node scripts/package.mjs --out DIR --no-manifest → only the archive, in DIR (tests)
import { build } from 'esbuild';
import { cliBuildOptions, pkg } from './esbuild-options.mjs';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, copyFileSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const version = `v${pkg.version}`;
const outIndex = process.argv.indexOf('--out');
const outDir = outIndex > 0 ? process.argv[outIndex + 1] : join(root, 'release');
const stage = join(outDir, 'stage');
const archive = join(outDir, `kubectl-meshfed-${version}.tar.gz`);

rmSync(stage, { recursive: true, force: true });
mkdirSync(join(stage, 'bin'), { recursive: true });

await build({
  ...cliBuildOptions(join(stage, 'dist')),
  legalComments: 'eof',
  // Bundled CommonJS dependencies call require() for Node built-ins.
  banner: { js: "import { createRequire as __meshfedCreateRequire } from 'node:module'; const require = __meshfedCreateRequire(import.meta.url);" },
});

copyFileSync(join(root, 'bin/kubectl-meshfed'), join(stage, 'bin/kubectl-meshfed'));
copyFileSync(join(root, 'bin/kubectl_complete-meshfed'), join(stage, 'bin/kubectl_complete-meshfed'));
chmodSync(join(stage, 'bin/kubectl-meshfed'), 0o755);
chmodSync(join(stage, 'bin/kubectl_complete-meshfed'), 0o755);
copyFileSync(join(root, 'README.md'), join(stage, 'README.md'));
copyFileSync(join(root, 'LICENSE'), join(stage, 'LICENSE'));
// The launcher is an ES module without extension: Node needs "type": "module" beside it.
writeFileSync(join(stage, 'package.json'), JSON.stringify({ name: pkg.name, version: pkg.version, type: 'module', engines: pkg.engines }, null, 2) + '\n');

const tar = execFileSync('tar', ['--sort=name', '--mtime=@0', '--owner=0', '--group=0', '--numeric-owner', '--mode=u+rw,go+r,go-w', '-C', stage, '-cf', '-', '.'], { maxBuffer: 1 << 28 });
const gz = execFileSync('gzip', ['-n', '-9'], { input: tar, maxBuffer: 1 << 28 });
const sha256 = createHash('sha256').update(gz).digest('hex');

const manifestPath = join(root, 'krew-manifest.yaml');
const manifest = readFileSync(manifestPath, 'utf8');
const updated = manifest
  .replace(/^(\s*version:\s*).*$/m, `$1${version}`)
  .replace(/(download\/)v[^/]+(\/kubectl-meshfed-)v[^/]+?(\.tar\.gz)/g, `$1${version}$2${version}$3`)
  .replace(/(sha256:\s*)"?[0-9a-f]{64}"?/g, `$1${sha256}`);

if (process.argv.includes('--check')) {
  if (updated !== manifest) {
    console.error(`krew-manifest.yaml is stale: the archive of ${version} has sha256 ${sha256}; run node scripts/package.mjs`);
    process.exit(1);
  }
  console.log(`krew-manifest.yaml matches ${archive.replace(root, '')} (sha256 ${sha256})`);
} else {
  mkdirSync(outDir, { recursive: true });
  writeFileSync(archive, gz);
  if (!process.argv.includes('--no-manifest')) writeFileSync(manifestPath, updated);
  console.log(`${archive.replace(root, '')}\nsha256 ${sha256}`);
}
rmSync(stage, { recursive: true, force: true });
