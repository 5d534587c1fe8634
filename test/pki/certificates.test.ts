import test from 'ava';
import { createPrivateKey, createPublicKey, generateKeyPairSync, X509Certificate } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import forge from 'node-forge';
import {
  CLOCK_SKEW_MS, createCertificateRequest, createFederationCA, generateKeyPair, inspectCertificate, inspectCertificateRequest,
  issueClientCertificate, issueServerCertificate, keyMatchesCertificate, PkiError, signClientCertificate, signDetached,
  splitPemBundle, verifyCertificateChain, verifyDetached,
} from '../../src/pki/index.js';
import { issueCertificate } from '../support/mesh/pki.js';
import { consumerSpiffeId, DAY, exportHosts, federationCAWithKey, getWorld, rsaFederationCA, signatureAlgorithm } from './helpers.js';

const world = getWorld();
const now = new Date('2026-03-01T12:00:00Z');
const freshCA = createFederationCA({ provider: 'production', now });

test('a federation CA is a self-signed CA limited to issuing end-entity certificates', (t) => {
  const info = inspectCertificate(freshCA.certificatePem, now);
  t.is(info.subject, 'CN=meshfed federation CA production,O=kubectl-meshfed');
  t.is(info.issuer, info.subject);
  t.true(info.isCA);
  t.is(info.pathLength, 0);
  t.deepEqual(info.keyUsage, ['keyCertSign', 'cRLSign']);
  t.deepEqual(info.extKeyUsage, []);
  t.is(info.notBefore.getTime(), now.getTime() - CLOCK_SKEW_MS);
  t.is(info.notAfter.getTime(), now.getTime() + 3650 * DAY);
  t.is(info.daysLeft, 3650);
  t.true(keyMatchesCertificate(freshCA.privateKeyPem, freshCA.certificatePem));
  t.regex(freshCA.privateKeyPem, /^-----BEGIN PRIVATE KEY-----/);
  t.deepEqual(verifyCertificateChain(freshCA.certificatePem, [freshCA.certificatePem], now), { ok: true });
});

test('long provider names are shortened to a 64-character common name that stays distinct', (t) => {
  const long = 'arn:aws:eks:eu-west-1:123456789012:cluster/production-platform-';
  const a = inspectCertificate(createFederationCA({ provider: `${long}a` }).certificatePem).commonName!;
  const b = inspectCertificate(createFederationCA({ provider: `${long}b` }).certificatePem).commonName!;
  t.true(a.length <= 64 && b.length <= 64);
  t.not(a, b);
  t.true(a.startsWith('meshfed federation CA arn:aws:eks'));
});

test('validity options are checked', (t) => {
  t.is(inspectCertificate(createFederationCA({ provider: 'p', now, validityDays: 30 }).certificatePem, now).daysLeft, 30);
  for (const validityDays of [0, -1, Number.NaN, Number.POSITIVE_INFINITY]) {
    t.throws(() => createFederationCA({ provider: 'p', validityDays }), { instanceOf: PkiError, message: /positive number of days/ });
  }
  t.throws(() => createFederationCA({ provider: ' ' }), { instanceOf: PkiError });
  t.throws(() => createFederationCA({ provider: 'p', now: new Date('not a date') }), { instanceOf: PkiError });
});

test('the gateway server certificate names every export host, for server authentication only', (t) => {
  const server = issueServerCertificate({ ca: freshCA, hosts: ['B.example.internal', 'a.example.internal', 'b.example.internal'], now });
  const info = inspectCertificate(server.certificatePem, now);
  t.deepEqual(info.dnsNames, ['b.example.internal', 'a.example.internal']);
  t.is(info.commonName, 'b.example.internal');
  t.is(info.issuer, 'CN=meshfed federation CA production,O=kubectl-meshfed');
  t.false(info.isCA);
  // An EC key signs only (RFC 5480 3: no keyEncipherment).
  t.deepEqual(info.keyUsage, ['digitalSignature']);
  t.deepEqual(info.extKeyUsage, ['serverAuth']);
  t.deepEqual(info.uris, []);
  t.is(info.daysLeft, 365);
  t.true(keyMatchesCertificate(server.privateKeyPem, server.certificatePem));
  t.false(keyMatchesCertificate(freshCA.privateKeyPem, server.certificatePem));
  t.deepEqual(verifyCertificateChain(server.certificatePem, [freshCA.certificatePem], now), { ok: true });
});

