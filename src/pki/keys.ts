import { createHash, createPrivateKey, createPublicKey, sign, verify, X509Certificate } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import forge from 'node-forge';
import { PkiError } from './errors.js';

/** Default RSA modulus size for every key meshfed generates. */
export const DEFAULT_KEY_BITS = 2048;

/** `AB:CD:...`: the notation `openssl x509 -fingerprint` prints, so users can compare by eye. */
export function colonHex(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString('hex').toUpperCase().match(/../g)!.join(':');
}

/** SHA-256 over the DER SubjectPublicKeyInfo: identical for a key, its CSR and its certificate. */
export function fingerprintPublicKey(key: KeyObject): string {
  return colonHex(createHash('sha256').update(key.export({ type: 'spki', format: 'der' })).digest());
}

function checkBits(bits: number): number {
  if (!Number.isInteger(bits) || bits < 2048 || bits > 8192) {
    throw new PkiError(`RSA key size ${bits} is not supported: use 2048 to 8192 bits`);
  }
  return bits;
}

/** An RSA key as node-forge needs it for signing (forge signs certificates and requests). */
export function forgeRsaKeyPair(bits: number = DEFAULT_KEY_BITS): forge.pki.rsa.KeyPair {
  // Without a prng option node-forge delegates to crypto.generateKeyPairSync: ~0.1 s instead of
  // seconds to minutes for its pure-JS prime search.
  return forge.pki.rsa.generateKeyPair({ bits: checkBits(bits), e: 0x10001 });
}

/** PKCS#8 (`BEGIN PRIVATE KEY`), what openssl writes by default and Envoy/Istio read. */
export function privateKeyToPem(key: forge.pki.rsa.PrivateKey): string {
  return forge.pki.privateKeyInfoToPem(forge.pki.wrapRsaPrivateKey(forge.pki.privateKeyToAsn1(key)));
}

/** Reads an RSA private key (PKCS#1 or PKCS#8, unencrypted) into node-forge. */
export function forgePrivateKey(privateKeyPem: string, what: string): forge.pki.rsa.PrivateKey {
  let key: KeyObject;
  try {
    key = createPrivateKey({ key: privateKeyPem, format: 'pem' });
  } catch {
    throw new PkiError(`${what} is not a readable unencrypted PEM private key`);
  }
  if (key.asymmetricKeyType !== 'rsa') {
    throw new PkiError(`${what} is a ${key.asymmetricKeyType ?? 'unknown'} key; meshfed signs with RSA keys only`);
  }
  const pkcs8 = key.export({ type: 'pkcs8', format: 'pem' }).toString();
  return forge.pki.privateKeyFromPem(pkcs8) as forge.pki.rsa.PrivateKey;
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
 * Generates an RSA key pair for a consumer gateway (the key never leaves the consumer's cluster).
 * Native generation through node-forge; about 0.05-0.3 s for 2048 bits.
 * @param options.bits modulus size, default 2048 (2048-8192 accepted)
 * @returns the private key as PKCS#8 PEM and the public key as SubjectPublicKeyInfo PEM
 */
export function generateKeyPair(options: { bits?: number } = {}): { privateKeyPem: string; publicKeyPem: string } {
  const pair = forgeRsaKeyPair(options.bits ?? DEFAULT_KEY_BITS);
  return { privateKeyPem: privateKeyToPem(pair.privateKey), publicKeyPem: forge.pki.publicKeyToPem(pair.publicKey) };
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
  // Not KeyObject.equals: for keys of different types it leaves an error on OpenSSL's queue in Node 20,
  // which makes the next unrelated createPrivateKey call fail with "different key types".
  const spki = (key: KeyObject) => key.export({ type: 'spki', format: 'der' });
  return fromKey.asymmetricKeyType === fromCert.asymmetricKeyType && spki(fromKey).equals(spki(fromCert));
}

/**
 * Detached signature over the UTF-8 bytes of `data`: RSA PKCS#1 v1.5 with SHA-256 for RSA keys
 * (the algorithm follows the key type for others), base64-encoded.
 */
export function signDetached(privateKeyPem: string, data: string): string {
  let key: KeyObject;
  try {
    key = createPrivateKey({ key: privateKeyPem, format: 'pem' });
  } catch {
    throw new PkiError('the signing key is not a readable unencrypted PEM private key');
  }
  return sign('sha256', Buffer.from(data, 'utf8'), key).toString('base64');
}

/**
 * Verifies a {@link signDetached} signature with a certificate PEM or a public key PEM. Only the
 * signature is checked, not the certificate's validity or chain (use verifyCertificateChain for that).
 * @returns false for a wrong, truncated or malformed signature; never throws for those
 * @throws PkiError when the certificate or public key itself cannot be read
 */
export function verifyDetached(certificateOrPublicKeyPem: string, data: string, signatureBase64: string): boolean {
  if (/PRIVATE KEY-----/.test(certificateOrPublicKeyPem)) {
    throw new PkiError('verify signatures with a certificate or public key, not a private key');
  }
  const key = publicKeyOf(certificateOrPublicKeyPem, 'the verification key');
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(signatureBase64.trim())) return false;
  try {
    return verify('sha256', Buffer.from(data, 'utf8'), key, Buffer.from(signatureBase64.trim(), 'base64'));
  } catch {
    return false;
  }
}
