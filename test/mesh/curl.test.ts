/**
 * What the curl image prints and how it exits, for the commands the probe relies on (README "Client commands"):
 * curl's options and errors, the image entrypoint, pilot-agent's local endpoints and the sh subset.
 */
import test from 'ava';
import { fixtureYaml } from '../support/mesh/scenarios.js';
import { staticWorld } from '../support/mesh/index.js';
import { run } from './helpers.js';

const world = () => staticWorld({ c1: fixtureYaml('single', 'c1') });
const inClient = (argv: string[]) => run(world(), 'c1', 'demo', 'client', argv);
const inPlain = (argv: string[]) => run(world(), 'c1', 'demo', 'plain', argv);

test('a request through the sidecar prints the body; -w prints the status after it', async (t) => {
  const r = await inClient(['curl', '-sS', '-H', 'end-user: jason', '-w', '\\n%{http_code} %{exitcode}', 'reviews:9080/reviews/7']);
  t.is(r.exitCode, 0);
  t.regex(r.stdout, /^\{"id":"7","podname":"reviews-v2",.*"color":"black".*\}\n200 0$/);
  t.is(r.stderr, '');
});

test('the image entrypoint: arguments starting with - are curl arguments', async (t) => {
  const r = await inClient(['-s', '-o', '/dev/null', '-w', '%{http_code}', 'http://ratings.demo:9080/ratings/1']);
  t.is(r.stdout, '200');
  const health = await inClient(['curl', '-s', 'http://ratings.demo.svc.cluster.local:9080/health']);
  t.is(health.stdout, '{"status":"Ratings is healthy"}');
});

test('curl 6: a name that does not resolve, with and without -s/-S', async (t) => {
  const shown = await inClient(['curl', '-sS', 'http://reviews.nowhere:9080/']);
  t.is(shown.exitCode, 6);
  t.is(shown.stderr, 'curl: (6) Could not resolve host: reviews.nowhere\n');
  const silent = await inClient(['curl', '-s', '-w', '%{http_code} %{exitcode} %{errormsg}', 'http://reviews.nowhere:9080/']);
  t.is(silent.stderr, '');
  t.is(silent.stdout, '000 6 Could not resolve host: reviews.nowhere');
});

test('without -s curl prints its progress meter and the error on stderr', async (t) => {
  const r = await inClient(['curl', 'http://reviews.nowhere/']);
  t.regex(r.stderr, /^ {2}% Total {4}% Received % Xferd {2}Average Speed/);
  t.regex(r.stderr, /curl: \(6\) Could not resolve host: reviews.nowhere\n$/);
});

