// Real TLS handshakes over 127.0.0.1 with Node's tls (OpenSSL underneath): the federation gateway
// server certificate, mutual TLS with the federation CA, client certificates carrying the SPIFFE ID.
import test from 'ava';
import tls from 'node:tls';
import type { AddressInfo } from 'node:net';
import { consumerSpiffeId, exportHosts, getWorld } from './helpers.js';
import type { CertificateAndKey } from '../../src/pki/index.js';

interface Outcome {
  /** The client received the server's reply: both sides accepted each other. */
  ok: boolean;
  clientError?: string;
  /** Every error the server reported for the connection, joined. */
  serverError?: string;
  /** subjectaltname of the client certificate, when the server accepted it. */
  peerSubjectAltName?: string;
  /** Why the server did not authorise the client certificate (only with `audit`). */
  authorizationError?: string;
}

interface HandshakeOptions {
  server: CertificateAndKey;
  serverTrusts: string;
  client?: CertificateAndKey;
  clientTrusts: string;
  servername: string;
  /**
   * Node's rejectUnauthorized server drops a client whose certificate fails verification without
   * telling why; in audit mode the server does the same drop itself after recording the reason.
   */
  audit?: boolean;
}

async function handshake(options: HandshakeOptions): Promise<Outcome> {
  const outcome: Outcome = { ok: false };
  const server = tls.createServer({
    key: options.server.privateKeyPem, cert: options.server.certificatePem,
    ca: [options.serverTrusts], requestCert: true, rejectUnauthorized: !options.audit,
  }, (socket) => {
    if (!socket.authorized) {
      outcome.authorizationError = String(socket.authorizationError);
      socket.destroy();
      return;
    }
    outcome.peerSubjectAltName = socket.getPeerCertificate().subjectaltname;
    socket.end('federated\n');
  });
  server.on('tlsClientError', (error) => { outcome.serverError = [outcome.serverError, error.message].filter(Boolean).join('; '); });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  try {
    await new Promise<void>((resolve) => {
      const socket = tls.connect({
        host: '127.0.0.1', port, servername: options.servername, ca: [options.clientTrusts],
        ...(options.client ? { key: options.client.privateKeyPem, cert: options.client.certificatePem } : {}),
      });
      let received = '';
      const timer = setTimeout(() => { outcome.clientError ??= 'timeout'; socket.destroy(); }, 5000);
      socket.setEncoding('utf8');
      socket.on('data', (chunk: string) => { received += chunk; });
      socket.on('error', (error: NodeJS.ErrnoException) => { outcome.clientError ??= error.code ?? error.message; });
      socket.on('close', () => {
        clearTimeout(timer);
        outcome.ok = received === 'federated\n' && outcome.clientError === undefined;
        resolve();
      });
    });
  } finally {
    await new Promise((resolve) => server.close(resolve));
  }
  return outcome;
}

const world = getWorld();

test('the consumer gateway reaches the export over mutual TLS and the provider sees its SPIFFE ID', async (t) => {
  for (const host of exportHosts) {
    const outcome = await handshake({ server: world.server, serverTrusts: world.ca.certificatePem, client: world.client, clientTrusts: world.ca.certificatePem, servername: host });
    t.true(outcome.ok, JSON.stringify(outcome));
    t.is(outcome.peerSubjectAltName, `URI:${consumerSpiffeId}`);
  }
});

/** The gateway refuses the client (strict, as deployed), and the audit run says why. */
async function refusedClient(options: HandshakeOptions): Promise<Outcome> {
  const strict = await handshake(options);
  const audit = await handshake({ ...options, audit: true });
  return { ...strict, ...(audit.authorizationError === undefined ? {} : { authorizationError: audit.authorizationError }) };
}

test('a client certificate from another federation CA (even one with the same name) is refused', async (t) => {
  const outcome = await refusedClient({ server: world.server, serverTrusts: world.ca.certificatePem, client: world.clientFromOtherCA, clientTrusts: world.ca.certificatePem, servername: exportHosts[0]! });
  t.false(outcome.ok);
  t.is(outcome.peerSubjectAltName, undefined);
  // The subject names match, but the authority key identifier does not: OpenSSL finds no issuer.
  t.is(outcome.authorizationError, 'UNABLE_TO_VERIFY_LEAF_SIGNATURE');
});

test('an expired client certificate is refused by the provider gateway', async (t) => {
  const outcome = await refusedClient({ server: world.server, serverTrusts: world.ca.certificatePem, client: world.expiredClient, clientTrusts: world.ca.certificatePem, servername: exportHosts[0]! });
  t.false(outcome.ok);
  t.is(outcome.peerSubjectAltName, undefined);
  t.is(outcome.authorizationError, 'CERT_HAS_EXPIRED');
});

test('an expired server certificate is refused by the consumer gateway', async (t) => {
  const outcome = await handshake({ server: world.expiredServer, serverTrusts: world.ca.certificatePem, client: world.client, clientTrusts: world.ca.certificatePem, servername: exportHosts[0]! });
  t.false(outcome.ok);
  t.is(outcome.clientError, 'CERT_HAS_EXPIRED');
});

test('an SNI host that is not in the server certificate fails the client\'s identity check', async (t) => {
  const outcome = await handshake({ server: world.server, serverTrusts: world.ca.certificatePem, client: world.client, clientTrusts: world.ca.certificatePem, servername: 'ratings.bookinfo.cluster2.meshfed.internal' });
  t.false(outcome.ok);
  t.is(outcome.clientError, 'ERR_TLS_CERT_ALTNAME_INVALID');
});

test('a consumer without a client certificate is refused', async (t) => {
  const outcome = await handshake({ server: world.server, serverTrusts: world.ca.certificatePem, clientTrusts: world.ca.certificatePem, servername: exportHosts[0]! });
  t.false(outcome.ok);
  t.regex(outcome.serverError ?? '', /peer did not return a certificate/i);
});

test('a consumer that does not trust the provider CA refuses the gateway', async (t) => {
  const outcome = await handshake({ server: world.server, serverTrusts: world.ca.certificatePem, client: world.client, clientTrusts: world.otherCA.certificatePem, servername: exportHosts[0]! });
  t.false(outcome.ok);
  t.regex(outcome.clientError ?? '', /CERT_SIGNATURE_FAILURE|UNABLE_TO_VERIFY_LEAF_SIGNATURE|SELF_SIGNED/);
});

test('the server certificate cannot be used as a client certificate (extKeyUsage serverAuth only)', async (t) => {
  const outcome = await refusedClient({ server: world.server, serverTrusts: world.ca.certificatePem, client: world.server, clientTrusts: world.ca.certificatePem, servername: exportHosts[0]! });
  t.false(outcome.ok);
  t.is(outcome.authorizationError, 'INVALID_PURPOSE');
});
