import test from 'ava';
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import YAML from 'yaml';
import { repoRoot } from '../support/cli.js';

const version = JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')).version as string;

function buildArchive(): { path: string; sha256: string } {
  const out = mkdtempSync(join(tmpdir(), 'meshfed-release-'));
  execFileSync('node', [join(repoRoot, 'scripts/package.mjs'), '--out', out, '--no-manifest'], { encoding: 'utf8' });
  const path = join(out, `kubectl-meshfed-v${version}.tar.gz`);
  return { path, sha256: createHash('sha256').update(readFileSync(path)).digest('hex') };
}

test('the krew manifest is a valid plugin manifest for the current version', (t) => {
  const manifest = YAML.parse(readFileSync(join(repoRoot, 'krew-manifest.yaml'), 'utf8'));
  t.is(manifest.apiVersion, 'krew.googlecontainertools.github.com/v1alpha2');
  t.is(manifest.kind, 'Plugin');
  t.is(manifest.metadata.name, 'meshfed');
  t.is(manifest.spec.version, `v${version}`);
  t.true(manifest.spec.shortDescription.length <= 50);
  for (const platform of manifest.spec.platforms) {
    t.regex(platform.uri, new RegExp(`^https://.*/v${version.replace(/\./g, '\\.')}/kubectl-meshfed-v${version.replace(/\./g, '\\.')}\\.tar\\.gz$`));
    t.regex(platform.sha256, /^[0-9a-f]{64}$/);
    t.is(platform.bin, 'bin/kubectl-meshfed');
  }
});

test('the release archive is reproducible, self-contained, and runs as krew installs it (a symlink, no node_modules)', (t) => {
  const first = buildArchive();
  const second = buildArchive();
  t.is(first.sha256, second.sha256, 'same commit, same archive');
  const dir = mkdtempSync(join(tmpdir(), 'meshfed-krew-install-'));
  execFileSync('tar', ['xzf', first.path, '-C', dir]);
  t.false(readdirSync(dir).includes('node_modules'));
  const krewBin = join(dir, 'krew-bin');
  mkdirSync(krewBin);
  symlinkSync(join(dir, 'bin', 'kubectl-meshfed'), join(krewBin, 'kubectl-meshfed'));
  // Only the system's node and kubectl on PATH: nothing from this repository.
  const env = { PATH: `${krewBin}:/usr/local/bin:/usr/bin:/bin`, HOME: dir };
  const result = spawnSync('kubectl', ['meshfed', '--version'], { env, encoding: 'utf8' });
  t.is(result.status, 0, result.stderr);
  t.is(result.stdout.trim(), version);
  const help = spawnSync('kubectl', ['meshfed', 'contexts', '--help'], { env, encoding: 'utf8' });
  t.is(help.status, 0, help.stderr);
  t.regex(help.stdout, /--probe/);
});
