/**
 * Output you can pipe: a two-cluster command never writes both clusters' objects into one stream (`--only`,
 * `--output-dir`, else a usage error naming them), stdout carries one kind of document, every `-o json|yaml`
 * document has `apiVersion` and `kind`, and `-o name` prints kubectl's `kind.group/name` lines.
 */
import test from 'ava';
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import YAML from 'yaml';
import { startFederationWorld, type FederationWorld } from '../support/federation.js';

let fed: FederationWorld;
const dir = mkdtempSync(join(tmpdir(), 'meshfed-output-'));
const IMPORT = ['import', '--context', 'cluster1', '-n', 'default', '--from', 'cluster2', '--export', 'bookinfo/reviews', '--name', 'myreviews', '--dry-run'];

interface Doc { apiVersion: string; kind: string; metadata: { name: string; namespace?: string } }

/**
 * The documents of a stream. Each dry run of an import issues a new client certificate, which the ConfigMap that
 * publishes it (`<Secret>.crt`) shows (the Secret's data is left out): its values are compared as the keys they are.
 */
function docs(text: string): Doc[] {
  return YAML.parseAllDocuments(text).map((d) => d.toJS() as Doc & { data?: Record<string, string> }).filter(Boolean)
    .map((d) => (d.kind === 'ConfigMap' && d.metadata.name.endsWith('.crt') && d.metadata.name !== 'meshfed-federation-ca.crt'
      ? { ...d, data: Object.fromEntries(Object.keys(d.data ?? {}).map((k) => [k, /^-----BEGIN CERTIFICATE-----/.test(d.data![k]!) ? '<certificate>' : d.data![k]!])) }
      : d));
}

test.before(async () => {
  fed = await startFederationWorld({ seed: 'bookinfo', clusters: [{ name: 'cluster1' }, { name: 'cluster2' }] });
  const exported = await fed.run(['export', '--context', 'cluster2', '-n', 'bookinfo', '--service', 'myreviews', '--port', '9080', '--subset', 'version=v2', '--name', 'reviews']);
  if (exported.code !== 0) throw new Error(exported.stderr);
});

test.after.always(async () => {
  await fed?.stop();
});

test.serial('-o yaml of a two-cluster command without --only or --output-dir is refused, naming both flags, and writes nothing', async (t) => {
  const result = await fed.runCounting(IMPORT.filter((a) => a !== '--dry-run').concat(['-o', 'yaml']));
  t.is(result.code, 2, result.stderr);
  t.is(result.stdout, '');
  t.regex(result.stderr, /-o yaml would write the objects of 2 clusters \(provider cluster2, consumer cluster1\) into one stream/);
  t.regex(result.stderr, /--only provider\|consumer/);
  t.regex(result.stderr, /--output-dir DIR/);
  t.deepEqual(result.writes.cluster1, []);
  t.deepEqual(result.writes.cluster2, []);
});

test.serial('--only consumer prints only the consumer cluster\'s objects; --only with a context name selects the same way', async (t) => {
  const consumer = await fed.run([...IMPORT, '-o', 'yaml', '--only', 'consumer']);
  t.is(consumer.code, 0, consumer.stderr);
  const consumerDocs = docs(consumer.stdout);
  t.true(consumerDocs.some((d) => d.kind === 'VirtualService' && d.metadata.name === 'mf-import-myreviews'));
  // The provider's objects (its Gateway and policy for the export) are not in the consumer's stream.
  t.false(consumerDocs.some((d) => d.metadata.name.startsWith('mf-export-')), consumer.stdout);
  t.false(consumer.stdout.includes('# context'));

  const byContext = await fed.run([...IMPORT, '-o', 'yaml', '--only', 'cluster1']);
  t.is(byContext.code, 0, byContext.stderr);
  t.deepEqual(docs(byContext.stdout), consumerDocs);

  const provider = await fed.run([...IMPORT, '-o', 'json', '--only', 'provider']);
  t.is(provider.code, 0, provider.stderr);
  const list = JSON.parse(provider.stdout) as { kind: string; items: Doc[] };
  t.is(list.kind, 'List');
  t.true(list.items.some((d) => d.kind === 'AuthorizationPolicy' && d.metadata.name === 'mf-export-bookinfo-reviews'));
  t.false(list.items.some((d) => d.metadata.name === 'mf-import-myreviews'));
});

