import { promises as fs } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { silentLogger } from '../../../../src/shared/logger.js';
import { systemClock } from '../../../../src/shared/clock.js';
import { VaultTestServer } from '../../../support/vault-test-server.js';
import { createTestCa } from '../../../support/vault-test-pki.js';
import {
  createCapturedLogger,
  createStore,
  makeTempDir,
  rejectionOf,
  testContext,
} from '../../../support/vault-store-fixtures.js';

/**
 * TLS towards Vault through the store's real client: trust comes only from the configured
 * CA (or the system store), the certificate must name the host or tlsServerName, and
 * skipVerify is the only way around that — loudly logged.
 */
let server: VaultTestServer; // certificate for localhost and 127.0.0.1
let named: VaultTestServer; // certificate only for vault.internal.test
let wrongCaPem: string;
let dir: string;
const context = testContext(silentLogger, systemClock);

beforeAll(async () => {
  server = await VaultTestServer.start();
  named = await VaultTestServer.start({ dnsNames: ['vault.internal.test'], ipAddresses: [] });
  for (const s of [server, named]) s.setKv('secret', 'dapr/db', { password: 'pw' });
  wrongCaPem = (await createTestCa('Some other CA')).certPem;
  dir = await makeTempDir('tls');
});
afterAll(async () => {
  await server.close();
  await named.close();
  await fs.rm(dir, { recursive: true, force: true });
});

describe('Vault TLS', () => {
  it('refuses a server whose certificate does not chain to the configured CA, without retrying', async () => {
    server.clearLog();
    const rejection = await rejectionOf(
      createStore(
        { vaultAddr: server.url, caPem: wrongCaPem, vaultToken: server.rootToken },
        context,
      ),
    );
    expect(rejection.code).toBe('ERR_SECRET_STORE_UNAVAILABLE');
    expect(rejection.message).toMatch(
      /TLS verification of Vault at https:\/\/127\.0\.0\.1:\d+ failed \((UNABLE_TO_VERIFY_LEAF_SIGNATURE|UNABLE_TO_GET_ISSUER_CERT_LOCALLY)\)/,
    );
    expect(server.requests()).toHaveLength(0);
  });

  it('refuses the test CA when no CA is configured (only the system trust store applies)', async () => {
    const rejection = await rejectionOf(
      createStore({ vaultAddr: server.url, vaultToken: server.rootToken }, context),
    );
    expect(rejection.code).toBe('ERR_SECRET_STORE_UNAVAILABLE');
    expect(rejection.message).toMatch(/TLS verification/);
  });

  it('connects with skipVerify despite an unknown CA, and logs a warning saying so', async () => {
    const captured = createCapturedLogger();
    const store = await createStore(
      {
        vaultAddr: server.url,
        caPem: wrongCaPem,
        skipVerify: 'true',
        vaultToken: server.rootToken,
      },
      testContext(captured.logger, systemClock),
    );
    try {
      expect(await store.get('db')).toEqual({ password: 'pw' });
      expect(captured.text()).toMatch(
        /"level":"warn".*skipVerify is true: the Vault server certificate is NOT verified/,
      );
    } finally {
      await store.close();
    }
  });

  it('refuses a certificate that does not name the address it was reached at', async () => {
    const rejection = await rejectionOf(
      createStore(
        { vaultAddr: named.url, caPem: named.caPem, vaultToken: named.rootToken },
        context,
      ),
    );
    expect(rejection.code).toBe('ERR_SECRET_STORE_UNAVAILABLE');
    expect(rejection.message).toMatch(/ERR_TLS_CERT_ALTNAME_INVALID/);
  });

  it('verifies against tlsServerName and sends it as SNI', async () => {
    named.clearLog();
    const store = await createStore(
      {
        vaultAddr: named.url,
        caPem: named.caPem,
        tlsServerName: 'vault.internal.test',
        vaultToken: named.rootToken,
      },
      context,
    );
    try {
      expect(await store.get('db')).toEqual({ password: 'pw' });
      expect(new Set(named.requests().map((r) => r.servername))).toEqual(
        new Set(['vault.internal.test']),
      );
    } finally {
      await store.close();
    }
  });

  it('refuses a tlsServerName the certificate does not carry', async () => {
    const rejection = await rejectionOf(
      createStore(
        {
          vaultAddr: named.url,
          caPem: named.caPem,
          tlsServerName: 'other.internal.test',
          vaultToken: named.rootToken,
        },
        context,
      ),
    );
    expect(rejection.message).toMatch(/ERR_TLS_CERT_ALTNAME_INVALID/);
  });

  it.each([
    [
      'caCert (a file)',
      async (): Promise<Record<string, string>> => {
        const file = path.join(dir, 'vault-ca.pem');
        await fs.writeFile(file, server.caPem);
        return { caCert: file };
      },
    ],
    [
      'caPath (a directory with other CAs and files)',
      async (): Promise<Record<string, string>> => {
        const caDir = path.join(dir, 'ca-dir');
        await fs.mkdir(caDir, { recursive: true });
        await fs.writeFile(path.join(caDir, 'a-other.pem'), wrongCaPem);
        await fs.writeFile(path.join(caDir, 'b-vault.crt'), server.caPem);
        await fs.writeFile(path.join(caDir, 'notes.txt'), 'not a certificate');
        return { caPath: caDir };
      },
    ],
  ])('trusts the CA named by %s', async (_what, tlsMetadata) => {
    const store = await createStore(
      { vaultAddr: server.url, vaultToken: server.rootToken, ...(await tlsMetadata()) },
      context,
    );
    try {
      expect(await store.get('db')).toEqual({ password: 'pw' });
    } finally {
      await store.close();
    }
  });

  it('talks plain HTTP to a loopback Vault when vaultAddr says http://', async () => {
    const plain = await VaultTestServer.start({ tls: false });
    try {
      plain.setKv('secret', 'dapr/db', { password: 'plain' });
      const store = await createStore(
        { vaultAddr: plain.url, vaultToken: plain.rootToken },
        context,
      );
      expect(await store.get('db')).toEqual({ password: 'plain' });
      await store.close();
    } finally {
      await plain.close();
    }
  });
});
