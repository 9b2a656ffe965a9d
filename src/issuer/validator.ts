import type { CheckedSignRequest } from './request-rules.js';

/** The validators Warden knows; each has a folder under src/issuer/validators/. */
export type ValidatorName = 'insecure' | 'kubernetes' | 'jwks';

export const VALIDATOR_NAMES: readonly ValidatorName[] = Object.freeze([
  'insecure',
  'kubernetes',
  'jwks',
]);

/**
 * The proto's SignCertificateRequest.TokenValidator numbers. UNKNOWN (0) means "the default";
 * any number not listed here is refused (unknown means deny).
 */
export const TOKEN_VALIDATOR_ENUM: Readonly<Record<number, ValidatorName | 'default'>> =
  Object.freeze({
    0: 'default',
    1: 'insecure',
    2: 'kubernetes',
    3: 'jwks',
  });

/**
 * The identity a validator vouches for. The edge builds the SPIFFE ID and DNS SANs from this
 * alone, never from the CSR.
 */
export interface ValidatedIdentity {
  /**
   * The trust domain to issue in. Usually the request's (defaulted to `public`); a validator
   * may override it (the kubernetes validator takes it from the pod's Configuration).
   */
  readonly trustDomain: string;
  readonly namespace: string;
  readonly appId: string;
  /**
   * True when the identity is a Dapr control-plane service in the CA's own namespace; the
   * edge then adds the service DNS SANs Dapr's webhooks need.
   */
  readonly controlPlane: boolean;
}

/**
 * One way of proving a requested identity. Implementations live in
 * src/issuer/validators/<name>/. Validation runs before the CSR is parsed.
 */
export interface Validator {
  readonly name: ValidatorName;
  /** Loads what the validator needs (keys, clients). Resolves even when not yet ready. */
  start(): Promise<void>;
  /** True when validate() can give an answer; /healthz reports it. */
  ready(): boolean;
  /**
   * Resolves with the identity the request may have, or rejects with WardenError
   * ERR_IDENTITY_DENIED (the proof failed; the message says which check, never the token) or
   * ERR_VALIDATOR_UNAVAILABLE (cannot decide now: never answers yes when unsure).
   */
  validate(request: CheckedSignRequest): Promise<ValidatedIdentity>;
  /** Stops timers and clients; idempotent. */
  close(): Promise<void>;
}
