import { describe, expect, it } from '@jest/globals';
import { JWT_FLAG_SPECS, resolveJwtSettings } from '../../../src/cli/jwt-flags.js';
import { isWardenError } from '../../../src/shared/errors.js';
import { parseFlags } from '../../../src/shared/flags.js';

const resolve = (...argv: string[]) => resolveJwtSettings(parseFlags(argv, JWT_FLAG_SPECS));

function problems(...argv: string[]): string {
  try {
    resolve(...argv);
  } catch (err) {
    if (isWardenError(err, 'ERR_CONFIG_INVALID')) return err.message;
    throw err;
  }
  throw new Error('expected ERR_CONFIG_INVALID');
}

describe('JWT and OIDC flags', () => {
  it("defaults to Dapr Sentry's values", () => {
    expect(resolve()).toEqual({
      jwt: {
        enabled: false,
        keyFilename: 'jwt.key',
        jwksFilename: 'jwks.json',
        issuer: undefined,
        algorithm: 'RS256',
        keyId: undefined,
        ttlMs: 24 * 3_600_000,
      },
      oidc: {
        enabled: false,
        listenAddress: 'localhost',
        port: 9080,
        tls: { enabled: true, certFile: undefined, keyFile: undefined },
        jwksUri: undefined,
        pathPrefix: '',
        allowedHosts: [],
      },
      warnings: [],
    });
  });

  it('reads a full OIDC setup, normalising hosts and the path prefix, and freezes the result', () => {
    const settings = resolve(
      '--jwt-enabled',
      '--jwt-issuer=https://oidc.example.org/t',
      '--jwt-signing-algorithm',
      'EdDSA',
      '--jwt-key-id=k-1',
      '--jwt-ttl=1h30m',
      '--oidc-enabled',
      '--oidc-server-listen-port=8443',
      '--oidc-server-listen-address=0.0.0.0',
      '--oidc-server-tls-cert-file=/tls/tls.crt',
      '--oidc-server-tls-key-file=/tls/tls.key',
      '--oidc-jwks-uri=https://cdn.example.org/jwks.json',
      '--oidc-path-prefix=t/',
      '--oidc-allowed-hosts=OIDC.example.org,oidc.example.org',
      '--oidc-allowed-hosts=10.0.0.1',
    );
    expect(settings.jwt).toEqual({
      enabled: true,
      keyFilename: 'jwt.key',
      jwksFilename: 'jwks.json',
      issuer: 'https://oidc.example.org/t',
      algorithm: 'EdDSA',
      keyId: 'k-1',
      ttlMs: 90 * 60_000,
    });
    expect(settings.oidc).toEqual({
      enabled: true,
      listenAddress: '0.0.0.0',
      port: 8443,
      tls: { enabled: true, certFile: '/tls/tls.crt', keyFile: '/tls/tls.key' },
      jwksUri: 'https://cdn.example.org/jwks.json',
      pathPrefix: '/t',
      allowedHosts: ['oidc.example.org', '10.0.0.1'],
    });
    expect(Object.isFrozen(settings.oidc.allowedHosts)).toBe(true);
    expect(Object.isFrozen(settings.jwt)).toBe(true);
  });

  it('reports every problem at once', () => {
    const message = problems(
      '--jwt-signing-algorithm=HS256',
      '--jwt-ttl=soon',
      '--jwt-key-filename=../jwt.key',
      '--jwt-issuer=http://insecure.example.org',
      '--jwt-key-id=has space',
      '--oidc-enabled',
      '--oidc-server-listen-port=70000',
      '--oidc-server-tls-cert-file=/tls/tls.crt',
      '--oidc-jwks-uri=ftp://x',
      '--oidc-path-prefix=/a/../b',
      '--oidc-allowed-hosts=*',
    );
    for (const expected of [
      '--jwt-signing-algorithm: "HS256" is not one of RS256, ES256, EdDSA',
      '--jwt-ttl: "soon" is not a duration',
      '--jwt-key-filename: "../jwt.key" must be a plain file name',
      '--jwt-issuer: "http://insecure.example.org" must use https',
      '--jwt-issuer: needs --jwt-enabled',
      '--jwt-key-id: must be 1 to 256 visible ASCII characters',
      '--oidc-enabled: needs --jwt-enabled',
      '--oidc-server-listen-port: must be an integer from 0 to 65535',
      'must be given together',
      '--oidc-jwks-uri: "ftp://x" must use https',
      '--oidc-path-prefix: "/a/../b"',
      '--oidc-allowed-hosts: "*" wildcards are not accepted',
    ]) {
      expect(message).toContain(expected);
    }
  });

  const single: [string, string[], string][] = [
    [
      'OIDC without an issuer or an allow-list',
      ['--jwt-enabled', '--oidc-enabled'],
      'needs --jwt-issuer or --oidc-allowed-hosts',
    ],
    [
      'TLS files with TLS disabled',
      [
        '--oidc-server-tls-enabled=false',
        '--oidc-server-tls-cert-file=a',
        '--oidc-server-tls-key-file=b',
      ],
      '--oidc-server-tls-enabled: is false but',
    ],
    [
      'the same name for key and JWKS',
      ['--jwt-key-filename=keys', '--jwks-filename=keys'],
      'must differ',
    ],
    [
      "the rotation record's name",
      ['--jwks-filename=jwt-rotation.json'],
      "Warden's JWT rotation record",
    ],
    ['an empty issuer', ['--jwt-enabled', '--jwt-issuer='], '--jwt-issuer: is empty'],
    ['an issuer with a space', ['--jwt-enabled', '--jwt-issuer=a b'], 'must not contain spaces'],
    ['a zero TTL', ['--jwt-ttl=0'], '--jwt-ttl: must be positive'],
    ['a TTL over a year', ['--jwt-ttl=8761h'], 'at most 8760h'],
    [
      'an allowed host with a port',
      ['--oidc-allowed-hosts=a.example:443'],
      'must not include a port',
    ],
    [
      'an issuer with a query',
      ['--jwt-enabled', '--oidc-enabled', '--jwt-issuer=https://a.example/?x=1'],
      'must not have a query or fragment',
    ],
  ];
  it.each(single)('refuses %s', (_name, argv, expected) => {
    expect(problems(...argv)).toContain(expected);
  });

  it('accepts a plain-string issuer without OIDC (a JWT StringOrURI)', () => {
    expect(resolve('--jwt-enabled', '--jwt-issuer=dapr-sentry').jwt.issuer).toBe('dapr-sentry');
  });

  it('warns when OIDC derives its issuer from the host (tokens then carry no iss) or serves plain HTTP', () => {
    const settings = resolve(
      '--jwt-enabled',
      '--oidc-enabled',
      '--oidc-allowed-hosts=a.example',
      '--oidc-server-tls-enabled=false',
    );
    expect(settings.warnings).toHaveLength(2);
    expect(settings.warnings.join(' ')).toMatch(/no iss claim/);
    expect(settings.warnings.join(' ')).toMatch(/plain HTTP/);
  });
});
