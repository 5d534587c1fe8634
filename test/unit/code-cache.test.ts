// Where the release executable keeps its code caches (src/launch/code-cache.ts, userCacheDir): each platform's own
// per-user cache directory, as Go's os.UserCacheDir and the XDG Base Directory Specification place it.
import test from 'ava';
import { userCacheDir } from '../../src/launch/code-cache.js';

test('Linux: $XDG_CACHE_HOME when absolute, else ~/.cache; nothing without a home', (t) => {
  t.is(userCacheDir({ HOME: '/home/ana', XDG_CACHE_HOME: '/var/cache/ana' }, 'linux'), '/var/cache/ana');
  t.is(userCacheDir({ HOME: '/home/ana' }, 'linux'), '/home/ana/.cache');
  t.is(userCacheDir({ HOME: '/home/ana', XDG_CACHE_HOME: '' }, 'linux'), '/home/ana/.cache', 'empty: unset');
  t.is(userCacheDir({ HOME: '/home/ana', XDG_CACHE_HOME: 'cache' }, 'linux'), '/home/ana/.cache', 'relative: invalid, ignored');
  t.is(userCacheDir({ XDG_CACHE_HOME: '/var/cache/ana' }, 'linux'), '/var/cache/ana');
  t.is(userCacheDir({}, 'linux'), undefined);
  t.is(userCacheDir({ HOME: 'relative' }, 'linux'), undefined);
});

test('macOS: ~/Library/Caches; Windows: %LOCALAPPDATA%', (t) => {
  t.is(userCacheDir({ HOME: '/Users/ana', XDG_CACHE_HOME: '/tmp/x' }, 'darwin'), '/Users/ana/Library/Caches');
  t.is(userCacheDir({}, 'darwin'), undefined);
  t.is(userCacheDir({ LOCALAPPDATA: 'C:\\Users\\ana\\AppData\\Local', HOME: '/x' }, 'win32'), 'C:\\Users\\ana\\AppData\\Local');
  t.is(userCacheDir({ HOME: 'C:\\Users\\ana' }, 'win32'), undefined);
});
