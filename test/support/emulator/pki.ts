/**
 * Certificates of the emulated clusters: the API servers' serving certificate (one CA and one certificate per
 * process, shared by every emulated cluster) and Istio's plug-in CAs (`cacerts`), made fresh for every world so
 * roots really differ. Keys are ECDSA P-256 (node:crypto, a fraction of a millisecond each), made by the model's
 * certificate factory (test/support/mesh/pki.ts, the DER writer of src/pki). kubectl (Go's crypto/tls) takes an
 * ECDSA serving certificate, and Istio takes an ECDSA plug-in CA (`security/pkg/pki/util/keycertbundle.go`
 * `Verify`: ECDSA keys are checked like RSA ones).
 */
import { X509Certificate } from 'node:crypto';
import * as der from '../../../src/pki/der.js';
import { issueCertificate } from '../mesh/pki.js';
import type { CertificateAuthority } from '../mesh/pki.js';

/** A PEM certificate with its PEM private key. */
export interface PemPair {
  certPem: string;
  keyPem: string;
}

/** Istio's plug-in CA material for one cluster: the four keys of the `cacerts` Secret. */
export interface IstioCaCerts {
  'ca-cert.pem': string;
  'ca-key.pem': string;
  'root-cert.pem': string;
  'cert-chain.pem': string;
}

/** X.520 localityName (RFC 5280 appendix A). */
const LOCALITY_NAME = '2.5.4.7';
const DAY_MS = 24 * 60 * 60 * 1000;

/** A self-signed `pair` as an issuer for {@link issueCertificate}. */
function asRoot(pair: PemPair): CertificateAuthority {
  return { cert: pair.certPem, key: pair.keyPem, certChain: pair.certPem, root: pair.certPem };
}

function pemPair(ca: CertificateAuthority): PemPair {
  return { certPem: ca.cert, keyPem: ca.key };
}

let serving: { ca: PemPair; server: PemPair } | undefined;

/**
 * The API servers' CA and serving certificate (CN kube-apiserver, SANs 127.0.0.1, localhost and
 * kubernetes.default.svc). Generated once per process and reused by every emulated cluster.
 */
export function servingCertificates(): Promise<{ ca: PemPair; server: PemPair }> {
  if (!serving) {
    const ca = issueCertificate({ commonName: 'kubernetes-emulator-ca', subject: [[der.OID.commonName, 'kubernetes-emulator-ca']], isCA: true, notAfter: new Date(Date.now() + 3650 * DAY_MS) });
    const server = issueCertificate({
      commonName: 'kube-apiserver',
      subject: [[der.OID.commonName, 'kube-apiserver']],
      ipAddresses: ['127.0.0.1'],
      dnsNames: ['localhost', 'kubernetes', 'kubernetes.default', 'kubernetes.default.svc', 'kubernetes.default.svc.cluster.local'],
    }, ca);
    serving = { ca: pemPair(ca), server: { certPem: server.cert, keyPem: server.key } };
  }
  return Promise.resolve(serving);
}

/** A client certificate signed by `ca` for API server authentication: CN the user, one O per group. */
export function clientCertificate(ca: PemPair, user: string, groups: readonly string[]): Promise<PemPair> {
  const subject: Array<[string, string]> = [...groups.map((g): [string, string] => [der.OID.organizationName, g]), [der.OID.commonName, user]];
  const cert = issueCertificate({ commonName: user, subject }, asRoot(ca));
  return Promise.resolve({ certPem: cert.cert, keyPem: cert.key });
}

/** A self-signed root CA as Istio's `tools/certs` Makefile makes it (O=Istio, CN=Root CA), with a key of its own. */
export function createRootCa(commonName = 'Root CA'): Promise<PemPair> {
  const root = issueCertificate({
    commonName, subject: [[der.OID.organizationName, 'Istio'], [der.OID.commonName, commonName]], isCA: true, notAfter: new Date(Date.now() + 3650 * DAY_MS),
  });
  return Promise.resolve(pemPair(root));
}

/**
 * The `cacerts` material of one cluster. With a shared `root`, a per-cluster intermediate CA signed by it
 * (O=Istio, CN=Intermediate CA, L=<cluster>); without, a self-signed root of its own that is also the
 * signing CA. Every CA gets a key of its own.
 */
export async function createIstioCaCerts(cluster: string, root: PemPair | undefined): Promise<IstioCaCerts> {
  if (!root) {
    const own = await createRootCa(`Root CA ${cluster}`);
    return { 'ca-cert.pem': own.certPem, 'ca-key.pem': own.keyPem, 'root-cert.pem': own.certPem, 'cert-chain.pem': own.certPem };
  }
  const ca = issueCertificate({
    commonName: 'Intermediate CA',
    subject: [[der.OID.organizationName, 'Istio'], [der.OID.commonName, 'Intermediate CA'], [LOCALITY_NAME, cluster]],
    isCA: true,
    notAfter: new Date(Date.now() + 730 * DAY_MS),
  }, asRoot(root));
  return { 'ca-cert.pem': ca.cert, 'ca-key.pem': ca.key, 'root-cert.pem': root.certPem, 'cert-chain.pem': ca.certChain };
}

/** SHA-256 fingerprint of a PEM certificate's DER, as colon-separated upper-case hex (openssl's format). */
export function certificateFingerprint(certPem: string): string {
  return new X509Certificate(certPem).fingerprint256;
}
