// The openssl binary as an independent implementation: it must agree with inspectCertificate, accept
// our CSRs and certificates, and complete (or refuse) the same mutual-TLS handshakes as Node does.
import test from 'ava';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  createCertificateRequest, generateKeyPair, inspectCertificate, inspectCertificateRequest, keyMatchesCertificate, PkiError,
  signClientCertificate, signDetached, verifyCertificateChain, verifyDetached,
} from '../../src/pki/index.js';
import type { CertificateAndKey } from '../../src/pki/index.js';
import { consumerSpiffeId, exportHosts, getWorld } from './helpers.js';

const opensslVersion = spawnSync('openssl', ['version'], { encoding: 'utf8' });
const haveOpenssl = opensslVersion.status === 0;
const osTest = haveOpenssl ? test.serial : test.serial.skip;
if (!haveOpenssl) console.warn('openssl is not installed: the openssl interoperability tests are skipped');

const dir = mkdtempSync(join(tmpdir(), 'meshfed-pki-'));
test.after.always(() => rmSync(dir, { recursive: true, force: true }));

let fileCount = 0;
function file(content: string): string {
  const path = join(dir, `f${fileCount++}.pem`);
  writeFileSync(path, content, { mode: 0o600 });
  return path;
}

function openssl(args: string[], input?: string | Buffer): { status: number | null; out: string; raw: Buffer } {
  const result = spawnSync('openssl', args, { input, timeout: 10_000 });
  return { status: result.status, out: `${result.stdout.toString('latin1')}${result.stderr.toString('latin1')}`, raw: result.stdout };
}

const world = getWorld();

osTest('openssl x509 agrees with inspectCertificate on every kind of certificate', (t) => {
  for (const pem of [world.ca.certificatePem, world.server.certificatePem, world.client.certificatePem]) {
    const path = file(pem);
    const info = inspectCertificate(pem);
    const fields = openssl(['x509', '-in', path, '-noout', '-fingerprint', '-sha256', '-serial', '-subject', '-issuer', '-dates', '-nameopt', 'RFC2253']).out;
    t.true(fields.includes(`Fingerprint=${info.fingerprintSha256}\n`), fields);
    t.true(fields.includes(`serial=${info.serialNumber}\n`), fields);
    t.true(fields.includes(`subject=${info.subject}\n`), fields);
    t.true(fields.includes(`issuer=${info.issuer}\n`), fields);
    t.is(new Date(/notBefore=(.*)/.exec(fields)![1]!).getTime(), info.notBefore.getTime());
    t.is(new Date(/notAfter=(.*)/.exec(fields)![1]!).getTime(), info.notAfter.getTime());

    const text = openssl(['x509', '-in', path, '-noout', '-text']).out;
    const sans = /X509v3 Subject Alternative Name: *\n\s*(.*)/.exec(text)?.[1]?.split(', ') ?? [];
    t.deepEqual(sans, [...info.dnsNames.map((n) => `DNS:${n}`), ...info.uris.map((u) => `URI:${u}`)]);
    t.is(/X509v3 Basic Constraints: critical\n\s*(.*)/.exec(text)?.[1]?.trim(), info.isCA ? 'CA:TRUE, pathlen:0' : 'CA:FALSE');
    const usageNames: Record<string, string> = { digitalSignature: 'Digital Signature', keyEncipherment: 'Key Encipherment', keyCertSign: 'Certificate Sign', cRLSign: 'CRL Sign' };
    t.is(/X509v3 Key Usage: critical\n\s*(.*)/.exec(text)?.[1]?.trim(), info.keyUsage.map((u) => usageNames[u]).join(', '));
    const purposeNames: Record<string, string> = { serverAuth: 'TLS Web Server Authentication', clientAuth: 'TLS Web Client Authentication' };
    t.is(/X509v3 Extended Key Usage: *\n\s*(.*)/.exec(text)?.[1]?.trim(), info.extKeyUsage.length ? info.extKeyUsage.map((u) => purposeNames[u]).join(', ') : undefined);

    const spki = openssl(['pkey', '-pubin', '-outform', 'DER'], openssl(['x509', '-in', path, '-noout', '-pubkey']).raw).raw;
    const digest = openssl(['dgst', '-sha256', '-c'], spki).out;
    t.true(digest.toUpperCase().includes(info.publicKeyFingerprint), digest);
  }
  t.deepEqual(inspectCertificate(world.server.certificatePem).dnsNames, exportHosts);
});

osTest('openssl verify accepts the gateway certificates for their purpose only', (t) => {
  const ca = file(world.ca.certificatePem);
  const verify = (pem: string, purpose: string) => openssl(['verify', '-x509_strict', '-CAfile', ca, '-purpose', purpose, file(pem)]);
  t.is(verify(world.server.certificatePem, 'sslserver').status, 0);
  t.is(verify(world.client.certificatePem, 'sslclient').status, 0);
  t.not(verify(world.server.certificatePem, 'sslclient').status, 0);
  t.not(verify(world.client.certificatePem, 'sslserver').status, 0);
  t.regex(verify(world.expiredClient.certificatePem, 'sslclient').out, /certificate has expired/);
  t.not(openssl(['verify', '-CAfile', file(world.otherCA.certificatePem), file(world.client.certificatePem)]).status, 0);
});

