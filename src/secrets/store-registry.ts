import type { SecretStoreFactory, SecretStoreRegistration } from './store-factory.js';
import { createEnvSecretStore, ENV_SECRET_STORE_TYPE } from './stores/env/env-secret-store.js';
import { createFileSecretStore, FILE_SECRET_STORE_TYPE } from './stores/file/file-secret-store.js';
import { createVaultSecretStore, VAULT_SECRET_STORE_TYPE } from './stores/vault/vault-secret-store.js';

export type { SecretStoreFactory, SecretStoreRegistration, StoreContext } from './store-factory.js';

/**
 * Every secret store type Warden can build, keyed by Component `spec.type`. One line per
 * store; `secretstores.kubernetes` and `secretstores.hashicorp.vault` each add theirs.
 */
export const SECRET_STORE_TYPES: readonly SecretStoreRegistration[] = [
  { type: FILE_SECRET_STORE_TYPE, create: createFileSecretStore },
  { type: ENV_SECRET_STORE_TYPE, create: createEnvSecretStore },
  {
    type: VAULT_SECRET_STORE_TYPE,
    create: (_component, context) =>
      createVaultSecretStore(context.metadata, { logger: context.logger, clock: context.clock, env: context.env }),
  },
  {
    type: 'secretstores.kubernetes',
    // Loaded on first use: @kubernetes/client-node is large and only this store needs it.
    create: async (_component, context) => {
      const { createKubernetesSecretStore } = await import('./stores/kubernetes/index.js');
      const store = createKubernetesSecretStore(context.metadata, { logger: context.logger, clock: context.clock, env: context.env });
      await store.whenReady();
      return store;
    },
  },
];

/** The factory for a Component type from a registry (the built-in one unless given). */
export function findSecretStoreFactory(
  type: string,
  registry: readonly SecretStoreRegistration[] = SECRET_STORE_TYPES,
): SecretStoreFactory | undefined {
  return registry.find((entry) => entry.type === type)?.create;
}

export function supportedSecretStoreTypes(registry: readonly SecretStoreRegistration[] = SECRET_STORE_TYPES): string[] {
  return registry.map((entry) => entry.type);
}
