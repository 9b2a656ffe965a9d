import http from 'node:http';
import https from 'node:https';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { generateJwtSigningKey, type JwtSigningKey } from '../../src/ca/jwt/jwt-signing-key.js';
import type { JwtSigningAlgorithm } from '../../src/ca/jwt/jwt-signing-algorithm.js';

export interface FetchedResponse {
  readonly status: number;
  readonly headers: http.IncomingHttpHeaders;
  readonly body: string;
}

/**
 * One real HTTP(S) request with Node's own client: `ca` pins the test CA (nothing else is
 * trusted), `host` sets the Host header, extra headers pass through unchanged.
 */
export function request(
  url: string,
  options: {
    ca?: string;
    method?: string;
    headers?: Record<string, string>;
    servername?: string;
  } = {},
): Promise<FetchedResponse> {
  const target = new URL(url);
  const client = target.protocol === 'https:' ? https : http;
  return new Promise((resolve, reject) => {
    const req = client.request(
      target,
      {
        method: options.method ?? 'GET',
        headers: options.headers ?? {},
        ...(target.protocol === 'https:'
          ? { ca: options.ca, servername: options.servername ?? 'localhost', agent: false }
          : { agent: false }),
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body: Buffer.concat(chunks).toString('utf8'),
          }),
        );
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end();
  });
}

/** A fresh private temp directory; call the returned function to remove it. */
export function makeTempDir(prefix = 'warden-jwt-'): { dir: string; remove: () => void } {
  const dir = mkdtempSync(path.join(tmpdir(), prefix));
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

const keyCache = new Map<JwtSigningAlgorithm, Promise<JwtSigningKey>>();

/** One generated key per algorithm per test file (RSA generation is slow on a shared machine). */
export function sharedKey(alg: JwtSigningAlgorithm): Promise<JwtSigningKey> {
  let key = keyCache.get(alg);
  if (!key) {
    key = generateJwtSigningKey(alg);
    keyCache.set(alg, key);
  }
  return key;
}
