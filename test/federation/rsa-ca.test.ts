// A federation made before meshfed's keys became ECDSA P-256: its federation CA is RSA 2048 (the Secret as the earlier
// code made it, see rsaFederationCA). It keeps working — the RSA CA keeps signing (sha256WithRSAEncryption) the new
// ECDSA gateway keys, exchange files verify — and a CA rotation moves it to an ECDSA CA, both trusted during the
// overlap, with real TLS handshakes (node:tls, OpenSSL) between the gateways' certificates at each step.
import test from 'ava';
import { createPrivateKey, X509Certificate } from 'node:crypto';
import {
  admitImportRequest, bundleCredentials, createImportRequest, directCredentials, names, noteClientRenewal, parseExportBundle,
  parseImportRequest, pendingRequestOf, planAdmission, planExport, planImport, planProviderRotation, readSecret,
  serializeDocument, type ClusterPlan, type ConsumerSnapshot, type ExportSpec, type KubeObject, type ProviderSnapshot,
} from '../../src/federation/index.js';
import { verifyCertificateChain } from '../../src/pki/index.js';
import { handshake } from '../support/mesh/tls.js';
import { DAY, rsaFederationCA, signatureAlgorithm } from '../pki/helpers.js';
import { applyPlan } from './scenario.js';

// Real handshakes check validity against the clock: the plans are made now.
const now = new Date();
const ECDSA_WITH_SHA256 = '1.2.840.10045.4.3.2';
const SHA256_WITH_RSA = '1.2.840.113549.1.1.11';
const legacy = rsaFederationCA('prod', new Date(now.getTime() - 400 * DAY));

const spec: ExportSpec = { providerClusterId: 'prod', namespace: 'shop', service: 'api', port: { number: 8080 } };
const ref = { providerClusterId: 'prod', namespace: 'shop', exportName: 'api' };
const gatewaySpiffeId = 'spiffe://ops.local/ns/istio-meshfed/sa/meshfed-egress';

function bare(existing: KubeObject[] = []): ProviderSnapshot {
  return {
    clusterId: 'prod', istioVersion: '1.22.3', trustDomain: 'prod.local', gatewayAddress: '192.0.2.10',
    services: [{ name: 'api', namespace: 'shop', selector: { app: 'api' }, ports: [{ name: 'http', port: 8080, targetPort: 8080 }] }],
    pods: [{ name: 'api-1', namespace: 'shop', labels: { app: 'api' }, ready: true, serviceAccount: 'api', sidecar: true }],
    existing,
  };
}

const consumer = (): ConsumerSnapshot => ({
  clusterId: 'ops', istioVersion: '1.22.3', trustDomain: 'ops.local',
  services: [{ name: 'api', namespace: 'apps', selector: { app: 'api' }, ports: [{ name: 'http', port: 8080 }] }], existing: [],
});

const secretIn = (plan: ClusterPlan | KubeObject[], name: string) => readSecret((Array.isArray(plan) ? plan : plan.objects).find((o) => o.kind === 'Secret' && o.metadata.name === name));
const keyKind = (pem: string) => createPrivateKey(pem).asymmetricKeyDetails?.namedCurve ?? createPrivateKey(pem).asymmetricKeyType;
const count = (bundle: string) => (bundle.match(/BEGIN CERTIFICATE/g) ?? []).length;

/** A provider whose CA Secret holds the RSA CA: the Secret a first export writes, with the earlier version's CA in it. */
function legacyProvider(): ProviderSnapshot {
  const made = planExport(bare(), spec, { now }).objects.find((o) => o.kind === 'Secret' && o.metadata.name === 'meshfed-federation-ca')!;
  const data = { ...(made.data as Record<string, string>), 'ca.crt': Buffer.from(legacy.certificatePem).toString('base64'), 'ca.key': Buffer.from(legacy.privateKeyPem).toString('base64') };
  return bare([{ ...structuredClone(made), data }]);
}

/** One mutual-TLS handshake between the provider gateway's Secret and the consumer's credentials, with the export's SNI. */
async function gatewaysShake(server: Record<string, string>, client: Record<string, string>) {
  return handshake(
    { servername: 'api.shop.prod.export.meshfed.internal', certChain: client['tls.crt']!, key: client['tls.key']!, ca: client['ca.crt']!, verifyHostname: 'api.shop.prod.export.meshfed.internal' },
    { certChain: server['tls.crt']!, key: server['tls.key']!, clientCa: server['ca.crt']!, requireClientCert: true },
  );
}

