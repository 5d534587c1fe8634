/**
 * Provider-side planners: export, admission of a consumer, revocation, unexport. Each returns the complete
 * desired state of what it touches, recomputing objects shared between exports from the export records.
 */
import {
  createFederationCA, inspectCertificate, issueServerCertificate, keyMatchesCertificate, verifyCertificateChain,
  type CertificateAndKey,
} from '../pki/index.js';
import { publishedCertificatesName, withPublishedCertificates } from './certificates.js';
import { FederationInputError } from './errors.js';
import {
  detectProtocol, type ClusterPlan, type ConsumerIdentity, type ExportEndpoint, type ExportSpec, type KubeObject,
  type GatewayPlacement, type ProviderSnapshot, type ServicePort, type ServiceSnapshot,
} from './model.js';
import {
  checkDnsLabel, consumerGatewaySpiffeId, DEFAULT_GATEWAY_NAMESPACE, exportHost, exportLabel, FEDERATION_CA_CERTIFICATES, FEDERATION_CA_NAMESPACE, FEDERATION_CA_SECRET, FEDERATION_PORT, GATEWAY_NAMES, isLabelValue,
  LABELS, MANAGED_BY, MANAGED_BY_LABEL, names, passthroughSni, principalOf, serviceFqdn, serviceLabel, subsetName,
  workloadPrincipal,
} from './naming.js';
import {
  API, autoPassthroughMatchesLiteralHosts, checkNotForeign, checkSupportedIstio, emptyPlan, findObject, finishPlan,
  gatewayHttpSeesClientPrincipal, gatewaySetup, homeNamespaceOf, isManaged, kubeObject, PRUNABLE_KINDS, meshfedLabels, objectKey, ownsGateway,
  readSecret, secretData,
} from './objects.js';
import { ownerDestinationRule, sameLabels, type EffectiveDestinationRule } from './destination-rules.js';
import { SERVICE_EXPORT_TO_ANNOTATION, serviceVisibleTo, widenedExportTo } from './visibility.js';
import { exportRecordObject, readExportRecords, type ExportRecord, type PassthroughCover, type RecordQuery } from './records.js';
import {
  checkTrustDomain, guardRules, inseparableReason, revocationEffect, trustDomainAcceptance, trustDomainAdvice, type GuardEntry,
  type ProviderTrust, type RevocationEffect,
} from './trust.js';
import {
  chooseFederationCa, describeGatewayAt, exportLocation, exportsServedFrom, gatewayFlagsFor, movesExport, NEXT_CA_KEYS, type ExportLocation,
} from './relocation.js';

/** Options shared by the planners that issue certificates. */
export interface PlanOptions {
  /** Clock for certificate issuance and reuse decisions; default: the current time. */
  now?: Date;
  /** Lifetime of newly issued gateway certificates in days; default 365. */
  certificateValidityDays?: number;
  /** An existing server certificate with fewer days left than this is reissued; default 0 (a re-run renews only what expired: `rotate` renews ahead). */
  renewBeforeDays?: number;
  /** Issue new server certificates (new keys) even where the current ones still fit (`rotate`). Default false. */
  renewServerCertificates?: boolean;
  /**
   * The federation CA to plan with, instead of the one read from the snapshot (a CA rotation decides it once for
   * every export it re-plans).
   */
  federationCa?: FederationCaState;
  /**
   * {@link planExport} only: move an export to another gateway even though consumers are admitted (they reach it
   * again once they import it anew, since the gateway's address changes). Default false: such a move is refused.
   */
  allowGatewayMove?: boolean;
}

/**
 * A provider's federation CA as plans use it. Outside a CA rotation only `current` is set. During one
 * (`rotate --ca`), `next` is trusted beside `current` by the provider gateway and by the consumers it renews, and
 * signs their new client certificates; server certificates stay signed by `current`, which every consumer trusts,
 * until the rotation finishes and `next` becomes `current`.
 */
export interface FederationCaState {
  current: CertificateAndKey;
  next?: CertificateAndKey;
  /** Consumer cluster ids whose client certificates `next` signed. */
  renewed: string[];
}

/** The CAs to trust, as one PEM bundle (`ca.crt`): the current CA, then the next one during a rotation. */
export function trustBundle(state: Pick<FederationCaState, 'current' | 'next'>): string {
  if (!state.next) return state.current.certificatePem;
  const pems = [state.current.certificatePem, state.next.certificatePem];
  return pems.map((pem) => `${pem.replace(/\r\n/g, '\n').trim()}\n`).join('');
}

/** The CA that signs client certificates: the next CA during a rotation, else the current one. */
export function clientSigner(state: Pick<FederationCaState, 'current' | 'next'>): CertificateAndKey {
  return state.next ?? state.current;
}

/** The Secret that holds a provider's federation CA (and, during a rotation, the next one). */
export function federationCaSecret(state: FederationCaState): KubeObject {
  const values: Record<string, string> = { 'ca.crt': state.current.certificatePem, 'ca.key': state.current.privateKeyPem };
  if (state.next) {
    values[NEXT_CA_KEYS.certificate] = state.next.certificatePem;
    values[NEXT_CA_KEYS.key] = state.next.privateKeyPem;
    values[NEXT_CA_KEYS.renewed] = JSON.stringify([...new Set(state.renewed)].sort());
  }
  return kubeObject('v1', 'Secret', FEDERATION_CA_SECRET, FEDERATION_CA_NAMESPACE, meshfedLabels('federation-ca'), { type: 'Opaque', data: secretData(values) });
}

/**
 * The federation CA's objects: the Secret with its keys (in {@link FEDERATION_CA_NAMESPACE}), and the ConfigMap with
 * its certificates alone (in meshfed's namespace `home`, beside its records), which whoever may only look reads instead.
 */
export function federationCaObjects(state: FederationCaState, home: string): KubeObject[] {
  const certificates: Record<string, string> = { 'ca.crt': state.current.certificatePem };
  if (state.next) {
    certificates[NEXT_CA_KEYS.certificate] = state.next.certificatePem;
    certificates[NEXT_CA_KEYS.renewed] = JSON.stringify([...new Set(state.renewed)].sort());
  }
  return [
    federationCaSecret(state),
    kubeObject('v1', 'ConfigMap', FEDERATION_CA_CERTIFICATES, home, meshfedLabels('federation-ca'), { data: certificates }),
  ];
}

/** A provider plan for one export. */
export interface ExportPlan extends ClusterPlan {
  /** The export as recorded in the cluster. */
  record: ExportRecord;
  /** What a consumer needs to reach it; undefined until the provider gateway has an external address. */
  endpoint?: ExportEndpoint;
  /**
   * The provider's federation CA certificate (reused, or created by this plan). Its key is only in the CA
   * Secret among `objects` (see {@link federationCaOf}), so printing a plan's fields never shows it.
   */
  federationCaPem: string;
  /** Shared-root: the SPIFFE ids the export admits once the plan is applied (shown before it is). */
  admittedPrincipals?: string[];
  /** Revoke, shared-root: whether the revoked consumer is cut off; a revoke that is not must not say it is. */
  revocation?: RevocationEffect;
}

const DEFAULT_TRUST_DOMAIN = 'cluster.local';

function findService(snapshot: ProviderSnapshot, namespace: string, name: string): ServiceSnapshot {
  const service = snapshot.services.find((s) => s.namespace === namespace && s.name === name);
  if (!service) {
    throw new FederationInputError(`Service ${namespace}/${name} was not found in cluster ${snapshot.clusterId}: check --namespace and --service`, '--service');
  }
  return service;
}

function findPort(service: ServiceSnapshot, port: { number: number; name?: string }): ServicePort {
  const found = service.ports.find((p) => p.port === port.number);
  const list = service.ports.map((p) => `${p.port}${p.name ? ` (${p.name})` : ''}`).join(', ');
  if (!found) throw new FederationInputError(`Service ${service.namespace}/${service.name} has no port ${port.number}; its ports are ${list} (--port)`, '--port');
  if (port.name !== undefined && found.name !== port.name) {
    throw new FederationInputError(`port ${port.number} of Service ${service.namespace}/${service.name} is named "${found.name ?? ''}", not "${port.name}" (--port)`, '--port');
  }
  return found;
}

function checkConsumer(c: ConsumerIdentity): ConsumerIdentity {
  checkDnsLabel(c.clusterId, 'consumer cluster id', '--consumer');
  if (c.namespace !== undefined) checkDnsLabel(c.namespace, 'consumer namespace', '--consumer-namespace');
  for (const sa of c.serviceAccounts ?? []) checkDnsLabel(sa, 'consumer service account', '--consumer-service-account');
  if (c.trustDomain !== undefined) checkTrustDomain(c.trustDomain, `trust domain of consumer ${c.clusterId}`, '--consumer');
  return c;
}

/** The provider mesh's trust settings. */
function providerTrust(snapshot: ProviderSnapshot): ProviderTrust {
  return {
    trustDomain: snapshot.trustDomain ?? DEFAULT_TRUST_DOMAIN,
    ...(snapshot.trustDomainAliases ? { trustDomainAliases: snapshot.trustDomainAliases } : {}),
    ...(snapshot.skipValidateTrustDomain ? { skipValidateTrustDomain: true } : {}),
  };
}

