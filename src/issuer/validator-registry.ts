import type { TokenValidatorSettings } from '../shared/config/dapr-configuration.js';
import { WardenError } from '../shared/errors.js';
import { TOKEN_VALIDATOR_ENUM, type Validator, type ValidatorName } from './validator.js';

export type ServeMode = 'standalone' | 'kubernetes';

/** Which validators run and which one answers requests that name none (UNKNOWN). */
export interface ValidatorPlan {
  readonly enabled: readonly TokenValidatorSettings[];
  readonly defaultName: ValidatorName | null;
}

/**
 * Dapr's rule: with no `tokenValidators` configured, the mode's own validator is enabled and
 * is the default (insecure in standalone, kubernetes in Kubernetes). With validators
 * configured, only those run; the mode's validator is the default only if it is among them
 * (so configuring jwks in standalone leaves no default, and a request must name jwks).
 */
export function planValidators(
  mode: ServeMode,
  configured: readonly TokenValidatorSettings[],
): ValidatorPlan {
  const modeDefault: ValidatorName = mode === 'standalone' ? 'insecure' : 'kubernetes';
  if (configured.length === 0) {
    return Object.freeze({
      enabled: Object.freeze([{ name: modeDefault }]),
      defaultName: modeDefault,
    });
  }
  const names = new Set(configured.map((v) => v.name));
  return Object.freeze({
    enabled: Object.freeze([...configured]),
    defaultName: names.has(modeDefault) ? modeDefault : null,
  });
}

export interface ValidatorRegistry {
  /** Every enabled validator, in configuration order. */
  readonly validators: readonly Validator[];
  readonly defaultName: ValidatorName | null;
  /**
   * The validator for a request's token_validator number. Throws ERR_VALIDATOR_NOT_ENABLED
   * for UNKNOWN with no default, for a known validator that is not enabled, and for any
   * number outside the enum (unknown means deny).
   */
  select(tokenValidator: number): Validator;
  startAll(): Promise<void>;
  closeAll(): Promise<void>;
}

export function createValidatorRegistry(
  validators: readonly Validator[],
  defaultName: ValidatorName | null,
): ValidatorRegistry {
  const byName = new Map<ValidatorName, Validator>();
  for (const validator of validators) {
    if (byName.has(validator.name))
      throw new TypeError(`validator ${validator.name} registered twice`);
    byName.set(validator.name, validator);
  }
  if (defaultName !== null && !byName.has(defaultName)) {
    throw new TypeError(`default validator ${defaultName} is not among the enabled validators`);
  }
  const enabledList = (): string => (byName.size === 0 ? 'none' : [...byName.keys()].join(', '));
  return Object.freeze({
    validators: Object.freeze([...validators]),
    defaultName,
    select(tokenValidator: number): Validator {
      const requested = Number.isInteger(tokenValidator)
        ? TOKEN_VALIDATOR_ENUM[tokenValidator]
        : undefined;
      if (requested === undefined) {
        throw new WardenError(
          'ERR_VALIDATOR_NOT_ENABLED',
          `token_validator ${String(tokenValidator)} is not a known validator (enabled: ${enabledList()})`,
        );
      }
      if (requested === 'default') {
        if (defaultName === null) {
          throw new WardenError(
            'ERR_VALIDATOR_NOT_ENABLED',
            `the request names no token_validator and there is no default (enabled: ${enabledList()})`,
          );
        }
        return byName.get(defaultName) as Validator;
      }
      const validator = byName.get(requested);
      if (!validator) {
        throw new WardenError(
          'ERR_VALIDATOR_NOT_ENABLED',
          `token_validator ${requested.toUpperCase()} is not enabled (enabled: ${enabledList()})`,
        );
      }
      return validator;
    },
    async startAll(): Promise<void> {
      for (const validator of byName.values()) await validator.start();
    },
    async closeAll(): Promise<void> {
      const results = await Promise.allSettled([...byName.values()].map((v) => v.close()));
      const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
      if (failed) throw failed.reason;
    },
  });
}

/** How to build each validator from its settings; the kubernetes one is added by its own block. */
export interface ValidatorFactories {
  readonly insecure: () => Validator;
  readonly jwks: (
    options: Extract<TokenValidatorSettings, { name: 'jwks' }>['options'],
  ) => Validator;
  readonly kubernetes?: () => Validator;
}

/** Builds the registry a plan describes. Throws ERR_CONFIG_INVALID when a validator cannot be built. */
export function buildValidatorRegistry(
  plan: ValidatorPlan,
  factories: ValidatorFactories,
): ValidatorRegistry {
  const validators = plan.enabled.map((settings): Validator => {
    switch (settings.name) {
      case 'insecure':
        return factories.insecure();
      case 'jwks':
        return factories.jwks(settings.options);
      case 'kubernetes':
        if (!factories.kubernetes) {
          throw new WardenError(
            'ERR_CONFIG_INVALID',
            'the kubernetes token validator is not available in this build',
          );
        }
        return factories.kubernetes();
    }
  });
  return createValidatorRegistry(validators, plan.defaultName);
}
