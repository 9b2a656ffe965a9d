import { WardenError } from '../shared/errors.js';
import { pathSegmentProblem, printable, trustDomainProblem } from '../shared/spiffe-id.js';

/**
 * SignCertificate request rules: Dapr's common validator checks plus stricter ones, applied
 * to the raw fields exactly as received. Nothing is trimmed, lower-cased or decoded before a
 * rule runs, so the string that is authorised is the string the certificate is built from
 * (Dapr CVE-2026-41491 was a normalise-then-authorise mismatch).
 */

/** The whole request is refused above this many bytes, before any field is parsed. */
export const MAX_REQUEST_BYTES = 64 * 1024;
/** Dapr's limit on app ids. */
export const MAX_ID_LENGTH = 64;
/** A Kubernetes namespace is a DNS label; the same bound applies in standalone mode. */
export const MAX_NAMESPACE_LENGTH = 63;
export const MAX_JWT_AUDIENCES = 16;
export const MAX_JWT_AUDIENCE_LENGTH = 256;
/** Dapr's answer when the request does not name a trust domain. */
export const DEFAULT_REQUEST_TRUST_DOMAIN = 'public';

/** The SignCertificateRequest fields as the gRPC layer decoded them (camelCase). */
export interface RawSignRequest {
  readonly id: string;
  readonly token: string;
  readonly trustDomain: string;
  readonly namespace: string;
  readonly certificateSigningRequest: Uint8Array;
  /** The TokenValidator enum's number; values outside the enum are kept, never coerced. */
  readonly tokenValidator: number;
  readonly jwtAudiences: readonly string[];
}

/** A request every rule accepted. Frozen; fields are the raw values except the defaulted trust domain. */
export interface CheckedSignRequest {
  readonly id: string;
  readonly namespace: string;
  /** The request's trust_domain, or `public` when it was empty. */
  readonly trustDomain: string;
  /** True when trust_domain was empty and `public` was filled in. */
  readonly trustDomainDefaulted: boolean;
  /** Opaque to the rules; each validator decides what a valid token is. */
  readonly token: string;
  readonly csrPem: Uint8Array;
  readonly tokenValidator: number;
  readonly jwtAudiences: readonly string[];
}

/** Sum of the field sizes in bytes: a bound on the request that does not need the wire bytes. */
export function signRequestSize(raw: RawSignRequest): number {
  let total =
    Buffer.byteLength(raw.id) + Buffer.byteLength(raw.token) + Buffer.byteLength(raw.trustDomain);
  total += Buffer.byteLength(raw.namespace) + raw.certificateSigningRequest.byteLength;
  for (const audience of raw.jwtAudiences) total += Buffer.byteLength(audience);
  return total;
}

/**
 * Throws ERR_REQUEST_TOO_LARGE when the request exceeds `limit` bytes. The gRPC server also
 * sets grpc.max_receive_message_length, so oversized messages normally never get this far;
 * this check keeps the bound when the rules are used behind another transport.
 */
export function assertRequestSize(raw: RawSignRequest, limit = MAX_REQUEST_BYTES): void {
  const size = signRequestSize(raw);
  if (size > limit) {
    throw new WardenError(
      'ERR_REQUEST_TOO_LARGE',
      `request is ${size} bytes; the limit is ${limit}`,
    );
  }
}

const CONTROL_CHARACTER = /[\u0000-\u001f\u007f-\u009f]/;
const PERCENT_ENCODED = /%/;
const AUDIENCE_CHARACTERS = /^[\x21-\x7e]+$/;

/**
 * Problems every identity field is checked for first, so that the message names the real
 * problem (a newline, an escape) rather than a generic character-class failure.
 */
function commonTextProblem(value: string): string | null {
  if (value.endsWith('\n')) return 'ends with a newline';
  if (CONTROL_CHARACTER.test(value)) return 'contains a control character';
  if (PERCENT_ENCODED.test(value)) return 'contains "%" (percent-encoding is not accepted)';
  if (value.includes('/')) return 'contains "/"';
  return null;
}

function invalid(field: string, value: string, problem: string): WardenError {
  return new WardenError('ERR_REQUEST_INVALID', `${field} "${printable(value)}" ${problem}`);
}