test('server hosts must be DNS names, without wildcards, and at least one', (t) => {
  for (const host of ['*.bookinfo.meshfed.internal', 'under_score.internal', 'a..b', '', `${'a'.repeat(64)}.internal`, '10.0.0.1:443']) {
    t.throws(() => issueServerCertificate({ ca: freshCA, hosts: [host], now }), { instanceOf: PkiError, message: /not a DNS name/ }, host);
  }
  t.throws(() => issueServerCertificate({ ca: freshCA, hosts: [], now }), { instanceOf: PkiError, message: /at least one host/ });
  const longHost = `${'a'.repeat(60)}.${'b'.repeat(60)}.internal`;
  t.is(inspectCertificate(issueServerCertificate({ ca: freshCA, hosts: [longHost], now }).certificatePem).commonName, 'meshfed federation gateway');
  t.is(inspectCertificate(issueServerCertificate({ ca: freshCA, hosts: [longHost], commonName: 'gw', now }).certificatePem).commonName, 'gw');
});

test('a certificate never outlives the CA that signed it', (t) => {
  const shortCA = createFederationCA({ provider: 'short', now, validityDays: 10 });
  const caEnd = inspectCertificate(shortCA.certificatePem).notAfter;
  t.deepEqual(inspectCertificate(issueServerCertificate({ ca: shortCA, hosts: exportHosts, now }).certificatePem).notAfter, caEnd);
  t.deepEqual(inspectCertificate(issueClientCertificate({ ca: shortCA, commonName: 'c', spiffeId: consumerSpiffeId, now }).certificatePem).notAfter, caEnd);
});

test('an unusable CA is refused with a reason', (t) => {
  const later = new Date(now.getTime() + 3651 * DAY);
  t.throws(() => issueServerCertificate({ ca: freshCA, hosts: exportHosts, now: later }), { instanceOf: PkiError, message: /not valid at .*renew it/ });
  t.throws(() => issueServerCertificate({ ca: { certificatePem: freshCA.certificatePem, privateKeyPem: world.ca.privateKeyPem }, hosts: exportHosts, now }),
    { instanceOf: PkiError, message: /does not belong/ });
  t.throws(() => issueServerCertificate({ ca: world.server, hosts: exportHosts }), { instanceOf: PkiError, message: /not a CA/ });
  t.throws(() => issueServerCertificate({ ca: { certificatePem: 'junk', privateKeyPem: 'junk' }, hosts: exportHosts }), { instanceOf: PkiError, message: /no PEM certificate/ });
});

test('a client certificate is signed from the consumer CSR and carries its SPIFFE identity', (t) => {
  const { privateKeyPem, publicKeyPem } = generateKeyPair();
  t.regex(publicKeyPem, /^-----BEGIN PUBLIC KEY-----/);
  const csrPem = createCertificateRequest({ privateKeyPem, commonName: 'meshfed-egress.operations', spiffeId: consumerSpiffeId });
  const request = inspectCertificateRequest(csrPem);
  t.is(request.commonName, 'meshfed-egress.operations');
  t.is(request.spiffeId, consumerSpiffeId);
  const certificatePem = signClientCertificate({ ca: freshCA, csrPem, expectSpiffeId: consumerSpiffeId, now, validityDays: 90 });
  const info = inspectCertificate(certificatePem, now);
  t.is(info.subject, 'CN=meshfed-egress.operations,O=kubectl-meshfed');
  t.deepEqual(info.uris, [consumerSpiffeId]);
  t.deepEqual(info.dnsNames, []);
  t.deepEqual(info.extKeyUsage, ['clientAuth']);
  t.deepEqual(info.keyUsage, ['digitalSignature']);
  t.false(info.isCA);
  t.is(info.daysLeft, 90);
  t.is(info.publicKeyFingerprint, request.publicKeyFingerprint);
  t.true(keyMatchesCertificate(privateKeyPem, certificatePem));
  t.not(inspectCertificate(signClientCertificate({ ca: freshCA, csrPem, now })).serialNumber, info.serialNumber);
});

test('a CSR for another identity than the admitted consumer is refused', (t) => {
  const { privateKeyPem } = generateKeyPair();
  const csrPem = createCertificateRequest({ privateKeyPem, commonName: 'intruder', spiffeId: 'spiffe://meshfed.staging/ns/istio-meshfed/sa/meshfed-egress' });
  t.throws(() => signClientCertificate({ ca: freshCA, csrPem, expectSpiffeId: consumerSpiffeId, now }),
    { instanceOf: PkiError, message: /is for spiffe:\/\/meshfed\.staging.*but spiffe:\/\/meshfed\.cluster1.* was expected/ });
});

