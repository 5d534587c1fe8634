/**
 * The interactive flows on a real terminal (tmux, see test/support/tmux.ts), against emulated clusters: export
 * (context, namespace, Service, subset, name checked at its prompt, mode; the Service's only port is not asked),
 * import with both contexts in the kubeconfig, the three-step flow with only one's own context (import request,
 * admit asking for the request file, import of the bundle with a clashing local name refused at its prompt), and
 * verify asking which import. Each step waits for the screen to show its question, never for a fixed time.
 * Without a terminal nothing is asked: every missing flag is named at once.
 */
import test from 'ava';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import YAML from 'yaml';
import { startFederationWorld, type FederationWorld } from '../support/federation.js';
import { startTerminal, type TerminalRun } from '../support/tmux.js';

let fed: FederationWorld;
/** Where the request and bundle files are written: the terminal's working directory. */
let workdir: string;

test.before(async () => {
  fed = await startFederationWorld({ seed: 'bookinfo', clusters: [{ name: 'cluster1' }, { name: 'cluster2' }] });
  workdir = mkdtempSync(join(tmpdir(), 'meshfed-interactive-'));
  // An export of another Service under the name the export flow first tries, and a second export to import in steps.
  const other = await fed.run(['export', '--context', 'cluster2', '-n', 'bookinfo', '--service', 'ratings', '--port', '9080', '--name', 'ratings']);
  if (other.code !== 0) throw new Error(other.stderr);
});

test.after.always(async () => {
  await fed?.stop();
});

/** A kubeconfig holding only `context` of the world's (the user who has no access to the other cluster). */
function kubeconfigWithOnly(context: string): string {
  const config = YAML.parse(readFileSync(fed.kubeconfig, 'utf8')) as { contexts: Array<{ name: string; context: { cluster: string; user: string } }>; clusters: Array<{ name: string }>; users: Array<{ name: string }>; 'current-context': string };
  const kept = config.contexts.find((c) => c.name === context)!;
  const path = join(mkdtempSync(join(tmpdir(), 'meshfed-kc-')), 'kubeconfig.yaml');
  writeFileSync(path, YAML.stringify({
    ...config,
    'current-context': context,
    contexts: [kept],
    clusters: config.clusters.filter((c) => c.name === kept.context.cluster),
    users: config.users.filter((u) => u.name === kept.context.user),
  }));
  return path;
}

/** Runs a conversation and always closes the terminal; fails with the screen when it did not go as written. */
async function converse(args: string[], kubeconfig: string, steps: (run: TerminalRun) => Promise<void>): Promise<{ code: number; screen: string }> {
  const run = await startTerminal(args, { kubeconfig, cwd: workdir });
  try {
    await steps(run);
    const code = await run.exitCode();
    return { code, screen: await run.screen() };
  } finally {
    await run.close();
  }
}

test.serial('without a terminal, export names every missing flag at once (exit 2)', async (t) => {
  const result = await fed.run(['export', '--context', 'cluster2']);
  t.is(result.code, 2);
  t.regex(result.stderr, /missing values for --service, --port/);
  t.regex(result.stderr, /run in a terminal to be asked/);
});

