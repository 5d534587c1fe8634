import { PkiError } from './errors.js';

const dnsLabel = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

/**
 * Normalises and checks a host for a DNS subjectAltName: a DNS-1123 subdomain (lower-cased, at most
 * 253 characters, labels of 1-63). Wildcards are refused on purpose: every federated host names
 * exactly one exported Service.
 */
export function normaliseDnsName(host: string): string {
  const name = host.toLowerCase();
  if (name.length === 0 || name.length > 253 || !name.split('.').every((label) => dnsLabel.test(label))) {
    throw new PkiError(`"${host}" is not a DNS name usable in a certificate (DNS-1123 subdomain, no wildcard)`);
  }
  return name;
}

const trustDomain = /^[a-z0-9._-]+$/;
const pathSegment = /^[A-Za-z0-9._-]+$/;

/**
 * Checks a SPIFFE ID as the SPIFFE standard defines it: `spiffe://<trust domain>/<path>`, a lower-case
 * trust domain, non-empty path segments other than `.` and `..`, no port, user info, query or fragment.
 * A path is required because a trust domain alone does not name a workload.
 */
export function checkSpiffeId(id: string): string {
  const fail = (why: string): never => {
    throw new PkiError(`"${id}" is not a valid SPIFFE ID: ${why}`);
  };
  if (id.length > 2048) fail('longer than 2048 characters');
  if (!id.startsWith('spiffe://')) fail('it must start with spiffe://');
  const rest = id.slice('spiffe://'.length);
  const slash = rest.indexOf('/');
  const domain = slash === -1 ? rest : rest.slice(0, slash);
  if (!trustDomain.test(domain)) fail('the trust domain must be lower-case letters, digits, ".", "-" or "_"');
  if (slash === -1) fail('it has no path naming a workload');
  const segments = rest.slice(slash + 1).split('/');
  for (const segment of segments) {
    if (segment === '' || segment === '.' || segment === '..' || !pathSegment.test(segment)) {
      fail(`path segment "${segment}" is empty, relative or has characters outside [A-Za-z0-9._-]`);
    }
  }
  return id;
}
