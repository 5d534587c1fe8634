// Types of macho-sign.mjs for the tests that import it.
export function removeSignature(input: Buffer): Buffer;
export function adHocSign(input: Buffer, identifier: string): Buffer;
export function readSignature(buf: Buffer): { magic: number; identifier: string; adhoc: boolean; hashType: number; pages: number; pagesMatch: boolean } | undefined;
