import type { ErrorCode } from '../../shared/errors.js';

/** Dapr's secrets API error codes (and ERR_MALFORMED_REQUEST, Dapr's code for a bad request). */
export type DaprSecretsErrorCode =
  | 'ERR_SECRET_STORES_NOT_CONFIGURED'
  | 'ERR_SECRET_STORE_NOT_FOUND'
  | 'ERR_PERMISSION_DENIED'
  | 'ERR_SECRET_GET'
  | 'ERR_MALFORMED_REQUEST';

export interface HttpErrorMapping {
  readonly status: number;
  readonly errorCode: DaprSecretsErrorCode;
}

/**
 * The one table from Warden codes to what the secrets API answers, with Dapr's statuses:
 * no stores 500, unknown store 401 (sic: Dapr's choice), denied 403, every store failure
 * ERR_SECRET_GET 500 — including a secret that does not exist, which Dapr also reports as
 * ERR_SECRET_GET (dapr/dapr#6471 asks for a not-found code; none exists yet). A malformed
 * or traversing name is the caller's fault: 400 ERR_MALFORMED_REQUEST, Dapr's generic code.
 */
const TABLE: Partial<Record<ErrorCode, HttpErrorMapping>> = {
  ERR_SECRET_STORES_NOT_CONFIGURED: { status: 500, errorCode: 'ERR_SECRET_STORES_NOT_CONFIGURED' },
  ERR_SECRET_STORE_NOT_FOUND: { status: 401, errorCode: 'ERR_SECRET_STORE_NOT_FOUND' },
  ERR_SECRET_PERMISSION_DENIED: { status: 403, errorCode: 'ERR_PERMISSION_DENIED' },
  ERR_SECRET_NAME_INVALID: { status: 400, errorCode: 'ERR_MALFORMED_REQUEST' },
  ERR_REQUEST_INVALID: { status: 400, errorCode: 'ERR_MALFORMED_REQUEST' },
  ERR_REQUEST_TOO_LARGE: { status: 400, errorCode: 'ERR_MALFORMED_REQUEST' },
  ERR_SECRET_NOT_FOUND: { status: 500, errorCode: 'ERR_SECRET_GET' },
  ERR_SECRET_STORE_UNAVAILABLE: { status: 500, errorCode: 'ERR_SECRET_GET' },
  ERR_SECRET_TOO_LARGE: { status: 500, errorCode: 'ERR_SECRET_GET' },
  ERR_KUBERNETES_API: { status: 500, errorCode: 'ERR_SECRET_GET' },
  ERR_VAULT_API: { status: 500, errorCode: 'ERR_SECRET_GET' },
};

const FALLBACK: HttpErrorMapping = { status: 500, errorCode: 'ERR_SECRET_GET' };

/** The status and Dapr code for a Warden code; anything unlisted is a 500 ERR_SECRET_GET. */
export function httpErrorFor(code: ErrorCode | undefined): HttpErrorMapping {
  return (code !== undefined ? TABLE[code] : undefined) ?? FALLBACK;
}

/** True when the code has its own row (the rest fall back to ERR_SECRET_GET). */
export function hasHttpErrorMapping(code: ErrorCode): boolean {
  return TABLE[code] !== undefined;
}
