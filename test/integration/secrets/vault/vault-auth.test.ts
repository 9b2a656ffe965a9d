import { promises as fs } from 'node:fs';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import { ManualClock } from '../../../../src/shared/clock.js';
import { silentLogger } from '../../../../src/shared/logger.js';
import { writeFileAtomic } from '../../../../src/shared/atomic-file.js';
import type { SecretStore } from '../../../../src/secrets/secret-store.js';
import { VaultTestServer } from '../../../support/vault-test-server.js';
import {
  ManualTimers,
  createStore,
  eventually,
  makeTempDir,
  rejectionOf,
  testContext,
} from '../../../support/vault-store-fixtures.js';

/**
 * The token's life on a shared ManualClock: the test server decides expiry by it and the
 * store decides renewal by it, so an hour passes in a line and nothing sleeps.
 */
const JWT = 'eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzeXN0ZW06c2VydmljZWFjY291bnQ6ZGVmYXVsdDphcHAifQ.sig';
let dir: string;
let jwtPath: string;
let clock: ManualClock;
let timers: ManualTimers;
let server: VaultTestServer;
const stores: SecretStore[] = [];

async function kubernetesStore(extra: Record<string, string> = {}): Promise<SecretStore> {
  const store = await createStore(
    {
      vaultAddr: server.url,
      caPem: server.caPem,
      vaultAuthMethod: 'kubernetes',
      vaultKubernetesRole: 'app',
      vaultServiceAccountTokenPath: jwtPath,
      ...extra,
    },
    testContext(silentLogger, clock, { timers }),
  );
  stores.push(store);
  return store;
}

function apiPaths(): string[] {
  return server.requests().map((r) => r.apiPath);
}

beforeAll(async () => {
  dir = await makeTempDir('auth');
  jwtPath = path.join(dir, 'sa-token');
  await fs.writeFile(jwtPath, JWT);
});
afterAll(async () => {
  await fs.rm(dir, { recursive: true, force: true });
});
beforeEach(async () => {
  clock = new ManualClock(Date.UTC(2026, 0, 1));
  timers = new ManualTimers(clock);
  server = await VaultTestServer.start({ clock });
  server.setKv('secret', 'dapr/db', { password: 'pw' });
  server.addKubernetesRole({ role: 'app', jwt: JWT, ttlSeconds: 60 });
});
afterEach(async () => {
  for (const store of stores.splice(0)) await store.close();
  await server.close();
});

