import {
  credentialCertificates, exportRefText, federationCaCertificates, federationCaFingerprint, FEDERATION_PORT, homeNamespaceOf, RENEW_BEFORE_DAYS, importState, names, pendingRequests, publishedRequests, readExportRecords, stalePublishedRequests, readImportRecords, winningVirtualService,
  type ImportRecord,
} from '../federation/index.js';
import { gatherCluster, optional, readGatewayAddress, type GatheredCluster } from '../kube/gather.js';
import type { KubeObject } from '../kube/resources.js';
import { inspectCertificate } from '../pki/index.js';
import { REPORT_API_VERSION } from '../ui/checks.js';
import { formatData } from '../ui/format.js';
import { renderTable } from '../ui/table.js';
import { withCoreErrors, writerFor } from './federate.js';
import { chooseContext } from './shared.js';
import type { GlobalArgs, Session } from './session.js';
import { withSession } from './run.js';
import type { CommandBody } from './index.js';

interface StatusArgs extends GlobalArgs {
  'istio-namespace': string;
  'check-consumers': boolean;
}

/** Whether an admitted consumer still imports an export, as far as the provider's operator can tell. */
export type ConsumerUse = 'imports' | 'no-longer-imports' | 'cannot-tell';

/** One export in `status -o json|yaml`. */
export interface ExportStatus {
  namespace: string;
  name: string;
  service: string;
  port: number;
  protocol: string;
  mode: string;
  subset?: Record<string, string>;
  /** Federation host (boundary: SNI of the export; shared-root: the Service FQDN). */
  host: string;
  /** `address:port` of the provider gateway, or null while it has none. */
  gateway: string | null;
  consumers: string[];
  /** True while an unexport is removing it (or after one stopped half-way: run it again to finish). */
  removing?: boolean;
  /**
   * With `--check-consumers`: per admitted consumer, whether it still imports the export (read from the consumer's
   * import records through the kubeconfig context named as its cluster id), or `cannot-tell` without that context.
   */
  consumerUse?: Record<string, ConsumerUse>;
  /** Expiry of the gateway's server certificate (boundary), ISO 8601. */
  certificateExpires?: string;
  /** True when that certificate has expired. */
  certificateExpired?: boolean;
}

/** One import in `status -o json|yaml`. */
export interface ImportStatus {
  namespace: string;
  localName: string;
  /** `<provider cluster id>/<namespace>/<export>`. */
  source: string;
  mode: string;
  protocol: string;
  port: number;
  gateway: string;
  /**
   * `active`, `incomplete` (objects missing: run import again), `pending` (request sent, bundle not imported) or
   * `removing` (an unimport is removing it, or one stopped half-way: run it again to finish).
   */
  state: 'active' | 'incomplete' | 'pending' | 'removing';
  attach?: string;
  /**
   * The VirtualService sidecars use for the attached Service (`namespace/name`): Istio keeps the oldest one of a host,
   * so unless it is the attach route (or the user's VirtualService the split was folded into), the attach does nothing.
   */
  attachRoute?: { virtualService: string; used: boolean };
  /** Expiry of the client certificate (boundary), ISO 8601. */
  certificateExpires?: string;
  /** True when that certificate has expired. */
  certificateExpired?: boolean;
  /** A pending request: when it expires (ISO 8601), when it says. */
  requestExpires?: string;
  /**
   * A pending request made by a version that did not publish requests: who may not read Secrets (the viewer role)
   * does not see it until it is made again (`import --request-out`).
   */
  published?: false;
}

/** The provider's federation CA in `status -o json|yaml`. */
export interface FederationCaStatus {
  /** ISO 8601. */
  expires: string;
  expired: boolean;
  /** A CA rotation under way (`rotate --ca`): the next CA's expiry and the consumers it has signed for. */
  rotation?: { nextExpires: string; renewedConsumers: string[] };
}

