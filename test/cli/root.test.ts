import test from 'ava';
import { readFileSync } from 'node:fs';
import { redactSecrets } from '../../src/commands/session.js';
import { hasAnsi, repoRoot, runCli, runMeshfed, writeKubeconfig } from '../support/cli.js';

const version = JSON.parse(readFileSync(`${repoRoot}/package.json`, 'utf8')).version as string;

test('--help shows usage as a kubectl plugin, the commands, global flags, examples and exit codes', async (t) => {
  const result = await runCli(['--help']);
  t.is(result.code, 0);
  t.is(result.stderr, '');
  t.regex(result.stdout, /Usage: kubectl meshfed <command> \[flags\]/);
  t.regex(result.stdout, /kubectl meshfed contexts/);
  t.regex(result.stdout, /kubectl meshfed completion/);
  for (const flag of ['--kubeconfig', '--context', '--namespace', '--request-timeout', '--output', '--yes', '--color', '--verbose']) {
    t.true(result.stdout.includes(flag), `help lists ${flag}`);
  }
  t.regex(result.stdout, /Examples:/);
  t.regex(result.stdout, /130 interrupted/);
});

test('--version prints the package version', async (t) => {
  const result = await runMeshfed(['--version']);
  t.is(result.code, 0);
  t.is(result.stdout.trim(), version);
});

