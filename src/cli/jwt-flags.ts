import path from 'node:path';
import {
  DEFAULT_JWKS_FILENAME,
  DEFAULT_JWT_KEY_FILENAME,
  DEFAULT_JWT_STATE_FILENAME,
} from '../ca/jwt/jwt-key-material.js';
import {
  DEFAULT_JWT_SIGNING_ALGORITHM,
  JWT_SIGNING_ALGORITHMS,
  isJwtSigningAlgorithm,
  type JwtSigningAlgorithm,
} from '../ca/jwt/jwt-signing-algorithm.js';
import { keyIdProblem } from '../ca/jwt/jwt-signing-key.js';
import { normaliseOidcPathPrefix } from '../issuer/oidc/oidc-handler.js';
import { normaliseAllowedHost } from '../issuer/oidc/oidc-host.js';
import { parseDuration } from '../shared/duration.js';
import { formatConfigProblem, type ConfigProblem } from '../shared/config/config-problems.js';
import { WardenError } from '../shared/errors.js';
import type { FlagSpecs, ParsedFlags } from '../shared/flags.js';
import { printable } from '../shared/spiffe-id.js';

/** The JWT-SVID and OIDC flags of `warden serve`, named and defaulted as Dapr Sentry's. */
export const JWT_FLAG_SPECS: FlagSpecs = {
  'jwt-enabled': {
    kind: 'boolean',
    description: 'Issue a JWT-SVID with every certificate',
    default: 'false',
  },
  'jwt-key-filename': {
    kind: 'string',
    description: 'JWT signing key file name (PKCS#8 PEM) in the issuer credentials directory',
    default: DEFAULT_JWT_KEY_FILENAME,
  },
  'jwks-filename': {
    kind: 'string',
    description: 'JWKS (published JWT public keys) file name in the issuer credentials directory',
    default: DEFAULT_JWKS_FILENAME,
  },
  'jwt-issuer': {
    kind: 'string',
    description: 'The iss claim of JWT-SVIDs and the OIDC issuer (none when unset)',
  },
  'jwt-signing-algorithm': {
    kind: 'string',
    description: `JWT signing algorithm: ${JWT_SIGNING_ALGORITHMS.join(', ')}`,
    default: DEFAULT_JWT_SIGNING_ALGORITHM,
  },
  'jwt-key-id': {
    kind: 'string',
    description: 'Key ID (kid) of the JWT signing key (default: its RFC 7638 thumbprint)',
  },
  'jwt-ttl': {
    kind: 'string',
    description: 'Lifetime of JWT-SVIDs (never past the X.509 certificate)',
    default: '24h',
  },
  'oidc-enabled': {
    kind: 'boolean',
    description: 'Serve OIDC discovery and the JWKS over HTTP(S)',
    default: 'false',
  },
  'oidc-server-listen-port': {
    kind: 'number',
    description: 'Port of the OIDC server',
    default: '9080',
  },
  'oidc-server-listen-address': {
    kind: 'string',
    description: 'Listen address of the OIDC server',
    default: 'localhost',
  },
  'oidc-server-tls-enabled': {
    kind: 'boolean',
    description: 'Serve OIDC over TLS (set false only behind a TLS-terminating proxy)',
    default: 'true',
  },
  'oidc-server-tls-cert-file': {
    kind: 'string',
    description: "OIDC server certificate file (default: a certificate from Warden's own CA)",
  },
  'oidc-server-tls-key-file': { kind: 'string', description: 'OIDC server private key file' },
  'oidc-jwks-uri': {
    kind: 'string',
    description: 'The jwks_uri to publish (default: derived from the issuer or host)',
  },
  'oidc-path-prefix': {
    kind: 'string',
    description: 'Path prefix of the OIDC endpoints',
    default: '',
  },
  'oidc-allowed-hosts': {
    kind: 'list',
    description: 'Host names the OIDC server answers for (checked before any X-Forwarded-Host)',
  },
};

export interface JwtSettings {
  readonly jwt: {
    readonly enabled: boolean;
    readonly keyFilename: string;
    readonly jwksFilename: string;
    readonly issuer: string | undefined;
    readonly algorithm: JwtSigningAlgorithm;
    readonly keyId: string | undefined;
    readonly ttlMs: number;
  };
  readonly oidc: {
    readonly enabled: boolean;
    readonly listenAddress: string;
    readonly port: number;
    readonly tls: {
      readonly enabled: boolean;
      /** Both set, or neither (then the lead backs TLS with a certificate from Warden's CA). */
      readonly certFile: string | undefined;
      readonly keyFile: string | undefined;
    };
    readonly jwksUri: string | undefined;
    /** Normalised: "" or "/a/b". */
    readonly pathPrefix: string;
    /** Normalised lower-case host names / IP literals. */
    readonly allowedHosts: readonly string[];
  };
  /** Accepted but questionable choices, one sentence each, for the start-up log. */
  readonly warnings: readonly string[];
}

