import { describe, expect, it } from '@jest/globals';
import { ERROR_CODES, type ErrorCode } from '../../../src/shared/error-codes.js';
import { hasHttpErrorMapping, httpErrorFor } from '../../../src/secrets/api/http-errors.js';
import { parseSecretsRequestTarget } from '../../../src/secrets/api/secrets-request.js';
import { parseSubjectAltNames } from '../../../src/secrets/api/caller-identity.js';
import { isLoopbackAddress } from '../../../src/secrets/api/secrets-api-server.js';

describe('the secrets API error table', () => {
  it.each([
    ['ERR_SECRET_STORES_NOT_CONFIGURED', 500, 'ERR_SECRET_STORES_NOT_CONFIGURED'],
    ['ERR_SECRET_STORE_NOT_FOUND', 401, 'ERR_SECRET_STORE_NOT_FOUND'],
    ['ERR_SECRET_PERMISSION_DENIED', 403, 'ERR_PERMISSION_DENIED'],
    ['ERR_SECRET_NOT_FOUND', 500, 'ERR_SECRET_GET'],
    ['ERR_SECRET_STORE_UNAVAILABLE', 500, 'ERR_SECRET_GET'],
    ['ERR_SECRET_TOO_LARGE', 500, 'ERR_SECRET_GET'],
    ['ERR_VAULT_API', 500, 'ERR_SECRET_GET'],
    ['ERR_KUBERNETES_API', 500, 'ERR_SECRET_GET'],
    ['ERR_SECRET_NAME_INVALID', 400, 'ERR_MALFORMED_REQUEST'],
    ['ERR_SIGNING_FAILED', 500, 'ERR_SECRET_GET'],
  ] as Array<[ErrorCode, number, string]>)('maps %s to %i %s', (code, status, errorCode) => {
    expect(httpErrorFor(code)).toEqual({ status, errorCode });
  });

  it('has its own row for every code a secret store may reject with', () => {
    const storeCodes = Object.keys(ERROR_CODES).filter((c) => c.startsWith('ERR_SECRET_') && !['ERR_SECRET_REF_UNRESOLVED', 'ERR_SECRET_STORE_CYCLE', 'ERR_SECRET_STORE_CONFIG'].includes(c));
    for (const code of storeCodes) expect([code, hasHttpErrorMapping(code as ErrorCode)]).toEqual([code, true]);
  });
});

describe('routing a secrets API request target', () => {
  it.each([
    ['a secret', '/v1.0/secrets/store/redis', { kind: 'get', store: 'store', name: 'redis', metadata: {} }],
    ['bulk', '/v1.0/secrets/store/bulk', { kind: 'bulk', store: 'store', metadata: {} }],
    ['metadata query parameters', '/v1.0/secrets/vault/db?metadata.version_id=2&metadata.namespace=prod&other=x', { kind: 'get', store: 'vault', name: 'db', metadata: { version_id: '2', namespace: 'prod' } }],
    ['an encoded slash inside a name (one segment)', '/v1.0/secrets/vault/app%2Fdb', { kind: 'get', store: 'vault', name: 'app/db', metadata: {} }],
    ['a double-encoded percent (decoded once)', '/v1.0/secrets/s/a%2520b', { kind: 'get', store: 's', name: 'a%20b', metadata: {} }],
    ['an unknown prefix', '/v1.0/state/store/x', { kind: 'not-found' }],
    ['too many segments', '/v1.0/secrets/store/a/b', { kind: 'not-found' }],
    ['a raw traversal of the route', '/v1.0/secrets/../secrets/store/x', { kind: 'not-found' }],
    ['a missing name', '/v1.0/secrets/store/', { kind: 'not-found' }],
    ['an absolute-form target', 'http://evil/v1.0/secrets/store/x', { kind: 'not-found' }],
  ])('routes %s', (_what, target, route) => {
    expect(parseSecretsRequestTarget(target)).toEqual(route);
  });

  it.each([
    ['an encoded traversal', '/v1.0/secrets/store/..%2f..%2fetc'],
    ['an upper-case encoded traversal', '/v1.0/secrets/store/..%2F..%2Fetc%2Fpasswd'],
    ['a raw parent segment', '/v1.0/secrets/store/..'],
    ['an encoded parent segment', '/v1.0/secrets/store/%2e%2e'],
    ['a double-encoded traversal', '/v1.0/secrets/store/%252e%252e%252fetc'],
    ['an encoded NUL', '/v1.0/secrets/store/a%00b'],
    ['broken percent-encoding', '/v1.0/secrets/store/%E0%A4%A'],
    ['an encoded absolute path', '/v1.0/secrets/store/%2fetc%2fpasswd'],
  ])('refuses %s as a malformed name', (_what, target) => {
    expect(() => parseSecretsRequestTarget(target)).toThrow(expect.objectContaining({ code: 'ERR_SECRET_NAME_INVALID' }));
  });

  it('refuses an empty metadata key', () => {
    expect(() => parseSecretsRequestTarget('/v1.0/secrets/s/n?metadata.=x')).toThrow(expect.objectContaining({ code: 'ERR_REQUEST_INVALID' }));
  });
});

describe('reading subjectAltName text', () => {
  it.each([
    ['one URI', 'URI:spiffe://td/ns/default/app', [{ type: 'URI', value: 'spiffe://td/ns/default/app' }]],
    ['several entries', 'DNS:localhost, URI:spiffe://td/ns/a/b, IP Address:127.0.0.1', [
      { type: 'DNS', value: 'localhost' },
      { type: 'URI', value: 'spiffe://td/ns/a/b' },
      { type: 'IP Address', value: '127.0.0.1' },
    ]],
    ['a quoted DNS name that tries to smuggle a URI entry', 'DNS:"evil, URI:spiffe://td/ns/x/admin"', [{ type: 'DNS', value: 'evil, URI:spiffe://td/ns/x/admin' }]],
  ])('splits %s', (_what, text, entries) => {
    expect(parseSubjectAltNames(text)).toEqual(entries);
  });

  it('gives up on text it cannot read', () => {
    expect(parseSubjectAltNames('DNS:"unterminated')).toBeNull();
  });
});

describe('loopback addresses', () => {
  it.each([
    ['127.0.0.1', true],
    ['127.1.2.3', true],
    ['::1', true],
    ['localhost', true],
    ['0.0.0.0', false],
    ['::', false],
    ['10.0.0.1', false],
    ['example.com', false],
  ])('%s is loopback: %s', (address, loopback) => {
    expect(isLoopbackAddress(address)).toBe(loopback);
  });
});
