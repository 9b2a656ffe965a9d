import { readFile } from 'node:fs/promises';
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { WardenError } from '../../../shared/errors.js';

/** A JWKS larger than this is refused (a JWKS is a few KiB; this bounds memory and parse time). */
export const MAX_JWKS_BYTES = 1024 * 1024;

export type JwksSource =
  | { readonly kind: 'url'; readonly url: URL }
  | { readonly kind: 'file'; readonly path: string }
  | { readonly kind: 'inline'; readonly json: string };

/**
 * Dapr's `source` option is one string: an http(s) URL, an inline JWKS (JSON object), or a
 * file path. Throws ERR_CONFIG_INVALID for a URL that does not parse or another scheme.
 */
export function classifyJwksSource(source: string): JwksSource {
  const trimmed = source.trim();
  if (trimmed.length === 0)
    throw new WardenError('ERR_CONFIG_INVALID', 'jwks validator: source is empty');
  if (trimmed.startsWith('{')) return { kind: 'inline', json: trimmed };
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(trimmed)) {
    let url: URL;
    try {
      url = new URL(trimmed);
    } catch {
      throw new WardenError('ERR_CONFIG_INVALID', 'jwks validator: source is not a valid URL');
    }
    if (url.protocol !== 'https:' && url.protocol !== 'http:') {
      throw new WardenError(
        'ERR_CONFIG_INVALID',
        `jwks validator: source scheme ${url.protocol} is not http or https`,
      );
    }
    if (url.username !== '' || url.password !== '') {
      // Credentials in the URL would end up in logs and errors.
      throw new WardenError(
        'ERR_CONFIG_INVALID',
        'jwks validator: source URL may not carry a user name or password',
      );
    }
    return { kind: 'url', url };
  }
  return { kind: 'file', path: trimmed };
}

/** A short, credential-free description for logs and health output. */
export function describeJwksSource(source: JwksSource): string {
  switch (source.kind) {
    case 'url':
      return `${source.url.protocol}//${source.url.host}${source.url.pathname}`;
    case 'file':
      return `file ${source.path}`;
    case 'inline':
      return 'inline JWKS';
  }
}

export interface FetchJwksOptions {
  /** PEM CA bundle that replaces the default roots for https sources. */
  readonly caCertificate: string | undefined;
  /** Whole-exchange deadline (connect, TLS, headers, body). */
  readonly timeoutMs: number;
}

function readBody(response: IncomingMessage, limit: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    response.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        response.destroy(new Error(`response is larger than ${limit} bytes`));
        return;
      }
      chunks.push(chunk);
    });
    response.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    response.on('error', reject);
    response.on('aborted', () => reject(new Error('response aborted')));
  });
}

function fetchUrl(url: URL, options: FetchJwksOptions): Promise<string> {
  return new Promise<string>((resolve, reject) => {
    const signal = AbortSignal.timeout(options.timeoutMs);
    const requestFn = url.protocol === 'https:' ? httpsRequest : httpRequest;
    const req = requestFn(
      url,
      {
        method: 'GET',
        headers: { accept: 'application/json, application/jwk-set+json' },
        signal,
        ...(url.protocol === 'https:' && options.caCertificate !== undefined
          ? { ca: options.caCertificate }
          : {}),
      },
      (response) => {
        if (response.statusCode !== 200) {
          response.resume();
          reject(new Error(`HTTP status ${response.statusCode ?? 'unknown'}`));
          return;
        }
        readBody(response, MAX_JWKS_BYTES).then(resolve, reject);
      },
    );
    req.on('error', (err: Error) => {
      reject(signal.aborted ? new Error(`no answer within ${options.timeoutMs} ms`) : err);
    });
    req.end();
  });
}

/**
 * Reads the JWKS document from its source and parses the JSON. Rejects with a plain Error
 * whose message says what failed (never a key); the validator decides what that means.
 */
export async function fetchJwksDocument(
  source: JwksSource,
  options: FetchJwksOptions,
): Promise<unknown> {
  let text: string;
  switch (source.kind) {
    case 'inline':
      text = source.json;
      break;
    case 'file': {
      const data = await readFile(source.path);
      if (data.length > MAX_JWKS_BYTES)
        throw new Error(`file is larger than ${MAX_JWKS_BYTES} bytes`);
      text = data.toString('utf8');
      break;
    }
    case 'url':
      text = await fetchUrl(source.url, options);
      break;
  }
  try {
    return JSON.parse(text) as unknown;
  } catch {
    throw new Error('the JWKS is not valid JSON');
  }
}
