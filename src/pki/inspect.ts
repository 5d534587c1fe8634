import { X509Certificate } from 'node:crypto';
import forge from 'node-forge';
import { PkiError } from './errors.js';
import { colonHex, fingerprintPublicKey } from './keys.js';

/** What a user (or a check) wants to know about one certificate. */
export interface CertificateInfo {
  /** RFC 4514 string, most specific first: `CN=...,O=...` */
  subject: string;
  /** The subject's common name, when it has one. */
  commonName?: string;
  /** RFC 4514 string of the issuer. */
  issuer: string;
  /** Upper-case hex, as `openssl x509 -serial` prints it. */
  serialNumber: string;
  notBefore: Date;
  notAfter: Date;
  /** Whole days until notAfter, rounded down, relative to `now`; negative once expired. */
  daysLeft: number;
  dnsNames: string[];
  uris: string[];
  ipAddresses: string[];
  /** basicConstraints CA:TRUE */
  isCA: boolean;
  /** Path length constraint of a CA, when it has one. */
  pathLength?: number;
  /** e.g. `['digitalSignature','keyEncipherment']`, in the order of RFC 5280 */
  keyUsage: string[];
  /** e.g. `['serverAuth']`; unnamed purposes appear as their OID */
  extKeyUsage: string[];
  /** SHA-256 of the DER certificate, `AB:CD:...`, equal to `openssl x509 -fingerprint -sha256` */
  fingerprintSha256: string;
  /** SHA-256 of the DER SubjectPublicKeyInfo, `AB:CD:...`; equal for a key's CSR and certificate */
  publicKeyFingerprint: string;
}

const keyUsageBits = [
  'digitalSignature', 'nonRepudiation', 'keyEncipherment', 'dataEncipherment', 'keyAgreement',
  'keyCertSign', 'cRLSign', 'encipherOnly', 'decipherOnly',
] as const;

const pemBlock = /-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g;

/**
 * Splits a PEM bundle (a `ca.crt` with several CAs, a chain) into one PEM per certificate, in order.
 * Other blocks (keys, text between blocks) are ignored.
 * @returns an empty list when there is no certificate
 */
export function splitPemBundle(pem: string): string[] {
  return (pem.match(pemBlock) ?? []).map((block) => `${block}\n`);
}

