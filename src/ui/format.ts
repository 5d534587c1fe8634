import YAML from 'yaml';

/** Machine output formats accepted by `-o/--output`. */
export type DataFormat = 'json' | 'yaml';

/** What `-o` accepts where it prints objects: a {@link DataFormat}, or `name` (kubectl's `kind.group/name` lines). */
export type OutputFormat = DataFormat | 'name';

/** Serialise one value for stdout: JSON indented like kubectl, or YAML. */
export function formatData(value: unknown, format: DataFormat): string {
  if (format === 'json') return JSON.stringify(value, null, 2) + '\n';
  return YAML.stringify(value, { lineWidth: 0, aliasDuplicateObjects: false });
}

/**
 * Serialise Kubernetes objects so the text can be piped into `kubectl apply -f -`: YAML documents separated by
 * `---`, or a JSON `v1/List` as kubectl prints it.
 */
export function formatObjects(objects: readonly object[], format: DataFormat): string {
  if (format === 'json') return formatData({ apiVersion: 'v1', kind: 'List', items: objects }, 'json');
  return objects.map((object) => formatData(object, 'yaml')).join('---\n');
}

/** kubectl's `-o name`: one `kind.group/name` line per object (`kind/name` for the core group), kind in lower case. */
export function formatNames(objects: ReadonlyArray<{ apiVersion: string; kind: string; metadata: { name?: string } }>): string {
  return objects.map((object) => {
    const group = object.apiVersion.includes('/') ? object.apiVersion.slice(0, object.apiVersion.indexOf('/')) : '';
    return `${object.kind.toLowerCase()}${group ? `.${group}` : ''}/${object.metadata.name ?? ''}\n`;
  }).join('');
}
