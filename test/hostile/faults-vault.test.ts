import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { SecretsApiServer } from '../../src/secrets/api/secrets-api-server.js';
import {
  resolveComponents,
  type ResolvedResources,
} from '../../src/secrets/resolve/resolve-components.js';
import { NO_SECRET_SCOPES } from '../../src/secrets/scoping.js';
import { ManualClock } from '../../src/shared/clock.js';
import { readEnv } from '../../src/shared/env.js';
import { rawRequest } from '../support/https-client.js';
import { bufferLogger } from '../support/log-buffer.js';
import { VaultTestServer } from '../support/vault-test-server.js';

const VALUE = 'vault-fault-value-0c0ffee';
const NEXT_VALUE = 'vault-fault-value-1deadbeef';

/**
 * Vault failing while Warden serves the secrets API: sealed, throttled, dropping
 * connections, and the token revoked. Warden talks to the wire-faithful Vault test server
 * through its real client; the app talks to Warden over real HTTP (plain HTTP on loopback:
 * these tests are about Vault, the mutual-TLS path is covered by the corpus). Default retry
 * policy: 4 attempts, 200 ms base back-off, Retry-After honoured up to 10 s.
 */
describe('Vault faults through the secrets API', () => {
  let dir: string;
  let vault: VaultTestServer;
  let resources: ResolvedResources;
  let server: SecretsApiServer;
  let port: number;
  let tokenFile: string;
  let token: string;
  const clock = new ManualClock(Date.now());
  const log = bufferLogger('debug');

  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'warden-vault-faults-'));
    vault = await VaultTestServer.start({ clock });
    vault.setKv('secret', 'dapr/db', { password: VALUE });
    token = vault.addToken({ ttlSeconds: 0, renewable: false });
    tokenFile = path.join(dir, 'vault-token');
    await writeFile(tokenFile, token);
    const common = [
      { name: 'vaultAddr', value: vault.url },
      { name: 'caPem', value: vault.caPem },
      { name: 'vaultKVPrefix', value: 'dapr' },
    ];
    const component = (name: string, metadata: Array<{ name: string; value: string }>) => ({
      apiVersion: 'dapr.io/v1alpha1',
      kind: 'Component',
      metadata: { name },
      spec: {
        type: 'secretstores.hashicorp.vault',
        version: 'v1',
        metadata: [...common, ...metadata],
      },
    });
    resources = await resolveComponents({
      manifests: [
        component('vault', [{ name: 'vaultTokenMountPath', value: tokenFile }]),
        component('cached', [
          { name: 'vaultToken', value: vault.rootToken },
          { name: 'cacheTTL', value: '30s' },
        ]),
      ],
      config: NO_SECRET_SCOPES,
      mode: 'standalone',
      env: readEnv({}),
      clock,
      logger: log.logger,
    });
    server = new SecretsApiServer({
      stores: resources.stores,
      scopes: resources.scopes,
      transport: { kind: 'insecure-http' },
      port: 0,
      logger: log.logger,
    });
    port = (await server.listen()).port;
  });

  afterAll(async () => {
    await server?.close();
    await resources?.close();
    await vault?.close();
    await rm(dir, { recursive: true, force: true });
  });

  const read = (store = 'vault') => rawRequest(port, `/v1.0/secrets/${store}/db`);
  const ok = { status: 200, body: { password: VALUE } };

  it('answers while Vault is up (control)', async () => {
    expect(await read()).toMatchObject(ok);
  });

  it('sealed: a clear 500 at once (no retries against a sealed Vault), then recovery on unseal', async () => {
    vault.clearLog();
    vault.seal();
    try {
      const res = await read();
      expect(res).toMatchObject({ status: 500, body: { errorCode: 'ERR_SECRET_GET' } });
      expect((res.body as { message: string }).message).toMatch(/Vault is sealed/);
      expect(vault.requests('dapr/db')).toHaveLength(1);
    } finally {
      vault.unseal();
    }
    expect(await read()).toMatchObject(ok);
  });

  it('429 with a short Retry-After: retried, and the app never notices', async () => {
    vault.clearLog();
    vault.failNext(429, 1, { retryAfterSeconds: 0, pathContains: 'dapr/db' });
    expect(await read()).toMatchObject(ok);
    expect(vault.requests('dapr/db').map((r) => r.status)).toEqual([429, 200]);
  });

  it('429 with a Retry-After beyond the budget: a clear 500 at once, then recovery', async () => {
    vault.clearLog();
    vault.failNext(429, 1, { retryAfterSeconds: 3600, pathContains: 'dapr/db' });
    const res = await read();
    expect(res.status).toBe(500);
    expect((res.body as { message: string }).message).toMatch(
      /Vault is rate limiting requests \(429/,
    );
    expect(vault.requests('dapr/db')).toHaveLength(1);
    expect(await read()).toMatchObject(ok);
  });

  it('dropped connections: bounded retries (4 attempts), a clear 500, then recovery', async () => {
    vault.clearLog();
    vault.failNext(0, 4, { pathContains: 'dapr/db' });
    const res = await read();
    expect(res).toMatchObject({ status: 500, body: { errorCode: 'ERR_SECRET_GET' } });
    expect(vault.requests('dapr/db')).toHaveLength(4);
    expect(await read()).toMatchObject(ok);
  });

  it('token revoked mid-run: a clear 403 naming the token file (never the token), then recovery when the file gets a new token', async () => {
    vault.revokeToken(token);
    const res = await read();
    expect(res.status).toBe(403);
    const message = (res.body as { message: string }).message;
    expect(message).toContain(`vaultTokenMountPath ${tokenFile}`);
    expect(message).not.toContain(token);

    const replacement = vault.addToken({ ttlSeconds: 0, renewable: false });
    await writeFile(tokenFile, replacement);
    vault.setKv('secret', 'dapr/db', { password: NEXT_VALUE });
    expect(await read()).toMatchObject({ status: 200, body: { password: NEXT_VALUE } });
    expect(log.text()).not.toContain(token);
    expect(log.text()).not.toContain(replacement);
    vault.setKv('secret', 'dapr/db', { password: VALUE });
  });

  it('with cacheTTL: a cached value is served while Vault is sealed only until its TTL runs out', async () => {
    expect(await read('cached')).toMatchObject(ok);
    vault.seal();
    try {
      clock.advance(29_000);
      expect(await read('cached')).toMatchObject(ok); // within the TTL: from the cache
      clock.advance(1_000);
      const expired = await read('cached'); // at the TTL: never served, Vault is asked and is sealed
      expect(expired.status).toBe(500);
      expect((expired.body as { message: string }).message).toMatch(/Vault is sealed/);
      expect((await read('cached')).status).toBe(500); // the failure was not cached either
    } finally {
      vault.unseal();
    }
    expect(await read('cached')).toMatchObject(ok);
  });

  it('never logged a secret value', () => {
    expect(log.text()).not.toContain(VALUE);
    expect(log.text()).not.toContain(NEXT_VALUE);
    expect(log.text()).not.toContain(vault.rootToken);
  });
});
