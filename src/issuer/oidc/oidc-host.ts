import { isIP } from 'node:net';

/** A parsed Host / X-Forwarded-Host value. */
export interface RequestHost {
  /** Lower-case host name or IP literal, without brackets or port: what the allow-list matches. */
  readonly hostname: string;
  /** The host as it goes into a URL (brackets for IPv6, port when one was given). */
  readonly authority: string;
}

const HOSTNAME_RE =
  /^(?=.{1,253}$)[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*\.?$/;

/**
 * Parses a Host header (RFC 9110 §7.2: uri-host [":" port]) strictly; null when it is not one.
 * Strict because the result may become part of the issuer URL a verifier trusts.
 */
export function parseRequestHost(value: string): RequestHost | null {
  const text = value.trim().toLowerCase();
  if (text.length === 0 || text.length > 300) return null;
  let host: string;
  let port: string | undefined;
  if (text.startsWith('[')) {
    const close = text.indexOf(']');
    if (close === -1) return null;
    host = text.slice(1, close);
    const rest = text.slice(close + 1);
    if (rest !== '') {
      if (!rest.startsWith(':')) return null;
      port = rest.slice(1);
    }
    if (isIP(host) !== 6) return null;
  } else {
    const colon = text.indexOf(':');
    if (colon !== -1) {
      if (text.indexOf(':', colon + 1) !== -1) return null; // bare IPv6 must be bracketed
      host = text.slice(0, colon);
      port = text.slice(colon + 1);
    } else {
      host = text;
    }
    if (isIP(host) !== 4 && !HOSTNAME_RE.test(host)) return null;
  }
  if (port !== undefined && !/^[0-9]{1,5}$/.test(port)) return null;
  if (port !== undefined && Number(port) > 65535) return null;
  const hostname = host.endsWith('.') ? host.slice(0, -1) : host;
  const bracketed = isIP(hostname) === 6 ? `[${hostname}]` : hostname;
  return { hostname, authority: port === undefined ? bracketed : `${bracketed}:${port}` };
}

/**
 * Normalises an `--oidc-allowed-hosts` entry (a host name or IP, no scheme, port or wildcard);
 * returns the lower-case name or a reason it is not one.
 */
export function normaliseAllowedHost(entry: string): { host: string } | { problem: string } {
  const text = entry.trim().toLowerCase();
  if (text === '*' || text.includes('*')) {
    return {
      problem:
        'wildcards are not accepted: list each host name (a wildcard would let any Host header set the issuer)',
    };
  }
  if (text.includes('://') || text.includes('/'))
    return { problem: 'must be a host name, not a URL' };
  const unbracketed = text.startsWith('[') && text.endsWith(']') ? text.slice(1, -1) : text;
  if (isIP(unbracketed) !== 0) return { host: unbracketed };
  if (text.includes(':'))
    return { problem: 'must not include a port (the port of the request is not checked)' };
  if (!HOSTNAME_RE.test(text)) return { problem: 'is not a valid host name' };
  return { host: text.endsWith('.') ? text.slice(0, -1) : text };
}

/** The first value of a header that proxies may send as a comma-separated list. */
export function firstHeaderValue(
  value: string | readonly string[] | undefined,
): string | undefined {
  const joined = Array.isArray(value) ? value.join(',') : (value as string | undefined);
  if (joined === undefined) return undefined;
  const first = joined.split(',')[0]?.trim();
  return first === undefined || first.length === 0 ? undefined : first;
}
