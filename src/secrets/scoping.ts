import type { SecretData } from './secret-store.js';

/**
 * Secret scoping, exactly as Dapr's Configuration `spec.secrets.scopes` and Component
 * `scopes`. Pure functions over parsed data: the API calls them, tests table them.
 */

export type DefaultAccess = 'allow' | 'deny';

export interface SecretScope {
  readonly storeName: string;
  readonly defaultAccess: DefaultAccess;
  readonly allowedSecrets: readonly string[];
  readonly deniedSecrets: readonly string[];
}

/** storeName → scope; a store without an entry is unrestricted. */
export type SecretScopes = ReadonlyMap<string, SecretScope>;

export const NO_SECRET_SCOPES: SecretScopes = new Map();

/**
 * Dapr's precedence: a non-empty allowedSecrets decides alone (only those names); else a
 * name in deniedSecrets is denied; else defaultAccess. Matching is exact and
 * case-sensitive. A store with no scope entry allows everything.
 */
export function isSecretAllowed(scopes: SecretScopes, storeName: string, secretName: string): boolean {
  const scope = scopes.get(storeName);
  if (!scope) return true;
  if (scope.allowedSecrets.length > 0) return scope.allowedSecrets.includes(secretName);
  if (scope.deniedSecrets.includes(secretName)) return false;
  return scope.defaultAccess === 'allow';
}

/** A bulk answer with every secret the scope denies left out (the same rule as a single get). */
export function filterAllowedSecrets(
  scopes: SecretScopes,
  storeName: string,
  secrets: Readonly<Record<string, SecretData>>,
): Readonly<Record<string, SecretData>> {
  const out: Record<string, SecretData> = {};
  for (const [name, data] of Object.entries(secrets)) {
    if (isSecretAllowed(scopes, storeName, name)) Object.defineProperty(out, name, { value: data, enumerable: true });
  }
  return Object.freeze(out);
}

/**
 * Component `scopes`: the app ids allowed to use the component. An empty or missing list
 * allows every app. When the caller's app id is unknown (plain HTTP on loopback) the list
 * cannot be applied and the caller is let through; the API logs that on every request.
 */
export function isAppAllowedByComponentScopes(componentScopes: readonly string[] | undefined, appId: string | undefined): boolean {
  if (!componentScopes || componentScopes.length === 0) return true;
  if (appId === undefined) return true;
  return componentScopes.includes(appId);
}
