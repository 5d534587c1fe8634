import { createHash, randomBytes, type KeyObject } from 'node:crypto';
import * as der from './der.js';
import { PkiError } from './errors.js';
import { checkCertificateRequest, checkCommonName, createCertificateRequest, MAX_COMMON_NAME } from './csr.js';
import { checkKey, generateKeyPair, generatePrivateKey, privateKeyToPem, samePublicKey, signatureAlgorithmOf, signingKey, signWith, spkiOf } from './keys.js';
import { normaliseDnsName } from './names.js';
import { describeParsed, parseCertificate, subjectKeyIdentifierOf } from './inspect.js';

/** PEM-encoded certificate and its private key (PKCS#8 PEM for keys meshfed generates: ECDSA P-256). */
export interface CertificateAndKey {
  certificatePem: string;
  privateKeyPem: string;
}

/** When a certificate is issued and for how long. */
export interface ValidityOptions {
  /** Issuance time; default: the current time. */
  now?: Date;
  /** Validity in days; the default depends on the kind of certificate (CA 3650, server and client 365). */
  validityDays?: number;
}

/** Default lifetime of a federation CA, in days. */
export const DEFAULT_CA_VALIDITY_DAYS = 3650;
/** Default lifetime of gateway server and client certificates, in days. */
export const DEFAULT_LEAF_VALIDITY_DAYS = 365;
/**
 * notBefore is set this far before `now`: the certificate is used in another cluster whose clock may be
 * slightly behind, and a certificate "not yet valid" there fails the handshake for no good reason.
 */
export const CLOCK_SKEW_MS = 5 * 60 * 1000;
/** Subject organisation of every certificate meshfed issues. */
export const ORGANISATION = 'kubectl-meshfed';

const DAY_MS = 86_400_000;

function serialNumber(): Buffer {
  // 128 random bits, first byte in 0x40-0x7f: positive and minimally encoded as a DER INTEGER.
  const bytes = randomBytes(16);
  bytes[0] = (bytes[0]! & 0x3f) | 0x40;
  return bytes;
}

interface CertificateFields {
  serial: Buffer;
  issuer: Buffer;
  subject: Buffer;
  notBefore: Date;
  notAfter: Date;
  spki: Buffer;
  extensions: Buffer[];
}

/**
 * Encodes an X.509 v3 certificate and signs it with node:crypto, SHA-256 with the signer's algorithm: ECDSA for an EC
 * key (ecdsa-with-SHA256), RSA PKCS#1 v1.5 for an RSA key (an existing federation's CA).
 */
function signCertificate(fields: CertificateFields, signer: KeyObject): string {
  const algorithm = signatureAlgorithmOf(signer);
  const tbs = der.sequence(
    der.explicit(0, der.integer(2)),
    der.integer(fields.serial),
    algorithm,
    fields.issuer,
    der.sequence(der.time(fields.notBefore), der.time(fields.notAfter)),
    fields.subject,
    fields.spki,
    der.explicit(3, der.sequence(...fields.extensions)),
  );
  return der.toPem('CERTIFICATE', der.sequence(tbs, algorithm, der.bitString(signWith(signer, tbs))));
}

const KEY_USAGE_BIT = { digitalSignature: 0, keyEncipherment: 2, keyCertSign: 5, cRLSign: 6 } as const;

/**
 * A leaf's key usage, by the type of its key: digitalSignature for an EC key (RFC 5480 3 forbids keyEncipherment for
 * one; TLS needs only signatures from it), digitalSignature and keyEncipherment for an RSA key.
 */
function leafKeyUsage(key: KeyObject): number[] {
  return key.asymmetricKeyType === 'ec' ? [KEY_USAGE_BIT.digitalSignature] : [KEY_USAGE_BIT.digitalSignature, KEY_USAGE_BIT.keyEncipherment];
}

function validityWindow(options: ValidityOptions, defaultDays: number): { notBefore: Date; notAfter: Date } {
  const now = options.now ?? new Date();
  const days = options.validityDays ?? defaultDays;
  if (Number.isNaN(now.getTime())) throw new PkiError('the issuance time is not a valid date');
  if (!Number.isFinite(days) || days <= 0) throw new PkiError(`validity must be a positive number of days, got ${days}`);
  return { notBefore: new Date(now.getTime() - CLOCK_SKEW_MS), notAfter: new Date(now.getTime() + days * DAY_MS) };
}

/** Stays within 64 characters; a long provider name is cut and suffixed with a hash so CAs stay distinct. */
function caCommonName(provider: string): string {
  const prefix = 'meshfed federation CA ';
  const full = `${prefix}${provider}`;
  if (full.length <= MAX_COMMON_NAME) return full;
  const hash = createHash('sha256').update(provider).digest('hex').slice(0, 8);
  return `${prefix}${provider.slice(0, MAX_COMMON_NAME - prefix.length - hash.length - 1)}~${hash}`;
}

