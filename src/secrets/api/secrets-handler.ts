import { describeError, isWardenError, WardenError } from '../../shared/errors.js';
import type { Logger } from '../../shared/logger.js';
import { printable } from '../../shared/spiffe-id.js';
import { UNKNOWN_STORE_LABEL, type SecretsMetrics } from '../metrics.js';
import { filterAllowedSecrets, isAppAllowedByComponentScopes, isSecretAllowed, type SecretScopes } from '../scoping.js';
import type { SecretStoreSet } from '../secret-store-set.js';
import type { CallerIdentity } from './caller-identity.js';
import { httpErrorFor } from './http-errors.js';
import { parseSecretsRequestTarget } from './secrets-request.js';

export interface SecretsApiContext {
  readonly stores: SecretStoreSet;
  readonly scopes: SecretScopes;
  readonly logger: Logger;
  readonly metrics: SecretsMetrics;
}

export interface SecretsApiRequest {
  readonly method: string;
  /** The raw request target (`req.url`), not yet decoded. */
  readonly target: string;
  /** Who is calling, or the reason the caller could not be identified (answered 403). */
  readonly caller: CallerIdentity | WardenError;
}

export interface SecretsApiResponse {
  readonly status: number;
  readonly body: unknown;
  readonly headers?: Readonly<Record<string, string>>;
}

function errorBody(errorCode: string, message: string): { errorCode: string; message: string } {
  return { errorCode, message };
}

function fromWardenError(err: WardenError, message = err.message): SecretsApiResponse {
  const mapping = httpErrorFor(err.code);
  return { status: mapping.status, body: errorBody(mapping.errorCode, message) };
}

/**
 * Answers one secrets API request: identity, route, store, Component scopes, Configuration
 * scopes, then the store. Each refusal uses Dapr's code and status (one table in
 * http-errors.ts); values appear only in a 200 body, never in a log line or an error.
 */
export async function answerSecretsRequest(ctx: SecretsApiContext, request: SecretsApiRequest): Promise<SecretsApiResponse> {
  const { stores, scopes, logger, metrics } = ctx;
  if (request.caller instanceof WardenError) return fromWardenError(request.caller);
  const caller = request.caller;
  const appId = caller.kind === 'svid' ? caller.appId : undefined;

  let route;
  try {
    route = parseSecretsRequestTarget(request.target);
  } catch (err) {
    if (isWardenError(err)) {
      metrics.storeError(UNKNOWN_STORE_LABEL, err.code);
      return fromWardenError(err);
    }
    throw err;
  }
  if (route.kind === 'not-found') return { status: 404, body: errorBody('ERR_NOT_FOUND', 'no such route') };
  if (request.method !== 'GET') {
    return { status: 405, body: errorBody('ERR_METHOD_NOT_ALLOWED', `method ${printable(request.method)} is not allowed`), headers: { allow: 'GET' } };
  }
  if (stores.size === 0) {
    return fromWardenError(new WardenError('ERR_SECRET_STORES_NOT_CONFIGURED', 'secret store is not configured'));
  }
  const live = stores.get(route.store);
  if (!live) {
    metrics.storeError(UNKNOWN_STORE_LABEL, 'ERR_SECRET_STORE_NOT_FOUND');
    return fromWardenError(new WardenError('ERR_SECRET_STORE_NOT_FOUND', `failed finding secret store with key ${printable(route.store)}`));
  }
  if (caller.kind === 'svid' && live.namespace !== undefined && caller.namespace !== live.namespace) {
    metrics.storeError(live.name, 'ERR_SECRET_PERMISSION_DENIED');
    logger.warn({ store: live.name, appId, namespace: caller.namespace }, 'secrets API: caller is not in the secret store Component namespace');
    return fromWardenError(
      new WardenError('ERR_SECRET_PERMISSION_DENIED', `access denied: secret store "${live.name}" belongs to another namespace`),
    );
  }
  if (!isAppAllowedByComponentScopes(live.appScopes, appId)) {
    metrics.storeError(live.name, 'ERR_SECRET_PERMISSION_DENIED');
    logger.warn({ store: live.name, appId }, 'secrets API: app is not in the secret store Component scopes');
    return fromWardenError(
      new WardenError('ERR_SECRET_PERMISSION_DENIED', `access denied: app "${appId}" is not in the scopes of secret store "${live.name}"`),
    );
  }

  if (route.kind === 'bulk') {
    try {
      const all = await live.store.bulkGet(route.metadata);
      const allowed = filterAllowedSecrets(scopes, live.name, all);
      logger.debug({ store: live.name, appId, secrets: Object.keys(allowed).length }, 'secrets API: bulk read');
      return { status: 200, body: allowed };
    } catch (err) {
      return storeFailure(ctx, err, live.name, `failed getting secrets from secret store ${live.name}`);
    }
  }

  if (!isSecretAllowed(scopes, live.name, route.name)) {
    metrics.storeError(live.name, 'ERR_SECRET_PERMISSION_DENIED');
    logger.warn({ store: live.name, secretName: route.name, appId }, 'secrets API: denied by the Configuration secret scopes');
    return fromWardenError(
      new WardenError('ERR_SECRET_PERMISSION_DENIED', `access denied by policy to get "${printable(route.name)}" from "${live.name}"`),
    );
  }
  try {
    const data = await live.store.get(route.name, route.metadata);
    logger.debug({ store: live.name, secretName: route.name, appId }, 'secrets API: read');
    return { status: 200, body: data };
  } catch (err) {
    return storeFailure(ctx, err, live.name, `failed getting secret with key ${printable(route.name)} from secret store ${live.name}`);
  }
}

function storeFailure(ctx: SecretsApiContext, err: unknown, store: string, prefix: string): SecretsApiResponse {
  if (isWardenError(err)) {
    ctx.logger.info({ store, code: err.code, error: err.message }, 'secrets API: store read failed');
    return fromWardenError(err, `${prefix}: ${err.message}`);
  }
  // Not ours: the detail may say anything, so it goes to the log and the caller gets a generic line.
  ctx.logger.error({ store, error: describeError(err) }, 'secrets API: store read failed unexpectedly');
  const mapping = httpErrorFor(undefined);
  return { status: mapping.status, body: errorBody(mapping.errorCode, `${prefix}: internal error`) };
}
