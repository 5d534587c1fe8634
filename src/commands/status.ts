import {
  federationCaFingerprint, FEDERATION_PORT, homeNamespaceOf, importState, names, pendingRequests, readExportRecords, readImportRecords, readSecret, winningVirtualService,
  type ImportRecord, type KubeObject as CoreObject,
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
}

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
  /** Expiry of the gateway's server certificate (boundary), ISO 8601. */
  certificateExpires?: string;
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
  /** `active`, `incomplete` (objects missing: run import again) or `pending` (request sent, bundle not imported). */
  state: 'active' | 'incomplete' | 'pending';
  attach?: string;
  /**
   * The VirtualService sidecars use for the attached Service (`namespace/name`): Istio keeps the oldest one of a host,
   * so unless it is the attach route (or the user's VirtualService the split was folded into), the attach does nothing.
   */
  attachRoute?: { virtualService: string; used: boolean };
  /** Expiry of the client certificate (boundary), ISO 8601. */
  certificateExpires?: string;
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
  /** `SHA256:…` of the federation CA this cluster signs with as a provider (null before its first export). */
  federationCaFingerprint: string | null;
  exports: ExportStatus[];
  imports: ImportStatus[];
}

function expiry(pem: string | undefined): string | undefined {
  if (!pem) return undefined;
  try {
    return inspectCertificate(pem).notAfter.toISOString();
  } catch {
    return undefined;
  }
}

function find(existing: CoreObject[], kind: string, namespace: string, name: string): CoreObject | undefined {
  return existing.find((o) => o.kind === kind && o.metadata.namespace === namespace && o.metadata.name === name);
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
  const exportsRecords = await withCoreErrors({}, () => readExportRecords(snapshot));
  const addresses = new Map<string, string | undefined>();
  for (const role of new Set(exportsRecords.map((r) => (r.mode === 'boundary' ? 'ingress' : 'eastwest') as 'ingress' | 'eastwest'))) {
    addresses.set(role, await readGatewayAddress(writer, snapshot, role));
  }
  const exports: ExportStatus[] = exportsRecords.map((r) => {
    const address = addresses.get(r.mode === 'boundary' ? 'ingress' : 'eastwest');
    const certificate = r.mode === 'boundary' ? readSecret(find(existing, 'Secret', home, names.export(r.namespace, r.exportName)))?.['tls.crt'] : undefined;
    const expires = expiry(certificate);
    return {
      namespace: r.namespace, name: r.exportName, service: r.service, port: r.port.number, protocol: r.protocol, mode: r.mode,
      ...(r.subset ? { subset: r.subset } : {}),
      host: r.host,
      gateway: address ? `${address}:${snapshot.existingGateway?.port ?? FEDERATION_PORT}` : null,
      consumers: [...new Set(r.consumers.map((c) => c.clusterId))],
      ...(expires ? { certificateExpires: expires } : {}),
    };
  });
  const importRecords = await withCoreErrors({}, () => readImportRecords(snapshot));
  // The user's VirtualServices of attached Services' namespaces: which one wins for the host on sidecars.
  const attachNamespaces = [...new Set(importRecords.filter((r) => r.attach).map((r) => r.namespace))];
  const userRoutes = (await Promise.all(attachNamespaces.map((ns) => optional(writer.list('networking.istio.io/v1beta1', 'VirtualService', ns), [] as KubeObject[])))).flat();
  const routed = { ...snapshot, existing: [...existing.filter((o) => o.kind !== 'VirtualService' || !attachNamespaces.includes(o.metadata.namespace ?? '')), ...userRoutes] };
  const imports: ImportStatus[] = importRecords.map((r) => {
    const e = r.endpoint;
    const { state, clientCertificatePem: certificate } = importState(snapshot, r);
    const expires = expiry(certificate);
    return {
      namespace: r.namespace, localName: r.localName, source: `${e.providerClusterId}/${e.namespace}/${e.exportName}`,
      mode: e.mode, protocol: e.protocol, port: e.port.number, gateway: `${e.gateway.address}:${e.gateway.port}`,
      state,
      ...(r.attach ? { attach: 'weight' in r.attach ? `${r.attach.service} (${r.attach.weight}%)` : `${r.attach.service} (${r.attach.header.name}: ${r.attach.header.value})` } : {}),
      ...(r.attach ? { attachRoute: attachRoute(routed, r) } : {}),
      ...(expires ? { certificateExpires: expires } : {}),
    };
  });
  for (const ref of pendingRequests(snapshot)) {
    imports.push({
      namespace: '-', localName: '-', source: `${ref.providerClusterId}/${ref.namespace}/${ref.exportName}`, mode: '-', protocol: '-', port: 0, gateway: '-', state: 'pending',
    });
  }
  return {
    apiVersion: REPORT_API_VERSION,
    kind: 'Status',
    context: gathered.context,
    clusterId: gathered.identity.stored ? gathered.identity.clusterId : null,
    istioVersion: snapshot.istioVersion === '0.0' ? null : snapshot.istioVersion,
    trustDomain: snapshot.trustDomain ?? null,
    federationCaFingerprint: federationCaFingerprint(snapshot.existing) ?? null,
    exports,
    imports,
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
  const gathered = await gatherCluster(writer, { namespaces: [], istioNamespace: args['istio-namespace'], istioOptional: true });
  const status = await clusterStatus(gathered, writer);
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
      `${e.namespace}/${e.name}`,
      `${e.service}${e.subset ? ` [${Object.entries(e.subset).map(([k, v]) => `${k}=${v}`).join(',')}]` : ''}`,
      `${e.port}/${e.protocol}`,
      e.mode,
      e.gateway ?? c.yellow('<pending>'),
      e.consumers.join(',') || c.dim('none'),
      e.certificateExpires?.slice(0, 10) ?? '-',
    ])));
  }
  ui.data(`\nImports (${status.imports.length})\n`);
  if (status.imports.length) {
    ui.data(renderTable(['local name', 'source', 'port', 'mode', 'state', 'attach', 'cert expires'], status.imports.map((i) => [
      i.state === 'pending' ? '-' : `${i.namespace}/${i.localName}`,
      i.source,
      i.port ? `${i.port}/${i.protocol}` : '-',
      i.mode,
      i.state === 'active' ? c.green(i.state) : c.yellow(i.state),
      i.attach ? `${i.attach}${i.attachRoute && !i.attachRoute.used ? ` ignored: ${i.attachRoute.virtualService} wins` : ''}` : '-',
      i.certificateExpires?.slice(0, 10) ?? '-',
    ])));
  }
}

/** `kubectl meshfed status`: what a cluster exports and imports. */
export const statusCommand: CommandBody<StatusArgs> = {
  builder: (yargs) =>
    yargs
      .option('istio-namespace', { type: 'string', default: 'istio-system', describe: 'Namespace of istiod and the mesh config' })
      .example('kubectl meshfed status --context cluster2', 'What cluster2 exports and imports')
      .example('kubectl meshfed status -o json', 'The same, for scripts'),
  handler: withSession(showStatus),
};
