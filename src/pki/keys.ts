import { createHash, createPrivateKey, createPublicKey, generateKeyPair as generateKeyPairNative, generateKeyPairSync, sign, verify, X509Certificate } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
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

/**
 * Where fresh private keys come from. Generating an RSA key is the slowest step of issuing a certificate (0.1-0.5 s
 * of CPU for 2048 bits), so a command may have keys generated in the background while it reads its clusters
 * ({@link KeyPool}) and hand them to the (synchronous) planners through this interface.
 */
export interface KeySource {
  /** A fresh RSA private key of `bits` bits, never handed out before. */
  take(bits: number): KeyObject;
}

/** Generates each key when it is asked for (synchronously, natively). */
export const generateOnDemand: KeySource = {
  take: (bits) => generateKeyPairSync('rsa', { modulusLength: checkBits(bits), publicExponent: 0x10001 }).privateKey,
};

/** Raised inside {@link KeyPool.plan} when a planner asks for a key still being generated. */
class KeysPending extends Error {}

/**
 * RSA keys generated off the main thread (node:crypto's asynchronous generateKeyPair runs in libuv's thread pool,
 * several keys at once). Keys are handed to a synchronous planner through {@link plan}, which waits for the pool
 * only when the planner needs more keys than are ready. A pool made with {@link start} begins at once (for keys a
 * command is sure to need, generated while it reads its clusters); one made with {@link whenNeeded} begins the first
 * time a planner asks for a key, so that a run that issues nothing (a re-run) spends no CPU on keys.
 */
export class KeyPool implements KeySource {
  private readonly ready: KeyObject[] = [];
  private settled = false;
  private pending: Promise<void> | undefined;
  private planning = false;

  private constructor(private readonly count: number, private readonly bits: number) {}

  /** Starts generating `count` keys of `bits` bits (default 2048) in the background now. */
  static start(count: number, bits: number = DEFAULT_KEY_BITS): KeyPool {
    const pool = new KeyPool(count, checkBits(bits));
    pool.begin();
    return pool;
  }

  /** A pool that generates `count` keys of `bits` bits at once, in the background, when a planner first needs one. */
  static whenNeeded(count: number, bits: number = DEFAULT_KEY_BITS): KeyPool {
    return new KeyPool(count, checkBits(bits));
  }

  private begin(): Promise<void> {
    this.pending ??= Promise.all(Array.from({ length: this.count }, () => new Promise<void>((resolve) => {
      generateKeyPairNative('rsa', { modulusLength: this.bits, publicExponent: 0x10001 }, (error, _publicKey, privateKey) => {
        // A failure here only means the key is generated on demand instead.
        if (!error) this.ready.push(privateKey);
        resolve();
      });
    }))).then(() => {
      this.settled = true;
    });
    return this.pending;
  }

  /** Resolves once every key of the pool is ready (or failed: it is then generated on demand); never rejects. */
  async prepared(): Promise<this> {
    await this.begin();
    return this;
  }

  /**
   * A prepared key when one of that size is ready; otherwise, outside {@link plan} or once the pool has settled, a
   * key generated on the spot.
   */
  take(bits: number): KeyObject {
    if (bits !== this.bits) return generateOnDemand.take(bits);
    const key = this.ready.shift();
    if (key) return key;
    if (this.planning && !this.settled) throw new KeysPending('a key is still being generated');
    return generateOnDemand.take(bits);
  }

  /**
   * Runs a pure, synchronous planner with keys from this pool. When it asks for a key that is not ready, its result
   * is discarded, the keys it took are put back, the pool's keys are generated (if they were not being generated
   * yet), and it runs again once they are (a pure planner computes the same plan again; only its CPU time, a few
   * milliseconds, is spent twice).
   */
  async plan<T>(run: (keys: KeySource) => T): Promise<T> {
    const taken: KeyObject[] = [];
    const source: KeySource = {
      take: (bits) => {
        const key = this.take(bits);
        taken.push(key);
        return key;
      },
    };
    this.planning = true;
    try {
      return run(source);
    } catch (error) {
      if (!(error instanceof KeysPending)) throw error;
    } finally {
      this.planning = false;
    }
    this.ready.unshift(...taken.filter((key) => key.asymmetricKeyDetails?.modulusLength === this.bits));
    await this.begin();
    return run(this);
  }
}

/** PKCS#8 (`BEGIN PRIVATE KEY`), what openssl writes by default and Envoy/Istio read. */
export function privateKeyToPem(key: KeyObject): string {
  return key.export({ type: 'pkcs8', format: 'pem' }).toString();
}

/** Reads an unencrypted RSA private key (PKCS#1 or PKCS#8 PEM) for signing. */
export function rsaPrivateKey(privateKeyPem: string, what: string): KeyObject {
  let key: KeyObject;
  try {
    key = createPrivateKey({ key: privateKeyPem, format: 'pem' });
  } catch {
    throw new PkiError(`${what} is not a readable unencrypted PEM private key`);
  }
  if (key.asymmetricKeyType !== 'rsa') {
    throw new PkiError(`${what} is a ${key.asymmetricKeyType ?? 'unknown'} key; meshfed signs with RSA keys only`);
  }
  return key;
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
 * Native generation (node:crypto); about 0.05-0.3 s of CPU for 2048 bits, unless `keys` prepared it.
 * @param options.bits modulus size, default 2048 (2048-8192 accepted)
 * @param options.keys where the key comes from; default: generated now
 * @returns the private key as PKCS#8 PEM and the public key as SubjectPublicKeyInfo PEM
 */
export function generateKeyPair(options: { bits?: number; keys?: KeySource } = {}): { privateKeyPem: string; publicKeyPem: string } {
  const privateKey = (options.keys ?? generateOnDemand).take(checkBits(options.bits ?? DEFAULT_KEY_BITS));
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
