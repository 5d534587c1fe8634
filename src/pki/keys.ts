import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, sign, verify, X509Certificate } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import * as der from './der.js';
import { PkiError } from './errors.js';

/** `AB:CD:...`: the notation `openssl x509 -fingerprint` prints, so users can compare by eye. */
export function colonHex(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString('hex').toUpperCase().match(/../g)!.join(':');
}

/** SHA-256 over the DER SubjectPublicKeyInfo: identical for a key, its CSR and its certificate. */
export function fingerprintPublicKey(key: KeyObject): string {
  return colonHex(createHash('sha256').update(key.export({ type: 'spki', format: 'der' })).digest());
}

/**
 * The curve of every key meshfed generates: NIST P-256 (OpenSSL's `prime256v1`, `secp256r1`), the one ECDSA curve
 * the Envoy of every supported Istio release accepts for the certificates it presents (Envoy 1.32, Istio 1.24, and
 * earlier take no other; docs/pki.md, Keys).
 */
export const KEY_CURVE = 'prime256v1';
/** The smallest RSA key meshfed accepts from an existing federation (it generates none). */
export const MIN_RSA_BITS = 2048;
/** The keys meshfed accepts, in words, for messages. */
export const ACCEPTED_KEYS = `ECDSA P-256 (${KEY_CURVE}) keys or RSA keys of at least ${MIN_RSA_BITS} bits`;

/**
 * A fresh ECDSA P-256 private key (native, synchronous: about a tenth of a millisecond). Every key meshfed makes is
 * one: federation CAs, gateway server and client keys, import requests' keys.
 */
export function generatePrivateKey(): KeyObject {
  return generateKeyPairSync('ec', { namedCurve: KEY_CURVE }).privateKey;
}

/** Why meshfed does not use `key` (public or private), in words after "it has", or undefined when it does. */
function keyProblem(key: KeyObject): string | undefined {
  const type = key.asymmetricKeyType;
  if (type === 'ec') {
    const curve = key.asymmetricKeyDetails?.namedCurve ?? 'unknown';
    return curve === KEY_CURVE ? undefined : `an EC key on curve ${curve}`;
  }
  if (type === 'rsa') {
    const bits = key.asymmetricKeyDetails?.modulusLength ?? 0;
    return bits >= MIN_RSA_BITS ? undefined : `a ${bits}-bit RSA key`;
  }
  return `a key of type ${type ?? 'unknown'}`;
}

/**
 * Returns `key` when meshfed uses keys of its kind: ECDSA P-256 (what it generates) or RSA of 2048 bits or more (what
 * earlier versions generated). The Envoy of Istio 1.9 to 1.24 presents no ECDSA certificate on another curve; later
 * ones also take P-384, which meshfed still refuses (docs/pki.md, Keys).
 * @param what names the object, e.g. "the federation CA CN=…" (the message starts with it)
 * @param remedy what to do instead, e.g. "make the request again with kubectl meshfed"
 * @throws PkiError naming the object, its key and what to do
 */
export function checkKey(key: KeyObject, what: string, remedy: string): KeyObject {
  const problem = keyProblem(key);
  if (problem) throw new PkiError(`${what} has ${problem}; meshfed accepts only ${ACCEPTED_KEYS}: ${remedy}`);
  return key;
}

/** The AlgorithmIdentifier of what {@link signWith} makes with `key`: ecdsa-with-SHA256 or sha256WithRSAEncryption. */
export function signatureAlgorithmOf(key: KeyObject): Buffer {
  return key.asymmetricKeyType === 'ec' ? der.ecdsaWithSha256() : der.sha256WithRsa();
}

/**
 * Signs `data` with SHA-256 and the signer's own algorithm: ECDSA (the DER `Ecdsa-Sig-Value` that X.509 and PKCS#10
 * carry) for an EC key, RSA PKCS#1 v1.5 for an RSA key.
 */
export function signWith(key: KeyObject, data: Uint8Array): Buffer {
  return sign('sha256', data, { key, dsaEncoding: 'der' });
}

/** PKCS#8 (`BEGIN PRIVATE KEY`), what openssl writes by default and Envoy/Istio read. */
export function privateKeyToPem(key: KeyObject): string {
  return key.export({ type: 'pkcs8', format: 'pem' }).toString();
}

/**
 * Reads an unencrypted private key (PKCS#8, SEC1 or PKCS#1 PEM) for signing: ECDSA P-256 or RSA of 2048 bits or more.
 * @param what names the key in messages, e.g. "the federation CA key"
 * @param remedy what to do about a key of another kind (see {@link checkKey})
 */
