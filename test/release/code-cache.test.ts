/**
 * The release executable's code cache per command (src/launch/sea-main.ts, src/launch/code-cache.ts), run as a user
 * runs it: the first successful run of a command writes `<user cache dir>/kubectl-meshfed/<build>/<command>.cache`
 * (0700 directories, a 0600 file), and the next run reads it and V8 accepts it — told by the executable itself when
 * MESHFED_CODE_CACHE_DEBUG=1, so nothing here depends on timing. A corrupt or rejected cache is rewritten, a
 * directory someone else could have planted or written is neither read nor written, concurrent first runs leave one
 * sound cache, and a read-only home is harmless: every run prints the same and exits 0.
 *
 * Builds the linux/amd64 executable (or takes it from MESHFED_RELEASE_DIR, as CI builds it before the tests).
 */
import test from 'ava';
import { execFile, execFileSync, spawnSync, type SpawnSyncOptions } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { crc32 } from 'node:zlib';
import { pkg } from '../../scripts/esbuild-options.mjs';
import { TARGETS, archiveName } from '../../scripts/release-targets.mjs';
import { repoRoot } from '../support/cli.js';

const exec = promisify(execFile);
const work = mkdtempSync(join(tmpdir(), 'meshfed-sea-cache-'));
// Readable by every user: one test runs the executable as another user.
chmodSync(work, 0o755);
test.after.always(() => rmSync(work, { recursive: true, force: true }));

let exe: string | undefined;
test.before(async () => {
  let dir = process.env.MESHFED_RELEASE_DIR;
  if (!dir) {
    dir = join(work, 'release');
    await exec(process.execPath, [join(repoRoot, 'scripts/package.mjs'), '--out', dir, '--no-manifest', '--platform', 'linux/amd64'], { maxBuffer: 1 << 24 });
  }
  const into = join(work, 'bin');
  mkdirSync(into);
  execFileSync('tar', ['xzf', join(dir, archiveName(TARGETS[0]!)), '-C', into]);
  chmodSync(into, 0o755);
  exe = join(into, 'kubectl-meshfed');
});

interface Run { status: number | null; stdout: string; stderr: string }

/** The executable with only this environment (and PATH), as a user with `home` runs it; debug lines on stderr. */
function run(args: string[], env: Record<string, string>, options: SpawnSyncOptions = {}): Run {
  const result = spawnSync(exe!, args, { env: { PATH: process.env.PATH!, NO_COLOR: '1', MESHFED_CODE_CACHE_DEBUG: '1', ...env }, encoding: 'utf8', ...options });
  return { status: result.status, stdout: result.stdout as string, stderr: result.stderr as string };
}

/** What a run said about the cache it read: `accepted`, `rejected`, `missing`, `invalid`. */
const verdict = (r: Run, name: string) => new RegExp(`^code cache: \\S*/${name}\\.cache: (\\w+)$`, 'm').exec(r.stderr)?.[1];
const wrote = (r: Run, name: string) => new RegExp(`^code cache: wrote \\S*/${name}\\.cache$`, 'm').test(r.stderr);

function home(): { home: string; app: string; build: () => string } {
  const dir = mkdtempSync(join(work, 'home-'));
  const app = join(dir, '.cache', 'kubectl-meshfed');
  const build = () => {
    const builds = readdirSync(app);
    if (builds.length !== 1) throw new Error(`one build directory expected in ${app}: ${builds.join(', ')}`);
    return join(app, builds[0]!);
  };
  return { home: dir, app, build };
}

