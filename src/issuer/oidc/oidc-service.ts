import { isIP } from 'node:net';
import type { JwtKeySource } from '../../ca/jwt/jwt-key-manager.js';
import type { TrustSource } from '../../ca/trust-bundle.js';
import type { Clock } from '../../shared/clock.js';
import type { Logger } from '../../shared/logger.js';
import type { CertificateSigner } from '../certificate-signer.js';
import { ServingCertificate, type ServingMaterial } from '../grpc/serving-certificate.js';
import type { SentryMetrics } from '../metrics.js';
import { startOidcServer, type OidcServer } from './oidc-server.js';
import {
  readTlsMaterialFiles,
  type TlsMaterial,
  type TlsMaterialProvider,
} from './tls-material.js';

export interface OidcServiceOptions {
  /** `--oidc-server-listen-address`. */
  readonly listenAddress: string;
  /** `--oidc-server-listen-port`; 0 picks a free port (tests). */
  readonly port: number;
  /** `--oidc-server-tls-*`: files, Warden's own CA (no files), or plain HTTP (disabled). */
  readonly tls: {
    readonly enabled: boolean;
    readonly certFile: string | undefined;
    readonly keyFile: string | undefined;
  };
  /** `--jwt-issuer`. */
  readonly issuer: string | undefined;
  /** `--oidc-jwks-uri`. */
  readonly jwksUri: string | undefined;
  /** `--oidc-path-prefix`, normalised. */
  readonly pathPrefix: string;
  /** `--oidc-allowed-hosts`, normalised. */
  readonly allowedHosts: readonly string[];
  /** The published keys. */
  readonly keys: JwtKeySource;
  /** Issues the server certificate when TLS is on and no files are given. */
  readonly certificateAuthority: {
    readonly signer: CertificateSigner;
    readonly trustSource: TrustSource;
    /** `--trust-domain` and the CA's namespace: the certificate carries the CA's SPIFFE ID. */
    readonly trustDomain: string;
    readonly namespace: string;
    readonly metrics: SentryMetrics;
  };
  readonly clock: Clock;
  readonly logger: Logger;
  /** How often the renewal ticker of a CA-issued certificate looks at the clock (default 30 s). */
  readonly renewalCheckIntervalMs?: number;
}

export interface OidcService {
  readonly server: OidcServer;
  /** The CA-issued certificate, or null when it comes from files or TLS is off. */
  readonly servingCertificate: ServingCertificate | null;
  /** True while listening with a certificate. */
  ready(): boolean;
  close(): Promise<void>;
}

/**
 * DNS names of a CA-issued OIDC server certificate: the allowed hosts and the issuer's host
 * (the names relying parties connect to), plus localhost. IP literals are left out: Warden's
 * leaves carry DNS and URI names only; use certificate files to serve an IP address.
 */
export function oidcServingDnsNames(
  allowedHosts: readonly string[],
  issuer: string | undefined,
): readonly string[] {
  const names = new Set<string>(['localhost']);
  const add = (host: string): void => {
    const name = host.toLowerCase().replace(/\.$/, '');
    if (name.length > 0 && isIP(name.replace(/^\[|\]$/g, '')) === 0) names.add(name);
  };
  for (const host of allowedHosts) add(host);
  if (issuer !== undefined) {
    try {
      const url = new URL(issuer);
      if (url.protocol === 'https:') add(url.hostname);
    } catch {
      // Not a URL (a plain-string issuer without OIDC): no host to add.
    }
  }
  return Object.freeze([...names]);
}

function tlsOf(material: ServingMaterial): TlsMaterial {
  return { cert: material.certificateChainPem, key: material.privateKeyPem };
}

/** Starts the OIDC discovery server with its TLS material; resolves once it listens. */
export async function startOidcService(options: OidcServiceOptions): Promise<OidcService> {
  let servingCertificate: ServingCertificate | null = null;
  let tls: TlsMaterial | TlsMaterialProvider | null = null;
  if (options.tls.enabled && options.tls.certFile !== undefined) {
    tls = await readTlsMaterialFiles(options.tls.certFile, options.tls.keyFile ?? '');
  } else if (options.tls.enabled) {
    const ca = options.certificateAuthority;
    const serving = new ServingCertificate({
      signer: ca.signer,
      trustSource: ca.trustSource,
      trustDomain: ca.trustDomain,
      namespace: ca.namespace,
      clock: options.clock,
      logger: options.logger.child({ component: 'oidc' }),
      metrics: ca.metrics,
      identity: {
        dnsNames: oidcServingDnsNames(options.allowedHosts, options.issuer),
        purpose: 'OIDC',
      },
      ...(options.renewalCheckIntervalMs === undefined
        ? {}
        : { checkIntervalMs: options.renewalCheckIntervalMs }),
    });
    const initial = await serving.start();
    servingCertificate = serving;
    let latest = tlsOf(initial);
    tls = {
      current: () => latest,
      onChange: (listener) =>
        serving.onChange((material) => {
          latest = tlsOf(material);
          listener(latest);
        }),
    };
  }

  let server: OidcServer;
  try {
    server = await startOidcServer({
      listenAddress: options.listenAddress,
      port: options.port,
      tls,
      jwks: () => options.keys.current().publishedJwks,
      issuer: options.issuer,
      jwksUri: options.jwksUri,
      pathPrefix: options.pathPrefix,
      allowedHosts: options.allowedHosts,
      logger: options.logger,
    });
  } catch (err) {
    servingCertificate?.stop();
    throw err;
  }

  let closing: Promise<void> | null = null;
  return Object.freeze({
    server,
    servingCertificate,
    ready: (): boolean =>
      closing === null && (servingCertificate === null || servingCertificate.current() !== null),
    close(): Promise<void> {
      closing ??= (async () => {
        servingCertificate?.stop();
        await server.close();
      })();
      return closing;
    },
  });
}
