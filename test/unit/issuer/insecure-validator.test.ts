import { describe, expect, it } from '@jest/globals';
import { createInsecureValidator } from '../../../src/issuer/validators/insecure/insecure-validator.js';
import {
  checkedRequest,
  describeValidatorConformance,
} from '../../conformance/validator-conformance.js';

describeValidatorConformance('insecure', async () => ({
  validator: createInsecureValidator({ caNamespace: 'dapr-system' }),
  caNamespace: 'dapr-system',
  checksProof: false,
  provingRequest: async (fields) => checkedRequest(fields, ''),
  cleanup: async () => undefined,
}));

describe('insecure validator', () => {
  it('takes the trust domain from the request, public when it was empty', async () => {
    const validator = createInsecureValidator({ caNamespace: 'dapr-system' });
    expect(
      (await validator.validate(checkedRequest({ id: 'a', namespace: 'n', trustDomain: '' }, '')))
        .trustDomain,
    ).toBe('public');
    expect(
      (
        await validator.validate(
          checkedRequest({ id: 'a', namespace: 'n', trustDomain: 'example.org' }, ''),
        )
      ).trustDomain,
    ).toBe('example.org');
  });

  it('does not treat an unknown dapr- id in the CA namespace as control plane', async () => {
    const validator = createInsecureValidator({ caNamespace: 'dapr-system' });
    const identity = await validator.validate(
      checkedRequest({ id: 'dapr-whatever', namespace: 'dapr-system', trustDomain: '' }, ''),
    );
    expect(identity.controlPlane).toBe(false);
  });

  it('needs the CA namespace', () => {
    expect(() => createInsecureValidator({ caNamespace: '' })).toThrow(TypeError);
  });
});