/**
 * Creates the federation CA of one provider cluster: a new ECDSA P-256 key, self-signed (ecdsa-with-SHA256),
 * basicConstraints CA:TRUE pathlen:0 (critical), keyUsage keyCertSign+cRLSign (critical),
 * subject `CN=meshfed federation CA <provider>,O=kubectl-meshfed` (a long provider name is shortened
 * with a hash to fit 64 characters).
 * @param options.provider the provider's name (e.g. its kube context or cluster name)
 * @param options.validityDays default 3650
 * @param options.now default: the current time; notBefore is 5 minutes earlier to absorb clock skew
 */
export function createFederationCA(options: { provider: string } & ValidityOptions): CertificateAndKey {
  if (options.provider.trim() === '') throw new PkiError('the provider name of a federation CA must not be empty');
  const { notBefore, notAfter } = validityWindow(options, DEFAULT_CA_VALIDITY_DAYS);
  const key = generatePrivateKey();
  const spki = spkiOf(key);
  const name = der.name([[der.OID.organizationName, ORGANISATION], [der.OID.commonName, caCommonName(options.provider)]]);
  const keyId = subjectKeyIdentifierOf(spki);
  const certificatePem = signCertificate({
    serial: serialNumber(), issuer: name, subject: name, notBefore, notAfter, spki,
    extensions: [
      der.extension(der.OID.basicConstraints, true, der.sequence(der.boolean(true), der.integer(0))),
      der.extension(der.OID.keyUsage, true, der.namedBits([KEY_USAGE_BIT.keyCertSign, KEY_USAGE_BIT.cRLSign])),
      der.extension(der.OID.subjectKeyIdentifier, false, der.octetString(keyId)),
      der.extension(der.OID.authorityKeyIdentifier, false, der.sequence(der.implicitPrimitive(0, keyId))),
    ],
  }, key);
  return { certificatePem, privateKeyPem: privateKeyToPem(key) };
}

interface SigningCA {
  /** The CA's subject exactly as encoded in its certificate: a leaf's issuer must match it. */
  subject: Buffer;
  keyIdentifier: Buffer;
  privateKey: KeyObject;
  notAfter: Date;
}

function loadCA(ca: CertificateAndKey, now: Date): SigningCA {
  const parsed = parseCertificate(ca.certificatePem);
  const info = describeParsed(parsed, now);
  if (!info.isCA || !info.keyUsage.includes('keyCertSign')) {
    throw new PkiError(`${info.subject} is not a CA that may sign certificates (needs CA:TRUE and keyCertSign)`);
  }
  if (now < info.notBefore || now > info.notAfter) {
    throw new PkiError(`the federation CA ${info.subject} is not valid at ${now.toISOString()} (valid ${info.notBefore.toISOString()} to ${info.notAfter.toISOString()}); renew it first`);
  }
  // An existing federation's CA may be RSA (earlier versions made RSA 2048 CAs): it keeps signing with RSA until a CA
  // rotation replaces it with an ECDSA one.
  const remedy = 'rotate to a new federation CA (kubectl meshfed rotate --ca), which meshfed creates with an ECDSA P-256 key';
  const what = `the federation CA ${info.subject}`;
  const publicKey = checkKey(parsed.x509.publicKey, what, remedy);
  const privateKey = signingKey(ca.privateKeyPem, `the key of ${what}`, remedy);
  if (!samePublicKey(privateKey, publicKey)) {
    throw new PkiError(`the private key given for ${info.subject} does not belong to that certificate`);
  }
  return {
    subject: parsed.subjectDer,
    keyIdentifier: parsed.subjectKeyIdentifier ?? subjectKeyIdentifierOf(publicKey.export({ type: 'spki', format: 'der' })),
    privateKey,
    notAfter: info.notAfter,
  };
}

