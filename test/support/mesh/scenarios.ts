/**
 * The hand-written seed scenarios (test/fixtures/mesh/) as in-memory worlds, with the certificates they need
 * generated at load time: per-cluster `cacerts`, and for the boundary scenario a federation CA with the provider
 * gateway's server certificate and the consumer gateway's client certificate (as credentialName Secrets).
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { KubeObject } from '../emulator/runtime.js';
import { cacertsData, createIntermediateCA, createRootCA, issueCertificate } from './pki.js';
import type { CertificateAuthority } from './pki.js';
import { staticWorld } from './world.js';

/** Directory of the hand-written mesh fixtures. */
export const MESH_FIXTURES = fileURLToPath(new URL('../../fixtures/mesh/', import.meta.url));

/** A Secret object with its data base64-encoded, as a cluster stores it. */
export function secret(namespace: string, name: string, data: Record<string, string>, type = 'Opaque'): KubeObject {
  return {
    apiVersion: 'v1', kind: 'Secret', metadata: { name, namespace }, type,
    data: Object.fromEntries(Object.entries(data).map(([k, v]) => [k, Buffer.from(v).toString('base64')])),
  };
}

/** The multi-document YAML of one fixture cluster. */
export function fixtureYaml(scenario: string, cluster: string): string {
  return readFileSync(`${MESH_FIXTURES}${scenario}/${cluster}.yaml`, 'utf8');
}

/** Certificates of the boundary scenario. */
export interface BoundaryPki {
  /** The consumer's and the provider's mesh CAs (distinct self-signed roots). */
  cluster1: CertificateAuthority;
  cluster2: CertificateAuthority;
  /** The provider's federation CA, which issued both gateway certificates. */
  federation: CertificateAuthority;
  server: CertificateAuthority;
  client: CertificateAuthority;
}

/** Federation host of the boundary scenario. */
export const BOUNDARY_HOST = 'reviews.bookinfo.svc.cluster2.global';
/** SPIFFE identity in the consumer gateway's federation client certificate. */
export const BOUNDARY_CLIENT_ID = 'spiffe://cluster1/ns/istio-meshfed/sa/istio-federation-egressgateway';

let boundaryPki: BoundaryPki | undefined;
export function getBoundaryPki(): BoundaryPki {
  if (!boundaryPki) {
    const federation = createRootCA('meshfed federation CA cluster2');
    boundaryPki = {
      cluster1: createRootCA('cluster1 mesh root'),
      cluster2: createRootCA('cluster2 mesh root'),
      federation,
      server: issueCertificate({ commonName: BOUNDARY_HOST, dnsNames: [BOUNDARY_HOST] }, federation),
      client: issueCertificate({ commonName: 'cluster1 egress', uris: [BOUNDARY_CLIENT_ID] }, federation),
    };
  }
  return boundaryPki;
}

/** The client credential Secret for the consumer's egress gateway (`tls.crt`, `tls.key`, `ca.crt`). */
export function clientCredential(client: { certChain: string; key: string }, ca: string): KubeObject {
  return secret('istio-meshfed', 'cluster2-federation-client', { 'tls.crt': client.certChain, 'tls.key': client.key, 'ca.crt': ca }, 'kubernetes.io/tls');
}

/** The seed blog scenario: cluster1 (consumer, sleep in default) and cluster2 (provider, reviews in bookinfo). */
export function boundaryWorld(): ReturnType<typeof staticWorld> {
  const pki = getBoundaryPki();
  const world = staticWorld({ cluster1: fixtureYaml('boundary', 'cluster1'), cluster2: fixtureYaml('boundary', 'cluster2') });
  world.add('cluster1', secret('istio-system', 'cacerts', cacertsData(pki.cluster1)));
  world.add('cluster2', secret('istio-system', 'cacerts', cacertsData(pki.cluster2)));
  world.add('cluster1', clientCredential(pki.client, pki.federation.cert));
  world.add('cluster2', secret('istio-meshfed', 'federation-server', { 'tls.crt': pki.server.certChain, 'tls.key': pki.server.key, 'ca.crt': pki.federation.cert }, 'kubernetes.io/tls'));
  return world;
}

/** Certificates of the shared-root scenario: one root, an intermediate per cluster, and an unrelated root. */
export interface SharedRootPki {
  root: CertificateAuthority;
  operations: CertificateAuthority;
  production: CertificateAuthority;
  /** A self-signed root of its own, for the "meshes do not actually share a root" fault. */
  other: CertificateAuthority;
}

let sharedPki: SharedRootPki | undefined;
export function getSharedRootPki(): SharedRootPki {
  if (!sharedPki) {
    const root = createRootCA('NRC shared root');
    sharedPki = {
      root,
      operations: createIntermediateCA('operations intermediate', root),
      production: createIntermediateCA('production intermediate', root),
      other: createRootCA('operations self-signed root'),
    };
  }
  return sharedPki;
}

/** The seed question's scenario: operations (consumer, vault) and production (provider, postgres). */
export function sharedRootWorld(): ReturnType<typeof staticWorld> {
  const pki = getSharedRootPki();
  const world = staticWorld({ operations: fixtureYaml('shared-root', 'operations'), production: fixtureYaml('shared-root', 'production') });
  world.add('operations', secret('istio-system', 'cacerts', cacertsData(pki.operations)));
  world.add('production', secret('istio-system', 'cacerts', cacertsData(pki.production)));
  return world;
}

/** The probe's TCP check for postgres: send an SSLRequest and require the server's one-byte answer. */
export const POSTGRES_CHECK = "printf '\\000\\000\\000\\010\\004\\322\\026\\057' | nc -w 3 postgres.vault 5432 | grep -q N && echo postgres answered || { echo no answer from postgres; exit 1; }";
