/**
 * The upstream Istio CustomResourceDefinitions and the structural-schema validation a kube-apiserver applies to
 * custom resources: what is rejected with 422 Invalid, which fields are unknown (400 with
 * `fieldValidation=Strict`, silently pruned otherwise) and what the stored object looks like after pruning.
 *
 * Messages and field paths follow the apiserver's wording so tests can assert what a user would read, e.g.
 * `spec.servers[0].port.number: Invalid value: "string": spec.servers[0].port.number in body must be of type
 * integer: "string"`.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import YAML from 'yaml';
import type { KubeObject } from './emulator/runtime.js';

/** The Istio releases whose CRD files the tests read (`shared/istio-crds/istio-<release>-crds.yaml`). */
export type CrdRelease = '1.9.0' | '1.18.0' | '1.30.3';

/** Every {@link CrdRelease}, oldest first. */
export const ISTIO_VERSIONS: readonly CrdRelease[] = ['1.9.0', '1.18.0', '1.30.3'];

/**
 * An Istio release a test cluster can run (`1.9.1`, `1.10.0`, …). Behaviour follows the exact release; its CRDs
 * are those of {@link crdReleaseFor}.
 */
export type IstioVersion = `${number}.${number}.${number}`;

/** Compares two `x.y.z` releases: negative when `a` is older. */
export function compareIstioVersions(a: string, b: string): number {
  const pa = a.split('.').map(Number);
  const pb = b.split('.').map(Number);
  for (let i = 0; i < 3; i++) if ((pa[i] ?? 0) !== (pb[i] ?? 0)) return (pa[i] ?? 0) - (pb[i] ?? 0);
  return 0;
}

/**
 * The CRD release that stands for `version`: the newest {@link CrdRelease} not newer than it (the oldest one for
 * releases before 1.9.0). The `v1beta1` schemas meshfed writes did not change between neighbouring releases in a
 * way the tests rely on.
 */
export function crdReleaseFor(version: IstioVersion): CrdRelease {
  let release: CrdRelease = ISTIO_VERSIONS[0]!;
  for (const r of ISTIO_VERSIONS) if (compareIstioVersions(r, version) <= 0) release = r;
  return release;
}

/** One `x-kubernetes-validations` rule (CEL). */
export interface ValidationRule {
  rule: string;
  message?: string;
  messageExpression?: string;
  reason?: string;
  fieldPath?: string;
}

/**
 * An OpenAPI v3 schema as written in a CRD (`spec.versions[].schema.openAPIV3Schema`), with the Kubernetes
 * extensions spelled as in YAML.
 */
export interface JSONSchemaProps {
  type?: 'object' | 'array' | 'string' | 'integer' | 'number' | 'boolean';
  format?: string;
  description?: string;
  properties?: Record<string, JSONSchemaProps>;
  additionalProperties?: JSONSchemaProps | boolean;
  items?: JSONSchemaProps;
  required?: string[];
  enum?: unknown[];
  nullable?: boolean;
  default?: unknown;
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: boolean;
  exclusiveMaximum?: boolean;
  multipleOf?: number;
  minLength?: number;
  maxLength?: number;
  pattern?: string;
  minItems?: number;
  maxItems?: number;
  uniqueItems?: boolean;
  minProperties?: number;
  maxProperties?: number;
  oneOf?: JSONSchemaProps[];
  anyOf?: JSONSchemaProps[];
  allOf?: JSONSchemaProps[];
  not?: JSONSchemaProps;
  'x-kubernetes-preserve-unknown-fields'?: boolean;
  'x-kubernetes-int-or-string'?: boolean;
  'x-kubernetes-embedded-resource'?: boolean;
  'x-kubernetes-list-type'?: string;
  'x-kubernetes-list-map-keys'?: string[];
  'x-kubernetes-map-type'?: string;
  'x-kubernetes-validations'?: ValidationRule[];
  [extension: string]: unknown;
}

