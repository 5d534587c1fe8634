/**
 * Certificates of the emulated clusters: the API servers' serving certificate (one CA and one certificate per
 * process, shared by every emulated cluster, because generating RSA keys is the slowest part of starting a
 * cluster) and Istio's plug-in CAs (`cacerts`), made fresh for every world so roots really differ.
 */
import { createHash, randomBytes, sign } from 'node:crypto';
import forge from 'node-forge';

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

/** Generates an RSA key with Node's native generator, off the event loop (no prng is passed to forge). */
export function generateRsaKey(bits = 2048): Promise<forge.pki.rsa.KeyPair> {
  return new Promise((resolve, reject) => {
    forge.pki.rsa.generateKeyPair({ bits }, (err, pair) => (err ? reject(err) : resolve(pair)));
  });
}

const keyPool: Array<Promise<forge.pki.rsa.KeyPair>> = [];

/**
 * The `index`-th CA key of this process. Keys are what makes starting a world slow (a 2048-bit key costs a few
 * hundred milliseconds), so worlds reuse them: within one world every CA gets a different index, hence a
 * different key, while a later world in the same process reuses the keys of an earlier one. Certificates are
 * always made fresh, so roots still differ between worlds.
 */
export function caKey(index: number): Promise<forge.pki.rsa.KeyPair> {
  for (let i = keyPool.length; i <= index; i++) keyPool.push(generateRsaKey());
  return keyPool[index] as Promise<forge.pki.rsa.KeyPair>;
}

function serialNumber(): string {
  // A positive serial: the top bit clear.
  const bytes = randomBytes(16);
  bytes[0] = (bytes[0] as number) & 0x7f;
  return bytes.toString('hex');
}

interface CertOptions {
  subject: forge.pki.CertificateField[];
  publicKey: forge.pki.PublicKey;
  signer: { cert?: forge.pki.Certificate; key: forge.pki.rsa.PrivateKey };
  ca: boolean;
  days: number;
  ipAddresses?: string[];
  dnsNames?: string[];
  uris?: string[];
}