osTest('openssl req accepts our CSR and sees the SPIFFE ID', (t) => {
  const { privateKeyPem } = generateKeyPair();
  const csr = file(createCertificateRequest({ privateKeyPem, commonName: 'meshfed-egress.cluster1', spiffeId: consumerSpiffeId }));
  const verified = openssl(['req', '-in', csr, '-noout', '-verify']);
  t.is(verified.status, 0, verified.out);
  t.regex(verified.out, /verify OK/);
  const text = openssl(['req', '-in', csr, '-noout', '-text', '-nameopt', 'RFC2253']).out;
  t.regex(text, /Subject: CN=meshfed-egress\.cluster1\n/);
  t.true(text.includes(`URI:${consumerSpiffeId}`), text);
  t.regex(text, /Public Key Algorithm: id-ecPublicKey\n\s*Public-Key: \(256 bit\)/);
  t.regex(text, /ASN1 OID: prime256v1/);
  t.regex(text, /Signature Algorithm: ecdsa-with-SHA256/);
});

osTest('a tampered CSR is refused by inspectCertificateRequest and by openssl', (t) => {
  const { privateKeyPem } = generateKeyPair();
  const csrPem = createCertificateRequest({ privateKeyPem, commonName: 'meshfed-egress.cluster1', spiffeId: consumerSpiffeId });
  const der = Buffer.from(csrPem.replace(/-----[^-]+-----|\s/g, ''), 'base64');
  // An attacker on the exchange path swaps the consumer's identity for another one of the same length.
  const at = der.indexOf(Buffer.from('cluster1/ns'));
  t.true(at > 0);
  der.write('cluster9', at, 'latin1');
  const forged = `-----BEGIN CERTIFICATE REQUEST-----\n${der.toString('base64').match(/.{1,64}/g)!.join('\n')}\n-----END CERTIFICATE REQUEST-----\n`;
  t.throws(() => inspectCertificateRequest(forged), { instanceOf: PkiError, message: /forged or damaged/ });
  t.throws(() => signClientCertificate({ ca: world.ca, csrPem: forged }), { instanceOf: PkiError });
  // openssl 3.0 reports the mismatch but may still exit 0, so read what it says.
  t.regex(openssl(['req', '-in', file(forged), '-noout', '-verify']).out, /did not match|verify failure|bad signature/i);
});

osTest('CSRs made by openssl with P-256 and RSA keys are accepted and signed; one with a P-384 key is refused with a reason', (t) => {
  const csrWith = (keyPem: string) => execFileSync('openssl', ['req', '-new', '-key', file(keyPem), '-subj', '/CN=vault-egress', '-addext', `subjectAltName=URI:${consumerSpiffeId}`], { encoding: 'utf8', timeout: 10_000 });
  const genpkey = (...args: string[]) => execFileSync('openssl', ['genpkey', ...args], { encoding: 'utf8', timeout: 30_000, stdio: ['ignore', 'pipe', 'ignore'] });
  for (const keyPem of [generateKeyPair().privateKeyPem, genpkey('-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256'), genpkey('-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048')]) {
    const csrPem = csrWith(keyPem);
    t.is(inspectCertificateRequest(csrPem).spiffeId, consumerSpiffeId);
    const cert = signClientCertificate({ ca: world.ca, csrPem, expectSpiffeId: consumerSpiffeId });
    t.is(openssl(['verify', '-x509_strict', '-CAfile', file(world.ca.certificatePem), '-purpose', 'sslclient', file(cert)]).status, 0);
    t.true(keyMatchesCertificate(keyPem, cert));
  }
  const p384Csr = csrWith(genpkey('-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-384'));
  t.throws(() => inspectCertificateRequest(p384Csr), { instanceOf: PkiError, message: /^the certificate signing request has an EC key on curve secp384r1; meshfed accepts only ECDSA P-256 \(prime256v1\) keys or RSA keys of at least 2048 bits: make the request again/ });
});

interface Session { clientStatus: number | null; clientOut: string; serverOut: string; served: boolean }

/**
 * One connection between `openssl s_server` (the provider gateway: our server certificate, client
 * certificates required and verified against `serverTrusts`) and `openssl s_client` (the consumer
 * gateway). `served` is true when the server answered the HTTP request, i.e. both sides accepted.
 */