/** One reason a value does not match its schema: a `causes[]` entry of a 422 `Status`. */
export interface SchemaCause {
  reason: 'FieldValueRequired' | 'FieldValueInvalid' | 'FieldValueNotSupported' | 'FieldValueTypeInvalid' | 'FieldValueUnknown';
  /** The field path as the apiserver prints it, e.g. `spec.servers[0].port.number`. */
  field: string;
  /** The message without the field prefix, e.g. `Required value`. */
  message: string;
}

/**
 * The directory holding the upstream CRD files (`istio-<version>-crds.yaml`): `$MESHFED_SHARED_DIR/istio-crds`
 * when that variable is set, otherwise `shared/istio-crds` next to the repository.
 */
export function istioCrdsDir(): string {
  const shared = process.env.MESHFED_SHARED_DIR;
  if (shared) return join(shared, 'istio-crds');
  return fileURLToPath(new URL('../../../shared/istio-crds', import.meta.url));
}

/** Where the CRDs that stand for one {@link CrdRelease} come from. */
export interface CrdSource {
  /** `exact`: that release's own CRD file; `istio-api-module`: the Istio API Go module pinned by the oracle. */
  kind: 'exact' | 'istio-api-module';
  file: string;
  /** One line for people, e.g. `Istio CRDs: istio.io/api v1.31… (Go module cache) for every release`. */
  description: string;
}

const OFFLINE_HINT = 'set MESHFED_SHARED_DIR to a folder holding istio-crds/istio-<release>-crds.yaml, or install Go (1.21 or later) so that the module istio.io/api pinned in test/istio/go.mod can be read';

let moduleSource: CrdSource | undefined;

/**
 * The CRD file of the Istio API module (`istio.io/api`, `kubernetes/customresourcedefinitions.gen.yaml`) at the
 * version test/istio/go.mod pins, from Go's module cache: `go mod download` fetches it once and checks it against
 * go.sum. It is Istio's own source of the CRDs that every release installs.
 */
function istioApiModuleSource(): CrdSource {
  if (moduleSource) return moduleSource;
  const oracle = fileURLToPath(new URL('../istio', import.meta.url));
  let out: string;
  try {
    out = execFileSync('go', ['mod', 'download', '-json', 'istio.io/api'], { cwd: oracle, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 300_000 });
  } catch (error) {
    const e = error as NodeJS.ErrnoException & { stderr?: string; stdout?: string };
    const why = e.code === 'ENOENT' ? 'go is not on PATH' : (e.stdout || e.stderr || e.message).trim().split('\n').slice(-3).join(' ');
    throw new Error(`the Istio CRD schemas are not available: no ${istioCrdsDir()} and the module istio.io/api could not be read (${why}); ${OFFLINE_HINT}`);
  }
  const info = JSON.parse(out) as { Version?: string; Dir?: string; Error?: string };
  if (!info.Dir) throw new Error(`the Istio CRD schemas are not available: go mod download istio.io/api: ${info.Error ?? 'no directory'}; ${OFFLINE_HINT}`);
  const file = join(info.Dir, 'kubernetes', 'customresourcedefinitions.gen.yaml');
  if (!existsSync(file)) throw new Error(`the Istio CRD schemas are not available: ${file} is missing; ${OFFLINE_HINT}`);
  moduleSource = {
    kind: 'istio-api-module',
    file,
    description: `Istio CRDs: istio.io/api ${info.Version} (the Istio API module test/istio/go.mod pins) for every release, as ${istioCrdsDir()} is missing; unknown and invalid fields are rejected, fields newer than the emulated release are not`,
  };
  return moduleSource;
}

/**
 * Where the CRDs of `release` come from: its exact upstream file in {@link istioCrdsDir} when present (the tests'
 * source), otherwise the Istio API module's CRDs, which stand for every release (a fresh clone with nothing beside
 * it: the sandbox and the demo still validate every Istio object strictly against Istio's own schemas).
 */