/** `status -o json|yaml` (stable for scripts; schema in docs/commands.md). */
export interface ClusterStatus {
  apiVersion: typeof REPORT_API_VERSION;
  kind: 'Status';
  context: string;
  /** null when meshfed has not acted in the cluster yet. */
  clusterId: string | null;
  istioVersion: string | null;
  trustDomain: string | null;
  /** Provider: its federation CA (absent before its first export). */
  federationCa?: FederationCaStatus;
  /** `SHA256:…` of the federation CA this cluster signs with as a provider (null before its first export). */
  federationCaFingerprint: string | null;
  exports: ExportStatus[];
  imports: ImportStatus[];
  /**
   * Namespaces of meshfed's where this user may not list Secrets (the viewer role): the import requests still pending
   * there are read from the copies published beside their Secrets; one made by a version that did not publish
   * requests is not among `imports`. Absent when there is none.
   */
  unreadableSecrets?: string[];
  /**
   * Who may list the Secrets: `<provider>/<namespace>/<export>` of published copies of import requests that are no
   * longer pending (a completion or cancellation stopped half-way; `unimport --export` removes them). Absent when none.
   */
  staleRequestCopies?: string[];
}

/** When a certificate expires (ISO 8601) and whether it has, as status fields. */
function expiry(pem: string | undefined): { certificateExpires: string; certificateExpired?: true } | Record<string, never> {
  if (!pem) return {};
  try {
    const info = inspectCertificate(pem);
    return { certificateExpires: info.notAfter.toISOString(), ...(info.daysLeft < 0 || info.notAfter.getTime() < Date.now() ? { certificateExpired: true as const } : {}) };
  } catch {
    return {};
  }
}

/** Expiry as the table shows it: the date, marked when expired or within the 30 days verify warns about. */
function expiryCell(c: Session['ui']['out'], expires: string | undefined, expired: boolean | undefined): string {
  if (!expires) return '-';
  if (expired) return c.red(`${expires.slice(0, 10)} EXPIRED`);
  const days = Math.floor((Date.parse(expires) - Date.now()) / 86_400_000);
  return days < RENEW_BEFORE_DAYS ? c.yellow(`${expires.slice(0, 10)} (${days}d)`) : expires.slice(0, 10);
}

function attachRoute(snapshot: Parameters<typeof winningVirtualService>[0], r: ImportRecord): { virtualService: string; used: boolean } {
  const expected = r.mergedInto ?? { namespace: r.namespace, name: names.attach(r.attach!.service) };
  const winner = winningVirtualService(snapshot, r.namespace, r.attach!.service);
  if (!winner) return { virtualService: '-', used: false };
  return { virtualService: `${winner.metadata.namespace}/${winner.metadata.name}`, used: winner.metadata.namespace === expected.namespace && winner.metadata.name === expected.name };
}

