import type { X509Certificate } from 'node:crypto';

/** Facts about a certificate for logs, status and messages: never anything secret. */

/** Subject as "O=example, CN=warden-root" (Node separates RDNs with newlines). */
export function subjectText(cert: X509Certificate): string {
  const text = cert.subject
    .split('\n')
    .filter((s) => s.length > 0)
    .join(', ');
  return text.length > 0 ? text : '(empty subject)';
}

/** SHA-256 of the DER, as upper-case hex pairs joined by ":" (what `openssl x509 -fingerprint -sha256` prints). */
export function sha256Fingerprint(cert: X509Certificate): string {
  return cert.fingerprint256;
}

export function certificateValidity(cert: X509Certificate): {
  readonly notBefore: Date;
  readonly notAfter: Date;
} {
  // Node 20 exposes validity only as OpenSSL's text ("Jan  1 00:00:00 2026 GMT"), which
  // Date.parse reads; Node ≥ 22.10's validFromDate is not available here.
  const notBefore = new Date(Date.parse(cert.validFrom));
  const notAfter = new Date(Date.parse(cert.validTo));
  if (Number.isNaN(notBefore.getTime()) || Number.isNaN(notAfter.getTime())) {
    throw new TypeError(`unreadable certificate validity "${cert.validFrom}" – "${cert.validTo}"`);
  }
  return { notBefore, notAfter };
}

/** The URI SANs that are SPIFFE IDs, in certificate order. */
export function spiffeIdsOf(cert: X509Certificate): string[] {
  const san = cert.subjectAltName;
  if (!san) return [];
  return san
    .split(/,\s*/)
    .filter((entry) => entry.startsWith('URI:spiffe://'))
    .map((entry) => entry.slice('URI:'.length));
}