describe('Vault auth: Kubernetes login lifecycle', () => {
  it('logs in at start with the service-account JWT and the role', async () => {
    const store = await kubernetesStore();
    const [login] = server.requests('auth/kubernetes/login');
    expect(login?.method).toBe('POST');
    expect(store.ready()).toBe(true);
    expect(await store.get('db')).toEqual({ password: 'pw' });
    expect(server.requests('secret/data/dapr/db')[0]?.headers['x-vault-token']).toBe(
      server.loginTokens()[0],
    );
  });

  it('logs in again when the token is revoked mid-run, once, and the read succeeds', async () => {
    const store = await kubernetesStore();
    const first = server.loginTokens()[0] as string;
    server.revokeToken(first);
    server.clearLog();
    expect(await store.get('db')).toEqual({ password: 'pw' });
    expect(apiPaths()).toEqual([
      'secret/data/dapr/db',
      'auth/token/lookup-self',
      'auth/kubernetes/login',
      'secret/data/dapr/db',
    ]);
    expect(server.requests('secret/data/dapr/db')[1]?.headers['x-vault-token']).toBe(
      server.loginTokens()[1],
    );
  });

  it('fails with ERR_SECRET_PERMISSION_DENIED and is not ready when the re-login is refused', async () => {
    const store = await kubernetesStore();
    server.revokeToken(server.loginTokens()[0] as string);
    await fs.writeFile(jwtPath, 'eyJ.a-jwt-vault-does-not-accept.sig');
    try {
      const rejection = await rejectionOf(store.get('db'));
      expect(rejection.code).toBe('ERR_SECRET_PERMISSION_DENIED');
      expect(rejection.message).toMatch(
        /refused the kubernetes login \(role "app"\) at auth\/kubernetes\/login \(403/,
      );
      expect(store.ready()).toBe(false);
    } finally {
      await fs.writeFile(jwtPath, JWT);
    }
    // The projected token is rotated back: the next read logs in and works.
    expect(await store.get('db')).toEqual({ password: 'pw' });
    expect(store.ready()).toBe(true);
  });

  it('answers ERR_SECRET_PERMISSION_DENIED when the path is still denied after the re-login, logging in only once', async () => {
    server.addKubernetesRole({
      role: 'narrow',
      jwt: JWT,
      ttlSeconds: 60,
      deny: ['secret/data/dapr/db'],
    });
    const store = await kubernetesStore({ vaultKubernetesRole: 'narrow' });
    server.revokeToken(server.loginTokens()[0] as string);
    server.clearLog();
    const rejection = await rejectionOf(store.get('db'));
    expect(rejection.code).toBe('ERR_SECRET_PERMISSION_DENIED');
    expect(apiPaths()).toEqual([
      'secret/data/dapr/db',
      'auth/token/lookup-self',
      'auth/kubernetes/login',
      'secret/data/dapr/db',
    ]);
    expect(store.ready()).toBe(true);
  });

  it('logs in inside a Vault namespace and reads that namespace only', async () => {
    server.mountKv('secret', 2, 'team-a');
    server.setKv('secret', 'dapr/db', { password: 'team-a-pw' }, 'team-a');
    server.addKubernetesRole({ role: 'ns-app', jwt: JWT, namespace: 'team-a', mount: 'k8s-east' });
    const store = await kubernetesStore({
      vaultKubernetesRole: 'ns-app',
      vaultKubernetesMountPath: 'k8s-east',
      vaultNamespace: 'team-a',
    });
    expect(await store.get('db')).toEqual({ password: 'team-a-pw' });
    const login = server.requests('auth/k8s-east/login')[0];
    expect([login?.namespace, login?.headers['x-vault-namespace']]).toEqual(['team-a', 'team-a']);
  });

  it('logs in only once when many reads find the token dead at the same time', async () => {
    const store = await kubernetesStore();
    server.revokeToken(server.loginTokens()[0] as string);
    server.clearLog();
    const results = await Promise.all(Array.from({ length: 20 }, () => store.get('db')));
    results.forEach((r) => expect(r).toEqual({ password: 'pw' }));
    expect(server.requests('auth/kubernetes/login')).toHaveLength(1);
  });

  it('renews the token at two thirds of its TTL, before it expires, on the next read', async () => {
    const store = await kubernetesStore();
    const token = server.loginTokens()[0] as string;
    clock.advance(41_000); // past 2/3 of 60 s, 19 s before expiry
    server.clearLog();
    expect(await store.get('db')).toEqual({ password: 'pw' });
    expect(apiPaths()).toEqual(['auth/token/renew-self', 'secret/data/dapr/db']);
    expect(server.requests('renew-self')[0]?.headers['x-vault-token']).toBe(token);
    expect(server.tokenTtl(token)).toBe(60);
    clock.advance(50_000); // 91 s after login: the original lease would be long gone
    expect(await store.get('db')).toEqual({ password: 'pw' });
    expect(server.loginTokens()).toHaveLength(1);
  });

  it('renews in the background when the renewal timer fires, with no read in between', async () => {
    await kubernetesStore();
    const token = server.loginTokens()[0] as string;
    expect(timers.scheduled()).toEqual([Date.UTC(2026, 0, 1) + 40_000]);
    server.clearLog();
    timers.advance(40_000);
    await eventually(
      () => server.requests('renew-self').length === 1 && timers.scheduled().length === 1,
      'background renewal',
    );
    expect(server.tokenTtl(token)).toBe(60);
    expect(timers.scheduled()).toEqual([Date.UTC(2026, 0, 1) + 80_000]);
  });

  it('logs in again when renewal is refused', async () => {
    const store = await kubernetesStore();
    server.failNext(400, 1, { pathContains: 'renew-self', errors: ['lease is not renewable'] });
    clock.advance(41_000);
    server.clearLog();
    expect(await store.get('db')).toEqual({ password: 'pw' });
    expect(apiPaths()).toEqual([
      'auth/token/renew-self',
      'auth/kubernetes/login',
      'secret/data/dapr/db',
    ]);
  });

  it('logs in again instead of renewing once the max TTL caps renewals', async () => {
    server.addKubernetesRole({ role: 'capped', jwt: JWT, ttlSeconds: 60, maxTtlSeconds: 90 });
    const store = await kubernetesStore({ vaultKubernetesRole: 'capped' });
    clock.advance(41_000);
    await store.get('db'); // renewal grants 49 s (capped at 90 s after login)
    clock.advance(33_000);
    await store.get('db'); // renewal grants 16 s: less than a third of 60 s — max TTL is near
    clock.advance(11_000);
    server.clearLog();
    await store.get('db');
    expect(apiPaths()).toEqual(['auth/kubernetes/login', 'secret/data/dapr/db']);
    expect(server.requests('renew-self')).toHaveLength(0);
  });

  it('keeps serving with the current token when a renewal fails transiently, and retries later', async () => {
    const store = await kubernetesStore();
    clock.advance(41_000);
    server.failNext(503, 4, { pathContains: 'renew-self', errors: ['internal error'] });
    expect(await store.get('db')).toEqual({ password: 'pw' });
    expect(store.ready()).toBe(true);
    clock.advance(10_000); // half of the remaining 19 s has passed: try again
    server.clearLog();
    await store.get('db');
    expect(apiPaths()[0]).toBe('auth/token/renew-self');
  });

  it('logs in again when its token has expired by the clock (for example after a long pause)', async () => {
    const store = await kubernetesStore();
    clock.advance(61_000);
    expect(store.ready()).toBe(false);
    server.clearLog();
    expect(await store.get('db')).toEqual({ password: 'pw' });
    expect(apiPaths()).toEqual(['auth/kubernetes/login', 'secret/data/dapr/db']);
    expect(store.ready()).toBe(true);
  });

  it('revokes the token it minted when closed', async () => {
    const store = await kubernetesStore();
    const token = server.loginTokens()[0] as string;
    await store.close();
    expect(server.requests('revoke-self')[0]?.headers['x-vault-token']).toBe(token);
    expect(server.tokenState(token)).toBe('revoked');
  });
});

describe('Vault auth: AppRole', () => {
  it('re-reads the secret ID file at each login', async () => {
    const secretIdPath = path.join(dir, 'secret-id');
    await fs.writeFile(secretIdPath, 'secret-id-one');
    server.addAppRole({ roleId: 'role-a', secretId: 'secret-id-one', ttlSeconds: 60 });
    server.addAppRole({ roleId: 'role-a', secretId: 'secret-id-two' });
    const store = await createStore(
      {
        vaultAddr: server.url,
        caPem: server.caPem,
        vaultAuthMethod: 'approle',
        vaultAppRoleRoleId: 'role-a',
        vaultAppRoleSecretIdPath: secretIdPath,
      },
      testContext(silentLogger, clock, { timers }),
    );
    stores.push(store);
    await fs.writeFile(secretIdPath, 'secret-id-two');
    server.destroyAppRoleSecretId('role-a', 'secret-id-one');
    server.revokeToken(server.loginTokens()[0] as string);
    server.clearLog();
    expect(await store.get('db')).toEqual({ password: 'pw' });
    expect(server.requests('auth/approle/login').map((r) => r.status)).toEqual([200]);
  });

  it('refuses to start with a wrong secret ID, without echoing it', async () => {
    server.addAppRole({ roleId: 'role-b', secretId: 'right-secret-id' });
    const rejection = await rejectionOf(
      createStore(
        {
          vaultAddr: server.url,
          caPem: server.caPem,
          vaultAuthMethod: 'approle',
          vaultAppRoleRoleId: 'role-b',
          vaultAppRoleSecretId: 'wrong-secret-id',
        },
        testContext(silentLogger, clock),
      ),
    );
    expect(rejection.code).toBe('ERR_SECRET_PERMISSION_DENIED');
    expect(rejection.message).toContain('invalid role or secret ID');
    expect(rejection.message).not.toContain('wrong-secret-id');
  });
});

describe('Vault auth: tokens given by configuration', () => {
  it('renews a renewable vaultToken before it expires', async () => {
    const token = server.addToken({ ttlSeconds: 60 });
    const store = await createStore(
      { vaultAddr: server.url, caPem: server.caPem, vaultToken: token },
      testContext(silentLogger, clock, { timers }),
    );
    stores.push(store);
    clock.advance(45_000);
    await store.get('db');
    expect(server.requests('renew-self')).toHaveLength(1);
    expect(server.tokenTtl(token)).toBe(60);
  });

  it('reports a vaultToken Vault no longer accepts as ERR_SECRET_PERMISSION_DENIED and becomes not ready', async () => {
    const token = server.addToken({ ttlSeconds: 600 });
    const store = await createStore(
      { vaultAddr: server.url, caPem: server.caPem, vaultToken: token },
      testContext(silentLogger, clock, { timers }),
    );
    stores.push(store);
    server.expireToken(token);
    const rejection = await rejectionOf(store.get('db'));
    expect(rejection.code).toBe('ERR_SECRET_PERMISSION_DENIED');
    expect(rejection.message).toMatch(/no longer accepts the configured vaultToken/);
    expect(store.ready()).toBe(false);
  });

  it('uses the new token after the token file is rotated, without a restart', async () => {
    const tokenFile = path.join(dir, 'vault-token');
    const first = server.addToken({ ttlSeconds: 0, renewable: false });
    await writeFileAtomic(tokenFile, `${first}\n`);
    const store = await createStore(
      { vaultAddr: server.url, caPem: server.caPem, vaultTokenMountPath: tokenFile },
      testContext(silentLogger, clock, { timers }),
    );
    stores.push(store);
    expect(await store.get('db')).toEqual({ password: 'pw' });
    const second = server.addToken({ ttlSeconds: 0, renewable: false });
    await writeFileAtomic(tokenFile, `${second}\n`);
    server.revokeToken(first);
    server.clearLog();
    expect(await store.get('db')).toEqual({ password: 'pw' });
    expect(server.requests().map((r) => r.headers['x-vault-token'])).toEqual([second, second]);
    expect(apiPaths()).toEqual(['auth/token/lookup-self', 'secret/data/dapr/db']);
  });

  it('keeps the current token while the token file is briefly missing or empty', async () => {
    const tokenFile = path.join(dir, 'vault-token-3');
    const first = server.addToken({ ttlSeconds: 0, renewable: false });
    await writeFileAtomic(tokenFile, first);
    const store = await createStore(
      { vaultAddr: server.url, caPem: server.caPem, vaultTokenMountPath: tokenFile },
      testContext(silentLogger, clock, { timers }),
    );
    stores.push(store);
    await fs.rm(tokenFile);
    expect(await store.get('db')).toEqual({ password: 'pw' });
    await fs.writeFile(tokenFile, '');
    expect(await store.get('db')).toEqual({ password: 'pw' });
    const second = server.addToken({ ttlSeconds: 0, renewable: false });
    await writeFileAtomic(tokenFile, second);
    server.clearLog();
    await store.get('db');
    expect(server.requests('secret/data/dapr/db')[0]?.headers['x-vault-token']).toBe(second);
  });

  it('says the token file was not updated when its token dies, and recovers once it is', async () => {
    const tokenFile = path.join(dir, 'vault-token-2');
    const first = server.addToken({ ttlSeconds: 0, renewable: false });
    await writeFileAtomic(tokenFile, first);
    const store = await createStore(
      { vaultAddr: server.url, caPem: server.caPem, vaultTokenMountPath: tokenFile },
      testContext(silentLogger, clock, { timers }),
    );
    stores.push(store);
    server.revokeToken(first);
    const rejection = await rejectionOf(store.get('db'));
    expect(rejection.code).toBe('ERR_SECRET_PERMISSION_DENIED');
    expect(rejection.message).toMatch(/vaultTokenMountPath .* has not been updated/);
    expect(store.ready()).toBe(false);
    await writeFileAtomic(tokenFile, server.addToken({ ttlSeconds: 0, renewable: false }));
    expect(await store.get('db')).toEqual({ password: 'pw' });
    expect(store.ready()).toBe(true);
  });
});
