// The certificates meshfed encodes itself (src/pki/der.ts) and signs with node:crypto, checked by two independent
// implementations: Node's X509Certificate (OpenSSL inside Node) and the openssl binary with strict X.509 checks
// (chain, subjectAltName, key usage, validity, ECDSA P-256 keys and signatures; an RSA CA of an existing federation).
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  createFederationCA, inspectCertificate, issueClientCertificate, issueServerCertificate,
} from '../../src/pki/index.js';
import * as der from '../../src/pki/der.js';
import { consumerSpiffeId, DAY, exportHosts, getWorld, rsaFederationCA } from './helpers.js';

const world = getWorld();
const haveOpenssl = spawnSync('openssl', ['version']).status === 0;
const osTest = haveOpenssl ? test.serial : test.serial.skip;
const dir = mkdtempSync(join(tmpdir(), 'meshfed-pki-native-'));
test.after.always(() => rmSync(dir, { recursive: true, force: true }));
let files = 0;
function file(content: string): string {
  const path = join(dir, `f${files++}.pem`);
  writeFileSync(path, content, { mode: 0o600 });
  return path;
}

test('X509Certificate: the CA is self-signed, the leaves are issued by it and verify with its key', (t) => {
  const ca = new X509Certificate(world.ca.certificatePem);
  t.true(ca.ca);
  t.true(ca.checkIssued(ca));
  t.true(ca.verify(ca.publicKey));
  for (const pem of [world.server.certificatePem, world.client.certificatePem]) {
    const leaf = new X509Certificate(pem);
    t.false(leaf.ca);
    t.true(leaf.checkIssued(ca));
    t.true(leaf.verify(ca.publicKey));
    t.false(leaf.verify(new X509Certificate(world.otherCA.certificatePem).publicKey));
    t.is(leaf.issuer, ca.subject);
  }
});

test('X509Certificate: subjectAltNames, purposes and validity are the ones asked for', (t) => {
  const server = new X509Certificate(world.server.certificatePem);
  t.is(server.subjectAltName, exportHosts.map((host) => `DNS:${host}`).join(', '));
  for (const host of exportHosts) t.is(server.checkHost(host), host);
  t.is(server.checkHost('ratings.bookinfo.cluster2.meshfed.internal'), undefined);
  // X509Certificate#keyUsage lists the extended key usages.
  t.deepEqual(server.keyUsage, ['1.3.6.1.5.5.7.3.1']);

  const client = new X509Certificate(world.client.certificatePem);
  t.is(client.subjectAltName, `URI:${consumerSpiffeId}`);
  t.deepEqual(client.keyUsage, ['1.3.6.1.5.5.7.3.2']);

  const now = new Date('2031-06-01T00:00:00Z');
  const ca = createFederationCA({ provider: 'cluster2', now });
  const leaf = new X509Certificate(issueServerCertificate({ ca, hosts: exportHosts, now, validityDays: 30 }).certificatePem);
  t.is(new Date(leaf.validFrom).getTime(), Math.floor((now.getTime() - 5 * 60_000) / 1000) * 1000);
  t.is(new Date(leaf.validTo).getTime(), now.getTime() + 30 * DAY);
});

test('dates after 2049 are written as GeneralizedTime and read back', (t) => {
  const now = new Date('2048-01-01T00:00:00Z');
  const ca = createFederationCA({ provider: 'cluster2', now });
  const info = inspectCertificate(ca.certificatePem, now);
  t.is(info.notAfter.toISOString(), '2057-12-29T00:00:00.000Z');
  t.is(new Date(new X509Certificate(ca.certificatePem).validTo).getTime(), info.notAfter.getTime());
  t.is(der.decode(der.time(new Date('2050-01-01T00:00:00Z'))).tag, der.TAG.generalizedTime);
  t.is(der.decode(der.time(new Date('2049-12-31T23:59:59Z'))).tag, der.TAG.utcTime);
});

osTest('openssl verify -x509_strict accepts the chain and each purpose, and checks validity and host', (t) => {
  const ca = file(world.ca.certificatePem);
  const verify = (pem: string, ...args: string[]) => spawnSync('openssl', ['verify', '-x509_strict', '-CAfile', ca, ...args, file(pem)], { encoding: 'utf8', timeout: 10_000 });
  t.is(verify(world.ca.certificatePem).status, 0);
  t.is(verify(world.server.certificatePem, '-purpose', 'sslserver', '-verify_hostname', exportHosts[1]!).status, 0);
  t.not(verify(world.server.certificatePem, '-purpose', 'sslserver', '-verify_hostname', 'other.meshfed.internal').status, 0);
  t.is(verify(world.client.certificatePem, '-purpose', 'sslclient').status, 0);
  // Before notBefore (five minutes of skew allowance earlier than issuance) and after notAfter.
  const issued = inspectCertificate(world.client.certificatePem);
  const before = verify(world.client.certificatePem, '-purpose', 'sslclient', '-attime', String(Math.floor(issued.notBefore.getTime() / 1000) - 60));
  t.regex(`${before.stdout}${before.stderr}`, /not yet valid/);
  const after = verify(world.client.certificatePem, '-purpose', 'sslclient', '-attime', String(Math.floor(issued.notAfter.getTime() / 1000) + 60));
  t.regex(`${after.stdout}${after.stderr}`, /expired/);
});

