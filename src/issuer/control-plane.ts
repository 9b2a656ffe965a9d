/**
 * Dapr control-plane service ids. Only these, and only in the CA's own namespace, are
 * treated as control-plane identities (DNS SANs for the webhooks, Dapr's rule).
 */
export const CONTROL_PLANE_IDS: ReadonlySet<string> = new Set([
  'dapr-injector',
  'dapr-operator',
  'dapr-placement',
  'dapr-scheduler',
  'dapr-sentry',
]);

export function isControlPlaneIdentity(
  appId: string,
  namespace: string,
  caNamespace: string,
): boolean {
  return namespace === caNamespace && CONTROL_PLANE_IDS.has(appId);
}
