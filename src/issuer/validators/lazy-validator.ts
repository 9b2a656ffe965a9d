import { WardenError } from '../../shared/errors.js';
import type { CheckedSignRequest } from '../request-rules.js';
import type { ValidatedIdentity, Validator, ValidatorName } from '../validator.js';

/**
 * A validator whose implementation module loads in start(): the kubernetes validator pulls in
 * @kubernetes/client-node, which standalone `warden serve` must not load (issue 7: cold
 * start). Before start() has built the real one it is not ready and answers UNAVAILABLE,
 * exactly as a validator whose caches have not synced does.
 */
export function lazyValidator(name: ValidatorName, load: () => Promise<Validator>): Validator {
  let real: Validator | null = null;
  let closed = false;
  return {
    name,
    async start() {
      if (real || closed) return;
      real = await load();
      await real.start();
    },
    ready: () => real?.ready() ?? false,
    validate(request: CheckedSignRequest): Promise<ValidatedIdentity> {
      if (!real) {
        return Promise.reject(new WardenError('ERR_VALIDATOR_UNAVAILABLE', `the ${name} validator has not started`));
      }
      return real.validate(request);
    },
    async close() {
      closed = true;
      await real?.close();
    },
  };
}
