/**
 * The probe as data: the pod and script verify runs, and the mapping from what curl/nc and Envoy print to codes
 * (asserted as (code, object) pairs). The same mapping meets the data-path model's real output in the end-to-end
 * tests; this table covers the outcomes a fault there does not produce (curl exit codes 6, 7, 28, 35, 56).
 */
import test from 'ava';
import {
  interpretProbe, parseProbeLog, probePod, probeRunResults, probeScript, responseFlagsOf, tcpGreeting, type ProbeRun, type ProbeTarget,
} from '../../src/federation/checks/index.js';

const http: ProbeTarget = { host: 'myreviews.default', port: 9080, protocol: 'HTTP', path: '/reviews/0' };
const tcp: ProbeTarget = { host: 'postgres.vault', port: 5432, protocol: 'TCP', path: '/', send: 'x' };
const context = (target: ProbeTarget) => ({ pod: 'meshfed-probe-abcde', namespace: 'default', target, service: 'Service default/myreviews' });
const marker = (status: number, exit: number, error = '') => `meshfed-probe http_code=${String(status).padStart(3, '0')} exitcode=${exit} time_total=0.012345 errormsg=${error}`;

function codesOf(log: string, target = http, proxyLog = ''): Array<[string, string]> {
  return interpretProbe(parseProbeLog(log, proxyLog), context(target))
    .filter((r) => r.outcome.status === 'fail').map((r) => [r.code, r.object ?? '']);
}

test('the pod: curl image, sidecar held until the proxy is ready, never restarted, labelled as meshfed probe', (t) => {
  const pod = probePod({ name: 'meshfed-probe-abcde', namespace: 'default', localName: 'myreviews', image: 'curlimages/curl:8.11.1', target: http, maxTimeSeconds: 10, activeDeadlineSeconds: 90 });
  const spec = pod.spec as { restartPolicy: string; activeDeadlineSeconds: number; containers: Array<{ image: string; command: string[] }> };
  t.is(spec.restartPolicy, 'Never');
  t.is(spec.activeDeadlineSeconds, 90);
  t.is(spec.containers[0]!.image, 'curlimages/curl:8.11.1');
  t.deepEqual(spec.containers[0]!.command.slice(0, 2), ['sh', '-c']);
  t.regex(pod.metadata.annotations!['proxy.istio.io/config']!, /^holdApplicationUntilProxyStarts: true$/m);
  t.is(pod.metadata.labels!['app.kubernetes.io/managed-by'], 'kubectl-meshfed');
  t.is(pod.metadata.labels!['meshfed.io/import'], 'default.myreviews');
});

test('the scripts call the imported name, bound the call, and always stop the sidecar', (t) => {
  const h = probeScript(http, 7);
  t.regex(h, /curl -sS -m 7 -w '.*http_code=%\{http_code\} exitcode=%\{exitcode\}.*' 'http:\/\/myreviews\.default:9080\/reviews\/0'/);
  t.regex(h, /\ncurl -sS -m 5 -o \/dev\/null -X POST http:\/\/localhost:15020\/quitquitquit$/);
  const p = probeScript({ ...tcp, send: tcpGreeting({ port: { number: 5432, name: 'tcp-postgres' } }) }, 3);
  t.true(p.includes("printf '\\000\\000\\000\\010\\004\\322\\026/' | nc -w 3 postgres.vault 5432"), p);
  t.regex(p, /answered=yes/);
  t.regex(p, /quitquitquit$/);
  t.is(tcpGreeting({ port: { number: 6379, name: 'tcp' } }), 'PING\r\n');
  t.is(tcpGreeting({ port: { number: 9000, name: 'tcp-echo' } }), '\n');
});

test('HTTP success: MF0503 passes with status and time', (t) => {
  const results = interpretProbe(parseProbeLog(`{"id":"0"}\n${marker(200, 0)}\n`), context(http));
  t.is(results.length, 1);
  t.is(results[0]!.code, 'MF0503');
  t.deepEqual(results[0]!.outcome, { status: 'ok', note: 'HTTP 200 in 12 ms' });
});

test('curl exit codes map to their codes', (t) => {
  const object = 'http://myreviews.default:9080/reviews/0';
  t.deepEqual(codesOf(`curl: (6) Could not resolve host: myreviews.default\n\n${marker(0, 6, 'Could not resolve host: myreviews.default')}`), [['MF0504', object]]);
  t.deepEqual(codesOf(marker(0, 7, "Failed to connect to myreviews.default port 9080 after 1 ms: Couldn't connect to server")), [['MF0505', object]]);
  t.deepEqual(codesOf(marker(0, 28, 'Connection timed out after 10001 milliseconds')), [['MF0506', object]]);
  t.deepEqual(codesOf(marker(0, 35, 'OpenSSL SSL_connect: Connection reset by peer')), [['MF0507', object]]);
  t.deepEqual(codesOf(marker(0, 56, 'Recv failure: Connection reset by peer')), [['MF0508', object]]);
  t.deepEqual(codesOf(marker(0, 3, 'URL rejected')), [['MF0503', object]]);
});

