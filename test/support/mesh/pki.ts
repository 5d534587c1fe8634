/**
 * Certificates for the model: Istio workload certificates issued from each cluster's `cacerts` plug-in CA
 * (cached), and a small certificate factory that tests use to build CAs, gateway and client certificates (and the
 * emulator its API-server and Istio CA certificates, test/support/emulator/pki.ts).
 * New keys are ECDSA P-256 (node:crypto, a tenth of a millisecond each); certificates are encoded with the DER
 * writer of src/pki and signed with node:crypto by the issuer's key of any type meshfed accepts (an RSA `cacerts` CA
 * of the emulator signs with RSA).
 */
import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, randomBytes, sign, X509Certificate } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import * as der from '../../../src/pki/der.js';
import type { ClusterView } from '../emulator/runtime.js';
import { meshSettings, secretData } from './world.js';

/** A certificate chain (leaf first) and its private key, PEM encoded. */
export interface KeyPair {
  certChain: string;
  key: string;
}

/** A CA able to sign: its certificate, key, the chain up to the root and the root alone. */
export interface CertificateAuthority extends KeyPair {
  cert: string;
  root: string;
}

/** Options for {@link issueCertificate}. */
export interface IssueOptions {
  /** Subject common name. */
  commonName: string;
  /** The whole subject as (attribute OID, value) pairs, instead of CN `commonName`, O meshfed-test. */
  subject?: Array<[oid: string, value: string]>;
  /** DNS subject alternative names. Default: none. */
  dnsNames?: string[];
  /** IPv4 address subject alternative names. Default: none. */
  ipAddresses?: string[];
  /** URI subject alternative names (SPIFFE identities). Default: none. */
  uris?: string[];
  /** Makes a CA certificate. Default false. */
  isCA?: boolean;
  /** Validity start. Default: one hour ago. */
  notBefore?: Date;
  /** Validity end. Default: one year after now. */
  notAfter?: Date;
  /**
   * The new certificate's key. Default ECDSA P-256. Other keys exist to test what Envoy refuses
   * ({@link envoyKeyRefusal}).
   */
  keyType?: { kind: 'ec'; curve: 'P-224' | 'P-256' | 'P-384' | 'P-521' } | { kind: 'rsa'; bits: number } | { kind: 'ed25519' };
}

/** OpenSSL's names of the NIST curves. */
const EC_CURVES = { 'P-224': 'secp224r1', 'P-256': 'prime256v1', 'P-384': 'secp384r1', 'P-521': 'secp521r1' } as const;

let keysMade = 0;

/**
 * How many private keys this process has generated here: one per certificate {@link issueCertificate} issued. The
 * emulator reports them with the rest of what starting worlds costs (test/support/emulator/index.ts `emulatorWork`).
 */
export function keysGenerated(): number {
  return keysMade;
}

/** A new private key of the given type. */
function newKey(keyType: IssueOptions['keyType']): KeyObject {
  keysMade++;
  switch (keyType?.kind) {
    case 'rsa': return generateKeyPairSync('rsa', { modulusLength: keyType.bits }).privateKey;
    case 'ed25519': return generateKeyPairSync('ed25519').privateKey;
    case 'ec': return generateKeyPairSync('ec', { namedCurve: EC_CURVES[keyType.curve] }).privateKey;
    default: return generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).privateKey;
  }
}

/** keyUsage bits (RFC 5280 4.2.1.3). */
const DIGITAL_SIGNATURE = 0;
const KEY_ENCIPHERMENT = 2;
const KEY_CERT_SIGN = 5;
const CRL_SIGN = 6;

/** The DER subject, subject key identifier and key of an issuer, read from its PEM certificate and key. */
function issuerOf(ca: CertificateAuthority): { subject: Buffer; keyId: Buffer; key: ReturnType<typeof createPrivateKey> } {
  const x509 = new X509Certificate(ca.cert);
  const tbs = der.child(der.decode(x509.raw), 0, der.TAG.sequence);
  return { subject: Buffer.from(der.child(tbs, 5).raw), keyId: keyIdOf(x509.publicKey.export({ type: 'spki', format: 'der' })), key: createPrivateKey(ca.key) };
}