/** What meshfed has set up in one gathered cluster. */
export async function clusterStatus(gathered: GatheredCluster, writer: ReturnType<typeof writerFor>): Promise<ClusterStatus> {
  const snapshot = gathered.snapshot;
  const existing = snapshot.existing;
  const home = homeNamespaceOf(snapshot);
  const exportsRecords = await withCoreErrors({}, () => readExportRecords(snapshot, { removing: true }));
  const addresses = new Map<string, string | undefined>();
  for (const role of new Set(exportsRecords.map((r) => (r.mode === 'boundary' ? 'ingress' : 'eastwest') as 'ingress' | 'eastwest'))) {
    addresses.set(role, await readGatewayAddress(writer, snapshot, role));
  }
  const exports: ExportStatus[] = exportsRecords.map((r) => {
    const address = addresses.get(r.mode === 'boundary' ? 'ingress' : 'eastwest');
    // As published beside its Secret: status reads no Secret's data.
    const certificate = r.mode === 'boundary' ? credentialCertificates(existing, home, names.export(r.namespace, r.exportName))['tls.crt'] : undefined;
    return {
      namespace: r.namespace, name: r.exportName, service: r.service, port: r.port.number, protocol: r.protocol, mode: r.mode,
      ...(r.subset ? { subset: r.subset } : {}),
      host: r.host,
      gateway: address ? `${address}:${snapshot.existingGateway?.port ?? FEDERATION_PORT}` : null,
      consumers: [...new Set(r.consumers.map((c) => c.clusterId))],
      ...(r.removing ? { removing: true } : {}),
      ...expiry(certificate),
    };
  });
  const importRecords = await withCoreErrors({}, () => readImportRecords(snapshot, { removing: true }));
  // The user's VirtualServices of attached Services' namespaces: which one wins for the host on sidecars.
  const attachNamespaces = [...new Set(importRecords.filter((r) => r.attach).map((r) => r.namespace))];
  const userRoutes = (await Promise.all(attachNamespaces.map((ns) => optional(writer.list('networking.istio.io/v1beta1', 'VirtualService', ns), [] as KubeObject[])))).flat();
  const routed = { ...snapshot, existing: [...existing.filter((o) => o.kind !== 'VirtualService' || !attachNamespaces.includes(o.metadata.namespace ?? '')), ...userRoutes] };
  const imports: ImportStatus[] = importRecords.map((r) => {
    const e = r.endpoint;
    const { state, clientCertificatePem: certificate } = importState(snapshot, r);
    return {
      namespace: r.namespace, localName: r.localName, source: `${e.providerClusterId}/${e.namespace}/${e.exportName}`,
      mode: e.mode, protocol: e.protocol, port: e.port.number, gateway: `${e.gateway.address}:${e.gateway.port}`,
      state: r.removing ? 'removing' : state,
      ...(r.attach ? { attach: 'weight' in r.attach ? `${r.attach.service} (${r.attach.weight}%)` : `${r.attach.service} (${r.attach.header.name}: ${r.attach.header.value})` } : {}),
      ...(r.attach ? { attachRoute: attachRoute(routed, r) } : {}),
      ...expiry(certificate),
    };
  });
  // Pending requests from their Secrets; who may not list those (the viewer role) reads the copies published beside them.
  const requests = snapshot.unreadableSecrets?.includes(home) ? publishedRequests(snapshot) : pendingRequests(snapshot);
  for (const ref of requests) {
    imports.push({
      // Where and as what the bundle will import it (the export's name unless the request named another); requests of
      // earlier versions did not record the namespace.
      namespace: ref.importNamespace ?? '-', localName: ref.localName ?? ref.exportName,
      source: exportRefText(ref), mode: '-', protocol: '-', port: 0, gateway: '-', state: 'pending',
      ...(ref.expiresAt ? { requestExpires: ref.expiresAt } : {}),
      ...(ref.published === false ? { published: false as const } : {}),
    });
  }
  const stale = stalePublishedRequests(snapshot).map(exportRefText);
  // The certificates only: status reads no key (the viewer role may not read the CA's Secret).
  const ca = federationCaCertificates(snapshot.existing);
  const caExpiry = ca ? expiry(ca.current) : {};
  const nextExpiry = ca?.next ? expiry(ca.next) : {};
  return {
    apiVersion: REPORT_API_VERSION,
    kind: 'Status',
    context: gathered.context,
    clusterId: gathered.identity.stored ? gathered.identity.clusterId : null,
    istioVersion: snapshot.istioVersion === '0.0' ? null : snapshot.istioVersion,
    trustDomain: snapshot.trustDomain ?? null,
    ...('certificateExpires' in caExpiry ? {
      federationCa: {
        expires: caExpiry.certificateExpires, expired: caExpiry.certificateExpired === true,
        ...('certificateExpires' in nextExpiry ? { rotation: { nextExpires: nextExpiry.certificateExpires, renewedConsumers: [...ca!.renewed].sort() } } : {}),
      },
    } : {}),
    federationCaFingerprint: federationCaFingerprint(snapshot.existing) ?? null,
    exports,
    imports,
    ...(snapshot.unreadableSecrets ? { unreadableSecrets: snapshot.unreadableSecrets } : {}),
    ...(stale.length ? { staleRequestCopies: stale } : {}),
  };
}

/**
 * `status -o name`: one line per export and import, kubectl style (`kind.group/…`), with the namespace as exports
 * and imports are named by meshfed: `export.meshfed.io/<namespace>/<name>`, `import.meshfed.io/<namespace>/<local
 * name>`, and `importrequest.meshfed.io/<provider>/<namespace>/<export>` for a pending request.
 */
function statusNames(status: ClusterStatus): string {
  return [
    ...status.exports.map((e) => `export.meshfed.io/${e.namespace}/${e.name}\n`),
    ...status.imports.map((i) => i.state === 'pending' ? `importrequest.meshfed.io/${i.source}\n` : `import.meshfed.io/${i.namespace}/${i.localName}\n`),
  ].join('');
}

