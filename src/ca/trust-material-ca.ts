import { systemClock, type Clock } from '../shared/clock.js';
import { describeError, WardenError } from '../shared/errors.js';
import { silentLogger, type Logger } from '../shared/logger.js';
import { spiffeIdsOf } from './certificate-facts.js';
import type { KeyAlgorithm } from './key-algorithm.js';
import {
  buildStatusReport,
  certificatesExpiringWithin,
  type CertificateStatus,
} from './status-report.js';
import type { TrustBundle, TrustSource } from './trust-bundle.js';
import type { TrustMaterialPem } from './trust-material.js';
import type { TrustMaterialStore } from './trust-store.js';
import { validateTrustMaterial, type ValidatedTrustMaterial } from './validate.js';

export interface TrustMaterialCaOptions {
  readonly store: TrustMaterialStore;
  /** The trust domain of generated material (Dapr's --trust-domain). */
  readonly trustDomain: string;
  /** For generated material (default ecdsa-p256). */
  readonly keyAlgorithm?: KeyAlgorithm;
  readonly rootTtlMs?: number;
  readonly issuerTtlMs?: number;
  readonly clock?: Clock;
  readonly logger?: Logger;
  /** When false, absent material is an error instead of being generated (default true). */
  readonly generateIfAbsent?: boolean;
  /** Log a warning at start and reload when something expires within this many days (default 30). */
  readonly expiryWarningDays?: number;
  /**
   * When Warden generates the root, keep its private key in the store (root.key) so that it
   * can renew the issuer and rotate the root on its own (default true). With false the key
   * is discarded: no automatic rotation or renewal, as in Dapr.
   */
  readonly keepRootKey?: boolean;
}

/** The CA's trust material, live: what `issuer` signs with, plus lifecycle. */
export interface TrustMaterialCa extends TrustSource {
  /** How the material came to exist at start-up. */
  readonly origin: 'generated' | 'loaded';
  /** True from start until close(). */
  ready(): boolean;
  /**
   * Re-reads and validates the stored material. When it is valid and differs from the
   * current material, it becomes current with generation + 1 and listeners are told;
   * identical material changes nothing. When it is missing or invalid, the current bundle
   * stays and the WardenError is logged and thrown. Calls are serialised, so a file
   * watcher may call it on every event.
   */
  reload(): Promise<TrustBundle>;
  /** Called with the error each time reload() refuses new material; returns an unsubscribe function. */
  onReloadRefused(listener: (error: unknown) => void): () => void;
  close(): Promise<void>;
}

