import type { TLSSocket } from 'node:tls';
import { WardenError } from '../../shared/errors.js';
import { parseSpiffeId } from '../../shared/spiffe-id.js';

/** Who is calling: an app proven by its X.509-SVID, or nobody (plain HTTP on loopback). */
export type CallerIdentity =
  | {
      readonly kind: 'svid';
      readonly spiffeId: string;
      readonly trustDomain: string;
      readonly namespace: string;
      readonly appId: string;
    }
  | { readonly kind: 'anonymous' };

interface SanEntry {
  readonly type: string;
  readonly value: string;
}

/**
 * Splits Node's `subjectAltName` text ("DNS:a, URI:spiffe://…"). Node quotes a value that
 * holds a comma, quote or unusual character in JSON string syntax, so a quoted value is
 * read with JSON.parse and a crafted DNS name cannot smuggle in a second "URI:" entry.
 */
export function parseSubjectAltNames(text: string): SanEntry[] | null {
  const entries: SanEntry[] = [];
  let i = 0;
  while (i < text.length) {
    const colon = text.indexOf(':', i);
    if (colon === -1) return null;
    const type = text.slice(i, colon);
    let value: string;
    let next: number;
    if (text[colon + 1] === '"') {
      let end = colon + 2;
      while (end < text.length && text[end] !== '"') end += text[end] === '\\' ? 2 : 1;
      if (end >= text.length) return null;
      try {
        value = JSON.parse(text.slice(colon + 1, end + 1)) as string;
      } catch {
        return null;
      }
      next = end + 1;
    } else {
      const comma = text.indexOf(', ', colon + 1);
      next = comma === -1 ? text.length : comma;
      value = text.slice(colon + 1, next);
    }
    entries.push({ type, value });
    if (next === text.length) break;
    if (text.slice(next, next + 2) !== ', ') return null;
    i = next + 2;
  }
  return entries;
}

function denied(reason: string): WardenError {
  return new WardenError('ERR_SECRET_PERMISSION_DENIED', `client certificate ${reason}`);
}

/**
 * The caller's app id from the verified client certificate: exactly one URI SAN, a SPIFFE
 * ID of Dapr's form `spiffe://<td>/ns/<namespace>/<app-id>` (and the expected trust domain
 * when one is configured). Anything else is ERR_SECRET_PERMISSION_DENIED (403).
 */
export function identityFromTlsSocket(socket: TLSSocket, expectedTrustDomain?: string): CallerIdentity {
  if (!socket.authorized) throw denied('was not verified');
  const certificate = socket.getPeerX509Certificate();
  if (!certificate) throw denied('is missing');
  const sans = parseSubjectAltNames(certificate.subjectAltName ?? '');
  if (!sans) throw denied('has a subjectAltName that cannot be read');
  const uris = sans.filter((entry) => entry.type === 'URI');
  if (uris.length !== 1) throw denied(`must carry exactly one URI SAN (found ${uris.length})`);
  const spiffeId = (uris[0] as SanEntry).value;
  const parsed = parseSpiffeId(spiffeId);
  if (!parsed) throw denied('URI SAN is not a valid SPIFFE ID');
  const [ns, namespace, appId, ...rest] = parsed.segments;
  if (ns !== 'ns' || namespace === undefined || appId === undefined || rest.length > 0) {
    throw denied('SPIFFE ID is not of the form spiffe://<trust-domain>/ns/<namespace>/<app-id>');
  }
  if (expectedTrustDomain !== undefined && parsed.trustDomain !== expectedTrustDomain) {
    throw denied(`SPIFFE ID is not in trust domain ${expectedTrustDomain}`);
  }
  return { kind: 'svid', spiffeId, trustDomain: parsed.trustDomain, namespace, appId };
}
