/**
 * The catalogue of `verify` checks: one entry per stable code. A code (`MF` + 4 digits) is never reused: when a
 * check is retired its entry stays, marked `retired`, so old reports and links keep their meaning. Every code has a
 * section in docs/checks.md (a meta-test keeps the two in step).
 */

/** How bad a failing check is: an error fails `verify` (exit code 3), a warning does not. */
export type CheckLevel = 'error' | 'warning';

/** The groups checks are run and printed in, in this order. */
export type CheckCategory = 'contexts' | 'provider' | 'consumer' | 'federation' | 'probe';

/** Categories in run and print order, with the heading printed above each. */
export const CATEGORIES: ReadonlyArray<{ id: CheckCategory; title: string }> = [
  { id: 'contexts', title: 'contexts and mesh' },
  { id: 'provider', title: 'provider' },
  { id: 'consumer', title: 'consumer' },
  { id: 'federation', title: 'across the two clusters' },
  { id: 'probe', title: 'probe' },
];

/** One catalogue entry. */
export interface CheckInfo {
  /** `MF` + 4 digits; stable, never reused. */
  code: string;
  level: CheckLevel;
  category: CheckCategory;
  /** What holds when the check passes, in the present tense: "the provider gateway has an external address". */
  description: string;
  /** The failure message; `{name}` placeholders are filled from the finding's parameters. */
  message: string;
  /** What to do about a failure; may use the same placeholders. */
  hint: string;
}

/** The documentation anchor of a code, relative to the repository root: `docs/checks.md#mf0206`. */
export function docsAnchor(code: string): string {
  return `docs/checks.md#${code.toLowerCase()}`;
}

declare const __MESHFED_DOCS__: string | undefined;
/**
 * Where this build's docs are read: the repository at this release's tag, `<homepage>/blob/v<version>/` (the bundler
 * sets it from package.json); undefined when running from source, where the docs are in the checkout.
 */
export const DOCS_BASE = typeof __MESHFED_DOCS__ === 'string' ? __MESHFED_DOCS__ : undefined;

/**
 * A docs path or anchor as a reader follows it: `docs/checks.md#mf0206` →
 * `https://github.com/…/blob/v0.1.0/docs/checks.md#mf0206`, the docs of the version that printed it (they exist after a
 * krew install, which has no docs/). From source, the repository-relative path.
 */
export function docsUrl(path: string, base: string | undefined = DOCS_BASE): string {
  return base ? `${base}${path}` : path;
}

