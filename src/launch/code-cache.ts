/**
 * Runs the plugin's script (kubectl-meshfed.cjs) with V8's code cache of it: the one piece shared by the two ways the
 * plugin starts, the launcher from source (bin/kubectl-meshfed, caches beside the script in dist/) and the release
 * executable (src/launch/sea-main.ts, caches in the user's cache directory).
 *
 * V8 caches the functions compiled by the time the cache is made, and a command compiles most of its code lazily, as
 * it runs: a cache made by `--version` leaves an export's reads and planning to be compiled at every run (about 0.1 s
 * of a 0.3 s re-run). So each command that has run to success once keeps a cache of its own, written as that first run
 * exits; the script names the command it ran (the global {@link COMMAND_KEY}, set by src/cli.ts `run`), so only real
 * commands get one. A run picks the cache of the first word of its command line that has one, else the start-up
 * cache. A cache that is missing, corrupt or rejected by this Node (another version, other V8 flags) is written as the
 * run exits, atomically (another run may be reading it). Nothing here prints (but for {@link DEBUG_ENV}) or changes
 * an exit code: a cache that cannot be read or written is a run without one.
 */
import { accessSync, closeSync, constants, existsSync, fstatSync, lstatSync, mkdirSync, openSync, readSync, readdirSync, renameSync, rmSync, writeSync, type Stats } from 'node:fs';
import { dirname, join } from 'node:path';
import { Script } from 'node:vm';
import { crc32 } from 'node:zlib';

/** The global through which the script names the command that ran (src/cli.ts `run`). */
export const COMMAND_KEY = Symbol.for('kubectl-meshfed.command');

/** Set to 1, each run says on stderr which cache it read, whether V8 accepted it, and what it wrote. */
export const DEBUG_ENV = 'MESHFED_CODE_CACHE_DEBUG';

/** The start-up cache's name in a {@link CacheStore}: no command has this name. */
export const START = '';

const COMMAND = /^[a-z][a-z-]*$/;

/**
 * V8 does not check a cache's payload against its checksum (only debug builds do: flag `verify_snapshot_checksum`),
 * and a payload with a flipped byte crashes the process or runs other code. So each file starts with this magic and
 * the payload's CRC-32, checked before V8 sees it (0.6 ms for 3 MB).
 */
const MAGIC = Buffer.from('MFCC');
const HEADER = MAGIC.length + 4;
/** A cache is a few MB; anything far bigger is not one of ours. */
const MAX_BYTES = 64 << 20;

/** Where a launcher keeps its caches. */
export interface CacheStore {
  /** The file of cache `name` (a command, or {@link START}). */
  file(name: string): string;
  /** Whether the store's directory may be read. */
  readable(): boolean;
  /** Whether cache `name` has a file (sound or not). */
  exists(name: string): boolean;
  /**
   * Makes the directory if need be; false when it cannot be made, is not safe to use, or is read-only (checked before
   * the cache is made: that takes tens of milliseconds).
   */
  writable(): boolean;
  /** The permission bits of a file it writes. */
  fileMode: number;
}

/** What {@link launch} runs. */
export interface LaunchOptions {
  /** The script's file name, as its stack traces and `__filename` show it. */
  filename: string;
  /** The script (a CommonJS module body). */
  source: string;
  /** The `require` the script gets. */
  require: NodeJS.Require;
  /** The `__dirname` the script gets. */
  dirname: string;
  /** The command line's words after the program (process.argv.slice(2)). */
  args: string[];
  /** Where the caches are read and written; undefined runs without one (no home directory). */
  store: CacheStore | undefined;
  /**
   * A start-up cache that came with the script (the executable's, made at the build; the bytes of a cache file), used
   * when the store has none.
   */
  builtIn?: Buffer | undefined;
}

const isWindows = process.platform === 'win32';

/**
 * Whether a file or directory may be trusted with code: not a symbolic link (lstat), of this user or root, and
 * writable by no one else. (Windows has no uid; a user's profile directory is private there.)
 */
function trusted(stats: Stats, kind: 'file' | 'dir'): boolean {
  if (kind === 'file' ? !stats.isFile() : !stats.isDirectory()) return false;
  if (isWindows) return true;
  return (stats.uid === process.getuid!() || stats.uid === 0) && (stats.mode & 0o022) === 0;
}