/** Loads (or, when absent, generates and stores) trust material and serves it as a TrustSource. */
export async function startTrustMaterialCa(
  options: TrustMaterialCaOptions,
): Promise<TrustMaterialCa> {
  const { store } = options;
  const clock = options.clock ?? systemClock;
  const logger = options.logger ?? silentLogger;
  const warnDays = options.expiryWarningDays ?? 30;

  let origin: 'generated' | 'loaded' = 'loaded';
  let material: TrustMaterialPem | null;
  try {
    material = await store.load();
    if (material === null) {
      if (options.generateIfAbsent === false) {
        throw new WardenError(
          'ERR_TRUST_MATERIAL_INVALID',
          `no trust material in ${store.describe()}`,
        );
      }
      // Generation needs @peculiar/x509 (≈ 150 ms to load); starting with existing material
      // never loads it (issue 7: cold start).
      const { generateTrustMaterial } = await import('./generate.js');
      const generated = await generateTrustMaterial({
        trustDomain: options.trustDomain,
        keyAlgorithm: options.keyAlgorithm,
        rootTtlMs: options.rootTtlMs,
        issuerTtlMs: options.issuerTtlMs,
        clock,
      });
      const keepRootKey = options.keepRootKey ?? true;
      const extras = keepRootKey ? { rootKey: generated.root.privateKeyPem } : {};
      if ((await store.create(generated.material, extras)) === 'created') {
        origin = 'generated';
        material = generated.material;
        if (keepRootKey) {
          logger.info(
            { store: store.describe(), file: store.extraNames.rootKey },
            'kept the root key so that Warden can renew the issuer and rotate the root',
          );
        }
      } else {
        // Another process or replica won the race: use its material, discard ours.
        material = await store.load();
        if (material === null) {
          throw new WardenError(
            'ERR_TRUST_MATERIAL_IO',
            `trust material in ${store.describe()} vanished while starting`,
          );
        }
      }
    }
  } catch (err) {
    logger.error(
      { store: store.describe(), error: describeError(err) },
      'cannot obtain trust material',
    );
    throw err;
  }

  let validated: ValidatedTrustMaterial;
  try {
    validated = validateTrustMaterial(material, { clock, names: store.names });
  } catch (err) {
    logger.error(
      { store: store.describe(), error: describeError(err) },
      'stored trust material is invalid',
    );
    throw err;
  }

  let current = createTrustBundle(validated, 1);
  logger.info(
    {
      store: store.describe(),
      generation: current.generation,
      ...certificateSummary(current, clock),
    },
    origin === 'generated' ? 'generated new trust material' : 'loaded existing trust material',
  );
  warnAboutTrustDomain(current, options.trustDomain, logger);
  warnAboutExpiry(current, clock, warnDays, logger);

  const listeners = new Set<(bundle: TrustBundle) => void>();
  const refusedListeners = new Set<(error: unknown) => void>();
  let open = true;
  let queue: Promise<unknown> = Promise.resolve();

  async function doReload(): Promise<TrustBundle> {
    if (!open) throw new TypeError('reload() after close()');
    let next: ValidatedTrustMaterial;
    try {
      const loaded = await store.load();
      if (loaded === null) {
        throw new WardenError(
          'ERR_TRUST_MATERIAL_INVALID',
          `trust material disappeared from ${store.describe()}`,
        );
      }
      next = validateTrustMaterial(loaded, { clock, names: store.names });
    } catch (err) {
      logger.error(
        { store: store.describe(), generation: current.generation, error: describeError(err) },
        'reload refused: keeping the current trust material',
      );
      for (const listener of [...refusedListeners]) {
        try {
          listener(err);
        } catch (listenerErr) {
          logger.error({ error: describeError(listenerErr) }, 'a reload-refused listener failed');
        }
      }
      throw err;
    }
    if (
      next.anchorsPem === current.anchorsPem &&
      next.issuerChainPem === current.issuerChainPem &&
      next.issuerKeyPem === current.issuerKeyPem
    ) {
      logger.debug({ generation: current.generation }, 'reload found the trust material unchanged');
      return current;
    }
    const bundle = createTrustBundle(next, current.generation + 1);
    current = bundle;
    logger.info(
      {
        store: store.describe(),
        generation: bundle.generation,
        ...certificateSummary(bundle, clock),
      },
      'reloaded trust material',
    );
    warnAboutTrustDomain(bundle, options.trustDomain, logger);
    warnAboutExpiry(bundle, clock, warnDays, logger);
    for (const listener of [...listeners]) {
      try {
        listener(bundle);
      } catch (err) {
        logger.error({ error: describeError(err) }, 'a trust-bundle listener failed');
      }
    }
    return bundle;
  }

  return {
    origin,
    current: () => current,
    onChange(listener) {
      listeners.add(listener);
      return () => {
        listeners.delete(listener);
      };
    },
    onReloadRefused(listener) {
      refusedListeners.add(listener);
      return () => {
        refusedListeners.delete(listener);
      };
    },
    ready: () => open,
    reload() {
      const run = queue.then(doReload, doReload);
      queue = run.catch(() => undefined);
      return run;
    },
    async close() {
      open = false;
      listeners.clear();
      refusedListeners.clear();
      await queue;
    },
  };
}

/** Freezes validated material into a TrustBundle of the given generation. */
export function createTrustBundle(
  validated: ValidatedTrustMaterial,
  generation: number,
): TrustBundle {
  if (!Number.isInteger(generation) || generation < 1)
    throw new TypeError('generation must be a positive integer');
  return Object.freeze({
    generation,
    anchorsPem: validated.anchorsPem,
    anchors: validated.anchors,
    issuerChainPem: validated.issuerChainPem,
    issuerChain: validated.issuerChain,
    issuerKeyPem: validated.issuerKeyPem,
    issuerKey: validated.issuerKey,
  });
}

/** Log fields naming the material: subjects, fingerprints, expiry. Never key material. */
function certificateSummary(bundle: TrustBundle, clock: Clock): Record<string, unknown> {
  const report = buildStatusReport(bundle, clock);
  const brief = (c: CertificateStatus): Record<string, string> => ({
    subject: c.subject,
    sha256Fingerprint: c.sha256Fingerprint,
    notAfter: c.notAfter,
  });
  return { anchors: report.anchors.map(brief), issuer: brief(report.issuer) };
}

function warnAboutTrustDomain(bundle: TrustBundle, trustDomain: string, logger: Logger): void {
  const issuing = bundle.issuerChain[0];
  if (!issuing) return;
  const ids = spiffeIdsOf(issuing);
  if (ids.length > 0 && !ids.includes(`spiffe://${trustDomain}`)) {
    logger.warn(
      { issuerSpiffeIds: ids, trustDomain },
      'the issuer certificate names a different trust domain',
    );
  }
}

/** Dapr documents a root-expiry warning that no longer exists (#8652); Warden logs one. */
function warnAboutExpiry(bundle: TrustBundle, clock: Clock, days: number, logger: Logger): void {
  const expiring = certificatesExpiringWithin(buildStatusReport(bundle, clock), days);
  for (const cert of expiring) {
    logger.warn(
      {
        role: cert.role,
        subject: cert.subject,
        sha256Fingerprint: cert.sha256Fingerprint,
        notAfter: cert.notAfter,
        daysLeft: cert.daysLeft,
      },
      `trust material expires within ${days} days`,
    );
  }
}
