import { createSecureContext } from 'node:tls';
import { generateKeyPair, type KeyObject } from 'node:crypto';
import { promisify } from 'node:util';
import type { TrustSource } from '../../ca/trust-bundle.js';
import type { Clock } from '../../shared/clock.js';
import { describeError } from '../../shared/errors.js';
import type { Logger } from '../../shared/logger.js';
import { buildSpiffeId } from '../../shared/spiffe-id.js';
import type { CertificateSigner } from '../certificate-signer.js';
import type { SentryMetrics } from '../metrics.js';
import { buildServingCsrPem } from './serving-csr.js';

const generateKeyPairAsync = promisify(generateKeyPair);

/** The CA's own TLS identity for the gRPC port. */
export interface ServingMaterial {
  /** PEM: the serving leaf, then the issuer chain. */
  readonly certificateChainPem: string;
  /** PKCS#8 PEM of the serving key; held in memory only. */
  readonly privateKeyPem: string;
  readonly notBefore: Date;
  readonly notAfter: Date;
  readonly serialHex: string;
  /** Trust-bundle generation that signed it. */
  readonly generation: number;
}

export interface ServingCertificateOptions {
  readonly signer: CertificateSigner;
  readonly trustSource: TrustSource;
  /** Trust domain of the CA's SPIFFE ID (Dapr Sentry's --trust-domain). */
  readonly trustDomain: string;
  /** The CA's namespace (env NAMESPACE). */
  readonly namespace: string;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly metrics: SentryMetrics;
  /** How often the renewal ticker looks at the clock (default 30 s). */
  readonly checkIntervalMs?: number;
  /**
   * Another server of the CA's (the OIDC server) reuses this mechanism with its own DNS names
   * and a name for the log lines; default: the gRPC server's names.
   */
  readonly identity?: { readonly dnsNames: readonly string[]; readonly purpose: string };
}

/** `spiffe://<td>/ns/<ns>/dapr-sentry`: the ID Dapr clients pin when they connect. */
export function sentrySpiffeId(trustDomain: string, namespace: string): string {
  return buildSpiffeId(trustDomain, ['ns', namespace, 'dapr-sentry']);
}

/** DNS names so ordinary TLS clients (grpcurl, grpcio) can verify the CA by host name too. */
export function sentryDnsNames(namespace: string): readonly string[] {
  return Object.freeze([
    'localhost',
    'dapr-sentry',
    `dapr-sentry.${namespace}.svc`,
    `dapr-sentry.${namespace}.svc.cluster.local`,
  ]);
}

/** Renewal is due at half the certificate's lifetime, like Dapr's clients renew theirs. */
export function servingRenewalTime(
  material: Pick<ServingMaterial, 'notBefore' | 'notAfter'>,
): Date {
  const start = material.notBefore.getTime();
  return new Date(start + (material.notAfter.getTime() - start) / 2);
}

export type ServingMaterialListener = (material: ServingMaterial) => void;

/**
 * Issues and renews the CA's serving certificate through the same CertificateSigner as
 * workloads (a fresh P-256 key and CSR each time), at 50% of its lifetime and whenever the
 * trust material changes. A failed renewal keeps the current certificate, counts
 * dapr_sentry_servercert_issue_failed_total and is retried on the next tick. The ticker only
 * calls renewIfDue(); the decision uses the injected clock.
 */
export class ServingCertificate {
  readonly spiffeId: string;
  readonly dnsNames: readonly string[];
  /** Which server the certificate is for, in log lines ("gRPC", "OIDC"). */
  readonly purpose: string;
  readonly #options: ServingCertificateOptions;
  readonly #listeners = new Set<ServingMaterialListener>();
  #current: ServingMaterial | null = null;
  #inflight: Promise<boolean> | null = null;
  #again = false;
  #ticker: NodeJS.Timeout | null = null;
  #unsubscribe: (() => void) | null = null;

  constructor(options: ServingCertificateOptions) {
    this.#options = options;
    this.spiffeId = sentrySpiffeId(options.trustDomain, options.namespace);
    this.dnsNames = options.identity?.dnsNames ?? sentryDnsNames(options.namespace);
    this.purpose = options.identity?.purpose ?? 'gRPC';
  }

