import { createHash, X509Certificate } from 'node:crypto';
import * as der from './der.js';
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

/** Short names of the attribute types users meet in certificates (RFC 4514); others are shown by OID. */
const ATTRIBUTE_NAMES: Record<string, string> = {
  '2.5.4.3': 'CN', '2.5.4.6': 'C', '2.5.4.7': 'L', '2.5.4.8': 'ST', '2.5.4.10': 'O', '2.5.4.11': 'OU',
  '1.2.840.113549.1.9.1': 'E',
};

/** The attributes of a Name, in DER order (least specific first). */
export function readName(name: der.Node): Rdn[] {
  if (name.tag !== der.TAG.sequence) throw new der.DerError('not a Name');
  return name.children.flatMap((rdn) => rdn.children.map((attribute) => {
    const type = der.readOid(der.child(attribute, 0));
    return { key: ATTRIBUTE_NAMES[type] ?? type, value: der.readString(der.child(attribute, 1)) };
  }));
}

function formatName(rdns: Rdn[]): string {
  return [...rdns].reverse().map((r) => `${r.key}=${escapeDnValue(r.value)}`).join(',');
}

function formatIp(bytes: Buffer): string {
  if (bytes.length === 4) return [...bytes].join('.');
  const groups = Array.from({ length: bytes.length / 2 }, (_, i) => bytes.readUInt16BE(i * 2).toString(16));
  return groups.join(':').replace(/(^|:)0(:0)+(:|$)/, '::');
}

/**
 * GeneralNames (subjectAltName): `type` is the GeneralName choice (2 dNSName, 6 URI, 7 iPAddress, 1 rfc822Name);
 * `ip` is set for addresses.
 */
export function readGeneralNames(names: der.Node): Array<{ type: number; value: string; ip?: string }> {
  if (names.tag !== der.TAG.sequence) throw new der.DerError('not GeneralNames');
  return names.children.map((entry) => {
    const type = entry.tag & 0x1f;
    if (type === 7) return { type, value: entry.content.toString('latin1'), ip: formatIp(entry.content) };
    return { type, value: entry.tag & 0x20 ? '' : entry.content.toString('utf8') };
  });
}

/** The extensions meshfed reads, decoded; absent ones are undefined. */
interface Extensions {
  basicConstraints?: { isCA: boolean; pathLength?: number };
  /** Set bit numbers. */
  keyUsage?: number[];
  /** Purposes by OID. */
  extKeyUsage?: string[];
  altNames?: Array<{ type: number; value: string; ip?: string }>;
  subjectKeyIdentifier?: Buffer;
}

function readExtensions(node: der.Node | undefined): Extensions {
  const out: Extensions = {};
  for (const extension of node ? der.child(node, 0, der.TAG.sequence).children : []) {
    const id = der.readOid(der.child(extension, 0));
    const value = der.decode(der.child(extension, extension.children.length - 1, der.TAG.octetString).content);
    if (id === der.OID.basicConstraints) {
      const isCA = value.children[0]?.tag === der.TAG.boolean && value.children[0].content[0] !== 0;
      const length = value.children.find((c) => c.tag === der.TAG.integer);
      out.basicConstraints = { isCA, ...(length ? { pathLength: length.content.readUIntBE(0, Math.min(length.content.length, 6)) } : {}) };
    } else if (id === der.OID.keyUsage) {
      out.keyUsage = der.readNamedBits(value);
    } else if (id === der.OID.extKeyUsage) {
      out.extKeyUsage = value.children.map(der.readOid);
    } else if (id === der.OID.subjectAltName) {
      out.altNames = readGeneralNames(value);
    } else if (id === der.OID.subjectKeyIdentifier) {
      out.subjectKeyIdentifier = Buffer.from(value.content);
    }
  }
  return out;
}

/** A certificate parsed once: Node's X509 object (any key type) plus the fields Node does not expose. */
export interface ParsedCertificate {
  x509: X509Certificate;
  subject: Rdn[];
  issuer: Rdn[];
  /** The subject Name as encoded: the issuer of what this certificate signs. */
  subjectDer: Buffer;
  notBefore: Date;
  notAfter: Date;
  extensions: Extensions;
  subjectKeyIdentifier?: Buffer;
}

/** RFC 5280 4.2.1.2 method (1): SHA-1 of the subjectPublicKey bits of a DER SubjectPublicKeyInfo. */
export function subjectKeyIdentifierOf(spki: Buffer): Buffer {
  return createHash('sha1').update(der.readBitStringBytes(der.child(der.decode(spki), 1))).digest();
}

/** Parses the first certificate of a PEM. @throws PkiError naming `what` when there is none or it is damaged */
export function parseCertificate(pem: string, what = 'the certificate'): ParsedCertificate {
  const first = splitPemBundle(pem)[0];
  if (first === undefined) throw new PkiError(`${what} contains no PEM certificate`);
  try {
    const x509 = new X509Certificate(first);
    const tbs = der.child(der.decode(x509.raw), 0, der.TAG.sequence);
    const offset = tbs.children[0]?.tag === 0xa0 ? 1 : 0;
    const at = (i: number) => der.child(tbs, offset + i);
    const validity = at(3);
    const extensions = readExtensions(tbs.children.find((n) => n.tag === 0xa3));
    return {
      x509, subject: readName(at(4)), issuer: readName(at(2)), subjectDer: Buffer.from(at(4).raw),
      notBefore: der.readTime(der.child(validity, 0)), notAfter: der.readTime(der.child(validity, 1)), extensions,
      ...(extensions.subjectKeyIdentifier ? { subjectKeyIdentifier: extensions.subjectKeyIdentifier } : {}),
    };
  } catch (error) {
    if (error instanceof PkiError) throw error;
    throw new PkiError(`${what} is not a readable X.509 certificate`);
  }
}

/** Names of the extended key usages meshfed and users meet; others are shown by OID. */
const PURPOSE_NAMES: Record<string, string> = {
  [der.OID.serverAuth]: 'serverAuth', [der.OID.clientAuth]: 'clientAuth', '1.3.6.1.5.5.7.3.3': 'codeSigning',
  '1.3.6.1.5.5.7.3.4': 'emailProtection', '1.3.6.1.5.5.7.3.8': 'timeStamping',
};

/** {@link inspectCertificate} of a certificate already parsed. */
export function describeParsed(parsed: ParsedCertificate, now: Date): CertificateInfo {
  const { extensions } = parsed;
  const san = extensions.altNames ?? [];
  const commonName = parsed.subject.find((r) => r.key === 'CN')?.value;
  const pathLength = extensions.basicConstraints?.pathLength;
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
    isCA: extensions.basicConstraints?.isCA === true,
    ...(typeof pathLength === 'number' ? { pathLength } : {}),
    keyUsage: keyUsageBits.filter((_, bit) => extensions.keyUsage?.includes(bit)),
    extKeyUsage: (extensions.extKeyUsage ?? []).map((id) => PURPOSE_NAMES[id] ?? id),
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
  return describeParsed(parseCertificate(pem), now);
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
  const info = describeParsed(issuer, now);
  if (!info.isCA) return `${name} signed ${formatName(child.subject)} but is not a CA (basicConstraints CA:FALSE or missing)`;
  if (issuer.extensions.keyUsage && !info.keyUsage.includes('keyCertSign')) return `${name} is not allowed to sign certificates (no keyCertSign key usage)`;
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
