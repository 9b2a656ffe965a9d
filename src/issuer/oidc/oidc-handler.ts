import type { PublicJwks } from '../../ca/jwt/jwk.js';
import { firstHeaderValue, parseRequestHost, type RequestHost } from './oidc-host.js';

export const DISCOVERY_PATH = '/.well-known/openid-configuration';
export const JWKS_PATH = '/jwks.json';

/**
 * Default Cache-Control max-age of both documents. Short, because a rotated-in key must reach
 * verifiers' caches before it signs (DEFAULT_JWT_NEXT_KEY_MIN_PUBLISHED_MS is far longer).
 */
export const DEFAULT_OIDC_CACHE_MAX_AGE_SECONDS = 300;

/**
 * OpenID Connect Discovery 1.0 §3 requires `authorization_endpoint`, but Warden has none:
 * tokens are obtained over SignCertificate. Like the Kubernetes API server's service-account
 * issuer discovery (which cloud federation accepts), publish a URN that no client can
 * mistake for a URL to send users to.
 */
export const OIDC_AUTHORIZATION_ENDPOINT = 'urn:warden:programmatic_authorization';

export interface OidcHandlerOptions {
  /** The published JWKS, read per request so that a rotation shows at once. */
  readonly jwks: () => PublicJwks;
  /** `--jwt-issuer`. When set, no request header can change it. */
  readonly issuer?: string | undefined;
  /** `--oidc-jwks-uri`: the jwks_uri to publish instead of one derived here. */
  readonly jwksUri?: string | undefined;
  /** `--oidc-path-prefix`, normalised ("" or "/a/b"). */
  readonly pathPrefix: string;
  /** `--oidc-allowed-hosts`, normalised lower-case host names / IPs. */
  readonly allowedHosts: readonly string[];
  /** True when this server terminates TLS itself (the scheme is then always https). */
  readonly tls: boolean;
  readonly cacheMaxAgeSeconds?: number;
}

export interface OidcRequest {
  readonly method: string;
  /** The request target as received (path and optional query). */
  readonly url: string;
  readonly headers: Readonly<Record<string, string | readonly string[] | undefined>>;
}

export interface OidcResponse {
  readonly status: number;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: string;
  /** Why a request was refused (for a debug log line); absent on success. */
  readonly refusal?: string;
}

/** The discovery document Warden serves (OpenID Connect Discovery 1.0 §3 provider metadata). */
export interface OidcDiscoveryDocument {
  readonly issuer: string;
  readonly jwks_uri: string;
  readonly authorization_endpoint: string;
  readonly response_types_supported: readonly string[];
  readonly subject_types_supported: readonly string[];
  readonly id_token_signing_alg_values_supported: readonly string[];
  readonly scopes_supported: readonly string[];
  readonly claims_supported: readonly string[];
}

/** Normalises `--oidc-path-prefix`: "" for none, else "/seg/seg" (no trailing slash). */
export function normaliseOidcPathPrefix(prefix: string): string {
  const trimmed = prefix.trim().replace(/\/+$/, '');
  if (trimmed === '') return '';
  return trimmed.startsWith('/') ? trimmed : `/${trimmed}`;
}

/**
 * The request handling of the OIDC discovery server as a pure function of the request, so
 * every rule is testable without a socket. In order:
 * 1. The Host header must parse and, when an allow-list is configured, be on it (else 403);
 *    only then is X-Forwarded-Host looked at, and it too must be on the list (else 403).
 *    Without an allow-list forwarded headers are ignored, never trusted.
 * 2. Unknown paths → 404; methods other than GET/HEAD → 405 with Allow.
 * 3. The issuer is `--jwt-issuer` when configured (no header changes it); otherwise it is
 *    derived from the request's host, and only from a host the allow-list accepted.
 */
