import { WardenError } from '../shared/errors.js';
import { buildSpiffeId } from '../shared/spiffe-id.js';
import type { WorkloadCertificateRequest } from './certificate-signer.js';
import type { ValidatedIdentity } from './validator.js';

/**
 * Dapr's webhook services: the control-plane ids whose certificates also serve an HTTPS
 * webhook and so need the Service's DNS name (Dapr's rule, in the CA's namespace only).
 */
const WEBHOOK_SERVICE_BY_ID: Readonly<Record<string, string>> = Object.freeze({
  'dapr-injector': 'dapr-sidecar-injector',
  'dapr-operator': 'dapr-webhook',
});

/** `spiffe://<td>/ns/<namespace>/<app-id>`, built only from validated segments. */
export function workloadSpiffeId(
  identity: Pick<ValidatedIdentity, 'trustDomain' | 'namespace' | 'appId'>,
): string {
  return buildSpiffeId(identity.trustDomain, ['ns', identity.namespace, identity.appId]);
}

/** The DNS SANs an identity gets: none, unless it is a control-plane webhook in the CA's namespace. */
export function controlPlaneDnsNames(
  identity: ValidatedIdentity,
  caNamespace: string,
): readonly string[] {
  if (!identity.controlPlane || identity.namespace !== caNamespace) return [];
  const service = WEBHOOK_SERVICE_BY_ID[identity.appId];
  return service === undefined ? [] : [`${service}.${identity.namespace}.svc`];
}

/**
 * The CA's own identity is never issued through SignCertificate, whatever the validator says
 * and in any trust domain: sidecars pin `.../ns/<ca namespace>/dapr-sentry`, so a holder could
 * pose as the CA, collect the identity tokens sidecars send, and replay them. The serving
 * certificate is requested by the server itself, not through this path.
 */
export function assertNotCaIdentity(identity: ValidatedIdentity, caNamespace: string): void {
  if (identity.appId === 'dapr-sentry' && identity.namespace === caNamespace) {
    throw new WardenError(
      'ERR_IDENTITY_DENIED',
      `the CA's own identity (dapr-sentry in namespace ${caNamespace}) is never issued to callers`,
    );
  }
}

/**
 * What the signer is asked for: the CSR bytes as received (only its public key is used) and
 * an identity decided entirely by the validator.
 */
export function certificateRequestFor(
  identity: ValidatedIdentity,
  csrPem: Uint8Array,
  caNamespace: string,
): WorkloadCertificateRequest {
  assertNotCaIdentity(identity, caNamespace);
  return Object.freeze({
    csrPem,
    spiffeId: workloadSpiffeId(identity),
    dnsNames: Object.freeze([...controlPlaneDnsNames(identity, caNamespace)]),
  });
}
