/**
 * The seed blog scenario (boundary trust: consumer sidecar -> egress gateway over Istio mTLS -> mutual TLS with
 * the federation client certificate and SNI -> provider ingress gateway -> reviews v2), end to end, and the single
 * faults that break it, each with the failure a real mesh gives, and the certificate keys Envoy refuses to load.
 */
import test from 'ava';
import type { ExecutionContext } from 'ava';
import { faultyWorld, withClientKey, withServerKey } from '../support/mesh/faults.js';
import type { KeyType } from '../support/mesh/faults.js';
import { BOUNDARY_HOST, boundaryWorld } from '../support/mesh/scenarios.js';
import { edit, onIstio, run } from './helpers.js';
import type { World } from './helpers.js';

const PROBE = ['curl', '-sS', '-w', '\\n%{http_code}\\n', 'http://reviews.default:9080/reviews/0'];

async function probe(world: World) {
  const r = await run(world, 'cluster1', 'default', 'sleep-6f8b4', PROBE);
  const lines = r.stdout.trimEnd().split('\n');
  return { ...r, status: lines[lines.length - 1], body: lines.slice(0, -1).join('\n') };
}

const UPSTREAM_CONNECT = 'upstream connect error or disconnect/reset before headers. retried and the latest reset reason: ';

test('the blog scenario: reviews v2 from the other mesh answers with black stars', async (t) => {
  const r = await probe(boundaryWorld());
  t.is(r.exitCode, 0, r.stderr);
  t.is(r.status, '200');
  const body = JSON.parse(r.body) as { podname: string; reviews: Array<{ rating: { color: string; stars: number } }> };
  t.regex(body.podname, /^reviews-v2-/);
  t.deepEqual(body.reviews.map((x) => x.rating), [{ stars: 5, color: 'black' }, { stars: 4, color: 'black' }]);
  t.true(r.trace.some((h) => h.includes('LoadBalancer 198.51.100.20:15443 (cluster2')), r.trace.join('\n'));
  t.regex(r.proxies.logOf('istio-federation-ingressgateway-7c9f2'), /"GET \/reviews\/0 HTTP\/1.1" 200 - "reviews.bookinfo.svc.cluster2.global"/);
});