async function session(options: { server: CertificateAndKey; serverTrusts: string; client?: CertificateAndKey; clientTrusts: string; servername: string }): Promise<Session> {
  const server = spawn('openssl', [
    's_server', '-accept', '127.0.0.1:0', '-naccept', '1', '-www',
    '-cert', file(options.server.certificatePem), '-key', file(options.server.privateKeyPem),
    '-CAfile', file(options.serverTrusts), '-Verify', '1', '-verify_return_error',
  ]);
  let serverOut = '';
  server.stdout.on('data', (chunk: Buffer) => { serverOut += chunk.toString('latin1'); });
  server.stderr.on('data', (chunk: Buffer) => { serverOut += chunk.toString('latin1'); });
  const killer = setTimeout(() => server.kill(), 10_000);
  try {
    const port = await new Promise<string>((resolve, reject) => {
      const watch = () => {
        const match = /ACCEPT 127\.0\.0\.1:(\d+)/.exec(serverOut);
        if (match) resolve(match[1]!);
      };
      server.stdout.on('data', watch);
      server.on('exit', () => reject(new Error(`s_server exited: ${serverOut}`)));
    });
    const client = spawnSync('openssl', [
      's_client', '-connect', `127.0.0.1:${port}`, '-servername', options.servername, '-verify_hostname', options.servername,
      '-CAfile', file(options.clientTrusts), '-verify_return_error', '-ign_eof',
      ...(options.client ? ['-cert', file(options.client.certificatePem), '-key', file(options.client.privateKeyPem)] : []),
    ], { input: 'GET / HTTP/1.0\r\n\r\n', timeout: 10_000 });
    const clientOut = `${client.stdout.toString('latin1')}${client.stderr.toString('latin1')}`;
    // -naccept 1: the server exits after this connection; wait (bounded) so its report is complete.
    if (server.exitCode === null) {
      await new Promise<void>((resolve) => {
        const grace = setTimeout(resolve, 3000);
        server.on('exit', () => { clearTimeout(grace); resolve(); });
      });
    }
    return { clientStatus: client.status, clientOut, serverOut, served: /HTTP\/1\.0 200 ok/.test(clientOut) };
  } finally {
    clearTimeout(killer);
    server.kill();
  }
}

const base = () => ({ server: world.server, serverTrusts: world.ca.certificatePem, client: world.client, clientTrusts: world.ca.certificatePem, servername: exportHosts[0]! });

osTest('s_client with our client certificate and the export SNI completes mutual TLS with s_server', async (t) => {
  for (const servername of exportHosts) {
    const result = await session({ ...base(), servername });
    t.is(result.clientStatus, 0, result.clientOut);
    t.true(result.served, result.clientOut);
    t.regex(result.clientOut, /Verify return code: 0 \(ok\)/);
  }
});

osTest('s_server refuses a client certificate from another CA', async (t) => {
  const result = await session({ ...base(), client: world.clientFromOtherCA });
  t.false(result.served);
  t.regex(result.serverOut, /verify error|unable to get local issuer|certificate verify failed/i);
});

osTest('s_server refuses an expired client certificate', async (t) => {
  const result = await session({ ...base(), client: world.expiredClient });
  t.false(result.served);
  t.regex(result.serverOut, /certificate has expired/i);
});

osTest('s_server refuses a client without a certificate', async (t) => {
  const { client: _client, ...noClient } = base();
  const result = await session(noClient);
  t.false(result.served);
  t.regex(result.serverOut, /peer did not return a certificate/i);
});

osTest('s_client refuses an expired server certificate', async (t) => {
  const result = await session({ ...base(), server: world.expiredServer });
  t.false(result.served);
  t.not(result.clientStatus, 0);
  t.regex(result.clientOut, /certificate has expired/i);
});

osTest('s_client refuses a server certificate that does not name the requested SNI host', async (t) => {
  const result = await session({ ...base(), servername: 'ratings.bookinfo.cluster2.meshfed.internal' });
  t.false(result.served);
  t.not(result.clientStatus, 0);
  t.regex(result.clientOut, /hostname mismatch/i);
});

osTest('a mesh root CA meshfed did not create (EC, made by openssl) can be inspected and compared', (t) => {
  const key = join(dir, 'ec-root.key');
  const cert = join(dir, 'ec-root.pem');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', key, '-out', cert,
    '-subj', '/O=cluster.local/CN=Root CA', '-days', '30', '-addext', 'subjectAltName=URI:spiffe://cluster.local'], { timeout: 10_000, stdio: 'ignore' });
  const pem = readFileSync(cert, 'utf8');
  const info = inspectCertificate(pem);
  t.is(info.subject, 'CN=Root CA,O=cluster.local');
  t.true(info.isCA);
  t.deepEqual(info.uris, ['spiffe://cluster.local']);
  t.true(openssl(['x509', '-in', cert, '-noout', '-fingerprint', '-sha256']).out.includes(`Fingerprint=${info.fingerprintSha256}\n`));
  t.deepEqual(verifyCertificateChain(pem, [pem]), { ok: true });
  t.true(keyMatchesCertificate(readFileSync(key, 'utf8'), pem));
  t.false(keyMatchesCertificate(world.ca.privateKeyPem, pem));
  const signature = signDetached(readFileSync(key, 'utf8'), 'bundle');
  t.true(verifyDetached(pem, 'bundle', signature));
});