  current(): ServingMaterial | null {
    return this.#current;
  }

  /** When renewIfDue() will next renew, or null before the first issuance. */
  renewalTime(): Date | null {
    return this.#current ? servingRenewalTime(this.#current) : null;
  }

  /** Subscribes to new material; returns an unsubscribe function. */
  onChange(listener: ServingMaterialListener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /**
   * Issues the first certificate (rejects if it cannot: the server must not start without
   * one), then renews on trust changes and on the ticker.
   */
  async start(): Promise<ServingMaterial> {
    if (!(await this.renew('start'))) {
      throw new Error(`cannot issue the ${this.purpose} serving certificate; see the log`);
    }
    this.#unsubscribe = this.#options.trustSource.onChange(() => {
      void this.renew('trust material changed');
    });
    const interval = this.#options.checkIntervalMs ?? 30_000;
    this.#ticker = setInterval(() => void this.renewIfDue(), interval);
    this.#ticker.unref();
    return this.#current as ServingMaterial;
  }

  stop(): void {
    if (this.#ticker) clearInterval(this.#ticker);
    this.#ticker = null;
    this.#unsubscribe?.();
    this.#unsubscribe = null;
  }

  /** Renews when the clock has passed the renewal time; resolves true if it renewed. */
  async renewIfDue(): Promise<boolean> {
    const due = this.renewalTime();
    if (due !== null && this.#options.clock.now().getTime() < due.getTime()) return false;
    return this.renew('half of the lifetime has passed');
  }

  /**
   * Issues a new certificate now. A request that arrives while one is being issued runs once
   * more afterwards, so a trust change during issuance is never lost.
   */
  renew(reason: string): Promise<boolean> {
    if (this.#inflight) {
      this.#again = true;
      return this.#inflight;
    }
    const run = async (): Promise<boolean> => {
      let ok = await this.#issue(reason);
      while (this.#again) {
        this.#again = false;
        ok = await this.#issue(reason);
      }
      return ok;
    };
    this.#inflight = run().finally(() => {
      this.#inflight = null;
    });
    return this.#inflight;
  }

  async #issue(reason: string): Promise<boolean> {
    const { signer, logger, metrics } = this.#options;
    try {
      const { privateKey } = (await generateKeyPairAsync('ec', { namedCurve: 'prime256v1' })) as {
        privateKey: KeyObject;
      };
      const csrPem = buildServingCsrPem(privateKey);
      const issued = await signer.sign({
        csrPem: Buffer.from(csrPem, 'ascii'),
        spiffeId: this.spiffeId,
        dnsNames: this.dnsNames,
      });
      const privateKeyPem = privateKey.export({ format: 'pem', type: 'pkcs8' }) as string;
      // Prove the pair loads before handing it to the listener: grpc-js drops every new
      // connection if setSecureContext fails, so a bad pair must never get that far.
      createSecureContext({ cert: issued.certificateChainPem, key: privateKeyPem });
      const material: ServingMaterial = Object.freeze({
        certificateChainPem: issued.certificateChainPem,
        privateKeyPem,
        notBefore: issued.notBefore,
        notAfter: issued.notAfter,
        serialHex: issued.serialHex,
        generation: issued.generation,
      });
      this.#current = material;
      logger.info(
        {
          event: 'servingcert.issued',
          serial: material.serialHex,
          spiffeId: this.spiffeId,
          notAfter: material.notAfter.toISOString(),
          reason,
          purpose: this.purpose,
        },
        `issued the ${this.purpose} serving certificate`,
      );
      for (const listener of this.#listeners) listener(material);
      return true;
    } catch (err) {
      metrics.servingCertificateIssueFailed();
      logger.error(
        {
          event: 'servingcert.failed',
          err: describeError(err),
          reason,
          keepingSerial: this.#current?.serialHex ?? null,
          purpose: this.purpose,
        },
        `cannot issue the ${this.purpose} serving certificate; keeping the current one`,
      );
      return false;
    }
  }
}
