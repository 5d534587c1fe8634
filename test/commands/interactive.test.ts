/**
 * The interactive flow through the real prompts, on a pseudo-terminal (util-linux `script`): with values missing,
 * export asks for the context (current one marked), namespace, Service (ports listed), port, subset (from the pods'
 * label values) and export name, shows the plan and asks to confirm; import asks for the provider, the export and
 * the local name. Without a terminal, every missing flag is named at once.
 */
import test from 'ava';
import { spawn } from 'node:child_process';
import { delimiter } from 'node:path';
import { binDir } from '../support/cli.js';
import { startFederationWorld, type FederationWorld } from '../support/federation.js';

let fed: FederationWorld;

test.before(async () => {
  fed = await startFederationWorld({ seed: 'bookinfo', clusters: [{ name: 'cluster1' }, { name: 'cluster2' }] });
});

test.after.always(async () => {
  await fed?.stop();
});

const DOWN = '\u001b[B';
const ENTER = '\r';

/** One step of a conversation: wait until the screen shows `expect`, then type `keys`. */
interface Step {
  expect: RegExp;
  keys: string;
}

// eslint-disable-next-line no-control-regex
const plain = (text: string) => text.replace(/\u001b\[[0-9;?]*[A-Za-z]/g, '').replace(/\r/g, '');

/** Runs `kubectl meshfed <args>` on a pseudo-terminal and answers the prompts as a person would. */
function converse(args: string[], steps: Step[], timeoutMs = 60_000): Promise<{ code: number | null; screen: string }> {
  const command = ['kubectl', 'meshfed', ...args].map((a) => `'${a.replace(/'/g, "'\\''")}'`).join(' ');
  // A pseudo-terminal made by script has no size unless told; real terminals have one.
  const child = spawn('script', ['-qfec', `stty cols 160 rows 50; ${command}`, '/dev/null'], {
    env: { ...process.env, KUBECONFIG: fed.kubeconfig, PATH: `${binDir}${delimiter}${process.env.PATH ?? ''}`, TERM: 'xterm', NO_COLOR: '1', COLUMNS: '160' },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let screen = '';
  let consumed = 0;
  let step = 0;
  const advance = () => {
    while (step < steps.length) {
      const rest = plain(screen).slice(consumed);
      const match = steps[step]!.expect.exec(rest);
      if (!match) return;
      consumed += match.index + match[0].length;
      child.stdin.write(steps[step]!.keys);
      step += 1;
    }
  };
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
    screen += chunk;
    // Let the prompt finish drawing before answering.
    setTimeout(advance, 150);
  });
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (screen += chunk));
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, screen: plain(screen) });
    });
  });
}

test.serial('without a terminal, export names every missing flag at once (exit 2)', async (t) => {
  const result = await fed.run(['export', '--context', 'cluster2']);
  t.is(result.code, 2);
  t.regex(result.stderr, /missing values for --service, --port/);
  t.regex(result.stderr, /run in a terminal to be asked/);
});

test.serial('export asks for context, namespace, Service, port, subset and name, shows the plan and applies after confirmation', async (t) => {
  const result = await converse(['export'], [
    { expect: /Provider context[\s\S]*cluster1 \(current\)[\s\S]*cluster2/, keys: DOWN + ENTER },
    { expect: /Namespace of the Service to export[\s\S]*bookinfo/, keys: DOWN + ENTER },
    { expect: /Service to export[\s\S]*myreviews {2}\(9080\/http\)/, keys: ENTER },
    { expect: /Port of myreviews[\s\S]*9080 \(http\)/, keys: ENTER },
    { expect: /Subset of the pods to export[\s\S]*all pods of the Service[\s\S]*version=v2 {2}\(1 pod\(s\)\)[\s\S]*version=v3/, keys: DOWN + ENTER },
    { expect: /Export name/, keys: 'reviews' + ENTER },
    { expect: /\+ Gateway istio-meshfed\/mf-export-bookinfo-reviews[\s\S]*Apply these changes to context "cluster2"\?/, keys: 'y' + ENTER },
  ]);
  t.is(result.code, 0, result.screen);
  t.regex(result.screen, /Exported bookinfo\/reviews/);
  const record = fed.world.cluster('cluster2').get('v1', 'ConfigMap', 'istio-meshfed', 'mf-export-bookinfo-reviews');
  t.truthy(record, result.screen);
  t.like(JSON.parse((record!.data as Record<string, string>)['export.json']!), { service: 'myreviews', subset: { version: 'v2' }, port: { number: 9080 } });
});

test.serial('import asks for the consumer, provider, export, namespace and local name; declining the plan changes nothing', async (t) => {
  const steps = (answer: string): Step[] => [
    { expect: /Consumer context[\s\S]*cluster1 \(current\)/, keys: ENTER },
    { expect: /Namespace to import into[\s\S]*default/, keys: ENTER },
    { expect: /Provider context[\s\S]*cluster2/, keys: ENTER },
    { expect: /Export of cluster2 to import[\s\S]*bookinfo\/reviews {2}\(Service myreviews:9080, HTTP, boundary\)/, keys: ENTER },
    { expect: /Local name apps will call/, keys: 'myreviews' + ENTER },
    { expect: /\+ VirtualService default\/mf-import-myreviews[\s\S]*Apply these changes to 2 clusters\?/, keys: answer + ENTER },
  ];
  const declined = await converse(['import'], steps('n'));
  t.is(declined.code, 0, declined.screen);
  t.regex(declined.screen, /Nothing was changed/);
  t.falsy(fed.world.cluster('cluster1').get('v1', 'Service', 'default', 'myreviews'));

  const accepted = await converse(['import'], steps('y'));
  t.is(accepted.code, 0, accepted.screen);
  t.regex(accepted.screen, /Imported: apps in the mesh call http:\/\/myreviews\.default:9080\//);
  const call = await fed.curl('cluster1', 'default', 'sleep', ['curl', '-sS', 'http://myreviews.default:9080/reviews/0']);
  t.regex(call.stdout, /reviews-v2/);
});