/** The consumers of every shared-root export (`record` as planned) other than `consumer` itself. */
function otherConsumers(snapshot: ProviderSnapshot, record: ExportRecord, consumer: ConsumerIdentity): ConsumerIdentity[] {
  const all = [...readExportRecords(snapshot).filter((r) => !(r.namespace === record.namespace && r.exportName === record.exportName)), record];
  return all.filter((r) => r.mode === 'shared-root').flatMap((r) => r.consumers).filter((c) => c !== consumer && c.clusterId !== consumer.clusterId);
}

/**
 * Refuses, before anything is written, a shared-root consumer that no policy can admit alone (see
 * {@link inseparableReason}): same trust domain as the provider, `cluster.local`, or that of another consumer.
 */
function checkSeparable(snapshot: ProviderSnapshot, record: ExportRecord, previous: ExportRecord | undefined): void {
  if (record.mode !== 'shared-root') return;
  const known = new Set((previous?.mode === 'shared-root' ? previous.consumers : []).map((c) => JSON.stringify(c)));
  for (const c of record.consumers) {
    if (known.has(JSON.stringify(c))) continue;
    const reason = inseparableReason(providerTrust(snapshot), c, otherConsumers(snapshot, record, c));
    if (reason) {
      throw new FederationInputError(
        `shared-root cannot admit ${c.clusterId} to export ${record.namespace}/${record.exportName}: ${reason}. ` +
        'Give each mesh its own trust domain (meshConfig.trustDomain, e.g. <cluster>.example.com; it changes every workload identity of that mesh), ' +
        'or export in boundary mode (--mode boundary), which admits consumers by their federation certificates at the gateway',
        '--consumer',
      );
    }
  }
}

/** Stable identity of a consumer entry: one per cluster in boundary mode, per cluster and namespace in shared-root. */
function consumerKey(c: ConsumerIdentity): string {
  return `${c.clusterId}/${c.namespace ?? ''}`;
}

function mergeConsumers(existing: ConsumerIdentity[], added: ConsumerIdentity[]): ConsumerIdentity[] {
  const byKey = new Map(existing.map((c) => [consumerKey(c), c]));
  for (const c of added) byKey.set(consumerKey(c), c);
  return [...byKey.values()].sort((a, b) => consumerKey(a).localeCompare(consumerKey(b)));
}

/** The AuthorizationPolicy principals that admit one consumer of an export. */
export function consumerPrincipals(record: Pick<ExportRecord, 'mode'>, consumer: ConsumerIdentity): string[] {
  if (record.mode === 'boundary') return [principalOf(consumer.gatewaySpiffeId ?? consumerGatewaySpiffeId(consumer.clusterId))];
  if (!consumer.namespace) {
    throw new FederationInputError(`consumer ${consumer.clusterId} has no namespace: shared-root mode admits workloads by namespace and service account (--consumer-namespace)`, '--consumer-namespace');
  }
  const accounts = consumer.serviceAccounts?.length ? consumer.serviceAccounts : ['default'];
  return accounts.map((sa) => workloadPrincipal(consumer.trustDomain ?? DEFAULT_TRUST_DOMAIN, consumer.namespace!, sa));
}

/**
 * Validates an export request against the provider snapshot and fills in the defaults.
 * @throws FederationInputError for a missing Service or port, invalid names or subset labels
 */
