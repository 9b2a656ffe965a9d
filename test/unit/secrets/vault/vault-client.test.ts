import { describe, expect, it } from '@jest/globals';
import {
  errorForReply,
  parseRetryAfter,
  summariseVaultErrors,
  type VaultReply,
  type VaultRequest,
} from '../../../../src/secrets/stores/vault/vault-client.js';

const TOKEN = 'hvs.CAESIJ1ExampleExampleExample0123456789';
const request: VaultRequest = {
  method: 'GET',
  path: ['secret', 'data', 'dapr', 'db'],
  token: TOKEN,
  subject: 'secret "db"',
};

function reply(status: number, body: unknown, headers: Record<string, string> = {}): VaultReply {
  return { status, body, headers, attempts: 1 };
}

describe('Vault error mapping', () => {
  it.each([
    [404, { errors: [] }, 'ERR_SECRET_NOT_FOUND'],
    [403, { errors: ['permission denied'] }, 'ERR_SECRET_PERMISSION_DENIED'],
    [503, { errors: ['Vault is sealed'] }, 'ERR_SECRET_STORE_UNAVAILABLE'],
    [429, { errors: ['rate limit quota exceeded'] }, 'ERR_SECRET_STORE_UNAVAILABLE'],
    [500, { errors: ['internal error'] }, 'ERR_SECRET_STORE_UNAVAILABLE'],
    [502, undefined, 'ERR_SECRET_STORE_UNAVAILABLE'],
    [412, { errors: ['required index state not present'] }, 'ERR_SECRET_STORE_UNAVAILABLE'],
    [400, { errors: ['invalid version'] }, 'ERR_VAULT_API'],
    [405, { errors: ['unsupported operation'] }, 'ERR_VAULT_API'],
  ])('maps HTTP %i to %s', (status, body, code) => {
    const error = errorForReply(reply(status, body), request);
    expect(error.code).toBe(code);
    expect(error.message).not.toContain(TOKEN);
    expect(error.details.httpStatus).toBe(status);
  });

  it("summarises Vault's errors array in the message and says when Vault is sealed", () => {
    expect(
      errorForReply(reply(400, { errors: ['invalid version', 'second'] }), request).message,
    ).toContain('invalid version; second');
    expect(errorForReply(reply(503, { errors: ['Vault is sealed'] }), request).message).toMatch(
      /sealed/,
    );
  });

  it('carries Retry-After of a 429 in the details', () => {
    expect(
      errorForReply(reply(429, { errors: [] }, { 'retry-after': '7' }), request).details
        .retryAfterMs,
    ).toBe(7000);
  });
});

describe('Vault error summaries', () => {
  it.each([
    ['the request token echoed back', [`token ${TOKEN} is bad`]],
    ['any hvs.-shaped token', ['token hvs.AAAAAAAAAAAAAAAAAAAAAAAAAAAA revoked']],
    ['a legacy s.-shaped token', ['token s.AbCdEfGhIjKlMnOpQrStUvWx revoked']],
  ])('redacts %s', (_what, errors) => {
    const text = summariseVaultErrors({ errors }, [TOKEN]);
    expect(text).toContain('[REDACTED]');
    expect(text).not.toMatch(/hvs\.A|s\.AbCd|CAESIJ/);
  });

  it('strips control characters and bounds the length', () => {
    const text = summariseVaultErrors({ errors: [`line1\nline2\u0000${'x'.repeat(1000)}`] });
    expect(text).not.toMatch(/[\n\u0000]/);
    expect(text.length).toBeLessThanOrEqual(301);
  });

  it('describes bodies without an errors array', () => {
    expect(summariseVaultErrors(undefined)).toBe('non-JSON body');
    expect(summariseVaultErrors({})).toBe('no error detail');
  });
});

describe('Retry-After', () => {
  it.each([
    ['delta seconds', '3', 3000],
    ['zero', '0', 0],
    ['an HTTP date 5 s ahead', new Date(Date.UTC(2026, 0, 1, 0, 0, 5)).toUTCString(), 5000],
    ['an HTTP date in the past', new Date(Date.UTC(2025, 0, 1)).toUTCString(), 0],
    ['garbage', 'soon', undefined],
    ['absence', undefined, undefined],
  ])('parses %s', (_what, value, expected) => {
    expect(parseRetryAfter(value, Date.UTC(2026, 0, 1))).toBe(expected);
  });
});
