import { describe, expect, it } from '@jest/globals';
import { secretNameProblem } from '../../../src/secrets/secret-name.js';

describe('secret names', () => {
  it.each([
    ['a plain name', 'redis-password'],
    ['a nested file-store key', 'redis:password'],
    ['a Vault-style path', 'app/db/creds'],
    ['dots inside a segment', 'a..b'],
    ['a literal percent sign that is not an escape', '100%'],
    ['an escape that decodes to something harmless', 'a%20b'],
  ])('accepts %s', (_what, name) => {
    expect(secretNameProblem(name)).toBeNull();
  });

  it.each([
    ['an empty name', '', /empty/],
    ['a parent directory', '..', /path segment/],
    ['a current directory', '.', /path segment/],
    ['a traversal', '../../etc/passwd', /path segment/],
    ['a nested traversal', 'a/../../b', /path segment/],
    ['a backslash traversal', '..\\x', /path segment/],
    ['an absolute path', '/etc/passwd', /absolute/],
    ['an empty segment', 'a//b', /empty path segment/],
    ['a NUL byte', 'a\u0000b', /control character/],
    ['a newline', 'a\nb', /control character/],
    ['an encoded traversal', '%2e%2e%2fetc', /once percent-decoded/],
    ['an encoded absolute path', '%2Fetc%2Fpasswd', /once percent-decoded/],
    ['an encoded NUL', 'a%00b', /once percent-decoded/],
    ['a name over 1024 bytes', 'x'.repeat(1025), /longer than/],
  ])('refuses %s', (_what, name, reason) => {
    expect(secretNameProblem(name)).toMatch(reason);
  });
});
