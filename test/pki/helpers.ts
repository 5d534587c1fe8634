// Shared certificates for the PKI tests: one provider CA (created three years ago so that certificates
// can be issued in the past and be expired today), an unrelated CA, and the gateway certificates; and a federation CA
// as earlier versions of meshfed made them (RSA).
import { createPublicKey, generateKeyPairSync, randomBytes, sign, type KeyObject } from 'node:crypto';
import {
  createCertificateRequest, createFederationCA, generateKeyPair, issueClientCertificate, issueServerCertificate,
  signClientCertificate,
} from '../../src/pki/index.js';
import type { CertificateAndKey } from '../../src/pki/index.js';
import * as der from '../../src/pki/der.js';
import { subjectKeyIdentifierOf } from '../../src/pki/inspect.js';

export const DAY = 86_400_000;
export const exportHosts = ['myreviews.bookinfo.cluster2.meshfed.internal', 'postgres.db.production.meshfed.internal'];
export const consumerSpiffeId = 'spiffe://meshfed.cluster1/ns/istio-meshfed/sa/meshfed-egress';

export interface World {
  ca: CertificateAndKey;
  otherCA: CertificateAndKey;
  server: CertificateAndKey;
  /** Signed from a CSR whose key never left the "consumer". */
  client: CertificateAndKey;
  clientFromOtherCA: CertificateAndKey;
  expiredClient: CertificateAndKey;
  expiredServer: CertificateAndKey;
}

let world: World | undefined;

export function getWorld(): World {
  if (world) return world;
  const threeYearsAgo = new Date(Date.now() - 3 * 365 * DAY);
  const fourHundredDaysAgo = new Date(Date.now() - 400 * DAY);
  const ca = createFederationCA({ provider: 'cluster2', now: threeYearsAgo });
  const otherCA = createFederationCA({ provider: 'cluster2' });
  const consumerKey = generateKeyPair();
  const csrPem = createCertificateRequest({ privateKeyPem: consumerKey.privateKeyPem, commonName: 'meshfed-egress.cluster1', spiffeId: consumerSpiffeId });
  world = {
    ca,
    otherCA,
    server: issueServerCertificate({ ca, hosts: exportHosts }),
    client: { certificatePem: signClientCertificate({ ca, csrPem, expectSpiffeId: consumerSpiffeId }), privateKeyPem: consumerKey.privateKeyPem },
    clientFromOtherCA: issueClientCertificate({ ca: otherCA, commonName: 'meshfed-egress.cluster1', spiffeId: consumerSpiffeId }),
    expiredClient: issueClientCertificate({ ca, commonName: 'meshfed-egress.cluster1', spiffeId: consumerSpiffeId, now: fourHundredDaysAgo }),
    expiredServer: issueServerCertificate({ ca, hosts: exportHosts, now: fourHundredDaysAgo }),
  };
  return world;
}

/**
 * A federation CA as meshfed made it before its keys became ECDSA P-256: an RSA 2048 key and a self-signature with
 * sha256WithRSAEncryption, otherwise the certificate createFederationCA makes (subject, 5 minutes of clock skew, 3650
 * days, basicConstraints CA:TRUE pathlen:0 and keyUsage keyCertSign+cRLSign, both critical, SKI = AKI), encoded as that
 * code did, with node:crypto and src/pki's DER writer.
 */
export function rsaFederationCA(provider: string, now = new Date()): CertificateAndKey {
  return federationCAWithKey(provider, generateKeyPairSync('rsa', { modulusLength: 2048, publicExponent: 0x10001 }).privateKey, now);
}

/** The same federation CA certificate with any key (SHA-256, ECDSA for an EC key), e.g. one meshfed must refuse. */
export function federationCAWithKey(provider: string, key: KeyObject, now = new Date()): CertificateAndKey {
  const algorithm = key.asymmetricKeyType === 'ec' ? der.ecdsaWithSha256() : der.sha256WithRsa();
  const spki = createPublicKey(key).export({ type: 'spki', format: 'der' });
  const name = der.name([[der.OID.organizationName, 'kubectl-meshfed'], [der.OID.commonName, `meshfed federation CA ${provider}`]]);
  const keyId = subjectKeyIdentifierOf(spki);
  const serial = randomBytes(16);
  serial[0] = (serial[0]! & 0x3f) | 0x40;
  const tbs = der.sequence(
    der.explicit(0, der.integer(2)),
    der.integer(serial),
    algorithm,
    name,
    der.sequence(der.time(new Date(now.getTime() - 5 * 60_000)), der.time(new Date(now.getTime() + 3650 * DAY))),
    name,
    spki,
    der.explicit(3, der.sequence(
      der.extension(der.OID.basicConstraints, true, der.sequence(der.boolean(true), der.integer(0))),
      der.extension(der.OID.keyUsage, true, der.namedBits([5, 6])),
      der.extension(der.OID.subjectKeyIdentifier, false, der.octetString(keyId)),
      der.extension(der.OID.authorityKeyIdentifier, false, der.sequence(der.implicitPrimitive(0, keyId))),
    )),
  );
  return {
    certificatePem: der.toPem('CERTIFICATE', der.sequence(tbs, algorithm, der.bitString(sign('sha256', tbs, key)))),
    privateKeyPem: key.export({ type: 'pkcs8', format: 'pem' }).toString(),
  };
}

/** The signature algorithm OID of a PEM certificate or CSR and whether its AlgorithmIdentifier has parameters. */
export function signatureAlgorithm(pem: string): { oid: string; parameters: boolean } {
  const root = der.decode(der.fromPem(pem, /CERTIFICATE|CERTIFICATE REQUEST/)!);
  const algorithm = der.child(root, 1, der.TAG.sequence);
  return { oid: der.readOid(der.child(algorithm, 0)), parameters: algorithm.children.length > 1 };
}
