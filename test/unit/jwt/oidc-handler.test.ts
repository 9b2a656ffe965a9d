import { describe, expect, it } from '@jest/globals';
import type { PublicJwks } from '../../../src/ca/jwt/jwk.js';
import {
  OIDC_AUTHORIZATION_ENDPOINT,
  createOidcHandler,
  normaliseOidcPathPrefix,
  type OidcHandlerOptions,
  type OidcResponse,
} from '../../../src/issuer/oidc/oidc-handler.js';
import { normaliseAllowedHost, parseRequestHost } from '../../../src/issuer/oidc/oidc-host.js';

const JWKS: PublicJwks = {
  keys: [{ kty: 'OKP', crv: 'Ed25519', x: 'abc', kid: 'k1', alg: 'EdDSA', use: 'sig' }],
};

function handler(overrides: Partial<OidcHandlerOptions> = {}) {
  return createOidcHandler({
    jwks: () => JWKS,
    pathPrefix: '',
    allowedHosts: [],
    tls: true,
    ...overrides,
  });
}

function get(
  handle: ReturnType<typeof createOidcHandler>,
  url: string,
  headers: Record<string, string> = {},
  method = 'GET',
): OidcResponse {
  return handle({ method, url, headers: { host: 'oidc.example.org', ...headers } });
}

function discovery(response: OidcResponse): Record<string, unknown> {
  expect(response.status).toBe(200);
  return JSON.parse(response.body) as Record<string, unknown>;
}

