import type { Logger } from '../shared/logger.js';
import type { Clock } from '../shared/clock.js';
import type { WardenEnv } from '../shared/env.js';
import type { SecretStore } from './secret-store.js';
import type { SecretStoreComponent } from './components/component.js';
import type { StoreMetadata } from './store-metadata.js';

/** Dapr's `--mode`: decides the default secret store (`kubernetes` there, none standalone). */
export type RuntimeMode = 'standalone' | 'kubernetes';

/** Everything a store factory may use; stores read nothing else (no process.env, no cwd). */
export interface StoreContext {
  /** The Component's `metadata.name`, for messages and logs. */
  readonly componentName: string;
  /** The Component's `spec.metadata`, every secretKeyRef/envRef already resolved. */
  readonly metadata: StoreMetadata;
  /** A child logger already bound to the component name. */
  readonly logger: Logger;
  readonly clock: Clock;
  readonly env: WardenEnv;
  readonly mode: RuntimeMode;
  /** Relative paths in metadata (e.g. `secretsFile`) resolve against this, as Dapr's do against its cwd. */
  readonly workingDirectory: string;
}

/**
 * Builds a ready store from a secret-store Component. Rejects with a WardenError
 * (ERR_SECRET_STORE_CONFIG for bad metadata, ERR_SECRET_STORE_UNAVAILABLE when the
 * backend cannot be reached) and never with a value in the message.
 */
export type SecretStoreFactory = (component: SecretStoreComponent, context: StoreContext) => Promise<SecretStore>;

export interface SecretStoreRegistration {
  /** The Component `spec.type`, e.g. `secretstores.local.file`. */
  readonly type: string;
  readonly create: SecretStoreFactory;
}
