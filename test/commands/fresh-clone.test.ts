/**
 * A fresh clone with nothing beside it: no `shared/istio-crds` next to the repository and no MESHFED_SHARED_DIR.
 * The demo runs green there, and the emulator still validates Istio objects strictly (from the Istio API module's
 * CRDs), so an unknown or mistyped field is refused as a real API server refuses it.
 */
import { spawn } from 'node:child_process';
import { cpSync, mkdtempSync, mkdirSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import test from 'ava';
import { repoRoot } from '../support/cli.js';

const empty = mkdtempSync(join(tmpdir(), 'meshfed-no-shared-'));
// Set before any CRD is read: this process's emulator must not find the shared CRDs either.
process.env.MESHFED_SHARED_DIR = empty;
const { istioCrdSource } = await import('../support/crd-schema.js');
const { startWorld } = await import('../support/emulator/index.js');
const { apiRequest } = await import('../support/emulator/request.js');

test.after.always(() => rmSync(empty, { recursive: true, force: true }));

/** Copies the working tree (built dist/ included, node_modules linked) into an empty folder of its own. */
function freshCopy(): string {
  const parent = mkdtempSync(join(tmpdir(), 'meshfed-clone-'));
  const copy = join(parent, 'kubectl-meshfed');
  mkdirSync(copy);
  cpSync(repoRoot, copy, {
    recursive: true,
    filter: (source) => {
      const path = relative(repoRoot, source);
      return !['node_modules', '.git', join('test', 'istio', 'bin')].some((skip) => path === skip || path.startsWith(`${skip}/`));
    },
  });
  symlinkSync(join(repoRoot, 'node_modules'), join(copy, 'node_modules'));
  return parent;
}

test('the demo runs green in a copy of the repository with nothing beside it', async (t) => {
  const parent = freshCopy();
  t.teardown(() => rmSync(parent, { recursive: true, force: true }));
  const copy = join(parent, 'kubectl-meshfed');
  const env: NodeJS.ProcessEnv = { ...process.env, NO_COLOR: '1' };
  delete env.MESHFED_SHARED_DIR;
  delete env.KUBECONFIG;
  const result = await new Promise<{ code: number | null; output: string }>((resolve, reject) => {
    const child = spawn(join(copy, 'node_modules', '.bin', 'tsx'), ['scripts/demo.ts'], { cwd: copy, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
    const timer = setTimeout(() => child.kill('SIGKILL'), 110_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, output });
    });
  });
  t.is(result.code, 0, result.output);
  t.regex(result.output, /Istio CRDs: istio\.io\/api v\S+ \(the Istio API module test\/istio\/go\.mod pins\) for every release/);
  t.regex(result.output, /verify passed/);
  t.regex(result.output, /answered by pod reviews-v2-/);
});

test('without the shared CRDs, Istio objects are still validated strictly: unknown fields are refused, mistyped ones invalid', async (t) => {
  t.is(istioCrdSource('1.18.0').kind, 'istio-api-module');
  const world = await startWorld({ clusters: [{ name: 'alone' }], istio: '1.18.0', seed: 'none' });
  t.teardown(() => world.stop());
  const cluster = world.clusters[0]!;
  const path = '/apis/networking.istio.io/v1beta1/namespaces/default/virtualservices/reviews?fieldManager=meshfed&fieldValidation=Strict';
  const vs = (route: Record<string, unknown>) => ({
    apiVersion: 'networking.istio.io/v1beta1',
    kind: 'VirtualService',
    metadata: { name: 'reviews', namespace: 'default' },
    spec: { hosts: ['reviews'], http: [{ route: [{ destination: { host: 'reviews' } }], ...route }] },
  });
  const unknown = await apiRequest(cluster, { method: 'PATCH', path, contentType: 'application/apply-patch+yaml', body: JSON.stringify(vs({ timeoutt: '5s' })) });
  t.is(unknown.status, 400);
  t.regex((unknown.body as { message: string }).message, /strict decoding error: unknown field "spec\.http\[0\]\.timeoutt"/);
  const mistyped = await apiRequest(cluster, { method: 'PATCH', path, contentType: 'application/apply-patch+yaml', body: JSON.stringify(vs({ timeout: 5 })) });
  t.is(mistyped.status, 422);
  t.regex((mistyped.body as { message: string }).message, /spec\.http\[0\]\.timeout in body must be of type string/);
  const valid = await apiRequest(cluster, { method: 'PATCH', path, contentType: 'application/apply-patch+yaml', body: JSON.stringify(vs({ timeout: '5s' })) });
  t.is(valid.status, 201, JSON.stringify(valid.body));
});
