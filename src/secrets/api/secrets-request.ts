import { WardenError } from '../../shared/errors.js';
import { printable } from '../../shared/spiffe-id.js';
import { componentNameSchema } from '../components/component.js';
import { assertSecretName } from '../secret-name.js';
import type { RequestMetadata } from '../secret-store.js';

export type SecretsRoute =
  | { readonly kind: 'get'; readonly store: string; readonly name: string; readonly metadata: RequestMetadata }
  | { readonly kind: 'bulk'; readonly store: string; readonly metadata: RequestMetadata }
  | { readonly kind: 'not-found' };

const PREFIX = '/v1.0/secrets/';
const MAX_METADATA_PARAMS = 32;
const MAX_METADATA_BYTES = 1024;

function decodeSegment(raw: string, what: string): string {
  try {
    return decodeURIComponent(raw);
  } catch {
    throw new WardenError('ERR_SECRET_NAME_INVALID', `${what} "${printable(raw)}" is not valid percent-encoding`);
  }
}

function parseMetadata(rawQuery: string): RequestMetadata {
  const metadata = new Map<string, string>();
  // URLSearchParams percent-decodes each name and value exactly once
  for (const [param, value] of new URLSearchParams(rawQuery)) {
    if (!param.startsWith('metadata.')) continue;
    const key = param.slice('metadata.'.length);
    if (key.length === 0 || Buffer.byteLength(key) > MAX_METADATA_BYTES || Buffer.byteLength(value) > MAX_METADATA_BYTES) {
      throw new WardenError('ERR_REQUEST_INVALID', `query parameter "${printable(param)}" is empty or too long`);
    }
    metadata.set(key, value);
    if (metadata.size > MAX_METADATA_PARAMS) throw new WardenError('ERR_REQUEST_INVALID', `more than ${MAX_METADATA_PARAMS} metadata parameters`);
  }
  return Object.freeze(Object.fromEntries(metadata));
}

/**
 * Routes Dapr's `GET /v1.0/secrets/{store}/{name}` and `/v1.0/secrets/{store}/bulk` from the
 * raw request target. The path is split on "/" before anything is decoded, so `..%2f..%2fetc`
 * stays one segment; each segment is percent-decoded exactly once and the decoded name is
 * what gets validated. Throws ERR_SECRET_NAME_INVALID / ERR_REQUEST_INVALID for a bad name
 * or query; answers not-found for any other path.
 */
export function parseSecretsRequestTarget(target: string): SecretsRoute {
  const queryAt = target.indexOf('?');
  const rawPath = queryAt === -1 ? target : target.slice(0, queryAt);
  const rawQuery = queryAt === -1 ? '' : target.slice(queryAt + 1);
  if (!rawPath.startsWith(PREFIX)) return { kind: 'not-found' };
  const segments = rawPath.slice(PREFIX.length).split('/');
  if (segments.length !== 2 || segments.some((s) => s.length === 0)) return { kind: 'not-found' };
  const [rawStore, rawName] = segments as [string, string];
  const store = decodeSegment(rawStore, 'secret store name');
  const name = decodeSegment(rawName, 'secret name');
  const metadata = parseMetadata(rawQuery);
  if (name === 'bulk') return { kind: 'bulk', store, metadata };
  assertSecretName(name);
  return { kind: 'get', store, name, metadata };
}

/** Store names are Component names; anything else cannot name a configured store. */
export function isPlausibleStoreName(store: string): boolean {
  return componentNameSchema.safeParse(store).success;
}
