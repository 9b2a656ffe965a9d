import { isControlPlaneIdentity } from '../../control-plane.js';
import type { CheckedSignRequest } from '../../request-rules.js';
import type { ValidatedIdentity, Validator } from '../../validator.js';

export interface InsecureValidatorOptions {
  /** The CA's namespace (env NAMESPACE): control-plane ids count only there. */
  readonly caNamespace: string;
}

/**
 * Dapr's standalone default: the request rules are the only checks, so any caller that can
 * reach the port gets the identity it asks for. That is why `warden serve` binds 127.0.0.1
 * while this validator is enabled.
 */
export function createInsecureValidator(options: InsecureValidatorOptions): Validator {
  if (typeof options.caNamespace !== 'string' || options.caNamespace.length === 0) {
    throw new TypeError('createInsecureValidator needs caNamespace');
  }
  return Object.freeze({
    name: 'insecure' as const,
    start: async (): Promise<void> => undefined,
    ready: (): boolean => true,
    validate: async (request: CheckedSignRequest): Promise<ValidatedIdentity> =>
      Object.freeze({
        trustDomain: request.trustDomain,
        namespace: request.namespace,
        appId: request.id,
        controlPlane: isControlPlaneIdentity(request.id, request.namespace, options.caNamespace),
      }),
    close: async (): Promise<void> => undefined,
  });
}