test.serial('export asks context, namespace, Service, subset, name (a taken name refused at its prompt) and mode; the only port is not asked', async (t) => {
  const { code, screen } = await converse(['export'], fed.kubeconfig, async (run) => {
    await run.waitFor(/^\? Provider context[\s\S]*cluster1 \(current\)[\s\S]*cluster2/m);
    await run.press('Down', 'Enter');
    await run.waitFor(/^\? Namespace of the Service to export[\s\S]*bookinfo/m);
    await run.press('Down', 'Enter');
    await run.waitFor(/^\? Service to export[\s\S]*myreviews {2}\(9080\/http\)/m);
    await run.press('Enter');
    await run.waitFor(/^✔ Port of myreviews 9080 \(http\) \(the only choice\)/m);
    await run.waitFor(/^\? Subset of the pods to export[\s\S]*version=v2 {2}\(1 pod\(s\)\)/m);
    await run.press('Down', 'Enter');
    await run.waitFor(/^\? Export name \(consumers refer to it\)/m);
    await run.type('ratings');
    await run.press('Enter');
    await run.waitFor(/export bookinfo\/ratings already exports Service ratings/);
    for (let i = 0; i < 'ratings'.length; i++) await run.press('BSpace');
    await run.type('reviews');
    await run.press('Enter');
    await run.waitFor(/^\? Trust mode[\s\S]*boundary: gateway-to-gateway mutual TLS[\s\S]*shared-root: workloads call each other/m);
    await run.press('Enter');
    await run.waitFor(/\+ Gateway istio-meshfed\/mf-export-bookinfo-reviews[\s\S]*Apply these changes to context "cluster2"\?/);
    await run.type('y');
    await run.press('Enter');
  });
  t.is(code, 0, screen);
  t.regex(screen, /Exported bookinfo\/reviews/);
  const record = fed.world.cluster('cluster2').get('v1', 'ConfigMap', 'istio-meshfed', 'mf-export-bookinfo-reviews');
  t.truthy(record, screen);
  t.like(JSON.parse((record!.data as Record<string, string>)['export.json']!), { service: 'myreviews', subset: { version: 'v2' }, port: { number: 9080 }, mode: 'boundary' });
});

