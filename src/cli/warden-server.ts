import path from 'node:path';
import { startFileCa } from '../ca/file-ca.js';
import type { TrustMaterialCa } from '../ca/trust-material-ca.js';
import {
  createSentryServer,
  registerIssuerReadiness,
  type SentryServer,
} from '../issuer/grpc/sentry-server.js';
import { createSentryMetrics } from '../issuer/metrics.js';
import { createSigningPool, type SigningPool } from '../issuer/signing/signing-pool.js';
import { buildValidatorRegistry, type ValidatorRegistry } from '../issuer/validator-registry.js';
import { builtInValidatorFactories } from '../issuer/validators/validator-factories.js';
import { systemClock, type Clock } from '../shared/clock.js';
import { WardenError } from '../shared/errors.js';
import { Readiness, startHealthServer } from '../shared/health-server.js';
import type { HttpListener } from '../shared/http-listener.js';
import type { Logger } from '../shared/logger.js';
import { startMetricsServer } from '../shared/metrics-server.js';
import type { ServeSettings } from './serve-flags.js';

/**
 * How long the signing pool must have had nothing in flight before the gRPC thread signs a
 * request itself. Longer than the gap between back-to-back calls of one client (≈ 0.1-0.5
 * ms), so any sustained traffic goes to the workers.
 */
const CALLING_THREAD_IDLE_MS = 5;

/** A running CA: what `warden serve` starts, and what integration tests start in-process. */
export interface WardenServer {
  readonly settings: ServeSettings;
  readonly ca: TrustMaterialCa;
  readonly grpc: SentryServer;
  readonly health: HttpListener;
  readonly metrics: HttpListener | null;
  readonly readiness: Readiness;
  /** Drains in-flight calls (up to graceMs), then stops everything it started. Idempotent. */
  close(graceMs?: number): Promise<void>;
}

export interface WardenServerDependencies {
  readonly logger: Logger;
  readonly clock?: Clock;
}

/**
 * The composition root: wires trust material → signing pool → validators → gRPC edge,
 * health and metrics, in that order, and undoes what it started if a later step fails.
 */
export async function startWardenServer(
  settings: ServeSettings,
  deps: WardenServerDependencies,
): Promise<WardenServer> {
  const { logger } = deps;
  const clock = deps.clock ?? systemClock;
  if (settings.mode !== 'standalone') {
    throw new WardenError(
      'ERR_CONFIG_INVALID',
      `--mode ${settings.mode} is not available in this build; use --mode standalone`,
    );
  }
  const cleanups: Array<() => Promise<unknown>> = [];
  const undo = async (): Promise<void> => {
    for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
  };
  try {
    const ca = await startFileCa({
      credentialsDir: settings.credentials.directory,
      caFilename: path.basename(settings.credentials.caFile),
      issuerCertificateFilename: path.basename(settings.credentials.certificateFile),
      issuerKeyFilename: path.basename(settings.credentials.keyFile),
      trustDomain: settings.trustDomain,
      keyAlgorithm: settings.keyAlgorithm,
      rootTtlMs: settings.rootTtlMs,
      issuerTtlMs: settings.issuerTtlMs,
      clock,
      logger,
    });
    cleanups.push(() => ca.close());

    // The workers start once the gRPC port is bound (on 2 cores, starting them earlier slows
    // the way there); until they are ready, and whenever the pool has been idle a while, this
    // thread signs: the serving certificate and the first workload certificates do not wait
    // for them, and a lone request costs no thread hops (issue 7: cold start, idle latency).
    const signer: SigningPool = createSigningPool({
      source: ca,
      profile: settings.leafProfile,
      workers: settings.workers,
      clock,
      logger,
      signInCallingThreadWhenIdleMs: CALLING_THREAD_IDLE_MS,
      deferWorkerStart: true,
    });
    cleanups.push(() => signer.close());

    const validators: ValidatorRegistry = buildValidatorRegistry(
      settings.validators,
      builtInValidatorFactories({
        caNamespace: settings.namespace,
        audience: settings.validatorAudience,
        clock,
        logger,
      }),
    );
    cleanups.push(() => validators.closeAll());
    await validators.startAll();

    const metrics = createSentryMetrics();
    const grpc = await createSentryServer({
      signer,
      trustSource: ca,
      validators,
      tls: { trustDomain: settings.trustDomain },
      caNamespace: settings.namespace,
      listenAddress: settings.grpc.listenAddress,
      port: settings.grpc.port,
      logger,
      metrics,
      clock,
    });
    cleanups.push(() => grpc.close(0));
    signer.startWorkers();

    const readiness = new Readiness();
    readiness.register('trust-material', () => ca.ready());
    registerIssuerReadiness(readiness, grpc, validators);
    const health = await startHealthServer({ readiness, ...settings.healthz });
    cleanups.push(() => health.close());
    const metricsListener = settings.metrics.enabled
      ? await startMetricsServer({
          registry: metrics.registry,
          listenAddress: settings.metrics.listenAddress,
          port: settings.metrics.port,
        })
      : null;
    if (metricsListener) cleanups.push(() => metricsListener.close());
    // Start-up still fails (and undoes everything) if a worker cannot load the material.
    await signer.ready();

    let closing: Promise<void> | null = null;
    return {
      settings,
      ca,
      grpc,
      health,
      metrics: metricsListener,
      readiness,
      close(graceMs = 10_000) {
        closing ??= (async () => {
          await grpc.close(graceMs);
          await validators.closeAll();
          await signer.close();
          await health.close();
          await metricsListener?.close();
          await ca.close();
        })();
        return closing;
      },
    };
  } catch (err) {
    await undo();
    throw err;
  }
}
