/** Label selectors (equality- and set-based) and the field selectors the emulator supports. */
import { badRequest } from './errors.js';
import type { KubeObject } from './runtime.js';

/** A compiled selector: true when an object matches. */
export type Matcher = (obj: KubeObject) => boolean;

type Requirement = (labels: Record<string, string>) => boolean;

/** Splits on commas that are not inside parentheses (`a in (x,y),b`). */
function splitTerms(text: string): string[] {
  const terms: string[] = [];
  let depth = 0;
  let current = '';
  for (const ch of text) {
    if (ch === '(') depth++;
    if (ch === ')') depth--;
    if (ch === ',' && depth === 0) {
      terms.push(current);
      current = '';
    } else {
      current += ch;
    }
  }
  if (current.trim() !== '') terms.push(current);
  return terms.map((t) => t.trim()).filter((t) => t !== '');
}

function parseRequirement(term: string): Requirement {
  let m = /^([\w./-]+)\s+(in|notin)\s+\(([^)]*)\)$/.exec(term);
  if (m) {
    const key = m[1] as string;
    const values = new Set((m[3] as string).split(',').map((v) => v.trim()).filter((v) => v !== ''));
    return m[2] === 'in' ? (l) => key in l && values.has(l[key] as string) : (l) => !(key in l) || !values.has(l[key] as string);
  }
  m = /^!\s*([\w./-]+)$/.exec(term);
  if (m) {
    const key = m[1] as string;
    return (l) => !(key in l);
  }
  m = /^([\w./-]+)\s*(==|=|!=)\s*([\w./-]*)$/.exec(term);
  if (m) {
    const [, key, op, value] = m as unknown as [string, string, string, string];
    return op === '!=' ? (l) => l[key] !== value : (l) => l[key] === value;
  }
  m = /^([\w./-]+)$/.exec(term);
  if (m) {
    const key = m[1] as string;
    return (l) => key in l;
  }
  throw badRequest(`unable to parse requirement: found '${term}', expected: identifier`);
}

/** Compiles a `labelSelector` query value. An empty selector matches everything. */
export function parseLabelSelector(text: string | undefined): Matcher {
  if (!text) return () => true;
  const reqs = splitTerms(text).map(parseRequirement);
  return (obj) => reqs.every((r) => r(obj.metadata.labels ?? {}));
}

/** True when `labels` match a `LabelSelector` object (`matchLabels`, `matchExpressions`) or a plain map. */
export function matchesSelectorObject(
  selector: { matchLabels?: Record<string, string>; matchExpressions?: Array<{ key: string; operator: string; values?: string[] }> } | undefined,
  labels: Record<string, string>,
): boolean {
  if (!selector) return false;
  for (const [k, v] of Object.entries(selector.matchLabels ?? {})) if (labels[k] !== v) return false;
  for (const e of selector.matchExpressions ?? []) {
    const has = e.key in labels;
    const value = labels[e.key] as string;
    switch (e.operator) {
      case 'In': if (!has || !(e.values ?? []).includes(value)) return false; break;
      case 'NotIn': if (has && (e.values ?? []).includes(value)) return false; break;
      case 'Exists': if (!has) return false; break;
      case 'DoesNotExist': if (has) return false; break;
      default: return false;
    }
  }
  return true;
}

/** True when every key/value of a map selector (Service `spec.selector`) is in `labels`; empty never matches. */
export function matchesMap(selector: Record<string, string> | undefined, labels: Record<string, string> | undefined): boolean {
  if (!selector || Object.keys(selector).length === 0) return false;
  return Object.entries(selector).every(([k, v]) => labels?.[k] === v);
}

function fieldValue(obj: KubeObject, path: string): string | undefined {
  let cur: unknown = obj;
  for (const part of path.split('.')) {
    if (typeof cur !== 'object' || cur === null) return undefined;
    cur = (cur as Record<string, unknown>)[part];
  }
  return cur === undefined || cur === null ? undefined : String(cur);
}

/** Fields every kind supports in field selectors, plus the common per-kind ones. */
const SELECTABLE = new Set([
  'metadata.name', 'metadata.namespace', 'status.phase', 'status.podIP', 'spec.nodeName', 'spec.serviceAccountName', 'spec.restartPolicy', 'spec.type', 'type', 'reason',
  'involvedObject.name', 'involvedObject.kind', 'involvedObject.namespace', 'involvedObject.uid', 'involvedObject.apiVersion', 'involvedObject.fieldPath', 'involvedObject.resourceVersion',
]);

/** Compiles a `fieldSelector` query value (`metadata.name=x,metadata.namespace!=y`). */
export function parseFieldSelector(text: string | undefined): Matcher {
  if (!text) return () => true;
  const reqs = splitTerms(text).map((term) => {
    const m = /^([\w.]+)\s*(==|=|!=)\s*(.*)$/.exec(term);
    if (!m) throw badRequest(`invalid selector: '${text}'; can't understand '${term}'`);
    const [, field, op, value] = m as unknown as [string, string, string, string];
    if (!SELECTABLE.has(field)) throw badRequest(`field label not supported: ${field}`);
    return (obj: KubeObject) => (op === '!=' ? fieldValue(obj, field) !== value : (fieldValue(obj, field) ?? '') === value);
  });
  return (obj) => reqs.every((r) => r(obj));
}
