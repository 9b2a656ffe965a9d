/** Default object names of Kubernetes mode (Dapr's), in a module that loads no client. */
export const DEFAULT_TRUST_BUNDLE_NAME = 'dapr-trust-bundle';
export const DEFAULT_ANCHORS_CONFIGMAP_NAME = 'dapr-root-ca.crt';