test('fault: provider Gateway missing -> the provider gateway refuses 15443, 503 URX', async (t) => {
  const world = faultyWorld('boundary/provider-gateway-missing');
  const r = await probe(world);
  t.is(r.exitCode, 0);
  t.is(r.status, '503');
  t.is(r.body, `${UPSTREAM_CONNECT}remote connection failure, transport failure reason: delayed connect error: 111`);
  t.regex(r.proxies.logOf('istio-federation-egressgateway-5d8c7'), /" 503 URX,UF /);
});

test('fault: SNI not in the provider Gateway hosts -> filter_chain_not_found, TLS reset', async (t) => {
  const world = faultyWorld('boundary/sni-not-in-gateway-hosts');
  const r = await probe(world);
  t.is(r.status, '503');
  t.regex(r.body, /Connection reset by peer/);
  t.regex(r.proxies.logOf('istio-federation-ingressgateway-7c9f2'), /filter_chain_not_found/);
});

test('fault: provider credentialName names a missing Secret -> TLS reset at the provider gateway', async (t) => {
  const world = faultyWorld('boundary/provider-credential-missing');
  const r = await probe(world);
  t.is(r.status, '503');
  t.regex(r.body, /Connection reset by peer/);
  t.true(r.trace.some((h) => h.includes('credentialName federation-server-typo not found')), r.trace.join('\n'));
});

test('fault: consumer credentialName names a missing Secret -> Secret is not supplied by SDS', async (t) => {
  const world = faultyWorld('boundary/consumer-credential-missing');
  const r = await probe(world);
  t.is(r.status, '503');
  t.regex(r.body, /TLS error: Secret is not supplied by SDS/);
});

test('fault: client certificate from another CA -> the provider refuses the handshake (unknown CA)', async (t) => {
  const world = faultyWorld('boundary/client-cert-other-ca');
  const r = await probe(world);
  t.is(r.status, '503');
  t.regex(r.body, /TLSV1_ALERT_UNKNOWN_CA/);
});

test('fault: expired client certificate -> the provider refuses it (certificate expired)', async (t) => {
  const world = faultyWorld('boundary/client-cert-expired');
  const r = await probe(world);
  t.is(r.status, '503');
  t.regex(r.body, /SSLV3_ALERT_CERTIFICATE_EXPIRED/);
});

test('fault: provider server certificate not trusted by the consumer -> CERTIFICATE_VERIFY_FAILED at the egress gateway', async (t) => {
  const world = faultyWorld('boundary/server-cert-untrusted');
  const r = await probe(world);
  t.is(r.status, '503');
  t.regex(r.body, /CERTIFICATE_VERIFY_FAILED/);
});

test('fault: consumer not admitted by the provider AuthorizationPolicy -> 403 RBAC: access denied', async (t) => {
  const world = faultyWorld('boundary/consumer-not-admitted');
  const r = await probe(world);
  t.is(r.exitCode, 0);
  t.is(r.status, '403');
  t.is(r.body, 'RBAC: access denied');
});

test('fault: an ALLOW policy for the gateway on reviews locks out the in-mesh callers of the provider', async (t) => {
  const world = faultyWorld('boundary/workload-allow-locks-out-local-callers');
  const federated = await probe(world);
  t.is(federated.status, '200');
  const local = await run(world, 'cluster2', 'bookinfo', 'sleep-7dc47', ['curl', '-s', '-w', '\\n%{http_code}', 'http://myreviews:9080/reviews/0']);
  t.is(local.stdout, 'RBAC: access denied\n403');
});

test('fault: the provider LoadBalancer address changed since import -> connection timeout', async (t) => {
  const world = faultyWorld('boundary/provider-address-changed');
  const r = await probe(world);
  t.is(r.status, '503');
  t.is(r.body, `${UPSTREAM_CONNECT}connection timeout`);
});

test('fault: the provider Service has no ready endpoints -> 503 no healthy upstream', async (t) => {
  const world = faultyWorld('boundary/no-ready-endpoints');
  const r = await probe(world);
  t.is(r.status, '503');
  t.is(r.body, 'no healthy upstream');
  t.regex(r.proxies.logOf('istio-federation-ingressgateway-7c9f2'), /" 503 UH /);
});

test('fault: the subset labels match no pod -> 503 no healthy upstream', async (t) => {
  const world = faultyWorld('boundary/subset-matches-no-pod');
  const r = await probe(world);
  t.is(r.status, '503');
  t.is(r.body, 'no healthy upstream');
});

test('fault: a subset no DestinationRule defines -> 503 NC at the provider gateway', async (t) => {
  const world = faultyWorld('boundary/subset-undefined');
  const r = await probe(world);
  t.is(r.status, '503');
  t.regex(r.proxies.logOf('istio-federation-ingressgateway-7c9f2'), /" 503 NC /);
});

test('fault: no sidecar in the consumer pod -> the selector-less Service refuses (curl 7)', async (t) => {
  const world = faultyWorld('boundary/no-consumer-sidecar');
  const r = await probe(world);
  t.is(r.exitCode, 7);
  t.is(r.status, '000');
  t.regex(r.stderr, /^curl: \(7\) Failed to connect to reviews.default port 9080 after \d+ ms: Couldn't connect to server\n$/);
});

test('fault: port mismatch between hops (provider Gateway on 15444, LoadBalancer to 15443) -> refused, 503 URX', async (t) => {
  const world = faultyWorld('boundary/gateway-port-mismatch');
  const r = await probe(world);
  t.is(r.status, '503');
  t.is(r.body, `${UPSTREAM_CONNECT}remote connection failure, transport failure reason: delayed connect error: 111`);
});

test('fault: the Host the provider gateway sees is not routed (no authority rewrite) -> 404 NR', async (t) => {
  const world = faultyWorld('boundary/authority-not-rewritten');
  const r = await probe(world);
  t.is(r.status, '404');
  t.regex(r.proxies.logOf('istio-federation-egressgateway-5d8c7'), /" 404 NR "reviews.default:9080"/);
  t.not(BOUNDARY_HOST, 'reviews.default');
});

test('curl straight to the provider gateway: TLS without a client certificate is refused by the MUTUAL server', async (t) => {
  const world = boundaryWorld();
  const url = `https://${BOUNDARY_HOST}:15443/reviews/0`;
  const noCert = await run(world, 'cluster1', 'default', 'sleep-6f8b4', ['curl', '-sSk', '--resolve', `${BOUNDARY_HOST}:15443:198.51.100.20`, url]);
  t.is(noCert.exitCode, 56);
  t.regex(noCert.stderr, /^curl: \(56\) OpenSSL SSL_read: .*tlsv13 alert certificate required/);
  const verified = await run(world, 'cluster1', 'default', 'sleep-6f8b4', ['curl', '-sS', '--resolve', `${BOUNDARY_HOST}:15443:198.51.100.20`, url]);
  t.is(verified.exitCode, 60, 'the image CA bundle does not know the federation CA');
  const wrongSni = await run(world, 'cluster1', 'default', 'sleep-6f8b4', ['curl', '-sSk', 'https://198.51.100.20:15443/']);
  t.is(wrongSni.exitCode, 35);
  t.regex(wrongSni.stderr, /Connection reset by peer in connection to 198.51.100.20:15443/);
});

test('a per-destination Host header set works like an authority rewrite', async (t) => {
  const world = boundaryWorld();
  edit(world, 'cluster1', 'networking.istio.io', 'VirtualService', 'default', 'reviews', (vs) => {
    delete vs.spec.http[0].rewrite;
    vs.spec.http[0].route[0].headers = { request: { set: { host: BOUNDARY_HOST } } };
  });
  const r = await probe(world);
  t.is(r.status, '200');
});

// Which certificate keys Envoy loads into a TLS context depends on its release (test/support/mesh/pki.ts
// envoyKeyRefusal; Istio 1.x ships Envoy 1.(x+8)): P-256 and RSA of 2048 bits or more always, P-384 and P-521 from
// Envoy 1.33 (Istio 1.25). Envoy's BoringSSL offers neither P-521 nor Ed25519 signatures (tls.ts ENVOY_CLIENT_SIGALGS),
// so a loaded certificate with such a key still fails the handshake between the gateways. node:tls would take them all.

/** The boundary scenario on Istio `version` with the provider gateway's server certificate on a key of `keyType`. */
function withServerKeyOn(version: string, keyType: KeyType): World {
  const world = onIstio(boundaryWorld(), version);
  withServerKey(world, keyType);
  return world;
}

/** The boundary scenario on Istio `version` with the consumer gateway's client certificate on a key of `keyType`. */
function withClientKeyOn(version: string, keyType: KeyType): World {
  const world = onIstio(boundaryWorld(), version);
  withClientKey(world, keyType);
  return world;
}

/** The last Istio release whose Envoy (1.32) takes P-256 keys only, and the first whose Envoy (1.33) takes P-384. */
const ISTIO_BEFORE_P384 = '1.24.6';
const ISTIO_FROM_P384 = '1.25.0';

const P256_ONLY = 'Failed to load certificate chain from <inline>, only P-256 ECDSA certificates are supported';
const NIST_CURVES = 'Failed to load certificate chain from <inline>, only P-256, P-384 or P-521 ECDSA certificates are supported';
const RSA_2048 = 'Failed to load certificate chain from <inline>, only RSA certificates with 2048-bit or larger keys are supported';

const P384: KeyType = { kind: 'ec', curve: 'P-384' };
const P521: KeyType = { kind: 'ec', curve: 'P-521' };

/** The provider gateway did not load its certificate: it resets every handshake, as without a credential. */
function refusedAtProvider(t: ExecutionContext, r: Awaited<ReturnType<typeof probe>>, reason: string): void {
  t.is(r.status, '503');
  t.regex(r.body, /Connection reset by peer/);
  t.true(r.trace.some((h) => h.includes(`credentialName federation-server refused: ${reason}`)), r.trace.join('\n'));
  t.true(r.proxies.logOf('istio-federation-ingressgateway-7c9f2').includes(`rejected (federation-server): ${reason}`));
}

/** The egress gateway did not load its client certificate: it has no TLS context for the provider. */
function refusedAtConsumer(t: ExecutionContext, r: Awaited<ReturnType<typeof probe>>, reason: string): void {
  t.is(r.status, '503');
  t.regex(r.body, /TLS error: Secret is not supplied by SDS \(cluster2-federation-client\)/);
  t.true(r.trace.some((h) => h.includes(`credentialName cluster2-federation-client refused: ${reason}`)), r.trace.join('\n'));
  t.true(r.proxies.logOf('istio-federation-egressgateway-5d8c7').includes(`rejected (cluster2-federation-client): ${reason}`));
  t.false(r.proxies.logOf('istio-federation-ingressgateway-7c9f2').includes('GET /reviews/0'), 'nothing reached the provider');
}

/** Both certificates loaded, but the gateways share no signature algorithm for one of them: the handshake fails. */
function noCommonSignatureAlgorithm(t: ExecutionContext, r: Awaited<ReturnType<typeof probe>>, side: 'server' | 'client'): void {
  t.is(r.status, '503');
  t.false(r.trace.some((h) => h.includes(' refused: Failed to load')), r.trace.join('\n'));
  t.true(r.trace.some((h) => h.includes(`TLS handshake refused by the ${side}: NO_COMMON_SIGNATURE_ALGORITHMS`)), r.trace.join('\n'));
  t.regex(r.body, side === 'server' ? /SSLV3_ALERT_HANDSHAKE_FAILURE/ : /268435709:SSL routines:OPENSSL_internal:NO_COMMON_SIGNATURE_ALGORITHMS/);
  t.false(r.proxies.logOf('istio-federation-ingressgateway-7c9f2').includes('GET /reviews/0'), 'nothing reached the provider');
}

function carries(t: ExecutionContext, r: Awaited<ReturnType<typeof probe>>, what: string): void {
  t.is(r.status, '200', `${what}: ${r.body}\n${r.trace.join('\n')}`);
  t.false(r.trace.some((h) => h.includes('refused')), `${what}: ${r.trace.join('\n')}`);
}

test(`key types: a P-384 server certificate is refused by an Istio ${ISTIO_BEFORE_P384} provider gateway (Envoy 1.32: only P-256), carries the call from ${ISTIO_FROM_P384} (Envoy 1.33)`, async (t) => {
  refusedAtProvider(t, await probe(withServerKeyOn(ISTIO_BEFORE_P384, P384)), P256_ONLY);
  carries(t, await probe(withServerKeyOn(ISTIO_FROM_P384, P384)), `P-384 server certificate on ${ISTIO_FROM_P384}`);
});

test(`key types: a P-384 client certificate is refused by an Istio ${ISTIO_BEFORE_P384} consumer gateway, carries the call from ${ISTIO_FROM_P384}`, async (t) => {
  refusedAtConsumer(t, await probe(withClientKeyOn(ISTIO_BEFORE_P384, P384)), P256_ONLY);
  carries(t, await probe(withClientKeyOn(ISTIO_FROM_P384, P384)), `P-384 client certificate on ${ISTIO_FROM_P384}`);
});

test('key types: the seed scenario (Istio 1.18, Envoy 1.26) refuses P-384 on both sides', async (t) => {
  refusedAtProvider(t, await probe(faultyWorld('boundary/server-key-p384')), P256_ONLY);
  refusedAtConsumer(t, await probe(faultyWorld('boundary/client-key-p384')), P256_ONLY);
});

test(`key types: a P-521 certificate is not loaded before ${ISTIO_FROM_P384}; from it it loads, but no Envoy handshake takes it`, async (t) => {
  refusedAtProvider(t, await probe(withServerKeyOn(ISTIO_BEFORE_P384, P521)), P256_ONLY);
  refusedAtConsumer(t, await probe(withClientKeyOn(ISTIO_BEFORE_P384, P521)), P256_ONLY);
  noCommonSignatureAlgorithm(t, await probe(withServerKeyOn(ISTIO_FROM_P384, P521)), 'server');
  noCommonSignatureAlgorithm(t, await probe(withClientKeyOn(ISTIO_FROM_P384, P521)), 'client');
});

test(`key types: a P-224 certificate is refused on ${ISTIO_FROM_P384} with the message of Envoy 1.33 (P-256, P-384 or P-521)`, async (t) => {
  refusedAtProvider(t, await probe(withServerKeyOn(ISTIO_FROM_P384, { kind: 'ec', curve: 'P-224' })), NIST_CURVES);
  refusedAtConsumer(t, await probe(withClientKeyOn(ISTIO_FROM_P384, { kind: 'ec', curve: 'P-224' })), NIST_CURVES);
});

test('key types: an RSA-1024 server or client certificate is refused on Istio 1.9 and 1.30 alike (RSA below 2048 bits)', async (t) => {
  for (const version of ['1.9.1', '1.30.3']) {
    refusedAtProvider(t, await probe(withServerKeyOn(version, { kind: 'rsa', bits: 1024 })), RSA_2048);
    refusedAtConsumer(t, await probe(withClientKeyOn(version, { kind: 'rsa', bits: 1024 })), RSA_2048);
  }
  refusedAtProvider(t, await probe(faultyWorld('boundary/server-key-rsa1024')), RSA_2048);
  refusedAtConsumer(t, await probe(faultyWorld('boundary/client-key-rsa1024')), RSA_2048);
});

test('key types: an Ed25519 certificate loads (only FIPS builds refuse the key type) but no Envoy handshake takes it, on Istio 1.9 and 1.30', async (t) => {
  for (const version of ['1.9.1', '1.30.3']) {
    noCommonSignatureAlgorithm(t, await probe(withServerKeyOn(version, { kind: 'ed25519' })), 'server');
    noCommonSignatureAlgorithm(t, await probe(withClientKeyOn(version, { kind: 'ed25519' })), 'client');
  }
});

// From 1.11: the gateway HTTP authorization of Istio 1.9 and 1.10 sees no principal of a MUTUAL client certificate,
// so the seed scenario's policy denies there whatever the key (README, "Per Istio release").
test('key types: P-256, RSA-2048 and RSA-4096 server and client certificates carry the call on Istio 1.11 and 1.30 (no upper RSA limit)', async (t) => {
  for (const version of ['1.11.0', '1.30.3']) {
    for (const keyType of [{ kind: 'ec', curve: 'P-256' }, { kind: 'rsa', bits: 2048 }, { kind: 'rsa', bits: 4096 }] as KeyType[]) {
      carries(t, await probe(withServerKeyOn(version, keyType)), `${version} server ${JSON.stringify(keyType)}`);
      carries(t, await probe(withClientKeyOn(version, keyType)), `${version} client ${JSON.stringify(keyType)}`);
    }
  }
});
