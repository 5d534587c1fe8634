/**
 * Real TLS handshakes between two hops, over loopback: the server and the client of a hop are configured with
 * the certificates, keys and trust anchors the Istio configuration gives them, and node:tls decides whether
 * the handshake succeeds (chain, expiry, client certificate required). Only 127.0.0.1 ephemeral ports are used.
 */
import { createPrivateKey } from 'node:crypto';
import { createServer, connect } from 'node:tls';
import type { PeerCertificate, TLSSocket } from 'node:tls';
import { uriSans } from './pki.js';

/** The server side of a handshake. */
export interface TlsServerSide {
  /** Certificate chain, leaf first (PEM). */
  certChain: string;
  key: string;
  /** Trust anchors for client certificates; with `requireClientCert` the client must present one they verify. */
  clientCa?: string;
  /** Default false. */
  requireClientCert?: boolean;
}

/** The client side of a handshake. */
export interface TlsClientSide {
  /** SNI sent in the ClientHello. Default: none. */
  servername?: string;
  certChain?: string;
  key?: string;
  /** Trust anchors for the server certificate; undefined means the client does not verify it. */
  ca?: string;
  /** Subject alternative names one of which the server certificate must carry (`spiffe://…` URIs or DNS names). */
  verifySans?: string[];
  /** A hostname the server certificate must be valid for (what curl checks for an https:// URL). */
  verifyHostname?: string;
  /**
   * The signature algorithms the client offers (OpenSSL's colon-separated names), which also bound what it signs
   * with. Default: OpenSSL's. An Envoy client offers BoringSSL's ({@link ENVOY_CLIENT_SIGALGS}).
   */
  sigalgs?: string;
}

/** What one side learnt about its peer. */
export interface PeerInfo {
  uris: string[];
  dnsNames: string[];
  subjectCN?: string;
}

export type HandshakeResult =
  | { ok: true; clientCertificate?: PeerInfo; serverCertificate: PeerInfo }
  /** `side` is the side that refused the handshake; `code` is node's/OpenSSL's reason. */
  | { ok: false; side: 'client' | 'server'; code: string; message: string };

/**
 * The signature algorithms an Envoy client offers, in OpenSSL's names: BoringSSL's default verification list
 * (`ssl/extensions.cc` `kVerifySignatureAlgorithms`: ECDSA P-256/SHA-256, RSA-PSS and PKCS#1 with SHA-256, ECDSA
 * P-384/SHA-384, RSA with SHA-384 and SHA-512, RSA PKCS#1 SHA-1), which Envoy keeps unless a TLS context sets
 * `signature_algorithms` (`ContextImpl::ContextImpl`: "otherwise fall back to BoringSSL defaults"); Istio sets none.
 * Neither Ed25519 nor ECDSA P-521 is in it, so an Envoy client takes no server certificate with such a key (the
 * server finds no common algorithm and sends a handshake_failure alert), and cannot sign with such a client
 * certificate for an Envoy server, which asks for the same list (BoringSSL fails NO_COMMON_SIGNATURE_ALGORITHMS).
 * Measured with the Istio oracle's live Envoy 1.40 gateways: P-384 and RSA-4096 certificates carry the federated call,
 * P-521 and Ed25519 ones (loaded without complaint) fail every handshake between the two gateways.
 */
export const ENVOY_CLIENT_SIGALGS = [
  'ecdsa_secp256r1_sha256', 'rsa_pss_rsae_sha256', 'rsa_pkcs1_sha256',
  'ecdsa_secp384r1_sha384', 'rsa_pss_rsae_sha384', 'rsa_pkcs1_sha384',
  'rsa_pss_rsae_sha512', 'rsa_pkcs1_sha512', 'rsa_pkcs1_sha1',
].join(':');

