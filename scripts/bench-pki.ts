// Measures certificate issuance with the federation PKI: `npx tsx scripts/bench-pki.ts [rounds]`.
// Prints the median and worst time per operation; the figures in docs/pki.md come from here. Two comparisons run
// interleaved in the same rounds, so that the machine's load affects both sides alike: one RSA-2048 signature with
// node-forge's JavaScript RSA (how certificates were signed before) against node:crypto (how they are signed now),
// and two keys generated one after the other against a KeyPool generating them in the background.
import { createPrivateKey, sign } from 'node:crypto';
import forge from 'node-forge';
import {
  createCertificateRequest, createFederationCA, generateKeyPair, inspectCertificateRequest, issueServerCertificate,
  signClientCertificate, verifyCertificateChain,
} from '../src/pki/index.js';
import { KeyPool } from '../src/pki/keys.js';

const rounds = Number(process.argv[2] ?? 10);
const timings: Record<string, number[]> = {};

function time<T>(label: string, run: () => T): T {
  const start = performance.now();
  const result = run();
  (timings[label] ??= []).push(performance.now() - start);
  return result;
}

async function timeAsync<T>(label: string, run: () => Promise<T>): Promise<T> {
  const start = performance.now();
  const result = await run();
  (timings[label] ??= []).push(performance.now() - start);
  return result;
}

const hosts = ['myreviews.bookinfo.cluster2.meshfed.internal', 'postgres.db.production.meshfed.internal'];
const data = Buffer.alloc(1200, 7);
for (let i = 0; i < rounds; i++) {
  const ca = time('federation CA (RSA 2048 key + self-sign)', () => createFederationCA({ provider: 'cluster2' }));
  time('gateway server certificate (key + sign)', () => issueServerCertificate({ ca, hosts }));
  const { privateKeyPem } = time('consumer key pair (RSA 2048)', () => generateKeyPair());
  const csrPem = time('CSR (sign with consumer key)', () => createCertificateRequest({ privateKeyPem, commonName: 'meshfed-egress.cluster1', spiffeId: 'spiffe://meshfed.cluster1/ns/istio-meshfed/sa/meshfed-egress' }));
  time('inspect CSR', () => inspectCertificateRequest(csrPem));
  const cert = time('sign client certificate from CSR', () => signClientCertificate({ ca, csrPem }));
  time('verify chain', () => verifyCertificateChain(cert, [ca.certificatePem]));

  const forgeKey = forge.pki.privateKeyFromPem(privateKeyPem) as forge.pki.rsa.PrivateKey;
  const nodeKey = createPrivateKey(privateKeyPem);
  const binary = data.toString('binary');
  time('one signature: node-forge (before)', () => forgeKey.sign(forge.md.sha256.create().update(binary)));
  time('one signature: node:crypto (now)', () => sign('sha256', data, nodeKey));
  time('2 keys one after another (before)', () => [generateKeyPair(), generateKeyPair()]);
  await timeAsync('2 keys in the background, KeyPool (now)', async () => {
    const pool = await KeyPool.start(2).prepared();
    return [pool.take(2048), pool.take(2048)];
  });
}

const rows = Object.entries(timings).map(([label, ms]) => {
  const sorted = [...ms].sort((a, b) => a - b);
  return `${label.padEnd(44)} min ${sorted[0]!.toFixed(1).padStart(7)} ms   median ${sorted[Math.floor(sorted.length / 2)]!.toFixed(1).padStart(7)} ms   max ${sorted.at(-1)!.toFixed(1).padStart(7)} ms`;
});
console.log(`node ${process.version}, ${rounds} rounds\n${rows.join('\n')}`);
