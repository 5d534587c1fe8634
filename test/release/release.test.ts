/**
 * The release as users get it (scripts/package.mjs): one executable per platform built on Node's official binaries,
 * the same bytes from the same commit, a krew manifest that krew's own validation accepts, and — on linux/amd64 —
 * installed by real krew into a temporary KREW_ROOT and run with no Node on PATH against the emulator: `--version`,
 * `contexts`, and an export and import. The other platforms' executables are checked as far as this machine can:
 * format and architecture, size, the embedded version, the macOS ad hoc signature, and linux/arm64 under qemu-user.
 *
 * Builds need the Node packages from the npm registry (cached under node_modules/.cache); the krew test needs Go
 * (krew is built from its Go module) and skips without it, except in CI, where it must run.
 */
import test, { type ExecutionContext } from 'ava';
import { execFile, execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, realpathSync, statSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { promisify } from 'node:util';
import YAML from 'yaml';
import { docsBase, pkg } from '../../scripts/esbuild-options.mjs';
import { readSignature } from '../../scripts/macho-sign.mjs';
import { NODE_VERSION, TARGETS, archiveName, executableName, homepage, krewTools, nodeBinary, releaseUrl, targetName } from '../../scripts/release-targets.mjs';
import { repoRoot } from '../support/cli.js';
import { startFederationWorld, type FederationWorld } from '../support/federation.js';

const run = promisify(execFile);
const version = pkg.version;
const BUILD_TIMEOUT = 20 * 60_000;

interface Manifest {
  apiVersion: string;
  kind: string;
  metadata: { name: string };
  spec: { version: string; homepage: string; shortDescription: string; description: string; caveats: string; platforms: Array<{ selector: { matchLabels: Record<string, string> }; uri: string; sha256: string; bin: string }> };
}

async function packageRelease(out: string, args: string[]): Promise<void> {
  await run('node', [join(repoRoot, 'scripts/package.mjs'), '--out', out, ...args], { maxBuffer: 1 << 24 });
}

/** A home of its own for each run of an executable, which keeps its code caches there. */
const emptyHome = () => mkdtempSync(join(tmpdir(), 'meshfed-release-home-'));

const sha256 = (file: string) => createHash('sha256').update(readFileSync(file)).digest('hex');

/** One build of every platform (the first test makes it), unpacked per platform. */
let release: { dir: string; manifestPath: string; manifest: Manifest; unpacked: Map<string, string> } | undefined;

function built(t: ExecutionContext): NonNullable<typeof release> {
  if (!release) t.fail('the release build (first test) failed');
  return release!;
}

test.serial('every platform builds, and the same commit gives the same bytes', async (t) => {
  t.timeout(BUILD_TIMEOUT);
  // CI has just built the release of this checkout (npm run package:check, .ci/run) and names it here.
  const prebuilt = process.env.MESHFED_RELEASE_DIR;
  const dir = prebuilt ?? mkdtempSync(join(tmpdir(), 'meshfed-release-'));
  if (!prebuilt) await packageRelease(dir, []);
  // Again, in another directory, for the two platforms whose build does the most (code cache; Mach-O signing).
  const again = mkdtempSync(join(tmpdir(), 'meshfed-release-again-'));
  await packageRelease(again, ['--no-manifest', '--platform', 'linux/amd64', '--platform', 'darwin/arm64']);
  for (const target of TARGETS.filter((x) => ['linux-amd64', 'darwin-arm64'].includes(targetName(x)))) {
    t.is(sha256(join(again, archiveName(target))), sha256(join(dir, archiveName(target))), `${targetName(target)}: same bytes`);
  }
  const unpacked = new Map<string, string>();
  for (const target of TARGETS) {
    const into = join(mkdtempSync(join(tmpdir(), 'meshfed-unpacked-')), targetName(target));
    mkdirSync(into);
    execFileSync('tar', ['xzf', join(dir, archiveName(target)), '-C', into]);
    t.deepEqual(readdirSync(into).sort(), ['LICENSE', executableName(target), 'kubectl_complete-meshfed'].sort(), `${targetName(target)} archive`);
    unpacked.set(targetName(target), into);
  }
  const manifestPath = join(dir, 'meshfed.yaml');
  release = { dir, manifestPath, manifest: YAML.parse(readFileSync(manifestPath, 'utf8')) as Manifest, unpacked };
});

test.serial('the krew manifest names every archive by address and sha256, and krew\'s own validation accepts it', (t) => {
  const { dir, manifest, manifestPath } = built(t);
  t.is(manifest.metadata.name, 'meshfed');
  t.is(manifest.spec.version, `v${version}`);
  t.is(manifest.spec.homepage, pkg.homepage);
  t.is(homepage, pkg.homepage);
  t.regex(manifest.spec.caveats, /kubectl_complete-meshfed/, 'the caveats say how to enable completion');
  t.deepEqual(manifest.spec.platforms.map((p) => `${p.selector.matchLabels.os}/${p.selector.matchLabels.arch}`), TARGETS.map((x) => `${x.os}/${x.arch}`));
  for (const [i, platform] of manifest.spec.platforms.entries()) {
    const target = TARGETS[i]!;
    t.is(platform.uri, releaseUrl(target));
    t.true(platform.uri.startsWith(`${pkg.homepage}/releases/download/v${version}/`));
    t.is(platform.sha256, sha256(join(dir, archiveName(target))), `${targetName(target)} sha256`);
    t.is(platform.bin, target.os === 'windows' ? 'kubectl-meshfed.exe' : 'kubectl-meshfed');
  }
  const tools = krewTools();
  if (!tools) {
    if (process.env.CI) t.fail('Go is needed to build krew\'s validate-krew-manifest; CI must have it');
    t.log('SKIPPED krew validation: Go is not installed (krew\'s validate-krew-manifest is built from its Go module)');
    return;
  }
  const result = spawnSync(tools.validate, ['-manifest', manifestPath, '-skip-install'], { encoding: 'utf8' });
  t.is(result.status, 0, result.stderr);
  // The same validation refuses a broken manifest (so the pass above means something).
  const broken = join(mkdtempSync(join(tmpdir(), 'meshfed-broken-')), 'meshfed.yaml');
  execFileSync('sh', ['-c', `sed 's/^  version: v.*/  version: 0.1/' "${manifestPath}" > "${broken}"`]);
  const refused = spawnSync(tools.validate, ['-manifest', broken, '-skip-install'], { encoding: 'utf8' });
  t.not(refused.status, 0);
  t.regex(refused.stderr, /version/i);
});

const ELF_MACHINE: Record<string, number> = { amd64: 0x3e, arm64: 0xb7 };
const MACHO_CPU: Record<string, number> = { amd64: 0x01000007, arm64: 0x0100000c };

test.serial('each platform\'s executable has its format, architecture, the injected plugin and the version', (t) => {
  const { unpacked } = built(t);
  for (const target of TARGETS) {
    const name = targetName(target);
    const file = join(unpacked.get(name)!, executableName(target));
    const exe = readFileSync(file);
    if (target.os === 'linux') {
      t.is(exe.readUInt32BE(0), 0x7f454c46, `${name}: ELF`);
      t.is(exe.readUInt16LE(0x12), ELF_MACHINE[target.arch], `${name}: e_machine`);
    } else if (target.os === 'darwin') {
      t.is(exe.readUInt32LE(0), 0xfeedfacf, `${name}: Mach-O 64`);
      t.is(exe.readUInt32LE(4), MACHO_CPU[target.arch], `${name}: cputype`);
      const signature = readSignature(exe);
      t.like(signature, { magic: 0xfade0cc0, identifier: 'kubectl-meshfed', adhoc: true, hashType: 2, pagesMatch: true }, `${name}: ad hoc signature over every page`);
    } else {
      t.is(exe.toString('latin1', 0, 2), 'MZ', `${name}: PE`);
      const pe = exe.readUInt32LE(0x3c);
      t.is(exe.toString('latin1', pe, pe + 4), 'PE\0\0');
      t.is(exe.readUInt16LE(pe + 4), 0x8664, `${name}: AMD64`);
      t.is(exe.readUInt16LE(pe + 24 + 68), 3, `${name}: console subsystem`);
    }
    // Node's binary plus the plugin: bigger than Node by at least the main script, and the SEA fuse is set.
    const nodeSize = statSync(nodeBinary(target)).size;
    t.true(exe.length > nodeSize + 2e6 && exe.length < nodeSize + 40e6, `${name}: ${exe.length} bytes vs Node's ${nodeSize}`);
    t.true(exe.includes('NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2:1'), `${name}: the SEA blob is injected`);
    t.true(exe.includes(Buffer.from(docsBase)), `${name}: the version (${docsBase}) is embedded`);
    t.true(exe.includes(Buffer.from(`v${NODE_VERSION}`)), `${name}: Node ${NODE_VERSION}`);
  }
  const host = join(unpacked.get('linux-amd64')!, 'kubectl-meshfed');
  const hostRun = spawnSync(host, ['--version'], { encoding: 'utf8', env: { PATH: process.env.PATH, HOME: emptyHome() } });
  t.is(hostRun.stdout.trim(), version);
  t.is(hostRun.stderr, '');
  // The start-up code cache made at the build is the one this binary takes (test/release/code-cache.test.ts: the rest).
  const debugRun = spawnSync(host, ['--version'], { encoding: 'utf8', env: { PATH: process.env.PATH, HOME: emptyHome(), MESHFED_CODE_CACHE_DEBUG: '1' } });
  t.regex(debugRun.stderr, /^code cache: built-in: accepted$/m);
});

test.serial('the linux/arm64 executable prints its version under qemu-user', (t) => {
  t.timeout(5 * 60_000);
  const { unpacked } = built(t);
  const qemu = spawnSync('qemu-aarch64', ['--version']);
  const libs = '/usr/aarch64-linux-gnu';
  if (qemu.status !== 0 || !existsSync(join(libs, 'lib', 'libstdc++.so.6'))) {
    if (process.env.CI) t.fail('CI installs qemu-user, libc6-arm64-cross and libstdc++6-arm64-cross (.ci/run)');
    t.log('SKIPPED: qemu-aarch64 or the arm64 C++ runtime (Debian: qemu-user libc6-arm64-cross libstdc++6-arm64-cross) is missing');
    t.pass();
    return;
  }
  // Its blob carries no start-up code cache (Node takes one only in the binary that made it): the first run writes
  // one in the user's cache directory, and the next one reads it.
  const home = emptyHome();
  const arm64 = () => spawnSync('qemu-aarch64', ['-L', libs, join(unpacked.get('linux-arm64')!, 'kubectl-meshfed'), '--version'], { encoding: 'utf8', timeout: 4 * 60_000, env: { PATH: process.env.PATH, HOME: home, MESHFED_CODE_CACHE_DEBUG: '1' } });
  const result = arm64();
  t.is(result.status, 0, result.stderr);
  t.is(result.stdout.trim(), version);
  t.regex(result.stderr, /^code cache: \S+-linux-arm64\/start\.cache: missing$/m);
  t.regex(result.stderr, /^code cache: wrote \S+-linux-arm64\/start\.cache$/m);
  const again = arm64();
  t.is(again.stdout.trim(), version);
  t.regex(again.stderr, /^code cache: \S+-linux-arm64\/start\.cache: accepted$/m);
});

test.serial('krew installs the linux/amd64 release, and the plugin runs with no Node on PATH', async (t) => {
  t.timeout(BUILD_TIMEOUT);
  const { dir, manifestPath } = built(t);
  const tools = krewTools();
  if (!tools) {
    if (process.env.CI) t.fail('Go is needed to build krew (sigs.k8s.io/krew); CI must have it');
    t.log('SKIPPED: Go is not installed, so krew cannot be built from its module (go install sigs.k8s.io/krew/cmd/krew@v0.4.3)');
    t.pass();
    return;
  }
  // A PATH with only kubectl and krew's own bin: no node (on this machine node sits beside kubectl in /usr/bin).
  const home = mkdtempSync(join(tmpdir(), 'meshfed-krew-home-'));
  const krewRoot = join(home, 'krew-root');
  const toolBin = join(home, 'tools');
  mkdirSync(toolBin);
  const kubectl = realpathSync(execFileSync('sh', ['-c', 'command -v kubectl'], { encoding: 'utf8' }).trim());
  symlinkSync(kubectl, join(toolBin, 'kubectl'));
  symlinkSync(tools.krew, join(toolBin, 'kubectl-krew'));
  const path = [join(krewRoot, 'bin'), toolBin].join(delimiter);
  const env = { PATH: path, HOME: home, KREW_ROOT: krewRoot, KREW_NO_UPGRADE_CHECK: '1', NO_COLOR: '1' };
  t.false(spawnSync('sh', ['-c', 'command -v node'], { env: { PATH: path } }).status === 0, 'no node on the PATH the plugin gets');
  const kubectlIn = (args: string[], extra: Record<string, string> = {}) => run(join(toolBin, 'kubectl'), args, { env: { ...env, ...extra }, maxBuffer: 1 << 24 }).then(
    (r) => ({ code: 0, stdout: r.stdout, stderr: r.stderr }),
    (e: { code?: number; stdout?: string; stderr?: string }) => ({ code: e.code ?? -1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' }),
  );

  const linux = TARGETS[0]!;
  const installed = await kubectlIn(['krew', 'install', `--manifest=${manifestPath}`, `--archive=${join(dir, archiveName(linux))}`]);
  t.is(installed.code, 0, installed.stderr);
  t.regex(installed.stderr + installed.stdout, /Installed plugin: meshfed/);
  t.regex(installed.stderr + installed.stdout, /kubectl_complete-meshfed/, 'krew shows the caveats');
  t.true(existsSync(join(krewRoot, 'bin', 'kubectl-meshfed')));

  const versionRun = await kubectlIn(['meshfed', '--version']);
  t.is(versionRun.code, 0, versionRun.stderr);
  t.is(versionRun.stdout.trim(), version);

  // The caveats' completion step, as printed (the helper is a shell script: sh joins the PATH, still no node).
  symlinkSync(realpathSync('/bin/sh'), join(toolBin, 'sh'));
  const caveat = /^[\s|]*(ln -sf .*kubectl_complete-meshfed.*)$/m.exec(installed.stderr + installed.stdout)?.[1]?.replace(/^[\s|]+/, '');
  t.truthy(caveat);
  // The user's shell runs it (ln is not on the plugin's PATH here).
  const linked = spawnSync('/bin/sh', ['-c', caveat!], { env: { ...env, PATH: '/usr/bin:/bin' }, encoding: 'utf8' });
  t.is(linked.status, 0, linked.stderr);
  const completion = await kubectlIn(['__complete', 'meshfed', '']);
  t.is(completion.code, 0, completion.stderr);
  t.regex(completion.stdout, /^contexts$/m);
  t.regex(completion.stdout, /^export$/m);

  let fed: FederationWorld | undefined;
  try {
    fed = await startFederationWorld({ seed: 'bookinfo', clusters: [{ name: 'cluster1' }, { name: 'cluster2' }] });
    const withKubeconfig = { KUBECONFIG: fed.kubeconfig };
    const contexts = await kubectlIn(['meshfed', 'contexts'], withKubeconfig);
    t.is(contexts.code, 0, contexts.stderr);
    t.regex(contexts.stdout, /cluster1/);
    t.regex(contexts.stdout, /cluster2/);
    const exported = await kubectlIn(['meshfed', 'export', '--context', 'cluster2', '-n', 'bookinfo', '--service', 'myreviews', '--port', 'http', '--subset', 'version=v2', '--name', 'reviews'], withKubeconfig);
    t.is(exported.code, 0, exported.stderr);
    const imported = await kubectlIn(['meshfed', 'import', '--context', 'cluster1', '-n', 'default', '--from', 'cluster2', '--export', 'bookinfo/reviews', '--name', 'myreviews'], withKubeconfig);
    t.is(imported.code, 0, imported.stderr);
    t.truthy(fed.world.cluster('cluster1').get('v1', 'Service', 'default', 'myreviews'), 'the import created the local Service');
    t.true(fed.managedObjects('cluster2').some((o) => o.startsWith('Gateway ')), 'the export created its gateway configuration');
    const reached = await fed.curl('cluster1', 'default', 'sleep', ['curl', '-sS', 'http://myreviews.default:9080/reviews/0']);
    t.is(reached.code, 0, reached.stderr);
    t.regex(reached.stdout, /reviews-v2/, 'a pod of cluster1 reaches reviews v2 in cluster2 through the import');
  } finally {
    await fed?.stop();
  }

  // krew's other commands want a local copy of the plugin index (`kubectl krew update` clones it from GitHub); an
  // empty git repository in its place is enough for uninstall, which reads only the install receipt.
  execFileSync('git', ['init', '-q', join(krewRoot, 'index', 'default')]);
  const removed = await kubectlIn(['krew', 'uninstall', 'meshfed']);
  t.is(removed.code, 0, removed.stderr);
  t.false(existsSync(join(krewRoot, 'bin', 'kubectl-meshfed')));
  t.false(existsSync(join(krewRoot, 'store', 'meshfed')));
});
