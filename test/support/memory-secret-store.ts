import { WardenError } from '../../src/shared/errors.js';
import type { SecretData, SecretStore } from '../../src/secrets/secret-store.js';
import type { SecretStoreRegistration } from '../../src/secrets/store-factory.js';

/**
 * A registry entry for tests of the registry and resolution machinery itself (not a store
 * under test): its secrets come from the Component's `seed` metadata (JSON), and it records
 * what was built and closed.
 */
export function memoryStoreRegistration(type: string): SecretStoreRegistration & { built: string[]; closed: string[]; metadataSeen: Record<string, Record<string, string>> } {
  const built: string[] = [];
  const closed: string[] = [];
  const metadataSeen: Record<string, Record<string, string>> = {};
  return {
    type,
    built,
    closed,
    metadataSeen,
    create: async (_component, context) => {
      built.push(context.componentName);
      metadataSeen[context.componentName] = { ...context.metadata };
      const secrets = JSON.parse(context.metadata.seed ?? '{}') as Record<string, SecretData>;
      let open = true;
      const store: SecretStore = {
        type,
        get: async (name) => {
          const data = secrets[name];
          if (!data) throw new WardenError('ERR_SECRET_NOT_FOUND', `secret "${name}" not found`);
          return data;
        },
        bulkGet: async () => secrets,
        features: () => ({ multipleKeyValuesPerSecret: true }),
        ready: () => open,
        close: async () => {
          if (open) closed.push(context.componentName);
          open = false;
        },
      };
      return store;
    },
  };
}