export function resolveExport(snapshot: ProviderSnapshot, spec: ExportSpec): ExportRecord {
  checkDnsLabel(spec.providerClusterId, 'provider cluster id', '--from');
  checkDnsLabel(spec.namespace, 'namespace', '--namespace');
  checkDnsLabel(spec.service, 'Service name', '--service');
  const exportName = checkDnsLabel(spec.exportName ?? spec.service, 'export name', '--name');
  const service = findService(snapshot, spec.namespace, spec.service);
  if (!service.selector || Object.keys(service.selector).length === 0) {
    throw new FederationInputError(`Service ${spec.namespace}/${spec.service} has no pod selector, so there are no workloads to export; export a Service that selects pods`, '--service');
  }
  const port = findPort(service, spec.port);
  if (!port.name) {
    throw new FederationInputError(
      `port ${port.port} of Service ${spec.namespace}/${spec.service} has no name; Istio needs port names (e.g. http-web, tcp-db) to select the protocol: name the port`,
      '--port',
    );
  }
  const protocol = spec.protocol ?? detectProtocol(port).protocol;
  const mode = spec.mode ?? 'boundary';
  for (const [k, v] of Object.entries(spec.subset ?? {})) {
    if (!/^([a-z0-9.-]+\/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/.test(k) || !isLabelValue(v)) {
      throw new FederationInputError(`subset label ${k}=${v} is not a valid Kubernetes label (--subset)`, '--subset');
    }
  }
  const subset = spec.subset && Object.keys(spec.subset).length > 0 ? { ...spec.subset } : undefined;
  const existing = readExportRecords(snapshot, { removing: true }).find((r) => r.namespace === spec.namespace && r.exportName === exportName);
  if (existing?.removing) {
    throw new FederationInputError(
      `export ${spec.namespace}/${exportName} is being removed (an unexport is running, or one stopped half-way); ` +
      `finish it with kubectl meshfed unexport ${exportName} -n ${spec.namespace}, then export again, or choose another export name (--name)`, '--name');
  }
  if (existing && existing.service !== spec.service) {
    throw new FederationInputError(
      `export ${spec.namespace}/${exportName} already exports Service ${existing.service}; choose another export name (--name) or unexport it first`,
      '--name',
    );
  }
  return {
    providerClusterId: spec.providerClusterId,
    ...(spec.providerContext ? { providerContext: spec.providerContext } : {}),
    exportName,
    namespace: spec.namespace,
    service: spec.service,
    port: {
      number: port.port, name: port.name,
      ...(port.appProtocol ? { appProtocol: port.appProtocol } : {}),
      ...(port.targetPort !== undefined ? { targetPort: port.targetPort } : {}),
    },
    protocol,
    mode,
    ...(subset ? { subset, subsetName: subsetName(subset) } : {}),
    host: mode === 'boundary' ? exportHost(spec.providerClusterId, spec.namespace, exportName) : serviceFqdn(spec.service, spec.namespace),
    consumers: mergeConsumers(existing?.consumers ?? [], (spec.consumers ?? []).map(checkConsumer)),
  };
}

/**
 * Plans an export: the provider gateway (deployed, or an overlay, or an existing one), the federation CA,
 * the export's routing and authorization, and its record.
 *
 * ```ts
 * const plan = planExport(snapshot, { providerClusterId: 'cluster2', namespace: 'bookinfo', service: 'myreviews',
 *   port: { number: 9080 }, subset: { version: 'v2' }, consumers: [{ clusterId: 'cluster1' }] });
 * // plan.objects: apply in order; plan.endpoint: what consumers need (once the gateway has an address)
 * ```
 */
export function planExport(snapshot: ProviderSnapshot, spec: ExportSpec, options: PlanOptions = {}): ExportPlan {
  const record = resolveExport(snapshot, spec);
  const warnings = workloadWarnings(snapshot, record);
  const service = findService(snapshot, record.namespace, record.service);
  const detected = detectProtocol(findPort(service, record.port));
  if (detected.source === 'default' && (spec.protocol ?? detected.protocol) === 'TCP') {
    warnings.push(
      `port ${record.port.number} (${record.port.name}) of Service ${record.namespace}/${record.service} declares no protocol (name prefix or appProtocol): ` +
      `it is exported as TCP and consumers name their local port tcp-${record.port.name}, but this mesh's own sidecars sniff it, which server-first ` +
      `protocols (MySQL) do not survive: name the port tcp-${record.port.name} or set appProtocol: tcp`,
    );
  }
  if (spec.protocol && spec.protocol !== detected.protocol) {
    warnings.push(
      `port ${record.port.number} (${record.port.name}) of Service ${record.namespace}/${record.service} is ${detected.protocol} for Istio ` +
      `(${detected.source === 'default' ? 'no recognised protocol' : `from its ${detected.source}`}) but is exported as ${spec.protocol}; ` +
      'the provider sidecars still treat it as Istio does: prefer naming the port (e.g. http-…, tcp-…) over --protocol',
    );
  }
  return planProvider(snapshot, record, options, warnings, 'export');
}

/**
 * Adds (or updates) a consumer of an existing export and returns the export's new plan.
 * @throws FederationInputError when the export does not exist
 */
export function planAdmission(
  snapshot: ProviderSnapshot,
  input: { namespace: string; exportName: string; consumer: ConsumerIdentity },
  options: PlanOptions = {},
): ExportPlan {
  const record = existingRecord(snapshot, input.namespace, input.exportName, 'admit');
  const consumer = checkConsumer(input.consumer);
  consumerPrincipals(record, consumer);
  return planProvider(snapshot, { ...record, consumers: mergeConsumers(record.consumers, [consumer]) }, options, [], 'admit');
}

/**
 * Removes a consumer from an export (all its namespaces when `consumerNamespace` is omitted). Its client
 * certificate stays valid until it expires, but the provider no longer admits its identity.
 */
export function planRevoke(
  snapshot: ProviderSnapshot,
  input: { namespace: string; exportName: string; consumerClusterId: string; consumerNamespace?: string },
  options: PlanOptions = {},
): ExportPlan {
  const record = existingRecord(snapshot, input.namespace, input.exportName, 'remove');
  const consumers = record.consumers.filter((c) =>
    !(c.clusterId === input.consumerClusterId && (input.consumerNamespace === undefined || c.namespace === input.consumerNamespace)));
  const plan = planProvider(snapshot, { ...record, consumers }, options, [], 'revoke');
  if (consumers.length === record.consumers.length) {
    plan.warnings.push(`consumer ${input.consumerClusterId} was not admitted to export ${input.namespace}/${input.exportName}; nothing to revoke`);
  }
  if (record.mode === 'shared-root') {
    const revoked = record.consumers.filter((c) => !consumers.includes(c));
    // Who the workload guard still admits: the consumers of the shared-root exports of the same Service.
    const remaining = [
      ...readExportRecords(snapshot).filter((r) => r.mode === 'shared-root' && r.namespace === record.namespace && r.service === record.service && r.exportName !== record.exportName).flatMap((r) => r.consumers),
      ...consumers,
    ];
    const principalsOf = (c: ConsumerIdentity): string[] => consumerPrincipals(record, c);
    const effects = revoked.map((c) => revocationEffect(providerTrust(snapshot), c, principalsOf, remaining));
    plan.revocation = effects.find((e) => !e.effective) ?? { effective: true };
  }
  return plan;
}

/**
 * Removes an export: its own objects (explicitly and by label), and its part of the shared objects (host list,
 * subsets, workload guard), which are recomputed from the remaining exports. Gateways and the federation CA stay.
 */
export function planUnexport(snapshot: ProviderSnapshot, input: { namespace: string; exportName: string }): ClusterPlan {
  // Its own record may be marked as being removed (see REMOVING_ANNOTATION); exports others are removing are gone.
  const record = existingRecord(snapshot, input.namespace, input.exportName, 'remove', { removing: true });
  const remaining = readExportRecords(snapshot).filter((r) => !(r.namespace === record.namespace && r.exportName === record.exportName));
  // Where the export is served, which need not be where this command would place a new one.
  const home = exportLocation(snapshot, record)?.namespace ?? homeNamespaceOf(snapshot);
  const plan = emptyPlan(snapshot.clusterId);
  const own = exportOwnObjects(snapshot, record, home, { placement: undefined });
  plan.remove.push(...own.map((o) => ({ apiVersion: o.apiVersion, kind: o.kind, namespace: o.metadata.namespace, name: o.metadata.name })).reverse());
  // The server certificate's published copy, when there is one (an export made by an earlier version has none).
  const published = publishedCertificatesName(names.export(record.namespace, record.exportName));
  if (findObject(snapshot, 'ConfigMap', home, published)) plan.remove.push({ apiVersion: 'v1', kind: 'ConfigMap', namespace: home, name: published });
  const served = exportsServedFrom(snapshot, remaining, home);
  const shared = sharedObjects(snapshot, record, remaining, home, servingPlacement(snapshot, served, home), served);
  plan.objects.push(...shared.objects);
  plan.remove.push(...shared.remove);
  // The CA's published certificates go with the last export served from here when others are served elsewhere (a
  // copy is beside their records); after the very last export they stay, as the CA does.
  if (!served.length && remaining.length && findObject(snapshot, 'ConfigMap', home, FEDERATION_CA_CERTIFICATES)) {
    plan.remove.push({ apiVersion: 'v1', kind: 'ConfigMap', namespace: home, name: FEDERATION_CA_CERTIFICATES });
  }
  plan.prune.push(pruneSpec({ [LABELS.export]: exportLabel(record.namespace, record.exportName) }, []));
  return finishPlan(plan);
}

/** @param purpose what the caller does with the export: admitting to it needs it exported first; removing does not. */
function existingRecord(snapshot: ProviderSnapshot, namespace: string, exportName: string, purpose: 'admit' | 'remove', query: RecordQuery = {}): ExportRecord {
  const record = readExportRecords(snapshot, query).find((r) => r.namespace === namespace && r.exportName === exportName);
  if (!record) {
    const known = readExportRecords(snapshot).map((r) => `${r.namespace}/${r.exportName}`).join(', ') || 'none';
    const next = purpose === 'admit' ? 'run kubectl meshfed export first' : 'check -n and --name (kubectl meshfed status lists the exports)';
    throw new FederationInputError(`export ${namespace}/${exportName} does not exist in cluster ${snapshot.clusterId} (exports: ${known}); ${next}`, '--name');
  }
  return record;
}

function pruneSpec(selector: Record<string, string>, keep: KubeObject[]): ClusterPlan['prune'][number] {
  return { selector: { [MANAGED_BY_LABEL]: MANAGED_BY, ...selector }, kinds: [...PRUNABLE_KINDS], keep: keep.map(objectKey) };
}

function workloadWarnings(snapshot: ProviderSnapshot, record: ExportRecord): string[] {
  // Warnings only: pods come and go, an export may be created before its workloads.
  const warnings: string[] = [];
  if (!snapshot.pods) return warnings;
  const service = findService(snapshot, record.namespace, record.service);
  const matches = (labels: Record<string, string>, selector: Record<string, string>): boolean =>
    Object.entries(selector).every(([k, v]) => labels[k] === v);
  const selected = snapshot.pods.filter((p) => p.namespace === record.namespace && matches(p.labels, service.selector!));
  const target = record.subset ? selected.filter((p) => matches(p.labels, record.subset!)) : selected;
  const what = record.subset ? `subset ${Object.entries(record.subset).map(([k, v]) => `${k}=${v}`).join(',')} of Service ${record.namespace}/${record.service}` : `Service ${record.namespace}/${record.service}`;
  if (target.filter((p) => p.ready).length === 0) warnings.push(`no ready pod backs ${what}: consumers will get 503 errors until one is ready`);
  if (target.some((p) => p.sidecar === false)) warnings.push(`some pods of ${what} run without an Istio sidecar: the federation gateway reaches them in plain text`);
  return warnings;
}

/**
 * @param purpose what the caller does: only `export` may move an export to another gateway (refused while consumers
 * are admitted, unless `options.allowGatewayMove`); admitting or revoking a consumer keeps it where it is served.
 */
function planProvider(
  snapshot: ProviderSnapshot, given: ExportRecord, options: PlanOptions, warnings: string[], purpose: 'export' | 'admit' | 'revoke',
): ExportPlan {
  checkSupportedIstio(snapshot);
  const home = homeNamespaceOf(snapshot);
  if (home === FEDERATION_CA_NAMESPACE) {
    throw new FederationInputError(
      `namespace ${FEDERATION_CA_NAMESPACE} holds the federation CA and must stay free of gateways (a gateway can read every Secret of its namespace): ` +
      'choose another gateway namespace (--gateway-namespace)',
      '--gateway-namespace',
    );
  }
  let record = withOwnerSubset(snapshot, given, home);
  const records = readExportRecords(snapshot);
  const isThis = (r: ExportRecord): boolean => r.namespace === record.namespace && r.exportName === record.exportName;
  const previous = records.find(isThis);
  if (purpose !== 'revoke') checkSeparable(snapshot, record, previous);
  const others = records.filter((r) => !isThis(r));
  const role = record.mode === 'boundary' ? 'ingress' : 'eastwest';
  const setup = gatewaySetup(snapshot, role);
  const { coveredBy: _stale, ...uncovered } = record;
  const cover = record.mode === 'shared-root' ? coveringPassthrough(snapshot, setup.placement, record.host) : undefined;
  record = cover ? { ...uncovered, coveredBy: cover } : uncovered;
  if (cover) {
    warnings.push(
      `Gateway ${cover.gateway} already passes ${cover.hosts.join(', ')} through on port ${cover.port} of the gateway this export uses (${describeGatewayAt({ namespace: home, selector: cover.selector })}), ` +
      `which covers ${record.host}: meshfed adds no server of its own for it (a second AUTO_PASSTHROUGH server for the same service makes istiod emit duplicate filter chains, and Envoy rejects the listener). ` +
      `The explicit host list no longer limits exposure there: every service matching ${cover.hosts.join(', ')} is reachable through that gateway by anyone the mesh's root CA trusts; ` +
      'only the workload guard protects the export. To limit exposure, serve shared-root exports from a gateway without that Gateway (e.g. meshfed\'s own, without --gateway-selector)',
    );
  }
  const all = [...others, record];
  const clash = record.mode === 'shared-root' ? plainTextClash(snapshot, setup.placement) : undefined;
  if (clash) {
    if (purpose === 'revoke') warnings.push(clash);
    else throw new FederationInputError(clash, '--gateway-selector');
  }
  const hidden = exportedServiceHidden(snapshot, record, setup.placement.namespace);
  if (hidden) {
    // Revoking must still work: it narrows access, it never needs the gateway to see the Service.
    if (purpose === 'revoke') warnings.push(hidden);
    else throw new FederationInputError(hidden, '--service');
  }
  const from = previous ? exportLocation(snapshot, previous) : undefined;
  // A change of mode changes the consumers' path anyway (another gateway role, another SNI): only a move within one
  // mode is checked, but objects left in another namespace are cleaned up either way.
  const moving = from !== undefined && previous!.mode === record.mode && movesExport(from, setup.placement);
  const relocated = from !== undefined && from.namespace !== home;
  // A namespace has one passthrough Gateway: placing a shared-root export on another gateway workload there moves
  // every shared-root export served from that namespace with it.
  const passengers = record.mode !== 'shared-root' ? [] : exportsServedFrom(snapshot, others, home).filter((r) => {
    const at = r.mode === 'shared-root' ? exportLocation(snapshot, r) : undefined;
    return at !== undefined && movesExport(at, setup.placement);
  });
  const plan = emptyPlan(snapshot.clusterId);
  if (moving || passengers.length) {
    plan.warnings.push(...checkMove(snapshot, { record: previous ?? record, ...(moving ? { from } : {}), passengers }, setup.placement, role, purpose, options));
  }
  plan.warnings.push(...warnings, ...setup.warnings);
  if (setup.overlay) plan.overlay = setup.overlay;
  plan.objects.push(...setup.objects);

  // The CA key lives in a namespace of its own: a gateway can read every Secret of its namespace (its Role).
  const caNamespace = FEDERATION_CA_NAMESPACE;
  const found = chooseFederationCa(snapshot, home, options.now);
  const caState: FederationCaState = options.federationCa ?? {
    current: found.ca ?? createFederationCA({ provider: snapshot.clusterId, ...(options.now ? { now: options.now } : {}) }),
    ...(found.next ? { next: found.next } : {}),
    renewed: found.renewed,
  };
  const ca = caState.current;
  plan.objects.push(kubeObject('v1', 'Namespace', caNamespace, undefined, { [MANAGED_BY_LABEL]: MANAGED_BY }, {}));
  plan.objects.push(...federationCaObjects(caState, home));
  plan.secretsWithPrivateKeys.push(`${caNamespace}/${FEDERATION_CA_SECRET}`);
  for (const copy of found.copies) {
    // Left beside a gateway by an earlier version: the key moves out of the gateway's reach.
    plan.remove.push({ apiVersion: 'v1', kind: 'Secret', namespace: copy.metadata.namespace!, name: FEDERATION_CA_SECRET });
  }
  if (found.copies.length) {
    plan.warnings.push(`the federation CA moves to namespace ${caNamespace} (from ${found.copies.map((c) => c.metadata.namespace).join(', ')}), out of the gateways' reach`);
  }
  for (const other of found.others) {
    plan.warnings.push(
      `Secret ${other.metadata.namespace}/${FEDERATION_CA_SECRET} holds another federation CA than ${found.foundIn}/${FEDERATION_CA_SECRET}, which this export uses: ` +
      `consumers whose certificates it signed are refused; to keep them, delete ${found.foundIn}/${FEDERATION_CA_SECRET} and run the export again (the other CA then moves to ${caNamespace}), ` +
      `otherwise delete ${other.metadata.namespace}/${FEDERATION_CA_SECRET} and have those consumers import again`,
    );
  }

  const own = exportOwnObjects(snapshot, record, home, { placement: setup.placement, ca, trust: trustBundle(caState), options, warnings: plan.warnings });
  plan.objects.push(...own);
  if (record.mode === 'boundary') plan.secretsWithPrivateKeys.push(`${home}/${names.export(record.namespace, record.exportName)}`);
  const servedHere = [...exportsServedFrom(snapshot, others, home), record];
  // A boundary export leaves the passthrough Gateway of the shared-root exports on the gateway it is on.
  const passthrough = record.mode === 'shared-root' ? setup.placement : servingPlacement(snapshot, servedHere, home);
  const shared = sharedObjects(snapshot, record, all, home, passthrough, servedHere);
  plan.objects.push(...shared.objects);
  plan.remove.push(...shared.remove);
  plan.warnings.push(...shared.warnings);
  if (relocated) {
    // The export's own objects there go with the prune below (they carry its label); what it shared with the
    // exports still served from there is re-planned from those alone.
    const left = exportsServedFrom(snapshot, others, from.namespace);
    const behind = sharedObjects(snapshot, record, all, from.namespace, servingPlacement(snapshot, left, from.namespace), left, false);
    plan.objects.push(...behind.objects);
    plan.remove.push(...behind.remove);
    // The CA's published certificates stay beside the records left there, and go with the last of them.
    const publishedThere = federationCaObjects(caState, from.namespace).find((o) => o.kind === 'ConfigMap')!;
    if (left.length) plan.objects.push(publishedThere);
    else if (findObject(snapshot, 'ConfigMap', from.namespace, FEDERATION_CA_CERTIFICATES)) {
      plan.remove.push({ apiVersion: 'v1', kind: 'ConfigMap', namespace: from.namespace, name: FEDERATION_CA_CERTIFICATES });
    }
  }
  if (record.consumers.length === 0) {
    plan.warnings.push(`export ${record.namespace}/${record.exportName} admits no consumer: a consumer is admitted when it imports the export (kubectl meshfed import --from <provider context>) or when you answer its import request (kubectl meshfed admit)`);
  }

  checkNotForeign(snapshot, plan.objects);
  const label = { [LABELS.export]: exportLabel(record.namespace, record.exportName) };
  plan.prune.push(pruneSpec(label, plan.objects.filter((o) => o.metadata.labels?.[LABELS.export] === label[LABELS.export])));

  let endpoint: ExportEndpoint | undefined;
  if (snapshot.gatewayAddress) {
    endpoint = endpointOf(record, { address: snapshot.gatewayAddress, port: setup.placement.port }, snapshot);
  } else {
    plan.warnings.push(`the provider gateway ${setup.placement.namespace}/${setup.placement.serviceName} has no external address yet: consumers cannot import until its LoadBalancer gets one`);
  }
  const admittedPrincipals = record.mode === 'shared-root'
    ? [...new Set(record.consumers.flatMap((c) => consumerPrincipals(record, c)))].sort().map((p) => `spiffe://${p}`)
    : undefined;
  return { ...finishPlan(plan), record, ...(endpoint ? { endpoint } : {}), federationCaPem: ca.certificatePem, ...(admittedPrincipals ? { admittedPrincipals } : {}) };
}

/**
 * Why the gateway in `gatewayNamespace` cannot see the exported Service, with the exact change; undefined when it can.
 * A gateway proxy knows only the Services exported to its namespace (`networking.istio.io/exportTo`, else
 * `meshConfig.defaultServiceExportTo`): an AUTO_PASSTHROUGH server builds filter chains for those alone
 * (`builtAutoPassthroughFilterChains` iterates `push.Services(proxy)` at 1.10.0, `SidecarScope.Services()` at 1.18.0),
 * and a VirtualService route to an unseen host has no cluster.
 */
function exportedServiceHidden(snapshot: ProviderSnapshot, record: ExportRecord, gatewayNamespace: string): string | undefined {
  const service = findService(snapshot, record.namespace, record.service);
  if (serviceVisibleTo({ namespace: service.namespace, exportTo: service.exportTo }, snapshot.defaultServiceExportTo, gatewayNamespace)) return undefined;
  const why = service.exportTo
    ? `its annotation ${SERVICE_EXPORT_TO_ANNOTATION}=${service.exportTo.join(',')}`
    : `the mesh's defaultServiceExportTo ${JSON.stringify(snapshot.defaultServiceExportTo)}`;
  const value = widenedExportTo(service.exportTo, snapshot.defaultServiceExportTo, [gatewayNamespace]);
  return `Service ${record.namespace}/${record.service} is not visible to the federation gateway in namespace ${gatewayNamespace} (${why}): ` +
    'the gateway would have no route to it and every import would fail silently; make it visible there: ' +
    `kubectl annotate service ${record.service} -n ${record.namespace} ${SERVICE_EXPORT_TO_ANNOTATION}=${value} --overwrite`;
}

/** What a consumer needs to reach an export through the provider gateway at `gateway`. */
export function endpointOf(record: ExportRecord, gateway: { address: string; port: number }, snapshot: Pick<ProviderSnapshot, 'trustDomain' | 'pods' | 'services'>): ExportEndpoint {
  const base: ExportEndpoint = {
    providerClusterId: record.providerClusterId,
    namespace: record.namespace,
    exportName: record.exportName,
    service: record.service,
    port: { number: record.port.number, name: record.port.name, ...(record.port.appProtocol ? { appProtocol: record.port.appProtocol } : {}) },
    protocol: record.protocol,
    mode: record.mode,
    gateway,
    sni: record.mode === 'boundary' ? record.host : passthroughSni(record.port.number, record.subsetName, record.host),
  };
  if (record.mode === 'boundary') return base;
  const service = snapshot.services.find((s) => s.namespace === record.namespace && s.name === record.service);
  const accounts = [...new Set((snapshot.pods ?? [])
    .filter((p) => p.namespace === record.namespace && service?.selector && Object.entries(service.selector).every(([k, v]) => p.labels[k] === v))
    .map((p) => p.serviceAccount)
    .filter((sa): sa is string => !!sa))].sort();
  return {
    ...base,
    trustDomain: snapshot.trustDomain ?? DEFAULT_TRUST_DOMAIN,
    ...(accounts.length ? { serviceAccounts: accounts } : {}),
    ...(record.subsetName ? { subsetName: record.subsetName } : {}),
  };
}

/**
 * The federation CA that signs client certificates, carried by a provider plan's CA Secret: the next CA during a CA
 * rotation ({@link clientSigner}), else the current one.
 * @throws FederationInputError when the plan has no CA Secret
 */
export function federationCaOf(plan: ClusterPlan): CertificateAndKey {
  return clientSigner(federationCaStateOf(plan));
}

/**
 * The whole federation CA state carried by a provider plan's CA Secret (current CA, and the next one during a CA rotation).
 * @throws FederationInputError when the plan has no CA Secret
 */
export function federationCaStateOf(plan: ClusterPlan): FederationCaState {
  const data = readSecret(plan.objects.find((o) => o.kind === 'Secret' && o.metadata.name === FEDERATION_CA_SECRET));
  if (!data?.['ca.crt'] || !data['ca.key']) throw new FederationInputError('the provider plan carries no federation CA Secret');
  const next = data[NEXT_CA_KEYS.certificate] && data[NEXT_CA_KEYS.key]
    ? { certificatePem: data[NEXT_CA_KEYS.certificate]!, privateKeyPem: data[NEXT_CA_KEYS.key]! } : undefined;
  let renewed: string[] = [];
  try {
    renewed = next ? JSON.parse(data[NEXT_CA_KEYS.renewed] ?? '[]') as string[] : [];
  } catch {
    renewed = [];
  }
  return { current: { certificatePem: data['ca.crt'], privateKeyPem: data['ca.key'] }, ...(next ? { next } : {}), renewed };
}

/**
 * Notes in a provider plan's CA Secret that the next CA signed a client certificate for `consumerClusterId`
 * (nothing to note outside a CA rotation): finishing the rotation checks that every admitted consumer has one.
 */
export function noteClientRenewal(plan: ClusterPlan, consumerClusterId: string): void {
  const state = federationCaStateOf(plan);
  if (!state.next || state.renewed.includes(consumerClusterId)) return;
  const home = plan.objects.find((o) => o.kind === 'ConfigMap' && o.metadata.name === FEDERATION_CA_CERTIFICATES)?.metadata.namespace ?? DEFAULT_GATEWAY_NAMESPACE;
  const noted = federationCaObjects({ ...state, renewed: [...state.renewed, consumerClusterId] }, home);
  plan.objects = plan.objects.map((o) => noted.find((n) => n.kind === o.kind && n.metadata.name === o.metadata.name && n.metadata.namespace === o.metadata.namespace) ?? o);
}

/**
 * The passthrough gateway the shared-root exports `served` from `namespace` are on (their shared Gateway's selector
 * and port), so that re-planning that Gateway keeps it there; undefined when none of them is shared-root.
 */
function servingPlacement(snapshot: ProviderSnapshot, served: ExportRecord[], namespace: string): GatewayPlacement | undefined {
  const at = served.filter((r) => r.mode === 'shared-root').map((r) => exportLocation(snapshot, r)).find((l) => l?.selector);
  if (!at?.selector) return undefined;
  return { namespace, selector: at.selector, serviceName: GATEWAY_NAMES.eastwest, port: at.port ?? FEDERATION_PORT, deployed: false };
}

/**
 * Whether an export may move from where it is served to `placement`, and what the user must then do. Consumers
 * connect to the gateway's address and port, which a move changes: with consumers admitted it is refused unless
 * asked for, and admission or revocation never moves an export.
 * @returns warnings for a move that goes ahead
 * @throws FederationInputError when the move is refused
 */
function checkMove(
  snapshot: ProviderSnapshot, move: { record: ExportRecord; from?: ExportLocation; passengers: ExportRecord[] }, placement: GatewayPlacement,
  role: 'ingress' | 'eastwest', purpose: 'export' | 'admit' | 'revoke', options: PlanOptions,
): string[] {
  const from = move.from ?? exportLocation(snapshot, move.passengers[0]!)!;
  const flags = gatewayFlagsFor(snapshot, from, role);
  if (move.from && purpose !== 'export') {
    throw new FederationInputError(
      `export ${move.record.namespace}/${move.record.exportName} is served by the gateway in ${describeGatewayAt(from)}, not by the one this command selected (${describeGatewayAt(placement)}); ` +
      `${purpose === 'admit' ? 'admitting' : 'revoking'} a consumer does not move an export: run the command with ${flags} ` +
      '(kubectl meshfed export moves an export to another gateway)',
      '--gateway-selector',
    );
  }
  const affected = [...(move.from ? [move.record] : []), ...move.passengers];
  const consumers = [...new Set(affected.flatMap((r) => r.consumers.map((c) => c.clusterId)))].sort();
  if (consumers.length === 0) return [];
  const names = affected.map((r) => `${r.namespace}/${r.exportName}`);
  const what = names.length > 1 ? `exports ${names.join(', ')} (one passthrough Gateway serves them)` : `export ${names[0]}`;
  const who = `consumer${consumers.length > 1 ? 's' : ''} ${consumers.join(', ')}`;
  const it = names.length > 1 ? 'them' : 'it';
  // No flag names here: the export command renames some of the core's flags in its errors.
  const again = 'kubectl meshfed import in each consumer, or a new bundle from kubectl meshfed admit';
  if (!options.allowGatewayMove) {
    throw new FederationInputError(
      `${what} ${names.length > 1 ? 'are' : 'is'} served by the gateway in ${describeGatewayAt(from)} and ${who} ${consumers.length > 1 ? 'are' : 'is'} admitted to ${it}: ` +
      `moving ${it} to the gateway in ${describeGatewayAt(placement)} changes the address they connect to, so their imports stop working until they import again. ` +
      `To keep ${it} where ${names.length > 1 ? 'they are' : 'it is'}, run the export with ${flags}; to move ${it} anyway, add --force, then import ${it} again (${again})`,
      '--gateway-selector',
    );
  }
  return [`${what} ${names.length > 1 ? 'move' : 'moves'} from the gateway in ${describeGatewayAt(from)} to the gateway in ${describeGatewayAt(placement)}: ${who} reach ${it} again once they import ${it} again (${again})`];
}

function serverCertificate(snapshot: ProviderSnapshot, home: string, name: string, host: string, ca: CertificateAndKey, options: PlanOptions, warnings?: string[]): CertificateAndKey {
  const now = options.now ?? new Date();
  const data = readSecret(findObject(snapshot, 'Secret', home, name));
  const certificatePem = data?.['tls.crt'];
  const privateKeyPem = data?.['tls.key'];
  if (certificatePem && privateKeyPem && !options.renewServerCertificates) {
    // Reuse while it still fits: a re-run never re-keys a working gateway; renewing ahead of expiry is `rotate`'s
    // job (status and verify warn 30 days ahead). One that no longer fits is replaced, and the plan says why.
    let why = 'it cannot be read';
    try {
      const info = inspectCertificate(certificatePem, now);
      const chain = verifyCertificateChain(certificatePem, [ca.certificatePem], now);
      if (!info.dnsNames.includes(host)) why = `it does not name ${host}`;
      else if (info.daysLeft < (options.renewBeforeDays ?? 0)) why = `it expires on ${info.notAfter.toISOString().slice(0, 10)}`;
      else if (!chain.ok) why = `it is not valid under the federation CA (${chain.reason})`;
      else if (!keyMatchesCertificate(privateKeyPem, certificatePem)) why = 'its key does not match';
      else return { certificatePem, privateKeyPem };
    } catch {
      // An unreadable certificate is replaced below.
    }
    warnings?.push(`the server certificate in Secret ${home}/${name} is replaced (new key): ${why}`);
  }
  return issueServerCertificate({
    ca, hosts: [host], now, ...(options.certificateValidityDays ? { validityDays: options.certificateValidityDays } : {}),
  });
}

/** Objects that belong to one export alone (all carry its export label). */
function exportOwnObjects(
  snapshot: ProviderSnapshot, record: ExportRecord, home: string,
  context: { placement: ReturnType<typeof gatewaySetup>['placement'] | undefined; ca?: CertificateAndKey; trust?: string; options?: PlanOptions; warnings?: string[] },
): KubeObject[] {
  const name = names.export(record.namespace, record.exportName);
  const labels = meshfedLabels('export', { [LABELS.export]: exportLabel(record.namespace, record.exportName) });
  const out: KubeObject[] = [];
  if (record.mode === 'boundary') {
    const placement = context.placement ?? gatewaySetup(snapshot, 'ingress').placement;
    if (context.ca) {
      const cert = serverCertificate(snapshot, home, name, record.host, context.ca, context.options ?? {}, context.warnings);
      // Its certificates are also published beside it (no key), for whoever may only look (status, verify).
      out.push(...withPublishedCertificates(kubeObject('v1', 'Secret', name, home, labels, {
        type: 'kubernetes.io/tls',
        // The SDS layout Istio reads for MUTUAL gateways: certificate, key and the CA that signs client certificates.
        data: secretData({ 'tls.crt': cert.certificatePem, 'tls.key': cert.privateKeyPem, 'ca.crt': context.trust ?? context.ca.certificatePem }),
      })));
    } else {
      out.push(kubeObject('v1', 'Secret', name, home, labels, {}));
    }
    const serverProtocol = record.protocol === 'HTTP' ? 'HTTPS' : 'TLS';
    const admission = admissionPlan(snapshot, record, placement);
    out.push(kubeObject(API.networking, 'Gateway', name, home, labels, {
      spec: {
        selector: { ...placement.selector },
        servers: [{
          port: { number: placement.port, name: `${serverProtocol.toLowerCase()}-${name}`, protocol: serverProtocol },
          // "./": only VirtualServices of this namespace (meshfed's) can bind to the export's host on this Gateway.
          hosts: [`./${record.host}`],
          tls: { mode: 'MUTUAL', credentialName: name, ...(admission.subjectAltNames.length ? { subjectAltNames: admission.subjectAltNames } : {}) },
        }],
      },
    }));
    const destination = {
      host: serviceFqdn(record.service, record.namespace),
      port: { number: record.port.number },
      ...(record.subsetName ? { subset: record.subsetName } : {}),
    };
    out.push(kubeObject(API.networking, 'VirtualService', name, home, labels, {
      spec: {
        hosts: [record.host],
        gateways: [name],
        exportTo: ['.'],
        ...(record.protocol === 'HTTP'
          // The workload sees its Service's own name, not the federation host: apps and policies that match the
          // Host keep working (a route-level rewrite: host_rewrite_literal on every Istio from 1.9,
          // pilot/pkg/networking/core/v1alpha3/route/route.go translateRoute).
          ? { http: [{ route: [{ destination }], rewrite: { authority: serviceFqdn(record.service, record.namespace) } }] }
          : { tcp: [{ match: [{ port: placement.port }], route: [{ destination }] }] }),
      },
    }));
    out.push(kubeObject(API.security, 'AuthorizationPolicy', name, home, labels, {
      spec: { selector: { matchLabels: { ...placement.selector } }, ...admission.policy },
    }));
  }
  out.push(exportRecordObject(record, home));
  return out;
}

/** How a boundary export admits its consumers at the provider gateway. */
interface AdmissionPlan {
  /** SPIFFE ids the gateway's TLS handshake accepts (empty: any certificate of the federation CA). */
  subjectAltNames: string[];
  /** The AuthorizationPolicy's `action` and `rules`. */
  policy: { action: 'ALLOW' | 'DENY'; rules?: unknown[] };
}

/**
 * Who may use an export, in what the provider's Istio can evaluate and without touching traffic that is not the
 * export's:
 *
 * - The consumers' SPIFFE ids are checked where Istio sees them. A gateway's HTTP authorization does not see the
 *   principal of a `MUTUAL` client certificate before Istio 1.11 ({@link gatewayHttpSeesClientPrincipal}), so an
 *   HTTP export there admits them in the TLS handshake (`subjectAltNames` of its Gateway server) and its policy
 *   names no principal. TCP rules see the certificate on every release.
 * - On meshfed's own gateway an ALLOW policy admits them (an export without consumers: an ALLOW policy without
 *   rules, which admits nobody). On a gateway meshfed does not own, an ALLOW policy would deny every request it does
 *   not match, the owner's own routes included: a DENY policy scoped to the export's SNI host denies what is not
 *   admitted there, and nothing else.
 */
function admissionPlan(snapshot: ProviderSnapshot, record: ExportRecord, placement: GatewayPlacement): AdmissionPlan {
  const spiffeIds = [...new Set(record.consumers.map((c) => c.gatewaySpiffeId ?? consumerGatewaySpiffeId(c.clusterId)))].sort();
  const principals = [...new Set(record.consumers.flatMap((c) => consumerPrincipals(record, c)))].sort();
  const http = record.protocol === 'HTTP';
  const inHandshake = http && !gatewayHttpSeesClientPrincipal(snapshot.istioVersion);
  const sni = { key: 'connection.sni', values: [record.host] };
  const subjectAltNames = inHandshake ? spiffeIds : [];
  if (ownsGateway(snapshot, placement, 'ingress')) {
    // An ALLOW policy without rules admits nobody: the export is closed until a consumer is admitted.
    if (principals.length === 0) return { subjectAltNames, policy: { action: 'ALLOW' } };
    return {
      subjectAltNames,
      policy: {
        action: 'ALLOW',
        rules: [{
          ...(inHandshake ? {} : { from: [{ source: { principals } }] }),
          ...(http ? { to: [{ operation: { hosts: [record.host] } }] } : {}),
          when: [sni],
        }],
      },
    };
  }
  // Every rule carries the export's SNI condition: the shared gateway's other traffic never matches.
  if (principals.length === 0) return { subjectAltNames, policy: { action: 'DENY', rules: [{ when: [sni] }] } };
  const rules: unknown[] = [];
  if (!inHandshake) rules.push({ from: [{ source: { notPrincipals: principals } }], when: [sni] });
  if (http) rules.push({ to: [{ operation: { notHosts: [record.host] } }], when: [sni] });
  return { subjectAltNames, policy: { action: 'DENY', rules } };
}

/**
 * Objects computed from several exports: the subsets DestinationRule of the export's Service, and in
 * shared-root mode the AUTO_PASSTHROUGH Gateway and the workload guard. Each is re-planned from `all` (the
 * records that remain) or removed when nothing needs it any more.
 */
function sharedObjects(
  snapshot: ProviderSnapshot, focus: ExportRecord, all: ExportRecord[], home: string,
  placement: ReturnType<typeof gatewaySetup>['placement'] | undefined, served: ExportRecord[], guard = true,
): { objects: KubeObject[]; remove: ClusterPlan['remove']; warnings: string[] } {
  const objects: KubeObject[] = [];
  const remove: ClusterPlan['remove'] = [];
  const warnings: string[] = [];
  const removeIfPresent = (apiVersion: string, kind: string, namespace: string, name: string): void => {
    if (findObject(snapshot, kind, namespace, name)) remove.push({ apiVersion, kind, namespace, name });
  };
  const isSameService = (r: ExportRecord): boolean => r.namespace === focus.namespace && r.service === focus.service;
  const sameService = all.filter(isSameService);
  const fqdn = serviceFqdn(focus.service, focus.namespace);

  // The subsets of the exports served from this namespace that the Service owner's rule (the one the gateways here
  // get without meshfed's) does not define. When it defines them all, meshfed writes no rule; otherwise one rule per
  // Service and gateway namespace that carries the owner's traffic policy and subsets, since Istio uses the rule of
  // the proxy's namespace alone (see destination-rules.ts).
  const owner = ownerDestinationRule(snapshot, home, fqdn, focus.namespace);
  const subsets = new Map<string, Record<string, string>>();
  for (const r of served.filter(isSameService)) {
    if (!r.subset || !r.subsetName) continue;
    const theirs = owner?.subsets.find((s) => s.name === r.subsetName);
    if (theirs && sameLabels(theirs.labels, r.subset)) continue;
    if (theirs) {
      throw new FederationInputError(
        `subset ${r.subsetName} of DestinationRule ${describeRules(owner!)} selects other pods than export ${r.namespace}/${r.exportName} (${Object.entries(r.subset).map(([k, v]) => `${k}=${v}`).join(',')}); ` +
        'rename that subset, or export with other labels (--subset)', '--subset');
    }
    subsets.set(r.subsetName, r.subset);
  }
  const subsetsName = names.subsets(focus.namespace, focus.service);
  if (subsets.size > 0) {
    const needsOwn = [...subsets.keys()].includes(focus.subsetName ?? '') && served.some((r) => r.namespace === focus.namespace && r.exportName === focus.exportName);
    const what = `subset ${focus.subsetName} (${Object.entries(focus.subset ?? {}).map(([k, v]) => `${k}=${v}`).join(',')}) of Service ${focus.namespace}/${focus.service}`;
    if (needsOwn && snapshot.existingGateway?.namespace === home) {
      throw new FederationInputError(
        `export ${focus.namespace}/${focus.exportName} needs ${what}, which no DestinationRule the gateways in ${home} use defines. meshfed will not write one into ${home}: ` +
        `gateways it does not own run there, and Istio gives every proxy of a namespace that namespace's rule for the host, hiding the Service owner's rule from them. ` +
        `Add a subset with labels ${Object.entries(focus.subset ?? {}).map(([k, v]) => `${k}: ${v}`).join(', ')} to ${owner ? `DestinationRule ${describeRules(owner)}` : `a DestinationRule of ${fqdn} in namespace ${focus.namespace}`} ` +
        '(exported to the gateway\'s namespace), or export through meshfed\'s own gateway (without --gateway-selector)', '--gateway-selector');
    }
    if (needsOwn && owner && owner.namespace === home) {
      throw new FederationInputError(
        `DestinationRule ${describeRules(owner)} for ${fqdn} is in the gateway namespace ${home}, where meshfed would write the rule with ${what}; ` +
        `add that subset to it instead (labels ${Object.entries(focus.subset ?? {}).map(([k, v]) => `${k}: ${v}`).join(', ')})`, '--subset');
    }
    objects.push(kubeObject(API.networking, 'DestinationRule', subsetsName, home,
      meshfedLabels('subsets', { [LABELS.service]: serviceLabel(focus.namespace, focus.service) }), {
        spec: {
          host: fqdn,
          // Only meshfed's gateways in this namespace see it: the mesh's own routing to the Service is untouched.
          exportTo: ['.'],
          ...(owner?.trafficPolicy ? { trafficPolicy: structuredClone(owner.trafficPolicy) } : {}),
          subsets: [
            ...(owner?.subsets ?? []).map((s) => structuredClone(s)),
            ...[...subsets.entries()].sort(([a], [b]) => a.localeCompare(b)).map(([name, labels]) => ({ name, labels })),
          ],
        },
      }));
    if (owner) warnings.push(`DestinationRule ${home}/${subsetsName} carries the traffic policy and subsets of ${describeRules(owner)}; run the export again when that rule changes (kubectl meshfed verify tells)`);
  } else {
    removeIfPresent(API.networking, 'DestinationRule', home, subsetsName);
  }

  const sharedRoot = served.filter((r) => r.mode === 'shared-root');
  const gw = sharedRoot.length > 0 ? placement ?? gatewaySetup(snapshot, 'eastwest').placement : undefined;
  // Hosts another AUTO_PASSTHROUGH server of that workload and port already covers get no server of ours: the two
  // would produce the same filter chain match, which Envoy rejects (see coveringPassthrough).
  const uncovered = gw ? sharedRoot.filter((r) => !coveringPassthrough(snapshot, gw, r.host)) : [];
  if (gw && uncovered.length > 0) {
    objects.push(kubeObject(API.networking, 'Gateway', GATEWAY_NAMES.eastwest, home, meshfedLabels('gateway'), {
      spec: {
        selector: { ...gw.selector },
        servers: [{
          port: { number: gw.port, name: 'tls-passthrough', protocol: 'TLS' },
          // Explicit hosts, never *.local: only exported Services are reachable through the gateway.
          hosts: passthroughHosts(snapshot, uncovered),
          tls: { mode: 'AUTO_PASSTHROUGH' },
        }],
      },
    }));
    if (autoPassthroughMatchesLiteralHosts(snapshot.istioVersion)) {
      const services = [...new Set(sharedRoot.map((r) => `${r.namespace}/${r.service}`))].sort().join(', ');
      warnings.push(
        `Istio ${snapshot.istioVersion} on cluster ${snapshot.clusterId} carries the published vulnerability ISTIO-SECURITY-2021-006 (CVE-2021-31921): ` +
        'its AUTO_PASSTHROUGH gateways match the SNI against the Gateway hosts taken literally and send every SNI that matches to the service it names. ' +
        `The passthrough Gateway therefore lists *.<host> beside each exported host, so that outbound_.<port>_._.<host> matches; through it every port and subset of ${services} ` +
        'can be reached, and the workload guard confines admitted consumers to the exported ports. Upgrade the mesh to Istio 1.9.5 or later ' +
        '(istioctl upgrade, or a canary revision), then run kubectl meshfed export again: the wildcard hosts go.',
      );
    }
  } else {
    removeIfPresent(API.networking, 'Gateway', home, GATEWAY_NAMES.eastwest);
  }

  if (!guard) return { objects, remove, warnings };
  // The workload guard sits beside the Service, whatever gateways its exports are served by.
  const guarded = sameService.filter((r) => r.mode === 'shared-root');
  const guardName = names.guard(focus.service);
  if (guarded.length > 0) {
    const guard = workloadGuard(snapshot, focus, guarded, guardName);
    objects.push(guard.object);
    warnings.push(...guard.warnings);
  } else {
    removeIfPresent(API.security, 'AuthorizationPolicy', focus.namespace, guardName);
  }
  return { objects, remove, warnings };
}

function describeRules(rule: EffectiveDestinationRule): string {
  return rule.rules.map((o) => `${o.metadata.namespace}/${o.metadata.name}`).join(' + ');
}

/** Istio's `host.Name.SubsetOf` for a Gateway server host (`ns/` prefix dropped): exact, `*`, or a `*.suffix` wildcard. */
function hostCovers(serverHost: string, host: string): boolean {
  const h = (serverHost.includes('/') ? serverHost.slice(serverHost.indexOf('/') + 1) : serverHost).toLowerCase();
  return h === '*' || h === host || (h.startsWith('*.') && host.endsWith(h.slice(1)));
}

/**
 * An AUTO_PASSTHROUGH server meshfed does not manage that the gateway workload at `placement` also serves on its port
 * and whose hosts cover `host` — typically Istio's own east-west Gateway (`*.local`, samples/multicluster/expose-services.yaml).
 * From Istio 1.9.5 and 1.10.0 on, istiod gives every AUTO_PASSTHROUGH server one filter chain per service it covers
 * (`pilot/pkg/networking/core/v1alpha3/gateway.go` `builtAutoPassthroughFilterChains`; `pilot/pkg/networking/core/gateway.go`
 * at 1.30.3) and `MergeGateways` (`pilot/pkg/model/gateway.go`) only drops servers whose literal hosts repeat, so a
 * second server covering the same service repeats a filter chain match and Envoy rejects the whole listener.
 * A Gateway applies to the workload when its selector is contained in the placement's labels (Gateways of every
 * namespace apply: Istio's default, PILOT_SCOPE_GATEWAY_TO_NAMESPACE=false).
 */
function coveringPassthrough(snapshot: ProviderSnapshot, placement: GatewayPlacement, host: string): PassthroughCover | undefined {
  const candidates = snapshot.existing.filter((o) => o.kind === 'Gateway' && !isManaged(o)).sort((a, b) => objectKey(a).localeCompare(objectKey(b)));
  for (const gateway of candidates) {
    const spec = (gateway.spec ?? {}) as { selector?: Record<string, string>; servers?: Array<{ port?: { number?: number }; hosts?: string[]; tls?: { mode?: string } }> };
    const selector = spec.selector ?? {};
    if (Object.keys(selector).length === 0 || !Object.entries(selector).every(([k, v]) => placement.selector[k] === v)) continue;
    for (const server of spec.servers ?? []) {
      if (server.port?.number !== placement.port || server.tls?.mode !== 'AUTO_PASSTHROUGH') continue;
      if ((server.hosts ?? []).some((h) => hostCovers(h, host))) {
        return { gateway: `${gateway.metadata.namespace}/${gateway.metadata.name}`, hosts: [...(server.hosts ?? [])], selector: { ...placement.selector }, port: placement.port };
      }
    }
  }
  return undefined;
}

/**
 * Why a passthrough server cannot share the port of the gateway at `placement`: a Gateway meshfed does not manage
 * serves plain text (no `tls`) on that workload and port. Istio merges servers of one port only when all use TLS (or
 * all are plain-text HTTP); the other is skipped ("conflict with existing server", `MergeGateways` in
 * `pilot/pkg/model/gateway.go` at 1.10.0, likewise at 1.18.0), which would silently drop meshfed's server or theirs.
 * An existing gateway's port is the one its Service maps to 15443, so the way out is another gateway.
 */
function plainTextClash(snapshot: ProviderSnapshot, placement: GatewayPlacement): string | undefined {
  for (const gateway of snapshot.existing.filter((o) => o.kind === 'Gateway' && !isManaged(o)).sort((a, b) => objectKey(a).localeCompare(objectKey(b)))) {
    const spec = (gateway.spec ?? {}) as { selector?: Record<string, string>; servers?: Array<{ port?: { number?: number; protocol?: string }; tls?: unknown }> };
    const selector = spec.selector ?? {};
    if (Object.keys(selector).length === 0 || !Object.entries(selector).every(([k, v]) => placement.selector[k] === v)) continue;
    const server = (spec.servers ?? []).find((sv) => sv.port?.number === placement.port && !sv.tls);
    if (server) {
      return `Gateway ${gateway.metadata.namespace}/${gateway.metadata.name} serves ${server.port?.protocol ?? 'plain text'} without TLS on port ${placement.port} of the gateway ` +
        `in ${describeGatewayAt({ namespace: placement.namespace, selector: placement.selector })}; Istio does not put a plain-text and a TLS server on one gateway port ` +
        '(it skips one of them), so a passthrough server there would not work or would take that port from them: serve shared-root exports from another gateway, ' +
        'e.g. meshfed\'s own (no --gateway-selector), or one whose port reaching 15443 is free';
    }
  }
  return undefined;
}

/**
 * The export's subset under the name the Service owner's rule gives it, when that rule (the one meshfed's gateways
 * get) defines a subset with exactly these labels: then meshfed needs no rule of its own for it.
 */
function withOwnerSubset(snapshot: ProviderSnapshot, record: ExportRecord, home: string): ExportRecord {
  if (!record.subset) return record;
  const owner = ownerDestinationRule(snapshot, home, serviceFqdn(record.service, record.namespace), record.namespace);
  const theirs = owner?.subsets.find((s) => sameLabels(s.labels, record.subset!));
  if (!theirs || theirs.name === record.subsetName) return record;
  return { ...record, subsetName: theirs.name };
}

/**
 * The passthrough Gateway's hosts: the exported Services' FQDNs, and on Istio releases that take them literally as
 * Envoy `server_names` ({@link autoPassthroughMatchesLiteralHosts}) also `*.<fqdn>`, the narrowest host that Istio's
 * validation accepts (`pkg/config/validation/validation.go` `validateServer` → `ValidateWildcardDomain` at 1.9.0:
 * DNS-1123 labels after the wildcard, so `*.5432_._.<fqdn>` is refused) and Envoy matches against the SNI
 * `outbound_.<port>_.<subset>_.<fqdn>` (Envoy's `FilterChainMatch.server_names`: the exact name, then `*.example.com`, then `*.com` for `www.example.com`).
 */
export function passthroughHosts(snapshot: Pick<ProviderSnapshot, 'istioVersion'>, records: Array<Pick<ExportRecord, 'host'>>): string[] {
  const hosts = new Set(records.map((r) => r.host));
  if (autoPassthroughMatchesLiteralHosts(snapshot.istioVersion)) for (const h of [...hosts]) hosts.add(`*.${h}`);
  return [...hosts].sort();
}

/**
 * The shared-root workload guard: a DENY policy on the exported Service's workloads ({@link guardRules}). It denies
 * authenticated callers that are neither from the provider's own trust domain nor admitted, and confines admitted
 * consumers to the ports exported to them, written so that trust domain aliases on the provider (Istio's
 * `ReplaceTrustDomainAliases`) neither widen nor narrow it. A DENY policy is used rather than ALLOW because
 * adding the first ALLOW policy to a workload denies every caller it does not list: the provider's own
 * callers, plaintext ones included, keep the access they had.
 */
function workloadGuard(snapshot: ProviderSnapshot, focus: ExportRecord, exports: ExportRecord[], name: string): { object: KubeObject; warnings: string[] } {
  const warnings: string[] = [];
  const service = findService(snapshot, focus.namespace, focus.service);
  const trust = providerTrust(snapshot);
  const entries: GuardEntry[] = [];
  let confinable = true;
  const advised = new Set<string>();
  for (const r of exports) {
    const target = r.port.targetPort ?? r.port.number;
    if (typeof target !== 'number') {
      confinable = false;
      warnings.push(`port ${r.port.number} of Service ${r.namespace}/${r.service} has a named targetPort (${target}): admitted consumers cannot be confined to it and may call other ports of the workload`);
    }
    for (const c of r.consumers) {
      const consumerTrustDomain = c.trustDomain ?? DEFAULT_TRUST_DOMAIN;
      // Admitted by an earlier release: no policy can admit it alone, so it is left out (denied, or a local caller).
      const inseparable = inseparableReason(trust, c, otherConsumers(snapshot, r, c));
      if (inseparable) {
        warnings.push(`${inseparable}; it is not admitted by the workload guard: revoke it and import it in boundary mode (kubectl meshfed export --mode boundary)`);
        continue;
      }
      if (!advised.has(consumerTrustDomain)) {
        advised.add(consumerTrustDomain);
        const acceptance = trustDomainAcceptance(trust, consumerTrustDomain);
        if (acceptance === 'rejected') {
          warnings.push(`the sidecars of cluster ${snapshot.clusterId} reject certificates of trust domain ${consumerTrustDomain} (consumer ${c.clusterId}): ${trustDomainAdvice(consumerTrustDomain, snapshot.clusterId)}`);
        } else if (acceptance === 'skip-validation') {
          warnings.push(
            `the sidecars of cluster ${snapshot.clusterId} accept trust domain ${consumerTrustDomain} (consumer ${c.clusterId}) only because istiod skips trust domain validation ` +
            '(PILOT_SKIP_VALIDATE_TRUST_DOMAIN=true), which makes every sidecar of the mesh accept every trust domain of the shared root; the workload guard still admits ' +
            `only the admitted service accounts, but listing ${consumerTrustDomain} in meshConfig.trustDomainAliases instead is narrower`,
          );
        }
      }
      for (const principal of consumerPrincipals(r, c)) {
        entries.push({ trustDomain: consumerTrustDomain, principal, ...(typeof target === 'number' ? { ports: [String(target)] } : {}) });
      }
    }
    if (r.subset) {
      warnings.push(`export ${r.namespace}/${r.exportName}: in shared-root mode a subset selects where traffic goes, not who may be reached; admitted consumers can reach every pod of Service ${r.namespace}/${r.service} on port ${r.port.number}`);
    }
  }
  const rules = guardRules(trust.trustDomain, entries, confinable);
  const object = kubeObject(API.security, 'AuthorizationPolicy', name, focus.namespace,
    meshfedLabels('workload-guard', { [LABELS.service]: serviceLabel(focus.namespace, focus.service) }), {
      spec: { selector: { matchLabels: { ...service.selector! } }, action: 'DENY', rules },
    });
  return { object, warnings };
}

/** The federation CA a provider cluster holds (and the next one during a CA rotation); undefined before its first export. */
export function federationCaStateIn(snapshot: ProviderSnapshot, now?: Date): FederationCaState | undefined {
  const found = chooseFederationCa(snapshot, homeNamespaceOf(snapshot), now);
  if (!found.ca) return undefined;
  return { current: found.ca, ...(found.next ? { next: found.next } : {}), renewed: found.renewed };
}

/** What `rotate` renews in a provider cluster. */
export interface ProviderRotation {
  /** Only this export (default: every export of the cluster). */
  only?: { namespace: string; exportName: string };
  /** Issue new server certificates (new keys). */
  servers: boolean;
  /**
   * The federation CA: `start` creates the next CA, trusted beside the current one (consumers are then renewed under
   * it); `finish` makes it the only CA (server certificates re-issued by it, the old CA no longer trusted).
   */
  ca?: 'start' | 'finish';
  /** Lifetime of new server certificates in days; default 365. */
  validityDays?: number;
  /** Lifetime of a new federation CA in days; default 3650. */
  caValidityDays?: number;
  now?: Date;
}

/** A provider's rotation plan. */
export interface ProviderRotationPlan extends ClusterPlan {
  /** The exports whose server certificates the plan renews, as `namespace/name`. */
  exports: string[];
  /** The CA state once the plan is applied. */
  federationCa: FederationCaState;
  /**
   * `finish`: the admitted boundary consumers (cluster ids) whose client certificates the next CA has not signed: they
   * lose access when the old CA is no longer trusted (the command refuses unless forced).
   */
  notRenewed: string[];
  /** The admitted boundary consumers of the exports, by cluster id (who must renew during a CA rotation). */
  consumers: string[];
}

/**
 * Plans a rotation on the provider: new server certificates for its exports and/or a step of a federation CA
 * rotation. Every export is re-planned as it stands (routes, admissions unchanged); only certificates and CA trust
 * change.
 * @throws FederationInputError when the cluster has no federation CA yet, the export does not exist, a CA rotation is
 *   started twice or finished before it was started
 */
export function planProviderRotation(snapshot: ProviderSnapshot, rotation: ProviderRotation): ProviderRotationPlan {
  const state = federationCaStateIn(snapshot, rotation.now);
  if (!state) {
    throw new FederationInputError(`cluster ${snapshot.clusterId} has no federation CA: nothing to rotate (it is created by the first kubectl meshfed export)`);
  }
  const records = readExportRecords(snapshot);
  const selected = rotation.only ? [existingRecord(snapshot, rotation.only.namespace, rotation.only.exportName, 'remove')] : records;
  const consumers = [...new Set(records.filter((r) => r.mode === 'boundary').flatMap((r) => r.consumers.map((c) => c.clusterId)))].sort();
  let next: FederationCaState = state;
  let notRenewed: string[] = [];
  if (rotation.ca === 'start') {
    if (state.next) {
      throw new FederationInputError(`a federation CA rotation is already under way in cluster ${snapshot.clusterId} (the next CA is trusted beside the current one): renew the consumers, then finish it (--finish)`, '--ca');
    }
    const created = createFederationCA({
      provider: snapshot.clusterId, ...(rotation.now ? { now: rotation.now } : {}), ...(rotation.caValidityDays ? { validityDays: rotation.caValidityDays } : {}),
    });
    next = { current: state.current, next: created, renewed: [] };
  } else if (rotation.ca === 'finish') {
    if (!state.next) {
      throw new FederationInputError(`no federation CA rotation is under way in cluster ${snapshot.clusterId}: start one first (kubectl meshfed rotate --ca)`, '--finish');
    }
    notRenewed = consumers.filter((c) => !state.renewed.includes(c));
    next = { current: state.next, renewed: [] };
  }
  const options: PlanOptions = {
    federationCa: next,
    // Finishing: every server certificate is re-issued by the CA that is now the only one.
    renewServerCertificates: rotation.servers || rotation.ca === 'finish',
    ...(rotation.now ? { now: rotation.now } : {}),
    ...(rotation.validityDays ? { certificateValidityDays: rotation.validityDays } : {}),
  };
  // Starting a CA rotation changes the CA trusted by every export's gateway; renewing server certificates changes the
  // selected ones only.
  const planned = rotation.ca ? records : selected;
  const plan = emptyPlan(snapshot.clusterId) as ProviderRotationPlan;
  const byKey = new Map<string, KubeObject>();
  const push = (o: KubeObject): void => {
    byKey.delete(objectKey(o));
    byKey.set(objectKey(o), o);
  };
  push(kubeObject('v1', 'Namespace', FEDERATION_CA_NAMESPACE, undefined, { [MANAGED_BY_LABEL]: MANAGED_BY }, {}));
  for (const o of federationCaObjects(next, homeNamespaceOf(snapshot))) push(o);
  plan.secretsWithPrivateKeys.push(`${FEDERATION_CA_NAMESPACE}/${FEDERATION_CA_SECRET}`);
  for (const record of planned) {
    const renew = selected.includes(record) ? options : { ...options, renewServerCertificates: rotation.ca === 'finish' };
    const one = planProvider(snapshot, record, renew, [], 'admit');
    for (const o of one.objects) push(o);
    plan.remove.push(...one.remove);
    plan.prune.push(...one.prune);
    plan.warnings.push(...one.warnings.filter((w) => !plan.warnings.includes(w) && !w.includes('admits no consumer') && !w.includes('has no external address yet')));
    for (const s of one.secretsWithPrivateKeys) if (!plan.secretsWithPrivateKeys.includes(s)) plan.secretsWithPrivateKeys.push(s);
  }
  plan.objects.push(...byKey.values());
  const renewed = rotation.servers || rotation.ca === 'finish' ? (rotation.ca === 'finish' ? records : selected) : [];
  return {
    ...(finishPlan(plan) as ProviderRotationPlan),
    exports: renewed.filter((r) => r.mode === 'boundary').map((r) => `${r.namespace}/${r.exportName}`),
    federationCa: next,
    notRenewed,
    consumers,
  };
}
