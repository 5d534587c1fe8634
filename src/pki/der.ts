// The small part of ASN.1 DER that X.509 certificates and PKCS#10 requests need: encoding the structures meshfed
// signs (node:crypto signs the bytes) and reading the fields node:crypto's X509Certificate does not expose (key
// usage bits, path length, names as attribute lists, request contents). Tag numbers above 30 and indefinite lengths
// do not occur in DER certificates and are refused.

/** Universal tags used here. */
export const TAG = {
  boolean: 0x01, integer: 0x02, bitString: 0x03, octetString: 0x04, null: 0x05, oid: 0x06, utf8String: 0x0c,
  printableString: 0x13, teletexString: 0x14, ia5String: 0x16, utcTime: 0x17, generalizedTime: 0x18,
  universalString: 0x1c, bmpString: 0x1e, sequence: 0x30, set: 0x31,
} as const;

/** Object identifiers meshfed writes or reads. */
export const OID = {
  rsaEncryption: '1.2.840.113549.1.1.1',
  sha256WithRSAEncryption: '1.2.840.113549.1.1.11',
  ecPublicKey: '1.2.840.10045.2.1',
  prime256v1: '1.2.840.10045.3.1.7',
  ecdsaWithSHA256: '1.2.840.10045.4.3.2',
  extensionRequest: '1.2.840.113549.1.9.14',
  commonName: '2.5.4.3',
  organizationName: '2.5.4.10',
  subjectKeyIdentifier: '2.5.29.14',
  keyUsage: '2.5.29.15',
  subjectAltName: '2.5.29.17',
  basicConstraints: '2.5.29.19',
  authorityKeyIdentifier: '2.5.29.35',
  extKeyUsage: '2.5.29.37',
  serverAuth: '1.3.6.1.5.5.7.3.1',
  clientAuth: '1.3.6.1.5.5.7.3.2',
} as const;

function length(n: number): Buffer {
  if (n < 0x80) return Buffer.from([n]);
  const bytes: number[] = [];
  for (let rest = n; rest > 0; rest = Math.floor(rest / 256)) bytes.unshift(rest & 0xff);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}

/** One TLV: `tag` is the whole identifier octet (class, constructed bit and number). */
export function tlv(tag: number, content: Uint8Array): Buffer {
  return Buffer.concat([Buffer.from([tag]), length(content.length), content]);
}

export const sequence = (...items: Uint8Array[]): Buffer => tlv(TAG.sequence, Buffer.concat(items));
export const set = (...items: Uint8Array[]): Buffer => tlv(TAG.set, Buffer.concat(items));
export const octetString = (bytes: Uint8Array): Buffer => tlv(TAG.octetString, bytes);
export const utf8String = (text: string): Buffer => tlv(TAG.utf8String, Buffer.from(text, 'utf8'));
export const ia5String = (text: string): Buffer => tlv(TAG.ia5String, Buffer.from(text, 'ascii'));
export const boolean = (value: boolean): Buffer => tlv(TAG.boolean, Buffer.from([value ? 0xff : 0]));
export const nullValue = (): Buffer => tlv(TAG.null, Buffer.alloc(0));
/** `[n] EXPLICIT`: a constructed context-specific wrapper. */
export const explicit = (n: number, ...items: Uint8Array[]): Buffer => tlv(0xa0 | n, Buffer.concat(items));
/** `[n] IMPLICIT` over a primitive value (GeneralName dNSName/URI, keyIdentifier). */
export const implicitPrimitive = (n: number, bytes: Uint8Array): Buffer => tlv(0x80 | n, bytes);

/** An INTEGER from its unsigned big-endian magnitude (serial numbers) or a small non-negative number. */
export function integer(value: Uint8Array | number): Buffer {
  const hex = typeof value === 'number' ? value.toString(16) : '';
  let bytes = typeof value === 'number' ? Buffer.from(hex.length % 2 ? `0${hex}` : hex, 'hex') : Buffer.from(value);
  let start = 0;
  while (start < bytes.length - 1 && bytes[start] === 0) start += 1;
  bytes = bytes.subarray(start);
  if (bytes[0]! & 0x80) bytes = Buffer.concat([Buffer.from([0]), bytes]);
  return tlv(TAG.integer, bytes);
}

