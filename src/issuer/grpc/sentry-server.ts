import type { SecureContextOptions } from 'node:tls';
import { Server, ServerCredentials } from '@grpc/grpc-js';
import { issuingCertificate, type TrustBundle, type TrustSource } from '../../ca/trust-bundle.js';
import { systemClock, type Clock } from '../../shared/clock.js';
import type { Readiness } from '../../shared/health-server.js';
import { silentLogger, type Logger } from '../../shared/logger.js';
import type { CertificateSigner } from '../certificate-signer.js';
import type { JwtSvidMinter } from '../jwt/jwt-svid.js';
import { createSentryMetrics, type SentryMetrics } from '../metrics.js';
import { MAX_REQUEST_BYTES } from '../request-rules.js';
import type { ValidatorRegistry } from '../validator-registry.js';
import {
  DEFAULT_IN_FLIGHT_LIMITS,
  InFlightLimiter,
  limitInFlight,
  type InFlightLimits,
} from './in-flight-limit.js';
import { loadSentryServiceDefinition } from './sentry-proto.js';
import { ServingCertificate, type ServingMaterial } from './serving-certificate.js';
import { createSignCertificateHandler } from './sign-certificate-handler.js';

/**
 * Server credentials whose certificate can be replaced while the server runs. grpc-js
 * subscribes to credentials (`_addWatcher`) and calls Node's `setSecureContext()` on its
 * HTTP/2 TLS server with whatever `updateSecureContextOptions()` publishes: new handshakes
 * get the new certificate, established connections keep theirs. The initial options are
 * present at bind time, so no connection is ever accepted without a certificate.
 */
class RotatingServerCredentials extends ServerCredentials {
  constructor(initial: SecureContextOptions) {
    // requestCert false: Dapr's CA serves TLS without client authentication.
    super({ requestCert: false, rejectUnauthorized: false, minVersion: 'TLSv1.2' }, initial);
  }

  replace(options: SecureContextOptions): void {
    this.updateSecureContextOptions(options);
  }

  override _equals(other: ServerCredentials): boolean {
    return other === this;
  }
}

function contextOptions(material: ServingMaterial): SecureContextOptions {
  return { cert: material.certificateChainPem, key: material.privateKeyPem, minVersion: 'TLSv1.2' };
}

export interface SentryServerTlsOptions {
  /** Trust domain of the CA's own SPIFFE ID (Dapr Sentry's --trust-domain, default localhost). */
  readonly trustDomain: string;
  /** How often the serving-certificate renewal ticker checks the clock (default 30 s). */
  readonly renewalCheckIntervalMs?: number;
}

export interface SentryServerOptions {
  readonly signer: CertificateSigner;
  readonly trustSource: TrustSource;
  readonly validators: ValidatorRegistry;
  readonly tls: SentryServerTlsOptions;
  /** The CA's namespace (env NAMESPACE): the serving SPIFFE ID and control-plane DNS SANs use it. */
  readonly caNamespace: string;
  readonly listenAddress: string;
  /** 0 picks a free port (tests). */
  readonly port: number;
  readonly logger?: Logger;
  readonly metrics?: SentryMetrics;
  readonly clock?: Clock;
  /** Whole-message cap (default 64 KiB), enforced by grpc-js before the request is decoded. */
  readonly maxRequestBytes?: number;
  /** Calls worked on at once, overall and per caller address (default DEFAULT_IN_FLIGHT_LIMITS). */
  readonly inFlightLimits?: InFlightLimits;
  /** With --jwt-enabled: every response also carries JWT-SVIDs. */
  readonly jwtMinter?: JwtSvidMinter | undefined;
}

export interface SentryServer {
  /** The bound address and port (the real port when 0 was asked for). */
  readonly listenAddress: string;
  readonly port: number;
  readonly servingCertificate: ServingCertificate;
  /** True while listening with a serving certificate. */
  ready(): boolean;
  /**
   * Stops accepting new calls, lets in-flight calls finish for up to `graceMs` (default
   * 10 s), then cancels what is left. Idempotent. Validators and the signer are not closed:
   * their owner closes them.
   */
  close(graceMs?: number): Promise<void>;
}

function recordIssuer(metrics: SentryMetrics, bundle: TrustBundle): void {
  metrics.issuerCertificateExpiry(new Date(issuingCertificate(bundle).validTo));
}

/**
 * Starts Dapr's `dapr.proto.sentry.v1.CA` service over TLS: issues the serving certificate
 * first (through the signer), then binds. Rejects when the certificate cannot be issued or
 * the port cannot be bound.
 */