/** Whether a client holding `key` can sign a CertificateVerify with one of `sigalgs` (OpenSSL names). */
function canSignWith(key: string, sigalgs: string): boolean {
  const k = createPrivateKey(key);
  const offered = sigalgs.split(':');
  if (k.asymmetricKeyType === 'rsa') return offered.some((a) => a.startsWith('rsa_'));
  if (k.asymmetricKeyType === 'ec') {
    const curve = { prime256v1: 'secp256r1', secp384r1: 'secp384r1', secp521r1: 'secp521r1' }[k.asymmetricKeyDetails?.namedCurve ?? ''];
    return curve !== undefined && offered.some((a) => a.startsWith(`ecdsa_${curve}_`));
  }
  return offered.includes(k.asymmetricKeyType ?? '');
}

const CLIENT_VERIFY_CODES = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'UNABLE_TO_GET_ISSUER_CERT', 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY', 'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID', 'DEPTH_ZERO_SELF_SIGNED_CERT', 'SELF_SIGNED_CERT_IN_CHAIN', 'ERR_TLS_CERT_ALTNAME_INVALID',
  'CERT_SIGNATURE_FAILURE', 'SAN_MISMATCH',
]);

function peerInfo(cert: PeerCertificate | undefined): PeerInfo | undefined {
  if (!cert || Object.keys(cert).length === 0) return undefined;
  const alt = cert.subjectaltname;
  return {
    uris: uriSans(alt),
    dnsNames: (alt ?? '').split(/,\s*/).filter((s) => s.startsWith('DNS:')).map((s) => s.slice(4)),
    subjectCN: typeof cert.subject?.CN === 'string' ? cert.subject.CN : undefined,
  };
}

function codeOf(err: unknown): string {
  const e = err as { code?: string; message?: string };
  return e.code ?? e.message ?? String(err);
}

/**
 * Only a guard against a hung socket: a loopback handshake takes milliseconds, but on a loaded machine (tests in
 * parallel) it may take seconds, and a guard that fires turns a good configuration into a failure.
 */
const HANDSHAKE_GUARD_MS = 60_000;