test('SPIFFE IDs and common names are checked when the CSR is made', (t) => {
  const { privateKeyPem } = generateKeyPair();
  for (const spiffeId of ['https://meshfed.cluster1/ns/x', 'spiffe://meshfed.cluster1', 'spiffe://Meshfed/ns/x', 'spiffe://m/ns/../x', 'spiffe://m/ns//x', 'spiffe://m:8080/ns/x']) {
    t.throws(() => createCertificateRequest({ privateKeyPem, commonName: 'c', spiffeId }), { instanceOf: PkiError, message: /not a valid SPIFFE ID/ }, spiffeId);
  }
  t.throws(() => createCertificateRequest({ privateKeyPem, commonName: 'c'.repeat(65), spiffeId: consumerSpiffeId }), { instanceOf: PkiError, message: /1 to 64/ });
  t.throws(() => createCertificateRequest({ privateKeyPem: 'not a key', commonName: 'c', spiffeId: consumerSpiffeId }), { instanceOf: PkiError, message: /not a readable/ });
});

const rsaKeyPem = (bits: number) => generateKeyPairSync('rsa', { modulusLength: bits }).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
/** An RSA key, PKCS#8 PEM, as earlier versions of meshfed generated for consumers (node-forge reads RSA keys only). */
const rsaConsumerKey = rsaKeyPem(2048);

/** A CSR made by node-forge (an RSA one), an implementation other than ours. */
function forgeCsr(altNames: { type: number; value: string }[], commonName = 'c', keyPem = rsaConsumerKey): string {
  const key = forge.pki.privateKeyFromPem(keyPem) as forge.pki.rsa.PrivateKey;
  const csr = forge.pki.createCertificationRequest();
  csr.publicKey = forge.pki.rsa.setPublicKey(key.n, key.e);
  csr.setSubject(commonName ? [{ name: 'commonName', value: commonName }] : []);
  if (altNames.length) csr.setAttributes([{ name: 'extensionRequest', extensions: [{ name: 'subjectAltName', altNames }] }]);
  csr.sign(key, forge.md.sha256.create());
  return forge.pki.certificationRequestToPem(csr);
}

test('inspectCertificateRequest refuses requests that do not name exactly one SPIFFE identity', (t) => {
  t.throws(() => inspectCertificateRequest(forgeCsr([])), { instanceOf: PkiError, message: /exactly one SPIFFE URI.*has 0/ });
  t.throws(() => inspectCertificateRequest(forgeCsr([{ type: 6, value: consumerSpiffeId }, { type: 6, value: 'spiffe://x/ns/y' }])), { instanceOf: PkiError, message: /has 2/ });
  t.throws(() => inspectCertificateRequest(forgeCsr([{ type: 6, value: consumerSpiffeId }, { type: 2, value: 'evil.example' }])), { instanceOf: PkiError, message: /DNS, IP/ });
  t.throws(() => inspectCertificateRequest(forgeCsr([{ type: 6, value: 'https://example.com/' }])), { instanceOf: PkiError, message: /not a valid SPIFFE ID/ });
  t.throws(() => inspectCertificateRequest(forgeCsr([{ type: 6, value: consumerSpiffeId }], '')), { instanceOf: PkiError, message: /no subject common name/ });
  t.throws(() => inspectCertificateRequest(forgeCsr([{ type: 6, value: consumerSpiffeId }], 'x'.repeat(65))), { instanceOf: PkiError, message: /1 to 64/ });
  t.throws(() => inspectCertificateRequest('garbage'), { instanceOf: PkiError, message: /not a PEM/ });
  t.throws(() => inspectCertificateRequest('-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n'), { instanceOf: PkiError, message: /cannot be parsed/ });
  t.is(inspectCertificateRequest(forgeCsr([{ type: 6, value: consumerSpiffeId }])).spiffeId, consumerSpiffeId);
});

const ECDSA_WITH_SHA256 = { oid: '1.2.840.10045.4.3.2', parameters: false };
const SHA256_WITH_RSA = { oid: '1.2.840.113549.1.1.11', parameters: true };

/** Type and curve (or size) of a PEM private key. */
function keyKind(privateKeyPem: string): string {
  const key = createPrivateKey(privateKeyPem);
  return `${key.asymmetricKeyType} ${key.asymmetricKeyDetails?.namedCurve ?? key.asymmetricKeyDetails?.modulusLength}`;
}