test('Envoy answers map by status, body and response flags', (t) => {
  const object = 'http://myreviews.default:9080/reviews/0';
  t.deepEqual(codesOf(`RBAC: access denied\n${marker(403, 0)}`), [['MF0512', object]]);
  t.deepEqual(codesOf(`no healthy upstream\n${marker(503, 0)}`), [['MF0511', object]]);
  t.deepEqual(codesOf(`upstream connect error or disconnect/reset before headers. retried and the latest reset reason: connection timeout\n${marker(503, 0)}`), [['MF0510', object]]);
  t.deepEqual(codesOf(`\n${marker(404, 0)}`), [['MF0509', object]]);
  t.deepEqual(codesOf(`\n${marker(503, 0)}`, http, '[2026-01-01T00:00:00Z] "GET /reviews/0 HTTP/1.1" 503 NC "myreviews.default:9080" "-" outbound|15443||x\n'), [['MF0509', object]]);
  t.deepEqual(codesOf(`<h1>Not Found</h1>\n${marker(404, 0)}`), [['MF0513', object]]);
  t.deepEqual(codesOf(`oops\n${marker(500, 0)}`), [['MF0503', object]]);
  const flags = interpretProbe(parseProbeLog(`upstream connect error or disconnect/reset before headers. reset reason: connection failure\n${marker(503, 0)}`), context(http));
  t.regex((flags[0]!.outcome as { message: string }).message, /response flag UF/);
});

test('TCP: an answer passes; a closed connection, a refused one and a bad address fail with their codes', (t) => {
  const object = 'tcp://postgres.vault:5432';
  t.deepEqual(interpretProbe(parseProbeLog('meshfed-probe answered=yes exitcode=0\n'), context(tcp)).map((r) => [r.code, r.outcome.status]), [['MF0503', 'ok']]);
  t.deepEqual(codesOf('meshfed-probe answered=no exitcode=0\n', tcp), [['MF0508', object]]);
  t.deepEqual(codesOf("nc: can't connect to remote host: Connection refused\nmeshfed-probe answered=no exitcode=1\n", tcp), [['MF0505', object]]);
  t.deepEqual(codesOf("nc: bad address 'postgres.vault'\nmeshfed-probe answered=no exitcode=1\n", tcp), [['MF0504', object]]);
  const closed = interpretProbe(parseProbeLog('meshfed-probe answered=no exitcode=0\n', '[t] "- - -" 0 UF "-" "10.0.0.1:15443" outbound|15443||x\n'), context(tcp));
  t.regex((closed[0]!.outcome as { message: string }).message, /response flags UF/);
});

test('no result line: MF0503 fails and quotes the end of the log', (t) => {
  const results = interpretProbe(parseProbeLog('mesh model: not modelled: curl option --http2\n'), context(http));
  t.is(results[0]!.code, 'MF0503');
  t.regex((results[0]!.outcome as { message: string }).message, /printed no result.*not modelled/);
});

test('response flags come from the last outbound line of the access log', (t) => {
  const log = [
    '[t] "GET / HTTP/1.1" 200 - "a" "b" inbound|9080||',
    '[t] "GET /reviews/0 HTTP/1.1" 503 URX,UF "myreviews.default:9080" "10.1.0.4:15443" outbound|15443|x|meshfed-egress',
  ].join('\n');
  t.is(responseFlagsOf(log), 'URX,UF');
  t.is(responseFlagsOf('[t] "GET / HTTP/1.1" 200 - "a" "b" outbound|9080||x\n'), undefined);
});

test('how the pod run ended: refused and stuck fail MF0501 and skip the call, a timeout is MF0514, no sidecar fails MF0502', (t) => {
  const run = (over: Partial<ProbeRun>): ProbeRun => ({ name: 'meshfed-probe-abcde', phase: 'Succeeded', ending: 'completed', sidecar: true, deleted: true, ...over });
  const outcome = (results: ReturnType<typeof probeRunResults>) => results.map((r) => [r.code, r.outcome.status]);
  const pod = 'Pod default/meshfed-probe-abcde';
  const refused = probeRunResults(run({ ending: 'refused', phase: 'Pending', error: 'pods "meshfed-probe-abcde" is forbidden: exceeded quota' }), undefined, http, 'default', '60s');
  t.deepEqual(outcome(refused), [['MF0501', 'fail'], ['MF0503', 'skip']]);
  t.is(refused[0]!.object, pod);
  t.regex(JSON.stringify(refused[0]!.outcome), /exceeded quota/);
  const stuck = probeRunResults(run({ ending: 'stuck', phase: 'Pending', waiting: 'probe waiting: ImagePullBackOff' }), undefined, http, 'default', '60s');
  t.deepEqual(outcome(stuck), [['MF0501', 'fail'], ['MF0503', 'skip']]);
  t.regex(JSON.stringify(stuck[0]!.outcome), /ImagePullBackOff/);
  const late = probeRunResults(run({ ending: 'timeout', phase: 'Running' }), undefined, http, 'default', '30s');
  t.deepEqual(outcome(late), [['MF0514', 'fail']]);
  t.regex(JSON.stringify(late[0]!.outcome), /within 30s \(phase Running\)/);
  const noSidecar = probeRunResults(run({ sidecar: false }), parseProbeLog(marker(200, 0)), http, 'default', '60s');
  t.deepEqual(outcome(noSidecar), [['MF0501', 'ok'], ['MF0502', 'fail'], ['MF0503', 'ok']]);
});

test('the reset-connection hint names the gateways the verify run passes in, never a gateway of the other mode', (t) => {
  const sharedRoot: ProbeTarget = { ...tcp, gateways: 'the east-west gateway of cluster production' };
  const [reset] = interpretProbe(parseProbeLog('meshfed-probe answered=no exitcode=0\n', ''), context(sharedRoot)).filter((r) => r.outcome.status === 'fail');
  t.is(reset!.code, 'MF0508');
  t.regex(reset!.outcome.status === 'fail' ? reset!.outcome.hint : '', /read the logs of the east-west gateway of cluster production, and check MF0402 and MF0403/);
  t.notRegex(reset!.outcome.status === 'fail' ? reset!.outcome.hint : '', /meshfed-ingress/);
});
