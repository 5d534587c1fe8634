// The certificates meshfed encodes itself (src/pki/der.ts) and signs with node:crypto, checked by two independent
// implementations: Node's X509Certificate (OpenSSL inside Node) and the openssl binary with strict X.509 checks
// (chain, subjectAltName, key usage, validity). Also the background key pool the commands use.
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  createFederationCA, generateKeyPair, inspectCertificate, issueServerCertificate, KeyPool, keyMatchesCertificate, PkiError,
  signClientCertificate, createCertificateRequest,
} from '../../src/pki/index.js';
import * as der from '../../src/pki/der.js';
import { consumerSpiffeId, DAY, exportHosts, getWorld } from './helpers.js';

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
    t.regex(leafText, /X509v3 Key Usage: critical\n\s*Digital Signature, Key Encipherment\n/);
    t.regex(leafText, /X509v3 Basic Constraints: critical\n\s*CA:FALSE\n/);
    t.true(leafText.includes(caKeyId!), 'the authority key identifier is the CA\'s subject key identifier');
    t.regex(leafText, /Signature Algorithm: sha256WithRSAEncryption/);
  }
});

test('a key pool hands out its prepared keys, then generates on demand', async (t) => {
  const pool = await KeyPool.start(2).prepared();
  const a = pool.take(2048);
  const b = pool.take(2048);
  const c = pool.take(2048);
  t.is(a.asymmetricKeyDetails?.modulusLength, 2048);
  t.is(c.asymmetricKeyDetails?.modulusLength, 2048);
  t.is(new Set([a, b, c].map((key) => key.export({ type: 'pkcs1', format: 'der' }).toString('hex'))).size, 3);
  t.is(pool.take(3072).asymmetricKeyDetails?.modulusLength, 3072);
  t.throws(() => KeyPool.start(1, 1024), { instanceOf: PkiError, message: /1024/ });
});

test('a planner run through a key pool gets its keys whether or not they were ready, and a second run gets fresh ones', async (t) => {
  const pool = KeyPool.start(2);
  // Planned at once: the keys are still being generated, so the planner runs again once they are.
  let runs = 0;
  const ca = await pool.plan((keys) => {
    runs += 1;
    return createFederationCA({ provider: 'cluster2', keys });
  });
  t.true(runs >= 1 && runs <= 2);
  const server = await pool.plan((keys) => issueServerCertificate({ ca, hosts: exportHosts, keys }));
  t.true(keyMatchesCertificate(server.privateKeyPem, server.certificatePem));
  t.not(server.privateKeyPem, ca.privateKeyPem);
  const { privateKeyPem } = generateKeyPair({ keys: pool });
  t.not(privateKeyPem, server.privateKeyPem);
  const csrPem = createCertificateRequest({ privateKeyPem, commonName: 'meshfed-egress.cluster1', spiffeId: consumerSpiffeId });
  t.deepEqual(inspectCertificate(signClientCertificate({ ca, csrPem })).uris, [consumerSpiffeId]);
  // Errors of the planner itself are not mistaken for a missing key.
  await t.throwsAsync(pool.plan(() => createFederationCA({ provider: ' ' })), { instanceOf: PkiError });
});

test('a pool made for when keys are needed begins when a planner asks for one, and the planner runs again with it', async (t) => {
  const pool = KeyPool.whenNeeded(2);
  t.true((await pool.plan(() => inspectCertificate(world.ca.certificatePem))).isCA);
  let runs = 0;
  const ca = await pool.plan((keys) => {
    runs += 1;
    return createFederationCA({ provider: 'cluster2', keys });
  });
  // The first run met no ready key: the pool began generating, and the planner ran again with one of its keys.
  t.is(runs, 2);
  t.true(keyMatchesCertificate(ca.privateKeyPem, ca.certificatePem));
  const server = await pool.plan((keys) => issueServerCertificate({ ca, hosts: exportHosts, keys }));
  t.true(keyMatchesCertificate(server.privateKeyPem, server.certificatePem));
  t.not(server.privateKeyPem, ca.privateKeyPem);
});

test('a planner that needs no key never waits for the pool', async (t) => {
  const pool = KeyPool.start(1);
  let settled = false;
  void pool.prepared().then(() => { settled = true; });
  const info = await pool.plan(() => inspectCertificate(world.ca.certificatePem));
  t.true(info.isCA);
  // The plan resolved through promise jobs alone; a generated key arrives from the thread pool through the event loop,
  // which runs only after them: the plan did not wait for it.
  t.false(settled);
  await pool.prepared();
  t.true(settled);
});
