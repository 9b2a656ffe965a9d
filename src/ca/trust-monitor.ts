import { systemClock, type Clock } from '../shared/clock.js';
import { silentLogger, type Logger } from '../shared/logger.js';
import { timerScheduler, type Scheduler } from './scheduler.js';
import {
  buildStatusReport,
  certificatesExpiringWithin,
  type CertificateStatus,
} from './status-report.js';
import type { TrustBundle, TrustSource } from './trust-bundle.js';
import type { TrustMetrics } from './trust-metrics.js';

const DAY_MS = 86_400_000;

export interface TrustMonitorOptions {
  /** The CA (a TrustSource; reload refusals are counted when it reports them). */
  readonly source: TrustSource & {
    onReloadRefused?(listener: (error: unknown) => void): () => void;
  };
  readonly metrics: TrustMetrics;
  readonly clock?: Clock;
  readonly logger?: Logger;
  /** --expiry-warning-days (default 30). */
  readonly expiryWarningDays?: number;
  /** How often to re-check expiry while nothing changes (default hourly). */
  readonly checkIntervalMs?: number;
  readonly scheduler?: Scheduler;
}

export interface TrustMonitor {
  /** Updates the expiry metrics and warns about what expires within the window; returns it. */
  check(): readonly CertificateStatus[];
  close(): void;
}

/**
 * Keeps the trust metrics current and brings back the expiry warning Dapr dropped (#8652):
 * on start, on every change of the bundle and every checkIntervalMs, roots (all published
 * ones, so both during a rotation) and the issuer within the window are logged at warn (at
 * most once a day per certificate) and counted in warden_trust_certificates_expiring_soon.
 */
export function startTrustMonitor(options: TrustMonitorOptions): TrustMonitor {
  const { source, metrics } = options;
  const clock = options.clock ?? systemClock;
  const logger = options.logger ?? silentLogger;
  const days = options.expiryWarningDays ?? 30;
  if (!Number.isFinite(days) || days < 0)
    throw new TypeError('expiryWarningDays must be a non-negative number');
  const lastWarned = new Map<string, number>();
  let issuerFingerprint = source.current().issuerChain[0]?.fingerprint256;

  function check(): readonly CertificateStatus[] {
    const bundle = source.current();
    const now = clock.now().getTime();
    const expiring = certificatesExpiringWithin(buildStatusReport(bundle, clock), days);
    metrics.observeExpiring({
      root: expiring.filter((c) => c.role === 'anchor').length,
      issuer: expiring.filter((c) => c.role !== 'anchor').length,
    });
    for (const cert of expiring) {
      const last = lastWarned.get(cert.sha256Fingerprint);
      if (last !== undefined && now - last < DAY_MS) continue;
      lastWarned.set(cert.sha256Fingerprint, now);
      logger.warn(
        {
          role: cert.role === 'anchor' ? 'root' : cert.role,
          subject: cert.subject,
          sha256Fingerprint: cert.sha256Fingerprint,
          notAfter: cert.notAfter,
          daysLeft: cert.daysLeft,
        },
        `trust material expires within ${days} days`,
      );
    }
    return expiring;
  }

  function changed(bundle: TrustBundle): void {
    const fingerprint = bundle.issuerChain[0]?.fingerprint256;
    if (fingerprint !== issuerFingerprint) {
      metrics.issuerChanged();
      issuerFingerprint = fingerprint;
    }
    metrics.observeBundle(bundle);
    check();
  }

  metrics.observeBundle(source.current());
  check();
  const unsubscribe = source.onChange(changed);
  const unsubscribeRefused =
    source.onReloadRefused?.(() => metrics.reloadFailed()) ?? (() => undefined);
  const cancel = (options.scheduler ?? timerScheduler).every(
    options.checkIntervalMs ?? 3_600_000,
    () => {
      check();
    },
  );
  return {
    check,
    close() {
      cancel();
      unsubscribe();
      unsubscribeRefused();
    },
  };
}