test('every key meshfed generates is ECDSA P-256 (PKCS#8), and it signs with ecdsa-with-SHA256 without parameters', (t) => {
  const client = issueClientCertificate({ ca: freshCA, commonName: 'meshfed-egress.cluster1', spiffeId: consumerSpiffeId, now });
  const server = issueServerCertificate({ ca: freshCA, hosts: exportHosts, now });
  const pair = generateKeyPair();
  for (const { certificatePem, privateKeyPem } of [freshCA, server, client]) {
    t.is(keyKind(privateKeyPem), 'ec prime256v1');
    t.regex(privateKeyPem, /^-----BEGIN PRIVATE KEY-----\n/);
    t.deepEqual(signatureAlgorithm(certificatePem), ECDSA_WITH_SHA256);
    // The certificate carries the key's SubjectPublicKeyInfo as node:crypto exports it.
    t.deepEqual(new X509Certificate(certificatePem).publicKey.export({ type: 'spki', format: 'der' }), createPublicKey(privateKeyPem).export({ type: 'spki', format: 'der' }));
  }
  t.is(keyKind(pair.privateKeyPem), 'ec prime256v1');
  t.deepEqual(createPublicKey(pair.publicKeyPem).export({ type: 'spki', format: 'der' }), createPublicKey(pair.privateKeyPem).export({ type: 'spki', format: 'der' }));
  t.deepEqual(signatureAlgorithm(createCertificateRequest({ privateKeyPem: pair.privateKeyPem, commonName: 'c', spiffeId: consumerSpiffeId })), ECDSA_WITH_SHA256);
  t.is(new Set([freshCA, server, client, pair].map((k) => k.privateKeyPem)).size, 4, 'every key is new');
});

test('an RSA federation CA of an existing federation still signs, with sha256WithRSAEncryption, certificates for ECDSA keys', (t) => {
  const rsaCA = rsaFederationCA('legacy', now);
  const server = issueServerCertificate({ ca: rsaCA, hosts: exportHosts, now });
  t.deepEqual(signatureAlgorithm(server.certificatePem), SHA256_WITH_RSA);
  t.is(keyKind(server.privateKeyPem), 'ec prime256v1');
  t.deepEqual(inspectCertificate(server.certificatePem, now).keyUsage, ['digitalSignature']);
  t.deepEqual(verifyCertificateChain(server.certificatePem, [rsaCA.certificatePem], now), { ok: true });
  const client = issueClientCertificate({ ca: rsaCA, commonName: 'meshfed-egress.cluster1', spiffeId: consumerSpiffeId, now });
  t.deepEqual(signatureAlgorithm(client.certificatePem), SHA256_WITH_RSA);
  t.deepEqual(verifyCertificateChain(client.certificatePem, [rsaCA.certificatePem + freshCA.certificatePem], now), { ok: true });
  // Exchange files signed by that CA's key verify with its certificate; a signature by another key does not.
  const text = 'kind: ExportBundle\n';
  t.true(verifyDetached(rsaCA.certificatePem, text, signDetached(rsaCA.privateKeyPem, text)));
  t.false(verifyDetached(rsaCA.certificatePem, text, signDetached(freshCA.privateKeyPem, text)));
  t.false(verifyDetached(freshCA.certificatePem, text, signDetached(rsaCA.privateKeyPem, text)));
});

test('an RSA CSR (an earlier consumer\'s key) is signed by an ECDSA CA with the key usage of an RSA key', (t) => {
  const csrPem = forgeCsr([{ type: 6, value: consumerSpiffeId }], 'meshfed-egress.cluster1');
  const certificatePem = signClientCertificate({ ca: freshCA, csrPem, expectSpiffeId: consumerSpiffeId, now });
  t.deepEqual(signatureAlgorithm(certificatePem), ECDSA_WITH_SHA256);
  t.deepEqual(inspectCertificate(certificatePem, now).keyUsage, ['digitalSignature', 'keyEncipherment']);
  t.true(keyMatchesCertificate(rsaConsumerKey, certificatePem));
  t.deepEqual(verifyCertificateChain(certificatePem, [freshCA.certificatePem], now), { ok: true });
});

