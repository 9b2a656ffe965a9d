import { Counter, Gauge, type Registry } from '../shared/prometheus.js';
import { certificateValidity } from './certificate-facts.js';
import type { TrustBundle } from './trust-bundle.js';

/**
 * The CA's trust-material metrics, registered on an explicit Registry (the composition root
 * merges registries). Labels carry certificate fingerprints and roles only, never key
 * material. One function per event, as in Dapr Sentry's metrics package.
 */
export interface TrustMetrics {
  /** warden_trust_reload_failures_total: a reload refused new material. */
  reloadFailed(): void;
  /** dapr_sentry_issuercert_changed_total (unless its owner is elsewhere): the signing issuer changed. */
  issuerChanged(): void;
  /**
   * Sets dapr_sentry_issuercert_expiry_timestamp and warden_root_expiry_timestamp_seconds
   * (one series per published root, keyed by its SHA-256 fingerprint) from a bundle.
   */
  observeBundle(bundle: TrustBundle): void;
  /** Sets warden_trust_certificates_expiring_soon{role} to how many roots / issuers are in the window. */
  observeExpiring(counts: { readonly root: number; readonly issuer: number }): void;
}

export const TRUST_METRIC_NAMES = Object.freeze({
  reloadFailures: 'warden_trust_reload_failures_total',
  issuerChanged: 'dapr_sentry_issuercert_changed_total',
  issuerExpiry: 'dapr_sentry_issuercert_expiry_timestamp',
  rootExpiry: 'warden_root_expiry_timestamp_seconds',
  expiringSoon: 'warden_trust_certificates_expiring_soon',
});

export interface TrustMetricsOptions {
  /**
   * Whether these metrics include Dapr's dapr_sentry_issuercert_changed_total and
   * dapr_sentry_issuercert_expiry_timestamp (default true). `warden serve` passes false: its
   * gRPC edge (createSentryServer) already owns those two on the same registry, and a
   * registry takes each name once.
   */
  readonly daprIssuerMetrics?: boolean;
}

export function createTrustMetrics(
  registry: Registry,
  options: TrustMetricsOptions = {},
): TrustMetrics {
  const registers = [registry];
  const daprIssuerMetrics = options.daprIssuerMetrics ?? true;
  const reloadFailures = new Counter({
    name: TRUST_METRIC_NAMES.reloadFailures,
    help: 'Reloads of the trust material that were refused (missing, half-written, corrupt or mismatched files); the old material kept serving',
    registers,
  });
  const issuerChanged = daprIssuerMetrics
    ? new Counter({
        name: TRUST_METRIC_NAMES.issuerChanged,
        help: 'Times the issuer certificate changed (reload, renewal or rotation)',
        registers,
      })
    : null;
  const issuerExpiry = daprIssuerMetrics
    ? new Gauge({
        name: TRUST_METRIC_NAMES.issuerExpiry,
        help: 'The issuer certificate expiry, in seconds since the Unix epoch',
        registers,
      })
    : null;
  const rootExpiry = new Gauge({
    name: TRUST_METRIC_NAMES.rootExpiry,
    help: 'Expiry of each published trust anchor (root), in seconds since the Unix epoch',
    labelNames: ['sha256'],
    registers,
  });
  const expiringSoon = new Gauge({
    name: TRUST_METRIC_NAMES.expiringSoon,
    help: 'Roots and issuers that expire within the warning window (--expiry-warning-days)',
    labelNames: ['role'],
    registers,
  });
  const seconds = (ms: number): number => Math.floor(ms / 1000);
  return {
    reloadFailed: () => reloadFailures.inc(),
    issuerChanged: () => issuerChanged?.inc(),
    observeBundle(bundle) {
      const issuer = bundle.issuerChain[0];
      if (issuer && issuerExpiry)
        issuerExpiry.set(seconds(certificateValidity(issuer).notAfter.getTime()));
      // A retired root must disappear from the metric, not linger with its old value.
      rootExpiry.reset();
      for (const anchor of bundle.anchors) {
        rootExpiry.set(
          { sha256: anchor.fingerprint256.replaceAll(':', '').toLowerCase() },
          seconds(certificateValidity(anchor).notAfter.getTime()),
        );
      }
    },
    observeExpiring(counts) {
      expiringSoon.set({ role: 'root' }, counts.root);
      expiringSoon.set({ role: 'issuer' }, counts.issuer);
    },
  };
}