test('an RSA federation CA is kept: it signs the new ECDSA gateway keys with sha256WithRSAEncryption, and exchange files verify', async (t) => {
  let p = legacyProvider();
  const exported = planExport(p, spec, { now });
  t.is(exported.federationCaPem, legacy.certificatePem, 'the existing CA is kept');
  t.is(secretIn(exported, 'meshfed-federation-ca')!['ca.key'], legacy.privateKeyPem);
  const server = secretIn(exported, names.export('shop', 'api'))!;
  t.is(keyKind(server['tls.key']!), 'prime256v1');
  t.is(signatureAlgorithm(server['tls.crt']!).oid, SHA256_WITH_RSA);
  t.deepEqual(verifyCertificateChain(server['tls.crt']!, [legacy.certificatePem], now), { ok: true });
  p = applyPlan(p, exported);

  // The exchange: an ECDSA-signed import request, admitted by the RSA CA, whose bundle the consumer verifies.
  const { request, plan: requestPlan } = createImportRequest(consumer(), { consumerClusterId: 'ops', namespace: 'apps', export: ref }, { now });
  t.is(signatureAlgorithm(request.spec.csr).oid, ECDSA_WITH_SHA256);
  const c = applyPlan(consumer(), requestPlan);
  const { bundle, plan: admission } = admitImportRequest(p, parseImportRequest(serializeDocument(request), { now }), { now });
  p = applyPlan(p, admission);
  const pending = pendingRequestOf(c, ref)!;
  const verified = parseExportBundle(serializeDocument(bundle), { now, expect: { nonce: pending.nonce, consumerClusterId: 'ops', privateKeyPem: pending.privateKeyPem }, trustedCaPem: legacy.certificatePem });
  t.is(signatureAlgorithm(verified.spec.clientCertificatePem!).oid, SHA256_WITH_RSA);
  const imported = planImport(c, { endpoint: bundle.spec.endpoint, credentials: bundleCredentials(verified, pending.privateKeyPem) }, { consumerClusterId: 'ops', namespace: 'apps' }, { now });
  const binding = secretIn(imported, names.binding('prod', 'shop', 'api'))!;
  t.is(keyKind(binding['tls.key']!), 'prime256v1');

  const shaken = await gatewaysShake(secretIn(p.existing, names.export('shop', 'api'))!, binding);
  t.true(shaken.ok, JSON.stringify(shaken));
});

test('rotating an RSA federation CA moves to an ECDSA CA, both trusted during the overlap, with handshakes at every step', async (t) => {
  let p = legacyProvider();
  p = applyPlan(p, planExport(p, { ...spec, consumers: [{ clusterId: 'ops', gatewaySpiffeId }] }, { now }));
  const credentials = (provider: ProviderSnapshot) => {
    const admission = planAdmission(provider, { namespace: 'shop', exportName: 'api', consumer: { clusterId: 'ops', gatewaySpiffeId } }, { now });
    const issued = directCredentials(consumer(), admission, { consumerClusterId: 'ops', spiffeId: gatewaySpiffeId, endpoint: admission.endpoint! }, { renew: true, now });
    return { admission, client: { 'tls.crt': issued.certificatePem, 'tls.key': issued.privateKeyPem, 'ca.crt': issued.caCertificatePem } };
  };
  const before = credentials(p).client;
  t.is(signatureAlgorithm(before['tls.crt']).oid, SHA256_WITH_RSA);
  t.true((await gatewaysShake(secretIn(p.existing, names.export('shop', 'api'))!, before)).ok);

  const start = planProviderRotation(p, { servers: false, ca: 'start', now });
  const caSecret = secretIn(start, 'meshfed-federation-ca')!;
  t.is(caSecret['ca.crt'], legacy.certificatePem, 'the RSA CA stays current during the overlap');
  const next = new X509Certificate(caSecret['next.crt']!);
  t.is(next.publicKey.asymmetricKeyType, 'ec');
  t.is(next.publicKey.asymmetricKeyDetails?.namedCurve, 'prime256v1');
  t.is(signatureAlgorithm(caSecret['next.crt']!).oid, ECDSA_WITH_SHA256);
  p = applyPlan(p, start);
  const server = secretIn(p.existing, names.export('shop', 'api'))!;
  t.is(count(server['ca.crt']!), 2, 'the gateway trusts both CAs');
  t.is(signatureAlgorithm(server['tls.crt']!).oid, SHA256_WITH_RSA, 'the server certificate is still the RSA CA\'s');

  // Overlap: a consumer still on its RSA-signed certificate, and one renewed under the ECDSA CA, both get through.
  t.true((await gatewaysShake(server, before)).ok, 'a consumer not renewed yet');
  const { admission, client: during } = credentials(p);
  t.is(signatureAlgorithm(during['tls.crt']).oid, ECDSA_WITH_SHA256, 'the next CA signs client certificates');
  t.is(count(during['ca.crt']), 2, 'the consumer trusts both CAs');
  t.true((await gatewaysShake(server, during)).ok, 'a renewed consumer');
  noteClientRenewal(admission, 'ops');
  p = applyPlan(p, admission);

  const finish = planProviderRotation(p, { servers: false, ca: 'finish', now });
  t.deepEqual(finish.notRenewed, []);
  p = applyPlan(p, finish);
  const after = secretIn(p.existing, names.export('shop', 'api'))!;
  t.is(after['ca.crt'], caSecret['next.crt'], 'only the ECDSA CA is trusted');
  t.is(signatureAlgorithm(after['tls.crt']!).oid, ECDSA_WITH_SHA256, 'the server certificate is re-issued by the ECDSA CA');
  t.is(keyKind(secretIn(p.existing, 'meshfed-federation-ca')!['ca.key']!), 'prime256v1');
  t.true((await gatewaysShake(after, { ...during, 'ca.crt': caSecret['next.crt']! })).ok, 'the renewed consumer after the finish');
  // A consumer left on its RSA-signed certificate (even trusting the new CA) is refused by the provider gateway.
  const refused = await gatewaysShake(after, { ...before, 'ca.crt': caSecret['next.crt']! });
  t.like(refused, { ok: false, side: 'server' });
});
