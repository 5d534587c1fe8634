/**
 * Raised for any certificate, key or request that cannot be used: malformed PEM, a forged signature,
 * a name outside what the federation allows, a CA that cannot sign. The message names what is wrong
 * and never contains private key material.
 */
export class PkiError extends Error {
  override name = 'PkiError';
}
