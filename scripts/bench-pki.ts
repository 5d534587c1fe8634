// Measures certificate issuance with the federation PKI: `npx tsx scripts/bench-pki.ts [rounds]`.
// Prints the median and worst time per operation; the figures in docs/pki.md come from here.
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
for (let i = 0; i < rounds; i++) {
  const ca = time('federation CA (RSA 2048 key + self-sign)', () => createFederationCA({ provider: 'cluster2' }));
  time('gateway server certificate (key + sign)', () => issueServerCertificate({ ca, hosts }));
  const { privateKeyPem } = time('consumer key pair (RSA 2048)', () => generateKeyPair());
  const csrPem = time('CSR (sign with consumer key)', () => createCertificateRequest({ privateKeyPem, commonName: 'meshfed-egress.cluster1', spiffeId: 'spiffe://meshfed.cluster1/ns/istio-meshfed/sa/meshfed-egress' }));
  time('inspect CSR', () => inspectCertificateRequest(csrPem));
  const cert = time('sign client certificate from CSR', () => signClientCertificate({ ca, csrPem }));
  time('verify chain', () => verifyCertificateChain(cert, [ca.certificatePem]));
}

const rows = Object.entries(timings).map(([label, ms]) => {
  const sorted = [...ms].sort((a, b) => a - b);
  return `${label.padEnd(44)} median ${sorted[Math.floor(sorted.length / 2)]!.toFixed(1).padStart(7)} ms   max ${sorted.at(-1)!.toFixed(1).padStart(7)} ms`;
});
console.log(`node ${process.version}, ${rounds} rounds\n${rows.join('\n')}`);