export function createOidcHandler(
  options: OidcHandlerOptions,
): (request: OidcRequest) => OidcResponse {
  const prefix = normaliseOidcPathPrefix(options.pathPrefix);
  const allowed = new Set(options.allowedHosts);
  const maxAge = options.cacheMaxAgeSeconds ?? DEFAULT_OIDC_CACHE_MAX_AGE_SECONDS;
  const cacheControl = `public, max-age=${maxAge}`;
  const configuredIssuerUrl =
    options.issuer !== undefined && isHttpUrl(options.issuer)
      ? options.issuer.replace(/\/+$/, '')
      : null;
  const jwksBodies = new WeakMap<PublicJwks, string>();

  const jwksBody = (): string => {
    const jwks = options.jwks();
    let body = jwksBodies.get(jwks);
    if (body === undefined) {
      body = JSON.stringify(jwks);
      jwksBodies.set(jwks, body);
    }
    return body;
  };

  return (request) => {
    // 1. Hosts, before anything else is looked at.
    const host = parseRequestHost(firstHeaderValue(request.headers.host) ?? '');
    if (!host)
      return refuse(400, 'bad request: missing or malformed Host header', 'malformed Host');
    let publicHost: RequestHost | null = null;
    let forwardedProto: string | undefined;
    if (allowed.size > 0) {
      if (!allowed.has(host.hostname))
        return refuse(403, 'forbidden: host not allowed', `Host ${host.hostname} not allowed`);
      publicHost = host;
      const forwarded = firstHeaderValue(request.headers['x-forwarded-host']);
      if (forwarded !== undefined) {
        const forwardedHost = parseRequestHost(forwarded);
        if (!forwardedHost)
          return refuse(
            400,
            'bad request: malformed X-Forwarded-Host',
            'malformed X-Forwarded-Host',
          );
        if (!allowed.has(forwardedHost.hostname)) {
          return refuse(
            403,
            'forbidden: host not allowed',
            `X-Forwarded-Host ${forwardedHost.hostname} not allowed`,
          );
        }
        publicHost = forwardedHost;
      }
      forwardedProto = firstHeaderValue(request.headers['x-forwarded-proto'])?.toLowerCase();
      if (forwardedProto !== undefined && forwardedProto !== 'https' && forwardedProto !== 'http') {
        return refuse(
          400,
          'bad request: malformed X-Forwarded-Proto',
          'malformed X-Forwarded-Proto',
        );
      }
    }

    // 2. Route and method.
    const path = pathOf(request.url);
    const route =
      path === `${prefix}${DISCOVERY_PATH}`
        ? 'discovery'
        : path === `${prefix}${JWKS_PATH}`
          ? 'jwks'
          : null;
    if (!route) return refuse(404, 'not found', 'unknown path');
    if (request.method !== 'GET' && request.method !== 'HEAD') {
      return {
        ...refuse(405, 'method not allowed', `method ${request.method}`),
        headers: { ...errorHeaders(), allow: 'GET, HEAD' },
      };
    }

    if (route === 'jwks') return ok(jwksBody());

    // 3. The discovery document.
    // Behind a TLS-terminating proxy (TLS disabled here) the proxy says which scheme the
    // client used; it is believed only for a host the allow-list accepted.
    const scheme = options.tls ? 'https' : (forwardedProto ?? 'http');
    const derivedBase = publicHost ? `${scheme}://${publicHost.authority}${prefix}` : null;
    const issuer = options.issuer ?? derivedBase;
    const jwksUri =
      options.jwksUri ??
      (configuredIssuerUrl
        ? `${configuredIssuerUrl}${JWKS_PATH}`
        : derivedBase
          ? `${derivedBase}${JWKS_PATH}`
          : null);
    if (issuer === null || jwksUri === null) {
      // Only reachable without an allow-list and without a configured issuer/jwks URI, which
      // settings validation refuses: the document would otherwise echo an unchecked Host.
      return refuse(
        403,
        'forbidden: host not allowed',
        'no issuer configured and no allow-list to derive one',
      );
    }
    const algs = [
      ...new Set(
        options
          .jwks()
          .keys.map((key) => key.alg)
          .filter((alg): alg is string => typeof alg === 'string'),
      ),
    ];
    const document: OidcDiscoveryDocument = {
      issuer,
      jwks_uri: jwksUri,
      authorization_endpoint: OIDC_AUTHORIZATION_ENDPOINT,
      response_types_supported: ['id_token'],
      subject_types_supported: ['public'],
      id_token_signing_alg_values_supported: algs,
      scopes_supported: ['openid'],
      claims_supported: [
        'sub',
        'aud',
        'exp',
        'iat',
        'nbf',
        'jti',
        'use',
        ...(options.issuer === undefined ? [] : ['iss']),
      ],
    };
    return ok(JSON.stringify(document));
  };

  function ok(body: string): OidcResponse {
    return {
      status: 200,
      headers: {
        'content-type': 'application/json',
        'cache-control': cacheControl,
        'x-content-type-options': 'nosniff',
      },
      body,
    };
  }
}

function refuse(status: number, body: string, refusal: string): OidcResponse {
  return { status, headers: errorHeaders(), body: `${body}\n`, refusal };
}

function errorHeaders(): Record<string, string> {
  return {
    'content-type': 'text/plain; charset=utf-8',
    'cache-control': 'no-store',
    'x-content-type-options': 'nosniff',
  };
}

function pathOf(url: string): string {
  const q = url.search(/[?#]/);
  return q === -1 ? url : url.slice(0, q);
}

function isHttpUrl(value: string): boolean {
  try {
    const url = new URL(value);
    return url.protocol === 'https:' || url.protocol === 'http:';
  } catch {
    return false;
  }
}
