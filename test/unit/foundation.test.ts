import test from 'ava';
import { mkdtempSync, mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { ExitCode, exitCodeFor, InputError, UsageError } from '../../src/errors.js';
import { describeRequest } from '../../src/kube/request.js';
import { loadKubeconfig } from '../../src/kube/kubeconfig.js';
import { istioVersionFromImage } from '../../src/kube/probe.js';
import { parseDuration } from '../../src/options.js';
import { shouldUseColor } from '../../src/ui/color.js';
import { Prompter } from '../../src/ui/prompt.js';
import { renderTable } from '../../src/ui/table.js';
import { Ui } from '../../src/ui/terminal.js';

test('parseDuration accepts kubectl durations and names the flag when it cannot', (t) => {
  t.is(parseDuration('0', '--request-timeout'), 0);
  t.is(parseDuration('5', '--request-timeout'), 5000);
  t.is(parseDuration('500ms', '--request-timeout'), 500);
  t.is(parseDuration('1m30s', '--timeout'), 90_000);
  t.is(parseDuration('2h', '--timeout'), 7_200_000);
  const error = t.throws(() => parseDuration('5 minutes', '--timeout'), { instanceOf: UsageError });
  t.regex(error!.message, /invalid --timeout "5 minutes"/);
});

test('colour: off for pipes, NO_COLOR, FORCE_COLOR=0, TERM=dumb and --no-color; FORCE_COLOR forces', (t) => {
  const tty = { isTTY: true, noColorFlag: false };
  t.true(shouldUseColor({ ...tty, env: {} }));
  t.false(shouldUseColor({ ...tty, isTTY: false, env: {} }));
  t.false(shouldUseColor({ ...tty, env: { NO_COLOR: '1' } }));
  t.true(shouldUseColor({ ...tty, env: { NO_COLOR: '' } }), 'an empty NO_COLOR does not count (no-color.org)');
  t.false(shouldUseColor({ ...tty, env: { FORCE_COLOR: '0' } }));
  t.false(shouldUseColor({ ...tty, env: { TERM: 'dumb' } }));
  t.false(shouldUseColor({ ...tty, noColorFlag: true, env: { FORCE_COLOR: '1' } }));
  t.true(shouldUseColor({ isTTY: false, noColorFlag: false, env: { FORCE_COLOR: '1' } }));
});

test('tables are aligned like kubectl: upper-case headers, min width 10, three spaces of padding', (t) => {
  const text = renderTable(['name', 'cluster', 'server'], [['a', 'very-long-cluster-name', 'https://x'], ['bb', 'c', 'https://y']]);
  t.is(text, [
    'NAME      CLUSTER                  SERVER',
    'a         very-long-cluster-name   https://x',
    'bb        c                        https://y',
    '',
  ].join('\n'));
});

function fakeIo(tty: boolean) {
  const stdin = Object.assign(new PassThrough(), { isTTY: tty });
  const stdout = Object.assign(new PassThrough(), { isTTY: tty });
  const stderr = Object.assign(new PassThrough(), { isTTY: tty });
  return { stdin, stdout, stderr, env: {} };
}

test('no prompt without a terminal or with --yes: a usage error names the flag instead', async (t) => {
  for (const [tty, yes] of [[false, false], [true, true]] as const) {
    const ui = new Ui(fakeIo(tty), { noColor: true, yes, verbose: false });
    t.false(ui.interactive);
    const error = await t.throwsAsync(new Prompter(ui).select('--service', 'Service to export', [{ value: 'a', name: 'a' }]), { instanceOf: UsageError });
    t.regex(error!.message, /missing value for --service/);
    t.regex(error!.hint ?? '', /pass --service/);
  }
  t.true(new Ui(fakeIo(true), { noColor: true, yes: false, verbose: false }).interactive);
});

test('exit codes are mapped in one place, also for errors that only carry an exitCode', (t) => {
  t.is(exitCodeFor(new UsageError('x')), ExitCode.usage);
  t.is(exitCodeFor(new InputError('x')), ExitCode.error);
  t.is(exitCodeFor(Object.assign(new Error('core'), { exitCode: 1 })), 1);
  t.is(exitCodeFor(Object.assign(new Error('User force closed the prompt'), { name: 'ExitPromptError' })), ExitCode.interrupted);
  t.is(exitCodeFor(new TypeError('bug')), ExitCode.error);
});

test('describeRequest speaks kubectl: verb, resource with group, namespace, name', (t) => {
  t.deepEqual(describeRequest('GET', '/api/v1/namespaces/db/pods'), { verb: 'list', resource: 'pods', namespace: 'db', name: undefined });
  t.deepEqual(describeRequest('GET', '/api/v1/namespaces/db/pods', { watch: 'true' }).verb, 'watch');
  t.deepEqual(describeRequest('GET', '/api/v1/namespaces/db/pods/p/log'), { verb: 'get', resource: 'pods/log', namespace: 'db', name: 'p' });
  t.deepEqual(describeRequest('PATCH', '/apis/networking.istio.io/v1beta1/namespaces/istio-meshfed/gateways/g'), {
    verb: 'patch', resource: 'gateways.networking.istio.io', namespace: 'istio-meshfed', name: 'g',
  });
  t.deepEqual(describeRequest('DELETE', '/api/v1/namespaces/x'), { verb: 'delete', resource: 'namespaces', namespace: undefined, name: 'x' });
});

test('kubeconfig: relative file paths resolve against the file that holds them; ~/.kube/config is the default', (t) => {
  const home = mkdtempSync(join(tmpdir(), 'meshfed-home-'));
  mkdirSync(join(home, '.kube'));
  writeFileSync(join(home, '.kube', 'config'), `
current-context: dev
clusters: [{name: c, cluster: {server: "https://dev:6443", certificate-authority: certs/ca.pem}}]
users: [{name: u, user: {client-certificate: certs/me.pem, client-key: /abs/key.pem}}]
contexts: [{name: dev, context: {cluster: c, user: u}}]
`);
  const kubeconfig = loadKubeconfig({ env: {}, home });
  const context = kubeconfig.context(undefined);
  t.is(context.cluster?.['certificate-authority'], join(home, '.kube', 'certs', 'ca.pem'));
  t.is(context.user?.['client-certificate'], join(home, '.kube', 'certs', 'me.pem'));
  t.is(context.user?.['client-key'], '/abs/key.pem');
  const empty = loadKubeconfig({ env: {}, home: mkdtempSync(join(tmpdir(), 'meshfed-nohome-')) });
  const error = t.throws(() => empty.context(undefined), { instanceOf: InputError });
  t.regex(error!.message, /has no current-context/);
});

test('Istio version from an istiod image tag', (t) => {
  t.is(istioVersionFromImage('docker.io/istio/pilot:1.18.0'), '1.18.0');
  t.is(istioVersionFromImage('gcr.io/istio-release/pilot:1.9.1-distroless'), '1.9.1');
  t.is(istioVersionFromImage('registry:5000/istio/pilot:1.30.3@sha256:abc'), '1.30.3');
  t.is(istioVersionFromImage('istio/pilot:latest'), undefined);
});
