import { parseDuration } from '../duration.js';

/**
 * The settings Warden reads from Dapr's Configuration, Dapr's defaults for them, and the
 * Configuration used when none is given. Kept apart from dapr-configuration.ts (the YAML
 * parser and its zod schema, ≈ 80 ms to load) so that `warden serve` without --config starts
 * without either (issue 7: cold start); dapr-configuration.ts applies the same defaults to
 * parsed files.
 */

export const DEFAULT_WORKLOAD_CERT_TTL = '24h';
export const DEFAULT_ALLOWED_CLOCK_SKEW = '15m';
export const DEFAULT_CONTROL_PLANE_TRUST_DOMAIN = 'cluster.local';
export const DEFAULT_JWKS_MIN_REFRESH_INTERVAL = '10m';
export const DEFAULT_JWKS_REQUEST_TIMEOUT = '30s';

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
    },
  });
}