export function istioCrdSource(release: CrdRelease): CrdSource {
  const exact = join(istioCrdsDir(), `istio-${release}-crds.yaml`);
  if (existsSync(exact)) return { kind: 'exact', file: exact, description: `Istio CRDs: ${exact}` };
  return istioApiModuleSource();
}

const crdCache = new Map<CrdRelease, KubeObject[]>();

/**
 * The CustomResourceDefinitions of one Istio release, parsed and cached. Releases that ship
 * `apiextensions.k8s.io/v1beta1` CRDs (1.9.0) are converted to `apiextensions.k8s.io/v1` as a current API
 * server stores them: the top-level `validation`, `subresources` and `additionalPrinterColumns` move into every
 * version. Callers get fresh copies.
 */
export function loadIstioCrds(istio: IstioVersion): KubeObject[] {
  const version = crdReleaseFor(istio);
  let crds = crdCache.get(version);
  if (!crds) {
    crds = parseCrdFile(istioCrdSource(version).file).map(crdToV1);
    crdCache.set(version, crds);
  }
  return structuredClone(crds);
}

/** What reading CRD files has cost this process so far (see {@link parseCrdFile}). */
export interface CrdFileWork {
  /** CRD files parsed from their YAML. */
  parsed: number;
  /** CRD files whose parse was read back from the JSON kept in the temporary directory. */
  readBack: number;
}

const crdFileWork: CrdFileWork = { parsed: 0, readBack: 0 };

/** The CRD files this process has parsed or read back so far (the counts only grow). */
export function crdFileWorkSoFar(): CrdFileWork {
  return { ...crdFileWork };
}

/** Where {@link parseCrdFile} keeps the parse of a CRD file whose text is `text`. */
export function keptCrdParsePath(text: string): string {
  const digest = createHash('sha256').update(text).digest('hex');
  // One file per user: a file another user left is not taken.
  return join(tmpdir(), `meshfed-test-crds-${digest}-${process.getuid?.() ?? 'user'}.json`);
}

/**
 * The CustomResourceDefinitions a YAML file holds. Parsing the YAML (0.1–0.9 MB: 0.25–0.35 s of CPU per file on
 * a 2-core development machine, against about a millisecond to read the JSON back) would cost every process that
 * starts a cluster with Istio, so the parse is kept as JSON in the temporary directory ({@link keptCrdParsePath}),
 * named after the SHA-256 of the file's text: a changed file is parsed again, and what is read back is the parse of
 * those bytes.
 */
export function parseCrdFile(file: string): KubeObject[] {
  const text = readFileSync(file, 'utf8');
  const kept = keptCrdParsePath(text);
  try {
    const crds = JSON.parse(readFileSync(kept, 'utf8')) as KubeObject[];
    crdFileWork.readBack++;
    return crds;
  } catch {
    // Not kept yet (or cut short): parse it.
  }
  crdFileWork.parsed++;
  const crds = YAML.parseAllDocuments(text)
    .map((doc) => doc.toJS() as KubeObject | null)
    .filter((obj): obj is KubeObject => obj?.kind === 'CustomResourceDefinition');
  try {
    // Written whole, then renamed: a process reading at the same time sees the whole file or none.
    const partial = `${kept}.${process.pid}`;
    writeFileSync(partial, JSON.stringify(crds), { mode: 0o600 });
    renameSync(partial, kept);
  } catch {
    // Not kept: the next process parses the file too.
  }
  return crds;
}