/** The V8 data of a cache file's bytes, if they are sound. */
export function payloadOf(data: Buffer): Buffer | undefined {
  const payload = data.subarray(HEADER);
  return data.length > HEADER && data.subarray(0, MAGIC.length).equals(MAGIC) && data.readUInt32LE(MAGIC.length) === crc32(payload) ? payload : undefined;
}

/** A cache's V8 data; `missing` when there is no file, `invalid` when there is one but it is not a sound cache. */
function readCache(file: string): Buffer | 'missing' | 'invalid' {
  let fd: number;
  try {
    fd = openSync(file, constants.O_RDONLY | (constants.O_NOFOLLOW ?? 0));
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'ENOENT' ? 'missing' : 'invalid';
  }
  try {
    const stats = fstatSync(fd);
    if (!trusted(stats, 'file') || stats.size <= HEADER || stats.size > MAX_BYTES) return 'invalid';
    const data = Buffer.allocUnsafe(stats.size);
    let read = 0;
    while (read < data.length) {
      const n = readSync(fd, data, read, data.length - read, read);
      if (n === 0) return 'invalid';
      read += n;
    }
    return payloadOf(data) ?? 'invalid';
  } catch {
    return 'invalid';
  } finally {
    closeSync(fd);
  }
}

/** Writes a cache atomically: a file of this process's own, renamed over the cache (rename never follows a link). */
function writeCache(file: string, payload: Buffer, mode: number): boolean {
  const partial = `${file}.${process.pid}`;
  try {
    const header = Buffer.alloc(HEADER);
    MAGIC.copy(header);
    header.writeUInt32LE(crc32(payload), MAGIC.length);
    const fd = openSync(partial, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | (constants.O_NOFOLLOW ?? 0), mode);
    try {
      for (const part of [header, payload]) {
        for (let written = 0; written < part.length;) written += writeSync(fd, part, written);
      }
    } finally {
      closeSync(fd);
    }
    renameSync(partial, file);
    return true;
  } catch {
    rmSync(partial, { force: true });
    return false;
  }
}

/** Runs `options.source` as a CommonJS module with the code cache that fits its command line (see the module's top). */
export function launch(options: LaunchOptions): void {
  const { store } = options;
  const debug = process.env[DEBUG_ENV] === '1' ? (line: string) => process.stderr.write(`code cache: ${line}\n`) : undefined;
  const readable = store?.readable() ?? false;
  const read = (name: string) => (readable ? readCache(store!.file(name)) : 'missing');
  let command: string | undefined;
  let chosen: Buffer | 'missing' | 'invalid' = 'missing';
  for (const word of options.args) {
    if (!COMMAND.test(word)) continue;
    chosen = read(word);
    if (chosen !== 'missing') {
      command = word;
      break;
    }
  }
  if (command === undefined) chosen = read(START);
  let cachedData = typeof chosen === 'string' ? undefined : chosen;
  const carried = cachedData === undefined && options.builtIn ? payloadOf(options.builtIn) : undefined;
  const builtIn = carried !== undefined;
  if (builtIn) cachedData = carried;
  // Node's own CommonJS wrapper, on the script's first line so that line numbers stay the script's.
  const script = new Script(`(function (exports, require, module, __filename, __dirname) {${options.source}\n})`, { filename: options.filename, cachedData });
  if (debug) {
    const file = store?.file(command ?? START) ?? 'no cache directory';
    debug(`${file}: ${typeof chosen === 'string' ? chosen : script.cachedDataRejected ? 'rejected' : 'accepted'}`);
    if (builtIn) debug(`built-in: ${script.cachedDataRejected ? 'rejected' : 'accepted'}`);
  }
  if (store) {
    process.once('exit', (code) => {
      const ran = (globalThis as Record<symbol, unknown>)[COMMAND_KEY];
      // The first successful run of a command writes its cache; else a cache this run could not use is written again
      // (the built-in one only if V8 rejects it).
      const own = code === 0 && typeof ran === 'string' && COMMAND.test(ran) && ran !== command ? ran : undefined;
      let target: string | undefined;
      if (own !== undefined) target = store.exists(own) ? undefined : own;
      else if (typeof chosen !== 'string') target = script.cachedDataRejected ? command ?? START : undefined;
      else if (builtIn && command === undefined) target = script.cachedDataRejected ? START : undefined;
      else target = command ?? START;
      if (target === undefined) return;
      try {
        const written = store.writable() && writeCache(store.file(target), script.createCachedData(), store.fileMode);
        debug?.(`${written ? 'wrote' : 'cannot write'} ${store.file(target)}`);
      } catch {
        // no cache this time
      }
    });
  }
  const module = { exports: {} };
  (script.runInThisContext() as (...args: unknown[]) => void)(module.exports, options.require, module, options.filename, options.dirname);
}

