import { parseDuration } from '../duration.js';

/**
 * The Configuration's settings types and Dapr's defaults, without the parser: `warden serve`
 * on the embedded default never loads zod or yaml (cold start, issue 7). The parser is
 * dapr-configuration.ts.
 */

export const DEFAULT_WORKLOAD_CERT_TTL = '24h';
export const DEFAULT_ALLOWED_CLOCK_SKEW = '15m';
export const DEFAULT_CONTROL_PLANE_TRUST_DOMAIN = 'cluster.local';
export const DEFAULT_JWKS_MIN_REFRESH_INTERVAL = '10m';
export const DEFAULT_JWKS_REQUEST_TIMEOUT = '30s';
/** Largest Configuration file read (a Configuration is a few hundred bytes). */
export const MAX_CONFIGURATION_BYTES = 1024 * 1024;

/** `spec.mtls.rootRotation` (Warden addition): automatic root rotation. */
export interface RootRotationSettings {
  /** Automatic prepare/activate/retire when Warden holds the root key. */
  readonly enabled: boolean;
  /** Prepare at the root's notBefore + this fraction of its lifetime. */
  readonly prepareAtFraction: number;
  /** Activate at the root's notBefore + this fraction of its lifetime, once allowed. */
  readonly activateAtFraction: number;
  /** How long the next root is published before activation; null: workloadCertTTL + allowedClockSkew. */
  readonly propagationWindowMs: number | null;
}

/** `spec.mtls.issuerRenewal` (Warden addition): issuer renewal under the same root. */
export interface IssuerRenewalSettings {
  readonly enabled: boolean;
  /** Renew at the issuer's notBefore + this fraction of its lifetime. */
  readonly renewAtFraction: number;
}

export const DEFAULT_ROOT_ROTATION: RootRotationSettings = Object.freeze({
  enabled: true,
  prepareAtFraction: 1 / 2,
  activateAtFraction: 5 / 6,
  propagationWindowMs: null,
});

export const DEFAULT_ISSUER_RENEWAL: IssuerRenewalSettings = Object.freeze({
  enabled: true,
  renewAtFraction: 2 / 3,
});

/** Options of the jwks token validator, durations in milliseconds. */
export interface JwksValidatorSettings {
  /** An http(s) URL, a file path, or an inline JWKS JSON document. */
  readonly source: string;
  /** PEM of the CA that signs the JWKS server's certificate (https sources only). */
  readonly caCertificate: string | undefined;
  readonly minRefreshIntervalMs: number;
  readonly requestTimeoutMs: number;
}

export type TokenValidatorSettings =
  | { readonly name: 'insecure' }
  | { readonly name: 'kubernetes' }
  | { readonly name: 'jwks'; readonly options: JwksValidatorSettings };

export type TokenValidatorSettingsName = TokenValidatorSettings['name'];

export interface MtlsSettings {
  /** Informational for Warden (daprd reads it); Go's zero value when absent. */
  readonly enabled: boolean;
  readonly workloadCertTtlMs: number;
  readonly allowedClockSkewMs: number;
  readonly controlPlaneTrustDomain: string;
  readonly sentryAddress: string | undefined;
  /** In the order configured; names are unique. */
  readonly tokenValidators: readonly TokenValidatorSettings[];
  readonly rootRotation: RootRotationSettings;
  readonly issuerRenewal: IssuerRenewalSettings;
}

export interface DaprConfiguration {
  /** metadata.name, when given. */
  readonly name: string | undefined;
  /** Where it came from, for messages ("embedded default", a file path). */
  readonly source: string;
  readonly mtls: MtlsSettings;
}

export function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    for (const child of Object.values(value as Record<string, unknown>)) deepFreeze(child);
    Object.freeze(value);
  }
  return value;
}

/** The Configuration used when none is given: every field at Dapr's default. */
export function defaultDaprConfiguration(): DaprConfiguration {
  return deepFreeze({
    name: undefined,
    source: 'embedded default',
    mtls: {
      enabled: false,
      workloadCertTtlMs: parseDuration(DEFAULT_WORKLOAD_CERT_TTL),
      allowedClockSkewMs: parseDuration(DEFAULT_ALLOWED_CLOCK_SKEW),
      controlPlaneTrustDomain: DEFAULT_CONTROL_PLANE_TRUST_DOMAIN,
      sentryAddress: undefined,
      tokenValidators: [],
      rootRotation: DEFAULT_ROOT_ROTATION,
      issuerRenewal: DEFAULT_ISSUER_RENEWAL,
    },
  });
}