test('the launcher works through a symlink, as krew installs it', async (t) => {
  const { mkdtempSync, symlinkSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const { join } = await import('node:path');
  const { spawnSync } = await import('node:child_process');
  const dir = mkdtempSync(join(tmpdir(), 'meshfed-krew-'));
  symlinkSync(join(repoRoot, 'bin', 'kubectl-meshfed'), join(dir, 'kubectl-meshfed'));
  const result = spawnSync('kubectl', ['meshfed', '--version'], { env: { ...process.env, PATH: `${dir}:${process.env.PATH}` }, encoding: 'utf8' });
  t.is(result.status, 0, result.stderr);
  t.is(result.stdout.trim(), version);
  const list = spawnSync('kubectl', ['plugin', 'list'], { env: { ...process.env, PATH: `${dir}:${process.env.PATH}` }, encoding: 'utf8' });
  t.true(list.stdout.includes(join(dir, 'kubectl-meshfed')), list.stdout + list.stderr);
});

test('an unknown command is a usage error (exit 2) with a suggestion', async (t) => {
  const typo = await runCli(['contxts']);
  t.is(typo.code, 2);
  t.is(typo.stdout, '');
  t.regex(typo.stderr, /error: unknown command "contxts" for "kubectl meshfed"/);
  t.regex(typo.stderr, /did you mean "contexts"\?/);
  const other = await runCli(['frobnicate']);
  t.is(other.code, 2);
  t.regex(other.stderr, /commands: contexts, [a-z, -]*completion/);
});

test('an unknown flag and a missing command are usage errors (exit 2)', async (t) => {
  const flag = await runCli(['contexts', '--bogus']);
  t.is(flag.code, 2);
  t.regex(flag.stderr, /unknown flag: --bogus/);
  const none = await runCli([]);
  t.is(none.code, 2);
  t.regex(none.stderr, /a command is required/);
  // A positional word a command does not take is not called a flag.
  const word = await runCli(['export', 'postgres', '--context', 'production', '-n', 'db', '--service', 'postgres', '--port', '5432']);
  t.is(word.code, 2);
  t.regex(word.stderr, /unexpected argument "postgres": export takes its values as flags\n {2}see the flags with kubectl meshfed export --help/);
  t.false(word.stderr.includes('--postgres'), word.stderr);
});

test('flag mistakes name the flag, suggest a close one and point at the command\'s help (exit 2, nothing on stdout)', async (t) => {
  const typo = await runCli(['export', '--subst', 'version=v2']);
  t.is(typo.code, 2);
  t.is(typo.stdout, '');
  t.regex(typo.stderr, /unknown flag: --subst\n {2}did you mean --subset\?\nSee 'kubectl meshfed export --help' for usage\./);
  const far = await runCli(['contexts', '--bogus']);
  t.false(far.stderr.includes('did you mean'), far.stderr);
  t.regex(far.stderr, /See 'kubectl meshfed contexts --help'/);
  const choice = await runCli(['export', '--mode', 'shared']);
  t.is(choice.code, 2);
  t.regex(choice.stderr, /^error: invalid --mode "shared": choose boundary or shared-root$/m);
  const noValue = await runCli(['admit', '--request']);
  t.is(noValue.code, 2);
  t.regex(noValue.stderr, /^error: flag --request needs a value$/m);
  t.regex(noValue.stderr, /See 'kubectl meshfed admit --help'/);
});

test('a flag given twice with different values is a usage error, not a guess at which cluster to act on', async (t) => {
  const twice = await runCli(['status', '--context', 'operations', '--context', 'staging']);
  t.is(twice.code, 2);
  t.regex(twice.stderr, /^error: --context was given more than once \(operations, staging\)$/m);
  const alias = await runCli(['status', '-n', 'a', '--namespace', 'b']);
  t.regex(alias.stderr, /^error: --namespace was given more than once \(a, b\)$/m);
  // Repeatable flags keep every value.
  const repeated = await runCli(['export', '--subset', 'version=v2', '--subset', 'tier=web', '--kubeconfig', '/nonexistent']);
  t.false(repeated.stderr.includes('more than once'), repeated.stderr);
});

test('a reader that stops early (| head) ends the output quietly, without an EPIPE stack trace', async (t) => {
  const { spawn } = await import('node:child_process');
  const { join } = await import('node:path');
  const child = spawn(join(repoRoot, 'bin', 'kubectl-meshfed'), ['--help'], { stdio: ['ignore', 'pipe', 'pipe'] });
  // Close our end before the program (still starting) writes anything: its first write meets a closed pipe.
  child.stdout.destroy();
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
  t.is(stderr, '');
  t.is(code, 0);
});

test('a malformed --request-timeout is a usage error naming the flag', async (t) => {
  const result = await runCli(['contexts', '--request-timeout', 'soon']);
  t.is(result.code, 2);
  t.regex(result.stderr, /invalid --request-timeout "soon"/);
});

test('an unknown context exits 1 and names the known contexts', async (t) => {
  const kubeconfig = writeKubeconfig([
    { name: 'operations', server: 'https://127.0.0.1:1' },
    { name: 'production', server: 'https://127.0.0.1:2' },
  ], 'operations');
  const result = await runCli(['contexts', '--context', 'staging'], { env: { KUBECONFIG: kubeconfig } });
  t.is(result.code, 1);
  t.is(result.stdout, '');
  t.regex(result.stderr, /error: context "staging" not found in kubeconfig/);
  t.regex(result.stderr, /known contexts: operations, production/);
});

test('a missing --kubeconfig file exits 1 with the path', async (t) => {
  const result = await runCli(['contexts', '--kubeconfig', '/nonexistent/kubeconfig']);
  t.is(result.code, 1);
  t.regex(result.stderr, /kubeconfig file \/nonexistent\/kubeconfig \(--kubeconfig\) does not exist/);
});

test('completion prints bash and zsh scripts, and yargs completions list commands and contexts', async (t) => {
  const bash = await runCli(['completion', 'bash']);
  t.is(bash.code, 0);
  t.regex(bash.stdout, /complete -o bashdefault -o default -F _kubectl_meshfed_completions kubectl-meshfed/);
  const zsh = await runCli(['completion', 'zsh']);
  t.regex(zsh.stdout, /#compdef kubectl-meshfed/);
  const fish = await runCli(['completion', 'fish']);
  t.is(fish.code, 2);
  t.regex(fish.stderr, /unsupported shell "fish"/);
  const words = await runCli(['--get-yargs-completions', 'kubectl-meshfed', '']);
  t.regex(words.stdout, /^contexts$/m);
  const kubeconfig = writeKubeconfig([{ name: 'operations', server: 'https://127.0.0.1:1' }, { name: 'production', server: 'https://127.0.0.1:2' }]);
  const contexts = await runCli(['--get-yargs-completions', 'kubectl-meshfed', 'contexts', '--context', 'pro'], { env: { KUBECONFIG: kubeconfig } });
  t.is(contexts.stdout.trim(), 'production');
});

test('no colour when piped, with NO_COLOR, FORCE_COLOR=0, TERM=dumb or --no-color; FORCE_COLOR forces it', async (t) => {
  const kubeconfig = writeKubeconfig([{ name: 'x', server: 'https://127.0.0.1:1' }], 'x');
  const args = ['contexts', '--probe', '--request-timeout', '1s'];
  const piped = await runCli(args, { env: { KUBECONFIG: kubeconfig } });
  t.false(hasAnsi(piped.stdout + piped.stderr));
  const forced = await runCli(args, { env: { KUBECONFIG: kubeconfig, FORCE_COLOR: '1' } });
  t.true(hasAnsi(forced.stdout), 'FORCE_COLOR=1 colours the status column');
  for (const env of [{ NO_COLOR: '1' }, { FORCE_COLOR: '0' }, { TERM: 'dumb' }]) {
    const result = await runCli(args, { env: { KUBECONFIG: kubeconfig, FORCE_COLOR: env.FORCE_COLOR ?? '1', ...env } });
    t.false(hasAnsi(result.stdout + result.stderr), JSON.stringify(env));
  }
  const flag = await runCli([...args, '--no-color'], { env: { KUBECONFIG: kubeconfig, FORCE_COLOR: '1' } });
  t.false(hasAnsi(flag.stdout + flag.stderr));
});

test('messages stay English under another locale (LANG=de_DE.UTF-8): suggestions, usage errors and help', async (t) => {
  const env = { LANG: 'de_DE.UTF-8', LC_ALL: 'de_DE.UTF-8', LANGUAGE: 'de' };
  const typo = await runMeshfed(['export', '--servce', 'reviews'], { env });
  t.is(typo.code, 2);
  t.regex(typo.stderr, /^error: unknown flag: --servce\n {2}did you mean --service\?$/m);
  const noValue = await runMeshfed(['admit', '--request'], { env });
  t.regex(noValue.stderr, /^error: flag --request needs a value$/m);
  const help = await runMeshfed(['unexport', '--help'], { env });
  t.regex(help.stdout, /^Options:$/m);
  t.regex(help.stdout, /^Positionals:$/m);
});

test('-v takes kubectl\'s levels (-v=6, -v 6, --v=6) and refuses what is not a level', async (t) => {
  const kubeconfig = writeKubeconfig([{ name: 'x', server: 'https://127.0.0.1:1' }], 'x');
  for (const flags of [['-v=6'], ['-v', '6'], ['--v=6'], ['-v6']]) {
    const result = await runCli(['status', ...flags, '--request-timeout', '1s'], { env: { KUBECONFIG: kubeconfig } });
    t.is(result.code, 1, flags.join(' '));
    t.regex(result.stderr, /^GET \/\S+ \(context "x"\) failed in \d+ milliseconds/m, flags.join(' '));
  }
  const quiet = await runCli(['status', '-v', '--request-timeout', '1s'], { env: { KUBECONFIG: kubeconfig } });
  t.false(/^GET /m.test(quiet.stderr), '-v alone is level 1: no request log');
  t.regex(quiet.stderr, /API request\(s\)/);
  for (const bad of [['-v=loud'], ['--v=11'], ['-v=-1']]) {
    const result = await runCli(['status', ...bad]);
    t.is(result.code, 2, bad.join(' '));
    t.regex(result.stderr, /^error: invalid log level ".*" for -+v$/m);
  }
});

test('-v=8 bodies never show Secret data, also inside lists', (t) => {
  const secret = { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'k', labels: { a: 'b' } }, data: { 'tls.key': 'c2VjcmV0' }, stringData: { token: 'hunter2' } };
  const logged = JSON.stringify(redactSecrets({ kind: 'SecretList', items: [secret, { kind: 'ConfigMap', metadata: { name: 'c' }, data: { x: 'visible' } }] }));
  t.false(logged.includes('c2VjcmV0') || logged.includes('hunter2'), logged);
  t.true(logged.includes('tls.key') && logged.includes('visible') && logged.includes('"labels":{"a":"b"}'), logged);
});