export async function createSentryServer(options: SentryServerOptions): Promise<SentryServer> {
  const logger = (options.logger ?? silentLogger).child({ component: 'sentry-grpc' });
  const metrics = options.metrics ?? createSentryMetrics();
  const clock = options.clock ?? systemClock;
  const maxRequestBytes = options.maxRequestBytes ?? MAX_REQUEST_BYTES;

  recordIssuer(metrics, options.trustSource.current());
  // Counted only when the signing issuer changes: a rotation's prepare and retire change
  // only the anchors.
  let issuerFingerprint = issuingCertificate(options.trustSource.current()).fingerprint256;
  const unsubscribeIssuerMetrics = options.trustSource.onChange((bundle) => {
    const fingerprint = issuingCertificate(bundle).fingerprint256;
    if (fingerprint !== issuerFingerprint) metrics.issuerCertificateChanged();
    issuerFingerprint = fingerprint;
    recordIssuer(metrics, bundle);
  });

  const servingCertificate = new ServingCertificate({
    signer: options.signer,
    trustSource: options.trustSource,
    trustDomain: options.tls.trustDomain,
    namespace: options.caNamespace,
    clock,
    logger,
    metrics,
    ...(options.tls.renewalCheckIntervalMs === undefined
      ? {}
      : { checkIntervalMs: options.tls.renewalCheckIntervalMs }),
  });
  let initial: ServingMaterial;
  try {
    initial = await servingCertificate.start();
  } catch (err) {
    unsubscribeIssuerMetrics();
    throw err;
  }
  const credentials = new RotatingServerCredentials(contextOptions(initial));
  const unsubscribeServing = servingCertificate.onChange((material) =>
    credentials.replace(contextOptions(material)),
  );

  const server = new Server({
    'grpc.max_receive_message_length': maxRequestBytes,
    // The answer is a few certificates; nothing legitimate comes close to this.
    'grpc.max_send_message_length': 1024 * 1024,
  });
  const limiter = new InFlightLimiter(options.inFlightLimits ?? DEFAULT_IN_FLIGHT_LIMITS);
  server.addService(loadSentryServiceDefinition(), {
    SignCertificate: limitInFlight(
      createSignCertificateHandler({
        signer: options.signer,
        validators: options.validators,
        caNamespace: options.caNamespace,
        maxRequestBytes,
        logger,
        metrics,
        jwtMinter: options.jwtMinter,
      }),
      limiter,
      { logger, metrics },
    ),
  });

  const host = options.listenAddress.includes(':')
    ? `[${options.listenAddress}]`
    : options.listenAddress;
  let port: number;
  try {
    port = await new Promise<number>((resolve, reject) => {
      server.bindAsync(`${host}:${options.port}`, credentials, (err, boundPort) =>
        err ? reject(err) : resolve(boundPort),
      );
    });
  } catch (err) {
    servingCertificate.stop();
    unsubscribeServing();
    unsubscribeIssuerMetrics();
    server.forceShutdown();
    throw err;
  }
  logger.info(
    {
      event: 'grpc.listening',
      address: options.listenAddress,
      port,
      spiffeId: servingCertificate.spiffeId,
    },
    'SignCertificate is being served',
  );

  let closing: Promise<void> | null = null;
  return Object.freeze({
    listenAddress: options.listenAddress,
    port,
    servingCertificate,
    ready: (): boolean => closing === null && servingCertificate.current() !== null,
    close(graceMs = 10_000): Promise<void> {
      closing ??= new Promise<void>((resolve) => {
        servingCertificate.stop();
        unsubscribeServing();
        unsubscribeIssuerMetrics();
        const deadline = setTimeout(() => {
          logger.warn(
            { event: 'grpc.force-shutdown', graceMs },
            'in-flight calls did not finish in time; cancelling them',
          );
          server.forceShutdown();
          resolve();
        }, graceMs);
        server.tryShutdown(() => {
          clearTimeout(deadline);
          logger.info({ event: 'grpc.stopped' }, 'SignCertificate server stopped');
          resolve();
        });
      });
      return closing;
    },
  });
}

/** Registers the gRPC server's and each validator's readiness for /healthz. */
export function registerIssuerReadiness(
  readiness: Readiness,
  server: SentryServer,
  validators: ValidatorRegistry,
): () => void {
  const removers = [readiness.register('sentry-grpc', () => server.ready())];
  for (const validator of validators.validators) {
    removers.push(readiness.register(`validator:${validator.name}`, () => validator.ready()));
  }
  return () => {
    for (const remove of removers) remove();
  };
}
