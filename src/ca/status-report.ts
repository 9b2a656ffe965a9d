import type { X509Certificate } from 'node:crypto';
import type { Clock } from '../shared/clock.js';
import {
  certificateValidity,
  sha256Fingerprint,
  spiffeIdsOf,
  subjectText,
} from './certificate-facts.js';
import { classifyKey } from './key-algorithm.js';
import type { TrustBundle } from './trust-bundle.js';

const DAY_MS = 86_400_000;

export type CertificateRole = 'anchor' | 'issuer' | 'intermediate';

/** One certificate as `warden status` shows it; plain data, JSON-safe. */
export interface CertificateStatus {
  readonly role: CertificateRole;
  readonly subject: string;
  /** The first SPIFFE ID among the URI SANs, or null (a BYO CA may carry none). */
  readonly spiffeId: string | null;
  readonly sha256Fingerprint: string;
  readonly serialNumber: string;
  readonly publicKey: string;
  readonly notBefore: string;
  readonly notAfter: string;
  /** Whole days until notAfter (rounded down; negative once expired). */
  readonly daysLeft: number;
}

export interface TrustStatusReport {
  readonly checkedAt: string;
  readonly generation: number;
  readonly anchors: readonly CertificateStatus[];
  readonly issuer: CertificateStatus;
  /** Certificates between the issuer and an anchor, issuer side first (usually none). */
  readonly intermediates: readonly CertificateStatus[];
}

/** What `warden status` reports about a bundle at the clock's current time. */
export function buildStatusReport(bundle: TrustBundle, clock: Clock): TrustStatusReport {
  const now = clock.now();
  const [issuer, ...intermediates] = bundle.issuerChain;
  if (!issuer) throw new TypeError('trust bundle without an issuer certificate');
  return {
    checkedAt: now.toISOString(),
    generation: bundle.generation,
    anchors: bundle.anchors.map((cert) => describeCertificate(cert, 'anchor', now)),
    issuer: describeCertificate(issuer, 'issuer', now),
    intermediates: intermediates.map((cert) => describeCertificate(cert, 'intermediate', now)),
  };
}

/** The certificates (anchors, issuer, intermediates) whose notAfter is within `days` of the report's time. */
export function certificatesExpiringWithin(
  report: TrustStatusReport,
  days: number,
): CertificateStatus[] {
  if (!Number.isFinite(days) || days < 0) throw new TypeError('days must be a non-negative number');
  const limit = Date.parse(report.checkedAt) + days * DAY_MS;
  return [...report.anchors, report.issuer, ...report.intermediates].filter(
    (cert) => Date.parse(cert.notAfter) <= limit,
  );
}

/** True when the issuer, an intermediate or any anchor expires within `days`. */
export function expiresWithin(report: TrustStatusReport, days: number): boolean {
  return certificatesExpiringWithin(report, days).length > 0;
}

function describeCertificate(
  cert: X509Certificate,
  role: CertificateRole,
  now: Date,
): CertificateStatus {
  const { notBefore, notAfter } = certificateValidity(cert);
  return {
    role,
    subject: subjectText(cert),
    spiffeId: spiffeIdsOf(cert)[0] ?? null,
    sha256Fingerprint: sha256Fingerprint(cert),
    serialNumber: cert.serialNumber.toLowerCase(),
    publicKey: classifyKey(cert.publicKey).description,
    notBefore: notBefore.toISOString(),
    notAfter: notAfter.toISOString(),
    daysLeft: Math.floor((notAfter.getTime() - now.getTime()) / DAY_MS),
  };
}
