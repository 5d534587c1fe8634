import { createHash, createPublicKey } from 'node:crypto';
import forge from 'node-forge';
import { PkiError } from './errors.js';
import { colonHex, forgePrivateKey } from './keys.js';
import { checkSpiffeId } from './names.js';

/** An X.509 common name is at most 64 characters (RFC 5280 ub-common-name). */
export const MAX_COMMON_NAME = 64;

/** Returns `commonName` when it is 1-64 characters. @throws PkiError otherwise */
export function checkCommonName(commonName: string): string {
  if (commonName.length === 0 || commonName.length > MAX_COMMON_NAME) {
    throw new PkiError(`common name "${commonName}" must be 1 to ${MAX_COMMON_NAME} characters`);
  }
  return commonName;
}

/**
 * A PKCS#10 certificate signing request for a consumer gateway's client certificate, signed with
 * SHA-256: subject `CN=<commonName>`, and the SPIFFE ID as the only URI subjectAltName in the
 * extensionRequest attribute. Only the request travels to the provider; the key stays where it is.
 * @param options.privateKeyPem RSA private key (PKCS#1 or PKCS#8 PEM), e.g. from generateKeyPair
 * @param options.commonName e.g. `meshfed-egress.operations` (1-64 characters)
 * @param options.spiffeId e.g. `spiffe://meshfed.operations/ns/istio-meshfed/sa/meshfed-egress`
 * @returns the request as PEM (`BEGIN CERTIFICATE REQUEST`)
 */
export function createCertificateRequest(options: { privateKeyPem: string; commonName: string; spiffeId: string }): string {
  const privateKey = forgePrivateKey(options.privateKeyPem, 'the consumer private key');
  const csr = forge.pki.createCertificationRequest();
  csr.publicKey = forge.pki.rsa.setPublicKey(privateKey.n, privateKey.e);
  csr.setSubject([{ name: 'commonName', value: checkCommonName(options.commonName) }]);
  csr.setAttributes([{
    name: 'extensionRequest',
    extensions: [{ name: 'subjectAltName', altNames: [{ type: 6, value: checkSpiffeId(options.spiffeId) }] }],
  }]);
  csr.sign(privateKey, forge.md.sha256.create());
  return forge.pki.certificationRequestToPem(csr);
}

/** A request that passed {@link inspectCertificateRequest}, with the parsed forge object for signing. */
export interface CheckedRequest {
  commonName: string;
  spiffeId: string;
  publicKeyFingerprint: string;
  request: forge.pki.CertificateSigningRequest;
}

/** Parses and checks a CSR; see {@link inspectCertificateRequest}. */
export function checkCertificateRequest(csrPem: string): CheckedRequest {
  if (!/-----BEGIN (NEW )?CERTIFICATE REQUEST-----/.test(csrPem)) {
    throw new PkiError('the certificate signing request is not a PEM "CERTIFICATE REQUEST"');
  }
  let request: forge.pki.CertificateSigningRequest;
  try {
    request = forge.pki.certificationRequestFromPem(csrPem.replace(/(BEGIN|END) NEW CERTIFICATE REQUEST/g, '$1 CERTIFICATE REQUEST'), true);
  } catch (error) {
    const why = error instanceof Error && /OID is not RSA/.test(error.message)
      ? 'its key is not an RSA key (meshfed issues RSA certificates only)'
      : 'it cannot be parsed';
    throw new PkiError(`the certificate signing request is unusable: ${why}`);
  }
  let signatureValid = false;
  try {
    signatureValid = request.verify();
  } catch {
    signatureValid = false;
  }
  if (!signatureValid) {
    throw new PkiError('the certificate signing request is forged or damaged: its signature does not match its content and key');
  }
  const publicKey = request.publicKey as forge.pki.rsa.PublicKey;
  if (publicKey.n.bitLength() < 2048) {
    throw new PkiError(`the certificate signing request has a ${publicKey.n.bitLength()}-bit key; at least 2048 bits are required`);
  }
  const commonName = request.subject.getField('CN')?.value as string | undefined;
  if (commonName === undefined || commonName === '') throw new PkiError('the certificate signing request has no subject common name (CN)');
  checkCommonName(commonName);

  const extensionRequest = (request.getAttribute({ name: 'extensionRequest' }) as { extensions?: { name?: string; altNames?: { type: number; value: string }[] }[] } | null);
  const altNames = extensionRequest?.extensions?.find((e) => e.name === 'subjectAltName')?.altNames ?? [];
  const uris = altNames.filter((n) => n.type === 6).map((n) => n.value);
  const others = altNames.filter((n) => n.type !== 6);
  if (uris.length !== 1) {
    throw new PkiError(`the certificate signing request must carry exactly one SPIFFE URI subjectAltName, it has ${uris.length}`);
  }
  if (others.length > 0) {
    throw new PkiError('the certificate signing request has DNS, IP or e-mail subjectAltNames; a consumer gateway identity is its SPIFFE URI only');
  }
  const spiffeId = checkSpiffeId(uris[0]!);
  const spki = createPublicKey(forge.pki.publicKeyToPem(publicKey)).export({ type: 'spki', format: 'der' });
  return { commonName, spiffeId, publicKeyFingerprint: colonHex(createHash('sha256').update(spki).digest()), request };
}

/**
 * Parses and checks a consumer's certificate signing request: the signature must verify with the
 * request's own key (so it was not altered in transit), the key must be RSA of at least 2048 bits, and
 * it must carry exactly one subjectAltName, a valid SPIFFE URI.
 * @returns the subject common name, the SPIFFE ID and the SHA-256 fingerprint of the public key
 *   (`AB:CD:...` over the DER SubjectPublicKeyInfo, the same value inspectCertificate reports)
 * @throws PkiError saying what is wrong when the request is malformed, forged or not acceptable
 */
export function inspectCertificateRequest(csrPem: string): { commonName: string; spiffeId: string; publicKeyFingerprint: string } {
  const { commonName, spiffeId, publicKeyFingerprint } = checkCertificateRequest(csrPem);
  return { commonName, spiffeId, publicKeyFingerprint };
}
