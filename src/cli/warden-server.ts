import path from 'node:path';
import type { KubeConfig } from '@kubernetes/client-node';
import { startFileCa } from '../ca/file-ca.js';
import { issuerChainValidAt } from '../ca/issuer-validity.js';
import type { TrustMaterialCa } from '../ca/trust-material-ca.js';
// Kubernetes, JWT and OIDC modules load only when enabled (issue 7: cold start ≤ 300 ms).
import { createSentryServer, registerIssuerReadiness, type SentryServer } from '../issuer/grpc/sentry-server.js';
import type { JwtIssuance } from '../issuer/jwt/jwt-issuance.js';
import { createSentryMetrics } from '../issuer/metrics.js';
import type { OidcService } from '../issuer/oidc/oidc-service.js';
import { createSigningPool, type SigningPool } from '../issuer/signing/signing-pool.js';
import { buildValidatorRegistry, type ValidatorRegistry } from '../issuer/validator-registry.js';
import { builtInValidatorFactories } from '../issuer/validators/validator-factories.js';
import { systemClock, type Clock } from '../shared/clock.js';
import { Readiness, startHealthServer } from '../shared/health-server.js';
import type { HttpListener } from '../shared/http-listener.js';
import type { Logger } from '../shared/logger.js';
import { startMetricsServer } from '../shared/metrics-server.js';
import type { ServeSettings } from './serve-flags.js';
import { startTrustLifecycle, type TrustLifecycle } from './trust-lifecycle.js';

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
  /** Hot reload, automatic rotation (root, issuer, JWT key) and trust metrics. */
  readonly trust: TrustLifecycle;
  /** JWT-SVID keys and minter (--jwt-enabled); the credentials watcher reloads them. */
  readonly jwt: JwtIssuance | null;
  /** The OIDC discovery server (--oidc-enabled). */
  readonly oidc: OidcService | null;
  readonly readiness: Readiness;
  /** Drains in-flight calls (up to graceMs), then stops everything it started. Idempotent. */
  close(graceMs?: number): Promise<void>;
}

export interface WardenServerDependencies {
  readonly logger: Logger;
  readonly clock?: Clock;
  /** Kubernetes mode: the API to use (tests pass a test server's); default from --kubeconfig/KUBECONFIG, else in-cluster. */
  readonly kubeConfig?: KubeConfig;
  /** Credentials watcher timings (default 300 ms debounce, 3 s stat fallback). */
  readonly credentialsWatch?: { readonly debounceMs?: number; readonly pollIntervalMs?: number };
  /** How often the rotation driver looks (default 30 s). */
  readonly rotationCheckIntervalMs?: number;
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
  // Kubernetes mode: --kubeconfig or KUBECONFIG when given, else the pod's service account.
  const kubeConfig =
    settings.mode === 'kubernetes'
      ? (deps.kubeConfig ?? (await import('../shared/kube-client.js')).loadKubeConfig({ inCluster: settings.kubeconfig === undefined, kubeconfigEnv: settings.kubeconfig }))
      : undefined;
  const cleanups: Array<() => Promise<unknown>> = [];
  const undo = async (): Promise<void> => {
    for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
  };
  try {
    const metrics = createSentryMetrics();
    const ca =
      kubeConfig !== undefined
        ? await (await import('./kubernetes-mode.js')).startKubernetesModeCa(settings, { kubeConfig, clock, logger, registry: metrics.registry })
        : await startFileCa({
      credentialsDir: settings.credentials.directory,
      caFilename: path.basename(settings.credentials.caFile),
      issuerCertificateFilename: path.basename(settings.credentials.certificateFile),
      issuerKeyFilename: path.basename(settings.credentials.keyFile),
      rootKeyFilename: settings.rotation.rootKeyFilename,
      keepRootKey: settings.rotation.keepRootKey,
      // The trust monitor owns the expiry warning (with its metric, once a day per certificate).
      expiryWarningDays: 0,
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
        kubeConfig,
        controlPlaneTrustDomain: settings.trustDomain,
      }),
    );
    cleanups.push(() => validators.closeAll());
    await validators.startAll();

    const jwt = settings.jwt.enabled
      ? await (await import('../issuer/jwt/jwt-issuance.js')).openJwtIssuance({
          // Kubernetes mode: in the trust Secret, so that every replica signs with one key.
          store:
            kubeConfig !== undefined
              ? new (await import('../ca/kubernetes/kubernetes-jwt-key-store.js')).KubernetesJwtKeyStore({
                  kubeConfig,
                  namespace: settings.namespace,
                  name: settings.kubernetes.trustBundleName,
                  keyFilename: settings.jwt.keyFilename,
                  jwksFilename: settings.jwt.jwksFilename,
                  algorithm: settings.jwt.algorithm,
                  keyId: settings.jwt.keyId,
                  maxTokenLifetimeMs: settings.jwt.ttlMs + settings.leafProfile.skewMs,
                  clock,
                  logger,
                })
              : undefined,
          credentialsDir: settings.credentials.directory,
          keyFilename: settings.jwt.keyFilename,
          jwksFilename: settings.jwt.jwksFilename,
          algorithm: settings.jwt.algorithm,
          keyId: settings.jwt.keyId,
          issuer: settings.jwt.issuer,
          ttlMs: settings.jwt.ttlMs,
          skewMs: settings.leafProfile.skewMs,
          clock,
          logger,
        })
      : null;
    if (jwt && 'onSecretChange' in ca) {
      // The JWT keys live in the trust Secret: its watch reloads them too.
      const unsubscribe = ca.onSecretChange(() => jwt.reload());
      cleanups.push(async () => unsubscribe());
    }

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
      inFlightLimits: settings.inFlightLimits,
      jwtMinter: jwt?.minter,
    });
    cleanups.push(() => grpc.close(0));
    signer.startWorkers();

    const oidc =
      jwt && settings.oidc.enabled
        ? await (await import('../issuer/oidc/oidc-service.js')).startOidcService({
            ...settings.oidc,
            issuer: settings.jwt.issuer,
            keys: jwt.keys,
            certificateAuthority: {
              signer,
              trustSource: ca,
              trustDomain: settings.trustDomain,
              namespace: settings.namespace,
              metrics,
            },
            clock,
            logger,
          })
        : null;
    if (oidc) cleanups.push(() => oidc.close());

    const trust = startTrustLifecycle({
      settings,
      ca,
      jwt,
      registry: metrics.registry,
      clock,
      logger,
      watch: deps.credentialsWatch,
      rotationCheckIntervalMs: deps.rotationCheckIntervalMs,
    });
    cleanups.push(() => trust.close());

    const readiness = new Readiness();
    readiness.register('trust-material', () => ca.ready());
    readiness.register('issuer-validity', () => issuerChainValidAt(ca.current(), clock.now()));
    registerIssuerReadiness(readiness, grpc, validators);
    if (oidc) readiness.register('oidc', () => oidc.ready());
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
      trust,
      grpc,
      health,
      metrics: metricsListener,
      jwt,
      oidc,
      readiness,
      close(graceMs = 10_000) {
        closing ??= (async () => {
          await trust.close();
          await grpc.close(graceMs);
          await oidc?.close();
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