test.serial('--output-dir writes one file per context, each applicable with its --context; stdout stays empty', async (t) => {
  const out = join(dir, 'objects');
  const result = await fed.run([...IMPORT, '-o', 'yaml', '--output-dir', out]);
  t.is(result.code, 0, result.stderr);
  t.is(result.stdout, '');
  t.deepEqual(readdirSync(out).sort(), ['cluster1.yaml', 'cluster2.yaml']);
  t.regex(result.stderr, new RegExp(`Wrote the consumer's objects to ${join(out, 'cluster1.yaml').replace(/[/.]/g, '\\$&')}: kubectl --context cluster1 apply -f `));
  const only = await fed.run([...IMPORT, '-o', 'yaml', '--only', 'consumer']);
  t.deepEqual(docs(readFileSync(join(out, 'cluster1.yaml'), 'utf8')), docs(only.stdout));
  t.true(docs(readFileSync(join(out, 'cluster2.yaml'), 'utf8')).some((d) => d.metadata.name === 'mf-export-bookinfo-reviews'));
});

test.serial('-o name prints kind.group/name lines, as kubectl does', async (t) => {
  const result = await fed.run([...IMPORT, '-o', 'name', '--only', 'consumer']);
  t.is(result.code, 0, result.stderr);
  const lines = result.stdout.trimEnd().split('\n');
  t.true(lines.includes('virtualservice.networking.istio.io/mf-import-myreviews'), result.stdout);
  t.true(lines.includes('service/myreviews'), result.stdout);
  for (const line of lines) t.regex(line, /^[a-z]+(\.[a-z0-9.-]+)?\/[a-z0-9.-]+$/);
  const exportNames = await fed.run(['export', '--context', 'cluster2', '-n', 'bookinfo', '--service', 'myreviews', '--port', '9080', '--subset', 'version=v2', '--name', 'reviews', '--dry-run', '-o', 'name']);
  t.is(exportNames.code, 0, exportNames.stderr);
  t.true(exportNames.stdout.split('\n').includes('gateway.networking.istio.io/mf-export-bookinfo-reviews'), exportNames.stdout);
});

test.serial('--only and --output-dir are checked: without -o, naming no cluster of the command, or together', async (t) => {
  const withoutOutput = await fed.run([...IMPORT, '--only', 'consumer']);
  t.is(withoutOutput.code, 2);
  t.regex(withoutOutput.stderr, /--only chooses where -o prints the objects, and -o was not given/);
  const unknown = await fed.run([...IMPORT, '-o', 'yaml', '--only', 'cluster3']);
  t.is(unknown.code, 2);
  t.regex(unknown.stderr, /--only "cluster3" names none of the clusters this command acts on/);
  t.regex(unknown.stderr, /use --only provider\|cluster2\|consumer\|cluster1/);
  const both = await fed.run([...IMPORT, '-o', 'yaml', '--only', 'consumer', '--output-dir', join(dir, 'x')]);
  t.is(both.code, 2);
  t.regex(both.stderr, /--only and --output-dir cannot be combined/);
});

test.serial('stdout carries one kind of document: an exchange file written to - and -o are refused together', async (t) => {
  const admit = await fed.run(['admit', '--context', 'cluster2', '--request', join(dir, 'request.yaml'), '--bundle-out', '-', '-o', 'yaml']);
  t.is(admit.code, 2);
  t.is(admit.stdout, '');
  t.regex(admit.stderr, /--bundle-out - writes the bundle to stdout, so -o yaml cannot print the objects there too/);
  const request = await fed.runCounting(['import', '--context', 'cluster1', '-n', 'default', '--from', 'cluster2', '--export', 'bookinfo/reviews', '--request-out', '-', '-o', 'json']);
  t.is(request.code, 2);
  t.is(request.stdout, '');
  t.regex(request.stderr, /--request-out - writes the import request to stdout/);
  t.deepEqual(request.writes.cluster1, []);
});

test.serial('every -o json|yaml document has apiVersion and kind; status and contexts have -o name', async (t) => {
  const status = JSON.parse((await fed.run(['status', '--context', 'cluster2', '-o', 'json'])).stdout) as Doc;
  t.is(status.apiVersion, 'meshfed.io/v1alpha1');
  t.is(status.kind, 'Status');
  const contexts = YAML.parse((await fed.run(['contexts', '-o', 'yaml'])).stdout) as Doc;
  t.is(contexts.apiVersion, 'meshfed.io/v1alpha1');
  t.is(contexts.kind, 'ContextList');
  const names = await fed.run(['status', '--context', 'cluster2', '-o', 'name']);
  t.is(names.code, 0, names.stderr);
  t.is(names.stdout, 'export.meshfed.io/bookinfo/reviews\n');
  const contextNames = await fed.run(['contexts', '-o', 'name']);
  t.is(contextNames.stdout, 'cluster1\ncluster2\n');
});
