import { qualifiedKind, qualifiedResource, type ResourceType } from './resources.js';

/**
 * `metav1.Status` bodies exactly as the real API server writes them (field order included,
 * empty fields omitted as Go's `omitempty` does), and the error that carries one out of a
 * handler.
 */
export interface StatusCause {
  reason?: string;
  message?: string;
  field?: string;
}

export interface StatusDetails {
  name?: string;
  group?: string;
  kind?: string;
  uid?: string;
  causes?: StatusCause[];
  retryAfterSeconds?: number;
}

export interface StatusBody {
  kind: 'Status';
  apiVersion: 'v1';
  metadata: Record<string, never>;
  status: 'Failure' | 'Success';
  message?: string;
  reason?: string;
  details?: StatusDetails;
  code: number;
}

export class StatusError extends Error {
  readonly status: StatusBody;
  readonly headers: Readonly<Record<string, string>>;
  constructor(status: StatusBody, headers: Record<string, string> = {}) {
    super(status.message ?? status.reason ?? `status ${status.code}`);
    this.name = 'StatusError';
    this.status = status;
    this.headers = Object.freeze({ ...headers });
  }
}

export function failure(
  code: number,
  reason: string,
  message: string,
  details?: StatusDetails,
): StatusBody {
  // Built field by field so the JSON key order matches the real server's.
  const body = {
    kind: 'Status',
    apiVersion: 'v1',
    metadata: {},
    status: 'Failure',
    message,
    reason,
  } as Omit<StatusBody, 'code'> & Partial<Pick<StatusBody, 'code'>>;
  if (details !== undefined) body.details = details;
  body.code = code;
  return body as StatusBody;
}

function resourceDetails(rt: ResourceType, name: string | undefined): StatusDetails {
  const details: StatusDetails = {};
  if (name !== undefined && name !== '') details.name = name;
  if (rt.group !== '') details.group = rt.group;
  details.kind = rt.resource;
  return details;
}

export function notFound(rt: ResourceType, name: string): StatusError {
  return new StatusError(
    failure(
      404,
      'NotFound',
      `${qualifiedResource(rt)} "${name}" not found`,
      resourceDetails(rt, name),
    ),
  );
}

/** A namespace that does not exist, as NamespaceLifecycle admission reports it on create. */
export function namespaceNotFound(namespace: string): StatusError {
  return new StatusError(
    failure(404, 'NotFound', `namespaces "${namespace}" not found`, {
      name: namespace,
      kind: 'namespaces',
    }),
  );
}

export function alreadyExists(rt: ResourceType, name: string): StatusError {
  return new StatusError(
    failure(
      409,
      'AlreadyExists',
      `${qualifiedResource(rt)} "${name}" already exists`,
      resourceDetails(rt, name),
    ),
  );
}

export const OPTIMISTIC_LOCK_MESSAGE =
  'the object has been modified; please apply your changes to the latest version and try again';

export function conflict(
  rt: ResourceType,
  name: string,
  why: string = OPTIMISTIC_LOCK_MESSAGE,
  causes?: StatusCause[],
): StatusError {
  const details = resourceDetails(rt, name);
  if (causes) details.causes = causes;
  return new StatusError(
    failure(
      409,
      'Conflict',
      `Operation cannot be fulfilled on ${qualifiedResource(rt)} "${name}": ${why}`,
      details,
    ),
  );
}

export interface FieldError {
  /** e.g. FieldValueInvalid, FieldValueRequired, FieldValueTooLong, FieldValueForbidden */
  readonly type:
    | 'FieldValueInvalid'
    | 'FieldValueRequired'
    | 'FieldValueTooLong'
    | 'FieldValueForbidden'
    | 'FieldValueNotSupported';
  readonly field: string;
  /** The Go-formatted bad value (already quoted for strings), omitted for Required. */
  readonly value?: string;
  readonly detail: string;
}

const FIELD_ERROR_PREFIX: Record<FieldError['type'], string> = {
  FieldValueInvalid: 'Invalid value',
  FieldValueRequired: 'Required value',
  FieldValueTooLong: 'Too long',
  FieldValueForbidden: 'Forbidden',
  FieldValueNotSupported: 'Unsupported value',
};

function fieldErrorBody(e: FieldError): string {
  const prefix = FIELD_ERROR_PREFIX[e.type];
  return e.value === undefined ? `${prefix}: ${e.detail}` : `${prefix}: ${e.value}: ${e.detail}`;
}