/** RFC 5280 4.2.1.2 method (1): SHA-1 of the subjectPublicKey bits. */
function keyIdOf(spki: Buffer): Buffer {
  return createHash('sha1').update(der.readBitStringBytes(der.child(der.decode(spki), 1))).digest();
}

/**
 * Issues a certificate signed by `issuer`, or self-signed when `issuer` is undefined. Returns the chain leaf
 * first followed by the issuer's chain, and the new key (ECDSA P-256 unless `keyType` says otherwise; PKCS#8 PEM).
 */
export function issueCertificate(options: IssueOptions, issuer?: CertificateAuthority): CertificateAuthority {
  const key = newKey(options.keyType);
  const spki = createPublicKey(key).export({ type: 'spki', format: 'der' });
  // Istio workload certificates carry no subject, only a critical URI SAN.
  const subject = der.name(options.subject ?? (options.commonName ? [[der.OID.commonName, options.commonName], [der.OID.organizationName, 'meshfed-test']] : []));
  const signer = issuer ? issuerOf(issuer) : { subject, keyId: keyIdOf(spki), key };
  const serial = randomBytes(12);
  serial[0] = (serial[0]! & 0x3f) | 0x40;
  const altNames = [
    ...(options.dnsNames ?? []).map((value) => der.implicitPrimitive(2, Buffer.from(value, 'ascii'))),
    ...(options.ipAddresses ?? []).map((ip) => der.implicitPrimitive(7, Buffer.from(ip.split('.').map(Number)))),
    ...(options.uris ?? []).map((value) => der.implicitPrimitive(6, Buffer.from(value, 'ascii'))),
  ];
  const extensions = [
    der.extension(der.OID.basicConstraints, true, options.isCA ? der.sequence(der.boolean(true)) : der.sequence()),
    der.extension(der.OID.keyUsage, true, der.namedBits(options.isCA ? [DIGITAL_SIGNATURE, KEY_CERT_SIGN, CRL_SIGN] : [DIGITAL_SIGNATURE, KEY_ENCIPHERMENT])),
    der.extension(der.OID.subjectKeyIdentifier, false, der.octetString(keyIdOf(spki))),
    der.extension(der.OID.authorityKeyIdentifier, false, der.sequence(der.implicitPrimitive(0, signer.keyId))),
    ...(options.isCA ? [] : [der.extension(der.OID.extKeyUsage, false, der.sequence(der.oid(der.OID.serverAuth), der.oid(der.OID.clientAuth)))]),
    ...(altNames.length > 0 ? [der.extension(der.OID.subjectAltName, !options.commonName && !options.subject?.length, der.sequence(...altNames))] : []),
  ];
  if (signer.key.asymmetricKeyType === 'ed25519') throw new Error('issueCertificate: an Ed25519 key does not sign here; issue Ed25519 certificates from an EC or RSA CA');
  const algorithm = signer.key.asymmetricKeyType === 'ec' ? der.ecdsaWithSha256() : der.sha256WithRsa();
  const tbs = der.sequence(
    der.explicit(0, der.integer(2)),
    der.integer(serial),
    algorithm,
    signer.subject,
    der.sequence(der.time(options.notBefore ?? new Date(Date.now() - 3600_000)), der.time(options.notAfter ?? new Date(Date.now() + 365 * 24 * 3600_000))),
    subject,
    spki,
    der.explicit(3, der.sequence(...extensions)),
  );
  const signature = sign('sha256', tbs, { key: signer.key, dsaEncoding: 'der' });
  const pem = der.toPem('CERTIFICATE', der.sequence(tbs, algorithm, der.bitString(signature)));
  return {
    cert: pem,
    certChain: issuer ? pem + issuer.certChain : pem,
    key: key.export({ type: 'pkcs8', format: 'pem' }).toString(),
    root: issuer ? issuer.root : pem,
  };
}