export function oid(dotted: string): Buffer {
  const arcs = dotted.split('.').map(Number);
  const bytes = [40 * arcs[0]! + arcs[1]!];
  for (const arc of arcs.slice(2)) {
    const chunk = [arc & 0x7f];
    for (let rest = Math.floor(arc / 128); rest > 0; rest = Math.floor(rest / 128)) chunk.unshift(0x80 | (rest & 0x7f));
    bytes.push(...chunk);
  }
  return tlv(TAG.oid, Buffer.from(bytes));
}

/** A BIT STRING of whole bytes (signatures, keys). */
export const bitString = (bytes: Uint8Array): Buffer => tlv(TAG.bitString, Buffer.concat([Buffer.from([0]), bytes]));

/** A named-bit BIT STRING (keyUsage): bit 0 is the most significant bit; trailing zero bits are dropped, as DER wants. */
export function namedBits(bits: number[]): Buffer {
  const highest = Math.max(...bits);
  const bytes = Buffer.alloc(Math.floor(highest / 8) + 1);
  for (const bit of bits) bytes[Math.floor(bit / 8)]! |= 0x80 >> (bit % 8);
  return tlv(TAG.bitString, Buffer.concat([Buffer.from([7 - (highest % 8)]), bytes]));
}

/** UTCTime through 2049, GeneralizedTime after (RFC 5280 4.1.2.5), to the second. */
export function time(date: Date): Buffer {
  const iso = date.toISOString();
  const digits = `${iso.slice(0, 4)}${iso.slice(5, 7)}${iso.slice(8, 10)}${iso.slice(11, 13)}${iso.slice(14, 16)}${iso.slice(17, 19)}Z`;
  const year = date.getUTCFullYear();
  return year >= 1950 && year < 2050 ? tlv(TAG.utcTime, Buffer.from(digits.slice(2), 'ascii')) : tlv(TAG.generalizedTime, Buffer.from(digits, 'ascii'));
}

/** AlgorithmIdentifier of sha256WithRSAEncryption (parameters NULL, as RFC 4055 requires). */
export const sha256WithRsa = (): Buffer => sequence(oid(OID.sha256WithRSAEncryption), nullValue());
/** AlgorithmIdentifier of ecdsa-with-SHA256: the parameters field is absent (RFC 5758 3.2), not NULL. */
export const ecdsaWithSha256 = (): Buffer => sequence(oid(OID.ecdsaWithSHA256));

/** An X.509 Name of UTF8String attributes (RFC 5280 4.1.2.4), one per RDN, in the given (DER) order. */
export function name(attributes: Array<[type: string, value: string]>): Buffer {
  return sequence(...attributes.map(([type, value]) => set(sequence(oid(type), utf8String(value)))));
}

/** One X.509 Extension; `critical` is written only when true (DEFAULT FALSE). */
export function extension(id: string, critical: boolean, value: Buffer): Buffer {
  return sequence(oid(id), ...(critical ? [boolean(true)] : []), octetString(value));
}

/** One decoded TLV. */
export interface Node {
  /** The identifier octet. */
  tag: number;
  /** Content octets. */
  content: Buffer;
  /** The whole encoding, identifier to end. */
  raw: Buffer;
  /** Decoded children of a constructed node; empty for primitives. */
  children: Node[];
}

/** Thrown for malformed DER; callers turn it into a message about the object they were reading. */
export class DerError extends Error {}

function readNode(buffer: Buffer, offset: number): Node {
  if (offset + 2 > buffer.length) throw new DerError('truncated');
  const tag = buffer[offset]!;
  if ((tag & 0x1f) === 0x1f) throw new DerError('long-form tag');
  let size = buffer[offset + 1]!;
  let header = 2;
  if (size & 0x80) {
    const count = size & 0x7f;
    if (count === 0 || count > 4 || offset + 2 + count > buffer.length) throw new DerError('bad length');
    size = 0;
    for (let i = 0; i < count; i++) size = size * 256 + buffer[offset + 2 + i]!;
    header += count;
  }
  const end = offset + header + size;
  if (end > buffer.length) throw new DerError('truncated');
  const content = buffer.subarray(offset + header, end);
  const children: Node[] = [];
  if (tag & 0x20) {
    for (let at = 0; at < content.length;) {
      const child = readNode(content, at);
      children.push(child);
      at += child.raw.length;
    }
  }
  return { tag, content, raw: buffer.subarray(offset, end), children };
}

