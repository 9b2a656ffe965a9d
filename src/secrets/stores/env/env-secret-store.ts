import { WardenError } from '../../../shared/errors.js';
import { assertSecretName, MAX_SECRET_VALUE_BYTES } from '../../secret-name.js';
import type { RequestMetadata, SecretData, SecretStore, SecretStoreFeatures } from '../../secret-store.js';
import type { SecretStoreFactory } from '../../store-factory.js';
import { optionalString } from '../../store-metadata.js';

export const ENV_SECRET_STORE_TYPE = 'secretstores.local.env';

/**
 * Dapr never lets the env store read `APP_API_TOKEN` or anything starting with `DAPR_`
 * (checked on the full variable name, after the prefix). Warden compares the `DAPR_`
 * prefix case-insensitively: on Linux `dapr_api_token` is a different variable, but refusing
 * it costs nothing and closes the door on case games.
 */
export function isReservedEnvName(variable: string): boolean {
  return variable === 'APP_API_TOKEN' || variable.toUpperCase().startsWith('DAPR_');
}

export interface EnvSecretStoreOptions {
  readonly componentName: string;
  /** Dapr's `prefix`: only variables starting with it; names are given and returned without it. */
  readonly prefix: string;
  /** The environment to read (a snapshot; the store never touches process.env). */
  readonly env: Readonly<Record<string, string | undefined>>;
}

/**
 * Dapr's `secretstores.local.env`. `get("FOO")` with prefix `MYAPP_` reads `MYAPP_FOO` and
 * answers `{"FOO": value}`; `bulkGet` lists only prefixed variables, names without the
 * prefix. Unlike Dapr, a variable that is not set is ERR_SECRET_NOT_FOUND, not "".
 */
export class EnvSecretStore implements SecretStore {
  readonly type = ENV_SECRET_STORE_TYPE;
  readonly #options: EnvSecretStoreOptions;
  #closed = false;

  constructor(options: EnvSecretStoreOptions) {
    this.#options = options;
  }

  async get(name: string, _metadata?: RequestMetadata): Promise<SecretData> {
    assertSecretName(name);
    this.#assertOpen();
    const variable = this.#options.prefix + name;
    const value = isReservedEnvName(variable) ? undefined : this.#lookup(variable);
    if (value === undefined) {
      throw new WardenError('ERR_SECRET_NOT_FOUND', `secret "${name}" not found in store "${this.#options.componentName}"`);
    }
    this.#assertSize(name, value);
    return Object.freeze({ [name]: value });
  }

  async bulkGet(_metadata?: RequestMetadata): Promise<Readonly<Record<string, SecretData>>> {
    this.#assertOpen();
    const out: Record<string, SecretData> = {};
    for (const [variable, value] of Object.entries(this.#options.env)) {
      if (value === undefined || !variable.startsWith(this.#options.prefix) || isReservedEnvName(variable)) continue;
      const name = variable.slice(this.#options.prefix.length);
      if (name.length === 0 || Buffer.byteLength(value) > MAX_SECRET_VALUE_BYTES) continue;
      Object.defineProperty(out, name, { value: Object.freeze({ [name]: value }), enumerable: true });
    }
    return Object.freeze(out);
  }

  features(): SecretStoreFeatures {
    return { multipleKeyValuesPerSecret: false };
  }

  ready(): boolean {
    return !this.#closed;
  }

  async close(): Promise<void> {
    this.#closed = true;
  }

  #lookup(variable: string): string | undefined {
    // own properties only: "constructor" or "__proto__" are not environment variables
    return Object.prototype.hasOwnProperty.call(this.#options.env, variable) ? this.#options.env[variable] : undefined;
  }

  #assertOpen(): void {
    if (this.#closed) throw new WardenError('ERR_SECRET_STORE_UNAVAILABLE', `secret store "${this.#options.componentName}" is closed`);
  }

  #assertSize(name: string, value: string): void {
    if (Buffer.byteLength(value) > MAX_SECRET_VALUE_BYTES) {
      throw new WardenError('ERR_SECRET_TOO_LARGE', `secret "${name}" in store "${this.#options.componentName}" holds a value larger than the limit`);
    }
  }
}

export const createEnvSecretStore: SecretStoreFactory = async (_component, context) =>
  new EnvSecretStore({
    componentName: context.componentName,
    prefix: optionalString(context.metadata, 'prefix') ?? '',
    env: context.env.raw,
  });