const rfc4514Special = /[,+"\\<>;=]/g;

function escapeDnValue(value: string): string {
  let escaped = value.replace(rfc4514Special, (c) => `\\${c}`);
  if (escaped.startsWith(' ') || escaped.startsWith('#')) escaped = `\\${escaped}`;
  if (escaped.endsWith(' ') && escaped.length > 1) escaped = `${escaped.slice(0, -1)}\\ `;
  return escaped;
}

interface Rdn { key: string; value: string }

function readName(name: forge.asn1.Asn1): Rdn[] {
  const attributes = (forge.pki as unknown as { RDNAttributesAsArray(rdn: forge.asn1.Asn1): { type: string; shortName?: string; value: string }[] })
    .RDNAttributesAsArray(name);
  return attributes.map((a) => ({ key: a.shortName ?? a.type, value: String(a.value) }));
}

function formatName(rdns: Rdn[]): string {
  return [...rdns].reverse().map((r) => `${r.key}=${escapeDnValue(r.value)}`).join(',');
}

function readTime(node: forge.asn1.Asn1): Date {
  const text = node.value as string;
  return node.type === forge.asn1.Type.UTCTIME ? forge.asn1.utcTimeToDate(text) : forge.asn1.generalizedTimeToDate(text);
}

/** A certificate parsed once: Node's X509 object (any key type) plus the fields Node does not expose. */
export interface ParsedCertificate {
  x509: X509Certificate;
  subject: Rdn[];
  issuer: Rdn[];
  notBefore: Date;
  notAfter: Date;
  extensions: Record<string, unknown>[];
}

/** Parses the first certificate of a PEM. @throws PkiError naming `what` when there is none or it is damaged */
export function parseCertificate(pem: string, what = 'the certificate'): ParsedCertificate {
  const first = splitPemBundle(pem)[0];
  if (first === undefined) throw new PkiError(`${what} contains no PEM certificate`);
  try {
    const x509 = new X509Certificate(first);
    const root = forge.asn1.fromDer(forge.util.createBuffer(x509.raw.toString('binary')));
    const tbs = (root.value as forge.asn1.Asn1[])[0]!.value as forge.asn1.Asn1[];
    const hasVersion = tbs[0]!.tagClass === forge.asn1.Class.CONTEXT_SPECIFIC && tbs[0]!.type === 0;
    const at = (i: number) => tbs[(hasVersion ? 1 : 0) + i]!;
    const validity = at(3).value as forge.asn1.Asn1[];
    const extensionsNode = tbs.find((n) => n.tagClass === forge.asn1.Class.CONTEXT_SPECIFIC && n.type === 3);
    const extensions = extensionsNode
      ? ((forge.pki as unknown as { certificateExtensionsFromAsn1(n: forge.asn1.Asn1): Record<string, unknown>[] })
        .certificateExtensionsFromAsn1(extensionsNode))
      : [];
    return {
      x509, subject: readName(at(4)), issuer: readName(at(2)),
      notBefore: readTime(validity[0]!), notAfter: readTime(validity[1]!), extensions,
    };
  } catch (error) {
    if (error instanceof PkiError) throw error;
    throw new PkiError(`${what} is not a readable X.509 certificate`);
  }
}

function extension(parsed: ParsedCertificate, name: string): Record<string, unknown> | undefined {
  return parsed.extensions.find((e) => e['name'] === name);
}

const extensionBookkeeping = new Set(['id', 'critical', 'value', 'name']);

function describe(parsed: ParsedCertificate, now: Date): CertificateInfo {
  const san = (extension(parsed, 'subjectAltName')?.['altNames'] ?? []) as { type: number; value: string; ip?: string }[];
  const keyUsage = extension(parsed, 'keyUsage');
  const extKeyUsage = extension(parsed, 'extKeyUsage');
  const basic = extension(parsed, 'basicConstraints');
  const commonName = parsed.subject.find((r) => r.key === 'CN')?.value;
  const pathLength = basic?.['pathLenConstraint'];
  return {
    subject: formatName(parsed.subject),
    ...(commonName === undefined ? {} : { commonName }),
    issuer: formatName(parsed.issuer),
    serialNumber: parsed.x509.serialNumber.toUpperCase(),
    notBefore: parsed.notBefore,
    notAfter: parsed.notAfter,
    daysLeft: Math.floor((parsed.notAfter.getTime() - now.getTime()) / 86_400_000),
    dnsNames: san.filter((n) => n.type === 2).map((n) => n.value),
    uris: san.filter((n) => n.type === 6).map((n) => n.value),
    ipAddresses: san.filter((n) => n.type === 7 && n.ip !== undefined).map((n) => n.ip!),
    isCA: basic?.['cA'] === true,
    ...(typeof pathLength === 'number' ? { pathLength } : {}),
    keyUsage: keyUsage ? keyUsageBits.filter((bit) => keyUsage[bit] === true) : [],
    extKeyUsage: extKeyUsage
      ? Object.keys(extKeyUsage).filter((k) => !extensionBookkeeping.has(k) && extKeyUsage[k] === true)
      : [],
    fingerprintSha256: colonHex(Buffer.from(parsed.x509.fingerprint256.replaceAll(':', ''), 'hex')),
    publicKeyFingerprint: fingerprintPublicKey(parsed.x509.publicKey),
  };
}

/**
 * Describes a certificate: names, validity, usages and fingerprints. Any key type (RSA, EC, Ed25519)
 * can be inspected, so a mesh root CA meshfed did not create can be compared too.
 * @param pem a PEM certificate; for a bundle, the first certificate is described
 * @param now reference time for `daysLeft` (default: the current time)
 * @throws PkiError when the PEM holds no readable certificate
 */
export function inspectCertificate(pem: string, now: Date = new Date()): CertificateInfo {
  return describe(parseCertificate(pem), now);
}

function validityProblem(parsed: ParsedCertificate, name: string, now: Date): string | undefined {
  if (now < parsed.notBefore) return `${name} is not valid before ${parsed.notBefore.toISOString()} (checked at ${now.toISOString()})`;
  if (now > parsed.notAfter) return `${name} expired on ${parsed.notAfter.toISOString()} (checked at ${now.toISOString()})`;
  return undefined;
}

/** Why `issuer` may not sign `child` at depth `intermediates`, or undefined when it may. */
function issuerProblem(issuer: ParsedCertificate, child: ParsedCertificate, intermediates: number, now: Date): string | undefined {
  const name = formatName(issuer.subject);
  if (!child.x509.verify(issuer.x509.publicKey)) {
    return `the signature of ${formatName(child.subject)} does not verify with the key of the trusted ${name} (a CA of that name with another key signed it: recreated, or another provider's)`;
  }
  const info = describe(issuer, now);
  if (!info.isCA) return `${name} signed ${formatName(child.subject)} but is not a CA (basicConstraints CA:FALSE or missing)`;
  if (extension(issuer, 'keyUsage') && !info.keyUsage.includes('keyCertSign')) return `${name} is not allowed to sign certificates (no keyCertSign key usage)`;
  if (info.pathLength !== undefined && intermediates > info.pathLength) return `${name} allows ${info.pathLength} intermediate CA(s) below it, the chain has ${intermediates}`;
  return validityProblem(issuer, `CA ${name}`, now);
}

/**
 * Does `certPem` chain to one of `trustedPems`? Checks each signature, every certificate's validity at
 * `now`, that issuers are CAs allowed to sign (basicConstraints, keyCertSign, path length), and ends at
 * a trusted certificate. Extra certificates after the first in `certPem` are used as untrusted
 * intermediates; each entry of `trustedPems` may itself be a bundle. A certificate that is itself in
 * `trustedPems` is accepted once its validity is checked. Host names and purposes are not checked here
 * (a TLS handshake does that).
 * @param now reference time (default: the current time)
 * @returns `{ ok: true }` or `{ ok: false, reason }` with a sentence naming the failing certificate
 */
export function verifyCertificateChain(certPem: string, trustedPems: string[], now: Date = new Date()): { ok: true } | { ok: false; reason: string } {
  let chain: ParsedCertificate[];
  let trusted: ParsedCertificate[];
  try {
    chain = splitPemBundle(certPem).map((pem) => parseCertificate(pem));
    trusted = trustedPems.flatMap(splitPemBundle).map((pem) => parseCertificate(pem, 'a trusted certificate'));
  } catch (error) {
    return { ok: false, reason: error instanceof PkiError ? error.message : String(error) };
  }
  const leaf = chain[0];
  if (leaf === undefined) return { ok: false, reason: 'the certificate contains no PEM certificate' };
  if (trusted.length === 0) return { ok: false, reason: 'no trusted CA certificate was given' };
  const leafProblem = validityProblem(leaf, formatName(leaf.subject), now);
  if (leafProblem) return { ok: false, reason: leafProblem };

  const untrusted = chain.slice(1);
  let current = leaf;
  for (let depth = 0; depth < 8; depth++) {
    if (trusted.some((t) => t.x509.fingerprint256 === current.x509.fingerprint256)) return { ok: true };
    const problems: string[] = [];
    const issuerName = formatName(current.issuer);
    for (const candidate of trusted) {
      // Name matches are examined too, so that a same-named CA with another key (recreated, or another
      // provider's) or a non-CA issuer gets a precise reason rather than "unknown issuer".
      if (formatName(candidate.subject) !== issuerName && !current.x509.checkIssued(candidate.x509)) continue;
      const problem = issuerProblem(candidate, current, depth, now);
      if (!problem) return { ok: true };
      problems.push(problem);
    }
    const next = untrusted.find((candidate) => current.x509.checkIssued(candidate.x509) && candidate !== current
      && issuerProblem(candidate, current, depth, now) === undefined);
    if (!next) {
      if (problems.length > 0) return { ok: false, reason: problems[0]! };
      return {
        ok: false,
        reason: `${formatName(current.subject)} was issued by ${formatName(current.issuer)}, which is not among the trusted CAs (${trusted.map((t) => formatName(t.subject)).join('; ')})`,
      };
    }
    current = next;
  }
  return { ok: false, reason: 'the certificate chain is longer than 8 certificates' };
}