test.serial('import with both contexts: route and export asked, the only other context and namespace taken without asking; declining changes nothing', async (t) => {
  const steps = (answer: string) => async (run: TerminalRun) => {
    await run.waitFor(/^\? Consumer context[\s\S]*cluster1 \(current\)/m);
    await run.press('Enter');
    await run.waitFor(/^\? How is the provider reached\?[\s\S]*its context is in this kubeconfig[\s\S]*write an import request[\s\S]*complete an import with the bundle/m);
    await run.press('Enter');
    // cluster1 has one namespace for apps: not asked.
    await run.waitFor(/^✔ Namespace to import into \(where apps call it\) default \(the only choice\)/m);
    await run.waitFor(/^✔ Provider context \(the cluster that exports\) cluster2 \(the only choice\)/m);
    await run.waitFor(/^\? Export of cluster2 to import[\s\S]*bookinfo\/reviews {2}\(Service myreviews:9080, HTTP, boundary\)/m);
    await run.press('Down', 'Enter');
    await run.waitFor(/^\? Local name apps will call/m);
    await run.type('myreviews');
    await run.press('Enter');
    await run.waitFor(/\+ VirtualService default\/mf-import-myreviews[\s\S]*Apply these changes to 2 clusters\?/);
    await run.type(answer);
    await run.press('Enter');
  };
  const declined = await converse(['import'], fed.kubeconfig, steps('n'));
  t.is(declined.code, 0, declined.screen);
  t.regex(declined.screen, /Nothing was changed/);
  t.falsy(fed.world.cluster('cluster1').get('v1', 'Service', 'default', 'myreviews'));

  const accepted = await converse(['import'], fed.kubeconfig, steps('y'));
  t.is(accepted.code, 0, accepted.screen);
  t.regex(accepted.screen, /Imported: apps in the mesh call http:\/\/myreviews\.default:9080\//);
  const call = await fed.curl('cluster1', 'default', 'sleep', ['curl', '-sS', 'http://myreviews.default:9080/reviews/0']);
  t.regex(call.stdout, /reviews-v2/);
});

test.serial('with only one\'s own context: import writes a request, admit asks for it (a wrong path refused at the prompt), import takes the bundle (a taken local name refused at the prompt)', async (t) => {
  const consumerOnly = kubeconfigWithOnly('cluster1');
  const providerOnly = kubeconfigWithOnly('cluster2');

  const request = await converse(['import'], consumerOnly, async (run) => {
    await run.waitFor(/^✔ Consumer context \(the cluster that imports\) cluster1 \(current\) \(the only choice\)/m);
    await run.waitFor(/^\? How is the provider reached\?/m);
    const screen = await run.screen();
    if (screen.includes('its context is in this kubeconfig')) throw new Error(`the direct route is offered without the provider's context:\n${screen}`);
    await run.press('Enter');
    await run.waitFor(/^\? Provider cluster id/m);
    await run.type('cluster2');
    await run.press('Enter');
    await run.waitFor(/^\? Export to import \(<namespace>\/<name>\)/m);
    await run.type('ratings');
    await run.press('Enter');
    await run.waitFor(/invalid --export "ratings": expected <namespace>\/<name>/);
    for (let i = 0; i < 'ratings'.length; i++) await run.press('BSpace');
    await run.type('bookinfo/ratings');
    await run.press('Enter');
    await run.waitFor(/^\? Write the import request to/m);
    await run.press('Enter');
    // cluster1 has one namespace for apps: not asked.
    await run.waitFor(/^✔ Namespace to import into \(where apps call it\) default \(the only choice\)/m);
    await run.waitFor(/Apply these changes to context "cluster1"\?/);
    await run.type('y');
    await run.press('Enter');
  });
  t.is(request.code, 0, request.screen);
  t.regex(request.screen, /Wrote the import request to request\.yaml/);

  const admit = await converse(['admit'], providerOnly, async (run) => {
    await run.waitFor(/^\? Import request file from the consumer/m);
    await run.type('nope.yaml');
    await run.press('Enter');
    await run.waitFor(/cannot read nope\.yaml/);
    for (let i = 0; i < 'nope.yaml'.length; i++) await run.press('BSpace');
    await run.type('request.yaml');
    await run.press('Enter');
    await run.waitFor(/^\? Write the export bundle for the consumer to/m);
    await run.press('Enter');
    await run.waitFor(/Apply these changes to context "cluster2"\?/);
    await run.type('y');
    await run.press('Enter');
  });
  t.is(admit.code, 0, admit.screen);
  t.regex(admit.screen, /Admitted cluster1 to bookinfo\/ratings; wrote the export bundle to bundle\.yaml/);

  const bundle = await converse(['import'], consumerOnly, async (run) => {
    await run.waitFor(/^\? How is the provider reached\?/m);
    await run.press('Down', 'Enter');
    await run.waitFor(/^\? Export bundle from the provider/m);
    await run.type('bundle.yaml');
    await run.press('Enter');
    // cluster1 has one namespace for apps: not asked.
    await run.waitFor(/^✔ Namespace to import into \(where apps call it\) default \(the only choice\)/m);
    await run.waitFor(/^\? Local name apps will call/m);
    await run.type('myreviews');
    await run.press('Enter');
    await run.waitFor(/default\/myreviews already imports cluster2\/bookinfo\/reviews/);
    for (let i = 0; i < 'myreviews'.length; i++) await run.press('BSpace');
    await run.type('myratings');
    await run.press('Enter');
    await run.waitFor(/Apply these changes to context "cluster1"\?/);
    await run.type('y');
    await run.press('Enter');
  });
  t.is(bundle.code, 0, bundle.screen);
  t.regex(bundle.screen, /Imported: apps in the mesh call http:\/\/myratings\.default:9080\//);
});

test.serial('verify asks which import, then checks it', async (t) => {
  const { code, screen } = await converse(['verify', '--context', 'cluster1', '-n', 'default', '--from', 'cluster2', '--no-probe'], fed.kubeconfig, async (run) => {
    await run.waitFor(/^\? Which import do you want to verify\?[\s\S]*myratings[\s\S]*myreviews/m);
    await run.press('Down', 'Enter');
  });
  t.is(code, 0, screen);
  t.regex(screen, /Import default\/myreviews in context cluster1/);
  t.regex(screen, /verify passed/);
});
