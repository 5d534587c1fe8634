// Builds the release: one self-contained executable per platform (Node's single-executable application: the bundled
// plugin injected into Node's official binary for that platform, so no Node on the user's machine), one archive per
// platform with the executable, LICENSE and the completion helper, and the krew manifest naming every archive's
// address and sha256.
//
// Reproducible: the bundle (esbuild), the SEA blob (the pinned Node), the injection (postject) and the macOS ad hoc
// signature are deterministic, and the archives are tar with sorted names, fixed mtimes, owner 0 and gzip without a
// timestamp — building the same commit twice gives the same bytes. Builds on linux/amd64 (CI's machine); the only
// downloads are npm registry packages (scripts/release-targets.mjs).
//
//   node scripts/package.mjs          → release/kubectl-meshfed-v<version>-<os>-<arch>.tar.gz, release/meshfed.yaml
//                                       (the krew manifest) and release/SHA256SUMS
//   node scripts/package.mjs --check  → the same, then krew's validate-krew-manifest on the manifest (CI)
//   node scripts/package.mjs --out DIR [--no-manifest] [--platform linux/amd64 …]  → in DIR (tests)
import { execFile, execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, copyFileSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { build as esbuild } from 'esbuild';
import { LAUNCH_SCRIPT, MAIN_SCRIPT, SEA_ASSETS, SEA_MAIN, buildPlugin, pkg, seaMainBuildOptions } from './esbuild-options.mjs';
import { adHocSign, removeSignature } from './macho-sign.mjs';
import { KREW_VERSION, TARGETS, archiveName, executableName, homepage, hostNode, krewTools, nodeBinary, releaseUrl, root, targetName } from './release-targets.mjs';

const argv = process.argv.slice(2);
const option = (name) => argv.flatMap((arg, i) => (arg === name ? [argv[i + 1]] : []));
const outDir = option('--out')[0] ?? join(root, 'release');
const check = argv.includes('--check');
const platforms = option('--platform');
const targets = platforms.length ? TARGETS.filter((t) => platforms.includes(`${t.os}/${t.arch}`)) : TARGETS;
if (targets.length !== (platforms.length || TARGETS.length)) {
  console.error(`--platform: one of ${TARGETS.map((t) => `${t.os}/${t.arch}`).join(', ')}`);
  process.exit(2);
}
const version = `v${pkg.version}`;
// The SEA blob's resource name and the fuse Node looks for (Node's documentation, "Single executable applications").
const SEA_FUSE = 'NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2';

const work = join(outDir, 'work');
rmSync(work, { recursive: true, force: true });
mkdirSync(work, { recursive: true });

// 1. The plugin as one script plus its SEA assets — the same build as dist/ (scripts/build.mjs), made here rather than
// copied so that a release never picks up a stale dist/ — and the SEA blob the pinned Node makes of them. The blob's
// main script is a small one (src/launch/sea-main.ts) that runs the plugin's script, an asset, with V8's code cache of
// it: per command, kept in the user's cache directory, and for start-up one made here, by a `--version` run of the
// pinned Node (as scripts/build.mjs makes dist/'s), with a fixed --random-seed so that it is the same at every build
// (V8 leaves the seed out of the flags a cache must match). Node accepts a cache only in the binary that made it, so
// only the linux/amd64 blob carries it; the other platforms' executables write their start-up cache in the user's
// cache directory at their first run.
await buildPlugin(work);
await esbuild(seaMainBuildOptions(join(work, SEA_MAIN), readFileSync(join(work, MAIN_SCRIPT))));
const node = hostNode();
/** Runs a build tool, showing its output only when it fails (postject's parser warns about every ELF note). */
function quiet(command, args) {
  const result = spawnSync(command, args, { cwd: work, encoding: 'utf8' });
  if (result.status !== 0) throw new Error(`${[command, ...args].join(' ')} failed:\n${result.stdout}${result.stderr}`);
}
// The cache depends on the script's file name (not only on its text): a fixed one, not the build directory's.
writeFileSync(join(work, 'startup-cache.cjs'), `const { besideScript, launch } = require('./${LAUNCH_SCRIPT}');
const script = require('node:path').join(__dirname, '${MAIN_SCRIPT}');
launch({ filename: '/${MAIN_SCRIPT}', source: require('node:fs').readFileSync(script, 'utf8'), require, dirname: '/', args: process.argv.slice(2), store: besideScript(script) });
`);
quiet(node, ['--random-seed=1', 'startup-cache.cjs', '--version']);
const STARTUP_CACHE = `${MAIN_SCRIPT}.cache`;
function seaBlob(name, native) {
  // Relative paths (run in \`work\`): the blob records the main script's path as given, and it must not depend on
  // where the build runs.
  const assets = Object.fromEntries([...Object.values(SEA_ASSETS), MAIN_SCRIPT, ...(native ? [STARTUP_CACHE] : [])].map((asset) => [asset, asset]));
  writeFileSync(join(work, `${name}.json`), JSON.stringify({ main: SEA_MAIN, output: `${name}.blob`, disableExperimentalSEAWarning: true, useCodeCache: native, assets }));
  quiet(node, ['--random-seed=1', '--experimental-sea-config', `${name}.json`]);
  return join(work, `${name}.blob`);
}
const blobs = { native: seaBlob('native', true), portable: seaBlob('portable', false) };

// 2. Per platform: Node's binary with the blob injected, then the archive; two platforms at a time (postject and
// gzip are single-threaded).
const postject = join(root, 'node_modules/postject/dist/cli.js');
const execAsync = promisify(execFile);
async function executable(target, stage) {
  const file = join(stage, executableName(target));
  if (target.os === 'darwin') writeFileSync(file, removeSignature(readFileSync(nodeBinary(target))));
  else copyFileSync(nodeBinary(target), file);
  chmodSync(file, 0o755);
  const blob = target === TARGETS[0] ? blobs.native : blobs.portable;
  const args = [postject, file, 'NODE_SEA_BLOB', blob, '--sentinel-fuse', SEA_FUSE, ...(target.os === 'darwin' ? ['--macho-segment-name', 'NODE_SEA'] : [])];
  await execAsync(process.execPath, args, { cwd: work, maxBuffer: 1 << 26 }).catch((error) => {
    throw new Error(`postject ${targetName(target)} failed:\n${error.stdout}${error.stderr}`);
  });
  // macOS on Apple silicon runs only signed code; an ad hoc signature (no identity) is what `codesign -s -` makes.
  if (target.os === 'darwin') writeFileSync(file, adHocSign(readFileSync(file), 'kubectl-meshfed'));
  return file;
}

async function archive(target) {
  const stage = join(work, targetName(target));
  mkdirSync(stage);
  await executable(target, stage);
  copyFileSync(join(root, 'bin/kubectl_complete-meshfed'), join(stage, 'kubectl_complete-meshfed'));
  chmodSync(join(stage, 'kubectl_complete-meshfed'), 0o755);
  copyFileSync(join(root, 'LICENSE'), join(stage, 'LICENSE'));
  const path = join(outDir, archiveName(target));
  const tar = ['tar', '--sort=name', '--mtime=@0', '--owner=0', '--group=0', '--numeric-owner', '--mode=u+rw,go+r,go-w', '-C', stage, '-cf', '-', '.'];
  await execAsync('bash', ['-o', 'pipefail', '-c', `${tar.map((a) => `'${a}'`).join(' ')} | gzip -n -6 > '${path}'`]);
  rmSync(stage, { recursive: true, force: true });
  const gz = readFileSync(path);
  return { target, path, sha256: createHash('sha256').update(gz).digest('hex'), bytes: gz.length };
}

mkdirSync(outDir, { recursive: true });
for (const target of targets) nodeBinary(target); // fetched one at a time
const archives = [];
const queue = [...targets];
await Promise.all([0, 1].map(async () => {
  for (let target = queue.shift(); target; target = queue.shift()) archives.push(await archive(target));
}));
archives.sort((a, b) => targets.indexOf(a.target) - targets.indexOf(b.target));
rmSync(work, { recursive: true, force: true });
for (const a of archives) console.log(`${a.path.replace(root, '')}  ${(a.bytes / 1e6).toFixed(1)} MB  sha256 ${a.sha256}`);

if (argv.includes('--no-manifest')) process.exit(0);
if (targets.length !== TARGETS.length) {
  console.error('the manifest names every platform: build them all (no --platform) or pass --no-manifest');
  process.exit(2);
}

// 3. The krew manifest (https://krew.sigs.k8s.io/docs/developer-guide/plugin-manifest/), written beside the
// archives at each build rather than committed: every sha256 depends on every byte of the bundle, so a committed one
// would be stale after the next change to the source. krew links only `bin`, so the caveats say how to put the
// completion helper beside it.
const store = '"${KREW_ROOT:-$HOME/.krew}';
const manifest = `apiVersion: krew.googlecontainertools.github.com/v1alpha2
kind: Plugin
metadata:
  name: meshfed
spec:
  version: ${version}
  homepage: ${homepage}
  shortDescription: Federate Istio meshes one service at a time
  description: |
    Exports a Service from one cluster's Istio mesh and imports it into another's under a local name, with
    mutual TLS between the meshes, only the named services exposed to only the named consumers, no automatic
    endpoint discovery, and no kubeconfig or API credentials copied between clusters. \`verify\` checks both sides
    and proves the path with a short-lived curl probe pod.
  caveats: |
    Shell completion of \`kubectl meshfed …\` (kubectl >= 1.26) needs the completion helper on your PATH too;
    krew links only the plugin. On Linux and macOS:
      ln -sf ${store}/store/meshfed/${version}/kubectl_complete-meshfed" ${store}/bin/"
    Start with: kubectl meshfed contexts --probe
  platforms:
${archives.map((a) => `  - selector:
      matchLabels:
        os: ${a.target.os}
        arch: ${a.target.arch}
    uri: ${releaseUrl(a.target)}
    sha256: ${a.sha256}
    bin: ${executableName(a.target)}
`).join('')}`;
// krew's index wants the manifest named after the plugin.
const manifestPath = join(outDir, 'meshfed.yaml');
writeFileSync(manifestPath, manifest);
writeFileSync(join(outDir, 'SHA256SUMS'), archives.map((a) => `${a.sha256}  ${archiveName(a.target)}\n`).join(''));
console.log(`${manifestPath.replace(root, '')}`);

// --check (CI): the manifest passes krew's own validation (its validate-krew-manifest program, which CI builds from
// krew's module), and each archive holds exactly the executable, LICENSE and the completion helper.
if (check) {
  const validator = krewTools()?.validate;
  if (!validator) {
    console.error(`--check needs Go, to build krew's validate-krew-manifest (sigs.k8s.io/krew ${KREW_VERSION})`);
    process.exit(1);
  }
  // Installing every platform would download the uris, which exist only once the release is published.
  const validation = spawnSync(validator, ['-manifest', manifestPath, '-skip-install'], { encoding: 'utf8' });
  if (validation.status !== 0) {
    console.error(`krew rejects ${manifestPath}:\n${validation.stdout}${validation.stderr}`);
    process.exit(1);
  }
  for (const a of archives) {
    const files = execFileSync('tar', ['tzf', a.path], { encoding: 'utf8', maxBuffer: 1 << 20 }).split('\n').filter((f) => f && f !== './').sort();
    const expected = ['./LICENSE', `./${executableName(a.target)}`, './kubectl_complete-meshfed'].sort();
    if (files.join() !== expected.join()) {
      console.error(`${archiveName(a.target)} holds ${files.join(', ')}, not ${expected.join(', ')}`);
      process.exit(1);
    }
  }
  console.log(`krew accepts the manifest of ${version}; every archive holds ${['executable', 'LICENSE', 'kubectl_complete-meshfed'].join(', ')}`);
}
