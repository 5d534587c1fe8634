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
//   node scripts/package.mjs            → release/kubectl-meshfed-v<version>-<os>-<arch>.tar.gz + krew-manifest.yaml
//   node scripts/package.mjs --check    → builds into release/, exit 1 if krew-manifest.yaml differs from the build's
//   node scripts/package.mjs --out DIR --no-manifest [--platform linux/amd64 …]  → only archives, in DIR (tests)
import { build } from 'esbuild';
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, copyFileSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { seaBuildOptions, pkg } from './esbuild-options.mjs';
import { adHocSign, removeSignature } from './macho-sign.mjs';
import { TARGETS, archiveName, executableName, homepage, hostNode, nodeBinary, releaseUrl, root, targetName } from './release-targets.mjs';

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

// 1. The plugin as one script, and the SEA blob the pinned Node makes of it. The linux/amd64 executable also carries
// V8's code cache for the script (made by the same Node binary, so it is valid there); the other platforms' blob has
// none, as a code cache is only accepted by the binary that made it.
await build(seaBuildOptions(join(work, 'main.cjs')));
const node = hostNode();
/** Runs a build tool, showing its output only when it fails (postject's parser warns about every ELF note). */
function quiet(command, args) {
  const result = spawnSync(command, args, { cwd: work, encoding: 'utf8' });
  if (result.status !== 0) throw new Error(`${[command, ...args].join(' ')} failed:\n${result.stdout}${result.stderr}`);
}
function seaBlob(name, useCodeCache) {
  const config = join(work, `${name}.json`);
  const blob = join(work, `${name}.blob`);
  writeFileSync(config, JSON.stringify({ main: join(work, 'main.cjs'), output: blob, disableExperimentalSEAWarning: true, useCodeCache }));
  quiet(node, ['--experimental-sea-config', config]);
  return blob;
}
const blobs = { portable: seaBlob('portable', false), native: seaBlob('native', true) };

// 2. Per platform: Node's binary with the blob injected, then the archive.
const postject = join(root, 'node_modules/postject/dist/cli.js');
function executable(target, stage) {
  const file = join(stage, executableName(target));
  if (target.os === 'darwin') writeFileSync(file, removeSignature(readFileSync(nodeBinary(target))));
  else copyFileSync(nodeBinary(target), file);
  chmodSync(file, 0o755);
  const blob = target === TARGETS[0] ? blobs.native : blobs.portable;
  quiet(process.execPath, [postject, file, 'NODE_SEA_BLOB', blob, '--sentinel-fuse', SEA_FUSE, ...(target.os === 'darwin' ? ['--macho-segment-name', 'NODE_SEA'] : [])]);
  // macOS on Apple silicon runs only signed code; an ad hoc signature (no identity) is what `codesign -s -` makes.
  if (target.os === 'darwin') writeFileSync(file, adHocSign(readFileSync(file), 'kubectl-meshfed'));
  return file;
}

function archive(target) {
  const stage = join(work, targetName(target));
  mkdirSync(stage);
  executable(target, stage);
  copyFileSync(join(root, 'bin/kubectl_complete-meshfed'), join(stage, 'kubectl_complete-meshfed'));
  chmodSync(join(stage, 'kubectl_complete-meshfed'), 0o755);
  copyFileSync(join(root, 'LICENSE'), join(stage, 'LICENSE'));
  const tar = execFileSync('tar', ['--sort=name', '--mtime=@0', '--owner=0', '--group=0', '--numeric-owner', '--mode=u+rw,go+r,go-w', '-C', stage, '-cf', '-', '.'], { maxBuffer: 1 << 30 });
  const gz = execFileSync('gzip', ['-n', '-6'], { input: tar, maxBuffer: 1 << 30 });
  const path = join(outDir, archiveName(target));
  writeFileSync(path, gz);
  rmSync(stage, { recursive: true, force: true });
  return { target, path, sha256: createHash('sha256').update(gz).digest('hex'), bytes: gz.length };
}

mkdirSync(outDir, { recursive: true });
const archives = targets.map(archive);
rmSync(work, { recursive: true, force: true });
for (const a of archives) console.log(`${a.path.replace(root, '')}  ${(a.bytes / 1e6).toFixed(1)} MB  sha256 ${a.sha256}`);

if (argv.includes('--no-manifest')) process.exit(0);
if (targets.length !== TARGETS.length) {
  console.error('the manifest names every platform: build them all (no --platform) or pass --no-manifest');
  process.exit(2);
}

// 3. The krew manifest (https://krew.sigs.k8s.io/docs/developer-guide/plugin-manifest/). krew links only `bin`, so the
// caveats say how to put the completion helper beside it.
const store = `"\${KREW_ROOT:-$HOME/.krew}`;
const manifest = `# krew plugin manifest for kubectl meshfed, written by \`npm run package\` from the archives it builds
# (reproducibly) for package.json's version; \`npm run package:check\` (CI) fails when it differs from a fresh build.
apiVersion: krew.googlecontainertools.github.com/v1alpha2
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
      ln -sf ${store}/store/meshfed/${version}/kubectl_complete-meshfed" ${store}/bin/kubectl_complete-meshfed"
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

const manifestPath = join(root, 'krew-manifest.yaml');
if (check) {
  if (readFileSync(manifestPath, 'utf8') !== manifest) {
    console.error(`krew-manifest.yaml is stale: it differs from the manifest of this build of ${version}; run npm run package and commit it`);
    process.exit(1);
  }
  console.log(`krew-manifest.yaml matches this build of ${version}`);
} else {
  writeFileSync(manifestPath, manifest);
  console.log('wrote krew-manifest.yaml');
}
