/**
 * The Istio data-path model for the emulated clusters. The emulator's sandbox imports {@link meshRuntimes};
 * tests use {@link simulateCurl} and {@link staticWorld} directly. See README.md for what is modelled.
 */
export { meshRuntimes, simulateCurl, clientArgv, ProxyTable, ConfigPushes, UNMODELLED_EXIT_CODE } from './runtime.js';
export type { MeshOptions, PodRef } from './runtime.js';
export { staticWorld, UnmodelledFeatureError, meshSettings } from './world.js';
export { runCurl, CURL_VERSION } from './curl.js';
export type { ClientEnv, ProgramResult } from './curl.js';
export { Shell, netcat, MAX_LOOP_ITERATIONS } from './shell.js';
export { clientConnect, resolveName } from './datapath.js';
export type { PathContext, ProxyRegistry, Failure, HopResult } from './datapath.js';
export { POSTGRES_SSL_REQUEST } from './apps.js';
export {
  createRootCA, createIntermediateCA, issueCertificate, cacertsData, workloadCertificate, spiffeId,
} from './pki.js';
export type { CertificateAuthority, KeyPair, IssueOptions } from './pki.js';
export { handshake } from './tls.js';
