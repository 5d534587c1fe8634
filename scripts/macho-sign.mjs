// Ad hoc code signing of a 64-bit little-endian Mach-O executable, as `codesign --sign -` (and Go's linker for
// darwin/arm64) does: an embedded signature that is a SuperBlob holding one CodeDirectory with the SHA-256 of every
// 4 KiB page of the file before the signature, no identity and no certificate. macOS on Apple silicon refuses to run
// unsigned code; an ad hoc signature is enough for a binary that is not downloaded by a browser (krew downloads
// with its own client, so no quarantine attribute is set).
//
// The layout follows Apple's xnu osfmk/kern/cs_blobs.h (CS_SuperBlob, CS_CodeDirectory version 0x20400) and Go's
// cmd/internal/codesign, which signs every darwin/arm64 binary the Go toolchain links.
import { createHash } from 'node:crypto';

const MH_MAGIC_64 = 0xfeedfacf;
const LC_SEGMENT_64 = 0x19;
const LC_CODE_SIGNATURE = 0x1d;
const CSMAGIC_EMBEDDED_SIGNATURE = 0xfade0cc0;
const CSMAGIC_CODEDIRECTORY = 0xfade0c02;
const CSSLOT_CODEDIRECTORY = 0;
const CS_ADHOC = 0x2;
const CS_LINKER_SIGNED = 0x20000;
const CS_HASHTYPE_SHA256 = 2;
const CS_EXECSEG_MAIN_BINARY = 0x1;
const PAGE_BITS = 12;
const PAGE = 1 << PAGE_BITS;
const SUPERBLOB = 12;
const BLOB_INDEX = 8;
const CODE_DIRECTORY = 88;
const HASH = 32;

const align = (n, to) => Math.ceil(n / to) * to;

/** The header, the load commands, and the ones signing needs. */
function parse(buf) {
  if (buf.readUInt32LE(0) !== MH_MAGIC_64) throw new Error('not a 64-bit little-endian Mach-O file');
  const ncmds = buf.readUInt32LE(16);
  const sizeofcmds = buf.readUInt32LE(20);
  const commands = [];
  let offset = 32;
  for (let i = 0; i < ncmds; i++) {
    const cmd = buf.readUInt32LE(offset);
    const size = buf.readUInt32LE(offset + 4);
    const entry = { cmd, offset, size };
    if (cmd === LC_SEGMENT_64) {
      entry.name = buf.toString('latin1', offset + 8, offset + 24).replace(/\0+$/, '');
      entry.fileoff = Number(buf.readBigUInt64LE(offset + 40));
      entry.filesize = Number(buf.readBigUInt64LE(offset + 48));
      const nsects = buf.readUInt32LE(offset + 64);
      entry.firstSectionOffset = Infinity;
      for (let s = 0; s < nsects; s++) {
        const sect = offset + 72 + s * 80;
        const fileOffset = buf.readUInt32LE(sect + 48);
        const type = buf.readUInt32LE(sect + 64) & 0xff;
        // Zero-fill sections (S_ZEROFILL 1, S_GB_ZEROFILL 12, S_THREAD_LOCAL_ZEROFILL 18) occupy no file space.
        if (fileOffset > 0 && ![1, 12, 18].includes(type)) entry.firstSectionOffset = Math.min(entry.firstSectionOffset, fileOffset);
      }
    }
    commands.push(entry);
    offset += size;
  }
  const find = (name) => commands.find((c) => c.cmd === LC_SEGMENT_64 && c.name === name);
  const text = find('__TEXT');
  const linkedit = find('__LINKEDIT');
  if (!text || !linkedit) throw new Error('Mach-O file without __TEXT or __LINKEDIT');
  const last = commands.filter((c) => c.cmd === LC_SEGMENT_64).reduce((a, b) => (b.fileoff > a.fileoff ? b : a));
  if (last !== linkedit) throw new Error(`__LINKEDIT is not the last segment in the file (${last.name} is): cannot place a signature`);
  return { ncmds, sizeofcmds, commands, text, linkedit, signature: commands.find((c) => c.cmd === LC_CODE_SIGNATURE) };
}

function setLinkeditSize(buf, linkedit, filesize) {
  buf.writeBigUInt64LE(BigInt(filesize), linkedit.offset + 48);
  // vmsize covers the file contents, in 16 KiB pages (arm64's page; a multiple of x86_64's).
  buf.writeBigUInt64LE(BigInt(align(filesize, 0x4000)), linkedit.offset + 32);
}

/** The file without its code signature (as `codesign --remove-signature`): the signature's load command and bytes go. */
export function removeSignature(input) {
  const buf = Buffer.from(input);
  const { ncmds, sizeofcmds, linkedit, signature } = parse(buf);
  if (!signature) return buf;
  const dataoff = buf.readUInt32LE(signature.offset + 8);
  const datasize = buf.readUInt32LE(signature.offset + 12);
  if (align(dataoff + datasize, 16) < buf.length) throw new Error('the code signature is not at the end of the file');
  const end = 32 + sizeofcmds;
  buf.copy(buf, signature.offset, signature.offset + signature.size, end);
  buf.fill(0, end - signature.size, end);
  buf.writeUInt32LE(ncmds - 1, 16);
  buf.writeUInt32LE(sizeofcmds - signature.size, 20);
  setLinkeditSize(buf, linkedit, dataoff - linkedit.fileoff);
  return buf.subarray(0, dataoff);
}