const entries: CheckInfo[] = [
  // contexts and mesh
  {
    code: 'MF0101', level: 'error', category: 'contexts',
    description: 'Istio runs in the consumer cluster',
    message: 'no Istio control plane found in context "{context}": {detail}',
    hint: 'install Istio in the consumer cluster, or pass --istio-namespace if istiod runs in another namespace',
  },
  {
    code: 'MF0102', level: 'error', category: 'contexts',
    description: 'the provider context is reachable',
    message: '{detail}',
    hint: 'check the provider cluster and the kubeconfig entry of context "{context}"; without --from, provider checks are skipped',
  },
  {
    code: 'MF0103', level: 'error', category: 'contexts',
    description: 'Istio runs in the provider cluster',
    message: 'no Istio control plane found in context "{context}": {detail}',
    hint: 'install Istio in the provider cluster, or pass --istio-namespace if istiod runs in another namespace',
  },
  {
    code: 'MF0104', level: 'warning', category: 'contexts',
    description: 'both meshes run an Istio version meshfed supports (1.9 or later)',
    message: 'context "{context}" runs Istio {version}, older than 1.9',
    hint: 'upgrade Istio: meshfed emits networking.istio.io/v1beta1 objects, which older releases do not serve',
  },
  {
    code: 'MF0105', level: 'error', category: 'contexts',
    description: 'sidecar injection is enabled for the import namespace',
    message: 'namespace "{namespace}" has no istio-injection=enabled or istio.io/rev label: its pods get no sidecar and cannot use the import',
    hint: 'kubectl label namespace {namespace} istio-injection=enabled (or istio.io/rev=<revision>), then restart the calling pods',
  },
  // provider
  {
    code: 'MF0201', level: 'error', category: 'provider',
    description: 'the export exists in the provider cluster',
    message: 'context "{context}" has no export {export} (exports: {known})',
    hint: 'check --from: the import comes from cluster {cluster}; or export the Service again with kubectl meshfed export',
  },
  {
    code: 'MF0202', level: 'error', category: 'provider',
    description: 'the exported Service exists with the exported port',
    message: '{detail}',
    hint: 'restore the Service and its port, or unexport and export again with the current port',
  },
  {
    code: 'MF0203', level: 'error', category: 'provider',
    description: 'the exported Service has ready endpoints',
    message: 'no ready pod backs Service {service} ({detail})',
    hint: 'kubectl get pods -n {namespace} --context {context}: scale the workload up or fix why its pods are not ready',
  },
  {
    code: 'MF0204', level: 'error', category: 'provider',
    description: 'the export\'s subset matches ready pods',
    message: '{detail}',
    hint: 'label ready pods with the subset\'s labels, or export again with a --subset that matches running pods',
  },
  {
    code: 'MF0205', level: 'error', category: 'provider',
    description: 'the provider federation gateway is ready',
    message: '{detail}',
    hint: 'kubectl get pods -n {namespace} --context {context}: check the gateway pods\' events and logs',
  },
  {
    code: 'MF0206', level: 'error', category: 'provider',
    description: 'the provider gateway has an external address',
    message: 'Service {service} has no LoadBalancer address',
    hint: 'the cluster needs a load balancer implementation (cloud provider, MetalLB…); kubectl get svc -n {namespace} --context {context}',
  },
  {
    code: 'MF0207', level: 'error', category: 'provider',
    description: 'the provider objects of the export are present',
    message: '{object} is missing',
    hint: 'run kubectl meshfed export again for {export}: it recreates what is missing',
  },
  {
    code: 'MF0208', level: 'error', category: 'provider',
    description: 'the provider objects are managed by meshfed and consistent with the export',
    message: '{detail}',
    hint: 'run kubectl meshfed export again for {export} to restore them (it takes back fields edited by hand)',
  },
  {
    code: 'MF0209', level: 'error', category: 'provider',
    description: 'the provider Gateway\'s credentialName Secret holds a certificate, its key and the CA',
    message: '{detail}',
    hint: 'the Secret must be in the gateway\'s namespace with tls.crt, tls.key and ca.crt; run kubectl meshfed export again for {export}',
  },
  {
    code: 'MF0210', level: 'error', category: 'provider',
    description: 'the provider gateway\'s server certificate is valid, names the export host and is signed by the federation CA',
    message: '{detail}',
    hint: 'run kubectl meshfed export again for {export}: it issues a new server certificate from the federation CA',
  },
  {
    code: 'MF0211', level: 'warning', category: 'provider',
    description: 'the provider gateway\'s server certificate does not expire within 30 days',
    message: 'the server certificate in Secret {secret} expires on {date} ({days} days left)',
    hint: 'renew it (new key, same federation CA; consumers keep working): {rotate}',
  },
  {
    code: 'MF0212', level: 'error', category: 'provider',
    description: 'the passthrough gateway routes by SNI on this Istio version',
    message: 'the gateway pods {pods} run Istio {version} without ISTIO_META_ROUTER_MODE=sni-dnat: AUTO_PASSTHROUGH builds no SNI routes',
    hint: 'set the environment variable ISTIO_META_ROUTER_MODE=sni-dnat on the gateway (the overlay printed by kubectl meshfed export does)',
  },
  {
    code: 'MF0213', level: 'error', category: 'provider',
    description: 'the export\'s authorization policy uses only what the provider\'s Istio evaluates',
    message: '{detail}',
    hint: 'run kubectl meshfed export again for {export}: on Istio 1.9 and 1.10 it admits HTTP consumers in the TLS handshake (the Gateway server\'s subjectAltNames) and names no principal in the policy',
  },
  {
    code: 'MF0214', level: 'error', category: 'provider',
    description: 'no other ALLOW policy on the provider gateway shuts out the export\'s traffic',
    message: '{detail}',
    hint: 'an ALLOW policy denies every request it does not match: add a rule with the condition connection.sni = {host} to {policy}, or export on meshfed\'s own gateway (no --gateway-selector)',
  },
  {
    code: 'MF0215', level: 'warning', category: 'provider',
    description: 'the provider gateway carries federation traffic only',
    message: '{detail}',
    hint: 'meshfed restricts only its own SNI hosts there; the gateway\'s other servers and policies are its owner\'s, and they can change what reaches the export: to keep them apart, export on meshfed\'s own gateway (no --gateway-selector)',
  },
  {
    code: 'MF0216', level: 'error', category: 'provider',
    description: 'the federation CA key is in a namespace no gateway runs in',
    message: '{detail}',
    hint: 'a gateway can read every Secret of its namespace: run kubectl meshfed export again, which moves the CA to namespace {caNamespace}; keep gateways out of {caNamespace}',
  },
  {
    code: 'MF0220', level: 'error', category: 'provider',
    description: 'meshfed\'s subsets DestinationRule carries the Service owner\'s current rule',
    message: '{object} no longer carries {owner}: {detail}',
    hint: 'the owner\'s rule changed since the export: run kubectl meshfed export again for {export} (it carries the current rule)',
  },
  {
    code: 'MF0221', level: 'error', category: 'provider',
    description: 'no DestinationRule of meshfed\'s sits beside gateways meshfed does not own',
    message: '{object} is in namespace {namespace}, where gateway pods meshfed does not own run ({pods}): Istio gives them this rule for {host} instead of the Service owner\'s',
    hint: 'add the export\'s subset to the owner\'s DestinationRule of {host} and run kubectl meshfed export again (meshfed then removes its rule), or export through meshfed\'s own gateway',
  },
  {
    code: 'MF0222', level: 'error', category: 'provider',
    description: 'the DestinationRule the provider gateway uses for the Service defines the export\'s subset',
    message: '{detail}',
    hint: 'a DestinationRule in the gateway\'s namespace (or a more specific one) takes precedence over meshfed\'s: add subset {subset} with labels {labels} to it, or remove it, then run kubectl meshfed export again',
  },
  {
    code: 'MF0223', level: 'error', category: 'provider',
    description: 'the provider workload receives its Service\'s own name as the authority',
    message: '{object} forwards requests with the federation host as their authority (no rewrite to {fqdn}): apps and policies that match the Host see a name they do not know',
    hint: 'run kubectl meshfed export again for {export}: its VirtualService rewrites the authority to {fqdn}',
  },
  {
    code: 'MF0225', level: 'warning', category: 'provider',
    description: 'in shared-root mode, only the exported hosts pass through the provider gateway',
    message: '{gateway} passes {hosts} through on the gateway and port that serve {host}: every service matching it is reachable there, not only the exported ones',
    hint: 'the explicit host list of meshfed no longer limits exposure on that gateway (the workload guard still protects the export); to limit it, export from a gateway without that Gateway, e.g. meshfed\'s own (export again without --gateway-selector)',
  },
  {
    code: 'MF0226', level: 'error', category: 'provider',
    description: 'in shared-root mode, no two passthrough servers of the provider gateway cover one service',
    message: '{object} lists {host}, which {gateway} ({hosts}) also covers on the same port: Istio {version} builds a filter chain per covered service and server, and Envoy rejects the listener with duplicate matches',
    hint: 'run kubectl meshfed export again for {export}: it leaves hosts another passthrough server covers to that server',
  },
  {
    code: 'MF0227', level: 'error', category: 'provider',
    description: 'the exported Service is visible to the provider gateway\'s namespace',
    message: 'Service {service} is not exported to namespace {gatewayNamespace}, where the federation gateway runs ({why}): the gateway has no route to it',
    hint: 'export it there too, keeping what it had: {command}',
  },
  {
    code: 'MF0228', level: 'error', category: 'provider',
    description: 'in shared-root mode, no plain-text server shares the passthrough gateway\'s port',
    message: '{gateways} serve(s) plain text on port {port} of the gateway meshfed\'s passthrough server uses: Istio skips one of the two servers',
    hint: 'serve shared-root exports from another gateway (kubectl meshfed export without --gateway-selector uses meshfed\'s own), or move the plain-text server to another port',
  },
  // consumer
  {
    code: 'MF0301', level: 'error', category: 'consumer',
    description: 'the local Service apps call exists with the imported port',
    message: '{detail}',
    hint: 'run kubectl meshfed import again for {import}',
  },
  {
    code: 'MF0302', level: 'error', category: 'consumer',
    description: 'the consumer objects of the import are present',
    message: '{object} is missing',
    hint: 'run kubectl meshfed import again for {import}: it recreates what is missing',
  },
  {
    code: 'MF0303', level: 'error', category: 'consumer',
    description: 'the consumer objects are managed by meshfed and consistent with the import',
    message: '{detail}',
    hint: 'run kubectl meshfed import again for {import} to restore them (it takes back fields edited by hand)',
  },
  {
    code: 'MF0304', level: 'error', category: 'consumer',
    description: 'the consumer egress gateway is ready',
    message: '{detail}',
    hint: 'kubectl get pods -n {namespace} --context {context}: check the gateway pods\' events and logs',
  },
  {
    code: 'MF0305', level: 'error', category: 'consumer',
    description: 'the client certificate is valid and matches its key',
    message: '{detail}',
    hint: 'create a new import request and have the provider admit it (kubectl meshfed import --request-out, admit, import --bundle)',
  },
  {
    code: 'MF0306', level: 'warning', category: 'consumer',
    description: 'the client certificate does not expire within 30 days',
    message: 'the client certificate in Secret {secret} expires on {date} ({days} days left)',
    hint: 'renew it before it expires: {rotate} (without access to the provider: import --request-out --force, admit, import --bundle)',
  },
  {
    code: 'MF0307', level: 'error', category: 'consumer',
    description: 'the consumer uses the provider gateway\'s current address',
    message: 'the import sends traffic to {used}, but the provider gateway {service} now has address {current}',
    hint: 'the provider\'s LoadBalancer address changed since the import: run kubectl meshfed import again (with --from, or with a new bundle)',
  },
  {
    code: 'MF0308', level: 'error', category: 'consumer',
    description: 'the attach route is the VirtualService sidecars use for the attached Service',
    message: '{winner} is older and routes {host} for sidecars, so {ours} is ignored (Istio keeps the oldest VirtualService of a host): no call to {service} reaches the import',
    hint: 'fold the split into it: kubectl meshfed import … --attach {service} --merge-into {winnerRef}, or delete {winner} and import again',
  },
  {
    code: 'MF0309', level: 'error', category: 'consumer',
    description: 'the VirtualService the import was folded into still sends the import its share',
    message: '{detail}',
    hint: 'someone changed it since the import: run kubectl meshfed import again with --attach {service} --merge-into {winnerRef}',
  },
  {
    code: 'MF0310', level: 'error', category: 'consumer',
    description: 'no object of the imports is left outside the egress gateway\'s namespace',
    message: '{objects} in {namespaces} belong to imports but the egress gateway is in {namespace} (a move left them behind{secrets})',
    hint: 'run kubectl meshfed import again for one import: it moves every import to the current egress gateway and removes what is left behind',
  },
  {
    code: 'MF0311', level: 'error', category: 'consumer',
    description: 'the import\'s objects are visible to its namespace only, and the egress gateway admits only its callers',
    message: '{detail}',
    hint: 'run kubectl meshfed import again for {import}: it restores exportTo and the egress gateway\'s policy',
  },
  {
    code: 'MF0312', level: 'error', category: 'consumer',
    description: 'the attach route works on this Istio version',
    message: '{object} sets the Host header on a weighted destination, which Istio {version} {why}',
    hint: 'run kubectl meshfed import again for {import}: the split then rewrites the authority at the egress gateway, which works on every Istio from 1.9',
  },
  {
    code: 'MF0315', level: 'error', category: 'consumer',
    description: 'in shared-root mode, the consumer mesh has a trust domain of its own',
    message: 'the consumer mesh uses trust domain "cluster.local", which Istio reads in the provider\'s policies as the provider\'s own trust domain: no policy can admit its workloads alone',
    hint: 'give the consumer mesh its own trust domain (meshConfig.trustDomain of context {context}, e.g. {context}.example.com), or import in boundary mode',
  },
  {
    code: 'MF0320', level: 'error', category: 'consumer',
    description: 'the local Service port declares the protocol the import carries',
    message: 'Service {service} {port} {detail}, but the import carries {protocol}',
    hint: 'run kubectl meshfed import again for {import}: it names the port by protocol (e.g. {name}); the consumer sidecars then route it as {protocol}',
  },
  {
    code: 'MF0321', level: 'warning', category: 'consumer',
    description: 'in shared-root mode, the import\'s ServiceEntry is visible to the import namespace only',
    message: '{object} has exportTo {exportTo}: every sidecar it is exported to listens on port 15443 and forwards what is opened there to the provider',
    hint: 'run kubectl meshfed import again for {import}: it sets exportTo ["."] (only namespace {namespace} calls the import)',
  },
  {
    code: 'MF0322', level: 'error', category: 'consumer',
    description: 'the Sidecar resource of the import namespace lets its workloads reach the import',
    message: '{sidecar} scopes the egress of namespace {namespace} and does not select {hosts}: calls to the import do not leave the pod',
    hint: 'change the Sidecar: {fix}',
  },
  {
    code: 'MF0323', level: 'error', category: 'consumer',
    description: 'the egress gateway Service is visible to the import namespace',
    message: 'Service {service} is not exported to namespace {namespace} ({why}): its sidecars have no route to the egress gateway',
    hint: 'export it to the importing namespaces: {command}',
  },
  // across the two
  {
    code: 'MF0401', level: 'error', category: 'federation',
    description: 'the SNI the consumer sends is one the provider serves',
    message: '{detail}',
    hint: 'the provider Gateway hosts and the consumer\'s SNI must agree: run kubectl meshfed export, then import, again',
  },
  {
    code: 'MF0402', level: 'error', category: 'federation',
    description: 'the consumer is admitted to the export',
    message: '{detail}',
    hint: 'admit the consumer on the provider (kubectl meshfed import --from, or kubectl meshfed admit with its import request)',
  },
  {
    code: 'MF0403', level: 'error', category: 'federation',
    description: 'the client certificate is signed by the provider\'s current federation CA',
    message: '{detail}',
    hint: 'the provider\'s federation CA changed or the certificate comes from elsewhere: have the provider admit a new import request',
  },
  {
    code: 'MF0404', level: 'error', category: 'federation',
    description: 'the consumer trusts the provider gateway\'s server certificate',
    message: '{detail}',
    hint: 'the consumer holds an old federation CA: run kubectl meshfed import again (with --from, or with a new bundle)',
  },
  {
    code: 'MF0405', level: 'error', category: 'federation',
    description: 'in shared-root mode, the two meshes share a root CA',
    message: 'the root CAs differ: consumer {consumerFingerprint}, provider {providerFingerprint}',
    hint: 'shared-root mode needs both meshes to use certificates from one root (plug-in CA certificates); otherwise export in boundary mode',
  },
  {
    code: 'MF0406', level: 'error', category: 'federation',
    description: 'in shared-root mode, the two meshes have distinct trust domains',
    message: 'both meshes use trust domain "{trustDomain}": the provider cannot tell the consumer\'s workloads from its own with the same namespace and service account',
    hint: 'give each mesh its own trust domain (meshConfig.trustDomain), then list the consumer\'s in the provider\'s meshConfig.trustDomainAliases; or use boundary mode (--mode boundary)',
  },
  {
    code: 'MF0407', level: 'error', category: 'federation',
    description: 'in shared-root mode, the provider mesh accepts the consumer\'s trust domain',
    message: 'the provider mesh (trust domain "{providerTrustDomain}") neither lists the consumer\'s trust domain "{consumerTrustDomain}" in trustDomainAliases nor skips trust domain validation: its sidecars reject the consumer\'s certificates',
    hint: 'add "{consumerTrustDomain}" to meshConfig.trustDomainAliases of the provider mesh; meshfed\'s workload guard still admits only the admitted service accounts (PILOT_SKIP_VALIDATE_TRUST_DOMAIN=true on istiod works too, but makes every sidecar of the mesh accept every trust domain of the root)',
  },
  {
    code: 'MF0408', level: 'error', category: 'federation',
    description: 'the ports agree at every hop from the consumer to the provider Service',
    message: '{detail}',
    hint: 'run kubectl meshfed export and import again so that every hop uses the ports of the export',
  },
  {
    code: 'MF0409', level: 'error', category: 'federation',
    description: 'the authorization policies of the exported workload admit the federation\'s callers',
    message: '{detail}',
    hint: 'an ALLOW policy denies every caller it does not list: add the principal(s) {principals} to {policy}',
  },
  {
    code: 'MF0410', level: 'error', category: 'federation',
    description: 'the provider gateway\'s TLS handshake accepts the consumer\'s client certificate',
    message: '{detail}',
    hint: 'the provider Gateway server\'s subjectAltNames lists the admitted consumers: admit the consumer again (kubectl meshfed import --from, or kubectl meshfed admit), or run kubectl meshfed export again for {export}',
  },
  {
    code: 'MF0420', level: 'warning', category: 'federation',
    description: 'the provider\'s Istio release has the fix for ISTIO-SECURITY-2021-006',
    message: 'the provider runs Istio {version}, which carries the published vulnerability ISTIO-SECURITY-2021-006 (CVE-2021-31921): its AUTO_PASSTHROUGH gateways route every SNI that matches a Gateway host to the service it names',
    hint: 'upgrade the provider mesh to Istio 1.9.5 or later (istioctl upgrade, or a canary revision), then run kubectl meshfed export again (https://istio.io/latest/news/security/istio-security-2021-006/)',
  },
  {
    code: 'MF0421', level: 'error', category: 'federation',
    description: 'the passthrough Gateway hosts suit the provider\'s Istio release',
    message: '{detail}',
    hint: 'run kubectl meshfed export again on the provider: it writes the hosts this Istio release needs',
  },
  {
    code: 'MF0422', level: 'error', category: 'federation',
    description: 'in shared-root mode, no other consumer of the provider shares the consumer\'s trust domain',
    message: '{detail}',
    hint: 'give each consumer mesh its own trust domain (meshConfig.trustDomain), or use boundary mode for one of them',
  },
  {
    code: 'MF0423', level: 'error', category: 'federation',
    description: 'the workload guard admits exactly the admitted identities under the provider\'s trust domain aliases',
    message: '{detail}',
    hint: 'run kubectl meshfed export again on the provider: it rewrites the workload guard',
  },
  {
    code: 'MF0430', level: 'error', category: 'federation',
    description: 'in shared-root mode, workloads of the import namespace run as a service account the provider admits',
    message: 'the provider admits service account(s) {admitted} of namespace {namespace}, but its pods ({pods}) run as {accounts}: their calls are denied',
    hint: 'admit the account the workloads run as: kubectl meshfed import again with --service-account {account} (or a new import request with it, then admit), or run the workloads as {admitted}',
  },
  // probe
  {
    code: 'MF0501', level: 'error', category: 'probe',
    description: 'the probe pod starts',
    message: '{detail}',
    hint: 'if the image cannot be pulled (air-gapped cluster), use --probe-image <registry>/curlimages/curl:<tag>; if the pod is refused, verify needs to create, watch, read the logs of and delete pods in namespace {namespace}',
  },
  {
    code: 'MF0502', level: 'error', category: 'probe',
    description: 'the probe pod runs with an Istio sidecar',
    message: 'the probe pod {pod} got no istio-proxy sidecar: pods in namespace "{namespace}" cannot use the import',
    hint: 'kubectl label namespace {namespace} istio-injection=enabled (or istio.io/rev=<revision>)',
  },
  {
    code: 'MF0503', level: 'error', category: 'probe',
    description: 'the probe calls the imported service through the federation',
    message: '{detail}',
    hint: 'run the probe again with --keep-probe and read its logs: kubectl logs {pod} -n {namespace} -c istio-proxy',
  },
  {
    code: 'MF0504', level: 'error', category: 'probe',
    description: 'the imported name resolves in the consumer namespace',
    message: 'curl could not resolve {host} (exit code 6)',
    hint: 'the local Service {service} is missing: run kubectl meshfed import again',
  },
  {
    code: 'MF0505', level: 'error', category: 'probe',
    description: 'the probe\'s connection is accepted',
    message: 'connection refused by {target} (curl exit code 7)',
    hint: 'the probe\'s sidecar does not capture the call, or a gateway has no listener for it: check the sidecar injection and the consumer objects',
  },
  {
    code: 'MF0506', level: 'error', category: 'probe',
    description: 'the call completes before curl\'s time limit',
    message: 'the call to {target} timed out (curl exit code 28): {detail}',
    hint: 'nothing answers at the provider gateway address: check MF0206/MF0307, firewalls between the clusters, and the gateway ports',
  },
  {
    code: 'MF0507', level: 'error', category: 'probe',
    description: 'the TLS handshakes on the way succeed',
    message: 'a TLS handshake failed (curl exit code {exitCode}): {detail}',
    hint: 'the SNI is not served by the provider Gateway, or a certificate is not trusted: check MF0401, MF0403 and MF0404',
  },
  {
    code: 'MF0508', level: 'error', category: 'probe',
    description: 'the connection is not reset on the way',
    message: '{detail}',
    hint: 'a gateway rejected the client certificate or found no route: read the logs of {gateways}, and check MF0402 and MF0403',
  },
  {
    code: 'MF0509', level: 'error', category: 'probe',
    description: 'every hop has a route for the imported host',
    message: 'HTTP {status} with Envoy response flag NR (no route): {detail}',
    hint: 'a VirtualService does not match the host or SNI it receives: check MF0208, MF0303 and MF0401',
  },
  {
    code: 'MF0510', level: 'error', category: 'probe',
    description: 'every hop connects to its upstream',
    message: 'HTTP 503 with Envoy response flag {flags} (upstream connection failed): {detail}',
    hint: 'an address, port or certificate between two hops is wrong: check MF0307, MF0408, MF0209 and MF0403',
  },
  {
    code: 'MF0511', level: 'error', category: 'probe',
    description: 'the upstream has healthy endpoints',
    message: 'HTTP 503 with Envoy response flag UH (no healthy upstream): {detail}',
    hint: 'the exported Service or its subset has no ready pod: check MF0203 and MF0204',
  },
  {
    code: 'MF0512', level: 'error', category: 'probe',
    description: 'the caller is authorized',
    message: 'HTTP 403 "RBAC: access denied": an AuthorizationPolicy refused the call',
    hint: 'the consumer is not admitted to the export, or a policy on the provider workload denies it: check MF0402 and MF0409',
  },
  {
    code: 'MF0513', level: 'warning', category: 'probe',
    description: 'the imported service answers with a success status',
    message: 'the service answered HTTP {status} to {method} {path}',
    hint: 'the federation works, the application refused the request: pass a --path the service answers (e.g. --path /health)',
  },
  {
    code: 'MF0514', level: 'error', category: 'probe',
    description: 'the probe finishes within --timeout',
    message: '{detail}',
    hint: 'raise --timeout, or run with --keep-probe and inspect the pod (kubectl describe pod {pod} -n {namespace})',
  },
  {
    code: 'MF0515', level: 'error', category: 'probe',
    description: 'in shared-root mode, the probe runs as a service account the provider admits',
    message: 'the probe runs as service account {account}, but the provider admits {admitted} of namespace {namespace}: its call will be denied',
    hint: 'run verify with --service-account {first} (the account the import was admitted for), or admit {account} (kubectl meshfed import --service-account {account})',
  },
  {
    code: 'MF0516', level: 'error', category: 'probe',
    description: 'the probe\'s service account exists in the import namespace',
    message: 'service account {namespace}/{account} does not exist: the cluster refuses a pod that runs as it',
    hint: 'create it (kubectl create serviceaccount {account} -n {namespace}) or pass --service-account with an account that exists',
  },
];

/** Every check, by code. */
export const CATALOGUE: ReadonlyMap<string, CheckInfo> = new Map(entries.map((entry) => [entry.code, entry]));

/** The catalogue entry of a code. @throws Error for a code that is not in the catalogue (a programming error). */
export function checkInfo(code: string): CheckInfo {
  const info = CATALOGUE.get(code);
  if (!info) throw new Error(`check code ${code} is not in the catalogue`);
  return info;
}

/** Fills `{name}` placeholders; unknown names stay visible rather than silently vanishing. */
export function fillTemplate(template: string, params: Readonly<Record<string, string | number | undefined>>): string {
  return template.replace(/\{(\w+)\}/g, (whole, name: string) => {
    const value = params[name];
    return value === undefined ? whole : String(value);
  });
}
