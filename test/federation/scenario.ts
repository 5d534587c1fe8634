/**
 * Runs a federation scenario from `test/fixtures/<name>/input.yaml` through the whole exchange a user goes
 * through (export, import request, admission, bundle, import) and normalises the results for golden files.
 */
import { readFileSync, readdirSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import YAML from 'yaml';
import { inspectCertificate } from '../../src/pki/index.js';
import {
  admitImportRequest, bundleCredentials, createImportRequest, objectKey, parseExportBundle, parseImportRequest,
  pendingRequestOf, planExport, planImport, serializeDocument,
  type ClusterPlan, type ClusterSnapshot, type ConsumerSnapshot, type ExportBundle, type ExportPlan, type ExportSpec,
  type ImportPlan, type ImportSpec, type KubeObject, type ProviderSnapshot,
} from '../../src/federation/index.js';

/** Where the golden scenarios live. */
export const FIXTURES = fileURLToPath(new URL('../fixtures/', import.meta.url));

/** A scenario's input file. */
export interface ScenarioInput {
  description: string;
  now: string;
  provider: ProviderSnapshot;
  consumer: ConsumerSnapshot;
  export: ExportSpec;
  import: ImportSpec & { serviceAccounts?: string[] };
}

/** Every plan and document of a scenario, unnormalised. */
export interface ScenarioResult {
  input: ScenarioInput;
  exportPlan: ExportPlan;
  requestPlan: ClusterPlan;
  admission: ExportPlan;
  bundle: ExportBundle;
  importPlan: ImportPlan;
  /** Provider objects after export and admission were applied. */
  providerObjects: KubeObject[];
  /** Consumer objects after the request and the import were applied. */
  consumerObjects: KubeObject[];
}

/** Names of the scenarios (directories with an input.yaml). */
export function scenarioNames(): string[] {
  return readdirSync(FIXTURES).filter((d) => existsSync(join(FIXTURES, d, 'input.yaml'))).sort();
}

/** Applies a plan to a snapshot as the commands would: upsert objects, delete removed ones. */
export function applyPlan<T extends ClusterSnapshot>(snapshot: T, plan: ClusterPlan): T {
  const byKey = new Map(snapshot.existing.map((o) => [objectKey(o), o]));
  for (const r of plan.remove) byKey.delete(`${r.kind}/${r.namespace ?? ''}/${r.name}`);
  for (const o of plan.objects) byKey.set(objectKey(o), structuredClone(o));
  return { ...snapshot, existing: [...byKey.values()] };
}

/** A scenario's input, as read from `test/fixtures/<name>/input.yaml`. */
export function scenarioInput(name: string): ScenarioInput {
  return YAML.parse(readFileSync(join(FIXTURES, name, 'input.yaml'), 'utf8')) as ScenarioInput;
}

/** Runs one scenario. */
export function runScenario(name: string): ScenarioResult {
  return runScenarioInput(scenarioInput(name));
}

/** Runs a scenario from its input (a fixture's, or one a test derived from it). */
export function runScenarioInput(input: ScenarioInput): ScenarioResult {
  const now = new Date(input.now);
  let provider: ProviderSnapshot = { ...input.provider, existing: input.provider.existing ?? [] };
  let consumer: ConsumerSnapshot = { ...input.consumer, existing: input.consumer.existing ?? [] };

  const exportPlan = planExport(provider, input.export, { now });
  provider = applyPlan(provider, exportPlan);

  const ref = { providerClusterId: exportPlan.record.providerClusterId, namespace: exportPlan.record.namespace, exportName: exportPlan.record.exportName };
  const { request, plan: requestPlan } = createImportRequest(consumer, {
    consumerClusterId: input.import.consumerClusterId, namespace: input.import.namespace,
    ...(input.import.serviceAccounts ? { serviceAccounts: input.import.serviceAccounts } : {}), export: ref,
  }, { now });
  consumer = applyPlan(consumer, requestPlan);

  const received = parseImportRequest(serializeDocument(request), { now });
  const { plan: admission, bundle } = admitImportRequest(provider, received, { now });
  provider = applyPlan(provider, admission);

  const pending = pendingRequestOf(consumer, ref);
  if (!pending) throw new Error('no pending request after createImportRequest');
  const parsed = parseExportBundle(serializeDocument(bundle), { now, expect: pending });
  const importPlan = planImport(consumer, {
    endpoint: parsed.spec.endpoint,
    ...(parsed.spec.endpoint.mode === 'boundary' ? { credentials: bundleCredentials(parsed, pending.privateKeyPem) } : {}),
  }, input.import, { now });
  consumer = applyPlan(consumer, importPlan);
  return {
    input, exportPlan, requestPlan, admission, bundle, importPlan,
    providerObjects: provider.existing, consumerObjects: consumer.existing,
  };
}

/**
 * The starting point of the exchange-document tests: the seed blog scenario run once, its clock, the provider as it
 * stands after the export and admission, a consumer that has nothing yet, and the export it asks for.
 */
export function seedBlogExchange() {
  const base = runScenario('seed-blog-boundary-http');
  return {
    base,
    now: new Date(base.input.now),
    provider: { ...base.input.provider, existing: base.providerObjects } as ProviderSnapshot,
    consumerStart: { ...base.input.consumer, existing: [] } as ConsumerSnapshot,
    ref: { providerClusterId: 'cluster2', namespace: 'bookinfo', exportName: 'myreviews' },
  };
}

/** A PEM (certificate or key) as a stable description, so goldens do not change with random keys. */
export function describePem(text: string, now: Date): string {
  const blocks = text.match(/-----BEGIN ([A-Z ]+)-----[\s\S]*?-----END \1-----/g) ?? [];
  if (blocks.length === 0) return text;
  return blocks.map((block) => {
    if (/PRIVATE KEY/.test(block)) return '<private key>';
    if (/PUBLIC KEY/.test(block)) return '<public key>';
    if (/CERTIFICATE REQUEST/.test(block)) return '<certificate request>';
    const info = inspectCertificate(block, now);
    const sans = [...info.dnsNames, ...info.uris].join(',');
    const issuer = /CN=([^,]+)/.exec(info.issuer)?.[1] ?? info.issuer;
    const days = Math.round((info.notAfter.getTime() - info.notBefore.getTime()) / 86_400_000);
    return `<certificate CN=${info.commonName ?? ''}${sans ? ` SANs=${sans}` : ''} issuer=${issuer}${info.isCA ? ' CA' : ''} days=${days}>`;
  }).join(' + ');
}

/** Replaces PEM data anywhere in a value (Secret data decoded first) by descriptions; masks signatures and nonces. */
export function normalise(value: unknown, now: Date): unknown {
  const walk = (v: unknown, key?: string, parentKind?: string): unknown => {
    if (typeof v === 'string') {
      if (key === 'signature') return '<signature>';
      if (key === 'nonce' || key === 'meshfed.io/request-nonce') return '<nonce>';
      if (v.includes('-----BEGIN')) return describePem(v, now);
      return v;
    }
    if (Array.isArray(v)) return v.map((x) => walk(x, undefined, parentKind));
    if (v && typeof v === 'object') {
      const o = v as Record<string, unknown>;
      const kind = typeof o.kind === 'string' ? o.kind : parentKind;
      const out: Record<string, unknown> = {};
      for (const [k, x] of Object.entries(o)) {
        if (k === 'data' && kind === 'Secret' && x && typeof x === 'object') {
          out[k] = Object.fromEntries(Object.entries(x as Record<string, string>).map(([dk, dv]) => [dk, describePem(Buffer.from(dv, 'base64').toString('utf8'), now)]));
        } else if (k === 'data' && kind === 'ConfigMap' && x && typeof x === 'object') {
          // Records are JSON inside a ConfigMap: compare them as data (certificates as what they say).
          out[k] = Object.fromEntries(Object.entries(x as Record<string, string>).map(([dk, dv]) => [dk, dv.includes('-----BEGIN') ? walk(dv, dk, kind) : walk(JSON.parse(dv), undefined, undefined)]));
        } else {
          out[k] = walk(x, k, kind);
        }
      }
      return out;
    }
    return v;
  };
  return walk(value, undefined, undefined);
}

/** The golden view of a plan: what a user would review. */
export function goldenPlan(plan: ClusterPlan, now: Date): Record<string, unknown> {
  return normalise({
    clusterId: plan.clusterId,
    warnings: plan.warnings,
    secretsWithPrivateKeys: plan.secretsWithPrivateKeys,
    remove: plan.remove,
    prune: plan.prune,
    ...(plan.overlay ? { overlay: plan.overlay } : {}),
    objects: plan.objects,
  }, now) as Record<string, unknown>;
}