async function showStatus(session: Session, args: StatusArgs): Promise<void> {
  const format = session.outputFormat(['json', 'yaml', 'name'] as const);
  const context = await chooseContext(session, args.context, '--context', 'Context');
  const writer = writerFor(session, context, '--context');
  // No Secret's data: the certificates are published beside their Secrets (ConfigMaps), the CA's too; a user who may
  // not list Secrets (the viewer role) sees pending import requests as published beside their Secrets.
  // What it shows and no more: records and published certificates and requests, the gateways' Services, the rest as metadata.
  const gathered = await gatherCluster(writer, { namespaces: [], istioNamespace: args['istio-namespace'], istioOptional: true, secretsOptional: true, overview: true });
  const status = await clusterStatus(gathered, writer);
  if (args['check-consumers']) await checkConsumers(session, status);
  if (format === 'name') {
    session.ui.data(statusNames(status));
    return;
  }
  if (format) {
    session.ui.data(formatData(status, format));
    return;
  }
  const ui = session.ui;
  const c = ui.out;
  ui.data(`Context ${status.context}: ${status.clusterId ? `federation cluster ${status.clusterId}` : 'meshfed has not acted here yet'}` +
    `${status.istioVersion ? `, Istio ${status.istioVersion}, trust domain ${status.trustDomain}` : ', no Istio found'}\n`);
  if (status.federationCaFingerprint) ui.data(`Federation CA: ${status.federationCaFingerprint} (consumers importing a bundle compare it)\n`);
  ui.data(`\nExports (${status.exports.length})\n`);
  if (status.exports.length) {
    ui.data(renderTable(['name', 'service', 'port', 'mode', 'gateway', 'consumers', 'cert expires'], status.exports.map((e) => [
      `${e.namespace}/${e.name}${e.removing ? c.yellow(' (being removed)') : ''}`,
      `${e.service}${e.subset ? ` [${Object.entries(e.subset).map(([k, v]) => `${k}=${v}`).join(',')}]` : ''}`,
      `${e.port}/${e.protocol}`,
      e.mode,
      e.gateway ?? c.yellow('<pending>'),
      e.consumers.map((id) => e.consumerUse?.[id] === 'no-longer-imports' ? c.yellow(`${id} (no longer imports)`)
        : e.consumerUse?.[id] === 'cannot-tell' ? `${id} (?)` : id).join(',') || c.dim('none'),
      expiryCell(c, e.certificateExpires, e.certificateExpired),
    ])));
    const unknown = status.exports.some((e) => Object.values(e.consumerUse ?? {}).includes('cannot-tell'));
    if (unknown) ui.data(c.dim('(?) cannot tell whether it still imports: no reachable kubeconfig context is named as its cluster id\n'));
    const stale = status.exports.flatMap((e) => Object.entries(e.consumerUse ?? {}).filter(([, use]) => use === 'no-longer-imports')
      .map(([id]) => `kubectl meshfed revoke ${e.name} --context ${status.context} -n ${e.namespace} --consumer ${id}`));
    if (stale.length) ui.warn(`admitted consumers that no longer import: withdraw their admission with ${stale.join('; ')}`);
    const removing = status.exports.filter((e) => e.removing).map((e) => `kubectl meshfed unexport ${e.name} --context ${status.context} -n ${e.namespace}`);
    if (removing.length) ui.warn(`exports being removed (if no unexport is running, one stopped half-way): finish with ${removing.join('; ')}`);
  }
  if (status.federationCa) {
    const ca = status.federationCa;
    ui.data(`\nFederation CA expires ${expiryCell(c, ca.expires, ca.expired)}${ca.rotation
      ? `; rotation under way (next CA expires ${ca.rotation.nextExpires.slice(0, 10)}; renewed consumers: ${ca.rotation.renewedConsumers.join(', ') || 'none'}; finish: kubectl meshfed rotate --context ${status.context} --ca --finish)` : ''}\n`);
  }
  ui.data(`\nImports (${status.imports.length})\n`);
  if (status.imports.length) {
    ui.data(renderTable(['local name', 'source', 'port', 'mode', 'state', 'attach', 'cert expires'], status.imports.map((i) => [
      i.state === 'pending' && i.namespace === '-' ? '-' : `${i.namespace}/${i.localName}`,
      i.source,
      i.port ? `${i.port}/${i.protocol}` : '-',
      i.mode,
      i.state === 'active' ? c.green(i.state) : c.yellow(i.state),
      i.attach ? `${i.attach}${i.attachRoute && !i.attachRoute.used ? ` ignored: ${i.attachRoute.virtualService} wins` : ''}` : '-',
      i.state === 'pending' ? (i.requestExpires ? `request ${expiryCell(c, i.requestExpires, Date.parse(i.requestExpires) < Date.now())}` : '-') : expiryCell(c, i.certificateExpires, i.certificateExpired),
    ])));
    const removingImports = status.imports.filter((i) => i.state === 'removing').map((i) => `kubectl meshfed unimport ${i.localName} --context ${status.context} -n ${i.namespace}`);
    if (removingImports.length) ui.warn(`imports being removed (if no unimport is running, one stopped half-way): finish with ${removingImports.join('; ')}`);
  }
  const unpublished = status.imports.filter((i) => i.state === 'pending' && i.published === false);
  if (unpublished.length) {
    ui.warn(`import requests made by a version of meshfed that did not publish them are not shown to users who may not read Secrets (the viewer role): ${unpublished.map((i) => i.source).join(', ')}; ` +
      `publish one by making it again (a new request, for the provider to admit instead): ${unpublished.map((i) => requestAgain(status.context, i)).join('; ')}`);
  }
  if (status.staleRequestCopies) {
    ui.warn(`published copies of import requests that are no longer pending (a completion or cancellation stopped half-way): remove them with ${status.staleRequestCopies.map((s) => `kubectl meshfed unimport --context ${status.context} --export ${s}`).join('; ')}`);
  }
  if (status.unreadableSecrets) {
    ui.data(c.dim(`(this user may not list Secrets in ${status.unreadableSecrets.join(', ')}: pending import requests are read from the copies published beside them; ` +
      `one made by an earlier version of meshfed has none until it is made again, and kubectl meshfed status --context ${status.context} as the consumer's operator lists it)\n`));
  }
}