/** Whether this process may make files in `dir`. */
function mayWrite(dir: string): boolean {
  try {
    accessSync(dir, constants.W_OK);
    return true;
  } catch {
    return false;
  }
}

/** The caches beside the script, as the launcher from source keeps them (dist/ is the developer's own). */
export function besideScript(script: string): CacheStore {
  const file = (name: string) => (name === START ? `${script}.cache` : `${script}.${name}.cache`);
  return {
    file,
    readable: () => true,
    exists: (name) => existsSync(file(name)),
    writable: () => mayWrite(dirname(script)),
    fileMode: 0o644,
  };
}

/**
 * The user's cache directory, as Go's os.UserCacheDir picks it (and helm, and most command-line tools): on Linux and
 * other Unix systems `$XDG_CACHE_HOME` when it is an absolute path (the XDG Base Directory Specification: a relative
 * one is invalid and ignored), else `$HOME/.cache`; on macOS `$HOME/Library/Caches`; on Windows `%LocalAppData%`.
 * Undefined when there is no home to put it in.
 */
export function userCacheDir(env: NodeJS.ProcessEnv, platform: NodeJS.Platform): string | undefined {
  const absolute = (path: string | undefined) => (path && (platform === 'win32' ? /^([a-zA-Z]:)?[\\/]/.test(path) : path.startsWith('/')) ? path : undefined);
  if (platform === 'win32') return absolute(env.LOCALAPPDATA);
  const home = absolute(env.HOME);
  if (platform === 'darwin') return home && join(home, 'Library', 'Caches');
  return absolute(env.XDG_CACHE_HOME) ?? (home && join(home, '.cache'));
}

/**
 * The executable's caches: `<user cache dir>/kubectl-meshfed/<build>/`, where `<build>` names the plugin's version,
 * its script's hash, and the Node version, platform and architecture, so that no other build ever reads them (V8
 * checks a cache only against the script's length). The two directories are made 0700 and the files 0600, and each
 * is used only if it is a real directory or file of this user (or root) that no one else may write, so a link or
 * file someone else planted is never followed or run. Making a build's directory removes the other builds' ones.
 */
export function userCacheStore(base: string | undefined, build: string): CacheStore | undefined {
  if (base === undefined) return undefined;
  const app = join(base, 'kubectl-meshfed');
  const dir = join(app, build);
  const safe = (path: string) => {
    try {
      return trusted(lstatSync(path), 'dir');
    } catch {
      return false;
    }
  };
  const file = (name: string) => join(dir, `${name === START ? 'start' : name}.cache`);
  return {
    file,
    readable: () => safe(app) && safe(dir),
    exists: (name) => existsSync(file(name)),
    writable: () => {
      // The base (~/.cache) only if its parent exists: a missing home stays missing. Each directory is checked before
      // anything is made in it.
      let made = false;
      for (const path of [base, app, dir]) {
        try {
          mkdirSync(path, { mode: 0o700 });
          made = path === dir;
        } catch {
          // exists (checked below) or cannot be made
        }
        if (path !== base && !safe(path)) return false;
      }
      if (!mayWrite(dir)) return false;
      if (made) {
        for (const other of readdirSync(app)) {
          if (other !== build) rmSync(join(app, other), { recursive: true, force: true });
        }
      }
      return true;
    },
    fileMode: 0o600,
  };
}
