/**
 * Kubernetes object-name rules (apimachinery's IsDNS1123Subdomain / IsDNS1123Label), checked
 * before a name goes anywhere near an API path.
 */
const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

/** Names of most objects (Secrets, ConfigMaps, Pods): ≤ 253 chars, lowercase alphanumerics, '-' and '.'. */
export function isDns1123Subdomain(value: string): boolean {
  return value.length > 0 && value.length <= 253 && DNS1123_SUBDOMAIN.test(value);
}

/** Namespace names: ≤ 63 chars, lowercase alphanumerics and '-'. */
export function isDns1123Label(value: string): boolean {
  return value.length > 0 && value.length <= 63 && DNS1123_LABEL.test(value);
}
