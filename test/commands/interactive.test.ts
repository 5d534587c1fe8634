/**
 * The interactive flow through the real prompts, on a pseudo-terminal (util-linux `script`): with values missing,
 * export asks for the context (current one marked), namespace, Service (ports listed), port, subset (from the pods'
 * label values) and export name, shows the plan and asks to confirm; import asks for the provider, the export and
 * the local name. Without a terminal, every missing flag is named at once.
 */
import test from 'ava';
import { converse, type ConversationStep } from '../support/cli.js';
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

test.serial('without a terminal, export names every missing flag at once (exit 2)', async (t) => {
  const result = await fed.run(['export', '--context', 'cluster2']);
  t.is(result.code, 2);
  t.regex(result.stderr, /missing values for --service, --port/);
  t.regex(result.stderr, /run in a terminal to be asked/);
});

test.serial('export asks for context, namespace, Service, port, subset and name, shows the plan and applies after confirmation', async (t) => {
  const result = await converse(fed.kubeconfig, ['export'], [
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
  const steps = (answer: string): ConversationStep[] => [
    { expect: /Consumer context[\s\S]*cluster1 \(current\)/, keys: ENTER },
    { expect: /Namespace to import into[\s\S]*default/, keys: ENTER },
    { expect: /Provider context[\s\S]*cluster2/, keys: ENTER },
    { expect: /Export of cluster2 to import[\s\S]*bookinfo\/reviews {2}\(Service myreviews:9080, HTTP, boundary\)/, keys: ENTER },
    { expect: /Local name apps will call/, keys: 'myreviews' + ENTER },
    { expect: /\+ VirtualService default\/mf-import-myreviews[\s\S]*Apply these changes to 2 clusters\?/, keys: answer + ENTER },
  ];
  const declined = await converse(fed.kubeconfig, ['import'], steps('n'));
  t.is(declined.code, 0, declined.screen);
  t.regex(declined.screen, /Nothing was changed/);
  t.falsy(fed.world.cluster('cluster1').get('v1', 'Service', 'default', 'myreviews'));

  const accepted = await converse(fed.kubeconfig, ['import'], steps('y'));
  t.is(accepted.code, 0, accepted.screen);
  t.regex(accepted.screen, /Imported: apps in the mesh call http:\/\/myreviews\.default:9080\//);
  const call = await fed.curl('cluster1', 'default', 'sleep', ['curl', '-sS', 'http://myreviews.default:9080/reviews/0']);
  t.regex(call.stdout, /reviews-v2/);
});
