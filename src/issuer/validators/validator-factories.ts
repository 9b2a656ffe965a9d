import type { Clock } from '../../shared/clock.js';
import type { Logger } from '../../shared/logger.js';
import type { ValidatorFactories } from '../validator-registry.js';
import { createInsecureValidator } from './insecure/insecure-validator.js';
import { createJwksValidator } from './jwks/jwks-validator.js';

export interface BuiltInValidatorOptions {
  /** The CA's namespace (env NAMESPACE). */
  readonly caNamespace: string;
  /** Audience tokens must carry: ServeSettings.validatorAudience. */
  readonly audience: string;
  readonly clock: Clock;
  readonly logger: Logger;
}

/**
 * Factories for the validators this block ships (insecure, jwks). The kubernetes block adds
 * its own: `{ ...builtInValidatorFactories(o), kubernetes: () => createKubernetesValidator(...) }`.
 */
export function builtInValidatorFactories(options: BuiltInValidatorOptions): ValidatorFactories {
  return {
    insecure: () => createInsecureValidator({ caNamespace: options.caNamespace }),
    jwks: (settings) =>
      createJwksValidator({
        settings,
        audience: options.audience,
        caNamespace: options.caNamespace,
        clock: options.clock,
        logger: options.logger,
      }),
  };
}