test.serial('the first successful run of a command writes its cache under ~/.cache, private; the next run reads it and V8 accepts it', (t) => {
  const { home: dir, app, build } = home();
  // Another build's cache, as an older version leaves it: removed when this build makes its own directory.
  mkdirSync(join(app, '0.0.1-000000000000-node22.0.0-linux-x64'), { recursive: true, mode: 0o700 });
  writeFileSync(join(app, '0.0.1-000000000000-node22.0.0-linux-x64', 'completion.cache'), 'old');

  const version = run(['--version'], { HOME: dir });
  t.is(version.status, 0);
  t.is(version.stdout.trim(), pkg.version);
  t.is(verdict(version, 'start'), 'missing');
  t.regex(version.stderr, /^code cache: built-in: accepted$/m, 'the start-up cache made at the build serves --version');
  t.false(wrote(version, 'start'));

  const failed = run(['completion', 'fish'], { HOME: dir });
  t.not(failed.status, 0);
  t.false(wrote(failed, 'completion'), 'a failed run writes no cache');

  const first = run(['completion', 'bash'], { HOME: dir });
  t.is(first.status, 0);
  t.true(wrote(first, 'completion'));
  const dirName = build();
  t.regex(dirName, new RegExp(`/${pkg.version.replace(/\./g, '\\.')}-[0-9a-f]{12}-node22\\.\\d+\\.\\d+-linux-x64$`), 'keyed by version, build, Node, platform');
  t.deepEqual(readdirSync(dirName), ['completion.cache']);
  for (const path of [app, dirName]) t.is(statSync(path).mode & 0o777, 0o700, path);
  t.is(statSync(join(dirName, 'completion.cache')).mode & 0o777, 0o600);

  const second = run(['completion', 'bash'], { HOME: dir });
  t.is(second.status, 0);
  t.is(second.stdout, first.stdout);
  t.is(verdict(second, 'completion'), 'accepted');
  t.false(wrote(second, 'completion'));

  // Without the debug variable nothing is said about it.
  const quiet = spawnSync(exe!, ['completion', 'bash'], { env: { PATH: process.env.PATH!, HOME: dir }, encoding: 'utf8' });
  t.is(quiet.stderr, '');
  t.is(quiet.stdout, first.stdout);
});

test.serial('a corrupt cache is not run and a rejected one is not kept: both are written again; the command prints the same', (t) => {
  const { home: dir, build } = home();
  const first = run(['completion', 'zsh'], { HOME: dir });
  t.is(first.status, 0);
  const file = join(build(), 'completion.cache');
  const sound = readFileSync(file);

  // One flipped byte in V8's data (which V8 would run or crash on: it checks no checksum).
  const corrupt = Buffer.from(sound);
  corrupt[corrupt.length >> 1] ^= 0xff;
  writeFileSync(file, corrupt);
  const afterCorrupt = run(['completion', 'zsh'], { HOME: dir });
  t.is(afterCorrupt.status, 0);
  t.is(afterCorrupt.stdout, first.stdout);
  t.is(verdict(afterCorrupt, 'completion'), 'invalid');
  t.true(wrote(afterCorrupt, 'completion'));
  t.is(verdict(run(['completion', 'zsh'], { HOME: dir }), 'completion'), 'accepted');

  // A well-formed file whose data V8 does not take (as from another V8): rejected, then written again.
  const foreign = Buffer.alloc(4096, 7);
  const header = Buffer.alloc(8);
  header.write('MFCC');
  header.writeUInt32LE(crc32(foreign), 4);
  writeFileSync(file, Buffer.concat([header, foreign]));
  const afterForeign = run(['completion', 'zsh'], { HOME: dir });
  t.is(afterForeign.status, 0);
  t.is(afterForeign.stdout, first.stdout);
  t.is(verdict(afterForeign, 'completion'), 'rejected');
  t.true(wrote(afterForeign, 'completion'));
  t.is(verdict(run(['completion', 'zsh'], { HOME: dir }), 'completion'), 'accepted');

  // Truncated to nothing, and garbage.
  for (const bytes of [Buffer.alloc(0), Buffer.from('not a cache at all')]) {
    writeFileSync(file, bytes);
    const r = run(['completion', 'zsh'], { HOME: dir });
    t.is(r.status, 0);
    t.is(r.stdout, first.stdout);
    t.is(verdict(r, 'completion'), 'invalid');
  }
});

