/**
 * Certificates for the model: Istio workload certificates issued from each cluster's `cacerts` plug-in CA
 * (cached), and a small certificate factory that tests use to build CAs, gateway and client certificates.
 * Keys come from node:crypto (fast, native), reused between test processes (../keys.ts), and certificates are
 * signed with node-forge.
 */
import { createHash, generateKeyPairSync } from 'node:crypto';
import forge from 'node-forge';
import { DEFAULT_KEY_BITS, generateOnDemand } from '../../../src/pki/index.js';
import '../keys.js';
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
  /** DNS subject alternative names. Default: none. */
  dnsNames?: string[];
  /** URI subject alternative names (SPIFFE identities). Default: none. */
  uris?: string[];
  /** Makes a CA certificate. Default false. */
  isCA?: boolean;
  /** Validity start. Default: one hour ago. */
  notBefore?: Date;
  /** Validity end. Default: one year after now. */
  notAfter?: Date;
  /** Key size in bits. Default 2048. */
  keyBits?: number;
}

let serial = 1;

function newKey(bits: number): { forgeKey: forge.pki.rsa.PrivateKey; publicKey: forge.pki.rsa.PublicKey; pem: string } {
  // The core's key source, which ../keys.ts makes hand out reused keys.
  const privateKey = bits === DEFAULT_KEY_BITS ? generateOnDemand.take(bits) : generateKeyPairSync('rsa', { modulusLength: bits }).privateKey;
  const pem = privateKey.export({ type: 'pkcs1', format: 'pem' }).toString();
  const forgeKey = forge.pki.privateKeyFromPem(pem);
  return { forgeKey, publicKey: forge.pki.setRsaPublicKey(forgeKey.n, forgeKey.e), pem };
}

/**
 * Issues a certificate signed by `issuer`, or self-signed when `issuer` is undefined. Returns the chain leaf
 * first followed by the issuer's chain, and the new key.
 */
export function issueCertificate(options: IssueOptions, issuer?: CertificateAuthority): CertificateAuthority {
  const key = newKey(options.keyBits ?? 2048);
  const cert = forge.pki.createCertificate();
  cert.publicKey = key.publicKey;
  cert.serialNumber = (serial++).toString(16).padStart(2, '0') + Date.now().toString(16);
  cert.validity.notBefore = options.notBefore ?? new Date(Date.now() - 3600_000);
  cert.validity.notAfter = options.notAfter ?? new Date(Date.now() + 365 * 24 * 3600_000);
  // Istio workload certificates carry no subject, only a critical URI SAN.
  const subject = options.commonName ? [{ name: 'commonName', value: options.commonName }, { name: 'organizationName', value: 'meshfed-test' }] : [];
  cert.setSubject(subject);
  const issuerCert = issuer ? forge.pki.certificateFromPem(issuer.cert) : undefined;
  cert.setIssuer(issuerCert ? issuerCert.subject.attributes : subject);
  const altNames = [
    ...(options.dnsNames ?? []).map((value) => ({ type: 2, value })),
    ...(options.uris ?? []).map((value) => ({ type: 6, value })),
  ];
  const extensions: object[] = [
    { name: 'basicConstraints', cA: options.isCA ?? false, critical: true },
    options.isCA
      ? { name: 'keyUsage', keyCertSign: true, cRLSign: true, digitalSignature: true, critical: true }
      : { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
    { name: 'subjectKeyIdentifier' },
  ];
  if (!options.isCA) extensions.push({ name: 'extKeyUsage', serverAuth: true, clientAuth: true });
  if (altNames.length > 0) extensions.push({ name: 'subjectAltName', altNames, critical: !options.commonName });
  cert.setExtensions(extensions);
  const signer = issuer ? forge.pki.privateKeyFromPem(issuer.key) : key.forgeKey;
  cert.sign(signer, forge.md.sha256.create());
  const pem = forge.pki.certificateToPem(cert);
  return {
    cert: pem,
    certChain: issuer ? pem + issuer.certChain : pem,
    key: key.pem,
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
