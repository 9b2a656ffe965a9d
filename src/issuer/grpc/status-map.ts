import { status as GrpcStatus } from '@grpc/grpc-js';
import type { ErrorCode } from '../../shared/error-codes.js';
import { isWardenError } from '../../shared/errors.js';

/** What a client is told when the detail must stay in the CA's log. */
export const GENERIC_INTERNAL_MESSAGE = 'internal error; see the CA log';

interface StatusRule {
  readonly status: GrpcStatus;
  /** False when the message may describe internals (paths, keys, backend answers). */
  readonly exposeMessage: boolean;
}

const client = (status: GrpcStatus): StatusRule => ({ status, exposeMessage: true });
const internal: StatusRule = { status: GrpcStatus.INTERNAL, exposeMessage: false };

/**
 * The one table from error codes to gRPC status codes. Typed over every ErrorCode, so adding
 * a code without deciding its status does not compile. INVALID_ARGUMENT for anything wrong
 * with the request, PERMISSION_DENIED when the identity proof fails (Dapr's codes), and
 * INTERNAL with a generic message for failures inside the CA.
 */
export const GRPC_STATUS_BY_CODE: Readonly<Record<ErrorCode, StatusRule>> = Object.freeze({
  ERR_CONFIG_INVALID: internal,
  // Request-size limits answer as grpc-js itself does for an over-long message.
  ERR_REQUEST_TOO_LARGE: client(GrpcStatus.RESOURCE_EXHAUSTED),
  ERR_REQUEST_INVALID: client(GrpcStatus.INVALID_ARGUMENT),
  ERR_CSR_INVALID: client(GrpcStatus.INVALID_ARGUMENT),
  ERR_CSR_SIGNATURE: client(GrpcStatus.INVALID_ARGUMENT),
  ERR_CSR_KEY_UNSUPPORTED: client(GrpcStatus.INVALID_ARGUMENT),
  ERR_VALIDATOR_NOT_ENABLED: client(GrpcStatus.INVALID_ARGUMENT),
  ERR_IDENTITY_DENIED: client(GrpcStatus.PERMISSION_DENIED),
  ERR_VALIDATOR_UNAVAILABLE: client(GrpcStatus.UNAVAILABLE),
  ERR_OVERLOADED: client(GrpcStatus.RESOURCE_EXHAUSTED),
  ERR_DEADLINE_EXCEEDED: client(GrpcStatus.DEADLINE_EXCEEDED),
  ERR_SIGNING_FAILED: internal,
  // Raised by the sidecar client, never by the edge; internal if one ever reached it.
  ERR_SENTRY_REQUEST_FAILED: internal,
  ERR_SENTRY_NOT_TRUSTED: internal,
  ERR_SVID_INVALID: internal,
  ERR_TRUST_MATERIAL_INVALID: internal,
  ERR_TRUST_MATERIAL_IO: internal,
  ERR_TRUST_MATERIAL_CONFLICT: internal,
  ERR_ROTATION_REFUSED: client(GrpcStatus.FAILED_PRECONDITION),
  ERR_ROTATION_STATE: internal,
  ERR_JWT_FAILED: internal,
  ERR_SECRET_STORES_NOT_CONFIGURED: client(GrpcStatus.FAILED_PRECONDITION),
  ERR_SECRET_STORE_NOT_FOUND: client(GrpcStatus.INVALID_ARGUMENT),
  ERR_SECRET_NOT_FOUND: client(GrpcStatus.NOT_FOUND),
  ERR_SECRET_NAME_INVALID: client(GrpcStatus.INVALID_ARGUMENT),
  ERR_SECRET_PERMISSION_DENIED: client(GrpcStatus.PERMISSION_DENIED),
  ERR_SECRET_STORE_UNAVAILABLE: client(GrpcStatus.UNAVAILABLE),
  ERR_SECRET_STORE_CONFIG: internal,
  ERR_SECRET_TOO_LARGE: client(GrpcStatus.RESOURCE_EXHAUSTED),
  ERR_COMPONENT_INVALID: internal,
  ERR_SECRET_REF_UNRESOLVED: internal,
  ERR_SECRET_STORE_CYCLE: internal,
  ERR_KUBERNETES_API: internal,
  ERR_VAULT_API: internal,
});

export interface GrpcErrorAnswer {
  readonly code: GrpcStatus;
  readonly details: string;
  /** True when the client gets the generic message and the log must carry the detail. */
  readonly internal: boolean;
}

/**
 * The status and message a client receives for a thrown value. A WardenError with a
 * client-facing code answers `<code>: <message>`; everything else, including any value that
 * is not a WardenError or whose code is not in the table, is INTERNAL with a generic message.
 */
export function grpcAnswerFor(err: unknown): GrpcErrorAnswer {
  if (isWardenError(err)) {
    const rule = (GRPC_STATUS_BY_CODE as Readonly<Record<string, StatusRule | undefined>>)[
      err.code
    ];
    if (rule && rule.exposeMessage)
      return { code: rule.status, details: `${err.code}: ${err.message}`, internal: false };
    if (rule) return { code: rule.status, details: GENERIC_INTERNAL_MESSAGE, internal: true };
  }
  return { code: GrpcStatus.INTERNAL, details: GENERIC_INTERNAL_MESSAGE, internal: true };
}