/** A self-signed root CA. */
export function createRootCA(commonName: string, options: Partial<IssueOptions> = {}): CertificateAuthority {
  return issueCertificate({ ...options, commonName, isCA: true });
}

/** An intermediate CA under `root` (the shared-root layout: one root, one intermediate per cluster). */
export function createIntermediateCA(commonName: string, root: CertificateAuthority): CertificateAuthority {
  return issueCertificate({ commonName, isCA: true }, root);
}

/** The data of an Istio plug-in CA Secret `cacerts` (plain text; base64 it for a Secret's `data`). */
export function cacertsData(ca: CertificateAuthority): Record<string, string> {
  return { 'ca-cert.pem': ca.cert, 'ca-key.pem': ca.key, 'root-cert.pem': ca.root, 'cert-chain.pem': ca.certChain };
}

/** The cluster's mesh CA, read from `istio-system/cacerts`. */
export function clusterCA(cluster: ClusterView): CertificateAuthority | undefined {
  const secret = cluster.get('', 'Secret', 'istio-system', 'cacerts');
  if (!secret) return undefined;
  const d = secretData(secret);
  if (!d['ca-cert.pem'] || !d['ca-key.pem'] || !d['root-cert.pem']) return undefined;
  return { cert: d['ca-cert.pem'], key: d['ca-key.pem'], root: d['root-cert.pem'], certChain: d['cert-chain.pem'] ?? d['ca-cert.pem'] };
}

const selfSignedRoots = new Map<string, CertificateAuthority>();
const workloadCerts = new Map<string, KeyPair>();

/**
 * The CA that issues workload certificates in a cluster: the plug-in CA from `cacerts`, or, without it, a
 * self-signed root per cluster (what istiod generates when no CA is plugged in, so such meshes never share a root).
 */
export function meshCA(cluster: ClusterView): CertificateAuthority {
  const plugged = clusterCA(cluster);
  if (plugged) return plugged;
  let ca = selfSignedRoots.get(cluster.name);
  if (!ca) {
    ca = createRootCA(`istiod self-signed root for ${cluster.name}`);
    selfSignedRoots.set(cluster.name, ca);
  }
  return ca;
}

/** The SPIFFE identity of a workload. */
export function spiffeId(trustDomain: string, namespace: string, serviceAccount: string): string {
  return `spiffe://${trustDomain}/ns/${namespace}/sa/${serviceAccount}`;
}

/**
 * The workload certificate istiod would issue to a proxy running as `serviceAccount` in `namespace`,
 * signed by the cluster's current CA. Cached per CA and identity.
 */
export function workloadCertificate(cluster: ClusterView, namespace: string, serviceAccount: string): KeyPair & { root: string; identity: string } {
  const ca = meshCA(cluster);
  const identity = spiffeId(meshSettings(cluster).trustDomain, namespace, serviceAccount);
  const cacheKey = createHash('sha256').update(ca.cert).update(identity).digest('hex');
  let kp = workloadCerts.get(cacheKey);
  if (!kp) {
    kp = issueCertificate({ commonName: '', uris: [identity] }, ca);
    workloadCerts.set(cacheKey, kp);
  }
  return { ...kp, root: ca.root, identity };
}

/** URI subject alternative names of a PEM or DER certificate, as Node reports them. */
export function uriSans(subjectaltname: string | undefined): string[] {
  if (!subjectaltname) return [];
  return subjectaltname.split(/,\s*/).filter((s) => s.startsWith('URI:')).map((s) => s.slice(4));
}