/** Converts an apiextensions.k8s.io/v1beta1 CRD to its v1 form; v1 CRDs are returned unchanged. */
export function crdToV1(crd: KubeObject): KubeObject {
  if (crd.apiVersion === 'apiextensions.k8s.io/v1') return crd;
  const spec = { ...(crd.spec as Record<string, unknown>) };
  const validation = spec.validation as { openAPIV3Schema?: JSONSchemaProps } | undefined;
  const subresources = spec.subresources;
  const columns = (spec.additionalPrinterColumns as Array<Record<string, unknown>> | undefined)?.map(
    ({ JSONPath, ...rest }) => ({ ...rest, jsonPath: JSONPath }),
  );
  const versions = (spec.versions as Array<Record<string, unknown>> | undefined) ??
    [{ name: spec.version as string, served: true, storage: true }];
  spec.versions = versions.map((v) => {
    const out: Record<string, unknown> = { name: v.name, served: v.served ?? true, storage: v.storage ?? false };
    const schema = (v.schema as { openAPIV3Schema?: JSONSchemaProps } | undefined) ?? validation;
    if (schema) out.schema = { openAPIV3Schema: structuredClone(schema.openAPIV3Schema) };
    const sub = v.subresources ?? subresources;
    if (sub) out.subresources = structuredClone(sub);
    const cols = (v.additionalPrinterColumns as Array<Record<string, unknown>> | undefined)?.map(
      ({ JSONPath, ...rest }) => ({ ...rest, jsonPath: JSONPath }),
    ) ?? columns;
    if (cols) out.additionalPrinterColumns = structuredClone(cols);
    return out;
  });
  delete spec.validation;
  delete spec.subresources;
  delete spec.additionalPrinterColumns;
  delete spec.version;
  // v1 has no per-CRD switch: unknown fields are always pruned unless a schema says otherwise.
  delete spec.preserveUnknownFields;
  return { ...crd, apiVersion: 'apiextensions.k8s.io/v1', spec };
}

/**
 * The `openAPIV3Schema` that validates `kind` objects of `apiVersion` (e.g. `networking.istio.io/v1beta1`) in
 * one Istio release, or undefined when that release does not serve the kind in that version.
 */
export function crdSchema(istio: IstioVersion, apiVersion: string, kind: string): JSONSchemaProps | undefined {
  const version = crdReleaseFor(istio);
  const [group, ver] = apiVersion.includes('/') ? apiVersion.split('/') : ['', apiVersion];
  const crd = (crdCache.get(version) ?? (loadIstioCrds(version), crdCache.get(version)))?.find((c) => {
    const spec = c.spec as { group: string; names: { kind: string } };
    return spec.group === group && spec.names.kind === kind;
  });
  const served = (crd?.spec as { versions: Array<{ name: string; served: boolean; schema?: { openAPIV3Schema: JSONSchemaProps } }> } | undefined)
    ?.versions.find((v) => v.name === ver && v.served);
  return served?.schema ? structuredClone(served.schema.openAPIV3Schema) : undefined;
}

/* ---------------------------------------------------------------------------------------------------------- */

/** Metadata fields every custom resource has, whatever its schema says. */
const ROOT_FIELDS = new Set(['apiVersion', 'kind', 'metadata']);

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** The JSON type name the apiserver prints for a value ("string", "integer", "number", "object", ...). */
function jsonTypeName(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  if (typeof v === 'number') return Number.isInteger(v) ? 'integer' : 'number';
  return typeof v;
}

/** Go's %q for scalars, %v for the rest: how field errors print values. */
function quote(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v);
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  return JSON.stringify(jsonTypeName(v));
}

function child(path: string, key: string): string {
  return path ? `${path}.${key}` : key;
}

function matchesType(value: unknown, schema: JSONSchemaProps): boolean {
  if (schema['x-kubernetes-int-or-string']) return typeof value === 'string' || Number.isInteger(value);
  switch (schema.type) {
    case undefined: return true;
    case 'object': return isObject(value);
    case 'array': return Array.isArray(value);
    case 'string': return typeof value === 'string';
    case 'integer': return typeof value === 'number' && Number.isInteger(value);
    case 'number': return typeof value === 'number';
    case 'boolean': return typeof value === 'boolean';
  }
}