function makeCertificate(o: CertOptions): forge.pki.Certificate {
  const cert = forge.pki.createCertificate();
  cert.publicKey = o.publicKey;
  cert.serialNumber = serialNumber();
  const now = Date.now();
  cert.validity.notBefore = new Date(now - 60 * 60 * 1000);
  cert.validity.notAfter = new Date(now + o.days * 24 * 60 * 60 * 1000);
  cert.setSubject(o.subject);
  cert.setIssuer(o.signer.cert ? o.signer.cert.subject.attributes : o.subject);
  const altNames = [
    ...(o.dnsNames ?? []).map((value) => ({ type: 2, value })),
    ...(o.ipAddresses ?? []).map((ip) => ({ type: 7, ip })),
    ...(o.uris ?? []).map((value) => ({ type: 6, value })),
  ];
  const extensions: object[] = [
    { name: 'basicConstraints', cA: o.ca, critical: true },
    o.ca
      ? { name: 'keyUsage', keyCertSign: true, cRLSign: true, digitalSignature: true, critical: true }
      : { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
    { name: 'subjectKeyIdentifier' },
  ];
  if (!o.ca) extensions.push({ name: 'extKeyUsage', serverAuth: true, clientAuth: true });
  if (altNames.length > 0) extensions.push({ name: 'subjectAltName', altNames });
  if (o.signer.cert) {
    extensions.push({ name: 'authorityKeyIdentifier', keyIdentifier: o.signer.cert.generateSubjectKeyIdentifier().getBytes() });
  }
  cert.setExtensions(extensions);
  signWithNode(cert, o.signer.key);
  return cert;
}

const keyPems = new WeakMap<forge.pki.rsa.PrivateKey, string>();

/**
 * What forge's `cert.sign(key, sha256)` does, with the RSA operation done by Node: forge's pure-JavaScript
 * modular arithmetic would otherwise be most of a cluster's start time.
 */
function signWithNode(cert: forge.pki.Certificate, key: forge.pki.rsa.PrivateKey): void {
  let pem = keyPems.get(key);
  if (!pem) {
    pem = forge.pki.privateKeyToPem(key);
    keyPems.set(key, pem);
  }
  const oid = forge.pki.oids.sha256WithRSAEncryption as string;
  const signed = cert as forge.pki.Certificate & { signatureOid: string; siginfo: { algorithmOid: string }; tbsCertificate: forge.asn1.Asn1; md: forge.md.MessageDigest };
  signed.signatureOid = oid;
  signed.siginfo.algorithmOid = oid;
  signed.md = forge.md.sha256.create();
  signed.tbsCertificate = (forge.pki as unknown as { getTBSCertificate(c: forge.pki.Certificate): forge.asn1.Asn1 }).getTBSCertificate(cert);
  const tbs = Buffer.from(forge.asn1.toDer(signed.tbsCertificate).getBytes(), 'binary');
  signed.md.update(tbs.toString('binary'));
  (cert as { signature: string }).signature = sign('sha256', tbs, pem).toString('binary');
}

let servingPromise: Promise<{ ca: PemPair; server: PemPair }> | undefined;

/**
 * The API servers' CA and serving certificate (CN kube-apiserver, SANs 127.0.0.1, localhost and
 * kubernetes.default.svc). Generated once per process and reused by every emulated cluster.
 */
export function servingCertificates(): Promise<{ ca: PemPair; server: PemPair }> {
  servingPromise ??= (async () => {
    const [caKeys, serverKeys] = await Promise.all([generateRsaKey(), generateRsaKey()]);
    const caCert = makeCertificate({
      subject: [{ name: 'commonName', value: 'kubernetes-emulator-ca' }],
      publicKey: caKeys.publicKey,
      signer: { key: caKeys.privateKey },
      ca: true,
      days: 3650,
    });
    const serverCert = makeCertificate({
      subject: [{ name: 'commonName', value: 'kube-apiserver' }],
      publicKey: serverKeys.publicKey,
      signer: { cert: caCert, key: caKeys.privateKey },
      ca: false,
      days: 365,
      ipAddresses: ['127.0.0.1'],
      dnsNames: ['localhost', 'kubernetes', 'kubernetes.default', 'kubernetes.default.svc', 'kubernetes.default.svc.cluster.local'],
    });
    return {
      ca: { certPem: forge.pki.certificateToPem(caCert), keyPem: forge.pki.privateKeyToPem(caKeys.privateKey) },
      server: { certPem: forge.pki.certificateToPem(serverCert), keyPem: forge.pki.privateKeyToPem(serverKeys.privateKey) },
    };
  })();
  return servingPromise;
}

/** A client certificate signed by `ca` for API server authentication: CN the user, one O per group. */
export async function clientCertificate(ca: PemPair, user: string, groups: readonly string[]): Promise<PemPair> {
  const keys = await generateRsaKey();
  const caCert = forge.pki.certificateFromPem(ca.certPem);
  const cert = makeCertificate({
    subject: [...groups.map((value) => ({ name: 'organizationName', value })), { name: 'commonName', value: user }],
    publicKey: keys.publicKey,
    signer: { cert: caCert, key: forge.pki.privateKeyFromPem(ca.keyPem) as forge.pki.rsa.PrivateKey },
    ca: false,
    days: 365,
  });
  return { certPem: forge.pki.certificateToPem(cert), keyPem: forge.pki.privateKeyToPem(keys.privateKey) };
}

/** A self-signed root CA as Istio's `tools/certs` Makefile makes it (O=Istio, CN=Root CA), with key {@link caKey}(keyIndex). */
export async function createRootCa(commonName = 'Root CA', keyIndex = 0): Promise<PemPair> {
  const keys = await caKey(keyIndex);
  const cert = makeCertificate({
    subject: [{ name: 'organizationName', value: 'Istio' }, { name: 'commonName', value: commonName }],
    publicKey: keys.publicKey,
    signer: { key: keys.privateKey },
    ca: true,
    days: 3650,
  });
  return { certPem: forge.pki.certificateToPem(cert), keyPem: forge.pki.privateKeyToPem(keys.privateKey) };
}

/**
 * The `cacerts` material of one cluster. With a shared `root`, a per-cluster intermediate CA signed by it
 * (O=Istio, CN=Intermediate CA, L=<cluster>); without, a self-signed root of its own that is also the
 * signing CA.
 */
export async function createIstioCaCerts(cluster: string, root: PemPair | undefined, keyIndex: number): Promise<IstioCaCerts> {
  if (!root) {
    const own = await createRootCa(`Root CA ${cluster}`, keyIndex);
    return { 'ca-cert.pem': own.certPem, 'ca-key.pem': own.keyPem, 'root-cert.pem': own.certPem, 'cert-chain.pem': own.certPem };
  }
  const keys = await caKey(keyIndex);
  const rootCert = forge.pki.certificateFromPem(root.certPem);
  const cert = makeCertificate({
    subject: [
      { name: 'organizationName', value: 'Istio' },
      { name: 'commonName', value: 'Intermediate CA' },
      { name: 'localityName', value: cluster },
    ],
    publicKey: keys.publicKey,
    signer: { cert: rootCert, key: forge.pki.privateKeyFromPem(root.keyPem) },
    ca: true,
    days: 730,
  });
  const certPem = forge.pki.certificateToPem(cert);
  return {
    'ca-cert.pem': certPem,
    'ca-key.pem': forge.pki.privateKeyToPem(keys.privateKey),
    'root-cert.pem': root.certPem,
    'cert-chain.pem': certPem + root.certPem,
  };
}

/** SHA-256 fingerprint of a PEM certificate's DER, as colon-separated upper-case hex (openssl's format). */
export function certificateFingerprint(certPem: string): string {
  const der = forge.asn1.toDer(forge.pki.certificateToAsn1(forge.pki.certificateFromPem(certPem))).getBytes();
  const hex = createHash('sha256').update(Buffer.from(der, 'binary')).digest('hex').toUpperCase();
  return hex.match(/../g)?.join(':') ?? hex;
}