/**
 * The Envoy release (`[major, minor]`) an Istio release's proxy is built from: Istio 1.x ships Envoy 1.(x+8) from 1.9
 * on. istio/proxy pins the Envoy commit in `WORKSPACE` (`ENVOY_SHA`, with its commit date) at each release tag; from
 * the release branch on it follows Envoy's release branch of that line: tag 1.9.0 has envoy@16d4f652 of 2021-01-25
 * (Envoy 1.17.0 was released on 2021-01-11), 1.24.0 envoy@75d1643e of 2024-10-30 (Envoy 1.32.0: 2024-10-15), 1.25.0
 * envoy@64859b2d of 2025-02-15 (Envoy 1.33.0: 2025-01-14, `changelogs/1.33.0.yaml`), 1.30.0 envoy@15d1f0bf of
 * 2026-05-15. A proxy without a version (an image without a tag) counts as current: Istio main, whose proxy is newer
 * than every release here (the oracle's Envoy is 1.40).
 */
export function envoyOfIstio(istio: [number, number] | undefined): [number, number] {
  if (!istio || istio[0] !== 1) return [1, 40];
  return [1, istio[1] + 8];
}

/** Envoy >= major.minor. */
function envoyAtLeast(envoy: [number, number], major: number, minor: number): boolean {
  return envoy[0] > major || (envoy[0] === major && envoy[1] >= minor);
}

/**
 * Why Envoy refuses to load a certificate chain into a TLS context, or undefined when it loads it. Envoy looks at the
 * public key of the leaf certificate only, in `ContextImpl::ContextImpl`, the `switch (pkey_id)`, which builds the
 * server (downstream) and client (upstream) contexts alike:
 * - `EVP_PKEY_EC`: up to Envoy 1.32 (Istio 1.24) only P-256, "only P-256 ECDSA certificates are supported"
 *   (`source/extensions/transport_sockets/tls/context_impl.cc`, Envoy 1.17 as Istio 1.9 ships it); from Envoy 1.33
 *   (Istio 1.25) P-256, P-384 and P-521, "only P-256, P-384 or P-521 ECDSA certificates are supported"
 *   (`source/common/tls/context_impl.cc`; envoyproxy/envoy#36369, `changelogs/1.33.0.yaml` "Added support for P-384
 *   and P-521 curves for TLS server certificates").
 * - `EVP_PKEY_RSA` below 2048 bits: "only RSA certificates with 2048-bit or larger keys are supported", on every
 *   release; there is no upper limit (2048, 3072 or 4096 bits only in FIPS builds, which Istio's proxy is not).
 * - Any other key type (Ed25519): refused only in FIPS builds (`default:` under `#ifdef BORINGSSL_FIPS`), so Istio's
 *   proxy loads it; the handshake then fails (`ENVOY_CLIENT_SIGALGS` in tls.ts).
 * Secrets from SDS are inline, hence `<inline>`. `envoy` is the release ({@link envoyOfIstio}).
 */
export function envoyKeyRefusal(certChain: string, envoy: [number, number]): string | undefined {
  let key: KeyObject;
  try {
    key = new X509Certificate(certChain).publicKey;
  } catch {
    return undefined; // Not a certificate: the handshake reports it as node:tls does.
  }
  const details = key.asymmetricKeyDetails ?? {};
  const prefix = 'Failed to load certificate chain from <inline>, ';
  if (key.asymmetricKeyType === 'ec') {
    if (!envoyAtLeast(envoy, 1, 33)) return details.namedCurve === 'prime256v1' ? undefined : `${prefix}only P-256 ECDSA certificates are supported`;
    return ['prime256v1', 'secp384r1', 'secp521r1'].includes(details.namedCurve ?? '') ? undefined : `${prefix}only P-256, P-384 or P-521 ECDSA certificates are supported`;
  }
  if (key.asymmetricKeyType === 'rsa') return (details.modulusLength ?? 0) >= 2048 ? undefined : `${prefix}only RSA certificates with 2048-bit or larger keys are supported`;
  return undefined;
}
