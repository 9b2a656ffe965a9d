import type { Registry } from 'prom-client';
import { watchCredentials, type CredentialsWatcher } from '../ca/credentials-watcher.js';
import type { FileCa } from '../ca/file-ca.js';
import type { KubernetesCa } from '../ca/kubernetes/kubernetes-ca.js';
import { JwtKeyFileStore } from '../ca/jwt/jwt-key-file-store.js';
import { jwtRotationTimings } from '../ca/rotation/credential-rotation.js';
import { startRotationDriver, type RotationDriver } from '../ca/rotation/rotation-driver.js';
import { TRUST_MATERIAL_PARTS } from '../ca/trust-material.js';
import { createTrustMetrics } from '../ca/trust-metrics.js';
import { startTrustMonitor, type TrustMonitor } from '../ca/trust-monitor.js';
import type { Clock } from '../shared/clock.js';
import type { Logger } from '../shared/logger.js';
import type { JwtIssuance } from '../issuer/jwt/jwt-issuance.js';
import type { ServeSettings } from './serve-flags.js';

/**
 * What keeps a running CA's trust material current, wired in one place:
 * - the credentials watcher: any change to the trust files or the JWT key files (an operator,
 *   cert-manager, `warden rotate`, another replica) reloads the CA and the JWT keys; in
 *   kubernetes mode the CA's own watch of the trust Secret does this (and `watcher` reports on
 *   it, its close() leaving it to the CA);
 * - the rotation driver (when automatic rotation or issuer renewal is on): takes due steps
 *   for the root, the issuer and the JWT key, and reloads at once after committing one;
 * - the trust monitor: expiry metrics and warnings on the registry /metrics serves.
 */
export interface TrustLifecycle {
  readonly watcher: CredentialsWatcher;
  /** Null when both automatic root rotation and issuer renewal are off. */
  readonly driver: RotationDriver | null;
  readonly monitor: TrustMonitor;
  /** Reloads the CA and the JWT keys from the files now (what the watcher calls). */
  reload(): Promise<void>;
  close(): Promise<void>;
}

export interface TrustLifecycleOptions {
  readonly settings: ServeSettings;
  readonly ca: FileCa | KubernetesCa;
  readonly jwt: JwtIssuance | null;
  /** The registry /metrics serves; its Dapr issuer metrics belong to the gRPC edge. */
  readonly registry: Registry;
  readonly clock: Clock;
  readonly logger: Logger;
  /** Watcher timings (defaults: 300 ms debounce, 3 s stat fallback). */
  readonly watch?: { readonly debounceMs?: number; readonly pollIntervalMs?: number };
  /** How often the rotation driver looks (default 30 s). */
  readonly rotationCheckIntervalMs?: number;
}

export function startTrustLifecycle(options: TrustLifecycleOptions): TrustLifecycle {
  const { settings, ca, jwt, clock } = options;
  const logger = options.logger.child({ component: 'trust' });
  const policy = settings.rotation.policy;

  const reload = async (): Promise<void> => {
    // Both, even when one refuses (each logs why and keeps serving what it had).
    const results = await Promise.allSettled([ca.reload(), jwt?.reload()]);
    const failed = results.find((r) => r.status === 'rejected');
    if (failed) throw failed.reason;
  };

  const monitor = startTrustMonitor({
    source: ca,
    metrics: createTrustMetrics(options.registry, { daprIssuerMetrics: false }),
    clock,
    logger,
    expiryWarningDays: settings.rotation.expiryWarningDays,
  });
  const watcher: CredentialsWatcher =
    'secretWatch' in ca
      ? { settled: () => ca.secretWatch.settled(), close: async () => undefined }
      : watchCredentials({
          directory: ca.store.directory,
          files: [
            ...TRUST_MATERIAL_PARTS.map((part) => ca.store.pathOf(part)),
            ...(jwt?.files ?? []),
          ],
          reload,
          logger,
          debounceMs: options.watch?.debounceMs,
          pollIntervalMs: options.watch?.pollIntervalMs,
        });
  const automatic = policy.rootRotation.enabled || policy.issuerRenewal.enabled;
  const driver = automatic
    ? startRotationDriver({
        store: ca.store,
        policy,
        clock,
        logger,
        jwt: settings.jwt.enabled
          ? {
              // Kubernetes mode: the issuance's store over the trust Secret (compare-and-swap).
              store:
                'secretWatch' in ca && jwt
                  ? jwt.store
                  : new JwtKeyFileStore({
                dir: settings.credentials.directory,
                keyFilename: settings.jwt.keyFilename,
                jwksFilename: settings.jwt.jwksFilename,
                algorithm: settings.jwt.algorithm,
                keyId: settings.jwt.keyId,
                maxTokenLifetimeMs: jwtRotationTimings(policy).maxTokenLifetimeMs,
                clock,
                logger,
              }),
            }
          : null,
        intervalMs: options.rotationCheckIntervalMs,
        onCommitted: reload,
      })
    : null;
  if (!driver) logger.info('automatic root rotation and issuer renewal are off by configuration');

  let closing: Promise<void> | null = null;
  return {
    watcher,
    driver,
    monitor,
    reload,
    close() {
      closing ??= (async () => {
        await driver?.close();
        await watcher.close();
        monitor.close();
      })();
      return closing;
    },
  };
}
