import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { WardenError } from '../../../../src/shared/errors.js';
import {
  encodeVaultPath,
  parseConfiguredPath,
  parseListedKey,
  parseSecretName,
} from '../../../../src/secrets/stores/vault/vault-path.js';

function codeOf(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    return err instanceof WardenError ? err.code : `other: ${String(err)}`;
  }
  return 'accepted';
}

describe('Vault secret names', () => {
  it.each([
    ['a plain name', 'redis-password', ['redis-password']],
    ['a nested name', 'team/app/db', ['team', 'app', 'db']],
    ['dots inside a segment', 'v1.2..3', ['v1.2..3']],
    ['spaces and unicode', 'my secret/café', ['my secret', 'café']],
  ])('accepts %s', (_what, name, segments) => {
    expect(parseSecretName(name)).toEqual(segments);
  });

  it.each([
    ['a parent segment', '../other'],
    ['a parent segment in the middle', 'a/../../b'],
    ['a lone parent', '..'],
    ['a current-directory segment', 'a/./b'],
    ['an encoded traversal', '%2e%2e/x'],
    ['an encoded slash', 'a%2fb'],
    ['a doubled slash', 'a//b'],
    ['a leading slash (absolute path)', '/etc/passwd'],
    ['a trailing slash', 'dir/'],
    ['a backslash', 'a\\..\\b'],
    ['a NUL byte', 'name\u0000x'],
    ['a newline', 'name\nx'],
    ['a DEL character', 'name\u007f'],
    ['a C1 control', 'name\u0085'],
    ['a query delimiter', 'name?version=1'],
    ['a fragment delimiter', 'name#x'],
    ['an empty name', ''],
    ['an over-long name', 'a'.repeat(1025)],
    ['an over-long segment', 'a'.repeat(256)],
  ])('refuses %s with ERR_SECRET_NAME_INVALID', (_what, name) => {
    expect(codeOf(() => parseSecretName(name))).toBe('ERR_SECRET_NAME_INVALID');
  });

  it('never yields a segment that is empty, "." or "..", or holds "/", "%" or "\\" for any input', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 40 }), (name) => {
        let segments: readonly string[];
        try {
          segments = parseSecretName(name);
        } catch (err) {
          return err instanceof WardenError && err.code === 'ERR_SECRET_NAME_INVALID';
        }
        return segments.every((s) => s !== '' && s !== '.' && s !== '..' && !/[/%\\]/.test(s));
      }),
      { numRuns: 2000 },
    );
  });

  it('quotes a refused name in escaped, bounded form in the message', () => {
    let message = '';
    try {
      parseSecretName(`../${'x'.repeat(200)}\u0000`);
    } catch (err) {
      message = (err as Error).message;
    }
    expect(message).toMatch(/^secret name "\.\.\/x+…" has a/);
    expect(message).not.toContain('\u0000');
    expect(message.length).toBeLessThan(200);
  });
});

describe('Vault URL paths', () => {
  it('percent-encodes each validated segment and never lets one become a separator', () => {
    expect(encodeVaultPath(['secret', 'data', 'my secret', 'café'])).toBe(
      '/v1/secret/data/my%20secret/caf%C3%A9',
    );
    expect(encodeVaultPath(['secret', 'metadata'], true)).toBe('/v1/secret/metadata/');
  });

  it.each([
    ['a mount', 'secret', ['secret']],
    ['a nested mount with slashes at both ends', '/kv/team/', ['kv', 'team']],
    ['an empty prefix', '', []],
  ])('parses configured paths: %s', (_what, value, segments) => {
    expect(parseConfiguredPath(value)).toEqual({ segments });
  });

  it.each(['../up', 'a//b', 'a/%2e%2e', 'x\\y'])('refuses the configured path %j', (value) => {
    expect('problem' in parseConfiguredPath(value)).toBe(true);
  });

  it.each([
    ['a leaf', 'db', { segment: 'db', directory: false }],
    ['a folder', 'team/', { segment: 'team', directory: true }],
    ['a parent folder', '../', undefined],
    ['a nested key', 'a/b', undefined],
    ['an encoded key', '%2e%2e', undefined],
    ['an empty key', '', undefined],
    ['a non-string', 42, undefined],
  ])('checks a listed key before following it: %s', (_what, key, expected) => {
    expect(parseListedKey(key)).toEqual(expected);
  });
});