const MAX_JWT_TTL_MS = 8760 * 3_600_000;
const PATH_PREFIX_RE = /^(\/[A-Za-z0-9._~-]+)*$/;

/**
 * Turns parsed flags into frozen JWT/OIDC settings, collecting every problem (each with the
 * flag it is about as its path). Takes ParsedFlags from `parseFlags` over specs that include
 * JWT_FLAG_SPECS (merged into SERVE_FLAGS); `warden serve` reports these problems together
 * with its own.
 */
export function collectJwtSettings(
  flags: ParsedFlags,
): { ok: true; settings: JwtSettings } | { ok: false; problems: readonly ConfigProblem[] } {
  const problems: ConfigProblem[] = [];
  const problem = (flag: string, message: string): void => {
    problems.push({ path: `--${flag}`, message });
  };
  const warnings: string[] = [];
  const str = (name: string): string | undefined => {
    const value = flags.values[name];
    return typeof value === 'string' ? value : undefined;
  };
  const bool = (name: string): boolean => flags.values[name] === true;
  const given = (name: string): boolean => flags.given.has(name);

  const jwtEnabled = bool('jwt-enabled');
  const oidcEnabled = bool('oidc-enabled');

  const algorithmText = str('jwt-signing-algorithm') ?? DEFAULT_JWT_SIGNING_ALGORITHM;
  let algorithm: JwtSigningAlgorithm = DEFAULT_JWT_SIGNING_ALGORITHM;
  if (isJwtSigningAlgorithm(algorithmText)) algorithm = algorithmText;
  else
    problem(
      'jwt-signing-algorithm',
      `"${printable(algorithmText)}" is not one of ${JWT_SIGNING_ALGORITHMS.join(', ')}`,
    );

  let ttlMs = 24 * 3_600_000;
  const ttlText = str('jwt-ttl') ?? '24h';
  try {
    ttlMs = parseDuration(ttlText);
    if (ttlMs <= 0) problem('jwt-ttl', 'must be positive');
    else if (ttlMs > MAX_JWT_TTL_MS) problem('jwt-ttl', 'must be at most 8760h');
  } catch {
    problem('jwt-ttl', `"${printable(ttlText)}" is not a duration (use Go syntax such as 24h)`);
  }

  const keyFilename = str('jwt-key-filename') ?? DEFAULT_JWT_KEY_FILENAME;
  const jwksFilename = str('jwks-filename') ?? DEFAULT_JWKS_FILENAME;
  for (const [flag, name] of [
    ['jwt-key-filename', keyFilename],
    ['jwks-filename', jwksFilename],
  ] as const) {
    if (name.length === 0 || name !== path.basename(name) || name === '.' || name === '..') {
      problem(flag, `"${printable(name)}" must be a plain file name (no directory)`);
    } else if (name === DEFAULT_JWT_STATE_FILENAME) {
      problem(flag, `"${name}" is the name of Warden's JWT rotation record`);
    }
  }
  if (keyFilename === jwksFilename) problem('jwks-filename', 'must differ from --jwt-key-filename');

  let issuer: string | undefined;
  if (given('jwt-issuer')) {
    issuer = str('jwt-issuer') ?? '';
    const issue = issuerProblem(issuer, oidcEnabled);
    if (issue) problem('jwt-issuer', issue);
    if (!jwtEnabled) problem('jwt-issuer', 'needs --jwt-enabled');
  }

  let keyId: string | undefined;
  if (given('jwt-key-id')) {
    keyId = str('jwt-key-id') ?? '';
    const issue = keyIdProblem(keyId);
    if (issue) problem('jwt-key-id', issue);
  }

  if (oidcEnabled && !jwtEnabled)
    problem('oidc-enabled', 'needs --jwt-enabled (there are no keys to publish otherwise)');

  const port = flags.values['oidc-server-listen-port'];
  const portNumber = typeof port === 'number' ? port : 9080;
  if (!Number.isInteger(portNumber) || portNumber < 0 || portNumber > 65535) {
    problem('oidc-server-listen-port', 'must be an integer from 0 to 65535');
  }
  const listenAddress = str('oidc-server-listen-address') ?? 'localhost';
  if (listenAddress.length === 0) problem('oidc-server-listen-address', 'is empty');

  const tlsEnabled = flags.values['oidc-server-tls-enabled'] !== false;
  const certFile = given('oidc-server-tls-cert-file')
    ? (str('oidc-server-tls-cert-file') ?? '')
    : undefined;
  const keyFile = given('oidc-server-tls-key-file')
    ? (str('oidc-server-tls-key-file') ?? '')
    : undefined;
  if (certFile === '') problem('oidc-server-tls-cert-file', 'is empty');
  if (keyFile === '') problem('oidc-server-tls-key-file', 'is empty');
  if ((certFile === undefined) !== (keyFile === undefined)) {
    problem(
      certFile === undefined ? 'oidc-server-tls-cert-file' : 'oidc-server-tls-key-file',
      'the certificate and key files must be given together',
    );
  }
  if (!tlsEnabled && (certFile !== undefined || keyFile !== undefined)) {
    problem(
      'oidc-server-tls-enabled',
      'is false but --oidc-server-tls-cert-file/--oidc-server-tls-key-file are set',
    );
  }

  let jwksUri: string | undefined;
  if (given('oidc-jwks-uri')) {
    jwksUri = str('oidc-jwks-uri') ?? '';
    const issue = httpsUrlProblem(jwksUri);
    if (issue) problem('oidc-jwks-uri', issue);
  }

  const prefixText = str('oidc-path-prefix') ?? '';
  const pathPrefix = normaliseOidcPathPrefix(prefixText);
  if (
    !PATH_PREFIX_RE.test(pathPrefix) ||
    pathPrefix.split('/').some((seg) => seg === '.' || seg === '..')
  ) {
    problem(
      'oidc-path-prefix',
      `"${printable(prefixText)}" must be /-separated segments of letters, digits, ".", "_", "~" and "-"`,
    );
  }

  const allowedHosts: string[] = [];
  const hostList = flags.values['oidc-allowed-hosts'];
  for (const entry of Array.isArray(hostList) ? (hostList as readonly string[]) : []) {
    const normalised = normaliseAllowedHost(entry);
    if ('problem' in normalised)
      problem('oidc-allowed-hosts', `"${printable(entry)}" ${normalised.problem}`);
    else if (!allowedHosts.includes(normalised.host)) allowedHosts.push(normalised.host);
  }

  if (oidcEnabled && issuer === undefined && allowedHosts.length === 0) {
    problem(
      'oidc-enabled',
      'needs --jwt-issuer or --oidc-allowed-hosts: the issuer would otherwise come from an unchecked Host header',
    );
  }
  if (oidcEnabled && issuer === undefined && allowedHosts.length > 0) {
    warnings.push(
      'OIDC is enabled without --jwt-issuer: the discovery issuer is derived from the request host, but tokens carry no iss claim, so verifiers that check iss (cloud federation does) will reject them',
    );
  }
  if (oidcEnabled && !tlsEnabled) {
    warnings.push(
      'the OIDC server serves plain HTTP (--oidc-server-tls-enabled=false); put a TLS-terminating proxy in front of it',
    );
  }

  if (problems.length > 0) return { ok: false, problems: Object.freeze(problems) };

  return {
    ok: true,
    settings: deepFreeze({
      jwt: { enabled: jwtEnabled, keyFilename, jwksFilename, issuer, algorithm, keyId, ttlMs },
      oidc: {
        enabled: oidcEnabled,
        listenAddress,
        port: portNumber,
        tls: { enabled: tlsEnabled, certFile, keyFile },
        jwksUri,
        pathPrefix,
        allowedHosts,
      },
      warnings,
    }),
  };
}

