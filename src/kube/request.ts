/**
 * What a REST request to the Kubernetes API does, in kubectl's words (verb, resource, namespace), derived from its
 * method and path. Used to write errors such as `cannot list pods in namespace "x"`.
 */
export interface RequestDescription {
  verb: string;
  /** Plural resource, with subresource (`pods/log`) and group (`gateways.networking.istio.io`). */
  resource: string;
  namespace: string | undefined;
  name: string | undefined;
}

export function describeRequest(method: string, path: string, query: Record<string, string> = {}): RequestDescription {
  const parts = path.split('?')[0]!.split('/').filter(Boolean);
  let group = '';
  let rest: string[];
  if (parts[0] === 'api') rest = parts.slice(2);
  else if (parts[0] === 'apis') {
    group = parts[1] ?? '';
    rest = parts.slice(3);
  } else {
    return { verb: method.toLowerCase(), resource: path, namespace: undefined, name: undefined };
  }
  let namespace: string | undefined;
  if (rest[0] === 'namespaces' && rest.length >= 3) {
    namespace = rest[1];
    rest = rest.slice(2);
  }
  const [plural = '', name, sub] = rest;
  const resource = (group ? `${plural}.${group}` : plural) + (sub ? `/${sub}` : '');
  const verbs: Record<string, string> = { POST: 'create', PUT: 'update', PATCH: 'patch', DELETE: name ? 'delete' : 'deletecollection' };
  let verb = verbs[method.toUpperCase()] ?? 'get';
  if (method.toUpperCase() === 'GET') verb = query.watch === 'true' || query.watch === '1' ? 'watch' : name ? 'get' : 'list';
  return { verb, resource, namespace, name };
}