/** Runs one TLS handshake over loopback and reports which side refused it, if any. */
export async function handshake(client: TlsClientSide, server: TlsServerSide): Promise<HandshakeResult> {
  const srv = createServer({
    key: server.key,
    cert: server.certChain,
    ca: server.clientCa,
    requestCert: server.requireClientCert ?? false,
    // The client certificate is checked below, so the refusal reason (expired, unknown CA, missing) is known.
    rejectUnauthorized: false,
    minVersion: 'TLSv1.2',
  });
  let serverOutcome: { ok: true; peer?: PeerInfo } | { ok: false; code: string; message: string } | undefined;
  let clientOutcome: { ok: true; peer?: PeerInfo } | { ok: false; code: string; message: string } | undefined;
  const settled = new Promise<void>((resolve) => {
    const check = (): void => { if (serverOutcome && clientOutcome) resolve(); };
    const timer = setTimeout(() => {
      serverOutcome ??= { ok: false, code: 'TIMEOUT', message: 'handshake timed out' };
      clientOutcome ??= { ok: false, code: 'TIMEOUT', message: 'handshake timed out' };
      resolve();
    }, HANDSHAKE_GUARD_MS);
    timer.unref();
    srv.on('secureConnection', (sock: TLSSocket) => {
      sock.on('error', () => undefined);
      const peer = peerInfo(sock.getPeerCertificate());
      if (server.requireClientCert && (!peer || !sock.authorized)) {
        const code = !peer ? 'CERTIFICATE_REQUIRED' : String(sock.authorizationError);
        serverOutcome = { ok: false, code, message: !peer ? 'peer did not return a certificate' : `client certificate rejected: ${code}` };
        clientOutcome ??= { ok: false, code: 'PEER_ALERT', message: serverOutcome.message };
        sock.destroy();
        check();
        return;
      }
      serverOutcome = { ok: true, peer };
      // One byte from the server tells the client the server accepted its certificate (TLS 1.3 verifies it late).
      sock.write('k');
      check();
    });
    srv.on('tlsClientError', (err) => {
      serverOutcome ??= { ok: false, code: codeOf(err), message: (err as Error).message };
      // The client learns of the refusal from the alert; do not wait for its error event in every case.
      clientOutcome ??= { ok: false, code: 'PEER_ALERT', message: (err as Error).message };
      check();
    });
    srv.listen(0, '127.0.0.1', () => {
      const address = srv.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      const sock = connect({
        host: '127.0.0.1',
        port,
        servername: client.servername && !/^[\d.]+$/.test(client.servername) ? client.servername : undefined,
        ca: client.ca,
        cert: client.certChain,
        key: client.key,
        rejectUnauthorized: client.ca !== undefined,
        minVersion: 'TLSv1.2',
        ...(client.sigalgs ? { sigalgs: client.sigalgs } : {}),
        checkServerIdentity: (_host, cert) => {
          const info = peerInfo(cert);
          if (client.verifySans && client.verifySans.length > 0) {
            const names = [...(info?.uris ?? []), ...(info?.dnsNames ?? [])];
            if (!client.verifySans.some((san) => names.includes(san))) {
              return Object.assign(new Error(`certificate SANs [${names.join(', ')}] do not include any of [${client.verifySans.join(', ')}]`), { code: 'SAN_MISMATCH' });
            }
          }
          if (client.verifyHostname) {
            const dns = info?.dnsNames ?? [];
            const host = client.verifyHostname;
            const ok = dns.some((d) => d === host || (d.startsWith('*.') && host.endsWith(d.slice(1)) && host.split('.').length === d.split('.').length));
            if (!ok) return Object.assign(new Error(`no alternative certificate subject name matches target host name '${host}'`), { code: 'ERR_TLS_CERT_ALTNAME_INVALID' });
          }
          return undefined;
        },
      });
      sock.on('secureConnect', () => {
        sock.once('data', () => {
          clientOutcome = { ok: true, peer: peerInfo(sock.getPeerCertificate()) };
          check();
        });
      });
      sock.on('error', (err) => {
        const code = codeOf(err);
        if (CLIENT_VERIFY_CODES.has(code) || !clientOutcome || !clientOutcome.ok) clientOutcome = { ok: false, code, message: err.message };
        // The server sees the client's abort as a reset; it refused nothing itself.
        serverOutcome ??= { ok: true };
        check();
      });
      void settled.then(() => sock.destroy());
    });
  });
  await settled;
  await new Promise<void>((resolve) => srv.close(() => resolve()));
  const c = clientOutcome!;
  const s = serverOutcome!;
  // Asked for a certificate it cannot sign for with the algorithms it takes, OpenSSL's client sends none; BoringSSL's
  // (Envoy's) fails the handshake itself (`tls1_choose_signature_algorithm`).
  if (!s.ok && s.code === 'CERTIFICATE_REQUIRED' && client.certChain && client.key && client.sigalgs && !canSignWith(client.key, client.sigalgs)) {
    return { ok: false, side: 'client', code: 'NO_COMMON_SIGNATURE_ALGORITHMS', message: 'no signature algorithm the server takes fits the client certificate\'s key' };
  }
  // BoringSSL's name of a server that can sign with none of the algorithms the client offers.
  if (!s.ok && s.code === 'ERR_SSL_NO_SUITABLE_SIGNATURE_ALGORITHM') return { ok: false, side: 'server', code: 'NO_COMMON_SIGNATURE_ALGORITHMS', message: s.message };
  if (!c.ok && CLIENT_VERIFY_CODES.has(c.code)) return { ok: false, side: 'client', code: c.code, message: c.message };
  if (!s.ok) return { ok: false, side: 'server', code: s.code, message: s.message };
  if (!c.ok) return { ok: false, side: 'client', code: c.code, message: c.message };
  return { ok: true, clientCertificate: s.peer, serverCertificate: c.peer ?? { uris: [], dnsNames: [] } };
}