/** Decodes one complete DER value. @throws DerError when it is malformed or followed by other bytes */
export function decode(der: Uint8Array): Node {
  const buffer = Buffer.from(der.buffer, der.byteOffset, der.byteLength);
  const node = readNode(buffer, 0);
  if (node.raw.length !== buffer.length) throw new DerError('trailing bytes');
  return node;
}

/** The child at `index`, which must have `tag`. @throws DerError otherwise */
export function child(node: Node, index: number, tag?: number): Node {
  const found = node.children[index];
  if (!found || (tag !== undefined && found.tag !== tag)) throw new DerError(`unexpected structure at ${index}`);
  return found;
}

export function readOid(node: Node): string {
  if (node.tag !== TAG.oid || node.content.length === 0) throw new DerError('not an OBJECT IDENTIFIER');
  const arcs: number[] = [];
  let value = 0;
  for (const byte of node.content) {
    value = value * 128 + (byte & 0x7f);
    if (!(byte & 0x80)) {
      arcs.push(value);
      value = 0;
    }
  }
  const first = Math.min(2, Math.floor(arcs[0]! / 40));
  return [first, arcs[0]! - 40 * first, ...arcs.slice(1)].join('.');
}

/** The text of a directory string (UTF8String, PrintableString, IA5String, BMPString…). */
export function readString(node: Node): string {
  if (node.tag === TAG.bmpString) return Buffer.from(node.content.subarray(0, node.content.length & ~1)).swap16().toString('utf16le');
  if (node.tag === TAG.universalString) {
    return [...Array(node.content.length / 4).keys()].map((i) => String.fromCodePoint(node.content.readUInt32BE(i * 4))).join('');
  }
  return node.tag === TAG.teletexString ? node.content.toString('latin1') : node.content.toString('utf8');
}

export function readTime(node: Node): Date {
  const text = node.content.toString('ascii');
  const match = /^(\d{2}|\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})?Z$/.exec(text);
  if (!match || (node.tag !== TAG.utcTime && node.tag !== TAG.generalizedTime)) throw new DerError('not a UTC time');
  let year = Number(match[1]);
  if (match[1]!.length === 2) year += year >= 50 ? 1900 : 2000;
  return new Date(Date.UTC(year, Number(match[2]) - 1, Number(match[3]), Number(match[4]), Number(match[5]), Number(match[6] ?? 0)));
}

/** Set bit numbers of a named-bit BIT STRING (keyUsage). */
export function readNamedBits(node: Node): number[] {
  if (node.tag !== TAG.bitString || node.content.length === 0) throw new DerError('not a BIT STRING');
  const bits: number[] = [];
  node.content.subarray(1).forEach((byte, i) => {
    for (let bit = 0; bit < 8; bit++) if (byte & (0x80 >> bit)) bits.push(i * 8 + bit);
  });
  return bits;
}

/** The bytes of a BIT STRING of whole bytes (signatures, public keys). */
export function readBitStringBytes(node: Node): Buffer {
  if (node.tag !== TAG.bitString || node.content[0] !== 0) throw new DerError('not a BIT STRING of whole bytes');
  return node.content.subarray(1);
}

/** A DER value as PEM with the given label, 64 characters per line. */
export function toPem(label: string, der: Uint8Array): string {
  return `-----BEGIN ${label}-----\n${Buffer.from(der).toString('base64').match(/.{1,64}/g)!.join('\n')}\n-----END ${label}-----\n`;
}

/** The DER inside the first PEM block with the given label, or undefined when there is none. */
export function fromPem(pem: string, label: string | RegExp): Buffer | undefined {
  const name = typeof label === 'string' ? label.replace(/[.*+?^${}()|[\]\\]/g, '\\$&') : label.source;
  const match = new RegExp(`-----BEGIN (${name})-----([\\s\\S]*?)-----END \\1-----`).exec(pem);
  return match ? Buffer.from(match[2]!.replace(/\s+/g, ''), 'base64') : undefined;
}
