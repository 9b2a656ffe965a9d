import type { Logger } from '../shared/logger.js';
import type { MintedJwtSvids } from './jwt/jwt-svid.js';

/**
 * One structured line per decision. Fields are chosen, never spread from the request, so a
 * token or CSR cannot reach the log by accident. Every record is flat (strings, numbers,
 * null, arrays of strings), so the edge writes them through flatRecordLogger (cheaper
 * redaction, same effect).
 */

export interface IssuedAuditEntry {
  readonly serialHex: string;
  readonly spiffeId: string;
  readonly dnsNames: readonly string[];
  readonly notAfter: Date;
  readonly validator: string;
  readonly peer: string;
  readonly generation: number;
  /** JWT-SVIDs returned with the certificate: their kid and jti are logged, never a token. */
  readonly jwt?: Pick<MintedJwtSvids, 'kid' | 'jti' | 'perAudienceJtis' | 'expiresAt'> | null;
}

export function auditIssued(logger: Logger, entry: IssuedAuditEntry): void {
  logger.info(
    {
      event: 'certificate.issued',
      serial: entry.serialHex,
      spiffeId: entry.spiffeId,
      dnsNames: entry.dnsNames,
      notAfter: entry.notAfter.toISOString(),
      validator: entry.validator,
      peer: entry.peer,
      generation: entry.generation,
      // Not "jwt": the logger redacts that field name wherever it appears.
      ...(entry.jwt
        ? {
            jwtSvid: {
              kid: entry.jwt.kid,
              jti: entry.jwt.jti,
              perAudienceJtis: entry.jwt.perAudienceJtis,
              exp: entry.jwt.expiresAt.toISOString(),
            },
          }
        : {}),
    },
    'issued workload certificate',
  );
}

export interface DeniedAuditEntry {
  readonly code: string;
  /** The error message: written by Warden, request values quoted through printable(). */
  readonly reason: string;
  readonly validator: string | null;
  readonly peer: string;
}

export function auditDenied(logger: Logger, entry: DeniedAuditEntry): void {
  logger.warn(
    {
      event: 'certificate.denied',
      code: entry.code,
      reason: entry.reason,
      validator: entry.validator,
      peer: entry.peer,
    },
    'refused a certificate request',
  );
}

export interface FailedAuditEntry {
  readonly code: string | null;
  /** Full detail for the operator; the client only got a generic message. */
  readonly detail: string;
  readonly validator: string | null;
  readonly peer: string;
}

export function auditFailed(logger: Logger, entry: FailedAuditEntry): void {
  logger.error(
    {
      event: 'certificate.failed',
      code: entry.code,
      detail: entry.detail,
      validator: entry.validator,
      peer: entry.peer,
    },
    'certificate request failed inside the CA',
  );
}