test('keys meshfed does not use are refused, naming the object and what to do', (t) => {
  const p384 = generateKeyPairSync('ec', { namedCurve: 'secp384r1' }).privateKey;
  const p384Pem = p384.export({ type: 'pkcs8', format: 'pem' }).toString();
  const rsa1024 = rsaKeyPem(1024);
  const ed25519Pem = generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();

  t.throws(() => issueServerCertificate({ ca: federationCAWithKey('odd', p384, now), hosts: exportHosts, now }),
    { instanceOf: PkiError, message: /^the federation CA CN=meshfed federation CA odd,O=kubectl-meshfed has an EC key on curve secp384r1; meshfed accepts only ECDSA P-256 \(prime256v1\) keys or RSA keys of at least 2048 bits: rotate to a new federation CA \(kubectl meshfed rotate --ca\)/ });
  t.throws(() => signClientCertificate({ ca: federationCAWithKey('small', createPrivateKey(rsa1024), now), csrPem: forgeCsr([{ type: 6, value: consumerSpiffeId }]), now }),
    { instanceOf: PkiError, message: /federation CA .* has a 1024-bit RSA key; .*rotate --ca/ });
  t.throws(() => inspectCertificateRequest(forgeCsr([{ type: 6, value: consumerSpiffeId }], 'c', rsa1024)),
    { instanceOf: PkiError, message: /^the certificate signing request has a 1024-bit RSA key; .*make the request again with kubectl meshfed import --request-out/ });
  for (const [pem, kind] of [[p384Pem, 'an EC key on curve secp384r1'], [rsa1024, 'a 1024-bit RSA key'], [ed25519Pem, 'a key of type ed25519']] as const) {
    t.throws(() => createCertificateRequest({ privateKeyPem: pem, commonName: 'c', spiffeId: consumerSpiffeId }), { instanceOf: PkiError, message: new RegExp(`^the consumer private key has ${kind}; meshfed accepts only`) });
    t.throws(() => signDetached(pem, 'text'), { instanceOf: PkiError, message: new RegExp(`^the signing key has ${kind};`) });
  }
  const p384Public = createPublicKey(p384).export({ type: 'spki', format: 'pem' }).toString();
  t.throws(() => verifyDetached(p384Public, 'text', 'AAAA'), { instanceOf: PkiError, message: /^the verification key has an EC key on curve secp384r1; .*ask for a new file/ });
  t.false(/PRIVATE KEY|BEGIN/.test(String(t.throws(() => signDetached(p384Pem, 'text'))?.message)), 'no key material in the message');
});