test('curl 7: without a sidecar, a Service with no endpoints refuses', async (t) => {
  const r = await inPlain(['curl', '-sS', 'http://details.demo:9080/details/0']);
  t.is(r.exitCode, 7);
  t.regex(r.stderr, /^curl: \(7\) Failed to connect to details.demo port 9080 after \d+ ms: Couldn't connect to server\n$/);
});

test('with a sidecar, a Service with no endpoints is a 503 no healthy upstream', async (t) => {
  const r = await inClient(['curl', '-sS', '-w', '\\n%{http_code}', 'http://details.demo:9080/details/0']);
  t.is(r.exitCode, 0);
  t.is(r.stdout, 'no healthy upstream\n503');
});

test('curl 28: an address nobody owns times out after -m / --connect-timeout', async (t) => {
  const r = await inPlain(['curl', '-sS', '-m', '3', 'http://10.99.99.99:8080/']);
  t.is(r.exitCode, 28);
  t.is(r.stderr, 'curl: (28) Connection timed out after 3001 milliseconds\n');
  const c = await inPlain(['curl', '-sS', '--connect-timeout', '2', '-w', '%{time_total}', 'http://10.99.99.99:8080/']);
  t.is(c.stdout, '2.000000');
});

test('-f turns HTTP errors into exit 22', async (t) => {
  const r = await inClient(['curl', '-sSf', 'http://ratings.demo:9080/nope']);
  t.is(r.exitCode, 22);
  t.is(r.stdout, '');
  t.is(r.stderr, 'curl: (22) The requested URL returned error: 404\n');
});

test('--next runs a second request with its own options; the exit code is the last transfer\'s', async (t) => {
  const r = await inClient(['curl', '-s', '-o', '/dev/null', '-w', 'first=%{http_code}\\n', 'http://ratings.demo:9080/ratings/0', '--next', '-w', 'second=%{http_code}\\n', 'http://nowhere.demo:9080/']);
  t.is(r.stdout, 'first=200\nsecond=000\n');
  t.is(r.exitCode, 6);
});

test('-X and -d reach the application; -i includes the status line and headers', async (t) => {
  const r = await inClient(['curl', '-s', '-i', 'http://ratings.demo:9080/ratings/2']);
  t.regex(r.stdout, /^HTTP\/1.1 200 OK\r\ncontent-type: application\/json\r\n\r\n\{"id":2,/);
});

test('quitquitquit stops the sidecar: later requests are refused by the dead capture port', async (t) => {
  const r = await inClient(['sh', '-c', 'curl -s -o /dev/null -w "%{http_code}\\n" localhost:15021/healthz/ready; curl -fsS -X POST localhost:15020/quitquitquit && echo stopped; curl -sS http://ratings.demo:9080/ratings/0']);
  t.is(r.stdout, '200\nstopped\n');
  t.regex(r.stderr, /^curl: \(7\) Failed to connect to ratings.demo port 9080/);
  t.is(r.exitCode, 7);
});

test('curl reports unknown options like curl does (exit 2)', async (t) => {
  const r = await inClient(['curl', '--bogus', 'http://ratings.demo:9080/']);
  t.is(r.exitCode, 2);
  t.is(r.stderr, "curl: option --bogus: is unknown\ncurl: try 'curl --help' or 'curl --manual' for more information\n");
});

test('options curl has but the model does not implement fail loudly', async (t) => {
  const r = await inClient(['curl', '-v', 'http://ratings.demo:9080/']);
  t.is(r.exitCode, 125);
  t.is(r.stderr, 'mesh model: not modelled: curl option -v\n');
  const cmd = await inClient(['sh', '-c', 'wget -q -O- http://ratings.demo:9080/']);
  t.is(cmd.exitCode, 125);
  t.regex(cmd.stderr, /not modelled: command "wget"/);
});

test('https to a plaintext application: curl 35 wrong version number', async (t) => {
  const r = await inPlain(['curl', '-sS', 'https://ratings.demo:9080/']);
  t.is(r.exitCode, 35);
  t.regex(r.stderr, /wrong version number/);
});

test('sh: a bounded until loop, &&, ||, $(…), [ ] and exit', async (t) => {
  const script = [
    'n=0',
    'until [ "$n" -ge 3 ]; do n=$((n + 1)); sleep 0.01; done; echo "n=$n"',
    'code=$(curl -s -o /dev/null -w "%{http_code}" http://ratings.demo:9080/ratings/0)',
    'if [ "$code" = 200 ]; then echo "ratings $code"; else echo "ratings failed $code"; exit 3; fi',
    'curl -s http://nowhere.demo/ || echo "fallback after $?"',
    'for i in $(seq 1 3); do printf "%s," "$i"; done; echo',
    'exit 4',
  ].join('\n');
  const r = await inClient(['sh', '-c', script]);
  t.is(r.stdout, 'n=3\nratings 200\nfallback after 6\n1,2,3,\n');
  t.is(r.exitCode, 4);
});

test('sh: loops are bounded; a script that would spin forever fails loudly', async (t) => {
  const r = await inClient(['sh', '-c', 'while true; do :; done']);
  t.is(r.exitCode, 125);
  t.regex(r.stderr, /a shell loop running more than 1000 iterations/);
});

test('sh: many requests in one script each travel the path afresh (hops are counted per request, not per script)', async (t) => {
  const r = await inClient(['sh', '-c', 'for i in $(seq 1 40); do curl -s -o /dev/null -w "%{http_code}," http://ratings.demo:9080/ratings/0; done']);
  t.is(r.stderr, '');
  t.is(r.stdout, '200,'.repeat(40));
  t.is(r.exitCode, 0);
});
