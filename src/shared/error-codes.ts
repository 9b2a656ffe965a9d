/**
 * Every error code Warden can return, with the sentence the README documents for it.
 * One section per block; a test fails when a code here is missing from README.md.
 */
export const ERROR_CODES = {
  // Configuration and start-up
  ERR_CONFIG_INVALID: 'A flag, environment variable or Configuration field is invalid.',
  // Certificate signing requests (gRPC SignCertificate)
  ERR_REQUEST_TOO_LARGE: 'The request, or one of its fields, is larger than the limit.',
  ERR_REQUEST_INVALID: 'A request field (id, namespace, trust domain, audiences) is malformed.',
  ERR_CSR_INVALID: 'The CSR is missing, not exactly one PEM block of the right type, or not valid DER.',
  ERR_CSR_SIGNATURE: 'The CSR signature does not verify (no proof of possession).',
  ERR_CSR_KEY_UNSUPPORTED: 'The CSR public key type or size is not accepted.',
  ERR_VALIDATOR_NOT_ENABLED: 'The token validator requested is unknown or not enabled.',
  ERR_IDENTITY_DENIED: 'The identity token did not prove the requested identity.',
  ERR_VALIDATOR_UNAVAILABLE: 'The validator cannot check identities right now (not ready, API unreachable).',
  ERR_OVERLOADED: 'Too many requests are in flight; retry with backoff.',
  ERR_DEADLINE_EXCEEDED: "The caller's deadline passed (or it cancelled) before the CA finished; nothing was issued.",
  ERR_SIGNING_FAILED: 'Signing failed inside the CA; details are in the server log only.',
  // Sidecar side of SignCertificate (warden request, SVID renewal)
  ERR_SENTRY_REQUEST_FAILED: "A SignCertificate call failed; the message carries the gRPC status name and the CA's answer.",
  ERR_SENTRY_NOT_TRUSTED: "The CA's TLS certificate did not chain to the trust anchors, or its SPIFFE ID was not the pinned one.",
  ERR_SVID_INVALID: 'The certificate the CA returned lacks the requested SPIFFE ID or key, or does not chain to the returned anchors.',
  // Trust material (root, issuer, anchors)
  ERR_TRUST_MATERIAL_INVALID: 'Loaded trust material failed validation (file/key named in the message).',
  ERR_TRUST_MATERIAL_IO: 'Trust material could not be read or written.',
  ERR_TRUST_MATERIAL_CONFLICT: 'Two copies of the trust material disagree; nothing is replaced automatically.',
  ERR_ROTATION_REFUSED: 'A rotation step is not allowed yet; the message says when it will be.',
  ERR_ROTATION_STATE: 'The rotation state is missing, corrupt or inconsistent with the material.',
  // JWT-SVIDs
  ERR_JWT_FAILED: 'A JWT-SVID could not be minted.',
  // Secrets block
  ERR_SECRET_STORES_NOT_CONFIGURED: 'No secret store is configured.',
  ERR_SECRET_STORE_NOT_FOUND: 'The named secret store does not exist.',
  ERR_SECRET_NOT_FOUND: 'The secret (or the key in it) does not exist in the store.',
  ERR_SECRET_NAME_INVALID: 'A secret name, key or path segment is malformed or escapes its scope.',
  ERR_SECRET_PERMISSION_DENIED: 'Scoping or the backend denies access to the secret.',
  ERR_SECRET_STORE_UNAVAILABLE: 'The secret store backend cannot be reached or is sealed/throttled.',
  ERR_SECRET_STORE_CONFIG: 'A secret store Component has invalid metadata.',
  ERR_SECRET_TOO_LARGE: 'A secret value is larger than the limit.',
  ERR_COMPONENT_INVALID: 'A Component manifest is malformed.',
  ERR_SECRET_REF_UNRESOLVED: 'A secretKeyRef or envRef in a Component could not be resolved.',
  ERR_SECRET_STORE_CYCLE: 'Secret stores reference each other in a cycle.',
  // Backends
  ERR_KUBERNETES_API: 'The Kubernetes API answered with an error.',
  ERR_VAULT_API: 'Vault answered with an error.',
} as const;

export type ErrorCode = keyof typeof ERROR_CODES;
