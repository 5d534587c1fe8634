// Shared certificates for the PKI tests: one provider CA (created three years ago so that certificates
// can be issued in the past and be expired today), an unrelated CA, and the gateway certificates.
import {
  createCertificateRequest, createFederationCA, generateKeyPair, issueClientCertificate, issueServerCertificate,
  signClientCertificate,
} from '../../src/pki/index.js';
import type { CertificateAndKey } from '../../src/pki/index.js';

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