test.serial('a cache directory that is a link, or that others may write, is neither read nor written', (t) => {
  const { home: dir, app } = home();
  const elsewhere = mkdtempSync(join(work, 'planted-'));
  mkdirSync(join(dir, '.cache'), { mode: 0o700 });
  symlinkSync(elsewhere, app);
  const linked = run(['completion', 'bash'], { HOME: dir });
  t.is(linked.status, 0);
  t.is(linked.stderr.split('\n').filter((line) => line.startsWith('code cache: wrote')).length, 0);
  t.deepEqual(readdirSync(elsewhere), [], 'nothing written through the link');

  rmSync(app);
  mkdirSync(app, { mode: 0o700 });
  chmodSync(app, 0o777);
  const open = run(['completion', 'bash'], { HOME: dir });
  t.is(open.status, 0);
  t.is(open.stdout, linked.stdout);
  t.deepEqual(readdirSync(app), [], 'nothing written in a directory others may write');
});

test.serial('concurrent first runs of a command leave one sound cache and no partial file', async (t) => {
  const { home: dir, build } = home();
  const runs = await Promise.all([0, 1, 2, 3].map(() => exec(exe!, ['completion', 'bash'], { env: { PATH: process.env.PATH!, HOME: dir, MESHFED_CODE_CACHE_DEBUG: '1' } })));
  t.is(new Set(runs.map((r) => r.stdout)).size, 1);
  t.deepEqual(readdirSync(build()), ['completion.cache']);
  t.is(verdict(run(['completion', 'bash'], { HOME: dir }), 'completion'), 'accepted');
});

test.serial('a read-only or missing home runs without a cache, with the same output and exit code', (t) => {
  const reference = run(['completion', 'bash'], { HOME: home().home });
  const missing = run(['completion', 'bash'], { HOME: join(work, 'no-such-home') });
  t.is(missing.status, 0);
  t.is(missing.stdout, reference.stdout);
  t.false(existsSync(join(work, 'no-such-home')), 'a missing home is not made');
  const none = run(['completion', 'bash'], {});
  t.is(none.status, 0, 'no HOME at all');
  t.is(none.stdout, reference.stdout);

  // Read-only: a home the running user may not write. Root writes anywhere, so as root the executable runs as nobody.
  const { home: dir } = home();
  const asRoot = process.getuid?.() === 0;
  chmodSync(dir, 0o555);
  const options: SpawnSyncOptions = asRoot ? { uid: 65534, gid: 65534 } : {};
  if (asRoot) chownSync(dir, 0, 0);
  const readOnly = run(['completion', 'bash'], { HOME: dir }, options);
  t.is(readOnly.status, 0, readOnly.stderr);
  t.is(readOnly.stdout, reference.stdout);
  t.is(verdict(readOnly, 'start'), 'missing');
  t.false(wrote(readOnly, 'completion'));
  t.deepEqual(readdirSync(dir), []);
  // And a cache directory made read-only after it was made: the cache is read, none is written.
  chmodSync(dir, 0o755);
  if (asRoot) chownSync(dir, 65534, 65534);
  t.is(run(['completion', 'bash'], { HOME: dir }, options).status, 0);
  const build = join(dir, '.cache', 'kubectl-meshfed', readdirSync(join(dir, '.cache', 'kubectl-meshfed'))[0]!);
  chmodSync(build, 0o500);
  const rbac = ['rbac', '--role', 'viewer', '--user', 'someone'];
  const rbacReference = run(rbac, { HOME: home().home });
  const rbacRun = run(rbac, { HOME: dir }, options);
  t.is(rbacRun.status, 0, rbacRun.stderr);
  t.is(rbacRun.stdout, rbacReference.stdout);
  t.regex(rbacRun.stderr, /^code cache: cannot write \S+\/rbac\.cache$/m);
  t.deepEqual(readdirSync(build), ['completion.cache']);
  t.is(verdict(run(['completion', 'bash'], { HOME: dir }, options), 'completion'), 'accepted');
});
