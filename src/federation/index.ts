// The federation core: model, naming, planners and exchange documents. Pure: no cluster, file, process or
// terminal I/O; time and randomness come in as parameters or from src/pki.
export * from './errors.js';
export * from './model.js';
export * from './naming.js';
export {
  API, autoPassthroughMatchesLiteralHosts, holdsOwn, MANAGED_KINDS, type KindHolds, PRUNABLE_KINDS, gatewaySetup, homeNamespaceOf, inApplyOrder, isManaged, istioMinor, needsSniDnatRouterMode,
  objectKey, readSecret, supportsGatewayInjection, type GatewaySetup,
} from './objects.js';
export { readExportRecords, readImportRecords, recordToMark, REMOVING_ANNOTATION, type ExportRecord, type ImportRecord, type PassthroughCover, type Read } from './records.js';
export { coverOf } from './relocation.js';
export {
  serviceExportTo, serviceVisibleTo, sidecarFix, sidecarFor, SERVICE_EXPORT_TO_ANNOTATION, unmetEgressNeeds, widenedExportTo, type EgressNeed,
} from './visibility.js';
export {
  clientSigner, consumerPrincipals, endpointOf, federationCaOf, federationCaSecret, federationCaStateOf, noteClientRenewal, passthroughHosts, planAdmission, planExport, planRevoke,
  planUnexport, resolveExport, trustBundle, federationCaStateIn, planProviderRotation, type ExportPlan, type FederationCaState, type PlanOptions,
  type ProviderRotation, type ProviderRotationPlan,
} from './provider.js';
export { subsetChoices, type SubsetChoice } from './subsets.js';
export {
  effectiveDestinationRule, ownerDestinationRule, sameLabels, type DestinationRuleSubset, type EffectiveDestinationRule,
} from './destination-rules.js';
export {
  checkLocalName, importObjectRefs, importState, localServicePort, planImport, winningVirtualService, planUnimport, sharedRootWarnings, type ImportCredentials, type ImportObjectRef, type ImportPlan,
  type ImportState,
} from './consumer.js';
export {
  admitImportRequest, bundleCredentials, directCredentials, RENEW_BEFORE_DAYS, canonicalJson, checkExchangeDocument, certificateFingerprint, createImportRequest, DEFAULT_BUNDLE_TTL_HOURS,
  DEFAULT_REQUEST_TTL_HOURS, EXCHANGE_API_VERSION, parseExportBundle, parseImportRequest, exportRefText, pendingLocalName, pendingRequestOf, requestLocalName, pendingServiceAccounts, planCancelRequest, samePem, type PendingRequest,
  pendingRequests, publishedRequest, publishedRequestName, publishedRequests, publishedRequestsIn, stalePublishedRequests, serializeDocument, claimedExport, importBeingRekeyed, trustedFederationCa, verifyBundleForImport, type BundleClaim, type ExportBundle,
  type ExportRef, type ImportRequest, type VerifiedBundle,
} from './bundle.js';
export {
  checkTrustDomain, guardRules, inseparableReason, LOCAL_TRUST_DOMAIN_NAME, revocationEffect, trustDomainAcceptance, trustDomainAdvice,
  type GuardEntry, type ProviderTrust, type RevocationEffect, type TrustDomainAcceptance,
} from './trust.js';
export { planClientRotation, type ClientRotation, type ClientRotationPlan } from './rotation.js';
export { hasDependents, planUninstall, type UninstallDependents, type UninstallPlan } from './uninstall.js';
export { caFingerprint, federationCaCertificates, federationCaFingerprint, providerCaTrust, sameFingerprint, type FederationCaCertificates, type ProviderCaTrust } from './first-use.js';
export {
  credentialCertificates, PUBLISHED_CERTIFICATE_KEYS, publishedCertificates, publishedCertificatesName, readPublishedCertificates, withPublishedCertificates,
  type PublishedCertificates,
} from './certificates.js';
