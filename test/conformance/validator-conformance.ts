import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { checkSignRequest, type CheckedSignRequest } from '../../src/issuer/request-rules.js';
import { VALIDATOR_NAMES, type Validator } from '../../src/issuer/validator.js';
import { WardenError } from '../../src/shared/errors.js';
import { trustDomainProblem } from '../../src/shared/spiffe-id.js';

export interface IdentityFields {
  readonly id: string;
  readonly namespace: string;
  /** As sent in the request ('' means the default, public). */
  readonly trustDomain: string;
}

export interface ValidatorConformanceSubject {
  /** A started validator. */
  readonly validator: Validator;
  /** The CA namespace the validator was configured with. */
  readonly caNamespace: string;
  /** A request whose proof (token) this validator accepts for exactly these fields. */
  provingRequest(fields: IdentityFields): Promise<CheckedSignRequest>;
  /**
   * True when the validator checks a proof (every validator but insecure): then a proof for
   * one identity must not validate another.
   */
  readonly checksProof: boolean;
  /**
   * True when the trust domain comes from what the proof points at (the kubernetes validator
   * reads it from the pod's Configuration) and the request's trust_domain is ignored: a
   * request naming another trust domain must then be denied or answered in the proof's own.
   */
  readonly trustDomainFromProof?: boolean;
  cleanup(): Promise<void>;
}

const CSR = Buffer.from(
  '-----BEGIN CERTIFICATE REQUEST-----\nMA==\n-----END CERTIFICATE REQUEST-----\n',
);

/** A checked request with these fields and this token (request rules applied, as the edge does). */
export function checkedRequest(
  fields: IdentityFields,
  token: string,
  tokenValidator = 0,
): CheckedSignRequest {
  return checkSignRequest({
    id: fields.id,
    namespace: fields.namespace,
    trustDomain: fields.trustDomain,
    token,
    certificateSigningRequest: CSR,
    tokenValidator,
    jwtAudiences: [],
  });
}

async function rejectionCode(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (err) {
    return err instanceof WardenError ? err.code : `non-WardenError: ${String(err)}`;
  }
  return 'resolved';
}

/** The behaviour every Validator must show. Each implementation's test calls it. */
export function describeValidatorConformance(
  label: string,
  setup: () => Promise<ValidatorConformanceSubject>,
): void {
  describe(`Validator conformance: ${label}`, () => {
    let subject: ValidatorConformanceSubject;
    beforeAll(async () => {
      subject = await setup();
    });
    afterAll(async () => {
      await subject.validator.close();
      await subject.validator.close(); // close is idempotent
      await subject.cleanup();
    });

    it('is ready once started and has a known name', () => {
      expect(subject.validator.ready()).toBe(true);
      expect(VALIDATOR_NAMES).toContain(subject.validator.name);
    });

    it('vouches for exactly the requested namespace and app id, in a valid trust domain, as a frozen value', async () => {
      const fields = { id: 'orders', namespace: 'shop', trustDomain: 'example.org' };
      const identity = await subject.validator.validate(await subject.provingRequest(fields));
      expect(identity.namespace).toBe('shop');
      expect(identity.appId).toBe('orders');
      expect(trustDomainProblem(identity.trustDomain)).toBeNull();
      expect(identity.controlPlane).toBe(false);
      expect(Object.isFrozen(identity)).toBe(true);
    });

    it('marks a control-plane id as control plane only in the CA namespace', async () => {
      const inCa = await subject.validator.validate(
        await subject.provingRequest({
          id: 'dapr-operator',
          namespace: subject.caNamespace,
          trustDomain: '',
        }),
      );
      const elsewhere = await subject.validator.validate(
        await subject.provingRequest({
          id: 'dapr-operator',
          namespace: 'someone-else',
          trustDomain: '',
        }),
      );
      expect(inCa.controlPlane).toBe(true);
      expect(elsewhere.controlPlane).toBe(false);
    });

    it('does not let a proof for one identity validate another (when it checks proofs)', async () => {
      if (!subject.checksProof) return;
      const proof = await subject.provingRequest({
        id: 'orders',
        namespace: 'shop',
        trustDomain: '',
      });
      const variants: IdentityFields[] = [
        { id: 'payments', namespace: 'shop', trustDomain: '' },
        { id: 'orders', namespace: 'other', trustDomain: '' },
        { id: 'orders', namespace: 'shop', trustDomain: 'example.org' },
      ];
      const proven = await subject.validator.validate(proof);
      for (const fields of variants) {
        const attempt = subject.validator.validate(checkedRequest(fields, proof.token));
        if (subject.trustDomainFromProof && fields.trustDomain !== proof.trustDomain) {
          // The request cannot choose the trust domain: same identity, or no identity.
          const outcome = await attempt.then(
            (identity) => identity,
            (err: unknown) => (err instanceof WardenError ? err.code : String(err)),
          );
          if (typeof outcome === 'string') expect(outcome).toBe('ERR_IDENTITY_DENIED');
          else expect(outcome).toEqual(proven);
          continue;
        }
        expect(await rejectionCode(attempt)).toBe('ERR_IDENTITY_DENIED');
      }
    });

    it('denies a request without a proof (when it checks proofs)', async () => {
      if (!subject.checksProof) return;
      const code = await rejectionCode(
        subject.validator.validate(
          checkedRequest({ id: 'orders', namespace: 'shop', trustDomain: '' }, ''),
        ),
      );
      expect(code).toBe('ERR_IDENTITY_DENIED');
    });
  });
}