/** 422 Invalid, `Secret "x" is invalid: metadata.name: Invalid value: "x": ...`. */
export function invalid(
  rt: ResourceType,
  name: string,
  errors: readonly FieldError[],
  kindOverride?: { group: string; kind: string },
): StatusError {
  const group = kindOverride ? kindOverride.group : rt.group;
  const kind = kindOverride ? kindOverride.kind : rt.kind;
  const qualified = kindOverride ? (group === '' ? kind : `${kind}.${group}`) : qualifiedKind(rt);
  const lines = errors.map((e) => `${e.field}: ${fieldErrorBody(e)}`);
  const joined = lines.length === 1 ? (lines[0] as string) : `[${lines.join(', ')}]`;
  const details: StatusDetails = {};
  if (name !== '') details.name = name;
  if (group !== '') details.group = group;
  details.kind = kind;
  details.causes = errors.map((e) => ({
    reason: e.type,
    message: fieldErrorBody(e),
    field: e.field,
  }));
  return new StatusError(
    failure(422, 'Invalid', `${qualified} "${name}" is invalid: ${joined}`, details),
  );
}

export function forbidden(
  rt: ResourceType,
  name: string | undefined,
  username: string,
  verb: string,
  namespace: string | undefined,
): StatusError {
  const subject = name ? `${qualifiedResource(rt)} "${name}"` : qualifiedResource(rt);
  const scope = namespace ? `in the namespace "${namespace}"` : 'at the cluster scope';
  const message = `${subject} is forbidden: User "${username}" cannot ${verb} resource "${rt.resource}" in API group "${rt.group}" ${scope}`;
  return new StatusError(failure(403, 'Forbidden', message, resourceDetails(rt, name)));
}

export function unauthorized(): StatusError {
  return new StatusError(failure(401, 'Unauthorized', 'Unauthorized'));
}

export function badRequest(message: string): StatusError {
  return new StatusError(failure(400, 'BadRequest', message));
}

export function pathNotFound(): StatusError {
  return new StatusError(
    failure(404, 'NotFound', 'the server could not find the requested resource', {}),
  );
}

export function methodNotAllowed(): StatusError {
  return new StatusError(
    failure(
      405,
      'MethodNotAllowed',
      'the server does not allow this method on the requested resource',
      {},
    ),
  );
}

export function unsupportedMediaType(
  contentType: string,
  accepted: readonly string[],
): StatusError {
  return new StatusError(
    failure(
      415,
      'UnsupportedMediaType',
      `the body of the request was in an unknown format - accepted media types include: ${accepted.join(', ')}`,
      { causes: [{ reason: 'UnsupportedMediaType', message: contentType }] },
    ),
  );
}

export function requestEntityTooLarge(limit: number): StatusError {
  return new StatusError(
    failure(413, 'RequestEntityTooLarge', `Request entity too large: limit is ${limit}`),
  );
}

/** The watch-cache error for a resourceVersion older than the retained history. */
export function expired(message: string): StatusBody {
  return failure(410, 'Expired', message);
}

export function tooManyRequests(retryAfterSeconds: number | undefined): StatusError {
  const details: StatusDetails = {};
  if (retryAfterSeconds !== undefined) details.retryAfterSeconds = retryAfterSeconds;
  return new StatusError(
    failure(429, 'TooManyRequests', 'Too many requests, please try again later.', details),
    retryAfterSeconds === undefined ? {} : { 'Retry-After': String(retryAfterSeconds) },
  );
}

export function internalError(message: string): StatusError {
  return new StatusError(
    failure(500, 'InternalError', `Internal error occurred: ${message}`, { causes: [{ message }] }),
  );
}

/** Any status code with the reason the real server uses for it. */
export function statusForCode(
  code: number,
  message?: string,
  retryAfterSeconds?: number,
): StatusError {
  switch (code) {
    case 429:
      return tooManyRequests(retryAfterSeconds);
    case 500:
      return internalError(message ?? 'injected failure');
    case 503: {
      const err = new StatusError(
        failure(
          503,
          'ServiceUnavailable',
          message ?? 'the server is currently unable to handle the request',
          {},
        ),
        retryAfterSeconds === undefined ? {} : { 'Retry-After': String(retryAfterSeconds) },
      );
      return err;
    }
    case 504:
      return new StatusError(
        failure(
          504,
          'Timeout',
          message ??
            'the server was unable to return a response in the time allotted, but may still be processing the request',
          {},
        ),
      );
    case 401:
      return unauthorized();
    case 403:
      return new StatusError(failure(403, 'Forbidden', message ?? 'forbidden'));
    case 404:
      return pathNotFound();
    case 409:
      return new StatusError(failure(409, 'Conflict', message ?? 'conflict'));
    default:
      return new StatusError(
        failure(
          code,
          code >= 500 ? 'InternalError' : 'BadRequest',
          message ?? `injected status ${code}`,
        ),
      );
  }
}

export function success(details: StatusDetails): Record<string, unknown> {
  return { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Success', details };
}
