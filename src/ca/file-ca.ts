import type { Clock } from '../shared/clock.js';
import type { Logger } from '../shared/logger.js';
import type { FileLockOptions } from './file-lock.js';
import { createFileTrustStore, type FileTrustMaterialStore } from './file-trust-store.js';
import type { KeyAlgorithm } from './key-algorithm.js';
import { startTrustMaterialCa, type TrustMaterialCa } from './trust-material-ca.js';
import { DEFAULT_TRUST_MATERIAL_NAMES } from './trust-material.js';

/** Standalone mode: trust material in a directory, as Dapr Sentry keeps it. */
export interface FileCaOptions {
  /** --issuer-credentials */
  readonly credentialsDir: string;
  /** --issuer-ca-filename (default ca.crt) */
  readonly caFilename?: string;
  /** --issuer-certificate-filename (default issuer.crt) */
  readonly issuerCertificateFilename?: string;
  /** --issuer-key-filename (default issuer.key) */
  readonly issuerKeyFilename?: string;
  /** --root-key-filename (default root.key): where Warden keeps the key of a root it generated. */
  readonly rootKeyFilename?: string;
  /** Keep the generated root's key (default true); see TrustMaterialCaOptions.keepRootKey. */
  readonly keepRootKey?: boolean;
  /** --trust-domain of generated material (Dapr default localhost). */
  readonly trustDomain: string;
  readonly keyAlgorithm?: KeyAlgorithm;
  readonly rootTtlMs?: number;
  readonly issuerTtlMs?: number;
  readonly clock?: Clock;
  readonly logger?: Logger;
  /** Default true; false refuses to start without existing material. */
  readonly generateIfAbsent?: boolean;
  readonly expiryWarningDays?: number;
  readonly lock?: Partial<FileLockOptions>;
}

export interface FileCa extends TrustMaterialCa {
  /** The store, so a watcher can find the paths (store.pathOf) and call reload(). */
  readonly store: FileTrustMaterialStore;
}

export async function startFileCa(options: FileCaOptions): Promise<FileCa> {
  const store = createFileTrustStore({
    directory: options.credentialsDir,
    names: {
      anchors: options.caFilename ?? DEFAULT_TRUST_MATERIAL_NAMES.anchors,
      issuerChain: options.issuerCertificateFilename ?? DEFAULT_TRUST_MATERIAL_NAMES.issuerChain,
      issuerKey: options.issuerKeyFilename ?? DEFAULT_TRUST_MATERIAL_NAMES.issuerKey,
    },
    rootKeyName: options.rootKeyFilename,
    lock: options.lock,
    logger: options.logger,
  });
  const ca = await startTrustMaterialCa({
    store,
    trustDomain: options.trustDomain,
    keyAlgorithm: options.keyAlgorithm,
    rootTtlMs: options.rootTtlMs,
    issuerTtlMs: options.issuerTtlMs,
    clock: options.clock,
    logger: options.logger,
    generateIfAbsent: options.generateIfAbsent,
    expiryWarningDays: options.expiryWarningDays,
    keepRootKey: options.keepRootKey,
  });
  return { ...ca, store };
}
