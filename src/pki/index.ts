// The federation PKI: CAs, gateway certificates, CSRs, inspection and detached signatures (node:crypto; DER by der.ts).
// Pure: no file, network, cluster or terminal I/O; "now" is always a parameter.
export { PkiError } from './errors.js';
export type { CertificateAndKey, ValidityOptions } from './certificates.js';
export {
  CLOCK_SKEW_MS, DEFAULT_CA_VALIDITY_DAYS, DEFAULT_LEAF_VALIDITY_DAYS, ORGANISATION,
  createFederationCA, issueClientCertificate, issueServerCertificate, signClientCertificate,
} from './certificates.js';
export { createCertificateRequest, inspectCertificateRequest } from './csr.js';
export type { CertificateInfo } from './inspect.js';
export { inspectCertificate, splitPemBundle, verifyCertificateChain } from './inspect.js';
export { generateKeyPair, keyMatchesCertificate, signDetached, verifyDetached } from './keys.js';
export { checkSpiffeId } from './names.js';