describe('OIDC discovery handler', () => {
  it('serves a discovery document with every field OpenID Connect Discovery 1.0 §3 requires', () => {
    const doc = discovery(
      get(handler({ issuer: 'https://issuer.example.org' }), '/.well-known/openid-configuration'),
    );
    expect(doc).toEqual({
      issuer: 'https://issuer.example.org',
      jwks_uri: 'https://issuer.example.org/jwks.json',
      authorization_endpoint: OIDC_AUTHORIZATION_ENDPOINT,
      response_types_supported: ['id_token'],
      subject_types_supported: ['public'],
      id_token_signing_alg_values_supported: ['EdDSA'],
      scopes_supported: ['openid'],
      claims_supported: ['sub', 'aud', 'exp', 'iat', 'nbf', 'jti', 'use', 'iss'],
    });
  });

  it('serves the JWKS and the document as cacheable JSON', () => {
    const handle = handler({ issuer: 'https://issuer.example.org', cacheMaxAgeSeconds: 120 });
    for (const path of ['/jwks.json', '/.well-known/openid-configuration']) {
      const response = get(handle, path);
      expect(response.status).toBe(200);
      expect(response.headers['content-type']).toBe('application/json');
      expect(response.headers['cache-control']).toBe('public, max-age=120');
      expect(response.headers['x-content-type-options']).toBe('nosniff');
    }
    expect(JSON.parse(get(handle, '/jwks.json').body)).toEqual(JWKS);
  });

  it('serves the JWKS as it is at the time of the request', () => {
    let jwks: PublicJwks = JWKS;
    const handle = handler({ issuer: 'https://issuer.example.org', jwks: () => jwks });
    expect(JSON.parse(get(handle, '/jwks.json').body).keys).toHaveLength(1);
    jwks = {
      keys: [
        ...JWKS.keys,
        { kty: 'EC', crv: 'P-256', x: 'a', y: 'b', kid: 'k2', alg: 'ES256', use: 'sig' },
      ],
    };
    expect(
      JSON.parse(get(handle, '/jwks.json').body).keys.map((k: { kid: string }) => k.kid),
    ).toEqual(['k1', 'k2']);
    expect(
      discovery(get(handle, '/.well-known/openid-configuration'))
        .id_token_signing_alg_values_supported,
    ).toEqual(['EdDSA', 'ES256']);
  });

  const hostCases: [
    string,
    Partial<OidcHandlerOptions>,
    Record<string, string>,
    number,
    string | null,
  ][] = [
    [
      'derives the issuer from an allowed Host',
      { allowedHosts: ['oidc.example.org'] },
      {},
      200,
      'https://oidc.example.org',
    ],
    [
      'keeps the port of an allowed Host',
      { allowedHosts: ['oidc.example.org'] },
      { host: 'OIDC.example.org:8443' },
      200,
      'https://oidc.example.org:8443',
    ],
    [
      'refuses a Host outside the allow-list with 403',
      { allowedHosts: ['oidc.example.org'] },
      { host: 'evil.example' },
      403,
      null,
    ],
    [
      'checks the Host before looking at X-Forwarded-Host',
      { allowedHosts: ['oidc.example.org'] },
      { host: 'evil.example', 'x-forwarded-host': 'oidc.example.org' },
      403,
      null,
    ],
    [
      'honours an allowed X-Forwarded-Host',
      { allowedHosts: ['oidc.example.org', 'public.example.org'] },
      { 'x-forwarded-host': 'public.example.org' },
      200,
      'https://public.example.org',
    ],
    [
      'refuses an X-Forwarded-Host outside the allow-list with 403',
      { allowedHosts: ['oidc.example.org'] },
      { 'x-forwarded-host': 'evil.example' },
      403,
      null,
    ],
    [
      'checks the first X-Forwarded-Host of a list',
      { allowedHosts: ['oidc.example.org', 'public.example.org'] },
      { 'x-forwarded-host': 'evil.example, public.example.org' },
      403,
      null,
    ],
    [
      'never lets X-Forwarded-Host change a configured issuer',
      {
        issuer: 'https://issuer.example.org',
        allowedHosts: ['oidc.example.org', 'public.example.org'],
      },
      { 'x-forwarded-host': 'public.example.org', 'x-forwarded-proto': 'http' },
      200,
      'https://issuer.example.org',
    ],
    [
      'ignores forwarded headers when there is no allow-list',
      { issuer: 'https://issuer.example.org' },
      { host: 'anything.example', 'x-forwarded-host': 'evil.example' },
      200,
      'https://issuer.example.org',
    ],
    ['refuses to derive an issuer without an allow-list', {}, {}, 403, null],
    [
      'refuses a malformed Host with 400',
      { allowedHosts: ['oidc.example.org'] },
      { host: 'oidc.example.org/evil' },
      400,
      null,
    ],
    [
      'refuses a malformed X-Forwarded-Host with 400',
      { allowedHosts: ['oidc.example.org'] },
      { 'x-forwarded-host': 'a b' },
      400,
      null,
    ],
    [
      'takes the scheme from X-Forwarded-Proto only behind a proxy (TLS off) and for an allowed host',
      { tls: false, allowedHosts: ['oidc.example.org'] },
      { 'x-forwarded-proto': 'https' },
      200,
      'https://oidc.example.org',
    ],
    [
      'uses http without TLS and without X-Forwarded-Proto',
      { tls: false, allowedHosts: ['oidc.example.org'] },
      {},
      200,
      'http://oidc.example.org',
    ],
    [
      'keeps https when this server terminates TLS',
      { allowedHosts: ['oidc.example.org'] },
      { 'x-forwarded-proto': 'http' },
      200,
      'https://oidc.example.org',
    ],
    [
      'refuses a malformed X-Forwarded-Proto with 400',
      { allowedHosts: ['oidc.example.org'] },
      { 'x-forwarded-proto': 'gopher' },
      400,
      null,
    ],
    [
      'matches IPv6 literals',
      { allowedHosts: ['::1'] },
      { host: '[::1]:9080' },
      200,
      'https://[::1]:9080',
    ],
  ];
  it.each(hostCases)('%s', (_name, options, headers, status, issuer) => {
    const response = get(handler(options), '/.well-known/openid-configuration', headers);
    expect(response.status).toBe(status);
    if (issuer === null) {
      expect(response.body).not.toContain('issuer');
      expect(response.headers['cache-control']).toBe('no-store');
    } else {
      const doc = discovery(response);
      expect(doc.issuer).toBe(issuer);
    }
  });

  it('gates the JWKS with the same host rules', () => {
    const handle = handler({ allowedHosts: ['oidc.example.org'] });
    expect(get(handle, '/jwks.json').status).toBe(200);
    expect(get(handle, '/jwks.json', { host: 'evil.example' }).status).toBe(403);
    expect(get(handle, '/jwks.json', { 'x-forwarded-host': 'evil.example' }).status).toBe(403);
  });

  it('derives jwks_uri from the allowed host and the path prefix, from the issuer URL, or takes --oidc-jwks-uri', () => {
    const fromHost = discovery(
      get(
        handler({ allowedHosts: ['oidc.example.org'], pathPrefix: '/tenant/' }),
        '/tenant/.well-known/openid-configuration',
      ),
    );
    expect(fromHost).toMatchObject({
      issuer: 'https://oidc.example.org/tenant',
      jwks_uri: 'https://oidc.example.org/tenant/jwks.json',
    });
    const fromIssuer = discovery(
      get(
        handler({ issuer: 'https://issuer.example.org/t1/', allowedHosts: ['oidc.example.org'] }),
        '/.well-known/openid-configuration',
      ),
    );
    expect(fromIssuer.jwks_uri).toBe('https://issuer.example.org/t1/jwks.json');
    const given = discovery(
      get(
        handler({ issuer: 'https://issuer.example.org', jwksUri: 'https://cdn.example.org/keys' }),
        '/.well-known/openid-configuration',
      ),
    );
    expect(given.jwks_uri).toBe('https://cdn.example.org/keys');
  });

  it('lists iss among the claims only when tokens carry it', () => {
    const doc = discovery(
      get(handler({ allowedHosts: ['oidc.example.org'] }), '/.well-known/openid-configuration'),
    );
    expect(doc.claims_supported).not.toContain('iss');
  });

  const routing: [string, string, string, number][] = [
    ['serves the document under the prefix', '/p/q', '/p/q/.well-known/openid-configuration', 200],
    ['serves the JWKS under the prefix', '/p/q', '/p/q/jwks.json', 200],
    ['ignores a query string', '', '/jwks.json?x=1', 200],
    ['answers 404 for the unprefixed path when a prefix is set', '/p', '/jwks.json', 404],
    ['answers 404 for an unknown path', '', '/keys', 404],
    ['answers 404 for a path that only starts like a route', '', '/jwks.json/x', 404],
    ['answers 404 for the root', '', '/', 404],
  ];
  it.each(routing)('%s', (_name, pathPrefix, url, status) => {
    expect(get(handler({ issuer: 'https://issuer.example.org', pathPrefix }), url).status).toBe(
      status,
    );
  });

  it.each(['POST', 'PUT', 'DELETE', 'OPTIONS', 'PATCH'])(
    'answers %s with 405 and Allow: GET, HEAD',
    (method) => {
      const response = get(
        handler({ issuer: 'https://issuer.example.org' }),
        '/jwks.json',
        {},
        method,
      );
      expect(response.status).toBe(405);
      expect(response.headers.allow).toBe('GET, HEAD');
    },
  );

  it('answers HEAD like GET', () => {
    expect(
      get(handler({ issuer: 'https://issuer.example.org' }), '/jwks.json', {}, 'HEAD').status,
    ).toBe(200);
  });

  it('normalises path prefixes', () => {
    expect(['', '/', 'a', '/a/', '/a/b//'].map(normaliseOidcPathPrefix)).toEqual([
      '',
      '',
      '/a',
      '/a',
      '/a/b',
    ]);
  });

  const hosts: [string, string | null][] = [
    ['example.org', 'example.org'],
    ['Example.ORG:443', 'example.org:443'],
    ['127.0.0.1:80', '127.0.0.1:80'],
    ['[::1]', '[::1]'],
    ['example.org.', 'example.org'],
    ['::1', null],
    ['example.org:99999', null],
    ['exa mple.org', null],
    ['user@example.org', null],
    ['', null],
  ];
  it.each(hosts)('parses the Host %j as %j', (value, authority) => {
    expect(parseRequestHost(value)?.authority ?? null).toBe(authority);
  });

  it('refuses wildcards, URLs and ports in the allow-list', () => {
    expect(normaliseAllowedHost('*')).toHaveProperty('problem');
    expect(normaliseAllowedHost('*.example.org')).toHaveProperty('problem');
    expect(normaliseAllowedHost('https://example.org')).toHaveProperty('problem');
    expect(normaliseAllowedHost('example.org:443')).toHaveProperty('problem');
    expect(normaliseAllowedHost('Example.org')).toEqual({ host: 'example.org' });
    expect(normaliseAllowedHost('[::1]')).toEqual({ host: '::1' });
  });
});
