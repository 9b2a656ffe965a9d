import type { KubeApiServer } from './kube-api-server/index.js';
import {
  DEFAULT_TRUST_MATERIAL_NAMES,
  TRUST_MATERIAL_PARTS,
  type TrustMaterialPem,
} from '../../src/ca/trust-material.js';
import {
  DEFAULT_TRUST_EXTRA_NAMES,
  TRUST_EXTRAS,
  type TrustExtras,
} from '../../src/ca/trust-store.js';

/** Raw access to the trust Secret and ConfigMap in a test server, as an operator's kubectl would have. */
const FIELD = {
  anchors: 'anchorsPem',
  issuerChain: 'issuerChainPem',
  issuerKey: 'issuerKeyPem',
} as const;

const b64 = (text: string): string => Buffer.from(text, 'utf8').toString('base64');
const unb64 = (text: string): string => Buffer.from(text, 'base64').toString('utf8');

export function secretData(
  server: KubeApiServer,
  namespace: string,
  name = 'dapr-trust-bundle',
): Record<string, string> {
  const secret = server.store.get('secrets', namespace, name) as
    { data?: Record<string, string> } | undefined;
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(secret?.data ?? {})) out[key] = unb64(value);
  return out;
}

/** Writes keys into the Secret (merged with what is there), unconditionally. */
export function putSecretKeys(
  server: KubeApiServer,
  namespace: string,
  keys: Record<string, string>,
  name = 'dapr-trust-bundle',
): void {
  const merged = { ...secretData(server, namespace, name), ...keys };
  const data: Record<string, string> = {};
  for (const [key, value] of Object.entries(merged)) data[key] = b64(value);
  server.store.put({ apiVersion: 'v1', kind: 'Secret', metadata: { name, namespace }, data });
}

export function materialKeys(parts: Partial<TrustMaterialPem>): Record<string, string> {
  const keys: Record<string, string> = {};
  for (const part of TRUST_MATERIAL_PARTS) {
    const text = parts[FIELD[part]];
    if (text !== undefined) keys[DEFAULT_TRUST_MATERIAL_NAMES[part]] = text;
  }
  return keys;
}

export function extraKeys(extras: TrustExtras): Record<string, string> {
  const keys: Record<string, string> = {};
  for (const extra of TRUST_EXTRAS) {
    const text = extras[extra];
    if (text !== undefined) keys[DEFAULT_TRUST_EXTRA_NAMES[extra]] = text;
  }
  return keys;
}

export function peekMaterial(server: KubeApiServer, namespace: string): Partial<TrustMaterialPem> {
  const data = secretData(server, namespace);
  const out: Partial<Record<keyof TrustMaterialPem, string>> = {};
  for (const part of TRUST_MATERIAL_PARTS) {
    const text = data[DEFAULT_TRUST_MATERIAL_NAMES[part]];
    if (text !== undefined) out[FIELD[part]] = text;
  }
  return out;
}

export function peekExtras(server: KubeApiServer, namespace: string): TrustExtras {
  const data = secretData(server, namespace);
  const out: Partial<Record<(typeof TRUST_EXTRAS)[number], string>> = {};
  for (const extra of TRUST_EXTRAS) {
    const text = data[DEFAULT_TRUST_EXTRA_NAMES[extra]];
    if (text !== undefined) out[extra] = text;
  }
  return out;
}

export function configMapData(
  server: KubeApiServer,
  namespace: string,
  name = 'dapr-trust-bundle',
): Record<string, string> | undefined {
  const cm = server.store.get('configmaps', namespace, name) as
    { data?: Record<string, string> } | undefined;
  return cm === undefined ? undefined : { ...(cm.data ?? {}) };
}

/** Writes a ConfigMap as an operator would (no Warden annotation unless given). */
export function putConfigMap(
  server: KubeApiServer,
  namespace: string,
  name: string,
  data: Record<string, string>,
  metadata: { labels?: Record<string, string>; annotations?: Record<string, string> } = {},
): void {
  server.store.put({
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: { name, namespace, ...metadata },
    data,
  });
}