/** collectJwtSettings that throws one ERR_CONFIG_INVALID listing every problem. */
export function resolveJwtSettings(flags: ParsedFlags): JwtSettings {
  const result = collectJwtSettings(flags);
  if (!result.ok)
    throw new WardenError(
      'ERR_CONFIG_INVALID',
      result.problems.map(formatConfigProblem).join('; '),
    );
  return result.settings;
}

/**
 * An issuer is a JWT StringOrURI (RFC 7519 §2: a value with ":" must be a URI); with OIDC it
 * must be an https URL without query or fragment (OpenID Connect Discovery 1.0 §3).
 */
function issuerProblem(issuer: string, oidc: boolean): string | null {
  if (issuer.length === 0) return 'is empty';
  if (/[\s\u0000-\u001f\u007f]/.test(issuer))
    return 'must not contain spaces or control characters';
  if (oidc) {
    const problem = httpsUrlProblem(issuer);
    return problem ? `${problem} (OIDC discovery needs an https issuer URL)` : null;
  }
  if (issuer.includes(':')) {
    try {
      new URL(issuer);
    } catch {
      return 'contains ":" but is not a URI';
    }
  }
  return null;
}

function httpsUrlProblem(value: string): string | null {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return `"${printable(value)}" is not an absolute URL`;
  }
  if (url.protocol !== 'https:') return `"${printable(value)}" must use https`;
  if (url.search !== '' || url.hash !== '' || value.includes('#') || value.includes('?')) {
    return `"${printable(value)}" must not have a query or fragment`;
  }
  if (url.username !== '' || url.password !== '') return 'must not contain credentials';
  return null;
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const child of Object.values(value as Record<string, unknown>)) deepFreeze(child);
  }
  return value;
}
