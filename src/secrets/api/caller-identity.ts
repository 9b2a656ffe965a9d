import type { TLSSocket } from 'node:tls';
import { WardenError } from '../../shared/errors.js';
import { parseSpiffeId } from '../../shared/spiffe-id.js';
import { parseSubjectAltNames, type SanEntry } from '../../shared/subject-alt-names.js';

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

// The parser moved to src/shared so the sidecar client can pin the CA's SPIFFE ID with it too.
export { parseSubjectAltNames } from '../../shared/subject-alt-names.js';

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