/** The command that makes a pending request again, which publishes it. */
function requestAgain(context: string, i: ImportStatus): string {
  const [provider, namespace, exportName] = i.source.split('/');
  return `kubectl meshfed import --context ${context} -n ${i.namespace === '-' ? '<namespace>' : i.namespace} --from ${provider} --export ${namespace}/${exportName}` +
    `${i.localName !== exportName ? ` --name ${i.localName}` : ''} --request-out request.yaml`;
}

/**
 * `--check-consumers`: asks each admitted consumer's cluster, through the kubeconfig context named as its cluster id
 * (meshfed's default cluster id), whether it still imports the export; `cannot-tell` without such a context, when it
 * is unreachable, or when that context is another cluster.
 */
async function checkConsumers(session: Session, status: ClusterStatus): Promise<void> {
  const ids = [...new Set(status.exports.flatMap((e) => e.consumers))];
  const known = new Set(session.kubeconfig().contextNames());
  const imports = new Map<string, ImportRecord[] | undefined>();
  await Promise.all(ids.map(async (id) => {
    if (!known.has(id) || id === status.context) return imports.set(id, undefined);
    try {
      const consumer = await gatherCluster(writerFor(session, id, '--context'), { namespaces: [], istioOptional: true });
      imports.set(id, consumer.identity.stored && consumer.identity.clusterId === id ? readImportRecords(consumer.snapshot) : undefined);
    } catch {
      imports.set(id, undefined);
    }
  }));
  for (const e of status.exports) {
    e.consumerUse = Object.fromEntries(e.consumers.map((id) => {
      const records = imports.get(id);
      if (!records) return [id, 'cannot-tell' as const];
      const uses = records.some((r) => r.endpoint.providerClusterId === status.clusterId && r.endpoint.namespace === e.namespace && r.endpoint.exportName === e.name);
      return [id, uses ? 'imports' as const : 'no-longer-imports' as const];
    }));
  }
}

/** `kubectl meshfed status`: what a cluster exports and imports. */
export const statusCommand: CommandBody<StatusArgs> = {
  builder: (yargs) =>
    yargs
      .option('istio-namespace', { type: 'string', default: 'istio-system', describe: 'Namespace of istiod and the mesh config' })
      .option('check-consumers', { type: 'boolean', default: false, describe: 'Provider: ask each admitted consumer (the kubeconfig context named as its cluster id) whether it still imports' })
      .example('kubectl meshfed status --context cluster2', 'What cluster2 exports and imports')
      .example('kubectl meshfed status -o json', 'The same, for scripts')
      .example('kubectl meshfed status --context cluster2 --check-consumers', 'Also show admitted consumers that no longer import'),
  handler: withSession(showStatus),
};
