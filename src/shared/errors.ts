import type { ErrorCode } from './error-codes.js';

export type { ErrorCode } from './error-codes.js';

/**
 * The one error type for bad untrusted input and failed operations. Programmer misuse
 * throws TypeError instead. Messages name the problem but never carry a secret, a key
 * or a token; `cause` may hold detail for the log only.
 */
export class WardenError extends Error {
  readonly code: ErrorCode;
  /** Extra, non-secret fields for logs and HTTP bodies (e.g. { retryAfterMs }). */
  readonly details: Readonly<Record<string, string | number | boolean>>;

  constructor(
    code: ErrorCode,
    message: string,
    options: { cause?: unknown; details?: Record<string, string | number | boolean> } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'WardenError';
    this.code = code;
    this.details = Object.freeze({ ...(options.details ?? {}) });
  }
}

export function isWardenError(err: unknown, code?: ErrorCode): err is WardenError {
  return err instanceof WardenError && (code === undefined || err.code === code);
}

/** A short, safe description of an unknown thrown value for logs. */
export function describeError(err: unknown): string {
  if (err instanceof Error) return `${err.name}: ${err.message}`;
  return String(err);
}