function signLeaf(
  ca: SigningCA,
  subjectKey: KeyObject,
  subject: Buffer,
  usage: { extKeyUsage: 'serverAuth' | 'clientAuth'; altNames: Buffer[] },
  options: ValidityOptions,
): string {
  const window = validityWindow(options, DEFAULT_LEAF_VALIDITY_DAYS);
  // A leaf outliving its CA would look valid but fail every handshake after the CA expires.
  const notAfter = window.notAfter > ca.notAfter ? ca.notAfter : window.notAfter;
  const spki = spkiOf(subjectKey);
  return signCertificate({
    serial: serialNumber(), issuer: ca.subject, subject, notBefore: window.notBefore, notAfter, spki,
    extensions: [
      der.extension(der.OID.basicConstraints, true, der.sequence()),
      der.extension(der.OID.keyUsage, true, der.namedBits(leafKeyUsage(subjectKey))),
      der.extension(der.OID.extKeyUsage, false, der.sequence(der.oid(der.OID[usage.extKeyUsage]))),
      der.extension(der.OID.subjectAltName, false, der.sequence(...usage.altNames)),
      der.extension(der.OID.subjectKeyIdentifier, false, der.octetString(subjectKeyIdentifierOf(spki))),
      der.extension(der.OID.authorityKeyIdentifier, false, der.sequence(der.implicitPrimitive(0, ca.keyIdentifier))),
    ],
  }, ca.privateKey);
}

/**
 * Issues the server certificate of a provider's federation gateway, signed by its federation CA:
 * DNS subjectAltNames = every export's SNI host, extKeyUsage serverAuth, keyUsage digitalSignature,
 * CA:FALSE, a fresh ECDSA P-256 key.
 * @param options.ca the provider's federation CA (certificate and key)
 * @param options.hosts SNI hosts, at least one; lower-cased, de-duplicated, wildcards refused
 * @param options.commonName default: the first host when it fits in 64 characters, else "meshfed federation gateway"
 * @param options.validityDays default 365, never beyond the CA's notAfter
 * @param options.now default: the current time
 */
export function issueServerCertificate(options: { ca: CertificateAndKey; hosts: string[]; commonName?: string } & ValidityOptions): CertificateAndKey {
  const hosts = [...new Set(options.hosts.map(normaliseDnsName))];
  if (hosts.length === 0) throw new PkiError('a federation gateway server certificate needs at least one host');
  const ca = loadCA(options.ca, options.now ?? new Date());
  const commonName = options.commonName ?? (hosts[0]!.length <= MAX_COMMON_NAME ? hosts[0]! : 'meshfed federation gateway');
  const subject = der.name([[der.OID.organizationName, ORGANISATION], [der.OID.commonName, checkCommonName(commonName)]]);
  const key = generatePrivateKey();
  const certificatePem = signLeaf(
    ca, key, subject,
    { extKeyUsage: 'serverAuth', altNames: hosts.map((host) => der.implicitPrimitive(2, Buffer.from(host, 'ascii'))) },
    options,
  );
  return { certificatePem, privateKeyPem: privateKeyToPem(key) };
}

/**
 * Signs a consumer gateway's client certificate from its CSR (see inspectCertificateRequest for what is
 * checked): the subject CN and the SPIFFE URI subjectAltName come from the request, extKeyUsage
 * clientAuth, keyUsage digitalSignature (and keyEncipherment for an RSA key), CA:FALSE.
 * @param options.expectSpiffeId when given, the request's SPIFFE ID must equal it (the consumer admitted by the export)
 * @param options.validityDays default 365, never beyond the CA's notAfter
 * @param options.now default: the current time
 * @returns the certificate PEM
 * @throws PkiError for a forged or malformed request, an unexpected identity, or an unusable CA
 */
export function signClientCertificate(options: { ca: CertificateAndKey; csrPem: string; expectSpiffeId?: string } & ValidityOptions): string {
  const request = checkCertificateRequest(options.csrPem);
  if (options.expectSpiffeId !== undefined && request.spiffeId !== options.expectSpiffeId) {
    throw new PkiError(`the certificate signing request is for ${request.spiffeId}, but ${options.expectSpiffeId} was expected`);
  }
  const ca = loadCA(options.ca, options.now ?? new Date());
  return signLeaf(
    ca, request.publicKey,
    der.name([[der.OID.organizationName, ORGANISATION], [der.OID.commonName, request.commonName]]),
    { extKeyUsage: 'clientAuth', altNames: [der.implicitPrimitive(6, Buffer.from(request.spiffeId, 'ascii'))] },
    options,
  );
}

/**
 * Key, CSR and signature in one step, for when one process may hold the consumer's key (tests,
 * single-cluster flows). Same certificate as {@link signClientCertificate}.
 */
export function issueClientCertificate(options: { ca: CertificateAndKey; commonName: string; spiffeId: string } & ValidityOptions): CertificateAndKey {
  const { privateKeyPem } = generateKeyPair();
  const csrPem = createCertificateRequest({ privateKeyPem, commonName: options.commonName, spiffeId: options.spiffeId });
  const { commonName: _commonName, spiffeId: _spiffeId, ...signing } = options;
  return { certificatePem: signClientCertificate({ ...signing, csrPem }), privateKeyPem };
}