osTest('openssl reads the key usage and key identifiers meshfed writes', (t) => {
  const text = (pem: string) => spawnSync('openssl', ['x509', '-in', file(pem), '-noout', '-text'], { encoding: 'utf8', timeout: 10_000 }).stdout;
  const caText = text(world.ca.certificatePem);
  t.regex(caText, /X509v3 Key Usage: critical\n\s*Certificate Sign, CRL Sign\n/);
  t.regex(caText, /X509v3 Basic Constraints: critical\n\s*CA:TRUE, pathlen:0\n/);
  const caKeyId = /X509v3 Subject Key Identifier: *\n\s*([0-9A-F:]+)/.exec(caText)?.[1];
  t.truthy(caKeyId);
  for (const pem of [world.server.certificatePem, world.client.certificatePem]) {
    const leafText = text(pem);
    t.regex(leafText, /X509v3 Key Usage: critical\n\s*Digital Signature\n/);
    t.regex(leafText, /X509v3 Basic Constraints: critical\n\s*CA:FALSE\n/);
    t.true(leafText.includes(caKeyId!), 'the authority key identifier is the CA\'s subject key identifier');
  }
});

osTest('openssl x509 -text: ECDSA P-256 keys (id-ecPublicKey, prime256v1) and ecdsa-with-SHA256 signatures', (t) => {
  for (const pem of [world.ca.certificatePem, world.server.certificatePem, world.client.certificatePem]) {
    const text = spawnSync('openssl', ['x509', '-in', file(pem), '-noout', '-text'], { encoding: 'utf8', timeout: 10_000 }).stdout;
    t.regex(text, /Public Key Algorithm: id-ecPublicKey\n\s*Public-Key: \(256 bit\)/);
    t.regex(text, /ASN1 OID: prime256v1\n\s*NIST CURVE: P-256/);
    t.is(text.match(/Signature Algorithm: ecdsa-with-SHA256/g)?.length, 2, 'in the certificate and over it');
    t.notRegex(text, /rsaEncryption|sha256WithRSAEncryption/);
  }
  const key = spawnSync('openssl', ['pkey', '-in', file(world.server.privateKeyPem), '-noout', '-text'], { encoding: 'utf8', timeout: 10_000 }).stdout;
  t.regex(key, /ASN1 OID: prime256v1/);
});

osTest('openssl verify -x509_strict accepts ECDSA leaves signed by an RSA federation CA of an existing federation', (t) => {
  const rsaCA = rsaFederationCA('cluster2');
  const server = issueServerCertificate({ ca: rsaCA, hosts: exportHosts });
  const client = issueClientCertificate({ ca: rsaCA, commonName: 'meshfed-egress.cluster1', spiffeId: consumerSpiffeId });
  const ca = file(rsaCA.certificatePem);
  const verify = (pem: string, purpose: string) => spawnSync('openssl', ['verify', '-x509_strict', '-CAfile', ca, '-purpose', purpose, file(pem)], { encoding: 'utf8', timeout: 10_000 });
  t.is(verify(server.certificatePem, 'sslserver').status, 0);
  t.is(verify(client.certificatePem, 'sslclient').status, 0);
  const text = spawnSync('openssl', ['x509', '-in', file(server.certificatePem), '-noout', '-text'], { encoding: 'utf8', timeout: 10_000 }).stdout;
  t.regex(text, /Signature Algorithm: sha256WithRSAEncryption/);
  t.regex(text, /Public Key Algorithm: id-ecPublicKey/);
  // Both CAs in one trust bundle (a CA rotation): each leaf finds its own.
  const both = file(rsaCA.certificatePem + world.ca.certificatePem);
  for (const [pem, purpose] of [[server.certificatePem, 'sslserver'], [world.client.certificatePem, 'sslclient']] as const) {
    t.is(spawnSync('openssl', ['verify', '-x509_strict', '-CAfile', both, '-purpose', purpose, file(pem)], { timeout: 10_000 }).status, 0);
  }
});

test('the signature algorithm of what an ECDSA key signs is ecdsa-with-SHA256 with absent parameters (RFC 5758), DER signature', (t) => {
  for (const pem of [world.ca.certificatePem, world.server.certificatePem]) {
    const root = der.decode(der.fromPem(pem, 'CERTIFICATE')!);
    const outer = der.child(root, 1, der.TAG.sequence);
    const inner = der.child(der.child(root, 0, der.TAG.sequence), 2, der.TAG.sequence);
    for (const algorithm of [outer, inner]) {
      t.is(algorithm.children.length, 1);
      t.is(der.readOid(der.child(algorithm, 0)), '1.2.840.10045.4.3.2');
    }
    // Ecdsa-Sig-Value ::= SEQUENCE { r INTEGER, s INTEGER }
    const signature = der.decode(der.readBitStringBytes(der.child(root, 2)));
    t.is(signature.tag, der.TAG.sequence);
    t.deepEqual(signature.children.map((c) => c.tag), [der.TAG.integer, der.TAG.integer]);
  }
});
