/** apimachinery `Status` errors as a kube-apiserver returns them. */

/** One `details.causes[]` entry. */
export interface StatusCause {
  reason?: string;
  message?: string;
  field?: string;
}

/** An error the API answers with a `Status` object and its HTTP code. */
export class ApiError extends Error {
  constructor(
    readonly code: number,
    readonly reason: string,
    message: string,
    readonly details?: { name?: string; group?: string; kind?: string; causes?: StatusCause[]; retryAfterSeconds?: number },
  ) {
    super(message);
  }

  /** The `Status` body. */
  toStatus(): Record<string, unknown> {
    const status: Record<string, unknown> = {
      kind: 'Status',
      apiVersion: 'v1',
      metadata: {},
      status: 'Failure',
      message: this.message,
      reason: this.reason,
      code: this.code,
    };
    if (this.details) status.details = this.details;
    return status;
  }
}

/** `kind.group` as the apiserver names a resource in messages ("deployments.apps", "pods"). */
export function qualifiedResource(plural: string, group: string): string {
  return group ? `${plural}.${group}` : plural;
}

/** 404 NotFound: `pods "x" not found`. */
export function notFound(plural: string, group: string, name: string): ApiError {
  return new ApiError(404, 'NotFound', `${qualifiedResource(plural, group)} "${name}" not found`, { name, group, kind: plural });
}

/** 409 AlreadyExists: `configmaps "x" already exists`. */
export function alreadyExists(plural: string, group: string, name: string): ApiError {
  return new ApiError(409, 'AlreadyExists', `${qualifiedResource(plural, group)} "${name}" already exists`, { name, group, kind: plural });
}

/** 409 Conflict: `Operation cannot be fulfilled on …: <why>` (stale resourceVersion). */
export function conflict(plural: string, group: string, name: string, why: string): ApiError {
  return new ApiError(409, 'Conflict', `Operation cannot be fulfilled on ${qualifiedResource(plural, group)} "${name}": ${why}`, { name, group, kind: plural });
}

/** 422 Invalid: `<Kind>.<group> "<name>" is invalid: <cause>` or `[<cause>, <cause>]` for several. */
export function invalid(kind: string, group: string, name: string, causes: StatusCause[]): ApiError {
  const texts = causes.map((c) => (c.field ? `${c.field}: ${c.message}` : (c.message ?? '')));
  const list = texts.length === 1 ? texts[0] : `[${texts.join(', ')}]`;
  const qualified = group ? `${kind}.${group}` : kind;
  return new ApiError(422, 'Invalid', `${qualified} "${name}" is invalid: ${list}`, { name, group, kind, causes });
}

/** 400 BadRequest with a message. */
export function badRequest(message: string): ApiError {
  return new ApiError(400, 'BadRequest', message);
}

/** 403 Forbidden in the RBAC authorizer's words. */
export function forbidden(user: string, verb: string, plural: string, group: string, namespace: string | undefined, name?: string): ApiError {
  const what = qualifiedResource(plural, group);
  const scope = namespace ? `in the namespace "${namespace}"` : 'at the cluster scope';
  const named = name ? ` "${name}"` : '';
  return new ApiError(403, 'Forbidden', `${what}${named} is forbidden: User "${user}" cannot ${verb} resource "${plural}" in API group "${group}" ${scope}`, {
    ...(name ? { name } : {}),
    group,
    kind: plural,
  });
}

/** 405 MethodNotAllowed. */
export function methodNotAllowed(): ApiError {
  return new ApiError(405, 'MethodNotAllowed', 'the server does not allow this method on the requested resource');
}
