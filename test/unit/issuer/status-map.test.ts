import { describe, expect, it } from '@jest/globals';
import { status as GrpcStatus } from '@grpc/grpc-js';
import {
  GENERIC_INTERNAL_MESSAGE,
  GRPC_STATUS_BY_CODE,
  grpcAnswerFor,
} from '../../../src/issuer/grpc/status-map.js';
import { ERROR_CODES, type ErrorCode } from '../../../src/shared/error-codes.js';
import { WardenError } from '../../../src/shared/errors.js';

describe('error code → gRPC status table', () => {
  it('has an entry for every ErrorCode and no entry for anything else', () => {
    expect(Object.keys(GRPC_STATUS_BY_CODE).sort()).toEqual(Object.keys(ERROR_CODES).sort());
  });

  const expected: Array<[ErrorCode, GrpcStatus]> = [
    ['ERR_REQUEST_INVALID', GrpcStatus.INVALID_ARGUMENT],
    ['ERR_CSR_INVALID', GrpcStatus.INVALID_ARGUMENT],
    ['ERR_CSR_SIGNATURE', GrpcStatus.INVALID_ARGUMENT],
    ['ERR_CSR_KEY_UNSUPPORTED', GrpcStatus.INVALID_ARGUMENT],
    ['ERR_VALIDATOR_NOT_ENABLED', GrpcStatus.INVALID_ARGUMENT],
    ['ERR_IDENTITY_DENIED', GrpcStatus.PERMISSION_DENIED],
    ['ERR_VALIDATOR_UNAVAILABLE', GrpcStatus.UNAVAILABLE],
    ['ERR_REQUEST_TOO_LARGE', GrpcStatus.RESOURCE_EXHAUSTED],
    ['ERR_OVERLOADED', GrpcStatus.RESOURCE_EXHAUSTED],
    ['ERR_SIGNING_FAILED', GrpcStatus.INTERNAL],
    ['ERR_TRUST_MATERIAL_INVALID', GrpcStatus.INTERNAL],
    ['ERR_JWT_FAILED', GrpcStatus.INTERNAL],
  ];
  for (const [code, status] of expected) {
    it(`maps ${code} to ${GrpcStatus[status]}`, () => {
      expect(grpcAnswerFor(new WardenError(code, 'x')).code).toBe(status);
    });
  }

  it('passes client-facing messages through with their code', () => {
    expect(
      grpcAnswerFor(
        new WardenError('ERR_IDENTITY_DENIED', 'jwks validator: the token has expired'),
      ),
    ).toEqual({
      code: GrpcStatus.PERMISSION_DENIED,
      details: 'ERR_IDENTITY_DENIED: jwks validator: the token has expired',
      internal: false,
    });
  });

  it('hides the message of every code that maps to INTERNAL', () => {
    for (const code of Object.keys(ERROR_CODES) as ErrorCode[]) {
      const answer = grpcAnswerFor(new WardenError(code, 'detail /etc/warden/issuer.key'));
      if (answer.code === GrpcStatus.INTERNAL) {
        expect(answer.details).toBe(GENERIC_INTERNAL_MESSAGE);
        expect(answer.internal).toBe(true);
      } else {
        expect(answer.details.startsWith(`${code}: `)).toBe(true);
      }
    }
  });

  const unknowns: Array<[string, unknown]> = [
    ['a plain Error', new Error('ENOENT /var/run/secrets/issuer.key')],
    ['a TypeError', new TypeError('cannot read properties of undefined')],
    ['a string', 'boom'],
    ['undefined', undefined],
    ['a WardenError-shaped object that is not one', { code: 'ERR_REQUEST_INVALID', message: 'x' }],
    [
      'a WardenError with a code outside the table',
      new WardenError('ERR_NOT_A_CODE' as ErrorCode, 'x'),
    ],
  ];
  for (const [name, value] of unknowns) {
    it(`answers ${name} with INTERNAL and the generic message`, () => {
      expect(grpcAnswerFor(value)).toEqual({
        code: GrpcStatus.INTERNAL,
        details: GENERIC_INTERNAL_MESSAGE,
        internal: true,
      });
    });
  }
});
