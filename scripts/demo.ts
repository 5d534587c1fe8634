/**
 * `npm run demo`: the main job of kubectl meshfed on emulated clusters, start to finish, in under a minute.
 *
 * Starts two clusters in this process (the bookinfo seed of the federation blog post, Istio 1.18, the mesh
 * data-path model), exports reviews v2 from cluster2, imports it into cluster1, shows `status` (and `verify` when
 * the plugin has it), sends a request from a pod in cluster1 through the federation, and tears everything down.
 * Each step runs the built plugin as a user would (`kubectl meshfed …`). Exits 0 when every step succeeded.
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { istioCrdSource } from '../test/support/crd-schema.js';
import { startFederationWorld, type FederationWorld } from '../test/support/federation.js';

const repo = fileURLToPath(new URL('..', import.meta.url));
const plugin = join(repo, 'bin', 'kubectl-meshfed');
const bold = (text: string) => (process.stdout.isTTY && !process.env.NO_COLOR ? `\u001b[1m${text}\u001b[22m` : text);

function say(text: string): void {
  process.stdout.write(`\n${bold(text)}\n`);
}

/** Runs the plugin with the terminal's streams, showing the command first. */
function meshfed(kubeconfig: string, args: string[]): Promise<number> {
  process.stdout.write(`$ kubectl meshfed ${args.join(' ')}\n`);
  return new Promise((resolve, reject) => {
    const child = spawn(plugin, [...args, '--kubeconfig', kubeconfig], { stdio: ['ignore', 'inherit', 'inherit'], env: process.env });
    child.on('error', reject);
    child.on('close', (code) => resolve(code ?? 1));
  });
}

async function step(fed: FederationWorld, explanation: string, args: string[]): Promise<void> {
  say(explanation);
  const code = await meshfed(fed.kubeconfig, args);
  if (code !== 0) throw new Error(`kubectl meshfed ${args[0]} exited with ${code}`);
}

async function main(): Promise<void> {
  const started = Date.now();
  say('Starting two emulated clusters with Istio 1.18 (cluster1: bookinfo in namespace default; cluster2: reviews v2 and v3 behind Service myreviews in namespace bookinfo)…');
  const fed = await startFederationWorld({ seed: 'bookinfo', clusters: [{ name: 'cluster1' }, { name: 'cluster2' }] });
  process.stdout.write(`${istioCrdSource('1.18.0').description}\n`);
  let failed = false;
  try {
    await step(fed, '1. In the provider cluster (cluster2), export port 9080 of Service myreviews, only the pods labelled version=v2, under the name "reviews".\n   meshfed deploys a federation gateway, creates a federation CA and a certificate for the gateway, and routes the export host to reviews v2; nobody is admitted yet.',
      ['export', '--context', 'cluster2', '-n', 'bookinfo', '--service', 'myreviews', '--port', '9080', '--subset', 'version=v2', '--name', 'reviews']);
    await step(fed, '2. In the consumer cluster (cluster1), import it as "myreviews" in namespace default.\n   With access to both clusters, meshfed admits cluster1 on cluster2 (signs its egress gateway\'s certificate; the key never leaves cluster1) and sets up cluster1\'s side.',
      ['import', '--context', 'cluster1', '-n', 'default', '--from', 'cluster2', '--export', 'bookinfo/reviews', '--name', 'myreviews']);
    await step(fed, '3. Run the same import again: nothing changes, no object is written.',
      ['import', '--context', 'cluster1', '-n', 'default', '--from', 'cluster2', '--export', 'bookinfo/reviews', '--name', 'myreviews']);
    await step(fed, '4. What each cluster now exports and imports:', ['status', '--context', 'cluster2']);
    await meshfed(fed.kubeconfig, ['status', '--context', 'cluster1']).then((code) => { if (code !== 0) throw new Error('status failed'); });

    await step(fed, '5. Verify both sides and send a request through the federation with a short-lived probe pod:',
      ['verify', '--context', 'cluster1', '-n', 'default', '--name', 'myreviews', '--from', 'cluster2', '--path', '/reviews/0']);

    say('Finally, a request from the sleep pod in cluster1 to http://myreviews.default:9080/reviews/0:');
    const call = await fed.curl('cluster1', 'default', 'sleep', ['curl', '-sS', 'http://myreviews.default:9080/reviews/0']);
    if (call.code !== 0) throw new Error(`the request failed: ${call.stderr.trim()}`);
    const pod = /"podname":"([^"]+)"/.exec(call.stdout)?.[1] ?? '?';
    process.stdout.write(`answered by pod ${pod} in cluster2, via:\n${call.trace.map((hop) => `  ${hop}`).join('\n')}\n`);
  } catch (error) {
    failed = true;
    process.stderr.write(`\ndemo failed: ${(error as Error).message}\n`);
  } finally {
    await fed.stop();
  }
  say(failed ? 'The emulated clusters are gone.' : `Done in ${Math.round((Date.now() - started) / 1000)}s; the emulated clusters are gone. Try it by hand with: npm run sandbox`);
  process.exitCode = failed ? 1 : 0;
}

await main();
