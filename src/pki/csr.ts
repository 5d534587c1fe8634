import { createHash, createPublicKey, verify, type KeyObject } from 'node:crypto';
import * as der from './der.js';
import { PkiError } from './errors.js';
import { checkKey, colonHex, signatureAlgorithmOf, signingKey, signWith } from './keys.js';
import { checkSpiffeId } from './names.js';
import { readGeneralNames, readName } from './inspect.js';

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
 * A PKCS#10 certificate signing request for a consumer gateway's client certificate, signed with SHA-256 and the key's
 * algorithm (ecdsa-with-SHA256 for the keys meshfed generates): subject `CN=<commonName>`, and the SPIFFE ID as the
 * only URI subjectAltName in the extensionRequest attribute. Only the request travels to the provider; the key stays
 * where it is.
 * @param options.privateKeyPem ECDSA P-256 (or RSA, 2048 bits or more) private key, PEM, e.g. from generateKeyPair
 * @param options.commonName e.g. `meshfed-egress.operations` (1-64 characters)
 * @param options.spiffeId e.g. `spiffe://meshfed.operations/ns/istio-meshfed/sa/meshfed-egress`
 * @returns the request as PEM (`BEGIN CERTIFICATE REQUEST`)
 */
export function createCertificateRequest(options: { privateKeyPem: string; commonName: string; spiffeId: string }): string {
  const privateKey = signingKey(options.privateKeyPem, 'the consumer private key', 'use a key from generateKeyPair');
  const subject = der.name([[der.OID.commonName, checkCommonName(options.commonName)]]);
  const san = der.sequence(der.implicitPrimitive(6, Buffer.from(checkSpiffeId(options.spiffeId), 'ascii')));
  const info = der.sequence(
    der.integer(0),
    subject,
    createPublicKey(privateKey).export({ type: 'spki', format: 'der' }),
    // attributes [0] IMPLICIT SET OF Attribute: one extensionRequest holding the subjectAltName.
    der.tlv(0xa0, der.sequence(der.oid(der.OID.extensionRequest), der.set(der.sequence(der.extension(der.OID.subjectAltName, false, san))))),
  );
  return der.toPem('CERTIFICATE REQUEST', der.sequence(info, signatureAlgorithmOf(privateKey), der.bitString(signWith(privateKey, info))));
}

/** A request that passed {@link inspectCertificateRequest}, with its key for signing. */
export interface CheckedRequest {
  commonName: string;
  spiffeId: string;
  publicKeyFingerprint: string;
  /** The request's public key: what the certificate certifies. */
  publicKey: KeyObject;
}

/** Signature algorithms a request may be signed with, by OID: the key type they need and their hash. */
const SIGNATURE_ALGORITHMS: Record<string, { keyType: 'rsa' | 'ec'; hash: string }> = {
  '1.2.840.113549.1.1.5': { keyType: 'rsa', hash: 'sha1' }, '1.2.840.113549.1.1.14': { keyType: 'rsa', hash: 'sha224' },
  [der.OID.sha256WithRSAEncryption]: { keyType: 'rsa', hash: 'sha256' }, '1.2.840.113549.1.1.12': { keyType: 'rsa', hash: 'sha384' },
  '1.2.840.113549.1.1.13': { keyType: 'rsa', hash: 'sha512' },
  '1.2.840.10045.4.3.1': { keyType: 'ec', hash: 'sha224' }, [der.OID.ecdsaWithSHA256]: { keyType: 'ec', hash: 'sha256' },
  '1.2.840.10045.4.3.3': { keyType: 'ec', hash: 'sha384' }, '1.2.840.10045.4.3.4': { keyType: 'ec', hash: 'sha512' },
};

interface RequestParts {
  info: der.Node;
  spki: der.Node;
  subject: der.Node;
  attributes: der.Node | undefined;
  algorithm: string;
  signature: Buffer;
}

function requestParts(pem: string): RequestParts {
  const bytes = der.fromPem(pem, /(?:NEW )?CERTIFICATE REQUEST/);
  if (!bytes) throw new der.DerError('no PEM block');
  const root = der.decode(bytes);
  const info = der.child(root, 0, der.TAG.sequence);
  der.child(info, 0, der.TAG.integer);
  return {
    info,
    subject: der.child(info, 1, der.TAG.sequence),
    spki: der.child(info, 2, der.TAG.sequence),
    attributes: info.children.find((node) => node.tag === 0xa0),
    algorithm: der.readOid(der.child(der.child(root, 1, der.TAG.sequence), 0)),
    signature: der.readBitStringBytes(der.child(root, 2)),
  };
}