/** The file signed ad hoc with `identifier`; an existing signature is replaced. */
export function adHocSign(input, identifier) {
  let buf = removeSignature(input);
  let { ncmds, sizeofcmds, commands, text, linkedit } = parse(buf);
  // The new LC_CODE_SIGNATURE goes after the last load command, in the padding before the first section's bytes.
  const end = 32 + sizeofcmds;
  const firstData = Math.min(...commands.filter((c) => c.cmd === LC_SEGMENT_64).map((c) => c.firstSectionOffset));
  if (end + 16 > firstData) throw new Error('no room in the Mach-O header for a code signature load command');
  const codeSize = align(buf.length, 16);
  const id = Buffer.from(`${identifier}\0`, 'utf8');
  const pages = Math.ceil(codeSize / PAGE);
  const hashOffset = CODE_DIRECTORY + id.length;
  const cdSize = hashOffset + pages * HASH;
  const size = SUPERBLOB + BLOB_INDEX + cdSize;

  buf = Buffer.concat([buf, Buffer.alloc(codeSize - buf.length)]);
  buf.writeUInt32LE(LC_CODE_SIGNATURE, end);
  buf.writeUInt32LE(16, end + 4);
  buf.writeUInt32LE(codeSize, end + 8);
  buf.writeUInt32LE(size, end + 12);
  buf.writeUInt32LE(ncmds + 1, 16);
  buf.writeUInt32LE(sizeofcmds + 16, 20);
  setLinkeditSize(buf, linkedit, codeSize + size - linkedit.fileoff);

  const sig = Buffer.alloc(size);
  sig.writeUInt32BE(CSMAGIC_EMBEDDED_SIGNATURE, 0);
  sig.writeUInt32BE(size, 4);
  sig.writeUInt32BE(1, 8);
  sig.writeUInt32BE(CSSLOT_CODEDIRECTORY, 12);
  sig.writeUInt32BE(SUPERBLOB + BLOB_INDEX, 16);
  const cd = SUPERBLOB + BLOB_INDEX;
  sig.writeUInt32BE(CSMAGIC_CODEDIRECTORY, cd);
  sig.writeUInt32BE(cdSize, cd + 4);
  sig.writeUInt32BE(0x20400, cd + 8); // version: with execSeg fields
  sig.writeUInt32BE(CS_ADHOC | CS_LINKER_SIGNED, cd + 12);
  sig.writeUInt32BE(hashOffset, cd + 16);
  sig.writeUInt32BE(CODE_DIRECTORY, cd + 20); // identOffset
  sig.writeUInt32BE(0, cd + 24); // nSpecialSlots
  sig.writeUInt32BE(pages, cd + 28);
  sig.writeUInt32BE(codeSize, cd + 32); // codeLimit
  sig.writeUInt8(HASH, cd + 36);
  sig.writeUInt8(CS_HASHTYPE_SHA256, cd + 37);
  sig.writeUInt8(PAGE_BITS, cd + 39);
  // +40 spare2, +44 scatterOffset, +48 teamOffset, +52 spare3, +56 codeLimit64: zero
  sig.writeBigUInt64BE(BigInt(text.fileoff), cd + 64); // execSegBase
  sig.writeBigUInt64BE(BigInt(text.filesize), cd + 72); // execSegLimit
  sig.writeBigUInt64BE(BigInt(CS_EXECSEG_MAIN_BINARY), cd + 80);
  id.copy(sig, cd + CODE_DIRECTORY);
  for (let page = 0; page < pages; page++) {
    const start = page * PAGE;
    createHash('sha256').update(buf.subarray(start, Math.min(start + PAGE, codeSize))).digest().copy(sig, cd + hashOffset + page * HASH);
  }
  return Buffer.concat([buf, sig]);
}

/** What a signed file's signature says, for tests: the CodeDirectory's fields and whether every page hash matches. */
export function readSignature(buf) {
  const { signature } = parse(buf);
  if (!signature) return undefined;
  const dataoff = buf.readUInt32LE(signature.offset + 8);
  const cd = dataoff + buf.readUInt32BE(dataoff + 16);
  const flags = buf.readUInt32BE(cd + 12);
  const hashOffset = buf.readUInt32BE(cd + 16);
  const identOffset = buf.readUInt32BE(cd + 20);
  const pages = buf.readUInt32BE(cd + 28);
  const codeLimit = buf.readUInt32BE(cd + 32);
  let pagesMatch = codeLimit === dataoff;
  for (let page = 0; page < pages && pagesMatch; page++) {
    const start = page * PAGE;
    const hash = createHash('sha256').update(buf.subarray(start, Math.min(start + PAGE, codeLimit))).digest();
    pagesMatch = hash.equals(buf.subarray(cd + hashOffset + page * HASH, cd + hashOffset + (page + 1) * HASH));
  }
  return {
    magic: buf.readUInt32BE(dataoff),
    identifier: buf.toString('utf8', cd + identOffset, buf.indexOf(0, cd + identOffset)),
    adhoc: (flags & CS_ADHOC) !== 0,
    hashType: buf.readUInt8(cd + 37),
    pages,
    pagesMatch,
  };
}