test('verifyCertificateChain accepts the right CA and explains every refusal', (t) => {
  t.deepEqual(verifyCertificateChain(world.client.certificatePem, [world.ca.certificatePem]), { ok: true });
  // A trust bundle with several CAs, as a ca.crt Secret key may hold.
  t.deepEqual(verifyCertificateChain(world.server.certificatePem, [freshCA.certificatePem + world.ca.certificatePem]), { ok: true });

  const sameName = verifyCertificateChain(world.clientFromOtherCA.certificatePem, [world.ca.certificatePem]);
  t.false(sameName.ok);
  if (!sameName.ok) t.regex(sameName.reason, /signature of CN=meshfed-egress\.cluster1,O=kubectl-meshfed does not verify with the key of the trusted CN=meshfed federation CA cluster2/);
  const stranger = verifyCertificateChain(world.client.certificatePem, [freshCA.certificatePem]);
  t.false(stranger.ok);
  if (!stranger.ok) t.regex(stranger.reason, /issued by CN=meshfed federation CA cluster2,O=kubectl-meshfed, which is not among the trusted CAs \(CN=meshfed federation CA production/);

  const expired = verifyCertificateChain(world.expiredClient.certificatePem, [world.ca.certificatePem]);
  t.false(expired.ok);
  if (!expired.ok) t.regex(expired.reason, /CN=meshfed-egress\.cluster1,O=kubectl-meshfed expired on/);
  const early = verifyCertificateChain(world.client.certificatePem, [world.ca.certificatePem], new Date(Date.now() - 2 * DAY));
  t.false(early.ok);
  if (!early.ok) t.regex(early.reason, /not valid before/);
  const caExpired = verifyCertificateChain(world.server.certificatePem, [world.ca.certificatePem], new Date(Date.now() + 364 * DAY + 7 * 365 * DAY));
  t.false(caExpired.ok);

  t.deepEqual(verifyCertificateChain(world.client.certificatePem, []), { ok: false, reason: 'no trusted CA certificate was given' });
  const junk = verifyCertificateChain('junk', [world.ca.certificatePem]);
  t.false(junk.ok);
});

test('a certificate signed by a non-CA certificate does not chain, even with a matching name', (t) => {
  const server = world.server;
  const { cert: pem } = issueCertificate({ commonName: 'sneaky', notBefore: new Date(Date.now() - DAY), notAfter: new Date(Date.now() + DAY) },
    { cert: server.certificatePem, key: server.privateKeyPem, certChain: server.certificatePem, root: server.certificatePem });
  // Presented with its "issuer" as intermediate, and with the issuer trusted directly.
  const viaIntermediate = verifyCertificateChain(pem + world.server.certificatePem, [world.ca.certificatePem]);
  t.false(viaIntermediate.ok);
  const direct = verifyCertificateChain(pem, [world.server.certificatePem]);
  t.false(direct.ok);
  if (!direct.ok) t.regex(direct.reason, /CN=myreviews\.bookinfo\.cluster2\.meshfed\.internal,O=kubectl-meshfed signed O=meshfed-test,CN=sneaky but is not a CA/);
});

test('inspectCertificate reports days left relative to now, negative once expired', (t) => {
  t.true(inspectCertificate(world.expiredClient.certificatePem).daysLeft < 0);
  const info = inspectCertificate(world.client.certificatePem, new Date(Date.now() + 100.5 * DAY));
  t.is(info.daysLeft, 264);
  t.regex(info.fingerprintSha256, /^([0-9A-F]{2}:){31}[0-9A-F]{2}$/);
  t.throws(() => inspectCertificate('-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n'), { instanceOf: PkiError, message: /not a readable/ });
});

test('splitPemBundle returns each certificate and ignores keys and text', (t) => {
  const bundle = `# trust bundle\n${world.ca.certificatePem}${world.client.privateKeyPem}\r\n${freshCA.certificatePem}`;
  const parts = splitPemBundle(bundle);
  t.is(parts.length, 2);
  t.is(inspectCertificate(parts[0]!).fingerprintSha256, inspectCertificate(world.ca.certificatePem).fingerprintSha256);
  t.is(inspectCertificate(parts[1]!).fingerprintSha256, inspectCertificate(freshCA.certificatePem).fingerprintSha256);
  t.deepEqual(splitPemBundle(''), []);
});

test('keyMatchesCertificate tells a mismatched Secret from a damaged one', (t) => {
  t.true(keyMatchesCertificate(world.client.privateKeyPem, world.client.certificatePem));
  t.false(keyMatchesCertificate(world.server.privateKeyPem, world.client.certificatePem));
  t.throws(() => keyMatchesCertificate('junk', world.client.certificatePem), { instanceOf: PkiError });
  t.throws(() => keyMatchesCertificate(world.client.privateKeyPem, 'junk'), { instanceOf: PkiError });
});

test('detached signatures verify with the certificate or the public key, and only for the signed text', (t) => {
  const bundle = 'apiVersion: meshfed.io/v1\nkind: ExportBundle\nhost: myreviews.bookinfo — ünïcode\n';
  const signature = signDetached(world.ca.privateKeyPem, bundle);
  t.true(verifyDetached(world.ca.certificatePem, bundle, signature));
  const { privateKeyPem, publicKeyPem } = generateKeyPair();
  t.true(verifyDetached(publicKeyPem, bundle, signDetached(privateKeyPem, bundle)));
  t.false(verifyDetached(world.ca.certificatePem, `${bundle} `, signature));
  t.false(verifyDetached(freshCA.certificatePem, bundle, signature));
  t.false(verifyDetached(world.ca.certificatePem, bundle, 'not base64 at all!'));
  t.false(verifyDetached(world.ca.certificatePem, bundle, signature.slice(0, 40)));
  t.false(verifyDetached(world.ca.certificatePem, bundle, ''));
  t.throws(() => verifyDetached(world.ca.privateKeyPem, bundle, signature), { instanceOf: PkiError });
  t.throws(() => verifyDetached('junk', bundle, signature), { instanceOf: PkiError });
  t.throws(() => signDetached('junk', bundle), { instanceOf: PkiError });
});

test('the PKI core imports no I/O and no node-forge: only node:crypto and its own modules', (t) => {
  const dir = new URL('../../src/pki/', import.meta.url);
  for (const name of readdirSync(dir).filter((f) => f.endsWith('.ts'))) {
    const source = readFileSync(new URL(name, dir), 'utf8');
    const specifiers = [...source.matchAll(/(?:^|\s)(?:import|export)\s[^'"]*?from\s+'([^']+)'|import\(\s*'([^']+)'/g)].map((m) => m[1] ?? m[2]);
    for (const specifier of specifiers) {
      t.true(specifier === 'node:crypto' || /^\.\/[a-z-]+\.js$/.test(specifier!), `${name} imports ${specifier}`);
    }
  }
});