/** The subjectAltName entries of the request's extensionRequest attribute (empty when it has none). */
function requestedAltNames(attributes: der.Node | undefined): Array<{ type: number; value: string }> {
  for (const attribute of attributes?.children ?? []) {
    if (der.readOid(der.child(attribute, 0)) !== der.OID.extensionRequest) continue;
    const extensions = der.child(der.child(attribute, 1, der.TAG.set), 0, der.TAG.sequence);
    for (const extension of extensions.children) {
      if (der.readOid(der.child(extension, 0)) !== der.OID.subjectAltName) continue;
      return readGeneralNames(der.decode(extension.children.at(-1)!.content));
    }
  }
  return [];
}

/** Parses and checks a CSR; see {@link inspectCertificateRequest}. */
export function checkCertificateRequest(csrPem: string): CheckedRequest {
  if (!/-----BEGIN (NEW )?CERTIFICATE REQUEST-----/.test(csrPem)) {
    throw new PkiError('the certificate signing request is not a PEM "CERTIFICATE REQUEST"');
  }
  let parts: RequestParts;
  let publicKey: KeyObject;
  let altNames: Array<{ type: number; value: string }>;
  let commonName: string | undefined;
  try {
    parts = requestParts(csrPem);
    publicKey = createPublicKey({ key: parts.spki.raw, format: 'der', type: 'spki' });
    altNames = requestedAltNames(parts.attributes);
    commonName = readName(parts.subject).find((rdn) => rdn.key === 'CN')?.value;
  } catch {
    throw new PkiError('the certificate signing request is unusable: it cannot be parsed');
  }
  checkKey(publicKey, 'the certificate signing request', 'make the request again with kubectl meshfed import --request-out, which uses an ECDSA P-256 key');
  const algorithm = SIGNATURE_ALGORITHMS[parts.algorithm];
  if (algorithm?.keyType !== publicKey.asymmetricKeyType) {
    throw new PkiError(`the certificate signing request is unusable: its signature algorithm ${parts.algorithm} is not ${publicKey.asymmetricKeyType === 'ec' ? 'ECDSA with SHA-2' : 'RSA with SHA-1 or SHA-2'}, which its key needs`);
  }
  let signatureValid = false;
  try {
    signatureValid = verify(algorithm.hash, parts.info.raw, { key: publicKey, dsaEncoding: 'der' }, parts.signature);
  } catch {
    signatureValid = false;
  }
  if (!signatureValid) {
    throw new PkiError('the certificate signing request is forged or damaged: its signature does not match its content and key');
  }
  if (commonName === undefined || commonName === '') throw new PkiError('the certificate signing request has no subject common name (CN)');
  checkCommonName(commonName);

  const uris = altNames.filter((n) => n.type === 6).map((n) => n.value);
  const others = altNames.filter((n) => n.type !== 6);
  if (uris.length !== 1) {
    throw new PkiError(`the certificate signing request must carry exactly one SPIFFE URI subjectAltName, it has ${uris.length}`);
  }
  if (others.length > 0) {
    throw new PkiError('the certificate signing request has DNS, IP or e-mail subjectAltNames; a consumer gateway identity is its SPIFFE URI only');
  }
  const spiffeId = checkSpiffeId(uris[0]!);
  return { commonName, spiffeId, publicKeyFingerprint: colonHex(createHash('sha256').update(parts.spki.raw).digest()), publicKey };
}

/**
 * Parses and checks a consumer's certificate signing request: the key must be ECDSA P-256 (what meshfed generates) or
 * RSA of at least 2048 bits (what earlier versions generated), the signature must verify with the request's own key
 * (so it was not altered in transit), and it must carry exactly one subjectAltName, a valid SPIFFE URI.
 * @returns the subject common name, the SPIFFE ID and the SHA-256 fingerprint of the public key
 *   (`AB:CD:...` over the DER SubjectPublicKeyInfo, the same value inspectCertificate reports)
 * @throws PkiError saying what is wrong when the request is malformed, forged or not acceptable
 */
export function inspectCertificateRequest(csrPem: string): { commonName: string; spiffeId: string; publicKeyFingerprint: string } {
  const { commonName, spiffeId, publicKeyFingerprint } = checkCertificateRequest(csrPem);
  return { commonName, spiffeId, publicKeyFingerprint };
}