/** Returns the first problem with an app or control-plane id, or null. */
export function idProblem(id: string): string | null {
  if (id.length === 0) return 'is empty';
  if (id.length > MAX_ID_LENGTH) return `is longer than ${MAX_ID_LENGTH} characters`;
  const common = commonTextProblem(id);
  if (common) return common;
  if (id.includes('.')) return 'may not contain "."';
  return pathSegmentProblem(id);
}

export function namespaceProblem(namespace: string): string | null {
  if (namespace.length === 0) return 'is empty';
  if (namespace.length > MAX_NAMESPACE_LENGTH)
    return `is longer than ${MAX_NAMESPACE_LENGTH} characters`;
  return commonTextProblem(namespace) ?? pathSegmentProblem(namespace);
}

/** The request's trust domain; empty is allowed here (it defaults to `public`). */
export function requestTrustDomainProblem(trustDomain: string): string | null {
  if (trustDomain.length === 0) return null;
  const common = commonTextProblem(trustDomain);
  if (common) return common;
  if (trustDomain.includes(':')) return 'may not contain a port or userinfo';
  return trustDomainProblem(trustDomain);
}

export function jwtAudiencesProblem(
  audiences: readonly string[],
): { index: number | null; problem: string } | null {
  if (audiences.length > MAX_JWT_AUDIENCES) {
    return {
      index: null,
      problem: `has ${audiences.length} entries; the limit is ${MAX_JWT_AUDIENCES}`,
    };
  }
  for (const [index, audience] of audiences.entries()) {
    if (audience.length === 0) return { index, problem: 'is empty' };
    if (audience.length > MAX_JWT_AUDIENCE_LENGTH) {
      return { index, problem: `is longer than ${MAX_JWT_AUDIENCE_LENGTH} characters` };
    }
    if (!AUDIENCE_CHARACTERS.test(audience))
      return { index, problem: 'may contain only printable ASCII without spaces' };
  }
  return null;
}

/**
 * Applies every rule to a decoded request, in the order the handler needs: size first, then
 * identity fields, then the CSR's presence (its content is parsed only after validation).
 * Throws ERR_REQUEST_TOO_LARGE, ERR_REQUEST_INVALID or ERR_CSR_INVALID.
 */
export function checkSignRequest(raw: RawSignRequest): CheckedSignRequest {
  if (typeof raw !== 'object' || raw === null)
    throw new TypeError('checkSignRequest needs a request object');
  assertRequestSize(raw);

  const idIssue = idProblem(raw.id);
  if (idIssue) throw invalid('id', raw.id, idIssue);
  const namespaceIssue = namespaceProblem(raw.namespace);
  if (namespaceIssue) throw invalid('namespace', raw.namespace, namespaceIssue);
  const trustDomainIssue = requestTrustDomainProblem(raw.trustDomain);
  if (trustDomainIssue) throw invalid('trust_domain', raw.trustDomain, trustDomainIssue);
  const audienceIssue = jwtAudiencesProblem(raw.jwtAudiences);
  if (audienceIssue) {
    if (audienceIssue.index === null) {
      throw new WardenError('ERR_REQUEST_INVALID', `jwt_audiences ${audienceIssue.problem}`);
    }
    const value = raw.jwtAudiences[audienceIssue.index] ?? '';
    throw invalid(`jwt_audiences[${audienceIssue.index}]`, value, audienceIssue.problem);
  }
  if (raw.certificateSigningRequest.byteLength === 0) {
    throw new WardenError('ERR_CSR_INVALID', 'certificate_signing_request is empty');
  }

  const defaulted = raw.trustDomain.length === 0;
  return Object.freeze({
    id: raw.id,
    namespace: raw.namespace,
    trustDomain: defaulted ? DEFAULT_REQUEST_TRUST_DOMAIN : raw.trustDomain,
    trustDomainDefaulted: defaulted,
    token: raw.token,
    csrPem: raw.certificateSigningRequest,
    tokenValidator: raw.tokenValidator,
    jwtAudiences: Object.freeze([...raw.jwtAudiences]),
  });
}