export function signingKey(privateKeyPem: string, what: string, remedy: string): KeyObject {
  let key: KeyObject;
  try {
    key = createPrivateKey({ key: privateKeyPem, format: 'pem' });
  } catch {
    throw new PkiError(`${what} is not a readable unencrypted PEM private key`);
  }
  return checkKey(key, what, remedy);
}

/** The public key of a certificate, a public key or a private key PEM. */
export function publicKeyOf(pem: string, what: string): KeyObject {
  try {
    if (pem.includes('-----BEGIN CERTIFICATE-----')) return new X509Certificate(pem).publicKey;
    if (/-----BEGIN (RSA |EC |ENCRYPTED )?PRIVATE KEY-----/.test(pem)) return createPublicKey(createPrivateKey(pem));
    return createPublicKey({ key: pem, format: 'pem' });
  } catch {
    throw new PkiError(`${what} is not a readable PEM certificate or key`);
  }
}

/**
 * Generates a key pair (ECDSA P-256, see {@link generatePrivateKey}), e.g. for a consumer gateway: its key never
 * leaves the consumer's cluster.
 * @returns the private key as PKCS#8 PEM and the public key as SubjectPublicKeyInfo PEM
 */
export function generateKeyPair(): { privateKeyPem: string; publicKeyPem: string } {
  const privateKey = generatePrivateKey();
  return { privateKeyPem: privateKeyToPem(privateKey), publicKeyPem: createPublicKey(privateKey).export({ type: 'spki', format: 'pem' }).toString() };
}

/**
 * Does this private key belong to this certificate? Compares public keys, so it works for any key type.
 * @throws PkiError when either PEM cannot be read (a damaged Secret is not the same finding as a mismatch)
 */
export function keyMatchesCertificate(privateKeyPem: string, certificatePem: string): boolean {
  let fromKey: KeyObject;
  try {
    fromKey = createPublicKey(createPrivateKey({ key: privateKeyPem, format: 'pem' }));
  } catch {
    throw new PkiError('the private key is not a readable unencrypted PEM private key');
  }
  let fromCert: KeyObject;
  try {
    fromCert = new X509Certificate(certificatePem).publicKey;
  } catch {
    throw new PkiError('the certificate is not a readable PEM certificate');
  }
  return samePublicKey(fromKey, fromCert);
}

/** The SubjectPublicKeyInfo of a public or private key, as DER. */
export function spkiOf(key: KeyObject): Buffer {
  return (key.type === 'private' ? createPublicKey(key) : key).export({ type: 'spki', format: 'der' });
}

/** Are these (public or private) keys one key pair? */
export function samePublicKey(a: KeyObject, b: KeyObject): boolean {
  // Not KeyObject.equals: for keys of different types it leaves an error on OpenSSL's queue in Node 20,
  // which makes the next unrelated createPrivateKey call fail with "different key types".
  return a.asymmetricKeyType === b.asymmetricKeyType && spkiOf(a).equals(spkiOf(b));
}

/**
 * Detached signature over the UTF-8 bytes of `data`, base64-encoded: SHA-256 with the key's own algorithm, ECDSA (DER
 * signature) for an EC key, RSA PKCS#1 v1.5 for an RSA key (see {@link signWith}).
 */
export function signDetached(privateKeyPem: string, data: string): string {
  const key = signingKey(privateKeyPem, 'the signing key', 'sign with the key meshfed generated');
  return signWith(key, Buffer.from(data, 'utf8')).toString('base64');
}

/**
 * Verifies a {@link signDetached} signature with a certificate PEM or a public key PEM. Only the
 * signature is checked, not the certificate's validity or chain (use verifyCertificateChain for that).
 * ECDSA P-256 and RSA (2048 bits or more) keys are accepted, whichever made the signature.
 * @returns false for a wrong, truncated or malformed signature; never throws for those
 * @throws PkiError when the certificate or public key itself cannot be read or is of a kind meshfed does not accept
 */
export function verifyDetached(certificateOrPublicKeyPem: string, data: string, signatureBase64: string): boolean {
  if (/PRIVATE KEY-----/.test(certificateOrPublicKeyPem)) {
    throw new PkiError('verify signatures with a certificate or public key, not a private key');
  }
  const key = checkKey(publicKeyOf(certificateOrPublicKeyPem, 'the verification key'), 'the verification key', 'kubectl meshfed makes and signs exchange files with such keys only; ask for a new file');
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(signatureBase64.trim())) return false;
  try {
    return verify('sha256', Buffer.from(data, 'utf8'), { key, dsaEncoding: 'der' }, Buffer.from(signatureBase64.trim(), 'base64'));
  } catch {
    return false;
  }
}
