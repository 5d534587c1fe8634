// Measures certificate issuance with the federation PKI: `npx tsx scripts/bench-pki.ts [rounds]`.
// Prints the min, median and worst time per operation; the figures in docs/pki.md come from here. The comparisons of
// RSA 2048 (the keys meshfed generated before) with ECDSA P-256 (the keys it generates now) run interleaved in the same
// rounds, so that the machine's load affects both sides alike: key generation, one signature, one verification.
import { generateKeyPairSync, sign, verify } from 'node:crypto';
import {
  createCertificateRequest, createFederationCA, generateKeyPair, inspectCertificateRequest, issueServerCertificate,
  signClientCertificate, verifyCertificateChain,
} from '../src/pki/index.js';

const rounds = Number(process.argv[2] ?? 10);
const timings: Record<string, number[]> = {};

function time<T>(label: string, run: () => T): T {
  const start = performance.now();
  const result = run();
  (timings[label] ??= []).push(performance.now() - start);
  return result;
}

const hosts = ['myreviews.bookinfo.cluster2.meshfed.internal', 'postgres.db.production.meshfed.internal'];
const data = Buffer.alloc(1200, 7);
for (let i = 0; i < rounds; i++) {
  const ca = time('federation CA (key + self-signature)', () => createFederationCA({ provider: 'cluster2' }));
  time('gateway server certificate (key + signature)', () => issueServerCertificate({ ca, hosts }));
  const { privateKeyPem } = time('consumer key pair', () => generateKeyPair());
  const csrPem = time('CSR (signature with the consumer key)', () => createCertificateRequest({ privateKeyPem, commonName: 'meshfed-egress.cluster1', spiffeId: 'spiffe://meshfed.cluster1/ns/istio-meshfed/sa/meshfed-egress' }));
  time('check a CSR', () => inspectCertificateRequest(csrPem));
  const cert = time('sign a client certificate from a CSR', () => signClientCertificate({ ca, csrPem }));
  time('verify a chain', () => verifyCertificateChain(cert, [ca.certificatePem]));

  const rsa = time('key generation: RSA 2048 (before)', () => generateKeyPairSync('rsa', { modulusLength: 2048, publicExponent: 0x10001 }));
  const ec = time('key generation: ECDSA P-256 (now)', () => generateKeyPairSync('ec', { namedCurve: 'prime256v1' }));
  const rsaSignature = time('one signature: RSA 2048 (before)', () => sign('sha256', data, rsa.privateKey));
  const ecSignature = time('one signature: ECDSA P-256 (now)', () => sign('sha256', data, { key: ec.privateKey, dsaEncoding: 'der' }));
  time('one verification: RSA 2048 (before)', () => verify('sha256', data, rsa.publicKey, rsaSignature));
  time('one verification: ECDSA P-256 (now)', () => verify('sha256', data, { key: ec.publicKey, dsaEncoding: 'der' }, ecSignature));
}

const rows = Object.entries(timings).map(([label, ms]) => {
  const sorted = [...ms].sort((a, b) => a - b);
  const format = (n: number) => (n < 1 ? n.toFixed(3) : n.toFixed(1)).padStart(8);
  return `${label.padEnd(46)} min ${format(sorted[0]!)} ms   median ${format(sorted[Math.floor(sorted.length / 2)]!)} ms   max ${format(sorted.at(-1)!)} ms`;
});
console.log(`node ${process.version}, ${rounds} rounds\n${rows.join('\n')}`);
