import { describe, expect, it } from '@jest/globals';
import {
  checkSignRequest,
  MAX_REQUEST_BYTES,
  type RawSignRequest,
} from '../../../src/issuer/request-rules.js';
import { WardenError } from '../../../src/shared/errors.js';

const CSR = Buffer.from(
  '-----BEGIN CERTIFICATE REQUEST-----\nMIIB\n-----END CERTIFICATE REQUEST-----\n',
);

function request(overrides: Partial<RawSignRequest> = {}): RawSignRequest {
  return {
    id: 'app1',
    token: '',
    trustDomain: '',
    namespace: 'default',
    certificateSigningRequest: CSR,
    tokenValidator: 0,
    jwtAudiences: [],
    ...overrides,
  };
}

function failure(raw: RawSignRequest): { code: string; message: string } | null {
  try {
    checkSignRequest(raw);
    return null;
  } catch (err) {
    if (err instanceof WardenError) return { code: err.code, message: err.message };
    throw err;
  }
}

describe('request rules', () => {
  const rejected: Array<[string, Partial<RawSignRequest>, string, RegExp]> = [
    // id
    ['an empty id', { id: '' }, 'ERR_REQUEST_INVALID', /^id "" is empty/],
    ['a 65-character id', { id: 'a'.repeat(65) }, 'ERR_REQUEST_INVALID', /longer than 64/],
    ['an id with a dot', { id: 'app.v1' }, 'ERR_REQUEST_INVALID', /may not contain "\."/],
    ['an id that is ".."', { id: '..' }, 'ERR_REQUEST_INVALID', /id "\.\."/],
    [
      'an id that smuggles path segments',
      { id: 'a/ns/b' },
      'ERR_REQUEST_INVALID',
      /id "a\/ns\/b" contains "\/"/,
    ],
    [
      'a percent-encoded dot in the id',
      { id: '%2e%2e' },
      'ERR_REQUEST_INVALID',
      /percent-encoding/,
    ],
    [
      'an id with a trailing newline',
      { id: 'app\n' },
      'ERR_REQUEST_INVALID',
      /id "app\\x0a" ends with a newline/,
    ],
    ['an id with a NUL byte', { id: 'app\u0000x' }, 'ERR_REQUEST_INVALID', /control character/],
    ['an id with DEL', { id: 'app\u007f' }, 'ERR_REQUEST_INVALID', /control character/],
    ['an id with a space', { id: 'my app' }, 'ERR_REQUEST_INVALID', /only letters, digits/],
    ['an id with non-ASCII letters', { id: 'appé' }, 'ERR_REQUEST_INVALID', /only letters, digits/],
    ['an id with a colon', { id: 'app:1' }, 'ERR_REQUEST_INVALID', /only letters, digits/],
    // namespace
    ['an empty namespace', { namespace: '' }, 'ERR_REQUEST_INVALID', /^namespace "" is empty/],
    [
      'a namespace that smuggles path segments',
      { namespace: 'a/ns/b' },
      'ERR_REQUEST_INVALID',
      /namespace "a\/ns\/b" contains "\/"/,
    ],
    [
      'a namespace of ".."',
      { namespace: '..' },
      'ERR_REQUEST_INVALID',
      /may not be "\." or "\.\."/,
    ],
    ['a namespace of "."', { namespace: '.' }, 'ERR_REQUEST_INVALID', /may not be "\." or "\.\."/],
    [
      'a percent-encoded namespace',
      { namespace: '%2e%2e' },
      'ERR_REQUEST_INVALID',
      /percent-encoding/,
    ],
    [
      'a namespace with a trailing newline',
      { namespace: 'default\n' },
      'ERR_REQUEST_INVALID',
      /ends with a newline/,
    ],
    [
      'a namespace with a carriage return',
      { namespace: 'def\rault' },
      'ERR_REQUEST_INVALID',
      /control character/,
    ],
    [
      'a 64-character namespace',
      { namespace: 'n'.repeat(64) },
      'ERR_REQUEST_INVALID',
      /longer than 63/,
    ],
    // trust domain
    [
      'an upper-case trust domain (never lower-cased)',
      { trustDomain: 'Example.org' },
      'ERR_REQUEST_INVALID',
      /trust_domain "Example\.org" may contain only lowercase/,
    ],
    [
      'a trust domain with a port',
      { trustDomain: 'example.org:443' },
      'ERR_REQUEST_INVALID',
      /port or userinfo/,
    ],
    [
      'a trust domain with userinfo',
      { trustDomain: 'user@example.org' },
      'ERR_REQUEST_INVALID',
      /only lowercase/,
    ],
    [
      'a trust domain with a path',
      { trustDomain: 'example.org/ns/x' },
      'ERR_REQUEST_INVALID',
      /contains "\/"/,
    ],
    [
      'a percent-encoded trust domain',
      { trustDomain: 'example%2eorg' },
      'ERR_REQUEST_INVALID',
      /percent-encoding/,
    ],
    [
      'a trust domain with a trailing newline',
      { trustDomain: 'example.org\n' },
      'ERR_REQUEST_INVALID',
      /ends with a newline/,
    ],
    [
      'a trust domain over 255 bytes',
      { trustDomain: 'a'.repeat(256) },
      'ERR_REQUEST_INVALID',
      /longer than 255/,
    ],
    // jwt audiences
    [
      '17 JWT audiences',
      { jwtAudiences: Array.from({ length: 17 }, (_, i) => `aud${i}`) },
      'ERR_REQUEST_INVALID',
      /jwt_audiences has 17 entries; the limit is 16/,
    ],
    [
      'an empty JWT audience',
      { jwtAudiences: ['ok', ''] },
      'ERR_REQUEST_INVALID',
      /jwt_audiences\[1\] "" is empty/,
    ],
    [
      'a 257-character JWT audience',
      { jwtAudiences: ['a'.repeat(257)] },
      'ERR_REQUEST_INVALID',
      /longer than 256/,
    ],
    [
      'a JWT audience with a newline',
      { jwtAudiences: ['aud\n'] },
      'ERR_REQUEST_INVALID',
      /printable ASCII/,
    ],
    [
      'a JWT audience with a space',
      { jwtAudiences: ['my aud'] },
      'ERR_REQUEST_INVALID',
      /printable ASCII/,
    ],
    // CSR and size
    [
      'an empty CSR',
      { certificateSigningRequest: Buffer.alloc(0) },
      'ERR_CSR_INVALID',
      /certificate_signing_request is empty/,
    ],
    [
      'a request over 64 KiB',
      { token: 'x'.repeat(MAX_REQUEST_BYTES) },
      'ERR_REQUEST_TOO_LARGE',
      /the limit is 65536/,
    ],
  ];

  for (const [name, overrides, code, message] of rejected) {
    it(`rejects ${name}`, () => {
      const result = failure(request(overrides));
      expect(result?.code).toBe(code);
      expect(result?.message).toMatch(message);
    });
  }

  it('checks the size before anything else (an oversized request with a bad id is too large, not invalid)', () => {
    expect(
      failure(
        request({ id: 'a.b', certificateSigningRequest: Buffer.alloc(MAX_REQUEST_BYTES + 1) }),
      )?.code,
    ).toBe('ERR_REQUEST_TOO_LARGE');
  });

  it('quotes offending values through printable(): no raw control characters, bounded length', () => {
    const result = failure(request({ id: `${'\u001b[31m'}${'x'.repeat(100)}` }));
    expect(result?.message).not.toMatch(/[\u0000-\u001f]/);
    expect(result?.message).toContain('\\x1b');
    expect(result?.message.length).toBeLessThan(200);
  });

  const accepted: Array<[string, Partial<RawSignRequest>]> = [
    ['a 64-character id', { id: 'a'.repeat(64) }],
    ['an id with dashes and underscores', { id: 'my-app_2' }],
    ['a control-plane id', { id: 'dapr-injector', namespace: 'dapr-system' }],
    ['a dotted trust domain', { trustDomain: 'example.org' }],
    [
      '16 audiences of 256 characters',
      { jwtAudiences: Array.from({ length: 16 }, (_, i) => `${i}`.padEnd(256, 'a')) },
    ],
    ['a token validator number the registry decides about', { tokenValidator: 99 }],
  ];
  for (const [name, overrides] of accepted) {
    it(`accepts ${name}`, () => {
      expect(failure(request(overrides))).toBeNull();
    });
  }

  it('defaults an empty trust domain to public and keeps every other field exactly as received', () => {
    const raw = request({ id: 'App_1', namespace: 'Prod', token: ' tok ', jwtAudiences: ['a'] });
    const checked = checkSignRequest(raw);
    expect(checked).toEqual({
      id: 'App_1',
      namespace: 'Prod',
      trustDomain: 'public',
      trustDomainDefaulted: true,
      token: ' tok ',
      csrPem: CSR,
      tokenValidator: 0,
      jwtAudiences: ['a'],
    });
    expect(Object.isFrozen(checked)).toBe(true);
    expect(checkSignRequest(request({ trustDomain: 'example.org' }))).toMatchObject({
      trustDomain: 'example.org',
      trustDomainDefaulted: false,
    });
  });
});
