import type { KubeConfig } from '@kubernetes/client-node';
import type { Clock } from '../../shared/clock.js';
import { WardenError } from '../../shared/errors.js';
import type { Logger } from '../../shared/logger.js';
import type { ValidatorFactories } from '../validator-registry.js';
import { createInsecureValidator } from './insecure/insecure-validator.js';
import { createJwksValidator } from './jwks/jwks-validator.js';
import { lazyValidator } from './lazy-validator.js';

export interface BuiltInValidatorOptions {
  /** The CA's namespace (env NAMESPACE). */
  readonly caNamespace: string;
  /** Audience tokens must carry: ServeSettings.validatorAudience. */
  readonly audience: string;
  readonly clock: Clock;
  readonly logger: Logger;
  /**
   * The Kubernetes API the kubernetes validator asks (kubernetes mode). Without it the
   * kubernetes validator cannot be built and enabling it is a configuration error.
   */
  readonly kubeConfig?: KubeConfig;
  /** Trust domain of control-plane identities: the CA's own (--trust-domain). */
  readonly controlPlaneTrustDomain?: string;
}

/** Factories for every validator Warden ships. */
export function builtInValidatorFactories(options: BuiltInValidatorOptions): ValidatorFactories {
  const { kubeConfig } = options;
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
    kubernetes: () => {
      if (kubeConfig === undefined || options.controlPlaneTrustDomain === undefined) {
        throw new WardenError(
          'ERR_CONFIG_INVALID',
          'the kubernetes token validator needs --mode kubernetes (a Kubernetes API to ask)',
        );
      }
      const controlPlaneTrustDomain = options.controlPlaneTrustDomain;
      return lazyValidator('kubernetes', async () =>
        (await import('./kubernetes/kubernetes-validator.js')).createKubernetesValidator({
          kubeConfig,
          caNamespace: options.caNamespace,
          audience: options.audience,
          controlPlaneTrustDomain,
          clock: options.clock,
          logger: options.logger,
        }),
      );
    },
  };
}
