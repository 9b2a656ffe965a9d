import { promises as fs } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { ManualClock } from '../../../../src/shared/clock.js';
import { writeFileAtomic } from '../../../../src/shared/atomic-file.js';
import { VaultTestServer } from '../../../support/vault-test-server.js';
import {
  createCapturedLogger,
  createStore,
  makeTempDir,
  rejectionOf,
  testContext,
} from '../../../support/vault-store-fixtures.js';

/**
 * Drives every path that handles a credential — logins, renewals, re-logins, token-file
 * rotation, denials, throttling, sealing, a server that echoes the token in its error,
 * bad configuration, close — with a debug-level logger writing into memory, then greps
 * the log and every error for each token, JWT and secret ID involved.
 */
const JWT = 'eyJhbGciOiJSUzI1NiJ9.leak-test-service-account-jwt.c2lnbmF0dXJl';
const SECRET_ID = 'approle-secret-id-leak-test-9f8e7d';
const ROLE_ID = 'approle-role-id-leak-test-1a2b3c';
const captured = createCapturedLogger();
const errors: string[] = [];
let server: VaultTestServer;
let dir: string;
const clock = new ManualClock(Date.UTC(2026, 0, 1));

async function collect(promise: Promise<unknown>): Promise<string> {
  const rejection = await rejectionOf(promise);
  const err = rejection.error as
    { message?: string; details?: unknown; cause?: unknown; stack?: string } | undefined;
  if (err !== undefined) {
    errors.push(
      `${err.message ?? ''} ${JSON.stringify(err.details ?? {})} ${String(err.cause ?? '')} ${err.stack ?? ''}`,
    );
  }
  return rejection.code;
}

beforeAll(async () => {
  server = await VaultTestServer.start({ clock });
  dir = await makeTempDir('leak');
  server.setKv('secret', 'dapr/db', { password: 'pw' });
  server.setKv('secret', 'dapr/forbidden', { password: 'pw' });
  server.addKubernetesRole({
    role: 'app',
    jwt: JWT,
    ttlSeconds: 60,
    deny: ['secret/data/dapr/forbidden'],
  });
  server.addAppRole({ roleId: ROLE_ID, secretId: SECRET_ID, ttlSeconds: 60 });
});
afterAll(async () => {
  await server.close();
  await fs.rm(dir, { recursive: true, force: true });
});

describe('Vault store credentials', () => {
  it('never appear in a log line or an error, whatever happens', async () => {
    const context = testContext(captured.logger, clock);
    const jwtPath = path.join(dir, 'jwt');
    await fs.writeFile(jwtPath, JWT);

    // Kubernetes auth: login, read, renewal, revocation and re-login, denial, throttling, sealing.
    const k8s = await createStore(
      {
        vaultAddr: server.url,
        caPem: server.caPem,
        vaultAuthMethod: 'kubernetes',
        vaultKubernetesRole: 'app',
        vaultServiceAccountTokenPath: jwtPath,
      },
      context,
    );
    await k8s.get('db');
    clock.advance(45_000);
    await k8s.get('db');
    server.revokeToken(server.loginTokens().at(-1) as string);
    await k8s.get('db');
    expect(await collect(k8s.get('forbidden'))).toBe('ERR_SECRET_PERMISSION_DENIED');
    server.failNext(429, 2, { retryAfterSeconds: 0 });
    await k8s.get('db');
    server.seal();
    expect(await collect(k8s.get('db'))).toBe('ERR_SECRET_STORE_UNAVAILABLE');
    server.unseal();
    await k8s.close();

    // A Vault (or proxy) that echoes the token back in its error text.
    const echoed = server.addToken({ ttlSeconds: 0, renewable: false });
    const plain = await createStore(
      { vaultAddr: server.url, caPem: server.caPem, vaultToken: echoed },
      context,
    );
    server.failNext(500, 4, {
      errors: [`backend failed for token ${echoed} (X-Vault-Token: ${echoed})`],
    });
    expect(await collect(plain.get('db'))).toBe('ERR_SECRET_STORE_UNAVAILABLE');
    server.failNext(400, 1, { errors: [`bad request from ${echoed}`] });
    expect(await collect(plain.get('db'))).toBe('ERR_VAULT_API');
    server.revokeToken(echoed);
    expect(await collect(plain.get('db'))).toBe('ERR_SECRET_PERMISSION_DENIED');
    await plain.close();

    // AppRole with an inline secret ID, and a refused one.
    const approle = await createStore(
      {
        vaultAddr: server.url,
        caPem: server.caPem,
        vaultAuthMethod: 'approle',
        vaultAppRoleRoleId: ROLE_ID,
        vaultAppRoleSecretId: SECRET_ID,
      },
      context,
    );
    await approle.get('db');
    await approle.close();
    expect(
      await collect(
        createStore(
          {
            vaultAddr: server.url,
            caPem: server.caPem,
            vaultAuthMethod: 'approle',
            vaultAppRoleRoleId: ROLE_ID,
            vaultAppRoleSecretId: `${SECRET_ID}-wrong`,
          },
          context,
        ),
      ),
    ).toBe('ERR_SECRET_PERMISSION_DENIED');

    // Token file rotation, and a rotated-in token Vault refuses.
    const tokenFile = path.join(dir, 'token');
    await writeFileAtomic(tokenFile, server.addToken({ ttlSeconds: 60 }));
    const fileStore = await createStore(
      { vaultAddr: server.url, caPem: server.caPem, vaultTokenMountPath: tokenFile },
      context,
    );
    await fileStore.get('db');
    await writeFileAtomic(tokenFile, server.addToken({ ttlSeconds: 60 }));
    await fileStore.get('db');
    const bogus = 'hvs.rotated-in-token-vault-never-issued-000';
    await writeFileAtomic(tokenFile, bogus);
    expect(await collect(fileStore.get('db'))).toBe('ERR_SECRET_PERMISSION_DENIED');
    await fileStore.close();

    // Bad configuration holding a token, and an unknown token at start.
    const configToken = 'hvs.config-error-token-value-777777';
    expect(
      await collect(
        createStore({ vaultToken: configToken, vaultValueType: 'bad', vaultAddr: 'nope' }, context),
      ),
    ).toBe('ERR_SECRET_STORE_CONFIG');
    expect(
      await collect(
        createStore(
          { vaultAddr: server.url, caPem: server.caPem, vaultToken: configToken },
          context,
        ),
      ),
    ).toBe('ERR_SECRET_PERMISSION_DENIED');

    // The run did exercise the paths it claims to.
    expect(server.requests('renew-self').length).toBeGreaterThan(0);
    expect(server.requests('auth/kubernetes/login').length).toBeGreaterThanOrEqual(2);
    expect(server.requests('revoke-self').length).toBeGreaterThan(0);
    expect(captured.lines.length).toBeGreaterThan(10);
    expect(errors.length).toBe(9);

    const credentials = [
      ...server.issuedTokens(),
      JWT,
      SECRET_ID,
      `${SECRET_ID}-wrong`,
      ROLE_ID,
      bogus,
      configToken,
    ];
    const logText = captured.text();
    const errorText = errors.join('\n');
    for (const credential of credentials) {
      expect({
        credential,
        inLog: logText.includes(credential),
        inErrors: errorText.includes(credential),
      }).toEqual({
        credential,
        inLog: false,
        inErrors: false,
      });
    }
    // The echoed-token errors were redacted, not dropped.
    expect(errorText).toContain('[REDACTED]');
  });
});
