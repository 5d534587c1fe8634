/**
 * A request the federation core cannot plan: a missing or invalid value, an object that does not exist or
 * belongs to someone else. The message names the flag or object and says what to do; `flag` names the
 * command-line flag to point at, when one applies.
 */
export class FederationInputError extends Error {
  override name = 'FederationInputError';
  constructor(message: string, readonly flag?: string) {
    super(message);
  }
}

/** Why an exchange document (import request, export bundle) was refused. */
export type BundleErrorCode =
  | 'malformed'
  | 'unsupported-version'
  | 'bad-signature'
  | 'expired'
  | 'not-yet-valid'
  | 'foreign'
  | 'key-mismatch'
  | 'contains-private-key';

/** An import request or export bundle that must not be used; `code` says why. */
export class BundleError extends Error {
  override name = 'BundleError';
  constructor(readonly code: BundleErrorCode, message: string) {
    super(message);
  }
}