function deepEqual(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

interface Sink {
  causes: SchemaCause[];
  /** Undefined inside oneOf/anyOf/not branches: those never decide what is unknown. */
  unknown?: string[];
}

/**
 * Validates a custom resource (the whole object: apiVersion, kind, metadata, spec, status) against its CRD's
 * `openAPIV3Schema`, as the apiserver does after decoding: types, enums, `required`, string/number/array/object
 * bounds, `pattern`, `oneOf`/`anyOf`/`allOf`/`not`, `nullable`, `x-kubernetes-int-or-string`,
 * `x-kubernetes-preserve-unknown-fields`, `additionalProperties`, and the common CEL rules of Istio's CRDs
 * (port ranges, minimum durations, no wildcards, mutually exclusive fields; other CEL rules are not evaluated).
 * `null` for a non-nullable field counts as absent, because the server drops such nulls before validating.
 *
 * @returns the 422 causes, and the unknown field paths (`.spec.servers[0].tlss`) that a server rejects with
 *   `fieldValidation=Strict` and prunes otherwise.
 */
export function validateAgainstSchema(value: unknown, schema: JSONSchemaProps): { causes: SchemaCause[]; unknownFields: string[] } {
  const sink: Sink = { causes: [], unknown: [] };
  validate(value, schema, '', sink, true);
  return { causes: sink.causes, unknownFields: sink.unknown ?? [] };
}

function validate(value: unknown, schema: JSONSchemaProps, path: string, sink: Sink, root = false): void {
  const shown = path || '<root>';
  if (value === null || value === undefined) return;
  if (!matchesType(value, schema)) {
    const expected = schema['x-kubernetes-int-or-string'] ? 'integer,string' : schema.type;
    sink.causes.push({
      reason: 'FieldValueTypeInvalid',
      field: shown,
      message: `Invalid value: "${jsonTypeName(value)}": ${shown} in body must be of type ${expected}: "${jsonTypeName(value)}"`,
    });
    return;
  }
  if (schema.enum && !schema.enum.some((e) => deepEqual(e, value))) {
    sink.causes.push({
      reason: 'FieldValueNotSupported',
      field: shown,
      message: `Unsupported value: ${quote(value)}: supported values: ${schema.enum.map(quote).join(', ')}`,
    });
  }
  const invalid = (message: string): void => {
    sink.causes.push({ reason: 'FieldValueInvalid', field: shown, message: `Invalid value: ${quote(value)}: ${shown} in body ${message}` });
  };
  if (typeof value === 'string') {
    if (schema.maxLength !== undefined && [...value].length > schema.maxLength) invalid(`should be at most ${schema.maxLength} chars long`);
    if (schema.minLength !== undefined && [...value].length < schema.minLength) invalid(`should be at least ${schema.minLength} chars long`);
    if (schema.pattern !== undefined && !safeRegExp(schema.pattern)?.test(value)) invalid(`should match '${schema.pattern}'`);
  }
  if (typeof value === 'number') {
    if (schema.maximum !== undefined && (schema.exclusiveMaximum ? value >= schema.maximum : value > schema.maximum)) {
      invalid(`should be less than ${schema.exclusiveMaximum ? '' : 'or equal to '}${schema.maximum}`);
    }
    if (schema.minimum !== undefined && (schema.exclusiveMinimum ? value <= schema.minimum : value < schema.minimum)) {
      invalid(`should be greater than ${schema.exclusiveMinimum ? '' : 'or equal to '}${schema.minimum}`);
    }
    if (schema.multipleOf !== undefined && value % schema.multipleOf !== 0) invalid(`should be a multiple of ${schema.multipleOf}`);
  }
  if (Array.isArray(value)) {
    if (schema.maxItems !== undefined && value.length > schema.maxItems) invalid(`should have at most ${schema.maxItems} items`);
    if (schema.minItems !== undefined && value.length < schema.minItems) invalid(`should have at least ${schema.minItems} items`);
    if (schema.uniqueItems && new Set(value.map((v) => JSON.stringify(v))).size !== value.length) invalid('shouldn\'t contain duplicates');
    if (schema.items) value.forEach((item, i) => validate(item, schema.items as JSONSchemaProps, `${path}[${i}]`, sink));
  }
  if (isObject(value)) validateObject(value, schema, path, sink, root);
  validateCompositions(value, schema, shown, sink);
  validateRules(value, schema, shown, sink);
}

function validateObject(value: Record<string, unknown>, schema: JSONSchemaProps, path: string, sink: Sink, root: boolean): void {
  const props = schema.properties ?? {};
  const embedded = root || schema['x-kubernetes-embedded-resource'] === true;
  for (const key of schema.required ?? []) {
    const present = key in value && (value[key] !== null || schema.properties?.[key]?.nullable);
    if (!present) sink.causes.push({ reason: 'FieldValueRequired', field: child(path, key), message: 'Required value' });
  }
  const count = Object.keys(value).length;
  const shown = path || '<root>';
  if (schema.maxProperties !== undefined && count > schema.maxProperties) {
    sink.causes.push({ reason: 'FieldValueInvalid', field: shown, message: `Too many: ${count}: must have at most ${schema.maxProperties} items` });
  }
  if (schema.minProperties !== undefined && count < schema.minProperties) {
    sink.causes.push({ reason: 'FieldValueInvalid', field: shown, message: `Invalid value: ${count}: ${shown} in body should have at least ${schema.minProperties} properties` });
  }
  for (const [key, v] of Object.entries(value)) {
    const p = props[key];
    if (p) {
      validate(v, p, child(path, key), sink);
    } else if (embedded && ROOT_FIELDS.has(key)) {
      continue;
    } else if (isObject(schema.additionalProperties)) {
      validate(v, schema.additionalProperties, child(path, key), sink);
    } else if (schema.additionalProperties === true || schema['x-kubernetes-preserve-unknown-fields']) {
      continue;
    } else if (schema.type === 'object' || schema.properties) {
      sink.unknown?.push(`.${child(path, key)}`);
    }
  }
}

function branchCauses(value: unknown, branch: JSONSchemaProps, path: string): SchemaCause[] {
  const sink: Sink = { causes: [] };
  validate(value, branch, path === '<root>' ? '' : path, sink);
  return sink.causes;
}

function validateCompositions(value: unknown, schema: JSONSchemaProps, shown: string, sink: Sink): void {
  const invalid = (message: string): void => {
    sink.causes.push({ reason: 'FieldValueInvalid', field: shown, message: `Invalid value: "${jsonTypeName(value)}": ${shown} in body ${message}` });
  };
  if (schema.oneOf) {
    const passing = schema.oneOf.filter((b) => branchCauses(value, b, shown).length === 0).length;
    if (passing !== 1) invalid('must validate one and only one schema (oneOf)');
  }
  if (schema.anyOf && !schema.anyOf.some((b) => branchCauses(value, b, shown).length === 0)) {
    invalid('must validate at least one schema (anyOf)');
  }
  for (const b of schema.allOf ?? []) sink.causes.push(...branchCauses(value, b, shown));
  if (schema.not && branchCauses(value, schema.not, shown).length === 0) invalid('must not validate the schema (not)');
}

const regexCache = new Map<string, RegExp | undefined>();
function safeRegExp(pattern: string): RegExp | undefined {
  if (!regexCache.has(pattern)) {
    try {
      regexCache.set(pattern, new RegExp(pattern, 'u'));
    } catch {
      regexCache.set(pattern, undefined);
    }
  }
  return regexCache.get(pattern);
}

/** Parses a protobuf/Go duration ("1.5s", "100ms", "1h2m") into milliseconds. */
function durationMs(text: string): number | undefined {
  const units: Record<string, number> = { ns: 1e-6, us: 1e-3, 'µs': 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
  const re = /(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)/gy;
  let total = 0;
  let consumed = 0;
  for (const m of text.matchAll(re)) {
    total += Number(m[1]) * (units[m[2] as string] as number);
    consumed += m[0].length;
  }
  return consumed === text.length && consumed > 0 ? total : undefined;
}

/**
 * The CEL rules that Istio's CRDs use most, recognised by their text. A rule that is not recognised is not
 * evaluated (passes): the emulator never rejects what a real server might accept.
 */
const CEL_RULES: Array<{ pattern: RegExp; check: (self: unknown, m: RegExpMatchArray) => boolean | undefined }> = [
  { pattern: /^0 < self && self <= 65535$/, check: (self) => typeof self === 'number' && self > 0 && self <= 65535 },
  {
    pattern: /^duration\(self\) >= duration\('(\w+)'\)$/,
    check: (self, m) => {
      if (typeof self !== 'string') return undefined;
      const have = durationMs(self);
      const min = durationMs(m[1] as string);
      return have === undefined || min === undefined ? false : have >= min;
    },
  },
  { pattern: /^!self\.contains\("\*"\)$/, check: (self) => typeof self === 'string' && !self.includes('*') },
  { pattern: /^self\.all\(key, !key\.contains\("\*"\)\)$/, check: (self) => isObject(self) && Object.keys(self).every((k) => !k.includes('*')) },
  { pattern: /^self\.size\(\) == 0$/, check: (self) => (typeof self === 'string' || Array.isArray(self) ? self.length === 0 : undefined) },
  { pattern: /^self != "\*"$/, check: (self) => self !== '*' },
  {
    pattern: /^\(has\(self\.(\w+)\) \? 1 : 0\) \+ \(has\(self\.(\w+)\) \? 1 : 0\)\s*<= 1$/,
    check: (self, m) => (isObject(self) ? Number(m[1] as string in self) + Number(m[2] as string in self) <= 1 : undefined),
  },
  { pattern: /^has\(self\.(\w+)\) \|\| has\(self\.(\w+)\)$/, check: (self, m) => (isObject(self) ? (m[1] as string) in self || (m[2] as string) in self : undefined) },
];

function validateRules(value: unknown, schema: JSONSchemaProps, shown: string, sink: Sink): void {
  for (const rule of schema['x-kubernetes-validations'] ?? []) {
    const text = rule.rule.replace(/\s+/g, ' ').trim();
    for (const known of CEL_RULES) {
      const m = text.match(known.pattern);
      if (!m) continue;
      if (known.check(value, m) === false) {
        sink.causes.push({
          reason: 'FieldValueInvalid',
          field: shown,
          message: `Invalid value: "${jsonTypeName(value)}": ${rule.message ?? `failed rule: ${rule.rule}`}`,
        });
      }
      break;
    }
  }
}

/**
 * A copy of `value` without the fields its schema does not declare, and without `null`s of non-nullable
 * fields: what a real server stores with `fieldValidation=Ignore` or `Warn`. `apiVersion`, `kind` and
 * `metadata` at the root are kept.
 */
export function pruneUnknownFields<T>(value: T, schema: JSONSchemaProps): T {
  return prune(structuredClone(value), schema, true) as T;
}

function prune(value: unknown, schema: JSONSchemaProps, root = false): unknown {
  if (Array.isArray(value)) {
    if (!schema.items) return value;
    return value.map((item) => prune(item, schema.items as JSONSchemaProps));
  }
  if (!isObject(value)) return value;
  const embedded = root || schema['x-kubernetes-embedded-resource'] === true;
  const props = schema.properties ?? {};
  const preserve = schema['x-kubernetes-preserve-unknown-fields'] === true || schema.additionalProperties === true;
  const declaresFields = schema.type === 'object' || schema.properties !== undefined;
  for (const key of Object.keys(value)) {
    const v = value[key];
    const p = props[key];
    const sub = p ?? (isObject(schema.additionalProperties) ? schema.additionalProperties : undefined);
    if (sub) {
      if (v === null && !sub.nullable) delete value[key];
      else value[key] = prune(v, sub);
    } else if (embedded && ROOT_FIELDS.has(key)) {
      continue;
    } else if (!preserve && declaresFields) {
      delete value[key];
    }
  }
  return value;
}
