import YAML from 'yaml';

/** Machine output formats accepted by `-o/--output`. */
export type DataFormat = 'json' | 'yaml';

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
